/* SPDX-License-Identifier: MIT */
/*
 * meta.c: making and unmaking a heap, below the API (xm_heap_create and
 * xm_heap_destroy, and fork.c and sysinfo.c, which need a heap made or
 * unmade without the public calls). Owns the reserve's placement (near a
 * given address for rel32 calls), the backends' setup: DUAL's memfd, its
 * read-only reopen and the writable alias, and FLIP's probe, and the one
 * anonymous mapping that holds the heap and its per-page metadata.
 */
#include "internal.h"
#include "pkeys.h"
#include "arch.h"

#include <errno.h>
#include <string.h>

/* The first pages of the last destroyed heap's reserve and alias, left
 * mapped PROT_NONE (anonymous: no file, no rights) while its metadata is
 * parked, so that the page tables over the start of both ranges survive
 * for the next heap of the same reserve size, which maps its ranges back
 * at the same addresses. The kernel frees a page-table page only when no
 * mapping is left in the range it covers; on this VM a fresh one costs
 * 20-40 us to make and free (PVM shadow paging): a create + first
 * function + destroy cycle 175 -> 57 us and the first call of the new
 * heap's first function 38 -> 9 us in a scratch program with the heap's
 * own system calls. 0: none. Consumed (zeroed) by whoever maps over it;
 * xm__heap_new unmaps what is left. */
typedef struct anchors {
    uintptr_t rx, alias;
} anchors;

static void anchors_drop(anchors *an)
{
    xm__osc osc = {0, 0};
    if (an->rx)
        (void)xm__os_unmap(&osc, (void *)an->rx, XM__PAGE);
    if (an->alias)
        (void)xm__os_unmap(&osc, (void *)an->alias, XM__PAGE);
    an->rx = an->alias = 0;
}

static xm_result reserve_space(xm_heap *h, const void *near, anchors *an)
{
    int err = 0;
    if (!near && an->rx) { /* the rest of the last reserve, if still free */
        void *p = xm__os_reserve(&h->osc, h->reserve - XM__PAGE,
                                 (void *)(an->rx + XM__PAGE), 1, &err);
        if (p) {
            h->base = an->rx;
            an->rx = 0;
            return XM_OK;
        }
    }
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
/* The alias, back at the last heap's address when its anchor is there and
 * the rest is still free: the rest first, then the anchor's page (mapped
 * over in that order, each keeps the page tables the other covers). */
static void *map_alias(xm_heap *h, int fd, anchors *an, int *err)
{
    char *at = (char *)an->alias;
    if (at && xm__os_map_fd_free_at(&h->osc, at + XM__PAGE, h->reserve - XM__PAGE,
                                    XM__P_R | XM__P_W, fd, XM__PAGE, err)) {
        an->alias = 0; /* from here the page is ours to map or unmap */
        if (xm__os_map_fd(&h->osc, at, XM__PAGE, XM__P_R | XM__P_W, fd, 0, err))
            return at;
        /* a kernel before 6.12 may have unmapped the anchor before
           failing: the whole range goes, whatever is left of it */
        (void)xm__os_unmap(&h->osc, at, h->reserve);
    }
    return xm__os_map_fd(&h->osc, NULL, h->reserve, XM__P_R | XM__P_W, fd, 0, err);
}

static xm_result setup_dual(xm_heap *h, anchors *an)
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
        void *a = map_alias(h, fd, an, &err);
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

/* One destroyed heap's metadata mapping is kept for the next heap of the
 * same reserve size, zeroed where it was written, instead of unmapped: the
 * next heap's metadata is then resident, not a dozen fresh pages, which
 * cost 10-20 us each to touch on this VM (a heap per test, per regular
 * expression). Only a small heap's (META_PARK_MAX bytes written at most:
 * zeroing more would cost more than it saves). While parked, its heap's
 * meta_len, and base and alias (its anchors, 0 if none), are all that is
 * not zero. Private anonymous memory: a fork child has its own copy, as of
 * all the parent's memory. A handle used after xm_heap_destroy may now
 * reach zeroed or reused memory instead of an unmapped page: as with
 * free(), that is the caller's bug. */
#define META_PARK_MAX ((size_t)1 << 20)
static _Atomic(void *) meta_parked;

/* Unmaps a parked mapping and its anchors. */
static void park_unmap(void *m)
{
    xm_heap *p = m;
    anchors an = {p->base, (uintptr_t)p->alias};
    anchors_drop(&an);
    xm__osc osc = {0, 0};
    (void)xm__os_unmap(&osc, m, p->meta_len);
}

/* What a heap wrote of its metadata mapping: the arenas ever locked (an
 * arena is written only under its lock, or by fork and the debug walk,
 * which lock them all), the rest of the heap from its lock on, the page
 * states below the high mark, the nodes used; the rest was never touched. */
typedef struct written {
    unsigned arenas;         /* bit k: arenas[k] */
    size_t o_tail, n_tail;   /* the heap after the arenas, and ps[0..ps_hw) */
    size_t o_fr, n_fr;       /* the nodes used */
    size_t total;
} written;

static written meta_written(const xm_heap *h)
{
    const char *m = (const char *)(const void *)h;
    written w;
    w.arenas = atomic_load(&h->arenas_used);
    w.o_tail = (size_t)((const char *)(const void *)&h->lock - m);
    w.n_tail = (size_t)((const char *)(const void *)h->ps - m) - w.o_tail +
               (size_t)h->ps_hw * sizeof(xm__pstate);
    w.o_fr = (size_t)((const char *)(const void *)h->fr - m);
    w.n_fr = ((size_t)h->frused + 1) * sizeof(xm__frange);
    w.total = (size_t)__builtin_popcount(w.arenas) * sizeof(xm__arena) + w.n_tail + w.n_fr;
    return w;
}

/* Whether h's metadata will be parked: a small heap's. */
static bool meta_parkable(const xm_heap *h)
{
    return meta_written(h).total <= META_PARK_MAX && !h->valgrind;
}

static void meta_park(xm_heap *h, const anchors *an)
{
    size_t len = h->meta_len;
    char *m = (char *)(void *)h;
    if (!meta_parkable(h)) {
        anchors dead = *an;
        anchors_drop(&dead);
        (void)xm__os_unmap(&h->osc, m, len); /* h too */
        return;
    }
    written w = meta_written(h);
    for (unsigned k = 0; k < XM__ARENAS; k++)
        if ((w.arenas >> k) & 1)
            memset(&h->arenas[k], 0, sizeof h->arenas[k]);
    memset(m + w.o_tail, 0, w.n_tail);
    memset(m + w.o_fr, 0, w.n_fr);
    h->meta_len = len; /* while parked: its length (heap_map_meta sets it) */
    h->base = an->rx;
    h->alias = (char *)an->alias;
    void *old = atomic_exchange(&meta_parked, (void *)m);
    if (old)
        park_unmap(old);
}

void xm__park_drop(void)
{
    void *m = atomic_exchange(&meta_parked, NULL);
    if (m)
        park_unmap(m);
}

void xm__park_peek(uintptr_t *rx, uintptr_t *alias)
{
    xm_heap *m = atomic_load(&meta_parked);
    *rx = m ? m->base : 0;
    *alias = m ? (uintptr_t)m->alias : 0;
}

/* The parked mapping if it has length len (zero-filled), and its anchors
 * in *an; else NULL. */
static char *meta_unpark(size_t len, anchors *an)
{
    xm_heap *m = atomic_exchange(&meta_parked, NULL);
    if (m && m->meta_len != len) {
        park_unmap(m);
        m = NULL;
    }
    if (m) {
        an->rx = m->base;
        an->alias = (uintptr_t)m->alias;
        m->base = 0;
        m->alias = NULL;
    }
    return (char *)m; /* (meta_len: heap_map_meta sets it again) */
}

static void heap_free_meta(xm_heap *h, const anchors *an)
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
    meta_park(h, an);
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

static xm_heap *heap_map_meta(size_t reserve, xm__osc *osc, anchors *an)
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
    char *m = meta_unpark(len, an);
    if (!m)
        m = xm__os_map_anon(osc, len, XM__P_R | XM__P_W, &err);
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

/* xm__heap_new's work on h (zero-filled, metadata mapped) with the last
 * heap's anchors: on failure h is gone. */
static xm_result heap_make(xm_heap *h, const xm_options *o, size_t reserve,
                           xm__osc osc, anchors *an)
{
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
    h->flags = o->flags;
    xm__sym_init(h);
    h->lazy_limit = o->lazy_limit; /* 0: automatic (range.c) */
    h->valgrind = xm__running_on_valgrind();
    if (o->near) /* it places its reserve itself, near the program */
        anchors_drop(an);
    h->placed_near = o->near != NULL;
    xm_result r = reserve_space(h, o->near, an);
    if (r != XM_OK) {
        heap_free_meta(h, &(anchors){0, 0});
        return r;
    }
    r = XM_ENOTSUP;
    int dual_errno = 0;
    /* pkey_alloc sets the calling thread's rights for the new key: a
       creation that fails puts back the PKRU it found (pkeys.h) */
    bool pk = (o->flags & XM_PKEYS) && xm__pkru_usable();
    unsigned pkru = pk ? xm__rdpkru() : 0;
    if (o->backend != XM_BACKEND_FLIP) {
        r = setup_dual(h, an);
        if (r == XM_OK) {
            h->backend = XM_BACKEND_DUAL;
        } else {
            dual_errno = xm__os_last_errno(); /* of the call that failed */
            teardown_dual(h);
            xm__os_set_errno(dual_errno);
        }
    }
    /* AUTO chooses by what the system supports: FLIP only where memfd code
       is refused. A shortage (EMFILE, ENFILE, ENOMEM: RLIMIT_NOFILE,
       RLIMIT_AS) is an error, as for explicit DUAL, not a silent switch to
       a backend 50-250x slower per operation (issue 16). */
    bool fallback = o->backend == XM_BACKEND_AUTO && !(o->flags & XM_PKEYS) &&
                    !dual_transient(dual_errno);
    if (r != XM_OK && (o->backend == XM_BACKEND_FLIP || fallback)) {
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
        heap_free_meta(h, &(anchors){0, 0});
        if (pk)
            xm__wrpkru(pkru);
        return r;
    }
    xm__range_init(h);
    xm__bias_init(h);
    /* the fast paths need the owner's lock and DUAL's alias with no private
       copy (the staged default or XM_INPLACE) */
    bool fast = h->bias && h->backend == XM_BACKEND_DUAL && h->alias && !h->shadow &&
                !h->valgrind;
    atomic_init(&h->gate, fast ? 0u : (unsigned)XM__G_OFF);
    xm__fork_register(h);
    return XM_OK;
}


/* A heap for valid options o and a reserve of `reserve` bytes (a multiple
 * of the page, checked by xm_heap_create): metadata, reserve, backend
 * (AUTO chooses), registered for fork. */
xm_result xm__heap_new(const xm_options *o, size_t reserve, xm_heap **out)
{
    xm__osc osc = {0, 0};
    anchors an = {0, 0};
    xm_heap *h = heap_map_meta(reserve, &osc, &an); /* zero-filled */
    if (!h)
        return XM_ENOMEM;
    xm_result r = heap_make(h, o, reserve, osc, &an);
    anchors_drop(&an); /* those not mapped over */
    if (r == XM_OK)
        *out = h;
    return r;
}

/* Unmaps the range of `reserve` bytes at a but its first page, remapped
 * PROT_NONE anonymous first (unmapped after the rest, it would take the
 * range's page tables along). Returns a, or 0 with nothing unmapped. */
static uintptr_t leave_anchor(xm_heap *h, uintptr_t a)
{
    if (xm__os_map_anon_at(&h->osc, (void *)a, XM__PAGE, XM__P_NONE))
        return 0;
    (void)xm__os_unmap(&h->osc, (void *)(a + XM__PAGE), h->reserve - XM__PAGE);
    return a;
}

/* Everything xm__heap_new made, h included. */
void xm__heap_free(xm_heap *h)
{
    xm__fork_unregister(h);
    xm__sym_destroy(h);
    anchors an = {0, 0};
    /* a small default heap leaves its anchors for the next one */
    bool anchor = h->backend == XM_BACKEND_DUAL && h->alias && !h->shadow &&
                  !h->pkey && !h->forked && !h->placed_near && meta_parkable(h);
    if (anchor)
        an.rx = leave_anchor(h, h->base);
    if (!an.rx)
        (void)xm__os_unmap(&h->osc, (void *)h->base, h->reserve);
    if (anchor && (an.alias = leave_anchor(h, (uintptr_t)h->alias)))
        h->alias = NULL; /* teardown_dual: nothing left to unmap */
    if (h->shadow)
        (void)xm__os_unmap(&h->osc, h->shadow, h->reserve);
    teardown_dual(h);
    heap_free_meta(h, &an);
}
