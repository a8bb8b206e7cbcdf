/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c: fault injection through the OS layer (SQLite's anomaly
 * tests). A scripted scenario runs once per N with the N-th system call (or
 * the N-th metadata allocation) failing, for every N until the scenario
 * completes with no fault delivered. Each run checks:
 *   - the failing call returned an error, and the block it was about is in
 *     the state the model says (a failed publish leaves it unpublished, a
 *     failed free leaves it live and running);
 *   - every block published before the scenario still returns its value;
 *   - the heap keeps working afterwards and its structures are consistent;
 *   - nothing leaks: descriptors and mappings are counted before the heap
 *     is created and after it is destroyed.
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* A snapshot of /proc/self/maps. Leak checks compare two snapshots and
 * report a line present only in the second, unless it is an anonymous
 * read-write mapping (malloc's or a sanitizer's heap growing, never ours:
 * every mapping execmem keeps is PROT_NONE, read-only, executable or a
 * memfd view). */
typedef struct maps_snap {
    char *text;
} maps_snap;

static maps_snap maps_take(void)
{
    maps_snap m = {NULL};
    FILE *f = fopen("/proc/self/maps", "r");
    size_t cap = 0, len = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            m.text = realloc(m.text, cap);
        }
        memcpy(m.text + len, line, n + 1);
        len += n;
    }
    if (f)
        fclose(f);
    return m;
}

static bool ours_candidate(const char *line)
{
    char perms[8] = {0};
    unsigned long ino = 0;
    if (sscanf(line, "%*x-%*x %7s %*x %*x:%*x %lu", perms, &ino) != 2)
        return false;
    if (ino == 0 && !strstr(line, "memfd:") &&
        ((perms[0] == 'r' && perms[1] == 'w' && perms[2] != 'x') ||
         strncmp(perms, "---", 3) == 0))
        return false; /* checked through maps_overlap for our reserve */
    if (ino == 0 && strncmp(perms, "rwx", 3) == 0 && under_valgrind())
        return false; /* valgrind's translation cache growing */
    return true;
}

/* Lines of b (ours_candidate) that are not in a; prints them. */
static int maps_leaks(const maps_snap *a, const maps_snap *b)
{
    int leaks = 0;
    for (const char *l = b->text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l + 1) : strlen(l);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)n, l);
        if (ours_candidate(line) && !(a->text && strstr(a->text, line))) {
            printf("    new mapping: %s", line);
            leaks++;
        }
        l += n;
    }
    return leaks;
}

static void maps_drop(maps_snap *m) { free(m->text); }

/* New mappings since *before (see ours_candidate); frees *before. */
static int maps_leaks_since(maps_snap *before)
{
    maps_snap now = maps_take();
    int leaks = maps_leaks(before, &now);
    maps_drop(before);
    maps_drop(&now);
    return leaks;
}

/* Mappings overlapping [a, a+len) right now. */
static int maps_overlap(uintptr_t a, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (a && f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < a + len && a < e) {
            printf("    still mapped: %s", line);
            n++;
        }
    }
    if (f)
        fclose(f);
    return n;
}

/* Destroys h; returns how many mappings are left in its reserve or where
 * its writable alias was, once what a destroy parks for the next heap
 * (the anchor pages) is dropped. */
static int destroy_and_count_left(xm_heap *h)
{
    uintptr_t base, alias;
    size_t len;
    xm__heap_ranges(h, &base, &len, &alias);
    xm_heap_destroy(h);
    xm__park_drop();
    return maps_overlap(base, len) + maps_overlap(alias, len);
}

enum { ANCHORS = 6, SLOTS = 8 };

typedef struct model {
    xm_block b[SLOTS];
    bool live[SLOTS], pub[SLOTS];
    uint64_t val[SLOTS];
} model;

/* Does one scripted step on slot k; returns false if the heap broke a
 * promise (the failure itself is allowed, a wrong state is not). */
static bool step(xm_heap *h, model *m, int op, int k, uint64_t v)
{
    static const size_t sizes[SLOTS] = {24, 300, 5000, 40000, 64, 17000, 100, 9};
    xm_result r;
    xm_block q;
    switch (op) {
    case 0: /* alloc + write + publish */
        if (m->live[k])
            return true;
        r = xm_alloc(h, sizes[k], 0, &m->b[k]);
        if (r != XM_OK)
            return r == XM_ENOMEM || r == XM_EOS || r == XM_EPERM;
        m->live[k] = true;
        m->pub[k] = false;
        emit_ret(m->b[k].rw, v);
        m->val[k] = v;
        r = xm_publish(h, m->b[k].rx, XM_PROT_RX);
        if (r == XM_OK) {
            m->pub[k] = true;
            return call_at(m->b[k].rx) == v;
        }
        /* still there, still unpublished, still holding what was written */
        return xm_query(h, m->b[k].rx, &q) == XM_OK && q.rw != NULL &&
               memcmp(q.rw, m->b[k].rw, RET_LEN) == 0;
    case 1: /* publish a block whose first publish failed */
        if (!m->live[k] || m->pub[k])
            return true;
        r = xm_publish(h, m->b[k].rx, XM_PROT_RX);
        if (r == XM_OK) {
            m->pub[k] = true;
            return call_at(m->b[k].rx) == m->val[k];
        }
        return r != XM_ESTATE;
    case 2: /* patch */
        if (!m->live[k] || !m->pub[k])
            return true;
        r = patch_ret(h, m->b[k].rx, v);
        if (r == XM_OK)
            m->val[k] = v;
        return call_at(m->b[k].rx) == m->val[k];
    case 3: /* free */
        if (!m->live[k])
            return true;
        r = xm_free(h, m->b[k].rx);
        if (r == XM_OK) {
            m->live[k] = false;
            return xm_query(h, m->b[k].rx, &q) == XM_EBADPTR;
        }
        return xm_query(h, m->b[k].rx, &q) == XM_OK &&
               (!m->pub[k] || call_at(m->b[k].rx) == m->val[k]);
    case 4: /* async free */
        if (!m->live[k])
            return true;
        if (xm_free_async(h, m->b[k].rx) != XM_OK)
            return false;
        m->live[k] = false; /* completes at some later call, retried */
        return true;
    case 5:
        (void)xm_purge(h);
        return true;
    case 6: /* data block */
        if (m->live[k])
            return true;
        r = xm_alloc_data(h, sizes[k], 0, &m->b[k]);
        if (r != XM_OK)
            return true;
        memcpy(m->b[k].rw, "data", 5);
        r = xm_publish(h, m->b[k].rx, XM_PROT_R);
        if (r != XM_OK) {
            (void)xm_free(h, m->b[k].rx); /* may fail too: then it stays */
            m->live[k] = xm_query(h, m->b[k].rx, &q) == XM_OK;
            m->pub[k] = false;
            m->val[k] = 0;
            return true;
        }
        m->live[k] = true;
        m->pub[k] = false; /* data: not callable; the model skips it */
        m->val[k] = 0;
        return memcmp(m->b[k].rx, "data", 5) == 0;
    case 7: { /* xm_load: allocated and published, or nothing at all */
        if (m->live[k])
            return true;
        static unsigned char code[40000]; /* the slot's size: large loads too */
        size_t len = sizes[k] < RET_LEN ? RET_LEN : sizes[k];
        memset(code, TRAP_BYTE, len);
        emit_ret(code, v);
        xm_stats s0, s1;
        if (xm_heap_stats(h, &s0) != XM_OK)
            return false;
        r = xm_load(h, code, len, 0, XM_PROT_RX, &m->b[k]);
        if (r != XM_OK) /* (a drain of async frees may complete frees;
                           XM_STRICT frees a block whose publish failed) */
            return (r == XM_ENOMEM || r == XM_EOS || r == XM_EPERM) &&
                   xm_heap_stats(h, &s1) == XM_OK &&
                   s1.live_blocks <= s0.live_blocks;
        m->live[k] = m->pub[k] = true;
        m->val[k] = v;
        return call_at(m->b[k].rx) == v;
    }
    }
    return true;
}

static const int script[][2] = {
    {0, 0}, {0, 1}, {0, 2}, {0, 3}, {2, 0}, {2, 3}, {3, 1}, {6, 4}, {0, 5},
    {3, 0}, {3, 3}, {5, 0}, {0, 6}, {4, 2}, {0, 0}, {1, 0}, {1, 1}, {1, 2},
    {5, 0}, {0, 3}, {2, 3}, {3, 5}, {3, 6}, {0, 7}, {5, 0}, {4, 7}, {3, 4},
    {3, 2}, {7, 2}, {3, 3}, {7, 3}, {7, 4}, {3, 1}, {7, 1}, {2, 2}, {5, 0},
};

/* One run; fault = 0: none. Returns the number of faults delivered, or -1
 * after reporting a broken promise. */
static int run_once(const config *c, long nth, int err, bool mem)
{
    int fds0 = count_fds();
    maps_snap maps0 = maps_take();
    uint64_t fired0 = xm__os_injected();
    xm_options o = XM_OPTIONS_INIT;
    o.backend = c->backend;
    o.flags = c->flags;
    o.reserve = 8 << 20;
    o.lazy_limit = 64 << 10; /* purges happen inside the script too */
    xm_heap *h = NULL;
    /* anchors first, without faults */
    if (xm_heap_create(&o, &h) != XM_OK)
        return -1;
    xm_block anchor[ANCHORS];
    for (int i = 0; i < ANCHORS; i++)
        if (make_fn(h, 40 + (size_t)i * 3000, 500 + (uint64_t)i, &anchor[i]) != XM_OK)
            return -1;
    model m;
    memset(&m, 0, sizeof m);
    if (mem)
        xm__mem_inject(nth);
    else
        xm__os_inject(nth, err);
    bool ok = true;
    int bad_at = -1;
    for (size_t s = 0; s < sizeof script / sizeof script[0] && ok; s++) {
        ok = step(h, &m, script[s][0], script[s][1], 1000 + s);
        if (!ok)
            bad_at = (int)s;
    }
    xm__os_inject(0, 0);
    xm__mem_inject(0);
    int fired = (int)(xm__os_injected() - fired0);
    if (!ok) {
        printf("    fault %s#%ld errno %d: step %d broke a promise\n",
               mem ? "mem" : "os", nth, err, bad_at);
        return -1;
    }
    for (int i = 0; i < ANCHORS; i++) {
        if (call_at(anchor[i].rx) != 500 + (uint64_t)i) {
            printf("    fault #%ld: anchor %d lost\n", nth, i);
            return -1;
        }
    }
    for (int k = 0; k < SLOTS; k++)
        if (m.live[k] && m.pub[k] && call_at(m.b[k].rx) != m.val[k]) {
            printf("    fault #%ld: slot %d lost\n", nth, k);
            return -1;
        }
    xm__heap_check(h);
    /* the heap keeps working */
    xm_block n;
    if (make_fn(h, 100, 4242, &n) != XM_OK || call_at(n.rx) != 4242) {
        printf("    fault #%ld: heap broken afterwards\n", nth);
        return -1;
    }
    for (int k = 0; k < SLOTS; k++)
        if (m.live[k] && xm_free(h, m.b[k].rx) != XM_OK) {
            printf("    fault #%ld: slot %d cannot be freed\n", nth, k);
            return -1;
        }
    if (xm_purge(h) != XM_OK)
        return -1;
    xm_stats st;
    if (xm_heap_stats(h, &st) != XM_OK || st.live_blocks != ANCHORS + 1) {
        printf("    fault #%ld: %zu live blocks, expected %d\n", nth,
               st.live_blocks, ANCHORS + 1);
        return -1;
    }
    int leaks = destroy_and_count_left(h);
    leaks += maps_leaks_since(&maps0);
    if (count_fds() != fds0 || leaks) {
        printf("    fault #%ld: leak: fds %d -> %d, %d new mappings\n", nth,
               fds0, count_fds(), leaks);
        return -1;
    }
    return fired;
}

static void sweep(const config *c, int err, bool mem)
{
    long n;
    for (n = 1; n < 10000; n++) {
        int f = run_once(c, n, err, mem);
        CHECK(f >= 0);
        if (f == 0)
            break;
    }
    CHECK(n > 3); /* the scenario makes calls: faults were really delivered */
    printf("    [%s] %s errno %d: %ld injection points, all recovered\n",
           c->name, mem ? "malloc" : "syscall", err, n - 1);
}

static void sweep_all(const config *c)
{
    sweep(c, 0, false);      /* each call's own typical errno */
    if (test_failed)
        return;
    sweep(c, EACCES, false); /* what SELinux would say */
    if (test_failed)
        return;
    sweep(c, 0, true);       /* metadata allocations */
}
TEST(fault_injection_sweep_loses_nothing) { FOR_CONFIGS(sweep_all); }

/* Creation under faults: fails cleanly or succeeds, never leaks. */
static void create_faults(const config *c)
{
    for (long n = 1; n < 200; n++) {
        /* a destroyed default heap's anchors wait for this creation
           (meta.c): whatever fails, they are used or unmapped */
        xm_heap *pre = NULL;
        uintptr_t arx = 0, aal = 0;
        if (xm_heap_create(NULL, &pre) == XM_OK) {
            xm_heap_destroy(pre);
            xm__park_peek(&arx, &aal);
        }
        int fds0 = count_fds();
        maps_snap maps0 = maps_take();
        uint64_t f0 = xm__os_injected();
        xm_options o = XM_OPTIONS_INIT;
        o.backend = c->backend;
        o.flags = c->flags;
        xm_heap *h = (xm_heap *)1;
        xm__os_inject(n, 0);
        xm_result r = xm_heap_create(&o, &h);
        xm__os_inject(0, 0);
        bool fired = xm__os_injected() != f0;
        uintptr_t prx = 1, pal = 1;
        xm__park_peek(&prx, &pal);
        CHECK(prx == 0 && pal == 0); /* taken by this creation */
        if (r != XM_OK) {
            CHECK(h == NULL);
            CHECK(fired);
            /* nothing is left at the anchors */
            CHECK_EQ(maps_overlap(arx, arx ? 4096 : 0), 0);
            CHECK_EQ(maps_overlap(aal, aal ? 4096 : 0), 0);
        } else {
            xm_block b;
            CHECK_OK(make_fn(h, 64, 9, &b));
            CHECK_EQ(call_at(b.rx), 9);
            CHECK_EQ(destroy_and_count_left(h), 0);
        }
        CHECK_EQ(count_fds(), fds0);
        int leaks = maps_leaks_since(&maps0);
        CHECK_EQ(leaks, 0);
        if (!fired)
            return;
    }
    CHECK(0);
}
TEST(fault_injection_in_heap_create) { FOR_CONFIGS(create_faults); }

/* FLIP: if the OS refuses PROT_EXEC, publish says XM_EPERM and the block
 * stays writable and unpublished. */
TEST(publish_refused_exec_reports_eperm)
{
    ONLY_IN_CONFIG("flip");
    const config c = {"flip", XM_BACKEND_FLIP, 0};
    xm_heap *h = make_heap(&c, 0, 0);
    CHECK(h);
    xm_block b;
    CHECK_OK(xm_alloc(h, 64, 0, &b));
    emit_ret(b.rw, 12);
    xm__os_inject(1, EACCES);
    CHECK_EQ(xm_publish(h, b.rx, XM_PROT_RX), XM_EPERM);
    xm__os_inject(0, 0);
    CHECK_EQ(xm_last_errno(), EACCES);
    CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
    CHECK_EQ(call_at(b.rx), 12);
    xm_heap_destroy(h);
}

/* Issue 16, item 7: a FLIP free whose rights cannot be dropped (the kernel
 * refuses the new PROT_NONE mapping with ENOMEM at vm.max_map_count, here
 * injected) still kills the block: the free returns XM_OK, no call treats
 * the block as live or hands its bytes out again, its bytes become traps
 * (a forced write through /proc/self/mem, no mapping needed), and the
 * rights are dropped by a later release (another free, xm_purge), after
 * which executing the old code faults. With `poke_fails` the trap fill is
 * refused too: the old code then runs until that release (the documented
 * window). */
static void call_void(void *rx) { (void)call_at(rx); }

static void flip_dead_block(bool poke_fails, bool by_purge)
{
    const config c = {"flip", XM_BACKEND_FLIP, 0};
    xm_heap *h = make_heap(&c, 4 << 20, SIZE_MAX);
    CHECK(h);
    xm_block b, k, n;
    CHECK_OK(make_fn(h, 100, 55, &b));
    CHECK_OK(make_fn(h, 100, 66, &k));
    xm_stats s0, s1;
    CHECK_OK(xm_heap_stats(h, &s0));
    uint64_t f0 = xm__os_injected();
    /* the free's mapping fails; then (poke_fails) the trap fill and the
       immediate retry (a new mapping, then taking the rights) */
    xm__os_inject_run(1, poke_fails ? 4 : 1, ENOMEM);
    xm_result r = xm_free(h, b.rx);
    xm__os_inject(0, 0);
    CHECK_EQ(xm__os_injected() - f0, poke_fails ? 4 : 1);
    CHECK_OK(r);
    /* dead for every call */
    xm_block q;
    uint64_t v = 1;
    void *w;
    CHECK_EQ(xm_query(h, b.rx, &q), XM_EBADPTR);
    CHECK_EQ(patch_ret(h, b.rx, v), XM_ERANGE);
    CHECK_EQ(xm_publish(h, b.rx, XM_PROT_RX), XM_EBADPTR);
    CHECK_EQ(xm_write_begin(h, b.rx, 8, &w), XM_ERANGE);
    CHECK_EQ(xm_free(h, b.rx), XM_EBADPTR);
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.live_blocks, s0.live_blocks - 1);
    xm__heap_check(h);
    if (poke_fails) {
        CHECK_EQ(s1.quarantine_bytes, s0.quarantine_bytes + 4096); /* mapped */
        /* the documented window: until a release drops them, the old code
           still runs for whoever kept its address */
        CHECK_EQ(child_signal(call_void, b.rx), 0);
    } else {
        /* the old code is gone at once: traps (the rights may have been
           dropped already by the immediate retry: then it faults) */
        int sig = child_signal(call_void, b.rx);
        CHECK(sig == TRAP_SIG || sig == SIGSEGV);
    }
    /* its pages are not handed out again while they keep their rights */
    bool pending = s1.quarantine_bytes > s0.quarantine_bytes;
    CHECK(pending || !poke_fails);
    xm_block more[8];
    for (int i = 0; i < 8; i++) {
        CHECK_OK(xm_alloc(h, 100, 0, &more[i]));
        CHECK(!pending || more[i].rx != b.rx);
    }
    /* a later release (a free, or xm_purge) retries and drops them */
    if (by_purge)
        CHECK_OK(xm_purge(h));
    else
        CHECK_OK(xm_free(h, k.rx));
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.quarantine_bytes, 0);
    xm__heap_check(h);
    CHECK_EQ(child_signal(call_void, b.rx), SIGSEGV);
    for (int i = 0; i < 8; i++)
        CHECK_OK(xm_free(h, more[i].rx));
    CHECK_OK(make_fn(h, 100, 77, &n)); /* the heap goes on */
    CHECK_EQ(call_at(n.rx), 77);
    CHECK_OK(xm_purge(h));
    xm_heap_destroy(h);
}
TEST(flip_free_that_cannot_drop_rights_kills_the_block)
{
    ONLY_IN_CONFIG("flip");
    flip_dead_block(false, false);
    if (!test_failed)
        flip_dead_block(true, false);
    if (!test_failed)
        flip_dead_block(true, true);
}

/* The same at the real limit, in a child that fills its own map count
 * (vm.max_map_count is per process) with one-page mappings: every free of
 * published FLIP code returns XM_OK, no block stays live, a freed block's
 * code traps at once, and once its pages form whole mappings (or at
 * xm_purge) their rights are gone. */
static int map_limit_child(void *arg)
{
    (void)arg;
    xm_options o = XM_OPTIONS_INIT;
    o.backend = XM_BACKEND_FLIP;
    o.lazy_limit = SIZE_MAX;
    xm_heap *h;
    if (xm_heap_create(&o, &h) != XM_OK)
        return 1;
    enum { N = 300 };
    static xm_block b[N];
    for (int i = 0; i < N; i++)
        if (make_fn(h, 64, (uint64_t)i, &b[i]) != XM_OK)
            return 2;
    long filled = 0;
    for (;; filled++) /* alternate rights: the kernel cannot merge them */
        if (mmap(NULL, 4096, (filled & 1) ? PROT_READ : PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
            break;
    if (filled < 1000)
        return 3;
    /* every other block first: each freed one sits between live ones, so
       no whole mapping can lose its rights; the code must trap anyway */
    for (int i = 0; i < N; i += 2)
        if (xm_free(h, b[i].rx) != XM_OK)
            return 4;
    for (int i = 0; i < N; i += 2 * 37) {
        int sig = child_signal(call_void, b[i].rx);
        if (sig != TRAP_SIG && sig != SIGSEGV)
            return 8;
    }
    if (call_at(b[1].rx) != 1) /* the live neighbours run on */
        return 9;
    for (int i = 1; i < N; i += 2)
        if (xm_free(h, b[i].rx) != XM_OK)
            return 4;
    xm_block q;
    for (int i = 0; i < N; i++)
        if (xm_query(h, b[i].rx, &q) != XM_EBADPTR)
            return 5;
    if (xm_purge(h) != XM_OK)
        return 6;
    if (child_signal(call_void, b[N / 2].rx) != SIGSEGV)
        return 7;
    return 0;
}
TEST(flip_frees_at_the_map_count_limit_succeed)
{
    ONLY_IN_CONFIG("flip");
    if (under_valgrind()) { /* 65,000 mappings under valgrind: too slow */
        printf("    skipped under valgrind (the native run checks it)\n");
        return;
    }
    CHECK_EQ(child_status(map_limit_child, NULL), 0);
}

/* Bytes of this process's memfds (/proc/self/fd), in 512-byte blocks. */
static long memfd_blocks(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;
    char path[300], link[300];
    while (d && (e = readdir(d))) {
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, link, sizeof link - 1);
        struct stat st;
        if (k > 0 && (link[k] = 0, strstr(link, "memfd:")) && stat(path, &st) == 0)
            n += (long)st.st_blocks;
    }
    if (d)
        closedir(d);
    return n;
}

/* Blocks larger than one system call's trap fill (XM_STRICT writes 4 MiB
 * of traps per call): a free that fails on a later call leaves the block
 * whole and live (its bytes were kept and are put back), and an
 * allocation that fails on a later call of its pages' fill gives back
 * what the first calls wrote. */
static void large_fill_faults(const config *c)
{
    if (c->backend != XM_BACKEND_DUAL)
        return;
    enum { SZ = 6 << 20 };
    for (long n = 1; n <= 6; n++) {
        xm_heap *h = make_heap(c, (size_t)64 << 20, SIZE_MAX);
        CHECK(h);
        xm_block b;
        CHECK_OK(make_fn(h, SZ, 42, &b));
        static unsigned char head[64], tail[64];
        memcpy(head, b.rx, sizeof head);
        memcpy(tail, (char *)b.rx + SZ - sizeof tail, sizeof tail);
        xm__os_inject(n, 0);
        xm_result r = xm_free(h, b.rx);
        xm__os_inject(0, 0);
        if (r != XM_OK) { /* refused: the block as it was */
            CHECK_EQ(memcmp(b.rx, head, sizeof head), 0);
            CHECK_EQ(memcmp((char *)b.rx + SZ - sizeof tail, tail, sizeof tail), 0);
            CHECK_EQ(call_at(b.rx), 42);
            CHECK_OK(xm_free(h, b.rx));
        }
        const unsigned char *p = b.rx; /* mapped still (no purge) */
        CHECK(p[0] == TRAP_BYTE && p[(4 << 20) + 1] == TRAP_BYTE && p[SZ - 1] == TRAP_BYTE);
        /* a fresh allocation of as much, failing: no memory kept */
        CHECK_OK(xm_purge(h));
        long before = memfd_blocks();
        xm__os_inject(n, 0);
        r = xm_alloc(h, 2 * SZ, 0, &b);
        xm__os_inject(0, 0);
        if (r != XM_OK)
            CHECK_EQ(memfd_blocks(), before);
        else
            CHECK_OK(xm_free(h, b.rx));
        xm__heap_check(h);
        xm_heap_destroy(h);
    }
}
TEST(large_fill_faults_lose_nothing) { FOR_CONFIGS(large_fill_faults); }
