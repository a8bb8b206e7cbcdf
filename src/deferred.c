/* SPDX-License-Identifier: MIT */
/*
 * deferred.c: xm_free_async's requests (the public call is block.c) and the
 * drain that completes them.
 *
 * The free path from a signal handler cannot lock, allocate or touch code
 * memory (it may be read-only). So a request is one bit: the handler finds
 * the pack through the pagemap (atomic loads; descriptors are never freed
 * while the heap lives), checks that a block starts at rx, sets the block's
 * `pend` bit with an atomic OR, and, if the pack is not queued yet, pushes
 * the pack on a lock-free Treiber stack (push only; the drain takes the
 * whole stack with one exchange, so there is no ABA).
 *
 * The drain runs at the start of every heap call and in xm_purge, before
 * the call takes any lock: it takes the stack, clears each pack's `queued`
 * flag before collecting its bits (a request arriving meanwhile re-queues
 * the pack), locks the pack's arena and frees each requested block through
 * the ordinary path, by address.
 *
 * Completion. The contract: when any heap call (or xm_purge) returns,
 * every async free requested before that call began is complete, whatever
 * thread drains it. A call that finds the stack empty may still find a
 * drain on another thread holding requests it took (waiting for a busy
 * arena, say): so drains run one at a time under h->drain_lock, and a drain
 * raises h->draining before it takes the stack and lowers it when it is
 * done. A call that sees either the stack or `draining` (xm__drain_needed;
 * the stack is read first, and whoever emptied it had raised `draining`
 * before) takes drain_lock, which waits out the drain in flight, and
 * drains what is left. Until xm_free_async is first used the check is the
 * gate's one load; after, two more loads while nothing is pending.
 */
#include "internal.h"
#include "arch.h"
#include "pkeys.h"

#if XM_DEBUG >= 1
void (*xm__drain_hook)(xm_heap *h);
#endif

/* Pushes p on the Treiber stack *head through its link unless *queued is
 * set already (then it is on the stack, or a drain takes it soon). Push
 * only: a drain takes the whole stack with one exchange, so no ABA. */
static void push_once(_Atomic int *queued, xm__pack *_Atomic *head,
                      xm__pack *_Atomic *link, xm__pack *p)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(queued, &expect, 1))
        return;
    xm__pack *top = atomic_load(head);
    do {
        atomic_store_explicit(link, top, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak(head, &top, p));
}

/* xm_free_async's request, once h and rx are known non-NULL (block.c), and
 * the drain's own re-request. */
xm_result xm__free_request(xm_heap *h, void *rx)
{
    if (h->forked)
        return XM_ESTATE;
    xm__pack *p;
    uint32_t g;
    xm_result r = xm__block_find(h, (uintptr_t)rx, &p, &g);
    if (r != XM_OK)
        return r;
    uint64_t m = 1ull << (g & 63);
    if (!p->large && (atomic_load(&p->x->rpend[g >> 6]) & m))
        return XM_EBADPTR; /* freed by another thread (remote free) */
    if (!(atomic_load_explicit(&h->gate, memory_order_relaxed) & XM__G_ASYNC))
        atomic_fetch_or_explicit(&h->gate, XM__G_ASYNC, memory_order_release);
    uint64_t old = atomic_fetch_or(&p->pend[g >> 6], m);
    if (old & m)
        return XM_EBADPTR; /* already requested */
    atomic_fetch_add_explicit(&h->async_frees, 1, memory_order_relaxed);
    push_once(&p->queued, &h->pending, &p->next_pending, p);
    return XM_OK;
}

/* Locks the arena that owns p while p is live; returns NULL (nothing
 * locked) when p is a spare descriptor, whose requests are void: a pack
 * becomes spare only once all its blocks are freed. With the arena and the
 * heap lock held no descriptor changes hands, so the check is exact; the
 * heap lock is dropped again before the frees, which may need it. */
static xm__arena *lock_live_pack(xm_heap *h, xm__pack *p)
{
    for (;;) {
        unsigned ai = atomic_load_explicit(&p->arena, memory_order_relaxed);
        xm__arena *a = &h->arenas[ai];
        xm__arena_lock(h, a);
        pthread_mutex_lock(&h->lock);
        bool moved = atomic_load_explicit(&p->arena, memory_order_relaxed) != ai;
        bool live = !moved && p->npages &&
                    atomic_load_explicit(&h->ps[p->page].pm,
                                         memory_order_relaxed) == p;
        pthread_mutex_unlock(&h->lock);
        if (live)
            return a;
        xm__arena_unlock(a);
        if (!moved)
            return NULL;
    }
}

void xm__drain(xm_heap *h)
{
    /* frees write traps through the alias: XM_PKEYS opens it (pkeys.h) */
    unsigned pk = h->pkey ? xm__pk_open(h) : 0;
    pthread_mutex_lock(&h->drain_lock);
    atomic_store(&h->draining, 1);
    xm__pack *p = atomic_exchange(&h->pending, NULL);
#if XM_DEBUG >= 1
    if (p && xm__drain_hook)
        xm__drain_hook(h);
#endif
    while (p) {
        xm__pack *next = atomic_load_explicit(&p->next_pending,
                                              memory_order_relaxed);
        atomic_store(&p->queued, 0);
        uint64_t bits[XM__PACK_WORDS] = {0};
        unsigned nw = xm__pend_words(p);
        for (unsigned w = 0; w < nw; w++)
            bits[w] = atomic_exchange(&p->pend[w], 0);
        xm__arena *a = lock_live_pack(h, p);
        if (!a) {
            p = next;
            continue;
        }
        for (unsigned w = 0; w < nw; w++) {
            while (bits[w]) {
                unsigned b = (unsigned)__builtin_ctzll(bits[w]);
                bits[w] &= bits[w] - 1;
                uintptr_t rx = xm__block_addr(p, w * 64 + b);
                xm__pack *q;
                uint32_t g;
                /* an earlier free here may have retired the pack, and
                   another thread may have taken it for another arena */
                if (xm__block_find(h, rx, &q, &g) != XM_OK || q != p)
                    continue;
                if (&h->arenas[atomic_load(&p->arena)] != a)
                    goto done; /* recycled: every request left is void */
                if (xm__block_free_locked(h, q, g) != XM_OK) {
                    /* the OS refused the trap fill: ask again next time */
                    (void)xm__free_request(h, (void *)rx);
                    atomic_fetch_sub(&h->async_frees, 1);
                }
            }
        }
    done:
        xm__arena_unlock(a);
        p = next;
    }
    atomic_store(&h->draining, 0);
    pthread_mutex_unlock(&h->drain_lock);
    if (h->pkey)
        xm__pk_close(pk);
}

/* ---- remote frees -------------------------------------------------------
 * A thread that frees a block of an arena another thread owns (a JIT's
 * compiler thread allocates, the thread that retires code frees) would
 * take that arena's lock for each free: a membarrier for the first few,
 * then the mutex for good, on which owner and freer take turns (a futex
 * sleep and wake-up each time the two collide). Instead, a remote free
 * claims the block with an atomic OR of its bit in p->x->rpend (a second
 * request for it sees the bit: XM_EBADPTR), trap-fills its bytes through
 * the alias at once (as xm_free always did: the freed code traps when the
 * call returns), and queues the pack on the arena's rfree stack, as the
 * async requests above. The state change (magazine, free runs, counts)
 * waits for a thread that locks the arena: the owner's fast allocations
 * every XM__REMOTE_BATCH calls (fast.h: one pass takes many), its fast
 * frees and publishes at once (the block may be one of them), any general
 * call on a block of that arena, and every call that locks all arenas
 * (statistics, purge, fork, the debug walk); an allocation that finds no
 * room completes them all and tries again. Until then the block is
 * neither free nor usable: every call on it finds it gone, from its bit
 * (xm__remote_claimed) even before its pack is queued. Once
 * XM__REMOTE_MAX frees wait on an arena (an owner that makes no call), the
 * freeing thread takes the lock and completes them itself.
 *
 * Races that reviews found: a double free racing the drain that completes
 * the first free may claim a free block, so an allocation clears a stale
 * claim (xm__remote_unclaim); a drain checks a pack's arena before it
 * takes the bits and hands a pack that moved (released while a stale queue
 * entry waited, then taken by another arena) to its new arena untouched;
 * the drain's rqueued store and its loads of the bits are seq_cst against
 * the freeing thread's OR and compare-exchange (on arm64 a relaxed load
 * could pass the store). */

/* Trade-off: remote frees waiting on one arena before the freeing thread
 * completes them itself (one lock, a membarrier while the arena is biased,
 * for all of them): their memory (up to 4 MiB of 16 KiB blocks) no
 * allocation can take meanwhile, and the call that completes them does
 * that much more work (50-100 ns a free). A host stall of the owner (35 us
 * here) lets a hundred or two pile up. */
#define XM__REMOTE_MAX 256u

/* Puts pack p on the stack of arena ai unless it is queued already. */
static void remote_queue(xm_heap *h, xm__pack *p, unsigned ai)
{
    push_once(&p->rqueued, &h->arenas[ai].rfree, &p->rnext, p);
}

int xm__free_remote(xm_heap *h, uintptr_t rx)
{
    unsigned gate = atomic_load_explicit(&h->gate, memory_order_acquire);
    uintptr_t off = rx - h->base;
    /* (async frees waiting: the general path completes them first, as
       every call does) */
    if ((gate & (XM__G_OFF | XM__G_NAMES)) || xm__drain_needed(h, gate) || h->pkey ||
        off >= h->reserve || (rx & (XM__GRAN - 1)))
        return 0;
    xm__pstate *ps = &h->ps[off >> XM__PAGE_SHIFT];
    xm__pack *p = atomic_load_explicit(&ps->pm, memory_order_acquire);
    if (!p || p->large)
        return 0;
    unsigned ai = atomic_load_explicit(&p->arena, memory_order_relaxed);
    unsigned me = xm__slot ? xm__slot : xm__slot_assign();
    /* another thread's arena: the own one's frees wait for nobody (its
       owner's fast free failed: the general path) */
    if (ai == (me - 1) % XM__ARENAS)
        return 0;
    xm__arena *a = &h->arenas[ai];
    uint32_t g = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
    uint64_t m = 1ull << (g & 63);
    /* a live block (the general path gives the errors), with no async
       request (whose drain would free it again) */
    if (!(atomic_load_explicit(&ps->start, memory_order_acquire) & m) ||
        (atomic_load_explicit(&p->pend[g >> 6], memory_order_relaxed) & m))
        return 0;
    if (atomic_load(&p->x->rpend[g >> 6]) & m)
        return -1; /* requested already */
    /* its bytes become traps first: once its bit is set, a drain may free
       the block and the owner hand it out again */
    size_t sz = ((size_t)ps->glen[(off >> XM__GRAN_SHIFT) & 63] + 1) << XM__GRAN_SHIFT;
    xm__fill_freed(h->alias + off, sz);
    /* counted before the claim: a drain that takes it subtracts it */
    unsigned n = atomic_fetch_add(&a->rcount, 1) + 1;
    if (atomic_fetch_or(&p->x->rpend[g >> 6], m) & m) { /* (seq_cst: after
                                                            the fill) */
        atomic_fetch_sub(&a->rcount, 1);
        return -1; /* requested at the same time by another thread */
    }
    /* a pack that moved to another arena since the checks above held the
       block no more (a drain completed an earlier free of it, the pack was
       released and taken again): this is a double free, the claim is void
       (only such a free can find the pack moved: a live block keeps it).
       A double free that races the completion of the first one and finds
       the pack in place claims a free block: the next allocation of it
       clears the claim (xm__remote_unclaim) */
    if (atomic_load(&p->arena) != ai) {
        if (atomic_fetch_and(&p->x->rpend[g >> 6], ~m) & m)
            atomic_fetch_sub(&a->rcount, 1);
        return -1;
    }
    /* the bit before the queue (a drain clears rqueued, then takes the
       bits: it sees this one, or this thread sees 0 and queues again) */
    remote_queue(h, p, ai);
    if (n >= XM__REMOTE_MAX) { /* nobody completes them: this thread */
        xm__arena_lock_drain(h, a);
        xm__remote_drain_locked(h, a);
        xm__arena_unlock(a);
    }
    return 1;
}


void xm__remote_drain_locked(xm_heap *h, xm__arena *a)
{
    if (h->forked) /* a frozen fork child changes nothing (as xm__enter) */
        return;
    xm__pack *p = atomic_exchange(&a->rfree, NULL);
    unsigned ai = (unsigned)(a - h->arenas);
    a->rtick = 0;
    while (p) {
        xm__pack *next = atomic_load_explicit(&p->rnext, memory_order_relaxed);
        /* rqueued first, then the bits (seq_cst both: a freeing thread
           sets its bit, then tries rqueued; one of the two sees the
           other's store) */
        atomic_store(&p->rqueued, 0);
        unsigned pa = atomic_load(&p->arena);
        if (pa != ai) {
            /* the pack was released and another arena took it (it stayed
               queued here from a free that had been completed): its bits
               are that arena's requests, and so is the pack */
            remote_queue(h, p, pa);
            p = next;
            continue;
        }
        uint64_t bits[XM__PACK_WORDS];
        unsigned n = 0;
        for (unsigned w = 0; w < XM__PACK_WORDS; w++) {
            bits[w] = atomic_load(&p->x->rpend[w]) ? atomic_exchange(&p->x->rpend[w], 0) : 0;
            n += (unsigned)__builtin_popcountll(bits[w]);
        }
        if ((pa = atomic_load(&p->arena)) != ai) {
            /* taken by another arena just now (a spare pack: none of the
               bits can be ours) */
            for (unsigned w = 0; w < XM__PACK_WORDS; w++)
                if (bits[w])
                    atomic_fetch_or(&p->x->rpend[w], bits[w]);
            remote_queue(h, p, pa);
            p = next;
            continue;
        }
        if (n)
            atomic_fetch_sub(&a->rcount, n);
        /* ours, with these blocks live: its base stays until the last of
           them is freed (then the pack may go, even to another arena) */
        uintptr_t base = p->base;
        for (unsigned w = 0; w < XM__PACK_WORDS; w++) {
            while (bits[w]) {
                unsigned b = (unsigned)__builtin_ctzll(bits[w]);
                bits[w] &= bits[w] - 1;
                /* only a double free makes this false (a block freed
                   meanwhile, its pack gone) */
                xm__pack *q;
                uint32_t g;
                uintptr_t rx = base + ((uintptr_t)(w * 64 + b) << XM__GRAN_SHIFT);
                if (xm__block_find(h, rx, &q, &g) != XM_OK || q != p ||
                    atomic_load(&q->arena) != ai)
                    continue;
                xm__block_free_filled_locked(h, p, g);
                a->remote_frees++;
            }
        }
        p = next;
    }
}
