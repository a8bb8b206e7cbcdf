/* SPDX-License-Identifier: MIT */
/*
 * pkeys.c: XM_PKEYS (see pkeys.h for who may write the alias when): the
 * key's allocation and the per-thread holds of write windows and XM_INPLACE
 * blocks. Every system call goes through the OS layer (pkey_alloc,
 * pkey_mprotect, pkey_free: once per heap); PKRU is written by WRPKRU.
 */
#include "pkeys.h"

#include <errno.h>
#include <stdatomic.h>

/* Per thread and key (x86-64 has 16): the heap the holds are for (its
 * pk_id: a key number is reused by the next heap once freed, and holds
 * left by a destroyed heap mean nothing for it), how many are open, and
 * the key's two PKRU bits before the first one. */
static _Atomic uint64_t pk_ids;
static _Thread_local struct {
    uint64_t id;
    unsigned n, prev;
} pk_hold[16];

void xm__pk_hold(xm_heap *h)
{
    int k = h->pkey;
    unsigned v = xm__rdpkru();
    if (pk_hold[k].id != h->pk_id) {
        pk_hold[k].id = h->pk_id;
        pk_hold[k].n = 0;
    }
    if (pk_hold[k].n++ == 0)
        pk_hold[k].prev = v & xm__pk_bits(k);
    xm__wrpkru(v & ~xm__pk_bits(k)); /* every time: cheap, and robust */
}

void xm__pk_release(xm_heap *h)
{
    int k = h->pkey;
    if (pk_hold[k].id != h->pk_id || pk_hold[k].n == 0)
        return;
    if (--pk_hold[k].n == 0)
        xm__wrpkru((xm__rdpkru() & ~xm__pk_bits(k)) | pk_hold[k].prev);
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
    h->pk_id = atomic_fetch_add(&pk_ids, 1) + 1;
    return XM_OK;
}

void xm__pk_teardown(xm_heap *h)
{
    if (h->pkey > 0 && pk_hold[h->pkey].id == h->pk_id && pk_hold[h->pkey].n) {
        pk_hold[h->pkey].n = 1; /* this thread's holds end with the heap */
        xm__pk_release(h);
    }
    if (h->pkey > 0)
        (void)xm__os_pkey_free(&h->osc, h->pkey);
    h->pkey = 0;
}
