/* SPDX-License-Identifier: MIT */
/*
 * check.c: the debug structure walk (XM_DEBUG >= 3 runs it after every
 * call; white-box tests call xm__heap_check at any level). Checks every
 * pack's bitmaps, sizes and trap fill, the arenas' class lists, magazines
 * and write windows, the free-range set (range.c) and the heap's counters
 * against each other. Reads only; aborts through xm__assert_fail.
 */
#include "internal.h"
#include "arch.h"

#define CHECK(e)                                                               \
    do {                                                                       \
        if (!(e))                                                              \
            xm__assert_fail(#e, __FILE__, __LINE__);                           \
    } while (0)

/* Every arena and the heap lock held. */
void xm__check_locked(xm_heap *h)
{
    /* the free-range set (range.c walks it) */
    size_t mapped = xm__range_check(h);
    size_t blocks = 0, bytes = 0, pages = 0, mag_blocks = 0;
    for (size_t i = 0; i < h->nall; i++) {
        xm__pack *p = h->all[i];
        if (atomic_load(&h->ps[p->page].pm) != p || p->npages == 0)
            continue; /* spare */
        pages += p->npages;
        CHECK(p->filled <= p->npages && (p->filled == p->npages || !p->large));
        for (uint32_t k = 0; k < p->npages; k++)
            CHECK(atomic_load(&h->ps[p->page + k].pm) == p);
        uint32_t ngr = p->large ? 1 : XM__PACK_GRANS, used = 0, ncached = 0;
        for (uint32_t g = 0; g < ngr; g++) {
            bool u = xm__bit_get(p->used, g);
            bool s = (xm__abit_word(p->start, g) >> (g & 63)) & 1;
            bool cb = xm__bit_get(p->cached, g);
            used += u;
            CHECK(!s || u);
            CHECK(!cb || (u && !s && !p->large));
            if (cb || s) /* the recorded size is the bitmaps' */
                CHECK(xm__block_size(p, g) == xm__block_size_slow(p, g));
            if (cb) { /* a magazine's block: not live, every byte a trap */
                size_t sz = xm__block_size(p, g);
                ncached += (uint32_t)(sz >> XM__GRAN_SHIFT);
                CHECK(!xm__bit_get(p->pub, g));
                const unsigned char *b =
                    (const unsigned char *)p->base + ((size_t)g << XM__GRAN_SHIFT);
                for (size_t k = 0; p->kind == XM__K_CODE && k < sz; k++)
                    CHECK(b[k] == XM__TRAP_BYTE);
                mag_blocks++;
            }
            if (s) {
                size_t sz = xm__block_size(p, g);
                blocks++;
                bytes += sz;
                bool pub = xm__bit_get(p->pub, g);
                if (!pub && h->backend == XM_BACKEND_DUAL &&
                    !(h->flags & XM_INPLACE))
                    CHECK(xm__stage_get(&h->arenas[atomic_load(&p->arena)],
                                        xm__block_addr(p, g)));
            }
            /* pages the pack has not reached (pack_reach) hold no block
               and are file holes; the rest of a code pack is traps */
            bool reached = g >> (XM__PAGE_SHIFT - XM__GRAN_SHIFT) < p->filled;
            CHECK(reached || !u);
            if (!u && !p->large && p->kind == XM__K_CODE && reached) {
                const unsigned char *b =
                    (const unsigned char *)p->base + ((size_t)g << XM__GRAN_SHIFT);
                for (unsigned k = 0; k < XM__GRAN; k++)
                    CHECK(b[k] == XM__TRAP_BYTE);
            }
        }
        CHECK(ncached == (p->large ? 0 : p->ncached));
        if (!p->large) {
            CHECK(p->nfree == XM__PACK_GRANS - used);
            xm__pack_check_runs(p);
            /* on its arena's class list exactly when it has room, in the
               class of its longest free run */
            xm__arena *a = &h->arenas[atomic_load(&p->arena)];
            CHECK(p->maxrun == xm__pack_longest_run(p));
            bool found = false;
            for (xm__pack *q = a->rcl[p->kind][p->rclass]; q && p->listed; q = q->next)
                found |= q == p;
            CHECK(found == (p->maxrun > 0) && p->listed == found);
            CHECK(!found || ((a->rmask[p->kind] >> p->rclass) & 1));
            CHECK((p->nfree == XM__PACK_GRANS) == (a->keep[p->kind] == p));
        }
    }
    mapped += pages << XM__PAGE_SHIFT;
    size_t live_blocks = 0, live_bytes = 0, mag_entries = 0, kept = 0;
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        xm__arena *a = &h->arenas[i];
        size_t mid_bytes[2] = {0, 0};
        for (int k = 0; k < 2; k++)
            kept += a->keep[k] ? (size_t)a->keep[k]->npages << XM__PAGE_SHIFT : 0;
        for (int k = 0; k < 2; k++) /* magazines: cached blocks of its packs */
            for (uint32_t c = 0; c < XM__MAG_CLASSES; c++) {
                CHECK(a->nmag[k][c] <= XM__MAG_DEPTH);
                for (uint32_t j = 0; j < a->nmag[k][c]; j++) {
                    uintptr_t rx = a->mag[k][c][j];
                    xm__pack *p = xm__pack_of(h, rx);
                    CHECK(p && p == a->magp[k][c][j] && !p->large && p->kind == k &&
                          atomic_load(&p->arena) == i);
                    uint32_t g = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
                    CHECK(xm__bit_get(p->cached, g));
                    CHECK(xm__mag_put_class((uint32_t)(xm__block_size(p, g) >>
                                                       XM__GRAN_SHIFT)) == c);
                    mid_bytes[k] += c >= XM__MAG_EXACT ? xm__block_size(p, g) : 0;
                    mag_entries++;
                }
            }
        CHECK(mid_bytes[0] == a->mag_mid_bytes[0] && mid_bytes[1] == a->mag_mid_bytes[1]);
        size_t st_bytes = 0; /* recycled staging buffers */
        for (uint32_t c = 0; c < XM__STAGE_CLASSES; c++) {
            size_t steps = 0; /* (a cycle would not end: bounded) */
            for (void *q = a->stbuf[c]; q && steps <= XM__STAGE_KEEP / XM__GRAN;
                 memcpy(&q, q, sizeof q), steps++)
                st_bytes += (size_t)(c + 1) << XM__GRAN_SHIFT;
        }
        CHECK(st_bytes == a->stbuf_bytes);
        live_blocks += (size_t)(a->allocs - a->frees);
        live_bytes += a->live_bytes;
        CHECK(a->stcount * 2 <= a->stcap || a->stcap == 0);
        for (size_t w = 0; w < a->nwin; w++) { /* windows: on live published
                                                  blocks of this arena */
            xm__pack *p;
            uint32_t g;
            CHECK(xm__block_find(h, a->win[w].block, &p, &g) == XM_OK);
            CHECK(&h->arenas[atomic_load(&p->arena)] == a);
            CHECK(xm__bit_get(p->pub, g));
            CHECK(a->win[w].rx >= a->win[w].block &&
                  a->win[w].rx + a->win[w].len <=
                      a->win[w].block + xm__block_size(p, g));
            CHECK((a->win[w].buf == NULL) == (h->alias != NULL));
        }
    }
    CHECK(blocks == live_blocks);
    CHECK(kept == atomic_load(&h->kept_bytes));
    CHECK(mag_blocks == mag_entries);
    CHECK(bytes == live_bytes);
    if (h->backend == XM_BACKEND_DUAL)
        CHECK(mapped == atomic_load(&h->resident_bytes));
}

/* White-box tests: where the heap's address ranges are (leak checks). */
void xm__heap_ranges(xm_heap *h, uintptr_t *base, size_t *len, uintptr_t *alias)
{
    *base = h->base;
    *len = h->reserve;
    *alias = (uintptr_t)h->alias;
}

/* Exposed to white-box tests regardless of the compiled debug level. */
void xm__heap_check(xm_heap *h)
{
    xm__arenas_lock_all(h);
    pthread_mutex_lock(&h->lock);
    xm__check_locked(h);
    pthread_mutex_unlock(&h->lock);
    xm__arenas_unlock_all(h);
}
