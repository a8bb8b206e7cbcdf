/* SPDX-License-Identifier: MIT */
/*
 * heap.c: the public API. Checks arguments (bad input never reaches the
 * subsystems), takes the heap lock, completes deferred frees, and calls
 * pack.c / range.c. Also heap creation (backend choice and probes) and
 * destruction, and the debug-level structure walk.
 *
 * Locking: one mutex per heap guards everything but the async-free path
 * (deferred.c), which uses atomics only.
 */
#include "internal.h"
#include "pkeys.h"
#include "arch.h"
#include "fast.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>) && !defined(XM_NO_VALGRIND) /* build knob */
#include <valgrind/valgrind.h>
#define XM_HAVE_VALGRIND 1
#endif
#endif

void xm__assert_fail(const char *expr, const char *file, int line)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "execmem: assertion failed: %s (%s:%d)\n",
                     expr, file, line);
    if (n > 0)
        (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg);
    abort();
}

xm_result xm__os_result(int neg_errno, bool exec)
{
    int e = -neg_errno;
    if (e == ENOMEM || e == ENOSPC)
        return XM_ENOMEM;
    if (exec && (e == EACCES || e == EPERM))
        return XM_EPERM;
    return XM_EOS;
}

void xm__valgrind_discard_slow(void *p, size_t n)
{
#ifdef XM_HAVE_VALGRIND
    VALGRIND_DISCARD_TRANSLATIONS(p, n);
#else
    (void)p;
    (void)n;
#endif
}

/* ---- creation --------------------------------------------------------- */

static xm_result reserve_space(xm_heap *h, const void *near)
{
    int err = 0;
    if (!near) {
        void *p = xm__os_reserve(&h->osc, h->reserve, NULL, 0, &err);
        if (!p)
            return XM_ENOMEM;
        h->base = (uintptr_t)p;
        return XM_OK;
    }
    /* every byte within a direct call's reach of near (x86-64 +-2 GiB,
       arm64 +-128 MiB: src/arch.h): try candidate bases stepping away from
       near in both directions, exact placement only */
    const uintptr_t lim = XM__NEAR_REACH - 2 * XM__PAGE;
    uintptr_t n = (uintptr_t)near & ~(uintptr_t)(XM__PAGE - 1);
    uintptr_t lo = n > lim ? n - lim : XM__PAGE * 16;
    uintptr_t hi = n + lim - h->reserve; /* highest base */
    const uintptr_t step = XM__NEAR_REACH / 32; /* x86-64: 64 MiB */
    for (uintptr_t k = 0; k < 64; k++) {
        uintptr_t cand[2] = {n + XM__NEAR_REACH / 128 + k * step,
                             n > (k + 1) * step + h->reserve
                                 ? n - (k + 1) * step - h->reserve
                                 : 0};
        for (int c = 0; c < 2; c++) {
            uintptr_t b = cand[c] & ~(uintptr_t)(XM__PAGE - 1);
            if (b < lo || b > hi)
                continue;
            void *p = xm__os_reserve(&h->osc, h->reserve, (void *)b, 1, &err);
            if (p) {
                h->base = (uintptr_t)p;
                return XM_OK;
            }
        }
    }
    return XM_ENOMEM;
}

/* Whether a failure of DUAL's setup is a passing shortage (descriptors,
 * memory, address space under RLIMIT_AS) rather than the system refusing
 * memfd code (no memfd_create, no /proc to reopen through, SELinux or a
 * noexec policy refusing the executable view). */
static bool dual_transient(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOSPC ||
           e == EAGAIN || e == EINTR;
}

/* DUAL: memfd, its read-only reopen, the alias, and a probe that the
 * executable view can be mapped. */
static xm_result setup_dual(xm_heap *h)
{
    int fd = xm__os_memfd(&h->osc, "execmem", NULL);
    if (fd < 0)
        return fd == -ENOSYS || fd == -EINVAL ? XM_ENOTSUP : xm__os_result(fd, true);
    h->fd = fd;
    int r = xm__os_truncate(&h->osc, fd, h->reserve);
    if (!r) /* the size is final: no one truncates the code away */
        r = xm__os_seal_size(&h->osc, fd);
    if (r)
        return xm__os_result(r, false);
    int ro = xm__os_reopen_ro(&h->osc, fd);
    if (ro < 0) /* without an O_RDONLY view the exec view could later be
                   made writable: refuse DUAL (out of descriptors: say so) */
        return dual_transient(-ro) ? xm__os_result(ro, false) : XM_ENOTSUP;
    h->fd_ro = ro;
    /* mode 0 once reopened: no reopen through /proc/self/fd/N, read or
       write, by anyone without CAP_DAC_OVERRIDE (README: threat model) */
    r = xm__os_chmod(&h->osc, fd, 0);
    if (r)
        return xm__os_result(r, false);
    int err = 0;
    if (!xm__os_map_fd(&h->osc, (void *)h->base, XM__PAGE, XM__P_R | XM__P_X,
                       ro, 0, &err))
        return xm__os_result(-err, true);
    r = xm__os_map_anon_at(&h->osc, (void *)h->base, XM__PAGE, XM__P_NONE);
    if (r)
        return xm__os_result(r, false);
    if (!(h->flags & XM_STRICT)) {
        void *a = xm__os_map_fd(&h->osc, NULL, h->reserve, XM__P_R | XM__P_W,
                                fd, 0, &err);
        if (!a)
            return xm__os_result(-err, false);
        h->alias = a;
        if (h->flags & XM_PKEYS) { /* the alias's key (pkeys.c) */
            xm_result pr = xm__pk_setup(h);
            if (pr != XM_OK)
                return pr;
        }
        /* the child of a fork must never write the parent's code */
        r = xm__os_dontfork(&h->osc, a, h->reserve);
        if (r)
            return xm__os_result(r, false);
        /* every write and every hole goes through the alias from here on
           (MADV_REMOVE punches): the writable descriptor is not kept */
        (void)xm__os_close(&h->osc, fd);
        h->fd = -1;
    }
    return XM_OK;
}

static void teardown_dual(xm_heap *h)
{
    if (h->alias)
        (void)xm__os_unmap(&h->osc, h->alias, h->reserve);
    h->alias = NULL;
    xm__pk_teardown(h);
    if (h->fd_ro >= 0)
        (void)xm__os_close(&h->osc, h->fd_ro);
    if (h->fd >= 0)
        (void)xm__os_close(&h->osc, h->fd);
    h->fd = h->fd_ro = -1;
}

/* FLIP probe: can anonymous memory become executable at all? */
static xm_result probe_flip(xm_heap *h)
{
    void *a = (void *)h->base;
    int r = xm__os_map_anon_at(&h->osc, a, XM__PAGE, XM__P_R | XM__P_W);
    if (r)
        return xm__os_result(r, false);
    r = xm__os_protect(&h->osc, a, XM__PAGE, XM__P_R | XM__P_X);
    int r2 = xm__os_map_anon_at(&h->osc, a, XM__PAGE, XM__P_NONE);
    if (r)
        return xm__os_result(r, true);
    return r2 ? xm__os_result(r2, false) : XM_OK;
}

static void heap_free_meta(xm_heap *h)
{
    unsigned used = atomic_load(&h->arenas_used);
    for (unsigned k = 0; k < XM__ARENAS; k++) {
        xm__arena *a = &h->arenas[k];
        if (!((used >> k) & 1))
            continue; /* never locked: nothing held, pages untouched */
        for (size_t i = 0; i < a->stcap; i++)
            if (a->st[i].rx)
                xm__mem_free(a->st[i].rw);
        if (a->st1.rx)
            xm__mem_free(a->st1.rw);
        xm__mem_free(a->st);
        xm__stage_buf_drop_all(a);
        for (size_t i = 0; i < a->nwin; i++)
            xm__mem_free(a->win[i].buf);
        xm__mem_free(a->win);
        pthread_mutex_destroy(&a->lock);
    }
    pthread_mutex_destroy(&h->drain_lock);
    for (size_t i = 0; i < h->nall; i++)
        xm__mem_free(h->all[i]);
    xm__mem_free(h->all);
    pthread_mutex_destroy(&h->lock);
    xm__osc osc = {0, 0};
    (void)xm__os_unmap(&osc, h, h->meta_len); /* h too */
}

/* The heap and its per-page metadata in one anonymous mapping: zero-filled
 * by the kernel and committed page by page as the heap uses its reserve
 * (malloc would memset what it reuses: glibc's mmap threshold grows after
 * the first free of a large block, so a second heap's 25 MB calloc came
 * from the brk heap, memset whole: 0.7-5 ms per heap creation). */
static bool mutex_zero_is_init(void)
{
    static const pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;
    static const unsigned char zero[sizeof init];
    return memcmp(&init, zero, sizeof init) == 0;
}

static xm_heap *heap_map_meta(size_t reserve, xm__osc *osc)
{
    uint32_t npages = (uint32_t)(reserve >> XM__PAGE_SHIFT);
    size_t frcap = xm__range_pool_size(npages);
#define XM__UP(x) (((x) + XM__LINE_PAIR - 1) & ~(size_t)(XM__LINE_PAIR - 1))
    /* heap, page state, free-run nodes: what a small heap touches of each
       (the heap, the first pages' state, the first nodes) is within a few
       hundred KiB of the start; the page state on whole line pairs (a line
       shared by two arenas' packs would ping-pong between their threads) */
    size_t o_ps = XM__UP(sizeof(xm_heap));
    size_t o_fr = o_ps + XM__UP((size_t)npages * sizeof(xm__pstate));
    size_t len = o_fr + frcap * sizeof(xm__frange);
    _Static_assert(sizeof(xm__pstate) == XM__LINE_PAIR, "a page's state: a line pair");
    len = (len + XM__PAGE - 1) & ~(size_t)(XM__PAGE - 1);
#undef XM__UP
    int err = 0;
    char *m = xm__os_map_anon(osc, len, XM__P_R | XM__P_W, &err);
    if (!m)
        return NULL;
    xm_heap *h = (xm_heap *)(void *)m;
    h->meta_len = len;
    h->npages = npages;
    h->frcap = (uint32_t)frcap;
    h->ps = (xm__pstate *)(void *)(m + o_ps);
    h->fr = (xm__frange *)(void *)(m + o_fr);
    return h;
}

xm_result xm_heap_create(const xm_options *opt, xm_heap **out)
{
    if (!out)
        return XM_EINVAL;
    *out = NULL;
    xm_options o = XM_OPTIONS_INIT;
    if (opt) {
        if (opt->size != sizeof(xm_options))
            return XM_EINVAL;
        o = *opt;
    }
    if (o.flags & ~XM_FLAGS_ALL_)
        return XM_EINVAL;
    if ((o.flags & XM_PKEYS) &&
        ((o.flags & XM_STRICT) || o.backend == XM_BACKEND_FLIP))
        return XM_EINVAL; /* keys guard the alias, which these lack */
    if (o.backend != XM_BACKEND_AUTO && o.backend != XM_BACKEND_DUAL &&
        o.backend != XM_BACKEND_FLIP)
        return XM_EINVAL;
    if (xm__os_page_size() != (int)XM__PAGE)
        return XM_ENOTSUP;
    size_t reserve = o.reserve ? o.reserve : XM__DEFAULT_RESERVE;
    if (o.near && !o.reserve)
        reserve = XM__NEAR_RESERVE;
    if (reserve > ((size_t)1 << 44) || reserve < XM__PACK_PAGES * XM__PAGE)
        return XM_EINVAL;
    reserve = (reserve + XM__PAGE - 1) & ~(size_t)(XM__PAGE - 1);
    if (o.near && reserve > XM__NEAR_REACH - 64 * XM__PAGE)
        return XM_EINVAL;

    xm__osc osc = {0, 0};
    xm_heap *h = heap_map_meta(reserve, &osc); /* zero-filled */
    if (!h)
        return XM_ENOMEM;
    h->osc = osc;
    /* zero-filled: where that is PTHREAD_MUTEX_INITIALIZER (glibc, musl),
       the arenas' locks are ready and their pages untouched until used */
    if (!mutex_zero_is_init())
        for (unsigned i = 0; i < XM__ARENAS; i++)
            pthread_mutex_init(&h->arenas[i].lock, NULL); /* cannot fail */
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->drain_lock, NULL);
    h->fd = h->fd_ro = -1;
    h->reserve = reserve;
    h->flags = o.flags;
    xm__sym_init(h);
    h->lazy_limit = o.lazy_limit; /* 0: automatic (range.c) */
#ifdef XM_HAVE_VALGRIND
    h->valgrind = RUNNING_ON_VALGRIND ? 1 : 0;
#endif
    xm_result r = reserve_space(h, o.near);
    if (r != XM_OK) {
        heap_free_meta(h);
        return r;
    }
    r = XM_ENOTSUP;
    int dual_errno = 0;
    /* pkey_alloc sets the calling thread's rights for the new key: a
       creation that fails puts back the PKRU it found (pkeys.h) */
    bool pk = (o.flags & XM_PKEYS) && xm__pkru_usable();
    unsigned pkru = pk ? xm__rdpkru() : 0;
    if (o.backend != XM_BACKEND_FLIP) {
        r = setup_dual(h);
        if (r == XM_OK) {
            h->backend = XM_BACKEND_DUAL;
        } else {
            dual_errno = xm_last_errno(); /* of the call that failed */
            teardown_dual(h);
            xm__os_set_errno(dual_errno);
        }
    }
    /* AUTO chooses by what the system supports: FLIP only where memfd code
       is refused. A shortage (EMFILE, ENFILE, ENOMEM: RLIMIT_NOFILE,
       RLIMIT_AS) is an error, as for explicit DUAL, not a silent switch to
       a backend 50-250x slower per operation (issue 16). */
    bool fallback = o.backend == XM_BACKEND_AUTO && !(o.flags & XM_PKEYS) &&
                    !dual_transient(dual_errno);
    if (r != XM_OK && (o.backend == XM_BACKEND_FLIP || fallback)) {
        r = probe_flip(h);
        if (r == XM_OK)
            h->backend = XM_BACKEND_FLIP;
    }
    if (r == XM_OK && (h->flags & XM_INPLACE) && !h->alias) {
        /* STRICT or FLIP: the private copies' range (inplace.c) */
        int err = 0;
        h->shadow = xm__os_reserve(&h->osc, h->reserve, NULL, 0, &err);
        if (!h->shadow)
            r = XM_ENOMEM;
    }
    if (r != XM_OK) {
        (void)xm__os_unmap(&h->osc, (void *)h->base, h->reserve);
        teardown_dual(h);
        heap_free_meta(h);
        if (pk)
            xm__wrpkru(pkru);
        return r;
    }
    xm__range_init(h);
    xm__bias_init(h);
    /* the fast paths need the owner's lock and DUAL's staged default */
    bool fast = h->bias && h->backend == XM_BACKEND_DUAL && h->alias &&
                !(h->flags & XM_INPLACE) && !h->valgrind;
    atomic_init(&h->gate, fast ? 0u : (unsigned)XM__G_OFF);
    xm__fork_register(h);
    *out = h;
    return XM_OK;
}

void xm_heap_destroy(xm_heap *h)
{
    if (!h)
        return;
    xm__fork_unregister(h);
    xm__sym_destroy(h);
    (void)xm__os_unmap(&h->osc, (void *)h->base, h->reserve);
    if (h->shadow)
        (void)xm__os_unmap(&h->osc, h->shadow, h->reserve);
    teardown_dual(h);
    heap_free_meta(h);
}

/* ---- calls ------------------------------------------------------------ */

/* ---- arenas ----------------------------------------------------------- */

/* Slots handed out so far (see internal.h): 64 bits, so it never wraps
 * (a 32-bit counter did, after 2^32 threads, and gave a new thread the slot
 * of a live arena owner: both took the owner's plain-store lock at once). */
static _Atomic uint64_t next_slot;
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec")))
#endif
_Thread_local unsigned xm__slot;

unsigned xm__slot_assign(void)
{
    if (!xm__slot) {
        uint64_t n = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed);
        xm__slot = n < XM__SLOT_BIAS_MAX
                       ? (unsigned)n + 1
                       : XM__SLOT_BIAS_MAX + 1 + (unsigned)(n % XM__ARENAS);
    }
    return xm__slot;
}

uint64_t xm__slot_counter_set(uint64_t n) { return atomic_exchange(&next_slot, n); }

/* Every call starts here, before it takes a lock: deferred frees are
 * completed; a frozen fork child refuses what would change the heap. */
xm_result xm__enter(xm_heap *h, bool mutating)
{
    if (h->forked)
        return mutating ? XM_ESTATE : XM_OK;
    xm__drain_if_needed(h);
    return XM_OK;
}

xm_result xm__leave(xm_heap *h, xm__arena *a, xm_result r)
{
    if (a)
        xm__arena_unlock(a);
#if XM_DEBUG >= 3
    xm__heap_check(h);
#else
    (void)h;
#endif
    return r;
}

/* The general paths, out of line so that the fast paths in the public
 * functions below need few registers. */
#define XM__NOINLINE __attribute__((noinline))

static XM__NOINLINE xm_result alloc_slow(xm_heap *h, int kind, size_t size,
                                         size_t align, xm_block *out)
{
    if (!h || !out || size == 0 || size > SIZE_MAX / 4)
        return XM_EINVAL;
    if (align && ((align & (align - 1)) || align > XM__PAGE))
        return XM_EINVAL;
    if (size > h->reserve)
        return XM_ENOMEM;
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__arena *a = xm__my_arena(h);
    xm__arena_lock(h, a);
    return xm__leave(h, a, xm__block_alloc_locked(h, a, kind, size, align, out));
}

/* The fast path takes what is valid and small enough for a magazine; the
 * general path checks everything else. */
static XM__FAST xm_result alloc_kind(xm_heap *h, int kind, size_t size,
                                   size_t align, xm_block *out)
{
    if (h && out && size - 1 < XM__MAG_EXACT * XM__GRAN &&
        !(align & (align - 1)) && align <= XM__LINE_PAIR &&
        xm__alloc_fast(h, kind, size, align, out))
        return xm__leave(h, NULL, XM_OK);
    return alloc_slow(h, kind, size, align, out);
}

/* XM_PKEYS (pkeys.h): every public call that may write the alias runs
 * with the alias opened to its thread, and the thread's PKRU is back as it
 * was when it returns (the drain opens it for itself, deferred.c). With
 * XM_INPLACE the caller writes rw itself: a block allocated holds the
 * thread's right until its publish or free. Out of line: a heap without
 * keys pays one test of h->pkey. */
static XM__NOINLINE xm_result alloc_pk(xm_heap *h, int kind, size_t size,
                                       size_t align, xm_block *out)
{
    unsigned old = xm__pk_open(h);
    xm_result r = alloc_kind(h, kind, size, align, out);
    xm__pk_close(old);
    if (r == XM_OK && (h->flags & XM_INPLACE))
        xm__pk_hold(h);
    return r;
}

xm_result xm_alloc(xm_heap *h, size_t size, size_t align, xm_block *out)
{
    if (h && h->pkey)
        return alloc_pk(h, XM__K_CODE, size, align, out);
    return alloc_kind(h, XM__K_CODE, size, align, out);
}

xm_result xm_alloc_data(xm_heap *h, size_t size, size_t align, xm_block *out)
{
    if (h && h->pkey)
        return alloc_pk(h, XM__K_DATA, size, align, out);
    return alloc_kind(h, XM__K_DATA, size, align, out);
}

static XM__NOINLINE xm_result publish_slow(xm_heap *h, void *rx, int prot)
{
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__lock_block(h, (uintptr_t)rx, &p, &g, &r);
    if (r == XM_OK)
        r = xm__block_publish_locked(h, p, g, prot);
    return xm__leave(h, a, r);
}

static XM__NOINLINE xm_result publish_pk(xm_heap *h, void *rx, int prot)
{
    unsigned old = xm__pk_open(h);
    xm_result r = XM_OK;
    if (!xm__publish_fast(h, (uintptr_t)rx, prot))
        r = publish_slow(h, rx, prot);
    else
        r = xm__leave(h, NULL, XM_OK);
    xm__pk_close(old);
    if (r == XM_OK && (h->flags & XM_INPLACE))
        xm__pk_release(h);
    return r;
}

xm_result xm_publish(xm_heap *h, void *rx, int prot)
{
    if (!h || !rx || (prot != XM_PROT_RX && prot != XM_PROT_R))
        return XM_EINVAL;
    if (h->pkey)
        return publish_pk(h, rx, prot);
    if (xm__publish_fast(h, (uintptr_t)rx, prot))
        return xm__leave(h, NULL, XM_OK);
    return publish_slow(h, rx, prot);
}

/* *unpub (may be NULL): whether the block freed was unpublished. */
static XM__NOINLINE xm_result free_slow_ex(xm_heap *h, void *rx, bool *unpub)
{
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__lock_block(h, (uintptr_t)rx, &p, &g, &r);
    if (r == XM_OK && unpub)
        *unpub = !xm__bit_get(p->pub, g);
    if (r == XM_OK)
        r = xm__block_free_locked(h, p, g);
    return xm__leave(h, a, r);
}

static XM__NOINLINE xm_result free_slow(xm_heap *h, void *rx)
{
    return free_slow_ex(h, rx, NULL);
}

static XM__NOINLINE xm_result free_pk(xm_heap *h, void *rx)
{
    unsigned old = xm__pk_open(h);
    bool unpub = false;
    xm_result r = XM_OK;
    if (xm__free_fast(h, (uintptr_t)rx)) /* published blocks only */
        r = xm__leave(h, NULL, XM_OK);
    else
        r = free_slow_ex(h, rx, &unpub);
    xm__pk_close(old);
    if (r == XM_OK && unpub && (h->flags & XM_INPLACE))
        xm__pk_release(h);
    return r;
}

xm_result xm_free(xm_heap *h, void *rx)
{
    if (!h || !rx)
        return XM_EINVAL;
    if (h->pkey)
        return free_pk(h, rx);
    if (xm__free_fast(h, (uintptr_t)rx))
        return xm__leave(h, NULL, XM_OK);
    return free_slow(h, rx);
}

static xm_result purge_impl(xm_heap *h);

xm_result xm_purge(xm_heap *h)
{
    if (!h)
        return XM_EINVAL;
    if (!h->pkey)
        return purge_impl(h);
    unsigned old = xm__pk_open(h);
    xm_result r = purge_impl(h);
    xm__pk_close(old);
    return r;
}

static xm_result purge_impl(xm_heap *h)
{
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__arenas_lock_all(h);
    for (unsigned i = 0; i < XM__ARENAS; i++)
        xm__arena_retire_empty_locked(h, &h->arenas[i]);
    xm__arenas_unlock_all(h);
    pthread_mutex_lock(&h->lock);
    r = xm__purge_locked(h);
    pthread_mutex_unlock(&h->lock);
    return xm__leave(h, NULL, r);
}

static xm_result patch_impl(xm_heap *h, void *dst, const void *src, size_t len);

xm_result xm_patch(xm_heap *h, void *dst, const void *src, size_t len)
{
    if (!h || !h->pkey)
        return patch_impl(h, dst, src, len);
    unsigned old = xm__pk_open(h);
    xm_result r = patch_impl(h, dst, src, len);
    xm__pk_close(old);
    return r;
}

static xm_result patch_impl(xm_heap *h, void *dst, const void *src, size_t len)
{
    if (!h || !dst || !src || len == 0)
        return XM_EINVAL;
    if ((uintptr_t)dst + len < (uintptr_t)dst)
        return XM_ERANGE;
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__lock_range(h, (uintptr_t)dst, len, &p, &g, &r);
    if (r == XM_OK)
        r = xm__block_patch_locked(h, p, g, (uintptr_t)dst, src, len);
    return xm__leave(h, a, r);
}

xm_result xm_query(xm_heap *h, const void *addr, xm_block *out)
{
    if (!h || !out)
        return XM_EINVAL;
    xm_result r = xm__enter(h, false);
    if (r != XM_OK)
        return r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__lock_pack_of(h, (uintptr_t)addr, &p);
    if (!a)
        return xm__leave(h, NULL, XM_EBADPTR);
    r = xm__block_containing(p, (uintptr_t)addr, &g);
    if (r == XM_OK) {
        uintptr_t rx = xm__block_addr(p, g);
        out->rx = (void *)rx;
        out->size = xm__block_size(p, g);
        if (h->flags & XM_INPLACE)
            out->rw = (h->alias ? h->alias : h->shadow) + (rx - h->base);
        else if (xm__bit_get(p->pub, g))
            out->rw = NULL;
        else if (h->backend == XM_BACKEND_FLIP)
            out->rw = (void *)rx;
        else
            out->rw = xm__stage_get(a, rx);
    }
    return xm__leave(h, a, r);
}

xm_result xm_heap_stats(xm_heap *h, xm_stats *out)
{
    if (!h || !out)
        return XM_EINVAL;
    (void)xm__enter(h, false);
    xm_stats s;
    memset(&s, 0, sizeof s);
    size_t kept = 0;
    xm__arenas_lock_all(h);
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        xm__arena *a = &h->arenas[i];
        s.live_blocks += (size_t)(a->allocs - a->frees);
        s.live_bytes += a->live_bytes;
        s.staging_bytes += a->staging_bytes;
        s.allocs += a->allocs;
        s.frees += a->frees;
        s.publishes += a->publishes;
        s.patches += a->patches;
        for (int k = 0; k < 2; k++)
            if (a->keep[k])
                kept += (size_t)a->keep[k]->npages << XM__PAGE_SHIFT;
    }
    xm__arenas_unlock_all(h);
    pthread_mutex_lock(&h->lock);
    s.backend = h->backend;
    s.flags = h->flags;
    s.reserved_bytes = h->reserve;
    s.resident_bytes = atomic_load(&h->resident_bytes);
    /* what a purge releases: the free runs, and the empty packs the
       arenas keep in place */
    s.quarantine_bytes = h->quarantine_bytes + kept;
    s.async_frees = atomic_load(&h->async_frees);
    s.purges = h->purges;
    s.syscalls = atomic_load(&h->osc.syscalls);
    s.revocations = atomic_load(&h->osc.revocations);
    s.purge_runs = h->purge_runs;
    pthread_mutex_unlock(&h->lock);
    *out = s;
    return xm__leave(h, NULL, XM_OK);
}

/* ---- debug walk ------------------------------------------------------- */

#define CHECK(e)                                                               \
    do {                                                                       \
        if (!(e))                                                              \
            xm__assert_fail(#e, __FILE__, __LINE__);                           \
    } while (0)

/* Every arena and the heap lock held. */
void xm__check_locked(xm_heap *h)
{
    /* the free-range set (range.c walks it) */
    size_t mapped = xm__range_check(h);
    size_t blocks = 0, bytes = 0, pages = 0, mag_blocks = 0;
    for (size_t i = 0; i < h->nall; i++) {
        xm__pack *p = h->all[i];
        if (atomic_load(&h->ps[p->page].pm) != p || p->npages == 0)
            continue; /* spare */
        pages += p->npages;
        CHECK(p->filled <= p->npages && (p->filled == p->npages || !p->large));
        for (uint32_t k = 0; k < p->npages; k++)
            CHECK(atomic_load(&h->ps[p->page + k].pm) == p);
        uint32_t ngr = p->large ? 1 : XM__PACK_GRANS, used = 0, ncached = 0;
        for (uint32_t g = 0; g < ngr; g++) {
            bool u = xm__bit_get(p->used, g);
            bool s = (xm__abit_word(p->start, g) >> (g & 63)) & 1;
            bool cb = xm__bit_get(p->cached, g);
            used += u;
            CHECK(!s || u);
            CHECK(!cb || (u && !s && !p->large));
            if (cb || s) /* the recorded size is the bitmaps' */
                CHECK(xm__block_size(p, g) == xm__block_size_slow(p, g));
            if (cb) { /* a magazine's block: not live, every byte a trap */
                size_t sz = xm__block_size(p, g);
                ncached += (uint32_t)(sz >> XM__GRAN_SHIFT);
                CHECK(!xm__bit_get(p->pub, g));
                const unsigned char *b =
                    (const unsigned char *)p->base + ((size_t)g << XM__GRAN_SHIFT);
                for (size_t k = 0; p->kind == XM__K_CODE && k < sz; k++)
                    CHECK(b[k] == XM__TRAP_BYTE);
                mag_blocks++;
            }
            if (s) {
                size_t sz = xm__block_size(p, g);
                blocks++;
                bytes += sz;
                bool pub = xm__bit_get(p->pub, g);
                if (!pub && h->backend == XM_BACKEND_DUAL &&
                    !(h->flags & XM_INPLACE))
                    CHECK(xm__stage_get(&h->arenas[atomic_load(&p->arena)],
                                        xm__block_addr(p, g)));
            }
            /* pages the pack has not reached (pack_reach) hold no block
               and are file holes; the rest of a code pack is traps */
            bool reached = g >> (XM__PAGE_SHIFT - XM__GRAN_SHIFT) < p->filled;
            CHECK(reached || !u);
            if (!u && !p->large && p->kind == XM__K_CODE && reached) {
                const unsigned char *b =
                    (const unsigned char *)p->base + ((size_t)g << XM__GRAN_SHIFT);
                for (unsigned k = 0; k < XM__GRAN; k++)
                    CHECK(b[k] == XM__TRAP_BYTE);
            }
        }
        CHECK(ncached == (p->large ? 0 : p->ncached));
        if (!p->large) {
            CHECK(p->nfree == XM__PACK_GRANS - used);
            xm__pack_check_runs(p);
            /* on its arena's class list exactly when it has room, in the
               class of its longest free run */
            xm__arena *a = &h->arenas[atomic_load(&p->arena)];
            CHECK(p->maxrun == xm__pack_longest_run(p));
            bool found = false;
            for (xm__pack *q = a->rcl[p->kind][p->rclass]; q && p->listed; q = q->next)
                found |= q == p;
            CHECK(found == (p->maxrun > 0) && p->listed == found);
            CHECK(!found || ((a->rmask[p->kind] >> p->rclass) & 1));
            CHECK((p->nfree == XM__PACK_GRANS) == (a->keep[p->kind] == p));
        }
    }
    mapped += pages << XM__PAGE_SHIFT;
    size_t live_blocks = 0, live_bytes = 0, mag_entries = 0;
    for (unsigned i = 0; i < XM__ARENAS; i++) {
        xm__arena *a = &h->arenas[i];
        size_t mid_bytes[2] = {0, 0};
        for (int k = 0; k < 2; k++) /* magazines: cached blocks of its packs */
            for (uint32_t c = 0; c < XM__MAG_CLASSES; c++) {
                CHECK(a->nmag[k][c] <= XM__MAG_DEPTH);
                for (uint32_t j = 0; j < a->nmag[k][c]; j++) {
                    uintptr_t rx = a->mag[k][c][j];
                    xm__pack *p = xm__pack_of(h, rx);
                    CHECK(p && p == a->magp[k][c][j] && !p->large && p->kind == k &&
                          atomic_load(&p->arena) == i);
                    uint32_t g = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
                    CHECK(xm__bit_get(p->cached, g));
                    CHECK(xm__mag_put_class((uint32_t)(xm__block_size(p, g) >>
                                                       XM__GRAN_SHIFT)) == c);
                    mid_bytes[k] += c >= XM__MAG_EXACT ? xm__block_size(p, g) : 0;
                    mag_entries++;
                }
            }
        CHECK(mid_bytes[0] == a->mag_mid_bytes[0] && mid_bytes[1] == a->mag_mid_bytes[1]);
        live_blocks += (size_t)(a->allocs - a->frees);
        live_bytes += a->live_bytes;
        CHECK(a->stcount * 2 <= a->stcap || a->stcap == 0);
        for (size_t w = 0; w < a->nwin; w++) { /* windows: on live published
                                                  blocks of this arena */
            xm__pack *p;
            uint32_t g;
            CHECK(xm__block_find(h, a->win[w].block, &p, &g) == XM_OK);
            CHECK(&h->arenas[atomic_load(&p->arena)] == a);
            CHECK(xm__bit_get(p->pub, g));
            CHECK(a->win[w].rx >= a->win[w].block &&
                  a->win[w].rx + a->win[w].len <=
                      a->win[w].block + xm__block_size(p, g));
            CHECK((a->win[w].buf == NULL) == (h->alias != NULL));
        }
    }
    CHECK(blocks == live_blocks);
    CHECK(mag_blocks == mag_entries);
    CHECK(bytes == live_bytes);
    if (h->backend == XM_BACKEND_DUAL)
        CHECK(mapped == atomic_load(&h->resident_bytes));
}

/* White-box tests: where the heap's address ranges are (leak checks). */
void xm__heap_ranges(xm_heap *h, uintptr_t *base, size_t *len, uintptr_t *alias)
{
    *base = h->base;
    *len = h->reserve;
    *alias = (uintptr_t)h->alias;
}

/* Exposed to white-box tests regardless of the compiled debug level. */
void xm__heap_check(xm_heap *h)
{
    xm__arenas_lock_all(h);
    pthread_mutex_lock(&h->lock);
    xm__check_locked(h);
    pthread_mutex_unlock(&h->lock);
    xm__arenas_unlock_all(h);
}
