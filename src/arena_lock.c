/* SPDX-License-Identifier: MIT */
/*
 * arena_lock.c: the arenas' biased locks, and the thread slots that name
 * their owners (xm__slot, assigned at a thread's first heap call).
 *
 * Why: the usual JIT thread allocates, publishes and frees on its own
 * arena, three lock/unlock pairs per function. A mutex pair costs two
 * locked instructions; on the churn benchmark the three pairs were about a
 * sixth of the time. A biased lock gives the arena's owner thread a path
 * with plain stores only, and makes every other thread pay instead, with a
 * system call (membarrier), the asymmetric Dekker of liburcu's membarrier
 * flavour and of the JVM's biased locking.
 *
 * Protocol. Owner O (a->owner == O's slot, set once, under the mutex):
 *     lock:   busy = 1; compiler barrier; if revoke: busy = 0, take mutex
 *     unlock: busy = 0 (release)
 * Anyone else R:
 *     lock:   take mutex; revoke = 1; membarrier(PRIVATE_EXPEDITED);
 *             wait until busy == 0
 *     unlock: revoke = 0 (release); drop mutex
 * membarrier makes every running thread of the process execute a full
 * barrier between R's store to revoke and R's load of busy: either O's
 * store busy = 1 came before that barrier, and R sees it and waits, or O's
 * load of revoke comes after it, and O sees 1 and takes the mutex, which R
 * holds. Two non-owners exclude each other through the mutex; the owner on
 * the mutex path (busy stays 0) likewise.
 *
 * Policy. Only the thread whose home arena it is claims an arena, at its
 * first lock there, and only with a slot that is never handed out again
 * (slot <= XM__SLOT_BIAS_MAX, internal.h): two threads with one slot would
 * both take the owner's path. A remote lock costs a system call, so after
 * XM__STEAL_MAX of them on one arena (another thread freeing or patching
 * the owner's code, more threads than arenas, an owner that exited) the
 * arena is unbiased for good: revoke stays 1 and everyone takes the mutex,
 * as before this file existed. Locking all arenas at once (fork, stats,
 * purge, the debug walk) makes one membarrier for all of them and does not
 * count as stealing.
 *
 * The owner is never changed, so `busy` has one writer. Bias is off under
 * ThreadSanitizer (it cannot see the membarrier's ordering), under
 * valgrind, in a fork child, and for FLIP heaps (see xm__bias_init).
 */
#include "internal.h"
#include "arch.h"

#if defined(__SANITIZE_THREAD__)
#define XM__BIAS_BUILD 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XM__BIAS_BUILD 0
#endif
#endif
#ifndef XM__BIAS_BUILD
#define XM__BIAS_BUILD 1
#endif

/* Trade-off: each remote lock of a biased arena costs one membarrier (an
 * interrupt of every CPU running this process, 1-10 us here); after this
 * many the arena stays on the mutex. */
#define XM__STEAL_MAX 16u

/* 1 once this process registered for PRIVATE_EXPEDITED (a fork child must
 * register again). */
static _Atomic int bias_registered;

void xm__bias_init(xm_heap *h)
{
    h->bias = 0;
    /* FLIP makes system calls under the lock on every publish and free:
       a lock-free owner path gains nothing there, and a remote thread
       would wait out those calls spinning */
    if (!XM__BIAS_BUILD || h->valgrind || h->backend == XM_BACKEND_FLIP)
        return;
    if (!atomic_load(&bias_registered)) {
        if (xm__os_barrier_register(&h->osc))
            return; /* no membarrier: this heap's arenas use the mutex */
        atomic_store(&bias_registered, 1);
    }
    h->bias = 1;
}

void xm__bias_fork_child_process(void) { atomic_store(&bias_registered, 0); }

void xm__bias_fork_child(xm_heap *h)
{
    h->bias = 0;
    atomic_fetch_or(&h->gate, XM__G_OFF);
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        xm__arena *a = &h->arenas[i];
        a->unbiased = 1;
        atomic_store(&a->revoke, 1);
        atomic_store(&a->busy, 0);
    }
}

static void wait_owner_out(xm__arena *a);

/* Trade-off: a failed membarrier is tried again this many times (with a
 * yield between) before the arena gives up its bias. After registration
 * the kernel fails it only when told to (fault injection, one call) or when
 * something forbids it from then on (a seccomp filter installed later):
 * one retry covers the first; the second must not keep a thread spinning
 * with the arena's mutex held. */
#define XM__BARRIER_TRIES 8u

/* Makes the owners' stores visible; false when membarrier keeps failing. */
static bool barrier_all(xm_heap *h)
{
    for (unsigned n = 0; n < XM__BARRIER_TRIES; n++) {
        if (!xm__os_barrier_all(&h->osc))
            return true;
        xm__os_yield();
    }
    return false;
}

/* Mutex held, revoke raised, the barrier failed for good: the arena falls
 * back to the plain mutex for good (revoke is never lowered again, so the
 * owner takes the mutex at its next lock; another owned arena does the
 * same at its first remote lock that fails so). What remains is an
 * owner lock already under way, which only the barrier could make visible:
 * the owner stores busy = 1 and then loads revoke with no fence between
 * (that is the point of the bias), so its store may still sit in its
 * store buffer while we read busy == 0. We wait for busy == 0 as usual and
 * then yield XM__BARRIER_TRIES more times, rereading it: the window is a
 * store buffer's drain (nanoseconds; TSO and arm64 both bound it only by
 * "eventually"), against our system calls (microseconds). This is the one
 * place where the lock is not exact, and only in a process whose kernel
 * refuses, after registration, the membarrier it accepted: the alternative
 * was to spin forever with the mutex held. */
static void unbias_without_barrier(xm__arena *a)
{
    a->unbiased = 1;
    for (unsigned n = 0; n < XM__BARRIER_TRIES; n++) {
        wait_owner_out(a);
        xm__os_yield();
    }
    wait_owner_out(a);
}

static void wait_owner_out(xm__arena *a)
{
    for (unsigned n = 0; atomic_load_explicit(&a->busy, memory_order_acquire); n++) {
        if (n < 128)
            xm__cpu_relax();
        else
            xm__os_yield(); /* the owner may have been preempted */
    }
}

/* Mutex held: raises revoke if another thread owns a biased arena. Returns
 * whether the caller must then wait for that owner. */
static bool revoke_locked(xm__arena *a, unsigned me)
{
    unsigned o = atomic_load_explicit(&a->owner, memory_order_relaxed);
    if (!o || o == me || atomic_load_explicit(&a->revoke, memory_order_relaxed))
        return false; /* no bias, ours, or unbiased for good */
    atomic_store(&a->revoke, 1);
    a->held_revoked = 1;
    return true;
}

/* Marks arena a of h as used (its first lock always comes here). */
static void mark_used(xm_heap *h, xm__arena *a)
{
    if (a->used) /* its first line is the lock's: no other line read */
        return;
    a->used = 1;
    atomic_fetch_or_explicit(&h->arenas_used, 1u << (a - h->arenas),
                             memory_order_relaxed);
}

/* steal: counts against the bias (a remote drain does not: deferred.c
 * takes it once for up to XM__REMOTE_MAX frees). */
static void lock_slow(xm_heap *h, xm__arena *a, bool steal)
{
    pthread_mutex_lock(&a->lock);
    mark_used(h, a);
    unsigned me = xm__slot ? xm__slot : xm__slot_assign();
    if (revoke_locked(a, me)) {
        if (!barrier_all(h)) {
            unbias_without_barrier(a);
            return;
        }
        wait_owner_out(a);
        if (steal && ++a->steals >= XM__STEAL_MAX)
            a->unbiased = 1; /* revoke stays raised from now on */
        return;
    }
    if (h->bias && !a->unbiased && me <= XM__SLOT_BIAS_MAX &&
        !atomic_load_explicit(&a->owner, memory_order_relaxed) &&
        a == &h->arenas[(me - 1) % XM__ARENAS])
        atomic_store(&a->owner, me); /* fast from the next lock on */
}

void xm__arena_lock_slow(xm_heap *h, xm__arena *a) { lock_slow(h, a, true); }

void xm__arena_lock_drain(xm_heap *h, xm__arena *a)
{
    if (!xm__arena_try_own(a))
        lock_slow(h, a, false);
}

void xm__arena_unlock_slow(xm__arena *a)
{
    if (a->held_revoked) {
        a->held_revoked = 0;
        if (!a->unbiased)
            atomic_store_explicit(&a->revoke, 0, memory_order_release);
    }
    pthread_mutex_unlock(&a->lock);
}

void xm__arenas_lock_all(xm_heap *h)
{
    unsigned me = xm__slot ? xm__slot : xm__slot_assign();
    bool wait = false;
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        pthread_mutex_lock(&h->arenas[i].lock);
        mark_used(h, &h->arenas[i]);
        wait |= revoke_locked(&h->arenas[i], me);
    }
    if (wait) {
        bool ok = barrier_all(h);
        for (unsigned i = 0; i < XM__ARENAS; i++) {
            if (!h->arenas[i].held_revoked)
                continue;
            if (ok)
                wait_owner_out(&h->arenas[i]);
            else
                unbias_without_barrier(&h->arenas[i]);
        }
    }
    /* whoever locks all sees every remote free complete (deferred.c) */
    for (unsigned i = 0; i < XM__ARENAS; i++)
        xm__remote_drain_if(h, &h->arenas[i]);
}

void xm__arenas_unlock_all(xm_heap *h)
{
    for (unsigned i = XM__ARENAS; i-- > 0;)
        xm__arena_unlock_slow(&h->arenas[i]);
}

/* White-box tests: whether the heap biases, how many of its arenas have an
 * owner and how many of those were unbiased for good. */
int xm__bias_state(xm_heap *h, unsigned *owned, unsigned *unbiased)
{
    *owned = *unbiased = 0;
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        *owned += atomic_load(&h->arenas[i].owner) != 0;
        *unbiased += atomic_load(&h->arenas[i].owner) != 0 && h->arenas[i].unbiased;
    }
    return h->bias;
}

unsigned xm__bias_steal_max(void) { return XM__STEAL_MAX; }

/* White-box tests: the slot that owns arena i (0: none), and the highest
 * slot that may own one. */
unsigned xm__bias_owner(xm_heap *h, unsigned i) { return atomic_load(&h->arenas[i].owner); }
unsigned xm__slot_bias_max(void) { return XM__SLOT_BIAS_MAX; }

/* White-box tests: whether xm_alloc, xm_publish and xm_free have their fast
 * paths on this heap (src/fast.h). */
int xm__fast_state(xm_heap *h) { return !(atomic_load(&h->gate) & XM__G_OFF); }
unsigned xm__fast_gate(xm_heap *h) { return atomic_load(&h->gate); }
/* White-box tests: fast-path hits, every arena: xm_load's, the staged
 * xm_alloc's, XM_INPLACE's xm_alloc's (*allocs) and xm_publish's
 * (*publishes). */
uint64_t xm__fast_loads(xm_heap *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < XM__ARENAS; i++)
        n += h->arenas[i].fast_loads;
    return n;
}
/* White-box tests: this thread's slot (assigned now if it has none) and
 * the number of arenas. */
unsigned xm__slot_of_thread(void) { return xm__slot ? xm__slot : xm__slot_assign(); }
unsigned xm__arena_count(void) { return XM__ARENAS; }
uint64_t xm__remote_frees(xm_heap *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < XM__ARENAS; i++)
        n += h->arenas[i].remote_frees;
    return n;
}
uint64_t xm__fast_allocs(xm_heap *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < XM__ARENAS; i++)
        n += h->arenas[i].fast_allocs;
    return n;
}
void xm__fast_inplace(xm_heap *h, uint64_t *allocs, uint64_t *publishes)
{
    *allocs = *publishes = 0;
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        *allocs += h->arenas[i].fast_inplace_allocs;
        *publishes += h->arenas[i].fast_inplace_publishes;
    }
}

/* ---- thread slots ------------------------------------------------------ */

/* Slots handed out so far (see arena.h): 64 bits, so it never wraps
 * (a 32-bit counter did, after 2^32 threads, and gave a new thread the slot
 * of a live arena owner: both took the owner's plain-store lock at once). */
static _Atomic uint64_t next_slot;
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec")))
#endif
_Thread_local unsigned xm__slot;

unsigned xm__slot_assign(void)
{
    if (!xm__slot) {
        uint64_t n = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed);
        xm__slot = n < XM__SLOT_BIAS_MAX
                       ? (unsigned)n + 1
                       : XM__SLOT_BIAS_MAX + 1 + (unsigned)(n % XM__ARENAS);
    }
    return xm__slot;
}

uint64_t xm__slot_counter_set(uint64_t n) { return atomic_exchange(&next_slot, n); }
