/* SPDX-License-Identifier: MIT */
/*
 * test_scale.c: the allocator at every size and scale (issue: fast at every
 * size). Mixed sizes over many packs and page runs with the structure walk;
 * steady churn of large blocks without system calls; what quarantine_bytes
 * says a purge releases; the automatic purge's work per call.
 */
#include "test.h"

#include <sys/mman.h>

#include <stdlib.h>

#ifndef XM_DEBUG
#define XM_DEBUG 1
#endif
/* Debug level 3 walks every structure after every call: the walks, not
 * the scale, are the point there, so the loops are shorter; the same loops
 * under a CPU emulator (make check-arm64). */
#define SCALE_SMALL (XM_DEBUG >= 3 || under_emulation())

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* 16 B .. 64 KiB, a few up to 320 KiB: small packs of every class and
 * page runs, fragmented by random frees. Every block runs its own value;
 * the structure walk (class lists, longest runs, free-range set) holds. */
static size_t mixed_size(uint64_t *s)
{
    uint64_t r = rnd(s);
    switch (r % 8) {
    case 0: return 16 + (size_t)(r >> 8) % 240;
    case 1: case 2: return 256 + (size_t)(r >> 8) % 768;
    case 3: case 4: return 1024 + (size_t)(r >> 8) % 3072;
    case 5: return 4096 + (size_t)(r >> 8) % 12288;
    case 6: return 16384 + (size_t)(r >> 8) % 49152;
    default: return (r >> 8) % 16 ? 64 + (size_t)(r >> 12) % 960 : 65536 + (size_t)(r >> 12) % 262144;
    }
}

static void mixed(const config *c)
{
    enum { LIVE = 1500 };
    bool vg = under_valgrind();
    int ops = vg ? 1500 : (int)test_scaled(20000), live = LIVE;
    if (SCALE_SMALL) {
        ops = 300;
        live = 200;
    }
    xm_heap *h = make_heap(c, (size_t)1 << 30, 0);
    CHECK(h);
    static xm_block b[LIVE];
    static uint64_t val[LIVE];
    uint64_t s = 42;
    for (int i = 0; i < live; i++) {
        val[i] = rnd(&s);
        CHECK_OK(make_fn(h, mixed_size(&s), val[i], &b[i]));
    }
    for (int op = 0; op < ops; op++) {
        int k = (int)(rnd(&s) % live);
        CHECK_EQ(call_at(b[k].rx), val[k]);
        CHECK_OK(xm_free(h, b[k].rx));
        val[k] = rnd(&s);
        CHECK_OK(make_fn(h, mixed_size(&s), val[k], &b[k]));
        if (op % 5000 == 4999)
            xm__heap_check(h);
    }
    for (int i = 0; i < live; i++)
        CHECK_EQ(call_at(b[i].rx), val[i]);
    xm__heap_check(h);
    for (int i = 0; i < live; i++)
        CHECK_OK(xm_free(h, b[i].rx));
    CHECK_OK(xm_purge(h));
    xm_stats st;
    CHECK_OK(xm_heap_stats(h, &st));
    CHECK_EQ(st.live_blocks, 0);
    CHECK_EQ(st.quarantine_bytes, 0);
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(scale_mixed_sizes_over_many_packs) { FOR_CONFIGS(mixed); }

/* Steady churn of 64-256 KiB functions reuses freed page runs, mapped and
 * trap-filled: after a warm-up, no system call and no revocation, and the
 * mapped bytes stay within 1.25x of the live ones + 1 MiB. (A few hundred
 * blocks of 64-512 KiB do not settle so: README says what they cost.) */
static void large_steady(const config *c)
{
    enum { LIVE = 300 };
    int warm = 8000, ops = 2000;
    bool steady = true; /* long enough to settle */
    if (under_valgrind() || SCALE_SMALL) {
        warm = SCALE_SMALL ? 100 : 600;
        ops = SCALE_SMALL ? 50 : 200;
        steady = false;
    }
    xm_heap *h = make_heap(c, (size_t)1 << 30, 0);
    CHECK(h);
    static void *rx[LIVE];
    uint64_t s = 7;
    for (int i = 0; i < LIVE; i++) {
        xm_block b;
        CHECK_OK(make_fn(h, 65536 + (size_t)(rnd(&s) % (192u << 10)), (uint64_t)i, &b));
        rx[i] = b.rx;
    }
    xm_stats s0, s1;
    for (int op = 0; op < warm + ops; op++) {
        if (op == warm)
            CHECK_OK(xm_heap_stats(h, &s0));
        int k = (int)(rnd(&s) % LIVE);
        CHECK_OK(xm_free(h, rx[k]));
        xm_block b;
        CHECK_OK(make_fn(h, 65536 + (size_t)(rnd(&s) % (192u << 10)), (uint64_t)op, &b));
        CHECK_EQ(call_at(b.rx), (uint64_t)op);
        rx[k] = b.rx;
    }
    CHECK_OK(xm_heap_stats(h, &s1));
    printf("    [%s] %d ops after %d of warm-up: %llu system calls, %llu revocations; "
           "mapped %.1f MB for %.1f MB live\n",
           c->name, ops, warm, (unsigned long long)(s1.syscalls - s0.syscalls),
           (unsigned long long)(s1.revocations - s0.revocations),
           (double)s1.resident_bytes / 1e6, (double)s1.live_bytes / 1e6);
    /* stats itself may lock biased arenas with one membarrier per call */
    if (steady) {
        CHECK(s1.syscalls - s0.syscalls <= 2);
        CHECK_EQ(s1.revocations - s0.revocations, 0);
        CHECK(s1.resident_bytes <= s1.live_bytes + s1.live_bytes / 4 + (1u << 20));
    }
    for (int i = 0; i < LIVE; i++)
        CHECK_OK(xm_free(h, rx[i]));
    xm_heap_destroy(h);
}
/* STRICT writes every publish with pwrite and FLIP changes rights per
 * block: those pay per operation by design */
TEST(large_block_churn_makes_no_system_calls)
{
    FOR_CONFIGS_IF(large_steady, configs[ci_].backend == XM_BACKEND_DUAL &&
                                     !(configs[ci_].flags & XM_STRICT));
}

static void call_void_at(void *rx) { (void)call_at(rx); }

/* A large block that no freed run fits takes a shorter freed run (mapped,
 * trap-filled) with the released pages beside it, and maps only those
 * afresh, when the quarantine is past half the lazy bound (96 KiB here):
 * on the right of the run, then on its left. a, b, c, d side by side; b
 * released (a gap of 16 NONE pages); a freed, then c. */
static void mixed_takes(const config *c)
{
    if (c->backend != XM_BACKEND_DUAL)
        return; /* FLIP maps and revokes per block anyway */
    xm_heap *h = make_heap(c, 0, 96 << 10);
    CHECK(h);
    enum { P = 4096 };
    static const size_t pages[4] = {16, 16, 16, 16};
    xm_block blk[4];
    bool adjacent = true;
    for (int i = 0; i < 4; i++) {
        CHECK_OK(make_fn(h, pages[i] * P, (uint64_t)i + 1, &blk[i]));
        adjacent &= !i || (char *)blk[i].rx == (char *)blk[i - 1].rx + 16 * P;
    }
    CHECK(adjacent); /* a fresh heap grows upwards, block after block */
    xm_block a = blk[0], b = blk[1], cc = blk[2], d = blk[3];
    CHECK_OK(xm_free(h, b.rx));
    CHECK_OK(xm_purge(h));
    CHECK_OK(xm_free(h, a.rx));
    xm_stats s0, s1, s2;
    CHECK_OK(xm_heap_stats(h, &s0));
    CHECK_EQ(s0.quarantine_bytes, 16 * (size_t)P);
    /* 24 pages: a's 16 and the first 8 of the gap */
    xm_block x;
    CHECK_OK(make_fn(h, 24 * P, 7, &x));
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK(x.rx == a.rx);
    CHECK_EQ(x.size, 24 * (size_t)P);
    CHECK_EQ(s1.quarantine_bytes, 0);
    CHECK_EQ(s1.resident_bytes - s0.resident_bytes, 8 * (size_t)P);
    CHECK_EQ(s1.revocations, s0.revocations);
    CHECK_EQ(call_at(x.rx), 7);
    /* the fresh pages are traps where the function did not write */
    int sig = child_signal(call_void_at, (char *)x.rx + 20 * P + 5);
    CHECK(sig == trap_sig_at((char *)x.rx + 20 * P + 5) || sig == SIGSEGV);
    /* c freed: d lives on its right, the rest of the gap (8 pages) is on
       its left; 20 pages take c's 16 and the gap's last 4 */
    CHECK_OK(xm_free(h, cc.rx));
    xm_block y;
    CHECK_OK(make_fn(h, 20 * P, 8, &y));
    CHECK_OK(xm_heap_stats(h, &s2));
    CHECK((char *)y.rx == (char *)cc.rx - 4 * P);
    CHECK_EQ(s2.quarantine_bytes, 0);
    CHECK_EQ(s2.resident_bytes - s1.resident_bytes, 4 * (size_t)P);
    CHECK_EQ(call_at(y.rx), 8);
    CHECK_EQ(call_at(d.rx), 4);
    CHECK(audit_clean(false));
    /* freed, every page of both traps, the fresh ones too */
    CHECK_OK(xm_free(h, x.rx));
    CHECK_OK(xm_free(h, y.rx));
    static const size_t offs[] = {0, 3 * P + 1, 17 * P + 9, 19 * P + 63};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        char *at = (char *)x.rx + offs[i];
        sig = child_signal(call_void_at, at);
        CHECK(sig == trap_sig_at(at) || sig == SIGSEGV);
        at = (char *)y.rx + offs[i];
        sig = child_signal(call_void_at, at);
        CHECK(sig == trap_sig_at(at) || sig == SIGSEGV);
    }
    CHECK_EQ(call_at(d.rx), 4);
    xm_heap_destroy(h);
}
TEST(large_block_takes_freed_run_and_released_neighbour) { FOR_CONFIGS(mixed_takes); }

/* What quarantine_bytes reports is what a purge releases: 1000 published
 * 16-byte blocks freed with no automatic purge (their pack is the arena's
 * kept empty one), then xm_purge. */
static void quarantine_says(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    static xm_block b[1000];
    for (int i = 0; i < 1000; i++)
        CHECK_OK(make_fn(h, 16, (uint64_t)i, &b[i]));
    for (int i = 0; i < 1000; i++)
        CHECK_OK(xm_free(h, b[i].rx));
    xm_stats s0, s1;
    CHECK_OK(xm_heap_stats(h, &s0));
    if (c->backend == XM_BACKEND_DUAL)
        CHECK(s0.quarantine_bytes > 0);
    CHECK_OK(xm_purge(h));
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s0.resident_bytes - s1.resident_bytes, s0.quarantine_bytes);
    CHECK_EQ(s1.quarantine_bytes, 0);
    CHECK_EQ(s1.resident_bytes, 0);
    xm_heap_destroy(h);
}
TEST(quarantine_bytes_is_what_a_purge_releases) { FOR_CONFIGS(quarantine_says); }

/* The automatic purge does bounded work per call: the heap shrinks from
 * 2000 live 20 KiB blocks to none, freeing every other block first (1000
 * separate mapped runs), so the default lazy bound (8 MiB here) is passed
 * by far; no single xm_free releases more than 64 runs, and the
 * quarantine ends within the bound. */
static void purge_bounded(const config *c)
{
    enum { N = 2000 };
    /* debug level 3: a lazy limit of 1 MiB passes the bound with fewer */
    int n = SCALE_SMALL ? 200 : N;
    xm_heap *h = make_heap(c, (size_t)1 << 30, SCALE_SMALL ? (1u << 20) : 0);
    CHECK(h);
    static void *rx[N];
    for (int i = 0; i < n; i++) {
        xm_block b;
        CHECK_OK(make_fn(h, 20000, (uint64_t)i, &b));
        rx[i] = b.rx;
    }
    uint64_t worst = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = pass; i < n; i += 2) {
            xm_stats s0, s1;
            CHECK_OK(xm_heap_stats(h, &s0));
            CHECK_OK(xm_free(h, rx[i]));
            CHECK_OK(xm_heap_stats(h, &s1));
            uint64_t runs = s1.purge_runs - s0.purge_runs;
            worst = runs > worst ? runs : worst;
        }
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    printf("    [%s] worst xm_free: %llu runs released; quarantine at the end %zu KiB\n",
           c->name, (unsigned long long)worst, s.quarantine_bytes >> 10);
    CHECK(worst <= 64);
    CHECK(s.quarantine_bytes <= (size_t)8 << 20);
    xm_heap_destroy(h);
}
TEST(automatic_purge_is_bounded_per_call)
{
    FOR_CONFIGS_IF(purge_bounded, configs[ci_].backend == XM_BACKEND_DUAL);
}

/* The magazine classes of 1-16 KiB blocks: a freed block waits where every
 * allocation that takes from that class fits in it, and an allocation
 * takes from the lowest such class (white box: internal.h). */
#include "internal.h"
#include "arch.h"
TEST(magazine_classes_fit)
{
    for (uint32_t n = 1; n <= 256; n++) {
        uint32_t t = xm__mag_take_class(n);
        CHECK(t < XM__MAG_CLASSES && xm__mag_hi(t) >= n);
        CHECK(t == 0 || xm__mag_hi(t - 1) < n);
        CHECK(n > 16 || xm__mag_hi(t) == n); /* exact up to 1 KiB */
        uint32_t p = xm__mag_put_class(n);
        if (p < XM__MAG_CLASSES) {
            CHECK(xm__mag_hi(p) <= n);
            CHECK(p + 1 == XM__MAG_CLASSES || xm__mag_hi(p + 1) > n);
            CHECK(n - xm__mag_hi(p) <= xm__mag_hi(p) / 8); /* at most 1/8 more */
        } else {
            CHECK(n == 17); /* between the exact classes and the first 18 */
        }
    }
}

/* 1-16 KiB blocks churn through the magazines: sizes handed out are at
 * least what was asked, at most 1/4 more, every block runs its value, the
 * structure walk holds. */
static void mid_mags(const config *c)
{
    enum { LIVE = 400 };
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    static xm_block b[LIVE];
    static uint64_t val[LIVE];
    uint64_t s = 3;
    int ops = SCALE_SMALL || under_valgrind() ? 500 : (int)test_scaled(20000);
    for (int i = 0; i < LIVE; i++) {
        val[i] = rnd(&s);
        CHECK_OK(make_fn(h, 1024 + (size_t)(rnd(&s) % 15360), val[i], &b[i]));
    }
    for (int op = 0; op < ops; op++) {
        int k = (int)(rnd(&s) % LIVE);
        CHECK_EQ(call_at(b[k].rx), val[k]);
        CHECK_OK(xm_free(h, b[k].rx));
        size_t want = 1024 + (size_t)(rnd(&s) % 15360);
        val[k] = rnd(&s);
        CHECK_OK(make_fn(h, want, val[k], &b[k]));
        size_t w64 = (want + 63) & ~(size_t)63;
        CHECK(b[k].size >= w64 && (c->backend == XM_BACKEND_FLIP || b[k].size - w64 <= w64 / 4));
        if (op % 5000 == 4999)
            xm__heap_check(h);
    }
    for (int i = 0; i < LIVE; i++) {
        CHECK_EQ(call_at(b[i].rx), val[i]);
        CHECK_OK(xm_free(h, b[i].rx));
    }
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(mid_size_blocks_through_magazines) { FOR_CONFIGS(mid_mags); }

/* A fresh pack is trap-filled as allocations first reach its pages
 * (pack.c, pack_reach): a heap's first block fills one page of its pack,
 * not 32; every block handed out, wherever it lies, reads as traps at rx
 * until published; code published in the reached pages runs. */
static bool all_traps(const void *rx, size_t n)
{
    const unsigned char *q = rx;
    for (size_t i = 0; i < n; i++)
        if (q[i] != XM__TRAP_BYTE)
            return false;
    return true;
}
static void fill_as_reached(const config *c)
{
    enum { N = 300 };
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    static xm_block b[N];
    static uint64_t val[N];
    xm_block first;
    CHECK_OK(xm_alloc(h, 64, 0, &first));
    CHECK(all_traps(first.rx, first.size));
    xm__pack *p = xm__pack_of(h, (uintptr_t)first.rx);
    CHECK(p);
    if (c->backend == XM_BACKEND_DUAL)
        CHECK_EQ(p->filled, 1);
    else
        CHECK_EQ(p->filled, p->npages); /* FLIP: private pages, no holes */
    uint64_t s = 11;
    for (int i = 0; i < N; i++) {
        size_t sz = 16 + (size_t)(rnd(&s) % (i % 10 == 9 ? 12000 : 700));
        xm_block t;
        CHECK_OK(xm_alloc(h, sz, 0, &t));
        CHECK(all_traps(t.rx, t.size)); /* NX until published: traps */
        CHECK_OK(xm_free(h, t.rx));
        val[i] = rnd(&s);
        CHECK_OK(make_fn(h, sz, val[i], &b[i]));
        if (i % 3 == 0 && i > 0) { /* holes for later blocks to reuse */
            CHECK_EQ(call_at(b[i - 1].rx), val[i - 1]);
            CHECK_OK(xm_free(h, b[i - 1].rx));
            b[i - 1].rx = NULL;
        }
    }
    CHECK_EQ(p->filled, p->npages); /* reached everywhere by now */
    xm__heap_check(h);
    for (int i = 0; i < N; i++)
        if (b[i].rx) {
            CHECK_EQ(call_at(b[i].rx), val[i]);
            CHECK_OK(xm_free(h, b[i].rx));
        }
    CHECK_OK(xm_free(h, first.rx));
    xm__heap_check(h);
    CHECK_OK(xm_purge(h));
    xm_stats st;
    CHECK_OK(xm_heap_stats(h, &st));
    CHECK_EQ(st.live_blocks, 0);
    CHECK_EQ(st.quarantine_bytes, 0);
    xm_heap_destroy(h);
}
TEST(fresh_packs_fill_pages_as_reached) { FOR_CONFIGS(fill_as_reached); }

/* A large block's descriptor is a few cache lines (no run index): 3,000
 * FLIP blocks (each its own page run) published, freed and purged leave
 * little resident behind (it had been 4.8 KB a block: 16.7 MB). */
static long rss_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * 4096;
}
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SCALE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SCALE_SANITIZED 1
#endif
#endif
TEST(large_descriptors_are_small)
{
    ONLY_IN_CONFIG("flip");
#ifdef SCALE_SANITIZED
    test_skip("a sanitizer's shadow memory moves the resident size");
    return;
#endif
    if (under_valgrind()) {
        test_skip("valgrind's own bookkeeping moves the resident size");
        return;
    }
    xm_options o = XM_OPTIONS_INIT;
    o.backend = XM_BACKEND_FLIP;
    xm_heap *h = NULL;
    CHECK_OK(xm_heap_create(&o, &h));
    static void *rx[3000];
    long r0 = rss_now();
    for (int i = 0; i < 3000; i++) {
        xm_block b;
        CHECK_OK(make_fn(h, 100, (uint64_t)i, &b));
        rx[i] = b.rx;
    }
    for (int i = 0; i < 3000; i++)
        CHECK_OK(xm_free(h, rx[i]));
    CHECK_OK(xm_purge(h));
    long grown = rss_now() - r0;
    printf("    3000 FLIP blocks freed and purged: resident %+.1f MB\n", (double)grown / 1e6);
    CHECK(grown < (4l << 20));
    xm_heap_destroy(h);
}

/* A destroyed heap's metadata mapping serves the next heap of the same
 * reserve (meta.c: a new heap's metadata is resident, not fresh pages),
 * zeroed where the first heap wrote it: the second heap sits where the
 * first did, starts with empty statistics and structures, and runs code
 * in packs and page runs over the pages whose state the first heap left. */
static void meta_reused(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    static void *rx[300];
    for (int i = 0; i < 300; i++) {
        xm_block b;
        CHECK_OK(make_fn(h, i % 7 == 0 ? 40000 : 64 + (size_t)i * 8, (uint64_t)i, &b));
        rx[i] = b.rx;
    }
    for (int i = 0; i < 300; i += 2)
        CHECK_OK(xm_free(h, rx[i]));
    void *first = h;
    xm_heap_destroy(h);
    /* still mapped (parked; mincore: ENOMEM for an unmapped page), and
       the next heap takes it (valgrind: every heap gets a fresh mapping) */
    unsigned char vec[1];
    bool parked = mincore(first, 4096, vec) == 0;
    if (!under_valgrind())
        CHECK(parked);
    h = make_heap(c, 0, 0);
    CHECK(h);
    if (!under_valgrind())
        CHECK(h == first);
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 0);
    CHECK_EQ(s.allocs + s.frees + s.publishes + s.purges, 0);
    CHECK_EQ(s.quarantine_bytes, 0);
    xm__heap_check(h);
    for (int i = 0; i < 300; i++) {
        xm_block b;
        CHECK_OK(make_fn(h, i % 5 == 0 ? 70000 : 32 + (size_t)i * 4, 1000u + (uint64_t)i, &b));
        rx[i] = b.rx;
    }
    for (int i = 0; i < 300; i++)
        CHECK_EQ(call_at(rx[i]), 1000u + (uint64_t)i);
    xm__heap_check(h);
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 300);
    xm_heap_destroy(h);
}
TEST(destroyed_heap_metadata_serves_the_next_heap_zeroed) { FOR_CONFIGS(meta_reused); }

/* The mappings that overlap [a, a+len): how many, and whether the only one
 * is exactly the page at a, PROT_NONE, anonymous. */
static int maps_in(uintptr_t a, size_t len, bool *one_none_page)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    *one_none_page = false;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e, ino;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu", &s, &e, perms, &ino) != 4 ||
            !(s < a + len && a < e))
            continue;
        n++;
        *one_none_page = s == a && e == a + 4096 && !strcmp(perms, "---p") && ino == 0;
    }
    if (f)
        fclose(f);
    *one_none_page = *one_none_page && n == 1;
    return n;
}

/* A destroyed default heap leaves its anchors (meta.c): the first page of
 * its reserve and of its alias, PROT_NONE and anonymous (no file, nothing
 * that executes or writes), which keep the page tables under them; the
 * next default heap maps its ranges back around them and runs code there;
 * a heap that has no alias (XM_STRICT) unmaps the alias's; dropping the
 * park leaves nothing in either range. */
static void anchors_kept(void)
{
    xm__park_drop();
    xm_heap *h = NULL;
    CHECK_OK(xm_heap_create(NULL, &h));
    xm_block b;
    CHECK_OK(make_fn(h, 64, 7, &b));
    CHECK_EQ(call_at(b.rx), 7);
    uintptr_t base, alias, prx, pal;
    size_t len;
    xm__heap_ranges(h, &base, &len, &alias);
    CHECK(alias != 0);
    xm_heap_destroy(h);
    xm__park_peek(&prx, &pal);
    if (under_valgrind()) { /* nothing parked there */
        CHECK(prx == 0 && pal == 0);
        return;
    }
    CHECK_EQ(prx, base);
    CHECK_EQ(pal, alias);
    bool one = false;
    CHECK_EQ(maps_in(base, len, &one), 1);
    CHECK(one);
    CHECK_EQ(maps_in(alias, len, &one), 1);
    CHECK(one);
    CHECK_EQ(child_signal(call_void_at, b.rx), SIGSEGV);
    /* the next heap: the same ranges, code at the anchor's page */
    CHECK_OK(xm_heap_create(NULL, &h));
    uintptr_t base2, alias2;
    xm__heap_ranges(h, &base2, &len, &alias2);
    CHECK_EQ(base2, base);
    CHECK_EQ(alias2, alias);
    xm__park_peek(&prx, &pal);
    CHECK(prx == 0 && pal == 0);
    xm_block u;
    CHECK_OK(xm_alloc(h, 64, 0, &u));
    CHECK_EQ(child_signal(call_void_at, u.rx), TRAP_SIG); /* unpublished */
    emit_ret(u.rw, 8);
    CHECK_OK(xm_publish(h, u.rx, XM_PROT_RX));
    CHECK_EQ(call_at(u.rx), 8);
    CHECK_EQ((uintptr_t)u.rx, base);
    xm_audit_report rep;
    CHECK_OK(xm_audit(0, &rep));
    CHECK_EQ(rep.wx_mappings, 0);
    xm_heap_destroy(h);
    /* a STRICT heap maps no alias: the alias anchor goes */
    xm_options o = XM_OPTIONS_INIT;
    o.flags = XM_STRICT;
    CHECK_OK(xm_heap_create(&o, &h));
    CHECK_EQ(maps_in(alias, len, &one), 0);
    xm_heap_destroy(h);
    /* a heap placed near the program drops the anchors it finds and
       leaves none */
    CHECK_OK(xm_heap_create(NULL, &h));
    xm__heap_ranges(h, &base, &len, &alias);
    xm_heap_destroy(h);
    xm__park_peek(&prx, &pal);
    CHECK(prx == base && pal == alias);
    o = (xm_options)XM_OPTIONS_INIT;
    static int near_here; /* in the program's data */
    o.near = &near_here;
    CHECK_OK(xm_heap_create(&o, &h));
    xm__park_peek(&prx, &pal);
    CHECK(prx == 0 && pal == 0);
    uintptr_t nbase, nalias;
    size_t nlen;
    xm__heap_ranges(h, &nbase, &nlen, &nalias);
    /* the anchor pages are gone, unless the new heap's own ranges (its
       alias is mapped anywhere: maybe where the old one was) cover them */
    uintptr_t at[2] = {base, alias};
    for (int k = 0; k < 2; k++)
        if (!(at[k] - nbase < nlen || at[k] - nalias < nlen))
            CHECK_EQ(maps_in(at[k], 4096, &one), 0);
    xm_heap_destroy(h);
    xm__park_peek(&prx, &pal);
    CHECK(prx == 0 && pal == 0);
    xm__park_drop();
    CHECK_EQ(maps_in(base, len, &one), 0);
    CHECK_EQ(maps_in(alias, len, &one), 0);
}
TEST(destroyed_heap_anchors_serve_the_next_heap) { anchors_kept(); }

/* Staging buffers above 2 KiB go by power-of-two classes (stage.c): a
 * block of another size in the same class gets the buffer the last one
 * published gave back; every byte of b.size is writable (the sanitizer runs
 * see an overrun); a block above the classes (8 MiB) gets one of its own
 * size. Each block runs, and traps where it was not written. */
static void stage_classes(const config *c)
{
    if (c->backend != XM_BACKEND_DUAL || (c->flags & XM_INPLACE))
        return; /* no staging */
    xm_heap *h = make_heap(c, (size_t)64 << 20, 0);
    CHECK(h);
    static const size_t pairs[][2] = {
        {2200, 4000}, {5000, 8000}, {40000, 60000}, {600000, 1000000}, {(9u << 20), (9u << 20) + 4096}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        void *rw[2];
        for (int k = 0; k < 2; k++) {
            xm_block b;
            CHECK_OK(xm_alloc(h, pairs[i][k], 0, &b));
            CHECK(b.size >= pairs[i][k]);
            const unsigned char *q = b.rw;
            CHECK(q[0] == TRAP_BYTE && q[b.size - 1] == TRAP_BYTE);
            memset(b.rw, TRAP_BYTE, b.size); /* every byte offered */
            emit_ret(b.rw, 100 + i * 2 + (size_t)k);
            rw[k] = b.rw;
            CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
            CHECK_EQ(call_at(b.rx), 100 + i * 2 + (size_t)k);
            CHECK_OK(xm_free(h, b.rx));
        }
#if XM_DEBUG < 2 /* (debug builds keep released buffers to check them) */
        if (pairs[i][0] < ((size_t)8 << 20))
            CHECK(rw[1] == rw[0]); /* the class's buffer, recycled */
#else
        (void)rw;
#endif
    }
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(staging_buffers_recycled_by_class) { FOR_CONFIGS(stage_classes); }

/* One buffer is kept per class up to 16 MiB, whatever their total (a
 * budget of 8 MiB had freed the larger ones after every use, and malloc
 * faults a large one in page by page): with malloc failing, a block of
 * each class is staged again in its class's buffer. xm_purge frees them:
 * the next large block needs malloc. */
static void stage_big_kept(const config *c)
{
    if (c->backend != XM_BACKEND_DUAL || (c->flags & XM_INPLACE))
        return; /* no staging */
#if XM_DEBUG < 2 /* (debug builds keep released buffers to check them) */
    xm_heap *h = make_heap(c, (size_t)256 << 20, SIZE_MAX);
    CHECK(h);
    static const size_t sizes[] = {1u << 20, 2u << 20, 4u << 20, 8u << 20, 16u << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *rw[N];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            xm_block b;
            xm__mem_inject(round); /* round 1: no malloc may succeed */
            xm_result r = xm_alloc(h, sizes[i], 0, &b);
            xm__mem_inject(0);
            CHECK_OK(r);
            CHECK_EQ(b.size, sizes[i]);
            if (round)
                CHECK(b.rw == rw[i]);
            rw[i] = b.rw;
            emit_ret(b.rw, 200 + (uint64_t)i);
            CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
            CHECK_EQ(call_at(b.rx), 200 + (uint64_t)i);
            CHECK_OK(xm_free(h, b.rx));
        }
    CHECK_OK(xm_purge(h));
    xm_block b;
    xm__mem_inject(1);
    xm_result r = xm_alloc(h, 3u << 20, 0, &b);
    xm__mem_inject(0);
    CHECK_EQ(r, XM_ENOMEM);
    CHECK_OK(make_fn(h, 3u << 20, 9, &b));
    CHECK_EQ(call_at(b.rx), 9);
    xm__heap_check(h);
    xm_heap_destroy(h);
#else
    (void)c;
#endif
}
TEST(staging_buffers_kept_for_every_class) { FOR_CONFIGS(stage_big_kept); }
