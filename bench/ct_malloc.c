/* SPDX-License-Identifier: MIT */
/*
 * ct_malloc.c: malloc + memcpy + free, not executable: what the same
 * operation costs with no code memory at all, a floor for the others.
 * Alignments over 16 use aligned_alloc (the size rounded up to them).
 */
#include "contender.h"

#include <stdlib.h>
#include <string.h>

static void *ml_get(contender *c, size_t len, size_t wlen, size_t align)
{
    (void)c;
    void *p = align > 16 ? aligned_alloc(align, (len + align - 1) & ~(align - 1))
                         : malloc(len);
    if (p)
        memcpy(p, ct_code, wlen);
    return p;
}

static void ml_put(contender *c, void *rx, size_t len)
{
    (void)c;
    (void)len;
    free(rx);
}

const ct_class ct_malloc = {true, false, ct_stateless_create, ct_stateless_destroy,
                            ml_get, ml_put, NULL};
