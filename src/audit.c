/*
 * audit.c: the kernel's CONFIG_DEBUG_WX for a live process. Reads
 * /proc/PID/maps; counts mappings that are writable and executable at once,
 * and pairs of mappings of one file (same device and inode) whose file
 * ranges overlap, one writable and the other executable: W+X through an
 * alias. O(n^2) over file-backed mappings, which is fine for /proc sizes.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct audit_map {
    uintptr_t start, end;
    uint64_t off, inode;
    unsigned dev_major, dev_minor;
    bool w, x;
} audit_map;

static void audit_note(xm_audit_report *out, uintptr_t s, uintptr_t e,
                       unsigned kind, uintptr_t other)
{
    if (out->nranges < XM_AUDIT_MAX_RANGES) {
        xm_audit_range *r = &out->ranges[out->nranges++];
        r->start = s;
        r->end = e;
        r->kind = kind;
        r->other = other;
    }
}

xm_result xm_audit(pid_t pid, xm_audit_report *out)
{
    if (!out || pid < 0)
        return XM_EINVAL;
    char path[64];
    if (pid == 0)
        snprintf(path, sizeof path, "/proc/self/maps");
    else
        snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    char *buf;
    size_t len;
    int e = xm__os_read_file(NULL, path, &buf, &len);
    if (e)
        return e == -12 ? XM_ENOMEM : XM_EOS;
    size_t cap = 64, n = 0;
    audit_map *maps = xm__mem_alloc(cap * sizeof *maps);
    if (!maps) {
        xm__mem_free(buf);
        return XM_ENOMEM;
    }
    xm_audit_report rep;
    memset(&rep, 0, sizeof rep);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        uintptr_t s, en;
        char perms[8] = {0};
        uint64_t off, inode;
        unsigned maj, min;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %" SCNx64 " %x:%x %" SCNu64,
                   &s, &en, perms, &off, &maj, &min, &inode) == 7) {
            rep.mappings++;
            bool w = perms[1] == 'w', x = perms[2] == 'x';
            if (w && x) {
                rep.wx_mappings++;
                audit_note(&rep, s, en, XM_AUDIT_WX, 0);
            }
            if (inode && (w || x)) {
                if (n == cap) {
                    audit_map *nm = xm__mem_realloc(maps, cap * 2 * sizeof *maps);
                    if (!nm) {
                        xm__mem_free(maps);
                        xm__mem_free(buf);
                        return XM_ENOMEM;
                    }
                    maps = nm;
                    cap *= 2;
                }
                maps[n++] = (audit_map){s, en, off, inode, maj, min, w, x};
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!maps[i].x)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (i == j || !maps[j].w || maps[j].inode != maps[i].inode ||
                maps[j].dev_major != maps[i].dev_major ||
                maps[j].dev_minor != maps[i].dev_minor)
                continue;
            uint64_t a0 = maps[i].off, a1 = a0 + (maps[i].end - maps[i].start);
            uint64_t b0 = maps[j].off, b1 = b0 + (maps[j].end - maps[j].start);
            if (a0 < b1 && b0 < a1) {
                rep.wx_aliases++;
                audit_note(&rep, maps[i].start, maps[i].end, XM_AUDIT_ALIAS,
                           maps[j].start);
            }
        }
    }
    xm__mem_free(maps);
    xm__mem_free(buf);
    *out = rep;
    return XM_OK;
}
