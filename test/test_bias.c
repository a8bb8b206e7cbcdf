/* SPDX-License-Identifier: MIT */
/*
 * test_bias.c: the arenas' biased locks (src/arena_lock.c). A thread that
 * owns its arena churns functions on it with the lock-free fast path while
 * another thread frees, patches and queries the owner's blocks through the
 * slow path (mutex + membarrier): every call result stays right, the
 * structures stay consistent, each remote lock costs one membarrier until
 * the arena has been stolen from XM__STEAL_MAX times, and none after. A
 * remote free takes no lock (src/deferred.c): no membarrier either.
 */
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

enum { HANDED = 64, RING = 32 };

typedef struct owner_arg {
    xm_heap *h;
    xm_block handed[HANDED];
    _Atomic int ready, stop;
    long errors;
    _Atomic long ops;
} owner_arg;

static void *owner_main(void *p)
{
    owner_arg *o = p;
    for (int i = 0; i < HANDED; i++)
        if (make_fn(o->h, 64 + (size_t)i * 8, 1000 + (uint64_t)i, &o->handed[i]) != XM_OK)
            o->errors++;
    xm_block ring[RING];
    for (int i = 0; i < RING; i++)
        if (make_fn(o->h, 64, (uint64_t)i, &ring[i]) != XM_OK)
            o->errors++;
    /* the arena's pack reached to its end (a small heap's pack is
       trap-filled as allocations reach its pages, a system call a step):
       none of that growth in the window where remote frees are counted */
    xm_block big[8];
    for (int i = 0; i < 8; i++)
        if (xm_alloc(o->h, 16000, 0, &big[i]) != XM_OK)
            o->errors++;
    for (int i = 0; i < 8; i++)
        if (!o->errors && xm_free(o->h, big[i].rx) != XM_OK)
            o->errors++;
    atomic_store(&o->ready, 1);
    uint64_t v = RING;
    /* bounded, and yielding now and then: valgrind runs one thread at a
       time and would not take the CPU from a thread that never blocks */
    while (!atomic_load(&o->stop) && !o->errors && atomic_load(&o->ops) < 2000000) {
        if (v % 64 == 0)
            sched_yield();
        int k = (int)(v % RING);
        if (call_at(ring[k].rx) != v - RING)
            o->errors++;
        if (xm_free(o->h, ring[k].rx) != XM_OK ||
            make_fn(o->h, 64 + (v % 5) * 100, v, &ring[k]) != XM_OK)
            o->errors++;
        v++;
        o->ops++;
    }
    for (int i = 0; i < RING; i++)
        if (xm_free(o->h, ring[i].rx) != XM_OK)
            o->errors++;
    return NULL;
}

/* What the other thread does while the owner churns (returns early on a
 * failed check; the caller stops and joins the owner either way). */
static void remote_part(const config *c, xm_heap *h, owner_arg *o)
{
    unsigned owned, unbiased;
    int bias = xm__bias_state(h, &owned, &unbiased);
    if (bias)
        CHECK(owned >= 1); /* the owner claimed its home arena */
    /* the handed blocks live in the owner's arena: every call on them here
       takes the slow path */
    bool exact = c->backend == XM_BACKEND_DUAL && !(c->flags & XM_STRICT);
    /* XM_PKEYS heaps (XM_TEST_PKEYS=1) have no remote frees: their frees
       lock as queries do (the first 16 steal, and then the arena is
       unbiased) */
    bool pk = test_extra_flags(c) != 0;
    xm_stats s0, s1;
    CHECK_OK(xm_heap_stats(h, &s0));
    unsigned steals = xm__bias_steal_max();
    uint64_t rf0 = xm__remote_frees(h);
    for (int i = 0; i < HANDED / 4; i++) { /* free a quarter, one at a time */
        CHECK_EQ(call_at(o->handed[i].rx), 1000 + i);
        CHECK_OK(xm_free(h, o->handed[i].rx));
        o->handed[i].rx = NULL;
    }
    CHECK_OK(xm_heap_stats(h, &s1));
    unsigned unbiased1;
    xm__bias_state(h, &owned, &unbiased1);
    if (bias && exact) {
        /* no lock, so no membarrier: only the stats call's, which locks
           every arena (at debug level 3 the structure walk after each call
           does too); the frees waited on the arena, the stats call
           completed them */
#if XM_DEBUG >= 3
        CHECK(s1.syscalls - s0.syscalls >= 1);
#else
        CHECK_EQ(s1.syscalls - s0.syscalls, pk ? steals : 1);
        CHECK_EQ(xm__remote_frees(h) - rf0, pk ? 0 : HANDED / 4);
#endif
        if (!pk)
            CHECK_EQ(unbiased1, unbiased);
        CHECK_EQ(s1.frees - s0.frees >= HANDED / 4, 1);
    }
    printf("    [%s] bias %s: %d remote frees cost %llu system calls (%llu without a lock)\n",
           c->name, bias ? "on" : "off", HANDED / 4,
           (unsigned long long)(s1.syscalls - s0.syscalls),
           (unsigned long long)(xm__remote_frees(h) - rf0));
    CHECK_OK(xm_heap_stats(h, &s0));
    for (int i = HANDED / 4; i < HANDED / 2; i++) { /* query and free a quarter */
        xm_block q;
        CHECK_OK(xm_query(h, o->handed[i].rx, &q));
        CHECK_EQ(call_at(o->handed[i].rx), 1000 + i);
        CHECK_OK(xm_free(h, o->handed[i].rx));
        o->handed[i].rx = NULL;
    }
    CHECK_OK(xm_heap_stats(h, &s1));
    xm__bias_state(h, &owned, &unbiased);
    if (bias && exact) {
        /* one membarrier per remote lock (the queries) until the arena is
           unbiased, none after (and none for the second stats call); at
           debug level 3 the structure walk after each call locks every
           arena, one more membarrier per call while the arena is still
           biased */
#if XM_DEBUG >= 3
        CHECK(s1.syscalls - s0.syscalls >= (pk ? 0 : steals));
#else
        CHECK_EQ(s1.syscalls - s0.syscalls, pk ? 0 : steals);
#endif
        CHECK(unbiased >= 1);
    }
    printf("    [%s] bias %s: %d remote queries and frees cost %llu system calls; %u arena(s) "
           "owned, %u unbiased\n",
           c->name, bias ? "on" : "off", HANDED / 4,
           (unsigned long long)(s1.syscalls - s0.syscalls), owned, unbiased);
    for (int i = HANDED / 2; i < HANDED; i++) { /* patch, query, call, free */
        xm_block q;
        unsigned char code[RET_LEN];
        emit_ret(code, 5000 + (uint64_t)i);
        CHECK_OK(xm_query(h, (char *)o->handed[i].rx + 3, &q));
        CHECK(q.rx == o->handed[i].rx);
        CHECK_OK(xm_patch(h, o->handed[i].rx, code, RET_LEN));
        CHECK_EQ(call_at(o->handed[i].rx), 5000 + i);
        CHECK_OK(xm_free(h, o->handed[i].rx));
        o->handed[i].rx = NULL;
    }
}

/* Stops the owner and waits for it. */
static void stop_owner(owner_arg *o, pthread_t th)
{
    atomic_store(&o->stop, 1);
    pthread_join(th, NULL);
}

/* Starts the owner on h and waits until it has handed its blocks over. */
static bool start_owner(xm_heap *h, owner_arg *o, pthread_t *th)
{
    memset(o, 0, sizeof *o);
    o->h = h;
    if (pthread_create(th, NULL, owner_main, o))
        return false;
    while (!atomic_load(&o->ready))
        sched_yield();
    return true;
}

static void remote_calls(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    owner_arg o;
    pthread_t th;
    CHECK(start_owner(h, &o, &th));
    remote_part(c, h, &o);
    stop_owner(&o, th);
    if (test_failed)
        return;
    CHECK_EQ(o.errors, 0);
    CHECK(atomic_load(&o.ops) > 0);
    xm__heap_check(h);
    xm_stats s1;
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.live_blocks, 0);
    xm_heap_destroy(h);
}
TEST(bias_remote_calls_on_owned_arena) { FOR_CONFIGS(remote_calls); }

/* Lock-all (stats) while the owner churns: correct, and no arena unbiased. */
static void stats_during_churn(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    owner_arg o;
    pthread_t th;
    CHECK(start_owner(h, &o, &th));
    bool bad = false;
    for (int i = 0; !bad && (i < 200 || (atomic_load(&o.ops) < 2000 && i < 100000)); i++) {
        xm_stats s;
        if (i % 64 == 63)
            sched_yield();
        bad = xm_heap_stats(h, &s) != XM_OK || s.live_blocks < HANDED ||
              s.live_blocks > HANDED + RING;
    }
    stop_owner(&o, th);
    CHECK(!bad);
    unsigned owned, unbiased;
    int bias = xm__bias_state(h, &owned, &unbiased);
    CHECK_EQ(unbiased, 0);
    CHECK_EQ(o.errors, 0);
    printf("    [%s] bias %s: stats calls during %ld owner operations\n",
           c->name, bias ? "on" : "off", atomic_load(&o.ops));
    for (int i = 0; i < HANDED; i++)
        CHECK_OK(xm_free(h, o.handed[i].rx));
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(bias_stats_while_owner_churns) { FOR_CONFIGS(stats_during_churn); }

/* The fast paths (src/fast.h) are on exactly for DUAL without XM_STRICT
 * (the staged default and XM_INPLACE) where the arenas are biased, and a
 * churn that mixes them with the general path (sizes past the magazines,
 * data blocks, frees of unpublished blocks, async frees) gives the right
 * results and consistent structures; with XM_INPLACE most allocations and
 * publishes take the fast path. */
static void fast_mix(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    unsigned owned, unbiased;
    int bias = xm__bias_state(h, &owned, &unbiased);
    bool want = bias && c->backend == XM_BACKEND_DUAL && !(c->flags & XM_STRICT);
    CHECK_EQ(xm__fast_state(h), want);
    uint64_t ia0, ip0;
    xm__fast_inplace(h, &ia0, &ip0);
    enum { N = 256 };
    xm_block b[N];
    uint64_t val[N];
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        CHECK_OK(make_fn(h, 16 + (size_t)(i * 37) % 1500, (uint64_t)i, &b[i]));
        val[i] = (uint64_t)i;
    }
    int iters = under_emulation() ? 2000 : (int)test_scaled(20000); /* TCG: FLIP took 73 s */
    for (int it = 0; it < iters; it++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((s >> 33) % N);
        CHECK_EQ(call_at(b[k].rx), val[k]);
        unsigned what = (unsigned)(s >> 20) % 16;
        if (what == 0)
            CHECK_OK(xm_free_async(h, b[k].rx));
        else
            CHECK_OK(xm_free(h, b[k].rx));
        if (what == 1) { /* an unpublished block freed, and a data block */
            xm_block u, d;
            CHECK_OK(xm_alloc(h, 200, 0, &u));
            CHECK_OK(xm_alloc_data(h, 100, 0, &d));
            memset(d.rw, 7, 100);
            CHECK_OK(xm_publish(h, d.rx, XM_PROT_R));
            CHECK_EQ(((unsigned char *)d.rx)[99], 7);
            CHECK_OK(xm_free(h, u.rx));
            CHECK_OK(xm_free(h, d.rx));
        }
        size_t size = what == 2 ? 1025 + (s >> 40) % 3000 : 1 + (s >> 40) % 1024;
        val[k] = (uint64_t)it * 3 + 1;
        CHECK_OK(make_fn(h, size < RET_LEN ? RET_LEN : size, val[k], &b[k]));
        if (it % 2000 == 0)
            xm__heap_check(h);
    }
    xm_stats st;
    CHECK_OK(xm_heap_stats(h, &st));
    CHECK_EQ(st.live_blocks, N);
    uint64_t ia, ip;
    xm__fast_inplace(h, &ia, &ip);
    if (want && (c->flags & XM_INPLACE)) { /* the magazines serve most */
        CHECK((ia - ia0) * 2 > (uint64_t)iters);
        CHECK((ip - ip0) * 2 > (uint64_t)iters);
    } else {
        CHECK_EQ(ia - ia0, 0);
        CHECK_EQ(ip - ip0, 0);
    }
    for (int i = 0; i < N; i++)
        CHECK_OK(xm_free(h, b[i].rx));
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(fast_paths_mix_with_general_paths) { FOR_CONFIGS(fast_mix); }

/* Blocks of 1-16 KiB take the fast paths too: a size that finds a freed
 * block in the magazine class it takes from is served there without the
 * general path (six of the sizes below from the third round on: 1025
 * bytes, 17 granules, takes a block of 1152, 18 granules, and 1152 the
 * other one; 36, 48, 72 and 256 granules find their own; 12000 bytes takes
 * from the class above the one it waits in; in the second round the class
 * of 18 granules holds one block only), with a block of its class's size
 * (at most a quarter larger than asked, as b.size says), every byte of
 * which is a trap before the JIT writes (the staging buffer was recycled
 * dirty) and reaches the code at publish. xm_load likewise. */
#if XM_DEBUG >= 2
#define NO_STAGE_RECYCLING 1
#else
#define NO_STAGE_RECYCLING 0
#endif
static void mid_fast(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    bool fast = xm__fast_state(h), inplace = c->flags & XM_INPLACE;
    static const size_t sizes[] = {1025, 1152, 2304, 3072, 4608, 12000, 16384};
    enum { N = sizeof sizes / sizeof sizes[0] };
    static unsigned char src[16384];
    xm_block keep, b[N];
    CHECK_OK(make_fn(h, 64, 1, &keep)); /* the pack stays: frees are cached */
    for (int round = 0; round < 4; round++) {
        uint64_t fa0 = xm__fast_allocs(h), fl0 = xm__fast_loads(h), ia0, ip0, ia, ip;
        xm__fast_inplace(h, &ia0, &ip0);
        for (size_t i = 0; i < N; i++) {
            uint64_t v = 500 + (uint64_t)round * N + i;
            CHECK_OK(xm_alloc(h, sizes[i], 0, &b[i]));
            size_t most = c->backend == XM_BACKEND_FLIP ? (sizes[i] + 4095) & ~(size_t)4095
                                                        : sizes[i] + sizes[i] / 4 + 64;
            CHECK(b[i].size >= sizes[i] && b[i].size <= most);
            xm_block q;
            CHECK_OK(xm_query(h, b[i].rx, &q)); /* the block's own size */
            CHECK_EQ(q.size, b[i].size);
            xm_stats st;
            CHECK_OK(xm_heap_stats(h, &st));
            if (c->backend == XM_BACKEND_DUAL && !inplace && !(c->flags & XM_STRICT))
                CHECK_EQ(st.staging_bytes, b[i].size); /* its buffer alone */
            const unsigned char *w = b[i].rw;
            size_t k = 0;
            while (k < b[i].size && w[k] == TRAP_BYTE)
                k++;
            CHECK_EQ(k, b[i].size);
            memset(b[i].rw, 0x90, b[i].size); /* dirty to its end */
            emit_ret(b[i].rw, v);
            CHECK_OK(xm_publish(h, b[i].rx, XM_PROT_RX));
            CHECK_EQ(call_at(b[i].rx), v);
            CHECK_EQ(((const unsigned char *)b[i].rx)[b[i].size - 1], 0x90);
        }
        for (size_t i = 0; i < N; i++)
            CHECK_OK(xm_free(h, b[i].rx));
        xm__fast_inplace(h, &ia, &ip);
        if (round > 1) {
            /* (XM_DEBUG >= 2 recycles no staging buffer: those take the
               general path) */
            CHECK_EQ(xm__fast_allocs(h) - fa0, fast && !inplace && !NO_STAGE_RECYCLING ? 6 : 0);
            CHECK_EQ(ia - ia0, fast && inplace ? 6 : 0);
        }
        for (size_t i = 0; i < N; i++) { /* xm_load: the same classes */
            uint64_t v = 900 + (uint64_t)round * N + i;
            memset(src, 0x90, sizes[i]);
            emit_ret(src, v);
            CHECK_OK(xm_load(h, src, sizes[i], 0, XM_PROT_RX, &b[i]));
            CHECK_EQ(call_at(b[i].rx), v);
            const unsigned char *x = b[i].rx;
            CHECK_EQ(x[sizes[i] - 1], 0x90);
            for (size_t k = sizes[i]; k < b[i].size; k++)
                CHECK_EQ(x[k], TRAP_BYTE);
        }
        for (size_t i = 0; i < N; i++)
            CHECK_OK(xm_free(h, b[i].rx));
        if (round > 1)
            CHECK_EQ(xm__fast_loads(h) - fl0, fast ? 6 : 0);
        xm__heap_check(h);
    }
    CHECK_OK(xm_free(h, keep.rx));
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(mid_blocks_take_the_fast_paths) { FOR_CONFIGS(mid_fast); }

/* The fast paths' gate word: the first async free makes them clear stale
 * requests from then on (names close it: test_sym.c); and the
 * fast publish takes only the newest staged block of the own arena (an
 * older one, a freed one, a data block published as code, a second publish
 * and a large block all go to the general path and get its answer). */
static void fast_gate_and_publish(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    bool fast = xm__fast_state(h);
    unsigned gate_on = fast ? 0u : 1u; /* XM__G_OFF */
    CHECK_EQ(xm__fast_gate(h), gate_on);

    xm_block a, b, d, u, big;
    CHECK_OK(xm_alloc(h, 100, 0, &a));
    CHECK_OK(xm_alloc(h, 200, 0, &b)); /* a leaves the newest slot */
    emit_ret(a.rw, 1);
    emit_ret(b.rw, 2);
    CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
    CHECK_EQ(xm_publish(h, b.rx, XM_PROT_RX), XM_ESTATE);
    CHECK_OK(xm_publish(h, a.rx, XM_PROT_RX));
    CHECK_EQ(call_at(a.rx), 1);
    CHECK_EQ(call_at(b.rx), 2);
    CHECK_OK(xm_alloc(h, 64, 0, &u));
    CHECK_OK(xm_free(h, u.rx)); /* unpublished: its slot is emptied */
    CHECK(xm_publish(h, u.rx, XM_PROT_RX) != XM_OK);
    CHECK_OK(xm_alloc_data(h, 64, 0, &d));
    memset(d.rw, 5, 64);
    CHECK(xm_publish(h, d.rx, XM_PROT_RX) != XM_OK);
    CHECK_OK(xm_publish(h, d.rx, XM_PROT_R));
    CHECK_EQ(((unsigned char *)d.rx)[63], 5);
    CHECK_OK(xm_alloc(h, 20000, 0, &big));
    emit_ret(big.rw, 3);
    CHECK_OK(xm_publish(h, big.rx, XM_PROT_RX));
    CHECK_EQ(call_at(big.rx), 3);
    xm__heap_check(h);

    CHECK_OK(xm_free(h, a.rx));
    CHECK_EQ(xm__fast_gate(h), gate_on); /* (names: test_sym.c) */

    /* the first async free marks the gate for good; the request completes
       at the next call, fast path or not */
    CHECK_OK(xm_free_async(h, b.rx));
    CHECK_EQ(xm__fast_gate(h), gate_on | 4u); /* XM__G_ASYNC */
    xm_block e;
    CHECK_OK(make_fn(h, 200, 4, &e));
    CHECK_EQ(call_at(e.rx), 4);
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 3); /* d, big, e */
    CHECK_EQ(xm_free(h, b.rx), XM_EBADPTR);
    for (int i = 0; i < 1000; i++) { /* churn with the careful fast paths */
        xm_block f;
        CHECK_OK(make_fn(h, 64 + (size_t)(i % 7) * 64, (uint64_t)i, &f));
        CHECK_EQ(call_at(f.rx), (uint64_t)i);
        CHECK_OK(i % 3 ? xm_free(h, f.rx) : xm_free_async(h, f.rx));
    }
    CHECK_OK(xm_purge(h));
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 3);
    CHECK_OK(xm_free(h, d.rx));
    CHECK_OK(xm_free(h, big.rx));
    CHECK_OK(xm_free(h, e.rx));
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(fast_gate_and_newest_staged_publish) { FOR_CONFIGS(fast_gate_and_publish); }

/* Issue 16 item 9: the thread slot counter near its end. With a 32-bit
 * counter a new thread got slot 0 and then the slots of the first threads,
 * among them this (owner) thread's: both took the owner's plain-store lock
 * at once. Threads started through the end, two at a time while this thread
 * churns on its own arena, must get slots that are not 0, not an owner's,
 * and never repeat below the bias limit; no arena may be owned by a slot
 * above it (those are shared); every call result stays right. */
unsigned xm__slot_assign(void);
uint64_t xm__slot_counter_set(uint64_t n);
unsigned xm__bias_owner(xm_heap *h, unsigned i);
unsigned xm__slot_bias_max(void);

enum { WRAP_THREADS = 32, WRAP_OPS = 300 };
typedef struct wrap_arg {
    xm_heap *h;
    unsigned slot;
    long errors;
} wrap_arg;

static long churn_fns(xm_heap *h, int n, uint64_t seed)
{
    long errors = 0;
    for (int i = 0; i < n; i++) {
        xm_block b;
        uint64_t v = seed + (uint64_t)i;
        if (make_fn(h, 64 + (size_t)(i % 4) * 64, v, &b) != XM_OK) {
            errors++;
            continue;
        }
        errors += call_at(b.rx) != v;
        errors += xm_free(h, b.rx) != XM_OK;
    }
    return errors;
}

static void *wrap_thread(void *p)
{
    wrap_arg *w = p;
    w->slot = xm__slot_assign();
    w->errors = churn_fns(w->h, WRAP_OPS, (uint64_t)w->slot << 16);
    return NULL;
}

TEST(slot_counter_end_never_repeats_an_owner)
{
    ONLY_IN_CONFIG("dual");
    xm_heap *h = make_heap(&configs[0], 0, SIZE_MAX);
    CHECK(h);
    unsigned me = xm__slot_assign();
    CHECK_EQ(churn_fns(h, 64, 7), 0);
    unsigned owned, unbiased;
    int bias = xm__bias_state(h, &owned, &unbiased);
    if (bias)
        CHECK_EQ(xm__bias_owner(h, (me - 1) % 8), me);
    uint64_t old = xm__slot_counter_set(0xFFFFFFFFull - 12);
    static wrap_arg w[WRAP_THREADS];
    long errors = 0, failed_create = 0;
    for (int i = 0; i < WRAP_THREADS; i += 2) {
        pthread_t t[2];
        int made = 0;
        for (int k = 0; k < 2; k++) {
            w[i + k] = (wrap_arg){h, 0, 0};
            if (pthread_create(&t[k], NULL, wrap_thread, &w[i + k]) == 0)
                made++;
            else
                failed_create++;
        }
        errors += churn_fns(h, WRAP_OPS, (uint64_t)i << 24);
        for (int k = 0; k < made; k++)
            pthread_join(t[k], NULL);
    }
    xm__slot_counter_set(old); /* later tests' threads may own arenas again */
    CHECK_EQ(failed_create, 0);
    CHECK_EQ(errors, 0);
    unsigned max = xm__slot_bias_max(), shared = 0;
    for (int i = 0; i < WRAP_THREADS; i++) {
        if (w[i].slot == 0 || w[i].slot == me || w[i].errors)
            printf("    thread %d: slot %u (this thread's %u), %ld errors\n", i,
                   w[i].slot, me, w[i].errors);
        CHECK(w[i].slot != 0);
        CHECK(w[i].slot != me);
        CHECK_EQ(w[i].errors, 0);
        shared += w[i].slot > max;
        for (int k = 0; k < i; k++)
            CHECK(w[k].slot != w[i].slot || w[i].slot > max);
    }
    CHECK(shared > 0); /* the test did cross the limit */
    for (unsigned i = 0; i < 8; i++)
        CHECK(xm__bias_owner(h, i) <= max);
    if (bias)
        CHECK_EQ(xm__bias_owner(h, (me - 1) % 8), me);
    printf("    bias %s: %d threads through the counter's end, %u of them on "
           "shared slots\n", bias ? "on" : "off", WRAP_THREADS, shared);
    xm__heap_check(h);
    xm_heap_destroy(h);
}

/* Issue 16 item 10: a membarrier that keeps failing (as after a seccomp
 * filter installed once the process registered) must not keep a remote
 * locker spinning with the mutex held: the arena falls back to the plain
 * mutex, and every call still gives the right result. In a child, under
 * alarm(): before, the remote free never returned. */
void xm__os_barrier_break(int on);

typedef struct remote_arg {
    xm_heap *h;
    xm_block *blocks;
    int n;
    long errors;
} remote_arg;

static void *remote_free_thread(void *p)
{
    remote_arg *r = p;
    xm_block q;
    for (int i = 0; i < r->n; i++) /* a query locks the arena (a free
                                      does not: deferred.c) */
        r->errors += xm_query(r->h, r->blocks[i].rx, &q) != XM_OK ||
                     xm_free(r->h, r->blocks[i].rx) != XM_OK;
    r->errors += churn_fns(r->h, 50, 500);
    return NULL;
}

static int broken_barrier_child(void *arg)
{
    (void)arg;
    alarm(20);
    xm_heap *h = make_heap(&configs[0], 0, SIZE_MAX);
    if (!h)
        return 1;
    xm_block b[8];
    for (int i = 0; i < 8; i++)
        if (make_fn(h, 64, (uint64_t)i, &b[i]) != XM_OK)
            return 2;
    unsigned me = xm__slot_assign(), owned, unbiased;
    if (!xm__bias_state(h, &owned, &unbiased))
        return 100; /* no bias here: nothing to revoke */
    if (xm__bias_owner(h, (me - 1) % 8) != me)
        return 3;
    xm__os_barrier_break(1);
    remote_arg r = {h, b, 4, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, remote_free_thread, &r))
        return 4;
    long errors = churn_fns(h, 200, 900); /* the owner goes on meanwhile */
    pthread_join(t, NULL);
    if (r.errors || errors)
        return 5;
    xm__bias_state(h, &owned, &unbiased);
    if (unbiased < 1) /* this thread's (at debug level 3, whose walk locks
                         every arena, the other thread's as well) */
        return 6;
    for (int i = 4; i < 8; i++)
        if (call_at(b[i].rx) != (uint64_t)i || xm_free(h, b[i].rx) != XM_OK)
            return 7;
    xm_stats s;
    if (xm_heap_stats(h, &s) != XM_OK || s.live_blocks != 0)
        return 8;
    xm__heap_check(h);
    xm_heap_destroy(h);
    return 0;
}

TEST(bias_membarrier_failing_for_good_falls_back_to_mutex)
{
    ONLY_IN_CONFIG("dual");
    int st = child_status(broken_barrier_child, NULL);
    if (st == 100) {
        test_skip("this heap's arenas are not biased here (no membarrier, "
                  "valgrind or ThreadSanitizer)");
        return;
    }
    if (st != 0)
        printf("    child status %d (%d: killed by SIGALRM, a hang)\n", st,
               128 + SIGALRM);
    CHECK_EQ(st, 0);
}

/* Runs fn(arg) on a new thread, joined, whose home arena is not that of the
 * thread in slot `not_slot` (slots only grow: a test that ran before
 * started threads of its own; the slot counter only moves forward, and no
 * other thread starts meanwhile). */
static bool run_off_arena(void *(*fn)(void *), void *arg, unsigned not_slot)
{
    uint64_t cur = xm__slot_counter_set(0);
    if (cur % xm__arena_count() == (not_slot - 1) % xm__arena_count())
        cur++;
    xm__slot_counter_set(cur);
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg))
        return false;
    pthread_join(t, NULL);
    return true;
}

/* xm_free from a thread that does not own the block's arena takes no lock
 * (src/deferred.c, remote frees): the block traps at once (a child forked
 * right after the free, before any other call, dies calling it), a second
 * free of it is XM_EBADPTR, a query from either thread finds it gone, the
 * statistics count it freed, and the owner's next allocations reuse its
 * memory. */
typedef struct rf_arg {
    xm_heap *h;
    xm_block *b;
    int n, sig;
    long errors;
} rf_arg;

static void call_void_at(void *rx) { (void)call_at(rx); }

static void *rf_free_thread(void *p)
{
    rf_arg *r = p;
    xm_block q;
    for (int i = 0; i < r->n; i++)
        r->errors += xm_free(r->h, r->b[i].rx) != XM_OK;
    /* the frees wait (the owner makes no call): freed all the same */
    for (int i = 0; i < r->n; i++)
        r->errors += xm_free(r->h, r->b[i].rx) != XM_EBADPTR;
    r->errors += xm_query(r->h, r->b[0].rx, &q) != XM_EBADPTR;
    for (int i = 0; i < r->n; i++)
        r->errors += xm_free(r->h, r->b[i].rx) != XM_EBADPTR;
    /* (fork completes them: the bytes were traps from the free on) */
    r->sig = child_signal(call_void_at, r->b[r->n / 2].rx);
    return NULL;
}

static void remote_free(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    enum { N = 96 };
    xm_block b[N], again[N];
    for (int i = 0; i < N; i++) /* 16 B to 15 KiB: magazines of every kind */
        CHECK_OK(make_fn(h, 16 + (size_t)(i * 977) % 15000, (uint64_t)i + 40, &b[i]));
    bool fast = xm__fast_state(h) && !test_extra_flags(c);
    uint64_t rf0 = xm__remote_frees(h);
    xm_stats s0, s1;
    CHECK_OK(xm_heap_stats(h, &s0));
    rf_arg r = {h, b, N, 0, 0};
    CHECK(run_off_arena(rf_free_thread, &r, xm__slot_of_thread()));
    CHECK_EQ(r.errors, 0);
    CHECK(r.sig == SIGTRAP || r.sig == SIGSEGV || r.sig == SIGILL);
    if (fast) /* every free of the other thread took no lock */
        CHECK_EQ(xm__remote_frees(h) - rf0, N);
    xm_block q;
    for (int i = 0; i < N; i++)
        CHECK_EQ(xm_query(h, b[i].rx, &q), XM_EBADPTR);
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.live_blocks, 0);
    CHECK_EQ(s1.frees - s0.frees, N);
    xm__heap_check(h);
    /* the owner takes the same sizes again: from its magazines and packs,
       the memory the other thread freed */
    for (int i = 0; i < N; i++)
        CHECK_OK(make_fn(h, 16 + (size_t)(i * 977) % 15000, (uint64_t)i + 900, &again[i]));
    for (int i = 0; i < N; i++)
        CHECK_EQ(call_at(again[i].rx), (uint64_t)i + 900);
    xm_stats s2;
    CHECK_OK(xm_heap_stats(h, &s2));
    if (c->backend == XM_BACKEND_DUAL) /* no new memory */
        CHECK_EQ(s2.resident_bytes, s1.resident_bytes);
    for (int i = 0; i < N; i++)
        CHECK_OK(xm_free(h, again[i].rx));
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(remote_frees_trap_at_once_and_complete_later) { FOR_CONFIGS(remote_free); }

/* Remote frees that wait hold their packs: an allocation on another arena
 * that finds no room completes them and tries again. A heap of 512 KiB:
 * thread A fills it with 8 KiB blocks, thread B frees them all (they wait
 * on A's arena: fewer than XM__REMOTE_MAX), then
 * thread C allocates 64 KiB. */
typedef struct room_arg {
    xm_heap *h;
    xm_block b[80];
    int n;
    unsigned slot; /* the filling thread's */
    xm_result r;
} room_arg;

static void *room_fill(void *p)
{
    room_arg *a = p;
    a->slot = xm__slot_of_thread();
    while (a->n < 80 && make_fn(a->h, 8192, (uint64_t)a->n, &a->b[a->n]) == XM_OK)
        a->n++;
    return NULL;
}

static void *room_free(void *p)
{
    room_arg *a = p;
    for (int i = 0; i < a->n; i++)
        if (xm_free(a->h, a->b[i].rx) != XM_OK)
            a->r = XM_EINVAL;
    return NULL;
}

static void *room_take(void *p)
{
    room_arg *a = p;
    xm_block big;
    a->r = make_fn(a->h, 65536, 7, &big);
    if (a->r == XM_OK && call_at(big.rx) != 7)
        a->r = XM_EINVAL;
    if (a->r == XM_OK)
        a->r = xm_free(a->h, big.rx);
    return NULL;
}

static void remote_room(const config *c)
{
    xm_heap *h = make_heap(c, 512 << 10, 0);
    CHECK(h);
    static room_arg a;
    memset(&a, 0, sizeof a);
    a.h = h;
    uint64_t rf0 = xm__remote_frees(h);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, room_fill, &a) == 0);
    pthread_join(t, NULL);
    CHECK(a.n >= 40 && a.n < 80); /* the reserve is full */
    CHECK(run_off_arena(room_free, &a, a.slot));
    CHECK_OK(a.r);
    CHECK(pthread_create(&t, NULL, room_take, &a) == 0);
    pthread_join(t, NULL);
    CHECK_OK(a.r);
    if (xm__fast_state(h) && !test_extra_flags(c)) /* (counted as completed) */
        CHECK_EQ(xm__remote_frees(h) - rf0, (uint64_t)a.n);
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 0);
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(remote_frees_make_room_when_an_allocation_needs_it) { FOR_CONFIGS(remote_room); }

/* Remote frees at their edges (an independent review's findings):
 * - the owner frees a block again after another thread freed it: XM_EBADPTR,
 *   and the block it gets next is not freed behind its back;
 * - an async free requested before a remote free is complete when that
 *   remote free returns (a forked child calling it traps);
 * - past XM__REMOTE_MAX waiting, the freeing thread completes them itself. */
typedef struct edge_arg {
    xm_heap *h;
    xm_block *b;
    int n, sig;
    void *async_rx;
    long errors;
} edge_arg;

static void *edge_free_thread(void *p)
{
    edge_arg *e = p;
    for (int i = 0; i < e->n; i++)
        e->errors += xm_free(e->h, e->b[i].rx) != XM_OK;
    if (e->async_rx) /* no call between the remote frees and the fork */
        e->sig = child_signal(call_void_at, e->async_rx);
    return NULL;
}

static void remote_edges(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    bool fast = xm__fast_state(h) && !test_extra_flags(c);
    enum { N = 300 };
    static xm_block b[N];
    xm_block keep, y[40];
    CHECK_OK(make_fn(h, 64, 1, &keep));
    /* 1: the owner's second free */
    CHECK_OK(make_fn(h, 64, 2, &b[0]));
    edge_arg e = {h, b, 1, 0, NULL, 0};
    CHECK(run_off_arena(edge_free_thread, &e, xm__slot_of_thread()));
    CHECK_EQ(e.errors, 0);
    CHECK_EQ(xm_free(h, b[0].rx), XM_EBADPTR);
    for (int i = 0; i < 40; i++) /* past the owner's batch of completions */
        CHECK_OK(make_fn(h, 64, 100 + (uint64_t)i, &y[i]));
    xm_block q;
    for (int i = 0; i < 40; i++) {
        CHECK_EQ(call_at(y[i].rx), 100 + (uint64_t)i);
        CHECK_OK(xm_query(h, y[i].rx, &q));
    }
    for (int i = 0; i < 40; i++)
        CHECK_OK(xm_free(h, y[i].rx));
    /* 2: an async free, then a remote free on another thread, then a fork */
    xm_block x;
    CHECK_OK(make_fn(h, 64, 3, &x));
    CHECK_OK(make_fn(h, 64, 4, &b[0]));
    CHECK_OK(xm_free_async(h, x.rx));
    e = (edge_arg){h, b, 1, 0, x.rx, 0};
    CHECK(run_off_arena(edge_free_thread, &e, xm__slot_of_thread()));
    CHECK_EQ(e.errors, 0);
    CHECK(e.sig == SIGTRAP || e.sig == SIGSEGV || e.sig == SIGILL);
    /* 3: more frees waiting than XM__REMOTE_MAX (256): the freeing thread
       completes them (the owner makes no call meanwhile) */
    for (int i = 0; i < N; i++)
        CHECK_OK(make_fn(h, 48 + (size_t)(i % 7) * 16, 1000 + (uint64_t)i, &b[i]));
    uint64_t done0 = xm__remote_frees(h);
    e = (edge_arg){h, b, N, 0, NULL, 0};
    CHECK(run_off_arena(edge_free_thread, &e, xm__slot_of_thread()));
    CHECK_EQ(e.errors, 0);
    if (fast)
        CHECK(xm__remote_frees(h) - done0 >= 256);
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 1);
    if (fast)
        CHECK_EQ(xm__remote_frees(h) - done0, N);
    CHECK_OK(xm_free(h, keep.rx));
    xm__heap_check(h);
    xm_heap_destroy(h);
}
TEST(remote_frees_at_their_edges) { FOR_CONFIGS(remote_edges); }
