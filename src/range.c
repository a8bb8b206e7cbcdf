/* SPDX-License-Identifier: MIT */
/*
 * range.c: the free-range set and the purge (quarantine release).
 *
 * Page runs not in a pack are nodes of a pool (h->fr, sized for the worst
 * case at heap creation and touched as used, so taking and putting never
 * allocate and never fail). Each run is in one state: NONE (reserve only,
 * no memory), CODE/DATA (DUAL: executable or read-only view mapped, every
 * byte a trap), RW (FLIP: anonymous RW pages, never executable). Mapped
 * runs are both the reuse cache (the kernel's execmem ROX cache) and the
 * quarantine.
 *
 * Everything is O(1) in the number of runs (the kernel's vmap_area tree
 * gets O(log n) from an augmented rbtree; this gets O(1) from TLSF):
 *   - a run's node is found from its first and its last page (h->frtag), so
 *     a put coalesces with same-state neighbours in O(1);
 *   - runs are on lists by state and length class (4 classes per power of
 *     two) with a bitmask of non-empty classes: a take is a good fit found
 *     with a ctz, preferring a run already mapped in the wanted state (no
 *     system call) over fresh reserve; a large block that no mapped run
 *     fits takes a shorter one together with the released (NONE) pages
 *     beside it, if they make up the rest (only those are mapped afresh:
 *     mixed_fit, a bounded look at the longest runs);
 *   - mapped runs are also on an age list: a purge releases the oldest.
 *
 * Purge: releases a mapped run together with its contiguous mapped
 * neighbours (whatever their state) with one call that drops every right on
 * the executable view (a fresh PROT_NONE mapping) and one that gives the
 * memfd pages back (fallocate PUNCH_HOLE, which also unmaps them from the
 * writable alias). Runs that never held published bytes have no present
 * executable PTEs: their release is not a revocation. A span of at most
 * XM__FLUSH_CEILING pages (flushed from the TLB page by page) takes the
 * next mapped run across a released gap along (bridge). The automatic
 * purge (when the quarantine, with the arenas' kept empty packs, passes
 * the lazy bound) is bounded: it releases the oldest runs until the
 * quarantine is back under 3/4 of the bound, trying at most
 * XM__PURGE_STEP runs, and lets short spans wait while longer ones can go
 * (a second pass of as many takes them when needed: purge_until);
 * xm_purge releases everything, oldest first.
 *
 * Lazy bound: lazy_limit if the user set one; by default the larger of
 * 8 MiB and a quarter of the peak of the mapped bytes in use (peak_note:
 * up with the bytes in use, down by each allocation from the free ranges;
 * with the bytes in use instead, a heap freeing 1,600 blocks of 64 KiB in
 * random order released 892 runs, with the peak 471: the freed runs wait
 * for their neighbours). Trade-off: a heap of
 * large blocks needs room for the holes between them to reuse freed pages
 * without system calls. Measured: random churn of 64 KiB-1 MiB blocks
 * with 1,000 live (about 560 MB) settles, best fit, with about 90 MB
 * (16%) of free mapped pages and then makes no system call; with a bound
 * of an eighth it purged and mapped afresh, 270-340 system calls per 1000
 * operations. A quarter keeps resident memory within 1.25x of what is in
 * use.
 *
 * Everything here runs under the heap lock (never an arena's: xm_purge
 * retires the arenas' empty packs first, one arena at a time).
 */
#include "internal.h"

#include <string.h>

/* Runs released per automatic purge at most (bounded work per call). */
#define XM__PURGE_STEP 64u

static size_t range_bytes(uint32_t npages)
{
    return (size_t)npages << XM__PAGE_SHIFT;
}

static bool mapped(int state) { return state != XM__FR_NONE; }

/* ---- classes ------------------------------------------------------------ */

static uint32_t fr_class(uint32_t n)
{
    if (n < 4)
        return n;
    uint32_t fl = 31u - (uint32_t)__builtin_clz(n);
    return fl * 4 + ((n >> (fl - 2)) & 3);
}

static uint32_t fr_class_low(uint32_t c)
{
    if (c < 4)
        return c;
    return (4 + (c & 3)) << (c / 4 - 2);
}

static uint32_t run_after(const xm_heap *h, uint32_t end);
static uint32_t run_before(const xm_heap *h, uint32_t first);

/* ---- the node pool ------------------------------------------------------ */

size_t xm__range_pool_size(uint32_t npages) { return (size_t)npages / 2 + 2; }

static uint32_t node_new(xm_heap *h)
{
    uint32_t t = h->frfree;
    if (t) {
        h->frfree = h->fr[t].cnext;
        return t;
    }
    XM_ASSERT(h->frused + 1 < h->frcap);
    return ++h->frused;
}

static void node_free(xm_heap *h, uint32_t t)
{
    /* a stale tag naming a free node must match no page */
    h->fr[t].page = UINT32_MAX;
    h->fr[t].npages = 0;
    h->fr[t].cnext = h->frfree;
    h->frfree = t;
}

static void class_add(xm_heap *h, uint32_t t)
{
    xm__frange *r = &h->fr[t];
    uint32_t c = fr_class(r->npages);
    r->rclass = (uint8_t)c;
    r->cprev = 0;
    r->cnext = h->frhead[r->state][c];
    if (r->cnext)
        h->fr[r->cnext].cprev = t;
    h->frhead[r->state][c] = t;
    h->frmask[r->state][c >> 6] |= 1ull << (c & 63);
}

static void class_del(xm_heap *h, uint32_t t)
{
    xm__frange *r = &h->fr[t];
    uint32_t c = r->rclass;
    if (r->cprev)
        h->fr[r->cprev].cnext = r->cnext;
    else
        h->frhead[r->state][c] = r->cnext;
    if (r->cnext)
        h->fr[r->cnext].cprev = r->cprev;
    if (!h->frhead[r->state][c])
        h->frmask[r->state][c >> 6] &= ~(1ull << (c & 63));
}

static void age_add(xm_heap *h, uint32_t t)
{
    xm__frange *r = &h->fr[t];
    r->anext = 0;
    r->aprev = h->agetail;
    if (h->agetail)
        h->fr[h->agetail].anext = t;
    else
        h->agehead = t;
    h->agetail = t;
    h->naged++;
}

static void age_del(xm_heap *h, uint32_t t)
{
    xm__frange *r = &h->fr[t];
    if (r->aprev)
        h->fr[r->aprev].anext = r->anext;
    else
        h->agehead = r->anext;
    if (r->anext)
        h->fr[r->anext].aprev = r->aprev;
    else
        h->agetail = r->aprev;
    h->naged--;
}

/* Files node t (page, npages, state set) in the set: tags and lists. */
static void run_insert(xm_heap *h, uint32_t t)
{
    xm__frange *r = &h->fr[t];
    uint32_t last = r->page + r->npages - 1;
    h->ps[r->page].frtag = t;
    /* the reserve's last page is nobody's left neighbour: no end tag there
       (a new heap's one run would touch the far end of the page state) */
    if (last + 1 < h->npages)
        h->ps[last].frtag = t;
    class_add(h, t);
    if (mapped(r->state))
        age_add(h, t);
    h->nfr++;
}

/* Takes node t out of the set (it stays allocated). */
static void run_remove(xm_heap *h, uint32_t t)
{
    xm__frange *r = &h->fr[t];
    class_del(h, t);
    if (mapped(r->state))
        age_del(h, t);
    if (h->ps[r->page].frtag == t)
        h->ps[r->page].frtag = 0;
    uint32_t last = r->page + r->npages - 1;
    if (last + 1 < h->npages && h->ps[last].frtag == t)
        h->ps[last].frtag = 0;
    h->nfr--;
}

/* The run that ends at page `last` / starts at page `first`, or 0. */
static uint32_t run_ending(const xm_heap *h, uint32_t last)
{
    uint32_t t = h->ps[last].frtag;
    return t && h->fr[t].npages && h->fr[t].page + h->fr[t].npages - 1 == last ? t : 0;
}

static uint32_t run_starting(const xm_heap *h, uint32_t first)
{
    uint32_t t = h->ps[first].frtag;
    return t && h->fr[t].page == first ? t : 0;
}

void xm__range_init(xm_heap *h)
{
    memset(h->frhead, 0, sizeof h->frhead);
    memset(h->frmask, 0, sizeof h->frmask);
    h->agehead = h->agetail = 0;
    h->naged = 0;
    h->frfree = 0;
    h->frused = 0;
    h->nfr = 0;
    uint32_t t = node_new(h);
    h->fr[t] = (xm__frange){0, h->npages, XM__FR_NONE, 0, 0, 0, 0, 0, 0};
    run_insert(h, t);
    h->ps_hw = 1;
}

/* The smallest run of at least n pages among the first XM__FIT_SCAN of
 * class list c, or 0. */
#define XM__FIT_SCAN 32u
static uint32_t best_in_class(const xm_heap *h, int state, uint32_t c, uint32_t n)
{
    uint32_t best = 0, k = 0;
    for (uint32_t t = h->frhead[state][c]; t && k < XM__FIT_SCAN; t = h->fr[t].cnext, k++) {
        uint32_t len = h->fr[t].npages;
        if (len >= n && (!best || len < h->fr[best].npages)) {
            best = t;
            if (len == n)
                break;
        }
    }
    return best;
}

/* A run of `state` with at least n pages, or 0: best fit within n's own
 * class and, failing that, within the lowest class whose every run fits
 * (each a bounded look at a class list; the class by one ctz). Mapped
 * holes left by large blocks are what later blocks reuse: the closer the
 * fit, the fewer slivers wait in the quarantine. */
static uint32_t find_fit(const xm_heap *h, int state, uint32_t n)
{
    uint32_t c = fr_class(n);
    uint32_t t = best_in_class(h, state, c, n);
    if (t)
        return t;
    if (fr_class_low(c) < n)
        c++; /* every run of the classes from here on fits */
    for (uint32_t w = c >> 6; w < 2; w++) {
        uint64_t m = h->frmask[state][w];
        if (w == c >> 6)
            m &= ~0ull << (c & 63);
        if (m)
            return best_in_class(h, state, w * 64 + (uint32_t)__builtin_ctzll(m), n);
    }
    return 0;
}

/* Takes the first npages pages of run t. */
static void take_front(xm_heap *h, uint32_t t, uint32_t npages)
{
    xm__frange *r = &h->fr[t];
    if (mapped(r->state))
        h->quarantine_bytes -= range_bytes(npages);
    if (r->npages == npages) {
        run_remove(h, t);
        node_free(h, t);
        return;
    }
    /* the front goes; the rest keeps the node (and its age) */
    class_del(h, t);
    h->ps[r->page].frtag = 0;
    r->page += npages;
    r->npages -= npages;
    h->ps[r->page].frtag = t;
    class_add(h, t);
}

/* Pages to map at once when the heap grows: a sixteenth of what is mapped
 * and in use, at most 128 KiB (one small pack: a chunk that is not a
 * multiple of it leaves runs no pack fits) and an eighth of the lazy bound
 * (the rest is mapped free, trap-filled, ready for the next allocations).
 * Trade-off: fewer system calls while a heap grows, against pages mapped
 * ahead of use and the time of the one call that maps them: this VM
 * charges 6-15 us for the first touch of a fresh page, so 4 MiB chunks
 * made single allocations of 2-4 ms, 512 KiB ones 1.3-1.5 ms (the slowest
 * operation of a 1-4 KiB x 100,000 churn, /tmp/xl/lat2.c), 128 KiB ones
 * 370-430 us; that churn then makes 0.9 system calls per 1000 operations
 * while its heap creeps up (0.4 with 256 KiB chunks, whose slowest took up
 * to 980 us). DUAL only. */
static uint32_t grow_chunk(const xm_heap *h, uint32_t npages)
{
    if (h->backend == XM_BACKEND_FLIP)
        return npages; /* a system call per block anyway; and at the map
                          count limit, pages mapped ahead could not be
                          released */
    size_t res = atomic_load_explicit(&h->resident_bytes, memory_order_relaxed);
    size_t used = res > h->quarantine_bytes ? res - h->quarantine_bytes : 0;
    size_t want = used / 16, cap = xm__lazy_bound(h) / 8;
    want = want < cap ? want : cap;
    want = want < ((size_t)128 << 10) ? want : ((size_t)128 << 10);
    uint32_t n = (uint32_t)(want >> XM__PAGE_SHIFT);
    n -= n % XM__PACK_PAGES; /* whole packs: 0 or one */
    return n > npages ? n : npages;
}

static size_t used_bytes(const xm_heap *h)
{
    size_t res = atomic_load_explicit(&h->resident_bytes, memory_order_relaxed);
    size_t idle = h->quarantine_bytes + atomic_load_explicit(&h->kept_bytes, memory_order_relaxed);
    return res > idle ? res - idle : 0;
}

/* The peak follows the bytes in use up at once, and down by what is
 * allocated from the free ranges (`worn` bytes): a heap that frees most of
 * its blocks keeps its bound until it allocates again. */
static void peak_note(xm_heap *h, size_t worn)
{
    size_t used = used_bytes(h);
    if (h->peak_used > used)
        h->peak_used -= h->peak_used - used < worn ? h->peak_used - used : worn;
    if (h->peak_used < used)
        h->peak_used = used;
}

/* Pages [.., end) are taken: the pages' state up to end and the tag of the
 * run that follows (meta.c). */
static void hw_note(xm_heap *h, uint32_t end)
{
    if (end + 1 > h->ps_hw)
        h->ps_hw = end + 1 < h->npages ? end + 1 : h->npages;
}

/* Takes the last npages pages of NONE run t. */
static void take_back(xm_heap *h, uint32_t t, uint32_t npages)
{
    xm__frange *r = &h->fr[t];
    XM_ASSERT(!mapped(r->state) && npages <= r->npages);
    if (r->npages == npages) {
        run_remove(h, t);
        node_free(h, t);
        return;
    }
    /* the back goes; the front keeps the node */
    class_del(h, t);
    uint32_t last = r->page + r->npages - 1;
    if (last + 1 < h->npages && h->ps[last].frtag == t)
        h->ps[last].frtag = 0;
    r->npages -= npages;
    last = r->page + r->npages - 1;
    if (last + 1 < h->npages)
        h->ps[last].frtag = t;
    class_add(h, t);
}

/* When no mapped run of `want` has n pages: one shorter than n that the
 * NONE run beside it completes to n, the longest such among the first
 * XM__FIT_SCAN runs of the highest classes (a bounded look, from the
 * longest runs down); 0 if none. *left: the NONE run is on its left. */
static uint32_t mixed_fit(const xm_heap *h, int want, uint32_t n, bool *left)
{
    uint32_t best = 0, k = 0;
    for (int w = 1; w >= 0; w--) {
        for (uint64_t m = h->frmask[want][w]; m;) {
            uint32_t c = (uint32_t)w * 64 + 63 - (uint32_t)__builtin_clzll(m);
            m &= ~(1ull << (c & 63));
            for (uint32_t t = h->frhead[want][c]; t && k < XM__FIT_SCAN;
                 t = h->fr[t].cnext, k++) {
                uint32_t len = h->fr[t].npages, first = h->fr[t].page, nb;
                if (len >= n || (best && len <= h->fr[best].npages))
                    continue;
                if ((nb = run_after(h, first + len)) && !mapped(h->fr[nb].state) &&
                    len + h->fr[nb].npages >= n) {
                    best = t;
                    *left = false;
                } else if ((nb = run_before(h, first)) && !mapped(h->fr[nb].state) &&
                           len + h->fr[nb].npages >= n) {
                    best = t;
                    *left = true;
                }
            }
            if (best || k >= XM__FIT_SCAN)
                return best;
        }
    }
    return 0;
}

int xm__range_take(xm_heap *h, uint32_t npages, uint32_t slack, int want,
                   uint32_t *page, int *state, int *raised, uint32_t *taken,
                   uint32_t *fresh_at, uint32_t *fresh_n)
{
    uint32_t t = find_fit(h, want, npages), n = npages;
    bool left = false;
    if (fresh_n)
        *fresh_n = 0;
    /* Only with the quarantine past half the lazy bound, where fresh
       pages would make purges: below it, a heap whose blocks find no hole
       grows by whole blocks, and the holes they leave settle it (64 KiB-1
       MiB x 1,000: 0.5 system calls per 1000 operations, 1.2 with mixed
       takes at every miss, each a smaller growth). Not while the heap
       grows by chunks larger than the block: those serve the next blocks
       too, and a mixed take would map a few pages per block. */
    if (!t && fresh_n && h->quarantine_bytes >= xm__lazy_bound(h) / 2 &&
        grow_chunk(h, npages) <= npages && (t = mixed_fit(h, want, npages, &left))) {
        /* the mapped run and, beside it, the NONE pages that make up the
           rest: only those are fresh */
        uint32_t len = h->fr[t].npages, first = h->fr[t].page;
        if (left) {
            take_back(h, run_before(h, first), npages - len);
            first -= npages - len;
            *fresh_at = 0;
        } else {
            take_front(h, run_after(h, first + len), npages - len);
            *fresh_at = len;
        }
        *fresh_n = npages - len;
        *state = h->fr[t].state;
        *raised = h->fr[t].raised;
        take_front(h, t, len);
        hw_note(h, first + npages);
        *page = first;
        *taken = npages;
        peak_note(h, range_bytes(npages));
        return 0;
    }
    if (t && h->fr[t].npages - npages <= slack)
        n = h->fr[t].npages; /* no sliver left behind */
    if (!t) {
        uint32_t chunk = grow_chunk(h, npages);
        if (chunk > npages && (t = find_fit(h, XM__FR_NONE, chunk)))
            n = chunk;
        else
            t = find_fit(h, XM__FR_NONE, npages);
    }
    if (!t)
        return -1;
    xm__frange *r = &h->fr[t];
    hw_note(h, r->page + n);
    *page = r->page;
    *state = r->state;
    *raised = r->raised;
    *taken = n;
    take_front(h, t, n);
    peak_note(h, range_bytes(n));
    return 0;
}

void xm__range_put(xm_heap *h, uint32_t page, uint32_t npages, int state,
                   int raised)
{
    XM_ASSERT(npages > 0 && page + npages <= h->npages);
    if (mapped(state))
        h->quarantine_bytes += range_bytes(npages);
    uint32_t l = page > 0 ? run_ending(h, page - 1) : 0;
    uint32_t r = page + npages < h->npages ? run_starting(h, page + npages) : 0;
    if (l && h->fr[l].state != state)
        l = 0;
    if (r && h->fr[r].state != state)
        r = 0;
    uint32_t t;
    if (l) {
        t = l;
        run_remove(h, l);
        h->fr[t].npages += npages;
        h->fr[t].raised |= (uint8_t)raised;
    } else {
        t = node_new(h);
        h->fr[t] = (xm__frange){page, npages, (uint8_t)state, (uint8_t)raised, 0, 0, 0, 0, 0};
    }
    if (r) {
        run_remove(h, r);
        h->fr[t].npages += h->fr[r].npages;
        h->fr[t].raised |= h->fr[r].raised;
        node_free(h, r);
    }
    run_insert(h, t);
}

int xm__range_at(const xm_heap *h, uint32_t page, uint32_t *npages, int *state)
{
    uint32_t t = run_starting(h, page);
    if (!t)
        return -1;
    *npages = h->fr[t].npages;
    *state = h->fr[t].state;
    return 0;
}

int xm__file_release(xm_heap *h, uint64_t off, size_t len)
{
    if (h->alias) /* DUAL without XM_STRICT keeps no writable descriptor */
        return xm__os_remove(&h->osc, h->alias + off, len);
    return xm__os_punch(&h->osc, h->fd, off, len);
}

/* Releases pages [page, page+n): mapped free runs and, between them,
 * `mapped` of the n pages (the others are NONE runs the span bridges:
 * already without rights or memory, where both calls change nothing). On
 * failure nothing of the runs changed state (the caller leaves them
 * mapped). */
static xm_result purge_run(xm_heap *h, uint32_t page, uint32_t n, uint32_t mapped,
                           int raised, bool all_dead)
{
    void *addr = (void *)xm__page_addr(h, page);
    size_t len = range_bytes(n);
    int r = xm__os_map_anon_at(&h->osc, addr, len, XM__P_NONE);
    if (r && all_dead) {
        /* FLIP at vm.max_map_count: a new mapping is refused, but taking
           every right from whole VMAs needs none (and merges them with the
           reserve around). The pages stay allocated until the range is
           mapped fresh again; what matters is that they no longer run.
           Only for XM__FR_DEAD runs: mprotect may fail half-way, which is
           harmless for pages never handed out, not for a quarantine that
           would then hand out pages without the rights it records. */
        r = xm__os_protect(&h->osc, addr, len, XM__P_NONE);
    }
    if (r)
        return xm__os_result(r, false);
    if (raised)
        h->osc.revocations++;
    if (h->shadow) /* XM_INPLACE copies of these pages (inplace.c) */
        (void)xm__shadow_release(h, (uintptr_t)addr, len);
    if (h->alias || h->fd >= 0) {
        /* The memory goes back to the system. If this fails the pages stay
           in the file (no right anywhere but the alias) until destroy. */
        if (xm__file_release(h, (uint64_t)page << XM__PAGE_SHIFT, len) == 0 &&
            raised && h->alias)
            h->osc.revocations++; /* the alias PTEs went away too */
    }
    atomic_fetch_sub(&h->resident_bytes, range_bytes(mapped));
    h->purge_runs++;
    return XM_OK;
}

/* Pages up to which Linux flushes a range from the TLB page by page
 * (tlb_single_page_flush_ceiling, 33 by default); above it, all at once.
 * Where a page flush is a hypercall (this VM) the difference is large: a
 * MADV_REMOVE of 32 written pages takes 106-115 us, of 34 pages 20-23 us
 * (/tmp/xl/mr.c, 200 runs each). */
#define XM__FLUSH_CEILING 33u
/* The longest NONE run a purge bridges to reach the next mapped run. */
#define XM__PURGE_GAP 256u

/* The run right after page end - 1 / right before page first, or 0. */
static uint32_t run_after(const xm_heap *h, uint32_t end)
{
    return end < h->npages ? run_starting(h, end) : 0;
}
static uint32_t run_before(const xm_heap *h, uint32_t first)
{
    return first > 0 ? run_ending(h, first - 1) : 0;
}

/* A run a bridge may take: mapped, and not XM__FR_DEAD (whose purge may
 * need runs of its own). */
static bool bridgeable(const xm_heap *h, uint32_t t)
{
    return t && mapped(h->fr[t].state) && h->fr[t].state != XM__FR_DEAD;
}

/* From the span [*first, *end), one step across a NONE run of at most
 * XM__PURGE_GAP pages to the bridgeable run beyond it, on the right or
 * else on the left; with its contiguous bridgeable neighbours. Not for
 * FLIP (its purge may fall back to mprotect, which needs runs of its
 * own). Returns the mapped pages added (0: no step). */
static uint32_t bridge(xm_heap *h, uint32_t *first, uint32_t *end, int *raised)
{
    uint32_t g, m, added = 0;
    bool right = (g = run_after(h, *end)) && !mapped(h->fr[g].state) &&
                 h->fr[g].npages <= XM__PURGE_GAP &&
                 bridgeable(h, run_after(h, *end + h->fr[g].npages));
    if (!right && !((g = run_before(h, *first)) && !mapped(h->fr[g].state) &&
                    h->fr[g].npages <= XM__PURGE_GAP &&
                    bridgeable(h, run_before(h, h->fr[g].page))))
        return 0;
    if (right)
        *end += h->fr[g].npages;
    else
        *first = h->fr[g].page;
    while (bridgeable(h, m = right ? run_after(h, *end) : run_before(h, *first))) {
        if (right)
            *end += h->fr[m].npages;
        else
            *first = h->fr[m].page;
        added += h->fr[m].npages;
        *raised |= h->fr[m].raised;
    }
    return added;
}

/* Releases the oldest mapped run with its contiguous mapped neighbours.
 * While the span is at most XM__FLUSH_CEILING pages (a flush page by
 * page), it bridges NONE runs to further mapped runs: one pair of calls
 * and one flush of everything for them all. A span still that short is
 * left for later if `patient` (moved to the young end, as is a run whose
 * release failed): its neighbours may be freed meanwhile, and the next
 * runs may be cheaper per page. *released says whether it went. */
static xm_result purge_oldest(xm_heap *h, bool patient, bool *released)
{
    *released = false;
    uint32_t t = h->agehead;
    uint32_t first = h->fr[t].page, end = first + h->fr[t].npages;
    uint32_t l, r, dead = h->fr[t].state == XM__FR_DEAD ? h->fr[t].npages : 0;
    int raised = h->fr[t].raised;
    /* the span: left and right while the neighbour is a mapped run; a
       run of XM__FR_DEAD pages alone (its fallback, mprotect, is only for
       such runs: see purge_run) */
    bool alone = dead != 0;
    while (!alone && first > 0 && (l = run_ending(h, first - 1)) && mapped(h->fr[l].state)) {
        first = h->fr[l].page;
        raised |= h->fr[l].raised;
        dead += h->fr[l].state == XM__FR_DEAD ? h->fr[l].npages : 0;
    }
    while (!alone && end < h->npages && (r = run_starting(h, end)) &&
           mapped(h->fr[r].state)) {
        end += h->fr[r].npages;
        raised |= h->fr[r].raised;
        dead += h->fr[r].state == XM__FR_DEAD ? h->fr[r].npages : 0;
    }
    uint32_t nmapped = end - first, step;
    while (!dead && h->backend != XM_BACKEND_FLIP && nmapped <= XM__FLUSH_CEILING &&
           (step = bridge(h, &first, &end, &raised)) != 0)
        nmapped += step;
    xm_result res = patient && nmapped <= XM__FLUSH_CEILING
                        ? XM_OK
                        : purge_run(h, first, end - first, nmapped, raised, dead == end - first);
    if (res != XM_OK || (patient && nmapped <= XM__FLUSH_CEILING)) {
        age_del(h, t);
        age_add(h, t);
        return res;
    }
    for (uint32_t pg = first; pg < end;) {
        uint32_t u = run_starting(h, pg);
        XM_ASSERT(u);
        pg += h->fr[u].npages;
        run_remove(h, u);
        node_free(h, u);
    }
    h->quarantine_bytes -= range_bytes(nmapped);
    h->revoke_pending -= dead;
    xm__range_put(h, first, end - first, XM__FR_NONE, 0);
    *released = true;
    return XM_OK;
}

/* Purges until the quarantine is at most `target` bytes or `steps` runs
 * were tried. If `patient` (below SIZE_MAX), short spans first wait
 * (purge_oldest), and a second pass takes them only if the first released
 * nothing or left the quarantine above `patient` bytes: a call that finds
 * the quarantine over its target releases something, and leaves it at
 * most at `patient` unless the steps (at most 2 x steps) run out.
 * Measured (100,000 blocks freed in shuffled order, three runs; bridging
 * on in both): 64 B-1 KiB 579-599 -> 421-459 ns per free, 498-510 ->
 * 356-388 system calls (/tmp/xl/bf2.c); 1-4 KiB 2.46-2.53 -> 1.94-1.98 us
 * (/tmp/xl/batch2.c). */
static xm_result purge_until(xm_heap *h, size_t target, uint32_t steps, size_t patient)
{
    xm_result res = XM_OK;
    bool any = false, released;
    for (int pass = patient != SIZE_MAX ? 0 : 1; pass < 2; pass++) {
        if (pass == 1 && any && h->quarantine_bytes <= patient)
            break;
        /* the first pass looks at each run once at most: the runs it
           skips go to the young end in their order, the oldest first
           again for the second */
        uint32_t n = pass == 0 && h->naged < steps ? h->naged : steps;
        while (h->agehead && h->quarantine_bytes > target && n--) {
            xm_result r = purge_oldest(h, pass == 0, &released);
            any |= released;
            if (r != XM_OK)
                res = r;
        }
    }
    h->purges++;
    return res;
}

xm_result xm__purge_locked(xm_heap *h)
{
    /* each step releases its run or, failing, moves it to the young end:
       one step per mapped run tries every run once */
    return purge_until(h, 0, h->naged, SIZE_MAX);
}

size_t xm__lazy_bound(const xm_heap *h)
{
    if (h->lazy_limit)
        return h->lazy_limit;
    size_t used = used_bytes(h);
    used = used > h->peak_used ? used : h->peak_used;
    return used / 4 > XM__DEFAULT_LAZY ? used / 4 : XM__DEFAULT_LAZY;
}

void xm__maybe_purge_locked(xm_heap *h)
{
    /* freed FLIP code that still has its rights (XM__FR_DEAD: a free could
       not drop them): every release retries, all of it */
    if (h->revoke_pending) {
        (void)xm__purge_locked(h);
        return;
    }
    if (h->lazy_limit == SIZE_MAX)
        return;
    peak_note(h, 0);
    /* the arenas' kept empty packs count too (what xm_heap_stats calls the
       quarantine), though only xm_purge releases them; at most half the
       bound of them, or a small lazy_limit (8 arenas may keep 2 MiB)
       would purge every run as it came: 1000 alloc + publish + free of
       40 KiB with a 256 KiB bound and two kept packs made 4,000 system
       calls instead of 2 (review, /tmp/rev5/kept.c) */
    size_t bound = xm__lazy_bound(h), target = bound - bound / 4;
    size_t kept = atomic_load_explicit(&h->kept_bytes, memory_order_relaxed);
    kept = kept < bound / 2 ? kept : bound / 2;
    if (h->quarantine_bytes + kept > bound) /* failure: next time */
        (void)purge_until(h, target - kept, XM__PURGE_STEP, bound - kept);
}

/* Debug level 3: the set is consistent; returns its mapped bytes. Every
 * page outside it must be in a pack (the caller checks that side). */
size_t xm__range_check(const xm_heap *h)
{
    size_t q = 0, runs = 0, aged = 0, dead = 0;
    for (uint32_t pg = 0; pg < h->npages;) {
        xm__pack *p = atomic_load(&h->ps[pg].pm);
        if (p) {
            pg = p->page + p->npages;
            continue;
        }
        uint32_t t = run_starting(h, pg);
        XM_ASSERT(t && t <= h->frused);
        const xm__frange *r = &h->fr[t];
        XM_ASSERT(r->npages > 0 && r->page + r->npages <= h->npages);
        XM_ASSERT(r->page + r->npages == h->npages ||
                  run_ending(h, r->page + r->npages - 1) == t);
        XM_ASSERT(r->rclass == fr_class(r->npages));
        /* page by page for mapped runs; the reserve's NONE runs can be
           huge, and walking them after every call of a check-debug run
           made the walk the test's bottleneck */
        for (uint32_t k = 0; k < r->npages; k++) {
            if (!mapped(r->state) && k == 1 && r->npages > 2)
                k = r->npages - 1;
            XM_ASSERT(atomic_load(&h->ps[r->page + k].pm) == NULL);
            if (k && k + 1 < r->npages)
                XM_ASSERT(h->ps[r->page + k].frtag == 0);
        }
        /* maximal: no same-state neighbour run */
        if (r->page > 0) {
            uint32_t l = run_ending(h, r->page - 1);
            XM_ASSERT(!l || h->fr[l].state != r->state);
        }
        bool on = false;
        for (uint32_t u = h->frhead[r->state][r->rclass]; u && !on; u = h->fr[u].cnext)
            on = u == t;
        XM_ASSERT(on);
        if (mapped(r->state))
            q += range_bytes(r->npages);
        if (r->state == XM__FR_DEAD)
            dead += r->npages;
        runs++;
        pg += r->npages;
    }
    for (uint32_t u = h->agehead; u; u = h->fr[u].anext) {
        XM_ASSERT(mapped(h->fr[u].state));
        aged++;
    }
    size_t nmapped = 0;
    for (int s = 0; s < XM__FR_STATES; s++)
        for (uint32_t c = 0; c < XM__FR_CLASSES; c++) {
            XM_ASSERT(!!h->frhead[s][c] == !!((h->frmask[s][c >> 6] >> (c & 63)) & 1));
            for (uint32_t u = h->frhead[s][c]; u; u = h->fr[u].cnext)
                nmapped += mapped(s);
        }
    XM_ASSERT(runs == h->nfr && aged == nmapped && aged == h->naged &&
              q == h->quarantine_bytes);
    XM_ASSERT(dead == h->revoke_pending);
    return q;
}
