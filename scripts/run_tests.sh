#!/usr/bin/env bash
# run_tests.sh: runs every test program given as an argument, each of which ends its output
# with "N passed, M failed", and prints the sum as the suite's closing line.
# Exits non-zero when any check failed or a program died without its closing line.
#
#   scripts/run_tests.sh "./test_gpt2" "dev/test_llmc"
set -u
passed=0
failed=0
for cmd in "$@"; do
    echo "=== $cmd"
    out=$(mktemp)
    start=$(date +%s)
    bash -c "$cmd" 2>&1 | tee "$out"
    status=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "FAIL $cmd: exited with status $status without its closing line"
        failed=$((failed + 1))
        continue
    fi
    p=$(echo "$line" | awk '{print $1}')
    f=$(echo "$line" | awk '{print $3}')
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $cmd: exited with status $status"
        failed=$((failed + 1))
    fi
    echo "=== $cmd: $p passed, $f failed in $(( $(date +%s) - start )) s"
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
