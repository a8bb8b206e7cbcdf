/* SPDX-License-Identifier: MIT */
/* expr_a64.c: the demo's expression compiler, AArch64 back end (expr.h).
 * AAPCS64: arguments in x0-x3, the value in x0. The entry copies the
 * arguments to x10-x13 (x0 is the accumulator); binary operators keep the
 * left operand on the stack (16 bytes a slot: sp stays aligned) while the
 * right one is computed, then combine with x9. All scratch registers. */
#include "expr.h"

#if defined(__aarch64__)
#include <string.h>

const char *const expr_arch = "AArch64";

static uint8_t *put(uint8_t *p, uint32_t insn)
{
    memcpy(p, &insn, 4);
    return p + 4;
}

static uint8_t *cg(uint8_t *p, const expr *e, int i)
{
    const expr_node *n = &e->n[i];
    switch (n->op) {
    case EXPR_CONST: /* movz x0, then movk for every other nonzero half */
        p = put(p, 0xD2800000u | (uint32_t)(n->k & 0xFFFF) << 5);
        for (uint32_t hw = 1; hw < 4; hw++) {
            uint32_t h = (uint32_t)(n->k >> (16 * hw)) & 0xFFFF;
            if (h)
                p = put(p, 0xF2800000u | hw << 21 | h << 5);
        }
        return p;
    case EXPR_VAR: /* mov x0, x10+k */
        return put(p, 0xAA0003E0u | (uint32_t)(10 + n->k) << 16);
    case EXPR_NEG:
        p = cg(p, e, n->a);
        return put(p, 0xCB0003E0u); /* neg x0, x0 */
    case EXPR_SHL: {
        p = cg(p, e, n->a);
        uint32_t s = n->b & 63; /* lsl x0, x0, #s: ubfm x0, x0, #-s, #63-s */
        return put(p, 0xD3400000u | ((64 - s) & 63) << 16 | (63 - s) << 10);
    }
    default:
        break;
    }
    p = cg(p, e, n->a);
    p = put(p, 0xF81F0FE0u); /* str x0, [sp, #-16]! */
    p = cg(p, e, n->b);
    p = put(p, 0xAA0003E9u); /* mov x9, x0 */
    p = put(p, 0xF84107E0u); /* ldr x0, [sp], #16 */
    switch (n->op) {
    case EXPR_ADD: return put(p, 0x8B090000u); /* add x0, x0, x9 */
    case EXPR_SUB: return put(p, 0xCB090000u); /* sub x0, x0, x9 */
    case EXPR_MUL: return put(p, 0x9B097C00u); /* mul x0, x0, x9 */
    case EXPR_XOR: return put(p, 0xCA090000u); /* eor x0, x0, x9 */
    case EXPR_AND: return put(p, 0x8A090000u); /* and x0, x0, x9 */
    default: return put(p, 0xAA090000u);       /* orr x0, x0, x9 */
    }
}

size_t expr_compile(const expr *e, uint8_t *out)
{
    uint8_t *p = out;
    p = put(p, 0xAA0003EAu); /* mov x10, x0 */
    p = put(p, 0xAA0103EBu); /* mov x11, x1 */
    p = put(p, 0xAA0203ECu); /* mov x12, x2 */
    p = put(p, 0xAA0303EDu); /* mov x13, x3 */
    p = cg(p, e, e->root);
    p = put(p, 0xD65F03C0u); /* ret */
    return (size_t)(p - out);
}
#endif
