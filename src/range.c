/*
 * range.c: the free-range set and the purge (quarantine release).
 *
 * Free page runs are kept in a sorted array (h->fr) sized for the worst case
 * at heap creation, so taking and putting never allocate and never fail.
 * Adjacent runs in the same state coalesce on put. Taking is first fit,
 * preferring a run already mapped in the wanted state (no system call: the
 * kernel's ROX cache) over fresh reserve (NONE).
 *
 * Everything here runs under the heap lock (never an arena's: xm_purge
 * retires the arenas' empty packs first, one arena at a time).
 *
 * Purge walks the array once and releases every maximal run of contiguous
 * mapped pages, whatever their state, with one call that drops all rights on
 * the executable view (a fresh PROT_NONE mapping) and one that gives the
 * memfd pages back (fallocate PUNCH_HOLE, which also unmaps them from the
 * writable alias). Runs that never held published bytes have no present
 * executable PTEs: their release is not a revocation.
 */
#include "internal.h"

#include <string.h>

void xm__range_init(xm_heap *h)
{
    h->fr[0].page = 0;
    h->fr[0].npages = h->npages;
    h->fr[0].state = XM__FR_NONE;
    h->fr[0].raised = 0;
    h->nfr = 1;
}

static void range_remove(xm_heap *h, size_t i)
{
    memmove(&h->fr[i], &h->fr[i + 1], (h->nfr - i - 1) * sizeof h->fr[0]);
    h->nfr--;
}

static size_t range_bytes(uint32_t npages)
{
    return (size_t)npages << XM__PAGE_SHIFT;
}

int xm__range_take(xm_heap *h, uint32_t npages, int want, uint32_t *page,
                   int *state, int *raised)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < h->nfr; i++) {
        xm__frange *r = &h->fr[i];
        if (r->npages < npages)
            continue;
        if (r->state == want) {
            best = i;
            break;
        }
        if (r->state == XM__FR_NONE && best == SIZE_MAX)
            best = i;
    }
    if (best == SIZE_MAX)
        return -1;
    xm__frange *r = &h->fr[best];
    *page = r->page;
    *state = r->state;
    *raised = r->raised;
    if (r->state != XM__FR_NONE)
        h->quarantine_bytes -= range_bytes(npages);
    r->page += npages;
    r->npages -= npages;
    if (r->npages == 0)
        range_remove(h, best);
    return 0;
}

void xm__range_put(xm_heap *h, uint32_t page, uint32_t npages, int state,
                   int raised)
{
    /* binary search: first range with r.page > page */
    size_t lo = 0, hi = h->nfr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->fr[mid].page > page)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t i = lo;
    XM_ASSERT(i == 0 || h->fr[i - 1].page + h->fr[i - 1].npages <= page);
    XM_ASSERT(i == h->nfr || page + npages <= h->fr[i].page);
    if (state != XM__FR_NONE)
        h->quarantine_bytes += range_bytes(npages);
    bool left = i > 0 && h->fr[i - 1].state == state &&
                h->fr[i - 1].page + h->fr[i - 1].npages == page;
    bool right = i < h->nfr && h->fr[i].state == state &&
                 page + npages == h->fr[i].page;
    if (left && right) {
        h->fr[i - 1].npages += npages + h->fr[i].npages;
        h->fr[i - 1].raised |= (uint8_t)(raised | h->fr[i].raised);
        range_remove(h, i);
    } else if (left) {
        h->fr[i - 1].npages += npages;
        h->fr[i - 1].raised |= (uint8_t)raised;
    } else if (right) {
        h->fr[i].page = page;
        h->fr[i].npages += npages;
        h->fr[i].raised |= (uint8_t)raised;
    } else {
        XM_ASSERT(h->nfr < (size_t)h->npages + 1);
        memmove(&h->fr[i + 1], &h->fr[i], (h->nfr - i) * sizeof h->fr[0]);
        h->fr[i].page = page;
        h->fr[i].npages = npages;
        h->fr[i].state = (uint8_t)state;
        h->fr[i].raised = (uint8_t)raised;
        h->nfr++;
    }
}

int xm__file_release(xm_heap *h, uint64_t off, size_t len)
{
    if (h->alias) /* DUAL without XM_STRICT keeps no writable descriptor */
        return xm__os_remove(&h->osc, h->alias + off, len);
    return xm__os_punch(&h->osc, h->fd, off, len);
}

/* Releases pages [page, page+n) of mapped free runs. On failure nothing of
 * the run changed state (the caller leaves it mapped). */
static xm_result purge_run(xm_heap *h, uint32_t page, uint32_t n, int raised,
                           bool all_dead)
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
    if (h->alias || h->fd >= 0) {
        /* The memory goes back to the system. If this fails the pages stay
           in the file (no right anywhere but the alias) until destroy. */
        if (xm__file_release(h, (uint64_t)page << XM__PAGE_SHIFT, len) == 0 &&
            raised && h->alias)
            h->osc.revocations++; /* the alias PTEs went away too */
    }
    atomic_fetch_sub(&h->resident_bytes, len);
    h->purge_runs++;
    return XM_OK;
}

xm_result xm__purge_locked(xm_heap *h)
{
    xm_result res = XM_OK;
    size_t i = 0;
    while (i < h->nfr) {
        if (h->fr[i].state == XM__FR_NONE) {
            i++;
            continue;
        }
        size_t j = i;
        int raised = 0;
        uint32_t n = 0, dead = 0;
        while (j < h->nfr && h->fr[j].state != XM__FR_NONE &&
               h->fr[j].page == h->fr[i].page + n) {
            raised |= h->fr[j].raised;
            if (h->fr[j].state == XM__FR_DEAD)
                dead += h->fr[j].npages;
            n += h->fr[j].npages;
            j++;
        }
        xm_result r = purge_run(h, h->fr[i].page, n, raised, dead == n);
        if (r != XM_OK) {
            res = r;
            i = j;
            continue;
        }
        /* states -> NONE, then merge runs i..j-1 and their NONE neighbours */
        h->quarantine_bytes -= range_bytes(n);
        h->revoke_pending -= dead;
        h->fr[i].npages = n;
        h->fr[i].state = XM__FR_NONE;
        h->fr[i].raised = 0;
        memmove(&h->fr[i + 1], &h->fr[j], (h->nfr - j) * sizeof h->fr[0]);
        h->nfr -= j - i - 1;
        if (i + 1 < h->nfr && h->fr[i + 1].state == XM__FR_NONE &&
            h->fr[i + 1].page == h->fr[i].page + h->fr[i].npages) {
            h->fr[i].npages += h->fr[i + 1].npages;
            range_remove(h, i + 1);
        }
        if (i > 0 && h->fr[i - 1].state == XM__FR_NONE &&
            h->fr[i - 1].page + h->fr[i - 1].npages == h->fr[i].page) {
            h->fr[i - 1].npages += h->fr[i].npages;
            range_remove(h, i);
            i--;
        }
        i++;
    }
    h->purges++;
    return res;
}

/* Purges past the lazy limit, and at every release while freed FLIP code
 * still has its rights (XM__FR_DEAD: a free could not drop them). */
void xm__maybe_purge_locked(xm_heap *h)
{
    if (h->revoke_pending ||
        (h->lazy_limit != SIZE_MAX && h->quarantine_bytes > h->lazy_limit))
        (void)xm__purge_locked(h); /* a failure leaves it for next time */
}
