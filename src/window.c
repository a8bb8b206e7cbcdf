/* SPDX-License-Identifier: MIT */
/*
 * window.c: write windows on published code (xm_write_begin/xm_write_end).
 *
 * A window is a record in the arena of its block's pack: its start, length,
 * block, and a private copy of the bytes where no writable mapping of code
 * may exist (XM_STRICT, FLIP). In plain DUAL the window is the persistent
 * writable alias, so begin and end make no system call. End writes a copy
 * back through xm__block_patch_locked, which is failure-atomic: if the OS
 * refuses, the window stays open and the code is unchanged.
 *
 * Records live in ordinary memory, under the arena lock; the list is short
 * (windows are open for the length of a patch), so it is searched linearly.
 */
#include "internal.h"
#include "pkeys.h"
#include "arch.h"

#include <string.h>

static void window_remove(xm__arena *a, size_t i)
{
    xm__mem_free(a->win[i].buf);
    a->win[i] = a->win[--a->nwin];
}

void xm__windows_drop_locked(xm__arena *a, uintptr_t block)
{
    for (size_t i = 0; i < a->nwin;) {
        if (a->win[i].block == block)
            window_remove(a, i);
        else
            i++;
    }
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
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__lock_range(h, dst, len, &p, &g, &r);
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
    window_remove(a, i);
    return xm__leave(h, a, XM_OK);
}
