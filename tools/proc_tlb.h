/* SPDX-License-Identifier: MIT */
/*
 * proc_tlb.h: the machine's TLB shootdown count, summed over every CPU from
 * the "TLB:" line of /proc/interrupts (x86), or -1 where there is none.
 * Shared by the execmem command and the benchmark (both public-API
 * programs; the library itself never reads it).
 */
#ifndef XM_PROC_TLB_H
#define XM_PROC_TLB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long proc_tlb_shootdowns(void)
{
    FILE *f = fopen("/proc/interrupts", "r");
    char line[4096];
    long long sum = -1;
    while (f && fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ')
            p++;
        if (strncmp(p, "TLB:", 4))
            continue;
        sum = 0;
        for (p += 4;;) {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p)
                break;
            sum += v;
            p = end;
        }
    }
    if (f)
        fclose(f);
    return sum;
}

#endif
