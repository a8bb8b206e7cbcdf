/* SPDX-License-Identifier: MIT */
/*
 * block.c: the public calls on one block: xm_alloc, xm_alloc_data,
 * xm_publish, xm_free, xm_query and xm_free_async. Checks arguments (bad
 * input never reaches the subsystems), tries the fast path (fast.h, included
 * here only, so each public call is one function), else enters (call.c),
 * locks the block's arena and calls pack.c. xm_free_async only records the
 * request (deferred.c drains it). Public-API layer: calls down only.
 */
#include "internal.h"
#include "pkeys.h"
#include "fast.h"

/* The general paths, out of line so that the fast paths in the public
 * functions below need few registers. */
#define XM__NOINLINE __attribute__((noinline))

/* The size and alignment rules of xm_alloc and xm_load (h and out
 * non-NULL). */
static xm_result check_size(const xm_heap *h, size_t size, size_t align)
{
    if (size == 0 || size > SIZE_MAX / 4)
        return XM_EINVAL;
    if (align && ((align & (align - 1)) || align > XM__PAGE))
        return XM_EINVAL;
    return size > h->reserve ? XM_ENOMEM : XM_OK;
}

/* Whether other threads' frees wait on some arena (deferred.c); an
 * allocation that found no room completes them all (they may hold it) and
 * tries again: the own arena a stays locked across, the others are locked
 * in index order after it is dropped. */
static bool remote_waiting(xm_heap *h)
{
    for (unsigned i = 0; i < XM__ARENAS; i++)
        if (atomic_load_explicit(&h->arenas[i].rfree, memory_order_relaxed))
            return true;
    return false;
}

static void remote_drain_all(xm_heap *h, xm__arena *a)
{
    xm__arena_unlock(a);
    xm__arenas_lock_all(h); /* completes them */
    xm__arenas_unlock_all(h);
    xm__arena_lock(h, a);
    xm__remote_drain_if(h, a);
}

static XM__NOINLINE xm_result alloc_slow(xm_heap *h, int kind, size_t size,
                                         size_t align, xm_block *out)
{
    if (!h || !out)
        return XM_EINVAL;
    xm_result r = check_size(h, size, align);
    if (r != XM_OK)
        return r;
    r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__arena *a = xm__my_arena(h);
    xm__arena_lock(h, a);
    xm__remote_drain_if(h, a);
    r = xm__block_alloc_locked(h, a, kind, size, align, out);
    if (r == XM_ENOMEM && remote_waiting(h)) {
        remote_drain_all(h, a);
        r = xm__block_alloc_locked(h, a, kind, size, align, out);
    }
    return xm__leave(h, a, r);
}

/* The fast path takes what is valid and small enough for a magazine; the
 * general path checks everything else. */
static XM__FAST xm_result alloc_kind(xm_heap *h, int kind, size_t size,
                                   size_t align, xm_block *out)
{
    if (h && out && size - 1 < XM__SMALL_MAX &&
        !(align & (align - 1)) && align <= XM__LINE_PAIR &&
        xm__alloc_fast(h, kind, size, align, out))
        return xm__leave(h, NULL, XM_OK);
    return alloc_slow(h, kind, size, align, out);
}

/* XM_PKEYS (pkeys.h): every public call that may write the alias runs
 * with the alias opened to its thread, and the thread's PKRU is back as it
 * was when it returns (the drain opens it for itself, deferred.c). With
 * XM_INPLACE the caller writes rw itself: a block allocated holds the
 * thread's right until its publish or free. Out of line: a heap without
 * keys pays one test of h->pkey. */
static XM__NOINLINE xm_result alloc_pk(xm_heap *h, int kind, size_t size,
                                       size_t align, xm_block *out)
{
    unsigned old = xm__pk_open(h);
    xm_result r = alloc_kind(h, kind, size, align, out);
    xm__pk_close(old);
    if (r == XM_OK && (h->flags & XM_INPLACE))
        xm__pk_hold(h);
    return r;
}

xm_result xm_alloc(xm_heap *h, size_t size, size_t align, xm_block *out)
{
    if (h && h->pkey)
        return alloc_pk(h, XM__K_CODE, size, align, out);
    return alloc_kind(h, XM__K_CODE, size, align, out);
}

xm_result xm_alloc_data(xm_heap *h, size_t size, size_t align, xm_block *out)
{
    if (h && h->pkey)
        return alloc_pk(h, XM__K_DATA, size, align, out);
    return alloc_kind(h, XM__K_DATA, size, align, out);
}

static XM__NOINLINE xm_result publish_slow(xm_heap *h, void *rx, int prot)
{
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, true, XM__AT_BLOCK, (uintptr_t)rx, 0, &p, &g, &r);
    if (r == XM_OK)
        r = xm__block_publish_locked(h, p, g, prot);
    return xm__leave(h, a, r);
}

static XM__NOINLINE xm_result publish_pk(xm_heap *h, void *rx, int prot)
{
    unsigned old = xm__pk_open(h);
    xm_result r = XM_OK;
    if (!xm__publish_fast(h, (uintptr_t)rx, prot))
        r = publish_slow(h, rx, prot);
    else
        r = xm__leave(h, NULL, XM_OK);
    xm__pk_close(old);
    if (r == XM_OK && (h->flags & XM_INPLACE))
        xm__pk_release(h);
    return r;
}

xm_result xm_publish(xm_heap *h, void *rx, int prot)
{
    if (!h || !rx || (prot != XM_PROT_RX && prot != XM_PROT_R))
        return XM_EINVAL;
    if (h->pkey)
        return publish_pk(h, rx, prot);
    if (xm__publish_fast(h, (uintptr_t)rx, prot))
        return xm__leave(h, NULL, XM_OK);
    return publish_slow(h, rx, prot);
}

/* The heaps that have no place to copy into directly (XM_STRICT: no
 * writable mapping of code; FLIP: the block's pages change rights at
 * publish) load through the two calls; a publish that fails frees the
 * block again. */
static XM__NOINLINE xm_result load_two_step(xm_heap *h, int kind, const void *src,
                                            size_t len, size_t align, xm_block *out)
{
    xm_block b;
    xm_result r = kind == XM__K_CODE ? xm_alloc(h, len, align, &b)
                                     : xm_alloc_data(h, len, align, &b);
    if (r != XM_OK)
        return r;
    memcpy(b.rw, src, len);
    r = xm_publish(h, b.rx, kind == XM__K_CODE ? XM_PROT_RX : XM_PROT_R);
    if (r != XM_OK) {
        (void)xm_free(h, b.rx);
        return r;
    }
    out->rx = b.rx;
    out->rw = (h->flags & XM_INPLACE) ? b.rw : NULL;
    out->size = b.size;
    return XM_OK;
}

xm_result xm_load(xm_heap *h, const void *src, size_t len, size_t align,
                  int prot, xm_block *out)
{
    if (!h || !src || !out || (prot != XM_PROT_RX && prot != XM_PROT_R))
        return XM_EINVAL;
    xm_result r = check_size(h, len, align);
    if (r != XM_OK)
        return r;
    int kind = prot == XM_PROT_RX ? XM__K_CODE : XM__K_DATA;
    if (!xm__load_direct(h))
        return load_two_step(h, kind, src, len, align, out);
    /* the copy runs under the arena's lock: src's pages fault in before
       it (a cold file mapping would stall the arena's other callers) */
    for (size_t i = 0; i < len; i += XM__PAGE)
        (void)*(const volatile char *)((const char *)src + i);
    (void)*(const volatile char *)((const char *)src + len - 1);
    unsigned old = h->pkey ? xm__pk_open(h) : 0;
    if (len - 1 < XM__SMALL_MAX &&
        xm__load_fast(h, kind, src, len, align, out))
        r = xm__leave(h, NULL, XM_OK);
    else if ((r = xm__enter(h, true)) == XM_OK) {
        xm__arena *a = xm__my_arena(h);
        xm__arena_lock(h, a);
        xm__remote_drain_if(h, a);
        r = xm__block_load_locked(h, a, kind, src, len, align, out);
        if (r == XM_ENOMEM && remote_waiting(h)) {
            remote_drain_all(h, a);
            r = xm__block_load_locked(h, a, kind, src, len, align, out);
        }
        r = xm__leave(h, a, r);
    }
    if (h->pkey)
        xm__pk_close(old);
    return r;
}

/* *unpub (may be NULL): whether the block freed was unpublished. */
static XM__NOINLINE xm_result free_slow_ex(xm_heap *h, void *rx, bool *unpub)
{
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, true, XM__AT_BLOCK, (uintptr_t)rx, 0, &p, &g, &r);
    if (r == XM_OK && unpub)
        *unpub = !xm__bit_get(p->pub, g);
    if (r == XM_OK)
        r = xm__block_free_locked(h, p, g);
    return xm__leave(h, a, r);
}

static XM__NOINLINE xm_result free_slow(xm_heap *h, void *rx)
{
    return free_slow_ex(h, rx, NULL);
}

static XM__NOINLINE xm_result free_pk(xm_heap *h, void *rx)
{
    unsigned old = xm__pk_open(h);
    bool unpub = false;
    xm_result r = XM_OK;
    if (xm__free_fast(h, (uintptr_t)rx)) /* published blocks only */
        r = xm__leave(h, NULL, XM_OK);
    else
        r = free_slow_ex(h, rx, &unpub);
    xm__pk_close(old);
    if (r == XM_OK && unpub && (h->flags & XM_INPLACE))
        xm__pk_release(h);
    return r;
}

xm_result xm_free(xm_heap *h, void *rx)
{
    if (!h || !rx)
        return XM_EINVAL;
    if (h->pkey)
        return free_pk(h, rx);
    if (xm__free_fast(h, (uintptr_t)rx))
        return xm__leave(h, NULL, XM_OK);
    int remote = xm__free_remote(h, (uintptr_t)rx);
    if (remote)
        return xm__leave(h, NULL, remote > 0 ? XM_OK : XM_EBADPTR);
    return free_slow(h, rx);
}

xm_result xm_query(xm_heap *h, const void *addr, xm_block *out)
{
    if (!h || !out)
        return XM_EINVAL;
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, false, XM__AT_CONTAINING, (uintptr_t)addr, 0,
                                &p, &g, &r);
    if (r == XM_OK) {
        uintptr_t rx = xm__block_addr(p, g);
        out->rx = (void *)rx;
        out->size = xm__block_size(p, g);
        if (h->flags & XM_INPLACE)
            out->rw = (h->alias ? h->alias : h->shadow) + (rx - h->base);
        else if (xm__bit_get(p->pub, g))
            out->rw = NULL;
        else if (h->backend == XM_BACKEND_FLIP)
            out->rw = (void *)rx;
        else
            out->rw = xm__stage_get(a, rx);
    }
    return xm__leave(h, a, r);
}

xm_result xm_free_async(xm_heap *h, void *rx)
{
    if (!h || !rx)
        return XM_EINVAL;
    return xm__free_request(h, rx);
}
