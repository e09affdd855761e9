#!/usr/bin/env bash
# run_tests.sh: runs every test program given as an argument, each of which ends its output
# with "N passed, M failed", and prints the sum as the suite's closing line. TEST_JOBS of them
# (default 2) run at once: most tests leave a core idle much of the time (Python, process
# starts, a single-threaded phase), so the suite takes less time than one after another; give
# the longest first. Each one's output is printed whole when it ends, with its counts and
# time; a line says when each starts.
# Exits non-zero when any check failed or a program died without its closing line.
#
#   scripts/run_tests.sh "./test_gpt2" "dev/test_llmc"
#   TEST_JOBS=1 scripts/run_tests.sh ...     (one after another, output as it comes)
set -u
JOBS=${TEST_JOBS:-2}
case $JOBS in '' | *[!0-9]* | 0) echo "error: TEST_JOBS=$JOBS: give a number of tests to run at once, 1 or more" >&2; exit 2 ;; esac
# Sharing the cores, OpenMP threads must sleep at a barrier, not spin: a spinning thread takes the
# core its partner needs (the CPU trainer's tests ran 6 times slower).
[ "$JOBS" -eq 1 ] || export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
DIR=$(mktemp -d /tmp/run_tests_XXXXXX)
trap 'kill $(jobs -p) 2> /dev/null; rm -rf "$DIR"' EXIT
trap 'exit 130' INT TERM
tests=("$@")
passed=0
failed=0

# run I: test I, its output in DIR/I.out, then "STATUS SECONDS" in DIR/I.done
run() {
    local start status
    start=$(date +%s)
    if [ "$JOBS" -eq 1 ]; then
        bash -c "${tests[$1]}" 2>&1 | tee "$DIR/$1.out"
        status=${PIPESTATUS[0]}
    else
        bash -c "${tests[$1]}" > "$DIR/$1.out" 2>&1
        status=$?
    fi
    echo "$status $(( $(date +%s) - start ))" > "$DIR/$1.tmp" && mv "$DIR/$1.tmp" "$DIR/$1.done"
}

# report I: test I's output (unless it was shown as it came), counts and time, added to the sums
report() {
    local status seconds line p f
    read -r status seconds < "$DIR/$1.done"
    [ "$JOBS" -eq 1 ] || { echo "=== ${tests[$1]}"; cat "$DIR/$1.out"; }
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$DIR/$1.out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAIL ${tests[$1]}: exited with status $status without its closing line"
        failed=$((failed + 1))
        return
    fi
    p=$(echo "$line" | awk '{print $1}')
    f=$(echo "$line" | awk '{print $3}')
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL ${tests[$1]}: exited with status $status"
        failed=$((failed + 1))
    fi
    echo "=== ${tests[$1]}: $p passed, $f failed in $seconds s"
}

next=0
running=()
while [ $next -lt ${#tests[@]} ] || [ ${#running[@]} -gt 0 ]; do
    while [ ${#running[@]} -lt "$JOBS" ] && [ $next -lt ${#tests[@]} ]; do
        if [ "$JOBS" -eq 1 ]; then echo "=== ${tests[$next]}"; else echo "--- started: ${tests[$next]}"; fi
        run $next &
        running+=($next)
        next=$((next + 1))
    done
    wait -n
    still=()
    for i in "${running[@]}"; do
        if [ -f "$DIR/$i.done" ]; then report "$i"; else still+=("$i"); fi
    done
    running=("${still[@]+"${still[@]}"}")
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
