/* SPDX-License-Identifier: MIT */
/*
 * pkeys.c: XM_PKEYS (see pkeys.h for who may write the alias when): the
 * key's allocation and the per-thread holds of write windows and XM_INPLACE
 * blocks. Every system call goes through the OS layer (pkey_alloc,
 * pkey_mprotect, pkey_free: once per heap); PKRU is written by WRPKRU.
 */
#include "pkeys.h"

#include <errno.h>

/* Per thread and key (x86-64 has 16): open holds, and the key's two PKRU
 * bits before the first one. */
static _Thread_local unsigned xm__pk_holds[16];
static _Thread_local unsigned xm__pk_prev[16];

void xm__pk_hold(int key)
{
    if (key <= 0 || key >= 16)
        return;
    if (xm__pk_holds[key]++ == 0) {
        unsigned v = xm__rdpkru();
        xm__pk_prev[key] = v & xm__pk_bits(key);
        xm__wrpkru(v & ~xm__pk_bits(key));
    }
}

void xm__pk_release(int key)
{
    if (key <= 0 || key >= 16 || xm__pk_holds[key] == 0)
        return;
    if (--xm__pk_holds[key] == 0)
        xm__wrpkru((xm__rdpkru() & ~xm__pk_bits(key)) | xm__pk_prev[key]);
}

xm_result xm__pk_setup(xm_heap *h)
{
    if (!XM__HAVE_PKRU || !xm__pkru_usable())
        return XM_ENOTSUP; /* no system call: WRPKRU would raise #UD */
    int k = xm__os_pkey_alloc(&h->osc, XM__PKEY_DENY_ACCESS);
    if (k == -ENOSPC)
        return XM_ENOMEM; /* the CPU has keys (OSPKE): all are taken */
    if (k < 0)
        return XM_ENOTSUP; /* EINVAL, ENOSYS: no keys from this kernel */
    if (k >= 16) { /* not x86-64's PKRU layout */
        (void)xm__os_pkey_free(&h->osc, k);
        return XM_ENOTSUP;
    }
    int r = xm__os_pkey_protect(&h->osc, h->alias, h->reserve,
                                XM__P_R | XM__P_W, k);
    if (r) {
        (void)xm__os_pkey_free(&h->osc, k);
        return xm__os_result(r, false);
    }
    h->pkey = k;
    return XM_OK;
}

void xm__pk_teardown(xm_heap *h)
{
    if (h->pkey > 0)
        (void)xm__os_pkey_free(&h->osc, h->pkey);
    h->pkey = 0;
}
