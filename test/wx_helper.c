/* SPDX-License-Identifier: MIT */
/* wx_helper.c: a process for `execmem audit` tests. Mode "rwx" maps an
 * anonymous RWX page, "many" 12 separate ones (more than an audit report
 * lists), "dual" maps a memfd writable at one address and executable at
 * another, "clean" maps nothing special. Prints "ready" and waits to be
 * killed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
