/* SPDX-License-Identifier: MIT */
/* runner.c: registry, helpers and main of the test runner. */
#include "test.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

#define MAX_TESTS 256
static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int ntests;
int test_failed;
static char skip_reason[256]; /* non-empty: the running test skipped */

void test_skip(const char *fmt, ...)
{
    size_t n = strlen(skip_reason);
    if (n && n + 2 < sizeof skip_reason) { /* several configurations */
        memcpy(skip_reason + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_reason + n, sizeof skip_reason - n, fmt, ap);
    va_end(ap);
}

void test_register(const char *name, test_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

const config configs[] = {
    {"dual", XM_BACKEND_DUAL, 0},
    {"strict", XM_BACKEND_DUAL, XM_STRICT},
    {"flip", XM_BACKEND_FLIP, 0},
    {"inplace", XM_BACKEND_DUAL, XM_INPLACE},
};
const size_t nconfigs = sizeof configs / sizeof configs[0];

bool config_name_enabled(const char *name)
{
    const char *only = getenv("XM_TEST_CONFIG");
    return !only || !*only || !strcmp(only, name);
}

bool config_enabled(size_t i) { return config_name_enabled(configs[i].name); }

xm_heap *make_heap(const config *c, size_t reserve, size_t lazy_limit)
{
    xm_options o = XM_OPTIONS_INIT;
    o.backend = c->backend;
    o.flags = c->flags | test_extra_flags(c); /* XM_TEST_PKEYS=1 */
    o.reserve = reserve;
    o.lazy_limit = lazy_limit;
    xm_heap *h = NULL;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK)
        printf("    xm_heap_create(%s): %s\n", c->name, xm_strerror(r));
    return h;
}

uint64_t call_at(const void *rx)
{
    uint64_t (*f)(void);
    memcpy(&f, &rx, sizeof f);
    return f();
}

xm_result make_fn(xm_heap *h, size_t size, uint64_t v, xm_block *out)
{
    xm_result r = xm_alloc(h, size < RET_LEN ? RET_LEN : size, 0, out);
    if (r != XM_OK)
        return r;
    emit_ret(out->rw, v);
    return xm_publish(h, out->rx, XM_PROT_RX);
}

int child_signal(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        signal(SIGTRAP, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

int child_status(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(fn(arg));
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

bool under_valgrind(void)
{
#ifdef HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND != 0;
#else
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
#endif
}

bool under_emulation(void)
{
    const char *e = getenv("XM_EMULATED");
    return e && *e && strcmp(e, "0") != 0;
}

bool audit_clean(bool strict)
{
    xm_audit_report a;
    if (xm_audit(0, &a) != XM_OK) {
        printf("    xm_audit failed\n");
        return false;
    }
    /* valgrind's translation cache is RWX in our maps: the per-mapping
       check is left to the native run */
    if (under_valgrind())
        a.wx_mappings = 0;
    if (a.wx_mappings || (strict && a.wx_aliases)) {
        printf("    audit: %zu W+X mappings, %zu W+X aliases\n", a.wx_mappings,
               a.wx_aliases);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* a fresh process for a test that needs one (test_concurrency.c) */
    if (argc == 2 && !strcmp(argv[1], "--fork-handler-probe"))
        return fork_handler_probe();
    if (getpid() == 1) /* /init of a virtual machine (test/pkeys_check.sh) */
        test_init_system();
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < ntests; i++) {
        bool run = argc < 2;
        for (int k = 1; k < argc; k++)
            if (strstr(tests[i].name, argv[k]))
                run = true;
        if (!run)
            continue;
        test_failed = 0;
        skip_reason[0] = 0;
        tests[i].fn();
        if (test_failed) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
            /* a failed check returns before the test's xm_heap_destroy:
               its heaps (a writable alias among them) would fail the
               audits of every later test */
            size_t n = xm__heap_destroy_all();
            if (n)
                printf("    (destroyed %zu heap(s) the failed test left)\n", n);
        } else if (skip_reason[0]) {
            printf("SKIP %s: %s\n", tests[i].name, skip_reason);
            skipped++;
        } else {
            printf("ok   %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (getpid() == 1)
        test_halt_system();
    return failed ? 1 : 0;
}
