/*
 * test_drain.c: when an async free is complete (issue 16 item 2). The
 * contract: when any heap call returns, every xm_free_async requested
 * before that call began is complete, on every thread. The attack: another
 * thread's drain has taken the pending list and is held up (here on
 * purpose, by the white-box hook xm__drain_hook, compiled in at
 * XM_DEBUG >= 1) when the freeing thread makes its next call. That call
 * must not return before the drain is done, and once it has returned the
 * freed block must trap (checked in a forked child).
 */
#include "test.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#if XM_DEBUG >= 1 /* the runner is built at the library's level */
extern void (*xm__drain_hook)(xm_heap *h);

static sem_t dr_held, dr_release;
static _Atomic int dr_armed;

/* The first drain after arming stops here until released. */
static void dr_hold(xm_heap *h)
{
    (void)h;
    if (atomic_exchange(&dr_armed, 0)) {
        sem_post(&dr_held);
        while (sem_wait(&dr_release))
            ;
    }
}

typedef struct dr_call {
    xm_heap *h;
    const void *addr;
    _Atomic int started, returned;
    xm_result r;
} dr_call;

static void *dr_drainer(void *p)
{
    dr_call *c = p;
    xm_stats s;
    c->r = xm_heap_stats(c->h, &s); /* drains, and is held in the drain */
    atomic_store(&c->returned, 1);
    return NULL;
}

static void *dr_asker(void *p)
{
    dr_call *c = p;
    xm_block b;
    atomic_store(&c->started, 1);
    c->r = xm_query(c->h, c->addr, &b); /* the freed block: gone by now */
    atomic_store(&c->returned, 1);
    return NULL;
}

static void *dr_target;
static void dr_run_freed(void *arg)
{
    (void)arg;
    (void)call_at(dr_target); /* must die: trap fill or no rights */
}

static void dr_sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void drain_in_flight(const config *c)
{
    xm_heap *h = make_heap(c, 0, SIZE_MAX);
    CHECK(h);
    xm_block b, keep;
    CHECK_OK(make_fn(h, 64, 5, &b));
    CHECK_OK(make_fn(h, 64, 6, &keep));
    CHECK_EQ(call_at(b.rx), 5);
    sem_init(&dr_held, 0, 0);
    sem_init(&dr_release, 0, 0);
    atomic_store(&dr_armed, 1);
    xm__drain_hook = dr_hold;
    CHECK_OK(xm_free_async(h, b.rx));
    dr_call d = {h, NULL, 0, 0, XM_OK}, q = {h, b.rx, 0, 0, XM_OK};
    pthread_t td, tq;
    CHECK(pthread_create(&td, NULL, dr_drainer, &d) == 0);
    while (sem_wait(&dr_held)) /* the drain has taken the request */
        ;
    CHECK(pthread_create(&tq, NULL, dr_asker, &q) == 0);
    while (!atomic_load(&q.started))
        dr_sleep_ms(1);
    /* give the next call every chance to return early (the defect); it
       must not return while the drain is held */
    for (int i = 0; i < 300 && !atomic_load(&q.returned); i++)
        dr_sleep_ms(1);
    int early = atomic_load(&q.returned);
    sem_post(&dr_release);
    pthread_join(td, NULL);
    pthread_join(tq, NULL);
    xm__drain_hook = NULL;
    sem_destroy(&dr_held);
    sem_destroy(&dr_release);
    if (early)
        printf("    [%s] xm_query returned while another thread's drain held "
               "the free\n", c->name);
    CHECK(!early);
    CHECK_OK(d.r);
    CHECK_EQ(q.r, XM_EBADPTR); /* the block is no longer there */
    dr_target = b.rx;
    int sig = child_signal(dr_run_freed, NULL);
    CHECK(sig == TRAP_SIG || sig == SIGSEGV || sig == SIGILL);
    CHECK_EQ(call_at(keep.rx), 6);
    xm_stats s;
    CHECK_OK(xm_heap_stats(h, &s));
    CHECK_EQ(s.live_blocks, 1);
    CHECK_EQ(s.async_frees, 1);
    xm__heap_check(h);
    xm_heap_destroy(h);
}
#endif

TEST(free_async_complete_when_next_call_returns_during_other_drain)
{
#if XM_DEBUG >= 1
    FOR_CONFIGS(drain_in_flight);
#else
    test_skip("the drain hook exists at XM_DEBUG >= 1 only");
#endif
}
