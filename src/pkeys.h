/* SPDX-License-Identifier: MIT */
/*
 * pkeys.h: XM_PKEYS, a thread's right to write the writable alias.
 *
 * The alias of an XM_PKEYS heap is tagged with a protection key of its own
 * (h->pkey, allocated at creation with "access disabled" for the creating
 * thread). Whether a thread may touch pages of that key is two bits of its
 * own PKRU register (arch.h), changed with WRPKRU in a few cycles, without
 * a system call and without a TLB shootdown. What each thread starts with:
 *   - the first thread, every exec'd program and every signal handler: the
 *     kernel's default PKRU (0x55555554), access disabled for every key but
 *     0, so for the alias too;
 *   - a new thread: its creator's PKRU (so, outside the library, "denied");
 *   - the thread that allocates the key: the rights given to pkey_alloc
 *     ("access disabled" here); pkey_alloc changes no other thread's PKRU;
 *   - a forked child: the forking thread's PKRU (and no alias: DONTFORK).
 * So a thread may write the alias only while the library opened it:
 *   - scoped (xm__pk_open/xm__pk_close): a public call that writes code
 *     saves the PKRU, clears the key's two bits, and writes the saved value
 *     back before it returns, whatever the path. A signal handler that runs
 *     meanwhile starts with the kernel's default (denied) and the kernel
 *     restores the interrupted PKRU from the signal frame at sigreturn;
 *   - held (xm__pk_hold/xm__pk_release): a write window from xm_write_begin
 *     to xm_write_end, and XM_INPLACE blocks from xm_alloc to their publish
 *     or free. Holds are counted per thread and key; the last release puts
 *     back the key's two bits as they were before the first hold.
 */
#ifndef XM_PKEYS_H
#define XM_PKEYS_H

#include "internal.h"
#include "arch.h"

static inline unsigned xm__pk_bits(int key) { return 3u << (2 * key); }

/* Allows the calling thread to read and write h's alias; returns the PKRU
 * to hand to xm__pk_close. h->pkey must be non-zero. */
static inline unsigned xm__pk_open(const xm_heap *h)
{
    unsigned old = xm__rdpkru();
    xm__wrpkru(old & ~xm__pk_bits(h->pkey));
    return old;
}

static inline void xm__pk_close(unsigned old) { xm__wrpkru(old); }

/* pkeys.c */
void xm__pk_hold(xm_heap *h);
void xm__pk_release(xm_heap *h);
/* Creation (after the alias is mapped) and destruction (after it is gone).
 * XM_ENOTSUP: no usable keys here; XM_ENOMEM: every key taken. */
xm_result xm__pk_setup(xm_heap *h);
void xm__pk_teardown(xm_heap *h);

#endif
