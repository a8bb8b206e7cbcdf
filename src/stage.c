/* SPDX-License-Identifier: MIT */
/*
 * stage.c: rx -> staging buffer of each unpublished DUAL block.
 *
 * The newest entry waits in the arena's st1 slot (the usual JIT allocates,
 * writes and publishes one block at a time: no hashing); older ones move to
 * the table.
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), load factor at most 1/2. Growth happens only in
 * xm__stage_reserve(), called before a block is committed, so put and take
 * never allocate and never fail. One table per arena, in ordinary memory,
 * under the arena's lock (a block's entry lives in its pack's arena).
 *
 * The buffers themselves are recycled: a published or freed block's buffer
 * goes on the arena's list for its size (in granules) while the lists hold
 * less than XM__STAGE_KEEP bytes. Every buffer is 128-byte aligned and
 * padded to a multiple of 128 bytes: a recycled one serves any alignment up
 * to 128, and no two buffers share a line pair (the L2 streamer moves lines
 * in aligned pairs: buffers of two threads written at once would
 * ping-pong).
 */
#include "internal.h"
#include "arch.h"

#include <string.h>

static size_t stage_hash(uintptr_t rx, size_t cap)
{
    return (size_t)(((uint64_t)(rx >> XM__GRAN_SHIFT) * 0x9E3779B97F4A7C15ull) >>
                    17) & (cap - 1);
}

static void stage_insert(xm__stage *t, size_t cap, uintptr_t rx, void *rw)
{
    size_t i = stage_hash(rx, cap);
    while (t[i].rx)
        i = (i + 1) & (cap - 1);
    t[i].rx = rx;
    t[i].rw = rw;
}

int xm__stage_grow(xm__arena *h)
{
    size_t cap = h->stcap ? h->stcap * 2 : 64;
    /* another arena's table is written by another thread */
    xm__stage *t = xm__mem_aligned(XM__LINE_PAIR, cap * sizeof *t);
    if (!t)
        return -1;
    memset(t, 0, cap * sizeof *t);
    for (size_t i = 0; i < h->stcap; i++)
        if (h->st[i].rx)
            stage_insert(t, cap, h->st[i].rx, h->st[i].rw);
    xm__mem_free(h->st);
    h->st = t;
    h->stcap = cap;
    return 0;
}

void xm__stage_spill(xm__arena *h)
{
    XM_ASSERT((h->stcount + 1) * 2 <= h->stcap);
    /* the table has room for every entry (reserve) */
    stage_insert(h->st, h->stcap, h->st1.rx, h->st1.rw);
    h->st1.rx = 0;
}

static size_t stage_slot(xm__arena *h, uintptr_t rx)
{
    if (!h->stcap)
        return SIZE_MAX;
    size_t i = stage_hash(rx, h->stcap);
    while (h->st[i].rx) {
        if (h->st[i].rx == rx)
            return i;
        i = (i + 1) & (h->stcap - 1);
    }
    return SIZE_MAX;
}

void *xm__stage_get(xm__arena *h, uintptr_t rx)
{
    if (rx && h->st1.rx == rx)
        return h->st1.rw;
    size_t i = stage_slot(h, rx);
    return i == SIZE_MAX ? NULL : h->st[i].rw;
}

void *xm__stage_take_slow(xm__arena *h, uintptr_t rx)
{
    size_t i = stage_slot(h, rx);
    if (i == SIZE_MAX)
        return NULL;
    void *rw = h->st[i].rw;
    size_t mask = h->stcap - 1, j = i;
    for (;;) { /* backward shift */
        h->st[i].rx = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!h->st[j].rx) {
                h->stcount--;
                return rw;
            }
            size_t k = stage_hash(h->st[j].rx, h->stcap);
            /* move j into the hole at i unless its home lies in (i, j] */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            break;
        }
        h->st[i] = h->st[j];
        i = j;
    }
}

void *xm__stage_buf_new(size_t usable, size_t align)
{
    size_t pair = XM__LINE_PAIR;
    return xm__mem_aligned(align > pair ? align : pair, (usable + pair - 1) & ~(pair - 1));
}

/* Buffers of larger blocks go by power-of-two classes
 * (xm__stage_big_class): every buffer of class k is 2^(k + shift) bytes, so
 * a put files a buffer by the size it was taken for, and it serves the next
 * block of that class whatever its size. One kept per class. */
static size_t big_cap(unsigned k) { return (size_t)1 << (k + XM__STAGE_BIG_SHIFT); }

void *xm__stage_big_get(xm__arena *a, size_t usable)
{
    unsigned k = xm__stage_big_class(usable);
    if (k >= XM__STAGE_BIG) /* above the classes: its own size */
        return xm__stage_buf_new(usable, XM__PAGE);
    if (!a->stbig[k]) /* none kept: one of exactly its class */
        return xm__stage_buf_new(big_cap(k), XM__PAGE);
    void *b = a->stbig[k];
    a->stbig[k] = NULL;
    return b;
}

/* Keeps buf (taken for `usable` bytes) in its class's slot if that is
 * empty; frees it otherwise. */
void xm__stage_big_put(xm__arena *a, void *buf, size_t usable)
{
    unsigned k = xm__stage_big_class(usable);
    if (k >= XM__STAGE_BIG || a->stbig[k]) {
        xm__mem_free(buf);
        return;
    }
    a->stbig[k] = buf;
}

void xm__stage_big_drop(xm__arena *a)
{
    for (unsigned i = 0; i < XM__STAGE_BIG; i++) {
        xm__mem_free(a->stbig[i]);
        a->stbig[i] = NULL;
    }
}

/* The oldest kept buffer must still be all traps. */
static void dead_check_free(xm__arena *a, unsigned i)
{
    const unsigned char *b = a->dead[i];
    for (size_t k = 0; k < a->dead_sz[i]; k++)
        if (b[k] != XM__TRAP_BYTE)
            xm__dead_rw_report("staging buffer of a published or freed block", b + k);
    xm__mem_free(a->dead[i]);
    a->dead[i] = NULL;
}

void xm__stage_dead_put(xm__arena *a, void *buf, size_t usable)
{
    memset(buf, XM__TRAP_BYTE, usable);
    unsigned i = a->dead_next;
    if (a->dead[i])
        dead_check_free(a, i);
    else
        a->ndead++;
    a->dead[i] = buf;
    a->dead_sz[i] = usable;
    a->dead_next = (i + 1) % XM__STAGE_DEAD;
}

void xm__stage_buf_drop_all(xm__arena *a)
{
    for (unsigned i = 0; i < XM__STAGE_DEAD; i++)
        if (a->dead[i])
            dead_check_free(a, i);
    a->ndead = a->dead_next = 0;
    xm__stage_big_drop(a);
    for (size_t c = 0; c < XM__STAGE_CLASSES; c++) {
        while (a->stbuf[c]) {
            void *b = a->stbuf[c];
            memcpy(&a->stbuf[c], b, sizeof b);
            xm__mem_free(b);
        }
    }
    a->stbuf_bytes = 0;
}
