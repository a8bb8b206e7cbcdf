/*
 * churn_loop.c: the churn operation alone (1000 live blocks of 64-1024 B;
 * free one at random, allocate, write and publish a new one), for
 * profilers: `valgrind --tool=callgrind build/churn_loop 200000` counts
 * instructions per operation repeatably; `perf record build/churn_loop`
 * shows where the time goes. Mode 1 runs malloc+memcpy+free instead.
 *
 *   churn_loop [OPS [MODE]]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <execmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
static uint64_t rs = 88172645463325252ull;
static uint64_t rng(void){ rs ^= rs>>12; rs ^= rs<<25; rs ^= rs>>27; return rs*0x2545F4914F6CDD1Dull; }
static unsigned char tmpl[2048];
/* The JIT's write: libc's memcpy, as in bench.c (for a length gcc can bound
 * it would inline `rep movs`, slower at these sizes on this machine, and
 * differently in the two modes). */
static void jit_write(void *dst, size_t len)
{
    __asm__("" : "+r"(len));
    memcpy(dst, tmpl, len);
}
int main(int argc, char **argv){
    long ops = argc > 1 ? atol(argv[1]) : 2000000;
    int mode = argc > 2 ? atoi(argv[2]) : 0; /* 0 xm dual, 1 malloc */
    memset(tmpl, 0xc3, sizeof tmpl);
    xm_heap *h = NULL; xm_heap_create(NULL, &h);
    enum { LIVE = 1000 };
    void *rx[LIVE];
    for (int i = 0; i < LIVE; i++) {
        size_t len = 64 + rng() % 961;
        if (mode) { rx[i] = malloc(len); jit_write(rx[i], len); continue; }
        xm_block b; xm_alloc(h, len, 0, &b); jit_write(b.rw, len); xm_publish(h, b.rx, XM_PROT_RX); rx[i] = b.rx;
    }
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < ops; i++) {
        size_t k = rng() % LIVE; size_t len = 64 + rng() % 961;
        if (mode) { free(rx[k]); rx[k] = malloc(len); jit_write(rx[k], len); continue; }
        xm_free(h, rx[k]);
        xm_block b; if (xm_alloc(h, len, 0, &b)) abort();
        jit_write(b.rw, len); if (xm_publish(h, b.rx, XM_PROT_RX)) abort(); rx[k] = b.rx;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %.1f ns/op\n", mode ? "malloc" : "xm", ((t1.tv_sec-t0.tv_sec)*1e9 + (t1.tv_nsec-t0.tv_nsec))/ops);
    xm_heap_destroy(h);
    return 0;
}
