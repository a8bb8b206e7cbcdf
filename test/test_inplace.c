/* SPDX-License-Identifier: MIT */
/*
 * test_inplace.c: XM_INPLACE's own contract, observed: one fixed distance
 * between rw and rx for every block of the heap, valid until free; writes
 * through rw appear at rx at once; publish makes them run; free turns the
 * bytes into traps (written-but-unpublished ones too); invalid option
 * combinations are refused; and what it gives up is really given up.
 */
#include "test.h"

#include <errno.h>
#include <signal.h>

static void call_void(void *rx) { (void)call_at(rx); }

TEST(inplace_fixed_distance_and_immediate_writes)
{
    const config c = {"inplace", XM_BACKEND_DUAL, XM_INPLACE};
    xm_heap *h = make_heap(&c, 0, SIZE_MAX);
    CHECK(h);
    xm_block b[5];
    static const size_t sizes[5] = {16, 300, 5000, 40000, 64};
    for (int i = 0; i < 5; i++) {
        CHECK_OK(i == 4 ? xm_alloc_data(h, sizes[i], 0, &b[i])
                        : xm_alloc(h, sizes[i], 0, &b[i]));
        CHECK((char *)b[i].rw - (char *)b[i].rx == (char *)b[0].rw - (char *)b[0].rx);
    }
    emit_ret(b[1].rw, 7);
    CHECK(memcmp(b[1].rx, b[1].rw, RET_LEN) == 0); /* at rx already */
    CHECK_EQ(call_at(b[1].rx), 7); /* given up: unpublished code runs */
    CHECK_OK(xm_publish(h, b[1].rx, XM_PROT_RX));
    CHECK_EQ(call_at(b[1].rx), 7);
    /* rw stays valid after publish: patch through it (and, as any JIT
       writing code itself must on arm64, make it visible to fetch) */
    emit_ret_imm((char *)b[1].rw + RET_IMM_OFF, 8);
    __builtin___clear_cache((char *)b[1].rx, (char *)b[1].rx + RET_LEN);
    if (!under_valgrind()) /* it sees rewrites only through the library
                              (xm_patch, write windows): README */
        CHECK_EQ(call_at(b[1].rx), 8);
    xm_block q;
    CHECK_OK(xm_query(h, (char *)b[1].rx + 5, &q));
    CHECK(q.rw == b[1].rw);
    memcpy(b[4].rw, "table", 6);
    CHECK_OK(xm_publish(h, b[4].rx, XM_PROT_R));
    CHECK(memcmp(b[4].rx, "table", 6) == 0);
    /* free: written bytes become traps, published or not */
    emit_ret(b[2].rw, 9);
    CHECK_OK(xm_free(h, b[2].rx));
    CHECK_OK(xm_free(h, b[1].rx));
    const unsigned char *p = b[2].rx;
    for (size_t i = 0; i < 5000; i += 7)
        CHECK_EQ(p[i], TRAP_BYTE);
    int sig = child_signal(call_void, b[1].rx);
    CHECK(sig == TRAP_SIG || sig == SIGSEGV);
    sig = child_signal(call_void, (char *)b[2].rx + 1);
    CHECK(sig == trap_sig_at((char *)b[2].rx + 1) || sig == SIGSEGV);
    /* no mapping is W+X; the alias is (as documented) */
    xm_audit_report a;
    CHECK_OK(xm_audit(0, &a));
    if (!under_valgrind())
        CHECK_EQ(a.wx_mappings, 0);
    CHECK(a.wx_aliases + a.pkey_aliases > 0); /* XM_TEST_PKEYS: keyed */
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.staging_bytes, 0);
    CHECK(s.flags & XM_INPLACE);
    xm__heap_check(h);
    xm_heap_destroy(h);
}

TEST(inplace_accepts_strict_and_flip)
{
    /* issue 17: XM_INPLACE exists in every backend (test_inplace2.c) */
    xm_options o = XM_OPTIONS_INIT;
    xm_heap *h = (xm_heap *)1;
    xm_stats s;
    o.flags = XM_INPLACE | XM_STRICT;
    CHECK_OK(xm_heap_create(&o, &h));
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.flags & (XM_INPLACE | XM_STRICT), XM_INPLACE | XM_STRICT);
    xm_heap_destroy(h);
    o.flags = XM_INPLACE;
    o.backend = XM_BACKEND_FLIP;
    CHECK_OK(xm_heap_create(&o, &h));
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.backend, XM_BACKEND_FLIP);
    xm_heap_destroy(h);
    o.backend = XM_BACKEND_AUTO;
    CHECK_OK(xm_heap_create(&o, &h));
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.backend, XM_BACKEND_DUAL);
    xm_heap_destroy(h);
}
