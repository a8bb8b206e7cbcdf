/* SPDX-License-Identifier: MIT */
/*
 * contender.h: the one interface every allocator under test sits behind,
 * for the workloads in bench.c and matrix.c. A workload sees only this.
 *
 * A contender is a row in a program's table: a name, a class (the code,
 * one file per family: ct_execmem.c, ct_asmjit.c + asmjit_shim.cpp,
 * ct_mprotect.c, ct_malloc.c, ct_floor.c) and the class's settings. The
 * operation every workload times is the JIT's:
 *
 *   get  = allocate len bytes, write the first wlen bytes of ct_code into
 *          them, make them executable; returns where the code runs, NULL
 *          on failure;
 *   put  = free what get returned (len: what was asked of get, or 0 where a
 *          workload keeps no lengths: only classes whose put ignores it,
 *          execmem, asmjit and malloc, may then run).
 *
 * create/destroy bracket one round (a fresh heap, pool or allocator each
 * time); get/put may run on several threads at once between them unless the
 * class says otherwise (the floor model: one thread). counters, where the
 * class has them (execmem: xm_heap_stats), give the allocator's own system
 * call and revocation counts since create.
 *
 * Adding a contender: a file bench/ct_NAME.c that defines a ct_class (the
 * Makefile links every bench/ct_*.c), its declaration below, and a row in
 * the table of each program that should run it.
 */
#ifndef XM_BENCH_CONTENDER_H
#define XM_BENCH_CONTENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The bytes every contender writes: `mov rax, imm64; ret`, then int3 traps
 * (common.c: ct_code_init). A workload may change the imm64 (bytes 2..9)
 * between gets: bench.c's exec rows give each function its own value. */
enum { CT_CODE_SIZE = 8 << 20 }; /* every get writes all it asks for (bench_matrix --cell: up to this) */
extern unsigned char ct_code[CT_CODE_SIZE];

typedef struct contender contender;

typedef struct ct_counters {
    uint64_t syscalls, revocations;
} ct_counters;

typedef struct ct_class {
    bool available;  /* built into this binary (asmjit: libasmjit-dev found) */
    bool executable; /* get's memory runs (malloc: false) */
    bool (*create)(contender *c);
    void (*destroy)(contender *c);
    void *(*get)(contender *c, size_t len, size_t wlen, size_t align);
    void (*put)(contender *c, void *rx, size_t len);
    /* the allocator's own counts since create; NULL: it keeps none */
    bool (*counters)(const contender *c, ct_counters *out);
} ct_class;

/* variant for ct_execmem: xm_heap_create(NULL, ...), the library's defaults */
#define CT_XM_DEFAULTS (-1)
/* flag for ct_execmem (not an xm_options flag): get is one xm_load of the
 * bytes (the JIT's code complete before its address is known) */
#define CT_XM_LOAD 0x80000000u

struct contender {
    const char *name; /* the row's name in tables and JSON */
    const char *note; /* bench.c: shown after the row and in JSON */
    const ct_class *cls;
    /* the class's settings:
     *   ct_execmem: variant = xm_backend (or CT_XM_DEFAULTS), flags = the
     *               xm_options flags (and CT_XM_LOAD), reserve =
     *               xm_options.reserve (0: the library's default);
     *   ct_asmjit:  variant 1 = JitAllocator's kUseDualMapping. */
    int variant;
    unsigned flags;
    size_t reserve;
    bool syscall_per_op; /* enters the kernel on every op (FLIP, naive, flip
                            pool): bench.c runs it for fewer ops */
    unsigned tags;       /* the program's own grouping (bench.c: families) */
    const char *missing; /* set by the program: why this row cannot run here
                            (execmem PKEYS without protection keys) */
    void *state;         /* the class's, from create to destroy */
};

/* The allocator's own counts since create, where its class keeps them. */
static inline bool ct_counters_of(const contender *c, ct_counters *out)
{
    return c->cls->counters && c->cls->counters(c, out);
}

/* create and destroy for a class that keeps no state between them */
static inline bool ct_stateless_create(contender *c)
{
    (void)c;
    return true;
}
static inline void ct_stateless_destroy(contender *c) { (void)c; }

extern const ct_class ct_execmem; /* ct_execmem.c: the library */
extern const ct_class ct_asmjit;  /* ct_asmjit.c: asmjit's JitAllocator */
extern const ct_class ct_naive;   /* ct_mprotect.c: mmap RW, mprotect RX */
extern const ct_class ct_flippool; /* ct_mprotect.c: pages, RW/RX flips */
extern const ct_class ct_malloc;  /* ct_malloc.c: not executable, a floor */
extern const ct_class ct_floor;   /* ct_floor.c: floor_model.h, 1 thread */

/* ct_execmem.c: the heap of an execmem contender between create and
 * destroy, for the one workload that calls the library itself (bench.c's
 * strict publish rows: several functions per xm_publish). */
struct xm_heap;
struct xm_heap *ct_execmem_heap(const contender *c);

#endif
