/* SPDX-License-Identifier: MIT */
/*
 * live.c: xm_patch_live, the kernel's text_poke_bp for user space (x86-64).
 *
 * To replace one instruction [dst, dst+len) while other threads may run it:
 *   1. write INT3 over its first byte, then sync every core: from now on a
 *      thread reaching dst traps, and none is still inside the old bytes
 *      (membarrier SYNC_CORE serializes every thread of the process);
 *   2. write the new tail, sync: only the INT3 guards the instruction;
 *   3. write the new first byte, sync: the new instruction is whole.
 * A thread that hits the INT3 in between enters live_trap (SIGTRAP): while a
 * patch of that very address is in flight it waits, then rewinds its PC to
 * dst and returns, re-executing whatever is there now (the return from a
 * signal is serializing). A trap at an address whose byte is no longer INT3
 * came from a patch that has since finished: rewind as well. The byte is
 * read between two reads of live_seq (a seqlock): if a patch began or ended
 * in between, the handler looks again, so the next patch's INT3 is never
 * mistaken for a foreign one. Any other SIGTRAP goes to the action
 * installed before.
 *
 * One live patch at a time, process-wide (live_lock): the handler needs
 * only two atomics to recognise it, no lock and no allocation. On failure
 * the old bytes are written back (first the tail, then the first byte).
 *
 * arm64 needs no trap: the architecture lets a thread execute an
 * instruction while another replaces it, provided the old and the new one
 * are both among B, BL, NOP, ISB, BRK, SVC, HVC, SMC ("concurrent
 * modification and execution of instructions"; Linux's
 * aarch64_insn_hotpatch_safe). Such a patch is one aligned 32-bit store
 * (DUAL: to the alias; STRICT: a 4-byte pwrite; FLIP: the page rebuilt and
 * moved in), then cache maintenance on rx and a membarrier SYNC_CORE, after
 * which every thread runs the new instruction. Anything else: XM_ENOTSUP.
 */
#include "internal.h"
#include "pkeys.h"
#include "arch.h"

#include <errno.h>
#include <string.h>

/* A64 encodings that may be modified concurrently with their execution. */
int xm__a64_hotpatch_safe(uint32_t insn)
{
    return (insn & 0xFC000000u) == 0x14000000u ||  /* B */
           (insn & 0xFC000000u) == 0x94000000u ||  /* BL */
           insn == 0xD503201Fu ||                  /* NOP */
           (insn & 0xFFFFF0FFu) == 0xD50330DFu ||  /* ISB (any option) */
           (insn & 0xFFE0001Fu) == 0xD4200000u ||  /* BRK #imm16 */
           (insn & 0xFFE0001Fu) == 0xD4000001u ||  /* SVC #imm16 */
           (insn & 0xFFE0001Fu) == 0xD4000002u ||  /* HVC #imm16 */
           (insn & 0xFFE0001Fu) == 0xD4000003u;    /* SMC #imm16 */
}

#if defined(__x86_64__) || defined(__aarch64__)
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static int live_ready;                /* under live_lock */
static int live_handler;              /* the SIGTRAP handler is installed */
static _Atomic uintptr_t live_addr;   /* the instruction being patched */
static _Atomic unsigned long live_seq; /* odd while that patch is in flight */

#if defined(__x86_64__)
static _Alignas(16) unsigned char live_old_action[XM__SIGACTION_SIZE];

static void live_trap(int sig, void *info, void *uc)
{
    if (xm__os_trap_is_int3(info)) {
        uintptr_t at = xm__os_uc_pc(uc) - 1; /* INT3 leaves pc after itself */
        for (;;) {
            unsigned long s1 = atomic_load_explicit(&live_seq, memory_order_acquire);
            if ((s1 & 1) &&
                atomic_load_explicit(&live_addr, memory_order_relaxed) == at) {
                while (atomic_load_explicit(&live_seq, memory_order_acquire) == s1) {
                    xm__cpu_relax();
                }
                continue; /* that patch is done: look again */
            }
            unsigned char b = *(volatile const unsigned char *)at;
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&live_seq, memory_order_relaxed) != s1)
                continue; /* a patch began or ended meanwhile: look again */
            if (b != XM__TRAP_BYTE) {
                xm__os_uc_set_pc(uc, at); /* a patch's INT3: run the new code */
                return;
            }
            break; /* an INT3 at rest with no patch of it: not ours */
        }
    }
    xm__os_trap_chain(live_old_action, sig, info, uc);
}

#endif /* __x86_64__ */

/* Under live_lock: membarrier registration and the handler, once (a
 * failure is retried at the next call). */
static xm_result live_init(xm_heap *h)
{
    if (live_ready)
        return XM_OK;
    int r = xm__os_sync_core_register(&h->osc);
    if (r)
        return r == -ENOSYS || r == -EINVAL || r == -EPERM ? XM_ENOTSUP : XM_EOS;
#if defined(__x86_64__)
    /* once per process image: a fork child inherits it (installing it
       again would chain it to itself) */
    if (!live_handler && xm__os_trap_handler(live_trap, live_old_action))
        return XM_EOS;
#endif
    live_handler = 1;
    live_ready = 1;
    return XM_OK;
}

/* fork (fork.c takes this before any heap's locks): no patch is in flight
 * in the child, and the child registers for membarrier again (as the
 * arenas' bias does) before its first patch. */
void xm__live_fork_prepare(void) { pthread_mutex_lock(&live_lock); }
void xm__live_fork_parent(void) { pthread_mutex_unlock(&live_lock); }
void xm__live_fork_child(void)
{
    live_ready = 0;
    pthread_mutex_unlock(&live_lock);
}

#if defined(__x86_64__)
/* The three steps; on failure the old bytes are restored. */
static xm_result live_steps(xm_heap *h, xm__pack *p, uint32_t g, uintptr_t dst,
                            const unsigned char *src, size_t len)
{
    unsigned char old[16];
    memcpy(old, (const void *)dst, len);
    static const unsigned char int3 = XM__TRAP_BYTE;
    xm_result r = xm__block_write_locked(h, p, g, dst, &int3, 1);
    if (r != XM_OK)
        return r; /* nothing changed */
    int e = xm__os_sync_cores(&h->osc);
    if (!e && len > 1) {
        r = xm__block_write_locked(h, p, g, dst + 1, src + 1, len - 1);
        if (r == XM_OK)
            e = xm__os_sync_cores(&h->osc);
    }
    if (r == XM_OK && !e) {
        r = xm__block_write_locked(h, p, g, dst, src, 1);
        if (r == XM_OK) {
            e = xm__os_sync_cores(&h->osc);
            if (!e)
                return XM_OK;
        }
    }
    if (r == XM_OK)
        r = XM_EOS; /* a sync failed */
    /* put the old instruction back, tail first: the INT3 still guards it */
    if (len > 1)
        (void)xm__block_write_locked(h, p, g, dst + 1, old + 1, len - 1);
    (void)xm__block_write_locked(h, p, g, dst, old, 1);
    (void)xm__os_sync_cores(&h->osc);
    return r;
}

#else /* __aarch64__ */
/* One aligned 32-bit store between hotpatch-safe instructions. */
static xm_result live_steps(xm_heap *h, xm__pack *p, uint32_t g, uintptr_t dst,
                            const unsigned char *src, size_t len)
{
    uint32_t old, new;
    if (len != 4 || (dst & 3))
        return XM_ENOTSUP;
    memcpy(&old, (const void *)dst, 4);
    memcpy(&new, src, 4);
    if (!xm__a64_hotpatch_safe(old) || !xm__a64_hotpatch_safe(new))
        return XM_ENOTSUP;
    xm_result r = XM_OK;
    if (h->alias) { /* DUAL: the store itself must be single-copy atomic */
        __atomic_store_n((uint32_t *)(void *)(h->alias + (dst - h->base)), new,
                         __ATOMIC_RELEASE);
        xm__icache_sync((void *)dst, 4);
        xm__valgrind_discard(h, (void *)dst, 4);
    } else {
        r = xm__block_write_locked(h, p, g, dst, src, 4);
    }
    if (r == XM_OK && xm__os_sync_cores(&h->osc))
        r = XM_EOS; /* written: every thread sees it at its next sync */
    return r;
}
#endif

static xm_result live_impl(xm_heap *h, void *dst, const void *src, size_t len);

xm_result xm_patch_live(xm_heap *h, void *dst, const void *src, size_t len)
{
    if (!h || !h->pkey)
        return live_impl(h, dst, src, len);
    unsigned old = xm__pk_open(h); /* XM_PKEYS: pkeys.h */
    xm_result r = live_impl(h, dst, src, len);
    xm__pk_close(old);
    return r;
}

static xm_result live_impl(xm_heap *h, void *dst, const void *src, size_t len)
{
    if (!h || !dst || !src || len == 0 || len > 15)
        return XM_EINVAL;
    uintptr_t d = (uintptr_t)dst;
    if (d + len < d)
        return XM_ERANGE;
    xm_result r = xm__enter(h, true);
    if (r != XM_OK)
        return r;
    pthread_mutex_lock(&live_lock);
    r = live_init(h);
    if (r != XM_OK) {
        pthread_mutex_unlock(&live_lock);
        return xm__leave(h, NULL, r);
    }
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__lock_range(h, d, len, &p, &g, &r);
    if (r == XM_OK && p->kind != XM__K_CODE)
        r = XM_EINVAL;
    else if (r == XM_OK && !xm__bit_get(p->pub, g))
        r = XM_ESTATE;
    if (r == XM_OK) {
        atomic_store_explicit(&live_addr, d, memory_order_relaxed);
        atomic_fetch_add_explicit(&live_seq, 1, memory_order_acq_rel); /* odd */
        r = live_steps(h, p, g, d, src, len);
        atomic_fetch_add_explicit(&live_seq, 1, memory_order_acq_rel); /* even */
        if (r == XM_OK)
            a->patches++;
    }
    if (a)
        xm__arena_unlock(a);
    pthread_mutex_unlock(&live_lock);
    return xm__leave(h, NULL, r);
}

#else /* neither x86-64 nor arm64 */
void xm__live_fork_prepare(void) {}
void xm__live_fork_parent(void) {}
void xm__live_fork_child(void) {}

xm_result xm_patch_live(xm_heap *h, void *dst, const void *src, size_t len)
{
    if (!h || !dst || !src || len == 0 || len > 15)
        return XM_EINVAL;
    return XM_ENOTSUP;
}
#endif
