/* SPDX-License-Identifier: MIT */
/*
 * test_audit_list.c: an audit report that finds more ranges than it can list
 * says how many it left out (xm_audit_report.ranges_omitted).
 */
#include "test.h"

#include <sys/mman.h>

enum { MANY = 12 }; /* more than XM_AUDIT_MAX_RANGES */

/* In a child: MANY separate W+X mappings (every other page of a
 * PROT_NONE run, so that none merge), then the audit of itself. */
static int audit_many(void *arg)
{
    (void)arg;
    char *m = mmap(NULL, 2 * MANY * 4096, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 10;
    for (int i = 0; i < MANY; i++)
        if (mprotect(m + 2 * i * 4096, 4096, PROT_READ | PROT_WRITE | PROT_EXEC))
            return 11; /* MDWE or SELinux: nothing to observe */
    xm_audit_report r;
    if (xm_audit(0, &r) != XM_OK)
        return 12;
    if (r.wx_mappings < MANY)
        return 13;
    if (r.nranges != XM_AUDIT_MAX_RANGES)
        return 14;
    if (r.ranges_omitted != r.wx_mappings + r.wx_aliases + r.wx_possible - r.nranges)
        return 15;
    if (r.ranges_omitted < MANY - XM_AUDIT_MAX_RANGES)
        return 16;
    /* and with smaps: the may-W+X ones are counted among the omitted too */
    if (xm_audit_ex(0, XM_AUDIT_SMAPS, &r) != XM_OK)
        return 17;
    if (r.ranges_omitted != r.wx_mappings + r.wx_aliases + r.wx_possible - r.nranges)
        return 18;
    return 0;
}

TEST(audit_reports_how_many_ranges_it_left_out)
{
    xm_audit_report r;
    CHECK_OK(xm_audit(0, &r));
    /* this process: nothing to leave out (under valgrind, its own
       translation cache is W+X in our maps: audit_clean says the same) */
    if (!under_valgrind())
        CHECK_EQ(r.ranges_omitted, 0);
    CHECK_EQ(child_status(audit_many, NULL), 0);
}
