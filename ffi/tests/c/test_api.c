/* Every call of the C ABI, and misuse of each: NULL and stale handles, double frees, zero
 * lengths, offsets past the end, misaligned offsets and (O_DIRECT) buffers, bad flags; each
 * must return the documented result.
 *
 * usage: test_api WORKDIR     (WORKDIR on a filesystem that supports O_DIRECT) */
#include "common.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)
#define DEV (8 * MIB)

static const char *workdir;

static void test_basics(void) {
    g_test = "basics";
    CHECK(strcmp(mdraid_version(), MDRAID_VERSION) == 0);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", MDRAID_VERSION_MAJOR, MDRAID_VERSION_MINOR, MDRAID_VERSION_PATCH);
    CHECK(strcmp(v, MDRAID_VERSION) == 0);
    CHECK(strncmp(mdraid_result_text(MDRAID_OK), "MDRAID_OK", 9) == 0);
    CHECK(strncmp(mdraid_result_text(MDRAID_PANIC), "MDRAID_PANIC", 12) == 0);
    CHECK(strcmp(mdraid_result_text(12345), "unknown result") == 0);
    for (unsigned r = 9001; r <= 9017; r++) CHECK(strncmp(mdraid_result_text(r), "MDRAID_", 7) == 0);
    /* The values are part of the ABI. */
    CHECK(MDRAID_NULL_PARAMETER == 9001 && MDRAID_INVALID_HANDLE == 9002 && MDRAID_MISALIGNED == 9005 &&
          MDRAID_STOPPED == 9013 && MDRAID_PANIC == 9100);
    /* A panic inside the library comes back as MDRAID_PANIC, never as an unwind into C. */
    EXPECT(mdraid__panic_for_test(), MDRAID_PANIC);
    CHECK(strstr(mdraid_last_error(), "panic") != NULL);
    EXPECT(mdraid__panic_for_test(), MDRAID_PANIC); /* and the library still works */
    /* Options defaults; NULL. */
    EXPECT(mdraid_create_options_init(NULL), MDRAID_NULL_PARAMETER);
    mdraid_create_options o;
    OK(mdraid_create_options_init(&o));
    CHECK(o.metadata == MDRAID_METADATA_1_2 && o.bitmap == MDRAID_BITMAP_AUTO && o.raid_disks == 0);
    /* The last error is per thread and names the problem. */
    EXPECT(mdraid_member_open_path(NULL, 0, NULL), MDRAID_NULL_PARAMETER);
    CHECK(strstr(mdraid_last_error(), "NULL") != NULL);
    mdraid_member *m = (mdraid_member *)0x1;
    EXPECT(mdraid_member_open_path("/nonexistent/x.img", 0, &m), MDRAID_IO_ERROR);
    CHECK(mdraid_last_errno() == ENOENT);
    CHECK(m == (mdraid_member *)0x1); /* out-params only written on success */
    EXPECT(mdraid_member_open_path("/dev/null", 0x80, &m), MDRAID_INVALID_ARGUMENT);
}

static void test_member_misuse(void) {
    g_test = "member_misuse";
    memdev *d = memdev_new(DEV);
    mdraid_member_callbacks cb = {0};
    mdraid_member *m = NULL;
    cb.ctx = d;
    cb.size = d->size;
    EXPECT(mdraid_member_new(NULL, "x", &m), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_member_new(&cb, "x", &m), MDRAID_NULL_PARAMETER); /* no callbacks */
    cb.read = sync_read;
    cb.write = sync_write;
    cb.flush = sync_flush;
    EXPECT(mdraid_member_new(&cb, NULL, &m), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_member_new(&cb, "x", NULL), MDRAID_NULL_PARAMETER);
    cb.mode = 7;
    EXPECT(mdraid_member_new(&cb, "x", &m), MDRAID_INVALID_ARGUMENT);
    cb.mode = MDRAID_CALLBACK_SYNC;
    cb.logical_block_size = 1000;
    EXPECT(mdraid_member_new(&cb, "x", &m), MDRAID_INVALID_ARGUMENT);
    cb.logical_block_size = 0;
    cb.size = 0;
    EXPECT(mdraid_member_new(&cb, "x", &m), MDRAID_INVALID_ARGUMENT);
    CHECK(m == NULL);
    cb.size = d->size;
    OK(mdraid_member_new(&cb, "blank", &m));
    /* examine of a blank device */
    size_t n = 0;
    EXPECT(mdraid_examine(m, NULL, NULL, NULL, 0, &n), MDRAID_NO_SUPERBLOCK);
    EXPECT(mdraid_examine(NULL, NULL, NULL, NULL, 0, &n), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_examine(m, NULL, NULL, NULL, 0, NULL), MDRAID_NULL_PARAMETER);
    /* assemble of blank members */
    mdraid_array *a = NULL;
    EXPECT(mdraid_array_assemble(&m, 1, 0, &a), MDRAID_NO_SUPERBLOCK);
    CHECK(a == NULL);
    /* free: NULL, twice, and a member handle is not an array handle */
    mdraid_member_free(NULL);
    EXPECT(mdraid_array_read((mdraid_array *)m, 0, (uint8_t *)&n, 512), MDRAID_INVALID_HANDLE);
    mdraid_array_free((mdraid_array *)m); /* ignored: not an array */
    size_t len;
    EXPECT(mdraid_examine(m, NULL, NULL, NULL, 0, &len), MDRAID_NO_SUPERBLOCK); /* still alive */
    mdraid_member_free(m);
    CHECK(d->destroyed == 0); /* no destroy callback was given */
    mdraid_member_free(m); /* double free: safe, documented */
    EXPECT(mdraid_examine(m, NULL, NULL, NULL, 0, &len), MDRAID_INVALID_HANDLE);
    EXPECT(mdraid_examine((mdraid_member *)0xdeadbeef, NULL, NULL, NULL, 0, &len), MDRAID_INVALID_HANDLE);
    /* forged token */
    mdraid_io_token t = {12345, 1};
    EXPECT(mdraid_member_io_complete(t, 0), MDRAID_UNKNOWN_TOKEN);
    memdev_free(d);
}

/* Two sync in-memory members, 1.2 with a bitmap. */
typedef struct pair {
    memdev *d[3];
    mdraid_member *m[3];
    mdraid_array *a;
} pair;

static void pair_new(pair *p, int bitmap) {
    for (int i = 0; i < 3; i++) {
        p->d[i] = memdev_new(DEV);
        char name[16];
        snprintf(name, sizeof name, "sync%d", i);
        p->m[i] = member_sync(p->d[i], name);
    }
    mdraid_create_options o;
    MUST(mdraid_create_options_init(&o));
    o.bitmap = bitmap ? MDRAID_BITMAP_INTERNAL : MDRAID_BITMAP_NONE;
    o.flags = MDRAID_CREATE_ASSUME_CLEAN;
    uint32_t mf[2] = {0, MDRAID_MEMBER_WRITE_MOSTLY};
    o.member_flags = mf;
    MUST(mdraid_array_create(&o, p->m, 2, &p->a));
}

static void pair_free(pair *p) {
    mdraid_array_free(p->a);
    for (int i = 0; i < 3; i++) {
        mdraid_member_free(p->m[i]);
        CHECK(p->d[i]->destroyed == 1);
        memdev_free(p->d[i]);
    }
}

static void test_create_misuse(void) {
    g_test = "create_misuse";
    memdev *d = memdev_new(DEV), *tiny = memdev_new(64 * 1024);
    mdraid_member *m = member_sync(d, "d"), *t = member_sync(tiny, "tiny");
    mdraid_array *a = NULL;
    mdraid_create_options o;
    OK(mdraid_create_options_init(&o));
    EXPECT(mdraid_array_create(&o, NULL, 1, &a), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_create(&o, &m, 0, &a), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_array_create(&o, &m, 1, NULL), MDRAID_NULL_PARAMETER);
    o.metadata = 9;
    EXPECT(mdraid_array_create(&o, &m, 1, &a), MDRAID_INVALID_ARGUMENT);
    o.metadata = MDRAID_METADATA_1_2;
    o.flags = 0x100;
    EXPECT(mdraid_array_create(&o, &m, 1, &a), MDRAID_INVALID_ARGUMENT);
    o.flags = 0;
    o.name = "a-name-that-is-far-too-long-for-md-superblocks";
    EXPECT(mdraid_array_create(&o, &m, 1, &a), MDRAID_REFUSED);
    o.name = NULL;
    EXPECT(mdraid_array_create(&o, &t, 1, &a), MDRAID_REFUSED); /* too small */
    /* Blocks larger than md's 4 KiB metadata alignment: refused, naming the member. */
    memdev *big = memdev_new(DEV);
    mdraid_member_callbacks cb = {0};
    cb.ctx = big;
    cb.size = big->size;
    cb.logical_block_size = 8192;
    cb.mode = MDRAID_CALLBACK_SYNC;
    cb.read = sync_read;
    cb.write = sync_write;
    cb.flush = sync_flush;
    mdraid_member *lb = NULL;
    OK(mdraid_member_new(&cb, "big-blocks", &lb));
    mdraid_member *two[2] = {m, lb};
    EXPECT(mdraid_array_create(&o, two, 2, &a), MDRAID_REFUSED);
    CHECK(strstr(mdraid_last_error(), "big-blocks has 8192-byte logical blocks") != NULL);
    mdraid_member_free(lb);
    memdev_free(big);
    mdraid_member *bad[2] = {m, (mdraid_member *)0x77};
    EXPECT(mdraid_array_create(&o, bad, 2, &a), MDRAID_INVALID_HANDLE);
    CHECK(a == NULL);
    /* The member is free again after the failures: a create works. NULL = missing slot. */
    mdraid_member *slots[2] = {m, NULL};
    OK(mdraid_array_create(NULL, slots, 2, &a));
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.raid_disks == 2 && info.in_sync == 1 && info.members == 1);
    /* A member serves one array at a time. */
    mdraid_array *b = NULL;
    EXPECT(mdraid_array_create(NULL, &m, 1, &b), MDRAID_BUSY);
    EXPECT(mdraid_array_assemble(&m, 1, MDRAID_ASSEMBLE_RUN, &b), MDRAID_BUSY);
    EXPECT(mdraid_array_assemble(&m, 1, 0x40, &b), MDRAID_INVALID_ARGUMENT);
    OK(mdraid_array_stop(a));
    mdraid_array_free(a);
    mdraid_array_free(a); /* double free: safe */
    EXPECT(mdraid_array_get_info(a, &info), MDRAID_INVALID_HANDLE);
    OK(mdraid_array_assemble(&m, 1, MDRAID_ASSEMBLE_RUN, &b)); /* let go at free */
    mdraid_array_free(b);
    mdraid_member_free(m);
    mdraid_member_free(t);
    CHECK(d->destroyed == 1 && tiny->destroyed == 1);
    memdev_free(d);
    memdev_free(tiny);
}

static void test_io_misuse(void) {
    g_test = "io_misuse";
    pair p;
    pair_new(&p, 1);
    mdraid_array *a = p.a;
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.block_size == 512 && info.buffer_align == 1 && info.size > 0 && info.bitmap == 1);
    static uint8_t buf[8192];
    /* NULL */
    EXPECT(mdraid_array_read(NULL, 0, buf, 512), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_read(a, 0, NULL, 512), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_write(a, 0, NULL, 512, 0), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_flush(NULL), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_get_info(a, NULL), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_submit(a, MDRAID_OP_READ, 0, buf, 512, 0, NULL, NULL), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_submit(a, MDRAID_OP_READ, 0, NULL, 512, 0, wg_done, NULL), MDRAID_NULL_PARAMETER);
    /* zero lengths */
    EXPECT(mdraid_array_read(a, 0, buf, 0), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_array_write(a, 0, buf, 0, 0), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_array_discard(a, 0, 0), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_array_submit(a, MDRAID_OP_WRITE, 0, buf, 0, 0, wg_done, NULL), MDRAID_INVALID_ARGUMENT);
    /* past the end */
    EXPECT(mdraid_array_read(a, info.size, buf, 512), MDRAID_OUT_OF_RANGE);
    EXPECT(mdraid_array_read(a, info.size - 512, buf, 1024), MDRAID_OUT_OF_RANGE);
    EXPECT(mdraid_array_write(a, UINT64_MAX - 511, buf, 1024, 0), MDRAID_OUT_OF_RANGE);
    EXPECT(mdraid_array_submit(a, MDRAID_OP_READ, info.size, buf, 512, 0, wg_done, NULL), MDRAID_OUT_OF_RANGE);
    EXPECT(mdraid_array_discard(a, info.size, 512), MDRAID_OUT_OF_RANGE);
    /* misaligned offsets and lengths */
    EXPECT(mdraid_array_read(a, 100, buf, 512), MDRAID_MISALIGNED);
    EXPECT(mdraid_array_write(a, 0, buf, 100, 0), MDRAID_MISALIGNED);
    /* bad op / flags */
    EXPECT(mdraid_array_submit(a, 9, 0, buf, 512, 0, wg_done, NULL), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_array_write(a, 0, buf, 512, 0x10), MDRAID_INVALID_ARGUMENT);
    /* the edges that are fine */
    fill(buf, 8192, info.size - 8192, 9);
    OK(mdraid_array_write(a, info.size - 8192, buf, 8192, MDRAID_IO_FUA));
    memset(buf, 0, sizeof buf);
    OK(mdraid_array_read(a, info.size - 8192, buf, 8192));
    CHECK(matches(buf, 8192, info.size - 8192, 9));
    OK(mdraid_array_discard(a, 0, 4096));
    OK(mdraid_array_flush(a));
    /* async submit over sync members: completes before submit returns */
    waitgroup wg;
    wg_init(&wg);
    wg_add(&wg);
    OK(mdraid_array_submit(a, MDRAID_OP_READ, info.size - 8192, buf, 8192, 0, wg_done, &wg));
    CHECK(wg.pending == 0 && wg.errors == 0);
    wg_add(&wg);
    OK(mdraid_array_submit(a, MDRAID_OP_FLUSH, 0, NULL, 0, 0, wg_done, &wg));
    wg_add(&wg);
    OK(mdraid_array_submit(a, MDRAID_OP_DISCARD, 0, NULL, 4096, 0, wg_done, &wg));
    wg_wait(&wg);
    wg_destroy(&wg);
    uint64_t next = 0;
    EXPECT(mdraid_array_tick(NULL, &next), MDRAID_NULL_PARAMETER);
    OK(mdraid_array_tick(a, NULL));
    OK(mdraid_array_tick(a, &next));
    CHECK(next > 0);
    /* member info and names */
    mdraid_member_info mi;
    OK(mdraid_array_member_info(a, 0, &mi));
    CHECK(mi.state == MDRAID_MEMBER_IN_SYNC && mi.slot == 0 && mi.writes > 0 && mi.dev_sectors == DEV / 512);
    EXPECT(mdraid_array_member_info(a, 9, &mi), MDRAID_NOT_FOUND);
    EXPECT(mdraid_array_member_info(a, 0, NULL), MDRAID_NULL_PARAMETER);
    char name[16];
    size_t n = 0;
    OK(mdraid_array_member_name(a, 1, NULL, 0, &n));
    CHECK(n == 5);
    EXPECT(mdraid_array_member_name(a, 1, name, 3, &n), MDRAID_BUFFER_TOO_SMALL);
    OK(mdraid_array_member_name(a, 1, name, sizeof name, &n));
    CHECK(strcmp(name, "sync1") == 0);
    EXPECT(mdraid_array_member_name(a, 7, name, sizeof name, &n), MDRAID_NOT_FOUND);
    pair_free(&p);
}

static void test_membership_and_sync(void) {
    g_test = "membership";
    pair p;
    pair_new(&p, 1);
    mdraid_array *a = p.a;
    static uint8_t buf[65536], got[65536];
    for (int i = 0; i < 16; i++) {
        fill(buf, sizeof buf, (uint64_t)i * sizeof buf, 1);
        OK(mdraid_array_write(a, (uint64_t)i * sizeof buf, buf, sizeof buf, 0));
    }
    /* sync actions */
    EXPECT(mdraid_array_sync_start(a, 77), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_array_sync_start(NULL, MDRAID_SYNC_CHECK), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_sync_abort(a), MDRAID_REFUSED); /* none runs */
    OK(mdraid_array_set_speed_limits(a, 1000, 200000));
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(a));
    mdraid_sync_status s;
    EXPECT(mdraid_array_sync_status(a, NULL), MDRAID_NULL_PARAMETER);
    OK(mdraid_array_sync_status(a, &s));
    CHECK(!s.running && s.last_valid && s.last_action == MDRAID_SYNC_CHECK && s.last_mismatch_cnt == 0);
    /* make the mirrors differ behind the array's back: check counts it, repair fixes it */
    memset(p.d[1]->data + 4 * MIB, 0x5a, 4096);
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(a));
    OK(mdraid_array_sync_status(a, &s));
    CHECK(s.last_mismatch_cnt > 0);
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_REPAIR));
    OK(mdraid_array_sync_wait(a));
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(a));
    OK(mdraid_array_sync_status(a, &s));
    CHECK(s.last_mismatch_cnt == 0);
    /* an aborted sync action reports interrupted (or ended first on a fast machine) */
    OK(mdraid_array_set_speed_limits(a, 1, 1));
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_status(a, &s));
    if (s.running) {
        EXPECT(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK), MDRAID_REFUSED); /* one runs */
        EXPECT(mdraid_array_set_speed_limits(a, 1000, 200000), MDRAID_REFUSED); /* not idle */
        OK(mdraid_array_sync_abort(a));
        OK(mdraid_array_sync_wait(a));
        OK(mdraid_array_sync_status(a, &s));
        CHECK(s.last_valid && s.last_interrupted == 1);
    }
    OK(mdraid_array_set_speed_limits(a, 1000, 200000));
    /* fail / remove / re-add / add */
    EXPECT(mdraid_array_fail(a, 5), MDRAID_NOT_FOUND);
    OK(mdraid_array_fail(a, 1));
    EXPECT(mdraid_array_fail(a, 0), MDRAID_REFUSED); /* the last in-sync mirror */
    EXPECT(mdraid_array_remove(a, 0), MDRAID_REFUSED); /* active: fail it first */
    mdraid_member_info mi;
    OK(mdraid_array_member_info(a, 1, &mi));
    CHECK(mi.state == MDRAID_MEMBER_FAULTY);
    /* writes while degraded: the bitmap remembers them for the re-add */
    for (int i = 0; i < 4; i++) {
        fill(buf, sizeof buf, (uint64_t)i * sizeof buf, 2);
        OK(mdraid_array_write(a, (uint64_t)i * sizeof buf, buf, sizeof buf, 0));
    }
    OK(mdraid_array_remove(a, 1));
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.members == 1 && info.in_sync == 1);
    uint32_t outcome = 99;
    EXPECT(mdraid_array_add(a, p.m[2], MDRAID_ADD_RE_ADD_ONLY, &outcome), MDRAID_REFUSED); /* a stranger */
    EXPECT(mdraid_array_add(a, p.m[0], 0, &outcome), MDRAID_BUSY); /* in use by this array */
    EXPECT(mdraid_array_add(a, p.m[1], 0x100, &outcome), MDRAID_INVALID_ARGUMENT);
    OK(mdraid_array_add(a, p.m[1], MDRAID_ADD_RE_ADD_ONLY, &outcome));
    CHECK(outcome == MDRAID_ADDED_RE_ADDED);
    OK(mdraid_array_add(a, p.m[2], 0, &outcome));
    CHECK(outcome == MDRAID_ADDED_SPARE);
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.members == 3 && info.in_sync == 2);
    /* both mirrors hold the latest data: read each one alone after failing the other */
    for (int i = 0; i < 16; i++) {
        OK(mdraid_array_read(a, (uint64_t)i * sizeof got, got, sizeof got));
        CHECK(matches(got, sizeof got, (uint64_t)i * sizeof got, i < 4 ? 2 : 1));
    }
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(a));
    OK(mdraid_array_sync_status(a, &s));
    CHECK(s.last_mismatch_cnt == 0);
    /* detail */
    size_t n = 0;
    OK(mdraid_array_detail(a, "/dev/md/test", "host", NULL, 0, &n));
    char *text = malloc(n + 1);
    EXPECT(mdraid_array_detail(a, "/dev/md/test", "host", text, n, &n), MDRAID_BUFFER_TOO_SMALL);
    OK(mdraid_array_detail(a, "/dev/md/test", "host", text, n + 1, &n));
    CHECK(strncmp(text, "/dev/md/test:", 13) == 0);
    CHECK(strstr(text, "Raid Level : raid1") != NULL);
    CHECK(strstr(text, "spare") != NULL);
    free(text);
    /* md's frozen: a failed mirror's spare waits; idle: md's recovery check rebuilds it */
    EXPECT(mdraid_array_sync_stop(a, 0x10), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_array_sync_stop(NULL, 0), MDRAID_NULL_PARAMETER);
    uint32_t frozen = 7;
    OK(mdraid_array_sync_frozen(a, &frozen));
    CHECK(frozen == 0);
    EXPECT(mdraid_array_sync_frozen(a, NULL), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_sync_frozen(NULL, &frozen), MDRAID_NULL_PARAMETER);
    OK(mdraid_array_sync_stop(a, MDRAID_SYNC_STOP_FREEZE)); /* none runs: not refused */
    OK(mdraid_array_sync_frozen(a, &frozen));
    CHECK(frozen == 1);
    OK(mdraid_array_fail(a, 1));
    OK(mdraid_array_sync_wait(a));
    OK(mdraid_array_sync_status(a, &s));
    OK(mdraid_array_member_info(a, 2, &mi));
    CHECK(!s.running && mi.state == MDRAID_MEMBER_SPARE);
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.in_sync == 1);
    OK(mdraid_array_sync_frozen(a, &frozen));
    CHECK(frozen == 1); /* a failure does not end a freeze */
    OK(mdraid_array_sync_stop(a, 0));
    OK(mdraid_array_sync_frozen(a, &frozen));
    CHECK(frozen == 0);
    OK(mdraid_array_sync_wait(a));
    OK(mdraid_array_member_info(a, 2, &mi));
    CHECK(mi.state == MDRAID_MEMBER_IN_SYNC);
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.in_sync == 2);
    /* the mirrors are now members 0 and 2: the assemblies below take those */
    mdraid_member *mm = p.m[1];
    memdev *md = p.d[1];
    p.m[1] = p.m[2], p.d[1] = p.d[2];
    p.m[2] = mm, p.d[2] = md;
    /* stop: later I/O is refused, stop again is fine */
    OK(mdraid_array_stop(a));
    OK(mdraid_array_stop(a));
    EXPECT(mdraid_array_read(a, 0, got, 512), MDRAID_STOPPED);
    EXPECT(mdraid_array_fail(a, 0), MDRAID_STOPPED);
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.stopped == 1);
    mdraid_array_free(a);
    /* read-only assembly: reads work, writes are refused */
    OK(mdraid_array_assemble(p.m, 2, MDRAID_ASSEMBLE_READ_ONLY, &p.a));
    OK(mdraid_array_read(p.a, 0, got, 4096));
    CHECK(matches(got, 4096, 0, 2));
    EXPECT(mdraid_array_write(p.a, 0, got, 4096, 0), MDRAID_READ_ONLY);
    OK(mdraid_array_get_info(p.a, &info));
    CHECK(info.read_only == 1);
    mdraid_array_free(p.a);
    /* degraded assembly needs RUN */
    EXPECT(mdraid_array_assemble(p.m, 1, 0, &p.a), MDRAID_REFUSED);
    OK(mdraid_array_assemble(p.m, 1, MDRAID_ASSEMBLE_RUN | MDRAID_ASSEMBLE_FORCE, &p.a));
    pair_free(&p);
}

static void test_direct(void) {
    g_test = "direct";
    char path[2][512];
    mdraid_member *m[2];
    for (int i = 0; i < 2; i++) {
        snprintf(path[i], sizeof path[i], "%s/direct%d.img", workdir, i);
        int fd = open(path[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
        CHECK(fd >= 0 && ftruncate(fd, 16 * MIB) == 0);
        close(fd);
        mdraid_result r = mdraid_member_open_path(path[i], MDRAID_OPEN_DIRECT, &m[i]);
        if (r != MDRAID_OK) {
            fprintf(stderr, "FAIL [direct]: O_DIRECT open of %s refused (%s): the test needs a filesystem "
                            "with O_DIRECT (not tmpfs)\n", path[i], mdraid_last_error());
            g_failures++;
            return;
        }
    }
    /* a second opener is kept out (exclusive lock) */
    mdraid_member *again = NULL;
    EXPECT(mdraid_member_open_path(path[0], 0, &again), MDRAID_IO_ERROR);
    CHECK(mdraid_last_errno() == EBUSY);
    mdraid_array *a;
    MUST(mdraid_array_create(NULL, m, 2, &a));
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.buffer_align == 4096 && info.block_size == 512 && info.needs_resync == 1);
    uint8_t *al = aligned_alloc(4096, 3 * 4096);
    fill(al, 8192, 0, 4);
    EXPECT(mdraid_array_write(a, 0, al + 1, 4096, 0), MDRAID_MISALIGNED);
    EXPECT(mdraid_array_write(a, 0, al + 512, 4096, 0), MDRAID_MISALIGNED);
    EXPECT(mdraid_array_read(a, 0, al + 8, 4096), MDRAID_MISALIGNED);
    waitgroup wg;
    wg_init(&wg);
    EXPECT(mdraid_array_submit(a, MDRAID_OP_READ, 0, al + 16, 4096, 0, wg_done, &wg), MDRAID_MISALIGNED);
    OK(mdraid_array_write(a, 0, al, 8192, 0));
    memset(al, 0, 8192);
    OK(mdraid_array_read(a, 0, al, 8192));
    CHECK(matches(al, 8192, 0, 4));
    wg_destroy(&wg);
    /* the owed resync runs through the array's own I/O */
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_RESYNC));
    OK(mdraid_array_sync_wait(a));
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.needs_resync == 0);
    free(al);
    OK(mdraid_array_stop(a));
    mdraid_array_free(a);
    /* examine through the C ABI: what mdadm --examine prints for this member */
    size_t n = 0;
    OK(mdraid_examine(m[0], NULL, "host", NULL, 0, &n));
    char *text = malloc(n + 1);
    OK(mdraid_examine(m[0], NULL, "host", text, n + 1, &n));
    CHECK(strlen(text) == n);
    CHECK(strncmp(text, path[0], strlen(path[0])) == 0);
    CHECK(strstr(text, "State : clean") != NULL);
    free(text);
    mdraid_member_free(m[0]);
    mdraid_member_free(m[1]);
    unlink(path[0]);
    unlink(path[1]);
}

static void test_registry(void) {
    g_test = "registry";
    mdraid_registry *r = NULL;
    EXPECT(mdraid_registry_new(NULL), MDRAID_NULL_PARAMETER);
    OK(mdraid_registry_new(&r));
    mdraid_registry_ref *h0 = NULL, *h1 = NULL, *named = NULL, *dup = NULL, *x = NULL;
    EXPECT(mdraid_registry_probe(NULL, 0, &h0), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_registry_probe(r, 0, NULL), MDRAID_NULL_PARAMETER);
    OK(mdraid_registry_probe(r, 0, &h0));
    mdraid_registry_info info;
    OK(mdraid_registry_get_info(r, h0, &info));
    CHECK(info.unit == 0 && info.state == MDRAID_REGISTRY_CLEAR && info.holders == 1);
    CHECK(strcmp((char *)info.name, "md0") == 0);
    EXPECT(mdraid_registry_probe(r, 600, &x), MDRAID_NOT_FOUND); /* md never creates >= 512 on open */
    EXPECT(mdraid_registry_probe(r, 1u << 20, &x), MDRAID_INVALID_ARGUMENT);
    OK(mdraid_registry_alloc_named(r, "md_home", &named));
    OK(mdraid_registry_get_info(r, named, &info));
    CHECK(info.unit == 512 && strcmp((char *)info.name, "md_home") == 0);
    EXPECT(mdraid_registry_alloc_named(r, "md_home", &x), MDRAID_EXISTS);
    EXPECT(mdraid_registry_alloc_named(r, "home", &x), MDRAID_INVALID_ARGUMENT);
    EXPECT(mdraid_registry_alloc_named(r, NULL, &x), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_registry_alloc_unit(r, 0, &x), MDRAID_EXISTS);
    CHECK(mdraid_last_errno() == EEXIST);
    OK(mdraid_registry_alloc_unit(r, 7, &h1));
    OK(mdraid_registry_lookup(r, "md_home", &dup));
    OK(mdraid_registry_get_info(r, dup, &info));
    CHECK(info.holders == 2);
    EXPECT(mdraid_registry_lookup(r, "md_none", &x), MDRAID_NOT_FOUND);
    EXPECT(mdraid_registry_get(r, 3, &x), MDRAID_NOT_FOUND);
    mdraid_registry_ref *g = NULL, *d2 = NULL;
    OK(mdraid_registry_get(r, 7, &g));
    OK(mdraid_registry_dup(r, g, &d2));
    CHECK(x == NULL);
    /* lifecycle transitions by md's rules */
    EXPECT(mdraid_registry_apply(r, h1, MDRAID_REGISTRY_OP_RUN), MDRAID_INVALID_ARGUMENT); /* no members */
    OK(mdraid_registry_apply(r, h1, MDRAID_REGISTRY_OP_CONFIGURE));
    OK(mdraid_registry_apply(r, h1, MDRAID_REGISTRY_OP_ADD_MEMBER));
    OK(mdraid_registry_apply(r, h1, MDRAID_REGISTRY_OP_RUN));
    OK(mdraid_registry_get_info(r, h1, &info));
    CHECK(info.state == MDRAID_REGISTRY_ACTIVE && info.members == 1);
    EXPECT(mdraid_registry_remove(r, 7), MDRAID_BUSY);
    EXPECT(mdraid_registry_apply(r, h1, 99), MDRAID_INVALID_ARGUMENT);
    OK(mdraid_registry_apply(r, h1, MDRAID_REGISTRY_OP_SET_INACTIVE));
    OK(mdraid_registry_apply(r, h1, MDRAID_REGISTRY_OP_REMOVE_MEMBER));
    OK(mdraid_registry_apply(r, h1, MDRAID_REGISTRY_OP_STOP));
    OK(mdraid_registry_get_info(r, h1, &info));
    CHECK(info.deleted == 1);
    EXPECT(mdraid_registry_get(r, 7, &x), MDRAID_STOPPED); /* deleted: no new holders */
    /* put: the last reference of a deleted array removes it */
    uint32_t removed = 9;
    OK(mdraid_registry_put(r, g, &removed));
    CHECK(removed == 0);
    OK(mdraid_registry_put(r, d2, &removed));
    CHECK(removed == 0);
    OK(mdraid_registry_put(r, h1, &removed));
    CHECK(removed == 1);
    EXPECT(mdraid_registry_put(r, h1, &removed), MDRAID_INVALID_HANDLE); /* put twice: safe */
    /* create-on-open array with the UNTIL_IOCTL hold: an ioctl drops it, the put removes it */
    OK(mdraid_registry_apply(r, h0, MDRAID_REGISTRY_OP_IOCTL));
    OK(mdraid_registry_put(r, h0, &removed));
    CHECK(removed == 1);
    OK(mdraid_registry_put(r, dup, NULL));
    mdraid_registry_ref_free(named); /* leaves the reference held: md_home stays */
    mdraid_registry_ref_free(named);
    mdraid_registry_ref_free(NULL);
    OK(mdraid_registry_lookup(r, "md_home", &x));
    EXPECT(mdraid_registry_remove(r, 512), MDRAID_BUSY);
    EXPECT(mdraid_registry_put(NULL, x, NULL), MDRAID_NULL_PARAMETER);
    OK(mdraid_registry_put(r, x, NULL));
    EXPECT(mdraid_registry_remove(r, 400), MDRAID_NOT_FOUND);
    mdraid_registry_free(r);
    mdraid_registry_free(r); /* double free: safe */
    EXPECT(mdraid_registry_probe(r, 0, &x), MDRAID_INVALID_HANDLE);
}

int main(int argc, char **argv) {
    workdir = argc > 1 ? argv[1] : ".";
    test_basics();
    test_member_misuse();
    test_create_misuse();
    test_io_misuse();
    test_membership_and_sync();
    test_direct();
    test_registry();
    return finish();
}
