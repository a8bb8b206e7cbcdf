/* SPDX-License-Identifier: MIT */
/*
 * live_arm64.c: xm_patch_live on arm64 (run natively on arm64, or under
 * qemu-aarch64 by `make check-arm64`). A function whose first instruction
 * is NOP returns 1; patched to `B +12` it returns 2; patched back, 1 again.
 * Instructions outside the hotpatch-safe classes, lengths other than 4 and
 * misaligned addresses are refused with XM_ENOTSUP and change nothing.
 * With a thread calling the function nonstop, every call returns 1 or 2.
 *
 * Under qemu-user (`--emulated`) only FLIP is checked: user-mode qemu
 * notices code changes through the address it executes, not through DUAL's
 * second (writable) mapping of the same pages, so DUAL runs stale
 * translations there (an emulator limit). `make check-arm64` therefore also
 * boots this program as the init of an arm64 kernel in qemu-system (2 CPUs;
 * system emulation tracks code by physical page), where all three backends
 * run. As PID 1 it mounts /proc (the library reopens its memfd through it)
 * and powers the machine off at the end.
 */
#include <execmem.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__aarch64__)
#define NOP 0xD503201Fu
#define B_PLUS_12 0x14000003u
static const uint32_t code[] = {
    NOP,         /* patched: NOP <-> B +12 */
    0x52800020u, /* mov w0, #1 */
    0xD65F03C0u, /* ret */
    0x52800040u, /* mov w0, #2 */
    0xD65F03C0u, /* ret */
};

static int (*fn)(void);
static atomic_int stop;
static atomic_long calls, bad;

static void *caller(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int v = fn();
        if (v != 1 && v != 2)
            atomic_fetch_add(&bad, 1);
        atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    }
    return NULL;
}

static int run(const char *name, xm_backend be, unsigned flags, int patches)
{
    xm_options o = XM_OPTIONS_INIT;
    o.backend = be;
    o.flags = flags;
    xm_heap *h;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK) {
        printf("arm64 [%s]: SKIP, xm_heap_create: %s\n", name, xm_strerror(r));
        return 0;
    }
    xm_block b;
    if (xm_alloc(h, sizeof code, 0, &b) != XM_OK)
        return 1;
    memcpy(b.rw, code, sizeof code);
    if (xm_publish(h, b.rx, XM_PROT_RX) != XM_OK)
        return 1;
    memcpy(&fn, &b.rx, sizeof fn);
    int fails = 0;
#define EXPECT(c)                                                              \
    do {                                                                       \
        if (!(c)) {                                                            \
            printf("arm64 [%s]: line %d: %s\n", name, __LINE__, #c);           \
            fails++;                                                           \
        }                                                                      \
    } while (0)
    uint32_t jump = B_PLUS_12, nop = NOP, mov = 0x52800060u;
    EXPECT(fn() == 1);
    EXPECT(xm_patch_live(h, b.rx, &jump, 4) == XM_OK);
    EXPECT(fn() == 2);
    EXPECT(xm_patch_live(h, b.rx, &nop, 4) == XM_OK);
    EXPECT(fn() == 1);
    /* refused: not a hotpatch-safe pair, wrong length, misaligned */
    EXPECT(xm_patch_live(h, (char *)b.rx + 4, &mov, 4) == XM_ENOTSUP);
    EXPECT(xm_patch_live(h, b.rx, &mov, 4) == XM_ENOTSUP);
    EXPECT(xm_patch_live(h, b.rx, &jump, 2) == XM_ENOTSUP);
    EXPECT(xm_patch_live(h, (char *)b.rx + 2, &jump, 4) == XM_ENOTSUP);
    EXPECT(fn() == 1);
    /* under calls from another thread */
    pthread_t t;
    atomic_store(&stop, 0);
    atomic_store(&calls, 0);
    atomic_store(&bad, 0);
    pthread_create(&t, NULL, caller, NULL);
    for (int i = 0; i < patches; i++)
        EXPECT(xm_patch_live(h, b.rx, (i & 1) ? &nop : &jump, 4) == XM_OK);
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    EXPECT(atomic_load(&bad) == 0);
    printf("arm64 [%s]: %d live patches under %ld calls, %ld wrong results, "
           "%d failed checks\n", name, patches, atomic_load(&calls),
           atomic_load(&bad), fails);
    xm_heap_destroy(h);
    return fails != 0;
}

int main(int argc, char **argv)
{
    int init = getpid() == 1;
    if (init) {
        mkdir("/proc", 0555);
        if (mount("proc", "/proc", "proc", 0, NULL))
            perror("mount /proc");
    }
    int patches = argc > 1 && !init ? atoi(argv[1]) : 20000;
    int emulated = argc > 2 && !strcmp(argv[2], "--emulated");
    int fails = run("flip", XM_BACKEND_FLIP, 0, patches);
    if (!emulated) {
        fails += run("dual", XM_BACKEND_DUAL, 0, patches);
        fails += run("strict", XM_BACKEND_DUAL, XM_STRICT, patches);
    } else {
        printf("arm64 [dual], [strict]: not run under qemu-user (see the file)\n");
    }
    printf("arm64 live patching: %s\n", fails ? "FAILED" : "all passed");
    if (init) {
        fflush(stdout);
        sync();
        reboot(RB_POWER_OFF);
    }
    return fails != 0;
}
#else
int main(void)
{
    printf("live_arm64: arm64 only\n");
    return 77;
}
#endif
