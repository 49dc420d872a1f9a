/* Async-callback arrays: concurrent I/O from several C threads, EIO injected from the
 * callbacks (never wrong data), the clock (an idle array goes clean through ticks), and a
 * power cut (unflushed writes dropped, I/O in flight lost) after which every flushed or FUA
 * write is intact and the mirrors agree after the resync. */
#include "common.h"
#include <unistd.h>

#define MIB (1024ull * 1024ull)
#define DEV_BYTES (8 * MIB)
#define BLOCK 4096

typedef struct world {
    memdev *d[2];
    reactor *r;
    mdraid_member *m[2];
    mdraid_array *a;
    int incarnations; /* member handles made over each memdev */
} world;

static void world_new(world *w, unsigned seed, int bitmap) {
    w->r = reactor_start(2, seed);
    w->incarnations = 1;
    for (int i = 0; i < 2; i++) {
        w->d[i] = memdev_new(DEV_BYTES);
        char name[16];
        snprintf(name, sizeof name, "mem%d", i);
        w->m[i] = member_async(w->d[i], w->r, name);
    }
    mdraid_create_options o;
    MUST(mdraid_create_options_init(&o));
    o.bitmap = bitmap ? MDRAID_BITMAP_INTERNAL : MDRAID_BITMAP_NONE;
    o.bitmap_chunk_bytes = 64 * 1024;
    o.flags = MDRAID_CREATE_ASSUME_CLEAN;
    o.name = "async";
    MUST(mdraid_array_create(&o, w->m, 2, &w->a));
}

static void world_free(world *w, int stop) {
    if (stop) OK(mdraid_array_stop(w->a));
    mdraid_array_free(w->a);
    for (int i = 0; i < 2; i++) mdraid_member_free(w->m[i]);
    reactor_stop(w->r);
    for (int i = 0; i < 2; i++) {
        CHECK(w->d[i]->destroyed == w->incarnations); /* destroy(ctx) ran once per member */
        memdev_free(w->d[i]);
    }
}

/* ---- concurrent I/O from several threads ---- */

#define THREADS 4
#define BLOCKS_PER_THREAD 64

typedef struct worker {
    mdraid_array *a;
    int id;
    unsigned seed;
    uint32_t gen[BLOCKS_PER_THREAD];
    int errors;
} worker;

static uint64_t block_off(int thread, int b) {
    return ((uint64_t)b * THREADS + (uint64_t)thread) * BLOCK;
}

static void *worker_main(void *arg) {
    worker *k = arg;
    uint8_t *buf = aligned_alloc(4096, BLOCK), *got = aligned_alloc(4096, BLOCK);
    for (int i = 0; i < 300; i++) {
        int b = rand_r(&k->seed) % BLOCKS_PER_THREAD;
        uint64_t off = block_off(k->id, b);
        switch (rand_r(&k->seed) % 5) {
        case 0:
        case 1: { /* blocking write (FUA now and then) */
            uint32_t g = k->gen[b] + 1;
            fill(buf, BLOCK, off, g);
            uint32_t fl = rand_r(&k->seed) % 4 == 0 ? MDRAID_IO_FUA : 0;
            if (mdraid_array_write(k->a, off, buf, BLOCK, fl) != MDRAID_OK) k->errors++;
            k->gen[b] = g;
            break;
        }
        case 2: { /* blocking read */
            if (mdraid_array_read(k->a, off, got, BLOCK) != MDRAID_OK) k->errors++;
            else if (!matches(got, BLOCK, off, k->gen[b])) {
                fprintf(stderr, "thread %d: block %d holds wrong data\n", k->id, b);
                k->errors++;
            }
            break;
        }
        case 3: { /* async submit, several in flight, then wait */
            waitgroup wg;
            wg_init(&wg);
            uint8_t *bufs[4];
            int bl[4];
            for (int j = 0; j < 4; j++) {
                bufs[j] = aligned_alloc(4096, BLOCK);
                bl[j] = (b + j) % BLOCKS_PER_THREAD;
                wg_add(&wg);
                if (mdraid_array_submit(k->a, MDRAID_OP_READ, block_off(k->id, bl[j]), bufs[j], BLOCK, 0,
                                        wg_done, &wg) != MDRAID_OK) {
                    k->errors++;
                    wg_done(&wg, MDRAID_OK);
                }
            }
            wg_wait(&wg);
            if (wg.errors) k->errors++;
            for (int j = 0; j < 4; j++) {
                if (!matches(bufs[j], BLOCK, block_off(k->id, bl[j]), k->gen[bl[j]])) {
                    fprintf(stderr, "thread %d: async read of block %d wrong\n", k->id, bl[j]);
                    k->errors++;
                }
                free(bufs[j]);
            }
            wg_destroy(&wg);
            break;
        }
        default:
            if (mdraid_array_flush(k->a) != MDRAID_OK) k->errors++;
        }
    }
    free(buf);
    free(got);
    return NULL;
}

static void test_concurrent(void) {
    g_test = "concurrent";
    world w;
    world_new(&w, 7, 1);
    worker k[THREADS];
    pthread_t th[THREADS];
    uint8_t *zero = calloc(1, BLOCK);
    for (int t = 0; t < THREADS; t++) {
        memset(&k[t], 0, sizeof k[t]);
        k[t].a = w.a;
        k[t].id = t;
        k[t].seed = 100 + t;
        /* generation 0 is the pattern: write it first so every block has a known value */
        for (int b = 0; b < BLOCKS_PER_THREAD; b++) {
            uint8_t buf[BLOCK];
            fill(buf, BLOCK, block_off(t, b), 0);
            OK(mdraid_array_write(w.a, block_off(t, b), buf, BLOCK, 0));
        }
    }
    free(zero);
    for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker_main, &k[t]);
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK(k[t].errors == 0);
    }
    /* Both mirrors hold the same bytes: a check finds no mismatch. */
    OK(mdraid_array_sync_start(w.a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(w.a));
    mdraid_sync_status s;
    OK(mdraid_array_sync_status(w.a, &s));
    CHECK(s.running == 0 && s.last_valid == 1 && s.last_action == MDRAID_SYNC_CHECK);
    CHECK(s.last_mismatch_cnt == 0);
    mdraid_member_info mi;
    OK(mdraid_array_member_info(w.a, 0, &mi));
    CHECK(mi.state == MDRAID_MEMBER_IN_SYNC && mi.writes > 0);
    /* Metadata reached the callbacks: bitmap pages and superblocks carry preflush + FUA. */
    CHECK(w.d[0]->fuas > 0 && w.d[0]->preflushes > 0);
    world_free(&w, 1);
}

/* ---- time: an idle array goes clean through mdraid_array_tick ---- */

static void test_tick(void) {
    g_test = "tick";
    world w;
    world_new(&w, 11, 1);
    uint8_t buf[BLOCK];
    fill(buf, BLOCK, 0, 1);
    mdraid_array_info info;
    /* Dirty right after a write (unless the machine is so slow, e.g. under valgrind, that
     * the safe-mode delay passed already: then try again). */
    int seen_dirty = 0;
    for (int i = 0; i < 50 && !seen_dirty; i++) {
        OK(mdraid_array_write(w.a, 0, buf, BLOCK, 0));
        OK(mdraid_array_get_info(w.a, &info));
        seen_dirty = info.dirty == 1;
    }
    CHECK(seen_dirty);
    uint64_t next = 0;
    for (int i = 0; i < 100 && info.dirty; i++) {
        OK(mdraid_array_tick(w.a, &next));
        usleep(10000);
        OK(mdraid_array_get_info(w.a, &info));
    }
    CHECK(info.dirty == 0); /* clean again ~200 ms after the last write, as md */
    world_free(&w, 1);
}

/* Writes blocks 0..n-1 with pattern `gen`. */
static void write_blocks(mdraid_array *a, int n, uint32_t gen) {
    uint8_t buf[BLOCK];
    for (int b = 0; b < n; b++) {
        fill(buf, BLOCK, (uint64_t)b * BLOCK, gen);
        OK(mdraid_array_write(a, (uint64_t)b * BLOCK, buf, BLOCK, 0));
    }
}

/* ---- EIO from the callbacks: never wrong data ---- */

static void test_eio(void) {
    g_test = "eio";
    world w;
    world_new(&w, 13, 1);
    uint8_t buf[BLOCK], got[BLOCK];
    write_blocks(w.a, 32, 5);
    OK(mdraid_array_flush(w.a));
    /* Reads fail on mirror 1: every read still returns the right bytes (from mirror 0). */
    __atomic_store_n(&w.d[1]->fail_reads, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 64; i++) {
        int b = i % 32;
        memset(got, 0, sizeof got);
        OK(mdraid_array_read(w.a, (uint64_t)b * BLOCK, got, BLOCK));
        CHECK(matches(got, BLOCK, (uint64_t)b * BLOCK, 5));
    }
    /* Writes fail on mirror 1 too: writes still succeed (mirror 0 took them). */
    __atomic_store_n(&w.d[1]->fail_writes, 1, __ATOMIC_RELAXED);
    for (int b = 0; b < 32; b++) {
        fill(buf, BLOCK, (uint64_t)b * BLOCK, 6);
        OK(mdraid_array_write(w.a, (uint64_t)b * BLOCK, buf, BLOCK, 0));
    }
    for (int b = 0; b < 32; b++) {
        OK(mdraid_array_read(w.a, (uint64_t)b * BLOCK, got, BLOCK));
        CHECK(matches(got, BLOCK, (uint64_t)b * BLOCK, 6));
    }
    mdraid_member_info m0, m1;
    OK(mdraid_array_member_info(w.a, 0, &m0));
    OK(mdraid_array_member_info(w.a, 1, &m1));
    CHECK(m0.state == MDRAID_MEMBER_IN_SYNC);
    CHECK(m1.state == MDRAID_MEMBER_FAULTY);
    mdraid_array_info info;
    OK(mdraid_array_get_info(w.a, &info));
    CHECK(info.in_sync == 1 && info.failures >= 1);
    /* The last mirror's read errors reach the caller as MDRAID_IO_ERROR, not as data. */
    __atomic_store_n(&w.d[0]->fail_reads, 1, __ATOMIC_RELAXED);
    EXPECT(mdraid_array_read(w.a, 0, got, BLOCK), MDRAID_IO_ERROR);
    waitgroup wg;
    wg_init(&wg);
    wg_add(&wg);
    OK(mdraid_array_submit(w.a, MDRAID_OP_READ, BLOCK, got, BLOCK, 0, wg_done, &wg));
    wg_wait(&wg);
    CHECK(wg.errors == 1);
    wg_destroy(&wg);
    __atomic_store_n(&w.d[0]->fail_reads, 0, __ATOMIC_RELAXED);
    OK(mdraid_array_read(w.a, 0, got, BLOCK));
    CHECK(matches(got, BLOCK, 0, 6));
    world_free(&w, 1);
}

/* ---- freeing an array lets its members go at once, whatever other threads looked it up ---- */

static void test_free_releases_members(void) {
    g_test = "free";
    world w;
    world_new(&w, 19, 1);
    uint8_t got[BLOCK];
    write_blocks(w.a, 16, 10);
    for (int b = 0; b < 16; b++) OK(mdraid_array_read(w.a, (uint64_t)b * BLOCK, got, BLOCK));
    /* The reactor's threads completed that I/O: each looked the array up (and caches it).
     * Freed without a stop (as a crash leaves it): the members are no longer in use and
     * assemble again right away, with the reactor threads still running. */
    mdraid_array_free(w.a);
    OK(mdraid_array_assemble(w.m, 2, 0, &w.a));
    for (int b = 0; b < 16; b++) {
        OK(mdraid_array_read(w.a, (uint64_t)b * BLOCK, got, BLOCK));
        CHECK(matches(got, BLOCK, (uint64_t)b * BLOCK, 10));
    }
    world_free(&w, 1);
}

/* ---- power cut ---- */

#define CUT_BLOCKS 256

static void test_power_cut(unsigned seed) {
    g_test = "power_cut";
    world w;
    world_new(&w, seed, seed % 2);
    static uint8_t bufs[CUT_BLOCKS][BLOCK];
    int durable_gen[CUT_BLOCKS], later_gen[CUT_BLOCKS];
    /* Phase A: every block gets generation 1, then a flush: all of it durable. */
    waitgroup wg;
    wg_init(&wg);
    for (int b = 0; b < CUT_BLOCKS; b++) {
        fill(bufs[b], BLOCK, (uint64_t)b * BLOCK, 1);
        OK(submit_retry(w.a, MDRAID_OP_WRITE, (uint64_t)b * BLOCK, bufs[b], BLOCK, 0, &wg));
        durable_gen[b] = 1;
        later_gen[b] = 1;
    }
    wg_wait(&wg);
    CHECK(wg.errors == 0);
    OK(mdraid_array_flush(w.a));
    /* Phase B: FUA writes of generation 3 (durable once complete), plain writes of 2. */
    unsigned s = seed;
    static uint8_t b2[CUT_BLOCKS][BLOCK];
    for (int b = 0; b < CUT_BLOCKS; b += 2) {
        int fua = rand_r(&s) % 2;
        fill(b2[b], BLOCK, (uint64_t)b * BLOCK, fua ? 3 : 2);
        OK(submit_retry(w.a, MDRAID_OP_WRITE, (uint64_t)b * BLOCK, b2[b], BLOCK, fua ? MDRAID_IO_FUA : 0, &wg));
        later_gen[b] = fua ? 3 : 2;
        if (fua && b % 8 == 0) { /* wait for some FUA writes: these must survive */
            wg_wait(&wg);
            durable_gen[b] = 3;
        }
    }
    /* Cut with writes in flight: queued member I/O never happens, unflushed data is lost. */
    usleep(1000 * (seed % 3));
    reactor_cut(w.r);
    for (int i = 0; i < 2; i++) memdev_power_cut(w.d[i]);
    mdraid_array_free(w.a); /* no stop: nothing more written */
    for (int i = 0; i < 2; i++) mdraid_member_free(w.m[i]);
    reactor_stop(w.r);
    wg_destroy(&wg);
    /* Reboot: a new reactor, new members over the surviving bytes, assemble, resync. */
    w.r = reactor_start(2, seed + 1);
    w.incarnations = 2;
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "mem%d", i);
        w.m[i] = member_async(w.d[i], w.r, name);
    }
    MUST(mdraid_array_assemble(w.m, 2, MDRAID_ASSEMBLE_RUN, &w.a));
    mdraid_array_info info;
    OK(mdraid_array_get_info(w.a, &info));
    CHECK(info.in_sync == 2);
    if (info.needs_resync) {
        OK(mdraid_array_sync_start(w.a, MDRAID_SYNC_RESYNC));
        OK(mdraid_array_sync_wait(w.a));
    }
    uint8_t got[BLOCK];
    for (int b = 0; b < CUT_BLOCKS; b++) {
        OK(mdraid_array_read(w.a, (uint64_t)b * BLOCK, got, BLOCK));
        for (int sct = 0; sct < BLOCK / 512; sct++) {
            uint64_t off = (uint64_t)b * BLOCK + (uint64_t)sct * 512;
            int is_durable = matches(got + sct * 512, 512, off, durable_gen[b]);
            int is_later = matches(got + sct * 512, 512, off, later_gen[b]);
            /* a durable write is there (or the later one that overwrote it); nothing else */
            if (!(is_durable || (is_later && later_gen[b] >= durable_gen[b]))) {
                fprintf(stderr, "seed %u: block %d sector %d lost its flushed data (gen %d/%d)\n", seed, b,
                        sct, durable_gen[b], later_gen[b]);
                g_failures++;
                break;
            }
        }
    }
    OK(mdraid_array_sync_start(w.a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(w.a));
    mdraid_sync_status st;
    OK(mdraid_array_sync_status(w.a, &st));
    CHECK(st.last_valid && st.last_mismatch_cnt == 0); /* mirrors identical after the resync */
    world_free(&w, 1);
}

/* ---- async callbacks that complete inline (from inside the callback) ---- */

static int inline_read(void *ctx, uint64_t off, uint8_t *buf, size_t len, mdraid_io_token t) {
    return mdraid_member_io_complete(t, memdev_do_read(ctx, off, buf, len)) == MDRAID_OK ? 0 : EIO;
}
static int inline_write(void *ctx, uint64_t off, const uint8_t *buf, size_t len, uint32_t fl, mdraid_io_token t) {
    return mdraid_member_io_complete(t, memdev_do_write(ctx, off, buf, len, fl)) == MDRAID_OK ? 0 : EIO;
}
static int inline_flush(void *ctx, mdraid_io_token t) {
    return mdraid_member_io_complete(t, memdev_do_flush(ctx)) == MDRAID_OK ? 0 : EIO;
}

/* A chain of reads, each submitted from the last one's completion callback and each
 * completed inside its member callback. */
static mdraid_array *chain_a;
static long chain_left, chain_errors;
static uint8_t chain_buf[BLOCK];
static void chain_done(void *ud, mdraid_result r) {
    (void)ud;
    if (r != MDRAID_OK) chain_errors++;
    if (--chain_left > 0 &&
        mdraid_array_submit(chain_a, MDRAID_OP_READ, (uint64_t)(chain_left % 64) * BLOCK, chain_buf, BLOCK, 0,
                            chain_done, NULL) != MDRAID_OK)
        chain_errors++;
}

static void test_inline_completion(void) {
    g_test = "inline";
    memdev *d[2];
    mdraid_member *m[2];
    for (int i = 0; i < 2; i++) {
        d[i] = memdev_new(16 * MIB);
        mdraid_member_callbacks cb = {d[i], d[i]->size, 512, MDRAID_CALLBACK_ASYNC, inline_read, inline_write,
                                      inline_flush, NULL, mark_destroyed};
        MUST(mdraid_member_new(&cb, i ? "inline1" : "inline0", &m[i]));
    }
    mdraid_array *a;
    MUST(mdraid_array_create(NULL, m, 2, &a)); /* a resync is owed: no assume-clean */
    /* different bytes on the mirrors: the resync must copy the first over the second */
    memset(d[1]->data + 8 * MIB, 0x77, 4 * MIB);
    /* a whole resync, thousands of member I/Os, each completed inside its callback: this
     * must run in a loop, not as a recursion as deep as the chain */
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_RESYNC));
    OK(mdraid_array_sync_wait(a));
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.needs_resync == 0);
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(a));
    mdraid_sync_status s;
    OK(mdraid_array_sync_status(a, &s));
    CHECK(s.last_valid && s.last_mismatch_cnt == 0);
    uint8_t buf[BLOCK], got[BLOCK];
    for (int b = 0; b < 64; b++) {
        fill(buf, BLOCK, (uint64_t)b * BLOCK, 8);
        OK(mdraid_array_write(a, (uint64_t)b * BLOCK, buf, BLOCK, b % 3 == 0 ? MDRAID_IO_FUA : 0));
        waitgroup wg;
        wg_init(&wg);
        OK(submit_retry(a, MDRAID_OP_READ, (uint64_t)b * BLOCK, got, BLOCK, 0, &wg));
        CHECK(wg.pending == 0); /* completed before submit returned */
        wg_destroy(&wg);
        CHECK(matches(got, BLOCK, (uint64_t)b * BLOCK, 8));
    }
    /* 100,000 reads chained through inline completions (each a direct read: one member read
     * started from the submit): done in a loop before the first submit returns, not as a
     * recursion as deep as the chain. */
    chain_a = a;
    chain_left = 100000;
    OK(mdraid_array_submit(a, MDRAID_OP_READ, 0, chain_buf, BLOCK, 0, chain_done, NULL));
    CHECK(chain_left == 0 && chain_errors == 0);
    CHECK(matches(chain_buf, BLOCK, BLOCK, 8)); /* the last read: block 1 */
    OK(mdraid_array_stop(a));
    mdraid_array_free(a);
    for (int i = 0; i < 2; i++) {
        mdraid_member_free(m[i]);
        CHECK(d[i]->destroyed == 1);
        memdev_free(d[i]);
    }
}

/* ---- an array bound to one thread (mdraid_array_bind_thread) ---- */

/* A reactor of the test's own: member callbacks queue the I/O, and whoever calls q_drain
 * carries it out and completes it on its own thread (a helper during setup, then the thread
 * the array is bound to). */
typedef struct qop { memdev *d; int kind; uint64_t off; uint8_t *buf; size_t len; uint32_t fl; mdraid_io_token t; } qop;
static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static qop q_ring[1024];
static unsigned q_head, q_tail;
static int q_push(qop o) {
    pthread_mutex_lock(&q_mu);
    int full = q_tail - q_head == 1024;
    if (!full) q_ring[q_tail++ % 1024] = o;
    pthread_mutex_unlock(&q_mu);
    return full ? EAGAIN : 0;
}
static int q_pop(qop *o) {
    pthread_mutex_lock(&q_mu);
    int have = q_head != q_tail;
    if (have) *o = q_ring[q_head++ % 1024];
    pthread_mutex_unlock(&q_mu);
    return have;
}
static int q_serve(qop *o) {
    switch (o->kind) {
    case 0: return memdev_do_read(o->d, o->off, o->buf, o->len);
    case 1: return memdev_do_write(o->d, o->off, o->buf, o->len, o->fl);
    default: return memdev_do_flush(o->d);
    }
}
/* Completes everything queued (and what that queues); returns how many. */
static int q_drain(void) {
    int n = 0;
    qop o;
    while (q_pop(&o)) {
        OK(mdraid_member_io_complete(o.t, q_serve(&o)));
        n++;
    }
    return n;
}
static int q_read(void *c, uint64_t off, uint8_t *b, size_t l, mdraid_io_token t) {
    memdev *d = c;
    if (__atomic_load_n(&d->refuse_reads, __ATOMIC_RELAXED)) {
        d->refused++;
        return EAGAIN; /* not started */
    }
    return q_push((qop){c, 0, off, b, l, 0, t});
}
static int q_write(void *c, uint64_t off, const uint8_t *b, size_t l, uint32_t fl, mdraid_io_token t) {
    return q_push((qop){c, 1, off, (uint8_t *)b, l, fl, t});
}
static int q_flush(void *c, mdraid_io_token t) { return q_push((qop){c, 2, 0, NULL, 0, 0, t}); }

static int q_helper_quit;
static void *q_helper(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&q_helper_quit, __ATOMIC_ACQUIRE)) {
        if (!q_drain()) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* An array over two q-members, set up with the helper completing its I/O, which is left to
 * the caller's q_drain afterwards. */
static mdraid_array *q_array(memdev *d[2], mdraid_member *m[2], uint32_t gen) {
    for (int i = 0; i < 2; i++) {
        d[i] = memdev_new(16 * MIB);
        mdraid_member_callbacks cb = {d[i], d[i]->size, 512, MDRAID_CALLBACK_ASYNC, q_read, q_write,
                                      q_flush, NULL, mark_destroyed};
        MUST(mdraid_member_new(&cb, i ? "q1" : "q0", &m[i]));
    }
    pthread_t helper;
    __atomic_store_n(&q_helper_quit, 0, __ATOMIC_RELEASE);
    pthread_create(&helper, NULL, q_helper, NULL);
    mdraid_create_options o;
    MUST(mdraid_create_options_init(&o));
    o.bitmap = MDRAID_BITMAP_INTERNAL;
    o.flags = MDRAID_CREATE_ASSUME_CLEAN;
    mdraid_array *a;
    MUST(mdraid_array_create(&o, m, 2, &a));
    write_blocks(a, 32, gen);
    OK(mdraid_array_flush(a));
    __atomic_store_n(&q_helper_quit, 1, __ATOMIC_RELEASE);
    pthread_join(helper, NULL);
    return a;
}

/* Frees the array, then its two members (each destroyed once) and their devices. */
static void free_all(mdraid_array *a, memdev *d[2], mdraid_member *m[2]) {
    mdraid_array_free(a);
    for (int i = 0; i < 2; i++) {
        mdraid_member_free(m[i]);
        CHECK(d[i]->destroyed == 1);
        memdev_free(d[i]);
    }
}

/* ---- a read callback that does not start its I/O: the read goes on from the other mirror ---- */

static void test_refused_start(void) {
    g_test = "refused";
    memdev *d[2];
    mdraid_member *m[2];
    mdraid_array *a = q_array(d, m, 9);
    d[1]->refuse_reads = 1;
    unsigned long before = d[0]->reads;
    /* Reads two at a time, completed only when both are out: md's balancing sends the second
     * to the less busy mirror 1, which refuses it; it is served by mirror 0. */
    uint8_t got[2][BLOCK];
    for (int i = 0; i < 32; i++) {
        int b[2] = {(i * 13) % 32, (i * 7 + 3) % 32};
        waitgroup wg;
        wg_init(&wg);
        for (int k = 0; k < 2; k++) {
            memset(got[k], 0, BLOCK);
            wg_add(&wg);
            OK(mdraid_array_submit(a, MDRAID_OP_READ, (uint64_t)b[k] * BLOCK, got[k], BLOCK, 0, wg_done, &wg));
        }
        q_drain();
        CHECK(wg.pending == 0 && wg.errors == 0);
        wg_destroy(&wg);
        for (int k = 0; k < 2; k++) CHECK(matches(got[k], BLOCK, (uint64_t)b[k] * BLOCK, 9));
    }
    /* (Mirror 0 also serves the repairs of the reads mirror 1 refused.) */
    CHECK(d[1]->refused > 0);
    CHECK(d[0]->reads - before >= 64);
    free_all(a, d, m);
}

/* What another thread gets while the array is bound to the test's thread. */
typedef struct elsewhere {
    mdraid_array *a;
    mdraid_io_token t; /* an outstanding I/O to try to complete, when t.owner != 0 */
    mdraid_result info, submit, complete, unbind, bind, readr;
    int freed_ignored;
} elsewhere;
static void *elsewhere_main(void *arg) {
    elsewhere *e = arg;
    mdraid_array_info info;
    uint8_t buf[BLOCK];
    e->info = mdraid_array_get_info(e->a, &info);
    e->submit = mdraid_array_submit(e->a, MDRAID_OP_READ, 0, buf, BLOCK, 0, wg_done, NULL);
    e->readr = mdraid_array_read(e->a, 0, buf, BLOCK);
    e->complete = e->t.owner ? mdraid_member_io_complete(e->t, 0) : MDRAID_OK;
    e->unbind = mdraid_array_unbind_thread(e->a);
    e->bind = mdraid_array_bind_thread(e->a);
    mdraid_array_free(e->a); /* ignored: the handle stays valid */
    e->freed_ignored = mdraid_array_get_info(e->a, &info) == MDRAID_WRONG_THREAD;
    return NULL;
}

/* A thread that binds the array, submits a read, completes it and ends, bound. */
static void *binder_main(void *arg) {
    mdraid_array *a = arg;
    uint8_t buf[BLOCK];
    OK(mdraid_array_bind_thread(a));
    waitgroup wg;
    wg_init(&wg);
    wg_add(&wg);
    OK(mdraid_array_submit(a, MDRAID_OP_READ, 3 * BLOCK, buf, BLOCK, 0, wg_done, &wg));
    q_drain();
    CHECK(wg.pending == 0 && wg.errors == 0);
    CHECK(matches(buf, BLOCK, 3 * BLOCK, 11));
    wg_destroy(&wg);
    return NULL;
}

static void test_bound(void) {
    g_test = "bound";
    memdev *d[2];
    mdraid_member *m[2];
    mdraid_array *a = q_array(d, m, 11);
    uint8_t buf[BLOCK], got[BLOCK];
    pthread_t helper;

    /* Bound while I/O is in flight: refused. */
    waitgroup wg;
    wg_init(&wg);
    wg_add(&wg);
    OK(mdraid_array_submit(a, MDRAID_OP_READ, 0, got, BLOCK, 0, wg_done, &wg));
    EXPECT(mdraid_array_bind_thread(a), MDRAID_BUSY);
    q_drain();
    CHECK(wg.pending == 0);
    OK(mdraid_array_bind_thread(a));
    OK(mdraid_array_bind_thread(a)); /* again, from the same thread: fine */
    EXPECT(mdraid_array_bind_thread(NULL), MDRAID_NULL_PARAMETER);
    EXPECT(mdraid_array_unbind_thread(NULL), MDRAID_NULL_PARAMETER);

    /* Reads and writes from this thread, completed here, each read checked. */
    for (int round = 0; round < 4; round++) {
        uint8_t rbuf[8][BLOCK];
        for (int i = 0; i < 8; i++) {
            int b = (i * 5 + round) % 32;
            wg_add(&wg);
            OK(mdraid_array_submit(a, MDRAID_OP_READ, (uint64_t)b * BLOCK, rbuf[i], BLOCK, 0, wg_done, &wg));
        }
        fill(buf, BLOCK, 40 * BLOCK, 12);
        wg_add(&wg);
        OK(mdraid_array_submit(a, MDRAID_OP_WRITE, 40 * BLOCK, buf, BLOCK, 0, wg_done, &wg));
        CHECK(q_drain() >= 9);
        CHECK(wg.pending == 0 && wg.errors == 0);
        for (int i = 0; i < 8; i++) CHECK(matches(rbuf[i], BLOCK, (uint64_t)((i * 5 + round) % 32) * BLOCK, 11));
    }
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.in_sync == 2);
    /* Calls that would wait for the async members' I/O: refused on this thread, before
     * anything is submitted. */
    EXPECT(mdraid_array_read(a, 0, got, BLOCK), MDRAID_BUSY);
    EXPECT(mdraid_array_flush(a), MDRAID_BUSY);
    EXPECT(mdraid_array_stop(a), MDRAID_BUSY);
    CHECK(q_drain() == 0);

    /* Another thread: every call refused with MDRAID_WRONG_THREAD, including the completion
     * of an I/O that is out (which stays out: completed here afterwards). */
    wg_add(&wg);
    OK(mdraid_array_submit(a, MDRAID_OP_READ, 7 * BLOCK, got, BLOCK, 0, wg_done, &wg));
    qop pending;
    CHECK(q_pop(&pending));
    elsewhere e = {a, pending.t, 0, 0, 0, 0, 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, elsewhere_main, &e);
    pthread_join(th, NULL);
    CHECK(e.info == MDRAID_WRONG_THREAD);
    CHECK(e.submit == MDRAID_WRONG_THREAD);
    CHECK(e.readr == MDRAID_WRONG_THREAD);
    CHECK(e.complete == MDRAID_WRONG_THREAD);
    CHECK(e.unbind == MDRAID_WRONG_THREAD);
    CHECK(e.bind == MDRAID_WRONG_THREAD);
    CHECK(e.freed_ignored);
    CHECK(wg.pending == 1);
    OK(mdraid_member_io_complete(pending.t, q_serve(&pending)));
    CHECK(wg.pending == 0 && wg.errors == 0);
    CHECK(matches(got, BLOCK, 7 * BLOCK, 11));

    /* Unbound: other threads may call again (a helper serves the blocking calls' I/O). */
    OK(mdraid_array_unbind_thread(a));
    OK(mdraid_array_unbind_thread(a)); /* not bound: fine */
    /* A thread that ends bound gives the array back. */
    pthread_create(&th, NULL, binder_main, a);
    pthread_join(th, NULL);
    __atomic_store_n(&q_helper_quit, 0, __ATOMIC_RELEASE);
    pthread_create(&helper, NULL, q_helper, NULL);
    OK(mdraid_array_get_info(a, &info));
    OK(mdraid_array_read(a, 40 * BLOCK, got, BLOCK));
    fill(buf, BLOCK, 40 * BLOCK, 12);
    CHECK(memcmp(got, buf, BLOCK) == 0);
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_CHECK));
    OK(mdraid_array_sync_wait(a));
    mdraid_sync_status st;
    OK(mdraid_array_sync_status(a, &st));
    CHECK(st.last_valid && st.last_mismatch_cnt == 0);
    __atomic_store_n(&q_helper_quit, 1, __ATOMIC_RELEASE);
    pthread_join(helper, NULL);
    /* Freed while bound, from its own thread (without a stop, as a crash): the handle goes
     * and the members are let go (their destructors run at their own free below). */
    OK(mdraid_array_bind_thread(a));
    wg_destroy(&wg);
    free_all(a, d, m);
    EXPECT(mdraid_array_get_info(a, &info), MDRAID_INVALID_HANDLE);
}

/* Bound over synchronous members: the blocking calls work as before (nothing to wait for but
 * the members themselves, which complete inline), a sync action included. */
static void test_bound_sync(void) {
    g_test = "bound-sync";
    memdev *d[2];
    mdraid_member *m[2];
    for (int i = 0; i < 2; i++) {
        d[i] = memdev_new(8 * MIB);
        m[i] = member_sync(d[i], i ? "s1" : "s0");
    }
    mdraid_array *a;
    MUST(mdraid_array_create(NULL, m, 2, &a)); /* a resync is owed */
    OK(mdraid_array_bind_thread(a));
    uint8_t buf[BLOCK], got[BLOCK];
    for (int b = 0; b < 16; b++) {
        fill(buf, BLOCK, (uint64_t)b * BLOCK, 13);
        OK(mdraid_array_write(a, (uint64_t)b * BLOCK, buf, BLOCK, 0));
        OK(mdraid_array_read(a, (uint64_t)b * BLOCK, got, BLOCK));
        CHECK(matches(got, BLOCK, (uint64_t)b * BLOCK, 13));
    }
    OK(mdraid_array_flush(a));
    OK(mdraid_array_sync_start(a, MDRAID_SYNC_RESYNC));
    OK(mdraid_array_sync_wait(a));
    mdraid_array_info info;
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.needs_resync == 0);
    OK(mdraid_array_stop(a));
    OK(mdraid_array_get_info(a, &info));
    CHECK(info.stopped == 1);
    free_all(a, d, m);
}

int main(int argc, char **argv) {
    int cuts = argc > 1 ? atoi(argv[1]) : 6;
    test_concurrent();
    test_tick();
    test_eio();
    test_free_releases_members();
    test_refused_start();
    test_bound();
    test_bound_sync();
    test_inline_completion();
    for (int i = 0; i < cuts; i++) test_power_cut(1000 + (unsigned)i);
    return finish();
}
