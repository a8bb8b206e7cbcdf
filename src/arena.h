/* SPDX-License-Identifier: MIT */
/*
 * arena.h: per-thread arenas: thread slots, the biased arena locks' inline
 * paths (arena_lock.c has the slow ones), the magazines of freed small
 * blocks, and the lock-and-find helpers every call on a block starts with.
 */
#ifndef XM_ARENA_H
#define XM_ARENA_H

#include "types.h"
#include "pack.h"

/* A thread's slot: 1, 2, ... in order of its first heap call (0: not
 * assigned yet), from a 64-bit counter that never wraps. Its arena in every
 * heap is arenas[(slot-1) % N]. Slots up to XM__SLOT_BIAS_MAX are never
 * handed out twice, and only they may own an arena (arena_lock.c: an
 * owner's lock is its slot alone). Past that many threads (2^32 - 9; a
 * server starting 1,000 threads a second gets there in 50 days), every
 * new thread gets one of the XM__ARENAS slots above it, shared and never
 * an owner: it takes the mutex, as on an unbiased arena.
 * initial-exec: no __tls_get_addr call from the shared library (a few
 * bytes of static TLS, as mimalloc does). */
#define XM__SLOT_BIAS_MAX (0xFFFFFFFFu - XM__ARENAS)
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec")))
#endif
extern _Thread_local unsigned xm__slot;
unsigned xm__slot_assign(void);
/* White-box tests: sets the slot counter (slots handed out so far), returns
 * the old value. */
uint64_t xm__slot_counter_set(uint64_t n);
/* The arena a thread allocates from. */
static inline xm__arena *xm__my_arena(xm_heap *h)
{
    unsigned s = xm__slot ? xm__slot : xm__slot_assign();
    return &h->arenas[(s - 1) % XM__ARENAS];
}

/* ---- arena locks (arena_lock.c) -----------------------------------------
 * Biased: the thread that owns an arena (the first whose home it is) takes
 * and drops its lock with plain stores and no locked instruction; any other
 * thread takes the mutex, raises `revoke`, and makes the owner's stores
 * visible with one membarrier before it waits for the owner to leave. Both
 * sides are mutual exclusion exactly as the mutex alone. */
void xm__arena_lock_slow(xm_heap *h, xm__arena *a);
/* xm__arena_lock for a remote drain (deferred.c): the same, but it does not
 * count against the arena's bias. */
void xm__arena_lock_drain(xm_heap *h, xm__arena *a);
void xm__arena_unlock_slow(xm__arena *a);
/* The owner's lock alone: true when the thread in slot `me` (this thread's)
 * owns a and locked it the fast way (release with xm__arena_unown); false,
 * nothing locked, else. */
static inline bool xm__arena_own_as(xm__arena *a, unsigned me)
{
    if (!me || atomic_load_explicit(&a->owner, memory_order_relaxed) != me)
        return false;
    atomic_store_explicit(&a->busy, 1, memory_order_relaxed);
    /* the store-load order is the remote side's membarrier's job */
    atomic_signal_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&a->revoke, memory_order_acquire))
        return true;
    atomic_store_explicit(&a->busy, 0, memory_order_release);
    return false;
}
static inline bool xm__arena_try_own(xm__arena *a) { return xm__arena_own_as(a, xm__slot); }
static inline void xm__arena_unown(xm__arena *a)
{
    atomic_store_explicit(&a->busy, 0, memory_order_release);
}
static inline void xm__arena_lock(xm_heap *h, xm__arena *a)
{
    if (!xm__arena_try_own(a))
        xm__arena_lock_slow(h, a);
}
static inline void xm__arena_unlock(xm__arena *a)
{
    /* busy is 1 for the owner only while it holds the fast way */
    if (atomic_load_explicit(&a->busy, memory_order_relaxed) &&
        atomic_load_explicit(&a->owner, memory_order_relaxed) == xm__slot) {
        atomic_store_explicit(&a->busy, 0, memory_order_release);
        return;
    }
    xm__arena_unlock_slow(a);
}
/* Every arena of h, in index order (fork, stats, purge, the debug walk):
 * one membarrier for all the biased ones. */
void xm__arenas_lock_all(xm_heap *h);
void xm__arenas_unlock_all(xm_heap *h);
/* Heap creation: whether this heap's arenas may be biased. */
void xm__bias_init(xm_heap *h);
/* Fork child: no arena stays biased (its owners are gone). */
void xm__bias_fork_child(xm_heap *h);
void xm__bias_fork_child_process(void);
int xm__bias_state(xm_heap *h, unsigned *owned, unsigned *unbiased);
unsigned xm__bias_steal_max(void);
unsigned xm__bias_owner(xm_heap *h, unsigned i);
unsigned xm__slot_bias_max(void);
int xm__fast_state(xm_heap *h);
unsigned xm__fast_gate(xm_heap *h); /* white box: h->gate */
/* Magazines (pack.c and the fast paths), arena locked. Classes:
 * 0..15 exactly 1..16 granules; then eight per power of two up to 256
 * granules, class c holding blocks of at least xm__mag_hi(c) granules. */
static inline uint32_t xm__mag_hi(uint32_t c)
{
    if (c < XM__MAG_EXACT)
        return c + 1;
    uint32_t fl = 4 + (c - XM__MAG_EXACT) / 8, j = (c - XM__MAG_EXACT) % 8;
    return (1u << fl) + ((j + 1) << (fl - 3));
}
/* The class a freed block of n granules waits in (the highest whose hi it
 * reaches), or XM__MAG_CLASSES: none. */
static inline uint32_t xm__mag_put_class(uint32_t n)
{
    if (n <= XM__MAG_EXACT)
        return n - 1;
    if (n > 256)
        return XM__MAG_CLASSES;
    uint32_t fl = 31u - (uint32_t)__builtin_clz(n - 1), w = 1u << (fl - 3);
    uint32_t j = (n - (1u << fl)) / w;
    if (!j) /* below the group's first hi: the previous group's last class
               (none below 18 granules: the exact classes are exact) */
        return fl == 4 ? XM__MAG_CLASSES : XM__MAG_EXACT + (fl - 5) * 8 + 7;
    return XM__MAG_EXACT + (fl - 4) * 8 + j - 1;
}
/* The class an allocation of n <= 256 granules takes from (the lowest
 * whose hi it fits). */
static inline uint32_t xm__mag_take_class(uint32_t n)
{
    if (n <= XM__MAG_EXACT)
        return n - 1;
    uint32_t fl = 31u - (uint32_t)__builtin_clz(n - 1), w = 1u << (fl - 3);
    return XM__MAG_EXACT + (fl - 4) * 8 + (n - (1u << fl) + w - 1) / w - 1;
}
/* Whether p's block of n granules may wait in class c (from
 * xm__mag_put_class): the class exists and has room, within the budget,
 * and the pack keeps something live. */
static inline bool xm__mag_room(const xm__arena *ar, const xm__pack *p, uint32_t c,
                                uint32_t n)
{
    return c < XM__MAG_CLASSES && ar->nmag[p->kind][c] != XM__MAG_DEPTH &&
           p->nfree + p->ncached + n != XM__PACK_GRANS &&
           (c < XM__MAG_EXACT ||
            ar->mag_mid_bytes[p->kind] + ((size_t)n << XM__GRAN_SHIFT) <= XM__MAG_MID_KEEP);
}
/* Caches freed block g of p (n granules, class c, trap-filled, no longer
 * live). */
static inline void xm__mag_push(xm__arena *ar, xm__pack *p, uint32_t g, uint32_t c,
                                uint32_t n, uintptr_t rx)
{
    XM__BW(p->cached, g >> 6) |= 1ull << (g & 63);
    p->ncached += n;
    if (c >= XM__MAG_EXACT)
        ar->mag_mid_bytes[p->kind] += (size_t)n << XM__GRAN_SHIFT;
    ar->magp[p->kind][c][ar->nmag[p->kind][c]] = p;
    ar->mag[p->kind][c][ar->nmag[p->kind][c]++] = rx;
}
/* xm__mag_push where there is room; false (nothing done) else. */
static inline bool xm__mag_put(xm__arena *ar, xm__pack *p, uint32_t g, size_t sz)
{
    uint32_t n = (uint32_t)(sz >> XM__GRAN_SHIFT), c = xm__mag_put_class(n);
    if (!xm__mag_room(ar, p, c, n))
        return false;
    xm__mag_push(ar, p, g, c, n, xm__block_addr(p, g));
    return true;
}
/* Pops the newest cached block of class c < XM__MAG_CLASSES if its address
 * satisfies the alignment (still marked cached); false (nothing done)
 * else. */
static inline bool xm__mag_pop(xm__arena *ar, int kind, size_t c, size_t align,
                               uintptr_t *rx, xm__pack **pk)
{
    unsigned n = ar->nmag[kind][c];
    if (!n || (ar->mag[kind][c][n - 1] & (align - 1)))
        return false;
    *rx = ar->mag[kind][c][n - 1];
    *pk = ar->magp[kind][c][n - 1];
    ar->nmag[kind][c] = (uint8_t)(n - 1); /* (a byte store: after the loads) */
    return true;
}
/* Takes the newest cached block that fits `usable` bytes (exactly, up to
 * 1 KiB; up to 1/4 more above), if its address satisfies the alignment;
 * its size in *got. False (nothing done) else. */
static inline bool xm__mag_take(xm__arena *ar, int kind, size_t usable,
                                size_t align, xm__pack **pk, uint32_t *g, size_t *got)
{
    uint32_t n = (uint32_t)(usable >> XM__GRAN_SHIFT);
    uintptr_t rx;
    if (n > 256)
        return false;
    uint32_t c = xm__mag_take_class(n);
    if (!xm__mag_pop(ar, kind, c, align, &rx, pk))
        return false;
    uint32_t gi = (uint32_t)((rx - (*pk)->base) >> XM__GRAN_SHIFT);
    uint32_t have = (uint32_t)XM__GL((*pk)->glen, gi) + 1;
    if (c >= XM__MAG_EXACT)
        ar->mag_mid_bytes[kind] -= (size_t)have << XM__GRAN_SHIFT;
    *g = xm__mag_unmark(*pk, rx, have);
    *got = (size_t)have << XM__GRAN_SHIFT;
    return true;
}

/* Remote frees (deferred.c): xm_free of a small block of an arena that
 * another thread owns, without its lock: 1 done, -1 XM_EBADPTR (requested
 * already), 0 not taken (the caller takes the general path). */
int xm__free_remote(xm_heap *h, uintptr_t rx);
/* Trade-off: the owner's fast calls between two completions of the remote
 * frees waiting on its arena: one pass takes the lines the freeing
 * threads wrote for many frees at once (1 -> 32: the producer/consumer row
 * of bench_matrix); their memory waits that much longer. */
#define XM__REMOTE_BATCH 32u
/* Completes a's remote frees (a locked). */
void xm__remote_drain_locked(xm_heap *h, xm__arena *a);
static inline void xm__remote_drain_if(xm_heap *h, xm__arena *a)
{
    if (atomic_load_explicit(&a->rfree, memory_order_relaxed))
        xm__remote_drain_locked(h, a);
}
/* An allocation of block g of p (a's, locked): a claim left on it by a
 * double free (deferred.c) is void. One load while nothing waits on a. */
static inline void xm__remote_unclaim(xm__arena *a, xm__pack *p, uint32_t g)
{
    uint64_t m = 1ull << (g & 63);
    if (atomic_load_explicit(&a->rcount, memory_order_relaxed) &&
        (atomic_load_explicit(&p->x->rpend[g >> 6], memory_order_relaxed) & m) &&
        (atomic_fetch_and(&p->x->rpend[g >> 6], ~m) & m))
        atomic_fetch_sub(&a->rcount, 1);
}
/* Whether block g of p (a's) is freed by another thread and not completed
 * yet (its pack perhaps not queued yet: a drain cannot see it). Such a
 * block is gone for every call. One load while nothing waits on a. */
static inline bool xm__remote_claimed(const xm__arena *a, const xm__pack *p, uint32_t g)
{
    return atomic_load_explicit(&a->rcount, memory_order_relaxed) && !p->large &&
           ((atomic_load(&p->x->rpend[g >> 6]) >> (g & 63)) & 1);
}

/* Locks and returns the arena owning the pack that covers addr, that pack
 * in *pk; NULL (nothing locked) when no pack covers it. */
static inline xm__arena *xm__lock_pack_of(xm_heap *h, uintptr_t addr, xm__pack **pk)
{
    if (addr < h->base || addr - h->base >= h->reserve)
        return NULL;
    _Atomic(xm__pack *) *slot = &h->ps[(addr - h->base) >> XM__PAGE_SHIFT].pm;
    for (;;) {
        xm__pack *p = atomic_load_explicit(slot, memory_order_acquire);
        if (!p)
            return NULL;
        unsigned ai = atomic_load_explicit(&p->arena, memory_order_relaxed);
        xm__arena *a = &h->arenas[ai];
        xm__arena_lock(h, a);
        /* a live pack changes arena only after a release, which needs the
           lock just taken: if it is still here, it stays */
        if (atomic_load_explicit(slot, memory_order_acquire) == p &&
            atomic_load_explicit(&p->arena, memory_order_relaxed) == ai) {
            /* the arena's remote frees first: a block freed by another
               thread is gone for this call too */
            if (atomic_load_explicit(&a->rfree, memory_order_relaxed)) {
                xm__remote_drain_locked(h, a);
                if (atomic_load_explicit(slot, memory_order_acquire) != p ||
                    atomic_load_explicit(&p->arena, memory_order_relaxed) != ai) {
                    xm__arena_unlock(a); /* its pack retired: look again */
                    continue;
                }
            }
            *pk = p;
            return a;
        }
        xm__arena_unlock(a);
    }
}

/* What every call on one block does after xm__enter: locks the arena of
 * the pack at the address and finds the block there. Returns the locked
 * arena, or NULL (nothing locked) when no pack covers the address; *r is
 * XM_OK with *p, *g set, or the error. End the call with
 * xm__leave(h, returned arena, r).
 *   xm__lock_block: the block starting exactly at rx (else XM_EBADPTR);
 *   xm__lock_range: the live block holding all of [dst, dst+len) (else
 *   XM_ERANGE). */
static inline xm__arena *xm__lock_block(xm_heap *h, uintptr_t rx, xm__pack **p,
                                        uint32_t *g, xm_result *r)
{
    xm__arena *a = xm__lock_pack_of(h, rx, p);
    *r = a ? xm__block_at(h, *p, rx, g) : XM_EBADPTR;
    if (*r == XM_OK && xm__remote_claimed(a, *p, *g))
        *r = XM_EBADPTR;
    return a;
}

static inline xm__arena *xm__lock_range(xm_heap *h, uintptr_t dst, size_t len,
                                        xm__pack **p, uint32_t *g, xm_result *r)
{
    xm__arena *a = xm__lock_pack_of(h, dst, p);
    *r = a ? xm__block_range(*p, dst, len, g) : XM_ERANGE;
    if (*r == XM_OK && xm__remote_claimed(a, *p, *g))
        *r = XM_ERANGE;
    return a;
}

#endif
