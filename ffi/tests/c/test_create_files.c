/* Arrays created through the C ABI over image files, for the mdadm cross-check: for each
 * metadata version, two 64 MiB images, create (internal bitmap where the format has one),
 * write, fail and remove a member, write degraded, re-add it, write, stop. Then each member's
 * examine text (libmdraid's) goes to <image>.c-examine; the shell driver requires Debian's
 * `mdadm --examine` and `mdraid examine` to print exactly that.
 *
 * usage: test_create_files DIR */
#include "common.h"
#include <fcntl.h>
#include <unistd.h>

static void make_image(const char *p, off_t size) {
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, size) != 0) {
        perror(p);
        exit(1);
    }
    close(fd);
}

static void one(const char *dir, const char *tag, uint32_t metadata) {
    g_test = tag;
    char path[2][512];
    mdraid_member *m[2];
    for (int i = 0; i < 2; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s-%d.img", dir, tag, i);
        make_image(path[i], 64 << 20);
        MUST(mdraid_member_open_path(path[i], 0, &m[i]));
    }
    mdraid_create_options o;
    MUST(mdraid_create_options_init(&o));
    o.metadata = metadata;
    o.bitmap = MDRAID_BITMAP_INTERNAL;
    o.name = "xcheck";
    o.homehost = "mdlab";
    mdraid_array *a;
    MUST(mdraid_array_create(&o, m, 2, &a));
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_RESYNC));
    OK(mdraid_array_sync_wait(a));
    static uint8_t buf[1 << 20];
    for (int i = 0; i < 8; i++) {
        fill(buf, sizeof buf, (uint64_t)i << 20, 1);
        OK(mdraid_array_write(a, (uint64_t)i << 20, buf, sizeof buf, 0));
    }
    OK(mdraid_array_fail(a, 1));
    OK(mdraid_array_remove(a, 0 + 1));
    fill(buf, 65536, 3 << 20, 2);
    OK(mdraid_array_write(a, 3 << 20, buf, 65536, MDRAID_IO_FUA));
    uint32_t outcome = 9;
    OK(mdraid_array_add(a, m[1], MDRAID_ADD_RE_ADD_ONLY, &outcome));
    CHECK(outcome == MDRAID_ADDED_RE_ADDED);
    fill(buf, 65536, 5 << 20, 3);
    OK(mdraid_array_write(a, 5 << 20, buf, 65536, 0));
    OK(mdraid_array_flush(a));
    OK(mdraid_array_stop(a));
    mdraid_array_free(a);
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        OK(mdraid_examine(m[i], NULL, "mdlab", NULL, 0, &n));
        char *text = malloc(n + 1);
        OK(mdraid_examine(m[i], NULL, "mdlab", text, n + 1, &n));
        char out[1100];
        snprintf(out, sizeof out, "%s.c-examine", path[i]);
        FILE *f = fopen(out, "w");
        fwrite(text, 1, n, f);
        fclose(f);
        free(text);
        mdraid_member_free(m[i]);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    one(argv[1], "v1.2", MDRAID_METADATA_1_2);
    one(argv[1], "v1.1", MDRAID_METADATA_1_1);
    one(argv[1], "v1.0", MDRAID_METADATA_1_0);
    one(argv[1], "v0.90", MDRAID_METADATA_0_90);
    return finish();
}
