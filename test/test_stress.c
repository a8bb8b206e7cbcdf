/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c: randomized load on one heap per backend (mimalloc's
 * test-stress). Threads do random alloc / write / publish / patch / query /
 * free / free_async / purge / data blocks with random sizes and alignments.
 * Every code block returns a value unique to it, and is called and checked
 * before it is freed. A timer signal fires often and frees handed-over
 * blocks with xm_free_async from inside the handler. At random moments a
 * thread forks a child that calls its blocks and exits. At the end the
 * heap's statistics must match the test's own count of live blocks and
 * bytes, and the structure walk must pass.
 *
 * Scale comes from the environment (make stress SECONDS=N THREADS=N SEED=N):
 * XM_STRESS_SECONDS (default 0.6 per backend), XM_STRESS_THREADS (3),
 * XM_STRESS_SEED (time based; printed so a failure can be replayed).
 */
#include "test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ST_SLOTS = 256, ST_HANDOFF = 64, ST_MAXTH = 16 };

typedef struct st_slot {
    void *rx;
    size_t size;
    uint64_t val; /* 0: data block or unpublished */
    bool pub, data;
} st_slot;

typedef struct st_thread {
    int id;
    uint64_t seed;
    st_slot s[ST_SLOTS];
    size_t live, bytes;
    uint64_t ops, calls, forks, patches, handed;
    int bad;
    char why[160];
} st_thread;

static xm_heap *st_heap;
static _Atomic(void *) st_handoff[ST_HANDOFF]; /* blocks for the handler */
static _Atomic uint64_t st_sig_frees, st_signals;
static double st_deadline;
static bool st_inplace; /* XM_INPLACE: rw stays valid after publish */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static void st_on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&st_signals, 1);
    for (int i = 0; i < ST_HANDOFF; i++) {
        void *rx = atomic_exchange(&st_handoff[i], NULL);
        if (rx) {
            if (xm_free_async(st_heap, rx) == XM_OK)
                atomic_fetch_add(&st_sig_frees, 1);
            return; /* one per signal */
        }
    }
}

#define ST_FAIL(t, ...)                                                        \
    do {                                                                       \
        snprintf((t)->why, sizeof (t)->why, __VA_ARGS__);                      \
        (t)->bad = 1;                                                          \
        return;                                                                \
    } while (0)

static size_t st_size(uint64_t r)
{
    switch (r % 16) {
    case 0:
        return RET_LEN + r / 16 % 70000; /* large: page runs */
    case 1:
    case 2:
        return RET_LEN + r / 16 % 16000;
    default:
        return RET_LEN + r / 16 % 1000; /* small: packed granules */
    }
}

static void st_drop(st_thread *t, int k)
{
    t->live--;
    t->bytes -= t->s[k].size;
    t->s[k].rx = NULL;
}

static void st_check_block(st_thread *t, int k)
{
    st_slot *b = &t->s[k];
    if (b->pub && !b->data && call_at(b->rx) != b->val)
        ST_FAIL(t, "block %p returned %llx, expected %llx", b->rx,
                (unsigned long long)call_at(b->rx), (unsigned long long)b->val);
    if (b->pub && b->data && memcmp(b->rx, &b->val, 8) != 0)
        ST_FAIL(t, "data block %p changed", b->rx);
    t->calls++;
}

static int st_child(st_thread *t)
{
    for (int k = 0; k < ST_SLOTS; k++) {
        st_slot *b = &t->s[k];
        if (b->rx && b->pub && !b->data && call_at(b->rx) != b->val)
            return 1;
    }
    /* the child may not change the parent's heap (DUAL: frozen) */
    xm_stats s;
    if (xm_heap_stats(st_heap, &s) != XM_OK)
        return 2;
    if (s.backend == XM_BACKEND_DUAL) {
        xm_block nb;
        if (xm_alloc(st_heap, 64, 0, &nb) != XM_ESTATE)
            return 3;
    }
    return 0;
}

static void st_op(st_thread *t)
{
    uint64_t r = rnd(&t->seed);
    int k = (int)(r % ST_SLOTS);
    st_slot *b = &t->s[k];
    unsigned op = (unsigned)(r >> 32) % 100;
    xm_result e;
    t->ops++;
    if (!b->rx) {
        if (op < 8) { /* data block */
            xm_block nb;
            size_t sz = 8 + (size_t)(r >> 40) % 3000;
            e = xm_alloc_data(st_heap, sz, (size_t)1 << (r >> 20) % 8, &nb);
            if (e != XM_OK)
                ST_FAIL(t, "alloc_data: %s", xm_strerror(e));
            uint64_t v = r | 1;
            memcpy(nb.rw, &v, 8);
            if ((e = xm_publish(st_heap, nb.rx, XM_PROT_R)) != XM_OK)
                ST_FAIL(t, "publish data: %s", xm_strerror(e));
            *b = (st_slot){nb.rx, nb.size, v, true, true};
        } else if (op < 24) { /* code loaded in one call (xm_load) */
            static _Thread_local unsigned char src[RET_LEN + 70000];
            size_t sz = st_size(r >> 8);
            uint64_t v = ((uint64_t)t->id << 56) | (t->ops << 8) | 0x5B;
            emit_ret(src, v);
            xm_block nb;
            if ((e = xm_load(st_heap, src, sz, 0, XM_PROT_RX, &nb)) != XM_OK)
                ST_FAIL(t, "load: %s", xm_strerror(e));
            *b = (st_slot){nb.rx, nb.size, v, true, false};
        } else { /* code block, published now or later */
            xm_block nb;
            size_t align = (r >> 24) % 4 == 0 ? (size_t)1 << (r >> 26) % 13 : 0;
            e = xm_alloc(st_heap, st_size(r >> 8), align, &nb);
            if (e != XM_OK)
                ST_FAIL(t, "alloc: %s", xm_strerror(e));
            if (align && ((uintptr_t)nb.rx & (align - 1)))
                ST_FAIL(t, "alloc: rx %p not aligned to %zu", nb.rx, align);
            uint64_t v = ((uint64_t)t->id << 56) | (t->ops << 8) | 0x5A;
            emit_ret(nb.rw, v);
            *b = (st_slot){nb.rx, nb.size, v, false, false};
            if (op < 80) {
                if ((e = xm_publish(st_heap, nb.rx, XM_PROT_RX)) != XM_OK)
                    ST_FAIL(t, "publish: %s", xm_strerror(e));
                b->pub = true;
            }
        }
        t->live++;
        t->bytes += b->size;
        return;
    }
    st_check_block(t, k);
    if (t->bad)
        return;
    if (op < 30) { /* free */
        if ((e = xm_free(st_heap, b->rx)) != XM_OK)
            ST_FAIL(t, "free: %s", xm_strerror(e));
        st_drop(t, k);
    } else if (op < 38) { /* async free from this thread */
        if ((e = xm_free_async(st_heap, b->rx)) != XM_OK)
            ST_FAIL(t, "free_async: %s", xm_strerror(e));
        st_drop(t, k);
    } else if (op < 46) { /* hand over to the signal handler */
        int i = (int)((r >> 12) % ST_HANDOFF);
        void *expect = NULL;
        if (atomic_compare_exchange_strong(&st_handoff[i], &expect, b->rx)) {
            t->handed++;
            st_drop(t, k);
        }
    } else if (op < 60) { /* publish or patch */
        if (!b->pub) {
            if ((e = xm_publish(st_heap, b->rx, XM_PROT_RX)) != XM_OK)
                ST_FAIL(t, "late publish: %s", xm_strerror(e));
            b->pub = true;
        } else if (!b->data) {
            uint64_t v = b->val ^ 0xFF00;
            if ((e = patch_ret(st_heap, b->rx, v)) != XM_OK)
                ST_FAIL(t, "patch: %s", xm_strerror(e));
            b->val = v;
            t->patches++;
        }
    } else if (op < 70) { /* query an interior address */
        xm_block q;
        size_t off = (size_t)(r >> 16) % b->size;
        if ((e = xm_query(st_heap, (char *)b->rx + off, &q)) != XM_OK)
            ST_FAIL(t, "query: %s", xm_strerror(e));
        if (q.rx != b->rx || q.size != b->size)
            ST_FAIL(t, "query: %p/%zu, expected %p/%zu", q.rx, q.size, b->rx,
                    b->size);
        bool inplace = st_inplace;
        if (inplace ? q.rw == NULL : (b->pub ? q.rw != NULL : q.rw == NULL))
            ST_FAIL(t, "query: rw state wrong");
    } else if (op < 71) {
        if ((e = xm_purge(st_heap)) != XM_OK)
            ST_FAIL(t, "purge: %s", xm_strerror(e));
    } else if (op < 72 && t->id == 0 && t->forks < 8 && (r >> 40) % 8 == 0) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            _exit(st_child(t));
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            ST_FAIL(t, "fork/wait failed");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ST_FAIL(t, "fork child: status %d", st);
        t->forks++;
    }
}

static void *st_main(void *p)
{
    st_thread *t = p;
    while (!t->bad && now() < st_deadline)
        for (int i = 0; i < 64 && !t->bad; i++)
            st_op(t);
    return NULL;
}

static double env_num(const char *name, double def)
{
    const char *v = getenv(name);
    return v && *v ? atof(v) : def;
}

static void stress_run(const config *c)
{
    double secs = env_num("XM_STRESS_SECONDS", 0.6);
    int nth = (int)env_num("XM_STRESS_THREADS", 3);
    uint64_t seed = (uint64_t)env_num("XM_STRESS_SEED", 0);
    if (!seed)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (nth < 1 || nth > ST_MAXTH)
        nth = 3;
    st_inplace = c->flags & XM_INPLACE;
    st_heap = make_heap(c, (size_t)1 << 30, (size_t)4 << 20);
    CHECK(st_heap);
    for (int i = 0; i < ST_HANDOFF; i++)
        atomic_store(&st_handoff[i], NULL);
    atomic_store(&st_sig_frees, 0);
    atomic_store(&st_signals, 0);
    static st_thread th[ST_MAXTH];
    memset(th, 0, sizeof th);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = st_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    struct itimerval it = {{0, 200}, {0, 200}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    st_deadline = now() + secs;
    pthread_t tid[ST_MAXTH];
    for (int i = 0; i < nth; i++) {
        th[i].id = i;
        th[i].seed = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i + 1;
        CHECK(pthread_create(&tid[i], NULL, st_main, &th[i]) == 0);
    }
    for (int i = 0; i < nth; i++)
        pthread_join(tid[i], NULL);
    setitimer(ITIMER_REAL, &off, NULL);
    /* a tick may still be pending (valgrind delivers late): drop it */
    signal(SIGALRM, SIG_IGN);
    (void)old;
    uint64_t ops = 0, calls = 0, forks = 0, patches = 0;
    size_t live = 0, bytes = 0;
    for (int i = 0; i < nth; i++) {
        if (th[i].bad) {
            printf("    [%s] seed %llu thread %d: %s\n", c->name,
                   (unsigned long long)seed, i, th[i].why);
            CHECK(!th[i].bad);
        }
        ops += th[i].ops;
        calls += th[i].calls;
        forks += th[i].forks;
        patches += th[i].patches;
        live += th[i].live;
        bytes += th[i].bytes;
    }
    /* blocks still waiting for the handler: the threads counted them gone
       at hand-over; the heap frees them at the purge below */
    size_t waiting = 0;
    for (int i = 0; i < ST_HANDOFF; i++) {
        void *rx = atomic_exchange(&st_handoff[i], NULL);
        if (rx) {
            CHECK_OK(xm_free_async(st_heap, rx));
            waiting++;
        }
    }
    CHECK_OK(xm_purge(st_heap));
    xm_stats s;
    CHECK_OK(xm_heap_stats(st_heap, &s));
    CHECK_EQ(s.live_blocks, live);
    CHECK_EQ(s.live_bytes, bytes);
    CHECK(s.async_frees <= s.frees);
    CHECK_EQ(s.allocs - s.frees, live);
    CHECK_EQ(s.quarantine_bytes, 0);
    xm__heap_check(st_heap);
    CHECK(audit_clean(c->flags & XM_STRICT));
    /* every block left still runs, then goes */
    for (int i = 0; i < nth; i++)
        for (int k = 0; k < ST_SLOTS; k++)
            if (th[i].s[k].rx) {
                st_check_block(&th[i], k);
                CHECK(!th[i].bad);
                CHECK_OK(xm_free(st_heap, th[i].s[k].rx));
            }
    CHECK_OK(xm_heap_stats(st_heap, &s));
    CHECK_EQ(s.live_blocks, 0);
    CHECK_EQ(s.live_bytes, 0);
    printf("    [%s] seed %llu, %d threads, %.1f s: %llu ops, %llu calls checked, "
           "%llu patches, %llu signals, %llu handler frees (%zu left), %llu forks\n",
           c->name, (unsigned long long)seed, nth, secs,
           (unsigned long long)ops, (unsigned long long)calls,
           (unsigned long long)patches, (unsigned long long)atomic_load(&st_signals),
           (unsigned long long)atomic_load(&st_sig_frees), waiting,
           (unsigned long long)forks);
    xm_heap_destroy(st_heap);
}
TEST(stress_threads_signals_forks) { FOR_CONFIGS(stress_run); }
