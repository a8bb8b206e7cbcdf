/* SPDX-License-Identifier: MIT */
/* error.c: xm_strerror (result strings, from the one X-macro list) and
 * xm_version. */
#include "../include/execmem.h"

static const char *const xm_messages[] = {
#define XM__TEXT(name, text) text,
    XM_RESULT_MAP(XM__TEXT)
#undef XM__TEXT
};

const char *xm_strerror(xm_result r)
{
    if ((unsigned)r >= sizeof xm_messages / sizeof xm_messages[0])
        return "unknown execmem result";
    return xm_messages[r];
}

unsigned xm_version(void) { return XM_VERSION_NUMBER; }
