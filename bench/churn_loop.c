/* SPDX-License-Identifier: MIT */
/*
 * churn_loop.c: the churn operation alone (1000 live blocks of 64-1024 B;
 * free one at random, allocate, write and publish a new one), for
 * profilers: `valgrind --tool=callgrind build/churn_loop 200000` counts
 * instructions per operation repeatably; `perf record build/churn_loop`
 * shows where the time goes. Mode 1 runs malloc+memcpy+free instead.
 * THREADS 2 runs two threads on one heap, pinned to CPUs 0 and 1, with 500
 * live blocks and OPS/2 operations each, and prints the total time per
 * operation (the bench's thread rows, without its harness).
 *
 *   churn_loop [OPS [MODE [THREADS]]]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <execmem.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>

static unsigned char tmpl[2048];

typedef struct worker {
    xm_heap *h;
    int mode, cpu; /* cpu < 0: not pinned */
    long ops;
    size_t live;
    uint64_t rs;
} worker;

static uint64_t rng(worker *w)
{
    w->rs ^= w->rs >> 12;
    w->rs ^= w->rs << 25;
    w->rs ^= w->rs >> 27;
    return w->rs * 0x2545F4914F6CDD1Dull;
}

/* The JIT's write: libc's memcpy, as in bench.c (for a length gcc can bound
 * it would inline `rep movs`, slower at these sizes on this machine, and
 * differently in the two modes). */
static void jit_write(void *dst, size_t len)
{
    __asm__("" : "+r"(len));
    memcpy(dst, tmpl, len);
}

static void *make(worker *w, size_t len)
{
    if (w->mode) {
        void *p = malloc(len);
        jit_write(p, len);
        return p;
    }
    xm_block b;
    if (xm_alloc(w->h, len, 0, &b))
        abort();
    jit_write(b.rw, len);
    if (xm_publish(w->h, b.rx, XM_PROT_RX))
        abort();
    return b.rx;
}

static pthread_barrier_t start;

static void *run(void *arg)
{
    /* the worker's state on its own stack: w[] entries share cache lines,
       and rng() writes rs every operation (the two threads' w[0].rs and
       w[1].ops in one line cost each thread a third of its speed) */
    worker wl = *(worker *)arg, *w = &wl;
    if (w->cpu >= 0) {
        cpu_set_t s;
        CPU_ZERO(&s);
        CPU_SET(w->cpu, &s);
        pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    }
    void **rx = calloc(w->live, sizeof *rx);
    if (!rx)
        abort();
    for (size_t i = 0; i < w->live; i++)
        rx[i] = make(w, 64 + rng(w) % 961);
    pthread_barrier_wait(&start); /* all filled: the clock starts */
    for (long i = 0; i < w->ops; i++) {
        size_t k = rng(w) % w->live, len = 64 + rng(w) % 961;
        if (w->mode)
            free(rx[k]);
        else
            xm_free(w->h, rx[k]);
        rx[k] = make(w, len);
    }
    pthread_barrier_wait(&start); /* all done: the clock stops */
    for (size_t i = 0; i < w->live; i++)
        w->mode ? free(rx[i]) : (void)xm_free(w->h, rx[i]);
    free(rx);
    return NULL;
}

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 2000000;
    int mode = argc > 2 ? atoi(argv[2]) : 0; /* 0 xm dual, 1 malloc */
    int nt = argc > 3 && atoi(argv[3]) == 2 ? 2 : 1;
    memset(tmpl, 0xc3, sizeof tmpl);
    xm_heap *h = NULL;
    if (xm_heap_create(NULL, &h))
        return 1;
    worker w[2];
    pthread_t th[2];
    pthread_barrier_init(&start, NULL, (unsigned)nt + 1);
    for (int t = 0; t < nt; t++) {
        w[t] = (worker){h, mode, nt == 1 ? -1 : t, ops / nt, 1000 / (size_t)nt,
                        88172645463325252ull + (uint64_t)t * 7919};
        pthread_create(&th[t], NULL, run, &w[t]);
    }
    struct timespec t0, t1;
    pthread_barrier_wait(&start);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_barrier_wait(&start);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int t = 0; t < nt; t++)
        pthread_join(th[t], NULL);
    double total = (double)(ops / nt * nt);
    printf("%s: %.1f ns/op\n", mode ? "malloc" : "xm",
           ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / total);
    xm_heap_destroy(h);
    return 0;
}
