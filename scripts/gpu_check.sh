#!/usr/bin/env bash
# gpu_check.sh OUTDIR: everything GPU-side in one short run, on a machine with an NVIDIA GPU.
#
# Builds every dev/cuda file and the harness's own tests with nvcc for the local GPU, runs their
# validations natively, then the benchmarks; then the CUDA trainer, built in bf16 (the default)
# and in fp32: test_gpt2cu in both (reference checks, determinism, the full fault table) and the
# ABFT on/off benchmark at GPT-2 124M shapes (L=12 C=768 NH=12 T=1024 B=8, random init) in
# bf16, fp32 and TF32 (and in bf16 and TF32 with every GEMM checked, -abft_scope all), beside
# the step times that `make cost` models for an H100 and an H200 (dev/harness/cost_model.txt);
# and, when data/bible exists, 600 steps of the `make train` run on the GPU (bf16), next to the
# CPU run's log if there is one, text sampled from its model, and 4 steps of `make train
# MODEL=d12` (0.5M tokens a step: time, MFU); where OpenMPI is installed, the data-parallel
# tests on 2 GPUs or more (scripts/test_ranks.sh), else the 124M benchmark under mpirun -np 1
# (the NCCL all-reduce and its check on one GPU).
# Writes OUTDIR/summary.md plus every log. Meant to finish in a few minutes; each program is
# capped at 120 s (the training run at 240 s, the d12 steps at 150 s).
#
# test_gpt2cu needs the PyTorch reference files: where this machine has no torch, make them
# first on one that has (`./test_gpt2 -python /usr/bin/python3 -seed 1 -refs refs`, or
# `make refs`) and bring the refs/ directory along.
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
# ----------------------------------------------------------------------------
# the CUDA trainer, in both precisions: four nvcc builds at once
trainer_flags="-O3 -std=c++17 -I. -arch=$arch -Xcudafe --diag_suppress=declared_but_not_referenced"
build_ok=1
for precision in bf16 fp32; do
    define=$([ "$precision" = bf16 ] && echo -DENABLE_BF16)
    for prog in train test; do
        "$NVCC" $trainer_flags $define ${prog}_gpt2.cu -o "$out/${prog}_gpt2cu_$precision" -lcublas -lcublasLt \
            > "$out/${prog}_gpt2cu_$precision.build.log" 2>&1 &
    done
done
for job in $(jobs -p); do wait "$job" || build_ok=0; done
if [ "$build_ok" = 1 ]; then
    py=$(for p in /usr/bin/python3 python3; do "$p" -c 'import torch' > /dev/null 2>&1 && echo "$p" && break; done)
    for precision in bf16 fp32; do
        timeout 120 "$out/test_gpt2cu_$precision" -python "${py:-/usr/bin/python3}" -seed 1 -refs refs \
            > "$out/test_gpt2cu_$precision.log" 2>&1
        status=$?
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/test_gpt2cu_$precision.log" | tail -1)
        [ "$status" -ne 0 ] && failures=$((failures + 1))
        p=$(echo "$line" | awk '{print $1}')
        f=$(echo "$line" | awk '{print $3}')
        echo "| test_gpt2cu ($precision) | ${p:--} | ${f:--} | exit $status |" >> "$summary"
        echo "test_gpt2cu ($precision): ${line:-no closing line} (exit $status)"
    done
    train="$out/train_gpt2cu_bf16"
    timeout 120 "$train" -e d12 -b 8 -t 1024 -bench 5 > "$out/bench_124M_bf16.log" 2>&1
    echo "bench 124M bf16: exit $?"
    timeout 120 "$train" -e d12 -b 8 -t 1024 -bench 5 -abft_scope all > "$out/bench_124M_bf16_all.log" 2>&1
    echo "bench 124M bf16 -abft_scope all: exit $?"
    for tf32 in 0 1; do
        timeout 120 "$out/train_gpt2cu_fp32" -e d12 -b 8 -t 1024 -bench 5 -tf32 $tf32 > "$out/bench_124M_tf32_$tf32.log" 2>&1
        echo "bench 124M fp32 tf32=$tf32: exit $?"
    done
    timeout 120 "$out/train_gpt2cu_fp32" -e d12 -b 8 -t 1024 -bench 5 -tf32 1 -abft_scope all \
        > "$out/bench_124M_tf32_1_all.log" 2>&1
    echo "bench 124M tf32=1 -abft_scope all: exit $?"
    if ls data/bible/train_*.bin > /dev/null 2>&1; then
        timeout 240 "$train" -i 'data/bible/train_*.bin' -j 'data/bible/val_*.bin' -e L4C256H4 -b 8 -t 64 -x 600 \
            -l 1e-3 -u 30 -q 0.1 -v 100 -s 0 -o "$out/log_bible_gpu" > "$out/train_bible_gpu.log" 2>&1
        echo "train bible on the GPU: exit $?"
        timeout 60 "$train" -e "$out/log_bible_gpu/model.bin" -t 64 -sample "And God said" -g 40 > "$out/sample_gpu.log" 2>&1
        echo "sample on the GPU: exit $?"
        # make train MODEL=d12's steps (0.5M tokens, 32 accumulated micro-batches): time per step and MFU
        timeout 150 "$train" -i 'data/bible/train_*.bin' -j 'data/bible/val_*.bin' -e d12 -b 16 -t 1024 -d 524288 \
            -x 4 -l 6e-4 -u 2 -q 0 -c 0.1 -v 0 -s 0 > "$out/train_d12_gpu.log" 2>&1
        echo "d12 steps of 0.5M tokens on the GPU: exit $?"
        # the measured per-op tolerances (fit on the CPU) against the GPU's own summation orders,
        # fp32, every GEMM checked; the step guard's norm kernels run along (-guard 1e6 never fires)
        timeout 120 "$out/train_gpt2cu_fp32" -i 'data/bible/train_*.bin' -j 'data/bible/val_*.bin' -e L4C256H4 -b 8 -t 64 -x 200 \
            -l 1e-3 -v 0 -s 0 -tf32 0 -abft_scope all -abft_tol measured -abft_quiet 1 -guard 1e6 \
            -o "$out/log_tol_gpu" > "$out/tol_gpu.log" 2>&1
        echo "measured tolerances on the GPU: exit $?"
    fi
    # data parallel (MPI + NCCL): the 2-rank tests on 2 GPUs or more, else one rank's all-reduce
    # path (NCCL with 1 rank, and the all-reduce's check) in the 124M benchmark
    if command -v mpicxx > /dev/null && command -v mpirun > /dev/null; then
        "$NVCC" $trainer_flags -DENABLE_BF16 -DUSE_MPI $(mpicxx --showme:compile) train_gpt2.cu -o "$out/train_gpt2cu_mpi" \
            -lcublas -lcublasLt -lnccl $(mpicxx --showme:link) > "$out/train_gpt2cu_mpi.build.log" 2>&1
        gpus=$(nvidia-smi -L | wc -l)
        if [ "$gpus" -ge 2 ]; then
            timeout 300 scripts/test_ranks.sh "$out/train_gpt2cu_mpi" "${py:-/usr/bin/python3}" > "$out/test_ranks_gpu.log" 2>&1
            status=$?
            [ "$status" -ne 0 ] && failures=$((failures + 1))
            echo "test_ranks.sh on $gpus GPUs: $(tail -1 "$out/test_ranks_gpu.log") (exit $status)"
        else
            timeout 120 mpirun --allow-run-as-root -np 1 "$out/train_gpt2cu_mpi" -e d12 -b 8 -t 1024 -bench 5 \
                > "$out/bench_124M_bf16_mpi1.log" 2>&1
            echo "bench 124M bf16, mpirun -np 1 (NCCL, the all-reduce's check): exit $?"
        fi
    else
        echo "no mpicxx/mpirun: the data-parallel checks were skipped (apt-get install openmpi-bin libopenmpi-dev)"
    fi
else
    echo "| train_gpt2cu, test_gpt2cu | - | - | build failed (see *_gpt2cu_*.build.log) |" >> "$summary"
    failures=$((failures + 1))
fi

{
    echo
    echo "| file | version | median ms | ratio to baseline |"
    echo "|---|---|---|---|"
    printf '%s' "$bench_rows" | grep -v '^$'
    for f in "$out"/bench_124M_*.log; do
        [ -f "$f" ] || continue
        echo
        echo "## $(basename "$f" .log)"
        echo '```'
        cat "$f"
        echo '```'
    done
    if [ -f dev/harness/cost_model.txt ]; then
        echo
        echo "## step time at GPT-2 124M shapes: measured here, beside the roofline model of \`make cost\` (a model, not a measurement)"
        echo '```'
        for precision in bf16 fp32 tf32; do
            log=$(case $precision in bf16) echo bf16 ;; fp32) echo tf32_0 ;; tf32) echo tf32_1 ;; esac)
            measured=$(grep '^step time:' "$out/bench_124M_$log.log" 2> /dev/null | head -1)
            echo "$precision, measured on $gpu: ${measured:-?}"
            grep "modelled h[0-9]*-$precision " dev/harness/cost_model.txt
        done
        echo '```'
    fi
    if [ -f "$out/log_tol_gpu/abft.json" ]; then
        echo
        echo "## -abft_tol measured on the GPU (fp32, every GEMM, 200 fault-free steps): checks and false alarms"
        echo '```'
        python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["ops"]
print("checks %d, false alarms %d" % (sum(o["checked"] for o in r.values()), sum(o["detected"] for o in r.values())))' \
            "$out/log_tol_gpu/abft.json"
        echo '```'
    fi
    if [ -f "$out/train_d12_gpu.log" ]; then
        echo
        echo "## make train MODEL=d12's steps on the GPU in bf16 (0.5M tokens a step); modelled about 1.5 s (H100), 1.2 s (H200)"
        echo '```'
        grep '^step' "$out/train_d12_gpu.log"
        echo '```'
    fi
    if [ -f "$out/sample_gpu.log" ]; then
        echo
        echo "## -sample on the GPU, from the make train run's model"
        echo '```'
        cat "$out/sample_gpu.log"
        echo '```'
    fi
    if [ -f "$out/log_bible_gpu/main.jsonl" ]; then
        echo
        echo "## make train's run on the GPU in bf16 (loss every 100 steps; the CPU run's, fp32, beside it when log_bible/ exists)"
        echo '```'
        for step in 1 100 200 300 400 500 600; do
            gpu=$(grep "\"step\": $step," "$out/log_bible_gpu/main.jsonl" | head -1)
            cpu=$(grep "\"step\": $step," log_bible/main.jsonl 2> /dev/null | head -1)
            echo "step $step: gpu ${gpu:-?} | cpu ${cpu:-?}"
        done
        echo '```'
    fi
} >> "$summary"
cat "$summary"
[ "$failures" -eq 0 ]
