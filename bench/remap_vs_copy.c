/* SPDX-License-Identifier: MIT */
/*
 * remap_vs_copy.c: issue 15's question for whole-page blocks, measured
 * without the library: is it cheaper to write a block's final pages while
 * their executable view is not mapped, and raise the view's rights at
 * publish, than to stage the bytes and copy them in (what DUAL does)?
 *
 * One memfd, an RW alias and an RX view of it, as in a DUAL heap. For a
 * block of BLOCK bytes at a rotating offset, per operation:
 *   staged:   trap-fill a recycled staging buffer, copy it into the alias
 *             (the JIT's own write into the buffer is not counted: both
 *             ways have it), read one byte per page through the RX view;
 *   remap:    drop the RX view of the block (PROT_NONE: what a reused
 *             block needs before the JIT writes into it through the alias),
 *             map it RX again at publish, read one byte per page;
 *   mprotect: the same with mprotect instead of mmap.
 * The RX reads stand for the first execution, which pays for the view's
 * page-table entries the remap dropped. Medians of 5 runs, ns per op.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { RUNS = 5, OPS = 64, SLOTS = 32 };

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static volatile unsigned char sink;

static void touch_rx(const unsigned char *p, size_t len)
{
    for (size_t k = 0; k < len; k += 4096)
        sink = (unsigned char)(sink + p[k]);
}

int main(void)
{
    static const size_t sizes[] = {64 << 10, 256 << 10, 1 << 20};
    size_t file = (size_t)SLOTS << 20;
    int fd = memfd_create("remap_vs_copy", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)file))
        return 1;
    unsigned char *rw = mmap(NULL, file, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    unsigned char *rx = mmap(NULL, file, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    unsigned char *stage = aligned_alloc(4096, 1 << 20);
    if (rw == MAP_FAILED || rx == MAP_FAILED || !stage)
        return 1;
    memset(rw, 0xCC, file);
    touch_rx(rx, file);
    memset(stage, 0xCC, 1 << 20);
    printf("remap_vs_copy: per block operation, us (medians of %d runs of %d ops)\n", RUNS, OPS);
    printf("  %-9s %10s %10s %10s\n", "block", "staged", "remap", "mprotect");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t len = sizes[s];
        double t[3][RUNS];
        for (int r = 0; r < RUNS; r++) {
            for (int way = 0; way < 3; way++) {
                double t0 = now_us();
                for (int i = 0; i < OPS; i++) {
                    size_t off = (size_t)(i % SLOTS) << 20;
                    if (way == 0) {
                        memset(stage, 0xCC, len);
                        memcpy(rw + off, stage, len);
                    } else if (way == 1) {
                        mmap(rx + off, len, PROT_NONE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
                        rw[off] = 0xC3;
                        mmap(rx + off, len, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED,
                             fd, (off_t)off);
                    } else {
                        mprotect(rx + off, len, PROT_NONE);
                        rw[off] = 0xC3;
                        mprotect(rx + off, len, PROT_READ | PROT_EXEC);
                    }
                    touch_rx(rx + off, len);
                }
                t[way][r] = (now_us() - t0) / OPS;
            }
        }
        for (int way = 0; way < 3; way++)
            qsort(t[way], RUNS, sizeof(double), cmp);
        printf("  %4zu KiB  %10.1f %10.1f %10.1f\n", len >> 10, t[0][RUNS / 2],
               t[1][RUNS / 2], t[2][RUNS / 2]);
    }
    return 0;
}
