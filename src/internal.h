/* SPDX-License-Identifier: MIT */
/*
 * internal.h: everything the library files share, for a file that needs
 * most of it: the structures (types.h), block state (pack.h), arenas and
 * their locks (arena.h), the debug checks (debug.h), and the subsystems'
 * entry points below (stage, range, inplace, wintab, call, meta, deferred,
 * check, sym, live, fork).
 */
#ifndef XM_INTERNAL_H
#define XM_INTERNAL_H

#include "debug.h"
#include "types.h"
#include "pack.h"
#include "arena.h"

/* stage.c: unpublished-block staging table of an arena. The common cases
 * (the newest block in st1, a recycled buffer of the right size) are
 * inline here; stage.c has the table and the rest. */
int xm__stage_grow(xm__arena *a);
void xm__stage_spill(xm__arena *a);   /* st1 -> the table */
void *xm__stage_take_slow(xm__arena *a, uintptr_t rx);
void *xm__stage_get(xm__arena *a, uintptr_t rx);
void *xm__stage_buf_new(size_t usable, size_t align);
/* Buffers of more than XM__STAGE_CLASSES granules (page-aligned). */
void *xm__stage_big_get(xm__arena *a, size_t usable);
void xm__stage_big_put(xm__arena *a, void *buf, size_t usable);
void xm__stage_buf_drop_all(xm__arena *a);
/* The kept buffers of larger blocks (xm_purge), arena locked. */
void xm__stage_big_drop(xm__arena *a);
/* XM_DEBUG >= 2: keeps a released staging buffer out of use (above). */
void xm__stage_dead_put(xm__arena *a, void *buf, size_t usable);
/* Makes room for one more entry; -1 when out of memory. */
static inline int xm__stage_reserve(xm__arena *a)
{
    return (a->stcount + 1) * 2 <= a->stcap ? 0 : xm__stage_grow(a);
}
/* Records the staging buffer of rx, a block of p (room reserved): never
 * fails. */
static inline void xm__stage_put(xm__arena *a, uintptr_t rx, void *rw, xm__pack *p)
{
    if (a->st1.rx)
        xm__stage_spill(a);
    a->st1 = (xm__stage){rx, rw};
    a->st1_pack = p;
    a->stcount++;
}
/* Removes and returns rx's staging buffer (NULL: none). */
static inline void *xm__stage_take(xm__arena *a, uintptr_t rx)
{
    if (rx && a->st1.rx == rx) {
        a->st1.rx = 0;
        a->stcount--;
        return a->st1.rw;
    }
    return xm__stage_take_slow(a, rx);
}
/* A staging buffer of `usable` bytes aligned to `align` (>= 16), from the
 * arena's recycled ones or malloc; give it back with xm__stage_buf_put. */
static inline void *xm__stage_buf_get(xm__arena *a, size_t usable, size_t align)
{
    size_t c = (usable >> XM__GRAN_SHIFT) - 1;
    void *b;
#if XM_DEBUG >= 2 /* no recycling: released buffers wait in a->dead */
    if (c < XM__STAGE_CLASSES)
        return xm__stage_buf_new(usable, align);
#endif
    if (c < XM__STAGE_CLASSES && align <= XM__LINE_PAIR && (b = a->stbuf[c])) {
        memcpy(&a->stbuf[c], b, sizeof b); /* the link lives in the buffer */
        a->stbuf_bytes -= usable;
        return b;
    }
    if (c >= XM__STAGE_CLASSES)
        return xm__stage_big_get(a, usable);
    return xm__stage_buf_new(usable, align);
}
/* The power-of-two class of the buffer for a block of `usable` bytes above
 * the exact classes (stage.c): class k's buffers are 2^(k + XM__STAGE_BIG_SHIFT)
 * bytes; from XM__STAGE_BIG on, no class (a buffer of the block's size). */
static inline unsigned xm__stage_big_class(size_t usable)
{
    unsigned k = 64u - (unsigned)__builtin_clzll((unsigned long long)usable - 1);
    return k < XM__STAGE_BIG_SHIFT ? 0 : k - XM__STAGE_BIG_SHIFT;
}
/* Whether a buffer taken for `usable` bytes is one for `got` (>= usable)
 * bytes too: the same size, or the same class. */
static inline bool xm__stage_same_buf(size_t usable, size_t got)
{
    unsigned k = xm__stage_big_class(got);
    return usable == got ||
           (usable > ((size_t)XM__STAGE_CLASSES << XM__GRAN_SHIFT) &&
            k < XM__STAGE_BIG && xm__stage_big_class(usable) == k);
}
static inline void xm__stage_buf_put(xm__arena *a, void *buf, size_t usable)
{
    size_t c = (usable >> XM__GRAN_SHIFT) - 1;
    if (!buf)
        return;
#if XM_DEBUG >= 2
    xm__stage_dead_put(a, buf, usable);
    return;
#endif
    if (c >= XM__STAGE_CLASSES) {
        xm__stage_big_put(a, buf, usable);
        return;
    }
    if (a->stbuf_bytes + usable > XM__STAGE_KEEP) {
        xm__mem_free(buf);
        return;
    }
    memcpy(buf, &a->stbuf[c], sizeof buf);
    a->stbuf[c] = buf;
    a->stbuf_bytes += usable;
}

/* range.c: heap lock held */
void xm__range_init(xm_heap *h);
/* Takes npages pages, preferring a mapped run in state `want`, else NONE.
 * *taken may be more than npages: from NONE, the heap grows in chunks (map
 * them all, give back the rest mapped); from a mapped run, the whole run
 * when no more than `slack` pages would be left (a sliver of a hole that
 * no later block fits would wait in the quarantine for a purge). With
 * fresh_n (else NULL), a run of exactly npages may be mixed: pages in
 * *state and, *fresh_n > 0 of them from *fresh_at on, NONE pages the
 * caller maps (then *fresh_n is 0 for any other take). Returns 0, or -1
 * when no run is large enough. */
int xm__range_take(xm_heap *h, uint32_t npages, uint32_t slack, int want,
                   uint32_t *page, int *state, int *raised, uint32_t *taken,
                   uint32_t *fresh_at, uint32_t *fresh_n);
void xm__range_put(xm_heap *h, uint32_t page, uint32_t npages, int state,
                   int raised);
/* Releases the mapped free ranges (quarantine) in coalesced runs. */
xm_result xm__purge_locked(xm_heap *h);
/* Releases the oldest when the quarantine passes the lazy bound (bounded
 * work: at most a few dozen runs per call). */
void xm__maybe_purge_locked(xm_heap *h);
size_t xm__lazy_bound(const xm_heap *h);
/* The free run that starts at `page`: 0 with its length and state, or -1. */
int xm__range_at(const xm_heap *h, uint32_t page, uint32_t *npages, int *state);
size_t xm__range_pool_size(uint32_t npages); /* nodes h->fr must hold */
size_t xm__range_check(const xm_heap *h);    /* debug walk: mapped bytes */
/* DUAL: gives the memfd's pages [off, off+len) back to the system (through
 * the alias, MADV_REMOVE, or under XM_STRICT the descriptor, fallocate
 * PUNCH_HOLE). 0 or -errno. */
int xm__file_release(xm_heap *h, uint64_t off, size_t len);

/* inplace.c: the private copies of XM_INPLACE under XM_STRICT or FLIP.
 * commit: makes pages [page, page+n) of the shadow RW (map_fresh);
 * release: back to reserve (purge, FLIP free). 0 or -errno. */
int xm__shadow_commit(xm_heap *h, uint32_t page, uint32_t n);
int xm__shadow_release(xm_heap *h, uintptr_t rx, size_t len);
/* Debug builds (XM_DEBUG >= 2): the bytes a new block's rw and rx start
 * from must be what free left (traps, or a fresh page's zeros): anything
 * else was written through a dead rw. Reports it and aborts. */
void xm__dead_rw_check(xm_heap *h, uintptr_t rx, size_t sz);
void xm__dead_rw_report(const char *what, const void *at);

/* wintab.c: closes the block's write windows without writing them back
 * (xm_free), arena locked; remove: the window at index i (xm_write_end). */
void xm__windows_drop_locked(xm__arena *a, uintptr_t block);
void xm__window_remove(xm__arena *a, size_t i);

/* call.c: the start and end of every public call (see call.c). */
xm_result xm__enter(xm_heap *h, bool mutating);
xm_result xm__leave(xm_heap *h, xm__arena *a, xm_result r);
/* The preamble of every call on one block (call.c): xm__enter, then the
 * arena of the pack at addr locked and the block found there, as
 * XM__AT_BLOCK: the block that starts at addr (else XM_EBADPTR);
 * XM__AT_RANGE: the block holding all of [addr, addr+len) (else XM_ERANGE);
 * XM__AT_CONTAINING: the block holding addr (else XM_EBADPTR).
 * *r is XM_OK with *p, *g set, or the error; the call ends with
 * xm__leave(h, the arena returned (NULL: nothing locked), *r). */
typedef enum { XM__AT_BLOCK, XM__AT_RANGE, XM__AT_CONTAINING } xm__at;
xm__arena *xm__enter_at(xm_heap *h, bool mutating, xm__at how, uintptr_t addr,
                        size_t len, xm__pack **p, uint32_t *g, xm_result *r);

/* meta.c: a heap made for valid options (xm_heap_create checks them; the
 * reserve a multiple of the page), and unmade (xm_heap_destroy, fork.c's
 * xm__heap_destroy_all, sysinfo.c's probe). */
xm_result xm__heap_new(const xm_options *o, size_t reserve, xm_heap **out);
void xm__heap_free(xm_heap *h);
/* What a destroy keeps for the next heap (meta.c: the metadata mapping and
 * the two anchor pages): xm__park_drop unmaps it, xm__park_peek tells the
 * anchors (0: none). For tests that count mappings. */
void xm__park_drop(void);
void xm__park_peek(uintptr_t *rx, uintptr_t *alias);

/* deferred.c: xm_free_async's request (h and rx non-NULL). */
xm_result xm__free_request(xm_heap *h, void *rx);
/* deferred.c: completes async frees, after any drain already in flight
 * (on another thread) is complete; called with no lock held. */
void xm__drain(xm_heap *h);
/* Whether an async free may be incomplete: requested and not taken, or
 * taken by a drain still under way. Until the first request (gate bit
 * XM__G_ASYNC, set before it) this is one load. */
static inline bool xm__drain_needed(xm_heap *h, unsigned gate)
{
    return (gate & XM__G_ASYNC) &&
           (atomic_load(&h->pending) || atomic_load(&h->draining));
}
/* At the start of every call: when it returns, every async free requested
 * before (on any thread) is complete (README: xm_free_async). */
static inline void xm__drain_if_needed(xm_heap *h)
{
    if (xm__drain_needed(h, atomic_load_explicit(&h->gate, memory_order_acquire)))
        xm__drain(h);
}
#if XM_DEBUG >= 1
/* White-box tests: called by a drain once it has taken the pending list,
 * before it frees anything (a drain held up on purpose). */
extern void (*xm__drain_hook)(xm_heap *h);
#endif

/* Tells valgrind (when running under it) that code bytes changed. */
static inline void xm__valgrind_discard(xm_heap *h, void *p, size_t n)
{
    if (h->valgrind)
        xm__valgrind_discard_slow(p, n);
}

/* check.c: the debug level 3 walk: aborts with a message if a structure is
 * inconsistent. xm__heap_check takes every lock itself. */
void xm__check_locked(xm_heap *h);
void xm__heap_check(xm_heap *h);

/* sym.c: xm_name's sinks. init reads the environment into h->flags; the
 * hooks run with the block's arena locked, only when h->nsyms != 0. */
#define XM__SYM_FLAGS (XM_PERF_MAP | XM_PERF_JITDUMP | XM_GDB)
void xm__sym_init(xm_heap *h);
void xm__sym_published(xm_heap *h, uintptr_t rx);
void xm__sym_freed(xm_heap *h, uintptr_t rx);
void xm__sym_destroy(xm_heap *h);
void xm__sym_fork_prepare(void);
void xm__sym_fork_parent(void);
void xm__sym_fork_child(void);
static inline bool xm__sym_any(xm_heap *h)
{
    return atomic_load_explicit(&h->nsyms, memory_order_relaxed) != 0;
}

/* live.c: whether an A64 instruction may be replaced while it runs (B, BL,
 * NOP, ISB, BRK, SVC, HVC, SMC); every architecture has it, for tests. */
int xm__a64_hotpatch_safe(uint32_t insn);

/* fork.c */
void xm__fork_register(xm_heap *h);
/* live.c: the live-patch lock across fork (fork.c's lock order). */
void xm__live_fork_prepare(void);
void xm__live_fork_parent(void);
void xm__live_fork_child(void);
void xm__fork_unregister(xm_heap *h);
size_t xm__heap_destroy_all(void); /* tests: after a failed test */

#endif
