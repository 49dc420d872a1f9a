/* Shared helpers of the C tests: checks, an in-memory member device with a volatile cache
 * (power cuts drop unflushed writes), EIO injection, and a reactor that completes async
 * member I/O from its own threads in random order. */
#ifndef MDRAID_TEST_COMMON_H
#define MDRAID_TEST_COMMON_H

#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wunused-function"
#include <mdraid.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_failures;
static const char *g_test = "";

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d [%s]: %s (last error: %s)\n", \
    __FILE__, __LINE__, g_test, #cond, mdraid_last_error()); g_failures++; } } while (0)
/* A call must return `want`. */
#define EXPECT(call, want) do { mdraid_result r_ = (call); if (r_ != (want)) { \
    fprintf(stderr, "FAIL %s:%d [%s]: %s returned %d (%s), want %s (last error: %s)\n", \
        __FILE__, __LINE__, g_test, #call, (int)r_, mdraid_result_text(r_), #want, mdraid_last_error()); \
    g_failures++; } } while (0)
#define OK(call) EXPECT(call, MDRAID_OK)
/* A call that must succeed for the test to go on. */
#define MUST(call) do { mdraid_result r_ = (call); if (r_ != MDRAID_OK) { \
    fprintf(stderr, "FATAL %s:%d [%s]: %s returned %d (%s): %s\n", __FILE__, __LINE__, g_test, \
        #call, (int)r_, mdraid_result_text(r_), mdraid_last_error()); exit(1); } } while (0)

__attribute__((unused)) static int finish(void) {
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}

/* ---- data patterns ---- */

/* Fills `len` bytes for array byte `off` with a pattern of generation `gen`. */
static void fill(uint8_t *b, size_t len, uint64_t off, uint32_t gen) {
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = ((off + i) / 8) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)gen << 56 | gen);
        memcpy(b + i, &v, len - i < 8 ? len - i : 8);
    }
}

static int matches(const uint8_t *b, size_t len, uint64_t off, uint32_t gen) {
    uint8_t *want = malloc(len);
    fill(want, len, off, gen);
    int same = memcmp(b, want, len) == 0;
    free(want);
    return same;
}

/* ---- the in-memory device ---- */

typedef struct memdev {
    pthread_mutex_t mu;
    uint64_t size;
    uint8_t *data;    /* what reads see */
    uint8_t *durable; /* what survives a power cut */
    uint8_t *dirty;   /* per 512-byte sector: written since the last flush */
    int fail_reads;   /* inject EIO on reads (and `fail_writes` on writes) */
    int fail_writes;
    int refuse_reads; /* async mode: the read callback does not start the I/O (EAGAIN) */
    unsigned long refused;
    int destroyed;
    unsigned long reads, writes, flushes, fuas, preflushes;
    struct reactor *reactor; /* async mode: where I/O goes */
} memdev;

static memdev *memdev_new(uint64_t size) {
    memdev *d = calloc(1, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    d->size = size;
    d->data = calloc(1, size);
    d->durable = calloc(1, size);
    d->dirty = calloc(1, size / 512);
    return d;
}

static void memdev_free(memdev *d) {
    if (!d) return;
    pthread_mutex_destroy(&d->mu);
    free(d->data);
    free(d->durable);
    free(d->dirty);
    free(d);
}

static void memdev_flush_locked(memdev *d) {
    for (uint64_t s = 0; s < d->size / 512; s++) {
        if (d->dirty[s]) {
            memcpy(d->durable + s * 512, d->data + s * 512, 512);
            d->dirty[s] = 0;
        }
    }
}

static int memdev_do_read(memdev *d, uint64_t off, uint8_t *buf, size_t len) {
    if (off + len > d->size || off + len < off) return -EINVAL;
    pthread_mutex_lock(&d->mu);
    int rc = 0;
    if (__atomic_load_n(&d->fail_reads, __ATOMIC_RELAXED)) {
        rc = EIO;
        memset(buf, 0xEE, len); /* garbage: must never reach the caller as data */
    } else {
        memcpy(buf, d->data + off, len);
    }
    d->reads++;
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int memdev_do_write(memdev *d, uint64_t off, const uint8_t *buf, size_t len, uint32_t flags) {
    if (off + len > d->size || off + len < off || off % 512 || len % 512) return -EINVAL;
    pthread_mutex_lock(&d->mu);
    int rc = 0;
    if (flags & MDRAID_IO_PREFLUSH) {
        memdev_flush_locked(d);
        d->preflushes++;
    }
    if (__atomic_load_n(&d->fail_writes, __ATOMIC_RELAXED)) {
        rc = EIO;
    } else {
        memcpy(d->data + off, buf, len);
        if (flags & MDRAID_IO_FUA) {
            memcpy(d->durable + off, buf, len);
            memset(d->dirty + off / 512, 0, len / 512);
            d->fuas++;
        } else {
            memset(d->dirty + off / 512, 1, len / 512);
        }
    }
    d->writes++;
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int memdev_do_flush(memdev *d) {
    pthread_mutex_lock(&d->mu);
    memdev_flush_locked(d);
    d->flushes++;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* The power cut: every write not yet flushed (nor FUA) is lost. */
static void memdev_power_cut(memdev *d) {
    pthread_mutex_lock(&d->mu);
    memcpy(d->data, d->durable, d->size);
    memset(d->dirty, 0, d->size / 512);
    pthread_mutex_unlock(&d->mu);
}

/* ---- synchronous callbacks ---- */

static int sync_read(void *ctx, uint64_t off, uint8_t *buf, size_t len, mdraid_io_token t) {
    (void)t;
    return memdev_do_read(ctx, off, buf, len);
}
static int sync_write(void *ctx, uint64_t off, const uint8_t *buf, size_t len, uint32_t fl, mdraid_io_token t) {
    (void)t;
    return memdev_do_write(ctx, off, buf, len, fl);
}
static int sync_flush(void *ctx, mdraid_io_token t) {
    (void)t;
    return memdev_do_flush(ctx);
}
static void mark_destroyed(void *ctx) { ((memdev *)ctx)->destroyed++; }

__attribute__((unused)) static mdraid_member *member_sync(memdev *d, const char *name) {
    mdraid_member_callbacks cb = {0};
    cb.ctx = d;
    cb.size = d->size;
    cb.mode = MDRAID_CALLBACK_SYNC;
    cb.read = sync_read;
    cb.write = sync_write;
    cb.flush = sync_flush;
    cb.destroy = mark_destroyed;
    mdraid_member *m = NULL;
    MUST(mdraid_member_new(&cb, name, &m));
    return m;
}

/* ---- the reactor: async I/O completed later, from its own threads, in random order ---- */

enum { OP_READ, OP_WRITE, OP_FLUSH };

typedef struct op {
    memdev *d;
    int kind;
    uint64_t off;
    uint8_t *buf;
    size_t len;
    uint32_t flags;
    mdraid_io_token token;
} op;

typedef struct reactor {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    op *q;
    size_t n, cap;
    int stop;
    int cut;       /* power cut: queued I/O is dropped, never completed */
    int nthreads;
    int active;    /* ops being carried out right now */
    pthread_t th[8];
    unsigned seed;
    unsigned long completed, complete_errors;
} reactor;

static void *reactor_main(void *arg) {
    reactor *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->n == 0 && !r->stop) pthread_cond_wait(&r->cv, &r->mu);
        if (r->n == 0 && r->stop) break;
        size_t k = (size_t)rand_r(&r->seed) % r->n;
        op o = r->q[k];
        r->q[k] = r->q[--r->n];
        if (r->cut) continue; /* dropped */
        r->active++;
        pthread_mutex_unlock(&r->mu);
        int rc = 0;
        switch (o.kind) {
        case OP_READ: rc = memdev_do_read(o.d, o.off, o.buf, o.len); break;
        case OP_WRITE: rc = memdev_do_write(o.d, o.off, o.buf, o.len, o.flags); break;
        default: rc = memdev_do_flush(o.d); break;
        }
        mdraid_result cr = mdraid_member_io_complete(o.token, rc);
        pthread_mutex_lock(&r->mu);
        r->active--;
        pthread_cond_broadcast(&r->cv);
        r->completed++;
        if (cr != MDRAID_OK) r->complete_errors++;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static reactor *reactor_start(int nthreads, unsigned seed) {
    reactor *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->seed = seed;
    r->nthreads = nthreads;
    for (int i = 0; i < nthreads; i++) pthread_create(&r->th[i], NULL, reactor_main, r);
    return r;
}

static void reactor_stop(reactor *r) {
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nthreads; i++) pthread_join(r->th[i], NULL);
    free(r->q);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Drops everything queued and everything queued later; returns when no I/O is running. */
static void reactor_cut(reactor *r) {
    pthread_mutex_lock(&r->mu);
    r->cut = 1;
    r->n = 0;
    while (r->active > 0) pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static int reactor_push(reactor *r, op o) {
    pthread_mutex_lock(&r->mu);
    if (r->cut) { /* the machine is "dead": accept and never complete */
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->q = realloc(r->q, r->cap * sizeof *r->q);
    }
    r->q[r->n++] = o;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static int async_read(void *ctx, uint64_t off, uint8_t *buf, size_t len, mdraid_io_token t) {
    memdev *d = ctx;
    if (__atomic_load_n(&d->refuse_reads, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&d->refused, 1, __ATOMIC_RELAXED);
        return EAGAIN;
    }
    return reactor_push(d->reactor, (op){d, OP_READ, off, buf, len, 0, t});
}
static int async_write(void *ctx, uint64_t off, const uint8_t *buf, size_t len, uint32_t fl, mdraid_io_token t) {
    memdev *d = ctx;
    return reactor_push(d->reactor, (op){d, OP_WRITE, off, (uint8_t *)buf, len, fl, t});
}
static int async_flush(void *ctx, mdraid_io_token t) {
    memdev *d = ctx;
    return reactor_push(d->reactor, (op){d, OP_FLUSH, 0, NULL, 0, 0, t});
}

__attribute__((unused)) static mdraid_member *member_async(memdev *d, reactor *r, const char *name) {
    d->reactor = r;
    mdraid_member_callbacks cb = {0};
    cb.ctx = d;
    cb.size = d->size;
    cb.mode = MDRAID_CALLBACK_ASYNC;
    cb.read = async_read;
    cb.write = async_write;
    cb.flush = async_flush;
    cb.destroy = mark_destroyed;
    mdraid_member *m = NULL;
    MUST(mdraid_member_new(&cb, name, &m));
    return m;
}

/* A completion counter for mdraid_array_submit. */
typedef struct waitgroup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long pending;
    long errors;
} waitgroup;

static void wg_init(waitgroup *w) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->pending = 0;
    w->errors = 0;
}
static void wg_add(waitgroup *w) {
    pthread_mutex_lock(&w->mu);
    w->pending++;
    pthread_mutex_unlock(&w->mu);
}
static void wg_done(void *ud, mdraid_result res) {
    waitgroup *w = ud;
    pthread_mutex_lock(&w->mu);
    if (res != MDRAID_OK) w->errors++;
    if (--w->pending == 0) pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
static void wg_wait(waitgroup *w) {
    pthread_mutex_lock(&w->mu);
    while (w->pending > 0) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}
static void wg_destroy(waitgroup *w) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* mdraid_array_submit, retried while the request pool is full (back-pressure). */
__attribute__((unused)) static mdraid_result submit_retry(mdraid_array *a, uint32_t op, uint64_t off, uint8_t *buf,
                                                         size_t len, uint32_t flags, waitgroup *wg) {
    wg_add(wg);
    for (;;) {
        mdraid_result r = mdraid_array_submit(a, op, off, buf, len, flags, wg_done, wg);
        if (r != MDRAID_BUSY) {
            if (r != MDRAID_OK) wg_done(wg, MDRAID_OK);
            return r;
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

#endif
