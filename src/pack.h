/* SPDX-License-Identifier: MIT */
/*
 * pack.h: a block's state, read from the pagemap and the page state
 * (xm__pack_of, xm__block_at, start bits, sizes, addresses), inline for the
 * public calls and the fast paths, and pack.c's entry points (arena
 * locked).
 */
#ifndef XM_PACK_H
#define XM_PACK_H

#include "types.h"

/* pack.c: everything here runs with the block's arena locked. */
xm_result xm__block_alloc_locked(xm_heap *h, xm__arena *a, int kind,
                                 size_t size, size_t align, xm_block *out);
/* xm_load: a block allocated and published at once, len bytes of src
 * copied straight into place (no staging buffer); only where
 * xm__load_direct(h). out->rw is NULL (XM_INPLACE: the block's rw). */
bool xm__load_direct(const xm_heap *h);
xm_result xm__block_load_locked(xm_heap *h, xm__arena *a, int kind,
                                const void *src, size_t len, size_t align,
                                xm_block *out);
/* Looks up the block starting exactly at rx: pack and granule index. */
xm_result xm__block_find(xm_heap *h, uintptr_t rx, xm__pack **pk, uint32_t *g);

/* The pack that holds addr (lock-free: descriptors live until the heap
 * dies), or NULL. */
static inline xm__pack *xm__pack_of(xm_heap *h, uintptr_t addr)
{
    if (addr < h->base || addr - h->base >= h->reserve)
        return NULL;
    return atomic_load_explicit(&h->ps[(addr - h->base) >> XM__PAGE_SHIFT].pm,
                                memory_order_acquire);
}

/* The start bits of the page holding addr (in the reserve), by address:
 * lock-free readers use these, never a descriptor's pointer into them. Bit
 * (addr >> 6) & 63 is addr's granule. */
static inline uint64_t xm__start_at(const xm_heap *h, uintptr_t addr)
{
    return atomic_load_explicit(&h->ps[(addr - h->base) >> XM__PAGE_SHIFT].start,
                                memory_order_acquire);
}

/* XM_OK and its first granule in *g when a block of p (which covers rx)
 * starts at rx. */
static inline xm_result xm__block_at(const xm_heap *h, const xm__pack *p,
                                     uintptr_t rx, uint32_t *g)
{
    uintptr_t off = rx - p->base;
    unsigned sh = p->large ? XM__PAGE_SHIFT : XM__GRAN_SHIFT;
    uint32_t i = (uint32_t)(off >> sh);
    if ((off & ((1u << sh) - 1)) || (p->large && i != 0) ||
        !((xm__start_at(h, rx) >> ((rx >> XM__GRAN_SHIFT) & 63)) & 1))
        return XM_EBADPTR;
    *g = i;
    return XM_OK;
}
/* Bits of the block state (pack.c and the fast paths), arena locked. */
static inline uint64_t xm__start_word(const xm__pack *p, uint32_t g)
{
    return atomic_load_explicit(&XM__BW(p->start, g >> 6), memory_order_acquire) >> (g & 63);
}

/* `start` bits change only under the arena lock and are read lock-free, so
 * a plain read-modify-store (release) is enough: no locked instruction. */
static inline void xm__start_bits(_Atomic uint64_t *w, uint64_t m, bool on)
{
    uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
    atomic_store_explicit(w, on ? v | m : v & ~m, memory_order_release);
}
static inline void xm__set_start(xm__pack *p, uint32_t g, bool on)
{
    xm__start_bits(&XM__BW(p->start, g >> 6), 1ull << (g & 63), on);
}

/* `pend` bits are set by lock-free requests at any time: clearing needs an
 * atomic RMW, but only when the bit is set. */
static inline void xm__clear_pend(xm__pack *p, uint32_t g)
{
    uint64_t m = 1ull << (g & 63);
    if (atomic_load_explicit(&p->pend[g >> 6], memory_order_relaxed) & m)
        atomic_fetch_and(&p->pend[g >> 6], ~m);
}

/* A block of n granules leaves its magazine: its bit `m` in the cached
 * word that covers it is cleared (by address, as the fast path has it). */
static inline void xm__mag_unmark_bits(xm__pack *p, uint64_t *cached_word,
                                       uint64_t m, uint32_t n)
{
    *cached_word &= ~m;
    p->ncached -= n;
}
/* Block rx of p (n granules) leaves its magazine: returns its granule. */
static inline uint32_t xm__mag_unmark(xm__pack *p, uintptr_t rx, uint32_t n)
{
    uint32_t g = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
    xm__mag_unmark_bits(p, &XM__BW(p->cached, g >> 6), 1ull << (g & 63), n);
    return g;
}

/* Size of the block that starts at granule g of p (live or cached). */
static inline size_t xm__block_size(const xm__pack *p, uint32_t g)
{
    if (p->large)
        return (size_t)p->npages << XM__PAGE_SHIFT;
    return ((size_t)XM__GL(p->glen, g) + 1) << XM__GRAN_SHIFT;
}
_Static_assert(XM__SMALL_MAX / XM__GRAN <= 256, "glen holds granules - 1 in a byte");
size_t xm__block_size_slow(const xm__pack *p, uint32_t g);
/* Address of block (or granule) g of pack p. */
static inline uintptr_t xm__block_addr(const xm__pack *p, uint32_t g)
{
    return p->base + ((uintptr_t)g << (p->large ? XM__PAGE_SHIFT : XM__GRAN_SHIFT));
}
/* The live block of p holding all of [dst, dst+len) (p holds dst):
 * XM_ERANGE if none. */
xm_result xm__block_range(const xm__pack *p, uintptr_t dst, size_t len, uint32_t *g);
/* The live block of p holding addr (p holds addr): XM_EBADPTR if none. */
xm_result xm__block_containing(const xm__pack *p, uintptr_t addr, uint32_t *g);

xm_result xm__block_free_locked(xm_heap *h, xm__pack *p, uint32_t g);
/* The same for a block whose bytes a remote free trap-filled already
 * (DUAL with the alias; deferred.c). */
void xm__block_free_filled_locked(xm_heap *h, xm__pack *p, uint32_t g);
xm_result xm__block_publish_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                   int prot);
/* Rewrites [dst, dst+len) of block g (found by xm__block_range);
 * XM_ESTATE if it is not published. Counts a patch. */
xm_result xm__block_patch_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                 uintptr_t dst, const void *src, size_t len);
/* Writes published bytes [dst, dst+len) of block g (checked by the caller)
 * and makes them coherent; failure-atomic. No counter changes. */
xm_result xm__block_write_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                 uintptr_t dst, const void *src, size_t len);
/* Gives the arena's empty packs back to the free ranges (arena locked,
 * not the heap lock). */
void xm__arena_retire_empty_locked(xm_heap *h, xm__arena *a);
void xm__pack_check_runs(const xm__pack *p);
uint32_t xm__pack_longest_run(const xm__pack *p); /* small packs */
int xm__bit_get(const uint64_t *bm, uint32_t i);
uint64_t xm__abit_word(const _Atomic uint64_t *bm, uint32_t i);

#endif
