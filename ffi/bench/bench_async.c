/* Throughput of the async callback path: 4 KiB random reads at queue depth 32 from a RAID1
 * of two in-memory members whose async callbacks queue the I/O, served by one reactor thread
 * that also submits; against the same loop calling the members directly (round robin, no
 * array). Prints IOPS of both and their ratio (median of alternating rounds), and the same for
 * the array bound to the reactor thread (mdraid_array_bind_thread: no lock on its I/O path).
 *
 * usage: bench_async [reads-per-round] [rounds]       (see ffi/bench/run.sh) */
#define _GNU_SOURCE
#include <mdraid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEV (64u << 20)
#define BS 4096
#define QD 32

typedef struct op { unsigned char *mem; uint64_t off; unsigned char *buf; size_t len; int kind;
                    mdraid_io_token t; int slot; } op;

/* The reactor's queue (a FIFO ring). A lock, because during setup a helper thread serves it. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static op ring[4096];
static unsigned head, tail;
static int helper_quit;

static void push(op o) {
    pthread_mutex_lock(&mu);
    ring[tail++ % 4096] = o;
    pthread_mutex_unlock(&mu);
}
static int pop(op *o) {
    pthread_mutex_lock(&mu);
    int have = head != tail;
    if (have) *o = ring[head++ % 4096];
    pthread_mutex_unlock(&mu);
    return have;
}
static int nocopy;
static void serve(op *o) {
    if (nocopy && o->kind == 0) return;
    if (o->kind == 0) memcpy(o->buf, o->mem + o->off, o->len);
    else if (o->kind == 1) memcpy(o->mem + o->off, o->buf, o->len);
}

static int cb_read(void *c, uint64_t off, uint8_t *b, size_t l, mdraid_io_token t) {
    push((op){c, off, b, l, 0, t, -1});
    return 0;
}
static int cb_write(void *c, uint64_t off, const uint8_t *b, size_t l, uint32_t f, mdraid_io_token t) {
    (void)f;
    push((op){c, off, (unsigned char *)b, l, 1, t, -1});
    return 0;
}
static int cb_flush(void *c, mdraid_io_token t) {
    push((op){c, 0, NULL, 0, 2, t, -1});
    return 0;
}

static void *helper(void *arg) {
    (void)arg;
    op o;
    while (!__atomic_load_n(&helper_quit, __ATOMIC_ACQUIRE)) {
        if (pop(&o)) {
            serve(&o);
            mdraid_member_io_complete(o.t, 0);
        } else {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_off(uint64_t blocks) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (rng % blocks) * BS;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static mdraid_array *A;
static unsigned char *mem[2];
static unsigned char bufs[QD][BS] __attribute__((aligned(4096)));
static long submitted, completed, target, errors;
static uint64_t blocks;
static unsigned rr;

static void array_done(void *ud, mdraid_result r);
static void array_submit(int slot) {
    submitted++;
    if (mdraid_array_submit(A, MDRAID_OP_READ, next_off(blocks), bufs[slot], BS, 0, array_done,
                            (void *)(intptr_t)slot) != MDRAID_OK)
        errors++;
}
static void array_done(void *ud, mdraid_result r) {
    if (r != MDRAID_OK) errors++;
    completed++;
    if (submitted < target) array_submit((int)(intptr_t)ud);
}

static void direct_submit(int slot) {
    submitted++;
    /* the same work without the array: pick a mirror, queue the read */
    push((op){mem[rr++ & 1], next_off(blocks), bufs[slot], BS, 0, {0, 0}, slot});
}
static void direct_done(int slot) {
    completed++;
    if (submitted < target) direct_submit(slot);
}

static double round_array(long n) {
    submitted = completed = 0;
    target = n;
    double t0 = now_s();
    for (int s = 0; s < QD; s++) array_submit(s);
    op o;
    while (completed < target) {
        if (!pop(&o)) { errors++; break; }
        serve(&o);
        mdraid_member_io_complete(o.t, 0); /* runs array_done -> the next submit */
    }
    return n / (now_s() - t0);
}

static double round_direct(long n) {
    submitted = completed = 0;
    target = n;
    double t0 = now_s();
    for (int s = 0; s < QD; s++) direct_submit(s);
    op o;
    while (completed < target) {
        if (!pop(&o)) { errors++; break; }
        serve(&o);
        direct_done(o.slot);
    }
    return n / (now_s() - t0);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    mdraid_member *m[2];
    for (int i = 0; i < 2; i++) {
        mem[i] = calloc(1, DEV);
        mdraid_member_callbacks cb = {mem[i], DEV, 512, MDRAID_CALLBACK_ASYNC, cb_read, cb_write, cb_flush, NULL, NULL};
        mdraid_member_new(&cb, i ? "mem1" : "mem0", &m[i]);
    }
    pthread_t th;
    pthread_create(&th, NULL, helper, NULL); /* serves the blocking setup's I/O */
    mdraid_create_options o;
    mdraid_create_options_init(&o);
    o.bitmap = MDRAID_BITMAP_INTERNAL;
    o.flags = MDRAID_CREATE_ASSUME_CLEAN;
    if (mdraid_array_create(&o, m, 2, &A) != MDRAID_OK) {
        fprintf(stderr, "create: %s\n", mdraid_last_error());
        return 1;
    }
    static unsigned char w[1 << 20];
    memset(w, 0x5a, sizeof w);
    for (uint64_t off = 0; off < 16u << 20; off += sizeof w) mdraid_array_write(A, off, w, sizeof w, 0);
    mdraid_array_flush(A);
    __atomic_store_n(&helper_quit, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    mdraid_array_info info;
    mdraid_array_get_info(A, &info);
    blocks = info.size / BS;
    nocopy = getenv("BENCH_NOCOPY") != NULL; /* the paths alone, without the data copies */
    double ra[32], rb[32], rd[32], ratio[32], ratio_b[32];
    if (rounds > 32) rounds = 32;
    round_array(n / 4); /* warm-up */
    round_direct(n / 4);
    for (int r = 0; r < rounds; r++) {
        ra[r] = round_array(n);
        /* the same array bound to this thread (mdraid_array_bind_thread): no lock */
        if (mdraid_array_bind_thread(A) != MDRAID_OK) errors++;
        rb[r] = round_array(n);
        if (mdraid_array_unbind_thread(A) != MDRAID_OK) errors++;
        rd[r] = round_direct(n);
        ratio[r] = ra[r] / rd[r];
        ratio_b[r] = rb[r] / rd[r];
    }
    qsort(ra, rounds, sizeof(double), cmp);
    qsort(rb, rounds, sizeof(double), cmp);
    qsort(rd, rounds, sizeof(double), cmp);
    qsort(ratio, rounds, sizeof(double), cmp);
    qsort(ratio_b, rounds, sizeof(double), cmp);
    printf("{\"async_callback_randread_qd32_vs_direct\": %.3f, \"bound_vs_direct\": %.3f, \"array_iops\": %.0f, "
           "\"bound_iops\": %.0f, \"direct_iops\": %.0f, \"rounds\": %d, \"reads_per_round\": %ld, \"errors\": %ld}\n",
           ratio[rounds / 2], ratio_b[rounds / 2], ra[rounds / 2], rb[rounds / 2], rd[rounds / 2], rounds, n, errors);
    mdraid_array_free(A);
    mdraid_member_free(m[0]);
    mdraid_member_free(m[1]);
    free(mem[0]);
    free(mem[1]);
    return errors != 0;
}
