/* SPDX-License-Identifier: MIT */
/*
 * test_audit.c: xm_audit against processes that really are not W^X clean,
 * strict mode's alias invariant at every stage of a block's life, and the
 * backends under MDWE (PR_SET_MDWE), observed.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starts a child that sets up `kind` mappings, reports readiness on a
 * pipe and waits to be killed. 0: clean; 1: one RWX anonymous mapping;
 * 2: a memfd mapped writable at one address and executable at another. */
static pid_t spawn_mapper(int kind)
{
    int p[2];
    if (pipe(p))
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (kind == 1) {
            void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE | PROT_EXEC,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED)
                _exit(3);
        } else if (kind == 2) {
            int fd = (int)syscall(SYS_memfd_create, "jit", 0);
            if (fd < 0 || ftruncate(fd, 16384))
                _exit(3);
            void *w = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            void *x = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 4096);
            if (w == MAP_FAILED || x == MAP_FAILED)
                _exit(3);
        }
        if (write(p[1], "r", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    close(p[1]);
    char ch;
    if (pid < 0 || read(p[0], &ch, 1) != 1) {
        close(p[0]);
        return -1;
    }
    close(p[0]);
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

TEST(audit_detects_wx_and_aliases_in_other_processes)
{
    xm_audit_report a;
    pid_t clean = spawn_mapper(0), rwx = spawn_mapper(1), dual = spawn_mapper(2);
    CHECK(clean > 0 && rwx > 0 && dual > 0);
    xm_result r0 = xm_audit(clean, &a);
    size_t c_wx = a.wx_mappings, c_al = a.wx_aliases, c_maps = a.mappings;
    xm_result r1 = xm_audit(rwx, &a);
    size_t r_wx = a.wx_mappings, r_n = a.nranges;
    unsigned r_kind = a.ranges[0].kind;
    xm_result r2 = xm_audit(dual, &a);
    reap(clean);
    reap(rwx);
    reap(dual);
    CHECK_OK(r0);
    CHECK(c_maps > 5);
    if (under_valgrind()) { /* valgrind's own RWX cache is in every child */
        printf("    W+X counts not checked under valgrind (native run does)\n");
        return;
    }
    CHECK_EQ(c_wx, 0);
    CHECK_EQ(c_al, 0);
    CHECK_OK(r1);
    CHECK_EQ(r_wx, 1);
    CHECK(r_n >= 1 && r_kind == XM_AUDIT_WX);
    CHECK_OK(r2);
    CHECK_EQ(a.wx_mappings, 0);
    CHECK_EQ(a.wx_aliases, 1);
    CHECK_EQ(a.ranges[0].kind, XM_AUDIT_ALIAS);
    CHECK(a.ranges[0].other != 0);
    CHECK_EQ(a.ranges[0].end - a.ranges[0].start, 8192);
    CHECK(strstr(a.ranges[0].path, "memfd:jit") != NULL);
    /* errors: no such process, bad arguments */
    CHECK_EQ(xm_audit(999999999, &a), XM_EOS);
    CHECK_EQ(xm_audit(0, NULL), XM_EINVAL);
    CHECK_EQ(xm_audit_ex(0, 0x10, &a), XM_EINVAL);
    CHECK_EQ(xm_audit(-5, &a), XM_EINVAL);
}

/* Invariant 2: in strict mode no byte executable through one mapping is
 * writable through another, at every stage; invariant 1 in every mode. */
static void strict_stages(const config *c)
{
    bool strict = c->flags & XM_STRICT;
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    CHECK(audit_clean(strict));
    xm_block b[6];
    for (int i = 0; i < 6; i++)
        CHECK_OK(xm_alloc(h, 64 + (size_t)i * 9000, 0, &b[i]));
    CHECK(audit_clean(strict)); /* allocated, being written */
    for (int i = 0; i < 6; i++) {
        emit_ret(b[i].rw, (uint64_t)i);
        CHECK_OK(xm_publish(h, b[i].rx, XM_PROT_RX));
    }
    CHECK(audit_clean(strict)); /* published */
    uint64_t v = 77;
    CHECK_OK(patch_ret(h, b[2].rx, v));
    CHECK_EQ(call_at(b[2].rx), 77);
    CHECK(audit_clean(strict)); /* patched */
    xm_block d;
    CHECK_OK(xm_alloc_data(h, 256, 0, &d));
    CHECK_OK(xm_publish(h, d.rx, XM_PROT_R));
    for (int i = 0; i < 6; i += 2)
        CHECK_OK(xm_free(h, b[i].rx));
    CHECK(audit_clean(strict)); /* freed, in quarantine */
    CHECK_OK(xm_purge(h));
    CHECK(audit_clean(strict)); /* purged */
    xm_audit_report a;
    CHECK_OK(xm_audit(0, &a));
    if (c->backend == XM_BACKEND_DUAL && !strict)
        CHECK(a.wx_aliases + a.pkey_aliases > 0); /* the persistent alias, as
                                                      README says (keyed with
                                                      XM_PKEYS: protected) */
    xm_heap_destroy(h);
    CHECK(audit_clean(true));
}
TEST(no_wx_mapping_and_strict_has_no_wx_alias) { FOR_CONFIGS(strict_stages); }

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

/* Under MDWE, gaining PROT_EXEC by mprotect is refused, while a fresh
 * read+execute mapping of a file is not: DUAL works, FLIP reports EPERM. */
static int mdwe_child(void *arg)
{
    (void)arg;
    if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0L, 0L, 0L))
        return 100; /* kernel without MDWE: skipped by the parent */
    xm_heap *h;
    if (xm_heap_create(NULL, &h) != XM_OK)
        return 1;
    xm_stats s;
    if (xm_heap_stats(h, &s) != XM_OK || s.backend != XM_BACKEND_DUAL)
        return 2;
    xm_block b;
    if (make_fn(h, 64, 31, &b) != XM_OK || call_at(b.rx) != 31)
        return 3;
    xm_heap_destroy(h);
    xm_options o = XM_OPTIONS_INIT;
    o.backend = XM_BACKEND_FLIP;
    xm_heap *f = (xm_heap *)1;
    if (xm_heap_create(&o, &f) != XM_EPERM || f != NULL)
        return 4;
    xm_sysinfo si;
    if (xm_system_info(&si) != XM_OK || si.mdwe != PR_MDWE_REFUSE_EXEC_GAIN ||
        si.exec_anon != 0 || si.exec_memfd != 1 ||
        si.auto_backend != XM_BACKEND_DUAL)
        return 5;
    return 0;
}
TEST(mdwe_process_gets_dual_and_flip_reports_eperm)
{
    if (under_valgrind()) { /* valgrind's own JIT cannot run under MDWE */
        test_skip("valgrind's own JIT cannot run under MDWE (the native run checks it)");
        return;
    }
    int st = child_status(mdwe_child, NULL);
    if (st == 100) {
        test_skip("this kernel has no PR_SET_MDWE");
        return;
    }
    CHECK_EQ(st, 0);
}

/* DUAL's executable view is mapped from an O_RDONLY descriptor: no one in
 * the process can mprotect it writable later, not even by mistake. */
static void exec_view_never_writable(const config *c)
{
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    xm_block b;
    CHECK_OK(make_fn(h, 64, 3, &b));
    void *page = (void *)((uintptr_t)b.rx & ~(uintptr_t)4095);
    errno = 0;
    CHECK(mprotect(page, 4096, PROT_READ | PROT_WRITE) != 0);
    CHECK_EQ(errno, EACCES);
    CHECK(mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) != 0);
    CHECK_EQ(call_at(b.rx), 3);
    xm_heap_destroy(h);
}
TEST(dual_exec_view_cannot_become_writable)
{
    FOR_CONFIGS_IF(exec_view_never_writable,
                   configs[ci_].backend == XM_BACKEND_DUAL);
}

/* The probes agree with what the heap does here, and leave nothing. */
TEST(system_info_probes_this_machine)
{
    xm_sysinfo si;
    CHECK_EQ(xm_system_info(NULL), XM_EINVAL);
    CHECK_OK(xm_system_info(&si));
    CHECK_EQ(si.page_size, (size_t)sysconf(_SC_PAGESIZE));
    CHECK_OK(si.auto_result);
    CHECK(si.auto_reason != NULL && si.auto_reason[0]);
    xm_heap *h;
    CHECK_OK(xm_heap_create(NULL, &h));
    xm_stats st;
    CHECK_OK(xm_heap_stats(h, &st));
    xm_heap_destroy(h);
    CHECK_EQ(si.auto_backend, st.backend);
    if (st.backend == XM_BACKEND_DUAL)
        CHECK(si.memfd == 1 && si.exec_memfd == 1);
    CHECK(si.exec_anon == 0 || si.exec_anon == 1);
    CHECK(si.membarrier_sync_core == 0 || si.membarrier_sync_core == 1);
    CHECK(si.mdwe >= -1);
    /* nothing of the probes is left mapped */
    xm_audit_report a;
    CHECK_OK(xm_audit(0, &a));
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        CHECK(strstr(line, "execmem-probe") == NULL);
    if (f)
        fclose(f);
}

/* smaps: program text (private file mappings) may become W+X by mprotect;
 * the audit counts it apart, with the file's name. */
TEST(audit_smaps_reports_mappings_that_may_become_wx)
{
    xm_audit_report a;
    CHECK_OK(xm_audit_ex(0, XM_AUDIT_SMAPS, &a));
    CHECK(a.wx_possible > 0);
    bool named = false;
    for (size_t i = 0; i < a.nranges; i++)
        if (a.ranges[i].kind == XM_AUDIT_MAYBE && a.ranges[i].path[0] == '/')
            named = true;
    CHECK(named || under_valgrind()); /* there, valgrind's own W+X ranges
                                         fill the report first */
    xm_audit_report b;
    CHECK_OK(xm_audit(0, &b));
    CHECK_EQ(b.wx_possible, 0); /* maps alone cannot tell */
    if (!under_valgrind()) /* its translation cache changes in between */
        CHECK_EQ(b.wx_mappings, a.wx_mappings);
}

/* Issue 16, item 3: SysV shared memory shows its segment id in the inode
 * field, and id 0 is a valid segment (the first of an IPC namespace). Code
 * written through one attachment runs from the other: the audit must call
 * that an alias. A second segment (id 1), mapped executable only, is not
 * aliased with segment 0. */
static int sysv_alias_child(void *arg)
{
    (void)arg;
    if (unshare(CLONE_NEWIPC))
        return 100; /* no permission for a new IPC namespace: skipped */
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    int id1 = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    if (id != 0 || id1 != 1)
        return 2;
    unsigned char *w = shmat(id, NULL, 0);
    void *x = shmat(id, NULL, SHM_RDONLY | SHM_EXEC);
    void *x1 = shmat(id1, NULL, SHM_RDONLY | SHM_EXEC);
    if (w == (void *)-1 || x == (void *)-1 || x1 == (void *)-1)
        return 3;
    emit_ret(w, 4242);
    __builtin___clear_cache((char *)x, (char *)x + RET_LEN); /* arm64 */
    /* really one object, written and run (valgrind does not take SHM_EXEC
       attachments for code: the native run checks it) */
    if (!under_valgrind() && call_at(x) != 4242)
        return 4;
    xm_audit_report a;
    if (xm_audit(0, &a) != XM_OK)
        return 5;
    if (a.wx_aliases != 1)
        return 10 + (int)(a.wx_aliases > 9 ? 9 : a.wx_aliases);
    for (size_t i = 0; i < a.nranges; i++)
        if (a.ranges[i].kind == XM_AUDIT_ALIAS) {
            if (a.ranges[i].start != (uintptr_t)x ||
                a.ranges[i].other != (uintptr_t)w ||
                strncmp(a.ranges[i].path, "/SYSV", 5) != 0)
                return 7;
            return 0;
        }
    return under_valgrind() ? 0 : 8; /* its own W+X ranges fill ranges[] */
}
TEST(audit_finds_sysv_shm_alias_with_segment_id_0)
{
    int st = child_status(sysv_alias_child, NULL);
    if (st == 100) {
        printf("    skipped: unshare(CLONE_NEWIPC) refused (not root?)\n");
        return;
    }
    CHECK_EQ(st, 0);
}

/* Issue 16, item 4: a private writable view of a file that is also mapped
 * executable is not an alias (writes go to a private copy); a shared
 * writable view of the same range is. */
static void *map_tmp_file(int fd, int prot, int flags, off_t off)
{
    void *p = mmap(NULL, 4096, prot, flags, fd, off);
    return p == MAP_FAILED ? NULL : p;
}
TEST(audit_private_writable_view_is_not_an_alias)
{
    char path[] = "/tmp/execmem-audit-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK(ftruncate(fd, 8192) == 0);
    void *x = map_tmp_file(fd, PROT_READ | PROT_EXEC, MAP_PRIVATE, 0);
    void *wp = map_tmp_file(fd, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0);
    CHECK(x && wp);
    xm_audit_report a0, a1;
    xm_result r0 = xm_audit(0, &a0);
    void *ws = map_tmp_file(fd, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
    xm_result r1 = xm_audit(0, &a1);
    munmap(x, 4096);
    munmap(wp, 4096);
    if (ws)
        munmap(ws, 4096);
    close(fd);
    CHECK(ws != NULL);
    CHECK_OK(r0);
    CHECK_OK(r1);
    CHECK_EQ(a1.wx_aliases, a0.wx_aliases + 1);
    for (size_t i = 0; i < a0.nranges; i++)
        CHECK(a0.ranges[i].kind != XM_AUDIT_ALIAS ||
              a0.ranges[i].start != (uintptr_t)x);
}

/* The same for a whole program: built with -z noseparate-code -z norelro
 * (build/wx_nosep, next to the runner), its text (r-xp) and its data
 * (rw-p) are views of one file page. It audits free of aliases. */
static pid_t spawn_nosep(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    strcpy(slash + 1, "wx_nosep");
    int p[2];
    if (pipe(p))
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(exe, exe, "clean", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[8];
    ssize_t got = pid > 0 ? read(p[0], buf, sizeof buf) : -1;
    close(p[0]);
    if (got <= 0) {
        if (pid > 0)
            reap(pid);
        return -1;
    }
    return pid;
}
TEST(audit_program_text_and_data_in_one_page_is_clean)
{
    pid_t pid = spawn_nosep();
    CHECK(pid > 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *f = fopen(path, "r");
    char line[512];
    unsigned long xoff = 0, xend = 0, woff = 0, wend = 0;
    unsigned long xino = 0, wino = 0;
    while (f && fgets(line, sizeof line, f)) {
        char perms[8];
        unsigned long s, e, off, ino;
        if (sscanf(line, "%lx-%lx %7s %lx %*x:%*x %lu", &s, &e, perms, &off,
                   &ino) != 5 ||
            !strstr(line, "wx_nosep"))
            continue;
        if (!strcmp(perms, "r-xp")) {
            xoff = off;
            xend = off + (e - s);
            xino = ino;
        } else if (!strcmp(perms, "rw-p")) {
            woff = off;
            wend = off + (e - s);
            wino = ino;
        }
    }
    if (f)
        fclose(f);
    xm_audit_report a;
    xm_result r = xm_audit(pid, &a);
    reap(pid);
    /* the layout the test is about: text and data views of one file
       overlap (the same page, read+exec and read+write private) */
#if defined(__aarch64__)
    if (xino != 0 && !(xino == wino && xoff < wend && woff < xend)) {
        test_skip("the arm64 linker (ld -z noseparate-code) still starts "
                  "wx_nosep's data on a page of its own: no such layout to audit");
        return;
    }
#endif
    CHECK(xino != 0 && xino == wino && xoff < wend && woff < xend);
    CHECK_OK(r);
    CHECK_EQ(a.wx_aliases, 0);
}

/* Issue 16, item 5: what an attacker who can make system calls reaches
 * through the heap's descriptors. Every descriptor of the memfd is
 * close-on-exec; only XM_STRICT keeps a writable one (its pwrite path);
 * the file's mode is 0, so reopening /proc/self/fd/N read-write (or at all)
 * is refused to a process without CAP_DAC_OVERRIDE; and the size and the
 * seals are sealed, so not even root can truncate the code away or stop the
 * heap's writes. The child drops root (the file modes then apply, as in any
 * unprivileged JIT) before it creates its heap. */
static int memfd_reach_child(void *arg)
{
    const config *c = arg;
    bool strict = c->flags & XM_STRICT;
    if (getuid() == 0 &&
        (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)))
        return 100;
    (void)prctl(PR_SET_DUMPABLE, 1L, 0L, 0L, 0L);
    xm_heap *h = make_heap(c, 0, 0);
    xm_block b;
    if (!h || make_fn(h, 64, 7, &b) != XM_OK)
        return 1;
    int found = 0, writable = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char p[64], link[256];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(p, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (strncmp(link, "/memfd:execmem ", 15) != 0)
            continue;
        found++;
        if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
            return 2;
        if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
            writable++;
        int rw = open(p, O_RDWR | O_CLOEXEC);
        if (rw >= 0) {
            unsigned char v[RET_IMM_LEN]; /* the attack: rewrite published code */
            emit_ret_imm(v, 666);
            uintptr_t base, alias;
            size_t len;
            xm__heap_ranges(h, &base, &len, &alias);
            if (pwrite(rw, v, RET_IMM_LEN,
                       (off_t)((uintptr_t)b.rx + RET_IMM_OFF - base)) != RET_IMM_LEN)
                return 3;
            return call_at(b.rx) == 666 ? 4 : 3;
        }
        if (errno != EACCES)
            return 5;
        if (open(p, O_WRONLY | O_CLOEXEC) >= 0 || open(p, O_RDONLY | O_CLOEXEC) >= 0)
            return 6;
        if (ftruncate(fd, 0) == 0) /* read-only, or sealed */
            return 7;
    }
    if (found != (strict ? 2 : 1) || writable != (strict ? 1 : 0))
        return 10 + found * 2 + writable;
    if (call_at(b.rx) != 7)
        return 8;
    /* the heap works on: new packs, frees, purges */
    xm_block m[40];
    for (int i = 0; i < 40; i++)
        if (make_fn(h, 9000, (uint64_t)i, &m[i]) != XM_OK || call_at(m[i].rx) != (uint64_t)i)
            return 20;
    for (int i = 0; i < 40; i++)
        if (xm_free(h, m[i].rx) != XM_OK)
            return 21;
    if (xm_purge(h) != XM_OK)
        return 22;
    xm_heap_destroy(h);
    return 0;
}
static void memfd_reach(const config *c)
{
    int st = child_status(memfd_reach_child, (void *)c);
    if (st == 100) {
        printf("    skipped: cannot drop root in the child\n");
        return;
    }
    CHECK_EQ(st, 0);
    /* as root (CAP_DAC_OVERRIDE) the reopen works, but the seals hold */
    xm_heap *h = make_heap(c, 0, 0);
    CHECK(h);
    for (int fd = 0; fd < 1024; fd++) {
        char p[64], link[256];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(p, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (strncmp(link, "/memfd:execmem ", 15) != 0)
            continue;
        int rw = open(p, O_RDWR | O_CLOEXEC);
        if (rw < 0)
            continue; /* not root after all */
        errno = 0;
        int t = ftruncate(rw, 0);
        int t_errno = errno;
        int sealed = fcntl(rw, F_ADD_SEALS, 0x0010 /* F_SEAL_FUTURE_WRITE */);
        close(rw);
        CHECK(t != 0 && t_errno == EPERM);
        CHECK(sealed != 0);
    }
    xm_heap_destroy(h);
}
TEST(memfd_descriptors_do_not_give_write_access)
{
    FOR_CONFIGS_IF(memfd_reach, configs[ci_].backend == XM_BACKEND_DUAL);
}
