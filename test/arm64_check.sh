#!/bin/sh
# SPDX-License-Identifier: MIT
# arm64_check.sh [BUILD]: xm_patch_live on arm64, on this x86-64 machine.
#   1. cross-builds the library and test/live_arm64.c (static) for aarch64;
#   2. runs it under qemu-user (FLIP only: user-mode qemu does not see code
#      written through DUAL's second mapping, see live_arm64.c);
#   3. boots it as /init of Debian's arm64 kernel in qemu-system (-smp 2),
#      where DUAL, STRICT and FLIP all run: 20,000 live patches each while a
#      second CPU calls the patched function, every result checked.
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
set -e
make -s O="$O" CC=aarch64-linux-gnu-gcc AR=aarch64-linux-gnu-ar "$O/libexecmem.a"
aarch64-linux-gnu-gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -O2 \
    -Iinclude test/live_arm64.c -o "$O/live_arm64" "$O/libexecmem.a" -lpthread -static
set +e

fail=0
out=$(qemu-aarch64 "$O/live_arm64" 2000 --emulated 2>&1)
echo "$out" | sed 's/^/  qemu-user: /'
echo "$out" | grep -q 'all passed' || { say "FAIL under qemu-user"; fail=1; }

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
        exit $fail
    fi
    dpkg-deb -x "$O"/kernel/*.deb "$O/kernel" && rm -f "$O"/kernel/*.deb
    k=$(ls "$O"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1)
fi
rm -rf "$O/initrd" && mkdir -p "$O/initrd"
cp "$O/live_arm64" "$O/initrd/init"
(cd "$O/initrd" && find . | cpio -o -H newc 2>/dev/null) | gzip > "$O/initrd.gz"
out=$(timeout 900 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 1024 -nographic \
    -no-reboot -net none -kernel "$k" -initrd "$O/initrd.gz" \
    -append "console=ttyAMA0 panic=-1 quiet" 2>&1)
echo "$out" | grep '^arm64' | sed "s|^|  qemu-system ($(basename "$k")): |"
echo "$out" | grep -q 'arm64 live patching: all passed' || {
    say "FAIL under qemu-system:"
    echo "$out" | tail -n 20
    fail=1
}
[ $fail = 0 ] && say "ok"
exit $fail
