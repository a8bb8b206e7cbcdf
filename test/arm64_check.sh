#!/bin/sh
# SPDX-License-Identifier: MIT
# arm64_check.sh [BUILD]: the whole test suite on arm64, on this x86-64 machine.
#   1. cross-builds (static, aarch64-linux-gnu-gcc) the library, the test
#      runner (test/runner.c + test/test_*.c, code from test/snippets.h),
#      test/live_arm64.c, the execmem tool (its demo JIT emits AArch64 there:
#      tools/expr_a64.c) and test/arm64_init.c;
#   2. under qemu-user: live_arm64 and the demo in FLIP only. User-mode qemu
#      notices code changes through the address it executes, not through
#      DUAL's second (writable) mapping of the same pages, so it runs stale
#      code there (an emulator limit): only FLIP can be trusted under it;
#   3. boots Debian's arm64 kernel in qemu-system-aarch64 (-smp 2, TCG; the
#      system emulator tracks code by physical page, so every backend is
#      right there) with arm64_init as /init: the runner once per backend
#      (XM_TEST_CONFIG=dual, strict, flip, inplace), live_arm64, the demo.
# The last line is "arm64: N passed, N failed" (", N skipped" when some
# skipped), N counting every runner test in every backend; a runner that
# dies counts its missing tests as failed. Under emulation (XM_EMULATED=1:
# test.h under_emulation) the heaviest tests do a fraction of their rounds:
# the live-patch hammer XM_HAMMER=$XM_ARM64_HAMMER patches (default 1000;
# FLIP a twentieth), free_async from a signal handler 300 blocks (as under
# valgrind), threads_share_one_heap a 40th of its operations, fast_mix a
# tenth, the fuzz corpus replay every tenth input, test_scale the sizes of
# XM_DEBUG=3; and init lowers vm.max_map_count to
# 16384, which the map-count test fills (65530 took 105 s a backend).
# XM_ARM64_TESTS="substr ..." and XM_ARM64_CONFIGS="flip ..." narrow a run.
# Needs gcc-aarch64-linux-gnu, qemu-user, qemu-system-arm, cpio, and the
# arm64 kernel package (fetched with apt-get download into BUILD); says SKIP
# with the reason when one is missing. .ci/run installs them.
set -u
O=${1:-build-arm64}
say() { echo "arm64: $*"; }
for t in aarch64-linux-gnu-gcc qemu-aarch64 qemu-system-aarch64 cpio; do
    command -v $t >/dev/null 2>&1 || {
        say "SKIP: $t not installed (Debian: gcc-aarch64-linux-gnu qemu-user qemu-system-arm cpio)"
        exit 0
    }
done
t_start=$(date +%s)
CC=aarch64-linux-gnu-gcc
CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -O2 -g"
set -e
make -s O="$O" CC=$CC AR=aarch64-linux-gnu-ar "$O/libexecmem.a"
$CC $CFLAGS -Iinclude test/live_arm64.c -o "$O/live_arm64" "$O/libexecmem.a" -lpthread -static
$CC $CFLAGS -DXM_DEBUG=1 -Iinclude -Isrc test/runner.c test/fuzz_api.c test/test_*.c \
    -o "$O/runner" "$O/libexecmem.a" -lpthread -static
$CC $CFLAGS -Iinclude tools/*.c -o "$O/execmem" \
    "$O/libexecmem.a" -lpthread -static
# (test_audit: a program whose text and data share a file page)
$CC -std=c11 -D_GNU_SOURCE -O2 -Wl,-z,noseparate-code -Wl,-z,norelro \
    test/wx_helper.c -o "$O/wx_nosep" -static
$CC $CFLAGS test/arm64_init.c -o "$O/arm64_init" -static
set +e
ntests=$(grep -h '^TEST(' test/test_*.c | wc -l)
configs=${XM_ARM64_CONFIGS:-dual strict flip inplace}
hammer=${XM_ARM64_HAMMER:-1000}

fail=0
out=$(qemu-aarch64 "$O/live_arm64" 2000 --emulated 2>&1)
echo "$out" | sed 's/^/  qemu-user: /'
echo "$out" | grep -q 'all passed' || { say "FAIL: live_arm64 under qemu-user"; fail=1; }
out=$(qemu-aarch64 "$O/execmem" demo --backend flip --count 5000 2>&1)
echo "$out" | grep -E 'JIT-compiled|mismatches' | sed 's/^/  qemu-user demo (flip): /'
echo "$out" | grep -q 'mismatches: 0$' || { say "FAIL: the demo under qemu-user"; fail=1; }

# the kernel: Debian's arm64 image, downloaded once into $O/kernel
k=$(ls "$O"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
if [ -z "$k" ]; then
    mkdir -p "$O/kernel"
    if ! dpkg --print-foreign-architectures | grep -q arm64; then
        dpkg --add-architecture arm64 && apt-get update -q >/dev/null 2>&1
    fi
    pkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[^:]*\).*/\1/p' | head -n 1)
    if [ -z "$pkg" ] || ! (cd "$O/kernel" && apt-get download "$pkg:arm64" >/dev/null 2>&1); then
        say "SKIP qemu-system part: cannot fetch Debian's arm64 kernel (apt-get download linux-image-arm64:arm64)"
        say "$fail failed (the runner suite did not run: no arm64 kernel)"
        exit $fail
    fi
    dpkg-deb -x "$O"/kernel/*.deb "$O/kernel" && rm -f "$O"/kernel/*.deb
    k=$(ls "$O"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
fi
kname=$(basename "$k" | sed 's/^vmlinuz-//')
rm -rf "$O/initrd" && mkdir -p "$O/initrd"
cp "$O/arm64_init" "$O/initrd/init"
cp "$O/runner" "$O/wx_nosep" "$O/live_arm64" "$O/execmem" "$O/initrd/"
mkdir -p "$O/initrd/test" && cp -r test/corpus "$O/initrd/test/" # fuzz_corpus_replay
(cd "$O/initrd" && find . | cpio -o -H newc 2>/dev/null) | gzip -1 > "$O/initrd.gz"
t_boot=$(date +%s)
timeout 1500 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 2048 -nographic \
    -no-reboot -net none -kernel "$k" -initrd "$O/initrd.gz" \
    -append "console=ttyAMA0 panic=-1 quiet XM_EMULATED=1 XM_HAMMER=$hammer XM_ARM64_CONFIGS=$(echo $configs | tr ' ' ,) XM_ARM64_TESTS=$(echo ${XM_ARM64_TESTS:-} | tr ' ' ,)" \
    > "$O/qemu-system.log" 2>&1
t_end=$(date +%s)
tr -d '\r' < "$O/qemu-system.log" > "$O/qemu-system.txt"
log="$O/qemu-system.txt"
grep -q 'arm64-init: done' "$log" || {
    say "FAIL: the arm64 machine did not finish (log: $log):"
    tail -n 30 "$log"
    fail=1
}
# every runner pass: its failures and skips, and its count
P=0 F=0 S=0
for c in $configs; do
    part=$(sed -n "/^arm64-step runner:$c begin/,/^arm64-step runner:$c end/p" "$log")
    echo "$part" | grep -B4 '^FAIL ' | sed "s/^/  [$c] /"
    echo "$part" | grep '^SKIP ' | sed "s/^/  [$c] /"
    last=$(echo "$part" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$last" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(echo "$last" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    p=${p:-0} f=${f:-0} s=${s:-0}
    if [ -z "${XM_ARM64_TESTS:-}" ] && [ $((p + f + s)) -lt "$ntests" ]; then
        say "[$c] the runner stopped after $((p + f + s)) of $ntests tests: the rest count as failed"
        echo "$part" | tail -n 5 | sed "s/^/  [$c] /"
        f=$((ntests - p - s))
    fi
    echo "  qemu-system ($kname) [$c]: $p passed, $f failed, $s skipped ($(echo "$part" | sed -n 's/.* end [0-9-]* (\(.*\))$/\1/p'))"
    P=$((P + p)) F=$((F + f)) S=$((S + s))
done
part=$(sed -n '/^arm64-step live_arm64 begin/,/^arm64-step live_arm64 end/p' "$log")
echo "$part" | grep '^arm64 ' | sed "s|^|  qemu-system ($kname): |"
echo "$part" | grep -q 'arm64 live patching: all passed' || { say "FAIL: live_arm64 under qemu-system"; fail=1; }
for d in demo demo-strict; do
    part=$(sed -n "/^arm64-step $d begin/,/^arm64-step $d end/p" "$log")
    echo "$part" | grep -E 'JIT-compiled|backend|mismatches|audit|stopped|end' | sed "s|^|  qemu-system ($kname) $d: |"
    echo "$part" | grep -q 'mismatches: 0$' && echo "$part" | grep -q "^arm64-step $d end 0 " ||
        { say "FAIL: $d under qemu-system"; fail=1; }
done
echo "  times: build + qemu-user $((t_boot - t_start)) s, qemu-system $((t_end - t_boot)) s (TCG, -smp 2)"
F=$((F + fail))
if [ "$S" -gt 0 ]; then
    say "$P passed, $F failed, $S skipped"
else
    say "$P passed, $F failed"
fi
[ "$F" = 0 ]
