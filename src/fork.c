/* SPDX-License-Identifier: MIT */
/*
 * fork.c: keeping parent and child code apart across fork().
 *
 * A DUAL heap's views are MAP_SHARED mappings of one memfd: after fork the
 * child's executable view would show every later change the parent makes
 * (frees, patches), and the child could write the parent's code. So:
 *   - the writable alias is MADV_DONTFORK (the child never has it);
 *   - prepare (before fork, every lock of every heap taken, so no code byte
 *     can change):
 *     each mapped run of the executable view is copied to fresh private
 *     anonymous memory, which the child inherits copy-on-write;
 *   - child: each copy gets the run's rights and is moved over the run
 *     (mremap), the memfd descriptors are closed, and the heap is frozen
 *     (nothing outside the executable view is unmapped: the alias's range
 *     is free here and may hold another atfork handler's mapping):
 *     its code runs, queries work, everything that would write returns
 *     XM_ESTATE;
 *   - parent: drops the copies and unlocks.
 * The cost is one copy of the mapped code per fork (posix_spawn and vfork
 * do not run atfork handlers and pay nothing). If a copy cannot be made,
 * the child gets that run inaccessible instead: the parent's code is never
 * shared with the child.
 * FLIP heaps hold private memory only; fork's copy-on-write already isolates
 * them, and the child's heap stays usable.
 *
 * Locks. Every lock the library owns is taken by prepare, so that no other
 * thread is inside any of them when fork copies the process, and released
 * (parent) or unlocked by the forking thread, which took them (child), in
 * this order, which is also the order in which any call nests them:
 *   1. fork_lock (the list of heaps);
 *   2. live_lock (live.c: xm_patch_live takes it before an arena's);
 *   3. per heap, in list order: drain_lock (deferred.c: a drain takes
 *      arenas under it), then every arena in index order with its biased
 *      lock revoked (arena_lock.c), then the heap lock;
 *   4. sym_lock (sym.c: taken inside arena locks by publish and free).
 * No call holds one heap's lock while it takes another heap's. The child
 * also resets what names the threads that did not come along: no arena
 * keeps an owner's bias (xm__bias_fork_child), membarrier registrations
 * are made again, and no drain is in flight (drain_lock was held).
 */
#include "internal.h"

#include <string.h>

typedef struct xm__snap {
    uintptr_t addr;
    size_t len;
    int prot;
    void *copy; /* NULL: could not copy */
} xm__snap;

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static xm_heap *fork_heaps;

static int snap_add(xm_heap *h, size_t *cap, uintptr_t addr, size_t len,
                    int prot)
{
    if (h->nsnaps && h->snaps[h->nsnaps - 1].prot == prot &&
        h->snaps[h->nsnaps - 1].addr + h->snaps[h->nsnaps - 1].len == addr) {
        h->snaps[h->nsnaps - 1].len += len;
        return 0;
    }
    if (h->nsnaps == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        xm__snap *s = xm__mem_realloc(h->snaps, nc * sizeof *s);
        if (!s)
            return -1;
        h->snaps = s;
        *cap = nc;
    }
    h->snaps[h->nsnaps++] = (xm__snap){addr, len, prot, NULL};
    return 0;
}

/* Runs of the executable view, in address order, from packs and mapped
 * free ranges. On allocation failure the whole reserve becomes one run
 * that the child gets inaccessible. */
static void snap_collect(xm_heap *h)
{
    size_t cap = 0;
    h->snaps = NULL;
    h->nsnaps = 0;
    for (uint32_t pg = 0; pg < h->npages;) {
        xm__pack *p = atomic_load(&h->ps[pg].pm);
        uint32_t n;
        int prot;
        if (p) {
            n = p->npages;
            prot = p->kind == XM__K_CODE ? (XM__P_R | XM__P_X) : XM__P_R;
        } else {
            int st = XM__FR_NONE;
            int found = xm__range_at(h, pg, &n, &st);
            XM_ASSERT(found == 0);
            if (st == XM__FR_NONE) {
                pg += n;
                continue;
            }
            prot = st == XM__FR_CODE ? (XM__P_R | XM__P_X) : XM__P_R;
        }
        if (snap_add(h, &cap, xm__page_addr(h, pg), (size_t)n << XM__PAGE_SHIFT,
                     prot)) {
            xm__mem_free(h->snaps);
            h->snaps = NULL;
            h->nsnaps = 0;
            return;
        }
        pg += n;
    }
}

/* Every lock of the heap, arenas in index order first (the lock order). */
static void lock_all(xm_heap *h)
{
    xm__arenas_lock_all(h);
    pthread_mutex_lock(&h->lock);
}

static void unlock_all(xm_heap *h)
{
    pthread_mutex_unlock(&h->lock);
    xm__arenas_unlock_all(h);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&fork_lock);
    xm__live_fork_prepare();
    for (xm_heap *h = fork_heaps; h; h = h->gnext) {
        pthread_mutex_lock(&h->drain_lock);
        lock_all(h);
        h->snaps = NULL;
        h->nsnaps = 0;
        if (h->backend != XM_BACKEND_DUAL || h->forked)
            continue;
        snap_collect(h);
        for (size_t i = 0; i < h->nsnaps; i++) {
            xm__snap *s = &h->snaps[i];
            int err;
            s->copy = xm__os_map_anon(&h->osc, s->len, XM__P_R | XM__P_W, &err);
            if (s->copy)
                memcpy(s->copy, (void *)s->addr, s->len);
        }
    }
    xm__sym_fork_prepare(); /* last: it comes after any arena lock */
}

static void fork_parent(void)
{
    xm__sym_fork_parent();
    for (xm_heap *h = fork_heaps; h; h = h->gnext) {
        for (size_t i = 0; i < h->nsnaps; i++)
            if (h->snaps[i].copy)
                (void)xm__os_unmap(&h->osc, h->snaps[i].copy, h->snaps[i].len);
        xm__mem_free(h->snaps);
        h->snaps = NULL;
        h->nsnaps = 0;
        unlock_all(h);
        pthread_mutex_unlock(&h->drain_lock);
    }
    xm__live_fork_parent();
    pthread_mutex_unlock(&fork_lock);
}

static void fork_child(void)
{
    xm__sym_fork_child();
    xm__bias_fork_child_process();
    for (xm_heap *h = fork_heaps; h; h = h->gnext) {
        xm__bias_fork_child(h); /* before unlock_all: revoke stays raised */
        if (h->backend == XM_BACKEND_DUAL && !h->forked) {
            if (!h->snaps) /* could not even list the runs: cut everything */
                (void)xm__os_map_anon_at(&h->osc, (void *)h->base, h->reserve,
                                         XM__P_NONE);
            for (size_t i = 0; i < h->nsnaps; i++) {
                xm__snap *s = &h->snaps[i];
                int ok = s->copy &&
                         !xm__os_protect(&h->osc, s->copy, s->len, s->prot) &&
                         !xm__os_move(&h->osc, s->copy, s->len, (void *)s->addr);
                if (!ok)
                    (void)xm__os_map_anon_at(&h->osc, (void *)s->addr, s->len,
                                             XM__P_NONE);
            }
            /* MADV_DONTFORK already kept the alias out of this process,
               and its range is free here: an atfork child handler that ran
               before this one may have mapped memory in it (ThreadSanitizer
               puts its new background thread's stack there), so it is not
               touched. Only valgrind, which does not model DONTFORK and
               keeps every mapping placed elsewhere, is told it is gone, so
               that it does not scan it. */
            if (h->alias && h->valgrind)
                (void)xm__os_unmap(&h->osc, h->alias, h->reserve);
            h->alias = NULL;
            if (h->fd_ro >= 0)
                (void)xm__os_close(&h->osc, h->fd_ro);
            if (h->fd >= 0)
                (void)xm__os_close(&h->osc, h->fd);
            h->fd = h->fd_ro = -1;
            /* write windows that threads of the parent had open: their
               writers are not here, and a frozen heap has none to end */
            for (unsigned k = 0; k < XM__ARENAS; k++) {
                xm__arena *a = &h->arenas[k];
                for (size_t i = 0; i < a->nwin; i++)
                    xm__mem_free(a->win[i].buf);
                a->nwin = 0;
            }
            h->forked = 1;
            atomic_store(&h->pending, NULL);
        }
        xm__mem_free(h->snaps);
        h->snaps = NULL;
        h->nsnaps = 0;
        unlock_all(h);
        pthread_mutex_unlock(&h->drain_lock);
    }
    xm__live_fork_child();
    pthread_mutex_unlock(&fork_lock);
}

static void fork_init(void)
{
    (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void xm__fork_register(xm_heap *h)
{
    pthread_once(&fork_once, fork_init);
    pthread_mutex_lock(&fork_lock);
    h->gnext = fork_heaps;
    fork_heaps = h;
    pthread_mutex_unlock(&fork_lock);
}

void xm__fork_unregister(xm_heap *h)
{
    pthread_mutex_lock(&fork_lock);
    for (xm_heap **pp = &fork_heaps; *pp; pp = &(*pp)->gnext) {
        if (*pp == h) {
            *pp = h->gnext;
            break;
        }
    }
    pthread_mutex_unlock(&fork_lock);
}

/* Tests: destroys every heap still alive, returns how many (a failed test
 * that returned before its xm_heap_destroy must not make later tests fail). */
size_t xm__heap_destroy_all(void)
{
    size_t n = 0;
    for (;;) {
        pthread_mutex_lock(&fork_lock);
        xm_heap *h = fork_heaps;
        pthread_mutex_unlock(&fork_lock);
        if (!h)
            return n;
        xm__heap_free(h); /* unregisters it */
        n++;
    }
}
