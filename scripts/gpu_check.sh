#!/usr/bin/env bash
# gpu_check.sh OUTDIR: everything GPU-side in one short run, for the few sessions that have a GPU.
#
# Builds every dev/cuda file and the harness's own tests with nvcc for the local GPU, runs their
# validations natively, then the benchmarks, and writes OUTDIR/summary.md (per file: passed and
# failed checks; per kernel version: median ms and the ratio to its baseline) plus every log.
# Meant to finish in a few minutes; each program is capped at 120 s.
#
#   scripts/gpu_check.sh /tmp/gpu_out
set -u
out=${1:?usage: scripts/gpu_check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."

if ! nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader > "$out/gpu.txt" 2> "$out/gpu_err.txt"; then
    echo "error: nvidia-smi: no GPU found (hint: run this on a machine with an NVIDIA GPU)" >&2
    exit 1
fi
gpu=$(head -1 "$out/gpu.txt")
arch=sm_$(echo "$gpu" | cut -d, -f2 | tr -d ' .')
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
echo "gpu: $gpu ($arch)"

summary="$out/summary.md"
{
    echo "# gpu_check: $gpu ($arch), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| program | passed | failed | status |"
    echo "|---|---|---|---|"
} > "$summary"
bench_rows=""
failures=0
for src in dev/harness/test_harness.cu dev/cuda/*.cu; do
    name=$(basename "$src" .cu)
    bin="$out/$name"
    if ! "$NVCC" -O3 -std=c++17 -I. -arch="$arch" "$src" -o "$bin" -lcublas -lcublasLt > "$out/$name.build.log" 2>&1; then
        echo "| $name | - | - | build failed (see $name.build.log) |" >> "$summary"
        failures=$((failures + 1))
        continue
    fi
    timeout 120 "$bin" > "$out/$name.log" 2>&1
    status=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/$name.log" | tail -1)
    p=$(echo "$line" | awk '{print $1}')
    f=$(echo "$line" | awk '{print $3}')
    [ "$status" -ne 0 ] && failures=$((failures + 1))
    echo "| $name | ${p:--} | ${f:--} | exit $status |" >> "$summary"
    bench_rows+=$(grep '^BENCH' "$out/$name.log" | awk '{printf "| %s | %s | %s | %s |\n", $2, $3, $4, $6}')
    bench_rows+=$'\n'
    echo "$name: ${line:-no closing line} (exit $status)"
done
{
    echo
    echo "| file | version | median ms | ratio to baseline |"
    echo "|---|---|---|---|"
    printf '%s' "$bench_rows" | grep -v '^$'
} >> "$summary"
cat "$summary"
[ "$failures" -eq 0 ]
