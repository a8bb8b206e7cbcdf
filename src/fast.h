/*
 * fast.h: the fast paths of xm_alloc, xm_publish and xm_free (included by
 * heap.c only, so each public call is one function).
 *
 * The JIT's steady state on its own arena, DUAL with staging buffers (the
 * default): allocate a small block that waits on a magazine, publish the
 * newest staged block, free a published small block onto a magazine. Each
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
 * 1 KiB) gcc would inline `rep stos`, which starts slower than libc's vector
 * loop for blocks this small; the empty asm hides the bound. */
static inline void fast_fill_traps(void *p, size_t n)
{
    __asm__("" : "+r"(n));
    memset(p, XM__TRAP_BYTE, n);
}

static inline bool fast_ok(xm_heap *h)
{
    return h->fast &&
           !atomic_load_explicit(&h->pending, memory_order_acquire) &&
           !xm__sym_any(h);
}

/* Locks the arena of the pack holding addr when it is this thread's own
 * (the only arena a thread can own) and nobody revokes it; the pack in
 * *pk. NULL otherwise (nothing locked). The arena comes from the thread's
 * slot, not from the pack, so its lock and the pack's lines load in
 * parallel. */
static inline xm__arena *fast_lock_pack_of(xm_heap *h, uintptr_t addr, xm__pack **pk)
{
    unsigned me = xm__slot;
    if (!me)
        return NULL;
    unsigned ai = (me - 1) % XM__ARENAS;
    xm__arena *a = &h->arenas[ai];
    xm__pack *p = xm__pack_of(h, addr);
    if (!p || !xm__arena_try_own(a))
        return NULL;
    /* a live pack changes arena only after a release, under its arena's
       lock: if it is ours now, it stays ours */
    if (atomic_load_explicit(&p->arena, memory_order_relaxed) != ai ||
        atomic_load_explicit(&h->pagemap[(addr - h->base) >> XM__PAGE_SHIFT],
                             memory_order_acquire) != p ||
        p->large) {
        xm__arena_unown(a);
        return NULL;
    }
    *pk = p;
    return a;
}

static inline bool xm__alloc_fast(xm_heap *h, int kind, size_t size, size_t align, xm_block *out)
{
    size_t usable = (size + XM__GRAN - 1) & ~(size_t)(XM__GRAN - 1);
    size_t c = (usable >> XM__GRAN_SHIFT) - 1, a16 = align < 16 ? 16 : align;
    if (!fast_ok(h) || size > XM__MAG_CLASSES * XM__GRAN || a16 > XM__LINE_PAIR)
        return false;
    xm__arena *ar = xm__my_arena(h);
    if (!xm__arena_try_own(ar))
        return false;
    xm__pack *p;
    uint32_t g;
    if (!ar->stbuf[c] || (ar->stcount + 1) * 2 > ar->stcap ||
        !xm__mag_take(h, ar, kind, usable, a16, &p, &g)) {
        xm__arena_unown(ar);
        return false; /* no recycled staging buffer, table full, or no block */
    }
    void *stage = xm__stage_buf_get(ar, usable, a16); /* a recycled one */
    uintptr_t rx = xm__block_addr(p, g);
    xm__clear_pend(p, g);
    xm__set_start(p, g, true);
    fast_fill_traps(stage, usable);
    xm__stage_put(ar, rx, stage);
    ar->staging_bytes += usable;
    ar->live_blocks++;
    ar->live_bytes += usable;
    ar->allocs++;
    xm__arena_unown(ar);
    out->rx = (void *)rx;
    out->rw = stage;
    out->size = usable;
    return true;
}

/* The start of publish and free: the own arena locked, the pack and the
 * granule rx would start at, or NULL (nothing locked). */
static inline xm__arena *fast_enter(xm_heap *h, uintptr_t rx, xm__pack **pk,
                                    uint32_t *g)
{
    if (!fast_ok(h))
        return NULL;
    xm__arena *ar = fast_lock_pack_of(h, rx, pk);
    if (ar)
        *g = (uint32_t)((rx - (*pk)->base) >> XM__GRAN_SHIFT);
    return ar;
}

static inline bool xm__publish_fast(xm_heap *h, uintptr_t rx, int prot)
{
    xm__pack *p;
    uint32_t g;
    xm__arena *ar = fast_enter(h, rx, &p, &g);
    if (!ar)
        return false;
    uint64_t m = 1ull << (g & 63);
    if (ar->st1.rx != rx || (rx & (XM__GRAN - 1)) ||
        (p->kind == XM__K_CODE) != (prot == XM_PROT_RX) || (p->pub[g >> 6] & m)) {
        xm__arena_unown(ar); /* (the staged block in st1 is live) */
        return false;
    }
    void *stage = ar->st1.rw;
    ar->st1.rx = 0;
    ar->stcount--;
    size_t sz = xm__block_size(p, g);
    memcpy(h->alias + (rx - h->base), stage, sz);
    if (p->kind == XM__K_CODE)
        xm__icache_sync((void *)rx, sz);
    xm__stage_buf_put(ar, stage, sz);
    ar->staging_bytes -= sz;
    p->pub[g >> 6] |= m;
    p->raised = 1;
    ar->publishes++;
    xm__arena_unown(ar);
    return true;
}

static inline bool xm__free_fast(xm_heap *h, uintptr_t rx)
{
    xm__pack *p;
    uint32_t g;
    xm__arena *ar = fast_enter(h, rx, &p, &g);
    if (!ar)
        return false;
    uint64_t m = 1ull << (g & 63);
    uint32_t c = p->glen[g];
    if ((rx & (XM__GRAN - 1)) || !(xm__start_word(p, g) & 1) || !(p->pub[g >> 6] & m) ||
        ar->nwin || !xm__mag_room(ar, p, c)) {
        xm__arena_unown(ar);
        return false;
    }
    size_t sz = ((size_t)c + 1) << XM__GRAN_SHIFT;
    fast_fill_traps(h->alias + (rx - h->base), sz);
    xm__set_start(p, g, false);
    xm__clear_pend(p, g);
    p->pub[g >> 6] &= ~m;
    ar->live_blocks--;
    ar->live_bytes -= sz;
    ar->frees++;
    xm__mag_push(ar, p, g, c);
    xm__arena_unown(ar);
    return true;
}

#endif
