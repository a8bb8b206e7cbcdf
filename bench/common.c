/* SPDX-License-Identifier: MIT */
/*
 * common.c: the helpers bench.c and matrix.c share (common.h), and the
 * bytes every contender writes (contender.h's ct_code).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"
#include "contender.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

unsigned char ct_code[CT_CODE_SIZE];

void ct_code_init(void)
{
    static const unsigned char ret[] = {0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0xC3};
    memset(ct_code, 0xCC, sizeof ct_code);
    memcpy(ct_code, ret, sizeof ret);
}

void ct_touch(void *p, size_t n)
{
    for (size_t i = 0; i < n; i += 4096)
        ((volatile char *)p)[i] = 0;
}

double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

uint64_t rng(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * 4096;
}

int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *only_prefix;

bool bench_start(int argc, char **argv, bench_args *a, const char *prog,
                 const char *default_out, int max_with, const char *usage)
{
    memset(a, 0, sizeof *a);
    a->out = default_out;
    if (max_with > ARGS_MAX_WITH)
        max_with = ARGS_MAX_WITH;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            a->quick = true;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            a->out = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            a->only = argv[++i];
        else if (!strcmp(argv[i], "--cell") && i + 1 < argc && !max_with)
            a->cell = argv[++i];
        else if (!strcmp(argv[i], "--with") && i + 1 < argc && a->nwith < max_with)
            a->with[a->nwith++] = argv[++i];
        else {
            fprintf(stderr, "%s\n", usage);
            return false;
        }
    }
    only_prefix = a->only;
    if (a->cell && a->out == default_out)
        a->out = "/dev/null"; /* a cell of one's own: the table only */
    ct_code_init();
    json_open(prog, a->out, a->quick);
    return true;
}

bool wanted(const char *name)
{
    return !only_prefix || !strncmp(name, only_prefix, strlen(only_prefix));
}

static FILE *jout;
static bool jfirst = true;
static const char *jpath;

void json_open(const char *prog, const char *path, bool quick)
{
    jout = fopen(path, "w");
    jpath = path;
    if (!jout)
        fprintf(stderr, "%s: cannot write %s: %s (table only)\n", prog, path,
                strerror(errno));
    else
        fprintf(jout, "{\"quick\": %s, \"results\": [", quick ? "true" : "false");
}

void json_row(const char *fmt, ...)
{
    if (!jout)
        return;
    fprintf(jout, "%s\n  {", jfirst ? "" : ",");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(jout, fmt, ap);
    va_end(ap);
    fputc('}', jout);
    jfirst = false;
}

void json_close(void)
{
    if (!jout)
        return;
    fprintf(jout, "\n]}\n");
    fclose(jout);
    jout = NULL;
    printf("\nfigures written to %s\n", jpath);
}
