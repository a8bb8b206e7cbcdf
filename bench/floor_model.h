/* SPDX-License-Identifier: MIT */
/*
 * floor_model.h: the least the churn operation can cost under execmem's
 * byte-level rules. Not the library: a single-threaded model that keeps
 * every pass over the bytes the rules require (the staging buffer
 * trap-filled before the JIT writes, the staging buffer copied into the
 * code on publish, the freed block trap-filled through the writable view
 * before free returns) and drops everything else: no argument checks, no
 * lock, no lookup structure (one state byte per granule, static arrays),
 * per-size LIFO caches, bump allocation. Used by bench/churn_floor.c and by
 * bench/ct_floor.c (bench.c's "floor model" row).
 *
 * Before including, a file may define FM_CLAIM() and FM_UNCLAIM(), run at
 * the start and end of each call (churn_floor.c uses them to add the cost
 * of a lock).
 */
#ifndef XM_FLOOR_MODEL_H
#define XM_FLOOR_MODEL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef FM_CLAIM
#define FM_CLAIM() ((void)0)
#define FM_UNCLAIM() ((void)0)
#endif

enum { FM_GRAN = 64, FM_CLASSES = 32, FM_SPACE = 16 << 20,
       FM_NGRAN = FM_SPACE / FM_GRAN };
enum { FM_FREE = 0, FM_STAGED, FM_PUB, FM_CACHED };

/* memset through libc: for a size it can bound gcc inlines `rep stos`,
 * which starts slower than libc's vector loop for blocks this small (the
 * library does the same, src/pack.c fast_fill_traps). */
static void fm_fill(void *p, size_t n)
{
    __asm__("" : "+r"(n));
    memset(p, 0xCC, n);
}

static unsigned char *fm_rx, *fm_rw; /* the two views of one memfd */
static uint8_t fm_state[FM_NGRAN], fm_glen[FM_NGRAN];
static void *fm_stg[FM_NGRAN];       /* staging buffer of each staged block */
static uint32_t fm_cache[FM_CLASSES][4096], fm_ncache[FM_CLASSES];
static void *fm_stbuf[FM_CLASSES];   /* recycled staging buffers (linked) */
static uint32_t fm_bump;

/* Maps the views (0) or fails (-1). */
static int fm_setup(void)
{
    int fd = memfd_create("floor_model", 0);
    if (fd < 0 || ftruncate(fd, FM_SPACE))
        return -1;
    fm_rx = mmap(NULL, FM_SPACE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    fm_rw = mmap(NULL, FM_SPACE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (fm_rx == MAP_FAILED || fm_rw == MAP_FAILED)
        return -1;
    memset(fm_rw, 0xCC, FM_SPACE);
    return 0;
}

static void fm_teardown(void)
{
    munmap(fm_rx, FM_SPACE);
    munmap(fm_rw, FM_SPACE);
    for (uint32_t c = 0; c < FM_CLASSES; c++)
        while (fm_stbuf[c]) {
            void *b = fm_stbuf[c];
            memcpy(&fm_stbuf[c], b, sizeof b);
            free(b);
        }
    memset(fm_state, 0, sizeof fm_state);
    memset(fm_ncache, 0, sizeof fm_ncache);
    fm_bump = 0;
}

static void fm_free(void *rx)
{
    uint32_t g = (uint32_t)(((unsigned char *)rx - fm_rx) / FM_GRAN);
    FM_CLAIM();
    if (fm_state[g] != FM_PUB)
        abort();
    size_t sz = ((size_t)fm_glen[g] + 1) * FM_GRAN;
    fm_fill(fm_rw + (size_t)g * FM_GRAN, sz);
    fm_state[g] = FM_CACHED;
    fm_cache[fm_glen[g]][fm_ncache[fm_glen[g]]++] = g;
    FM_UNCLAIM();
}

static void *fm_alloc(size_t len, void **rw)
{
    uint32_t c = (uint32_t)((len + FM_GRAN - 1) / FM_GRAN - 1), g;
    if (c >= FM_CLASSES)
        abort();
    FM_CLAIM();
    if (fm_ncache[c])
        g = fm_cache[c][--fm_ncache[c]];
    else {
        g = fm_bump;
        fm_bump += c + 1;
        if (fm_bump > FM_NGRAN)
            abort();
        fm_glen[g] = (uint8_t)c;
    }
    void *b = fm_stbuf[c];
    if (b)
        memcpy(&fm_stbuf[c], b, sizeof b);
    else if (!(b = aligned_alloc(128, (size_t)(c + 1) * FM_GRAN + 64)))
        abort();
    fm_fill(b, (size_t)(c + 1) * FM_GRAN);
    fm_stg[g] = b;
    fm_state[g] = FM_STAGED;
    *rw = b;
    FM_UNCLAIM();
    return fm_rx + (size_t)g * FM_GRAN;
}

static void fm_publish(void *rx)
{
    uint32_t g = (uint32_t)(((unsigned char *)rx - fm_rx) / FM_GRAN);
    FM_CLAIM();
    if (fm_state[g] != FM_STAGED)
        abort();
    void *b = fm_stg[g];
    memcpy(fm_rw + (size_t)g * FM_GRAN, b, ((size_t)fm_glen[g] + 1) * FM_GRAN);
    fm_stg[g] = NULL;
    fm_state[g] = FM_PUB;
    memcpy(b, &fm_stbuf[fm_glen[g]], sizeof b);
    fm_stbuf[fm_glen[g]] = b;
    FM_UNCLAIM();
}

#endif
