/* SPDX-License-Identifier: MIT */
/*
 * ct_mprotect.c: the two contenders that call mmap and mprotect themselves,
 * as JITs without an allocator do.
 *   naive: per function, mmap RW, write, mprotect RX; munmap on put.
 *   flip pool: one page per function, recycled through a free list (under a
 *     mutex); mprotect RW before each write and RX after; functions over a
 *     page fall back to naive. The pages are unmapped at destroy.
 * Both make system calls on every operation (their rows set syscall_per_op).
 * In bench, mmap/mprotect/munmap here are syscount.c's counting ones.
 */
#include "contender.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static size_t pages_of(size_t len) { return (len + 4095) & ~(size_t)4095; }

static void *nv_get(contender *c, size_t len, size_t wlen, size_t align)
{
    (void)c;
    (void)align;
    size_t n = pages_of(len);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(p, ct_code, wlen);
    mprotect(p, n, PROT_READ | PROT_EXEC);
    return p;
}

static void nv_put(contender *c, void *rx, size_t len)
{
    (void)c;
    munmap(rx, pages_of(len));
}

const ct_class ct_naive = {true, true, ct_stateless_create, ct_stateless_destroy,
                           nv_get, nv_put, NULL};

typedef struct flip_pool {
    void **pool; /* free pages, mapped RX */
    size_t npool, cappool;
    pthread_mutex_t lock;
} flip_pool;

static bool fp_create(contender *c)
{
    flip_pool *fp = calloc(1, sizeof *fp);
    if (!fp)
        return false;
    pthread_mutex_init(&fp->lock, NULL);
    c->state = fp;
    return true;
}

static void fp_destroy(contender *c)
{
    flip_pool *fp = c->state;
    for (size_t i = 0; i < fp->npool; i++)
        munmap(fp->pool[i], 4096);
    free(fp->pool);
    pthread_mutex_destroy(&fp->lock);
    free(fp);
    c->state = NULL;
}

static void *fp_get(contender *c, size_t len, size_t wlen, size_t align)
{
    if (len > 4096)
        return nv_get(c, len, wlen, align);
    flip_pool *fp = c->state;
    pthread_mutex_lock(&fp->lock);
    void *p = fp->npool ? fp->pool[--fp->npool] : NULL;
    pthread_mutex_unlock(&fp->lock);
    if (!p) {
        p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
    }
    mprotect(p, 4096, PROT_READ | PROT_WRITE);
    memcpy(p, ct_code, wlen);
    mprotect(p, 4096, PROT_READ | PROT_EXEC);
    return p;
}

static void fp_put(contender *c, void *rx, size_t len)
{
    if (len > 4096) {
        nv_put(c, rx, len);
        return;
    }
    flip_pool *fp = c->state;
    pthread_mutex_lock(&fp->lock);
    if (fp->npool == fp->cappool) {
        fp->cappool = fp->cappool ? fp->cappool * 2 : 1024;
        fp->pool = realloc(fp->pool, fp->cappool * sizeof *fp->pool);
    }
    fp->pool[fp->npool++] = rx;
    pthread_mutex_unlock(&fp->lock);
}

const ct_class ct_flippool = {true, true, fp_create, fp_destroy, fp_get, fp_put, NULL};
