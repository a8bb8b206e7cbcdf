/* SPDX-License-Identifier: MIT */
/*
 * call.c: every public call's entry and exit (xm__enter, xm__leave), below
 * the public-API files: on entry deferred frees are completed and a frozen
 * fork child refuses what would change the heap; on exit the arena lock is
 * dropped and, at XM_DEBUG >= 3, the whole structure is walked (check.c).
 */
#include "internal.h"

/* Every call starts here, before it takes a lock: deferred frees are
 * completed; a frozen fork child refuses what would change the heap. */
xm_result xm__enter(xm_heap *h, bool mutating)
{
    if (h->forked)
        return mutating ? XM_ESTATE : XM_OK;
    xm__drain_if_needed(h);
    return XM_OK;
}

xm__arena *xm__enter_at(xm_heap *h, bool mutating, xm__at how, uintptr_t addr,
                        size_t len, xm__pack **p, uint32_t *g, xm_result *r)
{
    if ((*r = xm__enter(h, mutating)) != XM_OK)
        return NULL;
    if (how == XM__AT_BLOCK)
        return xm__lock_block(h, addr, p, g, r);
    if (how == XM__AT_RANGE)
        return xm__lock_range(h, addr, len, p, g, r);
    xm__arena *a = xm__lock_pack_of(h, addr, p);
    *r = a ? xm__block_containing(*p, addr, g) : XM_EBADPTR;
    if (*r == XM_OK && xm__remote_claimed(a, *p, *g))
        *r = XM_EBADPTR;
    return a;
}

xm_result xm__leave(xm_heap *h, xm__arena *a, xm_result r)
{
    if (a)
        xm__arena_unlock(a);
#if XM_DEBUG >= 3
    xm__heap_check(h);
#else
    (void)h;
#endif
    return r;
}
