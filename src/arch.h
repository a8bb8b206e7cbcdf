/* SPDX-License-Identifier: MIT */
/*
 * arch.h: what differs per architecture: the trap fill and cache sync.
 *
 * x86-64: 0xCC is INT3, a one-byte instruction, so a jump to ANY byte of a
 * filled range executes INT3 and raises SIGTRAP: no offset decodes into a
 * longer instruction that could reach past the fill.
 * arm64: instructions are 4-byte aligned (a misaligned PC faults) and
 * 0x00000000 is UDF #0, permanently undefined: every reachable offset traps.
 */
#ifndef XM_ARCH_H
#define XM_ARCH_H

#if defined(__x86_64__) || defined(__i386__)
#define XM__TRAP_BYTE 0xCC
#elif defined(__aarch64__)
#define XM__TRAP_BYTE 0x00
#else
#error "execmem: unsupported architecture (need a trap fill in src/arch.h)"
#endif

/* xm_options.near: every block within a direct call's reach of near, so
 * that JIT code can call the host (and the host the JIT code) with one
 * instruction. x86-64: call/jmp rel32, +-2 GiB. arm64: B/BL imm26, +-128
 * MiB (not ADRP's +-4 GiB: a call that needs a veneer is not near). The
 * reserve with near defaults to a quarter of the reach at most. */
#if defined(__aarch64__)
#define XM__NEAR_REACH ((uintptr_t)1 << 27)
#define XM__NEAR_RESERVE ((size_t)32 << 20)
#else
#define XM__NEAR_REACH ((uintptr_t)1 << 31)
#define XM__NEAR_RESERVE ((size_t)512 << 20)
#endif

/* Makes freshly written code at [p, p+n) visible to instruction fetch of the
 * calling thread; other threads see it on their next context-synchronizing
 * event (x86 needs nothing for code that was never executed before). */
static inline void xm__icache_sync(void *p, size_t n)
{
    __builtin___clear_cache((char *)p, (char *)p + n);
}

/* Protection keys (XM_PKEYS, pkeys.h): the per-thread PKRU register, read
 * and written by RDPKRU/WRPKRU, instructions of a few cycles that make no
 * system call. x86-64 only, and only where the OS enabled them (CPUID
 * leaf 7 ECX bit 4, OSPKE: CR4.PKE is set, so both do not raise #UD).
 * Key k's two bits in PKRU: 1 << 2k access disabled, 2 << 2k write
 * disabled. Elsewhere xm__pkru_usable() is 0 and XM_PKEYS is XM_ENOTSUP. */
#if defined(__x86_64__)
#define XM__HAVE_PKRU 1
static inline int xm__pkru_usable(void)
{
    unsigned a = 0, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    if (a < 7)
        return 0;
    a = 7;
    c = 0;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return (c >> 4) & 1; /* OSPKE */
}
static inline unsigned xm__rdpkru(void)
{
    unsigned eax, edx;
    __asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}
/* A compiler barrier too: no access to the alias moves across it. */
static inline void xm__wrpkru(unsigned v)
{
    __asm__ volatile(".byte 0x0f,0x01,0xef" ::"a"(v), "c"(0), "d"(0) : "memory");
}
#else
#define XM__HAVE_PKRU 0
static inline int xm__pkru_usable(void) { return 0; }
static inline unsigned xm__rdpkru(void) { return 0; }
static inline void xm__wrpkru(unsigned v) { (void)v; }
#endif

/* Trap-fills [p, p+n) of a freed block through the alias. From
 * XM__FILL_COLD_MIN bytes on (a quarter of a 1 MiB L2) nobody will run
 * those lines soon: x86-64 writes them with streaming stores, which skip
 * the read-for-ownership of every line and leave the caches to live code.
 * Measured on the 2-core VM, 1,000 live blocks churned: 64 KiB-1 MiB 62 ->
 * 48 us per operation; 16-64 KiB 2.5 -> 3.3 us (their lines were reused
 * from the cache: hence the bound). Blocks that large are whole pages (p
 * and n multiples of 64). The fence makes the traps visible to every CPU
 * before the free returns. */
#define XM__FILL_COLD_MIN ((size_t)256 << 10)
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif
static inline void xm__fill_freed(void *p, size_t n)
{
#if defined(__x86_64__)
    if (n >= XM__FILL_COLD_MIN) {
        __m128i v = _mm_set1_epi8((char)XM__TRAP_BYTE);
        char *d = (char *)p;
        for (size_t i = 0; i < n; i += 64) {
            _mm_stream_si128((__m128i *)(void *)(d + i), v);
            _mm_stream_si128((__m128i *)(void *)(d + i + 16), v);
            _mm_stream_si128((__m128i *)(void *)(d + i + 32), v);
            _mm_stream_si128((__m128i *)(void *)(d + i + 48), v);
        }
        _mm_sfence();
        return;
    }
#endif
    memset(p, XM__TRAP_BYTE, n);
}

/* Copies xm_load's n bytes into the block's place through the alias. From
 * XM__FILL_COLD_MIN bytes on the place is a large block (dst whole pages)
 * whose lines are cold: x86-64 copies with streaming stores, which skip
 * the read-for-ownership, as the fill does. Measured (xm_load churn, runs
 * alternated): 64 KiB-1 MiB x 1,000 median 48.2 -> 44.5 us per operation
 * (six runs each), 1-2 MiB x 200 150 -> 108 us. The publish copy from a
 * staging buffer gained nothing (1-2 MiB x 200: 219 against 213 us,
 * 64 KiB-1 MiB 58 against 60, four runs each; the third session measured
 * it slower) and stays a memcpy. The fence orders the bytes before the
 * stores that publish the block. */
static inline void xm__copy_cold(void *dst, const void *src, size_t n)
{
#if defined(__x86_64__)
    if (n >= XM__FILL_COLD_MIN) {
        char *d = (char *)dst;
        const char *s = (const char *)src;
        size_t i = 0;
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 32));
            __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 48));
            _mm_stream_si128((__m128i *)(void *)(d + i), a);
            _mm_stream_si128((__m128i *)(void *)(d + i + 16), b);
            _mm_stream_si128((__m128i *)(void *)(d + i + 32), c);
            _mm_stream_si128((__m128i *)(void *)(d + i + 48), e);
        }
        if (i < n)
            memcpy(d + i, s + i, n - i);
        _mm_sfence();
        return;
    }
#endif
    memcpy(dst, src, n);
}

/* A hint in spin loops. */
static inline void xm__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

#endif
