#!/bin/sh
# cli_check.sh: the execmem command, observed. Audits processes that really
# map RWX or dual-map a memfd (found: exit 1), a clean one (exit 0), a
# missing one (exit 2); info and demo with and without --json.
# Usage: test/cli_check.sh BUILD_DIR
set -u
O=${1:-build}
X="$O/execmem"
H="$O/wx_helper"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); printf 'cli: FAIL %s\n' "$*"; }
expect() { # expect CODE DESCRIPTION -- command...
    want=$1; what=$2; shift 3
    out=$("$@" 2>&1); got=$?
    if [ "$got" = "$want" ]; then ok; else no "$what: exit $got, expected $want"; printf '%s\n' "$out" | head -5; fi
}
has() { # has TEXT DESCRIPTION -- command...
    text=$1; what=$2; shift 3
    if "$@" 2>&1 | grep -q -- "$text"; then ok; else no "$what: no '$text' in the output"; fi
}
tmp=$(mktemp -d)
# start runs in $(...), a subshell: the helpers' pids go to a file
cleanup() { [ -f "$tmp/pids" ] && kill $(cat "$tmp/pids") 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
start() { # start MODE [BINARY]: runs the helper, waits until it is ready, prints its pid
    "${2:-$H}" "$1" > "$tmp/$1.out" &
    p=$!
    echo "$p" >> "$tmp/pids"
    i=0
    while ! grep -q ready "$tmp/$1.out" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    echo $p
}

expect 0 "--help" -- "$X" --help
has "usage: execmem" "--help text" -- "$X" --help
has "execmem 0\." "--version" -- "$X" --version
expect 2 "no command" -- "$X"
expect 2 "unknown command" -- "$X" frobnicate
expect 2 "unknown option" -- "$X" demo --bogus
expect 2 "bad count" -- "$X" demo --count x

expect 0 "info" -- "$X" info
has "backend AUTO resolves to" "info text" -- "$X" info
has '"auto_backend": "' "info --json" -- "$X" --json info
has '"exec_memfd": 1' "info --json probe" -- "$X" info --json

rwx=$(start rwx); dual=$(start dual); clean=$(start clean)
expect 1 "audit of an RWX process" -- "$X" audit "$rwx"
has "W+X " "audit lists the RWX range" -- "$X" audit "$rwx"
expect 1 "audit of a dual-mapped memfd" -- "$X" audit "$dual"
has "memfd:jit-code" "audit names the aliased file" -- "$X" audit "$dual"
has '"wx_aliases": 1' "audit --json alias" -- "$X" --json audit "$dual"
expect 0 "audit of a clean process" -- "$X" audit "$clean"
# issue 16: SysV shm segment 0 attached rw-s and r-xs is an alias (root:
# a fresh IPC namespace); a private writable view of a program's own text
# page (linked -z noseparate-code -z norelro) is not
sysv=$(start sysv)
if grep -q ready "$tmp/sysv.out"; then
    expect 1 "audit of SysV shm segment 0 mapped rw and rx" -- "$X" audit "$sysv"
    has "/SYSV00000000" "audit names the SysV segment" -- "$X" audit "$sysv"
    has '"wx_aliases": 1' "audit --json SysV alias" -- "$X" --json audit "$sysv"
else
    echo "cli: SKIP SysV shm alias (no fresh IPC namespace here: needs CAP_SYS_ADMIN)"
fi
nosep=$(start nosep "$O/wx_nosep")
grep -q ready "$tmp/nosep.out" || no "wx_nosep did not start"
expect 0 "audit of text and data in one file page" -- "$X" audit "$nosep"
has '"wx_aliases": 0' "audit --json private writable view" -- "$X" --json audit "$nosep"
has '"clean": true' "audit --json clean" -- "$X" audit --json "$clean"
expect 1 "audit of several (worst wins)" -- "$X" audit "$clean" "$rwx"
expect 2 "audit of a missing process" -- "$X" audit 999999999
has "no such process" "audit says why" -- "$X" audit 999999999
expect 2 "audit of a non-number" -- "$X" audit abc
expect 0 "audit of itself" -- "$X" audit
"$X" audit --all > "$tmp/all.txt" 2>&1; code=$?
if [ $code = 1 ] && grep -q "processes scanned" "$tmp/all.txt" && grep -q "^ *$rwx " "$tmp/all.txt"; then ok; else no "audit --all: exit $code"; head -3 "$tmp/all.txt"; fi
has '"scanned": ' "audit --all --json" -- "$X" --json audit --all

expect 0 "demo" -- "$X" demo --count 20000 --no-progress
has "mismatches: 0" "demo verifies" -- "$X" demo --count 20000
has "-> clean" "demo audits itself" -- "$X" demo --count 20000
has "0 W+X aliases -> clean" "demo --strict has no alias" -- "$X" demo --count 20000 --strict
has "backend FLIP" "demo --backend flip" -- "$X" demo --count 3000 --backend flip
has "2 threads" "demo --threads 2" -- "$X" demo --count 20000 --threads 2 --seed 7
has '"mismatches": 0' "demo --json" -- "$X" demo --count 5000 --json

printf 'cli check: %d passed, %d failed\n' "$pass" "$fail"
[ "$fail" = 0 ]
