/* SPDX-License-Identifier: MIT */
/*
 * test.h: the test registry and helpers. One runner binary; each test
 * registers itself with TEST(name); `runner [substring...]` runs the tests
 * whose names contain one of the substrings. The last line is
 * "N passed, N failed, N skipped"; the exit status is non-zero on any
 * failure. A test whose feature is absent here (a kernel without MDWE, no
 * membarrier SYNC_CORE, valgrind) calls test_skip("reason") and returns: it
 * is printed "SKIP name: reason" and counted as skipped, never as passed.
 */
#ifndef XM_TEST_H
#define XM_TEST_H

#include <execmem.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
extern int test_failed; /* failures in the running test */
/* Marks the running test skipped (unless it also failed), with a reason
 * (printf format); the test then returns. With FOR_CONFIGS, one skipped
 * configuration marks the whole test skipped, and the reason names it. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST(name)                                                              \
    static void test_##name(void);                                              \
    __attribute__((constructor)) static void reg_##name(void)                   \
    {                                                                           \
        test_register(#name, test_##name);                                      \
    }                                                                           \
    static void test_##name(void)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            printf("    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failed++;                                                      \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (a_ != b_) {                                                         \
            printf("    %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,    \
                   __LINE__, #a, a_, #b, b_);                                   \
            test_failed++;                                                      \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_OK(expr) CHECK_EQ((expr), XM_OK)

/* The heap configurations every behavioural test runs against. */
typedef struct config {
    const char *name;
    xm_backend backend;
    unsigned flags;
} config;
extern const config configs[];
extern const size_t nconfigs;
xm_heap *make_heap(const config *c, size_t reserve, size_t lazy_limit);
/* test_pkeys.c: flags make_heap adds to a configuration (XM_PKEYS for the
 * DUAL ones without XM_STRICT when XM_TEST_PKEYS=1); the runner as PID 1
 * of a virtual machine: mounts /proc, /sys, /dev, /tmp; powers off. */
unsigned test_extra_flags(const config *c);
void test_init_system(void);
void test_halt_system(void);
/* False for a configuration that XM_TEST_CONFIG=name leaves out (make
 * check-arm64 runs the suite once per backend). */
bool config_enabled(size_t i);
/* For a test that makes its own heap of one configuration (not FOR_CONFIGS):
 * where XM_TEST_CONFIG names another one, it says SKIP and returns; it runs
 * in the pass of its own configuration. */
bool config_name_enabled(const char *name);
#define ONLY_IN_CONFIG(name)                                                   \
    do {                                                                       \
        if (!config_name_enabled(name)) {                                      \
            test_skip("makes its own %s heap: runs in the %s pass", name, name); \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Runs fn(&config) for every configuration (those where cond holds) and
 * stops at the first failure, naming the configuration. */
#define FOR_CONFIGS_IF(fn, cond)                                               \
    for (size_t ci_ = 0; ci_ < nconfigs; ci_++) {                              \
        if (!(cond) || !config_enabled(ci_))                                   \
            continue;                                                          \
        fn(&configs[ci_]);                                                     \
        if (test_failed) {                                                     \
            printf("    (config %s)\n", configs[ci_].name);                    \
            return;                                                            \
        }                                                                      \
    }
#define FOR_CONFIGS(fn) FOR_CONFIGS_IF(fn, 1)

/* The code tests run (return a constant, call, live patch, the trap fill
 * and its signal), per architecture: snippets.h. */
#include "snippets.h"
/* Calls the function at rx (no arguments, returns uint64_t). */
uint64_t call_at(const void *rx);
/* Allocates, writes `return v`, publishes. */
xm_result make_fn(xm_heap *h, size_t size, uint64_t v, xm_block *out);

/* Forks; the child calls fn(arg) and exits 0. Returns the signal that
 * killed the child, 0 if it exited normally, -1 on error. */
int child_signal(void (*fn)(void *), void *arg);
/* Runs fn(arg) in a child; returns its exit status (or 128+signal). */
int child_status(int (*fn)(void *), void *arg);
/* In a fresh runner process (runner --fork-handler-probe): whether an
 * earlier atfork child handler's mapping survives execmem's (0: yes). */
int fork_handler_probe(void);
/* n divided by XM_TEST_SCALE (default 1, at least 1 is returned): the
 * heavy loops' knob for full-system emulation (test/pkeys_check.sh). */
long test_scaled(long n);
/* True when the runner runs under valgrind. */
bool under_valgrind(void);
/* True under a CPU emulator (XM_EMULATED set: make check-arm64, TCG), where
 * the heaviest tests do a fraction of their rounds. */
bool under_emulation(void);
/* Audit of this process; returns false (and prints) when not clean. */
bool audit_clean(bool strict);

/* white-box access (static library; internal symbols) */
void xm__os_inject(long n, int err);
void xm__os_inject_run(long n, long count, int err);
void xm__mem_inject(long n);
uint64_t xm__os_total_calls(void);
uint64_t xm__os_injected(void);
void xm__heap_check(xm_heap *h);
int xm__a64_hotpatch_safe(uint32_t insn);
size_t xm__heap_destroy_all(void);
void xm__heap_ranges(xm_heap *h, uintptr_t *base, size_t *len, uintptr_t *alias);
void xm__park_drop(void);
void xm__park_peek(uintptr_t *rx, uintptr_t *alias);
int xm__bias_state(xm_heap *h, unsigned *owned, unsigned *unbiased);
unsigned xm__bias_steal_max(void);
int xm__fast_state(xm_heap *h);
unsigned xm__fast_gate(xm_heap *h);
uint64_t xm__fast_loads(xm_heap *h); /* xm_load's fast-path hits */
uint64_t xm__fast_allocs(xm_heap *h); /* the staged xm_alloc's fast-path hits */
uint64_t xm__remote_frees(xm_heap *h); /* xm_free's without the arena's lock */
unsigned xm__slot_of_thread(void); /* this thread's slot (assigned if none) */
unsigned xm__arena_count(void);
void xm__fast_inplace(xm_heap *h, uint64_t *allocs, uint64_t *publishes); /* XM_INPLACE's */

#endif
