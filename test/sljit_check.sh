#!/bin/sh
# SPDX-License-Identifier: MIT
# sljit_check.sh BUILD_DIR SLJIT_DIR: builds sljit's own, unmodified test
# suite (test_src/sljitTest.c) from SLJIT_DIR against adapters/sljit, out of
# tree under BUILD_DIR/sljit, and runs it once per mode of an XM_INPLACE heap
# (DUAL, DUAL + XM_STRICT, FLIP). One line per mode:
#   sljit [MODE]: N passed, N failed
# SKIP with the reason when SLJIT_DIR is absent. Exit status non-zero when a
# mode has a failure.
set -u
O=${1:-build}
S=${2:-../shared/third_party/sljit}
CC=${CC:-cc}
if [ ! -f "$S/test_src/sljitTest.c" ] || [ ! -f "$S/sljit_src/sljitLir.c" ]; then
    echo "sljit: SKIP: no sljit source tree at SLJIT_DIR=$S (make check-sljit SLJIT_DIR=path)"
    exit 0
fi
total=$(sed -n 's/^#[[:space:]]*define TEST_COUNT \([0-9][0-9]*\).*/\1/p' "$S/test_src/sljitTest.c" | head -n 1)
[ -n "$total" ] || { echo "sljit: cannot find TEST_COUNT in $S/test_src/sljitTest.c"; exit 1; }
mkdir -p "$O/sljit"
# sljit's own flags for its test (GNUmakefile), plus the adapter's header
# ahead of everything; sljit's sources are compiled as they are.
$CC ${CFLAGS_SLJIT:-} -O2 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude -Iadapters/sljit \
    -c adapters/sljit/sljit_execmem.c -o "$O/sljit/sljit_execmem.o" || exit 1
$CC ${CFLAGS_SLJIT:-} -O2 -g -I"$S/sljit_src" -I"$S/test_src" -DSLJIT_HAVE_CONFIG_PRE=1 \
    -include adapters/sljit/sljit_execmem.h \
    "$S/test_src/sljitMain.c" "$S/test_src/sljitTest.c" "$S/sljit_src/sljitLir.c" \
    "$O/sljit/sljit_execmem.o" "$O/libexecmem.a" -o "$O/sljit/sljit_test" -lm -lpthread ||
    exit 1
fail=0
for mode in dual strict flip; do
    case $mode in
    dual) name="DUAL+INPLACE" ;;
    strict) name="DUAL+STRICT+INPLACE" ;;
    flip) name="FLIP+INPLACE" ;;
    esac
    SLJIT_EXECMEM_MODE=$mode "./$O/sljit/sljit_test" -s > "$O/sljit/$mode.log" 2>&1
    rc=$?
    if [ "$rc" -ge 0 ] && [ "$rc" -le "$total" ]; then
        failed=$rc
    else # killed by a signal (or exit(-1)): the run did not finish
        failed=$total
        echo "sljit [$name]: the suite did not finish (status $rc), see $O/sljit/$mode.log"
    fi
    echo "sljit [$name]: $((total - failed)) passed, $failed failed"
    [ "$failed" -eq 0 ] || { fail=1; tail -n 5 "$O/sljit/$mode.log"; }
done
exit $fail
