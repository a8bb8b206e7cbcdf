/* SPDX-License-Identifier: MIT */
/*
 * pack.c: blocks. Small blocks are runs of 64-byte granules inside shared
 * packs (bpf_prog_pack); large blocks, and every FLIP block, are packs of
 * their own made of whole pages.
 *
 * DUAL: a pack's executable view is mapped once, filled with traps. A new
 * block's bytes at rx stay traps until xm_publish copies its staging buffer
 * (ordinary memory, the `rw` the caller writes) into the file, through the
 * alias or pwrite() under XM_STRICT. So an unpublished block cannot run, and
 * freeing it writes nothing and changes no right. Freeing a published block
 * refills its bytes with traps; its pages' rights are dropped later, by a
 * purge, once the whole pack is free.
 * FLIP: rw == rx; pages are RW until publish turns them RX (or R); freeing a
 * published block replaces its pages at once with an inaccessible mapping.
 *
 * A failed system call leaves the block exactly as it was.
 */
#include "internal.h"
#include "arch.h"

#include <errno.h>
#include <string.h>

/* ---- bitmaps ---------------------------------------------------------- */

int xm__bit_get(const uint64_t *bm, uint32_t i)
{
    return (int)((XM__BW(bm, i >> 6) >> (i & 63)) & 1u);
}

uint64_t xm__abit_word(const _Atomic uint64_t *bm, uint32_t i)
{
    return atomic_load_explicit(&XM__BW(bm, i >> 6), memory_order_acquire);
}

static void bits_set(uint64_t *bm, uint32_t i, uint32_t n, bool on)
{
    uint32_t b = i & 63;
    if (b + n <= 64) { /* the common case: one word */
        uint64_t m = (n == 64 ? ~0ull : ((1ull << n) - 1)) << b;
        XM__BW(bm, i >> 6) = on ? XM__BW(bm, i >> 6) | m : XM__BW(bm, i >> 6) & ~m;
        return;
    }
    while (n) {
        uint32_t k = 64 - b < n ? 64 - b : n;
        uint64_t m = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
        if (on)
            XM__BW(bm, i >> 6) |= m;
        else
            XM__BW(bm, i >> 6) &= ~m;
        i += k;
        n -= k;
        b = i & 63;
    }
}

/* First index in [i, end) whose bit equals `val`, or end. */
static uint32_t bits_next(const uint64_t *bm, uint32_t i, uint32_t end, int val)
{
    while (i < end) {
        uint64_t w = XM__BW(bm, i >> 6);
        if (!val)
            w = ~w;
        w &= ~0ull << (i & 63);
        if (w) {
            uint32_t r = (i & ~63u) + (uint32_t)__builtin_ctzll(w);
            return r < end ? r : end;
        }
        i = (i & ~63u) + 64;
    }
    return end;
}

/* ---- the free-run index -------------------------------------------------
 * Every maximal run of free granules of a small pack has its first granule
 * marked in runs[bin of its length]. Allocation takes the smallest bin that
 * fits (best fit; one ctz for blocks up to 1 KiB), splits the run and files
 * the rest; a free merges with the free runs on either side (found through
 * `used`) and files the merged run. Lengths are read from `used`, so the
 * index holds starts only and is kept exact (checked at debug level 3). */

static uint32_t run_bin(uint32_t len) { return len <= 16 ? len - 1 : 16; }

/* Length of the free run that starts at s: kept at its first granule. */
static uint32_t run_len(const xm__pack *p, uint32_t s)
{
    return p->x->rlen[s];
}

static void run_add(xm__pack *p, uint32_t s, uint32_t len)
{
    if (!len)
        return;
    uint32_t b = run_bin(len);
    p->x->rlen[s] = (uint16_t)len;
    p->x->runs[b][s >> 6] |= 1ull << (s & 63);
    p->x->binwords[b] |= 1u << (s >> 6);
    p->x->bincount[b]++;
    p->binmask |= 1u << b;
}

static void run_del(xm__pack *p, uint32_t s, uint32_t len)
{
    uint32_t b = run_bin(len);
    if (!(p->x->runs[b][s >> 6] &= ~(1ull << (s & 63))))
        p->x->binwords[b] &= ~(1u << (s >> 6));
    if (--p->x->bincount[b] == 0)
        p->binmask &= ~(1u << b);
}

/* Start of the free run that ends just before granule g (g-1 is free). */
static uint32_t run_start_before(const uint64_t *bm, uint32_t g)
{
    uint32_t s = g;
    while (s > 0) {
        uint64_t w = XM__BW(bm, (s - 1) >> 6) & (~0ull >> (63 - ((s - 1) & 63)));
        if (w)
            return ((s - 1) & ~63u) + 64u - (uint32_t)__builtin_clzll(w);
        s = (s - 1) & ~63u;
    }
    return 0;
}

uint32_t xm__pack_longest_run(const xm__pack *p)
{
    if (!p->binmask)
        return 0;
    uint32_t b = 31u - (uint32_t)__builtin_clz(p->binmask);
    if (b < 16)
        return b + 1;
    uint32_t best = 0;
    for (uint32_t ws = p->x->binwords[16]; ws; ws &= ws - 1) {
        uint32_t w = (uint32_t)__builtin_ctz(ws);
        for (uint64_t bits = p->x->runs[16][w]; bits; bits &= bits - 1) {
            uint32_t l = run_len(p, w * 64 + (uint32_t)__builtin_ctzll(bits));
            best = l > best ? l : best;
        }
    }
    return best;
}

/* Takes n granules aligned to ag granules from the best-fitting free run
 * and marks them used; returns the first granule or -1. Bounded by the
 * pack: exact bins up to 16 granules (one ctz), the longer runs scanned
 * for the best fit. Keeps maxrun (the caller re-files the pack). */
static int64_t pack_take(xm__pack *p, uint32_t n, uint32_t ag)
{
    uint32_t first = n <= 16 ? n - 1 : 16;
    uint32_t mask = p->binmask & (~0u << first);
    while (mask) {
        uint32_t b = (uint32_t)__builtin_ctz(mask);
        mask &= mask - 1;
        uint32_t bs = 0, bl = UINT32_MAX, ba = 0;
        for (uint32_t ws = p->x->binwords[b]; ws; ws &= ws - 1) {
            uint32_t w = (uint32_t)__builtin_ctz(ws);
            for (uint64_t bits = p->x->runs[b][w]; bits; bits &= bits - 1) {
                uint32_t s = w * 64 + (uint32_t)__builtin_ctzll(bits);
                uint32_t len = b < 16 ? b + 1 : run_len(p, s);
                uint32_t a = (s + ag - 1) & ~(ag - 1);
                if (a + n > s + len || len >= bl)
                    continue; /* alignment: short; or not better */
                bs = s, bl = len, ba = a;
                if (b < 16 || len == n)
                    goto found; /* exact bins: any run is a best fit */
            }
        }
        if (bl == UINT32_MAX)
            continue;
    found:
        run_del(p, bs, bl);
        run_add(p, bs, ba - bs);
        run_add(p, ba + n, bs + bl - (ba + n));
        bits_set(p->used, ba, n, true);
        if (bl == p->maxrun)
            p->maxrun = xm__pack_longest_run(p);
        return ba;
    }
    return -1;
}

/* Gives granules [g, g+n) back: merges with free neighbours and marks the
 * granules free in `used`. */
static void pack_give(xm__pack *p, uint32_t g, uint32_t n)
{
    uint32_t s = g, e = g + n;
    if (g > 0 && !xm__bit_get(p->used, g - 1)) {
        s = run_start_before(p->used, g);
        run_del(p, s, g - s);
    }
    if (e < XM__PACK_GRANS && !xm__bit_get(p->used, e)) {
        uint32_t len = run_len(p, e);
        run_del(p, e, len);
        e += len;
    }
    bits_set(p->used, g, n, false);
    run_add(p, s, e - s);
    if (e - s > p->maxrun)
        p->maxrun = e - s;
}

/* Debug level 3: the index lists exactly the maximal free runs. */
void xm__pack_check_runs(const xm__pack *p)
{
    uint32_t g = 0, count[XM__BINS] = {0};
    while (g < XM__PACK_GRANS) {
        uint32_t s = bits_next(p->used, g, XM__PACK_GRANS, 0);
        if (s >= XM__PACK_GRANS)
            break;
        uint32_t e = bits_next(p->used, s, XM__PACK_GRANS, 1), b = run_bin(e - s);
        XM_ASSERT((p->x->runs[b][s >> 6] >> (s & 63)) & 1);
        XM_ASSERT(p->x->rlen[s] == e - s);
        count[b]++;
        g = e;
    }
    for (uint32_t b = 0; b < XM__BINS; b++) {
        uint32_t marks = 0;
        for (uint32_t w = 0; w < XM__PACK_WORDS; w++)
            marks += (uint32_t)__builtin_popcountll(p->x->runs[b][w]);
        XM_ASSERT(marks == count[b] && p->x->bincount[b] == count[b]);
        for (uint32_t w = 0; w < XM__PACK_WORDS; w++)
            XM_ASSERT(!!(p->x->binwords[b] & (1u << w)) == !!p->x->runs[b][w]);
        XM_ASSERT(!!(p->binmask & (1u << b)) == (count[b] > 0));
    }
}


static bool flip(const xm_heap *h) { return h->backend == XM_BACKEND_FLIP; }

/* DUAL with staging buffers (the default and XM_STRICT); XM_INPLACE writes
 * through the alias instead. */
static bool staged(const xm_heap *h)
{
    return !flip(h) && !(h->flags & XM_INPLACE);
}

/* Debug: the size the bitmaps give (the block ends at the next start,
 * cached block or free granule); xm__heap_check compares it with glen. */
size_t xm__block_size_slow(const xm__pack *p, uint32_t g)
{
    if (p->large)
        return (size_t)p->npages << XM__PAGE_SHIFT;
    uint32_t end = XM__PACK_GRANS;
    for (uint32_t i = g + 1; i < end;) {
        uint64_t w = atomic_load_explicit(&XM__BW(p->start, i >> 6), memory_order_relaxed) |
                     XM__BW(p->cached, i >> 6) | ~XM__BW(p->used, i >> 6);
        w &= ~0ull << (i & 63);
        if (w) {
            uint32_t r = (i & ~63u) + (uint32_t)__builtin_ctzll(w);
            end = r < end ? r : end;
            break;
        }
        i = (i & ~63u) + 64;
    }
    return (size_t)(end - g) << XM__GRAN_SHIFT;
}

xm_result xm__block_find(xm_heap *h, uintptr_t rx, xm__pack **pk, uint32_t *g)
{
    xm__pack *p = xm__pack_of(h, rx);
    if (!p || xm__block_at(h, p, rx, g) != XM_OK)
        return XM_EBADPTR;
    *pk = p;
    return XM_OK;
}

xm_result xm__block_containing(const xm__pack *p, uintptr_t addr, uint32_t *g)
{
    if (p->large) {
        if (!(xm__start_word(p, 0) & 1))
            return XM_EBADPTR;
        *g = 0;
        return XM_OK;
    }
    uint32_t i = (uint32_t)((addr - p->base) >> XM__GRAN_SHIFT);
    if (!xm__bit_get(p->used, i))
        return XM_EBADPTR;
    for (;;) { /* nearest start (or cached block) at or below i */
        uint64_t m = (i & 63) == 63 ? ~0ull : ((1ull << ((i & 63) + 1)) - 1);
        uint64_t w = xm__abit_word(p->start, i) & m;
        uint64_t c = XM__BW(p->cached, i >> 6) & m;
        if (w | c) {
            uint32_t top = 63u - (uint32_t)__builtin_clzll(w | c);
            if ((c >> top) & 1)
                return XM_EBADPTR; /* inside a freed, cached block */
            *g = (i & ~63u) + top;
            return XM_OK;
        }
        if (i < 64)
            return XM_EBADPTR; /* cannot happen: a used granule has a start */
        i = (i & ~63u) - 1;
    }
}

/* ---- packs ------------------------------------------------------------ */

static xm__arena *arena_of(xm_heap *h, const xm__pack *p)
{
    return &h->arenas[atomic_load_explicit(&p->arena, memory_order_relaxed)];
}

/* ---- class lists: small packs with room, by their longest free run ---- */

static uint32_t rclass_of(uint32_t len)
{
    if (len <= 16)
        return len - 1;
    uint32_t fl = 31u - (uint32_t)__builtin_clz(len);
    return 16 + (fl - 4) * 4 + ((len >> (fl - 2)) & 3);
}

/* The shortest run of class c. */
static uint32_t rclass_low(uint32_t c)
{
    if (c <= 16)
        return c + 1;
    return (4 + ((c - 16) & 3)) << (2 + (c - 16) / 4);
}
_Static_assert(XM__PACK_GRANS == 2048 && XM__RCLASSES > 16 + 7 * 4, "classes cover a pack");

static void list_add(xm__arena *a, xm__pack *p)
{
    uint32_t c = rclass_of(p->maxrun);
    p->rclass = (uint8_t)c;
    p->prev = NULL;
    p->next = a->rcl[p->kind][c];
    if (p->next)
        p->next->prev = p;
    a->rcl[p->kind][c] = p;
    a->rmask[p->kind] |= 1ull << c;
    p->listed = 1;
}

static void list_del(xm__arena *a, xm__pack *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (!(a->rcl[p->kind][p->rclass] = p->next))
        a->rmask[p->kind] &= ~(1ull << p->rclass);
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    p->listed = 0;
}

/* The arena's kept empty pack of a kind (arena locked), counted in
 * h->kept_bytes. */
static void keep_set(xm_heap *h, xm__arena *a, int kind, xm__pack *p)
{
    if (a->keep[kind])
        atomic_fetch_sub_explicit(&h->kept_bytes,
                                  (size_t)a->keep[kind]->npages << XM__PAGE_SHIFT,
                                  memory_order_relaxed);
    if (p)
        atomic_fetch_add_explicit(&h->kept_bytes, (size_t)p->npages << XM__PAGE_SHIFT,
                                  memory_order_relaxed);
    a->keep[kind] = p;
}

/* After p's longest free run changed: on the list of its class, or on
 * none when it is full. */
static void list_refile(xm__arena *a, xm__pack *p)
{
    if (p->listed) {
        if (p->maxrun && rclass_of(p->maxrun) == p->rclass)
            return;
        list_del(a, p);
    }
    if (p->maxrun)
        list_add(a, p);
}

/* A pack of the arena with a free run of n granules aligned to ag, and
 * that run's first granule (taken, marked used, the pack re-filed); NULL
 * when none. Takes the lowest class whose every pack fits (one ctz), after
 * a look at the head of n's own class; with an alignment that a run cannot
 * give, a few more packs are tried. */
static xm__pack *pack_pick(xm_heap *h, xm__arena *a, int kind, uint32_t n, uint32_t ag,
                           uint32_t *g)
{
    uint32_t c = rclass_of(n), tries = 0;
    int64_t f = -1;
    xm__pack *p = a->rcl[kind][c];
    if (p && p->maxrun >= n)
        f = pack_take(p, n, ag);
    if (f < 0) {
        if (rclass_low(c) < n)
            c++;
        for (uint64_t m = a->rmask[kind] & (~0ull << c); m && f < 0; m &= m - 1) {
            for (p = a->rcl[kind][__builtin_ctzll(m)]; p; p = p->next) {
                if ((f = pack_take(p, n, ag)) >= 0)
                    break;
                if (++tries == 8)
                    return NULL; /* alignment: a new pack */
            }
        }
    }
    if (f < 0)
        return NULL;
    *g = (uint32_t)f;
    if (a->keep[kind] == p)
        keep_set(h, a, kind, NULL); /* no longer empty */
    list_refile(a, p);
    return p;
}

static int want_state(const xm_heap *h, int kind)
{
    if (flip(h))
        return XM__FR_RW;
    return kind == XM__K_CODE ? XM__FR_CODE : XM__FR_DATA;
}

/* Fills pages [page, page+n) of DUAL's file with traps: through the alias
 * when there is one, else by pwrite. */
static xm_result fill_traps(xm_heap *h, uint32_t page, uint32_t n)
{
    uint64_t off = (uint64_t)page << XM__PAGE_SHIFT;
    size_t len = (size_t)n << XM__PAGE_SHIFT;
    if (h->alias) { /* no writable descriptor is kept (meta.c) */
        /* the pages in one call, not a fault each (a 128 KiB pack: 500 us
           of faults on this VM), and a shortage is an error here rather
           than SIGBUS in the memset */
        int r = xm__os_populate(&h->osc, h->alias + off, len);
        if (r && r != -EINVAL)
            return xm__os_result(r, false);
        memset(h->alias + off, XM__TRAP_BYTE, len);
        return XM_OK;
    }
    int r = xm__os_pwrite_traps(&h->osc, h->fd, len, off);
    return r ? xm__os_result(r, false) : XM_OK;
}

/* Makes fresh reserve pages usable: DUAL fills the first `fill` pages of the
 * file range with traps and maps the executable (or read-only) view over
 * all n (the others stay file holes until pack_reach fills them); FLIP maps
 * RW pages. */
static xm_result map_fresh(xm_heap *h, int kind, uint32_t page, uint32_t n,
                           uint32_t fill)
{
    void *addr = (void *)xm__page_addr(h, page);
    size_t len = (size_t)n << XM__PAGE_SHIFT;
    if (flip(h)) {
        int r = xm__os_map_anon_at(&h->osc, addr, len, XM__P_R | XM__P_W);
        if (r)
            return xm__os_result(r, false);
    } else {
        uint64_t off = (uint64_t)page << XM__PAGE_SHIFT;
        xm_result fr = fill ? fill_traps(h, page, fill) : XM_OK;
        if (fr != XM_OK) { /* what a first call wrote goes back too */
            (void)xm__file_release(h, off, (size_t)fill << XM__PAGE_SHIFT);
            return fr;
        }
        int prot = kind == XM__K_CODE ? (XM__P_R | XM__P_X) : XM__P_R;
        int err = 0;
        if (!xm__os_map_fd(&h->osc, addr, len, prot, h->fd_ro, off, &err)) {
            (void)xm__file_release(h, off, len);
            return xm__os_result(-err, kind == XM__K_CODE);
        }
    }
    if (h->shadow) { /* the private copies of these pages (XM_INPLACE) */
        int r = xm__shadow_commit(h, page, n);
        if (r) { /* undone: the pages go back to the reserve */
            (void)xm__os_map_anon_at(&h->osc, addr, len, XM__P_NONE);
            if (!flip(h))
                (void)xm__file_release(h, (uint64_t)page << XM__PAGE_SHIFT, len);
            return xm__os_result(r, false);
        }
    }
    atomic_fetch_add(&h->resident_bytes, len);
    return XM_OK;
}

/* A small DUAL pack fresh from the reserve is trap-filled as allocations
 * first reach its pages, in doubling steps (1, 2, 4, ... pages): a heap
 * that publishes one function fills one page, not the pack's 32, and a
 * pack's first-use cost follows its use. Makes pages up to the one holding
 * granule endg - 1 filled. */
static xm_result pack_reach(xm_heap *h, xm__pack *p, uint32_t endg)
{
    uint32_t need = (endg * XM__GRAN + XM__PAGE - 1) >> XM__PAGE_SHIFT;
    if (need <= p->filled)
        return XM_OK;
    uint32_t to = p->filled ? p->filled * 2 : 1;
    to = to > p->npages ? p->npages : to;
    to = to < need ? need : to;
    xm_result r = fill_traps(h, p->page + p->filled, to - p->filled);
    if (r == XM_OK)
        p->filled = to;
    return r;
}

/* pack_new failed: descriptor p back on its spare list, the heap lock
 * released; returns r. */
static xm_result spare_back(xm_heap *h, xm__pack **spare, xm__pack *p, xm_result r)
{
    p->next = *spare;
    *spare = p;
    pthread_mutex_unlock(&h->lock);
    return r;
}

/* Takes a descriptor and npages pages for arena a (a locked, the heap lock
 * not): from the reuse cache if it has a run, else fresh reserve. When the
 * reserve is exhausted, the arena's empty packs and the quarantine are
 * released first. */
static xm_result pack_new(xm_heap *h, xm__arena *a, int kind, uint32_t npages,
                          int large, xm__pack **out)
{
    pthread_mutex_lock(&h->lock);
    /* descriptors are small or large for life: a large block's has no
       run index (a few lines instead of 4.8 KB) */
    xm__pack **spare = large ? &h->spare_large : &h->spare;
    xm__pack *p = *spare;
    if (p) {
        *spare = p->next;
    } else {
        if (h->nall == h->capall) {
            size_t cap = h->capall ? h->capall * 2 : 64;
            xm__pack **all = xm__mem_realloc(h->all, cap * sizeof *all);
            if (!all) {
                pthread_mutex_unlock(&h->lock);
                return XM_ENOMEM;
            }
            h->all = all;
            h->capall = cap;
        }
        size_t sz = sizeof *p + (large ? 0 : sizeof(xm__packx));
        p = xm__mem_aligned(XM__LINE_PAIR, sz);
        if (!p) {
            pthread_mutex_unlock(&h->lock);
            return XM_ENOMEM;
        }
        memset(p, 0, sz);
        p->large = (uint8_t)large;
        p->x = large ? NULL : (xm__packx *)(p + 1);
        p->pend = large ? &p->pend1 : p->x->pend;
        h->all[h->nall++] = p;
    }
    int want = want_state(h, kind), state, raised;
    uint32_t page, taken, fresh_at = 0, fresh_n = 0;
    /* a large block takes up to 1/8 more pages rather than leave a sliver,
       and (DUAL) a shorter mapped run with the released pages beside it
       rather than all fresh pages */
    uint32_t slack = large ? npages / 8 : 0, *mixed = large && !flip(h) ? &fresh_n : NULL;
    if (xm__range_take(h, npages, slack, want, &page, &state, &raised, &taken, &fresh_at,
                       mixed)) {
        pthread_mutex_unlock(&h->lock);
        xm__arena_retire_empty_locked(h, a);
        pthread_mutex_lock(&h->lock);
        if (h->quarantine_bytes)
            (void)xm__purge_locked(h);
        if (xm__range_take(h, npages, slack, want, &page, &state, &raised, &taken,
                           &fresh_at, mixed)) {
            return spare_back(h, spare, p, XM_ENOMEM);
        }
    }
    uint32_t filled = npages;
    if (fresh_n) { /* mapped pages, and fresh ones beside them to map */
        xm_result r = map_fresh(h, kind, page + fresh_at, fresh_n, fresh_n);
        if (r != XM_OK) { /* both parts back as they were */
            xm__range_put(h, page + fresh_at, fresh_n, XM__FR_NONE, 0);
            xm__range_put(h, fresh_at ? page : page + fresh_n, taken - fresh_n, state, raised);
            return spare_back(h, spare, p, r);
        }
    } else if (state != want) {
        XM_ASSERT(state == XM__FR_NONE);
        /* a small heap's small pack is filled as used (pack_reach: a heap
           that publishes one function fills one page); a growing heap's
           whole, with one call; the pages of a chunk mapped ahead go to
           the free ranges, trap-filled */
        bool lazy = !large && taken == npages && !flip(h) &&
                    atomic_load_explicit(&h->resident_bytes, memory_order_relaxed) <
                        XM__LAZY_FILL_BELOW;
        filled = lazy ? 0 : taken;
        xm_result r = map_fresh(h, kind, page, taken, filled);
        if (r != XM_OK && taken > npages) { /* the chunk: try the block alone */
            xm__range_put(h, page + npages, taken - npages, XM__FR_NONE, 0);
            taken = npages;
            filled = lazy ? 0 : npages;
            r = map_fresh(h, kind, page, npages, filled);
        }
        if (r != XM_OK) {
            xm__range_put(h, page, npages, XM__FR_NONE, 0);
            return spare_back(h, spare, p, r);
        }
        if (taken > npages) /* mapped ahead: free, trap-filled */
            xm__range_put(h, page + npages, taken - npages, want, 0);
        raised = 0;
    } else {
        npages = filled = taken; /* with the sliver */
    }
    /* the descriptor may be recycled, and the pages' state words be left
       from an earlier pack: reset everything a reader looks at (a large
       pack has one block: bit 0 of its first page's words) */
    p->start = &h->ps[page].start;
    p->used = &h->ps[page].used;
    p->pub = &h->ps[page].pub;
    p->cached = &h->ps[page].cached;
    p->glen = h->ps[page].glen;
    for (unsigned w = 0; w < (large ? 1 : XM__PACK_WORDS); w++) {
        atomic_store_explicit(&XM__BW(p->start, w), 0, memory_order_relaxed);
        XM__BW(p->used, w) = XM__BW(p->pub, w) = XM__BW(p->cached, w) = 0;
    }
    for (unsigned w = 0; w < xm__pend_words(p); w++)
        atomic_store_explicit(&p->pend[w], 0, memory_order_relaxed);
    for (unsigned w = 0; !large && w < XM__PACK_WORDS; w++)
        atomic_store_explicit(&p->x->rpend[w], 0, memory_order_relaxed);
    p->base = xm__page_addr(h, page);
    p->page = page;
    p->npages = npages;
    p->filled = filled < npages ? filled : npages;
    p->nfree = large ? 0 : XM__PACK_GRANS;
    p->ncached = 0;
    p->binmask = 0;
    p->maxrun = 0;
    if (!large) {
        memset(p->x->runs, 0, sizeof p->x->runs);
        memset(p->x->bincount, 0, sizeof p->x->bincount);
        memset(p->x->binwords, 0, sizeof p->x->binwords);
        run_add(p, 0, XM__PACK_GRANS);
        p->maxrun = XM__PACK_GRANS;
    }
    p->kind = (uint8_t)kind;
    XM_ASSERT(p->large == (uint8_t)large);
    p->raised = (uint8_t)raised;
    p->listed = 0;
    p->prev = p->next = NULL;
    atomic_store_explicit(&p->arena, (uint8_t)(a - h->arenas), memory_order_relaxed);
    for (uint32_t i = 0; i < npages; i++)
        atomic_store_explicit(&h->ps[page + i].pm, p, memory_order_release);
    pthread_mutex_unlock(&h->lock);
    *out = p;
    return XM_OK;
}

/* Gives a pack's pages back to the free ranges (mapped: quarantine). The
 * pack's arena is locked; this takes the heap lock. */
static void pack_release(xm_heap *h, xm__pack *p, int state, int raised)
{
    xm__arena *a = arena_of(h, p);
    if (p->listed)
        list_del(a, p);
    if (!p->large && a->keep[p->kind] == p)
        keep_set(h, a, p->kind, NULL);
    /* the free ranges hold trap-filled pages: fill what the pack never
       reached; if that fails, the pages are dropped at the next purge */
    if (p->filled < p->npages && state != XM__FR_DEAD) {
        if (fill_traps(h, p->page + p->filled, p->npages - p->filled) == XM_OK)
            p->filled = p->npages;
        else
            state = XM__FR_DEAD;
    }
    pthread_mutex_lock(&h->lock);
    for (uint32_t i = 0; i < p->npages; i++)
        atomic_store_explicit(&h->ps[p->page + i].pm, NULL,
                              memory_order_release);
    xm__range_put(h, p->page, p->npages, state, raised);
    if (state == XM__FR_DEAD)
        h->revoke_pending += p->npages;
    xm__pack **spare = p->large ? &h->spare_large : &h->spare;
    p->next = *spare;
    *spare = p;
    xm__maybe_purge_locked(h);
    pthread_mutex_unlock(&h->lock);
}

static void mag_flush(xm_heap *h, xm__arena *ar);

void xm__arena_retire_empty_locked(xm_heap *h, xm__arena *a)
{
    mag_flush(h, a);
    for (int k = 0; k < 2; k++) /* the only empty packs are the kept ones */
        if (a->keep[k])
            pack_release(h, a->keep[k], want_state(h, k), a->keep[k]->raised);
}

/* ---- blocks ----------------------------------------------------------- */

/* Returns granules [g, g+n) of small pack p to the free-run index (arena
 * locked); keeps one empty pack per kind and arena hot, retires others. */
static void give_back(xm_heap *h, xm__arena *ar, xm__pack *p, uint32_t g,
                      uint32_t n)
{
    pack_give(p, g, n);
    p->nfree += n;
    list_refile(ar, p);
    if (p->nfree == XM__PACK_GRANS) {
        if (!ar->keep[p->kind])
            keep_set(h, ar, p->kind, p);
        else if (ar->keep[p->kind] != p)
            pack_release(h, p, want_state(h, p->kind), p->raised);
    }
}

/* ---- magazines (internal.h) ------------------------------------------- */

/* Gives the arena's cached blocks back to the free-run index: all of them
 * (only == NULL) or those of pack `only`. */
static void mag_flush_some(xm_heap *h, xm__arena *ar, const xm__pack *only)
{
    for (int k = 0; k < 2; k++) {
        for (uint32_t c = 0; c < XM__MAG_CLASSES; c++) {
            uint32_t keep = 0;
            for (uint32_t j = 0; j < ar->nmag[k][c]; j++) {
                uintptr_t rx = ar->mag[k][c][j];
                xm__pack *p = ar->magp[k][c][j];
                if (only && p != only) {
                    ar->magp[k][c][keep] = p;
                    ar->mag[k][c][keep++] = rx;
                    continue;
                }
                uint32_t gi = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
                uint32_t n = (uint32_t)XM__GL(p->glen, gi) + 1;
                if (c >= XM__MAG_EXACT)
                    ar->mag_mid_bytes[k] -= (size_t)n << XM__GRAN_SHIFT;
                give_back(h, ar, p, xm__mag_unmark(p, rx, n), n);
            }
            ar->nmag[k][c] = (uint8_t)keep;
        }
    }
}

static void mag_flush(xm_heap *h, xm__arena *ar) { mag_flush_some(h, ar, NULL); }

/* The block came out larger than asked (a hole taken whole, a magazine
 * block of the next size up): *stage (NULL: unstaged) is replaced by a
 * buffer of `got` bytes. False, with *stage untouched, when there is no
 * memory for one. */
static bool stage_regrow(xm__arena *ar, void **stage, size_t usable, size_t got,
                         size_t align)
{
    if (!*stage || xm__stage_same_buf(usable, got))
        return true; /* the buffer serves `got` as it is */
    void *st2 = xm__stage_buf_get(ar, got, align < 16 ? 16 : align);
    if (!st2)
        return false;
    xm__stage_buf_put(ar, *stage, usable);
    *stage = st2;
    return true;
}

/* Whether xm_load can copy straight into place: DUAL with the alias mapped
 * and no private copy (the default and XM_INPLACE; not XM_STRICT). */
bool xm__load_direct(const xm_heap *h)
{
    return h->alias && !h->shadow; /* (FLIP has neither) */
}

static xm_result block_alloc(xm_heap *h, xm__arena *ar, int kind, size_t size,
                             size_t align, bool direct, xm_block *out)
{
    size_t a = align ? align : 16;
    bool large = flip(h) || size > XM__SMALL_MAX;
    size_t usable = large ? (size + XM__PAGE - 1) & ~(size_t)(XM__PAGE - 1)
                          : (size + XM__GRAN - 1) & ~(size_t)(XM__GRAN - 1);
    if (large && usable / XM__PAGE > h->npages)
        return XM_ENOMEM;
    void *stage = NULL;
    if (staged(h) && !direct) {
        if (xm__stage_reserve(ar))
            return XM_ENOMEM;
        stage = xm__stage_buf_get(ar, usable, a < 16 ? 16 : a);
        if (!stage)
            return XM_ENOMEM;
    }
    xm__pack *p = NULL;
    uint32_t g = 0;
    size_t got = 0;
    xm_result r = XM_OK;
    if (large) {
        r = pack_new(h, ar, kind, (uint32_t)(usable >> XM__PAGE_SHIFT), 1, &p);
        if (r == XM_OK && ((size_t)p->npages << XM__PAGE_SHIFT) > usable) {
            /* it took a hole whole (pack_new): the block is that size */
            size_t big = (size_t)p->npages << XM__PAGE_SHIFT;
            if (stage_regrow(ar, &stage, usable, big, a)) {
                usable = big;
            } else {
                pack_release(h, p, want_state(h, kind), p->raised);
                r = XM_ENOMEM;
            }
        }
        if (r == XM_OK)
            XM__BW(p->used, 0) = 1;
    } else if (xm__mag_take(ar, kind, usable, a, &p, &g, &got)) {
        /* a cached block: its granules are still `used`; above 1 KiB it
           may be up to 1/4 larger than asked, and needs that much staging */
        if (got > usable && !stage_regrow(ar, &stage, usable, got, a)) {
            xm__stage_buf_put(ar, stage, usable);
            give_back(h, ar, p, g, (uint32_t)(got >> XM__GRAN_SHIFT));
            return XM_ENOMEM;
        }
        usable = got;
    } else {
        uint32_t n = (uint32_t)(usable >> XM__GRAN_SHIFT);
        uint32_t ag = a > XM__GRAN ? (uint32_t)(a >> XM__GRAN_SHIFT) : 1;
        p = pack_pick(h, ar, kind, n, ag, &g);
        if (!p) {
            r = pack_new(h, ar, kind, XM__PACK_PAGES, 0, &p);
            if (r == XM_OK) { /* a fresh pack fits all */
                g = (uint32_t)pack_take(p, n, ag);
                list_refile(ar, p);
            }
        }
        if (r == XM_OK) {
            XM__GL(p->glen, g) = (uint8_t)(n - 1);
            p->nfree -= n;
            if (p->filled < p->npages && (r = pack_reach(h, p, g + n)) != XM_OK)
                give_back(h, ar, p, g, n); /* nothing changed */
        }
    }
    if (r != XM_OK) {
        if (stage)
            xm__stage_buf_put(ar, stage, usable);
        return r;
    }
    xm__clear_pend(p, g); /* a stale request is void */
    if (!p->large)
        xm__remote_unclaim(ar, p, g);
    xm__set_start(p, g, true);
    uintptr_t rx = xm__block_addr(p, g);
#if XM_DEBUG >= 2
    if (!staged(h) || direct)
        xm__dead_rw_check(h, rx, usable);
#endif
    if (h->shadow) { /* XM_INPLACE, STRICT or FLIP: the private copy */
        char *rw = h->shadow + (rx - h->base);
        memset(rw, XM__TRAP_BYTE, usable);
        if (flip(h))
            memset((void *)rx, XM__TRAP_BYTE, usable);
        out->rw = rw;
    } else if (flip(h)) {
        memset((void *)rx, XM__TRAP_BYTE, usable);
        out->rw = (void *)rx;
    } else if (!staged(h) || direct) { /* XM_INPLACE, xm_load: the bytes
                                           at rx are traps */
        out->rw = h->alias + (rx - h->base);
    } else {
        memset(stage, XM__TRAP_BYTE, usable);
        xm__stage_put(ar, rx, stage, p);
        ar->staging_bytes += usable;
        out->rw = stage;
    }
    out->rx = (void *)rx;
    out->size = usable;
    ar->live_bytes += usable;
    ar->allocs++;
    return XM_OK;
}

xm_result xm__block_alloc_locked(xm_heap *h, xm__arena *ar, int kind,
                                 size_t size, size_t align, xm_block *out)
{
    return block_alloc(h, ar, kind, size, align, false, out);
}

/* FLIP free of published code: replaces its pages with reserve (PROT_NONE).
 * Returns false if the kernel refused (ENOMEM at vm.max_map_count: the new
 * mapping splits a VMA): the block is freed all the same, its pages go to
 * the free ranges as XM__FR_DEAD (never handed out) and the next release or
 * purge drops their rights (range.c). Meanwhile its bytes become traps by a
 * forced write through /proc/self/mem, which needs no new mapping; only if
 * that fails too (no /proc, proc_mem.force_override=never) does the old
 * code run until the rights are dropped (include/execmem.h, xm_free). */
static bool flip_revoke(xm_heap *h, uintptr_t rx, size_t sz)
{
    if (xm__os_map_anon_at(&h->osc, (void *)rx, sz, XM__P_NONE)) {
        if (xm__os_poke_traps(&h->osc, (void *)rx, sz) == 0)
            xm__icache_sync((void *)rx, sz);
        return false;
    }
    h->osc.revocations++;
    if (h->shadow) /* the pages go to the reserve: their copy too */
        (void)xm__shadow_release(h, rx, sz);
    atomic_fetch_sub(&h->resident_bytes, sz);
    return true;
}

/* filled: the bytes are traps already (a remote free, deferred.c). */
static xm_result block_free(xm_heap *h, xm__pack *p, uint32_t g, bool filled)
{
    xm__arena *ar = arena_of(h, p);
    size_t sz = xm__block_size(p, g);
    uintptr_t rx = xm__block_addr(p, g);
    bool pub = xm__bit_get(p->pub, g), dead = false;
    /* XM_INPLACE: what the JIT wrote is at rx even before publish (DUAL's
       alias; under XM_STRICT it reaches rx only at publish) */
    if (h->shadow) /* the copy dies with the block: traps, as it started */
        memset(h->shadow + (rx - h->base), XM__TRAP_BYTE, sz);
    if (filled && ar->nwin) /* a window on it may have written since */
        filled = false;
    if ((pub || (!staged(h) && !h->shadow)) && !flip(h)) {
        uintptr_t off = rx - h->base;
        if (filled) {
            XM_ASSERT(h->alias);
        } else if (h->alias) {
            xm__fill_freed(h->alias + off, sz);
        } else {
            /* XM_STRICT: xm__os_pwrite_traps writes 4 MiB per call, and a
               failure after the first would leave the live block part
               traps: a larger one's bytes are kept to be put back */
            void *keep = NULL;
            if (sz > XM__PWRITE_TRAPS_MAX) {
                if (!(keep = xm__mem_alloc(sz)))
                    return XM_ENOMEM;
                memcpy(keep, (const void *)rx, sz);
            }
            int e = xm__os_pwrite_traps(&h->osc, h->fd, sz, off);
            if (e && keep)
                (void)xm__os_pwrite(&h->osc, h->fd, keep, sz, off);
            xm__mem_free(keep);
            if (e)
                return xm__os_result(e, false);
        }
        xm__valgrind_discard(h, (void *)rx, sz);
    } else if (pub) { /* FLIP: the exec right goes now, or at a purge */
        dead = !flip_revoke(h, rx, sz);
        xm__valgrind_discard(h, (void *)rx, sz);
    }
    uint64_t m = 1ull << (g & 63);
    xm__set_start(p, g, false);
    xm__clear_pend(p, g); /* a late async request is void */
    XM__BW(p->pub, g >> 6) &= ~m;
    if (!pub && staged(h)) {
        xm__stage_buf_put(ar, xm__stage_take(ar, rx), sz);
        ar->staging_bytes -= sz;
    }
    if (ar->nwin)
        xm__windows_drop_locked(ar, rx);
    if (xm__sym_any(h))
        xm__sym_freed(h, rx);
    ar->live_bytes -= sz;
    ar->frees++;
    if (p->large) {
        XM__BW(p->used, 0) = 0;
        if (dead)
            pack_release(h, p, XM__FR_DEAD, 1);
        else if (flip(h))
            pack_release(h, p, pub ? XM__FR_NONE : XM__FR_RW, !pub);
        else
            pack_release(h, p, want_state(h, p->kind), p->raised);
    } else if (!xm__mag_put(ar, p, g, sz)) {
        uint32_t n = (uint32_t)(sz >> XM__GRAN_SHIFT);
        if (p->ncached && p->nfree + p->ncached + n == XM__PACK_GRANS)
            mag_flush_some(h, ar, p); /* nothing live left: let it retire */
        give_back(h, ar, p, g, n);
    }
    return XM_OK;
}

xm_result xm__block_free_locked(xm_heap *h, xm__pack *p, uint32_t g)
{
    return block_free(h, p, g, false);
}

void xm__block_free_filled_locked(xm_heap *h, xm__pack *p, uint32_t g)
{
    (void)block_free(h, p, g, true); /* (no fill: nothing fails) */
}

/* The bytes of block g are in place at rx: make them coherent and mark the
 * block published. */
static void published(xm_heap *h, xm__pack *p, uint32_t g, uintptr_t rx, size_t sz)
{
    if (p->kind == XM__K_CODE)
        xm__icache_sync((void *)rx, sz);
    xm__valgrind_discard(h, (void *)rx, sz);
    XM__BW(p->pub, g >> 6) |= 1ull << (g & 63);
    p->raised = 1;
    arena_of(h, p)->publishes++;
    if (xm__sym_any(h))
        xm__sym_published(h, rx);
}

xm_result xm__block_publish_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                   int prot)
{
    if ((p->kind == XM__K_CODE) != (prot == XM_PROT_RX))
        return XM_EINVAL;
    if (xm__bit_get(p->pub, g))
        return XM_ESTATE;
    size_t sz = xm__block_size(p, g);
    uintptr_t rx = xm__block_addr(p, g);
    bool code = p->kind == XM__K_CODE;
    if (h->shadow && !flip(h)) { /* STRICT XM_INPLACE: the copy goes in */
        int e = xm__os_pwrite(&h->osc, h->fd, h->shadow + (rx - h->base), sz,
                              rx - h->base);
        if (e)
            return xm__os_result(e, false);
    }
    if (flip(h)) {
        if (h->shadow) /* XM_INPLACE: the copy goes in (pages still RW) */
            memcpy((void *)rx, h->shadow + (rx - h->base), sz);
        int e = xm__os_protect(&h->osc, (void *)rx, sz,
                               code ? (XM__P_R | XM__P_X) : XM__P_R);
        if (e)
            return xm__os_result(e, code);
        h->osc.revocations++; /* write right removed from present pages */
    } else if (staged(h)) {
        xm__arena *ar = arena_of(h, p);
        void *stage = xm__stage_take(ar, rx);
        uintptr_t off = rx - h->base;
        XM_ASSERT(stage != NULL);
        if (h->alias) {
            memcpy(h->alias + off, stage, sz); /* not xm__copy_cold: no
                                                   gain measured here */
        } else {
            int e = xm__os_pwrite(&h->osc, h->fd, stage, sz, off);
            if (e) {
                xm__stage_put(ar, rx, stage, p); /* its slot was just freed */
                return xm__os_result(e, false);
            }
        }
        xm__stage_buf_put(ar, stage, sz);
        ar->staging_bytes -= sz;
    }
    published(h, p, g, rx, sz);
    return XM_OK;
}

xm_result xm__block_load_locked(xm_heap *h, xm__arena *ar, int kind,
                                const void *src, size_t len, size_t align,
                                xm_block *out)
{
    XM_ASSERT(xm__load_direct(h));
    xm_block b;
    xm_result r = block_alloc(h, ar, kind, len, align, true, &b);
    if (r != XM_OK)
        return r;
    uintptr_t rx = (uintptr_t)b.rx;
    xm__pack *p = xm__pack_of(h, rx);
    uint32_t g = (uint32_t)((rx - p->base) >> (p->large ? XM__PAGE_SHIFT : XM__GRAN_SHIFT));
    /* the publish copy of a staged block, from the caller's buffer: the
       bytes past len are the traps they were */
    xm__copy_cold(b.rw, src, len);
    published(h, p, g, rx, b.size);
    out->rx = b.rx;
    out->rw = (h->flags & XM_INPLACE) ? b.rw : NULL;
    out->size = b.size;
    return XM_OK;
}

/* FLIP patch, failure-atomic: build the new pages elsewhere, then move them
 * over the old ones in one mremap. */
static xm_result flip_patch(xm_heap *h, xm__pack *p, uintptr_t rx, size_t sz,
                            uintptr_t dst, const void *src, size_t len)
{
    int err = 0;
    char *tmp = xm__os_map_anon(&h->osc, sz, XM__P_R | XM__P_W, &err);
    if (!tmp)
        return xm__os_result(-err, false);
    memcpy(tmp, (void *)rx, sz);
    memcpy(tmp + (dst - rx), src, len);
    bool code = p->kind == XM__K_CODE;
    int e = xm__os_protect(&h->osc, tmp, sz, code ? (XM__P_R | XM__P_X) : XM__P_R);
    if (!e) {
        h->osc.revocations++;
        e = xm__os_move(&h->osc, tmp, sz, (void *)rx);
        if (!e) {
            h->osc.revocations++;
            return XM_OK;
        }
    }
    (void)xm__os_unmap(&h->osc, tmp, sz);
    return xm__os_result(e, code);
}

xm_result xm__block_range(const xm__pack *p, uintptr_t dst, size_t len, uint32_t *g)
{
    if (dst + len < dst || xm__block_containing(p, dst, g) != XM_OK ||
        dst + len > xm__block_addr(p, *g) + xm__block_size(p, *g))
        return XM_ERANGE;
    return XM_OK;
}

xm_result xm__block_patch_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                 uintptr_t dst, const void *src, size_t len)
{
    if (!xm__bit_get(p->pub, g))
        return XM_ESTATE;
    xm_result r = xm__block_write_locked(h, p, g, dst, src, len);
    if (r == XM_OK)
        arena_of(h, p)->patches++;
    return r;
}

xm_result xm__block_write_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                 uintptr_t dst, const void *src, size_t len)
{
    if (flip(h)) {
        uintptr_t rx = xm__block_addr(p, g);
        xm_result r = flip_patch(h, p, rx, xm__block_size(p, g), dst, src, len);
        if (r != XM_OK)
            return r;
    } else if (h->alias) {
        memcpy(h->alias + (dst - h->base), src, len);
    } else {
        int e = xm__os_pwrite(&h->osc, h->fd, src, len, dst - h->base);
        if (e)
            return xm__os_result(e, false);
    }
    if (h->shadow && src != h->shadow + (dst - h->base))
        /* xm_patch, a write window: rw stays the block's bytes */
        memcpy(h->shadow + (dst - h->base), src, len);
    if (p->kind == XM__K_CODE)
        xm__icache_sync((void *)dst, len);
    xm__valgrind_discard(h, (void *)dst, len);
    return XM_OK;
}
