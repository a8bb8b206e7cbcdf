/* SPDX-License-Identifier: MIT */
/*
 * out.h: how the execmem command speaks, in one place (tools/out.c): the
 * --json switch every command reads, JSON strings, the version format,
 * usage errors (message, hint, exit 2), backend names and the demo's
 * progress bar on stderr. The commands (tools/cmd.h) print their own
 * records with printf, through these helpers; nothing here decides what a
 * command reports, only how.
 */
#ifndef XM_TOOLS_OUT_H
#define XM_TOOLS_OUT_H

#include <execmem.h>

#include <stdbool.h>
#include <stdint.h>

/* --json: given before the command or among its options (main.c and each
 * command set it); machine-readable output on stdout. */
extern bool out_json;
/* The command being run ("info", "audit", "demo"), or NULL before one is
 * known: named in usage_error's hint. Set by main.c. */
extern const char *out_cmd;

/* s as a JSON string, quoted and escaped, on stdout. */
void out_json_string(const char *s);
/* "MAJOR.MINOR.PATCH" of a version number (XM_VERSION_NUMBER, xm_version()),
 * on stdout, without a newline: the one version format. */
void out_version(unsigned v);
/* "execmem: MSG[: ARG]" and "try 'execmem [CMD ]--help'" on stderr;
 * returns 2, the usage exit status. */
int out_usage_error(const char *msg, const char *arg);
/* "DUAL", "FLIP" or "AUTO". */
const char *out_backend_name(xm_backend b);

/* The progress bar on stderr: one frame for done of total (total > 0;
 * done is clamped to it), drawn over the last; out_progress_end clears the
 * line. */
void out_progress(uint64_t done, uint64_t total);
void out_progress_end(void);

#endif
