/* SPDX-License-Identifier: MIT */
/*
 * arm64_init.c: PID 1 of the arm64 kernel that `make check-arm64` boots in
 * qemu-system-aarch64 (test/arm64_check.sh). Mounts /proc (the library
 * reopens its memfd through it, tests read /proc/self/maps), /dev and /tmp,
 * then runs, each in a child that it waits for (reaping every orphan, as an
 * init must):
 *   /runner once per backend, XM_TEST_CONFIG=dual, strict, flip, inplace
 *     (XM_ARM64_CONFIGS: another list), with the test name substrings of
 *     XM_ARM64_TESTS (space separated; none: every test);
 *   /live_arm64 500 (xm_patch_live hammered from a second CPU; the runner's
 *     patch_live_hammer does the same in every backend);
 *   /execmem demo (the expression JIT, arm64 code): 20,000 functions in
 *     DUAL (AUTO), 5,000 in DUAL + XM_STRICT;
 * each framed by "arm64-step NAME begin" / "arm64-step NAME end STATUS"
 * lines that the host script reads, and powers the machine off. The kernel
 * hands its unknown `NAME=value` parameters to init as environment
 * variables: that is how the host passes XM_ARM64_*, XM_HAMMER.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void step(const char *name, char *const argv[], const char *config)
{
    printf("arm64-step %s begin\n", name);
    fflush(stdout);
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        if (config)
            setenv("XM_TEST_CONFIG", config, 1);
        execv(argv[0], argv);
        printf("arm64-step %s: exec %s: %s\n", name, argv[0], strerror(errno));
        _exit(127);
    }
    int st = 0;
    for (;;) { /* the orphans of the tests' children come here too */
        pid_t w = wait(&st);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
    }
    int code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    printf("arm64-step %s end %d (%.0f s)\n", name, pid < 0 ? -1 : code, now() - t0);
    fflush(stdout);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir("/proc", 0755);
    mkdir("/dev", 0755);
    mkdir("/tmp", 01777);
    mkdir("/sys", 0755);
    if (mount("proc", "/proc", "proc", 0, NULL))
        perror("arm64-init: mount /proc");
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL))
        perror("arm64-init: mount /dev");
    if (mount("sysfs", "/sys", "sysfs", 0, NULL))
        perror("arm64-init: mount /sys");
    if (mount("tmpfs", "/tmp", "tmpfs", 0, NULL))
        perror("arm64-init: mount /tmp");
    setenv("PATH", "/", 1);
    /* the map-count test fills its own map count: 16384, not 65530, under
       emulation (the same test, a quarter of the mappings) */
    FILE *mc = fopen("/proc/sys/vm/max_map_count", "w");
    if (mc) {
        fputs("16384\n", mc);
        fclose(mc);
    }
    /* transparent huge pages as on the x86-64 machines the suite was
       written on (madvise): Debian's arm64 kernel defaults to always, where
       large_descriptors_are_small measured +8.5 MB resident (the library's
       metadata in 2 MiB pages) */
    FILE *thp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "w");
    if (thp) {
        fputs("madvise\n", thp);
        fclose(thp);
    }

    const char *cfgs = getenv("XM_ARM64_CONFIGS");
    char cfgbuf[256], testbuf[1024];
    snprintf(cfgbuf, sizeof cfgbuf, "%s",
             cfgs && *cfgs ? cfgs : "dual strict flip inplace");
    const char *tests = getenv("XM_ARM64_TESTS");
    snprintf(testbuf, sizeof testbuf, "%s", tests ? tests : "");
    char *targv[64] = {"/runner"};
    int tn = 1;
    char *save = NULL;
    for (char *t = strtok_r(testbuf, " ,", &save); t && tn < 63;
         t = strtok_r(NULL, " ,", &save))
        targv[tn++] = t;
    targv[tn] = NULL;
    save = NULL;
    for (char *c = strtok_r(cfgbuf, " ,", &save); c; c = strtok_r(NULL, " ,", &save)) {
        char name[64];
        snprintf(name, sizeof name, "runner:%s", c);
        step(name, targv, c);
    }
    if (access("/live_arm64", X_OK) == 0) {
        char *largv[] = {"/live_arm64", "500", NULL};
        step("live_arm64", largv, NULL);
    }
    if (access("/execmem", X_OK) == 0) {
        char *dargv[] = {"/execmem", "demo", "--count", "20000", "--no-progress", NULL};
        step("demo", dargv, NULL);
        char *sargv[] = {"/execmem", "demo", "--count", "5000", "--strict", "--no-progress", NULL};
        step("demo-strict", sargv, NULL);
    }
    printf("arm64-init: done\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
