/* SPDX-License-Identifier: MIT */
/*
 * syscount.h: the count of code-memory system calls this process made, kept
 * by syscount.c's interposed mmap, munmap, mprotect, ... (linked into bench
 * only).
 */
#ifndef XM_BENCH_SYSCOUNT_H
#define XM_BENCH_SYSCOUNT_H

#include <stdint.h>

uint64_t syscount(void);

#endif
