/* SPDX-License-Identifier: MIT */
/*
 * heap.c: the public calls on a whole heap: xm_heap_create (checks the
 * options; meta.c builds the heap), xm_heap_destroy, xm_heap_stats and
 * xm_purge. Public-API layer: calls down only (call.c, meta.c, range.c,
 * the arena locks), never another public function.
 *
 * Locking: one mutex per heap guards everything but the async-free path
 * (deferred.c), which uses atomics only; each arena has its own lock
 * (arena_lock.c).
 */
#include "internal.h"
#include "pkeys.h"
#include "arch.h"

#include <string.h>

xm_result xm_heap_create(const xm_options *opt, xm_heap **out)
{
    if (!out)
        return XM_EINVAL;
    *out = NULL;
    xm_options o = XM_OPTIONS_INIT;
    if (opt) {
        if (opt->size != sizeof(xm_options))
            return XM_EINVAL;
        o = *opt;
    }
    if (o.flags & ~XM_FLAGS_ALL_)
        return XM_EINVAL;
    if ((o.flags & XM_PKEYS) &&
        ((o.flags & XM_STRICT) || o.backend == XM_BACKEND_FLIP))
        return XM_EINVAL; /* keys guard the alias, which these lack */
    if (o.backend != XM_BACKEND_AUTO && o.backend != XM_BACKEND_DUAL &&
        o.backend != XM_BACKEND_FLIP)
        return XM_EINVAL;
    if (xm__os_page_size() != (int)XM__PAGE)
        return XM_ENOTSUP;
    size_t reserve = o.reserve ? o.reserve : XM__DEFAULT_RESERVE;
    if (o.near && !o.reserve)
        reserve = XM__NEAR_RESERVE;
    if (reserve > ((size_t)1 << 44) || reserve < XM__PACK_PAGES * XM__PAGE)
        return XM_EINVAL;
    reserve = (reserve + XM__PAGE - 1) & ~(size_t)(XM__PAGE - 1);
    if (o.near && reserve > XM__NEAR_REACH - 64 * XM__PAGE)
        return XM_EINVAL;
    return xm__heap_new(&o, reserve, out);
}

void xm_heap_destroy(xm_heap *h)
{
    if (!h)
        return;
    xm__heap_free(h);
}

static xm_result purge_impl(xm_heap *h);

xm_result xm_purge(xm_heap *h)
{
    if (!h)
        return XM_EINVAL;
    if (!h->pkey)
        return purge_impl(h);
    unsigned old = xm__pk_open(h);
    xm_result r = purge_impl(h);
    xm__pk_close(old);
    return r;
}

static xm_result purge_impl(xm_heap *h)
{
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__arenas_lock_all(h);
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        xm__arena_retire_empty_locked(h, &h->arenas[i]);
        xm__stage_big_drop(&h->arenas[i]); /* kept for later blocks */
    }
    xm__arenas_unlock_all(h);
    pthread_mutex_lock(&h->lock);
    r = xm__purge_locked(h);
    pthread_mutex_unlock(&h->lock);
    return xm__leave(h, NULL, r);
}

xm_result xm_heap_stats(xm_heap *h, xm_stats *out)
{
    if (!h || !out)
        return XM_EINVAL;
    (void)xm__enter(h, false);
    xm_stats s;
    memset(&s, 0, sizeof s);
    xm__arenas_lock_all(h);
    size_t kept = atomic_load(&h->kept_bytes); /* the arenas' empty packs */
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        xm__arena *a = &h->arenas[i];
        s.live_blocks += (size_t)(a->allocs - a->frees);
        s.live_bytes += a->live_bytes;
        s.staging_bytes += a->staging_bytes;
        s.allocs += a->allocs;
        s.frees += a->frees;
        s.publishes += a->publishes;
        s.patches += a->patches;
    }
    xm__arenas_unlock_all(h);
    pthread_mutex_lock(&h->lock);
    s.backend = h->backend;
    s.flags = h->flags;
    s.reserved_bytes = h->reserve;
    s.resident_bytes = atomic_load(&h->resident_bytes);
    /* what a purge releases: the free runs, and the empty packs the
       arenas keep in place */
    s.quarantine_bytes = h->quarantine_bytes + kept;
    s.async_frees = atomic_load(&h->async_frees);
    s.purges = h->purges;
    s.syscalls = atomic_load(&h->osc.syscalls);
    s.revocations = atomic_load(&h->osc.revocations);
    s.purge_runs = h->purge_runs;
    pthread_mutex_unlock(&h->lock);
    *out = s;
    return xm__leave(h, NULL, XM_OK);
}
