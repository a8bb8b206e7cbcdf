/* SPDX-License-Identifier: MIT */
/*
 * debug.h: the debug level and the checks every file may use (debug.c).
 * XM_DEBUG (mimalloc's MI_DEBUG): 0 release; 1 misuse checks; 2 internal
 * asserts and dead-rw checks; 3 the structure walk (check.c) after every
 * call. XM_ASSERT stays on at every level: its failure prints without
 * allocating and aborts.
 */
#ifndef XM_DEBUG_H
#define XM_DEBUG_H

#include <stddef.h>

#ifndef XM_DEBUG
#define XM_DEBUG 1
#endif

void xm__assert_fail(const char *expr, const char *file, int line);
#define XM_ASSERT(e) ((e) ? (void)0 : xm__assert_fail(#e, __FILE__, __LINE__))

/* valgrind's client requests: discard translations of code bytes that
 * changed (xm__valgrind_discard in internal.h calls it only under
 * valgrind); whether the process runs under valgrind (1 or 0). */
void xm__valgrind_discard_slow(void *p, size_t n);
int xm__running_on_valgrind(void);

#endif
