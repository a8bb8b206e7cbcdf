/* SPDX-License-Identifier: MIT */
/*
 * internal.h: the heap's data structures, shared by the subsystem files.
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
 * Invariants (checked by xm__check at debug level 3):
 *   - every page is in exactly one pack or one free range;
 *   - every byte of the executable view that is not a published block of a
 *     code pack holds XM__TRAP_BYTE;
 *   - no mapping is ever writable and executable; in DUAL the executable view
 *     comes from an O_RDONLY descriptor (it can never gain write).
 */
#ifndef XM_INTERNAL_H
#define XM_INTERNAL_H

#define XM_BUILDING 1
#include "../include/execmem.h"
#include "os.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#ifndef XM_DEBUG
#define XM_DEBUG 1
#endif

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

/* Staging buffers of up to XM__STAGE_CLASSES granules are recycled per
 * arena (LIFO per size), at most XM__STAGE_KEEP bytes, so the DUAL hot path
 * makes no malloc/free. Trade-off: up to 64 KiB kept per arena. */
#define XM__STAGE_CLASSES 256u
#define XM__STAGE_KEEP (256u << 10)
/* Staging buffers of larger blocks: up to XM__STAGE_BIG kept per arena
 * (page-aligned, used for any block that fits in up to twice its size), so
 * a churn of large blocks does not map and fault in a fresh buffer of up
 * to a megabyte for every block (malloc gives large ones back to the
 * system). Trade-off: at most XM__STAGE_BIG_KEEP bytes per arena. */
#define XM__STAGE_BIG 4u
#define XM__STAGE_BIG_KEEP ((size_t)4 << 20)

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
    void *stbig[XM__STAGE_BIG]; /* and of larger blocks, with their sizes */
    size_t stbig_sz[XM__STAGE_BIG];
    uint8_t nmag[2][XM__MAG_CLASSES];
    size_t mag_mid_bytes[2]; /* bytes waiting in classes >= XM__MAG_EXACT */
    uintptr_t mag[2][XM__MAG_CLASSES][XM__MAG_DEPTH]; /* rx of cached blocks */
    xm__pack *magp[2][XM__MAG_CLASSES][XM__MAG_DEPTH]; /* and their packs */
    /* live blocks: allocs - frees (the two always change with them) */
    size_t live_bytes, staging_bytes;
    uint64_t allocs, frees, publishes, patches;
    /* XM_DEBUG >= 2: staging buffers of published or freed blocks (dead
       rw), trap-filled and kept out of use, oldest first (stage.c) */
    void *dead[XM__STAGE_DEAD];
    size_t dead_sz[XM__STAGE_DEAD];
    unsigned ndead, dead_next;
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
       their one check: XM__G_OFF (not DUAL staged with bias, or a fork
       child), XM__G_NAMES (names exist), XM__G_ASYNC (set once, before
       the first async request sets a pend bit: until then none is set) */
    _Atomic unsigned gate;
    /* arenas ever locked (bit i: arenas[i]): the others' pages (an arena
       is 50 KB) were never touched, and destroy leaves them so */
    _Atomic unsigned arenas_used;
    _Atomic uint64_t async_frees;
    xm__osc osc;
    size_t quarantine_bytes;
    size_t revoke_pending; /* pages in XM__FR_DEAD ranges (heap lock) */
    _Atomic size_t resident_bytes;
    uint64_t purges, purge_runs;
    int forked;        /* DUAL child after fork: frozen */
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

/* A thread's slot: 1, 2, ... in order of its first heap call (0: not
 * assigned yet), from a 64-bit counter that never wraps. Its arena in every
 * heap is arenas[(slot-1) % N]. Slots up to XM__SLOT_BIAS_MAX are never
 * handed out twice, and only they may own an arena (arena_lock.c: an
 * owner's lock is its slot alone). Past that many threads (2^32 - 9; a
 * server starting 1,000 threads a second gets there in 50 days), every
 * new thread gets one of the XM__ARENAS slots above it, shared and never
 * an owner: it takes the mutex, as on an unbiased arena.
 * initial-exec: no __tls_get_addr call from the shared library (a few
 * bytes of static TLS, as mimalloc does). */
#define XM__SLOT_BIAS_MAX (0xFFFFFFFFu - XM__ARENAS)
#if defined(__GNUC__)
__attribute__((tls_model("initial-exec")))
#endif
extern _Thread_local unsigned xm__slot;
unsigned xm__slot_assign(void);
/* White-box tests: sets the slot counter (slots handed out so far), returns
 * the old value. */
uint64_t xm__slot_counter_set(uint64_t n);
/* The arena a thread allocates from. */
static inline xm__arena *xm__my_arena(xm_heap *h)
{
    unsigned s = xm__slot ? xm__slot : xm__slot_assign();
    return &h->arenas[(s - 1) % XM__ARENAS];
}

/* ---- arena locks (arena_lock.c) -----------------------------------------
 * Biased: the thread that owns an arena (the first whose home it is) takes
 * and drops its lock with plain stores and no locked instruction; any other
 * thread takes the mutex, raises `revoke`, and makes the owner's stores
 * visible with one membarrier before it waits for the owner to leave. Both
 * sides are mutual exclusion exactly as the mutex alone. */
void xm__arena_lock_slow(xm_heap *h, xm__arena *a);
void xm__arena_unlock_slow(xm__arena *a);
/* The owner's lock alone: true when the thread in slot `me` (this thread's)
 * owns a and locked it the fast way (release with xm__arena_unown); false,
 * nothing locked, else. */
static inline bool xm__arena_own_as(xm__arena *a, unsigned me)
{
    if (!me || atomic_load_explicit(&a->owner, memory_order_relaxed) != me)
        return false;
    atomic_store_explicit(&a->busy, 1, memory_order_relaxed);
    /* the store-load order is the remote side's membarrier's job */
    atomic_signal_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&a->revoke, memory_order_acquire))
        return true;
    atomic_store_explicit(&a->busy, 0, memory_order_release);
    return false;
}
static inline bool xm__arena_try_own(xm__arena *a) { return xm__arena_own_as(a, xm__slot); }
static inline void xm__arena_unown(xm__arena *a)
{
    atomic_store_explicit(&a->busy, 0, memory_order_release);
}
static inline void xm__arena_lock(xm_heap *h, xm__arena *a)
{
    if (!xm__arena_try_own(a))
        xm__arena_lock_slow(h, a);
}
static inline void xm__arena_unlock(xm__arena *a)
{
    /* busy is 1 for the owner only while it holds the fast way */
    if (atomic_load_explicit(&a->busy, memory_order_relaxed) &&
        atomic_load_explicit(&a->owner, memory_order_relaxed) == xm__slot) {
        atomic_store_explicit(&a->busy, 0, memory_order_release);
        return;
    }
    xm__arena_unlock_slow(a);
}
/* Every arena of h, in index order (fork, stats, purge, the debug walk):
 * one membarrier for all the biased ones. */
void xm__arenas_lock_all(xm_heap *h);
void xm__arenas_unlock_all(xm_heap *h);
/* Heap creation: whether this heap's arenas may be biased. */
void xm__bias_init(xm_heap *h);
/* Fork child: no arena stays biased (its owners are gone). */
void xm__bias_fork_child(xm_heap *h);
void xm__bias_fork_child_process(void);
int xm__bias_state(xm_heap *h, unsigned *owned, unsigned *unbiased);
unsigned xm__bias_steal_max(void);
unsigned xm__bias_owner(xm_heap *h, unsigned i);
unsigned xm__slot_bias_max(void);
int xm__fast_state(xm_heap *h);
unsigned xm__fast_gate(xm_heap *h); /* white box: h->gate */
/* pack.c: everything here runs with the block's arena locked. */
xm_result xm__block_alloc_locked(xm_heap *h, xm__arena *a, int kind,
                                 size_t size, size_t align, xm_block *out);
/* Looks up the block starting exactly at rx: pack and granule index. */
xm_result xm__block_find(xm_heap *h, uintptr_t rx, xm__pack **pk, uint32_t *g);

/* The pack that holds addr (lock-free: descriptors live until the heap
 * dies), or NULL. */
static inline xm__pack *xm__pack_of(xm_heap *h, uintptr_t addr)
{
    if (addr < h->base || addr - h->base >= h->reserve)
        return NULL;
    return atomic_load_explicit(&h->ps[(addr - h->base) >> XM__PAGE_SHIFT].pm,
                                memory_order_acquire);
}

/* The start bits of the page holding addr (in the reserve), by address:
 * lock-free readers use these, never a descriptor's pointer into them. Bit
 * (addr >> 6) & 63 is addr's granule. */
static inline uint64_t xm__start_at(const xm_heap *h, uintptr_t addr)
{
    return atomic_load_explicit(&h->ps[(addr - h->base) >> XM__PAGE_SHIFT].start,
                                memory_order_acquire);
}

/* XM_OK and its first granule in *g when a block of p (which covers rx)
 * starts at rx. */
static inline xm_result xm__block_at(const xm_heap *h, const xm__pack *p,
                                     uintptr_t rx, uint32_t *g)
{
    uintptr_t off = rx - p->base;
    unsigned sh = p->large ? XM__PAGE_SHIFT : XM__GRAN_SHIFT;
    uint32_t i = (uint32_t)(off >> sh);
    if ((off & ((1u << sh) - 1)) || (p->large && i != 0) ||
        !((xm__start_at(h, rx) >> ((rx >> XM__GRAN_SHIFT) & 63)) & 1))
        return XM_EBADPTR;
    *g = i;
    return XM_OK;
}
/* Bits of the block state (pack.c and the fast paths), arena locked. */
static inline uint64_t xm__start_word(const xm__pack *p, uint32_t g)
{
    return atomic_load_explicit(&XM__BW(p->start, g >> 6), memory_order_acquire) >> (g & 63);
}

/* `start` bits change only under the arena lock and are read lock-free, so
 * a plain read-modify-store (release) is enough: no locked instruction. */
static inline void xm__start_bits(_Atomic uint64_t *w, uint64_t m, bool on)
{
    uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
    atomic_store_explicit(w, on ? v | m : v & ~m, memory_order_release);
}
static inline void xm__set_start(xm__pack *p, uint32_t g, bool on)
{
    xm__start_bits(&XM__BW(p->start, g >> 6), 1ull << (g & 63), on);
}

/* `pend` bits are set by lock-free requests at any time: clearing needs an
 * atomic RMW, but only when the bit is set. */
static inline void xm__clear_pend(xm__pack *p, uint32_t g)
{
    uint64_t m = 1ull << (g & 63);
    if (atomic_load_explicit(&p->pend[g >> 6], memory_order_relaxed) & m)
        atomic_fetch_and(&p->pend[g >> 6], ~m);
}

/* A block of n granules leaves its magazine: its bit `m` in the cached
 * word that covers it is cleared (by address, as the fast path has it). */
static inline void xm__mag_unmark_bits(xm__pack *p, uint64_t *cached_word,
                                       uint64_t m, uint32_t n)
{
    *cached_word &= ~m;
    p->ncached -= n;
}
/* Block rx of p (n granules) leaves its magazine: returns its granule. */
static inline uint32_t xm__mag_unmark(xm__pack *p, uintptr_t rx, uint32_t n)
{
    uint32_t g = (uint32_t)((rx - p->base) >> XM__GRAN_SHIFT);
    xm__mag_unmark_bits(p, &XM__BW(p->cached, g >> 6), 1ull << (g & 63), n);
    return g;
}

/* Size of the block that starts at granule g of p (live or cached). */
static inline size_t xm__block_size(const xm__pack *p, uint32_t g)
{
    if (p->large)
        return (size_t)p->npages << XM__PAGE_SHIFT;
    return ((size_t)XM__GL(p->glen, g) + 1) << XM__GRAN_SHIFT;
}
_Static_assert(XM__SMALL_MAX / XM__GRAN <= 256, "glen holds granules - 1 in a byte");
size_t xm__block_size_slow(const xm__pack *p, uint32_t g);
/* Address of block (or granule) g of pack p. */
static inline uintptr_t xm__block_addr(const xm__pack *p, uint32_t g)
{
    return p->base + ((uintptr_t)g << (p->large ? XM__PAGE_SHIFT : XM__GRAN_SHIFT));
}
/* The live block of p holding all of [dst, dst+len) (p holds dst):
 * XM_ERANGE if none. */
xm_result xm__block_range(const xm__pack *p, uintptr_t dst, size_t len, uint32_t *g);
/* The live block of p holding addr (p holds addr): XM_EBADPTR if none. */
xm_result xm__block_containing(const xm__pack *p, uintptr_t addr, uint32_t *g);

/* Magazines (pack.c and the fast paths), arena locked. Classes:
 * 0..15 exactly 1..16 granules; then eight per power of two up to 256
 * granules, class c holding blocks of at least xm__mag_hi(c) granules. */
static inline uint32_t xm__mag_hi(uint32_t c)
{
    if (c < XM__MAG_EXACT)
        return c + 1;
    uint32_t fl = 4 + (c - XM__MAG_EXACT) / 8, j = (c - XM__MAG_EXACT) % 8;
    return (1u << fl) + ((j + 1) << (fl - 3));
}
/* The class a freed block of n granules waits in (the highest whose hi it
 * reaches), or XM__MAG_CLASSES: none. */
static inline uint32_t xm__mag_put_class(uint32_t n)
{
    if (n <= XM__MAG_EXACT)
        return n - 1;
    if (n > 256)
        return XM__MAG_CLASSES;
    uint32_t fl = 31u - (uint32_t)__builtin_clz(n - 1), w = 1u << (fl - 3);
    uint32_t j = (n - (1u << fl)) / w;
    if (!j) /* below the group's first hi: the previous group's last class
               (none below 18 granules: the exact classes are exact) */
        return fl == 4 ? XM__MAG_CLASSES : XM__MAG_EXACT + (fl - 5) * 8 + 7;
    return XM__MAG_EXACT + (fl - 4) * 8 + j - 1;
}
/* The class an allocation of n <= 256 granules takes from (the lowest
 * whose hi it fits). */
static inline uint32_t xm__mag_take_class(uint32_t n)
{
    if (n <= XM__MAG_EXACT)
        return n - 1;
    uint32_t fl = 31u - (uint32_t)__builtin_clz(n - 1), w = 1u << (fl - 3);
    return XM__MAG_EXACT + (fl - 4) * 8 + (n - (1u << fl) + w - 1) / w - 1;
}
/* Whether p's block of n granules may wait in class c (from
 * xm__mag_put_class): the class exists and has room, within the budget,
 * and the pack keeps something live. */
static inline bool xm__mag_room(const xm__arena *ar, const xm__pack *p, uint32_t c,
                                uint32_t n)
{
    return c < XM__MAG_CLASSES && ar->nmag[p->kind][c] != XM__MAG_DEPTH &&
           p->nfree + p->ncached + n != XM__PACK_GRANS &&
           (c < XM__MAG_EXACT ||
            ar->mag_mid_bytes[p->kind] + ((size_t)n << XM__GRAN_SHIFT) <= XM__MAG_MID_KEEP);
}
/* Caches freed block g of p (n granules, class c, trap-filled, no longer
 * live). */
static inline void xm__mag_push(xm__arena *ar, xm__pack *p, uint32_t g, uint32_t c,
                                uint32_t n, uintptr_t rx)
{
    XM__BW(p->cached, g >> 6) |= 1ull << (g & 63);
    p->ncached += n;
    if (c >= XM__MAG_EXACT)
        ar->mag_mid_bytes[p->kind] += (size_t)n << XM__GRAN_SHIFT;
    ar->magp[p->kind][c][ar->nmag[p->kind][c]] = p;
    ar->mag[p->kind][c][ar->nmag[p->kind][c]++] = rx;
}
/* xm__mag_push where there is room; false (nothing done) else. */
static inline bool xm__mag_put(xm__arena *ar, xm__pack *p, uint32_t g, size_t sz)
{
    uint32_t n = (uint32_t)(sz >> XM__GRAN_SHIFT), c = xm__mag_put_class(n);
    if (!xm__mag_room(ar, p, c, n))
        return false;
    xm__mag_push(ar, p, g, c, n, xm__block_addr(p, g));
    return true;
}
/* Pops the newest cached block of class c < XM__MAG_CLASSES if its address
 * satisfies the alignment (still marked cached); false (nothing done)
 * else. */
static inline bool xm__mag_pop(xm__arena *ar, int kind, size_t c, size_t align,
                               uintptr_t *rx, xm__pack **pk)
{
    unsigned n = ar->nmag[kind][c];
    if (!n || (ar->mag[kind][c][n - 1] & (align - 1)))
        return false;
    *rx = ar->mag[kind][c][n - 1];
    *pk = ar->magp[kind][c][n - 1];
    ar->nmag[kind][c] = (uint8_t)(n - 1); /* (a byte store: after the loads) */
    return true;
}
/* Takes the newest cached block that fits `usable` bytes (exactly, up to
 * 1 KiB; up to 1/4 more above), if its address satisfies the alignment;
 * its size in *got. False (nothing done) else. */
static inline bool xm__mag_take(xm__arena *ar, int kind, size_t usable,
                                size_t align, xm__pack **pk, uint32_t *g, size_t *got)
{
    uint32_t n = (uint32_t)(usable >> XM__GRAN_SHIFT);
    uintptr_t rx;
    if (n > 256)
        return false;
    uint32_t c = xm__mag_take_class(n);
    if (!xm__mag_pop(ar, kind, c, align, &rx, pk))
        return false;
    uint32_t gi = (uint32_t)((rx - (*pk)->base) >> XM__GRAN_SHIFT);
    uint32_t have = (uint32_t)XM__GL((*pk)->glen, gi) + 1;
    if (c >= XM__MAG_EXACT)
        ar->mag_mid_bytes[kind] -= (size_t)have << XM__GRAN_SHIFT;
    *g = xm__mag_unmark(*pk, rx, have);
    *got = (size_t)have << XM__GRAN_SHIFT;
    return true;
}

/* Locks and returns the arena owning the pack that covers addr, that pack
 * in *pk; NULL (nothing locked) when no pack covers it. */
static inline xm__arena *xm__lock_pack_of(xm_heap *h, uintptr_t addr, xm__pack **pk)
{
    if (addr < h->base || addr - h->base >= h->reserve)
        return NULL;
    _Atomic(xm__pack *) *slot = &h->ps[(addr - h->base) >> XM__PAGE_SHIFT].pm;
    for (;;) {
        xm__pack *p = atomic_load_explicit(slot, memory_order_acquire);
        if (!p)
            return NULL;
        unsigned ai = atomic_load_explicit(&p->arena, memory_order_relaxed);
        xm__arena *a = &h->arenas[ai];
        xm__arena_lock(h, a);
        /* a live pack changes arena only after a release, which needs the
           lock just taken: if it is still here, it stays */
        if (atomic_load_explicit(slot, memory_order_acquire) == p &&
            atomic_load_explicit(&p->arena, memory_order_relaxed) == ai) {
            *pk = p;
            return a;
        }
        xm__arena_unlock(a);
    }
}

/* What every call on one block does after xm__enter: locks the arena of
 * the pack at the address and finds the block there. Returns the locked
 * arena, or NULL (nothing locked) when no pack covers the address; *r is
 * XM_OK with *p, *g set, or the error. End the call with
 * xm__leave(h, returned arena, r).
 *   xm__lock_block: the block starting exactly at rx (else XM_EBADPTR);
 *   xm__lock_range: the live block holding all of [dst, dst+len) (else
 *   XM_ERANGE). */
static inline xm__arena *xm__lock_block(xm_heap *h, uintptr_t rx, xm__pack **p,
                                        uint32_t *g, xm_result *r)
{
    xm__arena *a = xm__lock_pack_of(h, rx, p);
    *r = a ? xm__block_at(h, *p, rx, g) : XM_EBADPTR;
    return a;
}

static inline xm__arena *xm__lock_range(xm_heap *h, uintptr_t dst, size_t len,
                                        xm__pack **p, uint32_t *g, xm_result *r)
{
    xm__arena *a = xm__lock_pack_of(h, dst, p);
    *r = a ? xm__block_range(*p, dst, len, g) : XM_ERANGE;
    return a;
}

xm_result xm__block_free_locked(xm_heap *h, xm__pack *p, uint32_t g);
xm_result xm__block_publish_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                   int prot);
/* Rewrites [dst, dst+len) of block g (found by xm__block_range);
 * XM_ESTATE if it is not published. Counts a patch. */
xm_result xm__block_patch_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                 uintptr_t dst, const void *src, size_t len);
/* Writes published bytes [dst, dst+len) of block g (checked by the caller)
 * and makes them coherent; failure-atomic. No counter changes. */
xm_result xm__block_write_locked(xm_heap *h, xm__pack *p, uint32_t g,
                                 uintptr_t dst, const void *src, size_t len);
/* Gives the arena's empty packs back to the free ranges (arena locked,
 * not the heap lock). */
void xm__arena_retire_empty_locked(xm_heap *h, xm__arena *a);
void xm__pack_check_runs(const xm__pack *p);
uint32_t xm__pack_longest_run(const xm__pack *p); /* small packs */
int xm__bit_get(const uint64_t *bm, uint32_t i);
uint64_t xm__abit_word(const _Atomic uint64_t *bm, uint32_t i);

/* stage.c: unpublished-block staging table of an arena. The common cases
 * (the newest block in st1, a recycled buffer of the right size) are
 * inline here; stage.c has the table and the rest. */
int xm__stage_grow(xm__arena *a);
void xm__stage_spill(xm__arena *a);   /* st1 -> the table */
void *xm__stage_take_slow(xm__arena *a, uintptr_t rx);
void *xm__stage_get(xm__arena *a, uintptr_t rx);
void *xm__stage_buf_new(size_t usable, size_t align);
/* Buffers of more than XM__STAGE_CLASSES granules (page-aligned). */
void *xm__stage_big_get(xm__arena *a, size_t usable);
void xm__stage_big_put(xm__arena *a, void *buf, size_t usable);
void xm__stage_buf_drop_all(xm__arena *a);
/* XM_DEBUG >= 2: keeps a released staging buffer out of use (above). */
void xm__stage_dead_put(xm__arena *a, void *buf, size_t usable);
/* Makes room for one more entry; -1 when out of memory. */
static inline int xm__stage_reserve(xm__arena *a)
{
    return (a->stcount + 1) * 2 <= a->stcap ? 0 : xm__stage_grow(a);
}
/* Records the staging buffer of rx, a block of p (room reserved): never
 * fails. */
static inline void xm__stage_put(xm__arena *a, uintptr_t rx, void *rw, xm__pack *p)
{
    if (a->st1.rx)
        xm__stage_spill(a);
    a->st1 = (xm__stage){rx, rw};
    a->st1_pack = p;
    a->stcount++;
}
/* Removes and returns rx's staging buffer (NULL: none). */
static inline void *xm__stage_take(xm__arena *a, uintptr_t rx)
{
    if (rx && a->st1.rx == rx) {
        a->st1.rx = 0;
        a->stcount--;
        return a->st1.rw;
    }
    return xm__stage_take_slow(a, rx);
}
/* A staging buffer of `usable` bytes aligned to `align` (>= 16), from the
 * arena's recycled ones or malloc; give it back with xm__stage_buf_put. */
static inline void *xm__stage_buf_get(xm__arena *a, size_t usable, size_t align)
{
    size_t c = (usable >> XM__GRAN_SHIFT) - 1;
    void *b;
#if XM_DEBUG >= 2 /* no recycling: released buffers wait in a->dead */
    if (c < XM__STAGE_CLASSES)
        return xm__stage_buf_new(usable, align);
#endif
    if (c < XM__STAGE_CLASSES && align <= XM__LINE_PAIR && (b = a->stbuf[c])) {
        memcpy(&a->stbuf[c], b, sizeof b); /* the link lives in the buffer */
        a->stbuf_bytes -= usable;
        return b;
    }
    if (c >= XM__STAGE_CLASSES)
        return xm__stage_big_get(a, usable);
    return xm__stage_buf_new(usable, align);
}
static inline void xm__stage_buf_put(xm__arena *a, void *buf, size_t usable)
{
    size_t c = (usable >> XM__GRAN_SHIFT) - 1;
    if (!buf)
        return;
#if XM_DEBUG >= 2
    xm__stage_dead_put(a, buf, usable);
    return;
#endif
    if (c >= XM__STAGE_CLASSES) {
        xm__stage_big_put(a, buf, usable);
        return;
    }
    if (a->stbuf_bytes + usable > XM__STAGE_KEEP) {
        xm__mem_free(buf);
        return;
    }
    memcpy(buf, &a->stbuf[c], sizeof buf);
    a->stbuf[c] = buf;
    a->stbuf_bytes += usable;
}

/* range.c: heap lock held */
void xm__range_init(xm_heap *h);
/* Takes npages pages, preferring a mapped run in state `want`, else NONE.
 * *taken may be more than npages: from NONE, the heap grows in chunks (map
 * them all, give back the rest mapped); from a mapped run, the whole run
 * when no more than `slack` pages would be left (a sliver of a hole that
 * no later block fits would wait in the quarantine for a purge). Returns
 * 0, or -1 when no run is large enough. */
int xm__range_take(xm_heap *h, uint32_t npages, uint32_t slack, int want,
                   uint32_t *page, int *state, int *raised, uint32_t *taken);
void xm__range_put(xm_heap *h, uint32_t page, uint32_t npages, int state,
                   int raised);
/* Releases the mapped free ranges (quarantine) in coalesced runs. */
xm_result xm__purge_locked(xm_heap *h);
/* Releases the oldest when the quarantine passes the lazy bound (bounded
 * work: at most a few dozen runs per call). */
void xm__maybe_purge_locked(xm_heap *h);
size_t xm__lazy_bound(const xm_heap *h);
/* The free run that starts at `page`: 0 with its length and state, or -1. */
int xm__range_at(const xm_heap *h, uint32_t page, uint32_t *npages, int *state);
size_t xm__range_pool_size(uint32_t npages); /* nodes h->fr must hold */
size_t xm__range_check(const xm_heap *h);    /* debug walk: mapped bytes */
/* DUAL: gives the memfd's pages [off, off+len) back to the system (through
 * the alias, MADV_REMOVE, or under XM_STRICT the descriptor, fallocate
 * PUNCH_HOLE). 0 or -errno. */
int xm__file_release(xm_heap *h, uint64_t off, size_t len);

/* inplace.c: the private copies of XM_INPLACE under XM_STRICT or FLIP.
 * commit: makes pages [page, page+n) of the shadow RW (map_fresh);
 * release: back to reserve (purge, FLIP free). 0 or -errno. */
int xm__shadow_commit(xm_heap *h, uint32_t page, uint32_t n);
int xm__shadow_release(xm_heap *h, uintptr_t rx, size_t len);
/* Debug builds (XM_DEBUG >= 2): the bytes a new block's rw and rx start
 * from must be what free left (traps, or a fresh page's zeros): anything
 * else was written through a dead rw. Reports it and aborts. */
void xm__dead_rw_check(xm_heap *h, uintptr_t rx, size_t sz);
void xm__dead_rw_report(const char *what, const void *at);

/* window.c: closes the block's write windows without writing them back
 * (xm_free), arena locked. */
void xm__windows_drop_locked(xm__arena *a, uintptr_t block);

/* heap.c: the start and end of every public call (see heap.c). */
xm_result xm__enter(xm_heap *h, bool mutating);
xm_result xm__leave(xm_heap *h, xm__arena *a, xm_result r);

/* deferred.c: completes async frees, after any drain already in flight
 * (on another thread) is complete; called with no lock held. */
void xm__drain(xm_heap *h);
/* Whether an async free may be incomplete: requested and not taken, or
 * taken by a drain still under way. Until the first request (gate bit
 * XM__G_ASYNC, set before it) this is one load. */
static inline bool xm__drain_needed(xm_heap *h, unsigned gate)
{
    return (gate & XM__G_ASYNC) &&
           (atomic_load(&h->pending) || atomic_load(&h->draining));
}
/* At the start of every call: when it returns, every async free requested
 * before (on any thread) is complete (README: xm_free_async). */
static inline void xm__drain_if_needed(xm_heap *h)
{
    if (xm__drain_needed(h, atomic_load_explicit(&h->gate, memory_order_acquire)))
        xm__drain(h);
}
#if XM_DEBUG >= 1
/* White-box tests: called by a drain once it has taken the pending list,
 * before it frees anything (a drain held up on purpose). */
extern void (*xm__drain_hook)(xm_heap *h);
#endif

/* heap.c */
xm_result xm__os_result(int neg_errno, bool exec);
/* Tells valgrind (when running under it) that code bytes changed. */
void xm__valgrind_discard_slow(void *p, size_t n);
static inline void xm__valgrind_discard(xm_heap *h, void *p, size_t n)
{
    if (h->valgrind)
        xm__valgrind_discard_slow(p, n);
}

/* Debug level 3 walk: aborts with a message if a structure is inconsistent.
 * xm__heap_check takes every lock itself. */
void xm__check_locked(xm_heap *h);
void xm__heap_check(xm_heap *h);
void xm__assert_fail(const char *expr, const char *file, int line);
#define XM_ASSERT(e) ((e) ? (void)0 : xm__assert_fail(#e, __FILE__, __LINE__))

/* sym.c: xm_name's sinks. init reads the environment into h->flags; the
 * hooks run with the block's arena locked, only when h->nsyms != 0. */
#define XM__SYM_FLAGS (XM_PERF_MAP | XM_PERF_JITDUMP | XM_GDB)
void xm__sym_init(xm_heap *h);
void xm__sym_published(xm_heap *h, uintptr_t rx);
void xm__sym_freed(xm_heap *h, uintptr_t rx);
void xm__sym_destroy(xm_heap *h);
void xm__sym_fork_prepare(void);
void xm__sym_fork_parent(void);
void xm__sym_fork_child(void);
static inline bool xm__sym_any(xm_heap *h)
{
    return atomic_load_explicit(&h->nsyms, memory_order_relaxed) != 0;
}

/* live.c: whether an A64 instruction may be replaced while it runs (B, BL,
 * NOP, ISB, BRK, SVC, HVC, SMC); every architecture has it, for tests. */
int xm__a64_hotpatch_safe(uint32_t insn);

/* fork.c */
void xm__fork_register(xm_heap *h);
/* live.c: the live-patch lock across fork (fork.c's lock order). */
void xm__live_fork_prepare(void);
void xm__live_fork_parent(void);
void xm__live_fork_child(void);
void xm__fork_unregister(xm_heap *h);
size_t xm__heap_destroy_all(void); /* tests: after a failed test */

#endif
