/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api.c: libFuzzer target. The input is a program of API calls, valid
 * and invalid, run against one heap and checked, call by call, against a
 * model of what must be live. Every result code is predicted by the model;
 * published code is called and must return its own value; at the end the
 * statistics must match the model and the structure walk must pass.
 *
 * Built two ways:
 *   make fuzz   clang -fsanitize=fuzzer,address: explores, grows test/corpus
 *   make check  the runner replays every file in test/corpus (gcc)
 */
#include <execmem.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xm__heap_check(xm_heap *h);

enum { FZ_SLOTS = 24 };

typedef struct fz_slot {
    void *rx;
    size_t size;
    uint64_t val;
    bool live, pub, data;
} fz_slot;

typedef struct fz {
    const uint8_t *p, *end;
    xm_heap *h;
    fz_slot s[FZ_SLOTS];
    size_t live, bytes;
    uint64_t loads; /* xm_load calls: their values */
    bool x86;
    bool inplace; /* XM_INPLACE: rw stays valid after publish */
} fz;

static unsigned fz_u8(fz *f) { return f->p < f->end ? *f->p++ : 0; }
static unsigned fz_u16(fz *f) { return fz_u8(f) | fz_u8(f) << 8; }

static void fz_fail(const char *what, int got, int want)
{
    fprintf(stderr, "fuzz_api: %s returned %d, model says %d\n", what, got,
            want);
    abort();
}
#define EXPECT(what, got, want)                                                \
    do {                                                                       \
        int g_ = (int)(got), w_ = (int)(want);                                 \
        if (g_ != w_)                                                          \
            fz_fail(what, g_, w_);                                             \
    } while (0)

static void fz_emit(void *dst, uint64_t v)
{
    unsigned char *p = dst; /* mov rax, imm64; ret */
    p[0] = 0x48;
    p[1] = 0xB8;
    memcpy(p + 2, &v, 8);
    p[10] = 0xC3;
}

static uint64_t fz_call(const void *rx)
{
    uint64_t (*fn)(void);
    memcpy(&fn, &rx, sizeof fn);
    return fn();
}

static size_t fz_size(fz *f)
{
    unsigned sel = fz_u8(f);
    switch (sel % 16) {
    case 0:
        return 0;
    case 1:
        return SIZE_MAX;
    case 2:
        return (size_t)1 << 40; /* larger than any reserve */
    case 3:
        return 16384 + fz_u16(f) * 4u; /* large blocks */
    default:
        return 11 + fz_u16(f) % 2048;
    }
}

static size_t fz_align(fz *f)
{
    static const size_t al[16] = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
                                  4096, 3, 24, 8192, 1u << 20};
    return al[fz_u8(f) % 16];
}

static bool align_ok(size_t a) { return !(a & (a - 1)) && a <= 4096; }

/* The bytes xm_load copies in: traps, the slot's value in front. */
static unsigned char fz_src[16384 + 65535 * 4];
/* Whether an allocation whose size selector has its top bit set is an
 * xm_load (1, the fuzzer's setting) or never (0): the corpus was grown
 * before xm_load, so the replay runs every input both ways (its original
 * meaning keeps its coverage of the other paths). */
int fz_load_mode = 1;

static void fz_alloc(fz *f, int k, bool data)
{
    fz_slot *s = &f->s[k];
    /* the size selector's top bit (fz_size reads it modulo 16): xm_load */
    bool load = fz_load_mode && f->p < f->end && (*f->p & 0x80);
    size_t size = fz_size(f), align = fz_align(f);
    xm_block b;
    xm_result r;
    uint64_t lv = ((uint64_t)k << 48) | (uint64_t)++f->loads << 16;
    if (load) {
        memset(fz_src, 0xCC, 16);
        if (data)
            memcpy(fz_src, &lv, 8);
        else
            fz_emit(fz_src, lv);
        r = xm_load(f->h, fz_src, size, align, data ? XM_PROT_R : XM_PROT_RX, &b);
        if (r == XM_OK && (b.rw != NULL) != f->inplace)
            fz_fail("load rw", 0, 1);
    } else {
        r = data ? xm_alloc_data(f->h, size, align, &b)
                 : xm_alloc(f->h, size, align, &b);
    }
    if (size == 0 || size == SIZE_MAX || !align_ok(align)) {
        EXPECT("alloc(bad)", r, XM_EINVAL);
        return;
    }
    if (size > ((size_t)1 << 30)) {
        EXPECT("alloc(huge)", r, XM_ENOMEM);
        return;
    }
    if (r == XM_ENOMEM)
        return; /* the reserve is small: legitimate */
    EXPECT("alloc", r, XM_OK);
    if (b.size < size || (align && ((uintptr_t)b.rx & (align - 1))))
        fz_fail("alloc geometry", 0, 1);
    if (s->live) { /* the slot's old block goes first, by the model */
        EXPECT("free(replaced)", xm_free(f->h, s->rx), XM_OK);
        f->live--;
        f->bytes -= s->size;
    }
    uint64_t v = load ? lv : ((uint64_t)k << 48) | (uint64_t)(uintptr_t)b.rx;
    if (load)
        ;
    else if (data)
        memcpy(b.rw, &v, 8);
    else
        fz_emit(b.rw, v);
    *s = (fz_slot){b.rx, b.size, v, true, load, data};
    f->live++;
    f->bytes += b.size;
}

static int prot_of(unsigned sel)
{
    static const int pr[4] = {XM_PROT_RX, XM_PROT_R, 0, 7};
    return pr[sel % 4];
}

/* A dead slot's address may have been handed out again: then calls on it
 * act on the live block that now starts there. */
static int fz_resolve(fz *f, int k)
{
    if (f->s[k].live)
        return k;
    for (int j = 0; j < FZ_SLOTS; j++)
        if (f->s[j].live && f->s[j].rx == f->s[k].rx)
            return j;
    return k;
}

static void fz_publish(fz *f, int k)
{
    int prot = prot_of(fz_u8(f));
    if (!f->s[k].rx)
        return;
    fz_slot *s = &f->s[fz_resolve(f, k)];
    xm_result r = xm_publish(f->h, s->rx, prot);
    if (prot != XM_PROT_RX && prot != XM_PROT_R)
        EXPECT("publish(prot)", r, XM_EINVAL);
    else if (!s->live)
        EXPECT("publish(dead)", r, XM_EBADPTR);
    else if ((prot == XM_PROT_RX) == s->data)
        EXPECT("publish(kind)", r, XM_EINVAL);
    else if (s->pub)
        EXPECT("publish(twice)", r, XM_ESTATE);
    else {
        EXPECT("publish", r, XM_OK);
        s->pub = true;
    }
}

static void fz_check(fz *f, int k)
{
    fz_slot *s = &f->s[k];
    if (!s->live || !s->pub)
        return;
    if (s->data ? memcmp(s->rx, &s->val, 8) != 0
                : (f->x86 && fz_call(s->rx) != s->val))
        fz_fail("block content", 0, 1);
}

static void fz_free(fz *f, int k, bool async)
{
    unsigned how = fz_u8(f) % 4;
    if (!f->s[k].rx)
        return;
    fz_slot *s = &f->s[fz_resolve(f, k)];
    if (how == 1 && s->live && s->size > 64) { /* interior pointer */
        void *in = (char *)s->rx + 64;
        EXPECT("free(interior)", async ? xm_free_async(f->h, in) : xm_free(f->h, in),
               XM_EBADPTR);
        return;
    }
    xm_result r = async ? xm_free_async(f->h, s->rx) : xm_free(f->h, s->rx);
    if (!s->live) {
        EXPECT("free(dead)", r, XM_EBADPTR);
        return;
    }
    EXPECT("free", r, XM_OK);
    s->live = false;
    f->live--;
    f->bytes -= s->size;
}

/* Patches random bytes; where they overlap what fz_check reads (the 11
 * bytes of the function, the 8 bytes of data) the patch carries the same
 * bytes, so the block's value is unchanged and checkable. */
static void fz_patch(fz *f, int k)
{
    fz_slot *s = &f->s[k];
    size_t off = fz_u16(f), len = 1 + fz_u8(f) % 16;
    if (!s->live)
        return;
    off %= s->size; /* dst inside this block; dst+len may pass its end */
    unsigned char known[16], buf[16];
    size_t nknown = s->data ? 8 : 11;
    if (s->data)
        memcpy(known, &s->val, 8);
    else
        fz_emit(known, s->val);
    for (size_t i = 0; i < len; i++)
        buf[i] = off + i < nknown ? known[off + i] : 0xCC;
    xm_result r = xm_patch(f->h, (char *)s->rx + off, buf, len);
    if (off + len > s->size)
        EXPECT("patch(range)", r, XM_ERANGE);
    else if (!s->pub)
        EXPECT("patch(unpublished)", r, XM_ESTATE);
    else
        EXPECT("patch", r, XM_OK);
}

/* xm_name with no sink on (the fuzz heap has none): arguments and the
 * block are checked, nothing else happens. */
static void fz_name(fz *f, int k, size_t off)
{
    if (!f->s[k].rx)
        return;
    fz_slot *s = &f->s[fz_resolve(f, k)];
    xm_result r = xm_name(f->h, (char *)s->rx + off, "fz_fn");
    if (!s->live || off)
        EXPECT("name(dead or interior)", r, XM_EBADPTR);
    else
        EXPECT("name", r, s->data ? XM_EINVAL : XM_OK);
}

static void fz_query(fz *f, int k)
{
    fz_slot *s = &f->s[k];
    size_t off = fz_u16(f);
    fz_name(f, k, s->live && (off & 1) ? off % s->size : 0);
    if (!s->live)
        return;
    xm_block q;
    xm_result r = xm_query(f->h, (char *)s->rx + off % s->size, &q);
    EXPECT("query", r, XM_OK);
    if (q.rx != s->rx || q.size != s->size ||
        (f->inplace ? q.rw == NULL : (q.rw == NULL) != s->pub))
        fz_fail("query geometry", 0, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f;
    memset(&f, 0, sizeof f);
    f.p = data;
    f.end = data + size;
#if defined(__x86_64__)
    f.x86 = true;
#endif
    unsigned cfg = fz_u8(&f);
    xm_options o = XM_OPTIONS_INIT;
    o.backend = cfg % 4 == 2 ? XM_BACKEND_FLIP : XM_BACKEND_DUAL;
    o.flags = cfg % 4 == 1 ? XM_STRICT : cfg % 4 == 3 ? XM_INPLACE : 0;
    f.inplace = cfg % 4 == 3;
    o.reserve = (size_t)(4 + (cfg >> 2) % 8) << 20;
    o.lazy_limit = (cfg & 0x80) ? SIZE_MAX : (size_t)64 << 10;
    if (xm_heap_create(&o, &f.h) != XM_OK)
        abort();
    for (int n = 0; f.p < f.end && n < 4000; n++) {
        unsigned op = fz_u8(&f), k = fz_u8(&f) % FZ_SLOTS;
        switch (op % 10) {
        case 0: fz_alloc(&f, (int)k, false); break;
        case 1: fz_alloc(&f, (int)k, true); break;
        case 2: fz_publish(&f, (int)k); break;
        case 3: fz_free(&f, (int)k, false); break;
        case 4: fz_free(&f, (int)k, true); break;
        case 5: EXPECT("purge", xm_purge(f.h), XM_OK); break;
        case 6: fz_patch(&f, (int)k); break;
        case 7: fz_query(&f, (int)k); break;
        case 8: fz_check(&f, (int)k); break;
        case 9: { /* foreign pointers and NULLs */
            int local;
            EXPECT("free(foreign)", xm_free(f.h, &local), XM_EBADPTR);
            EXPECT("free(NULL)", xm_free(f.h, NULL), XM_EINVAL);
            EXPECT("publish(foreign)", xm_publish(f.h, &local, XM_PROT_RX),
                   XM_EBADPTR);
            xm_block q;
            EXPECT("query(foreign)", xm_query(f.h, &local, &q), XM_EBADPTR);
            EXPECT("name(foreign)", xm_name(f.h, &local, "x"), XM_EBADPTR);
            EXPECT("name(NULL)", xm_name(f.h, &local, NULL), XM_EINVAL);
            break;
        }
        }
    }
    for (int k = 0; k < FZ_SLOTS; k++)
        fz_check(&f, k);
    xm_stats st;
    EXPECT("stats", xm_heap_stats(f.h, &st), XM_OK);
    EXPECT("live_blocks", st.live_blocks, f.live);
    EXPECT("live_bytes", st.live_bytes, f.bytes);
    xm__heap_check(f.h);
    for (int k = 0; k < FZ_SLOTS; k++)
        if (f.s[k].live)
            EXPECT("free(end)", xm_free(f.h, f.s[k].rx), XM_OK);
    EXPECT("purge(end)", xm_purge(f.h), XM_OK);
    EXPECT("stats(end)", xm_heap_stats(f.h, &st), XM_OK);
    EXPECT("live_blocks(end)", st.live_blocks, 0);
    EXPECT("quarantine(end)", st.quarantine_bytes, 0);
    xm__heap_check(f.h);
    xm_heap_destroy(f.h);
    return 0;
}
