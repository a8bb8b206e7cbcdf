/* SPDX-License-Identifier: MIT */
/*
 * syscount.c: system call counting by interposition, for bench (not the
 * matrix, which reads execmem's own counts). This file defines mmap,
 * munmap, mprotect, mremap, madvise, fallocate, ftruncate, pwrite, pwritev
 * and memfd_create itself (counting, then entering the kernel with
 * syscall()), so every contender, statically linked, is counted the same
 * way: the library, asmjit and ct_mprotect.c alike. glibc's malloc uses
 * internal aliases and is not counted: only code-memory calls are.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "syscount.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static _Atomic uint64_t nsys;
#define COUNT() atomic_fetch_add_explicit(&nsys, 1, memory_order_relaxed)

uint64_t syscount(void) { return atomic_load(&nsys); }

void *mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
    COUNT();
    return (void *)syscall(SYS_mmap, a, l, p, f, fd, o);
}
int munmap(void *a, size_t l)
{
    COUNT();
    return (int)syscall(SYS_munmap, a, l);
}
int mprotect(void *a, size_t l, int p)
{
    COUNT();
    return (int)syscall(SYS_mprotect, a, l, p);
}
int madvise(void *a, size_t l, int adv)
{
    COUNT();
    return (int)syscall(SYS_madvise, a, l, adv);
}
void *mremap(void *a, size_t ol, size_t nl, int f, ...)
{
    va_list ap;
    va_start(ap, f);
    void *na = (f & MREMAP_FIXED) ? va_arg(ap, void *) : NULL;
    va_end(ap);
    COUNT();
    return (void *)syscall(SYS_mremap, a, ol, nl, f, na);
}
int fallocate(int fd, int mode, off_t o, off_t l)
{
    COUNT();
    return (int)syscall(SYS_fallocate, fd, mode, o, l);
}
int ftruncate(int fd, off_t l)
{
    COUNT();
    return (int)syscall(SYS_ftruncate, fd, l);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o)
{
    COUNT();
    return syscall(SYS_pwrite64, fd, b, n, o);
}
ssize_t pwritev(int fd, const struct iovec *v, int n, off_t o)
{
    COUNT();
    return syscall(SYS_pwritev, fd, v, n, o, 0);
}
int memfd_create(const char *name, unsigned flags)
{
    COUNT();
    return (int)syscall(SYS_memfd_create, name, flags);
}
