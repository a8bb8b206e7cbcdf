#!/bin/sh
# SPDX-License-Identifier: MIT
# install_check.sh: installs into a temporary prefix and builds an outside
# program (test/consumer.c, which calls every public function) against it
# through pkg-config, as C (shared, and static with `pkg-config --static`)
# and as C++, and through CMake (find_package(execmem), target
# execmem::execmem) where cmake is installed. Checks that the shared library
# exports exactly the functions the header declares with XM_API (plus the
# two names of GDB's JIT interface, which gdb looks up by name), that the
# consumer really calls each of them, and that `make uninstall` removes every
# installed file.
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
for f in include/execmem.h lib/libexecmem.a lib/libexecmem.so lib/pkgconfig/execmem.pc \
         lib/cmake/execmem/execmemConfig.cmake lib/cmake/execmem/execmemConfigVersion.cmake \
         bin/execmem share/man/man1/execmem.1 share/man/man3/xm_alloc.3 share/man/man3/execmem.3; do
    [ -e "$pfx/$f" ] || { say "install: missing $f"; fail=1; }
done
# libdir in execmem.pc follows ${prefix}, so the file stays right if moved
grep -q '^libdir=${prefix}/lib$' "$pfx/lib/pkgconfig/execmem.pc" ||
    { say "install: execmem.pc: libdir not derived from \${prefix}"; fail=1; }

# The header's XM_API functions against the library's exported symbols.
sed -n 's/^XM_API[^(]*[ *]\([a-z_0-9]*\)(.*/\1/p' include/execmem.h | sort > "$tmp/declared"
nm -D --defined-only "$pfx/lib/libexecmem.so" | awk '$2 ~ /[TDBRVW]/ {print $3}' |
    grep -v -E '^(__jit_debug_register_code|__jit_debug_descriptor)$' | sort > "$tmp/exported"
[ -s "$tmp/declared" ] || { say "install: no XM_API declarations found in the header"; fail=1; }
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
[ -z "$missing" ] || { say "install: declared in execmem.h but not exported by libexecmem.so:" $missing; fail=1; }
[ -z "$extra" ] || { say "install: exported by libexecmem.so but not declared in execmem.h:" $extra; fail=1; }

cflags=$(pkg-config --cflags execmem)
libs=$(pkg-config --libs execmem)
slibs=$(pkg-config --static --libs execmem)
W="-Wall -Wextra -Wpedantic -Werror"
if ${CC:-cc} -std=c11 $W $cflags test/consumer.c -o "$tmp/c_shared" $libs; then
    LD_LIBRARY_PATH="$pfx/lib" "$tmp/c_shared" >/dev/null || { say "install: C shared consumer failed"; fail=1; }
    nm -u "$tmp/c_shared" | awk '{print $2}' | sed -n 's/^\(xm_[a-z_0-9]*\).*/\1/p' | sort -u > "$tmp/called"
    uncalled=$(comm -23 "$tmp/declared" "$tmp/called")
    [ -z "$uncalled" ] || { say "install: test/consumer.c does not call:" $uncalled; fail=1; }
else
    say "install: C consumer does not link against libexecmem.so"; fail=1
fi
# static: one command, `pkg-config --static` (-l:libexecmem.a picks the archive)
if ${CC:-cc} -std=c11 $W $cflags test/consumer.c -o "$tmp/c_static" \
        $(echo "$slibs" | sed 's/-lexecmem/-l:libexecmem.a/'); then
    "$tmp/c_static" >/dev/null || { say "install: C static consumer failed"; fail=1; }
    nm -D "$tmp/c_static" 2>/dev/null | grep -q ' xm_' && { say "install: static consumer still needs libexecmem.so"; fail=1; }
else
    say "install: static consumer does not link"; fail=1
fi
if command -v "${CXX:-c++}" >/dev/null 2>&1; then
    cp test/consumer.c "$tmp/consumer.cc"
    if ${CXX:-c++} -std=c++11 $W $cflags "$tmp/consumer.cc" -o "$tmp/cxx" $libs; then
        LD_LIBRARY_PATH="$pfx/lib" "$tmp/cxx" >/dev/null || { say "install: C++ consumer failed"; fail=1; }
    else
        say "install: C++ consumer does not link against libexecmem.so"; fail=1
    fi
else
    say "install: no C++ compiler, C++ check skipped"
fi
if command -v cmake >/dev/null 2>&1; then
    if sh test/cmake_consumer.sh "$pfx" "$tmp/cmake" > "$tmp/cmake.log" 2>&1; then :; else
        say "install: CMake consumer failed:"; tail -15 "$tmp/cmake.log"; fail=1
    fi
else
    say "install: cmake not installed, CMake check skipped"
fi

make -s O="$O" PREFIX="$pfx" uninstall >/dev/null
left=$(find "$pfx" -type f -o -type l)
[ -z "$left" ] || { say "install: make uninstall left:" $left; fail=1; }
[ $fail = 0 ] && say "install check: every declared function exported (and nothing else), header, libraries, execmem.pc, CMake package and uninstall work from C and C++"
exit $fail
