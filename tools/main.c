/* SPDX-License-Identifier: MIT */
/*
 * main.c: the execmem command-line tool: the usage text, the options before
 * the command (--json, --help, --version), `COMMAND --help` and
 * `help [COMMAND]`, and the dispatch to one file per command (cmd.h).
 * Public API only.
 *
 *   execmem info            what this system offers, what AUTO picks and why
 *   execmem audit [PID...]  W+X mappings and aliases of processes (--all: every one)
 *   execmem demo            a small real JIT running on the heap, verified
 *
 * Exit codes: 0 success (audit: clean); 1 audit found W+X or an alias, or
 * demo found a wrong result or a W+X mapping; 2 usage or system error. When
 * audit finds W+X in one process and cannot read another, 1 wins: the
 * finding is the answer asked for, and the error is reported too (stderr,
 * and in the JSON). `execmem COMMAND --help` describes each command.
 */
#include <execmem.h>
#include "cmd.h"
#include "out.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "usage: execmem [--json] COMMAND [options]\n"
    "       execmem COMMAND --help     (options of one command)\n"
    "\n"
    "commands:\n"
    "  info                 what this system offers for executable memory and\n"
    "                       which backend the library picks, and why\n"
    "  audit [PID...]       W+X mappings, W+X aliases and mappings that may\n"
    "                       become W+X, per process (default: this one)\n"
    "  audit --all          every readable process, as a summary table\n"
    "  demo [options]       JIT random arithmetic functions into the heap, check\n"
    "                       every one against an interpreter, report the costs\n"
    "      --count N        functions to compile (default 1000000)\n"
    "      --working-set N  functions alive at once per thread (default 2000)\n"
    "      --backend B      auto, dual or flip (default auto)\n"
    "      --strict         XM_STRICT: no writable mapping of code at any time\n"
    "                       (DUAL only: refused with --backend flip)\n"
    "      --threads N      compiling threads sharing the heap (default 1)\n"
    "      --seed N         random seed (default 1)\n"
    "      --progress, --no-progress   progress bar on stderr (default: on\n"
    "                       when stderr is a terminal and without --json)\n"
    "\n"
    "options:\n"
    "  --json               machine-readable output for every command\n"
    "  --help, --version\n"
    "\n"
    "exit status: 0 success (audit: clean); 1 audit found W+X mappings or\n"
    "aliases, or demo found a wrong result or a W+X mapping; 2 usage or system\n"
    "error. audit: a finding (1) wins over an error (2) in another process.\n";

static bool is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* The commands: one file each (cmd.h). */
typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"info", cmd_info, cmd_info_help},
    {"audit", cmd_audit, cmd_audit_help},
    {"demo", cmd_demo, cmd_demo_help},
};

static const command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("execmem ");
            out_version(XM_VERSION_NUMBER);
            printf(" (library ");
            out_version(xm_version());
            printf(")\n");
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            out_json = true;
        else
            return out_usage_error("unknown option", argv[i]);
    }
    if (i >= argc)
        return out_usage_error("no command given", NULL);
    const char *cmd = argv[i++];
    const command *c = find(cmd);
    if (c)
        out_cmd = cmd;
    int rest = argc - i;
    char **rargv = argv + i;
    for (int k = 0; c && k < rest; k++) { /* `execmem COMMAND --help` */
        if (is_help(rargv[k])) {
            fputs(c->help, stdout);
            return 0;
        }
    }
    if (c)
        return c->run(rest, rargv);
    if (!strcmp(cmd, "help")) { /* execmem help [COMMAND] */
        const command *h = find(rest > 0 ? rargv[0] : "");
        fputs(h ? h->help : usage_text, stdout);
        return 0;
    }
    return out_usage_error("unknown command", cmd);
}
