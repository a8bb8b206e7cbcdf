/* SPDX-License-Identifier: MIT */
/*
 * bench.c: execmem against the allocators JIT authors use today, side by
 * side in one run (make bench; --quick for a smoke run; --out FILE.json).
 *
 * Contenders (each behind get = allocate + write + make executable, and
 * put = free):
 *   execmem DUAL (default), DUAL + XM_STRICT, FLIP;
 *   asmjit JitAllocator, default options (maps RWX) and kUseDualMapping
 *   (only where Debian's libasmjit-dev was found at build time);
 *   naive: mmap RW, write, mprotect RX, munmap on free, per function;
 *   flip pool: pages recycled through a free list, mprotect RW before each
 *   write and RX after (blocks over a page fall back to naive);
 *   malloc + memcpy + free: not executable, the floor.
 *
 * Every workload runs the contenders in turn (A B C ... A B C ...) for
 * several rounds and reports the median and min-max of each, and the ratio
 * to execmem's default. Method notes:
 *   - system calls: this binary defines mmap, munmap, mprotect, mremap,
 *     madvise, fallocate, ftruncate, pwrite, pwritev and memfd_create itself
 *     (counting, then entering the kernel with syscall()), so every contender,
 *     statically linked, is counted the same way (glibc's malloc uses
 *     internal aliases and is not counted: only code-memory calls are);
 *   - TLB shootdowns: the TLB line of /proc/interrupts, all CPUs, before and
 *     after (machine-wide: other processes add noise);
 *   - resident / live: growth of this process's RSS (/proc/self/statm) over
 *     the bytes asked for, measured with the live set in place.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <execmem.h>
#include "../tools/proc_tlb.h"
#include "floor_model.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- system call counting by interposition ---------------------------- */

static _Atomic uint64_t nsys;
#define COUNT() atomic_fetch_add_explicit(&nsys, 1, memory_order_relaxed)

void *mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
    COUNT();
    return (void *)syscall(SYS_mmap, a, l, p, f, fd, o);
}
int munmap(void *a, size_t l)
{
    COUNT();
    return (int)syscall(SYS_munmap, a, l);
}
int mprotect(void *a, size_t l, int p)
{
    COUNT();
    return (int)syscall(SYS_mprotect, a, l, p);
}
int madvise(void *a, size_t l, int adv)
{
    COUNT();
    return (int)syscall(SYS_madvise, a, l, adv);
}
void *mremap(void *a, size_t ol, size_t nl, int f, ...)
{
    va_list ap;
    va_start(ap, f);
    void *na = (f & MREMAP_FIXED) ? va_arg(ap, void *) : NULL;
    va_end(ap);
    COUNT();
    return (void *)syscall(SYS_mremap, a, ol, nl, f, na);
}
int fallocate(int fd, int mode, off_t o, off_t l)
{
    COUNT();
    return (int)syscall(SYS_fallocate, fd, mode, o, l);
}
int ftruncate(int fd, off_t l)
{
    COUNT();
    return (int)syscall(SYS_ftruncate, fd, l);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o)
{
    COUNT();
    return syscall(SYS_pwrite64, fd, b, n, o);
}
ssize_t pwritev(int fd, const struct iovec *v, int n, off_t o)
{
    COUNT();
    return syscall(SYS_pwritev, fd, v, n, o, 0);
}
int memfd_create(const char *name, unsigned flags)
{
    COUNT();
    return (int)syscall(SYS_memfd_create, name, flags);
}

/* ---- helpers ------------------------------------------------------------ */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}


static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (size_t)res * 4096;
}

/* The bytes every contender writes: `mov rax, imm64; ret`, then traps. */
static unsigned char code_template[512 * 1024];

/* ---- contenders --------------------------------------------------------- */

typedef struct ct ct;
struct ct {
    const char *name, *note;
    bool (*create)(ct *c);
    void (*destroy)(ct *c);
    /* allocate len bytes, write `wlen` of them, make executable; NULL on
       failure. align 0: default. */
    void *(*get)(ct *c, size_t len, size_t wlen, size_t align);
    void (*put)(ct *c, void *rx, size_t len);
    bool executable, available;
    /* execmem */
    xm_backend backend;
    unsigned flags;
    xm_heap *h;
    /* asmjit */
    int dual;
    void *aj;
    /* flip pool (one page per block), guarded by a mutex */
    void **pool;
    size_t npool, cappool;
    pthread_mutex_t lock;
};

static bool xm_create(ct *c)
{
    xm_options o = XM_OPTIONS_INIT;
    o.backend = c->backend;
    o.flags = c->flags;
    return xm_heap_create(&o, &c->h) == XM_OK;
}
static void xm_destroy(ct *c) { xm_heap_destroy(c->h); }
static void *xm_get(ct *c, size_t len, size_t wlen, size_t align)
{
    xm_block b;
    if (xm_alloc(c->h, len, align, &b) != XM_OK)
        return NULL;
    memcpy(b.rw, code_template, wlen);
    if (xm_publish(c->h, b.rx, XM_PROT_RX) != XM_OK)
        return NULL;
    return b.rx;
}
static void xm_put(ct *c, void *rx, size_t len)
{
    (void)len;
    xm_free(c->h, rx);
}

#ifdef HAVE_ASMJIT
void *ajit_create(int dual);
void ajit_destroy(void *a);
int ajit_alloc(void *a, size_t size, void **rx, void **rw);
void ajit_release(void *a, void *rx);
static bool aj_create(ct *c) { return (c->aj = ajit_create(c->dual)) != NULL; }
static void aj_destroy(ct *c) { ajit_destroy(c->aj); }
static void *aj_get(ct *c, size_t len, size_t wlen, size_t align)
{
    (void)align; /* asmjit aligns to its 64-byte granularity */
    void *rx, *rw;
    if (ajit_alloc(c->aj, len, &rx, &rw))
        return NULL;
    memcpy(rw, code_template, wlen);
    return rx;
}
static void aj_put(ct *c, void *rx, size_t len)
{
    (void)len;
    ajit_release(c->aj, rx);
}
#endif

static size_t pages_of(size_t len) { return (len + 4095) & ~(size_t)4095; }

static bool nv_create(ct *c)
{
    (void)c;
    return true;
}
static void nv_destroy(ct *c) { (void)c; }
static void *nv_get(ct *c, size_t len, size_t wlen, size_t align)
{
    (void)c;
    (void)align;
    size_t n = pages_of(len);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(p, code_template, wlen);
    mprotect(p, n, PROT_READ | PROT_EXEC);
    return p;
}
static void nv_put(ct *c, void *rx, size_t len)
{
    (void)c;
    munmap(rx, pages_of(len));
}

static bool fp_create(ct *c)
{
    c->pool = NULL;
    c->npool = c->cappool = 0;
    pthread_mutex_init(&c->lock, NULL);
    return true;
}
static void fp_destroy(ct *c)
{
    for (size_t i = 0; i < c->npool; i++)
        munmap(c->pool[i], 4096);
    free(c->pool);
    pthread_mutex_destroy(&c->lock);
}
static void *fp_get(ct *c, size_t len, size_t wlen, size_t align)
{
    if (len > 4096)
        return nv_get(c, len, wlen, align);
    pthread_mutex_lock(&c->lock);
    void *p = c->npool ? c->pool[--c->npool] : NULL;
    pthread_mutex_unlock(&c->lock);
    if (!p) {
        p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
    }
    mprotect(p, 4096, PROT_READ | PROT_WRITE);
    memcpy(p, code_template, wlen);
    mprotect(p, 4096, PROT_READ | PROT_EXEC);
    return p;
}
static void fp_put(ct *c, void *rx, size_t len)
{
    if (len > 4096) {
        nv_put(c, rx, len);
        return;
    }
    pthread_mutex_lock(&c->lock);
    if (c->npool == c->cappool) {
        c->cappool = c->cappool ? c->cappool * 2 : 1024;
        c->pool = realloc(c->pool, c->cappool * sizeof *c->pool);
    }
    c->pool[c->npool++] = rx;
    pthread_mutex_unlock(&c->lock);
}

static bool ml_create(ct *c)
{
    (void)c;
    return true;
}
static void *ml_get(ct *c, size_t len, size_t wlen, size_t align)
{
    (void)c;
    void *p = align > 16 ? aligned_alloc(align, (len + align - 1) & ~(align - 1))
                         : malloc(len);
    if (p)
        memcpy(p, code_template, wlen);
    return p;
}
static void ml_put(ct *c, void *rx, size_t len)
{
    (void)c;
    (void)len;
    free(rx);
}

/* The floor model (floor_model.h): single-threaded, static state. */
static bool fl_create(ct *c)
{
    (void)c;
    return fm_setup() == 0;
}
static void fl_destroy(ct *c)
{
    (void)c;
    fm_teardown();
}
static void *fl_get(ct *c, size_t len, size_t wlen, size_t align)
{
    (void)c;
    (void)align; /* 64-byte granules */
    void *rw, *rx = fm_alloc(len, &rw);
    memcpy(rw, code_template, wlen);
    fm_publish(rx);
    return rx;
}
static void fl_put(ct *c, void *rx, size_t len)
{
    (void)c;
    (void)len;
    fm_free(rx);
}

static ct contenders[] = {
    {"execmem DUAL", "default", xm_create, xm_destroy, xm_get, xm_put, true, true,
     XM_BACKEND_DUAL, 0, NULL, 0, NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER},
    {"execmem STRICT", "no writable mapping of code", xm_create, xm_destroy,
     xm_get, xm_put, true, true, XM_BACKEND_DUAL, XM_STRICT, NULL, 0, NULL, NULL,
     0, 0, PTHREAD_MUTEX_INITIALIZER},
    {"execmem FLIP", "mprotect backend", xm_create, xm_destroy, xm_get, xm_put,
     true, true, XM_BACKEND_FLIP, 0, NULL, 0, NULL, NULL, 0, 0,
     PTHREAD_MUTEX_INITIALIZER},
#ifdef HAVE_ASMJIT
    {"asmjit default", "maps RWX", aj_create, aj_destroy, aj_get, aj_put, true,
     true, 0, 0, NULL, 0, NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER},
    {"asmjit dual", "kUseDualMapping", aj_create, aj_destroy, aj_get, aj_put,
     true, true, 0, 0, NULL, 1, NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER},
#else
    {"asmjit default", "not installed", NULL, NULL, NULL, NULL, true, false, 0, 0,
     NULL, 0, NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER},
    {"asmjit dual", "not installed", NULL, NULL, NULL, NULL, true, false, 0, 0,
     NULL, 1, NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER},
#endif
    {"naive mmap/mprotect", "per function", nv_create, nv_destroy, nv_get, nv_put,
     true, true, 0, 0, NULL, 0, NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER},
    {"flip pool", "mprotect RW/RX per write", fp_create, fp_destroy, fp_get,
     fp_put, true, true, 0, 0, NULL, 0, NULL, NULL, 0, 0,
     PTHREAD_MUTEX_INITIALIZER},
    {"malloc+memcpy+free", "not executable", ml_create, nv_destroy, ml_get, ml_put,
     false, true, 0, 0, NULL, 0, NULL, NULL, 0, 0, PTHREAD_MUTEX_INITIALIZER},
    {"execmem INPLACE", "no staging: not NX until published", xm_create, xm_destroy,
     xm_get, xm_put, true, true, XM_BACKEND_DUAL, XM_INPLACE, NULL, 0, NULL, NULL,
     0, 0, PTHREAD_MUTEX_INITIALIZER},
    {"floor model", "execmem's byte passes, no bookkeeping, 1 thread", fl_create,
     fl_destroy, fl_get, fl_put, true, true, 0, 0, NULL, 0, NULL, NULL, 0, 0,
     PTHREAD_MUTEX_INITIALIZER},
    /* unavailable (main) where the CPU or kernel has no protection keys;
       under an emulator (make check-pkeys) its times are not comparable */
    {"execmem PKEYS", "alias keyed: WRPKRU per call", xm_create, xm_destroy,
     xm_get, xm_put, true, true, XM_BACKEND_DUAL, XM_PKEYS, NULL, 0, NULL, NULL,
     0, 0, PTHREAD_MUTEX_INITIALIZER},
};
enum { NCT = sizeof contenders / sizeof contenders[0] };

/* ---- measurements ------------------------------------------------------- */

typedef struct sample {
    double ns_per_op;   /* wall time per operation */
    double sys_per_op;  /* counted system calls per operation */
    double tlb_per_kop; /* TLB shootdowns per 1000 operations */
    double rss_ratio;   /* resident growth / live bytes asked (0: n/a) */
    double revocations_per_op; /* execmem contenders only */
    double extra;       /* workload-specific (calls/s, 2T/1T ratio) */
} sample;

typedef struct result {
    const char *workload;
    sample s[NCT][16]; /* [contender][round] */
    bool ran[NCT];
    int rounds;
} result;

typedef struct wl_params {
    size_t live, minsz, maxsz;
    uint64_t ops;
    int threads;
    bool spinner;
    size_t wlen; /* bytes written per block (0: all of it, up to 64 KiB) */
    size_t align; /* 0, or (size_t)-1: random power of two up to a page */
    size_t minpg, maxpg; /* page-multiple sizes (kernel scenarios), else 0 */
    uint64_t fast_ops; /* ops for contenders without a system call per op
                          (0: ops); longer runs steady the 2-thread ratio */
} wl_params;

/* FLIP, naive and the flip pool make system calls every op: they keep
 * p->ops; the others run p->fast_ops when it is set. */
static uint64_t ops_of(const ct *c, const wl_params *p)
{
    bool slow = c->get == nv_get || c->get == fp_get ||
                (c->create == xm_create && c->backend == XM_BACKEND_FLIP);
    return p->fast_ops && !slow ? p->fast_ops : p->ops;
}

typedef struct churn_arg {
    ct *c;
    const wl_params *p;
    uint64_t seed;
    size_t live_bytes;
    bool fail;
    double t_start, t_end; /* this thread's own clock around its ops */
    struct churn_arg *base; /* ca[0]: this worker's index is ca - base */
} churn_arg;

/* Worker t runs on CPU t (mod the CPUs online), the spinner on the last
 * CPU: "two threads on two cores" is then what is measured, not where the
 * scheduler happened to put them (unpinned, both workers sometimes shared
 * one core for a whole round and the 2-thread figure swung from 1.0x to
 * 1.9x between runs). */
static void pin_to_cpu(long cpu)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(cpu % n), &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static _Atomic int spin_stop;
static void *spinner_main(void *a)
{
    (void)a;
    pin_to_cpu(sysconf(_SC_NPROCESSORS_ONLN) - 1);
    volatile uint64_t x = 0;
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
        x++;
    return NULL;
}

static size_t pick_size(const wl_params *p, uint64_t *s)
{
    if (p->maxpg)
        return 4096 * (p->minpg + rng(s) % (p->maxpg - p->minpg + 1));
    return p->minsz + rng(s) % (p->maxsz - p->minsz + 1);
}

static size_t pick_align(const wl_params *p, uint64_t *s)
{
    if (p->align == (size_t)-1)
        return (size_t)1 << (rng(s) % 13);
    return p->align;
}

static size_t wlen_of(const wl_params *p, size_t len)
{
    size_t w = p->wlen ? p->wlen : len;
    if (w > len)
        w = len;
    return w > sizeof code_template ? sizeof code_template : w;
}

typedef struct live_set {
    void **rx;
    size_t *len;
    size_t n;
} live_set;

static bool fill(ct *c, const wl_params *p, live_set *ls, size_t n, uint64_t *seed,
                 size_t *bytes)
{
    ls->rx = calloc(n ? n : 1, sizeof *ls->rx);
    ls->len = calloc(n ? n : 1, sizeof *ls->len);
    ls->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = pick_size(p, seed);
        ls->rx[i] = c->get(c, len, wlen_of(p, len), pick_align(p, seed));
        ls->len[i] = len;
        if (!ls->rx[i])
            return false;
        *bytes += len;
    }
    return true;
}

static void drain(ct *c, live_set *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        if (ls->rx[i])
            c->put(c, ls->rx[i], ls->len[i]);
    free(ls->rx);
    free(ls->len);
}

static _Atomic int churn_go;
/* each worker posts once when its clock has stopped: the main thread
   sleeps in sem_wait meanwhile (polling it with nanosleep woke it every
   few tens of microseconds, and each wake-up took a core from a worker:
   with 2 workers on 2 CPUs that cost the 2-thread figure up to a third) */
static sem_t churn_done;
static void *churn_thread(void *a)
{
    churn_arg *ca = a;
    const wl_params *p = ca->p;
    ct *c = ca->c;
    live_set ls;
    size_t per = p->live / (size_t)p->threads;
    /* the worker's state lives on its own stack: ca[] entries of two
       workers share cache lines, and writing the seed there every op made
       the 2-thread figure swing with the stack's alignment */
    uint64_t seed = ca->seed;
    bool fail = false;
    pin_to_cpu(ca - ca->base);
    if (!fill(c, p, &ls, per, &seed, &ca->live_bytes))
        fail = true;
    while (!atomic_load(&churn_go))
        ;
    ca->t_start = now_ns();
    uint64_t nops = ops_of(c, p) / (uint64_t)p->threads;
    for (uint64_t i = 0; i < nops && !fail; i++) {
        if (per) {
            size_t k = rng(&seed) % per;
            c->put(c, ls.rx[k], ls.len[k]);
            size_t len = pick_size(p, &seed);
            ls.rx[k] = c->get(c, len, wlen_of(p, len), pick_align(p, &seed));
            ls.len[k] = len;
            if (!ls.rx[k])
                fail = true;
        } else { /* alloc + free, nothing kept (kernel scenarios) */
            size_t len = pick_size(p, &seed);
            void *rx = c->get(c, len, wlen_of(p, len), pick_align(p, &seed));
            if (!rx)
                fail = true;
            else
                c->put(c, rx, len);
        }
    }
    ca->t_end = now_ns();
    ca->fail = fail;
    atomic_fetch_add(&churn_go, 1);
    sem_post(&churn_done);
    while (atomic_load(&churn_go) <= p->threads)
        ; /* all stop the clock before anyone drains */
    drain(c, &ls);
    return NULL;
}

static bool run_churn(ct *c, const wl_params *p, uint64_t seed, sample *out)
{
    if (!c->create(c))
        return false;
    memset(out, 0, sizeof *out);
    pthread_t sp, th[8];
    churn_arg ca[8];
    atomic_store(&spin_stop, 0);
    if (p->spinner)
        pthread_create(&sp, NULL, spinner_main, NULL);
    size_t rss0 = rss_bytes();
    atomic_store(&churn_go, 0);
    for (int t = 0; t < p->threads; t++) {
        ca[t] = (churn_arg){c, p, seed * 7919 + (uint64_t)t + 1, 0, false, 0, 0, ca};
        pthread_create(&th[t], NULL, churn_thread, &ca[t]);
    }
    /* the live sets are built; wait a moment for them, then time */
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    size_t rss1 = rss_bytes();
    xm_stats s0, s1;
    if (c->h)
        xm_heap_stats(c->h, &s0);
    uint64_t sys0 = atomic_load(&nsys);
    long long tlb0 = proc_tlb_shootdowns();
    double t0 = now_ns();
    atomic_store(&churn_go, 1);
    for (int t = 0; t < p->threads; t++)
        while (sem_wait(&churn_done))
            ;
    double t1 = now_ns();
    long long tlb1 = proc_tlb_shootdowns();
    uint64_t sys1 = atomic_load(&nsys);
    if (c->h)
        xm_heap_stats(c->h, &s1);
    atomic_fetch_add(&churn_go, 1); /* release the threads to drain */
    bool fail = false;
    size_t live_bytes = 0;
    for (int t = 0; t < p->threads; t++) {
        pthread_join(th[t], NULL);
        fail |= ca[t].fail;
        live_bytes += ca[t].live_bytes;
    }
    /* time: first start to last end, from the workers' own clocks, so the
       main thread's wake-up latency (both cores busy) does not count */
    t0 = ca[0].t_start;
    t1 = ca[0].t_end;
    for (int t = 1; t < p->threads; t++) {
        t0 = ca[t].t_start < t0 ? ca[t].t_start : t0;
        t1 = ca[t].t_end > t1 ? ca[t].t_end : t1;
    }
    atomic_store(&spin_stop, 1);
    if (p->spinner)
        pthread_join(sp, NULL);
    c->destroy(c);
    c->h = NULL;
    double ops = (double)(ops_of(c, p) / (uint64_t)p->threads * (uint64_t)p->threads);
    out->ns_per_op = (t1 - t0) / ops;
    out->sys_per_op = (double)(sys1 - sys0) / ops;
    out->tlb_per_kop = tlb0 >= 0 ? (double)(tlb1 - tlb0) * 1000.0 / ops : -1;
    out->rss_ratio = live_bytes ? (double)(rss1 > rss0 ? rss1 - rss0 : 0) /
                                      (double)live_bytes
                                : 0;
    if (c->h == NULL && c->create == xm_create)
        out->revocations_per_op = (double)(s1.revocations - s0.revocations) / ops;
    return !fail;
}

/* batch: allocate n, then free all in shuffled order; ns per alloc+free */
static bool run_batch(ct *c, size_t n, uint64_t seed, sample *out)
{
    if (!c->create(c))
        return false;
    memset(out, 0, sizeof *out);
    void **rx = malloc(n * sizeof *rx);
    size_t *len = malloc(n * sizeof *len);
    uint64_t sys0 = atomic_load(&nsys);
    long long tlb0 = proc_tlb_shootdowns();
    double t0 = now_ns();
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        len[i] = 64 + rng(&seed) % 961;
        rx[i] = c->get(c, len[i], len[i], 0);
        ok = rx[i] != NULL;
    }
    for (size_t i = n - 1; ok && i > 0; i--) { /* shuffle */
        size_t j = rng(&seed) % (i + 1);
        void *t = rx[i];
        rx[i] = rx[j];
        rx[j] = t;
        size_t l = len[i];
        len[i] = len[j];
        len[j] = l;
    }
    for (size_t i = 0; ok && i < n; i++)
        c->put(c, rx[i], len[i]);
    double t1 = now_ns();
    out->ns_per_op = (t1 - t0) / (double)n;
    out->sys_per_op = (double)(atomic_load(&nsys) - sys0) / (double)n;
    long long tlb1 = proc_tlb_shootdowns();
    out->tlb_per_kop = tlb0 >= 0 ? (double)(tlb1 - tlb0) * 1000.0 / (double)n : -1;
    free(rx);
    free(len);
    c->destroy(c);
    c->h = NULL;
    return ok;
}

/* exec: n small functions, called in random order; extra = calls per second */
static bool run_exec(ct *c, size_t n, uint64_t calls, uint64_t seed, sample *out)
{
    if (!c->executable)
        return false;
    if (!c->create(c))
        return false;
    memset(out, 0, sizeof *out);
    void **rx = malloc(n * sizeof *rx);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        uint64_t v = i; /* each function returns its own index */
        memcpy(code_template + 2, &v, 8);
        rx[i] = c->get(c, 32, 16, 0);
        ok = rx[i] != NULL;
    }
    uint64_t zero = 0;
    memcpy(code_template + 2, &zero, 8);
    uint64_t sum = 0, want = 0;
    double t0 = now_ns();
    for (uint64_t k = 0; ok && k < calls; k++) {
        size_t i = rng(&seed) % n;
        uint64_t (*f)(void);
        memcpy(&f, &rx[i], sizeof f);
        sum += f();
        want += i;
    }
    double t1 = now_ns();
    if (sum != want)
        ok = false;
    out->ns_per_op = (t1 - t0) / (double)calls;
    out->extra = (double)calls * 1e9 / (t1 - t0);
    for (size_t i = 0; i < n && rx[i]; i++)
        c->put(c, rx[i], 32);
    free(rx);
    c->destroy(c);
    c->h = NULL;
    return ok;
}

/* strict publish: nfn functions either one per block and publish, or 64 per
 * block and one publish; extra = revocations per publish */
static bool run_publish(ct *c, size_t nfn, int per_block, sample *out)
{
    if (!c->create(c))
        return false;
    memset(out, 0, sizeof *out);
    xm_stats s0, s1;
    xm_heap_stats(c->h, &s0);
    size_t nblocks = nfn / (size_t)per_block;
    void **rx = malloc(nblocks * sizeof *rx);
    double t0 = now_ns();
    bool ok = true;
    for (size_t b = 0; b < nblocks && ok; b++) {
        xm_block blk;
        ok = xm_alloc(c->h, (size_t)per_block * 64, 0, &blk) == XM_OK;
        for (int k = 0; ok && k < per_block; k++)
            memcpy((char *)blk.rw + k * 64, code_template, 64);
        ok = ok && xm_publish(c->h, blk.rx, XM_PROT_RX) == XM_OK;
        rx[b] = ok ? blk.rx : NULL;
    }
    double t1 = now_ns();
    xm_heap_stats(c->h, &s1);
    out->ns_per_op = (t1 - t0) / (double)nfn;
    out->sys_per_op = (double)(s1.syscalls - s0.syscalls) / (double)nfn;
    out->extra = (double)(s1.revocations - s0.revocations) / (double)nblocks;
    for (size_t b = 0; b < nblocks && rx[b]; b++)
        xm_free(c->h, rx[b]);
    free(rx);
    c->destroy(c);
    c->h = NULL;
    return ok;
}

/* ---- reporting ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stat3 {
    double med, min, max;
} stat3;

static stat3 stat_of(const result *r, int c, size_t field_off)
{
    double v[16];
    for (int i = 0; i < r->rounds; i++)
        v[i] = *(const double *)((const char *)&r->s[c][i] + field_off);
    qsort(v, (size_t)r->rounds, sizeof v[0], cmp_double);
    stat3 s = {v[r->rounds / 2], v[0], v[r->rounds - 1]};
    if (r->rounds % 2 == 0)
        s.med = (v[r->rounds / 2 - 1] + v[r->rounds / 2]) / 2;
    return s;
}
#define STAT(r, c, f) stat_of(r, c, offsetof(sample, f))

static FILE *jout;
static bool jfirst = true;
static const char *only; /* --only PREFIX: the workloads whose name starts so */

static const char *with[NCT]; /* --with PREFIX (repeatable): those contenders */
static int nwith;

static bool wanted(const char *workload)
{
    return !only || !strncmp(workload, only, strlen(only));
}

static bool chosen(int c)
{
    for (int i = 0; i < nwith; i++)
        if (!strncmp(contenders[c].name, with[i], strlen(with[i])))
            return true;
    return nwith == 0;
}

static void report(const result *r, const char *unit, bool show_extra,
                   const char *extra_name)
{
    if (!r->rounds)
        return; /* not wanted */
    printf("\n== %s  (%d rounds; median [min-max]; ratio = median / execmem DUAL's)\n",
           r->workload, r->rounds);
    printf("  %-20s %24s %7s %9s %9s %8s %8s%s%s\n", "contender", unit, "ratio",
           "sys/op", "TLB/kop", "revoc/op", "rss/live", show_extra ? "  " : "",
           show_extra ? extra_name : "");
    stat3 base = r->ran[0] ? STAT(r, 0, ns_per_op) : (stat3){0, 0, 0};
    for (int c = 0; c < NCT; c++) {
        const ct *k = &contenders[c];
        if (!r->ran[c]) {
            printf("  %-20s %s\n", k->name,
                   !k->available ? (k->create ? "no protection keys here"
                                              : "not installed (apt-get install libasmjit-dev)")
                                 : "n/a for this workload");
            continue;
        }
        stat3 t = STAT(r, c, ns_per_op), sy = STAT(r, c, sys_per_op),
              tl = STAT(r, c, tlb_per_kop), rv = STAT(r, c, revocations_per_op),
              rs = STAT(r, c, rss_ratio), ex = STAT(r, c, extra);
        char tbuf[64];
        snprintf(tbuf, sizeof tbuf, "%.0f [%.0f-%.0f]", t.med, t.min, t.max);
        printf("  %-20s %24s %7.2f %9.4f %9.2f %8.4f %8.2f", k->name, tbuf,
               base.med > 0 ? t.med / base.med : 0, sy.med, tl.med, rv.med, rs.med);
        if (show_extra)
            printf("  %.3g", ex.med);
        if (k->note && strcmp(k->note, "default"))
            printf("  (%s)", k->note);
        printf("\n");
        if (jout) {
            fprintf(jout,
                    "%s\n  {\"workload\": \"%s\", \"contender\": \"%s\", "
                    "\"note\": \"%s\", \"rounds\": %d, \"ns_per_op\": {\"median\": %.2f, "
                    "\"min\": %.2f, \"max\": %.2f}, \"ratio_to_execmem_dual\": %.3f, "
                    "\"syscalls_per_op\": %.5f, \"tlb_shootdowns_per_1000_ops\": %.3f, "
                    "\"revocations_per_op\": %.5f, \"resident_over_live\": %.3f, "
                    "\"%s\": %.4g}",
                    jfirst ? "" : ",", r->workload, k->name, k->note, r->rounds,
                    t.med, t.min, t.max, base.med > 0 ? t.med / base.med : 0,
                    sy.med, tl.med, rv.med, rs.med,
                    extra_name ? extra_name : "extra", ex.med);
            jfirst = false;
        }
    }
}

/* Runs a churn-style workload for the contenders in mask, A B C ... rounds. */
static void churn_workload(const char *name, const wl_params *p, int rounds,
                           unsigned mask, result *r)
{
    memset(r, 0, sizeof *r);
    r->workload = name;
    r->rounds = wanted(name) ? rounds : 0;
    for (int round = 0; round < r->rounds; round++)
        for (int c = 0; c < NCT; c++) {
            if (!(mask & (1u << c)) || !contenders[c].available || !chosen(c))
                continue;
            if (!run_churn(&contenders[c], p, (uint64_t)round + 1, &r->s[c][round])) {
                fprintf(stderr, "bench: %s failed in %s\n", contenders[c].name, name);
                continue;
            }
            r->ran[c] = true;
        }
}

enum {
    M_XM = 0x7u, M_DUAL = 0x1u, M_ASMJIT = 0x18u, M_NAIVE = 0x20u,
    M_POOL = 0x40u, M_MALLOC = 0x80u, M_INPLACE = 0x100u, M_FLOOR = 0x200u,
    M_PKEYS = 0x400u,
    M_ALL = 0x5FFu /* all but the floor model, which is single-threaded */
};

int main(int argc, char **argv)
{
    bool quick = false;
    const char *outpath = "bench/results.json";
    sem_init(&churn_done, 0, 0);
    xm_sysinfo si; /* "execmem PKEYS" needs protection keys */
    contenders[NCT - 1].available = xm_system_info(&si) == XM_OK && si.pkeys;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            outpath = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--with") && i + 1 < argc && nwith < NCT)
            with[nwith++] = argv[++i];
        else {
            fprintf(stderr, "usage: bench [--quick] [--out results.json] [--only WORKLOAD] [--with CONTENDER]...\n");
            return 2;
        }
    }
    memset(code_template, 0xCC, sizeof code_template);
    static const unsigned char ret[] = {0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0xC3};
    memcpy(code_template, ret, sizeof ret);
    jout = fopen(outpath, "w");
    if (!jout)
        fprintf(stderr, "bench: cannot write %s: %s (table only)\n", outpath,
                strerror(errno));
    else
        fprintf(jout, "{\"quick\": %s, \"results\": [", quick ? "true" : "false");
    int R = quick ? 3 : 5;
    uint64_t K = quick ? 1 : 8; /* scale of operation counts (--quick: 1/8) */
    printf("execmem %u.%u.%u benchmark%s; %ld CPUs; time per op in ns\n",
           XM_VERSION_MAJOR, XM_VERSION_MINOR, XM_VERSION_PATCH,
           quick ? " (--quick)" : "", sysconf(_SC_NPROCESSORS_ONLN));
    result r;

    /* full runs give contenders without a system call per op 4x (churn)
       and 10x (threads) more operations: short rounds were mostly noise */
    uint64_t F = quick ? 0 : 1;
    wl_params churn = {1000, 64, 1024, 25000 * K, 1, false, 0, 0, 0, 0, F * 100000 * K};
    churn_workload("churn: 1000 live, 64-1024 B", &churn, R, M_ALL | M_FLOOR, &r);
    report(&r, "ns/op", false, NULL);

    wl_params frag = {10000, 8, 1031, 25000 * K, 1, false, 0, 0, 0, 0, F * 100000 * K};
    churn_workload("churn-fragmented: 10000 live, 8-1031 B", &frag, R,
                   M_XM | M_ASMJIT | M_MALLOC | M_NAIVE | M_INPLACE | M_FLOOR | M_PKEYS, &r);
    report(&r, "ns/op", false, NULL);

    memset(&r, 0, sizeof r);
    r.workload = "batch: 100000 allocs, then frees in shuffled order";
    r.rounds = wanted(r.workload) ? R : 0;
    for (int round = 0; round < r.rounds; round++)
        for (int c = 0; c < NCT; c++) {
            if (!contenders[c].available || !chosen(c) || c == 5 || c == 6 ||
                contenders[c].get == fl_get)
                continue; /* naive/pool: 100000 mappings, see churn; the floor
                             model is for the churn rows */
            if (run_batch(&contenders[c], quick ? 30000 : 100000, (uint64_t)round + 9,
                          &r.s[c][round]))
                r.ran[c] = true;
        }
    report(&r, "ns/(alloc+free)", false, NULL);

    /* 1 and 2 threads alternate round by round (1T, 2T, 1T, 2T ...), and
       the scaling figure is the median of each round's own ratio: this
       host's speed drifts over minutes, and two tables timed minutes
       apart made the ratio swing from 1.5x to 1.9x */
    {
        static result one, two;
        wl_params thr[2] = {churn, churn};
        for (int t = 0; t < 2; t++) {
            thr[t].threads = t + 1;
            thr[t].ops = 25000 * K * (uint64_t)(t + 1);
            thr[t].fast_ops = F * 10 * thr[t].ops; /* 0.2 s a round */
        }
        const char *names[2] = {"threads: churn on 1 thread", "threads: churn on 2 threads"};
        result *res[2] = {&one, &two};
        for (int t = 0; t < 2; t++) {
            memset(res[t], 0, sizeof *res[t]);
            res[t]->workload = names[t];
            res[t]->rounds = wanted(names[t]) && wanted(names[1 - t]) ? R : 0;
        }
        unsigned mask = M_XM | M_ASMJIT | M_MALLOC | M_INPLACE | M_PKEYS;
        for (int round = 0; round < one.rounds; round++)
            for (int c = 0; c < NCT; c++) {
                if (!(mask & (1u << c)) || !contenders[c].available || !chosen(c))
                    continue;
                for (int t = 0; t < 2; t++)
                    if (run_churn(&contenders[c], &thr[t], (uint64_t)round + 1,
                                  &res[t]->s[c][round]))
                        res[t]->ran[c] = true;
            }
        report(&one, "ns/op (total)", false, NULL);
        report(&two, "ns/op (total)", false, NULL);
        for (int c = 0; c < NCT && one.rounds; c++) {
            if (!one.ran[c] || !two.ran[c])
                continue;
            double q[16];
            for (int round = 0; round < one.rounds; round++)
                q[round] = one.s[c][round].ns_per_op / two.s[c][round].ns_per_op;
            qsort(q, (size_t)one.rounds, sizeof q[0], cmp_double);
            printf("  %-20s 2-thread throughput / 1-thread: %.2fx (median of the "
                   "rounds' ratios; %.2fx-%.2fx)\n",
                   contenders[c].name, q[one.rounds / 2], q[0], q[one.rounds - 1]);
            if (jout) {
                fprintf(jout,
                        "%s\n  {\"workload\": \"threads: 2-thread / 1-thread throughput\", "
                        "\"contender\": \"%s\", \"median_of_round_ratios\": %.3f, "
                        "\"min\": %.3f, \"max\": %.3f}",
                        jfirst ? "" : ",", contenders[c].name, q[one.rounds / 2], q[0],
                        q[one.rounds - 1]);
                jfirst = false;
            }
        }
    }

    wl_params shoot = churn;
    shoot.spinner = true;
    shoot.ops = 10000 * K;
    churn_workload("shootdowns: churn with a second thread spinning on the other core",
                   &shoot, R, M_ALL, &r);
    report(&r, "ns/op", false, NULL);

    struct {
        const char *name;
        wl_params p;
    } kern[] = {
        {"vmalloc fix_size: 1 page", {0, 0, 0, 10000 * K, 1, false, 64, 0, 1, 1, 0}},
        {"vmalloc random_size: 1-100 pages", {0, 0, 0, 1000 * K, 1, false, 64, 0, 1, 100, 0}},
        {"vmalloc fix_align: 1 page, 4 KiB aligned", {0, 0, 0, 10000 * K, 1, false, 64, 4096, 1, 1, 0}},
        {"vmalloc random_size_align: 1-2048 B, align 1-4096", {0, 1, 2048, 10000 * K, 1, false, 64, (size_t)-1, 0, 0, 0}},
        {"vmalloc long_busy_list: 10000 live pages, churn", {10000, 0, 0, 10000 * K, 1, false, 64, 0, 1, 1, 0}},
    };
    for (size_t k = 0; k < sizeof kern / sizeof kern[0]; k++) {
        churn_workload(kern[k].name, &kern[k].p, R, M_ALL, &r);
        report(&r, "ns/op", false, NULL);
    }

    memset(&r, 0, sizeof r);
    r.workload = "exec: 10000 functions called in random order";
    r.rounds = wanted(r.workload) ? R : 0;
    for (int round = 0; round < r.rounds; round++)
        for (int c = 0; c < NCT; c++) {
            if (!contenders[c].available || !chosen(c) || !contenders[c].executable || c == 6 ||
                contenders[c].get == fl_get)
                continue;
            if (run_exec(&contenders[c], 10000, 1000000 * K, (uint64_t)round + 3,
                         &r.s[c][round]))
                r.ran[c] = true;
        }
    report(&r, "ns/call", true, "calls_per_second");

    static const int per_publish[2] = {1, 64};
    for (int k = 0; k < 2; k++) {
        memset(&r, 0, sizeof r);
        r.workload = k ? "strict publish: 64 functions per xm_publish"
                       : "strict publish: 1 function per xm_publish";
        r.rounds = wanted(r.workload) ? R : 0;
        for (int round = 0; round < r.rounds; round++)
            for (int c = 0; c < NCT; c++)
                if ((c < 2 || (contenders[c].flags & XM_PKEYS)) &&
                    contenders[c].available && chosen(c) && run_publish(&contenders[c], 6400, per_publish[k], &r.s[c][round]))
                    r.ran[c] = true;
        report(&r, "ns/function", true, "revocations_per_publish");
    }

    if (jout) {
        fprintf(jout, "\n]}\n");
        fclose(jout);
        printf("\nfigures written to %s\n", outpath);
    }
    return 0;
}
