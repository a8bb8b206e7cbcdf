/* SPDX-License-Identifier: MIT */
/*
 * sysinfo.c: xm_system_info(), what this system offers for executable
 * memory. Everything is probed through the OS layer with the calls the heap
 * itself makes (a memfd, its read-only reopen, a read+exec view; anonymous
 * memory made executable by mprotect), and AUTO's choice is found by
 * creating a small heap, so the answer cannot drift from what the heap does.
 * Nothing stays mapped or open afterwards.
 */
#include "internal.h"
#include "arch.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

/* The [selected] word of a sysfs choice file such as
 * "always [madvise] never", or "" when unreadable. */
static void read_choice(const char *path, char *out, size_t cap)
{
    char *buf;
    size_t len;
    out[0] = 0;
    if (xm__os_read_file(NULL, path, &buf, &len))
        return;
    char *l = strchr(buf, '['), *r = l ? strchr(l, ']') : NULL;
    if (l && r && (size_t)(r - l - 1) < cap) {
        memcpy(out, l + 1, (size_t)(r - l - 1));
        out[r - l - 1] = 0;
    }
    xm__mem_free(buf);
}

/* A small integer file (sysctl, selinux/enforce), or -1. */
static int read_int(const char *path)
{
    char *buf;
    size_t len;
    if (xm__os_read_file(NULL, path, &buf, &len))
        return -1;
    int v = (len && buf[0] >= '0' && buf[0] <= '9') ? atoi(buf) : -1;
    xm__mem_free(buf);
    return v;
}

static void probe_memfd(xm_sysinfo *s)
{
    int sealed = 0;
    int fd = xm__os_memfd(NULL, "execmem-probe", &sealed);
    s->memfd = fd >= 0;
    s->memfd_noexec_seal = fd >= 0 ? sealed : 0;
    s->exec_memfd = 0;
    if (fd < 0)
        return;
    int ro = -1;
    if (xm__os_truncate(NULL, fd, XM__PAGE) == 0 &&
        (ro = xm__os_reopen_ro(NULL, fd)) >= 0) {
        int err = 0;
        void *p = xm__os_map_fd(NULL, NULL, XM__PAGE, XM__P_R | XM__P_X, ro, 0,
                                &err);
        if (p) {
            s->exec_memfd = 1;
            (void)xm__os_unmap(NULL, p, XM__PAGE);
        }
    }
    if (ro >= 0)
        (void)xm__os_close(NULL, ro);
    (void)xm__os_close(NULL, fd);
}

static void probe_anon(xm_sysinfo *s)
{
    int err = 0;
    void *p = xm__os_map_anon(NULL, XM__PAGE, XM__P_R | XM__P_W, &err);
    s->exec_anon = 0;
    if (!p)
        return;
    s->exec_anon = xm__os_protect(NULL, p, XM__PAGE, XM__P_R | XM__P_X) == 0;
    (void)xm__os_unmap(NULL, p, XM__PAGE);
}

xm_result xm_system_info(xm_sysinfo *out)
{
    if (!out)
        return XM_EINVAL;
    xm_sysinfo s;
    memset(&s, 0, sizeof s);
    s.page_size = (size_t)xm__os_page_size();
    probe_memfd(&s);
    probe_anon(&s);
    s.memfd_noexec_sysctl = read_int("/proc/sys/vm/memfd_noexec");
    s.selinux = read_int("/sys/fs/selinux/enforce");
    int m = xm__os_mdwe(NULL);
    s.mdwe = m < 0 ? -1 : m;
    /* XM_PKEYS needs both: keys from the kernel and WRPKRU (arch.h) */
    s.pkeys_free = xm__os_pkeys_probe(NULL);
    if (!xm__pkru_usable())
        s.pkeys_free = 0;
    s.pkeys = s.pkeys_free > 0;
    s.membarrier_sync_core = xm__os_membarrier_probe(NULL);
    read_choice("/sys/kernel/mm/transparent_hugepage/enabled", s.thp_enabled,
                sizeof s.thp_enabled);
    read_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
                s.thp_shmem, sizeof s.thp_shmem);

    xm_options o = XM_OPTIONS_INIT;
    o.reserve = XM__PACK_PAGES * XM__PAGE * 4;
    xm_heap *h = NULL;
    /* what xm_heap_create(&o, &h) does for these valid options */
    s.auto_result = xm__os_page_size() != (int)XM__PAGE
                        ? XM_ENOTSUP
                        : xm__heap_new(&o, o.reserve, &h);
    int auto_errno = xm__os_last_errno();
    if (h) {
        s.auto_backend = h->backend;
        xm__heap_free(h);
    }
    if (s.auto_result != XM_OK &&
        (auto_errno == EMFILE || auto_errno == ENFILE || auto_errno == ENOMEM))
        s.auto_reason = "out of descriptors or memory right now (RLIMIT_NOFILE, "
                        "RLIMIT_AS?): AUTO reports that as an error rather "
                        "than fall back to FLIP";
    else if (s.auto_result != XM_OK)
        s.auto_reason = s.memfd || s.exec_anon
                            ? "no executable memory: the OS refused PROT_EXEC "
                              "on memfd views and on anonymous memory"
                            : "no executable memory: neither memfd nor "
                              "anonymous executable memory is available";
    else if (s.auto_backend == XM_BACKEND_DUAL)
        s.auto_reason = "memfd works and its read-only reopen can be mapped "
                        "read+exec: code and its writable alias are two views "
                        "of one file, and free needs no rights change";
    else if (!s.memfd)
        s.auto_reason = "memfd_create is not available: falling back to "
                        "anonymous memory with mprotect per block";
    else
        s.auto_reason = "a read+exec view of a memfd is refused (SELinux "
                        "file execute?): falling back to mprotect per block";
    *out = s;
    return XM_OK;
}
