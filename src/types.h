/* SPDX-License-Identifier: MIT */
/*
 * types.h: the heap's data structures and constants, shared by every
 * library file (the inline code on them is pack.h, arena.h, internal.h).
 *
 * Address space. One reserve of `reserve` bytes (PROT_NONE until used) holds
 * every block's rx address. Page i of the reserve is byte i*4096 of the
 * memfd in DUAL, so rx - base is also the file offset and alias - base.
 *
 * Packs (pack.c). Every mapped run of pages in use belongs to one pack
 * descriptor, found lock-free through pagemap[page]:
 *   - small packs: XM__PACK_PAGES pages cut into 64-byte granules; blocks of
 *     up to XM__SMALL_MAX bytes are runs of granules (bpf_prog_pack);
 *   - large packs: one block of whole pages (and every block in FLIP).
 * Block state: `used` (granule taken), `start` (a block starts here),
 * `pub` (that block is published), `cached` (it waits on a magazine) and
 * `glen` (its size) live in heap-wide arrays indexed by address (one word
 * per page, one byte per granule); a pack's pointers name its slice, so
 * pack code indexes them by granule and the fast paths by address, without
 * waiting for the descriptor. Per pack: `pend` (an async free was
 * requested) and the free-run index `runs[bin]` (first granule of each
 * maximal free run, binned by length) that makes placement best fit in
 * O(words). start and pend are atomics: xm_free_async reads start (by
 * address) and sets pend without the lock. Descriptors are never freed
 * before xm_heap_destroy (recycled through `spare`), so a signal handler
 * can always dereference a pagemap entry.
 *
 * Free ranges (range.c). Sorted array of page runs not in a pack, each in
 * one state: NONE (reserve only, no memory), CODE/DATA (DUAL: executable or
 * read-only view mapped, every byte a trap), RW (FLIP: anonymous RW pages,
 * never executable). Mapped free runs are both the reuse cache and the
 * quarantine; purge turns them into NONE in coalesced runs.
 *
 * Arenas. Each heap has XM__ARENAS arenas, each with its own lock, its own
 * packs of small blocks (nonfull lists), its own staging table and
 * counters, on its own cache lines: threads allocate from the arena of
 * their slot (assigned on first use), so two threads rarely share a lock
 * or a line. A pack belongs to one arena for its life (p->arena); a call
 * by address locks the arena of the pack that the page map names and
 * re-checks it (a live pack cannot change arena without that lock). The
 * heap lock guards what the arenas share: the free ranges, the descriptor
 * pool, quarantine and purge. Lock order: an arena, then the heap lock;
 * only fork and the debug walk take every arena, in index order.
 *
 * Invariants (checked by check.c at debug level 3):
 *   - every page is in exactly one pack or one free range;
 *   - every byte of the executable view that is not a published block of a
 *     code pack holds XM__TRAP_BYTE;
 *   - no mapping is ever writable and executable; in DUAL the executable view
 *     comes from an O_RDONLY descriptor (it can never gain write).
 */
#ifndef XM_TYPES_H
#define XM_TYPES_H

#define XM_BUILDING 1
#include "../include/execmem.h"
#include "os.h"
#include "debug.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define XM__PAGE 4096u
#define XM__PAGE_SHIFT 12
#define XM__GRAN_SHIFT 6 /* 64-byte granules, as bpf_prog_pack */
#define XM__GRAN (1u << XM__GRAN_SHIFT)
/* Trade-off: a bigger pack means fewer mmaps and purge runs, but an almost
 * empty pack holds all its pages. 128 KiB = 2048 granules, 32 words/bitmap. */
#define XM__PACK_PAGES 32u
#define XM__PACK_GRANS (XM__PACK_PAGES * XM__PAGE / XM__GRAN)
#define XM__PACK_WORDS (XM__PACK_GRANS / 64u)
/* Free runs are indexed by length: bins 0..15 hold runs of exactly 1..16
 * granules (up to 1 KiB: every allocation there is one ctz away), bin 16
 * the longer ones. Trade-off: each bin is a bitmap of the pack (256 B). */
#define XM__BINS 17u
/* Blocks above this get their own page run (no granule waste beyond a page). */
#define XM__SMALL_MAX (16u * 1024u)
/* Data two threads write stays in separate aligned 128-byte pairs of
 * cache lines: the L2 streamer moves lines in pairs, so sharing a pair
 * ping-pongs between cores like sharing a line. */
#define XM__LINE_PAIR 128u
#define XM__DEFAULT_RESERVE ((size_t)1 << 30)
#define XM__DEFAULT_LAZY ((size_t)8 << 20)
/* Small packs of a heap with less mapped than this are trap-filled page by
 * page as allocations reach them (pack.c, pack_reach); then whole. */
#define XM__LAZY_FILL_BELOW ((size_t)1 << 20)

enum { XM__K_CODE = 0, XM__K_DATA = 1 };
/* Free-range states: reserve only; mapped trap-filled code / data (DUAL);
 * mapped RW (FLIP); FLIP pages of freed code whose rights could not be
 * dropped at the free (ENOMEM at vm.max_map_count): never handed out, the
 * next purge drops them, and every release retries while any remain. */
enum { XM__FR_NONE = 0, XM__FR_CODE, XM__FR_DATA, XM__FR_RW, XM__FR_DEAD, XM__FR_STATES };

/* Per-arena lists of small packs by the length of their longest free run
 * (TLSF-style classes): exact for 1..16 granules, then four classes per
 * power of two up to XM__PACK_GRANS. An allocation of n granules takes the
 * head of the lowest non-empty class whose every pack has a run of n, found
 * with one ctz on a mask: no walk over packs. */
#define XM__RCLASSES 48u

/* The state of one page of the reserve: its pack, its blocks' bits and
 * sizes, its free-run tag. One array for the whole reserve in the heap's
 * metadata mapping, committed as packs touch it. A page's state is
 * together (two lines of its own): a small heap's lies in a few pages of
 * one 2 MiB region, where separate arrays for each field spread it over
 * eight, and a page table costs 60-300 us to populate in this VM. A pack's
 * bitmap word i is page `page + i`'s: XM__BW strides over them. */
typedef struct xm__pstate {
    _Atomic uint64_t start; /* bit k: a block starts at granule k */
    uint64_t used;          /* granule k is in a block (or cached one) */
    uint64_t pub;           /* the block starting at granule k is published */
    uint64_t cached;        /* ... waits on its arena's magazine (traps) */
    struct xm__pack *_Atomic pm; /* the pack that holds the page, or NULL */
    uint32_t frtag; /* range.c: the free run starting or ending here (0: none) */
    uint32_t pad_;
    /* granules - 1 of the block (live or cached) that starts at each
       granule: sizes in O(1) (a small block is at most 256 granules) */
    uint8_t glen[XM__PAGE / XM__GRAN];
    uint8_t pad2_[16];
} xm__pstate;
#define XM__PSW (sizeof(xm__pstate) / sizeof(uint64_t))
/* Word w of the pack bitmap whose word 0 is *bm (a field of the pack's first
 * page state), and granule g's size byte from the pack's first. */
#define XM__BW(bm, w) ((bm)[(size_t)(w) * XM__PSW])
#define XM__GL(gl, g) ((gl)[(size_t)((g) >> 6) * sizeof(xm__pstate) + ((g) & 63u)])

/* The free-run index of a small pack (pack.c): only small packs have one,
 * so a large block's descriptor stays a few lines. */
typedef struct xm__packx {
    _Alignas(64) _Atomic uint64_t pend[XM__PACK_WORDS];
    /* xm_free's requests from threads other than the arena's owner
       (deferred.c: remote frees), by first granule */
    _Atomic uint64_t rpend[XM__PACK_WORDS];
    uint16_t bincount[XM__BINS];
    uint32_t binwords[XM__BINS]; /* words of runs[b] that are not zero */
    /* free-run index: runs[b] marks the first granule of every maximal free
       run whose length falls in bin b (pack.c, run_bin) */
    uint64_t runs[XM__BINS][XM__PACK_WORDS];
    /* the length of each free run, at its first granule (4 KiB: 3% of
       the pack; it makes run lengths O(1) for best fit and the longest
       run, which walked the bitmap, 15% of a batch allocation's
       instructions) */
    uint16_t rlen[XM__PACK_GRANS];
} xm__packx;

typedef struct xm__pack {
    /* hot header: every call on a block reads these first (one line).
       Descriptors fill whole XM__LINE_PAIRs */
    _Alignas(XM__LINE_PAIR) uintptr_t base; /* rx address of the first byte */
    _Atomic uint8_t arena; /* index of the owning arena */
    uint8_t kind;         /* XM__K_CODE / XM__K_DATA */
    uint8_t large;        /* one block of whole pages (never changes: a
                             descriptor is small or large for its life) */
    uint8_t raised;       /* held published bytes: release revokes */
    uint8_t listed;       /* on its arena's class list rclass */
    uint8_t rclass;
    uint32_t page;        /* first page index in the reserve */
    uint32_t npages;
    uint32_t nfree;       /* free granules (small packs) */
    uint32_t ncached;     /* granules of its blocks on a magazine */
    uint32_t binmask;     /* bins of runs[] that are not empty */
    uint32_t maxrun;      /* longest free run, in granules (small packs) */
    uint32_t filled;      /* pages trap-filled from the first (pack.c,
                             pack_reach): the rest are file holes */
    struct xm__pack *prev, *next; /* class list, or spare list */
    _Atomic int queued;   /* on h->pending */
    struct xm__pack *_Atomic next_pending;
    _Atomic int rqueued;  /* on its arena's rfree (small packs) */
    struct xm__pack *_Atomic rnext;
    /* the pack's first page's fields of the heap's page state (ps), set
       when the pack takes its pages: word i (XM__BW) is page `page + i` */
    _Atomic uint64_t *start;
    uint64_t *used, *pub;
    uint64_t *cached;     /* first granule of a block in its arena's
                             magazine (freed, traps) */
    uint8_t *glen; /* sizes (XM__GL) */
    /* async requests stay with the descriptor: the drain collects them
       without a lock, from a pack that may be recycled meanwhile (small:
       x->pend, XM__PACK_WORDS words; large: pend1) */
    _Atomic uint64_t *pend;
    xm__packx *x; /* small packs: the run index; large: NULL */
    _Atomic uint64_t pend1;
} xm__pack;

/* Words of p->pend. */
static inline unsigned xm__pend_words(const xm__pack *p)
{
    return p->large ? 1u : XM__PACK_WORDS;
}

/* A free page run (range.c), a node of the heap's pool: on the class list
 * of its state and length, and, while mapped (quarantine), on the age list
 * that purges take the oldest from. Nodes are named by index (0: none). */
typedef struct xm__frange {
    uint32_t page, npages;
    uint8_t state, raised, rclass;
    uint32_t cprev, cnext; /* class list */
    uint32_t aprev, anext; /* age list (mapped runs only) */
} xm__frange;
/* Classes of free page runs by length: 4 per power of two (TLSF). */
#define XM__FR_CLASSES 128u

/* Staging buffers of up to XM__STAGE_CLASSES granules (2 KiB) are
 * recycled per arena (LIFO per exact size), at most XM__STAGE_KEEP bytes,
 * so the DUAL hot path makes no malloc/free. Trade-off: up to 256 KiB kept
 * per arena. Larger ones go by power-of-two classes (below): exact sizes
 * up to 16 KiB had spread a 4-16 KiB churn over 190 lists, most of them
 * empty when asked, and 9% of its time went to posix_memalign. */
#define XM__STAGE_CLASSES 32u
#define XM__STAGE_KEEP (256u << 10)
/* Staging buffers of larger blocks: by power-of-two classes of 4 KiB to
 * 16 MiB (stage.c; a block above that gets a buffer of its own size, not
 * kept), one kept per class and arena, so a churn of large blocks does
 * not get a fresh buffer for every block (malloc maps a large one and
 * faults it in page by page: 20% of a 64 KiB-1 MiB churn's time went to
 * the kernel for it). Trade-off: the kept buffers of an arena are less
 * than twice its largest (at most 32 MiB, resident as far as blocks wrote
 * them), until xm_purge or the heap's destroy. A budget of 8 MiB had
 * freed and re-faulted the 8 MiB class's buffer of every 4-4.5 MiB block
 * in a churn of 1-4 MiB blocks (one taken with its hole's slack is a
 * class up): 4 ms of page faults each on this VM. */
#define XM__STAGE_BIG 13u
#define XM__STAGE_BIG_SHIFT 12u /* the smallest class: 4 KiB */

/* Debug builds (XM_DEBUG >= 2): the staging buffers of the last
 * XM__STAGE_DEAD published or freed blocks per arena are not recycled but
 * trap-filled and kept; one whose bytes changed when it leaves (or at
 * destroy) was written through a dead rw: reported, abort. Trade-off: a
 * stale write later than that goes unseen. */
#define XM__STAGE_DEAD 64u

typedef struct xm__stage {
    uintptr_t rx; /* 0: empty slot */
    void *rw;
} xm__stage;

/* Magazines (the tcache of this heap): a freed small block of 1..16
 * granules goes, trap-filled and no longer live, onto its arena's
 * magazine for its size instead of back into the free-run index; an
 * allocation of that size takes it back in O(1). Its granules stay `used`
 * and its first granule is marked in pack->cached. Trade-off: up to
 * XM__MAG_DEPTH blocks per size and kind (at most 2 x 272 KiB per arena;
 * with 8, misses sent enough of the churn benchmark's allocations to the
 * free-run index to cost 6% of its time: build/churn_loop 98 -> 92 ns)
 * stay out of the index until xm_purge or a full reserve flushes them. */
#define XM__MAG_EXACT 16u
#define XM__MAG_DEPTH 32u
/* Blocks of 17..256 granules (1-16 KiB) have magazines too, by classes of
 * eight per power of two: a freed block waits in the highest class whose
 * upper size it reaches, an allocation takes from the lowest class whose
 * upper size it fits, so it may get more than it asked for: less than two
 * classes' width, a quarter at most, an eighth on average (b.size says
 * so). Trade-off: at most XM__MAG_MID_KEEP bytes of such
 * blocks per kind and arena wait there; the rest go back to the free-run
 * index as before. */
#define XM__MAG_CLASSES (XM__MAG_EXACT + 32u)
#define XM__MAG_MID_KEEP ((size_t)512 << 10)

/* Trade-off: more arenas, fewer threads sharing one; each keeps up to one
 * empty pack per kind hot (256 KiB of mapped pages at most). */
#define XM__ARENAS 8u

typedef struct xm__window {
    uintptr_t rx, block; /* window start; start of its block */
    size_t len;
    void *buf;           /* private copy (STRICT, FLIP); NULL: the alias */
} xm__window;

typedef struct xm__arena {
    _Alignas(XM__LINE_PAIR) pthread_mutex_t lock; /* arenas: whole pairs */
    /* biased lock (arena_lock.c): the owner thread's slot (0: none), set
       once; `busy` is written only by the owner, `revoke` by a holder of
       `lock`; `held_revoked`, `unbiased`, `steals` under `lock` */
    _Atomic unsigned owner;
    _Atomic uint8_t busy, revoke;
    uint8_t held_revoked, unbiased;
    uint8_t used; /* locked once: its bit is in h->arenas_used (under lock) */
    uint32_t steals;
    /* small packs with room, by class of their longest free run; mask: the
       classes whose list is not empty; keep: the one empty pack kept hot */
    xm__pack *rcl[2][XM__RCLASSES];
    uint64_t rmask[2];
    xm__pack *keep[2];
    xm__window *win; /* open write windows on this arena's blocks */
    size_t nwin, capwin;
    xm__stage st1; /* the newest unpublished DUAL block and its staging
                      buffer (allocate, write, publish: no hashing) */
    xm__pack *st1_pack; /* its pack, while st1.rx is set (it is live) */
    xm__stage *st; /* rx -> staging buffer of the other unpublished ones */
    size_t stcap, stcount;
    void *stbuf[XM__STAGE_CLASSES]; /* recycled staging buffers by size */
    size_t stbuf_bytes;
    void *stbig[XM__STAGE_BIG]; /* and of larger blocks: one per class */
    uint8_t nmag[2][XM__MAG_CLASSES];
    size_t mag_mid_bytes[2]; /* bytes waiting in classes >= XM__MAG_EXACT */
    uintptr_t mag[2][XM__MAG_CLASSES][XM__MAG_DEPTH]; /* rx of cached blocks */
    xm__pack *magp[2][XM__MAG_CLASSES][XM__MAG_DEPTH]; /* and their packs */
    /* live blocks: allocs - frees (the two always change with them) */
    size_t live_bytes, staging_bytes;
    uint64_t allocs, frees, publishes, patches;
    /* fast-path hits of the staged xm_alloc, of xm_load and of
       XM_INPLACE's xm_alloc and xm_publish (white-box tests) */
    uint64_t fast_allocs, fast_loads, fast_inplace_allocs, fast_inplace_publishes;
    /* XM_DEBUG >= 2: staging buffers of published or freed blocks (dead
       rw), trap-filled and kept out of use, oldest first (stage.c) */
    void *dead[XM__STAGE_DEAD];
    size_t dead_sz[XM__STAGE_DEAD];
    unsigned ndead, dead_next;
    /* remote frees completed (white-box tests); the owner's fast calls
       since it last completed them (fast.h) */
    uint64_t remote_frees;
    unsigned rtick;
    /* remote frees (deferred.c): packs holding blocks that other threads
       freed, trap-filled and waiting for the next locker of this arena;
       rcount how many. Written by those threads: a line pair of their
       own */
    _Alignas(XM__LINE_PAIR) struct xm__pack *_Atomic rfree;
    _Atomic unsigned rcount;
} xm__arena;

struct xm_heap {
    xm__arena arenas[XM__ARENAS];
    pthread_mutex_t lock; /* the shared parts; taken after an arena's */
    xm_backend backend;
    unsigned flags;
    uintptr_t base;
    size_t reserve;
    uint32_t npages;
    char *alias;   /* DUAL without XM_STRICT: RW view of the whole memfd */
    int fd, fd_ro; /* DUAL: the memfd, kept only under XM_STRICT (else
                      closed once the alias is mapped), and its O_RDONLY
                      reopen; else -1. Mode 0, size sealed, close-on-exec */
    size_t lazy_limit; /* SIZE_MAX: only xm_purge; 0: automatic (range.c) */
    /* the state of every page of the reserve (xm__pstate): a call finds a
       block's state from its address alone, in parallel with its pack */
    xm__pstate *ps;
    int pkey;          /* XM_PKEYS: the alias's protection key; 0: none */
    uint64_t pk_id;    /* XM_PKEYS: this heap's number (pkeys.c) */
    size_t meta_len; /* the mapping that holds the heap and these arrays */
    xm__pack *spare, *spare_large; /* recycled descriptors, by size */
    xm__pack **all; /* every descriptor ever made */
    size_t nall, capall;
    /* free page runs (range.c): a pool of nodes (capacity npages / 2 + 2,
       touched as used), the node of the run that starts or ends at each
       page (ps[].frtag, 0: none), lists by state and class with their masks,
       and the age list of mapped runs (oldest first) */
    xm__frange *fr;
    uint32_t frfree, frcap, frused; /* free node list, pool size, high mark */
    uint32_t ps_hw; /* pages below this may have state: ps[ps_hw..) is untouched */
    uint32_t frhead[XM__FR_STATES][XM__FR_CLASSES];
    uint64_t frmask[XM__FR_STATES][2];
    uint32_t agehead, agetail, naged;
    size_t nfr; /* runs in the set */
    xm__pack *_Atomic pending; /* packs with async frees (Treiber stack) */
    /* one drain at a time (deferred.c); `draining` is 1 from before it
       takes `pending` until it is complete: a call that finds it set waits
       on drain_lock (lock order: drain_lock, then an arena's) */
    pthread_mutex_t drain_lock;
    _Atomic int draining;
    /* what keeps the fast paths (fast.h) off or careful, one word for
       their one check: XM__G_OFF (not DUAL with the alias and no private
       copy, no bias, valgrind, or a fork child), XM__G_NAMES (names exist), XM__G_ASYNC (set once, before
       the first async request sets a pend bit: until then none is set) */
    _Atomic unsigned gate;
    /* arenas ever locked (bit i: arenas[i]): the others' pages (an arena
       is 50 KB) were never touched, and destroy leaves them so */
    _Atomic unsigned arenas_used;
    _Atomic uint64_t async_frees;
    xm__osc osc;
    size_t quarantine_bytes;
    /* bytes of the empty packs arenas keep hot (arena locks; read by the
       automatic purge, which counts them against the lazy bound too) */
    _Atomic size_t kept_bytes;
    size_t revoke_pending; /* pages in XM__FR_DEAD ranges (heap lock) */
    /* the most bytes in use lately (heap lock): the default lazy bound is
       a quarter of it, so that a heap freeing most of its blocks keeps
       room for their runs to coalesce (range.c, xm__lazy_bound); each
       allocation from the free ranges wears it down by its size */
    size_t peak_used;
    _Atomic size_t resident_bytes;
    uint64_t purges, purge_runs;
    int forked;        /* DUAL child after fork: frozen */
    int placed_near;   /* the reserve was placed near xm_options.near */
    int bias;          /* arenas may be biased (arena_lock.c) */
    int valgrind;
    struct xm_heap *gnext; /* global list, for fork */
    /* names for profilers and debuggers (sym.c; its lock) */
    struct xm__sym **syms;
    size_t symcap;
    _Atomic size_t nsyms;
    /* fork snapshots (prepare -> parent/child handlers) */
    struct xm__snap *snaps;
    size_t nsnaps;
    /* XM_INPLACE under XM_STRICT or FLIP (inplace.c): the private copies,
       a reserve of `reserve` bytes (PROT_NONE) whose page i is RW exactly
       while page i of the code reserve is mapped; never executable.
       rw = shadow + (rx - base). NULL otherwise. */
    char *shadow;
};

enum { XM__G_OFF = 1, XM__G_NAMES = 2, XM__G_ASYNC = 4 };

static inline uintptr_t xm__page_addr(const xm_heap *h, uint32_t page)
{
    return h->base + ((uintptr_t)page << XM__PAGE_SHIFT);
}

#endif
