/* SPDX-License-Identifier: MIT */
/*
 * sljit_execmem.h: sljit takes its executable memory from execmem.
 *
 * Include this header before sljitLir.h in every file that includes it
 * (for example `-include sljit_execmem.h`, or from your sljitConfigPre.h),
 * and link sljit_execmem.c and libexecmem. It selects sljit's
 * external-allocator hooks:
 *   SLJIT_EXECUTABLE_ALLOCATOR 0      sljit's own allocator is not built;
 *   SLJIT_PROT_EXECUTABLE_ALLOCATOR 1 REQUIRED: without it sljit ignores
 *                                     SLJIT_EXEC_OFFSET and writes the code
 *                                     where it means to run it;
 *   SLJIT_MALLOC_EXEC / SLJIT_FREE_EXEC   xm_alloc (returns rw) / xm_free;
 *   SLJIT_EXEC_OFFSET                 rx - rw: minus xm_alias_offset;
 *   SLJIT_UPDATE_WX_FLAGS(from,to,1)  xm_publish the first time (the end
 *                                     of sljit_generate_code), xm_commit
 *                                     after (sljit_set_jump_addr,
 *                                     sljit_set_const, read-only buffers).
 * The heap is an XM_INPLACE heap (every backend works): by default made at
 * the first allocation, its mode from the environment variable
 * SLJIT_EXECMEM_MODE ("dual", "strict" for DUAL + XM_STRICT, "flip";
 * default "dual"), or the one given to sljit_execmem_use() beforehand.
 * If your sljitConfigPre.h already defines SLJIT_MALLOC_EXEC and
 * SLJIT_FREE_EXEC (as sljit's test suite does, SLJIT_HAVE_CONFIG_PRE),
 * they stay, and SLJIT_BUILTIN_MALLOC_EXEC / SLJIT_BUILTIN_FREE_EXEC are
 * this adapter's.
 */
#ifndef SLJIT_EXECMEM_H
#define SLJIT_EXECMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct xm_heap;
/* Uses heap h (made with XM_INPLACE) from now on; call before the first
 * allocation. Returns 0, or -1 when h has no XM_INPLACE. */
int sljit_execmem_use(struct xm_heap *h);
/* The heap in use (made on first use), or NULL if it could not be made. */
struct xm_heap *sljit_execmem_heap(void);
void *sljit_execmem_malloc(size_t size, void *exec_allocator_data);
void sljit_execmem_free(void *rx, void *exec_allocator_data);
long sljit_execmem_exec_offset(void *rw);
void sljit_execmem_update_wx(void *from, void *to, int enable_exec);

#ifdef __cplusplus
}
#endif

#undef SLJIT_EXECUTABLE_ALLOCATOR
#define SLJIT_EXECUTABLE_ALLOCATOR 0
#undef SLJIT_PROT_EXECUTABLE_ALLOCATOR
#define SLJIT_PROT_EXECUTABLE_ALLOCATOR 1
#define SLJIT_BUILTIN_MALLOC_EXEC(size, data) sljit_execmem_malloc((size), (data))
#define SLJIT_BUILTIN_FREE_EXEC(ptr, data) sljit_execmem_free((ptr), (data))
#if !(defined SLJIT_HAVE_CONFIG_PRE && SLJIT_HAVE_CONFIG_PRE)
#define SLJIT_MALLOC_EXEC(size, data) sljit_execmem_malloc((size), (data))
#define SLJIT_FREE_EXEC(ptr, data) sljit_execmem_free((ptr), (data))
#endif
#define SLJIT_EXEC_OFFSET(code) sljit_execmem_exec_offset((void *)(code))
#define SLJIT_UPDATE_WX_FLAGS(from, to, enable_exec) \
    sljit_execmem_update_wx((void *)(from), (void *)(to), (enable_exec))

#endif
