/* SPDX-License-Identifier: MIT */
/*
 * audit.c: `execmem audit`: the W^X audit of processes (xm_audit_ex on
 * /proc/PID/smaps): W+X mappings, W+X aliases, mappings that may become
 * W+X, per process in detail (audit_one) or every readable process as a
 * summary table (--all), as text or JSON. A finding (exit 1) wins over an
 * error (exit 2) in another process; the error is reported too. Public API
 * only.
 */
#include <execmem.h>
#include "cmd.h"
#include "out.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_audit_help[] =
    "usage: execmem [--json] audit [--json] [PID...]\n"
    "       execmem [--json] audit [--json] --all\n"
    "\n"
    "Reads /proc/PID/smaps of each PID (default: this process) and reports\n"
    "W+X mappings, W+X aliases (a file mapped writable at one address and\n"
    "executable at another) and mappings that may become W+X (VmFlags mw me;\n"
    "informational). At most 8 ranges are listed per process; the rest are\n"
    "counted (\"and N more\", JSON \"ranges_omitted\").\n"
    "--all scans every readable process (summary table); it takes no PID.\n"
    "\n"
    "exit status: 0 every process clean; 1 W+X or an alias found; 2 an error\n"
    "(no such process, permission denied) and nothing found. A finding wins\n"
    "over an error: with both, the exit status is 1 and the error is still\n"
    "reported (stderr; in JSON, an entry with \"error\" and \"errors\" > 0).\n";

static void read_comm(pid_t pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (f) {
        if (fgets(out, (int)cap, f))
            out[strcspn(out, "\n")] = 0;
        fclose(f);
    }
}

static const char *kind_name(unsigned k)
{
    return k == XM_AUDIT_WX      ? "W+X"
           : k == XM_AUDIT_ALIAS ? "alias"
           : k == XM_AUDIT_PKEY  ? "pkey"
                                 : "may-W+X";
}

/* One process, in detail. Returns 0 clean, 1 found, 2 error. An error is
 * reported on stderr and, with --json, as an entry of the list. */
static int audit_one(pid_t pid, bool first)
{
    xm_audit_report r;
    xm_result res = xm_audit_ex(pid, XM_AUDIT_SMAPS, &r);
    if (res != XM_OK) {
        int e = xm_last_errno();
        const char *why = e == ENOENT                 ? "no such process"
                          : e == EACCES || e == EPERM ? "permission denied"
                          : res != XM_EOS             ? xm_strerror(res)
                                                      : strerror(e ? e : EIO);
        fprintf(stderr, "execmem: audit of pid %ld: %s\n", (long)pid, why);
        if (out_json) {
            printf("%s{\"pid\": %ld, \"error\": ", first ? "" : ",\n", (long)pid);
            out_json_string(why);
            printf("}");
        }
        return 2;
    }
    char comm[64];
    read_comm(pid ? pid : getpid(), comm, sizeof comm);
    int found = r.wx_mappings || r.wx_aliases;
    if (out_json) {
        printf("%s{\"pid\": %ld, \"comm\": ", first ? "" : ",\n",
               (long)(pid ? pid : getpid()));
        out_json_string(comm);
        printf(", \"mappings\": %zu, \"wx_mappings\": %zu, \"wx_aliases\": %zu, "
               "\"wx_possible\": %zu, \"pkey_aliases\": %zu, \"clean\": %s, "
               "\"ranges_omitted\": %zu, \"ranges\": [",
               r.mappings, r.wx_mappings, r.wx_aliases, r.wx_possible,
               r.pkey_aliases, found ? "false" : "true", r.ranges_omitted);
        for (size_t i = 0; i < r.nranges; i++) {
            printf("%s{\"kind\": \"%s\", \"start\": \"0x%lx\", \"end\": \"0x%lx\"",
                   i ? ", " : "", kind_name(r.ranges[i].kind),
                   (unsigned long)r.ranges[i].start, (unsigned long)r.ranges[i].end);
            if (r.ranges[i].kind == XM_AUDIT_ALIAS || r.ranges[i].kind == XM_AUDIT_PKEY)
                printf(", \"writable_at\": \"0x%lx\"", (unsigned long)r.ranges[i].other);
            if (r.ranges[i].kind == XM_AUDIT_PKEY)
                printf(", \"protection_key\": %d", r.pkeys[i]);
            printf(", \"path\": ");
            out_json_string(r.ranges[i].path);
            printf("}");
        }
        printf("]}");
        return found;
    }
    printf("pid %ld (%s): %zu mappings: %zu W+X, %zu W+X aliases, %zu may become "
           "W+X -> %s\n",
           (long)(pid ? pid : getpid()), comm, r.mappings, r.wx_mappings,
           r.wx_aliases, r.wx_possible, found ? "NOT W^X CLEAN" : "clean");
    for (size_t i = 0; i < r.nranges; i++) {
        const xm_audit_range *g = &r.ranges[i];
        printf("  %-7s %012lx-%012lx", kind_name(g->kind), (unsigned long)g->start,
               (unsigned long)g->end);
        if (g->kind == XM_AUDIT_ALIAS)
            printf(" (writable at %012lx)", (unsigned long)g->other);
        if (g->kind == XM_AUDIT_PKEY)
            printf(" (writable at %012lx, protection key %d)",
                   (unsigned long)g->other, r.pkeys[i]);
        printf(" %s\n", g->path[0] ? g->path : "[anonymous]");
    }
    if (r.ranges_omitted)
        printf("  ... and %zu more range%s not listed (at most %d are)\n",
               r.ranges_omitted, r.ranges_omitted == 1 ? "" : "s",
               XM_AUDIT_MAX_RANGES);
    if (r.pkey_aliases)
        printf("  (pkey: %zu alias%s whose writable view has a protection key "
               "that every thread's default denies (XM_PKEYS): counted as "
               "protected, not as W+X aliases)\n",
               r.pkey_aliases, r.pkey_aliases == 1 ? "" : "es");
    if (r.wx_possible)
        printf("  (may-W+X: private or shared mappings with both may-write and "
               "may-exec; one mprotect from W+X unless MDWE forbids it)\n");
    return found;
}

static int audit_all(void)
{
    DIR *d = opendir("/proc");
    if (!d) {
        fprintf(stderr, "execmem: cannot read /proc: %s\n", strerror(errno));
        return 2;
    }
    size_t scanned = 0, unreadable = 0, dirty = 0, possible = 0;
    struct dirent *e;
    if (out_json)
        printf("{\"processes\": [");
    else
        printf("%8s  %-16s %8s %5s %7s %8s\n", "PID", "COMMAND", "MAPPINGS",
               "W+X", "ALIASES", "MAY-W+X");
    bool first = true;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atol(e->d_name);
        xm_audit_report r;
        if (xm_audit_ex(pid, XM_AUDIT_SMAPS, &r) != XM_OK) {
            unreadable++;
            continue;
        }
        if (r.mappings == 0)
            continue; /* kernel threads */
        scanned++;
        char comm[64];
        read_comm(pid, comm, sizeof comm);
        bool bad = r.wx_mappings || r.wx_aliases;
        dirty += bad;
        possible += r.wx_possible > 0;
        if (out_json) {
            printf("%s{\"pid\": %ld, \"comm\": ", first ? "" : ", ", (long)pid);
            out_json_string(comm);
            printf(", \"mappings\": %zu, \"wx_mappings\": %zu, \"wx_aliases\": %zu, "
                   "\"wx_possible\": %zu}",
                   r.mappings, r.wx_mappings, r.wx_aliases, r.wx_possible);
        } else {
            printf("%8ld  %-16.16s %8zu %5zu %7zu %8zu%s\n", (long)pid, comm,
                   r.mappings, r.wx_mappings, r.wx_aliases, r.wx_possible,
                   bad ? "  <- not W^X clean" : "");
        }
        first = false;
    }
    closedir(d);
    if (out_json)
        printf("], \"scanned\": %zu, \"not_clean\": %zu, \"with_may_wx\": %zu, "
               "\"unreadable\": %zu}\n",
               scanned, dirty, possible, unreadable);
    else
        printf("%zu processes scanned: %zu not W^X clean, %zu with mappings that "
               "may become W+X, %zu unreadable\n",
               scanned, dirty, possible, unreadable);
    return dirty ? 1 : 0;
}

int cmd_audit(int argc, char **argv)
{
    bool all = false;
    int npids = 0, worst = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--all"))
            all = true;
        else if (!strcmp(argv[i], "--json"))
            out_json = true;
        else if (isdigit((unsigned char)argv[i][0]))
            npids++;
        else
            return out_usage_error("audit: not a process id", argv[i]);
    }
    if (all && npids)
        return out_usage_error("audit: --all scans every process and takes no "
                           "process id; give either --all or PIDs", NULL);
    if (all)
        return audit_all();
    for (int i = 0; i < argc; i++) { /* every argument checked before output */
        if (!isdigit((unsigned char)argv[i][0]))
            continue;
        char *end;
        long pid = strtol(argv[i], &end, 10);
        if (*end || pid <= 0 || pid > 0x3fffffff)
            return out_usage_error("audit: not a process id", argv[i]);
    }
    if (out_json)
        printf("{\"processes\": [");
    bool first = true;
    int found = 0, errors = 0, total = 0;
    for (int i = 0; i < (npids ? argc : 1); i++) { /* no PID: this process */
        if (npids && !isdigit((unsigned char)argv[i][0]))
            continue;
        int r = audit_one(npids ? (pid_t)strtol(argv[i], NULL, 10) : 0, first);
        first = false;
        total++;
        found += r == 1;
        errors += r == 2;
    }
    /* A finding wins over an error: exit 1 says "not W^X clean" even when
       another process could not be read (that error is reported as well). */
    worst = found ? 1 : errors ? 2 : 0;
    if (out_json)
        printf("], \"audited\": %d, \"not_clean\": %d, \"errors\": %d, "
               "\"clean\": %s, \"exit\": %d}\n",
               total - errors, found, errors,
               !found && !errors ? "true" : "false", worst);
    else if (total > 1 || (found && errors))
        printf("%d process%s audited: %d not W^X clean, %d could not be read -> "
               "exit %d%s\n",
               total, total == 1 ? "" : "es", found, errors, worst,
               found && errors ? " (a finding wins over an error)" : "");
    return worst;
}
