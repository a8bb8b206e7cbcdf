/* SPDX-License-Identifier: MIT */
/*
 * hello.c: JIT one function into an execmem heap, run it, free it, and show
 * what the heap did: once with the defaults and once with XM_STRICT.
 * x86-64 machine code; other architectures print a note.
 */
#include <execmem.h>

#include <stdio.h>
#include <string.h>

typedef long (*add_fn)(long, long);

static int run(unsigned flags)
{
    xm_options o = XM_OPTIONS_INIT;
    o.flags = flags;
    xm_heap *h;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK) {
        fprintf(stderr, "xm_heap_create: %s\n", xm_strerror(r));
        return 1;
    }
    /* long add(long a, long b) { return a + b + 1000; }
       lea rax, [rdi + rsi]; add rax, 1000; ret */
    static const unsigned char code[] = {0x48, 0x8d, 0x04, 0x37, 0x48, 0x05,
                                         0xe8, 0x03, 0x00, 0x00, 0xc3};
    xm_block b;
    if ((r = xm_alloc(h, sizeof code, 0, &b)) != XM_OK) {
        fprintf(stderr, "xm_alloc: %s\n", xm_strerror(r));
        return 1;
    }
    memcpy(b.rw, code, sizeof code); /* write through rw ... */
    if ((r = xm_publish(h, b.rx, XM_PROT_RX)) != XM_OK) { /* ... run at rx */
        fprintf(stderr, "xm_publish: %s\n", xm_strerror(r));
        return 1;
    }
    add_fn f;
    memcpy(&f, &b.rx, sizeof f);
    long v = f(20, 22);
    xm_stats s;
    xm_heap_stats(h, &s);
    xm_audit_report a;
    xm_audit(0, &a);
    printf("backend %s%s\n",
           s.backend == XM_BACKEND_DUAL ? "DUAL (memfd, two views)" : "FLIP (mprotect)",
           (s.flags & XM_STRICT) ? " + XM_STRICT" : "");
    printf("  JIT-compiled add(20, 22) + 1000 at %p (block of %zu bytes): %ld\n",
           b.rx, b.size, v);
    printf("  while it is live: %zu W+X mappings, %zu W+X aliases%s\n",
           a.wx_mappings, a.wx_aliases,
           a.wx_aliases ? " (the writable view of DUAL's memfd)" : "");
    xm_free(h, b.rx);
    xm_purge(h);
    xm_heap_stats(h, &s);
    printf("  after free + purge: %zu live blocks, %llu system calls, "
           "%llu revocations, quarantine %zu bytes\n",
           s.live_blocks, (unsigned long long)s.syscalls,
           (unsigned long long)s.revocations, s.quarantine_bytes);
    xm_heap_destroy(h);
    return v == 1042 ? 0 : 1;
}

int main(void)
{
#if defined(__x86_64__)
    printf("execmem %u.%u.%u\n", XM_VERSION_MAJOR, XM_VERSION_MINOR,
           XM_VERSION_PATCH);
    return run(0) | run(XM_STRICT);
#else
    printf("this example carries x86-64 machine code; nothing to run here\n");
    return 0;
#endif
}
