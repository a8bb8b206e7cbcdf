/* SPDX-License-Identifier: MIT */
/* expr_x86.c: the demo's expression compiler, x86-64 back end (expr.h).
 * System V: arguments in rdi, rsi, rdx, rcx; the value in rax. */
#include "expr.h"

#if defined(__x86_64__)
#include <string.h>

const char *const expr_arch = "x86-64";

typedef struct emitter {
    uint8_t *p;
} emitter;

static void emit(emitter *m, const uint8_t *b, size_t n)
{
    memcpy(m->p, b, n);
    m->p += n;
}
#define EMIT(m, ...)                                                           \
    do {                                                                       \
        static const uint8_t b_[] = {__VA_ARGS__};                             \
        emit(m, b_, sizeof b_);                                                \
    } while (0)

/* Leaves the node's value in rax; binary operators keep the left operand on
 * the stack while the right one is computed, then combine with r11. */
static void cg(emitter *m, const expr *e, int i)
{
    const expr_node *n = &e->n[i];
    switch (n->op) {
    case EXPR_CONST:
        if ((int64_t)n->k == (int32_t)n->k) {
            uint32_t v = (uint32_t)n->k;
            EMIT(m, 0x48, 0xC7, 0xC0); /* mov rax, simm32 */
            emit(m, (const uint8_t *)&v, 4);
        } else {
            EMIT(m, 0x48, 0xB8); /* mov rax, imm64 */
            emit(m, (const uint8_t *)&n->k, 8);
        }
        return;
    case EXPR_VAR: {
        static const uint8_t modrm[4] = {0xF8, 0xF0, 0xD0, 0xC8}; /* rdi rsi rdx rcx */
        uint8_t b[3] = {0x48, 0x89, modrm[n->k]};
        emit(m, b, 3);
        return;
    }
    case EXPR_NEG:
        cg(m, e, n->a);
        EMIT(m, 0x48, 0xF7, 0xD8); /* neg rax */
        return;
    case EXPR_SHL:
        cg(m, e, n->a);
        EMIT(m, 0x48, 0xC1, 0xE0); /* shl rax, imm8 */
        emit(m, &n->b, 1);
        return;
    default:
        break;
    }
    cg(m, e, n->a);
    EMIT(m, 0x50); /* push rax */
    cg(m, e, n->b);
    EMIT(m, 0x49, 0x89, 0xC3, 0x58); /* mov r11, rax; pop rax */
    switch (n->op) {
    case EXPR_ADD: EMIT(m, 0x4C, 0x01, 0xD8); break;       /* add rax, r11 */
    case EXPR_SUB: EMIT(m, 0x4C, 0x29, 0xD8); break;       /* sub rax, r11 */
    case EXPR_MUL: EMIT(m, 0x49, 0x0F, 0xAF, 0xC3); break; /* imul rax, r11 */
    case EXPR_XOR: EMIT(m, 0x4C, 0x31, 0xD8); break;       /* xor rax, r11 */
    case EXPR_AND: EMIT(m, 0x4C, 0x21, 0xD8); break;       /* and rax, r11 */
    default: EMIT(m, 0x4C, 0x09, 0xD8); break;             /* or rax, r11 */
    }
}

size_t expr_compile(const expr *e, uint8_t *out)
{
    emitter m = {out};
    cg(&m, e, e->root);
    EMIT(&m, 0xC3); /* ret */
    return (size_t)(m.p - out);
}
#endif
