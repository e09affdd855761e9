#!/usr/bin/env bash
# test_bf16_train.sh: the bf16 CUDA trainer (through the CPU harness) trains `make train`'s model
# on its data without a false alarm and as well as fp32: 200 steps of the small preset
# (L4C256H4, B=8, T=64, lr 1e-3 with warmup and cosine decay) on the King James Bible, with
# ATTNChecker checking every GEMM and every kernel (scope `all`, the default here: the default
# scope's attention GEMMs are checked the same way, and the training is bit-identical to it) or
# the attention's GEMMs only (scope `attn`, what make train runs), raise no alarm of any kind;
# and the loss at the end is within 1% of an fp32 run of the same steps.
#
#   scripts/test_bf16_train.sh [./train_gpt2cu_bf16_cpu] [./train_gpt2] [python] [all|attn]
#
# The fp32 run is the second binary's: the CPU trainer by default (OpenBLAS, plain fp32; ten
# times faster than the CUDA trainer through the harness), or ./train_gpt2cu_cpu.
# The flags are make train's (TRAIN_FLAGS_small in the Makefile), but for 200 steps (-x 200, so
# the cosine decay ends at step 200), no validation, no samples and no checkpoints. The data is
# prepared as make train does (scripts/prepare_data.py; a no-op once data/bible/ is complete).
# The loss compared is the mean training loss of the last 10 steps: both runs see the same
# batches, and 10 of them (5120 tokens) at the end of the decay measure the model rather than
# one batch of 512 tokens. Prints PASS/FAIL per check and "N passed, M failed" at the end;
# exits non-zero on any failure.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BF16=$(realpath "${1:-./train_gpt2cu_bf16_cpu}")
FP32=$(realpath "${2:-./train_gpt2}")
PY=${3:-/usr/bin/python3}
SCOPE=${4:-all}
WORK=$(mktemp -d /tmp/test_bf16_train_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
case $SCOPE in all | attn) ;; *) echo "error: scope '$SCOPE': give all or attn" >&2; exit 2 ;; esac

STEPS=200
LAST=10      # the loss compared: the mean of the last LAST steps' training losses
TOL=0.01     # relative

check() { # check NAME CONDITION-EXIT-STATUS [DETAIL]
    if [ "$2" -eq 0 ]; then echo "PASS $1"; passed=$((passed + 1)); else echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}
finish() {
    echo
    echo "$passed passed, $failed failed"
    [ $failed -eq 0 ]
    exit
}

cd "$ROOT" || exit 1

# ----------------------------------------------------------------------------
# the data and the flags, as make train has them

PREP_PY=/usr/bin/python3
[ -x "$PREP_PY" ] || PREP_PY=$PY
start=$(date +%s.%N)
"$PREP_PY" scripts/prepare_data.py > "$WORK/prepare.log" 2>&1
status=$?
check "the King James Bible as token shards (scripts/prepare_data.py, $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)" \
    $status "$(tail -n 3 "$WORK/prepare.log")"
[ $status -eq 0 ] || finish

PRESET=$(sed -n 's/^TRAIN_FLAGS_small *:= *//p' Makefile)
[ -n "$PRESET" ]
check "make train's preset (TRAIN_FLAGS_small in the Makefile): $PRESET" $? "not found in $ROOT/Makefile"
[ -n "$PRESET" ] || finish
FLAGS="-i data/bible/train_*.bin -j data/bible/val_*.bin $PRESET -x $STEPS -v 0 -s 0 -n 0 -abft_scope $SCOPE"

# run NAME BINARY: trains with FLAGS into WORK/NAME (abft.json, main.jsonl), output in
# WORK/NAME.log, wall time in seconds in WORK/NAME.s; returns the trainer's exit status
run() {
    local name=$1 bin=$2 status t0
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086  # FLAGS is a list of flags
    "$bin" $FLAGS -o "$WORK/$name" > "$WORK/$name.log" 2>&1
    status=$?
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f\n", b - a }' > "$WORK/$name.s"
    return $status
}

# steps DIR: the number of steps in DIR/main.jsonl, all with finite losses, else nothing
steps() {
    "$PY" - "$1/main.jsonl" <<'EOF' 2>/dev/null
import json, math, sys
losses = [json.loads(line)["loss"] for line in open(sys.argv[1])]
if all(math.isfinite(x) for x in losses):
    print(len(losses))
EOF
}

# ----------------------------------------------------------------------------
# bf16: every check passes, nothing detected, repaired, recomputed or redone

run bf16 "$BF16"
status=$?
[ $status -eq 0 ] && [ "$(steps "$WORK/bf16")" = "$STEPS" ] && grep -q "^backend: .*bf16" "$WORK/bf16.log"
ok=$?
check "bf16 ($(basename "$BF16")): $STEPS steps of make train's model in $(cat "$WORK/bf16.s") s, every loss finite" $ok \
    "exit $status, $(grep -E '^(backend|error)' "$WORK/bf16.log" | head -c 300)"

# The ABFT report: how many checks ran (of how many ops), and every counter of an alarm or a
# repair summed: detections, outputs rebuilt from checksums, GEMMs and kernels recomputed,
# layers recomputed, steps redone, passes replayed, parameters held back; faults injected
# (none: a fault-free run).
# Scope attn checks the attention's GEMMs (qkv, qk, pv, proj and their gradients' GEMMs) only.
"$PY" - "$WORK/bf16/abft.json" "$SCOPE" > "$WORK/abft.txt" 2> "$WORK/abft.err" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ops = r["ops"]
in_scope = [name for name in ops if name != "allreduce" and  # one process: no all-reduce
            (sys.argv[2] == "all" or name.split("_")[0] in ("qkv", "qk", "pv", "proj"))]
checks = sum(op["checked"] for op in ops.values())
unchecked = [name for name in in_scope if ops[name]["checked"] == 0]
alarms = {
    "detected": sum(op["detected"] for op in ops.values()),
    "repaired": sum(sum(op["repaired"].values()) for op in ops.values()),
    "recomputed": sum(op["recomputed"] for op in ops.values()),
    "layers_recomputed": r["layers_recomputed"],
    "steps_redone": r["steps_redone"],
    "passes_replayed": r["passes_replayed"],
    "params_held": r["params_held"],
    "injected": r["injected"],
}
noisy = {name: {k: op[k] for k in ("detected", "recomputed")} | {"repaired": sum(op["repaired"].values())}
         for name, op in ops.items() if op["detected"] or op["recomputed"] or sum(op["repaired"].values())}
print(r["steps"], r["enabled"], checks, len(in_scope), ",".join(unchecked) or "-", sum(alarms.values()))
print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in alarms.items()))
print(" ".join(f"{name}:{v}" for name, v in noisy.items()) or "-")
EOF
read -r r_steps r_enabled r_checks r_ops r_unchecked r_alarms < "$WORK/abft.txt"
r_counters=$(sed -n 2p "$WORK/abft.txt")
r_noisy=$(sed -n 3p "$WORK/abft.txt")
[ "${r_steps:-}" = "$STEPS" ] && [ "${r_enabled:-}" = True ] && [ "${r_unchecked:-}" = "-" ]
check "bf16: ABFT on, -abft_scope $SCOPE: ${r_checks:-?} checks over $STEPS steps, each of the ${r_ops:-?} ops checked" $? \
    "steps ${r_steps:-?}, enabled ${r_enabled:-?}, ops never checked: ${r_unchecked:-?} $(head -c 300 "$WORK/abft.err")"
[ "${r_alarms:-x}" = 0 ] && ! grep -qE "^(abft|guard): step|\[abft:" "$WORK/bf16.log"
check "bf16: no false alarm: ${r_counters:-no report}" $? \
    "by op: ${r_noisy:-?}; first events: $(grep -E '^(abft|guard): step' "$WORK/bf16.log" | head -n 3 | head -c 400)"

# ----------------------------------------------------------------------------
# fp32: the same steps; the bf16 loss within 1% of its

run fp32 "$FP32"
status=$?
[ $status -eq 0 ] && [ "$(steps "$WORK/fp32")" = "$STEPS" ]
ok=$?
check "fp32 ($(basename "$FP32")): the same $STEPS steps in $(cat "$WORK/fp32.s") s" $ok \
    "exit $status, $(grep -E '^(backend|error)' "$WORK/fp32.log" | head -c 300)"
fp32_detected=$("$PY" -c 'import json, sys; print(sum(op["detected"] for op in json.load(open(sys.argv[1]))["ops"].values()))' \
    "$WORK/fp32/abft.json" 2>/dev/null)

"$PY" - "$WORK/bf16/main.jsonl" "$WORK/fp32/main.jsonl" "$LAST" "$TOL" > "$WORK/loss.txt" 2>&1 <<'EOF'
import json, sys
last, tol = int(sys.argv[3]), float(sys.argv[4])
runs = [[json.loads(line)["loss"] for line in open(path)] for path in sys.argv[1:3]]
(b, f) = (sum(r[-last:]) / last for r in runs)
rel = abs(b - f) / f
print(f"{b:.4f} {f:.4f} {100 * rel:.3f} {runs[0][-1]:.4f} {runs[1][-1]:.4f} {runs[0][0]:.4f} {runs[1][0]:.4f}")
sys.exit(0 if rel <= tol else 1)
EOF
status=$?
read -r l_bf16 l_fp32 l_rel l_bf16_final l_fp32_final l_bf16_first l_fp32_first < <(grep -E "^[0-9]" "$WORK/loss.txt")
check "loss over the last $LAST steps: bf16 ${l_bf16:-?}, fp32 ${l_fp32:-?}: ${l_rel:-?}% apart (at most $(awk -v t="$TOL" 'BEGIN { print 100 * t }')%)" $status \
    "$(grep -v '^[0-9]' "$WORK/loss.txt" | head -c 300)"
echo "     (step 1: bf16 ${l_bf16_first:-?}, fp32 ${l_fp32_first:-?}; step $STEPS: bf16 ${l_bf16_final:-?}, fp32 ${l_fp32_final:-?};" \
     "fp32 run's ABFT detections: ${fp32_detected:-?}; wall: bf16 $(cat "$WORK/bf16.s") s, fp32 $(cat "$WORK/fp32.s") s)"

finish
