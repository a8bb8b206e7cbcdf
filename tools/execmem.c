/* SPDX-License-Identifier: MIT */
/*
 * execmem: the command-line tool. Public API only.
 *
 *   execmem info            what this system offers, what AUTO picks and why
 *   execmem audit [PID...]  W+X mappings and aliases of processes (--all: every one)
 *   execmem demo            a small real JIT running on the heap, verified
 *
 * Exit codes: 0 success (audit: clean); 1 audit found W+X or an alias, or
 * demo found a wrong result or a W+X mapping; 2 usage or system error. When
 * audit finds W+X in one process and cannot read another, 1 wins: the
 * finding is the answer asked for, and the error is reported too (stderr,
 * and in the JSON). `execmem COMMAND --help` describes each command.
 */
#include <execmem.h>
#include "expr.h"
#include "proc_tlb.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool json;

static const char *usage_text =
    "usage: execmem [--json] COMMAND [options]\n"
    "       execmem COMMAND --help     (options of one command)\n"
    "\n"
    "commands:\n"
    "  info                 what this system offers for executable memory and\n"
    "                       which backend the library picks, and why\n"
    "  audit [PID...]       W+X mappings, W+X aliases and mappings that may\n"
    "                       become W+X, per process (default: this one)\n"
    "  audit --all          every readable process, as a summary table\n"
    "  demo [options]       JIT random arithmetic functions into the heap, check\n"
    "                       every one against an interpreter, report the costs\n"
    "      --count N        functions to compile (default 1000000)\n"
    "      --working-set N  functions alive at once per thread (default 2000)\n"
    "      --backend B      auto, dual or flip (default auto)\n"
    "      --strict         XM_STRICT: no writable mapping of code at any time\n"
    "                       (DUAL only: refused with --backend flip)\n"
    "      --threads N      compiling threads sharing the heap (default 1)\n"
    "      --seed N         random seed (default 1)\n"
    "      --progress, --no-progress   progress bar on stderr (default: on\n"
    "                       when stderr is a terminal and without --json)\n"
    "\n"
    "options:\n"
    "  --json               machine-readable output for every command\n"
    "  --help, --version\n"
    "\n"
    "exit status: 0 success (audit: clean); 1 audit found W+X mappings or\n"
    "aliases, or demo found a wrong result or a W+X mapping; 2 usage or system\n"
    "error. audit: a finding (1) wins over an error (2) in another process.\n";

static const char *info_help =
    "usage: execmem [--json] info [--json]\n"
    "\n"
    "Probes what this system offers for executable memory, with the library's\n"
    "own system calls: memfd and MFD_NOEXEC_SEAL, vm.memfd_noexec, PROT_EXEC on\n"
    "a memfd view and on anonymous memory, SELinux, MDWE, protection keys,\n"
    "THP, membarrier SYNC_CORE, the page size; then which backend AUTO picks\n"
    "and why.\n"
    "\n"
    "exit status: 0, or 2 if no executable memory can be had.\n";

static const char *audit_help =
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

static const char *demo_help =
    "usage: execmem [--json] demo [options]\n"
    "\n"
    "JIT-compiles random arithmetic functions (x86-64 or AArch64 code, the\n"
    "machine's own) into an execmem heap,\n"
    "checks every one against an interpreter, frees old ones, and reports\n"
    "the costs and the W^X audit of its own process (clean means what it\n"
    "means for audit: no W+X mapping and no W+X alias).\n"
    "\n"
    "  --count N        functions to compile (default 1000000)\n"
    "  --working-set N  functions alive at once per thread (default 2000)\n"
    "  --backend B      auto, dual or flip (default auto)\n"
    "  --strict         XM_STRICT: no writable mapping of code at any time\n"
    "                   (DUAL only: refused with --backend flip)\n"
    "  --threads N      compiling threads sharing the heap (1 to 64, default 1)\n"
    "  --seed N         random seed (default 1)\n"
    "  --progress, --no-progress   progress bar on stderr (default: on when\n"
    "                   stderr is a terminal and without --json)\n"
    "  --json           machine-readable output\n"
    "\n"
    "exit status: 0 success; 1 a wrong result, or a W+X mapping in its own\n"
    "process (DUAL's W+X alias without --strict is reported, not an error);\n"
    "2 usage or system error.\n";

static bool is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* "MAJOR.MINOR.PATCH": the one version format (for the command and for
 * the library it runs with, from xm_version()). */
static void print_version(unsigned v)
{
    printf("%u.%u.%u", v / 10000u, v / 100u % 100u, v % 100u);
}

static const char *current_cmd; /* for usage_error's hint */

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "execmem: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, "try 'execmem %s%s--help'\n", current_cmd ? current_cmd : "",
            current_cmd ? " " : "");
    return 2;
}

static const char *backend_name(xm_backend b)
{
    return b == XM_BACKEND_DUAL ? "DUAL" : b == XM_BACKEND_FLIP ? "FLIP" : "AUTO";
}

/* ---- info ------------------------------------------------------------- */

static const char *yn(int v) { return v < 0 ? "unknown" : v ? "yes" : "no"; }

static int cmd_info(void)
{
    xm_sysinfo s;
    if (xm_system_info(&s) != XM_OK) {
        fprintf(stderr, "execmem: cannot probe this system\n");
        return 2;
    }
    if (json) {
        printf("{\"page_size\": %zu, \"memfd\": %d, \"memfd_noexec_seal\": %d, "
               "\"vm_memfd_noexec\": %d, \"exec_memfd\": %d, \"exec_anon\": %d, "
               "\"selinux_enforcing\": %d, \"mdwe\": %d, \"pkeys\": %d, "
               "\"pkeys_free\": %d, "
               "\"membarrier_sync_core\": %d, \"thp_enabled\": \"%s\", "
               "\"thp_shmem_enabled\": \"%s\", \"auto_backend\": \"%s\", "
               "\"auto_result\": \"%s\", \"reason\": \"%s\"}\n",
               s.page_size, s.memfd, s.memfd_noexec_seal, s.memfd_noexec_sysctl,
               s.exec_memfd, s.exec_anon, s.selinux, s.mdwe, s.pkeys,
               s.pkeys_free, s.membarrier_sync_core, s.thp_enabled, s.thp_shmem,
               s.auto_result == XM_OK ? backend_name(s.auto_backend) : "none",
               xm_strerror(s.auto_result), s.auto_reason);
        return s.auto_result == XM_OK ? 0 : 2;
    }
    printf("execmem ");
    print_version(xm_version());
    printf(" on this system\n");
    printf("  page size                       %zu\n", s.page_size);
    printf("  memfd_create                    %s\n", yn(s.memfd));
    printf("  MFD_NOEXEC_SEAL                 %s\n", yn(s.memfd_noexec_seal));
    if (s.memfd_noexec_sysctl < 0)
        printf("  vm.memfd_noexec                 absent (kernel before 6.3)\n");
    else
        printf("  vm.memfd_noexec                 %d\n", s.memfd_noexec_sysctl);
    printf("  PROT_EXEC on a memfd view       %s (probed)\n", yn(s.exec_memfd));
    printf("  PROT_EXEC on anonymous memory   %s (probed with mprotect)\n",
           yn(s.exec_anon));
    printf("  SELinux                         %s\n",
           s.selinux < 0 ? "absent" : s.selinux ? "enforcing" : "permissive");
    printf("  MDWE (PR_GET_MDWE)              %s\n",
           s.mdwe < 0 ? "unknown" : s.mdwe ? "refuse exec gain" : "off");
    printf("  protection keys (XM_PKEYS)      %s, %d free\n", yn(s.pkeys),
           s.pkeys_free);
    printf("  membarrier SYNC_CORE            %s\n", yn(s.membarrier_sync_core));
    printf("  THP anonymous / shmem           %s / %s\n",
           s.thp_enabled[0] ? s.thp_enabled : "unknown",
           s.thp_shmem[0] ? s.thp_shmem : "unknown");
    if (s.auto_result == XM_OK)
        printf("  backend AUTO resolves to        %s\n", backend_name(s.auto_backend));
    else
        printf("  backend AUTO resolves to        none (%s)\n",
               xm_strerror(s.auto_result));
    printf("  why: %s\n", s.auto_reason);
    return s.auto_result == XM_OK ? 0 : 2;
}

/* ---- audit ------------------------------------------------------------ */

static void json_string(const char *s)
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
        if (json) {
            printf("%s{\"pid\": %ld, \"error\": ", first ? "" : ",\n", (long)pid);
            json_string(why);
            printf("}");
        }
        return 2;
    }
    char comm[64];
    read_comm(pid ? pid : getpid(), comm, sizeof comm);
    int found = r.wx_mappings || r.wx_aliases;
    if (json) {
        printf("%s{\"pid\": %ld, \"comm\": ", first ? "" : ",\n",
               (long)(pid ? pid : getpid()));
        json_string(comm);
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
            json_string(r.ranges[i].path);
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
    if (json)
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
        if (json) {
            printf("%s{\"pid\": %ld, \"comm\": ", first ? "" : ", ", (long)pid);
            json_string(comm);
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
    if (json)
        printf("], \"scanned\": %zu, \"not_clean\": %zu, \"with_may_wx\": %zu, "
               "\"unreadable\": %zu}\n",
               scanned, dirty, possible, unreadable);
    else
        printf("%zu processes scanned: %zu not W^X clean, %zu with mappings that "
               "may become W+X, %zu unreadable\n",
               scanned, dirty, possible, unreadable);
    return dirty ? 1 : 0;
}

static int cmd_audit(int argc, char **argv)
{
    bool all = false;
    int npids = 0, worst = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--all"))
            all = true;
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (isdigit((unsigned char)argv[i][0]))
            npids++;
        else
            return usage_error("audit: not a process id", argv[i]);
    }
    if (all && npids)
        return usage_error("audit: --all scans every process and takes no "
                           "process id; give either --all or PIDs", NULL);
    if (all)
        return audit_all();
    for (int i = 0; i < argc; i++) { /* every argument checked before output */
        if (!isdigit((unsigned char)argv[i][0]))
            continue;
        char *end;
        long pid = strtol(argv[i], &end, 10);
        if (*end || pid <= 0 || pid > 0x3fffffff)
            return usage_error("audit: not a process id", argv[i]);
    }
    if (json)
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
    if (json)
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

/* ---- demo: a small real JIT -------------------------------------------- */

/* The expression compiler (generator, interpreter, code for this build's
 * architecture): tools/expr.h. */
typedef uint64_t (*jit_fn)(uint64_t, uint64_t, uint64_t, uint64_t);

typedef struct demo_cfg {
    xm_heap *heap;
    uint64_t count; /* per thread */
    int working_set;
    uint64_t seed;
    bool progress;
    bool named; /* a sink for xm_name is on (XM_PERF, XM_GDB) */
} demo_cfg;

typedef struct demo_thread {
    const demo_cfg *cfg;
    int id;
    uint64_t compiled, calls, mismatches, code_bytes;
    xm_result error;
    const char *error_what;
    void **fns; /* the working set, left live for the audit */
    int nfns;
} demo_thread;

static _Atomic uint64_t demo_done;

static bool verify(demo_thread *t, const expr *e, void *rx, uint64_t *rng, int n)
{
    jit_fn f;
    memcpy(&f, &rx, sizeof f);
    for (int k = 0; k < n; k++) {
        uint64_t x[4];
        for (int j = 0; j < 4; j++)
            x[j] = k == 0 && j == 0 ? 0 : expr_rng_next(rng) >> (expr_rng_next(rng) & 63);
        uint64_t got = f(x[0], x[1], x[2], x[3]), want = expr_eval(e, e->root, x);
        t->calls++;
        if (got != want) {
            if (t->mismatches++ == 0)
                fprintf(stderr, "\nexecmem demo: function at %p returned %llx, "
                                "the interpreter says %llx\n",
                        rx, (unsigned long long)got, (unsigned long long)want);
            return false;
        }
    }
    return true;
}

static void *demo_main(void *arg)
{
    demo_thread *t = arg;
    const demo_cfg *c = t->cfg;
    uint64_t rng = c->seed * 1000003u + (uint64_t)t->id;
    int ws = c->working_set;
    expr *trees = calloc((size_t)ws, sizeof *trees);
    void **fns = calloc((size_t)ws, sizeof *fns);
    uint8_t code[EXPR_MAX_CODE];
    if (!trees || !fns) {
        t->error = XM_ENOMEM;
        t->error_what = "calloc";
        free(trees);
        free(fns);
        return NULL;
    }
    for (uint64_t i = 0; i < c->count; i++) {
        int slot = (int)(expr_rng_next(&rng) % (uint64_t)ws);
        if (fns[slot]) { /* a last check, then the old function goes */
            verify(t, &trees[slot], fns[slot], &rng, 1);
            xm_result r = (i & 7) == 0 ? xm_free_async(c->heap, fns[slot])
                                       : xm_free(c->heap, fns[slot]);
            if (r != XM_OK) {
                t->error = r;
                t->error_what = "xm_free";
                break;
            }
            fns[slot] = NULL;
        }
        expr *e = &trees[slot];
        e->count = 0;
        e->root = expr_gen(e, &rng, 1 + (int)(expr_rng_next(&rng) % 5));
        size_t len = expr_compile(e, code);
        xm_block b;
        xm_result r = xm_alloc(c->heap, len, 0, &b);
        if (r == XM_OK) {
            memcpy(b.rw, code, len);
            if (c->named) { /* for perf and gdb: emitted at publish */
                char name[48];
                snprintf(name, sizeof name, "jit_expr_t%d_%llu", t->id,
                         (unsigned long long)i);
                r = xm_name(c->heap, b.rx, name);
            }
        }
        if (r == XM_OK)
            r = xm_publish(c->heap, b.rx, XM_PROT_RX);
        if (r != XM_OK) {
            t->error = r;
            t->error_what = "xm_alloc/xm_publish";
            break;
        }
        fns[slot] = b.rx;
        t->compiled++;
        t->code_bytes += len;
        verify(t, e, b.rx, &rng, 3);
        /* and a call into some other live function of the working set */
        int other = (int)(expr_rng_next(&rng) % (uint64_t)ws);
        if (fns[other])
            verify(t, &trees[other], fns[other], &rng, 1);
        if ((i & 1023) == 0)
            atomic_fetch_add(&demo_done, 1024);
    }
    t->fns = fns; /* freed by the caller after the audit */
    t->nfns = ws;
    free(trees);
    return NULL;
}


static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return false;
    *out = v;
    return true;
}

static int cmd_demo(int argc, char **argv)
{
    if (!expr_arch) {
        (void)argc;
        (void)argv;
        printf("execmem demo: the demo JIT emits x86-64 or AArch64 code; this "
               "machine is neither, nothing to run\n");
        return 0;
    }
    uint64_t count = 1000000, ws = 2000, threads = 1, seed = 1;
    xm_options o = XM_OPTIONS_INIT;
    int progress = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--count"))
            ok = parse_u64(v, &count) && count > 0, i++;
        else if (!strcmp(a, "--working-set"))
            ok = parse_u64(v, &ws) && ws > 0 && ws <= 1000000, i++;
        else if (!strcmp(a, "--threads"))
            ok = parse_u64(v, &threads) && threads > 0 && threads <= 64, i++;
        else if (!strcmp(a, "--seed"))
            ok = parse_u64(v, &seed), i++;
        else if (!strcmp(a, "--backend")) {
            i++;
            if (v && !strcmp(v, "auto"))
                o.backend = XM_BACKEND_AUTO;
            else if (v && !strcmp(v, "dual"))
                o.backend = XM_BACKEND_DUAL;
            else if (v && !strcmp(v, "flip"))
                o.backend = XM_BACKEND_FLIP;
            else
                ok = false;
        } else if (!strcmp(a, "--strict"))
            o.flags |= XM_STRICT;
        else if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "--progress"))
            progress = 1;
        else if (!strcmp(a, "--no-progress"))
            progress = 0;
        else
            return usage_error("demo: unknown option", a);
        if (!ok)
            return usage_error("demo: bad value for", a);
    }
    if ((o.flags & XM_STRICT) && o.backend == XM_BACKEND_FLIP)
        return usage_error("demo: --strict is a DUAL mode (no writable mapping of "
                           "the memfd); FLIP has no alias to remove: use "
                           "--backend dual or auto", NULL);
    if (progress < 0)
        progress = isatty(2) && !json;
    xm_heap *h;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK) {
        fprintf(stderr, "execmem demo: xm_heap_create: %s\n", xm_strerror(r));
        return 2;
    }
    xm_stats hs;
    xm_heap_stats(h, &hs);
    demo_cfg cfg = {h, (count + threads - 1) / threads, (int)ws, seed, progress,
                    (hs.flags & (XM_PERF_MAP | XM_PERF_JITDUMP | XM_GDB)) != 0};
    demo_thread *t = calloc(threads, sizeof *t);
    pthread_t *tid = calloc(threads, sizeof *tid);
    if (!t || !tid) {
        fprintf(stderr, "execmem demo: out of memory\n");
        return 2;
    }
    long long tlb0 = proc_tlb_shootdowns();
    double t0 = now_s();
    for (uint64_t i = 0; i < threads; i++) {
        t[i] = (demo_thread){&cfg, (int)i, 0, 0, 0, 0, XM_OK, NULL, NULL, 0};
        if (pthread_create(&tid[i], NULL, demo_main, &t[i])) {
            fprintf(stderr, "execmem demo: cannot start a thread\n");
            return 2;
        }
    }
    if (progress) {
        uint64_t total = cfg.count * threads;
        for (;;) {
            uint64_t d = atomic_load(&demo_done);
            if (d > total)
                d = total;
            int w = (int)(40 * d / total);
            fprintf(stderr, "\r  [%.*s%*s] %3d%%  %llu functions", w,
                    "########################################", 40 - w, "",
                    (int)(100 * d / total), (unsigned long long)d);
            if (d >= total)
                break;
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
            bool running = false;
            for (uint64_t i = 0; i < threads; i++)
                running |= t[i].compiled < cfg.count && !t[i].error &&
                           !t[i].mismatches;
            if (!running)
                break;
        }
        fprintf(stderr, "\r%72s\r", "");
    }
    for (uint64_t i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double secs = now_s() - t0;
    long long tlb1 = proc_tlb_shootdowns();
    xm_audit_report a; /* while the working set is live */
    xm_result ar = xm_audit(0, &a);
    for (uint64_t i = 0; i < threads; i++) {
        for (int k = 0; k < t[i].nfns; k++)
            if (t[i].fns[k])
                (void)xm_free(h, t[i].fns[k]);
        free(t[i].fns);
    }
    (void)xm_purge(h);
    xm_stats s;
    xm_heap_stats(h, &s);
    uint64_t compiled = 0, calls = 0, bad = 0, bytes = 0;
    const char *err = NULL;
    xm_result errc = XM_OK;
    for (uint64_t i = 0; i < threads; i++) {
        compiled += t[i].compiled;
        calls += t[i].calls;
        bad += t[i].mismatches;
        bytes += t[i].code_bytes;
        if (t[i].error && !err) {
            err = t[i].error_what;
            errc = t[i].error;
        }
    }
    long long tlb = tlb0 >= 0 && tlb1 >= 0 ? tlb1 - tlb0 : -1;
    double per_fn_us = compiled ? secs * 1e6 * (double)threads / (double)compiled : 0;
    /* clean means what it means for `execmem audit`: no W+X mapping and no
       W+X alias. DUAL's alias without --strict is the documented price of
       publishing without system calls: reported, and not a demo failure;
       a W+X mapping (or an alias under --strict) is. */
    bool clean = ar == XM_OK && a.wx_mappings == 0 && a.wx_aliases == 0;
    bool as_promised = ar == XM_OK && a.wx_mappings == 0 &&
                       (!(s.flags & XM_STRICT) || a.wx_aliases == 0);
    if (json) {
        printf("{\"functions\": %llu, \"threads\": %llu, \"working_set\": %llu, "
               "\"seed\": %llu, \"backend\": \"%s\", \"strict\": %s, "
               "\"seconds\": %.3f, \"functions_per_second\": %.0f, "
               "\"avg_code_bytes\": %.1f, \"calls_verified\": %llu, "
               "\"mismatches\": %llu, \"syscalls\": %llu, \"revocations\": %llu, "
               "\"purges\": %llu, \"tlb_shootdowns\": %lld, "
               "\"audit_wx_mappings\": %zu, \"audit_wx_aliases\": %zu, "
               "\"audit_clean\": %s, \"error\": %s%s%s}\n",
               (unsigned long long)compiled, (unsigned long long)threads,
               (unsigned long long)ws, (unsigned long long)seed,
               backend_name(s.backend), (s.flags & XM_STRICT) ? "true" : "false",
               secs, secs > 0 ? (double)compiled / secs : 0.0,
               compiled ? (double)bytes / (double)compiled : 0.0,
               (unsigned long long)calls, (unsigned long long)bad,
               (unsigned long long)s.syscalls, (unsigned long long)s.revocations,
               (unsigned long long)s.purges, tlb, a.wx_mappings, a.wx_aliases,
               clean ? "true" : "false",
               err ? "\"" : "", err ? err : "null", err ? "\"" : "");
    } else {
        printf("execmem demo: %llu functions JIT-compiled (random expression trees "
               "over 4 int64 arguments, %s)\n",
               (unsigned long long)compiled, expr_arch);
        printf("  backend %s%s, %llu thread%s, working set %llu per thread, seed %llu\n",
               backend_name(s.backend), (s.flags & XM_STRICT) ? " + XM_STRICT" : "",
               (unsigned long long)threads, threads == 1 ? "" : "s",
               (unsigned long long)ws, (unsigned long long)seed);
        printf("  compile + xm_alloc + copy + xm_publish + checks: %.2f s, "
               "%.0f functions/s (%.2f us each), %.0f code bytes on average\n",
               secs, secs > 0 ? (double)compiled / secs : 0.0, per_fn_us,
               compiled ? (double)bytes / (double)compiled : 0.0);
        printf("  calls verified against the interpreter: %llu, mismatches: %llu\n",
               (unsigned long long)calls, (unsigned long long)bad);
        printf("  heap: %llu system calls (%.4f per function), %llu revocations, "
               "%llu purges\n",
               (unsigned long long)s.syscalls,
               compiled ? (double)s.syscalls / (double)compiled : 0.0,
               (unsigned long long)s.revocations, (unsigned long long)s.purges);
        if (tlb >= 0)
            printf("  TLB shootdowns on this machine during the run: %lld "
                   "(/proc/interrupts, all processes)\n", tlb);
        if (ar == XM_OK)
            printf("  W^X audit of this process: %zu W+X mappings, %zu W+X aliases"
                   " -> %s%s\n",
                   a.wx_mappings, a.wx_aliases, clean ? "clean" : "NOT W^X CLEAN",
                   !clean && as_promised
                       ? " (as execmem audit says; the alias is DUAL's writable "
                         "view, expected without --strict, which has none)"
                       : "");
        if (err)
            printf("  stopped early: %s: %s\n", err, xm_strerror(errc));
    }
    xm_heap_destroy(h);
    free(t);
    free(tid);
    if (err)
        return 2;
    return bad || !as_promised ? 1 : 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("execmem ");
            print_version(XM_VERSION_NUMBER);
            printf(" (library ");
            print_version(xm_version());
            printf(")\n");
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            json = true;
        else
            return usage_error("unknown option", argv[i]);
    }
    if (i >= argc)
        return usage_error("no command given", NULL);
    const char *cmd = argv[i++];
    if (!strcmp(cmd, "info") || !strcmp(cmd, "audit") || !strcmp(cmd, "demo"))
        current_cmd = cmd;
    int rest = argc - i;
    char **rargv = argv + i;
    for (int k = 0; k < rest; k++) { /* `execmem COMMAND --help` */
        const char *help = !strcmp(cmd, "info") ? info_help
                           : !strcmp(cmd, "audit") ? audit_help
                           : !strcmp(cmd, "demo") ? demo_help : NULL;
        if (help && is_help(rargv[k])) {
            fputs(help, stdout);
            return 0;
        }
    }
    if (!strcmp(cmd, "info")) {
        for (int k = 0; k < rest; k++) {
            if (!strcmp(rargv[k], "--json"))
                json = true;
            else
                return usage_error("info: unknown option", rargv[k]);
        }
        return cmd_info();
    }
    if (!strcmp(cmd, "audit"))
        return cmd_audit(rest, rargv);
    if (!strcmp(cmd, "demo"))
        return cmd_demo(rest, rargv);
    if (!strcmp(cmd, "help")) { /* execmem help [COMMAND] */
        const char *c = rest > 0 ? rargv[0] : "";
        fputs(!strcmp(c, "info") ? info_help : !strcmp(c, "audit") ? audit_help
              : !strcmp(c, "demo") ? demo_help : usage_text, stdout);
        return 0;
    }
    return usage_error("unknown command", cmd);
}
