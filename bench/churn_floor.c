/* SPDX-License-Identifier: MIT */
/*
 * churn_floor.c: what the churn operation costs at the least under
 * execmem's rules, for deciding how far a redesign could go. Not the
 * library: a single-threaded model of a per-thread fast path that keeps
 * every byte-level rule (the freed block trap-filled through the writable
 * view before free returns, the staging buffer trap-filled before the JIT
 * writes, staging copied into the code on publish) and drops everything
 * else: no lock, no bitmap word shared by two blocks (one state byte per
 * granule), O(1) size and staging lookups, per-size LIFO caches.
 *
 *   churn_floor [OPS [SYNC]]  SYNC=1 adds one atomic RMW per call (the
 *                             least a claim shared with other threads
 *                             costs), SYNC=2 a mutex lock and unlock per
 *                             call (what the library takes)
 *
 * The model itself is bench/floor_model.h (bench.c runs it as a row too).
 * Same operation, sizes and random sequence as churn_loop.c; compare with
 * `build/churn_loop` (execmem) and `build/churn_loop N 1` (malloc).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { LIVE = 1000 };

static uint64_t rs = 88172645463325252ull;
static uint64_t rng(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return rs * 0x2545F4914F6CDD1Dull;
}

static unsigned char tmpl[2048];
static _Atomic uint64_t claim;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int sync_kind;

/* called at the start of each call; unlock_once at its end */
static void claim_once(void)
{
    if (sync_kind == 1)
        atomic_fetch_add_explicit(&claim, 1, memory_order_acq_rel);
    else if (sync_kind == 2)
        pthread_mutex_lock(&lock);
}

static void unlock_once(void)
{
    if (sync_kind == 2)
        pthread_mutex_unlock(&lock);
}

#define FM_CLAIM() claim_once()
#define FM_UNCLAIM() unlock_once()
#include "floor_model.h"

int main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 2000000;
    sync_kind = argc > 2 ? atoi(argv[2]) : 0;
    memset(tmpl, 0xc3, sizeof tmpl);
    if (fm_setup())
        return 1;
    void *rx[LIVE];
    for (int i = 0; i < LIVE; i++) {
        size_t len = 64 + rng() % 961;
        void *w;
        rx[i] = fm_alloc(len, &w);
        memcpy(w, tmpl, len);
        fm_publish(rx[i]);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < ops; i++) {
        size_t k = rng() % LIVE, len = 64 + rng() % 961;
        void *w;
        fm_free(rx[k]);
        rx[k] = fm_alloc(len, &w);
        memcpy(w, tmpl, len);
        fm_publish(rx[k]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("floor%s: %.1f ns/op\n",
           sync_kind == 1 ? " + 1 RMW per call" : sync_kind == 2 ? " + a mutex per call" : "",
           ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / ops);
    fm_teardown();
    return 0;
}
