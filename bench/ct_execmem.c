/* SPDX-License-Identifier: MIT */
/*
 * ct_execmem.c: the library as a contender. One heap per round, made from
 * the row's settings (backend in variant, flags, reserve; CT_XM_DEFAULTS:
 * xm_heap_create(NULL)). get = xm_alloc, write through the block's rw,
 * xm_publish RX (CT_XM_LOAD: xm_load of the bytes when they fill the
 * block); put = xm_free. counters = xm_heap_stats's system calls
 * and revocations. A new execmem variant (another backend or flag) is a row
 * in a program's table, not a new file.
 */
#include <execmem.h>

#include "contender.h"

#include <string.h>

static bool xm_create(contender *c)
{
    xm_heap *h = NULL;
    xm_result r;
    if (c->variant == CT_XM_DEFAULTS) {
        r = xm_heap_create(NULL, &h);
    } else {
        xm_options o = XM_OPTIONS_INIT;
        o.reserve = c->reserve;
        o.backend = (xm_backend)c->variant;
        o.flags = c->flags & ~CT_XM_LOAD;
        r = xm_heap_create(&o, &h);
    }
    c->state = h;
    return r == XM_OK;
}

static void xm_destroy(contender *c)
{
    xm_heap_destroy(c->state);
    c->state = NULL;
}

static void *xm_get(contender *c, size_t len, size_t wlen, size_t align)
{
    xm_heap *h = c->state;
    xm_block b;
    if ((c->flags & CT_XM_LOAD) && wlen == len)
        return xm_load(h, ct_code, len, align, XM_PROT_RX, &b) == XM_OK ? b.rx : NULL;
    if (xm_alloc(h, len, align, &b) != XM_OK)
        return NULL;
    memcpy(b.rw, ct_code, wlen);
    if (xm_publish(h, b.rx, XM_PROT_RX) != XM_OK)
        return NULL;
    return b.rx;
}

static void xm_put(contender *c, void *rx, size_t len)
{
    (void)len;
    xm_free(c->state, rx);
}

static bool xm_counters(const contender *c, ct_counters *out)
{
    xm_stats s;
    if (!c->state || xm_heap_stats(c->state, &s) != XM_OK)
        return false;
    out->syscalls = s.syscalls;
    out->revocations = s.revocations;
    return true;
}

struct xm_heap *ct_execmem_heap(const contender *c)
{
    return c->cls == &ct_execmem ? c->state : NULL;
}

const ct_class ct_execmem = {true, true, xm_create, xm_destroy, xm_get, xm_put,
                             xm_counters};
