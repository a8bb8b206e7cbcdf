/* SPDX-License-Identifier: MIT */
/*
 * test_sym.c: xm_name and its three sinks, read back the way perf and gdb
 * read them: the GDB JIT descriptor list and the ELF objects on it, the
 * lines of /tmp/perf-PID.map, the records of jit-PID.dump and its marker
 * mapping in /proc/self/maps. (test/sym_check.sh runs the real perf and
 * gdb on test/jitsym.c.)
 */
#include "test.h"

#include <elf.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SINKS (XM_PERF_MAP | XM_PERF_JITDUMP | XM_GDB)

/* GDB's JIT interface as gdb reads it (the library defines the symbols). */
struct jit_code_entry {
    struct jit_code_entry *next_entry, *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};
struct jit_descriptor {
    uint32_t version, action_flag;
    struct jit_code_entry *relevant_entry, *first_entry;
};
extern struct jit_descriptor __jit_debug_descriptor;

static char dump_dir[64];

static void sym_cleanup(void)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    unlink(path);
    snprintf(path, sizeof path, "%s/jit-%d.dump", dump_dir, (int)getpid());
    unlink(path);
    rmdir(dump_dir);
}

/* The dump goes to a directory of the test's own (JITDUMPDIR), set before
 * the first heap with sinks opens it; both files go at exit. */
static void sym_setup(void)
{
    if (dump_dir[0])
        return;
    snprintf(dump_dir, sizeof dump_dir, "/tmp/xm-test-jit-%d", (int)getpid());
    mkdir(dump_dir, 0700);
    setenv("JITDUMPDIR", dump_dir, 1);
    atexit(sym_cleanup);
}

static xm_heap *sym_heap(const config *c, unsigned sinks)
{
    sym_setup();
    xm_options o = XM_OPTIONS_INIT;
    o.backend = c->backend;
    o.flags = c->flags | sinks;
    xm_heap *h = NULL;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK)
        printf("    xm_heap_create(%s): %s\n", c->name, xm_strerror(r));
    return h;
}

/* The function symbol of a registered object: name, address, size. */
static bool elf_symbol(const struct jit_code_entry *e, const char **name,
                       uintptr_t *addr, size_t *size)
{
    const char *elf = e->symfile_addr;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
    if (e->symfile_size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_type != ET_REL)
        return false;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(elf + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_size < 2 * sizeof(Elf64_Sym))
            continue;
        const Elf64_Sym *sym = (const Elf64_Sym *)(elf + sh[i].sh_offset) + 1;
        const Elf64_Shdr *text = &sh[sym->st_shndx];
        const Elf64_Shdr *str = &sh[sh[i].sh_link];
        if (ELF64_ST_TYPE(sym->st_info) != STT_FUNC ||
            !(text->sh_flags & SHF_EXECINSTR))
            return false;
        *name = elf + str->sh_offset + sym->st_name;
        *addr = (uintptr_t)(text->sh_addr + sym->st_value);
        *size = sym->st_size;
        return true;
    }
    return false;
}

/* Name registered with GDB for rx (NULL if none); *count: entries at rx. */
static const char *gdb_name(uintptr_t rx, int *count, size_t *size)
{
    const char *found = NULL;
    *count = 0;
    for (struct jit_code_entry *e = __jit_debug_descriptor.first_entry; e;
         e = e->next_entry) {
        const char *n;
        uintptr_t a;
        size_t s;
        if (elf_symbol(e, &n, &a, &s) && a == rx) {
            found = n;
            *size = s;
            ++*count;
        }
    }
    return found;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

/* Lines of the perf map naming rx with name. */
static int map_lines(int pid, uintptr_t rx, size_t size, const char *name)
{
    char path[64], want[1200];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", pid);
    snprintf(want, sizeof want, "%lx %zx %s\n", (unsigned long)rx, size, name);
    size_t len;
    char *s = slurp(path, &len);
    int n = 0;
    for (char *p = s; p && (p = strstr(p, want)); p += strlen(want))
        if (p == s || p[-1] == '\n')
            n++;
    free(s);
    return n;
}

/* jitdump records for rx with name whose code bytes begin with code[0..n). */
static int dump_records(uintptr_t rx, const char *name, const void *code,
                        size_t n, bool *valid)
{
    char path[128];
    snprintf(path, sizeof path, "%s/jit-%d.dump", dump_dir, (int)getpid());
    size_t len;
    unsigned char *s = (unsigned char *)slurp(path, &len);
    *valid = false;
    if (!s || len < 40) {
        free(s);
        return 0;
    }
    uint32_t magic, hsize, pid;
    memcpy(&magic, s, 4);
    memcpy(&hsize, s + 8, 4);
    memcpy(&pid, s + 20, 4);
    *valid = magic == 0x4A695444u && hsize == 40 && pid == (uint32_t)getpid();
    int found = 0;
    for (size_t off = hsize; off + 16 <= len;) {
        uint32_t id, total;
        memcpy(&id, s + off, 4);
        memcpy(&total, s + off + 4, 4);
        if (total < 16 || off + total > len) {
            *valid = false;
            break;
        }
        if (id == 0) { /* JIT_CODE_LOAD */
            uint64_t vma, code_size;
            memcpy(&vma, s + off + 24, 8);
            memcpy(&code_size, s + off + 40, 8);
            const char *nm = (const char *)s + off + 56;
            size_t nl = strlen(nm) + 1;
            if (56 + nl + code_size != total)
                *valid = false;
            if (vma == rx && !strcmp(nm, name) && code_size >= n &&
                !memcmp(s + off + 56 + nl, code, n))
                found++;
        }
        off += total;
    }
    free(s);
    return found;
}

/* The jitdump marker: a read+exec private mapping of the dump file. */
static bool marker_mapped(void)
{
    char want[128];
    snprintf(want, sizeof want, "/jit-%d.dump", (int)getpid());
    size_t len;
    char *s = slurp("/proc/self/maps", &len);
    bool ok = false;
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char perms[8] = "";
        sscanf(line, "%*s %7s", perms);
        if (strstr(line, want) && !strcmp(perms, "r-xp"))
            ok = true;
        line = nl ? nl + 1 : NULL;
    }
    free(s);
    return ok;
}

/* Heaps of successive configurations reuse addresses: names carry the
 * configuration so the files' earlier lines do not count. */
static const char *nm(const config *c, const char *base)
{
    static char buf[8][64];
    static unsigned k;
    char *b = buf[k++ % 8];
    snprintf(b, 64, "%s_%s", base, c->name);
    return b;
}

static xm_heap *async_heap;
static void *async_rx;
static void free_in_handler(int sig)
{
    (void)sig;
    (void)xm_free_async(async_heap, async_rx);
}

static void sinks_follow_block_life(const config *c)
{
    xm_heap *h = sym_heap(c, SINKS);
    CHECK(h);
    unsigned char code[RET_LEN];
    int n;
    size_t gsize = 0;

    /* named before publish: nothing emitted until publish */
    xm_block a;
    CHECK_OK(xm_alloc(h, 40, 0, &a));
    emit_ret(a.rw, 7);
    emit_ret(code, 7);
    CHECK_OK(xm_name(h, a.rx, nm(c, "xm_t_a")));
    CHECK(xm__fast_gate(h) & 2u); /* XM__G_NAMES: no fast path skips a name */
    bool valid;
    CHECK(gdb_name((uintptr_t)a.rx, &n, &gsize) == NULL);
    CHECK_EQ(map_lines(getpid(), (uintptr_t)a.rx, a.size, nm(c, "xm_t_a")), 0);
    CHECK_EQ(dump_records((uintptr_t)a.rx, nm(c, "xm_t_a"), code, RET_LEN, &valid), 0);
    CHECK_OK(xm_publish(h, a.rx, XM_PROT_RX));
    CHECK_EQ(call_at(a.rx), 7);
    const char *g = gdb_name((uintptr_t)a.rx, &n, &gsize);
    CHECK(g && !strcmp(g, nm(c, "xm_t_a")));
    CHECK_EQ(n, 1);
    CHECK_EQ(gsize, a.size);
    CHECK_EQ(map_lines(getpid(), (uintptr_t)a.rx, a.size, nm(c, "xm_t_a")), 1);
    CHECK_EQ(dump_records((uintptr_t)a.rx, nm(c, "xm_t_a"), code, RET_LEN, &valid), 1);
    CHECK(valid);
    CHECK(marker_mapped());

    /* named after publish: at once; renamed: replaced */
    xm_block b;
    CHECK_OK(make_fn(h, 100, 9, &b));
    emit_ret(code, 9);
    CHECK_OK(xm_name(h, b.rx, nm(c, "xm_t_b")));
    g = gdb_name((uintptr_t)b.rx, &n, &gsize);
    CHECK(g && !strcmp(g, nm(c, "xm_t_b")));
    CHECK_EQ(dump_records((uintptr_t)b.rx, nm(c, "xm_t_b"), code, RET_LEN, &valid), 1);
    CHECK_OK(xm_name(h, b.rx, nm(c, "xm_t_b2")));
    g = gdb_name((uintptr_t)b.rx, &n, &gsize);
    CHECK(g && !strcmp(g, nm(c, "xm_t_b2")));
    CHECK_EQ(n, 1);
    CHECK_EQ(map_lines(getpid(), (uintptr_t)b.rx, b.size, nm(c, "xm_t_b2")), 1);
    CHECK_EQ(dump_records((uintptr_t)b.rx, nm(c, "xm_t_b2"), code, RET_LEN, &valid), 1);
    CHECK(valid);
    CHECK_EQ(call_at(b.rx), 9);

    /* free unregisters */
    CHECK_OK(xm_free(h, a.rx));
    CHECK(gdb_name((uintptr_t)a.rx, &n, &gsize) == NULL);
    CHECK(gdb_name((uintptr_t)b.rx, &n, &gsize) != NULL);

    /* async free from a handler: unregistered when the free completes */
    async_heap = h;
    async_rx = b.rx;
    struct sigaction sa = {0}, old;
    sa.sa_handler = free_in_handler;
    sigaction(SIGUSR1, &sa, &old);
    raise(SIGUSR1);
    sigaction(SIGUSR1, &old, NULL);
    CHECK(gdb_name((uintptr_t)b.rx, &n, &gsize) != NULL);
    CHECK_OK(xm_purge(h));
    CHECK(gdb_name((uintptr_t)b.rx, &n, &gsize) == NULL);
    CHECK(!(xm__fast_gate(h) & 2u)); /* the last name is gone */

    /* destroy unregisters what is still named; another heap is untouched */
    xm_heap *h2 = sym_heap(c, SINKS);
    CHECK(h2);
    xm_block c1, c2;
    CHECK_OK(make_fn(h, 64, 1, &c1));
    CHECK_OK(make_fn(h2, 64, 2, &c2));
    CHECK_OK(xm_name(h, c1.rx, nm(c, "xm_t_c1")));
    CHECK_OK(xm_name(h2, c2.rx, nm(c, "xm_t_c2")));
    xm_heap_destroy(h);
    CHECK(gdb_name((uintptr_t)c1.rx, &n, &gsize) == NULL);
    g = gdb_name((uintptr_t)c2.rx, &n, &gsize);
    CHECK(g && !strcmp(g, nm(c, "xm_t_c2")));
    CHECK_EQ(call_at(c2.rx), 2);
    CHECK(audit_clean(c->flags & XM_STRICT));
    xm_heap_destroy(h2);
    CHECK(gdb_name((uintptr_t)c2.rx, &n, &gsize) == NULL);
}

TEST(name_sinks_follow_block_life)
{
    FOR_CONFIGS(sinks_follow_block_life);
}

TEST(name_bad_input_changes_nothing)
{
    xm_heap *h = sym_heap(&configs[0], SINKS);
    CHECK(h);
    xm_block b, d;
    CHECK_OK(make_fn(h, 64, 3, &b));
    CHECK_OK(xm_alloc_data(h, 64, 0, &d));
    CHECK_OK(xm_name(h, b.rx, "xm_t_keep"));
    char longname[XM_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    xm_stats s0, s1;
    CHECK_OK(xm_heap_stats(h, &s0));
    CHECK_EQ(xm_name(NULL, b.rx, "x"), XM_EINVAL);
    CHECK_EQ(xm_name(h, NULL, "x"), XM_EINVAL);
    CHECK_EQ(xm_name(h, b.rx, NULL), XM_EINVAL);
    CHECK_EQ(xm_name(h, b.rx, ""), XM_EINVAL);
    CHECK_EQ(xm_name(h, b.rx, longname), XM_EINVAL);
    CHECK_EQ(xm_name(h, b.rx, "two\nlines"), XM_EINVAL);
    CHECK_EQ(xm_name(h, d.rx, "data"), XM_EINVAL);
    CHECK_EQ(xm_name(h, (char *)b.rx + 16, "mid"), XM_EBADPTR);
    CHECK_EQ(xm_name(h, &s0, "elsewhere"), XM_EBADPTR);
    CHECK_OK(xm_heap_stats(h, &s1));
    CHECK_EQ(s1.syscalls, s0.syscalls);
    int n;
    size_t gs;
    const char *g = gdb_name((uintptr_t)b.rx, &n, &gs);
    CHECK(g && !strcmp(g, "xm_t_keep"));
    longname[XM_NAME_MAX] = 0; /* exactly the limit: accepted */
    CHECK_OK(xm_name(h, b.rx, longname));
    g = gdb_name((uintptr_t)b.rx, &n, &gs);
    CHECK(g && strlen(g) == XM_NAME_MAX);
    CHECK_OK(xm_free(h, b.rx));
    CHECK_EQ(xm_name(h, b.rx, "freed"), XM_EBADPTR);
    xm_heap_destroy(h);

    /* no sink: arguments checked, nothing recorded, no system call */
    xm_heap *q = sym_heap(&configs[0], 0);
    CHECK(q);
    CHECK_OK(make_fn(q, 64, 4, &b));
    CHECK_OK(xm_heap_stats(q, &s0));
    CHECK_OK(xm_name(q, b.rx, "xm_t_quiet"));
    CHECK_EQ(xm_name(q, b.rx, ""), XM_EINVAL);
    CHECK_OK(xm_heap_stats(q, &s1));
    CHECK_EQ(s1.syscalls, s0.syscalls);
    CHECK(gdb_name((uintptr_t)b.rx, &n, &gs) == NULL);
    xm_heap_destroy(q);
}

TEST(name_sinks_from_environment)
{
    static const struct {
        const char *perf, *gdb;
        unsigned want;
    } cases[] = {
        {"map", NULL, XM_PERF_MAP},
        {"jitdump", "1", XM_PERF_JITDUMP | XM_GDB},
        {"map,jitdump", "0", XM_PERF_MAP | XM_PERF_JITDUMP},
        {"bogus,map", "yes", XM_PERF_MAP},
        {"", "1", XM_GDB},
    };
    sym_setup();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("XM_PERF", cases[i].perf, 1);
        if (cases[i].gdb)
            setenv("XM_GDB", cases[i].gdb, 1);
        else
            unsetenv("XM_GDB");
        xm_heap *h = make_heap(&configs[0], 0, 0);
        unsetenv("XM_PERF");
        unsetenv("XM_GDB");
        CHECK(h);
        xm_stats s;
        CHECK_OK(xm_heap_stats(h, &s));
        xm_heap_destroy(h);
        CHECK_EQ(s.flags & SINKS, cases[i].want);
    }
}

/* A failed sink write or allocation leaves the previous name in place. */
TEST(name_failure_keeps_previous_name)
{
    xm_heap *h = sym_heap(&configs[0], SINKS);
    CHECK(h);
    xm_block b;
    CHECK_OK(make_fn(h, 64, 5, &b));
    CHECK_OK(xm_name(h, b.rx, "xm_t_old"));
    int n;
    size_t gs;
    for (long k = 1; k <= 8; k++) {
        xm__os_inject(k, 0);
        xm_result r = xm_name(h, b.rx, "xm_t_new");
        bool fired = xm__os_injected() > 0;
        xm__os_inject(0, 0);
        const char *g = gdb_name((uintptr_t)b.rx, &n, &gs);
        CHECK(g);
        CHECK_EQ(n, 1);
        if (r == XM_OK) {
            CHECK(!strcmp(g, "xm_t_new"));
            break; /* past the last system call of the rename */
        }
        CHECK_EQ(r, XM_EOS);
        CHECK(fired);
        CHECK(!strcmp(g, "xm_t_old"));
    }
    xm__mem_inject(1);
    xm_result r = xm_name(h, b.rx, "xm_t_nomem");
    xm__mem_inject(0);
    CHECK_EQ(r, XM_ENOMEM);
    const char *g = gdb_name((uintptr_t)b.rx, &n, &gs);
    CHECK(g && !strcmp(g, "xm_t_new"));
    CHECK_EQ(call_at(b.rx), 5);
    xm_heap_destroy(h);
}

/* After fork, a FLIP child's names go to the child's own files; a frozen
 * DUAL child refuses xm_name; the parent's files and list are untouched. */
static xm_heap *fork_heap;
static void *fork_rx;
static const config *fork_cfg;
static int child_renames(void *arg)
{
    (void)arg;
    xm_result r = xm_name(fork_heap, fork_rx, nm(fork_cfg, "xm_t_child"));
    xm_stats s;
    xm_heap_stats(fork_heap, &s);
    if (s.backend == XM_BACKEND_DUAL)
        return r == XM_ESTATE ? 0 : 10 + (int)r;
    if (r != XM_OK)
        return 20 + (int)r;
    xm_block blk;
    if (xm_query(fork_heap, fork_rx, &blk) != XM_OK)
        return 30;
    if (map_lines(getpid(), (uintptr_t)fork_rx, blk.size, nm(fork_cfg, "xm_t_child")) != 1)
        return 31;
    char path[128];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    unlink(path);
    snprintf(path, sizeof path, "%s/jit-%d.dump", dump_dir, (int)getpid());
    unlink(path);
    return 0;
}

static void fork_keeps_files_apart(const config *c)
{
    fork_cfg = c;
    xm_heap *h = sym_heap(c, SINKS);
    CHECK(h);
    xm_block b;
    CHECK_OK(make_fn(h, 64, 6, &b));
    CHECK_OK(xm_name(h, b.rx, nm(fork_cfg, "xm_t_parent")));
    fork_heap = h;
    fork_cfg = c;
    fork_rx = b.rx;
    CHECK_EQ(child_status(child_renames, NULL), 0);
    int n;
    size_t gs;
    const char *g = gdb_name((uintptr_t)b.rx, &n, &gs);
    CHECK(g && !strcmp(g, nm(fork_cfg, "xm_t_parent")));
    CHECK_EQ(map_lines(getpid(), (uintptr_t)b.rx, b.size, nm(fork_cfg, "xm_t_child")), 0);
    CHECK_OK(xm_name(h, b.rx, nm(fork_cfg, "xm_t_parent2"))); /* parent's files still work */
    CHECK_EQ(map_lines(getpid(), (uintptr_t)b.rx, b.size, nm(fork_cfg, "xm_t_parent2")), 1);
    xm_heap_destroy(h);
}

TEST(name_fork_keeps_files_apart)
{
    FOR_CONFIGS(fork_keeps_files_apart);
}
