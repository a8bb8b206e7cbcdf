#!/bin/sh
# install_check.sh: installs into a temporary prefix and builds an outside
# program against it through pkg-config, as C (shared and static) and as
# C++; checks that the shared library exports only xm_ names (and the two
# names of GDB's JIT interface, which gdb looks up by name).
# Usage: test/install_check.sh BUILD_DIR
set -eu
O=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pfx="$tmp/prefix"
make -s O="$O" PREFIX="$pfx" install >/dev/null
export PKG_CONFIG_PATH="$pfx/lib/pkgconfig"
fail=0
say() { printf '%s\n' "$*"; }
for f in include/execmem.h lib/libexecmem.a lib/libexecmem.so lib/pkgconfig/execmem.pc; do
    [ -e "$pfx/$f" ] || { say "install: missing $f"; fail=1; }
done
cflags=$(pkg-config --cflags execmem)
libs=$(pkg-config --libs execmem)
slibs=$(pkg-config --static --libs execmem)
W="-Wall -Wextra -Wpedantic -Werror"
${CC:-cc} -std=c11 $W $cflags test/consumer.c -o "$tmp/c_shared" $libs
LD_LIBRARY_PATH="$pfx/lib" "$tmp/c_shared" || { say "install: C shared consumer failed"; fail=1; }
${CC:-cc} -std=c11 $W $cflags test/consumer.c -o "$tmp/c_static" \
    "$pfx/lib/libexecmem.a" $(echo "$slibs" | sed 's/-lexecmem//')
"$tmp/c_static" || { say "install: C static consumer failed"; fail=1; }
if command -v "${CXX:-c++}" >/dev/null 2>&1; then
    cp test/consumer.c "$tmp/consumer.cc"
    ${CXX:-c++} -std=c++11 $W $cflags "$tmp/consumer.cc" -o "$tmp/cxx" $libs
    LD_LIBRARY_PATH="$pfx/lib" "$tmp/cxx" || { say "install: C++ consumer failed"; fail=1; }
else
    say "install: no C++ compiler, C++ check skipped"
fi
bad=$(nm -D --defined-only "$pfx/lib/libexecmem.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v -E '^(xm_|__jit_debug_register_code$|__jit_debug_descriptor$)' || true)
if [ -n "$bad" ]; then
    say "install: libexecmem.so exports non-xm_ names: $bad"; fail=1
fi
[ $fail = 0 ] && say "install check: header, libraries and execmem.pc work from C and C++"
exit $fail
