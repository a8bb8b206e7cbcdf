/* SPDX-License-Identifier: MIT */
/*
 * execmem.h: a W^X code heap for JIT compilers, with the Linux kernel's
 * reset-on-free design (VM_FLUSH_RESET_PERMS, bpf_prog_pack, lazy purge).
 *
 * Life of a block:
 *
 *   xm_alloc()    -> bytes at `rx` hold traps and do not run; the caller writes
 *                    the code into `rw` (a separate staging buffer in DUAL),
 *                    computing addresses against `rx`.
 *   xm_publish()  -> the code appears at `rx` and runs; `rw` is gone
 *                    (XM_INPLACE: `rw` stays until free; what is written
 *                    there later reaches `rx` with xm_commit()).
 *   xm_patch()    -> rewrites bytes of a published block (not safe against a
 *                    thread executing those very bytes at that moment).
 *   xm_free()     -> every byte at `rx` traps at once (INT3 fill on x86-64);
 *                    dropping page rights is batched and done at purge time.
 *
 * Every call is thread-safe. xm_free_async() is also async-signal-safe.
 *
 * Fork: with the DUAL backend the child gets a private snapshot of the code as
 * it was at fork() (taken by a pthread_atfork prepare handler under the heap
 * lock), so neither side can change the other's code. In the child the heap is
 * frozen: published code runs, xm_query/xm_heap_stats/xm_heap_destroy work,
 * every other call returns XM_ESTATE. A FLIP heap uses private memory only and
 * stays fully usable in the child.
 */
#ifndef EXECMEM_H
#define EXECMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(XM_BUILDING) && defined(__GNUC__)
#define XM_API __attribute__((visibility("default")))
#else
#define XM_API
#endif

#define XM_VERSION_MAJOR 0
#define XM_VERSION_MINOR 2
#define XM_VERSION_PATCH 0
#define XM_VERSION_NUMBER \
    (XM_VERSION_MAJOR * 10000u + XM_VERSION_MINOR * 100u + XM_VERSION_PATCH)

/* Returns XM_VERSION_NUMBER of the library actually linked. */
XM_API unsigned xm_version(void);

/* Result codes: one list, values are only ever appended. */
#define XM_RESULT_MAP(X)                                                        \
    X(XM_OK, "success")                                                         \
    X(XM_EINVAL, "invalid argument")                                            \
    X(XM_ENOMEM, "out of memory or address space")                              \
    X(XM_EBADPTR, "not the start of a live block of this heap")                 \
    X(XM_ESTATE, "block or heap in the wrong state for this call")              \
    X(XM_ERANGE, "byte range not inside one block")                             \
    X(XM_EPERM, "the OS refused executable memory (SELinux, MDWE, noexec)")     \
    X(XM_ENOTSUP, "backend or feature not available here")                      \
    X(XM_EOS, "unexpected operating system error")

typedef enum {
#define XM__ENUM(name, text) name,
    XM_RESULT_MAP(XM__ENUM)
#undef XM__ENUM
    XM_RESULT_COUNT_
} xm_result;

/* Never NULL, also for values outside the enum. */
XM_API const char *xm_strerror(xm_result r);
/* errno of the last failed system call made by this thread inside execmem
 * (0 if none): for diagnostics when a call returned XM_EOS or XM_EPERM. */
XM_API int xm_last_errno(void);

typedef enum {
    XM_BACKEND_AUTO = 0, /* DUAL where the system allows code in a memfd;
                            FLIP only where it refuses it (no memfd_create,
                            no /proc to reopen through, the executable view
                            refused: SELinux, noexec). A shortage is an
                            error, never a switch to FLIP: out of
                            descriptors XM_EOS (xm_last_errno() EMFILE or
                            ENFILE), out of memory or RLIMIT_AS XM_ENOMEM */
    XM_BACKEND_DUAL,     /* one memfd: executable view + separate writable alias */
    XM_BACKEND_FLIP      /* anonymous memory whose rights change with mprotect */
} xm_backend;

/* Flags for xm_options.flags. Unknown bits are refused with XM_EINVAL. */
#define XM_STRICT 0x1u /* DUAL: no writable mapping of published bytes ever
                          exists; writes go through pwrite() on the memfd. */
#define XM_INPLACE 0x2u /* every block's rw stays valid until free, at one
                          fixed distance from rx (rw - rx is the same for
                          every block of the heap: xm_alias_offset), for
                          JITs built around one executable_offset.
                          DUAL: rw is the block's address in the persistent
                          writable alias; writes appear at rx at once and
                          xm_publish/xm_commit only sync caches. GIVES UP
                          "not executable until published": an
                          unpublished block's bytes run as written, and the
                          alias stays writable.
                          DUAL + XM_STRICT and FLIP: rw is a private,
                          never-executable copy of the block in a range
                          reserved alongside the code range (committed as
                          used); the code changes only when the library
                          copies it in: xm_publish (the whole block) and
                          xm_commit (a range). Not executable until
                          published holds. Costs: the copy's memory (one
                          page of private memory per page of code in
                          use) and one copy per publish or commit (STRICT:
                          one pwrite). */
/* Symbol sinks for xm_name (also enabled by the environment at heap
 * creation: XM_PERF=map, XM_PERF=jitdump, XM_PERF=map,jitdump, XM_GDB=1). */
#define XM_PERF_MAP 0x4u     /* lines in /tmp/perf-PID.map (perf reads it for
                                anonymous memory: the FLIP backend) */
#define XM_PERF_JITDUMP 0x8u /* records in $JITDUMPDIR/jit-PID.dump (default
                                /tmp), for `perf inject --jit` (DUAL code
                                lives in a memfd: perf needs this) */
#define XM_GDB 0x10u         /* in-memory ELF objects registered with GDB's
                                JIT interface (__jit_debug_register_code) */
/* Protection keys (x86-64 PKU): DUAL only, combinable with XM_INPLACE. The
 * writable alias is tagged with a key of its own that denies access in
 * every thread's PKRU; the library allows it for the calling thread only
 * inside the calls that write code (alloc, publish, free, patch, live
 * patch, purge and the drain of xm_free_async at any call) and restores
 * that thread's previous PKRU before returning, on every path. A write
 * window (xm_write_begin) allows it for its thread until xm_write_end;
 * with XM_INPLACE, xm_alloc allows it for its thread until that thread
 * has published or freed every block it allocated. Any other write to the
 * alias faults: SIGSEGV, si_code SEGV_PKUERR. No system call per call.
 * Where the CPU or kernel has no protection keys (or on other
 * architectures): XM_ENOTSUP; all keys taken: XM_ENOMEM; with XM_STRICT
 * or FLIP: XM_EINVAL. AUTO never turns it on by itself. */
#define XM_PKEYS 0x20u
#define XM_FLAGS_ALL_ 0x3fu

/* Defaults: pass NULL to xm_heap_create, or start from XM_OPTIONS_INIT
 * (`xm_options o = XM_OPTIONS_INIT;`) and set the fields you need. In every
 * field but size, 0 means the default. size must be sizeof(xm_options):
 * a zero-filled xm_options (size 0) is refused with XM_EINVAL. */
typedef struct xm_options {
    size_t size;        /* sizeof(xm_options): set by XM_OPTIONS_INIT; any
                           other value (0 too): XM_EINVAL */
    size_t reserve;     /* address space reserved up front; 0: 1 GiB */
    const void *near;   /* non-NULL: every block within a direct call's
                           reach of it: +-2 GiB on x86-64 (rel32), +-128
                           MiB on arm64 (B/BL) */
    xm_backend backend; /* XM_BACKEND_AUTO by default */
    unsigned flags;     /* XM_STRICT, XM_INPLACE, XM_PERF_MAP,
                           XM_PERF_JITDUMP, XM_GDB, XM_PKEYS; 0: none */
    size_t lazy_limit;  /* freed mapped bytes kept before an automatic purge;
                           0: the larger of 8 MiB and a quarter of the
                           peak of the mapped bytes in use (after the heap
                           shrinks, each allocation from its freed ranges
                           lowers that peak by its size, down to what is
                           in use); SIZE_MAX: only xm_purge or exhaustion */
} xm_options;

#define XM_OPTIONS_INIT {sizeof(xm_options), 0, NULL, XM_BACKEND_AUTO, 0u, 0}

typedef struct xm_heap xm_heap;

typedef struct xm_block {
    void *rx;    /* where the code runs (and is addressed from) */
    void *rw;    /* where to write it before publishing: size bytes; NULL
                    once published (FLIP: equal to rx; XM_INPLACE: at the
                    heap's fixed distance from rx, until free) */
    size_t size; /* usable size, at least the size asked for: rw offers
                    (and rx holds) this many bytes */
} xm_block;

#define XM_PROT_R 1  /* publish a data block: read-only, never executable */
#define XM_PROT_RX 5 /* publish a code block: read + execute */

typedef struct xm_stats {
    xm_backend backend; /* the backend actually in use (never AUTO) */
    unsigned flags;
    size_t reserved_bytes;   /* address space reserved */
    size_t resident_bytes;   /* bytes of mapped code/data pages (live + cached) */
    size_t live_blocks, live_bytes; /* blocks not freed; their usable sizes */
    size_t quarantine_bytes; /* freed pages still mapped, awaiting purge */
    uint64_t allocs, frees, async_frees, publishes, patches, purges;
                          /* frees: every completed free, xm_free_async's
                             included; async_frees: the xm_free_async
                             requests among them */
    uint64_t syscalls;    /* every system call this heap made */
    uint64_t revocations; /* calls among them that removed a right from
                             present pages (each may cost a TLB shootdown) */
    /* additions (not in the original contract) */
    uint64_t purge_runs;  /* spans released by purges, one pair of system
                             calls each: contiguous freed runs, with the
                             released gaps a purge bridged between them */
    size_t staging_bytes; /* bytes of staging buffers of unpublished blocks */
} xm_stats;

/* Creates a heap. opt may be NULL (all defaults). On failure *out is NULL.
 * XM_EINVAL: bad options (opt->size not sizeof(xm_options), unknown flag
 * bits, unknown backend, reserve out of range); XM_ENOTSUP: asked-for backend unavailable;
 * XM_EPERM: the OS refuses executable memory entirely. */
XM_API xm_result xm_heap_create(const xm_options *opt, xm_heap **out);
/* Unmaps the heap's code, its views and its descriptors (a small heap's
 * metadata mapping, and the first page of its reserve and of its alias as
 * PROT_NONE anonymous pages, are kept for the next heap: README, guarantee
 * 11). NULL is a no-op. Neither h nor any block may be used afterwards. */
XM_API void xm_heap_destroy(xm_heap *h);

/* A code block of at least `size` bytes. align: 0 for the default (16), else
 * a power of two up to the page size. Executing rx before xm_publish traps. */
XM_API xm_result xm_alloc(xm_heap *h, size_t size, size_t align, xm_block *out);
/* The same for read-only data; its pages are never executable. */
XM_API xm_result xm_alloc_data(xm_heap *h, size_t size, size_t align,
                               xm_block *out);
/* Makes the block run (XM_PROT_RX, code blocks) or readable (XM_PROT_R, data
 * blocks) at rx, coherently for every thread. Publishing twice: XM_ESTATE. */
XM_API xm_result xm_publish(xm_heap *h, void *rx, int prot);
/* Allocation and publish in one call, for code that is complete before
 * its address is known (position-independent code, a relocated or cached
 * image, a trampoline template): a block of at least len bytes holding the
 * len bytes at src, published as code (XM_PROT_RX) or read-only data
 * (XM_PROT_R); the bytes past len are traps. out->rw is NULL (XM_INPLACE:
 * the block's rw, as xm_alloc gives it). DUAL (not XM_STRICT) copies src
 * straight into place, as xm_publish copies a staging buffer: no staging
 * buffer is filled, written and copied, so it costs about one pass over
 * the bytes fewer than xm_alloc + xm_publish. Other heaps do exactly
 * xm_alloc, a copy and xm_publish (freeing the block if the publish
 * fails). src may overlap *out; it is read under a lock of the heap, after
 * its pages were touched once (keep it resident: a file mapping that
 * shrinks meanwhile faults there). Errors as xm_alloc's and xm_publish's
 * (XM_EINVAL: NULL argument, len 0, bad align or prot); on failure nothing
 * is allocated. */
XM_API xm_result xm_load(xm_heap *h, const void *src, size_t len, size_t align,
                         int prot, xm_block *out);
/* Frees a block in any state. When it returns, every byte of the block traps
 * if executed (or its page faults). An unpublished block costs no rights
 * change and no system call. FLIP, if the kernel refuses to drop the rights
 * of published code (ENOMEM at vm.max_map_count): the block is freed all
 * the same (XM_OK; no call accepts it or hands its pages out again), its
 * bytes become traps through /proc/self/mem, and its rights are dropped by
 * a later release or xm_purge (every later free retries; xm_purge returns
 * XM_ENOMEM while any remain). Only where /proc/self/mem cannot be written
 * either does the old code run until then. */
XM_API xm_result xm_free(xm_heap *h, void *rx);
/* Async-signal-safe, lock-free, allocation-free free: usable from a signal
 * handler, including one that interrupted a heap call on the same thread.
 * The free completes at the next heap call on any thread or at xm_purge.
 * Freeing the same block concurrently from two threads is undefined;
 * sequential double frees return XM_EBADPTR. */
XM_API xm_result xm_free_async(xm_heap *h, void *rx);
/* Completes all deferred work: pending async frees, and the quarantine is
 * released in coalesced runs (rights dropped, memory given back); the
 * staging buffers kept for later large blocks are freed. */
XM_API xm_result xm_purge(xm_heap *h);
/* Rewrites [dst, dst+len) inside one published block and makes it coherent.
 * NOT safe against threads executing those bytes while they change: stop
 * them first (or use a patch of one aligned 8-byte word on x86-64 at your own
 * risk). */
XM_API xm_result xm_patch(xm_heap *h, void *dst, const void *src, size_t len);
/* XM_INPLACE heaps: makes the code bytes [rx, rx+len) of one published
 * block equal to the block's rw bytes at the same offsets (the JIT wrote
 * them through rw after publish: sljit_set_jump_addr, sljit_set_const,
 * asmjit's offset-based patching), with xm_patch's rules for code other
 * threads may run (instruction-cache sync; the same atomicity: not safe
 * against a thread executing those bytes while they change). DUAL: the
 * bytes are already there, only the sync is done; DUAL + XM_STRICT: one
 * pwrite; FLIP: the block's pages rebuilt and moved in (xm_patch's way).
 * Counted as a patch. XM_EINVAL (NULL, len 0), XM_ERANGE (not inside one
 * block), XM_ESTATE (block unpublished: xm_publish copies the whole block
 * in; frozen fork child), XM_ENOTSUP (heap without XM_INPLACE). */
XM_API xm_result xm_commit(xm_heap *h, void *rx, size_t len);
/* XM_INPLACE heaps: the heap-wide distance rw - rx, the same for every
 * block from creation to destroy (an offset-based JIT needs no rw->rx
 * table). XM_EINVAL: NULL argument; XM_ENOTSUP: no XM_INPLACE. */
XM_API xm_result xm_alias_offset(xm_heap *h, ptrdiff_t *out);
/* The state of the live block holding addr, as bits in *state:
 * XM_BLOCK_PUBLISHED (xm_publish succeeded), XM_BLOCK_DATA (allocated by
 * xm_alloc_data), XM_BLOCK_INPLACE (its rw is valid until free). Pending
 * xm_free_async requests complete first. XM_EINVAL: NULL h or state;
 * XM_EBADPTR: no live block holds addr. */
#define XM_BLOCK_PUBLISHED 0x1u
#define XM_BLOCK_DATA 0x2u
#define XM_BLOCK_INPLACE 0x4u
XM_API xm_result xm_block_state(xm_heap *h, const void *addr, unsigned *state);
/* Write window (V8's CodeSpaceWriteScope, .NET's ExecutableWriterHolder):
 * for JITs that patch published code through a pointer. Between begin and
 * end the bytes [rx, rx+len) of one published block can be written through
 * *rw; xm_write_end makes them visible at rx and coherent for every thread.
 *   - DUAL: *rw points into the persistent writable alias; writes land at rx
 *     as they are made (like xm_patch, not safe against a thread executing
 *     those bytes meanwhile).
 *   - DUAL + XM_STRICT and FLIP: *rw is a private copy of the bytes; end
 *     writes it back in one step (pwrite to the memfd; FLIP: the block's
 *     pages rebuilt and moved in). No writable mapping of code ever exists,
 *     and nothing written through *rw reaches the code before end.
 * Windows on different bytes (of one block or of different blocks) may be
 * open at once, from any threads. Errors: XM_EINVAL (NULL, len 0),
 * XM_ERANGE (not inside one block), XM_ESTATE (block unpublished, bytes
 * overlapping an open window, end with no window open at rx, or a frozen
 * fork child). If end fails, the window stays open and nothing changed.
 * xm_free of the block closes its windows without writing them back; *rw
 * must not be used after end or free. */
XM_API xm_result xm_write_begin(xm_heap *h, void *rx, size_t len, void **rw);
XM_API xm_result xm_write_end(xm_heap *h, void *rx);
/* Live patching (the kernel's text_poke_bp), safe while other threads run
 * the bytes being changed: replaces ONE instruction of a published code
 * block, [dst, dst+len), by one instruction of the same length.
 * x86-64: len 1..15, dst an instruction boundary of the code running now.
 * Protocol: INT3 on the first byte, sync every core (membarrier
 * SYNC_CORE), the tail, sync, the first byte, sync. A thread reaching dst
 * meanwhile traps into a SIGTRAP handler that waits for the patch and
 * re-executes dst, so it runs either the old or the new instruction, never
 * a mix. The handler is installed at the first call and stays; SIGTRAPs
 * that are not a patch's go to the handler that was there before (or the
 * default action). Costs three membarriers.
 * arm64: len 4, dst 4-byte aligned, and the old and the new instruction
 * both among B, BL, NOP, ISB, BRK, SVC, HVC, SMC (the architecture's
 * concurrent-modification rule): one atomic 32-bit write, cache
 * maintenance, one membarrier; anything else XM_ENOTSUP. No handler.
 * Live patches are serialized process-wide.
 * XM_ENOTSUP: other architectures, membarrier SYNC_CORE unavailable, or
 * (arm64) an instruction outside those classes. XM_EINVAL: len 0 or > 15,
 * a data block. XM_ERANGE/XM_ESTATE as xm_patch. On failure the old bytes
 * are back. */
XM_API xm_result xm_patch_live(xm_heap *h, void *dst, const void *src,
                               size_t len);
/* Names the code block starting at rx for profilers and debuggers, through
 * the sinks enabled by XM_PERF_MAP, XM_PERF_JITDUMP and XM_GDB (options or
 * environment). A name given before xm_publish is emitted at publish (the
 * jitdump record carries the published bytes); after it, at once. Naming a
 * block again replaces its name. xm_free unregisters the block from GDB
 * (xm_free_async: when the free completes, never in the signal handler);
 * perf's formats have no unload record: a later name at the same address
 * supersedes the old one (jitdump: from its timestamp on).
 * With no sink enabled the call only checks its arguments (cheap enough to
 * call always). XM_EINVAL: NULL argument, name empty, longer than
 * XM_NAME_MAX or holding a control character, or a data block.
 * XM_EBADPTR: rx is not the start of a live block. XM_EOS: a sink file
 * could not be opened or written (xm_last_errno() tells why); then the block
 * keeps its previous name, if any. */
#define XM_NAME_MAX 1024
XM_API xm_result xm_name(xm_heap *h, void *rx, const char *name);
/* Finds the live block containing addr. Pending xm_free_async requests
 * complete first, so a block freed that way is already XM_EBADPTR. */
XM_API xm_result xm_query(xm_heap *h, const void *addr, xm_block *out);
XM_API xm_result xm_heap_stats(xm_heap *h, xm_stats *out);

/* W+X audit of a process from /proc/PID/maps (pid 0: this process). */
#define XM_AUDIT_MAX_RANGES 8
#define XM_AUDIT_WX 1u    /* one mapping writable and executable */
#define XM_AUDIT_ALIAS 2u /* a shared writable and an executable view of one
                             object's range (file, memfd, SysV shm segment) */
#define XM_AUDIT_MAYBE 4u /* could become W+X by mprotect (VmFlags mw and me) */
#define XM_AUDIT_PKEY 8u  /* an alias pair as XM_AUDIT_ALIAS whose writable
                             view has a protection key other than 0 (smaps
                             ProtectionKey): denied by default (XM_PKEYS),
                             counted as protected, not as a W+X alias */
typedef struct xm_audit_range {
    uintptr_t start, end; /* the executable (or W+X) mapping */
    unsigned kind;        /* XM_AUDIT_WX, XM_AUDIT_ALIAS, XM_AUDIT_MAYBE or
                             XM_AUDIT_PKEY */
    uintptr_t other;      /* ALIAS, PKEY: start of the writable mapping */
    char path[96];        /* the mapping's name as /proc shows it ("" if none),
                             cut to fit */
} xm_audit_range;
typedef struct xm_audit_report {
    size_t mappings;    /* lines read */
    size_t wx_mappings; /* mappings writable and executable at once */
    size_t wx_aliases;  /* (shared writable, executable) pairs over one
                           object's range; a private writable view gets its
                           own copies of pages and is not an alias */
    size_t nranges;     /* entries filled in ranges[] */
    xm_audit_range ranges[XM_AUDIT_MAX_RANGES];
    /* additions */
    size_t wx_possible; /* XM_AUDIT_SMAPS only: mappings that are not W+X
                           but may become so (may-write and may-exec), such
                           as private file mappings of program text */
    size_t ranges_omitted; /* ranges found but not listed in ranges[] (it
                              holds XM_AUDIT_MAX_RANGES): wx_mappings +
                              wx_aliases + wx_possible + pkey_aliases -
                              nranges */
    size_t pkey_aliases;   /* (shared writable, executable) pairs whose
                              writable view has a protection key other than
                              0: no thread may write it unless it enabled
                              the key in its own PKRU (XM_PKEYS heaps);
                              not counted in wx_aliases */
    int pkeys[XM_AUDIT_MAX_RANGES]; /* ranges[i].kind XM_AUDIT_PKEY: the
                              writable view's key; else 0 */
} xm_audit_report;
/* XM_EINVAL: out NULL or pid < 0; XM_EOS: the maps file cannot be read
 * (xm_last_errno() tells why: ENOENT no such process, EACCES no right).
 * Where an alias is found, smaps is read too, for its protection key.
 * W+X ranges come first in ranges[], then aliases, then XM_AUDIT_MAYBE,
 * then XM_AUDIT_PKEY; at
 * most XM_AUDIT_MAX_RANGES are listed, ranges_omitted counts the rest. */
XM_API xm_result xm_audit(pid_t pid, xm_audit_report *out);
/* The same with options: XM_AUDIT_SMAPS also reads /proc/PID/smaps to
 * count mappings that may become W+X (slower: the kernel walks page tables
 * for smaps). Unknown flag bits: XM_EINVAL. */
#define XM_AUDIT_SMAPS 1u
XM_API xm_result xm_audit_ex(pid_t pid, unsigned flags, xm_audit_report *out);

/* What this system offers for executable memory, probed (not guessed) with
 * the same system calls the heap would make. Fields are 1 yes, 0 no, -1
 * unknown unless said otherwise. */
typedef struct xm_sysinfo {
    size_t page_size;
    int memfd;                /* memfd_create works */
    int memfd_noexec_seal;    /* MFD_NOEXEC_SEAL accepted (Linux 6.3+) */
    int memfd_noexec_sysctl;  /* vm.memfd_noexec: 0, 1 or 2; -1 absent */
    int exec_memfd;           /* a read+exec view of a memfd can be mapped */
    int exec_anon;            /* anonymous memory can gain PROT_EXEC */
    int selinux;              /* 1 enforcing, 0 permissive, -1 absent */
    int mdwe;                 /* PR_GET_MDWE flags of this process; -1 unknown */
    int pkeys;                /* protection keys can be allocated and the
                                 CPU's PKRU is usable: XM_PKEYS works */
    int membarrier_sync_core; /* MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE */
    char thp_enabled[16];     /* transparent_hugepage/enabled: the selected
                                 value ("always", "madvise", "never"), or "" */
    char thp_shmem[16];       /* transparent_hugepage/shmem_enabled, or "" */
    xm_backend auto_backend;  /* what XM_BACKEND_AUTO gives here */
    xm_result auto_result;    /* XM_OK, or why no heap can be made */
    const char *auto_reason;  /* one sentence: why that backend (static) */
    /* additions */
    int pkeys_free;           /* protection keys this process can still
                                 allocate (one per XM_PKEYS heap); 0 none */
} xm_sysinfo;
XM_API xm_result xm_system_info(xm_sysinfo *out);

#ifdef __cplusplus
}
#endif
#endif /* EXECMEM_H */
