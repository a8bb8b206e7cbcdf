/* SPDX-License-Identifier: MIT */
/*
 * bench.c: execmem against the allocators JIT authors use today, side by
 * side in one run (make bench; --quick for a smoke run; --out FILE.json).
 * This file owns the workloads and the table of contenders they run; each
 * contender's code is behind contender.h (get = allocate + write + make
 * executable, put = free), one file per family.
 *
 * Contenders:
 *   execmem DUAL (default), DUAL + XM_STRICT, FLIP, DUAL + XM_INPLACE
 *   (ct_execmem.c);
 *   asmjit JitAllocator, default options (maps RWX) and kUseDualMapping
 *   (ct_asmjit.c; only where Debian's libasmjit-dev was found at build time);
 *   naive: mmap RW, write, mprotect RX, munmap on free, per function;
 *   flip pool: pages recycled through a free list, mprotect RW before each
 *   write and RX after (blocks over a page fall back to naive) (both
 *   ct_mprotect.c);
 *   malloc + memcpy + free: not executable, the floor (ct_malloc.c);
 *   the floor model: execmem's byte passes, no bookkeeping (ct_floor.c).
 *
 * Every workload runs the contenders in turn (A B C ... A B C ...) for
 * several rounds and reports the median and min-max of each, and the ratio
 * to execmem's default. Method notes:
 *   - system calls: syscount.c interposes mmap, munmap, mprotect, ... and
 *     counts every code-memory call, whichever contender makes it;
 *   - TLB shootdowns: the TLB line of /proc/interrupts, all CPUs, before and
 *     after (machine-wide: other processes add noise);
 *   - resident / live: growth of this process's RSS (/proc/self/statm) over
 *     the bytes asked for, measured with the live set in place.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <execmem.h>
#include "../tools/proc_tlb.h"
#include "common.h"
#include "contender.h"
#include "syscount.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- contenders --------------------------------------------------------- */

/* Families, for the workloads' sets below (tags). */
enum {
    T_XM = 0x1u,      /* execmem DUAL, STRICT, FLIP */
    T_ASMJIT = 0x2u,  /* both asmjit rows */
    T_NAIVE = 0x4u,
    T_POOL = 0x8u,
    T_MALLOC = 0x10u,
    T_INPLACE = 0x20u,
    T_FLOOR = 0x40u,  /* single-threaded: churn rows only */
    T_PUBLISH = 0x80u, /* the strict publish rows (they call the library) */
    T_PKEYS = 0x100u, /* execmem PKEYS */
    T_ALL = 0x13Fu    /* all but the floor model */
};

/* The order is the tables' order; execmem DUAL first (the ratios' base). */
static contender contenders[] = {
    {.name = "execmem DUAL", .note = "default", .cls = &ct_execmem,
     .variant = XM_BACKEND_DUAL, .tags = T_XM | T_PUBLISH},
    {.name = "execmem STRICT", .note = "no writable mapping of code", .cls = &ct_execmem,
     .variant = XM_BACKEND_DUAL, .flags = XM_STRICT, .tags = T_XM | T_PUBLISH},
    {.name = "execmem FLIP", .note = "mprotect backend", .cls = &ct_execmem,
     .variant = XM_BACKEND_FLIP, .syscall_per_op = true, .tags = T_XM},
    {.name = "asmjit default", .note = "maps RWX", .cls = &ct_asmjit, .tags = T_ASMJIT},
    {.name = "asmjit dual", .note = "kUseDualMapping", .cls = &ct_asmjit, .variant = 1,
     .tags = T_ASMJIT},
    {.name = "naive mmap/mprotect", .note = "per function", .cls = &ct_naive,
     .syscall_per_op = true, .tags = T_NAIVE},
    {.name = "flip pool", .note = "mprotect RW/RX per write", .cls = &ct_flippool,
     .syscall_per_op = true, .tags = T_POOL},
    {.name = "malloc+memcpy+free", .note = "not executable", .cls = &ct_malloc,
     .tags = T_MALLOC},
    {.name = "execmem INPLACE", .note = "no staging: not NX until published",
     .cls = &ct_execmem, .variant = XM_BACKEND_DUAL, .flags = XM_INPLACE, .tags = T_INPLACE},
    {.name = "floor model", .note = "execmem's byte passes, no bookkeeping, 1 thread",
     .cls = &ct_floor, .tags = T_FLOOR},
    /* unavailable (main) where the CPU or kernel has no protection keys;
       under an emulator (make check-pkeys) its times are not comparable */
    {.name = "execmem PKEYS", .note = "alias keyed: WRPKRU per call", .cls = &ct_execmem,
     .variant = XM_BACKEND_DUAL, .flags = XM_PKEYS, .tags = T_PKEYS | T_PUBLISH},
};

/* Whether row c can run in this binary on this machine. */
static bool ready(const contender *k) { return k->cls->available && !k->missing; }
enum { NCT = sizeof contenders / sizeof contenders[0] };

/* ---- measurements ------------------------------------------------------- */

typedef struct sample {
    double ns_per_op;   /* wall time per operation */
    double sys_per_op;  /* counted system calls per operation */
    double tlb_per_kop; /* TLB shootdowns per 1000 operations */
    double rss_ratio;   /* resident growth / live bytes asked (0: n/a) */
    double revocations_per_op; /* execmem contenders only */
    double extra;       /* workload-specific (calls/s, 2T/1T ratio) */
} sample;

typedef struct result {
    const char *workload;
    sample s[NCT][16]; /* [contender][round] */
    bool ran[NCT];
    int rounds;
} result;

typedef struct wl_params {
    size_t live, minsz, maxsz;
    uint64_t ops;
    int threads;
    bool spinner;
    size_t wlen; /* bytes written per block (0: all of it, up to 64 KiB) */
    size_t align; /* 0, or (size_t)-1: random power of two up to a page */
    size_t minpg, maxpg; /* page-multiple sizes (kernel scenarios), else 0 */
    uint64_t fast_ops; /* ops for contenders without a system call per op
                          (0: ops); longer runs steady the 2-thread ratio */
} wl_params;

/* Contenders that make system calls every op (syscall_per_op: FLIP, naive,
 * the flip pool) keep p->ops; the others run p->fast_ops when it is set. */
static uint64_t ops_of(const contender *c, const wl_params *p)
{
    return p->fast_ops && !c->syscall_per_op ? p->fast_ops : p->ops;
}

typedef struct churn_arg {
    contender *c;
    const wl_params *p;
    uint64_t seed;
    size_t live_bytes;
    bool fail;
    double t_start, t_end; /* this thread's own clock around its ops */
    struct churn_arg *base; /* ca[0]: this worker's index is ca - base */
} churn_arg;

/* Worker t runs on CPU t (mod the CPUs online), the spinner on the last
 * CPU: "two threads on two cores" is then what is measured, not where the
 * scheduler happened to put them (unpinned, both workers sometimes shared
 * one core for a whole round and the 2-thread figure swung from 1.0x to
 * 1.9x between runs). */
static void pin_to_cpu(long cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(cpu % n), &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static _Atomic int spin_stop;
static void *spinner_main(void *a)
{
    (void)a;
    pin_to_cpu(sysconf(_SC_NPROCESSORS_ONLN) - 1);
    volatile uint64_t x = 0;
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
        x++;
    return NULL;
}

static size_t pick_size(const wl_params *p, uint64_t *s)
{
    if (p->maxpg)
        return 4096 * (p->minpg + rng(s) % (p->maxpg - p->minpg + 1));
    return p->minsz + rng(s) % (p->maxsz - p->minsz + 1);
}

static size_t pick_align(const wl_params *p, uint64_t *s)
{
    if (p->align == (size_t)-1)
        return (size_t)1 << (rng(s) % 13);
    return p->align;
}

static size_t wlen_of(const wl_params *p, size_t len)
{
    size_t w = p->wlen ? p->wlen : len;
    if (w > len)
        w = len;
    return w > sizeof ct_code ? sizeof ct_code : w;
}

typedef struct live_set {
    void **rx;
    size_t *len;
    size_t n;
} live_set;

static bool fill(contender *c, const wl_params *p, live_set *ls, size_t n, uint64_t *seed,
                 size_t *bytes)
{
    ls->rx = calloc(n ? n : 1, sizeof *ls->rx);
    ls->len = calloc(n ? n : 1, sizeof *ls->len);
    ls->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = pick_size(p, seed);
        ls->rx[i] = c->cls->get(c, len, wlen_of(p, len), pick_align(p, seed));
        ls->len[i] = len;
        if (!ls->rx[i])
            return false;
        *bytes += len;
    }
    return true;
}

static void drain(contender *c, live_set *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        if (ls->rx[i])
            c->cls->put(c, ls->rx[i], ls->len[i]);
    free(ls->rx);
    free(ls->len);
}

static _Atomic int churn_go;
/* each worker posts once when its clock has stopped: the main thread
   sleeps in sem_wait meanwhile (polling it with nanosleep woke it every
   few tens of microseconds, and each wake-up took a core from a worker:
   with 2 workers on 2 CPUs that cost the 2-thread figure up to a third) */
static sem_t churn_done;
/* and once when its live set is built: the counts and the resident size are
   read after every fill (a fixed 20 ms wait let slow fills, STRICT or naive
   with 10,000 live blocks, run into the counted window) */
static sem_t churn_ready;
static void *churn_thread(void *a)
{
    churn_arg *ca = a;
    const wl_params *p = ca->p;
    contender *c = ca->c;
    live_set ls;
    size_t per = p->live / (size_t)p->threads;
    /* the worker's state lives on its own stack: ca[] entries of two
       workers share cache lines, and writing the seed there every op made
       the 2-thread figure swing with the stack's alignment */
    uint64_t seed = ca->seed;
    bool fail = false;
    pin_to_cpu(ca - ca->base);
    if (!fill(c, p, &ls, per, &seed, &ca->live_bytes))
        fail = true;
    sem_post(&churn_ready);
    while (!atomic_load(&churn_go))
        ;
    ca->t_start = now_ns();
    uint64_t nops = ops_of(c, p) / (uint64_t)p->threads;
    for (uint64_t i = 0; i < nops && !fail; i++) {
        if (per) {
            size_t k = rng(&seed) % per;
            c->cls->put(c, ls.rx[k], ls.len[k]);
            size_t len = pick_size(p, &seed);
            ls.rx[k] = c->cls->get(c, len, wlen_of(p, len), pick_align(p, &seed));
            ls.len[k] = len;
            if (!ls.rx[k])
                fail = true;
        } else { /* alloc + free, nothing kept (kernel scenarios) */
            size_t len = pick_size(p, &seed);
            void *rx = c->cls->get(c, len, wlen_of(p, len), pick_align(p, &seed));
            if (!rx)
                fail = true;
            else
                c->cls->put(c, rx, len);
        }
    }
    ca->t_end = now_ns();
    ca->fail = fail;
    atomic_fetch_add(&churn_go, 1);
    sem_post(&churn_done);
    while (atomic_load(&churn_go) <= p->threads)
        ; /* all stop the clock before anyone drains */
    drain(c, &ls);
    return NULL;
}

static bool run_churn(contender *c, const wl_params *p, uint64_t seed, sample *out)
{
    if (!c->cls->create(c))
        return false;
    memset(out, 0, sizeof *out);
    pthread_t sp, th[8];
    churn_arg ca[8];
    atomic_store(&spin_stop, 0);
    if (p->spinner)
        pthread_create(&sp, NULL, spinner_main, NULL);
    size_t rss0 = rss_bytes();
    atomic_store(&churn_go, 0);
    for (int t = 0; t < p->threads; t++) {
        ca[t] = (churn_arg){c, p, seed * 7919 + (uint64_t)t + 1, 0, false, 0, 0, ca};
        pthread_create(&th[t], NULL, churn_thread, &ca[t]);
    }
    /* the live sets are built: then count and time */
    for (int t = 0; t < p->threads; t++)
        while (sem_wait(&churn_ready))
            ;
    size_t rss1 = rss_bytes();
    ct_counters s0, s1;
    bool counted = ct_counters_of(c, &s0);
    uint64_t sys0 = syscount();
    long long tlb0 = proc_tlb_shootdowns();
    double t0 = now_ns();
    atomic_store(&churn_go, 1);
    for (int t = 0; t < p->threads; t++)
        while (sem_wait(&churn_done))
            ;
    double t1 = now_ns();
    long long tlb1 = proc_tlb_shootdowns();
    uint64_t sys1 = syscount();
    counted = counted && ct_counters_of(c, &s1);
    atomic_fetch_add(&churn_go, 1); /* release the threads to drain */
    bool fail = false;
    size_t live_bytes = 0;
    for (int t = 0; t < p->threads; t++) {
        pthread_join(th[t], NULL);
        fail |= ca[t].fail;
        live_bytes += ca[t].live_bytes;
    }
    /* time: first start to last end, from the workers' own clocks, so the
       main thread's wake-up latency (both cores busy) does not count */
    t0 = ca[0].t_start;
    t1 = ca[0].t_end;
    for (int t = 1; t < p->threads; t++) {
        t0 = ca[t].t_start < t0 ? ca[t].t_start : t0;
        t1 = ca[t].t_end > t1 ? ca[t].t_end : t1;
    }
    atomic_store(&spin_stop, 1);
    if (p->spinner)
        pthread_join(sp, NULL);
    c->cls->destroy(c);
    double ops = (double)(ops_of(c, p) / (uint64_t)p->threads * (uint64_t)p->threads);
    out->ns_per_op = (t1 - t0) / ops;
    out->sys_per_op = (double)(sys1 - sys0) / ops;
    out->tlb_per_kop = tlb0 >= 0 ? (double)(tlb1 - tlb0) * 1000.0 / ops : -1;
    out->rss_ratio = live_bytes ? (double)(rss1 > rss0 ? rss1 - rss0 : 0) /
                                      (double)live_bytes
                                : 0;
    if (counted)
        out->revocations_per_op = (double)(s1.revocations - s0.revocations) / ops;
    return !fail;
}

/* batch: allocate n, then free all in shuffled order; ns per alloc+free */
static bool run_batch(contender *c, size_t n, uint64_t seed, sample *out)
{
    if (!c->cls->create(c))
        return false;
    memset(out, 0, sizeof *out);
    void **rx = malloc(n * sizeof *rx);
    size_t *len = malloc(n * sizeof *len);
    uint64_t sys0 = syscount();
    long long tlb0 = proc_tlb_shootdowns();
    double t0 = now_ns();
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        len[i] = 64 + rng(&seed) % 961;
        rx[i] = c->cls->get(c, len[i], len[i], 0);
        ok = rx[i] != NULL;
    }
    for (size_t i = n - 1; ok && i > 0; i--) { /* shuffle */
        size_t j = rng(&seed) % (i + 1);
        void *t = rx[i];
        rx[i] = rx[j];
        rx[j] = t;
        size_t l = len[i];
        len[i] = len[j];
        len[j] = l;
    }
    for (size_t i = 0; ok && i < n; i++)
        c->cls->put(c, rx[i], len[i]);
    double t1 = now_ns();
    out->ns_per_op = (t1 - t0) / (double)n;
    out->sys_per_op = (double)(syscount() - sys0) / (double)n;
    long long tlb1 = proc_tlb_shootdowns();
    out->tlb_per_kop = tlb0 >= 0 ? (double)(tlb1 - tlb0) * 1000.0 / (double)n : -1;
    free(rx);
    free(len);
    c->cls->destroy(c);
    return ok;
}

/* exec: n small functions, called in random order; extra = calls per second */
static bool run_exec(contender *c, size_t n, uint64_t calls, uint64_t seed, sample *out)
{
    if (!c->cls->executable)
        return false;
    if (!c->cls->create(c))
        return false;
    memset(out, 0, sizeof *out);
    void **rx = malloc(n * sizeof *rx);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        uint64_t v = i; /* each function returns its own index */
        memcpy(ct_code + 2, &v, 8);
        rx[i] = c->cls->get(c, 32, 16, 0);
        ok = rx[i] != NULL;
    }
    uint64_t zero = 0;
    memcpy(ct_code + 2, &zero, 8);
    uint64_t sum = 0, want = 0;
    double t0 = now_ns();
    for (uint64_t k = 0; ok && k < calls; k++) {
        size_t i = rng(&seed) % n;
        uint64_t (*f)(void);
        memcpy(&f, &rx[i], sizeof f);
        sum += f();
        want += i;
    }
    double t1 = now_ns();
    if (sum != want)
        ok = false;
    out->ns_per_op = (t1 - t0) / (double)calls;
    out->extra = (double)calls * 1e9 / (t1 - t0);
    for (size_t i = 0; i < n && rx[i]; i++)
        c->cls->put(c, rx[i], 32);
    free(rx);
    c->cls->destroy(c);
    return ok;
}

/* strict publish: nfn functions either one per block and publish, or 64 per
 * block and one publish; extra = revocations per publish. Execmem's rows
 * only: the workload calls the library on the contender's heap itself. */
static bool run_publish(contender *c, size_t nfn, int per_block, sample *out)
{
    if (!c->cls->create(c))
        return false;
    xm_heap *h = ct_execmem_heap(c);
    if (!h) {
        c->cls->destroy(c);
        return false;
    }
    memset(out, 0, sizeof *out);
    xm_stats s0, s1;
    xm_heap_stats(h, &s0);
    size_t nblocks = nfn / (size_t)per_block;
    void **rx = malloc(nblocks * sizeof *rx);
    double t0 = now_ns();
    bool ok = true;
    for (size_t b = 0; b < nblocks && ok; b++) {
        xm_block blk;
        ok = xm_alloc(h, (size_t)per_block * 64, 0, &blk) == XM_OK;
        for (int k = 0; ok && k < per_block; k++)
            memcpy((char *)blk.rw + k * 64, ct_code, 64);
        ok = ok && xm_publish(h, blk.rx, XM_PROT_RX) == XM_OK;
        rx[b] = ok ? blk.rx : NULL;
    }
    double t1 = now_ns();
    xm_heap_stats(h, &s1);
    out->ns_per_op = (t1 - t0) / (double)nfn;
    out->sys_per_op = (double)(s1.syscalls - s0.syscalls) / (double)nfn;
    out->extra = (double)(s1.revocations - s0.revocations) / (double)nblocks;
    for (size_t b = 0; b < nblocks && rx[b]; b++)
        xm_free(h, rx[b]);
    free(rx);
    c->cls->destroy(c);
    return ok;
}

/* ---- reporting ---------------------------------------------------------- */

typedef struct stat3 {
    double med, min, max;
} stat3;

static stat3 stat_of(const result *r, int c, size_t field_off)
{
    double v[16];
    for (int i = 0; i < r->rounds; i++)
        v[i] = *(const double *)((const char *)&r->s[c][i] + field_off);
    qsort(v, (size_t)r->rounds, sizeof v[0], cmp_double);
    stat3 s = {v[r->rounds / 2], v[0], v[r->rounds - 1]};
    if (r->rounds % 2 == 0)
        s.med = (v[r->rounds / 2 - 1] + v[r->rounds / 2]) / 2;
    return s;
}
#define STAT(r, c, f) stat_of(r, c, offsetof(sample, f))

static bench_args args;

/* --with PREFIX (repeatable): only those contenders */
static bool chosen(int c)
{
    for (int i = 0; i < args.nwith; i++)
        if (!strncmp(contenders[c].name, args.with[i], strlen(args.with[i])))
            return true;
    return args.nwith == 0;
}

static void report(const result *r, const char *unit, bool show_extra,
                   const char *extra_name)
{
    if (!r->rounds)
        return; /* not wanted */
    printf("\n== %s  (%d rounds; median [min-max]; ratio = median / execmem DUAL's)\n",
           r->workload, r->rounds);
    printf("  %-20s %24s %7s %9s %9s %8s %8s%s%s\n", "contender", unit, "ratio",
           "sys/op", "TLB/kop", "revoc/op", "rss/live", show_extra ? "  " : "",
           show_extra ? extra_name : "");
    stat3 base = r->ran[0] ? STAT(r, 0, ns_per_op) : (stat3){0, 0, 0};
    for (int c = 0; c < NCT; c++) {
        const contender *k = &contenders[c];
        if (!r->ran[c]) {
            printf("  %-20s %s\n", k->name,
                   k->missing            ? k->missing
                   : !k->cls->available ? "not installed (apt-get install libasmjit-dev)"
                                        : "n/a for this workload");
            continue;
        }
        stat3 t = STAT(r, c, ns_per_op), sy = STAT(r, c, sys_per_op),
              tl = STAT(r, c, tlb_per_kop), rv = STAT(r, c, revocations_per_op),
              rs = STAT(r, c, rss_ratio), ex = STAT(r, c, extra);
        char tbuf[64];
        snprintf(tbuf, sizeof tbuf, "%.0f [%.0f-%.0f]", t.med, t.min, t.max);
        printf("  %-20s %24s %7.2f %9.4f %9.2f %8.4f %8.2f", k->name, tbuf,
               base.med > 0 ? t.med / base.med : 0, sy.med, tl.med, rv.med, rs.med);
        if (show_extra)
            printf("  %.3g", ex.med);
        if (k->note && strcmp(k->note, "default"))
            printf("  (%s)", k->note);
        printf("\n");
        json_row("\"workload\": \"%s\", \"contender\": \"%s\", "
                 "\"note\": \"%s\", \"rounds\": %d, \"ns_per_op\": {\"median\": %.2f, "
                 "\"min\": %.2f, \"max\": %.2f}, \"ratio_to_execmem_dual\": %.3f, "
                 "\"syscalls_per_op\": %.5f, \"tlb_shootdowns_per_1000_ops\": %.3f, "
                 "\"revocations_per_op\": %.5f, \"resident_over_live\": %.3f, "
                 "\"%s\": %.4g",
                 r->workload, k->name, k->note, r->rounds, t.med, t.min, t.max,
                 base.med > 0 ? t.med / base.med : 0, sy.med, tl.med, rv.med, rs.med,
                 extra_name ? extra_name : "extra", ex.med);
    }
}

/* Runs a churn-style workload for the contenders tagged in mask, A B C ...
 * rounds. */
static void churn_workload(const char *name, const wl_params *p, int rounds,
                           unsigned mask, result *r)
{
    memset(r, 0, sizeof *r);
    r->workload = name;
    r->rounds = wanted(name) ? rounds : 0;
    for (int round = 0; round < r->rounds; round++)
        for (int c = 0; c < NCT; c++) {
            if (!(mask & contenders[c].tags) || !ready(&contenders[c]) || !chosen(c))
                continue;
            if (!run_churn(&contenders[c], p, (uint64_t)round + 1, &r->s[c][round])) {
                fprintf(stderr, "bench: %s failed in %s\n", contenders[c].name, name);
                continue;
            }
            r->ran[c] = true;
        }
}

int main(int argc, char **argv)
{
    sem_init(&churn_done, 0, 0);
    sem_init(&churn_ready, 0, 0);
    if (!bench_start(argc, argv, &args, "bench", "bench/results.json", NCT,
                     "usage: bench [--quick] [--out results.json] [--only WORKLOAD] "
                     "[--with CONTENDER]..."))
        return 2;
    bool quick = args.quick;
    int R = quick ? 3 : 5;
    xm_sysinfo si;
    for (int c = 0; c < NCT; c++)
        if ((contenders[c].flags & XM_PKEYS) && !(xm_system_info(&si) == XM_OK && si.pkeys))
            contenders[c].missing = "no protection keys here";
    uint64_t K = quick ? 1 : 8; /* scale of operation counts (--quick: 1/8) */
    printf("execmem %u.%u.%u benchmark%s; %ld CPUs; time per op in ns\n",
           XM_VERSION_MAJOR, XM_VERSION_MINOR, XM_VERSION_PATCH,
           quick ? " (--quick)" : "", sysconf(_SC_NPROCESSORS_ONLN));
    result r;

    /* full runs give contenders without a system call per op 4x (churn)
       and 10x (threads) more operations: short rounds were mostly noise */
    uint64_t F = quick ? 0 : 1;
    wl_params churn = {1000, 64, 1024, 25000 * K, 1, false, 0, 0, 0, 0, F * 100000 * K};
    churn_workload("churn: 1000 live, 64-1024 B", &churn, R, T_ALL | T_FLOOR, &r);
    report(&r, "ns/op", false, NULL);

    wl_params frag = {10000, 8, 1031, 25000 * K, 1, false, 0, 0, 0, 0, F * 100000 * K};
    churn_workload("churn-fragmented: 10000 live, 8-1031 B", &frag, R,
                   T_XM | T_ASMJIT | T_MALLOC | T_NAIVE | T_INPLACE | T_FLOOR | T_PKEYS, &r);
    report(&r, "ns/op", false, NULL);

    memset(&r, 0, sizeof r);
    r.workload = "batch: 100000 allocs, then frees in shuffled order";
    r.rounds = wanted(r.workload) ? R : 0;
    for (int round = 0; round < r.rounds; round++)
        for (int c = 0; c < NCT; c++) {
            if (!(contenders[c].tags & (T_XM | T_ASMJIT | T_MALLOC | T_INPLACE)) ||
                !ready(&contenders[c]) || !chosen(c))
                continue; /* naive/pool: 100000 mappings, see churn; the floor
                             model is for the churn rows */
            if (run_batch(&contenders[c], quick ? 30000 : 100000, (uint64_t)round + 9,
                          &r.s[c][round]))
                r.ran[c] = true;
        }
    report(&r, "ns/(alloc+free)", false, NULL);

    /* 1 and 2 threads alternate round by round (1T, 2T, 1T, 2T ...), and
       the scaling figure is the median of each round's own ratio: this
       host's speed drifts over minutes, and two tables timed minutes
       apart made the ratio swing from 1.5x to 1.9x */
    {
        static result one, two;
        wl_params thr[2] = {churn, churn};
        for (int t = 0; t < 2; t++) {
            thr[t].threads = t + 1;
            thr[t].ops = 25000 * K * (uint64_t)(t + 1);
            thr[t].fast_ops = F * 10 * thr[t].ops; /* 0.2 s a round */
        }
        const char *names[2] = {"threads: churn on 1 thread", "threads: churn on 2 threads"};
        result *res[2] = {&one, &two};
        for (int t = 0; t < 2; t++) {
            memset(res[t], 0, sizeof *res[t]);
            res[t]->workload = names[t];
            res[t]->rounds = wanted(names[t]) && wanted(names[1 - t]) ? R : 0;
        }
        unsigned mask = T_XM | T_ASMJIT | T_MALLOC | T_INPLACE | T_PKEYS;
        for (int round = 0; round < one.rounds; round++)
            for (int c = 0; c < NCT; c++) {
                if (!(mask & contenders[c].tags) || !ready(&contenders[c]) ||
                    !chosen(c))
                    continue;
                for (int t = 0; t < 2; t++)
                    if (run_churn(&contenders[c], &thr[t], (uint64_t)round + 1,
                                  &res[t]->s[c][round]))
                        res[t]->ran[c] = true;
            }
        report(&one, "ns/op (total)", false, NULL);
        report(&two, "ns/op (total)", false, NULL);
        for (int c = 0; c < NCT && one.rounds; c++) {
            if (!one.ran[c] || !two.ran[c])
                continue;
            double q[16];
            for (int round = 0; round < one.rounds; round++)
                q[round] = one.s[c][round].ns_per_op / two.s[c][round].ns_per_op;
            qsort(q, (size_t)one.rounds, sizeof q[0], cmp_double);
            printf("  %-20s 2-thread throughput / 1-thread: %.2fx (median of the "
                   "rounds' ratios; %.2fx-%.2fx)\n",
                   contenders[c].name, q[one.rounds / 2], q[0], q[one.rounds - 1]);
            json_row("\"workload\": \"threads: 2-thread / 1-thread throughput\", "
                     "\"contender\": \"%s\", \"median_of_round_ratios\": %.3f, "
                     "\"min\": %.3f, \"max\": %.3f",
                     contenders[c].name, q[one.rounds / 2], q[0], q[one.rounds - 1]);
        }
    }

    wl_params shoot = churn;
    shoot.spinner = true;
    shoot.ops = 10000 * K;
    churn_workload("shootdowns: churn with a second thread spinning on the other core",
                   &shoot, R, T_ALL, &r);
    report(&r, "ns/op", false, NULL);

    struct {
        const char *name;
        wl_params p;
    } kern[] = {
        {"vmalloc fix_size: 1 page", {0, 0, 0, 10000 * K, 1, false, 64, 0, 1, 1, 0}},
        {"vmalloc random_size: 1-100 pages", {0, 0, 0, 1000 * K, 1, false, 64, 0, 1, 100, 0}},
        {"vmalloc fix_align: 1 page, 4 KiB aligned", {0, 0, 0, 10000 * K, 1, false, 64, 4096, 1, 1, 0}},
        {"vmalloc random_size_align: 1-2048 B, align 1-4096", {0, 1, 2048, 10000 * K, 1, false, 64, (size_t)-1, 0, 0, 0}},
        {"vmalloc long_busy_list: 10000 live pages, churn", {10000, 0, 0, 10000 * K, 1, false, 64, 0, 1, 1, 0}},
    };
    for (size_t k = 0; k < sizeof kern / sizeof kern[0]; k++) {
        churn_workload(kern[k].name, &kern[k].p, R, T_ALL, &r);
        report(&r, "ns/op", false, NULL);
    }

    memset(&r, 0, sizeof r);
    r.workload = "exec: 10000 functions called in random order";
    r.rounds = wanted(r.workload) ? R : 0;
    for (int round = 0; round < r.rounds; round++)
        for (int c = 0; c < NCT; c++) {
            if (!(contenders[c].tags & (T_XM | T_ASMJIT | T_NAIVE | T_INPLACE)) ||
                !ready(&contenders[c]) || !chosen(c) ||
                !contenders[c].cls->executable)
                continue; /* no exec row for the flip pool or the floor model */
            if (run_exec(&contenders[c], 10000, 1000000 * K, (uint64_t)round + 3,
                         &r.s[c][round]))
                r.ran[c] = true;
        }
    report(&r, "ns/call", true, "calls_per_second");

    static const int per_publish[2] = {1, 64};
    for (int k = 0; k < 2; k++) {
        memset(&r, 0, sizeof r);
        r.workload = k ? "strict publish: 64 functions per xm_publish"
                       : "strict publish: 1 function per xm_publish";
        r.rounds = wanted(r.workload) ? R : 0;
        for (int round = 0; round < r.rounds; round++)
            for (int c = 0; c < NCT; c++)
                if ((contenders[c].tags & T_PUBLISH) && ready(&contenders[c]) && chosen(c) &&
                    run_publish(&contenders[c], 6400, per_publish[k], &r.s[c][round]))
                    r.ran[c] = true;
        report(&r, "ns/function", true, "revocations_per_publish");
    }

    json_close();
    return 0;
}
