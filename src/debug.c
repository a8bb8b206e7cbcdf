/* SPDX-License-Identifier: MIT */
/*
 * debug.c: what the debug checks and valgrind need at run time: the
 * assertion failure report (prints without allocating, then aborts) and
 * valgrind's client requests (discard translations of changed code, and
 * whether the process runs under valgrind). The structure walk is check.c.
 */
#include "debug.h"

#include <stdio.h>
#include <stdlib.h>
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

void xm__valgrind_discard_slow(void *p, size_t n)
{
#ifdef XM_HAVE_VALGRIND
    VALGRIND_DISCARD_TRANSLATIONS(p, n);
#else
    (void)p;
    (void)n;
#endif
}

int xm__running_on_valgrind(void)
{
#ifdef XM_HAVE_VALGRIND
    return RUNNING_ON_VALGRIND ? 1 : 0;
#else
    return 0;
#endif
}
