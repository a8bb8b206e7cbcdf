/* SPDX-License-Identifier: MIT */
/* consumer.c: an outside program built against the installed header and
 * library (make check runs it through pkg-config as C, shared and static,
 * and as C++; .ci/run also through CMake against the Debian packages).
 * It calls EVERY public function, so a function the header declares but the
 * shared library does not export fails to link (install_check.sh also
 * compares the program's undefined xm_ symbols with the header). */
#include <execmem.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("consumer: line %d: %s\n", __LINE__, #cond);                \
            return __LINE__;                                                   \
        }                                                                      \
    } while (0)

static int run(void)
{
    CHECK(xm_version() == XM_VERSION_NUMBER);
    CHECK(strcmp(xm_strerror(XM_EINVAL), "invalid argument") == 0);

    xm_sysinfo si;
    CHECK(xm_system_info(&si) == XM_OK && si.page_size > 0);

    xm_options o = XM_OPTIONS_INIT;
    xm_heap *h = NULL;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK) {
        printf("consumer: xm_heap_create: %s\n", xm_strerror(r));
        return 1;
    }
    xm_block b, d, q;
    CHECK(xm_alloc(h, 16, 0, &b) == XM_OK && b.size >= 16);
    CHECK(xm_alloc_data(h, 8, 8, &d) == XM_OK);
    memset(d.rw, 7, 8);
    CHECK(xm_publish(h, d.rx, XM_PROT_R) == XM_OK);
    CHECK(((const unsigned char *)d.rx)[7] == 7);
    CHECK(xm_name(h, b.rx, "consumer_fn") == XM_OK);
#if defined(__x86_64__)
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax,42; ret */
    memcpy(b.rw, ret42, sizeof ret42);
#else
    memset(b.rw, 0, 16);
#endif
    CHECK(xm_publish(h, b.rx, XM_PROT_RX) == XM_OK);
    CHECK(xm_query(h, (const char *)b.rx + 3, &q) == XM_OK && q.rx == b.rx);
#if defined(__x86_64__)
    int (*f)(void);
    memcpy(&f, &b.rx, sizeof f);
    CHECK(f() == 42);
    xm_block l;
    CHECK(xm_load(h, ret42, sizeof ret42, 0, XM_PROT_RX, &l) == XM_OK && l.rw == NULL);
    int (*g)(void);
    memcpy(&g, &l.rx, sizeof g);
    CHECK(g() == 42);
    CHECK(xm_free(h, l.rx) == XM_OK);
    static const unsigned char imm43[] = {43};
    CHECK(xm_patch(h, (char *)b.rx + 1, imm43, 1) == XM_OK);
    CHECK(f() == 43);
    void *w = NULL;
    CHECK(xm_write_begin(h, (char *)b.rx + 1, 1, &w) == XM_OK && w);
    *(unsigned char *)w = 44;
    CHECK(xm_write_end(h, (char *)b.rx + 1) == XM_OK);
    CHECK(f() == 44);
    static const unsigned char mov45[] = {0xb8, 45, 0, 0, 0}; /* mov eax,45 */
    r = xm_patch_live(h, b.rx, mov45, sizeof mov45);
    CHECK(r == XM_OK || r == XM_ENOTSUP);
    CHECK(f() == (r == XM_OK ? 45 : 44));
#else
    (void)xm_patch;
    void *w = NULL;
    CHECK(xm_write_begin(h, b.rx, 4, &w) == XM_OK);
    CHECK(xm_write_end(h, b.rx) == XM_OK);
    (void)xm_patch_live(h, b.rx, w, 0);
#endif
    unsigned st = 0;
    CHECK(xm_block_state(h, b.rx, &st) == XM_OK && (st & XM_BLOCK_PUBLISHED));
    ptrdiff_t aoff = 0;
    CHECK(xm_alias_offset(h, &aoff) == XM_ENOTSUP); /* not XM_INPLACE */
    CHECK(xm_commit(h, b.rx, 1) == XM_ENOTSUP);
    xm_stats s;
    CHECK(xm_heap_stats(h, &s) == XM_OK && s.live_blocks == 2);
    CHECK(xm_free(h, b.rx) == XM_OK);
    CHECK(xm_free_async(h, d.rx) == XM_OK);
    CHECK(xm_purge(h) == XM_OK);
    CHECK(xm_heap_stats(h, &s) == XM_OK && s.live_blocks == 0);
    xm_heap_destroy(h);

    xm_audit_report a;
    CHECK(xm_audit(0, &a) == XM_OK && a.mappings > 0 && a.wx_mappings == 0);
    CHECK(xm_audit_ex(0, XM_AUDIT_SMAPS, &a) == XM_OK);
    /* pid_max is at most 2^22: no such process */
    CHECK(xm_audit(0x3ffffffe, &a) == XM_EOS && xm_last_errno() == ENOENT);
    return 0;
}

int main(void)
{
    int line = run();
    if (line == 0)
        printf("consumer ok: execmem %u, every public function called\n",
               xm_version());
    return line ? 1 : 0;
}
