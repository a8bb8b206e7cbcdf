/* SPDX-License-Identifier: MIT */
/*
 * snippets.h: the machine code the tests execute, per architecture. A test
 * never spells instruction bytes itself: it takes them from here, so that
 * the same test runs on x86-64 and on arm64 (make check-arm64).
 *
 *   TRAP_BYTE     the library's fill of code that is not live (src/arch.h)
 *   TRAP_SIG      the signal a jump into that fill raises (at an offset
 *                 where an instruction may start: see trap_sig_at)
 *   FILL_BYTE     a byte that is not the trap fill (never executed)
 *   emit_ret      `return v` (RET_LEN bytes); its immediate: RET_IMM_LEN
 *                 bytes at RET_IMM_OFF, rewritten alone by emit_ret_imm
 *                 (patch_ret: the same through xm_patch)
 *   emit_mov32    `w0/eax = v` (MOV32_LEN), then emit_reti: `ret` (RETI_LEN)
 *   emit_live_fn  a function returning a whose first instruction
 *                 (LIVE_LEN bytes) xm_patch_live may switch to one that
 *                 returns b: emit_live_ins(ins, a, b, which)
 *   emit_call_fn  a function that calls target (within NEAR_REACH, the
 *                 direct call's reach that xm_options.near promises) and
 *                 returns what it returns
 *
 * x86-64: INT3 fill (SIGTRAP at any byte); mov rax, imm64; ret.
 * arm64: UDF #0 fill (SIGILL; a PC that is not 4-aligned raises SIGBUS
 * first); nop; movz/movk x0 (the immediate spread over 4 instructions, so a
 * stale instruction cache gives a wrong value, not an old-but-valid one);
 * ret. The live instruction is a B (hotpatch-safe, see src/live.c).
 */
#ifndef XM_TEST_SNIPPETS_H
#define XM_TEST_SNIPPETS_H

#include <execmem.h>

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FILL_BYTE 0x90

#if defined(__x86_64__)
#define SNIPPET_ARCH "x86-64"
#define TRAP_BYTE 0xCC /* INT3 */
#define TRAP_SIG SIGTRAP
#define RET_LEN 11     /* mov rax, imm64; ret */
#define RET_IMM_OFF 2
#define RET_IMM_LEN 8
#define MOV32_LEN 5    /* mov eax, imm32 */
#define RETI_LEN 1     /* ret */
#define LIVE_LEN 5     /* the live instruction: mov eax, imm32 */
#define LIVE_FN_LEN 6
#define CALL_FN_LEN 14 /* sub rsp, 8; call rel32; add rsp, 8; ret */
#define NEAR_REACH ((intptr_t)0x7fffffff) /* rel32: +-2 GiB */

static inline void emit_ret_imm(void *dst, uint64_t v) { memcpy(dst, &v, 8); }

static inline void emit_ret(void *dst, uint64_t v)
{
    unsigned char *p = dst;
    p[0] = 0x48; /* mov rax, imm64 */
    p[1] = 0xB8;
    emit_ret_imm(p + RET_IMM_OFF, v);
    p[10] = 0xC3; /* ret */
}

static inline void emit_mov32(void *dst, uint32_t v)
{
    unsigned char *p = dst;
    p[0] = 0xB8; /* mov eax, imm32 */
    memcpy(p + 1, &v, 4);
}

static inline void emit_reti(void *dst) { *(unsigned char *)dst = 0xC3; }

static inline void emit_live_ins(void *ins, uint32_t a, uint32_t b, int which)
{
    emit_mov32(ins, which ? b : a);
}

static inline void emit_live_fn(void *dst, uint32_t a, uint32_t b)
{
    (void)b;
    emit_mov32(dst, a);
    emit_reti((char *)dst + MOV32_LEN);
}

static inline bool emit_call_fn(void *dst, const void *rx, const void *target)
{
    intptr_t d = (intptr_t)(uintptr_t)target - ((intptr_t)(uintptr_t)rx + 9);
    if (d > NEAR_REACH || d < -NEAR_REACH)
        return false;
    int32_t rel = (int32_t)d;
    unsigned char *p = dst;
    p[0] = 0x48; p[1] = 0x83; p[2] = 0xEC; p[3] = 0x08; /* sub rsp, 8 */
    p[4] = 0xE8; memcpy(p + 5, &rel, 4);                 /* call rel32 */
    p[9] = 0x48; p[10] = 0x83; p[11] = 0xC4; p[12] = 0x08; /* add rsp, 8 */
    p[13] = 0xC3;
    return true;
}

/* INT3 is one byte: every offset of the fill traps. */
static inline int trap_sig_at(const void *p)
{
    (void)p;
    return SIGTRAP;
}

#elif defined(__aarch64__)
#define SNIPPET_ARCH "arm64"
#define TRAP_BYTE 0x00 /* 0x00000000: UDF #0 */
#define TRAP_SIG SIGILL
#define RET_LEN 24     /* nop; movz x0; movk x0 (x3); ret */
#define RET_IMM_OFF 4
#define RET_IMM_LEN 16
#define MOV32_LEN 8    /* movz w0; movk w0, lsl 16 */
#define RETI_LEN 4
#define LIVE_LEN 4     /* the live instruction: B */
#define LIVE_FN_LEN 28
#define CALL_FN_LEN 16 /* stp x29, x30; bl; ldp x29, x30; ret */
#define NEAR_REACH ((intptr_t)1 << 27) /* B/BL: +-128 MiB */

static inline void a64_put(void *dst, uint32_t insn) { memcpy(dst, &insn, 4); }

static inline void emit_ret_imm(void *dst, uint64_t v)
{
    unsigned char *p = dst;
    a64_put(p, 0xD2800000u | (uint32_t)(v & 0xFFFF) << 5); /* movz x0 */
    for (uint32_t hw = 1; hw < 4; hw++)                     /* movk x0 */
        a64_put(p + 4 * hw, 0xF2800000u | hw << 21 |
                                (uint32_t)(v >> (16 * hw) & 0xFFFF) << 5);
}

static inline void emit_ret(void *dst, uint64_t v)
{
    unsigned char *p = dst;
    a64_put(p, 0xD503201Fu); /* nop */
    emit_ret_imm(p + RET_IMM_OFF, v);
    a64_put(p + 20, 0xD65F03C0u); /* ret */
}

static inline void emit_mov32(void *dst, uint32_t v)
{
    unsigned char *p = dst;
    a64_put(p, 0x52800000u | (v & 0xFFFF) << 5);                /* movz w0 */
    a64_put(p + 4, 0x72800000u | 1u << 21 | (v >> 16) << 5);    /* movk w0 */
}

static inline void emit_reti(void *dst) { a64_put(dst, 0xD65F03C0u); }

/* B +4 (on to `return a`) or B +16 (over it, to `return b`). */
static inline void emit_live_ins(void *ins, uint32_t a, uint32_t b, int which)
{
    (void)a;
    (void)b;
    a64_put(ins, which ? 0x14000004u : 0x14000001u);
}

static inline void emit_live_fn(void *dst, uint32_t a, uint32_t b)
{
    unsigned char *p = dst;
    emit_live_ins(p, a, b, 0);
    emit_mov32(p + 4, a);
    emit_reti(p + 12);
    emit_mov32(p + 16, b);
    emit_reti(p + 24);
}

static inline bool emit_call_fn(void *dst, const void *rx, const void *target)
{
    intptr_t d = (intptr_t)(uintptr_t)target - ((intptr_t)(uintptr_t)rx + 4);
    if (d >= NEAR_REACH || d < -NEAR_REACH || (d & 3))
        return false;
    unsigned char *p = dst;
    a64_put(p, 0xA9BF7BFDu); /* stp x29, x30, [sp, #-16]! */
    a64_put(p + 4, 0x94000000u | ((uint32_t)(d >> 2) & 0x03FFFFFFu)); /* bl */
    a64_put(p + 8, 0xA8C17BFDu);  /* ldp x29, x30, [sp], #16 */
    a64_put(p + 12, 0xD65F03C0u); /* ret */
    return true;
}

/* UDF #0 at every instruction boundary; between them the PC itself is
 * misaligned, which Linux reports as SIGBUS before any fetch. */
static inline int trap_sig_at(const void *p)
{
    return ((uintptr_t)p & 3) ? SIGBUS : SIGILL;
}

#else
#error "test/snippets.h: no code snippets for this architecture"
#endif

/* xm_patch of emit_ret's immediate alone: the function now returns v. */
static inline xm_result patch_ret(xm_heap *h, void *rx, uint64_t v)
{
    unsigned char imm[RET_IMM_LEN];
    emit_ret_imm(imm, v);
    return xm_patch(h, (char *)rx + RET_IMM_OFF, imm, RET_IMM_LEN);
}

#endif
