/* SPDX-License-Identifier: MIT */
/*
 * os.h: the OS contract. Only os_linux.c includes <sys/mman.h> or calls
 * syscall(); everything above sees "reserve, map a view, change rights,
 * write the file, punch, read /proc".
 *
 * Every call that enters the kernel:
 *   - increments c->syscalls of the counter it is given (may be NULL),
 *   - returns 0 (or a pointer / descriptor) on success and a negative errno
 *     on failure, after saving the errno for xm_last_errno(),
 *   - can be made to fail by the fault injector (tests): when the countdown
 *     set by xm__os_inject() reaches the call, it fails with the injected
 *     errno (or the call's own typical one) without doing anything.
 * Callers decide whether a call was a revocation (they know whether the
 * pages it touched were present with rights) and count it themselves.
 */
#ifndef XM_OS_H
#define XM_OS_H

#include "../include/execmem.h" /* xm_result */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdatomic.h>

typedef struct xm__osc {
    _Atomic uint64_t syscalls;    /* updated by any thread of the heap */
    _Atomic uint64_t revocations;
} xm__osc;

/* Rights, independent of <sys/mman.h>. */
enum { XM__P_NONE = 0, XM__P_R = 1, XM__P_W = 2, XM__P_X = 4 };

/* -errno of a failed call -> XM_ENOMEM (ENOMEM, ENOSPC), XM_EPERM (EACCES,
 * EPERM, where exec rights were asked for) or XM_EOS. */
xm_result xm__os_result(int neg_errno, bool exec);
void xm__os_set_errno(int err);
int xm__os_last_errno(void); /* what xm_last_errno() returns */
int xm__os_page_size(void);

/* Address space: PROT_NONE, no memory. hint != NULL with exact: exactly there
 * or -EEXIST. Returns the address or NULL (*err = errno). */
void *xm__os_reserve(xm__osc *c, size_t len, void *hint, int exact, int *err);
int xm__os_unmap(xm__osc *c, void *addr, size_t len);
/* Fresh private anonymous memory anywhere. */
void *xm__os_map_anon(xm__osc *c, size_t len, int prot, int *err);
/* Replaces [addr, addr+len) by fresh anonymous memory with rights prot
 * (XM__P_NONE: back to reserved address space; drops any old pages). */
int xm__os_map_anon_at(xm__osc *c, void *addr, size_t len, int prot);
/* Maps fd at off shared: at addr (MAP_FIXED) or anywhere (addr NULL). */
void *xm__os_map_fd(xm__osc *c, void *addr, size_t len, int prot, int fd,
                    uint64_t off, int *err);
/* The same exactly at addr where nothing is mapped, else NULL (EEXIST). */
void *xm__os_map_fd_free_at(xm__osc *c, void *addr, size_t len, int prot, int fd,
                            uint64_t off, int *err);
int xm__os_protect(xm__osc *c, void *addr, size_t len, int prot);
int xm__os_dontfork(xm__osc *c, void *addr, size_t len);
/* Moves the mapping at from over to (mremap MAYMOVE|FIXED). */
int xm__os_move(xm__osc *c, void *from, size_t len, void *to);

/* memfd with MFD_CLOEXEC|MFD_NOEXEC_SEAL (which allows sealing), retried
 * with MFD_CLOEXEC|MFD_ALLOW_SEALING (kernels before 6.3).
 * *sealed (may be NULL) tells whether the seal was accepted. */
int xm__os_memfd(xm__osc *c, const char *name, int *sealed);
/* O_RDONLY|O_CLOEXEC reopen through /proc/self/fd. */
int xm__os_reopen_ro(xm__osc *c, int fd);
/* fchmod(fd, mode). */
int xm__os_chmod(xm__osc *c, int fd, unsigned mode);
/* Seals the memfd's size (F_SEAL_SHRINK|F_SEAL_GROW) and its seals
 * (F_SEAL_SEAL): no one, not even root, can truncate the code away or add a
 * seal that would stop the heap's own writes. */
int xm__os_seal_size(xm__osc *c, int fd);
/* Gives back the file pages under a shared writable mapping (MADV_REMOVE:
 * a hole punched through the mapping, no descriptor needed). */
/* Allocates and maps the pages of a shared writable range in one call
 * (MADV_POPULATE_WRITE): -EINVAL where the kernel predates it (5.14). */
int xm__os_populate(xm__osc *c, void *addr, size_t len);
int xm__os_remove(xm__osc *c, void *addr, size_t len);
int xm__os_truncate(xm__osc *c, int fd, uint64_t len);
int xm__os_close(xm__osc *c, int fd);
/* Writes all of buf at off (loops on short writes). */
int xm__os_pwrite(xm__osc *c, int fd, const void *buf, size_t len,
                  uint64_t off);
/* Writes len trap bytes at off with gathered writes of one trap page, up
 * to XM__PWRITE_TRAPS_MAX bytes per system call. */
#define XM__PWRITE_TRAPS_MAX ((size_t)4 << 20)
int xm__os_pwrite_traps(xm__osc *c, int fd, size_t len, uint64_t off);
/* Writes len trap bytes at addr in this process's own memory through
 * /proc/self/mem, whatever the pages' rights (the kernel's forced write, as
 * a debugger's breakpoint: a private page gets its own copy). Needs no new
 * mapping: for a FLIP free the kernel refused one (vm.max_map_count). */
int xm__os_poke_traps(xm__osc *c, void *addr, size_t len);
/* Gives the file's pages in the range back (fallocate PUNCH_HOLE). */
int xm__os_punch(xm__osc *c, int fd, uint64_t off, size_t len);

/* membarrier SYNC_CORE registration probe: 1 available, 0 not. */
int xm__os_membarrier_probe(xm__osc *c);
/* membarrier SYNC_CORE: register this process (once) / make every thread
 * of the process serialize its instruction stream. 0 or -errno. */
int xm__os_sync_core_register(xm__osc *c);
int xm__os_sync_cores(xm__osc *c);
/* membarrier PRIVATE_EXPEDITED: register this process (once) / make every
 * running thread of the process execute a full memory barrier (the slow
 * side of the arenas' biased locks, arena_lock.c). 0 or -errno. */
int xm__os_barrier_register(xm__osc *c);
int xm__os_barrier_all(xm__osc *c);
/* Tests: from now on (on != 0) xm__os_barrier_all fails with EPERM on every
 * call, as after a seccomp filter that forbids membarrier. */
void xm__os_barrier_break(int on);
/* sched_yield, for lock waits; counted process-wide only. */
void xm__os_yield(void);
/* Installs handler(sig, info, ucontext) for SIGTRAP with SA_SIGINFO and
 * SA_NODEFER, saving the previous action in *old (an opaque struct
 * sigaction of at least XM__SIGACTION_SIZE bytes). */
#define XM__SIGACTION_SIZE 256
int xm__os_trap_handler(void (*handler)(int, void *, void *), void *old);
/* Chains a SIGTRAP the library does not own to the saved action: calls its
 * handler, or for SIG_DFL/SIG_IGN restores it and re-raises the signal. */
void xm__os_trap_chain(const void *old, int sig, void *info, void *uc);
/* Whether a SIGTRAP's siginfo says the kernel raised it for a breakpoint
 * instruction (INT3: si_code SI_KERNEL), not kill() or raise(). */
int xm__os_trap_is_int3(const void *info);
/* The program counter in a signal's ucontext (x86-64), read and write. */
uintptr_t xm__os_uc_pc(void *uc);
void xm__os_uc_set_pc(void *uc, uintptr_t pc);

/* PR_GET_MDWE of this process: its flags, or a negative errno. */
int xm__os_mdwe(xm__osc *c);
/* How many protection keys this process can still allocate (allocates
 * them all and frees them again); 0 where it has none. */
int xm__os_pkeys_probe(xm__osc *c);
/* Protection keys (XM_PKEYS): pkey_alloc(0, rights) returns the key or
 * -errno (EINVAL or ENOSPC where the CPU or kernel has none, ENOSPC when
 * all are taken, ENOSYS before Linux 4.9); it sets the calling thread's
 * rights for the key only. pkey_mprotect tags [addr, addr+len) with key
 * and sets its rights. pkey_free gives the key back. */
#define XM__PKEY_DENY_ACCESS 1u /* PKEY_DISABLE_ACCESS */
#define XM__PKEY_DENY_WRITE 2u  /* PKEY_DISABLE_WRITE */
int xm__os_pkey_alloc(xm__osc *c, unsigned rights);
int xm__os_pkey_protect(xm__osc *c, void *addr, size_t len, int prot, int key);
int xm__os_pkey_free(xm__osc *c, int key);

/* Symbol sinks (sym.c). Creates or opens path for writing: append 1 opens
 * O_WRONLY|O_APPEND (perf map), 0 O_RDWR|O_TRUNC (jitdump, which is also
 * mapped). Mode 0644, close-on-exec. Returns the descriptor or -errno. */
int xm__os_open_out(xm__osc *c, const char *path, int append);
/* Writes the n pieces in order with one writev (loops on short writes). */
typedef struct xm__iov {
    const void *p;
    size_t n;
} xm__iov;
int xm__os_writev_all(xm__osc *c, int fd, const xm__iov *v, int n);
/* Maps len bytes of fd private read+exec anywhere (the jitdump marker that
 * tells perf where the dump is). Returns the address or NULL (*err). */
void *xm__os_map_exec_private(xm__osc *c, int fd, size_t len, int *err);
/* CLOCK_MONOTONIC in ns (vDSO: no system call, not counted). */
uint64_t xm__os_monotonic_ns(void);
int xm__os_getpid(xm__osc *c);
int xm__os_gettid(xm__osc *c);

/* Reads a whole (small) file such as /proc/PID/maps into a malloc'd,
 * NUL-terminated buffer. */
int xm__os_read_file(xm__osc *c, const char *path, char **out, size_t *len);

/* Ordinary memory for metadata and staging, fault-injectable too. */
void *xm__mem_alloc(size_t n);
void *xm__mem_calloc(size_t n, size_t m);
void *xm__mem_realloc(void *p, size_t n);
void *xm__mem_aligned(size_t align, size_t n);
void xm__mem_free(void *p);

/* Fault injection (tests): the n-th kernel call from now (n >= 1) fails with
 * err (0: the call's own typical errno); n = 0 disarms. mem_n likewise for
 * xm__mem_* allocations (fail with NULL). Process-wide. */
void xm__os_inject(long n, int err);
/* The same for `count` consecutive calls from the n-th on. */
void xm__os_inject_run(long n, long count, int err);
void xm__mem_inject(long n);
/* Calls that reached the OS layer since start (process-wide, for tests). */
uint64_t xm__os_total_calls(void);
/* Injected failures delivered so far (OS and memory), process-wide. */
uint64_t xm__os_injected(void);

#endif
