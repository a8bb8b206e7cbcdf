/* consumer.c: an outside program built against the installed header and
 * library through pkg-config (make check runs it, as C and as C++). */
#include <execmem.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    xm_options o = XM_OPTIONS_INIT;
    xm_heap *h = NULL;
    xm_result r = xm_heap_create(&o, &h);
    if (r != XM_OK) {
        printf("xm_heap_create: %s\n", xm_strerror(r));
        return 1;
    }
    xm_block b;
    if (xm_alloc(h, 16, 0, &b) != XM_OK)
        return 2;
#if defined(__x86_64__)
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax,42; ret */
    memcpy(b.rw, ret42, sizeof ret42);
    if (xm_publish(h, b.rx, XM_PROT_RX) != XM_OK)
        return 3;
    int (*f)(void);
    memcpy(&f, &b.rx, sizeof f);
    if (f() != 42)
        return 4;
#endif
    xm_stats s;
    if (xm_heap_stats(h, &s) != XM_OK || s.live_blocks != 1)
        return 5;
    if (xm_free(h, b.rx) != XM_OK || xm_purge(h) != XM_OK)
        return 6;
    xm_heap_destroy(h);
    printf("consumer ok: execmem %u\n", xm_version());
    return xm_version() == XM_VERSION_NUMBER ? 0 : 7;
}
