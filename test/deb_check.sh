#!/bin/sh
# SPDX-License-Identifier: MIT
# deb_check.sh: builds the Debian packages (dpkg-buildpackage -us -uc -b) in
# a copy of the tree under a temporary directory (the working tree stays
# clean), checks them with lintian (errors and warnings fail; overrides are
# in debian/*.lintian-overrides with their reasons), installs them with dpkg,
# builds and runs test/consumer.c against the installed packages through
# pkg-config (shared, and static with --static) and through CMake
# (find_package(execmem), execmem::execmem), runs the installed command,
# then removes the packages (dpkg -r), also when a step fails.
# Needs root, dpkg-dev, debhelper, lintian, cmake, pkg-config.
# Usage: test/deb_check.sh      (.ci/run runs it)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pkgs="execmem-tools libexecmem-dev libexecmem0"
installed=no
cleanup() {
    [ $installed = yes ] && dpkg -r $pkgs >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf 'deb: %s\n' "$*"; }

mkdir "$tmp/execmem"
(cd "$src" && git ls-files -co --exclude-standard | grep -v '^build' | tar -cf - -T -) |
    tar -xf - -C "$tmp/execmem"
(cd "$tmp/execmem" && DEB_BUILD_OPTIONS="parallel=2 noddebs ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b > "$tmp/build.log" 2>&1) ||
    { tail -30 "$tmp/build.log"; say "dpkg-buildpackage failed"; exit 1; }
arch=$(dpkg --print-architecture)
ver=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
for p in $pkgs; do
    [ -f "$tmp/${p}_${ver}_${arch}.deb" ] || { say "missing ${p}_${ver}_${arch}.deb"; exit 1; }
done
say "built: $(cd "$tmp" && ls ./*.deb | tr '\n' ' ')"
if command -v lintian >/dev/null 2>&1; then
    # (lintian says that running as root is not recommended: it is what CI has)
    lintian --fail-on error,warning "$tmp/execmem_${ver}_${arch}.changes" ||
        { say "lintian: errors or warnings (above)"; exit 1; }
    say "lintian: clean (no errors, no warnings)"
else
    say "lintian not installed: not checked"
fi
dpkg-deb -c "$tmp/libexecmem-dev_${ver}_${arch}.deb" > "$tmp/dev.list"
grep -q 'man3/xm_alloc.3' "$tmp/dev.list" ||
    { say "libexecmem-dev lacks the section 3 pages"; exit 1; }

installed=yes
dpkg -i "$tmp/libexecmem0_${ver}_${arch}.deb" "$tmp/libexecmem-dev_${ver}_${arch}.deb" \
    "$tmp/execmem-tools_${ver}_${arch}.deb" >/dev/null
W="-Wall -Wextra -Wpedantic -Werror"
cc -std=c11 $W "$src/test/consumer.c" -o "$tmp/consumer" $(pkg-config --cflags --libs execmem)
"$tmp/consumer"
ldd "$tmp/consumer" > "$tmp/ldd.txt"
grep -q 'libexecmem.so.0 => /.*/libexecmem.so.0' "$tmp/ldd.txt" ||
    { say "pkg-config consumer does not use the installed libexecmem.so.0"; exit 1; }
cc -std=c11 $W -static "$src/test/consumer.c" -o "$tmp/consumer_static" \
    $(pkg-config --static --cflags --libs execmem)
"$tmp/consumer_static"
sh "$src/test/cmake_consumer.sh" "" "$tmp/cmake" > "$tmp/cmake.log" 2>&1 ||
    { tail -20 "$tmp/cmake.log"; say "CMake consumer against the packages failed"; exit 1; }
tail -1 "$tmp/cmake.log"
# merged /usr: the package found through /lib (a symbolic link to usr/lib)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
if [ -L /lib ] && [ -d "/lib/$ma/cmake/execmem" ]; then
    sh "$src/test/cmake_consumer.sh" "" "$tmp/cmake-lib" -Dexecmem_DIR="/lib/$ma/cmake/execmem" \
        > "$tmp/cmake-lib.log" 2>&1 ||
        { tail -20 "$tmp/cmake-lib.log"; say "CMake consumer through /lib failed"; exit 1; }
fi
execmem --version
man -w xm_alloc >/dev/null 2>&1 || man -w 3 xm_alloc >/dev/null ||
    { say "man xm_alloc: not found"; exit 1; }
dpkg -r $pkgs >/dev/null
installed=no
[ ! -e /usr/include/execmem.h ] || { say "dpkg -r left /usr/include/execmem.h"; exit 1; }
say "packages built, lintian clean, installed, used from C (pkg-config shared and static) and CMake, removed"
