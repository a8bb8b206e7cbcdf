/* SPDX-License-Identifier: MIT */
/*
 * test_inplace2.c: XM_INPLACE in every backend (issue 17). Under DUAL +
 * XM_STRICT and FLIP, rw is a private never-executable copy at one
 * heap-wide distance from rx: the code changes only at xm_publish and
 * xm_commit, and stays not executable until published. Also
 * xm_alias_offset, xm_block_state, and (debug builds) a write through a
 * dead rw.
 */
#include "test.h"

#include <signal.h>
#include <stdlib.h>

static const config inplace_cfgs[] = {
    {"dual+inplace", XM_BACKEND_DUAL, XM_INPLACE},
    {"dual+strict+inplace", XM_BACKEND_DUAL, XM_STRICT | XM_INPLACE},
    {"flip+inplace", XM_BACKEND_FLIP, XM_INPLACE},
};
#define NCFG (sizeof inplace_cfgs / sizeof inplace_cfgs[0])

static void call_void(void *rx) { (void)call_at(rx); }

static uint64_t syscalls(xm_heap *h)
{
    xm_stats s;
    if (xm_heap_stats(h, &s) != XM_OK)
        return UINT64_MAX;
    return s.syscalls;
}

static void one_config(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    bool copy = (c->flags & XM_STRICT) || c->backend == XM_BACKEND_FLIP;
    ptrdiff_t off = 0;
    CHECK_OK(xm_alias_offset(h, &off));
    CHECK(off != 0);
    xm_block b[4];
    static const size_t sizes[4] = {16, 300, 5000, 64};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(i == 3 ? xm_alloc_data(h, sizes[i], 0, &b[i])
                        : xm_alloc(h, sizes[i], 0, &b[i]));
        CHECK((char *)b[i].rw - (char *)b[i].rx == off);
    }
    unsigned st = 99;
    CHECK_OK(xm_block_state(h, (char *)b[1].rx + 3, &st));
    CHECK_EQ(st, XM_BLOCK_INPLACE);
    emit_ret(b[1].rw, 7);
    if (copy) { /* not executable until published: rx still traps */
        int sig = child_signal(call_void, b[1].rx);
        CHECK(sig == TRAP_SIG || sig == SIGSEGV);
        CHECK(memcmp(b[1].rx, b[1].rw, RET_LEN) != 0);
    }
    uint64_t n0 = syscalls(h);
    CHECK_OK(xm_publish(h, b[1].rx, XM_PROT_RX));
    uint64_t n1 = syscalls(h);
    /* STRICT: one pwrite more than DUAL INPLACE's none */
    if (c->backend == XM_BACKEND_DUAL)
        CHECK_EQ(n1 - n0, (c->flags & XM_STRICT) ? 1 : 0);
    CHECK_EQ(call_at(b[1].rx), 7);
    CHECK_OK(xm_block_state(h, b[1].rx, &st));
    CHECK_EQ(st, XM_BLOCK_PUBLISHED | XM_BLOCK_INPLACE);
    xm_block q;
    CHECK_OK(xm_query(h, b[1].rx, &q));
    CHECK(q.rw == b[1].rw); /* rw lives on after publish */
    /* patch through rw, as sljit_set_const does: reaches the code at
       xm_commit (under the copy modes, not before) */
    emit_ret_imm((char *)b[1].rw + RET_IMM_OFF, 8);
    if (copy)
        CHECK_EQ(call_at(b[1].rx), 7);
    n0 = syscalls(h);
    CHECK_OK(xm_commit(h, (char *)b[1].rx + RET_IMM_OFF, RET_IMM_LEN));
    n1 = syscalls(h);
    if (c->backend == XM_BACKEND_DUAL)
        CHECK_EQ(n1 - n0, (c->flags & XM_STRICT) ? 1 : 0);
    CHECK_EQ(call_at(b[1].rx), 8);
    /* xm_patch keeps rw equal to the code: a later commit of the whole
       block does not undo it */
    CHECK_OK(patch_ret(h, b[1].rx, 9));
    CHECK(memcmp(b[1].rw, b[1].rx, RET_LEN) == 0);
    CHECK_OK(xm_commit(h, b[1].rx, b[1].size));
    CHECK_EQ(call_at(b[1].rx), 9);
    /* data */
    memcpy(b[3].rw, "table", 6);
    CHECK_OK(xm_publish(h, b[3].rx, XM_PROT_R));
    CHECK(memcmp(b[3].rx, "table", 6) == 0);
    CHECK_OK(xm_block_state(h, b[3].rx, &st));
    CHECK_EQ(st, XM_BLOCK_PUBLISHED | XM_BLOCK_DATA | XM_BLOCK_INPLACE);
    /* errors */
    CHECK_EQ(xm_commit(h, b[2].rx, 16), XM_ESTATE); /* unpublished */
    CHECK_EQ(xm_commit(h, b[1].rx, b[1].size + 1), XM_ERANGE);
    CHECK_EQ(xm_commit(h, b[1].rx, 0), XM_EINVAL);
    CHECK_EQ(xm_commit(NULL, b[1].rx, 1), XM_EINVAL);
    CHECK_EQ(xm_block_state(h, b[1].rx, NULL), XM_EINVAL);
    /* no mapping is W+X; the copy modes leave no writable alias either */
    xm_audit_report a;
    CHECK_OK(xm_audit(0, &a));
    if (!under_valgrind())
        CHECK_EQ(a.wx_mappings, 0);
    if (copy)
        CHECK_EQ(a.wx_aliases, 0);
    /* free: the bytes trap, the block is gone */
    CHECK_OK(xm_free(h, b[1].rx));
    int sig = child_signal(call_void, b[1].rx);
    CHECK(sig == TRAP_SIG || sig == SIGSEGV);
    CHECK_EQ(xm_block_state(h, b[1].rx, &st), XM_EBADPTR);
    /* the same distance for a block that reuses the place */
    xm_block r;
    CHECK_OK(xm_alloc(h, 16, 0, &r));
    CHECK((char *)r.rw - (char *)r.rx == off);
    xm__heap_check(h);
    xm_heap_destroy(h);
}

TEST(inplace_every_backend_copy_publish_commit)
{
    for (size_t i = 0; i < NCFG; i++) {
        one_config(&inplace_cfgs[i]);
        if (test_failed) {
            printf("    (config %s)\n", inplace_cfgs[i].name);
            return;
        }
    }
}

/* The private copies are never executable and lie in their own range
 * (/proc/self/maps: no x on the page of rw). */
static bool maps_prot(const void *addr, char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 &&
            (uintptr_t)addr >= lo && (uintptr_t)addr < hi) {
            memcpy(perms, p, 5);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static void stale_write(void *rw) { *(volatile unsigned char *)rw = 0x90; }

TEST(inplace_copy_never_executable_and_released)
{
    for (size_t i = 1; i < NCFG; i++) {
        xm_heap *h = make_heap(&inplace_cfgs[i], 0, SIZE_MAX);
        CHECK(h);
        xm_block b;
        CHECK_OK(xm_alloc(h, 100, 0, &b));
        emit_ret(b.rw, 3);
        CHECK_OK(xm_publish(h, b.rx, XM_PROT_RX));
        char perms[5];
        CHECK(maps_prot(b.rw, perms));
        CHECK(perms[0] == 'r' && perms[1] == 'w' && perms[2] == '-' && perms[3] == 'p');
        CHECK(maps_prot(b.rx, perms));
        CHECK(perms[2] == 'x' && perms[1] == '-');
        CHECK_OK(xm_free(h, b.rx));
        CHECK_OK(xm_purge(h));
        /* the copy's pages went back to the reserve with the code's: a
           write through the dead rw faults at once */
        CHECK_EQ(child_signal(stale_write, b.rw), SIGSEGV);
        xm_heap_destroy(h);
    }
}

TEST(inplace_alias_offset_needs_inplace)
{
    xm_heap *h = make_heap(&(config){"dual", XM_BACKEND_DUAL, 0}, 0, 0);
    CHECK(h);
    ptrdiff_t off = 1;
    CHECK_EQ(xm_alias_offset(h, &off), XM_ENOTSUP);
    CHECK_EQ(xm_alias_offset(h, NULL), XM_EINVAL);
    CHECK_EQ(xm_alias_offset(NULL, &off), XM_EINVAL);
    xm_block b;
    CHECK_OK(make_fn(h, 32, 5, &b));
    CHECK_EQ(xm_commit(h, b.rx, 4), XM_ENOTSUP);
    unsigned st = 0;
    CHECK_OK(xm_block_state(h, (char *)b.rx + 1, &st));
    CHECK_EQ(st, XM_BLOCK_PUBLISHED);
    xm_heap_destroy(h);
}

#if XM_DEBUG >= 2
static void dead_rw_then_realloc(void *arg)
{
    const config *c = arg;
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    xm_block a, b;
    if (!h || xm_alloc(h, 64, 0, &a) != XM_OK)
        exit(2);
    emit_ret(a.rw, 1);
    (void)xm_publish(h, a.rx, XM_PROT_RX);
    (void)xm_free(h, a.rx);
    emit_ret(a.rw, 2); /* the JIT patches a function it already freed */
    (void)xm_alloc(h, 64, 0, &b); /* the same place again: reported */
    exit(3);
}
/* The same, the place taken again by xm_load, the stray byte past what it
 * copies (the review of the XM_INPLACE fast paths: that path skipped it). */
static void dead_rw_then_reload(void *arg)
{
    const config *c = arg;
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    xm_block k, a, b;
    unsigned char code[64];
    /* k keeps the pack live: a waits on a magazine, for the fast path */
    if (!h || xm_alloc(h, 64, 0, &k) != XM_OK || xm_alloc(h, 64, 0, &a) != XM_OK)
        exit(2);
    emit_ret(a.rw, 1);
    emit_ret(code, 2);
    (void)xm_publish(h, a.rx, XM_PROT_RX);
    (void)xm_free(h, a.rx);
    ((unsigned char *)a.rw)[48] = 0x90; /* past RET_LEN: the load keeps it */
    (void)xm_load(h, code, RET_LEN, 0, XM_PROT_RX, &b);
    exit(3);
}
#endif

TEST(inplace_dead_rw_reported_in_debug_builds)
{
#if XM_DEBUG >= 2
    for (size_t i = 0; i < NCFG; i++) {
        /* reported at the next allocation there (SIGABRT), or, FLIP: the
           copy of freed published code is gone at once (SIGSEGV) */
        int want = inplace_cfgs[i].backend == XM_BACKEND_FLIP ? SIGSEGV : SIGABRT;
        for (int load = 0; load < 2; load++) {
            int sig = child_signal(load ? dead_rw_then_reload : dead_rw_then_realloc,
                                   (void *)&inplace_cfgs[i]);
            if (sig != want)
                printf("    (config %s, %s)\n", inplace_cfgs[i].name, load ? "xm_load" : "xm_alloc");
            CHECK_EQ(sig, want);
        }
    }
#else
    test_skip("XM_DEBUG < 2 (make check-debug runs it)");
#endif
}

#if XM_DEBUG >= 2
/* The report: a JIT patches function A through its rw after
 * publish; A's staging buffer was recycled as B's, so B ran A's bytes. */
static void stale_staged_rw(void *arg)
{
    (void)arg;
    const config c = {"dual", XM_BACKEND_DUAL, 0};
    xm_heap *h = make_heap(&c, 0, SIZE_MAX);
    xm_block a, b;
    if (!h || make_fn(h, 64, 1, &a) != XM_OK || xm_alloc(h, 64, 0, &b) != XM_OK)
        exit(2);
    emit_ret(b.rw, 2);
    emit_ret(a.rw, 666); /* through A's dead rw */
    if (xm_publish(h, b.rx, XM_PROT_RX) != XM_OK || call_at(b.rx) != 2)
        exit(5); /* B corrupted */
    xm_heap_destroy(h); /* the kept buffer is checked: reported */
    exit(3);
}
#endif

TEST(staged_dead_rw_reported_not_corrupting_in_debug_builds)
{
#if XM_DEBUG >= 2
    CHECK_EQ(child_signal(stale_staged_rw, NULL), SIGABRT);
#else
    test_skip("XM_DEBUG < 2 (make check-debug runs it)");
#endif
}
