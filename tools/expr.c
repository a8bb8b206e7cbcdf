/* SPDX-License-Identifier: MIT */
/* expr.c: the demo's expression generator and interpreter (expr.h). */
#include "expr.h"

uint64_t expr_rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int expr_gen(expr *e, uint64_t *rng, int depth)
{
    uint64_t r = expr_rng_next(rng);
    int i = e->count++;
    expr_node *n = &e->n[i];
    if (depth == 0 || e->count > EXPR_MAX_NODES - 3 || r % 5 == 0) {
        if (r & 0x100) {
            n->op = EXPR_VAR;
            n->k = (r >> 9) & 3;
        } else {
            n->op = EXPR_CONST;
            n->k = (r >> 12) & 1 ? expr_rng_next(rng)
                                 : (uint64_t)(int64_t)(int16_t)(r >> 16);
        }
        return i;
    }
    static const uint8_t ops[] = {EXPR_ADD, EXPR_SUB, EXPR_MUL, EXPR_XOR, EXPR_AND,
                                  EXPR_OR, EXPR_ADD, EXPR_SHL, EXPR_NEG};
    n->op = ops[(r >> 8) % sizeof ops];
    int a = expr_gen(e, rng, depth - 1);
    e->n[i].a = (uint8_t)a;
    if (e->n[i].op == EXPR_SHL)
        e->n[i].b = (uint8_t)((r >> 20) & 63);
    else if (e->n[i].op != EXPR_NEG)
        e->n[i].b = (uint8_t)expr_gen(e, rng, depth - 1);
    return i;
}

uint64_t expr_eval(const expr *e, int i, const uint64_t *x)
{
    const expr_node *n = &e->n[i];
    switch (n->op) {
    case EXPR_CONST: return n->k;
    case EXPR_VAR: return x[n->k];
    case EXPR_ADD: return expr_eval(e, n->a, x) + expr_eval(e, n->b, x);
    case EXPR_SUB: return expr_eval(e, n->a, x) - expr_eval(e, n->b, x);
    case EXPR_MUL: return expr_eval(e, n->a, x) * expr_eval(e, n->b, x);
    case EXPR_XOR: return expr_eval(e, n->a, x) ^ expr_eval(e, n->b, x);
    case EXPR_AND: return expr_eval(e, n->a, x) & expr_eval(e, n->b, x);
    case EXPR_OR: return expr_eval(e, n->a, x) | expr_eval(e, n->b, x);
    case EXPR_SHL: return expr_eval(e, n->a, x) << n->b;
    default: return 0 - expr_eval(e, n->a, x);
    }
}

#if !defined(__x86_64__) && !defined(__aarch64__)
const char *const expr_arch = NULL;

size_t expr_compile(const expr *e, uint8_t *out)
{
    (void)e;
    (void)out;
    return 0;
}
#endif
