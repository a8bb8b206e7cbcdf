/* SPDX-License-Identifier: MIT */
/*
 * test_docs.c: what README, the header and the manual pages promise a first
 * user, observed: a zero-filled xm_options is refused, XM_OPTIONS_INIT and
 * NULL give the defaults; rw offers b.size bytes; `frees` counts completed
 * async frees; xm_query after xm_free_async says XM_EBADPTR; xm_last_errno
 * tells why an audit failed.
 */
#include "test.h"

#include <errno.h>

TEST(docs_options_size_rule)
{
    xm_heap *h = (xm_heap *)1;
    xm_options zero;
    memset(&zero, 0, sizeof zero); /* size 0: refused, not "all defaults" */
    CHECK_EQ(xm_heap_create(&zero, &h), XM_EINVAL);
    CHECK(h == NULL);
    xm_options o = XM_OPTIONS_INIT;
    CHECK_OK(xm_heap_create(&o, &h));
    xm_heap_destroy(h);
    CHECK_OK(xm_heap_create(NULL, &h));
    xm_heap_destroy(h);
}

static void rw_size(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    static const size_t asks[] = {1, 50, 100, 5000, 20000};
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        xm_block b;
        CHECK_OK(xm_alloc(h, asks[i], 0, &b));
        CHECK(b.size >= asks[i]);
        /* every one of b.size bytes is writable through rw and lands at rx */
        memset(b.rw, FILL_BYTE, b.size);
        emit_ret(b.rw, 9);
        CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
        const unsigned char *p = (const unsigned char *)b.rx;
        CHECK_EQ(p[b.size - 1], FILL_BYTE);
        CHECK_EQ(p[RET_LEN], FILL_BYTE);
        CHECK_EQ(call_at(b.rx), 9);
        CHECK_OK(xm_free(h, b.rx));
    }
    xm_heap_destroy(h);
}
TEST(docs_rw_offers_block_size_bytes) { FOR_CONFIGS(rw_size); }

static void async_counted(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block a, b, q;
    CHECK_OK(make_fn(h, 64, 1, &a));
    CHECK_OK(make_fn(h, 64, 2, &b));
    CHECK_OK(xm_free(h, a.rx));
    CHECK_OK(xm_free_async(h, b.rx));
    /* xm_query is a heap call: the async free completes first */
    CHECK_EQ(xm_query(h, b.rx, &q), XM_EBADPTR);
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.frees, 2);       /* xm_free and the completed async free */
    CHECK_EQ(s.async_frees, 1); /* of which asynchronous */
    CHECK_EQ(s.live_blocks, 0);
    xm_heap_destroy(h);
}
TEST(docs_frees_count_async_frees) { FOR_CONFIGS(async_counted); }

TEST(docs_last_errno_after_audit)
{
    xm_audit_report r;
    CHECK_EQ(xm_audit(0x3ffffffe, &r), XM_EOS); /* above any pid_max */
    CHECK_EQ(xm_last_errno(), ENOENT);
}
