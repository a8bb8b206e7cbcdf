/* SPDX-License-Identifier: MIT */
/*
 * ct_asmjit.c: asmjit's JitAllocator as a contender, through the C shim in
 * asmjit_shim.cpp (built only where Debian's libasmjit-dev was found:
 * HAVE_ASMJIT; elsewhere the class says it is not available and its rows
 * print "not installed"). variant 1: kUseDualMapping (a writable alias),
 * else the default options (one RWX mapping). get writes through the rw
 * address asmjit returns; asmjit aligns to its own 64-byte granularity.
 */
#include "contender.h"

#include <string.h>

#ifdef HAVE_ASMJIT
void *ajit_create(int dual);
void ajit_destroy(void *a);
int ajit_alloc(void *a, size_t size, void **rx, void **rw);
void ajit_release(void *a, void *rx);

static bool aj_create(contender *c) { return (c->state = ajit_create(c->variant)) != NULL; }

static void aj_destroy(contender *c)
{
    ajit_destroy(c->state);
    c->state = NULL;
}

static void *aj_get(contender *c, size_t len, size_t wlen, size_t align)
{
    (void)align; /* asmjit aligns to its 64-byte granularity */
    void *rx, *rw;
    if (ajit_alloc(c->state, len, &rx, &rw))
        return NULL;
    memcpy(rw, ct_code, wlen);
    return rx;
}

static void aj_put(contender *c, void *rx, size_t len)
{
    (void)len;
    ajit_release(c->state, rx);
}

const ct_class ct_asmjit = {true, true, aj_create, aj_destroy, aj_get, aj_put, NULL};
#else
const ct_class ct_asmjit = {false, true, NULL, NULL, NULL, NULL, NULL};
#endif
