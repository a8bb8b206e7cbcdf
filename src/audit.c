/* SPDX-License-Identifier: MIT */
/*
 * audit.c: the kernel's CONFIG_DEBUG_WX for a live process. Reads
 * /proc/PID/maps (or smaps, which repeats each maps line followed by
 * key-value lines ending in VmFlags) and counts:
 *   - mappings writable and executable at once;
 *   - pairs of mappings of one object whose ranges overlap, one SHARED
 *     writable (`rw-s`) and the other executable: W+X through an alias
 *     (O(n^2) over object-backed mappings; fine for /proc sizes). Only a
 *     shared writable view can change what another view runs: a private
 *     one (`rw-p`, a program's data next to its text) gets its own copy of
 *     every page it writes.
 *     The object is (device, inode) for files, memfds and tmpfs; for SysV
 *     shared memory the inode field holds the segment id, where 0 is a valid
 *     id (the first segment of an IPC namespace), so a mapping counts as
 *     backed by an object whenever its device or inode is non-zero (anonymous
 *     memory shows 00:00 0), and SysV segments (named `/SYSV<key> (deleted)`)
 *     are keyed apart from files of the same device whose inode number
 *     equals a segment id (memfds live on that device too);
 *   - with smaps, mappings that are neither but carry both may-write and
 *     may-exec (VmFlags mw, me): one mprotect away from W+X.
 * Protection keys (XM_PKEYS): when aliases are found, smaps is read for
 * each writable view's `ProtectionKey`. A key other than 0 denies access
 * in the kernel's default PKRU (the first thread, exec, every signal
 * handler) and in every thread that did not open it: such a pair counts
 * as protected (pkey_aliases, kind XM_AUDIT_PKEY), not as a W+X alias.
 * From outside a process its threads' PKRU cannot be read: the audit
 * trusts the default, which execmem keeps outside its calls.
 */
#include "internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct audit_map {
    uintptr_t start, end;
    uint64_t off, inode;
    unsigned dev_major, dev_minor;
    bool w, x, shared, sysv;
    const char *path; /* into the file buffer */
    int pkey;         /* smaps ProtectionKey (0: none or unknown) */
} audit_map;

typedef struct audit_acc {
    xm_audit_range r[4][XM_AUDIT_MAX_RANGES]; /* WX, ALIAS, MAYBE, PKEY */
    int key[XM_AUDIT_MAX_RANGES];             /* of r[3][i] */
    size_t n[4];
} audit_acc;

static void audit_note(audit_acc *acc, int which, uintptr_t s, uintptr_t e,
                       uintptr_t other, const char *path)
{
    static const unsigned kinds[4] = {XM_AUDIT_WX, XM_AUDIT_ALIAS, XM_AUDIT_MAYBE,
                                      XM_AUDIT_PKEY};
    if (acc->n[which] >= XM_AUDIT_MAX_RANGES)
        return;
    xm_audit_range *r = &acc->r[which][acc->n[which]++];
    memset(r, 0, sizeof *r);
    r->start = s;
    r->end = e;
    r->kind = kinds[which];
    r->other = other;
    if (path) {
        size_t n = strlen(path);
        if (n >= sizeof r->path)
            n = sizeof r->path - 1;
        memcpy(r->path, path, n);
    }
}

/* Whether a maps line's name is a SysV shared memory segment's:
 * "/SYSV" and 8 hex digits of its key, then " (deleted)" (its file lives on
 * the kernel's internal shm mount and is never linked anywhere). */
static bool audit_is_sysv(const char *name)
{
    if (strncmp(name, "/SYSV", 5) != 0)
        return false;
    for (int i = 5; i < 13; i++)
        if (!isxdigit((unsigned char)name[i]))
            return false;
    return strcmp(name + 13, " (deleted)") == 0;
}

/* Whether a VmFlags line lists both `mw` and `me`. */
static bool vmflags_maybe_wx(const char *line)
{
    bool mw = false, me = false;
    for (const char *p = line + 8; *p;) {
        while (*p == ' ')
            p++;
        if (p[0] && p[1] && (p[2] == ' ' || p[2] == 0)) {
            mw |= p[0] == 'm' && p[1] == 'w';
            me |= p[0] == 'm' && p[1] == 'e';
        }
        while (*p && *p != ' ')
            p++;
    }
    return mw && me;
}

/* Fills maps[].pkey from /proc/PID/smaps ("ProtectionKey:" follows each
 * mapping's header line; absent where the kernel has no keys). */
static void audit_keys(const char *dir, audit_map *maps, size_t n)
{
    char path[64], *buf;
    size_t len;
    snprintf(path, sizeof path, "%s/smaps", dir);
    if (xm__os_read_file(NULL, path, &buf, &len))
        return; /* keys unknown: every alias counts as W+X */
    audit_map *cur = NULL;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        uintptr_t s, e;
        int key;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &s, &e) == 2) {
            cur = NULL;
            for (size_t i = 0; i < n && !cur; i++)
                if (maps[i].start == s && maps[i].end == e)
                    cur = &maps[i];
        } else if (cur && sscanf(line, "ProtectionKey: %d", &key) == 1) {
            cur->pkey = key;
        }
        line = nl ? nl + 1 : NULL;
    }
    xm__mem_free(buf);
}

xm_result xm_audit_ex(pid_t pid, unsigned flags, xm_audit_report *out)
{
    if (!out || pid < 0 || (flags & ~XM_AUDIT_SMAPS))
        return XM_EINVAL;
    const char *file = (flags & XM_AUDIT_SMAPS) ? "smaps" : "maps";
    char path[64];
    if (pid == 0)
        snprintf(path, sizeof path, "/proc/self/%s", file);
    else
        snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file);
    char *buf;
    size_t len;
    int e = xm__os_read_file(NULL, path, &buf, &len);
    if (e)
        return e == -12 ? XM_ENOMEM : XM_EOS;
    size_t cap = 64, n = 0;
    audit_map *maps = xm__mem_alloc(cap * sizeof *maps);
    audit_acc *acc = xm__mem_calloc(1, sizeof *acc);
    if (!maps || !acc) {
        xm__mem_free(maps);
        xm__mem_free(acc);
        xm__mem_free(buf);
        return XM_ENOMEM;
    }
    xm_audit_report rep;
    memset(&rep, 0, sizeof rep);
    uintptr_t cur_s = 0, cur_e = 0; /* the mapping VmFlags lines belong to */
    bool cur_wx = false;
    const char *cur_path = NULL;
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        uintptr_t s, en;
        char perms[8] = {0};
        uint64_t off, inode;
        unsigned maj, min;
        int pos = 0;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %" SCNx64 " %x:%x %" SCNu64 "%n",
                   &s, &en, perms, &off, &maj, &min, &inode, &pos) == 7) {
            const char *name = line + pos;
            while (*name == ' ')
                name++;
            rep.mappings++;
            bool w = perms[1] == 'w', x = perms[2] == 'x';
            cur_s = s;
            cur_e = en;
            cur_wx = w && x;
            cur_path = name;
            if (w && x) {
                rep.wx_mappings++;
                audit_note(acc, 0, s, en, 0, name);
            }
            bool object = inode || maj || min;
            if (object && (w || x)) {
                if (n == cap) {
                    audit_map *nm = xm__mem_realloc(maps, cap * 2 * sizeof *maps);
                    if (!nm) {
                        xm__mem_free(maps);
                        xm__mem_free(acc);
                        xm__mem_free(buf);
                        return XM_ENOMEM;
                    }
                    maps = nm;
                    cap *= 2;
                }
                maps[n++] = (audit_map){s, en, off, inode, maj, min, w, x,
                                        perms[3] == 's', audit_is_sysv(name), name, 0};
            }
        } else if (strncmp(line, "VmFlags:", 8) == 0 && cur_e && !cur_wx &&
                   vmflags_maybe_wx(line)) {
            rep.wx_possible++;
            audit_note(acc, 2, cur_s, cur_e, 0, cur_path);
        }
        line = nl ? nl + 1 : NULL;
    }
    bool keys = false;
    for (size_t i = 0; i < n; i++) {
        if (!maps[i].x)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (i == j || !maps[j].w || !maps[j].shared ||
                maps[j].inode != maps[i].inode || maps[j].sysv != maps[i].sysv ||
                maps[j].dev_major != maps[i].dev_major ||
                maps[j].dev_minor != maps[i].dev_minor)
                continue;
            uint64_t a0 = maps[i].off, a1 = a0 + (maps[i].end - maps[i].start);
            uint64_t b0 = maps[j].off, b1 = b0 + (maps[j].end - maps[j].start);
            if (a0 < b1 && b0 < a1) {
                if (!keys) { /* the first alias: read the keys once */
                    char dir[48];
                    if (pid == 0)
                        snprintf(dir, sizeof dir, "/proc/self");
                    else
                        snprintf(dir, sizeof dir, "/proc/%ld", (long)pid);
                    audit_keys(dir, maps, n);
                    keys = true;
                }
                if (maps[j].pkey > 0) { /* denied by default: protected */
                    if (acc->n[3] < XM_AUDIT_MAX_RANGES)
                        acc->key[acc->n[3]] = maps[j].pkey;
                    rep.pkey_aliases++;
                    audit_note(acc, 3, maps[i].start, maps[i].end,
                               maps[j].start, maps[i].path);
                    continue;
                }
                rep.wx_aliases++;
                audit_note(acc, 1, maps[i].start, maps[i].end, maps[j].start,
                           maps[i].path);
            }
        }
    }
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < acc->n[k] && rep.nranges < XM_AUDIT_MAX_RANGES; i++) {
            if (k == 3)
                rep.pkeys[rep.nranges] = acc->key[i];
            rep.ranges[rep.nranges++] = acc->r[k][i];
        }
    rep.ranges_omitted = rep.wx_mappings + rep.wx_aliases + rep.wx_possible +
                         rep.pkey_aliases - rep.nranges;
    xm__mem_free(acc);
    xm__mem_free(maps);
    xm__mem_free(buf);
    *out = rep;
    return XM_OK;
}

xm_result xm_audit(pid_t pid, xm_audit_report *out)
{
    return xm_audit_ex(pid, 0, out);
}
