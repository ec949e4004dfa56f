#!/bin/sh
# Runs each test binary given as an argument, shows its output, and ends with
# one line that counts cmocka's test cases: "tests: N passed, N failed".
passed=0
failed=0
crashed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM
for t in "$@"; do
    echo "== $t"
    "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=$(sed -n 's/.*\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/.*\[  FAILED  \] \([0-9][0-9]*\) test(s), listed.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!! $t exited with status $rc"
        crashed=$((crashed + 1))
        failed=$((failed + 1))
    fi
done
echo
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
