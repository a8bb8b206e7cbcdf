/* SPDX-License-Identifier: MIT */
/*
 * demo.c: `execmem demo`: a small real JIT on an execmem heap. Each thread
 * generates random expression trees (expr.h), compiles them to machine code
 * into blocks (xm_alloc, copy, xm_publish), calls every function against
 * the interpreter, and frees old ones (xm_free, xm_free_async) to keep a
 * working set; then the W^X audit of its own process, while the working
 * set is live, and the costs, as text or JSON. Public API only.
 */
#include <execmem.h>
#include "cmd.h"
#include "expr.h"
#include "out.h"
#include "proc_tlb.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cmd_demo_help[] =
    "usage: execmem [--json] demo [options]\n"
    "\n"
    "JIT-compiles random arithmetic functions (x86-64 or AArch64 code, the\n"
    "machine's own) into an execmem heap,\n"
    "checks every one against an interpreter, frees old ones, and reports\n"
    "the costs and the W^X audit of its own process (clean means what it\n"
    "means for audit: no W+X mapping and no W+X alias).\n"
    "\n"
    "  --count N        functions to compile (default 1000000)\n"
    "  --working-set N  functions alive at once per thread (default 2000)\n"
    "  --backend B      auto, dual or flip (default auto)\n"
    "  --strict         XM_STRICT: no writable mapping of code at any time\n"
    "                   (DUAL only: refused with --backend flip)\n"
    "  --threads N      compiling threads sharing the heap (1 to 64, default 1)\n"
    "  --seed N         random seed (default 1)\n"
    "  --progress, --no-progress   progress bar on stderr (default: on when\n"
    "                   stderr is a terminal and without --json)\n"
    "  --json           machine-readable output\n"
    "\n"
    "exit status: 0 success; 1 a wrong result, or a W+X mapping in its own\n"
    "process (DUAL's W+X alias without --strict is reported, not an error);\n"
    "2 usage or system error.\n";

/* The expression compiler (generator, interpreter, code for this build's
 * architecture): tools/expr.h. */
typedef uint64_t (*jit_fn)(uint64_t, uint64_t, uint64_t, uint64_t);

typedef struct demo_cfg {
    xm_heap *heap;
    uint64_t count; /* per thread */
    int working_set;
    uint64_t seed;
    bool progress;
    bool named; /* a sink for xm_name is on (XM_PERF, XM_GDB) */
} demo_cfg;

typedef struct demo_thread {
    const demo_cfg *cfg;
    int id;
    uint64_t compiled, calls, mismatches, code_bytes;
    xm_result error;
    const char *error_what;
    void **fns; /* the working set, left live for the audit */
    int nfns;
} demo_thread;

static _Atomic uint64_t demo_done;

static bool verify(demo_thread *t, const expr *e, void *rx, uint64_t *rng, int n)
{
    jit_fn f;
    memcpy(&f, &rx, sizeof f);
    for (int k = 0; k < n; k++) {
        uint64_t x[4];
        for (int j = 0; j < 4; j++)
            x[j] = k == 0 && j == 0 ? 0 : expr_rng_next(rng) >> (expr_rng_next(rng) & 63);
        uint64_t got = f(x[0], x[1], x[2], x[3]), want = expr_eval(e, e->root, x);
        t->calls++;
        if (got != want) {
            if (t->mismatches++ == 0)
                fprintf(stderr, "\nexecmem demo: function at %p returned %llx, "
                                "the interpreter says %llx\n",
                        rx, (unsigned long long)got, (unsigned long long)want);
            return false;
        }
    }
    return true;
}

static void *demo_main(void *arg)
{
    demo_thread *t = arg;
    const demo_cfg *c = t->cfg;
    uint64_t rng = c->seed * 1000003u + (uint64_t)t->id;
    int ws = c->working_set;
    expr *trees = calloc((size_t)ws, sizeof *trees);
    void **fns = calloc((size_t)ws, sizeof *fns);
    uint8_t code[EXPR_MAX_CODE];
    if (!trees || !fns) {
        t->error = XM_ENOMEM;
        t->error_what = "calloc";
        free(trees);
        free(fns);
        return NULL;
    }
    for (uint64_t i = 0; i < c->count; i++) {
        int slot = (int)(expr_rng_next(&rng) % (uint64_t)ws);
        if (fns[slot]) { /* a last check, then the old function goes */
            verify(t, &trees[slot], fns[slot], &rng, 1);
            xm_result r = (i & 7) == 0 ? xm_free_async(c->heap, fns[slot])
                                       : xm_free(c->heap, fns[slot]);
            if (r != XM_OK) {
                t->error = r;
                t->error_what = "xm_free";
                break;
            }
            fns[slot] = NULL;
        }
        expr *e = &trees[slot];
        e->count = 0;
        e->root = expr_gen(e, &rng, 1 + (int)(expr_rng_next(&rng) % 5));
        size_t len = expr_compile(e, code);
        xm_block b;
        xm_result r = xm_alloc(c->heap, len, 0, &b);
        if (r == XM_OK) {
            memcpy(b.rw, code, len);
            if (c->named) { /* for perf and gdb: emitted at publish */
                char name[48];
                snprintf(name, sizeof name, "jit_expr_t%d_%llu", t->id,
                         (unsigned long long)i);
                r = xm_name(c->heap, b.rx, name);
            }
        }
        if (r == XM_OK)
            r = xm_publish(c->heap, b.rx, XM_PROT_RX);
        if (r != XM_OK) {
            t->error = r;
            t->error_what = "xm_alloc/xm_publish";
            break;
        }
        fns[slot] = b.rx;
        t->compiled++;
        t->code_bytes += len;
        verify(t, e, b.rx, &rng, 3);
        /* and a call into some other live function of the working set */
        int other = (int)(expr_rng_next(&rng) % (uint64_t)ws);
        if (fns[other])
            verify(t, &trees[other], fns[other], &rng, 1);
        if ((i & 1023) == 0)
            atomic_fetch_add(&demo_done, 1024);
    }
    t->fns = fns; /* freed by the caller after the audit */
    t->nfns = ws;
    free(trees);
    return NULL;
}


static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return false;
    *out = v;
    return true;
}

int cmd_demo(int argc, char **argv)
{
    if (!expr_arch) {
        (void)argc;
        (void)argv;
        printf("execmem demo: the demo JIT emits x86-64 or AArch64 code; this "
               "machine is neither, nothing to run\n");
        return 0;
    }
    uint64_t count = 1000000, ws = 2000, threads = 1, seed = 1;
    xm_options o = XM_OPTIONS_INIT;
    int progress = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--count"))
            ok = parse_u64(v, &count) && count > 0, i++;
        else if (!strcmp(a, "--working-set"))
            ok = parse_u64(v, &ws) && ws > 0 && ws <= 1000000, i++;
        else if (!strcmp(a, "--threads"))
            ok = parse_u64(v, &threads) && threads > 0 && threads <= 64, i++;
        else if (!strcmp(a, "--seed"))
            ok = parse_u64(v, &seed), i++;
        else if (!strcmp(a, "--backend")) {
            i++;
            if (v && !strcmp(v, "auto"))
                o.backend = XM_BACKEND_AUTO;
            else if (v && !strcmp(v, "dual"))
                o.backend = XM_BACKEND_DUAL;
            else if (v && !strcmp(v, "flip"))
                o.backend = XM_BACKEND_FLIP;
            else
                ok = false;
        } else if (!strcmp(a, "--strict"))
            o.flags |= XM_STRICT;
        else if (!strcmp(a, "--json"))
            out_json = true;
        else if (!strcmp(a, "--progress"))
            progress = 1;
        else if (!strcmp(a, "--no-progress"))
            progress = 0;
        else
            return out_usage_error("demo: unknown option", a);
        if (!ok)
            return out_usage_error("demo: bad value for", a);
    }
    if ((o.flags & XM_STRICT) && o.backend == XM_BACKEND_FLIP)
        return out_usage_error("demo: --strict is a DUAL mode (no writable mapping of "
                           "the memfd); FLIP has no alias to remove: use "
                           "--backend dual or auto", NULL);
    if (progress < 0)
        progress = isatty(2) && !out_json;
    xm_heap *h;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK) {
        fprintf(stderr, "execmem demo: xm_heap_create: %s\n", xm_strerror(r));
        return 2;
    }
    xm_stats hs;
    xm_heap_stats(h, &hs);
    demo_cfg cfg = {h, (count + threads - 1) / threads, (int)ws, seed, progress,
                    (hs.flags & (XM_PERF_MAP | XM_PERF_JITDUMP | XM_GDB)) != 0};
    demo_thread *t = calloc(threads, sizeof *t);
    pthread_t *tid = calloc(threads, sizeof *tid);
    if (!t || !tid) {
        fprintf(stderr, "execmem demo: out of memory\n");
        return 2;
    }
    long long tlb0 = proc_tlb_shootdowns();
    double t0 = now_s();
    for (uint64_t i = 0; i < threads; i++) {
        t[i] = (demo_thread){&cfg, (int)i, 0, 0, 0, 0, XM_OK, NULL, NULL, 0};
        if (pthread_create(&tid[i], NULL, demo_main, &t[i])) {
            fprintf(stderr, "execmem demo: cannot start a thread\n");
            return 2;
        }
    }
    if (progress) {
        uint64_t total = cfg.count * threads;
        for (;;) {
            uint64_t d = atomic_load(&demo_done);
            out_progress(d, total);
            if (d >= total)
                break;
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
            bool running = false;
            for (uint64_t i = 0; i < threads; i++)
                running |= t[i].compiled < cfg.count && !t[i].error &&
                           !t[i].mismatches;
            if (!running)
                break;
        }
        out_progress_end();
    }
    for (uint64_t i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double secs = now_s() - t0;
    long long tlb1 = proc_tlb_shootdowns();
    xm_audit_report a; /* while the working set is live */
    xm_result ar = xm_audit(0, &a);
    for (uint64_t i = 0; i < threads; i++) {
        for (int k = 0; k < t[i].nfns; k++)
            if (t[i].fns[k])
                (void)xm_free(h, t[i].fns[k]);
        free(t[i].fns);
    }
    (void)xm_purge(h);
    xm_stats s;
    xm_heap_stats(h, &s);
    uint64_t compiled = 0, calls = 0, bad = 0, bytes = 0;
    const char *err = NULL;
    xm_result errc = XM_OK;
    for (uint64_t i = 0; i < threads; i++) {
        compiled += t[i].compiled;
        calls += t[i].calls;
        bad += t[i].mismatches;
        bytes += t[i].code_bytes;
        if (t[i].error && !err) {
            err = t[i].error_what;
            errc = t[i].error;
        }
    }
    long long tlb = tlb0 >= 0 && tlb1 >= 0 ? tlb1 - tlb0 : -1;
    double per_fn_us = compiled ? secs * 1e6 * (double)threads / (double)compiled : 0;
    /* clean means what it means for `execmem audit`: no W+X mapping and no
       W+X alias. DUAL's alias without --strict is the documented price of
       publishing without system calls: reported, and not a demo failure;
       a W+X mapping (or an alias under --strict) is. */
    bool clean = ar == XM_OK && a.wx_mappings == 0 && a.wx_aliases == 0;
    bool as_promised = ar == XM_OK && a.wx_mappings == 0 &&
                       (!(s.flags & XM_STRICT) || a.wx_aliases == 0);
    if (out_json) {
        printf("{\"functions\": %llu, \"threads\": %llu, \"working_set\": %llu, "
               "\"seed\": %llu, \"backend\": \"%s\", \"strict\": %s, "
               "\"seconds\": %.3f, \"functions_per_second\": %.0f, "
               "\"avg_code_bytes\": %.1f, \"calls_verified\": %llu, "
               "\"mismatches\": %llu, \"syscalls\": %llu, \"revocations\": %llu, "
               "\"purges\": %llu, \"tlb_shootdowns\": %lld, "
               "\"audit_wx_mappings\": %zu, \"audit_wx_aliases\": %zu, "
               "\"audit_clean\": %s, \"error\": %s%s%s}\n",
               (unsigned long long)compiled, (unsigned long long)threads,
               (unsigned long long)ws, (unsigned long long)seed,
               out_backend_name(s.backend), (s.flags & XM_STRICT) ? "true" : "false",
               secs, secs > 0 ? (double)compiled / secs : 0.0,
               compiled ? (double)bytes / (double)compiled : 0.0,
               (unsigned long long)calls, (unsigned long long)bad,
               (unsigned long long)s.syscalls, (unsigned long long)s.revocations,
               (unsigned long long)s.purges, tlb, a.wx_mappings, a.wx_aliases,
               clean ? "true" : "false",
               err ? "\"" : "", err ? err : "null", err ? "\"" : "");
    } else {
        printf("execmem demo: %llu functions JIT-compiled (random expression trees "
               "over 4 int64 arguments, %s)\n",
               (unsigned long long)compiled, expr_arch);
        printf("  backend %s%s, %llu thread%s, working set %llu per thread, seed %llu\n",
               out_backend_name(s.backend), (s.flags & XM_STRICT) ? " + XM_STRICT" : "",
               (unsigned long long)threads, threads == 1 ? "" : "s",
               (unsigned long long)ws, (unsigned long long)seed);
        printf("  compile + xm_alloc + copy + xm_publish + checks: %.2f s, "
               "%.0f functions/s (%.2f us each), %.0f code bytes on average\n",
               secs, secs > 0 ? (double)compiled / secs : 0.0, per_fn_us,
               compiled ? (double)bytes / (double)compiled : 0.0);
        printf("  calls verified against the interpreter: %llu, mismatches: %llu\n",
               (unsigned long long)calls, (unsigned long long)bad);
        printf("  heap: %llu system calls (%.4f per function), %llu revocations, "
               "%llu purges\n",
               (unsigned long long)s.syscalls,
               compiled ? (double)s.syscalls / (double)compiled : 0.0,
               (unsigned long long)s.revocations, (unsigned long long)s.purges);
        if (tlb >= 0)
            printf("  TLB shootdowns on this machine during the run: %lld "
                   "(/proc/interrupts, all processes)\n", tlb);
        if (ar == XM_OK)
            printf("  W^X audit of this process: %zu W+X mappings, %zu W+X aliases"
                   " -> %s%s\n",
                   a.wx_mappings, a.wx_aliases, clean ? "clean" : "NOT W^X CLEAN",
                   !clean && as_promised
                       ? " (as execmem audit says; the alias is DUAL's writable "
                         "view, expected without --strict, which has none)"
                       : "");
        if (err)
            printf("  stopped early: %s: %s\n", err, xm_strerror(errc));
    }
    xm_heap_destroy(h);
    free(t);
    free(tid);
    if (err)
        return 2;
    return bad || !as_promised ? 1 : 0;
}
