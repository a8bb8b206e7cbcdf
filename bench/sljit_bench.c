/* SPDX-License-Identifier: MIT */
/*
 * sljit_bench.c: sljit compile + call + free of 10-instruction functions,
 * 1,000 live (the oldest freed as each new one comes), with sljit's own
 * allocator (RWX pages), sljit's own dual-mapped allocator
 * (SLJIT_PROT_EXECUTABLE_ALLOCATOR) and adapters/sljit on an XM_INPLACE
 * heap in each mode, all in one process so the ratios are like for like.
 *
 * This one file is compiled several times (Makefile: build/bench_sljit):
 * with SLJIT_BENCH_PART=1 (sljit's RWX allocator), 2 (its dual-mapped one),
 * 3 (the execmem adapter) each holds a private copy of sljit
 * (SLJIT_CONFIG_STATIC: sljitLir.c included, every function static) and
 * one loop; without it, main.
 *   build/bench_sljit [--quick] [--iters N]
 * Targets (issue 17): DUAL+INPLACE within 1.2x of sljit's RWX allocator;
 * STRICT+INPLACE at most one system call more per publish or commit than
 * DUAL+INPLACE and nothing else.
 */
#define SLJIT_BENCH_LIVE 1000

#if defined(SLJIT_BENCH_PART)
#define SLJIT_CONFIG_AUTO 1
#define SLJIT_CONFIG_STATIC 1
#if SLJIT_BENCH_PART == 2
#define SLJIT_PROT_EXECUTABLE_ALLOCATOR 1
#endif
#include "sljitLir.c"

#if SLJIT_BENCH_PART == 1
#define LOOP sljit_bench_rwx
#elif SLJIT_BENCH_PART == 2
#define LOOP sljit_bench_prot
#else
#define LOOP sljit_bench_xm
#endif

typedef sljit_sw(SLJIT_FUNC *fn1)(sljit_sw);

/* f(x) = ((x + i) * 3 ^ 5) - 1 ... : 10 instructions between enter and
 * return, one constant varying per function */
static void *compile_one(sljit_sw k)
{
    struct sljit_compiler *c = sljit_create_compiler(NULL);
    if (!c)
        return NULL;
    sljit_emit_enter(c, 0, SLJIT_ARGS1(W, W), 2, 1, 0);
    sljit_emit_op1(c, SLJIT_MOV, SLJIT_R0, 0, SLJIT_S0, 0);
    sljit_emit_op2(c, SLJIT_ADD, SLJIT_R0, 0, SLJIT_R0, 0, SLJIT_IMM, k);
    sljit_emit_op2(c, SLJIT_MUL, SLJIT_R0, 0, SLJIT_R0, 0, SLJIT_IMM, 3);
    sljit_emit_op2(c, SLJIT_XOR, SLJIT_R0, 0, SLJIT_R0, 0, SLJIT_IMM, 5);
    sljit_emit_op2(c, SLJIT_SUB, SLJIT_R0, 0, SLJIT_R0, 0, SLJIT_IMM, 1);
    sljit_emit_op1(c, SLJIT_MOV, SLJIT_R1, 0, SLJIT_R0, 0);
    sljit_emit_op2(c, SLJIT_SHL, SLJIT_R1, 0, SLJIT_R1, 0, SLJIT_IMM, 1);
    sljit_emit_op2(c, SLJIT_ADD, SLJIT_R0, 0, SLJIT_R0, 0, SLJIT_R1, 0);
    sljit_emit_op2(c, SLJIT_AND, SLJIT_R0, 0, SLJIT_R0, 0, SLJIT_IMM, 0xffffff);
    sljit_emit_op2(c, SLJIT_OR, SLJIT_R0, 0, SLJIT_R0, 0, SLJIT_IMM, 1);
    sljit_emit_return(c, SLJIT_MOV, SLJIT_R0, 0);
    void *code = sljit_generate_code(c, 0, NULL);
    sljit_free_compiler(c);
    return code;
}

static sljit_sw expect(sljit_sw x, sljit_sw k)
{
    sljit_sw r = ((((x + k) * 3) ^ 5) - 1);
    r = r + (r << 1);
    return (r & 0xffffff) | 1;
}

/* Returns 0, or -1 when a function was wrong or could not be made. */
int LOOP(long iters);
int LOOP(long iters)
{
    static void *live[SLJIT_BENCH_LIVE];
    int bad = 0;
    for (long i = 0; i < iters; i++) {
        void **slot = &live[i % SLJIT_BENCH_LIVE];
        if (*slot)
            sljit_free_code(*slot, NULL);
        sljit_sw k = (sljit_sw)(i & 1023);
        *slot = compile_one(k);
        if (!*slot)
            return -1;
        fn1 f = (fn1)SLJIT_FUNC_ADDR(*slot);
        bad |= f(7) != expect(7, k);
    }
    for (int i = 0; i < SLJIT_BENCH_LIVE; i++)
        if (live[i]) {
            sljit_free_code(live[i], NULL);
            live[i] = NULL;
        }
    return bad ? -1 : 0;
}

#else /* main */
#include <execmem.h>
#include <sljit_execmem.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int sljit_bench_rwx(long iters);
int sljit_bench_prot(long iters);
int sljit_bench_xm(long iters);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    long iters = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            iters = 5000;
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--iters N]\n", argv[0]);
            return 2;
        }
    }
    if (iters < 2 * SLJIT_BENCH_LIVE)
        iters = 2 * SLJIT_BENCH_LIVE;
    printf("sljit: compile + call + free, 10-instruction functions, %d live, %ld per row "
           "(FLIP a tenth), best of 3 interleaved rounds\n", SLJIT_BENCH_LIVE, iters);
    int fail = 0;
    static const struct {
        const char *name;
        xm_backend backend;
        unsigned flags;
    } modes[] = {
        {"execmem DUAL+INPLACE", XM_BACKEND_DUAL, XM_INPLACE},
        {"execmem DUAL+STRICT+INPLACE", XM_BACKEND_DUAL, XM_INPLACE | XM_STRICT},
        {"execmem FLIP+INPLACE", XM_BACKEND_FLIP, XM_INPLACE},
    };
    /* rows: 0 RWX, 1 dual-mapped, 2.. the adapter's modes; each round runs
       every row once (interleaved, so a noisy moment hits all rows alike)
       and a row's figure is its best round. FLIP runs a tenth as many
       functions (hundreds of microseconds each). */
    enum { ROWS = 5, ROUNDS = 3 };
    double best[ROWS], sys[ROWS] = {0};
    bool avail[ROWS];
    for (int r = 0; r < ROWS; r++) {
        best[r] = 1e300;
        avail[r] = true;
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int r = 0; r < ROWS; r++) {
            if (!avail[r])
                continue;
            long n = r == 4 ? (iters / 10 > 2 * SLJIT_BENCH_LIVE ? iters / 10 : 2 * SLJIT_BENCH_LIVE)
                            : iters;
            int (*loop)(long) = r == 0 ? sljit_bench_rwx : r == 1 ? sljit_bench_prot : sljit_bench_xm;
            xm_heap *h = NULL;
            if (r >= 2) {
                xm_options o = XM_OPTIONS_INIT;
                o.backend = modes[r - 2].backend;
                o.flags = modes[r - 2].flags;
                if (xm_heap_create(&o, &h) != XM_OK || sljit_execmem_use(h)) {
                    printf("sljit: %-34s unavailable here\n", modes[r - 2].name);
                    xm_heap_destroy(h);
                    avail[r] = false;
                    continue;
                }
            }
            fail |= loop(2 * SLJIT_BENCH_LIVE); /* warm-up: first faults */
            xm_stats s0, s1;
            if (h)
                xm_heap_stats(h, &s0);
            double t0 = now();
            fail |= loop(n);
            double t = (now() - t0) / (double)n;
            if (h) {
                /* every system call of the heap per function made,
                   published, called and freed */
                xm_heap_stats(h, &s1);
                sys[r] = (double)(s1.syscalls - s0.syscalls) / (double)n;
                xm_heap_destroy(h);
            }
            if (t < best[r])
                best[r] = t;
        }
    }
    static const char *names[2] = {"sljit own allocator (RWX)",
                                   "sljit own dual-mapped allocator"};
    for (int r = 0; r < ROWS; r++) {
        if (!avail[r])
            continue;
        const char *nm = r < 2 ? names[r] : modes[r - 2].name;
        printf("sljit: %-34s %8.0f ns/fn  %5.2fx", nm, best[r], best[r] / best[0]);
        if (r >= 2)
            printf("  %.3f syscalls per function", sys[r]);
        printf("\n");
    }
    if (avail[2] && avail[3])
        printf("sljit: STRICT+INPLACE - DUAL+INPLACE: %.3f syscalls per function "
               "(each: one publish, one free)\n", sys[3] - sys[2]);
    if (fail)
        printf("sljit: WRONG RESULTS\n");
    return fail ? 1 : 0;
}
#endif
