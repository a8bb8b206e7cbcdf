/* SPDX-License-Identifier: MIT */
/*
 * expr.h: the expression compiler of `execmem demo`, a small real JIT.
 * Random expression trees over four uint64_t arguments (expr_gen), an
 * interpreter that is the reference (expr_eval), and a compiler to machine
 * code for the build's architecture (expr_compile: tools/expr_x86.c on
 * x86-64, tools/expr_a64.c on arm64). The code is a function
 *     uint64_t f(uint64_t x0, uint64_t x1, uint64_t x2, uint64_t x3)
 * in the platform's C calling convention.
 */
#ifndef XM_TOOLS_EXPR_H
#define XM_TOOLS_EXPR_H

#include <stddef.h>
#include <stdint.h>

enum { EXPR_CONST, EXPR_VAR, EXPR_ADD, EXPR_SUB, EXPR_MUL, EXPR_XOR,
       EXPR_AND, EXPR_OR, EXPR_SHL, EXPR_NEG };
enum { EXPR_MAX_NODES = 63 };
/* The most bytes expr_compile writes (every node at most 16, plus the
 * entry and the return). */
#define EXPR_MAX_CODE (EXPR_MAX_NODES * 16 + 32)

typedef struct expr_node {
    uint8_t op, a, b; /* a, b: child indices (EXPR_SHL: b is the shift) */
    uint64_t k;       /* EXPR_CONST value, EXPR_VAR argument index */
} expr_node;

typedef struct expr {
    expr_node n[EXPR_MAX_NODES];
    int count, root;
} expr;

/* splitmix64: the generator's (and the demo's) random numbers. */
uint64_t expr_rng_next(uint64_t *s);
/* Appends a random tree of at most depth levels to e (e->count nodes so
 * far); returns its root's index. */
int expr_gen(expr *e, uint64_t *rng, int depth);
/* The value of node i (e->root: the whole expression) for arguments x. */
uint64_t expr_eval(const expr *e, int i, const uint64_t *x);
/* Writes the function's code at out (room for EXPR_MAX_CODE bytes);
 * returns its length, 0 where the build's architecture has no back end. */
size_t expr_compile(const expr *e, uint8_t *out);
/* The architecture expr_compile emits for: "x86-64", "AArch64" or NULL. */
extern const char *const expr_arch;

#endif
