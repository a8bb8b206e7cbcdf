#!/bin/sh
# llvm_check.sh BUILD: LLVM's JIT on execmem (make check-llvm).
#   - the example (examples/llvm_jit.cpp) in every backend: 30 modules
#     compiled, run against the reference and unloaded; exit 0 and
#     "0 mismatches";
#   - the tests (test/llvm/test_llvm.cpp), every backend.
# The last line is "llvm: N passed, N failed"; the exit status is non-zero
# on any failure.
set -u
O=${1:-build}
passed=0
failed=0
for b in dual strict flip inplace; do
    out=$("$O/llvm/llvm_jit" --backend "$b" --iterations 30 2>&1)
    st=$?
    if [ $st -eq 0 ] && echo "$out" | grep -q ' 0 mismatches'; then
        echo "ok   llvm_example $b: $(echo "$out" | sed -n 's/.*unloaded; //p')"
        passed=$((passed + 1))
    else
        echo "FAIL llvm_example $b (exit $st):"
        echo "$out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
out=$("$O/llvm/test_llvm" 2>&1)
st=$?
echo "$out" | sed '$d'
last=$(echo "$out" | tail -n 1)
p=$(echo "$last" | sed -n 's/^llvm: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$last" | sed -n 's/^llvm: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$p" ] || [ -z "$f" ]; then
    echo "FAIL test_llvm ended without its summary (exit $st): $last"
    failed=$((failed + 1))
else
    passed=$((passed + p))
    failed=$((failed + f))
    [ $st -ne 0 ] && [ "$f" -eq 0 ] && { echo "FAIL test_llvm exit $st"; failed=$((failed + 1)); }
fi
echo "llvm: $passed passed, $failed failed"
[ $failed -eq 0 ]
