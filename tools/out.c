/* SPDX-License-Identifier: MIT */
/*
 * out.c: the execmem command's output helpers (out.h): the --json switch,
 * JSON string escaping, the version format, usage errors, backend names,
 * the progress bar. Public API only.
 */
#include "out.h"

#include <stdio.h>

bool out_json;
const char *out_cmd;

void out_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* "MAJOR.MINOR.PATCH": the one version format (for the command and for
 * the library it runs with, from xm_version()). */
void out_version(unsigned v)
{
    printf("%u.%u.%u", v / 10000u, v / 100u % 100u, v % 100u);
}

int out_usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "execmem: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, "try 'execmem %s%s--help'\n", out_cmd ? out_cmd : "",
            out_cmd ? " " : "");
    return 2;
}

const char *out_backend_name(xm_backend b)
{
    return b == XM_BACKEND_DUAL ? "DUAL" : b == XM_BACKEND_FLIP ? "FLIP" : "AUTO";
}

void out_progress(uint64_t done, uint64_t total)
{
    uint64_t d = done > total ? total : done;
    int w = (int)(40 * d / total);
    fprintf(stderr, "\r  [%.*s%*s] %3d%%  %llu functions", w,
            "########################################", 40 - w, "",
            (int)(100 * d / total), (unsigned long long)d);
}

void out_progress_end(void)
{
    fprintf(stderr, "\r%72s\r", "");
}
