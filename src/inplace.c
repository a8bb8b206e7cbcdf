/* SPDX-License-Identifier: MIT */
/*
 * inplace.c: XM_INPLACE in every backend: the private copies (shadow) and
 * the dead-rw checks. The calls an offset-based JIT needs (xm_commit,
 * xm_alias_offset, xm_block_state) are patch.c.
 *
 * DUAL: rw is the block's address in the persistent writable alias of the
 * memfd (meta.c), so rw - rx = alias - base.
 * DUAL + XM_STRICT and FLIP: rw is a private copy. A second reserve of
 * `reserve` bytes, `shadow`, lies alongside the code reserve; page i of it
 * is private anonymous RW memory exactly while page i of the code reserve
 * is mapped (map_fresh commits it, a purge or a FLIP free of published code
 * gives it back), so rw - rx = shadow - base for every block, and the copy
 * never has an execute right. The code changes only when the library
 * copies the copy in: xm_publish (the whole block: STRICT one pwrite, FLIP
 * a memcpy into the still-RW pages before they turn RX) and xm_commit (a
 * range, by xm_patch's path). xm_patch and write windows also update the
 * copy, so rw always holds the block's bytes.
 *
 * Dead rw (XM_DEBUG >= 2): a freed block's copy (and, under DUAL
 * XM_INPLACE, its bytes at rx) hold traps; when those bytes are handed out
 * again they must still be traps (or a fresh page's zeros). Anything else
 * was written through the rw of a block already freed: reported on stderr,
 * then abort(). Pages given back to the reserve fault at once.
 */
#include "internal.h"
#include "arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int xm__shadow_commit(xm_heap *h, uint32_t page, uint32_t n)
{
    return xm__os_map_anon_at(&h->osc, h->shadow + ((size_t)page << XM__PAGE_SHIFT),
                              (size_t)n << XM__PAGE_SHIFT, XM__P_R | XM__P_W);
}

int xm__shadow_release(xm_heap *h, uintptr_t rx, size_t len)
{
    int r = xm__os_map_anon_at(&h->osc, h->shadow + (rx - h->base), len, XM__P_NONE);
    if (!r)
        h->osc.revocations++; /* RW taken from present pages */
    return r;
}

void xm__dead_rw_report(const char *what, const void *at)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "execmem: write through a dead rw detected at %p (%s): "
                     "a block's rw was used after it died (xm_publish of a staged block, xm_free)%s\n",
                     at, what, " (XM_DEBUG >= 2 check)");
    if (n > 0)
        (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg);
    abort();
}

void xm__dead_rw_check(xm_heap *h, uintptr_t rx, size_t sz)
{
    const unsigned char *b = h->shadow ? (const unsigned char *)h->shadow + (rx - h->base)
                                       : (const unsigned char *)rx;
    if (!h->shadow && h->backend != XM_BACKEND_DUAL)
        return;
    for (size_t i = 0; i < sz; i++)
        if (b[i] != XM__TRAP_BYTE && b[i] != 0)
            xm__dead_rw_report(h->shadow ? "private copy" : "alias", b + i);
}
