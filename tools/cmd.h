/* SPDX-License-Identifier: MIT */
/*
 * cmd.h: the execmem command's commands, one file each: their entry points
 * and their --help texts. main.c parses the options before the command
 * (--json, --help, --version) and `COMMAND --help`, then calls the entry
 * point with the arguments after the command name. Each returns the exit
 * status: 0 success (audit: clean); 1 audit found W+X or an alias, or demo
 * found a wrong result or a W+X mapping; 2 usage or system error.
 */
#ifndef XM_TOOLS_CMD_H
#define XM_TOOLS_CMD_H

/* info.c: what this system offers, what AUTO picks and why */
int cmd_info(int argc, char **argv);
extern const char cmd_info_help[];
/* audit.c: W+X mappings and aliases of processes (--all: every one) */
int cmd_audit(int argc, char **argv);
extern const char cmd_audit_help[];
/* demo.c: a small real JIT running on the heap, verified (its compiler:
 * expr.h) */
int cmd_demo(int argc, char **argv);
extern const char cmd_demo_help[];

#endif
