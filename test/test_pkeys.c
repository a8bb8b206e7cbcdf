/* SPDX-License-Identifier: MIT */
/*
 * test_pkeys.c: XM_PKEYS, observed. Writes to the writable alias from
 * outside the library fault with SEGV_PKUERR (a probe: a SIGSEGV handler
 * records si_code and siglongjmps back), on the calling thread between
 * calls and on other threads while a publish, patch or window runs on one
 * thread; the window's and XM_INPLACE's writer can write; every call,
 * every error path (fault injection) and a signal handler that frees with
 * xm_free_async inside a publish leave the thread's PKRU as it was; fork;
 * system calls in steady state; the audit; a stress run.
 * Where the CPU or kernel has no protection keys (this project's VM) the
 * flag is XM_ENOTSUP and every other test here SKIPs with that reason;
 * `make check-pkeys` runs them, and the whole runner in XM_PKEYS mode,
 * under qemu-system-x86_64 -cpu max (test/pkeys_check.sh).
 *
 * Also here: the runner's XM_PKEYS mode (XM_TEST_PKEYS=1: make_heap adds
 * XM_PKEYS to every DUAL configuration without XM_STRICT) and its life as
 * /init of that virtual machine (mounts, power off).
 */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SEGV_PKUERR
#define SEGV_PKUERR 4
#endif

/* ---- the runner's XM_PKEYS mode and /init ------------------------------ */

unsigned test_extra_flags(const config *c)
{
    static int mode = -1;
    if (mode < 0) {
        const char *e = getenv("XM_TEST_PKEYS");
        mode = e && e[0] == '1';
    }
    return mode && c->backend == XM_BACKEND_DUAL && !(c->flags & XM_STRICT)
               ? XM_PKEYS
               : 0u;
}

long test_scaled(long n)
{
    static long div = 0;
    if (!div) {
        const char *e = getenv("XM_TEST_SCALE");
        div = e && atol(e) > 1 ? atol(e) : 1;
    }
    return n / div > 0 ? n / div : 1;
}

/* PID 1 of the virtual machine: what a test needs from a system. */
void test_init_system(void)
{
    mkdir("/proc", 0755);
    mkdir("/sys", 0755);
    mkdir("/dev", 0755);
    mkdir("/tmp", 01777);
    (void)mount("proc", "/proc", "proc", 0, NULL);
    (void)mount("sysfs", "/sys", "sysfs", 0, NULL);
    (void)mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    (void)mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
    setenv("PATH", "/bin:/usr/bin", 0);
    /* THP as on Debian's default (and this project's VM): the cloud
       kernel's "always" makes FLIP's anonymous pages huge, and the
       resident-size tests measure 4 KiB pages */
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "w");
    if (f) {
        fputs("madvise", f);
        fclose(f);
    }
    /* the tests run in a child: a crash is reported, not a kernel panic */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        return;
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0 || WIFSIGNALED(st))
        printf("FAIL runner: %s %d\n", pid < 0 ? "fork failed, errno" : "killed by signal",
               pid < 0 ? errno : WTERMSIG(st));
    test_halt_system();
}

void test_halt_system(void)
{
    fflush(stdout);
    sync();
    (void)reboot(RB_POWER_OFF);
    for (;;)
        pause();
}

/* ---- probes ------------------------------------------------------------ */

#if defined(__x86_64__)
static unsigned rdpkru(void)
{
    unsigned eax, edx;
    __asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}
#else
static unsigned rdpkru(void) { return 0; }
#endif

static _Thread_local sigjmp_buf probe_jb;
static _Thread_local volatile int probe_armed;
static _Thread_local volatile int probe_code, probe_key;

static void probe_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (!probe_armed) { /* not a probe: die as the default would */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    probe_code = si->si_code;
    probe_key = si->si_code == SEGV_PKUERR ? (int)si->si_pkey : -1;
    siglongjmp(probe_jb, 1);
}

static void probe_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = probe_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}

/* Writes one trap byte at p: 0 if the write went through, else the
 * SIGSEGV's si_code (SEGV_PKUERR: the key denied it). Leaves the thread
 * with the kernel's default PKRU when it faulted (signal delivery). */
static int probe_write(volatile unsigned char *p)
{
    probe_armed = 1;
    if (sigsetjmp(probe_jb, 1)) {
        probe_armed = 0;
        return probe_code;
    }
    *p = 0xCC;
    probe_armed = 0;
    return 0;
}

static int sys_pkeys(void)
{
    static int v = -1;
    if (v < 0) {
        xm_sysinfo s;
        v = xm_system_info(&s) == XM_OK && s.pkeys > 0;
    }
    return v;
}

/* A DUAL heap with XM_PKEYS (| extra), or NULL and the test skipped. */
static xm_heap *pk_heap(unsigned extra)
{
    if (!sys_pkeys()) {
        test_skip("no protection keys here (CPU or kernel without PKU: "
                  "make check-pkeys runs these under qemu-system -cpu max)");
        return NULL;
    }
    xm_options o = XM_OPTIONS_INIT;
    o.backend = XM_BACKEND_DUAL;
    o.flags = XM_PKEYS | extra;
    o.reserve = 64 << 20;
    xm_heap *h = NULL;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK)
        printf("    xm_heap_create(XM_PKEYS): %s\n", xm_strerror(r));
    return h;
}

static char *alias_of(xm_heap *h, const void *rx)
{
    uintptr_t base, alias;
    size_t len;
    xm__heap_ranges(h, &base, &len, &alias);
    return (char *)alias + ((uintptr_t)rx - base);
}

/* The heap's key, from the audit (XM_AUDIT_PKEY range of its alias). */
static int key_of(xm_heap *h)
{
    uintptr_t base, alias;
    size_t len;
    xm__heap_ranges(h, &base, &len, &alias);
    xm_audit_report a;
    if (xm_audit(0, &a) != XM_OK)
        return -1;
    for (size_t i = 0; i < a.nranges; i++)
        if (a.ranges[i].kind == XM_AUDIT_PKEY && a.ranges[i].other >= alias &&
            a.ranges[i].other < alias + len)
            return a.pkeys[i];
    return -1;
}

static bool denied(unsigned pkru, int key) { return (pkru >> (2 * key)) & 1; }

/* ---- tests ------------------------------------------------------------- */

/* Where it is refused, and what creation costs and leaves. Runs natively. */
TEST(pkeys_flag_refused_or_enotsup)
{
    xm_options o = XM_OPTIONS_INIT;
    xm_heap *h = (xm_heap *)1;
    o.flags = XM_PKEYS | XM_STRICT;
    CHECK_EQ(xm_heap_create(&o, &h), XM_EINVAL);
    CHECK(h == NULL);
    o.flags = XM_PKEYS;
    o.backend = XM_BACKEND_FLIP;
    CHECK_EQ(xm_heap_create(&o, &h), XM_EINVAL);
    xm_sysinfo s;
    CHECK_OK(xm_system_info(&s));
    for (int b = 0; b < 2; b++) { /* AUTO and DUAL */
        o.backend = b ? XM_BACKEND_DUAL : XM_BACKEND_AUTO;
        for (int inplace = 0; inplace < 2; inplace++) {
            o.flags = XM_PKEYS | (inplace ? XM_INPLACE : 0u);
            xm_result r = xm_heap_create(&o, &h);
            if (!s.pkeys) { /* never a silent heap without keys */
                CHECK_EQ(r, XM_ENOTSUP);
                CHECK(h == NULL);
                continue;
            }
            CHECK_OK(r);
            xm_stats st;
            CHECK_OK(xm_heap_stats(h, &st));
            CHECK_EQ(st.backend, XM_BACKEND_DUAL);
            CHECK(st.flags & XM_PKEYS);
            xm_sysinfo s2; /* the heap holds one key */
            CHECK_OK(xm_system_info(&s2));
            CHECK_EQ(s2.pkeys_free, s.pkeys_free - 1);
            xm_heap_destroy(h);
            CHECK_OK(xm_system_info(&s2));
            CHECK_EQ(s2.pkeys_free, s.pkeys_free); /* and gives it back */
        }
    }
    if (!s.pkeys) {
        CHECK_EQ(s.pkeys_free, 0);
        return;
    }
    /* every failure of creation's system calls: no heap, no key kept,
       the PKRU untouched */
    o.backend = XM_BACKEND_DUAL;
    o.flags = XM_PKEYS;
    long failed = 0;
    for (long n = 1; n < 200; n++) {
        unsigned pk = rdpkru();
        xm__os_inject(n, 0);
        uint64_t fired = xm__os_injected();
        xm_result r = xm_heap_create(&o, &h);
        xm__os_inject(0, 0);
        if (r != XM_OK) { /* pkey_alloc's rights for this thread undone */
            CHECK_EQ(rdpkru(), pk);
            failed++;
        }
        if (xm__os_injected() == fired) {
            CHECK_OK(r);
            xm_heap_destroy(h);
            break;
        }
        if (r == XM_OK) /* a failure the heap survives */
            xm_heap_destroy(h);
        else
            CHECK(h == NULL);
    }
    CHECK(failed > 2); /* pkey_alloc, pkey_mprotect and more */
    xm_sysinfo s3;
    CHECK_OK(xm_system_info(&s3));
    CHECK_EQ(s3.pkeys_free, s.pkeys_free);
}

static void *probe_thread(void *arg)
{
    probe_install();
    return (void *)(intptr_t)probe_write(arg);
}

static int probe_from_thread(void *p)
{
    pthread_t t;
    void *ret;
    if (pthread_create(&t, NULL, probe_thread, p))
        return -1;
    pthread_join(t, &ret);
    return (int)(intptr_t)ret;
}

/* Between calls, no thread writes the alias; each call leaves PKRU as it
 * found it; the code is intact. */
TEST(pkeys_alias_denied_outside_calls)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    probe_install();
    xm_block f, u;
    unsigned pk = rdpkru();
    CHECK_OK(make_fn(h, 64, 7, &f));
    CHECK_EQ(rdpkru(), pk);
    CHECK_OK(xm_alloc(h, 64, 0, &u)); /* unpublished: traps at rx */
    CHECK_EQ(rdpkru(), pk);
    int key = key_of(h);
    CHECK(key > 0 && key < 16);
    CHECK(denied(pk, key));
    CHECK_EQ(probe_write((unsigned char *)alias_of(h, u.rx)), SEGV_PKUERR);
    CHECK_EQ(probe_key, key);
    CHECK_EQ(probe_from_thread(alias_of(h, u.rx)), SEGV_PKUERR);
    CHECK_EQ(probe_from_thread(alias_of(h, f.rx)), SEGV_PKUERR);
    pk = rdpkru(); /* the probe's signal left the kernel default */
    uint64_t v = 8;
    CHECK_OK(xm_patch(h, (char *)f.rx + 2, &v, 8));
    CHECK_EQ(rdpkru(), pk);
    CHECK_EQ(call_at(f.rx), 8);
    xm_block q;
    CHECK_OK(xm_query(h, f.rx, &q));
    CHECK_EQ(rdpkru(), pk);
    xm_stats st;
    CHECK_OK(xm_heap_stats(h, &st));
    CHECK_EQ(rdpkru(), pk);
    CHECK_OK(xm_free(h, u.rx));
    CHECK_EQ(rdpkru(), pk);
    static unsigned char code[70000];
    emit_ret(code, 9);
    xm_block l, lb; /* the magazine's block (fast path), a large one */
    CHECK_OK(xm_load(h, code, RET_LEN, 0, XM_PROT_RX, &l));
    CHECK_EQ(rdpkru(), pk);
    CHECK_OK(xm_load(h, code, sizeof code, 0, XM_PROT_RX, &lb));
    CHECK_EQ(rdpkru(), pk);
    CHECK_EQ(call_at(l.rx), 9);
    CHECK_EQ(call_at(lb.rx), 9);
    CHECK_EQ(probe_write((unsigned char *)alias_of(h, l.rx)), SEGV_PKUERR);
    pk = rdpkru();
    CHECK_OK(xm_free(h, l.rx));
    CHECK_OK(xm_free(h, lb.rx));
    CHECK_EQ(rdpkru(), pk);
    CHECK_OK(xm_free_async(h, f.rx));
    CHECK_OK(xm_purge(h)); /* the drain wrote traps through the alias */
    CHECK_EQ(rdpkru(), pk);
    CHECK_EQ(xm_query(h, f.rx, &q), XM_EBADPTR);
    CHECK_EQ(probe_write((unsigned char *)alias_of(h, f.rx)), SEGV_PKUERR);
    xm_heap_destroy(h);
}

/* A window: its thread writes through *rw, every other thread faults,
 * and after end its thread faults too. */
typedef struct win_arg {
    pthread_barrier_t *b;
    unsigned char *target;
    int code;
} win_arg;

static void *win_other(void *p)
{
    win_arg *a = p;
    probe_install();
    pthread_barrier_wait(a->b); /* the window is open */
    a->code = probe_write(a->target);
    pthread_barrier_wait(a->b);
    return NULL;
}

TEST(pkeys_window_only_its_thread_writes)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    probe_install();
    xm_block f;
    CHECK_OK(make_fn(h, 64, 1, &f));
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    win_arg a = {&b, (unsigned char *)alias_of(h, (char *)f.rx + 12), -1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, win_other, &a) == 0);
    unsigned pk = rdpkru();
    void *rw;
    xm_result r = xm_write_begin(h, (char *)f.rx + 2, 8, &rw);
    uint64_t v = 99;
    if (r == XM_OK)
        memcpy(rw, &v, 8); /* the window's thread may write */
    pthread_barrier_wait(&b);
    pthread_barrier_wait(&b);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&b);
    CHECK_OK(r);
    CHECK_EQ(a.code, SEGV_PKUERR);
    CHECK_EQ(call_at(f.rx), 99);
    CHECK_OK(xm_write_end(h, (char *)f.rx + 2));
    CHECK_EQ(rdpkru(), pk);
    CHECK_EQ(probe_write((unsigned char *)rw), SEGV_PKUERR);
    CHECK_EQ(call_at(f.rx), 99);
    xm_heap_destroy(h);
}

/* Other threads probe the alias while one thread publishes, patches,
 * opens windows and frees, over and over: every probe faults. */
typedef struct busy_arg {
    xm_heap *h;
    unsigned char *target; /* an unpublished block's bytes: traps */
    _Atomic int stop;
    long probes, bad;
} busy_arg;

static void *busy_prober(void *p)
{
    busy_arg *a = p;
    probe_install();
    while (!atomic_load(&a->stop)) {
        if (probe_write(a->target) != SEGV_PKUERR)
            a->bad++;
        a->probes++;
    }
    return NULL;
}

static long hammer(long dflt) { return test_scaled(dflt); }

TEST(pkeys_other_threads_fault_while_one_writes)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    xm_block u;
    CHECK_OK(xm_alloc(h, 4096, 0, &u));
    busy_arg a = {h, (unsigned char *)alias_of(h, u.rx), 0, 0, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, busy_prober, &a) == 0);
    unsigned pk = rdpkru();
    long n = hammer(3000), wrong = 0;
    xm_result r = XM_OK;
    for (long i = 0; i < n && r == XM_OK; i++) {
        xm_block f;
        r = make_fn(h, 64 + (size_t)(i % 7) * 32, (uint64_t)i, &f);
        if (r != XM_OK)
            break;
        uint64_t v = (uint64_t)i + 1;
        r = xm_patch(h, (char *)f.rx + 2, &v, 8);
        void *rw;
        if (r == XM_OK)
            r = xm_write_begin(h, (char *)f.rx + 2, 8, &rw);
        if (r == XM_OK) {
            v = (uint64_t)i + 2;
            memcpy(rw, &v, 8);
            r = xm_write_end(h, (char *)f.rx + 2);
        }
        if (call_at(f.rx) != (uint64_t)i + 2)
            wrong++;
        if (r == XM_OK)
            r = (i & 1) ? xm_free(h, f.rx) : xm_free_async(h, f.rx);
        if (rdpkru() != pk)
            wrong++;
    }
    atomic_store(&a.stop, 1);
    pthread_join(t, NULL);
    CHECK_OK(r);
    CHECK_EQ(wrong, 0);
    CHECK(a.probes > 0);
    CHECK_EQ(a.bad, 0);
    xm_heap_destroy(h);
}

/* Every error path (the n-th system call or allocation fails) returns
 * with the PKRU it was called with, other keys' bits included. */
TEST(pkeys_pkru_restored_on_error_paths)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    int other = pkey_alloc(0, PKEY_DISABLE_WRITE); /* distinctive bits */
    unsigned pk = rdpkru();
    long failures = 0, wrong = 0;
    for (int mem = 0; mem < 2; mem++) {
        for (long n = 1; n < 400; n++) {
            uint64_t fired = xm__os_injected();
            if (mem)
                xm__mem_inject(n);
            else
                xm__os_inject(n, 0);
            xm_block big, f;
            xm_result r1 = xm_alloc(h, 3 << 20, 0, &big); /* maps pages */
            wrong += rdpkru() != pk;
            xm_result r2 = xm_alloc(h, 64, 0, &f);
            wrong += rdpkru() != pk;
            xm_block l;
            if (xm_load(h, "\xcc\xcc", 2, 0, XM_PROT_RX, &l) == XM_OK)
                (void)xm_free(h, l.rx);
            wrong += rdpkru() != pk;
            if (r1 == XM_OK) {
                emit_ret(big.rw, 5);
                (void)xm_publish(h, big.rx, XM_PROT_RX);
                wrong += rdpkru() != pk;
                uint64_t v = 6;
                (void)xm_patch(h, (char *)big.rx + 2, &v, 8);
                wrong += rdpkru() != pk;
                (void)xm_patch_live(h, big.rx, big.rx, 1);
                wrong += rdpkru() != pk;
                void *rw;
                if (xm_write_begin(h, big.rx, 8, &rw) == XM_OK) {
                    (void)xm_write_end(h, big.rx);
                    wrong += rdpkru() != pk;
                }
                (void)xm_free(h, big.rx);
                wrong += rdpkru() != pk;
            }
            if (r2 == XM_OK) {
                emit_ret(f.rw, 5);
                (void)xm_publish(h, f.rx, XM_PROT_RX);
                wrong += rdpkru() != pk;
                (void)xm_free_async(h, f.rx);
            }
            (void)xm_purge(h);
            wrong += rdpkru() != pk;
            bool done = xm__os_injected() == fired;
            xm__os_inject(0, 0);
            xm__mem_inject(0);
            failures += !done;
            if (done)
                break;
        }
    }
    (void)xm_purge(h);
    if (other > 0)
        pkey_free(other);
    CHECK(failures > 0); /* the injections reached the calls */
    CHECK_EQ(wrong, 0);
    xm_block f;
    CHECK_OK(make_fn(h, 64, 3, &f)); /* and the heap works */
    CHECK_EQ(call_at(f.rx), 3);
    xm_heap_destroy(h);
}

/* A signal handler frees blocks with xm_free_async while the thread it
 * interrupted is inside a publish: the handler runs with the kernel's
 * default PKRU (the alias denied), the publish goes on opened after it. */
static xm_heap *sig_heap;
static void *sig_pool[256];
static _Atomic int sig_next, sig_ran, sig_open_in_handler, sig_key;

static void sig_free_async(int sig)
{
    (void)sig;
    int k = atomic_load(&sig_key);
    if (k > 0 && !denied(rdpkru(), k))
        atomic_fetch_add(&sig_open_in_handler, 1);
    int i = atomic_fetch_add(&sig_next, 1);
    if (i < 256)
        (void)xm_free_async(sig_heap, sig_pool[i]);
    atomic_fetch_add(&sig_ran, 1);
}

typedef struct sig_arg {
    pthread_t target;
    _Atomic int stop;
} sig_arg;

static void *sig_sender(void *p)
{
    sig_arg *a = p;
    while (!atomic_load(&a->stop) && atomic_load(&sig_next) < 256) {
        pthread_kill(a->target, SIGUSR1);
        for (volatile int i = 0; i < 2000; i++)
            ;
    }
    return NULL;
}

TEST(pkeys_signal_handler_frees_async_inside_publish)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    sig_heap = h;
    atomic_store(&sig_next, 0);
    atomic_store(&sig_ran, 0);
    atomic_store(&sig_open_in_handler, 0);
    for (int i = 0; i < 256; i++) {
        xm_block b;
        CHECK_OK(make_fn(h, 64, (uint64_t)i, &b));
        sig_pool[i] = b.rx;
    }
    atomic_store(&sig_key, key_of(h));
    CHECK(atomic_load(&sig_key) > 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig_free_async;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    unsigned pk = rdpkru();
    sig_arg a = {pthread_self(), 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, sig_sender, &a) == 0);
    long wrong = 0, n = 0;
    xm_result r = XM_OK;
    while (atomic_load(&sig_next) < 256 && n < 2000000 && r == XM_OK) {
        xm_block f;
        r = make_fn(h, 48, (uint64_t)n, &f);
        if (r == XM_OK && call_at(f.rx) != (uint64_t)n)
            wrong++;
        if (r == XM_OK)
            r = xm_free(h, f.rx);
        if (rdpkru() != pk)
            wrong++;
        n++;
    }
    atomic_store(&a.stop, 1);
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &old, NULL);
    CHECK_OK(r);
    CHECK_EQ(wrong, 0);
    CHECK(atomic_load(&sig_ran) > 0);
    CHECK_EQ(atomic_load(&sig_open_in_handler), 0);
    CHECK_OK(xm_purge(h));
    int freed = 0;
    for (int i = 0; i < 256; i++) {
        xm_block q;
        if (xm_query(h, sig_pool[i], &q) == XM_EBADPTR)
            freed++;
        else if (call_at(sig_pool[i]) != (uint64_t)i)
            wrong++;
    }
    CHECK_EQ(freed, atomic_load(&sig_next) < 256 ? atomic_load(&sig_next) : 256);
    CHECK_EQ(wrong, 0);
    xm_heap_destroy(h);
}

/* fork: the child inherits the forking thread's PKRU (the alias denied)
 * and has no alias at all (MADV_DONTFORK); its code runs, the heap is
 * frozen; the parent goes on with its PKRU. */
typedef struct fork_arg {
    xm_heap *h;
    xm_block f;
    int key;
    unsigned char *alias;
} fork_arg;

static int fork_child(void *p)
{
    fork_arg *a = p;
    probe_install();
    if (!denied(rdpkru(), a->key))
        return 1;
    if (call_at(a->f.rx) != 11)
        return 2;
    xm_block b;
    if (xm_alloc(a->h, 64, 0, &b) != XM_ESTATE)
        return 3;
    int code = probe_write(a->alias);
    if (code == 0)
        return 4;
    return 0;
}

TEST(pkeys_fork)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    fork_arg a;
    a.h = h;
    CHECK_OK(make_fn(h, 64, 11, &a.f));
    a.key = key_of(h);
    a.alias = (unsigned char *)alias_of(h, a.f.rx);
    CHECK(a.key > 0);
    unsigned pk = rdpkru();
    CHECK_EQ(child_status(fork_child, &a), 0);
    CHECK_EQ(rdpkru(), pk);
    uint64_t v = 12;
    CHECK_OK(xm_patch(h, (char *)a.f.rx + 2, &v, 8));
    CHECK_EQ(call_at(a.f.rx), 12);
    xm_heap_destroy(h);
}

/* A thread made before the right was held (a new thread inherits its
 * creator's PKRU: one made inside a window or an XM_INPLACE hold may write
 * too): probes on request. */
typedef struct prober {
    pthread_t t;
    unsigned char *_Atomic target; /* NULL: idle */
    _Atomic int result, quit;
} prober;

static void *prober_main(void *p)
{
    prober *pr = p;
    probe_install();
    while (!atomic_load(&pr->quit)) {
        unsigned char *t = atomic_load(&pr->target);
        if (!t) {
            sched_yield();
            continue;
        }
        atomic_store(&pr->result, probe_write(t));
        atomic_store(&pr->target, NULL);
    }
    return NULL;
}

static int prober_probe(prober *pr, void *p)
{
    atomic_store(&pr->target, (unsigned char *)p);
    while (atomic_load(&pr->target))
        sched_yield();
    return atomic_load(&pr->result);
}

/* XM_INPLACE: xm_alloc lets its thread write rw until the block is
 * published or freed; other threads fault all along. */
TEST(pkeys_inplace_writer_until_publish)
{
    xm_heap *h = pk_heap(XM_INPLACE);
    if (!h)
        return;
    probe_install();
    static prober pr;
    memset(&pr, 0, sizeof pr);
    CHECK(pthread_create(&pr.t, NULL, prober_main, &pr) == 0);
    unsigned pk = rdpkru();
    xm_block f, g;
    xm_result r = xm_alloc(h, 64, 0, &f);
    if (r == XM_OK)
        r = xm_alloc(h, 64, 0, &g);
    int code = -1;
    if (r == XM_OK) {
        emit_ret(f.rw, 21); /* its thread writes in place */
        code = prober_probe(&pr, (char *)f.rw + 40);
    }
    atomic_store(&pr.quit, 1);
    pthread_join(pr.t, NULL);
    CHECK_OK(r);
    CHECK_EQ(code, SEGV_PKUERR);
    CHECK_OK(xm_publish(h, f.rx, XM_PROT_RX));
    CHECK_EQ(call_at(f.rx), 21);
    emit_ret(g.rw, 22); /* g is still unpublished: still open */
    CHECK_OK(xm_free(h, g.rx));
    CHECK_EQ(rdpkru(), pk); /* every block published or freed: closed */
    CHECK_EQ(probe_write((unsigned char *)f.rw + 40), SEGV_PKUERR);
    CHECK_EQ(call_at(f.rx), 21);
    xm_heap_destroy(h);
}

/* No system call per publish or free in steady state: as many as DUAL. */
static uint64_t churn_syscalls(xm_heap *h)
{
    xm_block f;
    for (int i = 0; i < 200; i++) /* warm the magazines */
        if (make_fn(h, 64, 1, &f) != XM_OK || xm_free(h, f.rx) != XM_OK)
            return UINT64_MAX;
    xm_stats s0, s1;
    xm_heap_stats(h, &s0);
    for (int i = 0; i < 2000; i++)
        if (make_fn(h, 64 + (size_t)(i % 4) * 64, 1, &f) != XM_OK ||
            xm_free(h, f.rx) != XM_OK)
            return UINT64_MAX;
    xm_heap_stats(h, &s1);
    return s1.syscalls - s0.syscalls;
}

TEST(pkeys_no_syscall_in_steady_state)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    config dual = {"dual", XM_BACKEND_DUAL, 0};
    xm_heap *d = make_heap(&dual, 64 << 20, 0);
    CHECK(d);
    uint64_t pk = churn_syscalls(h), du = churn_syscalls(d);
    xm_heap_destroy(d);
    xm_heap_destroy(h);
    CHECK(pk != UINT64_MAX);
    CHECK_EQ(pk, du);
    CHECK_EQ(pk, 0);
}

/* The audit shows the alias's key and counts it as protected. */
TEST(pkeys_audit_counts_keyed_alias_as_protected)
{
    xm_audit_report before;
    CHECK_OK(xm_audit(0, &before));
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    xm_block f;
    CHECK_OK(make_fn(h, 64, 1, &f));
    xm_audit_report a;
    CHECK_OK(xm_audit(0, &a));
    CHECK_EQ(a.wx_aliases, before.wx_aliases);
    CHECK_EQ(a.pkey_aliases, before.pkey_aliases + 1);
    int key = key_of(h);
    CHECK(key > 0 && key < 16);
    CHECK_OK(xm_audit_ex(0, XM_AUDIT_SMAPS, &a));
    CHECK_EQ(a.pkey_aliases, before.pkey_aliases + 1);
    xm_heap_destroy(h);
    CHECK_OK(xm_audit(0, &a));
    CHECK_EQ(a.pkey_aliases, before.pkey_aliases);
}

/* Stress: threads churn (alloc, write, publish, patch, window, free, async
 * free) on one XM_PKEYS heap with a seed while a prober writes the alias:
 * every result right, every probe faulted, every PKRU restored. */
typedef struct stress_arg {
    xm_heap *h;
    unsigned seed;
    long n, wrong;
} stress_arg;

static void *stress_worker(void *p)
{
    stress_arg *a = p;
    unsigned pk = rdpkru();
    unsigned x = a->seed;
    void *live[16] = {0};
    uint64_t val[16];
    for (long i = 0; i < a->n; i++) {
        x = x * 1103515245u + 12345u;
        unsigned s = (x >> 8) % 16, op = (x >> 16) % 4;
        if (!live[s]) {
            xm_block f;
            if (make_fn(a->h, 16 + (x >> 20) % 600, i, &f) != XM_OK) {
                a->wrong++;
                continue;
            }
            live[s] = f.rx;
            val[s] = (uint64_t)i;
        } else if (op == 0) {
            uint64_t v = (uint64_t)i;
            if (xm_patch(a->h, (char *)live[s] + 2, &v, 8) == XM_OK)
                val[s] = v;
            else
                a->wrong++;
        } else if (op == 1) {
            void *rw;
            if (xm_write_begin(a->h, (char *)live[s] + 2, 8, &rw) == XM_OK) {
                uint64_t v = (uint64_t)i + 7;
                memcpy(rw, &v, 8);
                val[s] = v;
                if (xm_write_end(a->h, (char *)live[s] + 2) != XM_OK)
                    a->wrong++;
            } else {
                a->wrong++;
            }
        } else {
            if (call_at(live[s]) != val[s])
                a->wrong++;
            if ((op == 2 ? xm_free(a->h, live[s]) : xm_free_async(a->h, live[s])) != XM_OK)
                a->wrong++;
            live[s] = NULL;
        }
        if (live[s] && call_at(live[s]) != val[s])
            a->wrong++;
        if (rdpkru() != pk)
            a->wrong++;
    }
    for (int s = 0; s < 16; s++)
        if (live[s])
            (void)xm_free(a->h, live[s]);
    return NULL;
}

TEST(pkeys_stress)
{
    xm_heap *h = pk_heap(0);
    if (!h)
        return;
    xm_block u;
    CHECK_OK(xm_alloc(h, 4096, 0, &u));
    busy_arg pa = {h, (unsigned char *)alias_of(h, u.rx), 0, 0, 0};
    pthread_t pt, wt[2];
    stress_arg sa[2];
    CHECK(pthread_create(&pt, NULL, busy_prober, &pa) == 0);
    for (int i = 0; i < 2; i++) {
        sa[i] = (stress_arg){h, 0x9e3779b9u * (unsigned)(i + 1), hammer(20000), 0};
        pthread_create(&wt[i], NULL, stress_worker, &sa[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(wt[i], NULL);
    atomic_store(&pa.stop, 1);
    pthread_join(pt, NULL);
    CHECK_EQ(sa[0].wrong, 0);
    CHECK_EQ(sa[1].wrong, 0);
    CHECK(pa.probes > 0);
    CHECK_EQ(pa.bad, 0);
    xm_heap_destroy(h);
}
