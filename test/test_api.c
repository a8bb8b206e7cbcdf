/* SPDX-License-Identifier: MIT */
/*
 * test_api.c: public-API behaviour, observed: code is executed, children
 * die by signals, /proc/self/maps is audited, statistics are counted.
 */
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(version_and_errors)
{
    CHECK_EQ(xm_version(), XM_VERSION_NUMBER);
    for (int r = 0; r < XM_RESULT_COUNT_ + 3; r++)
        CHECK(xm_strerror((xm_result)r) != NULL);
    CHECK(strcmp(xm_strerror(XM_OK), "success") == 0);
    CHECK(xm_strerror((xm_result)-1) != NULL);
}

static int create_options_dummy;
TEST(create_options)
{
    xm_heap *h = (xm_heap *)1;
    xm_options o = XM_OPTIONS_INIT;
    CHECK_EQ(o.size, sizeof(xm_options));
    o.size = 8;
    CHECK_EQ(xm_heap_create(&o, &h), XM_EINVAL);
    CHECK(h == NULL);
    o = (xm_options)XM_OPTIONS_INIT;
    o.flags = 0x80;
    CHECK_EQ(xm_heap_create(&o, &h), XM_EINVAL);
    o = (xm_options)XM_OPTIONS_INIT;
    o.backend = (xm_backend)7;
    CHECK_EQ(xm_heap_create(&o, &h), XM_EINVAL);
    o = (xm_options)XM_OPTIONS_INIT;
    o.near = (void *)&create_options_dummy;
    o.reserve = (size_t)3 << 30;
    CHECK_EQ(xm_heap_create(&o, &h), XM_EINVAL);
    CHECK_EQ(xm_heap_create(NULL, NULL), XM_EINVAL);
    CHECK_OK(xm_heap_create(NULL, &h));
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.backend, XM_BACKEND_DUAL); /* AUTO picks DUAL on this kernel */
    CHECK(s.reserved_bytes >= (size_t)256 << 20);
    xm_heap_destroy(h);
    xm_heap_destroy(NULL);
}

static void publish_run(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    static const size_t sizes[] = {1, 11, 64, 65, 200, 1000, 4096, 5000,
                                   16384, 16385, 100000, 1 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    xm_block b[N];
    for (size_t i = 0; i < N; i++) {
        CHECK_OK(make_fn(h, sizes[i], 1000 + i, &b[i]));
        CHECK(b[i].size >= sizes[i]);
        CHECK(((uintptr_t)b[i].rx & 15) == 0);
    }
    for (size_t i = 0; i < N; i++)
        CHECK_EQ(call_at(b[i].rx), 1000 + i);
    CHECK(audit_clean(c->flags & XM_STRICT));
    /* code at the very end of a large block runs too */
    xm_block big;
    CHECK_OK(xm_alloc(h, 300000, 0, &big));
    /* (valgrind 3.19 reads one byte past a final instruction: its own
       crash when that byte is an inaccessible page, so 16 bytes in) */
    size_t end = big.size - RET_LEN - (under_valgrind() ? 16 : 0);
    emit_ret((char *)big.rw + end, 77);
    CHECK_OK(xm_publish(h, big.rx, XM_PROT_RX));
    CHECK_EQ(call_at((char *)big.rx + end), 77);
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, N + 1);
    CHECK_EQ(s.publishes, N + 1);
    for (size_t i = 0; i < N; i++)
        CHECK_OK(xm_free(h, b[i].rx));
    CHECK_OK(xm_free(h, big.rx));
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 0);
    CHECK_EQ(s.live_bytes, 0);
    CHECK_EQ(s.staging_bytes, 0);
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(publish_and_run) { FOR_CONFIGS(publish_run); }

static void call_void(void *rx) { (void)call_at(rx); }

static void unpublished_traps(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block b, big;
    CHECK_OK(xm_alloc(h, 64, 0, &b));
    emit_ret(b.rw, 5); /* fully written, but not published */
    CHECK_OK(xm_alloc(h, 100000, 0, &big));
    emit_ret(big.rw, 6);
    int sig = child_signal(call_void, b.rx);
    CHECK(sig == TRAP_SIG || sig == SIGSEGV);
    sig = child_signal(call_void, big.rx);
    CHECK(sig == TRAP_SIG || sig == SIGSEGV);
    /* and once published, the same bytes run */
    CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
    CHECK_EQ(call_at(b.rx), 5);
    xm_heap_destroy(h);
}
/* (not XM_INPLACE: it gives this up by design, see its own test) */
TEST(unpublished_block_traps)
{
    FOR_CONFIGS_IF(unpublished_traps, !(configs[ci_].flags & XM_INPLACE));
}

static void freed_traps(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    xm_block keep, b, big, huge;
    CHECK_OK(make_fn(h, 64, 1, &keep)); /* keeps the pack mapped */
    CHECK_OK(make_fn(h, 256, 2, &b));
    CHECK_OK(make_fn(h, 65536, 3, &big));
    /* above XM__FILL_COLD_MIN, filled by streaming stores (src/arch.h):
       no byte of it is a trap when published, every byte one when freed */
    CHECK_OK(xm_alloc(h, (512 << 10) - 100, 0, &huge));
    memset(huge.rw, 0x5A, huge.size);
    emit_ret((char *)huge.rw + huge.size - 64, 4);
    CHECK_OK(xm_publish(h, huge.rx, XM_PROT_RX));
    CHECK_EQ(call_at(b.rx), 2);
    CHECK_EQ(call_at(big.rx), 3);
    CHECK_EQ(call_at((char *)huge.rx + huge.size - 64), 4);
    CHECK_OK(xm_free(h, b.rx));
    CHECK_OK(xm_free(h, big.rx));
    CHECK_OK(xm_free(h, huge.rx));
    static const size_t offs[] = {0, 1, 2, 7, 10, 63, 200};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        int sig = child_signal(call_void, (char *)b.rx + offs[i]);
        CHECK(sig == trap_sig_at((char *)b.rx + offs[i]) || sig == SIGSEGV);
        sig = child_signal(call_void, (char *)big.rx + offs[i]);
        CHECK(sig == trap_sig_at((char *)big.rx + offs[i]) || sig == SIGSEGV);
        /* inside the block, and not its last bytes (valgrind decodes
           past an INT3 there, into the page that cannot run) */
        char *at = (char *)huge.rx + (offs[i] * 4099) % (huge.size - 64);
        sig = child_signal(call_void, at);
        CHECK(sig == trap_sig_at(at) || sig == SIGSEGV);
    }
    if (c->backend == XM_BACKEND_DUAL) { /* still mapped: every byte is fill */
        const unsigned char *p = b.rx;
        for (size_t i = 0; i < 256; i++)
            CHECK_EQ(p[i], TRAP_BYTE);
        p = big.rx;
        for (size_t i = 0; i < 65536; i += 97)
            CHECK_EQ(p[i], TRAP_BYTE);
        p = huge.rx;
        size_t bad = 0;
        for (size_t i = 0; i < huge.size; i++)
            bad += p[i] != TRAP_BYTE;
        CHECK_EQ(bad, 0);
    }
    CHECK_OK(xm_purge(h));
    int sig = child_signal(call_void, big.rx);
    CHECK(sig == SIGSEGV || sig == TRAP_SIG);
    CHECK_EQ(call_at(keep.rx), 1);
    xm_heap_destroy(h);
}
TEST(freed_block_traps_at_every_offset) { FOR_CONFIGS(freed_traps); }

/* A freed small block waits on its arena's magazine for reuse: it is not
 * live for any call, its neighbour's size does not grow over it, it traps,
 * and the next allocation of its size gets it back unpublished. */
static void magazine_reuse(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block b, a, q;
    CHECK_OK(make_fn(h, 128, 1, &b));
    CHECK_OK(make_fn(h, 192, 2, &a));
    CHECK_OK(xm_free(h, a.rx));
    CHECK_EQ(xm_query(h, a.rx, &q), XM_EBADPTR);
    CHECK_EQ(xm_query(h, (char *)a.rx + 70, &q), XM_EBADPTR);
    CHECK_EQ(xm_free(h, a.rx), XM_EBADPTR);
    CHECK_EQ(xm_free_async(h, a.rx), XM_EBADPTR);
    CHECK_EQ(xm_publish(h, a.rx, XM_PROT_RX), XM_EBADPTR);
    CHECK_EQ(xm_patch(h, a.rx, "x", 1), XM_ERANGE);
    CHECK_OK(xm_query(h, (char *)b.rx + 5, &q));
    CHECK(q.rx == b.rx && q.size == b.size);
    CHECK_EQ(xm_patch(h, (char *)b.rx + b.size - 1, "\xcc", 1), XM_OK);
    CHECK_EQ(xm_patch(h, (char *)b.rx + b.size, "\xcc", 1), XM_ERANGE);
    int sig = child_signal(call_void, a.rx);
    CHECK(sig == TRAP_SIG || (c->backend == XM_BACKEND_FLIP && sig == SIGSEGV));
    CHECK_EQ(call_at(b.rx), 1);
    /* same size again: the block comes back unpublished, traps until
       published, then runs the new code */
    xm_block r;
    CHECK_OK(xm_alloc(h, 192, 0, &r));
    if (c->backend != XM_BACKEND_FLIP && !(c->flags & XM_INPLACE)) {
        CHECK(r.rx == a.rx);
        CHECK_EQ(child_signal(call_void, r.rx), TRAP_SIG);
    }
    emit_ret(r.rw, 3);
    CHECK_OK(xm_publish(h, r.rx, XM_PROT_RX));
    CHECK_EQ(call_at(r.rx), 3);
    CHECK_OK(xm_query(h, (char *)b.rx + 5, &q));
    CHECK(q.size == b.size);
    /* everything freed: a purge gives every page back */
    CHECK_OK(xm_free(h, r.rx));
    CHECK_OK(xm_free(h, b.rx));
    CHECK_OK(xm_purge(h));
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 0);
    CHECK_EQ(s.resident_bytes, 0);
    CHECK_EQ(s.quarantine_bytes, 0);
    xm_heap_destroy(h);
}
TEST(freed_block_waits_in_magazine) { FOR_CONFIGS(magazine_reuse); }

/* Invariant 5: a block never published costs no rights change. */
static void unpublished_free_free(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    xm_block warm;
    CHECK_OK(xm_alloc(h, 64, 0, &warm)); /* maps the first pack */
    xm_stats s0, s1;
    CHECK_OK(xm_heap_stats(h, &s0));
    for (int i = 0; i < 1000; i++) {
        xm_block b;
        CHECK_OK(xm_alloc(h, 64 + (size_t)(i % 7) * 100, 0, &b));
        memset(b.rw, FILL_BYTE, 64);
        CHECK_OK(xm_free(h, b.rx));
    }
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.revocations, s0.revocations);
    if (c->backend == XM_BACKEND_DUAL)
        CHECK_EQ(s1.syscalls, s0.syscalls);
    CHECK_OK(xm_free(h, warm.rx));
    CHECK_OK(xm_purge(h));
    CHECK_OK(xm_heap_stats(h, &s1));
    /* DUAL: nothing was ever raised, so even the purge revokes nothing.
       FLIP: the purge drops the write right of cached RW pages (README). */
    if (c->backend == XM_BACKEND_DUAL)
        CHECK_EQ(s1.revocations, s0.revocations);
    xm_heap_destroy(h);
}
TEST(unpublished_free_costs_no_revocation) { FOR_CONFIGS(unpublished_free_free); }

/* Invariant 6: 1000 publish+free, then one purge: one release per run. */
static void batching(const config *c)
{
    if (c->backend == XM_BACKEND_FLIP)
        return; /* FLIP revokes each free at once: by design, see README */
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    xm_stats s0, s1, s2;
    CHECK_OK(xm_heap_stats(h, &s0));
    static xm_block b[1000];
    for (int i = 0; i < 1000; i++)
        CHECK_OK(make_fn(h, 64 + (size_t)(i * 37 % 960), (uint64_t)i, &b[i]));
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(call_at(b[i].rx), i);
    for (int i = 0; i < 1000; i++)
        CHECK_OK(xm_free(h, b[(i * 7) % 1000].rx));
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.revocations, s0.revocations); /* frees revoke nothing */
    CHECK(s1.quarantine_bytes > 0);
    CHECK_OK(xm_purge(h));
    CHECK_OK(xm_heap_stats(h, &s2));
    CHECK_EQ(s2.quarantine_bytes, 0);
    CHECK(s2.purge_runs >= 1);
    uint64_t per_run = (c->flags & XM_STRICT) ? 1 : 2; /* exec view (+ alias) */
    CHECK(s2.revocations - s1.revocations <= per_run * s2.purge_runs);
    CHECK(s2.purge_runs <= 2);
    CHECK(s2.syscalls - s1.syscalls <= 2 * s2.purge_runs);
    printf("    [%s] 1000 publish+free: %llu syscalls, %llu revocations; purge: "
           "%llu syscalls, %llu revocations, %llu runs\n",
           c->name, (unsigned long long)(s1.syscalls - s0.syscalls),
           (unsigned long long)(s1.revocations - s0.revocations),
           (unsigned long long)(s2.syscalls - s1.syscalls),
           (unsigned long long)(s2.revocations - s1.revocations),
           (unsigned long long)s2.purge_runs);
    xm_heap_destroy(h);
}
TEST(purge_batches_revocations) { FOR_CONFIGS(batching); }

/* Makes n functions of pages[i] pages (returning i + 1) into b[]; true if
 * each starts where the one before ends (large blocks of a fresh heap). */
static bool side_by_side(xm_heap *h, const size_t *pages, int n, xm_block *b)
{
    for (int i = 0; i < n; i++)
        if (make_fn(h, pages[i] * 4096, (uint64_t)i + 1, &b[i]) != XM_OK ||
            (i && (char *)b[i].rx != (char *)b[i - 1].rx + pages[i - 1] * 4096))
            return false;
    return true;
}

/* A purge releases freed runs of at most 33 pages (which Linux flushes
 * page by page) together with the next mapped run across a released gap:
 * one pair of calls for both, and only their pages leave resident_bytes. */
static void bridging(const config *c)
{
    if (c->backend == XM_BACKEND_FLIP)
        return; /* FLIP's purge keeps runs of their own (range.c) */
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    enum { SZ = 64 << 10 }; /* 16 pages each: large blocks, runs of their own */
    /* three neighbours, a at the lowest address: b is the gap, m beyond */
    static const size_t pages[3] = {16, 16, 16};
    xm_block blk[3];
    CHECK(side_by_side(h, pages, 3, blk));
    xm_block a = blk[0], b = blk[1], m = blk[2];
    CHECK_EQ(call_at(a.rx), 1);
    CHECK_EQ(call_at(m.rx), 3);
    CHECK_OK(xm_free(h, b.rx));
    CHECK_OK(xm_purge(h)); /* b's pages: released, a gap of 16 NONE pages */
    CHECK_OK(xm_free(h, a.rx));
    CHECK_OK(xm_free(h, m.rx));
    xm_stats s1, s2;
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.quarantine_bytes, 2 * (size_t)SZ);
    CHECK_OK(xm_purge(h));
    CHECK_OK(xm_heap_stats(h, &s2));
    CHECK_EQ(s2.purge_runs - s1.purge_runs, 1); /* a, the gap and m at once */
    uint64_t calls = (c->flags & XM_STRICT) && (c->flags & XM_INPLACE) ? 3 : 2;
    CHECK(s2.syscalls - s1.syscalls <= calls);
    CHECK_EQ(s2.quarantine_bytes, 0);
    CHECK_EQ(s2.resident_bytes, s1.resident_bytes - 2 * (size_t)SZ);
    /* none of the three runs any more */
    CHECK_EQ(child_signal(call_void, a.rx), SIGSEGV);
    CHECK_EQ(child_signal(call_void, (char *)b.rx + 64), SIGSEGV);
    CHECK_EQ(child_signal(call_void, (char *)m.rx + SZ - 64), SIGSEGV);
    /* and the pages serve new blocks */
    xm_block n[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(make_fn(h, SZ, (uint64_t)(10 + i), &n[i]));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(call_at(n[i].rx), 10 + i);
    xm_heap_destroy(h);
    /* which spans a purge joins: blocks side by side (pages), the gaps
       (released first) marked in `gap`, the others freed in `order`,
       then xm_purge: `runs` spans */
    static const struct {
        size_t pages[5];
        int n, gap[5], order[3], runs;
    } cases[] = {
        {{16, 16, 16}, 3, {0, 1, 0}, {2, 0}, 1},                  /* bridged leftwards */
        {{16, 257, 16}, 3, {0, 1, 0}, {0, 2}, 2},                 /* gap too wide */
        {{16, 16, 18, 16, 16}, 5, {0, 1, 0, 1, 0}, {0, 2, 4}, 2}, /* 34 pages: enough */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        h = make_heap(c, 0, SIZE_MAX);
        CHECK(h);
        xm_block v[5];
        CHECK(side_by_side(h, cases[k].pages, cases[k].n, v));
        size_t freed = 0;
        for (int i = 0; i < cases[k].n; i++)
            if (cases[k].gap[i])
                CHECK_OK(xm_free(h, v[i].rx));
        CHECK_OK(xm_purge(h));
        int others = 0;
        for (int i = 0; i < cases[k].n; i++)
            others += !cases[k].gap[i];
        for (int j = 0; j < others; j++) {
            int i = cases[k].order[j];
            CHECK_OK(xm_free(h, v[i].rx));
            freed += cases[k].pages[i] * 4096;
        }
        CHECK_OK(xm_heap_stats(h, &s1));
        CHECK_OK(xm_purge(h));
        CHECK_OK(xm_heap_stats(h, &s2));
        printf("    [%s] case %zu: %llu spans\n", c->name, k,
               (unsigned long long)(s2.purge_runs - s1.purge_runs));
        CHECK_EQ(s2.purge_runs - s1.purge_runs, (uint64_t)cases[k].runs);
        CHECK_EQ(s2.resident_bytes, s1.resident_bytes - freed);
        xm_heap_destroy(h);
    }
}
TEST(purge_bridges_released_gaps) { FOR_CONFIGS(bridging); }

/* The automatic purge leaves a freed span of at most 33 pages for later
 * while longer ones can go (their flush is one for all pages), and takes
 * short ones when nothing else is left. Blocks a0 s a1 b a2 side by side;
 * the a's stay live, so s and b cannot merge or bridge. */
static void patient(const config *c)
{
    if (c->backend == XM_BACKEND_FLIP)
        return;
    enum { P = 4096 };
    /* lazy bound 64 pages: the purge goes down to 48 */
    xm_heap *h = make_heap(c, 0, 64 * P);
    CHECK(h);
    static const size_t first[5] = {16, 16, 16, 52, 16};
    xm_block k[5];
    CHECK(side_by_side(h, first, 5, k));
    xm_block s = k[1], b = k[3];
    xm_stats s0, s1;
    CHECK_OK(xm_free(h, s.rx)); /* 16 pages, the oldest */
    CHECK_OK(xm_heap_stats(h, &s0));
    CHECK_EQ(s0.quarantine_bytes, 16 * P);
    CHECK_OK(xm_free(h, b.rx)); /* 68 pages > 64: a purge */
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.purge_runs - s0.purge_runs, 1);
    CHECK_EQ(s1.quarantine_bytes, 16 * P); /* s waits, b went */
    CHECK_EQ(child_signal(call_void, s.rx), TRAP_SIG); /* trap-filled */
    CHECK_EQ(child_signal(call_void, b.rx), SIGSEGV);  /* no right left */
    xm_heap_destroy(h);
    /* only short spans over the bound (16 pages): the first pass leaves
       both, the second takes one */
    h = make_heap(c, 0, 16 * P);
    CHECK(h);
    static const size_t second[5] = {8, 8, 8, 12, 8};
    CHECK(side_by_side(h, second, 5, k));
    xm_block y1 = k[1], x1 = k[2], y2 = k[3];
    CHECK_OK(xm_free(h, y1.rx));
    CHECK_OK(xm_heap_stats(h, &s0));
    CHECK_OK(xm_free(h, y2.rx)); /* 20 pages > 16 */
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.purge_runs - s0.purge_runs, 1);
    CHECK_EQ(s1.quarantine_bytes, 12 * P); /* the oldest, y1, went */
    CHECK_EQ(call_at(x1.rx), 3);
    xm_heap_destroy(h);
}
TEST(automatic_purge_releases_long_spans_first) { FOR_CONFIGS(patient); }

static void lazy_limit(const config *c)
{
    xm_heap *h = make_heap(c, 0, 256 << 10);
    CHECK(h);
    xm_stats s;
    for (int round = 0; round < 4; round++) {
        xm_block b[64];
        for (int i = 0; i < 64; i++)
            CHECK_OK(make_fn(h, 9000 + (size_t)round, (uint64_t)i, &b[i]));
        for (int i = 0; i < 64; i++)
            CHECK_OK(xm_free(h, b[i].rx));
        CHECK_OK(xm_heap_stats(h, &s));
        CHECK(s.quarantine_bytes <= 256 << 10);
    }
    if (c->backend == XM_BACKEND_DUAL)
        CHECK(s.purges > 0);
    xm_heap_destroy(h);
}
TEST(lazy_limit_bounds_quarantine) { FOR_CONFIGS(lazy_limit); }

/* A heap that frees most of its blocks (a module unloaded) keeps the lazy
 * bound of its peak (range.c, xm__lazy_bound): freed runs wait and
 * coalesce with their neighbours as those are freed, so a teardown in
 * random order releases far fewer runs than blocks (with the bound of the
 * bytes still in use, it released about two runs for every three blocks);
 * the quarantine never passes a quarter of the peak; allocating from the
 * free ranges wears the bound down; xm_purge releases everything. */
static void shrinking(const config *c)
{
    xm_heap *h = make_heap(c, (size_t)1 << 30, 0);
    CHECK(h);
    enum { N = 1600, M = 800, SZ = 65536 };
    static void *rx[N];
    xm_block b;
    for (int i = 0; i < N; i++) {
        CHECK_OK(make_fn(h, SZ, (uint64_t)i, &b));
        rx[i] = b.rx;
    }
    uint64_t seed = 12345;
    for (int i = N - 1; i > 0; i--) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int j = (int)((seed >> 33) % (uint64_t)(i + 1));
        void *t = rx[i];
        rx[i] = rx[j];
        rx[j] = t;
    }
    xm_stats s0, s;
    CHECK_OK(xm_heap_stats(h, &s0));
    size_t bound = s0.live_bytes / 4, slack = (size_t)1 << 20;
    for (int i = 0; i < N; i++) {
        CHECK_OK(xm_free(h, rx[i]));
        if (i % 64 == 0) {
            CHECK_OK(xm_heap_stats(h, &s));
            CHECK(s.quarantine_bytes <= bound + SZ + slack);
        }
    }
    CHECK_OK(xm_heap_stats(h, &s));
    printf("    [%s] %d blocks of %d KiB freed in random order: %llu runs released, %zu KiB left in the quarantine\n",
           c->name, N, SZ >> 10, (unsigned long long)(s.purge_runs - s0.purge_runs),
           s.quarantine_bytes >> 10);
    CHECK(s.purge_runs - s0.purge_runs < N / 3);
    CHECK(s.quarantine_bytes > bound / 2); /* not the 8 MiB floor */
    CHECK(s.quarantine_bytes <= bound + SZ + slack);
    int sig = child_signal(call_void, rx[0]);
    CHECK(sig == trap_sig_at(rx[0]) || sig == SIGSEGV);
    /* M blocks again, then freed: the peak is worn down by what they took,
       so the bound is a quarter of what is left of it */
    for (int i = 0; i < M; i++) {
        CHECK_OK(make_fn(h, SZ, (uint64_t)i, &b));
        rx[i] = b.rx;
    }
    for (int i = 0; i < M; i++)
        CHECK_OK(xm_free(h, rx[i]));
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK(s.quarantine_bytes <= (size_t)(N - M) * SZ / 4 + SZ + slack);
    CHECK_OK(xm_purge(h));
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.quarantine_bytes, 0);
    CHECK_EQ(s.resident_bytes, 0);
    xm_heap_destroy(h);
}
TEST(shrinking_heap_keeps_its_peak_bound)
{
    FOR_CONFIGS_IF(shrinking, configs[ci_].backend == XM_BACKEND_DUAL);
}

static int read_byte(void *p) { return *(volatile unsigned char *)p; }
static void read_void(void *p) { (void)read_byte(p); }

static bool page_is_exec(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool x = false;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 &&
            (uintptr_t)addr >= s && (uintptr_t)addr < e)
            x = perms[2] == 'x';
    }
    if (f)
        fclose(f);
    return x;
}

static void data_blocks(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block code, d;
    CHECK_OK(make_fn(h, 64, 9, &code));
    CHECK_OK(xm_alloc_data(h, 100, 64, &d));
    CHECK(((uintptr_t)d.rx & 63) == 0);
    memcpy(d.rw, "constant pool", 14);
    CHECK_EQ(xm_publish(h, d.rx, XM_PROT_RX), XM_EINVAL);
    CHECK_OK(xm_publish(h, d.rx, XM_PROT_R));
    CHECK(memcmp(d.rx, "constant pool", 14) == 0);
    CHECK(!page_is_exec(d.rx));
    CHECK(page_is_exec(code.rx));
    CHECK(((uintptr_t)d.rx >> 12) != ((uintptr_t)code.rx >> 12));
    emit_ret((void *)d.rx, 1); /* a write to published data faults */
    xm_heap_destroy(h);
}
static void data_write_faults(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block d, code;
    CHECK_OK(xm_alloc_data(h, 64, 0, &d));
    emit_ret(d.rw, 4);
    CHECK_OK(xm_publish(h, d.rx, XM_PROT_R));
    CHECK_EQ(child_signal(call_void, d.rx), SIGSEGV); /* data never runs */
    CHECK_OK(xm_alloc(h, 64, 0, &code));
    CHECK_EQ(xm_publish(h, code.rx, XM_PROT_R), XM_EINVAL);
    unsigned char ret[RET_LEN];
    emit_ret(ret, 4);
    CHECK_EQ(read_byte(d.rx), ret[0]);
    (void)read_void;
    xm_heap_destroy(h);
}
static void data_checks(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block d;
    CHECK_OK(xm_alloc_data(h, 100, 64, &d));
    memcpy(d.rw, "constant pool", 14);
    CHECK_EQ(xm_publish(h, d.rx, XM_PROT_RX), XM_EINVAL);
    CHECK_OK(xm_publish(h, d.rx, XM_PROT_R));
    CHECK(memcmp(d.rx, "constant pool", 14) == 0);
    CHECK(!page_is_exec(d.rx));
    xm_heap_destroy(h);
    data_write_faults(c);
    (void)data_blocks;
}
TEST(data_blocks_never_execute) { FOR_CONFIGS(data_checks); }

/* xm_load: one call allocates, copies the caller's bytes in and publishes.
 * The code runs, the bytes past len are traps, a data block is readable
 * and never runs, a freed loaded block traps, the statistics count an
 * allocation and a publish, the magazine's blocks (the fast path) and
 * large blocks are served without a system call once the heap is warm,
 * and bad input changes nothing. */
static void loading(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    static unsigned char src[300000];
    static const size_t sizes[] = {RET_LEN, RET_LEN + 6, 100, 129, 1000, 1024, 1025, 1100,
                                   3000, 5000, 16384, 20000, 70000, 300000};
    enum { N = sizeof sizes / sizeof sizes[0] };
    xm_block b[N], keep;
    CHECK_OK(make_fn(h, 64, 1, &keep)); /* the small pack stays: freed
                                           blocks wait on magazines */
    for (int round = 0; round < 3; round++) {
        xm_stats s0, s1;
        CHECK_OK(xm_heap_stats(h, &s0));
        uint64_t fast0 = xm__fast_loads(h);
        for (size_t i = 0; i < N; i++) {
            memset(src, 0x90 + (int)i, sizes[i]); /* not traps: must not leak past len */
            emit_ret(src, 7000 + i + (uint64_t)round);
            CHECK_OK(xm_load(h, src, sizes[i], 0, XM_PROT_RX, &b[i]));
            CHECK(b[i].size >= sizes[i]);
            CHECK(((uintptr_t)b[i].rx & 15) == 0);
            CHECK(c->flags & XM_INPLACE ? b[i].rw != NULL : b[i].rw == NULL);
            CHECK(memcmp(b[i].rx, src, sizes[i]) == 0);
        }
        CHECK_OK(xm_heap_stats(h, &s1));
        CHECK_EQ(s1.allocs - s0.allocs, N);
        CHECK_EQ(s1.publishes - s0.publishes, N);
        CHECK_EQ(s1.live_blocks, N + 1);
        CHECK_EQ(s1.staging_bytes, 0);
        /* the last round reuses what the others freed (the small blocks
           from magazines: xm_load's fast path): no system call where
           publishing needs none (DUAL) */
        if (round == 2 && c->backend == XM_BACKEND_DUAL && !(c->flags & XM_STRICT))
            CHECK_EQ(s1.syscalls, s0.syscalls);
        /* where the fast paths are on (DUAL), the six sizes up to 1 KiB
           came from magazines without a lock or a lookup; of the five up to
           16 KiB, those that found a block in the class their size takes
           from too (which depends on the order: mid_blocks_take_the_fast_paths) */
        if (round > 0 && xm__fast_state(h)) {
            CHECK(xm__fast_loads(h) - fast0 >= 6);
            CHECK(xm__fast_loads(h) - fast0 <= 11);
        }
        for (size_t i = 0; i < N; i++) {
            CHECK_EQ(call_at(b[i].rx), 7000 + i + (uint64_t)round);
            const unsigned char *p = b[i].rx;
            for (size_t k = sizes[i]; k < b[i].size; k++)
                CHECK_EQ(p[k], TRAP_BYTE);
            if (b[i].size - sizes[i] >= 16) {
                char *at = (char *)b[i].rx + sizes[i];
                int sig = child_signal(call_void, at);
                CHECK(sig == trap_sig_at(at) || sig == SIGSEGV);
            }
        }
        CHECK(audit_clean(c->flags & XM_STRICT));
        for (size_t i = 0; i < N; i++)
            CHECK_OK(xm_free(h, b[i].rx));
        for (size_t i = 0; i < N; i += 3) {
            int sig = child_signal(call_void, b[i].rx);
            CHECK(sig == trap_sig_at(b[i].rx) || sig == SIGSEGV);
        }
    }
    /* read-only data: readable, never executable */
    xm_block d;
    CHECK_OK(xm_load(h, "constant pool", 14, 64, XM_PROT_R, &d));
    CHECK(((uintptr_t)d.rx & 63) == 0);
    CHECK(memcmp(d.rx, "constant pool", 14) == 0);
    CHECK(!page_is_exec(d.rx));
    CHECK_EQ(xm_patch(h, d.rx, "C", 1), XM_OK); /* a published data block */
    CHECK(memcmp(d.rx, "Constant pool", 14) == 0);
    /* alignment, large and small (magazine blocks of the fast path that
       happen to be aligned, the others from the general path) */
    for (size_t a = 1; a <= 4096; a *= 2) {
        xm_block x, y[4];
        emit_ret(src, a);
        CHECK_OK(xm_load(h, src, 40000 / a + RET_LEN, a, XM_PROT_RX, &x));
        CHECK(((uintptr_t)x.rx & (a - 1)) == 0);
        CHECK_EQ(call_at(x.rx), a);
        for (int k = 0; k < 4; k++) {
            CHECK_OK(xm_load(h, src, RET_LEN + 40 * (size_t)k, a, XM_PROT_RX, &y[k]));
            CHECK(((uintptr_t)y[k].rx & (a - 1)) == 0);
            CHECK_EQ(call_at(y[k].rx), a);
        }
        for (int k = 0; k < 4; k++)
            CHECK_OK(xm_free(h, y[k].rx));
        CHECK_OK(xm_free(h, x.rx));
    }
    /* bad input is refused and changes nothing */
    xm_stats s0, s1;
    xm_block x = {NULL, NULL, 0};
    CHECK_OK(xm_heap_stats(h, &s0));
    CHECK_EQ(xm_load(NULL, src, 64, 0, XM_PROT_RX, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, NULL, 64, 0, XM_PROT_RX, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, 0, 0, XM_PROT_RX, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, 64, 0, XM_PROT_RX, NULL), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, 64, 0, 7, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, 64, 0, 0, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, 64, 24, XM_PROT_RX, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, 64, 8192, XM_PROT_RX, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, SIZE_MAX, 0, XM_PROT_RX, &x), XM_EINVAL);
    CHECK_EQ(xm_load(h, src, s0.reserved_bytes + 4096, 0, XM_PROT_RX, &x), XM_ENOMEM);
    CHECK(x.rx == NULL);
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.live_blocks, s0.live_blocks);
    CHECK_EQ(s1.allocs, s0.allocs);
    CHECK_EQ(s1.publishes, s0.publishes);
    CHECK_EQ(s1.syscalls, s0.syscalls);
    CHECK_OK(xm_free(h, d.rx));
    CHECK_EQ(call_at(keep.rx), 1);
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(load_copies_in_and_publishes) { FOR_CONFIGS(loading); }

/* xm_load against the two calls: two heaps of one configuration take the
 * same random sequence, one loading, the other allocating, copying and
 * publishing. Every block lands at the same offset with the same size,
 * holds the same bytes with traps past them, and every counter moves the
 * same way (the review's differential check). */
static uint64_t twin_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
static bool twin_stats_match(xm_heap *a, xm_heap *b, const xm_stats *a0, const xm_stats *b0)
{
    xm_stats sa, sb;
    if (xm_heap_stats(a, &sa) != XM_OK || xm_heap_stats(b, &sb) != XM_OK)
        return false;
    return sa.live_blocks - a0->live_blocks == sb.live_blocks - b0->live_blocks &&
           sa.live_bytes - a0->live_bytes == sb.live_bytes - b0->live_bytes &&
           sa.allocs - a0->allocs == sb.allocs - b0->allocs &&
           sa.publishes - a0->publishes == sb.publishes - b0->publishes &&
           sa.frees - a0->frees == sb.frees - b0->frees &&
           sa.resident_bytes - a0->resident_bytes == sb.resident_bytes - b0->resident_bytes &&
           sa.quarantine_bytes - a0->quarantine_bytes == sb.quarantine_bytes - b0->quarantine_bytes &&
           sa.syscalls - a0->syscalls == sb.syscalls - b0->syscalls &&
           sa.revocations - a0->revocations == sb.revocations - b0->revocations &&
           sa.staging_bytes == sb.staging_bytes;
}
static void load_twin(const config *c)
{
    xm_heap *ha = make_heap(c, 64 << 20, 0), *hb = make_heap(c, 64 << 20, 0);
    CHECK(ha && hb);
    enum { SLOTS = 48 };
    static unsigned char bytes[600000];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(0x90 ^ (i * 31));
    static const size_t aligns[] = {0, 0, 0, 16, 32, 64, 128, 256, 1024, 4096};
    uintptr_t base_a, base_b, alias;
    size_t rlen;
    xm__heap_ranges(ha, &base_a, &rlen, &alias);
    xm__heap_ranges(hb, &base_b, &rlen, &alias);
    xm_stats a0, b0;
    CHECK_OK(xm_heap_stats(ha, &a0));
    CHECK_OK(xm_heap_stats(hb, &b0));
    xm_block la[SLOTS], lb[SLOTS];
    size_t len[SLOTS];
    memset(la, 0, sizeof la);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    long ops = under_emulation() || under_valgrind() ? 1500 : 6000, bad = 0;
    for (long op = 0; op < ops && !bad; op++) {
        int k = (int)(twin_rng(&seed) % SLOTS);
        const unsigned char *src = bytes + (size_t)k * 97;
        if (twin_rng(&seed) % 50 == 0) {
            CHECK_OK(xm_purge(ha));
            CHECK_OK(xm_purge(hb));
        } else if (la[k].rx) {
            for (int t = 0; t < 2; t++) { /* the loaded and the published */
                const unsigned char *p = t ? lb[k].rx : la[k].rx;
                bad += memcmp(p, src, len[k]) != 0;
                for (size_t i = len[k]; i < la[k].size; i++)
                    bad += p[i] != TRAP_BYTE;
            }
            CHECK_OK(xm_free(ha, la[k].rx));
            CHECK_OK(xm_free(hb, lb[k].rx));
            la[k].rx = NULL;
        } else {
            unsigned pick = (unsigned)(twin_rng(&seed) % 100);
            size_t n = pick < 60   ? 1 + twin_rng(&seed) % 1024
                       : pick < 70 ? 1020 + twin_rng(&seed) % 10
                       : pick < 85 ? 1 + twin_rng(&seed) % 16400
                       : pick < 95 ? 4090 + twin_rng(&seed) % 12
                       : pick < 98 ? 16380 + twin_rng(&seed) % 60000
                                   /* across XM__FILL_COLD_MIN (streaming copy), odd tails */
                                   : 250000 + twin_rng(&seed) % 300000;
            size_t a = aligns[twin_rng(&seed) % 10];
            bool data = twin_rng(&seed) % 4 == 0;
            int prot = data ? XM_PROT_R : XM_PROT_RX;
            CHECK_OK(xm_load(ha, src, n, a, prot, &la[k]));
            CHECK_OK(data ? xm_alloc_data(hb, n, a, &lb[k]) : xm_alloc(hb, n, a, &lb[k]));
            memcpy(lb[k].rw, src, n);
            CHECK_OK(xm_publish(hb, lb[k].rx, prot));
            len[k] = n;
            bad += (uintptr_t)la[k].rx - base_a != (uintptr_t)lb[k].rx - base_b ||
                   la[k].size != lb[k].size || (a && ((uintptr_t)la[k].rx & (a - 1)));
        }
        if (op % 100 == 0)
            bad += !twin_stats_match(ha, hb, &a0, &b0);
        if (test_failed)
            break;
    }
    CHECK_EQ(bad, 0);
    CHECK(twin_stats_match(ha, hb, &a0, &b0));
    if (xm__fast_state(ha))
        CHECK(xm__fast_loads(ha) > 100);
    xm__heap_check(ha);
    xm__heap_check(hb);
    xm_heap_destroy(ha);
    xm_heap_destroy(hb);
}
TEST(load_matches_alloc_copy_publish) { FOR_CONFIGS(load_twin); }

/* XM_INPLACE heaps that load in two steps (DUAL + XM_STRICT, FLIP): rw is
 * the block's persistent copy at the heap's distance, holding the bytes. */
TEST(load_inplace_rw_in_every_backend)
{
    static const struct { xm_backend b; unsigned f; } hs[] = {
        {XM_BACKEND_DUAL, XM_INPLACE},
        {XM_BACKEND_DUAL, XM_INPLACE | XM_STRICT},
        {XM_BACKEND_FLIP, XM_INPLACE}};
    unsigned char code[RET_LEN];
    emit_ret(code, 31);
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        xm_options o = XM_OPTIONS_INIT;
        o.backend = hs[i].b;
        o.flags = hs[i].f;
        xm_heap *h = NULL;
        CHECK_OK(xm_heap_create(&o, &h));
        ptrdiff_t off = 0;
        CHECK_OK(xm_alias_offset(h, &off));
        for (size_t n = RET_LEN; n <= 40000; n *= 9) {
            static unsigned char src[40000];
            memcpy(src, code, RET_LEN);
            xm_block b;
            CHECK_OK(xm_load(h, src, n, 0, XM_PROT_RX, &b));
            CHECK(b.rw != NULL && (char *)b.rw - (char *)b.rx == off);
            CHECK(b.rw && memcmp(b.rw, src, n) == 0);
            CHECK_EQ(call_at(b.rx), 31);
            CHECK_OK(xm_free(h, b.rx));
        }
        xm_heap_destroy(h);
    }
}

static void patching(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block a, b, big;
    CHECK_OK(make_fn(h, 64, 1, &a));
    CHECK_OK(make_fn(h, 64, 2, &b));
    CHECK_OK(make_fn(h, 70000, 3, &big));
    for (uint64_t v = 10; v < 20; v++) {
        CHECK_OK(patch_ret(h, a.rx, v)); /* the imm64 */
        CHECK_EQ(call_at(a.rx), v);
        CHECK_EQ(call_at(b.rx), 2);
    }
    uint64_t v = 33;
    CHECK_OK(patch_ret(h, big.rx, v));
    CHECK_EQ(call_at(big.rx), 33);
    /* out of range: past the end, spanning two blocks, not in a block */
    unsigned char buf[128] = {0};
    CHECK_EQ(xm_patch(h, (char *)a.rx + a.size - 4, buf, 8), XM_ERANGE);
    CHECK_EQ(xm_patch(h, a.rx, buf, a.size + 64), XM_ERANGE);
    CHECK_EQ(xm_patch(h, (void *)&buf, buf, 8), XM_ERANGE);
    xm_block u;
    CHECK_OK(xm_alloc(h, 64, 0, &u));
    CHECK_EQ(xm_patch(h, u.rx, buf, 8), XM_ESTATE);
    CHECK_EQ(call_at(a.rx), 19);
    CHECK_EQ(call_at(b.rx), 2);
    CHECK(audit_clean(c->flags & XM_STRICT));
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.patches, 11);
    xm_heap_destroy(h);
}
TEST(patch_published_code) { FOR_CONFIGS(patching); }

static void querying(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block a, big, u, q;
    CHECK_OK(make_fn(h, 300, 1, &a));
    CHECK_OK(make_fn(h, 50000, 2, &big));
    CHECK_OK(xm_alloc(h, 100, 0, &u));
    for (size_t off = 0; off < a.size; off += 17) {
        CHECK_OK(xm_query(h, (char *)a.rx + off, &q));
        CHECK(q.rx == a.rx);
        CHECK_EQ(q.size, a.size);
        if (c->flags & XM_INPLACE) /* the alias, valid until free */
            CHECK(q.rw != NULL && (char *)q.rw - (char *)q.rx ==
                                      (char *)u.rw - (char *)u.rx);
        else
            CHECK(q.rw == NULL);
    }
    CHECK_OK(xm_query(h, (char *)big.rx + big.size - 1, &q));
    CHECK(q.rx == big.rx);
    CHECK_OK(xm_query(h, u.rx, &q));
    CHECK(q.rw == u.rw);
    CHECK_EQ(xm_query(h, (char *)a.rx + a.size + 4096 * 64, &q), XM_EBADPTR);
    CHECK_EQ(xm_query(h, &q, &q), XM_EBADPTR);
    CHECK_OK(xm_free(h, a.rx));
    CHECK_EQ(xm_query(h, a.rx, &q), XM_EBADPTR);
    xm_heap_destroy(h);
}
TEST(query_finds_containing_block) { FOR_CONFIGS(querying); }

static void bad_input(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block live[8];
    for (int i = 0; i < 8; i++)
        CHECK_OK(make_fn(h, 64 + (size_t)i * 3000, (uint64_t)(100 + i), &live[i]));
    xm_block d;
    CHECK_OK(xm_alloc_data(h, 32, 0, &d));
    xm_stats s0, s1;
    CHECK_OK(xm_heap_stats(h, &s0));
    xm_block out = {0, 0, 0};
    int local = 0;
    CHECK_EQ(xm_alloc(NULL, 64, 0, &out), XM_EINVAL);
    CHECK_EQ(xm_alloc(h, 64, 0, NULL), XM_EINVAL);
    CHECK_EQ(xm_alloc(h, 0, 0, &out), XM_EINVAL);
    CHECK_EQ(xm_alloc(h, SIZE_MAX, 0, &out), XM_EINVAL);
    CHECK_EQ(xm_alloc(h, SIZE_MAX / 8, 0, &out), XM_ENOMEM);
    CHECK_EQ(xm_alloc(h, 64, 3, &out), XM_EINVAL);
    CHECK_EQ(xm_alloc(h, 64, 8192, &out), XM_EINVAL);
    CHECK_EQ(xm_alloc_data(h, 0, 0, &out), XM_EINVAL);
    CHECK(out.rx == NULL && out.rw == NULL);
    CHECK_EQ(xm_publish(NULL, live[0].rx, XM_PROT_RX), XM_EINVAL);
    CHECK_EQ(xm_publish(h, NULL, XM_PROT_RX), XM_EINVAL);
    CHECK_EQ(xm_publish(h, live[0].rx, 7), XM_EINVAL);
    CHECK_EQ(xm_publish(h, live[0].rx, 0), XM_EINVAL);
    CHECK_EQ(xm_publish(h, live[0].rx, XM_PROT_RX), XM_ESTATE);
    CHECK_EQ(xm_publish(h, live[0].rx, XM_PROT_R), XM_EINVAL);
    CHECK_EQ(xm_publish(h, (char *)live[0].rx + 16, XM_PROT_RX), XM_EBADPTR);
    CHECK_EQ(xm_publish(h, &local, XM_PROT_RX), XM_EBADPTR);
    CHECK_EQ(xm_publish(h, d.rx, XM_PROT_RX), XM_EINVAL);
    CHECK_EQ(xm_free(NULL, live[0].rx), XM_EINVAL);
    CHECK_EQ(xm_free(h, NULL), XM_EINVAL);
    CHECK_EQ(xm_free(h, &local), XM_EBADPTR);
    CHECK_EQ(xm_free(h, (char *)live[1].rx + 16), XM_EBADPTR);
    CHECK_EQ(xm_free(h, (char *)live[5].rx + 4096), XM_EBADPTR);
    CHECK_EQ(xm_free(h, (void *)(uintptr_t)-4096), XM_EBADPTR);
    CHECK_EQ(xm_free_async(h, &local), XM_EBADPTR);
    CHECK_EQ(xm_free_async(h, (char *)live[1].rx + 1), XM_EBADPTR);
    CHECK_EQ(xm_free_async(NULL, live[1].rx), XM_EINVAL);
    CHECK_EQ(xm_patch(h, live[0].rx, NULL, 1), XM_EINVAL);
    CHECK_EQ(xm_patch(h, live[0].rx, &local, 0), XM_EINVAL);
    CHECK_EQ(xm_patch(h, (void *)(uintptr_t)-8, &local, 16), XM_ERANGE);
    CHECK_EQ(xm_query(h, live[0].rx, NULL), XM_EINVAL);
    CHECK_EQ(xm_heap_stats(h, NULL), XM_EINVAL);
    CHECK_EQ(xm_heap_stats(NULL, &s1), XM_EINVAL);
    CHECK_EQ(xm_purge(NULL), XM_EINVAL);
    CHECK_EQ(xm_audit(-1, NULL), XM_EINVAL);
    /* a block of another heap is foreign here */
    xm_heap *h2 = make_heap(c, 0, 0);
    CHECK(h2);
    xm_block other;
    CHECK_OK(make_fn(h2, 64, 55, &other));
    CHECK_EQ(xm_free(h, other.rx), XM_EBADPTR);
    CHECK_EQ(call_at(other.rx), 55);
    xm_heap_destroy(h2);
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.live_blocks, s0.live_blocks);
    CHECK_EQ(s1.live_bytes, s0.live_bytes);
    CHECK_EQ(s1.allocs, s0.allocs);
    CHECK_EQ(s1.frees, s0.frees);
    CHECK_EQ(s1.publishes, s0.publishes);
    /* double free, sync and async */
    CHECK_OK(xm_free(h, live[7].rx));
    CHECK_EQ(xm_free(h, live[7].rx), XM_EBADPTR);
    CHECK_EQ(xm_free_async(h, live[7].rx), XM_EBADPTR);
    CHECK_OK(xm_free_async(h, live[6].rx));
    CHECK_EQ(xm_free_async(h, live[6].rx), XM_EBADPTR);
    CHECK_EQ(xm_free(h, live[6].rx), XM_EBADPTR); /* drained first */
    for (int i = 0; i < 6; i++)
        CHECK_EQ(call_at(live[i].rx), 100 + i);
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(bad_input_is_refused_and_changes_nothing) { FOR_CONFIGS(bad_input); }

static void alignment(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    for (size_t a = 1; a <= 4096; a *= 2) {
        for (size_t sz = 1; sz < 20000; sz = sz * 3 + 5) {
            xm_block b;
            CHECK_OK(xm_alloc(h, sz, a, &b));
            CHECK(((uintptr_t)b.rx & (a - 1)) == 0);
            CHECK(((uintptr_t)b.rw & ((a < 16 ? a : 16) - 1)) == 0);
            CHECK(b.size >= sz);
        }
    }
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(alignment) { FOR_CONFIGS(alignment); }

static void exhaustion(const config *c)
{
    xm_heap *h = make_heap(c, 1 << 20, SIZE_MAX); /* 1 MiB */
    CHECK(h);
    static xm_block b[4096];
    int n = 0;
    xm_result r;
    while ((r = make_fn(h, 1000, (uint64_t)n, &b[n])) == XM_OK && n < 4095)
        n++;
    CHECK_EQ(r, XM_ENOMEM);
    CHECK(n > 100);
    for (int i = 0; i < n; i++)
        CHECK_EQ(call_at(b[i].rx), i);
    for (int i = 0; i < n; i += 2)
        CHECK_OK(xm_free(h, b[i].rx));
    /* large blocks need whole runs: the quarantine is purged to find one */
    for (int i = 1; i < n; i += 2)
        CHECK_OK(xm_free(h, b[i].rx));
    xm_block big;
    CHECK_OK(make_fn(h, 900000, 42, &big));
    CHECK_EQ(call_at(big.rx), 42);
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(reserve_exhaustion_and_recovery) { FOR_CONFIGS(exhaustion); }

static int near_anchor(void) { return 1; }
/* near: every block within a direct call's reach of it (x86-64 rel32:
 * +-2 GiB; arm64 BL: +-128 MiB), proven by such a call. */
TEST(near_places_blocks_within_rel32)
{
    xm_options o = XM_OPTIONS_INIT;
    o.near = (const void *)(uintptr_t)&near_anchor;
    xm_heap *h;
    CHECK_OK(xm_heap_create(&o, &h));
    xm_block b;
    CHECK_OK(xm_alloc(h, 64, 0, &b));
    intptr_t d = (intptr_t)b.rx - (intptr_t)(uintptr_t)&near_anchor;
    CHECK(d > -NEAR_REACH + 64 && d < NEAR_REACH - 64);
    /* the whole reserve, not only the first block */
    uintptr_t base, alias;
    size_t len;
    xm__heap_ranges(h, &base, &len, &alias);
    intptr_t lo = (intptr_t)base - (intptr_t)(uintptr_t)&near_anchor;
    CHECK(lo > -NEAR_REACH && lo + (intptr_t)len < NEAR_REACH);
    /* a real direct call (rel32, BL) from JIT code into the host program */
    CHECK(emit_call_fn(b.rw, b.rx, (const void *)(uintptr_t)&near_anchor));
    CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
    int (*f)(void);
    memcpy(&f, &b.rx, sizeof f);
    CHECK_EQ(f(), 1);
    xm_heap_destroy(h);
}

/* Issue 16, item 6: AUTO chooses by what the system supports. Out of
 * descriptors (RLIMIT_NOFILE lowered so that memfd_create fails with
 * EMFILE), it returns the error, as explicit DUAL does, instead of a FLIP
 * heap 50-250x slower; FLIP itself still works, and with descriptors back
 * AUTO gives DUAL. */
static int auto_emfile_child(void *arg)
{
    (void)arg;
    int probe = dup(0); /* the lowest free descriptor: all below are open */
    if (probe < 0)
        return 1;
    close(probe);
    struct rlimit old, rl;
    if (getrlimit(RLIMIT_NOFILE, &old))
        return 1;
    rl = old;
    rl.rlim_cur = (rlim_t)probe;
    if (setrlimit(RLIMIT_NOFILE, &rl))
        return 1;
    xm_heap *h = (xm_heap *)1;
    xm_result r = xm_heap_create(NULL, &h);
    int e = xm_last_errno();
    if (h) {
        xm_stats s;
        xm_heap_stats(h, &s);
        return s.backend == XM_BACKEND_FLIP ? 10 : 11; /* silently FLIP */
    }
    if (r != XM_EOS || e != EMFILE)
        return 12;
    xm_options o = XM_OPTIONS_INIT;
    o.backend = XM_BACKEND_DUAL;
    if (xm_heap_create(&o, &h) != XM_EOS || xm_last_errno() != EMFILE)
        return 13;
    o.backend = XM_BACKEND_FLIP; /* asked for: no descriptor needed */
    xm_block b;
    if (xm_heap_create(&o, &h) != XM_OK || make_fn(h, 64, 5, &b) != XM_OK ||
        call_at(b.rx) != 5)
        return 14;
    xm_heap_destroy(h);
    xm_sysinfo si;
    if (xm_system_info(&si) != XM_OK || si.auto_result != XM_EOS)
        return 15;
    if (setrlimit(RLIMIT_NOFILE, &old) || xm_heap_create(NULL, &h) != XM_OK)
        return 16;
    xm_stats s;
    if (xm_heap_stats(h, &s) != XM_OK || s.backend != XM_BACKEND_DUAL)
        return 17;
    xm_heap_destroy(h);
    return 0;
}
TEST(auto_reports_descriptor_exhaustion_instead_of_flip)
{
    CHECK_EQ(child_status(auto_emfile_child, NULL), 0);
}

/* The same under RLIMIT_AS: room for the reserve but not for DUAL's
 * writable alias of the same size. AUTO says XM_ENOMEM. */
static long vm_size_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}
static int auto_rlimit_as_child(void *arg)
{
    (void)arg;
    const size_t reserve = 16 << 20;
    xm_options o = XM_OPTIONS_INIT;
    o.reserve = reserve;
    xm_heap *h = NULL;
    /* warm malloc's arenas up so that the limit is spent on mappings */
    if (xm_heap_create(&o, &h) != XM_OK)
        return 1;
    xm_heap_destroy(h);
    long kb = vm_size_kb();
    if (kb <= 0)
        return 1;
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)kb * 1024 + reserve + (4 << 20);
    if (setrlimit(RLIMIT_AS, &rl))
        return 1;
    h = (xm_heap *)1;
    xm_result r = xm_heap_create(&o, &h);
    int e = xm_last_errno();
    if (h)
        return 10; /* FLIP, silently */
    if (r != XM_ENOMEM || e != ENOMEM)
        return 11;
    o.backend = XM_BACKEND_FLIP; /* fits: one reserve, no alias */
    xm_block b;
    if (xm_heap_create(&o, &h) != XM_OK || make_fn(h, 64, 6, &b) != XM_OK ||
        call_at(b.rx) != 6)
        return 12;
    xm_heap_destroy(h);
    return 0;
}
TEST(auto_reports_rlimit_as_instead_of_flip)
{
    if (under_valgrind()) { /* valgrind's own address space counts */
        printf("    skipped under valgrind (the native run checks it)\n");
        return;
    }
    CHECK_EQ(child_status(auto_rlimit_as_child, NULL), 0);
}
