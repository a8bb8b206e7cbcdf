/* SPDX-License-Identifier: MIT */
/* wx_helper.c: a process for `execmem audit` tests. Mode "rwx" maps an
 * anonymous RWX page, "many" 12 separate ones (more than an audit report
 * lists), "dual" maps a memfd writable at one address and executable at
 * another, "sysv" attaches SysV shared memory segment 0 of a fresh IPC
 * namespace (needs root) writable and executable and runs code written
 * through the one from the other, "clean" maps nothing special. Prints
 * "ready" and waits to be killed. The Makefile also links it with
 * -z noseparate-code -z norelro (wx_nosep): its text and data are then two
 * views of one file page, read+exec private and read+write private. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    if (!strcmp(mode, "rwx")) {
        if (mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
            return 3;
    } else if (!strcmp(mode, "many")) { /* every other page: none merge */
        char *m = mmap(NULL, 24 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return 3;
        for (int i = 0; i < 12; i++)
            if (mprotect(m + 2 * i * 4096, 4096, PROT_READ | PROT_WRITE | PROT_EXEC))
                return 3;
    } else if (!strcmp(mode, "dual")) {
        int fd = (int)syscall(SYS_memfd_create, "jit-code", 0);
        if (fd < 0 || ftruncate(fd, 8192) ||
            mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ||
            mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0) == MAP_FAILED)
            return 3;
    } else if (!strcmp(mode, "sysv")) {
        if (unshare(CLONE_NEWIPC))
            return 4;
        int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
        if (id != 0) /* the first segment of a fresh namespace */
            return 5;
        unsigned char *w = shmat(id, NULL, 0);
        void *x = shmat(id, NULL, SHM_RDONLY | SHM_EXEC);
        if (w == (void *)-1 || x == (void *)-1)
            return 3;
        static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3};
        memcpy(w, ret42, sizeof ret42);
        int (*f)(void);
        memcpy(&f, &x, sizeof f);
        if (f() != 42)
            return 6;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
