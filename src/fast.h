/* SPDX-License-Identifier: MIT */
/*
 * fast.h: the fast paths of xm_alloc, xm_publish and xm_free (included by
 * block.c only, so each public call is one function).
 *
 * The JIT's steady state on its own arena, DUAL (with staging buffers, the
 * default, or XM_INPLACE): allocate a small block that waits on a magazine,
 * publish the newest staged block (XM_INPLACE: any small block of the own
 * arena), free a published small block onto a magazine. Each
 * makes exactly the state change the general path makes in that case, under
 * the owner's lock-free arena lock, in one straight line. Anything else (an
 * arena the thread does not own or that is being revoked, a large block, a
 * magazine empty or full, an older staged block, open windows, names,
 * valgrind, pending async frees, a fork child) makes them return false
 * before anything changed, and the caller takes the general path, which
 * also gives every error.
 */
#ifndef XM_FAST_H
#define XM_FAST_H

#include "internal.h"
#include "arch.h"

#include <string.h>

/* Trap fill by libc's memset: for a size it can bound (these are at most
 * 16 KiB, most of them 1 KiB or less) gcc would inline `rep stos`, which
 * starts slower than libc's vector loop for blocks this small; the empty
 * asm hides the bound. */
static inline void fast_fill_traps(void *p, size_t n)
{
    __asm__("" : "+r"(n));
    memset(p, XM__TRAP_BYTE, n);
}

/* The heap's gate: fast paths on, no names to keep in step, no async
 * free waiting for the drain that every general call starts with (nor a
 * drain in flight on another thread, which that drain waits for). *async:
 * whether a pend bit may be set anywhere (xm_free_async was ever used). */
static inline bool fast_gate(xm_heap *h, bool *async)
{
    unsigned g = atomic_load_explicit(&h->gate, memory_order_acquire);
    *async = g != 0;
    return !g || (g == XM__G_ASYNC && !xm__drain_needed(h, g));
}

/* The thread's own arena locked the owner's way, its index in *ai; NULL
 * (nothing locked) when the thread owns no arena or a revoke is under way.
 * Whatever the caller read of the heap before this stays in registers:
 * the compiler fence in here makes it reload everything else. */
static inline xm__arena *fast_own(xm_heap *h, unsigned *ai, bool existing)
{
    unsigned me = xm__slot;
    if (!me)
        return NULL;
    *ai = (me - 1) % XM__ARENAS;
    xm__arena *a = &h->arenas[*ai];
    if (!xm__arena_own_as(a, me))
        return NULL;
    /* the gate again, now under the lock: an xm_name that completed since
       fast_gate read it (it sets XM__G_NAMES under this arena's lock)
       would otherwise leave its name behind a fast free, or unemitted
       behind a fast publish */
    if (atomic_load_explicit(&h->gate, memory_order_relaxed) & XM__G_NAMES) {
        xm__arena_unown(a);
        return NULL;
    }
    /* other threads' frees wait for this arena's lockers (deferred.c):
       complete them as the general path would, before a call on an
       existing block (which may be one of them), else every
       XM__REMOTE_BATCH calls (what the caller reads of the arena and its
       packs, it reads after this) */
    if (atomic_load_explicit(&a->rfree, memory_order_relaxed) &&
        (existing || ++a->rtick >= XM__REMOTE_BATCH))
        xm__remote_drain_locked(h, a);
    return a;
}

/* The small pack that the page-map entry `slot` names, in *pk, with its
 * arena locked when that is the own arena, re-checked after the lock (a
 * live pack changes arena only after a release, under its arena's lock: if
 * it is ours now, it stays ours). NULL, nothing locked, else. */
static inline xm__arena *fast_lock_small(xm_heap *h, _Atomic(xm__pack *) *slot,
                                         xm__pack **pk)
{
    xm__pack *p = atomic_load_explicit(slot, memory_order_acquire);
    unsigned ai;
    xm__arena *a;
    if (!p || !(a = fast_own(h, &ai, true)))
        return NULL;
    /* the slot first, then the arena, as xm__lock_pack_of: a pack that
       another arena took (its arena stored before its page-map entries,
       pack.c) and that the slot names again shows that arena */
    if (atomic_load_explicit(slot, memory_order_acquire) != p ||
        atomic_load_explicit(&p->arena, memory_order_relaxed) != ai || p->large) {
        xm__arena_unown(a);
        return NULL;
    }
    *pk = p;
    return a;
}

/* Each public call is one function with its fast path inside. */
#if defined(__GNUC__)
#define XM__FAST inline __attribute__((always_inline))
#else
#define XM__FAST inline
#endif

/* The bookkeeping of each fast path comes first and its pass over the
 * bytes last, under the lock still: across the memset or memcpy call only
 * the arena stays live, so the functions save few registers. */

/* The fast paths find a block's state from its address (h->start_all and
 * the others, the words its pack's pointers also name), so those loads do
 * not wait for the pack's descriptor: page pg = (rx - base) >> 12, bit
 * `m` = 1 << ((rx >> 6) & 63), granule (rx - base) >> 6. */

/* A magazine block made live: up to 16 KiB (XM__SMALL_MAX), the caller
 * checks the size and that align is 0 or a power of two. Up to 1 KiB the
 * block is of the size asked; above, of its magazine class, up to a
 * quarter larger (out->size says so, as on the general path). src NULL:
 * xm_alloc's, with a recycled staging buffer of the block's size or
 * class (align up to XM__LINE_PAIR), trap-filled, in out->rw (XM_INPLACE:
 * the block's alias, traps already). Else xm_load's (only where
 * xm__load_direct): the len = size bytes of src copied straight into place
 * and the block published at once, the allocation and publish of the two
 * fast paths in one (the rest of the block is traps already). Inlined into
 * each caller with src constant, so neither keeps a test of it. */
_Static_assert(XM__MAG_EXACT <= XM__STAGE_CLASSES, "fast sizes have exact staging classes");
_Static_assert(XM__SMALL_MAX >> XM__GRAN_SHIFT == 256, "the magazines' classes end at 16 KiB");
static XM__FAST bool fast_mag_block(xm_heap *h, int kind, size_t size, size_t align,
                                    const void *src, xm_block *out)
{
    bool async;
    if (!fast_gate(h, &async))
        return false;
    uint32_t n = (uint32_t)((size + XM__GRAN - 1) >> XM__GRAN_SHIFT);
    size_t c = n <= XM__MAG_EXACT ? n - 1 : xm__mag_take_class(n);
    size_t a16 = align < 16 ? 16 : align;
    xm__pstate *ps = h->ps;
    uintptr_t base = h->base;
    char *alias = h->alias;
    unsigned ai;
    xm__arena *ar = fast_own(h, &ai, false);
    if (!ar)
        return false;
    bool inplace = h->flags & XM_INPLACE;
    unsigned cnt = ar->nmag[kind][c];
    if (!cnt) {
        xm__arena_unown(ar);
        return false;
    }
    /* the newest block of the class, its size from its page's state as the
       fast free reads it: a mid class's block may be larger than asked */
    uintptr_t rx = ar->mag[kind][c][cnt - 1];
    size_t pg = (rx - base) >> XM__PAGE_SHIFT;
    uint32_t have = c < XM__MAG_EXACT ? n : (uint32_t)ps[pg].glen[(rx >> XM__GRAN_SHIFT) & 63] + 1;
    size_t usable = (size_t)have << XM__GRAN_SHIFT;
    /* its staging buffer: a recycled one of exactly its size (up to 2 KiB)
       or of its power-of-two class, as xm__stage_buf_get would take */
    void **slot = NULL;
    unsigned big = XM__STAGE_BIG;
    if (!src && !inplace) {
        if (have <= XM__STAGE_CLASSES)
            slot = &ar->stbuf[have - 1];
        else if ((big = xm__stage_big_class(usable)) < XM__STAGE_BIG)
            slot = &ar->stbig[big];
    }
    void *stage = slot ? *slot : NULL;
    xm__pack *p;
    if ((!src && !inplace && (!stage || (ar->stcount + 1) * 2 > ar->stcap)) ||
        !xm__mag_pop(ar, kind, c, a16, &rx, &p)) {
        xm__arena_unown(ar); /* no recycled buffer, table full, misaligned */
        return false;
    }
    uint64_t m = 1ull << ((rx >> XM__GRAN_SHIFT) & 63);
    xm__mag_unmark_bits(p, &ps[pg].cached, m, have);
    if (c >= XM__MAG_EXACT)
        ar->mag_mid_bytes[kind] -= usable;
    uint32_t g = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
    if (async)
        xm__clear_pend(p, g);
    xm__remote_unclaim(ar, p, g);
    xm__start_bits(&ps[pg].start, m, true);
    ar->live_bytes += usable;
    ar->allocs++;
#if XM_DEBUG >= 2
    if (inplace || src) /* as block_alloc: the alias was the freed block's
                           rw (xm_load's copy goes there too) */
        xm__dead_rw_check(h, rx, usable);
#endif
    if (src) {
        ps[pg].pub |= m;
        p->raised = 1;
        ar->publishes++;
        ar->fast_loads++;
        /* src first: it may overlap *out (the slow path reads it first too) */
        memcpy(alias + (rx - base), src, size);
        if (kind == XM__K_CODE)
            xm__icache_sync((void *)rx, usable);
        xm__arena_unown(ar);
        out->rx = (void *)rx;
        out->rw = inplace ? alias + (rx - base) : NULL;
        out->size = usable;
        return true;
    }
    if (inplace) { /* as block_alloc: the JIT writes the alias */
        ar->fast_inplace_allocs++;
        xm__arena_unown(ar);
        out->rx = (void *)rx;
        out->rw = alias + (rx - base);
        out->size = usable;
        return true;
    }
    if (big < XM__STAGE_BIG) { /* xm__stage_big_get */
        *slot = NULL;
    } else { /* xm__stage_buf_get: the link lives in the buffer */
        memcpy(slot, stage, sizeof stage);
        ar->stbuf_bytes -= usable;
    }
    xm__stage_put(ar, rx, stage, p);
    ar->staging_bytes += usable;
    ar->fast_allocs++;
    out->rx = (void *)rx;
    out->rw = stage;
    out->size = usable;
    fast_fill_traps(stage, usable);
    xm__arena_unown(ar);
    return true;
}

static XM__FAST bool xm__alloc_fast(xm_heap *h, int kind, size_t size, size_t align, xm_block *out)
{
    return fast_mag_block(h, kind, size, align, NULL, out);
}

static XM__FAST bool xm__load_fast(xm_heap *h, int kind, const void *src,
                                   size_t len, size_t align, xm_block *out)
{
    return fast_mag_block(h, kind, len, align, src, out);
}

/* XM_INPLACE: an unpublished small block of the own arena, found from its
 * address as xm__free_fast finds it; its bytes are in place already. */
static inline bool publish_fast_inplace(xm_heap *h, uintptr_t rx, int prot)
{
    uintptr_t off = rx - h->base;
    if (off >= h->reserve || (rx & (XM__GRAN - 1)))
        return false;
    xm__pstate *ps = &h->ps[off >> XM__PAGE_SHIFT];
    uint64_t m = 1ull << ((rx >> XM__GRAN_SHIFT) & 63);
    xm__pack *p;
    xm__arena *ar = fast_lock_small(h, &ps->pm, &p);
    if (!ar)
        return false;
    /* start bits change under the lock only: ours to read plainly */
    if (!(atomic_load_explicit(&ps->start, memory_order_relaxed) & m) || (ps->pub & m) ||
        (p->kind == XM__K_CODE) != (prot == XM_PROT_RX) ||
        xm__remote_claimed(ar, p, (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT))) {
        xm__arena_unown(ar);
        return false;
    }
    size_t sz = ((size_t)ps->glen[(off >> XM__GRAN_SHIFT) & 63] + 1) << XM__GRAN_SHIFT;
    ps->pub |= m;
    p->raised = 1;
    ar->publishes++;
    ar->fast_inplace_publishes++;
    if (p->kind == XM__K_CODE)
        xm__icache_sync((void *)rx, sz);
    xm__arena_unown(ar);
    return true;
}

/* Staged (the default): only the newest staged block of the own arena:
 * st1 names its pack, which holds it live, so there is no lookup.
 * XM_INPLACE: publish_fast_inplace. */
static XM__FAST bool xm__publish_fast(xm_heap *h, uintptr_t rx, int prot)
{
    bool async;
    if (!fast_gate(h, &async))
        return false;
    if (h->flags & XM_INPLACE)
        return publish_fast_inplace(h, rx, prot);
    uintptr_t off = rx - h->base;
    char *alias = h->alias;
    xm__pstate *ps = h->ps;
    uint64_t m = 1ull << ((rx >> XM__GRAN_SHIFT) & 63);
    unsigned ai;
    xm__arena *ar = fast_own(h, &ai, true);
    if (!ar)
        return false;
    xm__pack *p = ar->st1_pack;
    /* (rx is in the reserve once it is st1's) */
    if (ar->st1.rx != rx || p->large ||
        (p->kind == XM__K_CODE) != (prot == XM_PROT_RX) ||
        (ps[off >> XM__PAGE_SHIFT].pub & m) ||
        xm__remote_claimed(ar, p, (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT))) {
        xm__arena_unown(ar);
        return false;
    }
    char *dst = alias + off;
    uint64_t *pubw = &ps[off >> XM__PAGE_SHIFT].pub;
    const uint8_t *glen = &ps[off >> XM__PAGE_SHIFT].glen[(off >> XM__GRAN_SHIFT) & 63];
    void *stage = ar->st1.rw;
    ar->st1.rx = 0;
    ar->stcount--;
    size_t sz = ((size_t)*glen + 1) << XM__GRAN_SHIFT;
    ar->staging_bytes -= sz;
    *pubw |= m;
    p->raised = 1;
    ar->publishes++;
    bool code = p->kind == XM__K_CODE;
    memcpy(dst, stage, sz);
    if (code)
        xm__icache_sync((void *)rx, sz);
    xm__stage_buf_put(ar, stage, sz); /* its link overwrites the first bytes */
    xm__arena_unown(ar);
    return true;
}

static XM__FAST bool xm__free_fast(xm_heap *h, uintptr_t rx)
{
    bool async;
    if (!fast_gate(h, &async))
        return false;
    uintptr_t off = rx - h->base;
    if (off >= h->reserve || (rx & (XM__GRAN - 1)))
        return false;
    char *dst = h->alias + off;
    size_t pg = off >> XM__PAGE_SHIFT;
    _Atomic uint64_t *startw = &h->ps[pg].start;
    uint64_t *pubw = &h->ps[pg].pub;
    const uint8_t *glen = &h->ps[pg].glen[(off >> XM__GRAN_SHIFT) & 63];
    uint64_t m = 1ull << ((rx >> XM__GRAN_SHIFT) & 63);
    xm__pack *p;
    xm__arena *ar = fast_lock_small(h, &h->ps[pg].pm, &p);
    if (!ar)
        return false;
    uint32_t n = (uint32_t)*glen + 1, c = xm__mag_put_class(n);
    uint32_t g = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
    /* start bits change under the lock only: ours to read plainly; a
       block another thread freed is gone (its free may not be queued yet:
       fast_own completed the queued ones) */
    uint64_t st = atomic_load_explicit(startw, memory_order_relaxed);
    if (!(st & *pubw & m) || ar->nwin || !xm__mag_room(ar, p, c, n) ||
        xm__remote_claimed(ar, p, g)) {
        xm__arena_unown(ar);
        return false;
    }
    size_t sz = (size_t)n << XM__GRAN_SHIFT;
    xm__start_bits(startw, m, false);
    if (async)
        xm__clear_pend(p, g);
    *pubw &= ~m;
    ar->live_bytes -= sz;
    ar->frees++;
    xm__mag_push(ar, p, g, c, n, rx);
    fast_fill_traps(dst, sz); /* before the lock goes: the block waits on
                                 the magazine, nobody takes it meanwhile */
    xm__arena_unown(ar);
    return true;
}

#endif
