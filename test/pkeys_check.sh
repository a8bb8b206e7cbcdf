#!/bin/sh
# SPDX-License-Identifier: MIT
# pkeys_check.sh [BUILD]: the whole test runner in XM_PKEYS mode on a CPU
# with protection keys, on this machine, which has none.
#   1. builds the runner static (BUILD/runner-static);
#   2. boots it as /init of Debian's cloud amd64 kernel (the .deb fetched
#      with apt-get download and unpacked with dpkg-deb -x into BUILD, not
#      installed) in qemu-system-x86_64 -accel tcg -cpu max (PKU, OSPKE),
#      -smp 2; the kernel command line gives it XM_EMULATED=1 (test.h
#      under_emulation: the heaviest loops shortened, and the live-patch
#      hammer rewrites a code page whose stale translation keeps a caller
#      on a gone INT3, which TCG does now and then), XM_TEST_PKEYS=1 (make_heap
#      adds XM_PKEYS to every DUAL configuration without XM_STRICT, and the
#      pkeys_* tests run instead of skipping) and the scale knobs below;
#   3. reads the verdict from the serial log (QEMU exits 0 whatever the
#      guest does) and ends with "pkeys: N passed, N failed".
# Under TCG every instruction is emulated (10-50x slower): the heavy tests
# are scaled down with the runner's knobs (XM_HAMMER: live-patch hammer
# and the pkeys tests' loops; XM_STRESS_SECONDS). Extra arguments for the
# runner (test name filters): PKEYS_TESTS="pkeys window".
# Needs qemu-system-x86 and cpio; says SKIP with the reason when one is
# missing. .ci/run installs them.
set -u
O=${1:-build-pkeys}
say() { echo "pkeys: $*"; }
for t in qemu-system-x86_64 cpio gzip; do
    command -v $t >/dev/null 2>&1 || {
        say "SKIP: $t not installed (Debian: qemu-system-x86 cpio)"
        exit 0
    }
done
case "$(uname -m)" in
x86_64) ;;
*) say "SKIP: not an x86-64 machine"; exit 0 ;;
esac
set -e
make -s O="$O" "$O/libexecmem.a"
CFLAGS_T="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -g -O2 -DXM_DEBUG=1"
cc $CFLAGS_T -Iinclude -Isrc test/runner.c test/fuzz_api.c test/test_*.c \
    -o "$O/runner-static" "$O/libexecmem.a" -lpthread -static 2>&1 |
    grep -v 'statically linked applications requires at runtime' || true
[ -x "$O/runner-static" ] || { say "FAIL: the static runner did not build"; exit 1; }
# what the runner finds next to itself and under its working directory (/)
cc $CFLAGS_T -Wl,-z,noseparate-code -Wl,-z,norelro test/wx_helper.c \
    -o "$O/wx_nosep-static" -static
set +e

# the kernel: Debian's cloud amd64 image, downloaded once into $O/kernel
k=$(ls "$O"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
if [ -z "$k" ]; then
    mkdir -p "$O/kernel"
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n 1)
    if [ -z "$pkg" ] || ! (cd "$O/kernel" && apt-get download "$pkg" >/dev/null 2>&1); then
        say "SKIP: cannot fetch Debian's cloud kernel (apt-get download linux-image-cloud-amd64)"
        exit 0
    fi
    dpkg-deb -x "$O"/kernel/*.deb "$O/kernel" && rm -f "$O"/kernel/*.deb
    k=$(ls "$O"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
fi
[ -n "$k" ] || { say "FAIL: no vmlinuz in $O/kernel"; exit 1; }
rm -rf "$O/initrd" && mkdir -p "$O/initrd"
cp "$O/runner-static" "$O/initrd/init"
cp "$O/wx_nosep-static" "$O/initrd/wx_nosep"
mkdir -p "$O/initrd/test" && cp -r test/corpus "$O/initrd/test/"
(cd "$O/initrd" && find . | cpio -o -H newc 2>/dev/null) | gzip -1 > "$O/initrd.gz"

# scale for TCG: the live-patch hammer 200 per backend (native: up to a
# million or 5 s; under TCG each patch's three membarriers and the SIGTRAPs
# of the threads that meet the INT3 cost about 12 ms); the heavy loops (threads_share_one_heap, the window,
# scale, bias and pkeys loops: 20,000 iterations natively) divided by
# XM_TEST_SCALE; the stress tests 1 s per configuration
# qemu's exit bounds a hung guest: PKEYS_TIMEOUT seconds (a whole run takes 2-5 min)
HAMMER=${PKEYS_HAMMER:-200}
SCALE=${PKEYS_SCALE:-10}
log="$O/serial.log"
start=$(date +%s)
timeout ${PKEYS_TIMEOUT:-600} qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
    -nographic -no-reboot -net none -kernel "$k" -initrd "$O/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet XM_EMULATED=1 XM_TEST_PKEYS=1 XM_HAMMER=$HAMMER XM_TEST_SCALE=$SCALE XM_STRESS_SECONDS=1 -- ${PKEYS_TESTS:-}" \
    2>&1 | perl -MTime::HiRes=time -ne 'BEGIN { $|= 1; $t0 = time }
        printf "%7.1f %s", time - $t0, $_' > "$log.t"
qrc=$?
# the log as the guest wrote it, and each line's time since boot in .t
sed 's/^ *[0-9.]* //' "$log.t" > "$log"
secs=$(($(date +%s) - start))
# the console's escape sequences (ESC c, ESC [...) off, then the lines
tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' |
    grep -E '^(ok|FAIL|SKIP|    )' > "$O/results.txt"
grep -E '^(FAIL|SKIP)|^    ' "$O/results.txt" | sed 's/^/  /'
last=$(tr -d '\r' < "$log" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
say "$(basename "$k"), qemu -cpu max, $secs s (qemu exit $qrc)"
if [ -z "$last" ]; then
    say "FAIL: the runner did not finish (serial log $log):"
    tail -n 30 "$log"
    echo "pkeys: 0 passed, 1 failed"
    exit 1
fi
# the pkeys tests must have RUN there, not skipped
if grep -q '^SKIP pkeys_' "$O/results.txt" || ! grep -q '^ok   pkeys_alias' "$O/results.txt"; then
    say "FAIL: the pkeys tests did not run in the guest (no PKU?)"
    echo "pkeys: 0 passed, 1 failed"
    exit 1
fi
p=$(echo "$last" | sed 's/^\([0-9]*\) passed.*/\1/')
f=$(echo "$last" | sed 's/.* \([0-9]*\) failed.*/\1/')
s=$(echo "$last" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
say "${s:-0} skipped (reasons above)"
echo "pkeys: $p passed, $f failed"
[ "$f" = 0 ]
