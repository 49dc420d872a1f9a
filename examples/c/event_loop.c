/* An event loop driving a RAID1 with asynchronous member callbacks over in-memory devices.
 *
 * The member callbacks only queue the I/O; the loop thread carries it out and reports it
 * with mdraid_member_io_complete(), which runs the array's work and calls the requests'
 * completion callbacks on the loop thread. Blocking calls (create, stop) run on the main
 * thread while the loop serves their I/O; the loop also ticks the array's timers.
 *
 * cc event_loop.c $(pkg-config --cflags --libs mdraid) -lpthread -o event_loop */
#define _GNU_SOURCE
#include <mdraid.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEV_SIZE (16u << 20)
#define N 64
#define BS 4096

struct op { int kind; unsigned char *mem; uint64_t off; unsigned char *buf; size_t len; mdraid_io_token t; };

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct op q[1024];
    int n, quit, done, bad;
    mdraid_array *array;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int queue(int kind, void *ctx, uint64_t off, const uint8_t *buf, size_t len, mdraid_io_token t) {
    pthread_mutex_lock(&L.mu);
    int full = L.n == 1024;
    if (!full) L.q[L.n++] = (struct op){kind, ctx, off, (unsigned char *)buf, len, t};
    pthread_cond_signal(&L.cv);
    pthread_mutex_unlock(&L.mu);
    return full ? 11 /* EAGAIN: not started */ : 0;
}
static int on_read(void *c, uint64_t o, uint8_t *b, size_t l, mdraid_io_token t) { return queue(0, c, o, b, l, t); }
static int on_write(void *c, uint64_t o, const uint8_t *b, size_t l, uint32_t f, mdraid_io_token t) {
    (void)f; /* memory is always durable: FUA and preflush need nothing */
    return queue(1, c, o, b, l, t);
}
static int on_flush(void *c, mdraid_io_token t) { return queue(2, c, 0, NULL, 0, t); }
static void on_destroy(void *c) { free(c); }

static void *loop(void *arg) {
    (void)arg;
    pthread_mutex_lock(&L.mu);
    while (!L.quit || L.n) {
        if (L.n == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
            if (pthread_cond_timedwait(&L.cv, &L.mu, &ts) != 0 && L.array) {
                mdraid_array *a = L.array;
                pthread_mutex_unlock(&L.mu);
                mdraid_array_tick(a, NULL); /* timers: the array goes clean when idle */
                pthread_mutex_lock(&L.mu);
            }
            continue;
        }
        struct op o = L.q[--L.n];
        pthread_mutex_unlock(&L.mu);
        if (o.kind == 0) memcpy(o.buf, o.mem + o.off, o.len);
        if (o.kind == 1) memcpy(o.mem + o.off, o.buf, o.len);
        mdraid_member_io_complete(o.t, 0); /* may call request completions right here */
        pthread_mutex_lock(&L.mu);
    }
    pthread_mutex_unlock(&L.mu);
    return NULL;
}

static unsigned char bufs[N][BS];

static void done(void *user, mdraid_result r) { /* runs on the loop thread */
    int i = (int)(intptr_t)user;
    pthread_mutex_lock(&L.mu);
    if (r != MDRAID_OK || (i >= N && bufs[i - N][0] != (unsigned char)(i - N))) L.bad++;
    L.done++;
    pthread_cond_broadcast(&L.cv);
    pthread_mutex_unlock(&L.mu);
}

static void wait_done(int n) {
    pthread_mutex_lock(&L.mu);
    while (L.done < n) pthread_cond_wait(&L.cv, &L.mu);
    pthread_mutex_unlock(&L.mu);
}

int main(void) {
    pthread_t th;
    pthread_create(&th, NULL, loop, NULL);
    mdraid_member *m[2];
    for (int i = 0; i < 2; i++) {
        mdraid_member_callbacks cb = {calloc(1, DEV_SIZE), DEV_SIZE, 512, MDRAID_CALLBACK_ASYNC,
                                      on_read, on_write, on_flush, NULL, on_destroy};
        if (mdraid_member_new(&cb, i ? "mem1" : "mem0", &m[i]) != MDRAID_OK) return 1;
    }
    mdraid_create_options o;
    mdraid_create_options_init(&o);
    o.bitmap = MDRAID_BITMAP_INTERNAL;
    o.flags = MDRAID_CREATE_ASSUME_CLEAN;
    mdraid_array *a;
    if (mdraid_array_create(&o, m, 2, &a) != MDRAID_OK) { /* blocking: the loop serves it */
        fprintf(stderr, "create: %s\n", mdraid_last_error());
        return 1;
    }
    pthread_mutex_lock(&L.mu);
    L.array = a;
    pthread_mutex_unlock(&L.mu);
    for (int i = 0; i < N; i++) { /* N writes in flight at once */
        memset(bufs[i], i, BS);
        mdraid_array_submit(a, MDRAID_OP_WRITE, (uint64_t)i * BS, bufs[i], BS, 0, done, (void *)(intptr_t)i);
    }
    wait_done(N);
    memset(bufs, 0xff, sizeof bufs);
    for (int i = 0; i < N; i++) /* read them back */
        mdraid_array_submit(a, MDRAID_OP_READ, (uint64_t)i * BS, bufs[i], BS, 0, done, (void *)(intptr_t)(N + i));
    wait_done(2 * N);
    mdraid_array_info info;
    mdraid_array_get_info(a, &info);
    printf("event loop: %d requests, %d bad, array of %llu bytes, %u in sync\n", L.done, L.bad,
           (unsigned long long)info.size, info.in_sync);
    mdraid_array_stop(a); /* blocking: superblocks written clean through the loop */
    pthread_mutex_lock(&L.mu);
    L.array = NULL;
    L.quit = 1;
    pthread_cond_signal(&L.cv);
    pthread_mutex_unlock(&L.mu);
    pthread_join(th, NULL);
    mdraid_array_free(a);
    mdraid_member_free(m[0]); /* destroy() frees the memory */
    mdraid_member_free(m[1]);
    return L.bad != 0;
}
