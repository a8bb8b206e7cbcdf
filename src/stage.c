/*
 * stage.c: rx -> staging buffer of each unpublished DUAL block.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), load factor at most 1/2. Growth happens only in
 * xm__stage_reserve(), called before a block is committed, so put and take
 * never allocate and never fail. One table per arena, in ordinary memory,
 * under the arena's lock (a block's entry lives in its pack's arena).
 */
#include "internal.h"

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

int xm__stage_reserve(xm__arena *h)
{
    if ((h->stcount + 1) * 2 <= h->stcap)
        return 0;
    size_t cap = h->stcap ? h->stcap * 2 : 64;
    xm__stage *t = xm__mem_calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < h->stcap; i++)
        if (h->st[i].rx)
            stage_insert(t, cap, h->st[i].rx, h->st[i].rw);
    xm__mem_free(h->st);
    h->st = t;
    h->stcap = cap;
    return 0;
}

void xm__stage_put(xm__arena *h, uintptr_t rx, void *rw)
{
    XM_ASSERT((h->stcount + 1) * 2 <= h->stcap);
    stage_insert(h->st, h->stcap, rx, rw);
    h->stcount++;
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
    size_t i = stage_slot(h, rx);
    return i == SIZE_MAX ? NULL : h->st[i].rw;
}

void *xm__stage_take(xm__arena *h, uintptr_t rx)
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
