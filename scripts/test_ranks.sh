#!/usr/bin/env bash
# test_ranks.sh: data-parallel training (llmc/ranks.h) as a user runs it, `mpirun -np 2` on the
# CUDA trainer's CPU-harness build, whose NCCL runs over MPI (dev/harness/harness_nccl.h):
# 2 ranks of batch B against 1 process of batch 2B, resume, a fault on one rank, a rank that
# dies, and the errors of a mismatched run.
#
#   scripts/test_ranks.sh [./train_gpt2cu_cpu] [python] [./train_gpt2cu_bf16_cpu]
#
# The third binary, when given, is the bf16 build, for the all-reduce of a bf16 gradient.
# Works in a temporary directory on small synthetic token shards; prints PASS/FAIL per check
# and "N passed, M failed" at the end; exits non-zero on any failure.
set -u
BIN=$(realpath "${1:-./train_gpt2cu_cpu}")
PY=${2:-/usr/bin/python3}
BF16=${3:+$(realpath "$3")}
WORK=$(mktemp -d /tmp/test_ranks_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
# --oversubscribe: 2 ranks may exceed the cores; one harness worker thread per rank
MPIRUN="mpirun --allow-run-as-root --oversubscribe -x CUDA_HARNESS_THREADS=1"
export CUDA_HARNESS_THREADS=1

check() { # check NAME CONDITION-EXIT-STATUS [DETAIL]
    if [ "$2" -eq 0 ]; then echo "PASS $1"; passed=$((passed + 1)); else echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}

if ! command -v mpirun > /dev/null; then
    echo "FAIL mpirun not found (hint: apt-get install openmpi-bin libopenmpi-dev, then rebuild $BIN)"
    echo "0 passed, 1 failed"
    exit 1
fi

# ----------------------------------------------------------------------------
# data: a learnable synthetic sequence (a repeating ramp with 10% noise), V = 1000

"$PY" - "$WORK" <<'EOF'
import sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(0)
def shard(path, tokens):
    h = np.zeros(256, dtype=np.int32)
    h[0], h[1], h[2] = 20240520, 1, len(tokens)
    with open(path, "wb") as f:
        f.write(h.tobytes()); f.write(np.asarray(tokens, dtype=np.uint16).tobytes())
def text(n):
    base = np.tile(np.arange(50), n // 50 + 1)[:n]
    return np.where(rng.random(n) < 0.1, rng.integers(0, 1000, n), base)
shard(f"{work}/train_000.bin", text(20000))
shard(f"{work}/val_000.bin", text(4000))
EOF

# 10 steps of 2 accumulated micro-batches (-d 256 tokens), warmup and cosine decay, weight
# decay, and clipping at a norm the early steps exceed
MODEL="-e L2C64H4V1000T64"
DATA="-i $WORK/train_*.bin -j $WORK/val_*.bin -z $WORK/none.bin"
FLAGS="$MODEL $DATA -t 32 -d 256 -x 10 -u 2 -q 0.1 -c 0.1 -clip 0.5 -v 5 -m 2 -s 0 -l 3e-3 -abft_quiet 1"
ONE="$BIN $FLAGS -b 4"
TWO="$MPIRUN -np 2 $BIN $FLAGS -b 2"

# differences A B: how far run B is from run A, as "losses norms params": the largest relative
# difference of the step losses and of the gradient norms (main.jsonl), and the norm of the
# final parameters' difference relative to theirs (model.bin)
differences() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys, numpy as np
def log(d, key): return np.array([json.loads(l)[key] for l in open(d + "/main.jsonl")])
def params(d): return np.fromfile(d + "/model.bin", dtype=np.float32, offset=1024)
a, b = sys.argv[1], sys.argv[2]
rel = lambda x, y: float(np.max(np.abs(x - y) / np.abs(x)))
pa, pb = params(a), params(b)
print(f"{rel(log(a, 'loss'), log(b, 'loss')):.2e} {rel(log(a, 'grad_norm'), log(b, 'grad_norm')):.2e} "
      f"{np.linalg.norm(pa - pb) / np.linalg.norm(pa):.2e}")
EOF
}

# within D REF FACTOR: each of D's differences is at most FACTOR times REF's
within() {
    "$PY" -c "import sys; d, r = sys.argv[1].split(), sys.argv[2].split(); sys.exit(0 if all(float(x) <= float(sys.argv[3]) * float(y) for x, y in zip(d, r)) else 1)" "$1" "$2" "$3"
}

# ----------------------------------------------------------------------------
# 2 ranks of batch B = 1 process of batch 2B: rank r's slice of every window is the r-th half
# of the 2B batch, and the ranks' gradient is the average of their halves' (each a mean over
# B·T tokens): the same sums, added in another order (each rank's weight gradients over its
# B·T rows, then the two halves). fp32 rounding makes a reordered sum differ, and AdamW turns
# the sign of a gradient near 0 into a whole step of lr, so the runs are not bit-identical. How
# far apart another order of the same sums puts them is measured here, by the 1-process run
# with 4 micro-batches of B/2 (the same step summed by micro-batches), and the 2 ranks must be
# no farther from the 2B run than 10x that. A wrong slice, a sum not averaged, or ranks that
# do not share their gradients move the losses, the gradient norms or the parameters far more.
$ONE -o "$WORK/one" > "$WORK/one.out" 2>&1
check "1 process, batch 2B: trains" $? "$(tail -n 3 "$WORK/one.out")"
$ONE -b 2 -o "$WORK/reordered" > "$WORK/reordered.out" 2>&1
check "1 process, 4 micro-batches of B/2: trains" $? "$(tail -n 3 "$WORK/reordered.out")"
$TWO -o "$WORK/two" > "$WORK/two.out" 2>&1
check "2 ranks, batch B each: train (mpirun -np 2)" $? "$(tail -n 3 "$WORK/two.out")"
ref=$(differences "$WORK/one" "$WORK/reordered")
got=$(differences "$WORK/one" "$WORK/two")
within "$got" "$ref" 10
check "2 ranks of B = 1 process of 2B: losses, norms, parameters $got apart (the same sums reordered: $ref)" $?
alarms=$("$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); o=r['ops']['allreduce']; print(o['checked'], sum(x['detected'] for x in r['ops'].values()))" "$WORK/two/abft.json" 2>/dev/null)
[ "$alarms" = "10 0" ]
check "fault-free: the all-reduce checked at each of the 10 steps, no alarm (checked, alarms: $alarms)" $?
# One micro-batch a step: what is averaged is the backward pass's own gradient (floatX: fp32, and
# bf16 in the bf16 build), each layer's as the pass finishes it. The reference is again the same
# sums reordered, here 2 micro-batches of B in one process against one of 2B.
single() { # single NAME BINARY: 1 process of 2B, 1 process of 2 x B, 2 ranks of B, one micro-batch each
    local name=$1 bin=$2 ref got
    "$bin" $FLAGS -b 4 -d 128 -o "$WORK/${name}_one" > "$WORK/${name}_one.out" 2>&1 &&
        "$bin" $FLAGS -b 2 -d 128 -o "$WORK/${name}_reordered" > "$WORK/${name}_reordered.out" 2>&1 &&
        $MPIRUN -np 2 "$bin" $FLAGS -b 2 -d 128 -o "$WORK/${name}_two" > "$WORK/${name}_two.out" 2>&1
    check "$name, one micro-batch a step: 1 process of 2B, 1 of 2 x B, 2 ranks of B train" $? \
          "$(tail -n 2 "$WORK/${name}_one.out" "$WORK/${name}_reordered.out" "$WORK/${name}_two.out")"
    ref=$(differences "$WORK/${name}_one" "$WORK/${name}_reordered")
    got=$(differences "$WORK/${name}_one" "$WORK/${name}_two")
    within "$got" "$ref" 10
    check "$name, one micro-batch a step: 2 ranks of B = 1 process of 2B: $got apart (the same sums reordered: $ref)" $?
}
single fp32 "$BIN"
if [ -n "$BF16" ]; then single bf16 "$BF16"; fi
$MPIRUN -np 1 $BIN $FLAGS -b 4 -o "$WORK/one_mpi" > "$WORK/one_mpi.out" 2>&1
check "mpirun -np 1: trains" $? "$(tail -n 3 "$WORK/one_mpi.out")"
checked=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['ops']['allreduce']['checked'])" "$WORK/one_mpi/abft.json" 2>/dev/null)
[ "$checked" = "10" ] && cmp -s "$WORK/one/model.bin" "$WORK/one_mpi/model.bin"
check "mpirun -np 1: the all-reduce and its check ($checked checked) leave the run bit-identical to a plain one" $?
grep -q "on each of 2 ranks" "$WORK/two.out"
check "rank 0 reports the 2 ranks" $? "$(grep '^train:' "$WORK/two.out")"
grep -q "^step   10/10" "$WORK/two/output_rank1.log"
check "rank 1 writes its output to the log directory (output_rank1.log)" $?
[ "$(grep -c '^step' "$WORK/two.out")" -eq 10 ]
check "the console shows each step once" $? "$(grep -c '^step' "$WORK/two.out") step lines"
cmp -s <(grep '^step' "$WORK/two.out" | sed 's/ (.*//') <(grep '^step' "$WORK/two/output_rank1.log" | sed 's/ (.*//')
check "both ranks report the same losses and norms, bit for bit" $?

# ----------------------------------------------------------------------------
# resume: a 2-rank run resumed from its checkpoint of step 5 ends bit-identical to the
# uninterrupted one, random faults included

$TWO -o "$WORK/full" -n 5 > "$WORK/full.out" 2>&1
check "2 ranks with checkpoints every 5 steps" $? "$(tail -n 3 "$WORK/full.out")"
cp -r "$WORK/full" "$WORK/resumed"
rm -f "$WORK/resumed"/*00000010* "$WORK/resumed/model.bin"
$TWO -o "$WORK/resumed" -n 5 -y 1 > "$WORK/resumed.out" 2>&1
check "2 ranks resume from step 5" $? "$(tail -n 3 "$WORK/resumed.out")"
cmp -s "$WORK/full/model.bin" "$WORK/resumed/model.bin"
check "a resumed 2-rank run is bit-identical to the uninterrupted one" $?
# Random faults on rank 1 only: the checkpoint keeps rank 1's fault injector (rank 0's never
# draws), so the resumed run injects, after step 5, exactly the faults the uninterrupted one did.
RATE="rate=0.05,type=inf,seed=3,rank=1"
$TWO -o "$WORK/rate_full" -n 5 -abft_quiet 0 -fi "$RATE" > "$WORK/rate_full.out" 2>&1
check "2 ranks, -fi $RATE, checkpoints every 5 steps" $? "$(tail -n 3 "$WORK/rate_full.out")"
cp -r "$WORK/rate_full" "$WORK/rate_resumed"
rm -f "$WORK/rate_resumed"/*00000010* "$WORK/rate_resumed/model.bin"
$TWO -o "$WORK/rate_resumed" -n 5 -y 1 -abft_quiet 0 -fi "$RATE" > "$WORK/rate_resumed.out" 2>&1
check "... resumed from step 5" $? "$(tail -n 3 "$WORK/rate_resumed.out")"
faults_after_5() { grep "^fault: step" "$1" | awk '$3 >= 5'; }
n_full=$(faults_after_5 "$WORK/rate_full/output_rank1.log" | wc -l)
[ "$n_full" -gt 0 ] && cmp -s <(faults_after_5 "$WORK/rate_full/output_rank1.log") <(faults_after_5 "$WORK/rate_resumed/output_rank1.log") &&
    cmp -s "$WORK/rate_full/model.bin" "$WORK/rate_resumed/model.bin"
check "the resumed run's random faults on rank 1 after step 5 are the uninterrupted run's ($n_full), and so is its model" $? \
      "$(diff <(faults_after_5 "$WORK/rate_full/output_rank1.log") <(faults_after_5 "$WORK/rate_resumed/output_rank1.log") | head -n 4)"
cp -r "$WORK/full" "$WORK/one_rank"
$ONE -o "$WORK/one_rank" -b 2 -d 128 -y 1 > "$WORK/one_rank.out" 2>&1
status=$?
[ $status -ne 0 ] && grep -q "written by 2 ranks, this run has 1" "$WORK/one_rank.out"
check "resuming a 2-rank checkpoint with 1 rank is a clear error" $? "$(tail -n 1 "$WORK/one_rank.out")"

# ----------------------------------------------------------------------------
# faults: one rank's repair leaves the other's work alone; one rank's failure stops the job

FAULT="op=qk,layer=1,step=3,type=inf,pattern=row,rank=1"
$TWO -o "$WORK/fault" -fi "$FAULT" > "$WORK/fault.out" 2>&1
check "2 ranks, -fi $FAULT: trains" $? "$(tail -n 3 "$WORK/fault.out")"
report() { "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['injected'], sum(sum(o['repaired'].values()) for o in r['ops'].values()))" "$1" 2>/dev/null; }
[ "$(report "$WORK/fault/abft_rank1.json")" = "1 1" ] && [ "$(report "$WORK/fault/abft.json")" = "0 0" ]
check "the fault hit rank 1 only, and rank 1 repaired it" $? \
      "rank 0: $(report "$WORK/fault/abft.json"), rank 1: $(report "$WORK/fault/abft_rank1.json") (injected, repaired)"
cmp -s "$WORK/two/model.bin" "$WORK/fault/model.bin"
check "a fault repaired on rank 1 leaves the run bit-identical to the fault-free one" $?

# A fault the checksums cannot repair (a 2-D block of NaN in an MLP GEMM, -abft_scope all) on
# rank 1: its deferred pass fails, so every rank skips the update queued after it (the ranks'
# pass gates are reduced with the gradient) and redoes the step, which rank 1 then repairs by
# recomputing the GEMM: the run ends as the fault-free one.
REDO="op=fc,layer=0,step=3,type=nan,pattern=2d,rank=1"
$TWO -o "$WORK/redo" -abft_scope all -fi "$REDO" > "$WORK/redo.out" 2>&1
check "2 ranks, -fi $REDO: trains" $? "$(tail -n 3 "$WORK/redo.out")"
replayed() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['passes_replayed'])" "$1" 2>/dev/null; }
[ "$(replayed "$WORK/redo/abft.json")" = "1" ] && [ "$(replayed "$WORK/redo/abft_rank1.json")" = "1" ]
check "both ranks redo the step rank 1 could not repair in its pass" $? \
      "passes replayed: rank 0 $(replayed "$WORK/redo/abft.json"), rank 1 $(replayed "$WORK/redo/abft_rank1.json")"
cmp -s "$WORK/two/model.bin" "$WORK/redo/model.bin"
check "... and the run ends bit-identical to the fault-free one" $?

# ----------------------------------------------------------------------------
# the all-reduce's fault suite: a fault in rank 1's averaged gradient (-fi op=allreduce: the
# gradient as buckets of 4096 elements; row a bucket, col an element of every bucket), of every
# type and pattern, 4 steps. Each is found by the bucket checksums in the training pass, every
# rank skips the update and redoes the step with its checks read at once, where the fault
# strikes again and the failed buckets are reduced again: the run ends bit-identical to the
# fault-free one. With ABFT off the same fault (a bit flip, the smallest) changes the model.

SHORT="$TWO -x 4"
$SHORT -o "$WORK/suite_clean" > "$WORK/suite_clean.out" 2>&1
check "all-reduce suite: the fault-free 4 steps" $? "$(tail -n 3 "$WORK/suite_clean.out")"
counts() { "$PY" -c "import json,sys; r=json.load(open(sys.argv[1])); o=r['ops']['allreduce']; print(o['detected'], sum(o['repaired'].values()))" "$1" 2>/dev/null; }
for type in inf -inf nan nearinf bitflip; do
    for pattern in 0d row col 2d; do
        spec="op=allreduce,layer=0,step=2,type=$type,pattern=$pattern,rank=1"
        $SHORT -o "$WORK/suite" -fi "$spec" > "$WORK/suite.out" 2>&1
        status=$?
        rank1=$(counts "$WORK/suite/abft_rank1.json") rank0=$(counts "$WORK/suite/abft.json")
        [ $status -eq 0 ] && [ "$rank1" = "1 1" ] && [ "$rank0" = "0 0" ] && cmp -s "$WORK/suite_clean/model.bin" "$WORK/suite/model.bin"
        check "all-reduce fault $type $pattern on rank 1: detected and repaired there, the run bit-identical" $? \
              "exit $status, rank 1 (detected, repaired): $rank1, rank 0: $rank0"
        rm -rf "$WORK/suite"
    done
done
for pattern in 0d row col 2d; do
    $SHORT -o "$WORK/suite_off" -abft 0 -fi "op=allreduce,layer=0,step=2,type=bitflip,pattern=$pattern,rank=1" > "$WORK/suite_off.out" 2>&1
    ! cmp -s "$WORK/suite_clean/model.bin" "$WORK/suite_off/model.bin"
    check "all-reduce fault bitflip $pattern with ABFT off: the model differs from the fault-free one" $?
    rm -rf "$WORK/suite_off"
done

# A fault that stays through every rung kills its rank; mpirun stops the other within seconds.
DEAD="op=fc,layer=0,step=2,type=nan,pattern=2d,count=1000,rank=1"
start=$(date +%s)
timeout 120 $TWO -o "$WORK/dead" -abft_scope all -fi "$DEAD" > "$WORK/dead.out" 2>&1
status=$?
took=$(( $(date +%s) - start ))
[ $status -ne 0 ] && [ $status -ne 124 ] && [ $took -le 60 ]
check "a rank that fails for good stops the job (exit $status after $took s)" $?
grep -q "error: abft" "$WORK/dead.out"
check "... with the failing rank's one-line error" $? "$(grep -m1 error "$WORK/dead.out")"

$TWO -fi "op=qk,layer=0,step=1,rank=2" > "$WORK/bad_rank.out" 2>&1
status=$?
[ $status -ne 0 ] && grep -q "rank=2, but the run has 2 ranks" "$WORK/bad_rank.out"
check "-fi rank=2 with 2 ranks is a clear error" $? "$(grep -m1 error "$WORK/bad_rank.out")"
$TWO -o "$WORK/bad_d" -d 192 > "$WORK/bad_d.out" 2>&1
status=$?
[ $status -ne 0 ] && grep -q "not a multiple of 2 x 32 x 2 ranks" "$WORK/bad_d.out"
check "-d not a multiple of B x T x ranks is a clear error" $? "$(grep -m1 error "$WORK/bad_d.out")"

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
