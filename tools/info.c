/* SPDX-License-Identifier: MIT */
/*
 * info.c: `execmem info`: what this system offers for executable memory
 * (xm_system_info: the library's own probes) and which backend AUTO picks
 * and why, as text or JSON. Public API only.
 */
#include <execmem.h>
#include "cmd.h"
#include "out.h"

#include <stdio.h>
#include <string.h>

const char cmd_info_help[] =
    "usage: execmem [--json] info [--json]\n"
    "\n"
    "Probes what this system offers for executable memory, with the library's\n"
    "own system calls: memfd and MFD_NOEXEC_SEAL, vm.memfd_noexec, PROT_EXEC on\n"
    "a memfd view and on anonymous memory, SELinux, MDWE, protection keys,\n"
    "THP, membarrier SYNC_CORE, the page size; then which backend AUTO picks\n"
    "and why.\n"
    "\n"
    "exit status: 0, or 2 if no executable memory can be had.\n";

static const char *yn(int v) { return v < 0 ? "unknown" : v ? "yes" : "no"; }

int cmd_info(int argc, char **argv)
{
    for (int k = 0; k < argc; k++) {
        if (!strcmp(argv[k], "--json"))
            out_json = true;
        else
            return out_usage_error("info: unknown option", argv[k]);
    }
    xm_sysinfo s;
    if (xm_system_info(&s) != XM_OK) {
        fprintf(stderr, "execmem: cannot probe this system\n");
        return 2;
    }
    if (out_json) {
        printf("{\"page_size\": %zu, \"memfd\": %d, \"memfd_noexec_seal\": %d, "
               "\"vm_memfd_noexec\": %d, \"exec_memfd\": %d, \"exec_anon\": %d, "
               "\"selinux_enforcing\": %d, \"mdwe\": %d, \"pkeys\": %d, "
               "\"pkeys_free\": %d, "
               "\"membarrier_sync_core\": %d, \"thp_enabled\": \"%s\", "
               "\"thp_shmem_enabled\": \"%s\", \"auto_backend\": \"%s\", "
               "\"auto_result\": \"%s\", \"reason\": \"%s\"}\n",
               s.page_size, s.memfd, s.memfd_noexec_seal, s.memfd_noexec_sysctl,
               s.exec_memfd, s.exec_anon, s.selinux, s.mdwe, s.pkeys,
               s.pkeys_free, s.membarrier_sync_core, s.thp_enabled, s.thp_shmem,
               s.auto_result == XM_OK ? out_backend_name(s.auto_backend) : "none",
               xm_strerror(s.auto_result), s.auto_reason);
        return s.auto_result == XM_OK ? 0 : 2;
    }
    printf("execmem ");
    out_version(xm_version());
    printf(" on this system\n");
    printf("  page size                       %zu\n", s.page_size);
    printf("  memfd_create                    %s\n", yn(s.memfd));
    printf("  MFD_NOEXEC_SEAL                 %s\n", yn(s.memfd_noexec_seal));
    if (s.memfd_noexec_sysctl < 0)
        printf("  vm.memfd_noexec                 absent (kernel before 6.3)\n");
    else
        printf("  vm.memfd_noexec                 %d\n", s.memfd_noexec_sysctl);
    printf("  PROT_EXEC on a memfd view       %s (probed)\n", yn(s.exec_memfd));
    printf("  PROT_EXEC on anonymous memory   %s (probed with mprotect)\n",
           yn(s.exec_anon));
    printf("  SELinux                         %s\n",
           s.selinux < 0 ? "absent" : s.selinux ? "enforcing" : "permissive");
    printf("  MDWE (PR_GET_MDWE)              %s\n",
           s.mdwe < 0 ? "unknown" : s.mdwe ? "refuse exec gain" : "off");
    printf("  protection keys (XM_PKEYS)      %s, %d free\n", yn(s.pkeys),
           s.pkeys_free);
    printf("  membarrier SYNC_CORE            %s\n", yn(s.membarrier_sync_core));
    printf("  THP anonymous / shmem           %s / %s\n",
           s.thp_enabled[0] ? s.thp_enabled : "unknown",
           s.thp_shmem[0] ? s.thp_shmem : "unknown");
    if (s.auto_result == XM_OK)
        printf("  backend AUTO resolves to        %s\n", out_backend_name(s.auto_backend));
    else
        printf("  backend AUTO resolves to        none (%s)\n",
               xm_strerror(s.auto_result));
    printf("  why: %s\n", s.auto_reason);
    return s.auto_result == XM_OK ? 0 : 2;
}
