/* SPDX-License-Identifier: MIT */
/*
 * matrix.c: execmem at every size and scale (make bench runs it after
 * bench.c; build/bench_matrix alone: --quick, --only CELL-PREFIX, --out).
 *
 * Cells: block sizes {16-256 B, 256 B-1 KiB, 1-4 KiB, 4-16 KiB, 16-64 KiB,
 * 64 KiB-1 MiB} x live blocks {1,000, 10,000, 100,000}, skipping cells whose
 * live bytes exceed 3 GB. An operation frees a random live block, then
 * allocates a block of a random size in the band, fills all of it and makes
 * it executable (malloc: fills it; "execmem DUAL load": one xm_load of
 * the bytes, for JITs whose code is complete before its address is known;
 * "execmem DUAL" is the contender). Every contender runs every cell in turn
 * (A B C ... A B C ...), each round on a fresh heap: the live set is built,
 * a warm-up of 2 x `live` operations (at least 10,000) runs untimed, then the
 * timed operations: first `ops` timed as a whole (ns/op), then as many
 * again each timed alone with the monotonic clock (p50/p99/p99.9/max of one
 * operation; the clock's ~30 ns on this VM are in every percentile, kept
 * out of ns/op, where they would shrink every ratio). Per cell and
 * contender: medians over rounds; for execmem, system calls and
 * revocations per 1000 operations of both parts from xm_heap_stats;
 * resident bytes (RSS growth) over live bytes after them.
 *
 * Also: batch (100,000 allocations, then frees in shuffled order) for
 * 64 B-1 KiB and 1-4 KiB; two threads against one in the 1-4 KiB x 10,000
 * cell; producer/consumer (one thread allocates 64 B-1 KiB blocks, another
 * frees them); and startup (create + first function + destroy).
 * Heaps reserve 16 GiB (address space only).
 *
 * This file owns those workloads and the matrix's table of contenders; the
 * contenders' code is behind contender.h (ct_*.c), the clock, medians,
 * command line and JSON file in common.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <execmem.h>
#include "common.h"
#include "contender.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- contenders (contender.h) ------------------------------------------- */

#define MATRIX_RESERVE ((size_t)16 << 30)

/* The order is the tables' order; the first is the ratios' base. */
static contender cts[] = {
    {.name = "execmem DUAL", .cls = &ct_execmem, .variant = XM_BACKEND_DUAL,
     .reserve = MATRIX_RESERVE},
    {.name = "execmem STRICT", .cls = &ct_execmem, .variant = XM_BACKEND_DUAL,
     .flags = XM_STRICT, .reserve = MATRIX_RESERVE},
    {.name = "execmem INPLACE", .cls = &ct_execmem, .variant = XM_BACKEND_DUAL,
     .flags = XM_INPLACE, .reserve = MATRIX_RESERVE},
    {.name = "execmem DUAL load", .cls = &ct_execmem, .variant = XM_BACKEND_DUAL,
     .flags = CT_XM_LOAD, .reserve = MATRIX_RESERVE},
    {.name = "asmjit default", .cls = &ct_asmjit},
    {.name = "malloc+fill+free", .cls = &ct_malloc},
};
enum { NC = sizeof cts / sizeof cts[0] };

/* The matrix's operation: a block of len bytes, all of it written (up to
 * ct_code's size), executable; put with the length where the workload keeps
 * it, else 0 (every class above ignores it). */
static void *c_get(contender *c, size_t len)
{
    return c->cls->get(c, len, len < sizeof ct_code ? len : sizeof ct_code, 0);
}

static void c_put(contender *c, void *p, size_t len) { c->cls->put(c, p, len); }

/* ---- one cell ----------------------------------------------------------- */

typedef struct cell_res {
    double ns, p50, p99, p999, max, sys_k, rev_k, rss;
    bool ok;
} cell_res;

static double pct(const double *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* The cell's operation: frees a random one of the live blocks, then
 * allocates one of a random size in [lo, hi] in its place. */
typedef struct cell_set {
    contender *c;
    void **rx;
    size_t *len, live, lo, hi, bytes;
    uint64_t seed;
} cell_set;

static bool cell_op(cell_set *s)
{
    size_t k = rng(&s->seed) % s->live;
    c_put(s->c, s->rx[k], s->len[k]);
    s->bytes -= s->len[k];
    s->len[k] = s->lo + rng(&s->seed) % (s->hi - s->lo + 1);
    s->bytes += s->len[k];
    return (s->rx[k] = c_get(s->c, s->len[k])) != NULL;
}

static bool run_cell(contender *c, size_t lo, size_t hi, size_t live, uint64_t ops,
                     uint64_t seed, cell_res *out)
{
    memset(out, 0, sizeof *out);
    /* the bench's own arrays, touched before the baseline: only the
       contender's memory counts */
    void **rx = calloc(live, sizeof *rx);
    size_t *len = calloc(live, sizeof *len);
    double *lat = malloc(ops * sizeof *lat);
    if (rx && len && lat) {
        ct_touch(rx, live * sizeof *rx);
        ct_touch(len, live * sizeof *len);
        ct_touch(lat, ops * sizeof *lat);
    }
    size_t rss0 = rss_bytes();
    bool ok = rx && len && lat && c->cls->create(c);
    if (!ok) {
        free(rx);
        free(len);
        free(lat);
        return false;
    }
    size_t live_bytes = 0;
    for (size_t i = 0; ok && i < live; i++) {
        len[i] = lo + rng(&seed) % (hi - lo + 1);
        ok = (rx[i] = c_get(c, len[i])) != NULL;
        live_bytes += len[i];
    }
    cell_set set = {c, rx, len, live, lo, hi, live_bytes, seed};
    /* until the holes settle: after 2,000 operations 1,000 live blocks of
       64 KiB-1 MiB still grew the heap (a system call every ~130
       operations); 10,000 of 4-16 KiB did after 10,000, 1,000 of 16-64 KiB
       now and then after 6,000 (128 KiB at a time: /tmp/xl/szw.c) */
    uint64_t warm = live < 5000 ? 10000 : 2 * (uint64_t)live;
    for (uint64_t i = 0; ok && i < warm; i++)
        ok = cell_op(&set);
    ct_counters s0, s1;
    bool counted = ct_counters_of(c, &s0);
    /* throughput: the operations alone, two clock reads in all */
    double t0 = now_ns();
    for (uint64_t i = 0; ok && i < ops; i++)
        ok = cell_op(&set);
    double t1 = now_ns();
    /* latency: as many operations again, each timed (the clock read, ~30 ns
       on this VM, is in every percentile but not in ns/op) */
    double prev = now_ns();
    for (uint64_t i = 0; ok && i < ops; i++) {
        ok = cell_op(&set);
        double t = now_ns();
        lat[i] = t - prev;
        prev = t;
    }
    live_bytes = set.bytes;
    counted = counted && ct_counters_of(c, &s1);
    size_t rss1 = rss_bytes();
    for (size_t i = 0; i < live; i++)
        if (rx[i])
            c_put(c, rx[i], len[i]);
    c->cls->destroy(c);
    if (ok) {
        qsort(lat, ops, sizeof *lat, cmp_double);
        out->ns = (t1 - t0) / (double)ops;
        out->p50 = pct(lat, ops, 0.5);
        out->p99 = pct(lat, ops, 0.99);
        out->p999 = pct(lat, ops, 0.999);
        out->max = lat[ops - 1];
        if (counted) {
            out->sys_k = (double)(s1.syscalls - s0.syscalls) * 500.0 / (double)ops;
            out->rev_k = (double)(s1.revocations - s0.revocations) * 500.0 / (double)ops;
        } else {
            out->sys_k = out->rev_k = -1;
        }
        out->rss = live_bytes ? (double)(rss1 > rss0 ? rss1 - rss0 : 0) / (double)live_bytes : 0;
    }
    free(rx);
    free(len);
    free(lat);
    out->ok = ok;
    return ok;
}

static void cell(const char *name, size_t lo, size_t hi, size_t live, uint64_t ops,
                 int rounds)
{
    if (!wanted(name))
        return;
    cell_res r[NC][8];
    bool ran[NC] = {false};
    for (int round = 0; round < rounds; round++)
        for (int c = 0; c < NC; c++) {
            if (!cts[c].cls->available)
                continue;
            if (run_cell(&cts[c], lo, hi, live, ops, (uint64_t)round * 7919 + 17,
                         &r[c][round]))
                ran[c] = true;
            else
                fprintf(stderr, "bench_matrix: %s failed in %s\n", cts[c].name, name);
        }
    printf("\n== %s (%d rounds, %llu ops timed together + %llu one by one; medians)\n",
           name, rounds, (unsigned long long)ops, (unsigned long long)ops);
    printf("  %-18s %9s %6s %8s %8s %9s %9s %8s %8s %7s\n", "contender", "ns/op",
           "ratio", "p50", "p99", "p99.9", "max", "sys/kop", "rev/kop", "rss/live");
    double base = 0;
    for (int c = 0; c < NC; c++) {
        if (!ran[c]) {
            printf("  %-18s %s\n", cts[c].name, cts[c].cls->available ? "failed" : "not installed");
            continue;
        }
        double v[8][8];
        int n = 0;
        for (int round = 0; round < rounds; round++) {
            if (!r[c][round].ok)
                continue;
            v[0][n] = r[c][round].ns;
            v[1][n] = r[c][round].p50;
            v[2][n] = r[c][round].p99;
            v[3][n] = r[c][round].p999;
            v[4][n] = r[c][round].max;
            v[5][n] = r[c][round].sys_k;
            v[6][n] = r[c][round].rev_k;
            v[7][n] = r[c][round].rss;
            n++;
        }
        double m[8];
        for (int k = 0; k < 8; k++)
            m[k] = median(v[k], n);
        if (c == 0)
            base = m[0];
        printf("  %-18s %9.0f %6.2f %8.0f %8.0f %9.0f %9.0f", cts[c].name, m[0],
               base > 0 ? m[0] / base : 0, m[1], m[2], m[3], m[4]);
        if (m[5] >= 0)
            printf(" %8.2f %8.2f", m[5], m[6]);
        else
            printf(" %8s %8s", "-", "-");
        printf(" %7.2f\n", m[7]);
        json_row("\"workload\": \"%s\", \"contender\": \"%s\", \"rounds\": %d, "
                 "\"ns_per_op\": %.1f, \"ratio_to_execmem_dual\": %.3f, \"p50\": %.0f, "
                 "\"p99\": %.0f, \"p99_9\": %.0f, \"max\": %.0f, "
                 "\"syscalls_per_1000_ops\": %.3f, \"revocations_per_1000_ops\": %.3f, "
                 "\"resident_over_live\": %.3f",
                 name, cts[c].name, n, m[0], base > 0 ? m[0] / base : 0, m[1], m[2], m[3],
                 m[4], m[5], m[6], m[7]);
    }
}

/* ---- batch, threads, startup -------------------------------------------- */

static double batch_once(contender *c, size_t n, size_t lo, size_t hi, uint64_t seed)
{
    if (!c->cls->create(c))
        return -1;
    void **rx = malloc(n * sizeof *rx);
    double t0 = now_ns();
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = (rx[i] = c_get(c, lo + rng(&seed) % (hi - lo + 1))) != NULL;
    for (size_t i = n - 1; ok && i > 0; i--) {
        size_t j = rng(&seed) % (i + 1);
        void *t = rx[i];
        rx[i] = rx[j];
        rx[j] = t;
    }
    for (size_t i = 0; i < n && ok; i++)
        c_put(c, rx[i], 0);
    double t1 = now_ns();
    free(rx);
    c->cls->destroy(c);
    return ok ? (t1 - t0) / (double)n : -1;
}

typedef struct thr_arg {
    contender *c;
    size_t live, lo, hi;
    uint64_t ops, seed;
    double t0, t1;
    bool ok;
    pthread_barrier_t *bar;
} thr_arg;

static void *thr_main(void *a)
{
    thr_arg *t = a;
    void **rx = calloc(t->live, sizeof *rx);
    uint64_t s = t->seed;
    bool ok = true;
    for (size_t i = 0; i < t->live && ok; i++)
        ok = (rx[i] = c_get(t->c, t->lo + rng(&s) % (t->hi - t->lo + 1))) != NULL;
    pthread_barrier_wait(t->bar);
    t->t0 = now_ns();
    for (uint64_t i = 0; i < t->ops && ok; i++) {
        size_t k = rng(&s) % t->live;
        c_put(t->c, rx[k], 0);
        ok = (rx[k] = c_get(t->c, t->lo + rng(&s) % (t->hi - t->lo + 1))) != NULL;
    }
    t->t1 = now_ns();
    pthread_barrier_wait(t->bar);
    for (size_t i = 0; i < t->live; i++)
        if (rx[i])
            c_put(t->c, rx[i], 0);
    free(rx);
    t->ok = ok;
    return NULL;
}

/* ns per op in total (ops / wall time) for n threads sharing one heap */
static double threads_once(contender *c, int n, size_t live, uint64_t ops, uint64_t seed)
{
    if (!c->cls->create(c))
        return -1;
    pthread_t th[2];
    thr_arg ta[2];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        ta[i] = (thr_arg){c, live / (size_t)n, 1024, 4096, ops / (uint64_t)n,
                          seed + (uint64_t)i * 101, 0, 0, false, &bar};
        pthread_create(&th[i], NULL, thr_main, &ta[i]);
    }
    bool ok = true;
    double t0 = 1e300, t1 = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ok &= ta[i].ok;
        t0 = ta[i].t0 < t0 ? ta[i].t0 : t0;
        t1 = ta[i].t1 > t1 ? ta[i].t1 : t1;
    }
    pthread_barrier_destroy(&bar);
    c->cls->destroy(c);
    return ok ? (t1 - t0) / (double)(ops / (uint64_t)n * (uint64_t)n) : -1;
}

/* Producer and consumer: one thread allocates, fills and publishes
 * blocks of 64 B-1 KiB and hands them through a ring of `inflight` slots
 * to a second thread, which frees them (a JIT's compiler thread and the
 * thread that retires code). ns per block, wall time of both. */
typedef struct pc_ring {
    contender *c;
    void **slot;
    size_t cap;
    uint64_t ops, seed;
    _Atomic uint64_t head, tail;
    bool ok;
} pc_ring;

static void pc_wait(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static void *pc_producer(void *a)
{
    pc_ring *r = a;
    uint64_t s = r->seed;
    for (uint64_t i = 0; i < r->ops; i++) {
        void *p = c_get(r->c, 64 + rng(&s) % (1024 - 64 + 1));
        if (!p) {
            r->ok = false;
            p = &r->ok; /* the consumer skips it: put is never called on it */
        }
        while (i - atomic_load_explicit(&r->tail, memory_order_acquire) >= r->cap)
            pc_wait();
        r->slot[i % r->cap] = p;
        atomic_store_explicit(&r->head, i + 1, memory_order_release);
    }
    return NULL;
}

static void *pc_consumer(void *a)
{
    pc_ring *r = a;
    for (uint64_t i = 0; i < r->ops; i++) {
        while (atomic_load_explicit(&r->head, memory_order_acquire) == i)
            pc_wait();
        void *p = r->slot[i % r->cap];
        atomic_store_explicit(&r->tail, i + 1, memory_order_release);
        if (p != (void *)&r->ok)
            c_put(r->c, p, 0);
    }
    return NULL;
}

static double pc_once(contender *c, size_t inflight, uint64_t ops, uint64_t seed)
{
    if (!c->cls->create(c))
        return -1;
    pc_ring r = {.c = c, .cap = inflight, .ops = ops, .seed = seed, .ok = true};
    r.slot = calloc(inflight, sizeof *r.slot);
    ct_touch(r.slot, inflight * sizeof *r.slot);
    pthread_t a, b;
    double t0 = now_ns();
    pthread_create(&b, NULL, pc_consumer, &r);
    pthread_create(&a, NULL, pc_producer, &r);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    double t1 = now_ns();
    free(r.slot);
    c->cls->destroy(c);
    return r.ok ? (t1 - t0) / (double)ops : -1;
}

/* The machine's own stalls: a loop that only reads the clock for half a
 * second, counting gaps over 5 us (on the 2-core VM about 1,300 per second
 * of 35-40 us each: the host takes the CPU). Every contender's operation
 * is hit by them: an operation of p50 above ~1 us has them in its p99.9. */
static void machine_stalls(void)
{
    double t0 = now_ns(), prev = t0, sum = 0, longest = 0;
    unsigned n = 0;
    while (prev - t0 < 5e8) {
        double t = now_ns();
        if (t - prev > 5000) {
            n++;
            sum += t - prev;
            longest = t - prev > longest ? t - prev : longest;
        }
        prev = t;
    }
    double per_s = n * 1e9 / (prev - t0), mean = n ? sum / n / 1e3 : 0;
    printf("machine: %.0f stalls over 5 us per second, mean %.1f us, longest %.1f us "
           "(a clock-reading loop; every contender's tail includes them)\n",
           per_s, mean, longest / 1e3);
    json_row("\"workload\": \"machine stalls\", \"per_s\": %.0f, \"mean_us\": %.1f, "
             "\"longest_us\": %.1f",
             per_s, mean, longest / 1e3);
}

/* create + first allocation (execmem: and publish) + destroy */
static double startup_once(contender *c)
{
    double t0 = now_ns();
    if (!c->cls->create(c))
        return -1;
    void *p = c_get(c, 64);
    if (p)
        c_put(c, p, 64);
    c->cls->destroy(c);
    return p ? now_ns() - t0 : -1;
}

static void row(const char *name, const char *unit, double v[NC][8], const bool *ran,
                int rounds)
{
    printf("\n== %s (%d rounds; medians)\n  %-18s %12s %6s\n", name, rounds, "contender",
           unit, "ratio");
    double base = 0;
    for (int c = 0; c < NC; c++) {
        if (!ran[c])
            continue;
        double m = median(v[c], rounds);
        if (base == 0)
            base = m;
        printf("  %-18s %12.0f %6.2f\n", cts[c].name, m, base > 0 ? m / base : 0);
        json_row("\"workload\": \"%s\", \"contender\": \"%s\", \"rounds\": %d, "
                 "\"%s\": %.1f, \"ratio_to_first\": %.3f",
                 name, cts[c].name, rounds, unit, m, base > 0 ? m / base : 0);
    }
}

/* Operations per timed round of a cell: about 60 MB of bytes written,
 * 6,000..200,000 (fewer read a single growth of the heap as a rate of
 * system calls: one is 0.33 per 1000 operations at 6,000); --quick a
 * quarter. */
static uint64_t cell_ops(size_t lo, size_t hi, bool quick)
{
    double want = 6e7 / ((double)(lo + hi) / 2);
    uint64_t ops = want < 6000 ? 6000 : want > 200000 ? 200000 : (uint64_t)want;
    return quick ? ops / 4 : ops;
}

int main(int argc, char **argv)
{
    bench_args args;
    if (!bench_start(argc, argv, &args, "bench_matrix", "bench/matrix.json", 0,
                     "usage: bench_matrix [--quick] [--out FILE] [--only PREFIX] [--cell LO-HI:LIVE]"))
        return 2;
    bool quick = args.quick;
    int R = quick ? 1 : 3;
    if (args.cell) { /* any band and live count, e.g. 20000-30000:5000 */
        size_t lo, hi, live;
        if (sscanf(args.cell, "%zu-%zu:%zu", &lo, &hi, &live) != 3 || !lo || hi < lo || !live ||
            hi > CT_CODE_SIZE) {
            fprintf(stderr, "bench_matrix: --cell LO-HI:LIVE, sizes in bytes up to %d, e.g. "
                            "20000-30000:5000\n", (int)CT_CODE_SIZE);
            return 2;
        }
        char name[96];
        snprintf(name, sizeof name, "cell: %zu-%zu B x %zu live", lo, hi, live);
        machine_stalls();
        cell(name, lo, hi, live, cell_ops(lo, hi, quick), R);
        json_close();
        return 0;
    }
    static const struct {
        const char *label;
        size_t lo, hi;
    } sizes[] = {{"16-256 B", 16, 256},         {"256 B-1 KiB", 256, 1024},
                 {"1-4 KiB", 1024, 4096},        {"4-16 KiB", 4096, 16384},
                 {"16-64 KiB", 16384, 65536},    {"64 KiB-1 MiB", 65536, 1 << 20}};
    static const size_t lives[] = {1000, 10000, 100000};
    printf("execmem %u.%u.%u size x live matrix%s; time per op in ns\n", XM_VERSION_MAJOR,
           XM_VERSION_MINOR, XM_VERSION_PATCH, quick ? " (--quick)" : "");
    machine_stalls();
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t l = 0; l < sizeof lives / sizeof lives[0]; l++) {
            double avg = (double)(sizes[s].lo + sizes[s].hi) / 2;
            if (avg * (double)lives[l] > 3e9)
                continue;
            if (quick && lives[l] > 10000)
                continue;
            char name[96];
            snprintf(name, sizeof name, "matrix: %s x %zu live", sizes[s].label, lives[l]);
            cell(name, sizes[s].lo, sizes[s].hi, lives[l], cell_ops(sizes[s].lo, sizes[s].hi, quick), R);
        }
    double v[NC][8];
    bool ran[NC];
    static const struct {
        const char *name;
        size_t lo, hi;
    } batches[] = {{"batch: 100000 allocs of 64 B-1 KiB, shuffled frees (ns per alloc+free)", 64, 1024},
                   {"batch: 100000 allocs of 1-4 KiB, shuffled frees (ns per alloc+free)", 1024, 4096}};
    for (int b = 0; b < 2; b++) {
        if (!wanted(batches[b].name))
            continue;
        memset(ran, 0, sizeof ran);
        for (int round = 0; round < R; round++)
            for (int c = 0; c < NC; c++)
                if (cts[c].cls->available &&
                    (v[c][round] = batch_once(&cts[c], quick ? 25000 : 100000, batches[b].lo,
                                              batches[b].hi, (uint64_t)round + 5)) >= 0)
                    ran[c] = true;
        row(batches[b].name, "ns", v, ran, R);
    }
    const char *tname = "threads: 1-4 KiB x 10000 live, ns/op in total";
    if (wanted(tname)) {
        for (int n = 1; n <= 2; n++) {
            memset(ran, 0, sizeof ran);
            for (int round = 0; round < R; round++)
                for (int c = 0; c < NC; c++)
                    if (cts[c].cls->available &&
                        (v[c][round] = threads_once(&cts[c], n, 10000, quick ? 50000 : 400000,
                                                    (uint64_t)round + 9)) >= 0)
                        ran[c] = true;
            char nm[128];
            snprintf(nm, sizeof nm, "%s, %d thread%s", tname, n, n > 1 ? "s" : "");
            row(nm, "ns/op", v, ran, R);
        }
    }
    const char *pname = "producer/consumer: 64 B-1 KiB, one thread allocates, another frees, "
                        "10000 in flight, ns/op in total";
    if (wanted(pname)) {
        memset(ran, 0, sizeof ran);
        for (int round = 0; round < R; round++)
            for (int c = 0; c < NC; c++)
                if (cts[c].cls->available &&
                    (v[c][round] = pc_once(&cts[c], 10000, quick ? 50000 : 300000,
                                           (uint64_t)round + 13)) >= 0)
                    ran[c] = true;
        row(pname, "ns/op", v, ran, R);
    }
    const char *sname = "startup: create + first function + destroy (ns)";
    if (wanted(sname)) {
        contender su[] = {
            {.name = "execmem DUAL", .cls = &ct_execmem, .variant = CT_XM_DEFAULTS},
            {.name = "asmjit default", .cls = &ct_asmjit},
            {.name = "asmjit dual", .cls = &ct_asmjit, .variant = 1}};
        printf("\n== %s (200 runs each, alternated; medians)\n", sname);
        double t[3][200];
        int n = quick ? 50 : 200;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                t[c][i] = su[c].cls->available ? startup_once(&su[c]) : -1;
        for (int c = 0; c < 3; c++) {
            if (!su[c].cls->available)
                continue;
            double m = median(t[c], n);
            printf("  %-18s %12.0f\n", su[c].name, m);
            json_row("\"workload\": \"%s\", \"contender\": \"%s\", \"ns\": %.0f", sname,
                     su[c].name, m);
        }
    }
    json_close();
    return 0;
}
