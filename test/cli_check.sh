#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_check.sh: the execmem command, observed. Audits processes that really
# map RWX or dual-map a memfd (found: exit 1), a clean one (exit 0), a
# missing one (exit 2), a mix (the finding wins, the error is reported, in
# JSON too), one with more ranges than are listed ("N more"); every
# command's --help; refused combinations; info and demo with and without
# --json (JSON checked by python3's parser where python3 is installed).
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
lacks() { # lacks TEXT DESCRIPTION -- command...
    text=$1; what=$2; shift 3
    if "$@" 2>&1 | grep -q -- "$text"; then no "$what: '$text' in the output"; else ok; fi
}
json_ok() { # json_ok DESCRIPTION -- command...  (stdout must parse as JSON)
    what=$1; shift 2
    command -v python3 >/dev/null 2>&1 || { ok; return; }
    if "$@" 2>/dev/null | python3 -c 'import json,sys; json.load(sys.stdin)'; then ok; else no "$what: not valid JSON"; fi
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
has "^execmem [0-9]*\.[0-9]*\.[0-9]* (library [0-9]*\.[0-9]*\.[0-9]*)$" "--version: one X.Y.Z format" -- "$X" --version
for c in info audit demo; do
    expect 0 "$c --help" -- "$X" $c --help
    has "usage: execmem \[--json\] $c" "$c --help text" -- "$X" $c --help
    has "usage: execmem \[--json\] $c" "help $c" -- "$X" help $c
done
has "finding wins" "audit --help says which exit code wins" -- "$X" audit --help
has "progress" "demo --help lists --progress" -- "$X" demo --help
expect 2 "demo --backend flip --strict refused" -- "$X" demo --backend flip --strict --count 10
has "DUAL" "demo --strict with flip says why" -- "$X" demo --backend flip --strict --count 10
expect 2 "audit --all with a PID refused" -- "$X" audit --all 1
expect 2 "no command" -- "$X"
expect 2 "unknown command" -- "$X" frobnicate
expect 2 "unknown option" -- "$X" demo --bogus
expect 2 "bad count" -- "$X" demo --count x

expect 0 "info" -- "$X" info
has "backend AUTO resolves to" "info text" -- "$X" info
has '"auto_backend": "' "info --json" -- "$X" --json info
has '"exec_memfd": 1' "info --json probe" -- "$X" info --json

rwx=$(start rwx); dual=$(start dual); clean=$(start clean); many=$(start many)
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
# a finding and an error: exit 1 wins, both reported, in text and JSON
expect 1 "audit of an RWX process and a missing one" -- "$X" audit "$rwx" 999999999
has "W+X " "mixed audit lists the finding" -- "$X" audit "$rwx" 999999999
has "no such process" "mixed audit reports the error" -- "$X" audit "$rwx" 999999999
has "finding wins over an error" "mixed audit says which code wins" -- "$X" audit "$rwx" 999999999
expect 1 "audit --json of a mix" -- "$X" --json audit "$rwx" 999999999
has '"error": "no such process"' "audit --json reports the error in the JSON" -- "$X" --json audit "$rwx" 999999999
has '"errors": 1' "audit --json counts errors" -- "$X" --json audit "$rwx" 999999999
has '"wx_mappings": 1' "audit --json keeps the finding" -- "$X" --json audit "$rwx" 999999999
json_ok "audit --json of a mix" -- "$X" --json audit "$rwx" 999999999
json_ok "audit --json of a missing process" -- "$X" --json audit 999999999
has '"error": "no such process"' "audit --json of a missing process" -- "$X" --json audit 999999999
# more ranges than the report lists
expect 1 "audit of 12 W+X mappings" -- "$X" audit "$many"
has "and [0-9]* more range" "audit says how many ranges it left out" -- "$X" audit "$many"
has '"ranges_omitted": [1-9]' "audit --json ranges_omitted" -- "$X" --json audit "$many"
json_ok "audit --json of many ranges" -- "$X" --json audit "$many"
expect 0 "audit of itself" -- "$X" audit
"$X" audit --all > "$tmp/all.txt" 2>&1; code=$?
if [ $code = 1 ] && grep -q "processes scanned" "$tmp/all.txt" && grep -q "^ *$rwx " "$tmp/all.txt"; then ok; else no "audit --all: exit $code"; head -3 "$tmp/all.txt"; fi
has '"scanned": ' "audit --all --json" -- "$X" --json audit --all

expect 0 "demo" -- "$X" demo --count 20000 --no-progress
has "mismatches: 0" "demo verifies" -- "$X" demo --count 20000
# one meaning of clean: DUAL's alias is not clean for demo either (as for
# audit), though the demo does not fail on it
has "1 W+X aliases -> NOT W^X CLEAN" "demo's DUAL alias is not called clean" -- "$X" demo --count 20000 --backend dual
has '"audit_clean": false' "demo --json audit_clean with the alias" -- "$X" demo --count 2000 --backend dual --json
has "0 W+X aliases -> clean" "demo --strict has no alias" -- "$X" demo --count 20000 --strict
has '"audit_clean": true' "demo --json --strict audit_clean" -- "$X" demo --count 2000 --strict --json
json_ok "demo --json" -- "$X" demo --count 2000 --json
json_ok "info --json" -- "$X" info --json
json_ok "audit --all --json" -- "$X" --json audit --all
has "backend FLIP" "demo --backend flip" -- "$X" demo --count 3000 --backend flip
has "2 threads" "demo --threads 2" -- "$X" demo --count 20000 --threads 2 --seed 7
has '"mismatches": 0' "demo --json" -- "$X" demo --count 5000 --json

printf 'cli check: %d passed, %d failed\n' "$pass" "$fail"
[ "$fail" = 0 ]
