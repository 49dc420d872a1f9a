/* Round trips over arrays made by real mdadm 4.2 / Linux md (../shared/fixtures): through
 * the C ABI, each member's examine text equals what mdadm printed, the array assembles, the
 * data md wrote reads back, a new write reads back, and the array stops clean (the shell
 * driver then holds Debian's mdadm --examine against `mdraid examine` on the results).
 *
 * usage: test_fixtures MANIFEST
 *   MANIFEST lines:  FIXTURE <name> <fixture dir> <image dir>
 *                    MEMBER <vdX>                       (in guest order)
 *                    WRITE <gen> <array offset> <bytes> <scenario>
 *                    END */
#include "common.h"
#include <unistd.h>

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* 0.90 device tables: mdadm names the guest's devices (/dev/vda) from its device numbers;
 * mdraid prints no name for a device it cannot find on this host, as mdadm does. Drop those
 * names (and trailing blanks) from every line before comparing. */
static void normalise(char *s) {
    char *out = s, *line = s;
    while (*line) {
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char tmp[512];
        if (n >= sizeof tmp) n = sizeof tmp - 1;
        memcpy(tmp, line, n);
        tmp[n] = 0;
        char *dev = strstr(tmp, "   /dev/vd");
        if (dev && (strstr(tmp, "active") || strstr(tmp, "spare") || strstr(tmp, "faulty"))) *dev = 0;
        size_t k = strlen(tmp);
        while (k && tmp[k - 1] == ' ') tmp[--k] = 0;
        memcpy(out, tmp, k);
        out += k;
        if (end) *out++ = '\n';
        line = end ? end + 1 : line + strlen(line);
    }
    *out = 0;
}

/* md's fixture pattern: sector s of a written range holds
 * "mdraid-fixture {scenario} gen {gen} sector {s:09d}\n" repeated, cut to 512 bytes. */
static void fixture_sector(char *out, const char *scenario, int gen, uint64_t s) {
    char line[128];
    int n = snprintf(line, sizeof line, "mdraid-fixture %s gen %d sector %09llu\n", scenario, gen,
                     (unsigned long long)s);
    for (int i = 0; i < 512; i++) out[i] = line[i % n];
}

#define MAXM 8
#define MAXW 8

typedef struct fixture {
    char name[64], dir[512], imgdir[512];
    char members[MAXM][8];
    int nm;
    struct { int gen; uint64_t off, bytes; char scenario[64]; } w[MAXW];
    int nw;
} fixture;

static void run_fixture(fixture *fx) {
    g_test = fx->name;
    printf("fixture %s: %d members, %d writes\n", fx->name, fx->nm, fx->nw);
    mdraid_member *m[MAXM];
    int is090 = 0;
    for (int i = 0; i < fx->nm; i++) {
        char img[1024], want_path[1024], label[32];
        snprintf(img, sizeof img, "%s/%s.img", fx->imgdir, fx->members[i]);
        snprintf(want_path, sizeof want_path, "%s/examine-%s.txt", fx->dir, fx->members[i]);
        snprintf(label, sizeof label, "/dev/%s", fx->members[i]);
        MUST(mdraid_member_open_path(img, 0, &m[i]));
        size_t n = 0;
        OK(mdraid_examine(m[i], label, "mdlab", NULL, 0, &n));
        char *got = malloc(n + 1);
        OK(mdraid_examine(m[i], label, "mdlab", got, n + 1, &n));
        char *want = slurp(want_path);
        CHECK(want != NULL);
        if (want) {
            is090 |= strstr(want, "Version : 0.90") != NULL;
            normalise(want);
            normalise(got);
            if (strcmp(got, want) != 0) {
                fprintf(stderr, "FAIL [%s]: examine of %s differs from mdadm's:\n--- mdadm\n%s\n--- libmdraid\n%s\n",
                        fx->name, fx->members[i], want, got);
                g_failures++;
            }
        }
        free(want);
        free(got);
    }
    mdraid_array *a = NULL;
    MUST(mdraid_array_assemble(m, (size_t)fx->nm, MDRAID_ASSEMBLE_RUN, &a));
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.size > 0 && info.in_sync >= 1);
    CHECK(info.metadata == (is090 ? MDRAID_METADATA_0_90 : info.metadata));
    /* What md wrote reads back (later generations win where they overlap). */
    char *buf = malloc(1 << 20), want[512];
    for (int k = 0; k < fx->nw; k++) {
        for (uint64_t done = 0; done < fx->w[k].bytes; done += 1 << 20) {
            uint64_t len = fx->w[k].bytes - done < (1 << 20) ? fx->w[k].bytes - done : (1 << 20);
            uint64_t at = fx->w[k].off + done;
            OK(mdraid_array_read(a, at, (uint8_t *)buf, len));
            for (uint64_t s = 0; s < len / 512; s++) {
                uint64_t abs = at + s * 512;
                int newest = k;
                for (int j = k + 1; j < fx->nw; j++)
                    if (abs >= fx->w[j].off && abs < fx->w[j].off + fx->w[j].bytes) newest = j;
                fixture_sector(want, fx->w[newest].scenario, fx->w[newest].gen,
                               (abs - fx->w[newest].off) / 512);
                if (memcmp(buf + s * 512, want, 512) != 0) {
                    fprintf(stderr, "FAIL [%s]: array byte %llu does not hold md's data\n", fx->name,
                            (unsigned long long)abs);
                    g_failures++;
                    s = len;
                    done = fx->w[k].bytes;
                }
            }
        }
    }
    /* A write of ours reads back; then a clean stop. */
    fill((uint8_t *)buf, 65536, 8 << 20, 42);
    OK(mdraid_array_write(a, 8 << 20, (uint8_t *)buf, 65536, 0));
    memset(buf, 0, 65536);
    OK(mdraid_array_read(a, 8 << 20, (uint8_t *)buf, 65536));
    CHECK(matches((uint8_t *)buf, 65536, 8 << 20, 42));
    if (info.needs_resync) {
        OK(mdraid_array_sync_start(a, MDRAID_SYNC_RESYNC));
        OK(mdraid_array_sync_wait(a));
    }
    OK(mdraid_array_stop(a));
    mdraid_array_free(a);
    free(buf);
    for (int i = 0; i < fx->nm; i++) mdraid_member_free(m[i]);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MANIFEST\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fixture *fx = calloc(1, sizeof *fx);
    char kw[16];
    int count = 0;
    while (fscanf(f, "%15s", kw) == 1) {
        if (!strcmp(kw, "FIXTURE")) {
            memset(fx, 0, sizeof *fx);
            if (fscanf(f, "%63s %511s %511s", fx->name, fx->dir, fx->imgdir) != 3) return 2;
        } else if (!strcmp(kw, "MEMBER") && fx->nm < MAXM) {
            if (fscanf(f, "%7s", fx->members[fx->nm++]) != 1) return 2;
        } else if (!strcmp(kw, "WRITE") && fx->nw < MAXW) {
            int k = fx->nw++;
            unsigned long long off, bytes;
            if (fscanf(f, "%d %llu %llu %63s", &fx->w[k].gen, &off, &bytes, fx->w[k].scenario) != 4) return 2;
            fx->w[k].off = off;
            fx->w[k].bytes = bytes;
        } else if (!strcmp(kw, "END")) {
            run_fixture(fx);
            count++;
        } else {
            fprintf(stderr, "bad manifest keyword %s\n", kw);
            return 2;
        }
    }
    fclose(f);
    free(fx);
    CHECK(count > 0);
    printf("%d fixtures\n", count);
    return finish();
}
