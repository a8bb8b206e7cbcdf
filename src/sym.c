/* SPDX-License-Identifier: MIT */
/*
 * sym.c: names of JIT code for profilers and debuggers (xm_name).
 *
 * Three sinks, each enabled per heap by a flag or by the environment read
 * at xm_heap_create:
 *   - perf map (XM_PERF_MAP): "START SIZE name" lines appended to
 *     /tmp/perf-PID.map. perf reads it at report time for anonymous
 *     executable memory (FLIP); it ignores it for file mappings (DUAL's
 *     memfd view).
 *   - jitdump (XM_PERF_JITDUMP): $JITDUMPDIR/jit-PID.dump (default /tmp),
 *     perf's format: a header, then one JIT_CODE_LOAD record per name with
 *     the code bytes and a CLOCK_MONOTONIC timestamp. The file is also
 *     mapped read+exec once (the marker): perf record sees that mmap, and
 *     `perf inject --jit` finds the dump through it and turns each record
 *     into a small ELF file and an mmap event at the record's time. perf
 *     must record with -k mono for the clocks to agree.
 *   - GDB (XM_GDB): GDB's JIT interface. Every named, published block gets
 *     an in-memory ELF object (a NOBITS .text at the block's address and
 *     one function symbol) linked into __jit_debug_descriptor; gdb keeps a
 *     breakpoint in __jit_debug_register_code and reads the object when it
 *     is called. Free unlinks it the same way.
 *
 * Names are kept per heap in a small hash table keyed by rx, only when a
 * sink is on: a name given before xm_publish waits there and is emitted at
 * publish; free removes it. One process-wide lock guards the tables, the
 * sink files and the GDB list; it is taken after an arena's lock (publish
 * and free call in with the arena held), and by fork's prepare handler last.
 * The sink files belong to the process that opened them: after fork() the
 * child closes them and opens its own (perf files are named by pid).
 */
#include "internal.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct xm__sym {
    struct xm__sym *next;
    uintptr_t rx;
    size_t size;
    struct xm__jit_entry *gdb; /* registered object, or NULL */
    size_t len;
    char name[]; /* len bytes + NUL */
} xm__sym;

/* ---- GDB JIT interface (the names and layout are GDB's ABI) ----------- */

typedef struct xm__jit_entry {
    struct xm__jit_entry *next_entry, *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
} xm__jit_entry;

typedef struct xm__jit_descriptor {
    uint32_t version, action_flag; /* 0 none, 1 register, 2 unregister */
    xm__jit_entry *relevant_entry, *first_entry;
} xm__jit_descriptor;

/* The library uses the hidden names, so a host that defines the GDB symbols
 * itself (LLVM's JIT, another runtime) cannot interpose on them: each keeps
 * its own list, and gdb reads one descriptor per object file. */
__attribute__((visibility("hidden"))) xm__jit_descriptor xm__gdb_descriptor = {
    1, 0, NULL, NULL};
#if defined(__clang__)
#define XM__NOCLONE
#else
#define XM__NOCLONE __attribute__((noclone))
#endif
__attribute__((visibility("hidden"), noinline)) XM__NOCLONE void
xm__gdb_hook(void)
{
    __asm__ volatile("" ::: "memory"); /* gdb's breakpoint lands here */
}
extern xm__jit_descriptor __jit_debug_descriptor
    __attribute__((alias("xm__gdb_descriptor"), visibility("default")));
extern void __jit_debug_register_code(void)
    __attribute__((alias("xm__gdb_hook"), visibility("default")));

/* ---- process-wide state ------------------------------------------------ */

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static int map_fd = -1, dump_fd = -1;
static void *marker;
static size_t marker_len;
static uint64_t code_index;
static int stale; /* set in a fork child: the files are the parent's */

/* ---- the ELF object for GDB ------------------------------------------- */

static const char shstr[] = "\0.text\0.symtab\0.strtab\0.shstrtab";
enum { SH_TEXT = 1, SH_SYMTAB, SH_STRTAB, SH_SHSTRTAB, SH_COUNT };

/* A relocatable object: section headers, two symbols, the string tables.
 * .text is NOBITS at the block's address, so the object holds no code and
 * the symbol's value (an offset into .text) is 0. */
static xm__jit_entry *gdb_object(const xm__sym *s)
{
    size_t off_sh = sizeof(Elf64_Ehdr);
    size_t off_sym = off_sh + SH_COUNT * sizeof(Elf64_Shdr);
    size_t off_str = off_sym + 2 * sizeof(Elf64_Sym);
    size_t off_shstr = off_str + s->len + 2;
    size_t total = off_shstr + sizeof shstr;
    size_t head = (sizeof(xm__jit_entry) + 15) & ~(size_t)15;
    xm__jit_entry *e = xm__mem_calloc(1, head + total);
    if (!e)
        return NULL;
    char *elf = (char *)e + head;
    Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_ident[EI_OSABI] = ELFOSABI_SYSV;
    eh->e_type = ET_REL;
#if defined(__x86_64__)
    eh->e_machine = EM_X86_64;
#elif defined(__aarch64__)
    eh->e_machine = EM_AARCH64;
#endif
    eh->e_version = EV_CURRENT;
    eh->e_shoff = off_sh;
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_shentsize = sizeof(Elf64_Shdr);
    eh->e_shnum = SH_COUNT;
    eh->e_shstrndx = SH_SHSTRTAB;
    Elf64_Shdr *sh = (Elf64_Shdr *)(elf + off_sh);
    sh[SH_TEXT] = (Elf64_Shdr){.sh_name = 1, .sh_type = SHT_NOBITS,
                               .sh_flags = SHF_ALLOC | SHF_EXECINSTR,
                               .sh_addr = s->rx, .sh_size = s->size,
                               .sh_addralign = 16};
    sh[SH_SYMTAB] = (Elf64_Shdr){.sh_name = 7, .sh_type = SHT_SYMTAB,
                                 .sh_offset = off_sym,
                                 .sh_size = 2 * sizeof(Elf64_Sym),
                                 .sh_link = SH_STRTAB, .sh_info = 1,
                                 .sh_addralign = 8,
                                 .sh_entsize = sizeof(Elf64_Sym)};
    sh[SH_STRTAB] = (Elf64_Shdr){.sh_name = 15, .sh_type = SHT_STRTAB,
                                 .sh_offset = off_str, .sh_size = s->len + 2,
                                 .sh_addralign = 1};
    sh[SH_SHSTRTAB] = (Elf64_Shdr){.sh_name = 23, .sh_type = SHT_STRTAB,
                                   .sh_offset = off_shstr,
                                   .sh_size = sizeof shstr, .sh_addralign = 1};
    Elf64_Sym *sym = (Elf64_Sym *)(elf + off_sym);
    sym[1] = (Elf64_Sym){.st_name = 1,
                         .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
                         .st_shndx = SH_TEXT, .st_value = 0,
                         .st_size = s->size};
    memcpy(elf + off_str + 1, s->name, s->len + 1);
    memcpy(elf + off_shstr, shstr, sizeof shstr);
    e->symfile_addr = elf;
    e->symfile_size = total;
    return e;
}

static void gdb_register(xm__jit_entry *e)
{
    xm__jit_descriptor *d = &xm__gdb_descriptor;
    e->prev_entry = NULL;
    e->next_entry = d->first_entry;
    if (e->next_entry)
        e->next_entry->prev_entry = e;
    d->first_entry = e;
    d->relevant_entry = e;
    d->action_flag = 1;
    xm__gdb_hook();
}

static void gdb_unregister(xm__jit_entry *e)
{
    xm__jit_descriptor *d = &xm__gdb_descriptor;
    if (e->prev_entry)
        e->prev_entry->next_entry = e->next_entry;
    else
        d->first_entry = e->next_entry;
    if (e->next_entry)
        e->next_entry->prev_entry = e->prev_entry;
    d->relevant_entry = e;
    d->action_flag = 2;
    xm__gdb_hook();
    d->relevant_entry = NULL;
    d->action_flag = 0;
    xm__mem_free(e);
}

/* ---- perf files --------------------------------------------------------- */

/* perf's jitdump layout (tools/perf/util/jitdump.h) */
typedef struct {
    uint32_t magic, version, total_size, elf_mach, pad1, pid;
    uint64_t timestamp, flags;
} xm__jd_header;
typedef struct {
    uint32_t id, total_size;
    uint64_t timestamp;
    uint32_t pid, tid;
    uint64_t vma, code_addr, code_size, code_index;
} xm__jd_load;
#define XM__JD_MAGIC 0x4A695444u /* "JiTD" */
#define XM__JD_CODE_LOAD 0u

static void close_files(xm_heap *h)
{
    if (marker)
        (void)xm__os_unmap(&h->osc, marker, marker_len);
    if (map_fd >= 0)
        (void)xm__os_close(&h->osc, map_fd);
    if (dump_fd >= 0)
        (void)xm__os_close(&h->osc, dump_fd);
    marker = NULL;
    map_fd = dump_fd = -1;
    stale = 0;
}

/* Opens the files h's sinks need, once per process. 0 or -errno. */
static int open_files(xm_heap *h)
{
    if (stale)
        close_files(h);
    char path[4096];
    if ((h->flags & XM_PERF_MAP) && map_fd < 0) {
        snprintf(path, sizeof path, "/tmp/perf-%d.map", xm__os_getpid(&h->osc));
        int fd = xm__os_open_out(&h->osc, path, 1);
        if (fd < 0)
            return fd;
        map_fd = fd;
    }
    if ((h->flags & XM_PERF_JITDUMP) && dump_fd < 0) {
        const char *dir = getenv("JITDUMPDIR");
        int pid = xm__os_getpid(&h->osc);
        int n = snprintf(path, sizeof path, "%s/jit-%d.dump",
                         dir && *dir ? dir : "/tmp", pid);
        if (n < 0 || (size_t)n >= sizeof path)
            return -22; /* EINVAL: directory name too long */
        int fd = xm__os_open_out(&h->osc, path, 0);
        if (fd < 0)
            return fd;
        xm__jd_header hd = {XM__JD_MAGIC, 1, sizeof hd, 0, 0, (uint32_t)pid,
                            xm__os_monotonic_ns(), 0};
#if defined(__x86_64__)
        hd.elf_mach = EM_X86_64;
#elif defined(__aarch64__)
        hd.elf_mach = EM_AARCH64;
#endif
        xm__iov v = {&hd, sizeof hd};
        int e = xm__os_writev_all(&h->osc, fd, &v, 1);
        int err = 0;
        void *m = e ? NULL : xm__os_map_exec_private(&h->osc, fd, XM__PAGE, &err);
        if (!m) {
            (void)xm__os_close(&h->osc, fd);
            return e ? e : -err;
        }
        dump_fd = fd;
        marker = m;
        marker_len = XM__PAGE;
    }
    return 0;
}

static int emit_perf(xm_heap *h, const xm__sym *s)
{
    if (h->flags & XM_PERF_JITDUMP) {
        xm__jd_load r = {XM__JD_CODE_LOAD, 0, xm__os_monotonic_ns(),
                         (uint32_t)xm__os_getpid(&h->osc),
                         (uint32_t)xm__os_gettid(&h->osc), s->rx, s->rx,
                         s->size, code_index};
        r.total_size = (uint32_t)(sizeof r + s->len + 1 + s->size);
        xm__iov v[3] = {{&r, sizeof r}, {s->name, s->len + 1},
                        {(const void *)s->rx, s->size}};
        int e = xm__os_writev_all(&h->osc, dump_fd, v, 3);
        if (e)
            return e;
        code_index++;
    }
    if (h->flags & XM_PERF_MAP) {
        char head[48];
        int n = snprintf(head, sizeof head, "%lx %zx ", (unsigned long)s->rx,
                         s->size);
        xm__iov v[3] = {{head, (size_t)n}, {s->name, s->len}, {"\n", 1}};
        int e = xm__os_writev_all(&h->osc, map_fd, v, 3);
        if (e)
            return e;
    }
    return 0;
}

/* ---- the per-heap table ------------------------------------------------- */

static size_t slot_of(const xm_heap *h, uintptr_t rx)
{
    return (size_t)((rx >> XM__GRAN_SHIFT) * 0x9E3779B97F4A7C15ull >> 20) &
           (h->symcap - 1);
}

static xm__sym **find(xm_heap *h, uintptr_t rx)
{
    if (!h->symcap)
        return NULL;
    xm__sym **pp = &h->syms[slot_of(h, rx)];
    while (*pp && (*pp)->rx != rx)
        pp = &(*pp)->next;
    return *pp ? pp : NULL;
}

/* Room for one more entry; 0 or -1 (no memory, nothing changed). */
static int reserve_slot(xm_heap *h)
{
    size_t count = atomic_load_explicit(&h->nsyms, memory_order_relaxed);
    if (count < h->symcap)
        return 0;
    size_t cap = h->symcap ? 2 * h->symcap : 64;
    xm__sym **nb = xm__mem_calloc(cap, sizeof *nb);
    if (!nb)
        return -1;
    xm__sym **old = h->syms;
    size_t oldcap = h->symcap;
    h->syms = nb;
    h->symcap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        for (xm__sym *s = old[i], *next; s; s = next) {
            next = s->next;
            size_t k = slot_of(h, s->rx);
            s->next = nb[k];
            nb[k] = s;
        }
    }
    xm__mem_free(old);
    return 0;
}

static void drop(xm_heap *h, xm__sym **pp)
{
    xm__sym *s = *pp;
    *pp = s->next;
    if (s->gdb)
        gdb_unregister(s->gdb);
    xm__mem_free(s);
    if (atomic_fetch_sub_explicit(&h->nsyms, 1, memory_order_relaxed) == 1)
        atomic_fetch_and(&h->gate, ~(unsigned)XM__G_NAMES);
}

/* Emits s (published now): perf records, then the GDB object. */
static int publish_sym(xm_heap *h, xm__sym *s)
{
    xm__jit_entry *e = NULL;
    if (h->flags & XM_GDB) {
        e = gdb_object(s);
        if (!e)
            return -12; /* ENOMEM */
    }
    int r = emit_perf(h, s);
    if (r) {
        xm__mem_free(e);
        return r;
    }
    if (e) {
        gdb_register(e);
        s->gdb = e;
    }
    return 0;
}

void xm__sym_init(xm_heap *h)
{
    const char *perf = getenv("XM_PERF");
    if (perf) {
        /* a comma-separated list; unknown words are ignored */
        for (const char *w = perf; *w;) {
            size_t n = strcspn(w, ",");
            if (n == 3 && !memcmp(w, "map", 3))
                h->flags |= XM_PERF_MAP;
            if (n == 7 && !memcmp(w, "jitdump", 7))
                h->flags |= XM_PERF_JITDUMP;
            w += n + (w[n] == ',');
        }
    }
    const char *gdb = getenv("XM_GDB");
    if (gdb && gdb[0] == '1' && !gdb[1])
        h->flags |= XM_GDB;
}

xm_result xm_name(xm_heap *h, void *rx, const char *name)
{
    if (!h || !rx || !name)
        return XM_EINVAL;
    size_t len = strnlen(name, XM_NAME_MAX + 1);
    if (len == 0 || len > XM_NAME_MAX)
        return XM_EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return XM_EINVAL;
    xm_result r;
    xm__pack *p;
    uint32_t g;
    xm__arena *a = xm__enter_at(h, true, XM__AT_BLOCK, (uintptr_t)rx, 0, &p, &g, &r);
    if (r == XM_OK && p->kind != XM__K_CODE)
        r = XM_EINVAL;
    if (r != XM_OK || !(h->flags & XM__SYM_FLAGS))
        return xm__leave(h, a, r);

    xm__sym *s = xm__mem_alloc(sizeof *s + len + 1);
    if (!s)
        return xm__leave(h, a, XM_ENOMEM);
    s->next = NULL;
    s->rx = (uintptr_t)rx;
    s->size = xm__block_size(p, g);
    s->gdb = NULL;
    s->len = len;
    memcpy(s->name, name, len + 1);
    pthread_mutex_lock(&sym_lock);
    int e = open_files(h);
    if (!e && reserve_slot(h))
        e = -12;
    if (!e && xm__bit_get(p->pub, g))
        e = publish_sym(h, s);
    if (e) {
        pthread_mutex_unlock(&sym_lock);
        xm__mem_free(s);
        return xm__leave(h, a, e == -12 ? XM_ENOMEM : XM_EOS);
    }
    xm__sym **old = find(h, s->rx);
    if (old)
        drop(h, old);
    xm__sym **head = &h->syms[slot_of(h, s->rx)];
    s->next = *head;
    *head = s;
    if (atomic_fetch_add_explicit(&h->nsyms, 1, memory_order_relaxed) == 0)
        atomic_fetch_or(&h->gate, XM__G_NAMES);
    pthread_mutex_unlock(&sym_lock);
    return xm__leave(h, a, XM_OK);
}

/* The block at rx was just published (its arena locked). Emission here is
 * best effort: the publish has happened and stands. */
void xm__sym_published(xm_heap *h, uintptr_t rx)
{
    pthread_mutex_lock(&sym_lock);
    xm__sym **pp = find(h, rx);
    if (pp && !open_files(h))
        (void)publish_sym(h, *pp);
    pthread_mutex_unlock(&sym_lock);
}

/* The block at rx was freed (its arena locked). */
void xm__sym_freed(xm_heap *h, uintptr_t rx)
{
    pthread_mutex_lock(&sym_lock);
    xm__sym **pp = find(h, rx);
    if (pp)
        drop(h, pp);
    pthread_mutex_unlock(&sym_lock);
}

void xm__sym_destroy(xm_heap *h)
{
    pthread_mutex_lock(&sym_lock);
    for (size_t i = 0; i < h->symcap; i++)
        while (h->syms[i])
            drop(h, &h->syms[i]);
    xm__mem_free(h->syms);
    h->syms = NULL;
    h->symcap = 0;
    pthread_mutex_unlock(&sym_lock);
}

void xm__sym_fork_prepare(void) { pthread_mutex_lock(&sym_lock); }
void xm__sym_fork_parent(void) { pthread_mutex_unlock(&sym_lock); }
void xm__sym_fork_child(void)
{
    if (map_fd >= 0 || dump_fd >= 0 || marker)
        stale = 1;
    pthread_mutex_unlock(&sym_lock);
}
