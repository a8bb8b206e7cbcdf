/*
 * test_fork.c: every lock the library owns is consistent in a fork child
 * (issue 16 item 1). Two threads make every public call in a loop (alloc,
 * alloc_data, publish, patch, write_begin/end, patch_live, name with the
 * GDB sink on, query, stats, purge, free, free_async) on a heap of each
 * backend while this thread forks again and again; every child makes every
 * call once and exits, under alarm(): a lock that a vanished thread held
 * shows as a child killed by SIGALRM instead of a hung suite. A DUAL child
 * is frozen (XM_ESTATE for what would change the heap; its code runs and
 * queries work); a FLIP child's heap works as before.
 */
#include "test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

enum { FK_FORKS = 16, FK_ALARM = 10 };

typedef struct fk_state {
    xm_heap *h;
    xm_block keep; /* published before the threads start: returns 77 */
    _Atomic int stop;
    _Atomic long loops[2], errors[2];
    _Atomic int first_error[2];
} fk_state;

/* A function returning v (emit_mov32; ret), published; 0 or -1. */
static int fk_fn(xm_heap *h, uint32_t v, xm_block *b)
{
    if (xm_alloc(h, 64, 0, b) != XM_OK)
        return -1;
    emit_mov32(b->rw, v);
    emit_reti((char *)b->rw + MOV32_LEN);
    return xm_publish(h, b->rx, XM_PROT_RX) == XM_OK ? 0 : -1;
}

/* One round of every call; returns 0 or the number of the failed step.
 * solo: no other thread allocates (the freed address stays free). */
static int fk_round(xm_heap *h, uint32_t v, bool async, bool solo)
{
    xm_block b, d, q;
    if (fk_fn(h, v, &b))
        return 1;
    if ((uint32_t)call_at(b.rx) != v)
        return 2;
    unsigned char ins[MOV32_LEN];
    emit_mov32(ins, v + 1);
    if (xm_patch(h, b.rx, ins, MOV32_LEN) != XM_OK || (uint32_t)call_at(b.rx) != v + 1)
        return 3;
    void *rw;
    if (xm_write_begin(h, b.rx, MOV32_LEN, &rw) != XM_OK)
        return 4;
    emit_mov32(rw, v + 2);
    if (xm_write_end(h, b.rx) != XM_OK || (uint32_t)call_at(b.rx) != v + 2)
        return 5;
    emit_mov32(ins, v + 3); /* arm64: not hotpatch-safe, XM_ENOTSUP */
    xm_result r = xm_patch_live(h, b.rx, ins, MOV32_LEN);
    if (r != XM_OK && r != XM_ENOTSUP)
        return 6;
    if (r == XM_OK && (uint32_t)call_at(b.rx) != v + 3)
        return 7;
    if (xm_name(h, b.rx, "fork_round") != XM_OK)
        return 8;
    if (xm_query(h, b.rx, &q) != XM_OK || q.rx != b.rx)
        return 9;
    xm_stats s;
    if (xm_heap_stats(h, &s) != XM_OK)
        return 10;
    if (xm_alloc_data(h, 100, 0, &d) != XM_OK)
        return 11;
    memset(d.rw, 0x5A, 100);
    if (xm_publish(h, d.rx, XM_PROT_R) != XM_OK || ((unsigned char *)d.rx)[99] != 0x5A)
        return 12;
    if (xm_free(h, d.rx) != XM_OK)
        return 13;
    unsigned char fn[MOV32_LEN + RETI_LEN];
    emit_mov32(fn, v + 5);
    emit_reti(fn + MOV32_LEN);
    xm_block l;
    if (xm_load(h, fn, sizeof fn, 0, XM_PROT_RX, &l) != XM_OK ||
        (uint32_t)call_at(l.rx) != v + 5 || xm_free(h, l.rx) != XM_OK)
        return 18;
    if (async) {
        if (xm_free_async(h, b.rx) != XM_OK)
            return 14;
        if (xm_query(h, b.rx, &q) != XM_EBADPTR && solo) /* complete by now */
            return 15;
    } else if (xm_free(h, b.rx) != XM_OK) {
        return 16;
    }
    if ((v & 15) == 0 && xm_purge(h) != XM_OK)
        return 17;
    return 0;
}

static fk_state fk;

static void *fk_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (uint32_t v = (uint32_t)id << 20; !atomic_load(&fk.stop); v += 4) {
        int e = fk_round(fk.h, v, id == 1 || (v & 4), false);
        if (e) {
            if (!atomic_fetch_add(&fk.errors[id], 1))
                atomic_store(&fk.first_error[id], e);
        }
        atomic_fetch_add(&fk.loops[id], 1);
    }
    return NULL;
}

/* The child: every call once. Exit status 0, or the failed step. */
static int fk_child(const config *c)
{
    alarm(FK_ALARM);
    xm_heap *h = fk.h;
    if (call_at(fk.keep.rx) != 77)
        return 20;
    xm_block b, q;
    xm_stats s;
    if (xm_query(h, fk.keep.rx, &q) != XM_OK || q.rx != fk.keep.rx)
        return 21;
    if (xm_heap_stats(h, &s) != XM_OK)
        return 22;
    if (c->backend == XM_BACKEND_FLIP) {
        int e = fk_round(h, 1000, false, true);
        if (e)
            return 30 + e;
        e = fk_round(h, 2000, true, true);
        if (e)
            return 60 + e;
        return call_at(fk.keep.rx) == 77 ? 0 : 23;
    }
    /* DUAL: frozen */
    unsigned char ins[MOV32_LEN];
    emit_mov32(ins, 9);
    void *rw;
    if (xm_alloc(h, 64, 0, &b) != XM_ESTATE)
        return 24;
    if (xm_alloc_data(h, 64, 0, &b) != XM_ESTATE)
        return 25;
    if (xm_load(h, ins, sizeof ins, 0, XM_PROT_RX, &b) != XM_ESTATE)
        return 37;
    if (xm_publish(h, fk.keep.rx, XM_PROT_RX) != XM_ESTATE)
        return 26;
    if (xm_patch(h, fk.keep.rx, ins, MOV32_LEN) != XM_ESTATE)
        return 27;
    if (xm_write_begin(h, fk.keep.rx, MOV32_LEN, &rw) != XM_ESTATE)
        return 28;
    if (xm_write_end(h, fk.keep.rx) != XM_ESTATE)
        return 29;
    if (xm_patch_live(h, fk.keep.rx, ins, MOV32_LEN) != XM_ESTATE)
        return 30;
    if (xm_name(h, fk.keep.rx, "child") != XM_ESTATE)
        return 31;
    if (xm_purge(h) != XM_ESTATE)
        return 32;
    if (xm_free(h, fk.keep.rx) != XM_ESTATE)
        return 33;
    if (xm_free_async(h, fk.keep.rx) != XM_ESTATE)
        return 34;
    if (xm_query(h, fk.keep.rx, &q) != XM_OK || xm_heap_stats(h, &s) != XM_OK)
        return 35;
    return call_at(fk.keep.rx) == 77 ? 0 : 36;
}

static void fork_every_call(const config *c)
{
    xm_options o = XM_OPTIONS_INIT;
    o.backend = c->backend;
    o.flags = c->flags | XM_GDB; /* xm_name takes the sinks' lock */
    memset(&fk, 0, sizeof fk);
    CHECK_OK(xm_heap_create(&o, &fk.h));
    CHECK_EQ(fk_fn(fk.h, 77, &fk.keep), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, fk_worker, (void *)(intptr_t)i) == 0);
    int hung = 0, bad = 0, last = 0;
    for (int i = 0; i < FK_FORKS; i++) {
        /* let the workers get well into their calls */
        long l0 = atomic_load(&fk.loops[0]) + atomic_load(&fk.loops[1]);
        while (atomic_load(&fk.loops[0]) + atomic_load(&fk.loops[1]) < l0 + 2 &&
               !atomic_load(&fk.errors[0]) && !atomic_load(&fk.errors[1]))
            sched_yield();
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            _exit(fk_child(c));
        if (pid < 0) {
            bad++;
            continue;
        }
        int st;
        if (waitpid(pid, &st, 0) != pid) {
            bad++;
            continue;
        }
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
            hung++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
            bad++;
            last = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    atomic_store(&fk.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("    [%s] %d forks during %ld + %ld rounds of every call: %d children "
           "hung, %d failed (last status %d)\n",
           c->name, FK_FORKS, atomic_load(&fk.loops[0]), atomic_load(&fk.loops[1]),
           hung, bad, last);
    if (atomic_load(&fk.errors[0]) || atomic_load(&fk.errors[1]))
        printf("    parent threads: %ld, %ld errors (first at steps %d, %d)\n",
               atomic_load(&fk.errors[0]), atomic_load(&fk.errors[1]),
               atomic_load(&fk.first_error[0]), atomic_load(&fk.first_error[1]));
    CHECK_EQ(hung, 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(atomic_load(&fk.errors[0]) + atomic_load(&fk.errors[1]), 0);
    CHECK_EQ(call_at(fk.keep.rx), 77);
    xm__heap_check(fk.h);
    xm_heap_destroy(fk.h);
}
TEST(fork_while_every_call_runs_children_make_every_call)
{
    if (under_valgrind()) {
        /* valgrind runs one thread at a time, so the locks are never held
           by another thread at the fork: nothing to observe, and its
           unfair scheduler kept the forking thread waiting for minutes */
        test_skip("valgrind serializes threads: no call is in progress on another thread at a fork");
        return;
    }
    FOR_CONFIGS(fork_every_call);
}
