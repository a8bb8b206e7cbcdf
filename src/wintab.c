/* SPDX-License-Identifier: MIT */
/*
 * wintab.c: the table of write windows on published code (the records
 * behind xm_write_begin/xm_write_end, patch.c).
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

void xm__window_remove(xm__arena *a, size_t i)
{
    xm__mem_free(a->win[i].buf);
    a->win[i] = a->win[--a->nwin];
}

void xm__windows_drop_locked(xm__arena *a, uintptr_t block)
{
    for (size_t i = 0; i < a->nwin;) {
        if (a->win[i].block == block)
            xm__window_remove(a, i);
        else
            i++;
    }
}
