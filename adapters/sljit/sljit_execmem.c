/* SPDX-License-Identifier: MIT */
/*
 * sljit_execmem.c: the hooks of sljit_execmem.h (sljit's executable memory
 * from an XM_INPLACE execmem heap). sljit keeps one executable offset per
 * function and writes through it after the code runs (x86: the jump and
 * constant addresses it hands out are rw addresses); XM_INPLACE keeps rw
 * valid until free at one heap-wide distance, so no rw->rx table is needed:
 * an address is the block's rx if execmem knows it, else rw (rx + offset).
 */
#include "sljit_execmem.h"

#include <execmem.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static xm_heap *heap;
static ptrdiff_t offset; /* rw - rx */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_heap(void)
{
    if (heap)
        return;
    xm_options o = XM_OPTIONS_INIT;
    const char *m = getenv("SLJIT_EXECMEM_MODE");
    o.flags = XM_INPLACE;
    o.backend = XM_BACKEND_DUAL;
    if (m && !strcmp(m, "strict"))
        o.flags |= XM_STRICT;
    else if (m && !strcmp(m, "flip"))
        o.backend = XM_BACKEND_FLIP;
    xm_heap *h = NULL;
    if (xm_heap_create(&o, &h) != XM_OK)
        return;
    if (xm_alias_offset(h, &offset) != XM_OK) {
        xm_heap_destroy(h);
        return;
    }
    heap = h;
}

int sljit_execmem_use(struct xm_heap *h)
{
    ptrdiff_t off;
    if (!h || xm_alias_offset(h, &off) != XM_OK)
        return -1;
    heap = h;
    offset = off;
    return 0;
}

struct xm_heap *sljit_execmem_heap(void)
{
    pthread_once(&once, make_heap);
    return heap;
}

void *sljit_execmem_malloc(size_t size, void *exec_allocator_data)
{
    (void)exec_allocator_data;
    xm_heap *h = sljit_execmem_heap();
    xm_block b;
    if (!h || xm_alloc(h, size, 0, &b) != XM_OK)
        return NULL;
    return b.rw;
}

void sljit_execmem_free(void *rx, void *exec_allocator_data)
{
    (void)exec_allocator_data;
    if (rx && heap && xm_free(heap, rx) == XM_EBADPTR) /* given rw? */
        (void)xm_free(heap, (char *)rx - offset);
}

long sljit_execmem_exec_offset(void *rw)
{
    (void)rw;
    (void)sljit_execmem_heap();
    return -(long)offset;
}

/* enable_exec 1: the bytes [from, to) are final: publish the block the
 * first time (the end of sljit_generate_code: from is the block's rx),
 * copy them in after. 0: nothing to do, rw is always writable. Addresses
 * may be rx or rw (x86: sljit patches through rw). */
void sljit_execmem_update_wx(void *from, void *to, int enable_exec)
{
    unsigned st;
    if (!enable_exec || !heap || (uintptr_t)to <= (uintptr_t)from)
        return;
    size_t len = (size_t)((uintptr_t)to - (uintptr_t)from);
    /* the common case first: one call */
    xm_result r = xm_publish(heap, from, XM_PROT_RX);
    if (r == XM_OK)
        return;
    if (r == XM_ESTATE) {
        (void)xm_commit(heap, from, len);
        return;
    }
    char *rx = from;
    if (xm_block_state(heap, rx, &st) != XM_OK) {
        rx = (char *)from - offset;
        if (xm_block_state(heap, rx, &st) != XM_OK)
            return; /* not execmem's (a caller's code buffer) */
    }
    if (st & XM_BLOCK_PUBLISHED) {
        (void)xm_commit(heap, rx, len);
        return;
    }
    xm_block b;
    if (xm_query(heap, rx, &b) == XM_OK)
        (void)xm_publish(heap, b.rx,
                         (st & XM_BLOCK_DATA) ? XM_PROT_R : XM_PROT_RX);
}
