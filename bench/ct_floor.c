/* SPDX-License-Identifier: MIT */
/*
 * ct_floor.c: the floor model (floor_model.h) as a contender: execmem's
 * byte passes with no bookkeeping. Single-threaded, static state: only
 * one-thread workloads may run it, and one instance at a time.
 */
#include "contender.h"
#include "floor_model.h"

static bool fl_create(contender *c)
{
    (void)c;
    return fm_setup() == 0;
}

static void fl_destroy(contender *c)
{
    (void)c;
    fm_teardown();
}

static void *fl_get(contender *c, size_t len, size_t wlen, size_t align)
{
    (void)c;
    (void)align; /* 64-byte granules */
    void *rw, *rx = fm_alloc(len, &rw);
    memcpy(rw, ct_code, wlen);
    fm_publish(rx);
    return rx;
}

static void fl_put(contender *c, void *rx, size_t len)
{
    (void)c;
    (void)len;
    fm_free(rx);
}

const ct_class ct_floor = {true, true, fl_create, fl_destroy, fl_get, fl_put, NULL};
