/* SPDX-License-Identifier: MIT */
/*
 * jitsym: a tiny JIT for the perf and gdb checks (test/sym_check.sh).
 *
 *   jitsym dual|strict|flip spin   names xm_spin_fn and runs it for ~0.4 s
 *   jitsym dual|strict|flip call   names xm_add_fn, calls it once, prints
 *                                  "xm_add_fn(2, 3) = 5"
 *
 * Sinks come from the environment (XM_PERF, XM_GDB), as a user would set
 * them. One function is named before xm_publish, the other after it, so
 * both paths of xm_name are exercised.
 */
#define _POSIX_C_SOURCE 200809L
#include <execmem.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const unsigned char add_code[] = {0x8d, 0x04, 0x37, 0xc3}; /* lea eax,[rdi+rsi]; ret */
static const unsigned char spin_code[] = {
    0x48, 0x89, 0xf8, /* mov rax, rdi */
    0x48, 0xff, 0xc8, /* 1: dec rax */
    0x75, 0xfb,       /* jnz 1b */
    0xc3};            /* ret */

static int die(const char *what, xm_result r)
{
    fprintf(stderr, "jitsym: %s: %s (errno %d)\n", what, xm_strerror(r),
            xm_last_errno());
    return 1;
}

int main(int argc, char **argv)
{
#if !defined(__x86_64__)
    (void)argc;
    (void)argv;
    fprintf(stderr, "jitsym: x86-64 only\n");
    return 77;
#else
    if (argc != 3) {
        fprintf(stderr, "usage: jitsym dual|strict|flip spin|call\n");
        return 2;
    }
    xm_options o = XM_OPTIONS_INIT;
    o.backend = strcmp(argv[1], "flip") ? XM_BACKEND_DUAL : XM_BACKEND_FLIP;
    if (!strcmp(argv[1], "strict"))
        o.flags |= XM_STRICT;
    xm_heap *h;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK)
        return die("xm_heap_create", r);
    xm_block add, spin;
    if ((r = xm_alloc(h, sizeof add_code, 0, &add)) != XM_OK ||
        (r = xm_alloc(h, sizeof spin_code, 0, &spin)) != XM_OK)
        return die("xm_alloc", r);
    memcpy(add.rw, add_code, sizeof add_code);
    memcpy(spin.rw, spin_code, sizeof spin_code);
    /* add: named before publish; spin: after */
    if ((r = xm_name(h, add.rx, "xm_add_fn")) != XM_OK)
        return die("xm_name", r);
    if ((r = xm_publish(h, add.rx, XM_PROT_RX)) != XM_OK ||
        (r = xm_publish(h, spin.rx, XM_PROT_RX)) != XM_OK)
        return die("xm_publish", r);
    if ((r = xm_name(h, spin.rx, "xm_spin_fn")) != XM_OK)
        return die("xm_name", r);

    if (!strcmp(argv[2], "spin")) {
        uint64_t (*fn)(uint64_t);
        memcpy(&fn, &spin.rx, sizeof fn);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        double s;
        do {
            if (fn(10 * 1000 * 1000) != 0)
                return die("xm_spin_fn returned nonzero", XM_OK);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        } while (s < 0.4);
        printf("xm_spin_fn ran %.2f s (pid %d)\n", s, (int)getpid());
    } else {
        int (*fn)(int, int);
        memcpy(&fn, &add.rx, sizeof fn);
        printf("xm_add_fn(2, 3) = %d\n", fn(2, 3));
    }
    xm_free(h, spin.rx);
    xm_free(h, add.rx);
    xm_heap_destroy(h);
    return 0;
#endif
}
