#!/bin/sh
# SPDX-License-Identifier: MIT
# sym_check.sh BUILD: the real perf and gdb name JIT code that xm_name named
# (test/jitsym.c). Each part says SKIP with the reason where this machine
# cannot run the tool (not installed, perf_event_paranoid, no ptrace).
#   - DUAL and DUAL+STRICT: perf record -k mono of XM_PERF=jitdump, then
#     perf inject --jit, then perf report shows xm_spin_fn;
#   - execmem demo under XM_PERF=jitdump: the report names jit_expr_ functions;
#   - FLIP: perf record of XM_PERF=map, perf report shows xm_spin_fn;
#   - FLIP: gdb -batch, `break xm_add_fn` (pending) stops in xm_add_fn;
#   - DUAL: the same with `hbreak` (gdb cannot write INT3 into the shared,
#     read-only code view);
#   - control: without XM_GDB the breakpoint never resolves.
set -u
O=${1:-build}
prog=$O/jitsym
tmp=$(mktemp -d /tmp/xm-symcheck.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
say() { echo "sym: $*"; }
bad() { say "FAIL: $*"; fail=1; }

[ -x "$prog" ] || { bad "$prog not built"; exit 1; }
case $(uname -m) in
x86_64) ;;
*) say "SKIP: the checks' JIT code is x86-64"; exit 0 ;;
esac

# ---- perf ----------------------------------------------------------------
perf_top() { # data file -> the report's lines naming symbols
    perf report -i "$1" --stdio --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -3
}
expect_spin() { # label data-file: the report's top names xm_spin_fn
    top=$(perf_top "$2")
    if echo "$top" | grep -q 'xm_spin_fn'; then
        say "ok   $1: $(echo "$top" | head -1 | tr -s ' ')"
    else
        bad "$1: perf report does not name xm_spin_fn:"
        echo "$top"
    fi
}
if ! command -v perf >/dev/null 2>&1; then
    say "SKIP perf: not installed (Debian: apt-get install linux-perf)"
elif ! perf record -e cpu-clock -k mono -o "$tmp/probe.data" -- true >"$tmp/probe.out" 2>&1; then
    say "SKIP perf: perf record cannot record here: $(grep -m1 -i -E 'error|denied|not' "$tmp/probe.out")"
else
    for b in dual strict; do
        d=$tmp/$b
        mkdir -p "$d"
        if ! XM_PERF=jitdump JITDUMPDIR=$d perf record -k mono -e cpu-clock \
            -o "$d/perf.data" -- "$prog" $b spin >"$d/rec.out" 2>&1; then
            bad "perf record of jitsym $b failed: $(tail -n 3 "$d/rec.out")"
            continue
        fi
        ls "$d"/jit-*.dump >/dev/null 2>&1 || bad "$b: no jit-PID.dump in JITDUMPDIR"
        if ! perf inject --jit -i "$d/perf.data" -o "$d/jit.data" >"$d/inj.out" 2>&1; then
            bad "perf inject --jit ($b): $(tail -n 3 "$d/inj.out")"
            continue
        fi
        expect_spin "perf + jitdump ($b)" "$d/jit.data"
    done
    # the demo names its 20,000 functions jit_expr_tT_N
    d=$tmp/demo
    mkdir -p "$d"
    if XM_PERF=jitdump JITDUMPDIR=$d perf record -k mono -e cpu-clock -F 20000 \
        -o "$d/perf.data" -- "$O/execmem" demo --count 20000 --no-progress >"$d/rec.out" 2>&1 &&
        perf inject --jit -i "$d/perf.data" -o "$d/jit.data" >"$d/inj.out" 2>&1; then
        n=$(perf report -i "$d/jit.data" --stdio --sort sym 2>/dev/null | grep -c 'jit_expr_t0_')
        recs=$(ls "$d"/jitted-*.so 2>/dev/null | wc -l)
        if [ "$n" -gt 0 ]; then
            say "ok   perf + jitdump (execmem demo): $n JIT functions named in the report, e.g.$(perf report -i "$d/jit.data" --stdio --sort sym 2>/dev/null | grep -m1 'jit_expr_t0_' | tr -s ' ')"
        elif [ "$recs" -ge 20000 ]; then
            # the demo spends little time in its JIT code: at a throttled
            # sample rate no sample may land there; the 20,000 named
            # objects perf inject made are the evidence then
            say "ok   perf + jitdump (execmem demo): perf inject made $recs named objects (no sample landed in JIT code this time)"
        else
            bad "execmem demo: perf inject made $recs objects for 20000 named functions, report names none"
        fi
    else
        bad "perf record/inject of execmem demo failed: $(tail -n 3 "$d/rec.out" "$d/inj.out" 2>/dev/null)"
    fi
    d=$tmp/flip
    mkdir -p "$d"
    if XM_PERF=map perf record -e cpu-clock -o "$d/perf.data" -- "$prog" flip spin >"$d/rec.out" 2>&1; then
        expect_spin "perf + perf map (flip)" "$d/perf.data"
    else
        bad "perf record of jitsym flip failed: $(tail -n 3 "$d/rec.out")"
    fi
    pid=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$d/rec.out")
    [ -n "$pid" ] && rm -f "/tmp/perf-$pid.map"
fi

# ---- gdb -----------------------------------------------------------------
gdb_run() { # backend break-command env... -> gdb's output
    b=$1 cmd=$2
    shift 2
    env "$@" timeout 120 gdb -nx -batch -ex 'set breakpoint pending on' \
        -ex "$cmd xm_add_fn" -ex run -ex bt -ex 'x/2i $pc' -ex continue \
        --args "$prog" "$b" call 2>&1
}
if ! command -v gdb >/dev/null 2>&1; then
    say "SKIP gdb: not installed (Debian: apt-get install gdb)"
else
    out=$(gdb_run flip break XM_GDB=1)
    if echo "$out" | grep -q -i -E 'ptrace|cannot create process|permission'; then
        say "SKIP gdb: cannot trace a process here: $(echo "$out" | grep -m1 -i -E 'ptrace|cannot|permission')"
    else
        hit=$(echo "$out" | grep -m1 'Breakpoint 1, 0x[0-9a-f]* in xm_add_fn ()')
        if [ -n "$hit" ] && echo "$out" | grep -q 'xm_add_fn(2, 3) = 5'; then
            say "ok   gdb break (flip): $hit"
        else
            bad "gdb did not stop in xm_add_fn (flip):"
            echo "$out" | tail -n 12
        fi
        out=$(gdb_run dual hbreak XM_GDB=1)
        hit=$(echo "$out" | grep -m1 'Breakpoint 1, 0x[0-9a-f]* in xm_add_fn ()')
        # a control: does a hardware breakpoint on the program's own main
        # stop at all here? (some VMs give gdb no debug registers)
        hwok=$(timeout 120 gdb -nx -batch -ex 'hbreak main' -ex run --args "$prog" dual call 2>&1)
        if [ -n "$hit" ] && echo "$out" | grep -q 'xm_add_fn(2, 3) = 5'; then
            say "ok   gdb hbreak (dual): $hit"
        elif ! echo "$hwok" | grep -q 'Breakpoint 1, main'; then
            say "SKIP gdb hbreak (dual): hardware breakpoints do not stop even in main here: $(echo "$hwok" | grep -m1 -i -E 'hardware|exited' || echo none)"
        elif echo "$out" | grep -q -i 'hardware breakpoint'; then
            say "SKIP gdb hbreak (dual): no hardware breakpoints here: $(echo "$out" | grep -m1 -i 'hardware breakpoint')"
        else
            bad "gdb did not stop in xm_add_fn (dual, hbreak):"
            echo "$out" | tail -n 12
        fi
        out=$(gdb_run flip break XM_GDB=0)
        if echo "$out" | grep -q 'in xm_add_fn ()'; then
            bad "control: gdb named xm_add_fn without XM_GDB"
        elif echo "$out" | grep -q 'xm_add_fn(2, 3) = 5'; then
            say "ok   control: without XM_GDB=1 gdb does not know xm_add_fn"
        else
            bad "control run failed:"
            echo "$out" | tail -n 12
        fi
    fi
fi
exit $fail
