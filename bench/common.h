/* SPDX-License-Identifier: MIT */
/*
 * common.h: what bench.c and matrix.c share beside the contenders: the
 * clock, the seeded generator, resident memory, medians, the command line
 * (--quick, --out FILE, --only PREFIX, bench's --with PREFIX) and the JSON
 * file both write ({"quick": ..., "results": [rows]}).
 */
#ifndef XM_BENCH_COMMON_H
#define XM_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

double now_ns(void);          /* CLOCK_MONOTONIC, in ns */
/* Writes every page of [p, p+n): the bench's own arrays get their pages
 * before a baseline (a memset of 0 after calloc, or after malloc, which
 * GCC turns into calloc, is removed, and the pages then faulted in the
 * timed loop: 12-30 us every 512 latencies on the 2-core VM). */
void ct_touch(void *p, size_t n);
uint64_t rng(uint64_t *s);    /* xorshift64*: the same sequence every run */
size_t rss_bytes(void);       /* this process's resident bytes */
void ct_code_init(void);      /* fill ct_code (contender.h) */

int cmp_double(const void *a, const void *b); /* for qsort */
double median(double *v, int n); /* sorts v; the mean of the middle two if n is even */

enum { ARGS_MAX_WITH = 16 };
typedef struct bench_args {
    bool quick;
    const char *out;  /* the JSON file */
    const char *only; /* --only PREFIX: the workloads whose name starts so */
    const char *cell; /* --cell LO-HI:LIVE (bench_matrix): that cell alone */
    const char *with[ARGS_MAX_WITH]; /* --with PREFIX: those contenders */
    int nwith;
} bench_args;

/* The start of both programs: parses argv into *a (out defaults to
 * default_out; --with is accepted up to max_with times, 0: not at all),
 * fills ct_code and opens the JSON file (json_open). Returns false after
 * printing usage to stderr. */
bool bench_start(int argc, char **argv, bench_args *a, const char *prog,
                 const char *default_out, int max_with, const char *usage);

/* Whether the workload or cell `name` was asked for (--only). */
bool wanted(const char *name);

/* The JSON file: json_open writes its head (or, when the file cannot be
 * written, says so on stderr and the run prints its tables only); each
 * json_row appends one object, `fmt` being its members without braces;
 * json_close ends it and says where it went. All are no-ops without a file. */
void json_open(const char *prog, const char *path, bool quick);
void json_row(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void json_close(void);

#endif
