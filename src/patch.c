/* SPDX-License-Identifier: MIT */
/*
 * patch.c: the public calls that change published code: xm_patch, write
 * windows (xm_write_begin, xm_write_end; the window records are wintab.c),
 * and XM_INPLACE's xm_commit, xm_alias_offset and xm_block_state (the
 * private copies are inplace.c). xm_patch_live, with its trap handler, is
 * live.c. Public-API layer: calls down only.
 */
#include "internal.h"
#include "pkeys.h"
#include "arch.h"

#include <string.h>

static xm_result patch_impl(xm_heap *h, void *dst, const void *src, size_t len);

xm_result xm_patch(xm_heap *h, void *dst, const void *src, size_t len)
{
    if (!h || !h->pkey)
        return patch_impl(h, dst, src, len);
    unsigned old = xm__pk_open(h);
    xm_result r = patch_impl(h, dst, src, len);
    xm__pk_close(old);
    return r;
}

static xm_result patch_impl(xm_heap *h, void *dst, const void *src, size_t len)
{
    if (!h || !dst || !src || len == 0)
        return XM_EINVAL;
    if ((uintptr_t)dst + len < (uintptr_t)dst)
        return XM_ERANGE;
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, true, XM__AT_RANGE, (uintptr_t)dst, len, &p, &g, &r);
    if (r == XM_OK)
        r = xm__block_patch_locked(h, p, g, (uintptr_t)dst, src, len);
    return xm__leave(h, a, r);
}

static xm_result begin_impl(xm_heap *h, void *rx, size_t len, void **rw);
static xm_result end_impl(xm_heap *h, void *rx);

/* XM_PKEYS (pkeys.h): a window holds its thread's right to write the alias
 * from begin to end; both calls also run opened, like every writing call
 * (a drain may run in them). */
xm_result xm_write_begin(xm_heap *h, void *rx, size_t len, void **rw)
{
    if (!h || !h->pkey)
        return begin_impl(h, rx, len, rw);
    unsigned old = xm__pk_open(h);
    xm_result r = begin_impl(h, rx, len, rw);
    xm__pk_close(old);
    if (r == XM_OK)
        xm__pk_hold(h);
    return r;
}

xm_result xm_write_end(xm_heap *h, void *rx)
{
    if (!h || !h->pkey)
        return end_impl(h, rx);
    unsigned old = xm__pk_open(h);
    xm_result r = end_impl(h, rx);
    xm__pk_close(old);
    if (r == XM_OK)
        xm__pk_release(h);
    return r;
}

static xm_result begin_impl(xm_heap *h, void *rx, size_t len, void **rw)
{
    if (!h || !rx || !rw || len == 0)
        return XM_EINVAL;
    uintptr_t dst = (uintptr_t)rx;
    if (dst + len < dst)
        return XM_ERANGE;
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, true, XM__AT_RANGE, dst, len, &p, &g, &r);
    if (r != XM_OK)
        return xm__leave(h, a, r);
    uintptr_t block = xm__block_addr(p, g);
    if (!xm__bit_get(p->pub, g))
        return xm__leave(h, a, XM_ESTATE);
    for (size_t i = 0; i < a->nwin; i++) {
        const xm__window *w = &a->win[i];
        if (w->block == block && dst < w->rx + w->len && w->rx < dst + len)
            return xm__leave(h, a, XM_ESTATE);
    }
    if (a->nwin == a->capwin) {
        size_t cap = a->capwin ? a->capwin * 2 : 8;
        xm__window *nw = xm__mem_realloc(a->win, cap * sizeof *nw);
        if (!nw)
            return xm__leave(h, a, XM_ENOMEM);
        a->win = nw;
        a->capwin = cap;
    }
    void *buf = NULL;
    if (h->alias) {
        *rw = h->alias + (dst - h->base);
    } else {
        buf = xm__mem_alloc(len);
        if (!buf)
            return xm__leave(h, a, XM_ENOMEM);
        memcpy(buf, rx, len); /* published bytes are readable at rx */
        *rw = buf;
    }
    a->win[a->nwin++] = (xm__window){dst, block, len, buf};
    return xm__leave(h, a, XM_OK);
}

static xm_result end_impl(xm_heap *h, void *rx)
{
    if (!h || !rx)
        return XM_EINVAL;
    uintptr_t dst = (uintptr_t)rx;
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__pack *p;
    xm__arena *a = xm__lock_pack_of(h, dst, &p);
    if (!a)
        return xm__leave(h, NULL, XM_ESTATE); /* no block, so no window */
    size_t i = 0;
    while (i < a->nwin && a->win[i].rx != dst)
        i++;
    if (i == a->nwin)
        return xm__leave(h, a, XM_ESTATE);
    xm__window *w = &a->win[i];
    uint32_t g;
    r = xm__block_range(p, dst, w->len, &g);
    XM_ASSERT(r == XM_OK); /* a block's free drops its windows */
    if (xm__remote_claimed(a, p, g)) { /* freed by another thread, not
                                          completed: as if it were; what the
                                          window wrote becomes traps again */
        if (!w->buf)
            xm__fill_freed(h->alias + (xm__block_addr(p, g) - h->base), xm__block_size(p, g));
        xm__windows_drop_locked(a, w->block);
        return xm__leave(h, a, XM_ESTATE);
    }
    if (w->buf) {
        r = xm__block_patch_locked(h, p, g, dst, w->buf, w->len);
        if (r != XM_OK)
            return xm__leave(h, a, r); /* still open, code unchanged */
    } else {
        if (p->kind == XM__K_CODE)
            xm__icache_sync(rx, w->len);
        xm__valgrind_discard(h, rx, w->len);
        a->patches++;
    }
    xm__window_remove(a, i);
    return xm__leave(h, a, XM_OK);
}

xm_result xm_alias_offset(xm_heap *h, ptrdiff_t *out)
{
    if (!h || !out)
        return XM_EINVAL;
    if (!(h->flags & XM_INPLACE))
        return XM_ENOTSUP;
    char *rw = h->alias ? h->alias : h->shadow;
    *out = (ptrdiff_t)((uintptr_t)rw - h->base);
    return XM_OK;
}

xm_result xm_commit(xm_heap *h, void *rx, size_t len)
{
    if (!h || !rx || len == 0)
        return XM_EINVAL;
    if (!(h->flags & XM_INPLACE))
        return XM_ENOTSUP;
    uintptr_t dst = (uintptr_t)rx;
    if (dst + len < dst)
        return XM_ERANGE;
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, true, XM__AT_RANGE, dst, len, &p, &g, &r);
    if (r == XM_OK && !xm__bit_get(p->pub, g))
        r = XM_ESTATE;
    if (r == XM_OK) {
        if (h->alias) { /* DUAL: the bytes are there; the sync is left */
            if (p->kind == XM__K_CODE)
                xm__icache_sync(rx, len);
            xm__valgrind_discard(h, rx, len);
        } else {
            r = xm__block_write_locked(h, p, g, dst, h->shadow + (dst - h->base), len);
        }
        if (r == XM_OK)
            a->patches++;
    }
    return xm__leave(h, a, r);
}

xm_result xm_block_state(xm_heap *h, const void *addr, unsigned *state)
{
    if (!h || !state)
        return XM_EINVAL;
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, false, XM__AT_CONTAINING, (uintptr_t)addr, 0,
                                &p, &g, &r);
    if (r == XM_OK)
        *state = (xm__bit_get(p->pub, g) ? XM_BLOCK_PUBLISHED : 0u) |
                 (p->kind == XM__K_DATA ? XM_BLOCK_DATA : 0u) |
                 ((h->flags & XM_INPLACE) ? XM_BLOCK_INPLACE : 0u);
    return xm__leave(h, a, r);
}
