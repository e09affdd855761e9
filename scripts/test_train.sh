#!/usr/bin/env bash
# test_train.sh: the trainer as a user drives it: checkpoints and resume (with gradient
# accumulation, clipping and the learning-rate schedule), interruption, kills in the middle of a
# checkpoint write, text from a trained model (-sample), llm.c's bf16 model files, and a clear
# one-line error for every kind of bad input.
#
#   scripts/test_train.sh [./train_gpt2] [python]
#
# Works in a temporary directory on small synthetic token shards; prints PASS/FAIL per check
# and "N passed, M failed" at the end; exits non-zero on any failure.
set -u
BIN=$(realpath "${1:-./train_gpt2}")
PY=${2:-/usr/bin/python3}
WORK=$(mktemp -d /tmp/test_train_XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

# A NAME with $(...) in it resets $? before check sees it: there, save it first (status=$?).
check() { # check NAME CONDITION-EXIT-STATUS [DETAIL]
    if [ "$2" -eq 0 ]; then echo "PASS $1"; passed=$((passed + 1)); else echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}

# abft_report DIR KEY...: values from the ABFT report a run with -o DIR wrote (DIR/abft.json),
# space-separated: a path into it (ops.qk.checked, ops.qk.repaired.0d, injected...) or
# total.KEY, KEY summed over the ops; nothing when the report is missing or lacks a key.
abft_report() {
    "$PY" - "$@" <<'EOF' 2>/dev/null
import json, sys
report = json.load(open(sys.argv[1] + "/abft.json"))
def value(path):
    if path.startswith("total."):
        return sum(op[path[len("total."):]] for op in report["ops"].values())
    x = report
    for key in path.split("."):
        x = x[key]
    return x
print(" ".join(str(value(p)) for p in sys.argv[2:]))
EOF
}

# ----------------------------------------------------------------------------
# data: a learnable synthetic sequence (a repeating ramp with 10% noise), V = 1000

"$PY" - "$WORK" <<'EOF'
import sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(0)
def shard(path, tokens, magic=20240520, version=1, count=None):
    h = np.zeros(256, dtype=np.int32)
    h[0], h[1], h[2] = magic, version, len(tokens) if count is None else count
    with open(path, "wb") as f:
        f.write(h.tobytes()); f.write(np.asarray(tokens, dtype=np.uint16).tobytes())
def text(n):
    base = np.tile(np.arange(50), n // 50 + 1)[:n]
    return np.where(rng.random(n) < 0.1, rng.integers(0, 1000, n), base)
shard(f"{work}/train_000.bin", text(20000))
shard(f"{work}/val_000.bin", text(4000))
shard(f"{work}/bad_magic.bin", text(1000), magic=1234)
shard(f"{work}/bad_version.bin", text(1000), version=7)
shard(f"{work}/short.bin", text(100))
shard(f"{work}/big_token.bin", [5] * 500 + [60000] + [5] * 500)
shard(f"{work}/truncated.bin", text(1000), count=2000)
# a tokenizer decode file for another vocabulary size (50257, the model here has 1000)
h = np.zeros(256, dtype=np.int32); h[0], h[1], h[2], h[3] = 20240328, 2, 50257, 50256
with open(f"{work}/tok50257.bin", "wb") as f:
    f.write(h.tobytes())
    for i in range(50257): f.write(bytes([1, 65 + i % 26]))
EOF

MODEL="-e L2C64H4V1000T64"
DATA="-i $WORK/train_*.bin -j $WORK/val_*.bin -z $WORK/none.bin"
RUN="$BIN $MODEL $DATA -b 4 -t 32 -v 4 -m 2 -s 0 -l 3e-3 -abft_quiet 1"

# ----------------------------------------------------------------------------
# resume is bit-identical to an uninterrupted run: with 2 accumulated micro-batches per step,
# warmup and cosine decay, weight decay and clipping at a norm the early steps exceed. The
# resumed run starts from the uninterrupted run's checkpoint of step 9 (its newest but one;
# the schedule depends on -x, so the flags must be the same), as if it had stopped there.

OPT="-d 256 -u 3 -q 0.1 -c 0.1 -clip 1.5"
$RUN $OPT -x 12 -n 3 -o "$WORK/straight" > "$WORK/straight.log" 2>&1
cp -r "$WORK/straight" "$WORK/resumed"
rm "$WORK/resumed/"*_00000012* "$WORK/resumed/model.bin"
$RUN $OPT -x 12 -n 3 -o "$WORK/resumed" -y 1 > "$WORK/r2.log" 2>&1
cmp -s "$WORK/straight/model.bin" "$WORK/resumed/model.bin"
check "resume from step 9 of 12: final model bit-identical to an uninterrupted run" $?
grep -q "resumed from step 9" "$WORK/r2.log"
check "resume picks the newest complete checkpoint (step 9)" $?
diff <(cut -d, -f1-3 "$WORK/straight/main.jsonl") <(cut -d, -f1-3 "$WORK/resumed/main.jsonl") > /dev/null
check "resumed log: one record per step, same losses as the uninterrupted run" $?
diff <(sed -n 's/^step *[0-9]*\/[0-9]*: train loss \([0-9.]*\).*/\1/p' "$WORK/straight.log") \
     <(sed -n 's/.*"loss": \([0-9.]*\),.*/\1/p' "$WORK/straight/main.jsonl") > /dev/null
check "the log records each step's training loss (not a validation pass's)" $?
[ "$(ls "$WORK/resumed" | grep -c '^DONE_')" -eq 2 ]
check "only the two newest checkpoints are kept" $?
[ "$(abft_report "$WORK/straight" steps enabled ops.qkv_dw.checked total.detected injected)" = "12 True 48 0 0" ]
check "LOGDIR/abft.json: the run's ABFT counters (12 steps, qkv_dw checked once per layer and micro-batch, no alarm)" $?
"$PY" - "$WORK/straight/main.jsonl" <<'EOF'
import json, math, sys
steps = [json.loads(line) for line in open(sys.argv[1])]
lr = [s["lr"] for s in steps]
norms = [s["grad_norm"] for s in steps]
def cosine(i):  # steps 3..11 decay from 3e-3 to 3e-4 (reached one step after the last)
    return 3e-4 + 0.5 * (1 + math.cos(math.pi * (i - 3) / 9)) * (3e-3 - 3e-4)
want = [3e-3 * (i + 1) / 3 for i in range(3)] + [cosine(i) for i in range(3, 12)]
ok = len(steps) == 12 and all(abs(a - b) <= 1e-6 * b for a, b in zip(lr, want))
ok &= all(n > 0 and math.isfinite(n) for n in norms) and max(norms) > 1.5 > min(norms)
ok &= all(s["mfu"] is None and s["tok_s"] > 0 for s in steps)  # no MFU without a GPU
sys.exit(0 if ok else 1)
EOF
check "main.jsonl: lr warms up over 3 steps then decays by cosine to 0.1x; gradient norms logged (some above the 1.5 clip, some below)" $?

# ----------------------------------------------------------------------------
# rate mode: random faults over a run; with ABFT the run ends where the fault-free one does

$RUN -x 30 > "$WORK/rate_clean.log" 2>&1
$RUN -x 30 -fi rate=0.02,type=nan,seed=5 -o "$WORK/rate_on" > "$WORK/rate_on.log" 2>&1
$RUN -x 30 -fi rate=0.02,type=nan,seed=5 -abft 0 > "$WORK/rate_off.log" 2>&1
final() { sed -n 's/^step *30\/30: train loss \([^ ]*\).*/\1/p' "$1"; }
injected=$(abft_report "$WORK/rate_on" injected)
awk -v a="$(final "$WORK/rate_on.log")" -v b="$(final "$WORK/rate_clean.log")" -v n="${injected:-0}" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(n >= 5 && d <= 1e-4 * b) }'
status=$?
check "rate mode, ABFT on: ${injected:-0} random NaN faults over 30 steps, final loss $(final "$WORK/rate_on.log") = fault-free $(final "$WORK/rate_clean.log")" $status
final "$WORK/rate_off.log" | grep -qi nan
status=$?
check "rate mode, ABFT off: the same faults end in a NaN loss ($(final "$WORK/rate_off.log"))" $status

# ----------------------------------------------------------------------------
# adaptive detection frequency: -abft_every qk=2 checks qk at steps 0, 2, 4, ... only

EVERY="$BIN $MODEL $DATA -b 4 -t 32 -v 0 -s 0 -l 3e-3 -abft_quiet 1 -x 8"
every() { # every NAME FLAGS...: an 8-step run, its output in NAME.log, its log directory NAME/
    local name=$1; shift
    $EVERY -o "$WORK/$name" "$@" > "$WORK/$name.log" 2>&1
}
every every_clean
every every_odd -abft_every qk=2 -fi op=qk,layer=0,step=3,type=-inf
every every_off -abft 0 -fi op=qk,layer=0,step=3,type=-inf
every every_even -abft_every qk=2 -fi op=qk,layer=0,step=4,type=-inf
every every_nan -abft_every qk=2 -fi op=qk,layer=0,step=3,type=nan
every every_dp -abft_every pv_dp=2
final8() { sed -n 's/^step *8\/8: train loss \([^ ]*\).*/\1/p' "$1"; }
[ "$(abft_report "$WORK/every_odd" ops.qk.checked ops.qk.detected ops.qk.repaired.0d)" = "8 0 0" ] &&
    [ "$(abft_report "$WORK/every_odd" ops.pv.checked ops.pv.detected ops.pv.repaired.0d)" = "16 0 0" ] &&
    [ "$(abft_report "$WORK/every_odd" total.detected injected)" = "0 1" ] &&
    [ -n "$(final8 "$WORK/every_odd.log")" ] && [ "$(final8 "$WORK/every_odd.log")" = "$(final8 "$WORK/every_off.log")" ]
status=$?
check "-abft_every qk=2: qk checked at 4 of 8 steps; a -inf fault at step 3 goes through unseen, as with ABFT off (loss $(final8 "$WORK/every_odd.log"))" $status
[ "$(abft_report "$WORK/every_even" ops.qk.checked ops.qk.detected ops.qk.repaired.0d total.detected)" = "8 1 1 1" ] &&
    [ "$(final8 "$WORK/every_even.log")" = "$(final8 "$WORK/every_clean.log")" ]
check "-abft_every qk=2: the same fault at step 4 is detected and corrected, final loss = fault-free" $?
[ "$(abft_report "$WORK/every_nan" ops.qk.detected layers_recomputed)" = "0 1" ] &&
    [ "$(abft_report "$WORK/every_nan" total.detected)" -ge 1 ] &&
    [ "$(final8 "$WORK/every_nan.log")" = "$(final8 "$WORK/every_clean.log")" ]
check "-abft_every qk=2: a NaN at step 3 skips qk's check, is caught downstream (pv), the layer is recomputed, final loss = fault-free" $?
# on the GPU, dP's check also forms dV's checksums: at the steps dP is not checked, dV's
# check must not use the last ones
[ "$(abft_report "$WORK/every_dp" ops.pv_dp.checked ops.pv_dv.checked total.detected passes_replayed)" = "8 16 0 0" ] &&
    [ "$(final8 "$WORK/every_dp.log")" = "$(final8 "$WORK/every_clean.log")" ]
check "-abft_every pv_dp=2, fault-free: dP checked at 4 of 8 steps, dV at all 8, no alarm, no pass replayed" $?

# ----------------------------------------------------------------------------
# -abft_scope: the MLP's and the LM head's GEMMs, and the kernels' invariants, are checked
# with "all" only

every scope_attn -fi op=fc,layer=0,step=3,type=nan
every scope_all -abft_scope all -fi op=fc,layer=0,step=3,type=nan
every scope_lm -abft_scope all -fi op=lm_dw,layer=0,step=2,type=inf,pattern=row
every scope_clean -abft_scope all
every kernel_softmax -abft_scope all -fi op=softmax,layer=1,step=3,type=nan,pattern=row
every kernel_adamw -abft_scope all -fi op=adamw,layer=0,step=2,type=bitflip,pattern=col
grep -q "note: -fi op=fc is outside -abft_scope attn" "$WORK/scope_attn.log" &&
    [ "$(abft_report "$WORK/scope_attn" ops.fc.checked injected)" = "0 1" ]
check "-abft_scope attn (the default): a fault in fc is injected, not checked, and the note says so" $?
# A value rebuilt from checksums is exact to fp32 rounding, not bit-identical under TF32 (where
# the GEMM rounds its operands and the checksums do not): the final losses agree to 1e-5.
close8() { # close8 LOG-A LOG-B: their final losses within 1e-5, relative
    awk -v a="$(final8 "$1")" -v b="$(final8 "$2")" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-5 * b) }'
}
[ "$(abft_report "$WORK/scope_all" ops.fc.checked ops.fc.detected ops.fc.repaired.0d total.detected)" = "16 1 1 1" ] &&
    close8 "$WORK/scope_all.log" "$WORK/every_clean.log"
check "-abft_scope all: fc checked at every step and layer, its NaN detected and corrected, final loss = fault-free" $?
[ "$(abft_report "$WORK/scope_lm" ops.lm_dw.checked ops.lm_dw.detected ops.lm_dw.repaired.row total.detected)" = "8 1 1 1" ] &&
    close8 "$WORK/scope_lm.log" "$WORK/every_clean.log"
check "-abft_scope all: a row of INF in wte's gradient (lm_dw) detected and corrected, final loss = fault-free" $?
[ "$(abft_report "$WORK/scope_clean" total.detected ops.fcproj_dx.checked ops.lm.checked ops.softmax.checked ops.adamw.checked)" = "0 16 8 16 8" ] &&
    [ "$(final8 "$WORK/scope_clean.log")" = "$(final8 "$WORK/every_clean.log")" ]
check "-abft_scope all, fault-free: no alarm over 8 steps of every GEMM and kernel, loss bit-identical to -abft_scope attn" $?
# a kernel recomputes the rows that broke its invariant: the result is the fault-free one, bit for bit
[ "$(abft_report "$WORK/kernel_softmax" ops.softmax.detected ops.softmax.recomputed total.detected injected)" = "1 1 1 1" ] &&
    [ "$(final8 "$WORK/kernel_softmax.log")" = "$(final8 "$WORK/scope_clean.log")" ]
check "-abft_scope all: a row of NaN in the softmax's output breaks its invariant, the row is recomputed, final loss bit-identical" $?
[ "$(abft_report "$WORK/kernel_adamw" ops.adamw.detected ops.adamw.recomputed total.detected params_held)" = "1 1 1 0" ] &&
    [ "$(final8 "$WORK/kernel_adamw.log")" = "$(final8 "$WORK/scope_clean.log")" ]
check "-abft_scope all: exponent flips in a column of AdamW's new parameters are recomputed, final loss bit-identical" $?

# ----------------------------------------------------------------------------
# finite faults: bit=N flips that bit; the CPU trainer logs each one-element fault with its
# check's tolerance and verdict (LOGDIR/faults.jsonl) and each op's fault-free residual
# (abft.json); -abft_tol measured (fp32: each op's measured tolerance) raises no false alarm

every bit_high -abft_scope all -fi op=fc,layer=1,step=3,type=bitflip,bit=30
every bit_low -abft_scope all -fi op=fc,layer=1,step=3,type=bitflip,bit=2
every tol_measured -abft_scope all -abft_tol measured -tf32 0
[ "$(abft_report "$WORK/tol_measured" total.detected ops.fc.checked ops.lm_dw.checked ops.lm_dw.tau ops.qk.tau)" = "0 16 8 0.081 2" ]
check "-abft_tol measured, fault-free: each op its measured tau (lm_dw 0.081), no alarm over 8 steps of every GEMM" $?
[ "$(abft_report "$WORK/bit_high" ops.fc.detected ops.fc.repaired.0d total.detected)" = "1 1 1" ] &&
    close8 "$WORK/bit_high.log" "$WORK/every_clean.log"
check "a flip of bit 30 in fc detected and corrected, final loss = fault-free" $?
if $RUN -x 0 2> /dev/null | grep -q "^backend: CPU"; then
    # fault_line DIR: the fault log's one line as "bit detected error>tolerance"
    fault_line() {
        "$PY" -c 'import json, sys; e = [json.loads(l) for l in open(sys.argv[1] + "/faults.jsonl")]; assert len(e) == 1
print(e[0]["bit"], str(e[0]["detected"]).lower(), str(e[0]["error"] > e[0]["tolerance"]).lower())' "$1" 2>/dev/null
    }
    [ "$(fault_line "$WORK/bit_high")" = "30 true true" ]
    check "faults.jsonl: the bit-30 flip, detected, its error above its column's tolerance" $?
    [ "$(fault_line "$WORK/bit_low")" = "2 false false" ] && [ "$(abft_report "$WORK/bit_low" total.detected)" = "0" ]
    check "faults.jsonl: a flip of bit 2 goes undetected, and its error is within its column's tolerance" $?
    awk -v r="$(abft_report "$WORK/scope_clean" ops.fc.residual)" -v n="$(abft_report "$WORK/scope_clean" ops.fc.residual_checks)" \
        'BEGIN { exit !(r > 0 && r < 1 && n == 16) }'
    check "abft.json: fc's largest fault-free residual ($(abft_report "$WORK/scope_clean" ops.fc.residual) of the bound) over its 16 checks" $?
    awk -v r="$(abft_report "$WORK/scope_clean" ops.softmax.residual)" -v n="$(abft_report "$WORK/scope_clean" ops.softmax.residual_checks)" \
        'BEGIN { exit !(r > 0 && r < 2 && n == 16) }'
    check "abft.json: the softmax invariant's largest fault-free residual ($(abft_report "$WORK/scope_clean" ops.softmax.residual) of its worst case) over its 16 checks" $?
fi

# ----------------------------------------------------------------------------
# the step guard (-guard Z): a step whose loss or gradient norm is not finite, or more than Z
# standard deviations above the recent mean, is redone from the pre-step state

every guard_fault -abft 0 -guard 6 -fi op=fc,layer=1,step=3,type=bitflip
every guard_none -abft 0 -fi op=fc,layer=1,step=3,type=bitflip
$RUN -x 30 -v 0 -guard 0.1 > "$WORK/guard_low.log" 2>&1 # rate_clean's run, with the guard
$RUN -x 30 -v 0 -guard 20 > "$WORK/guard_quiet.log" 2>&1
grep -q "^step guard (-guard 6): 1 steps redone" "$WORK/guard_fault.log" &&
    [ "$(final8 "$WORK/guard_fault.log")" = "$(final8 "$WORK/every_clean.log")" ] &&
    [ "$(final8 "$WORK/guard_none.log")" != "$(final8 "$WORK/every_clean.log")" ]
check "-guard 6, ABFT off: a bit flip in fc that no check sees; the guard redoes its step, final loss = fault-free (unguarded: $(final8 "$WORK/guard_none.log"))" $?
redone=$(sed -n 's/^step guard (-guard 0.1): \([0-9]*\) steps redone.*/\1/p' "$WORK/guard_low.log")
[ "${redone:-0}" -gt 0 ] && [ -n "$(final "$WORK/guard_low.log")" ] &&
    [ "$(final "$WORK/guard_low.log")" = "$(final "$WORK/rate_clean.log")" ]
check "-guard 0.1, fault-free: ${redone:-0} legitimate spikes redone, come back and are applied: final loss bit-identical to no guard" $?
grep -q "^step guard (-guard 20): 0 steps redone" "$WORK/guard_quiet.log" &&
    [ "$(final "$WORK/guard_quiet.log")" = "$(final "$WORK/rate_clean.log")" ]
check "-guard 20, fault-free: never fires over 30 steps, final loss bit-identical to no guard" $?

# ----------------------------------------------------------------------------
# checkpoint/restore recovery (the baseline ABFT is compared with): with ABFT off, a fault's
# non-finite loss (forward fault) or parameters (backward fault) sends training back to the
# last checkpoint, and the run ends where the fault-free one does

for spec in op=qk,layer=1,step=13,type=inf,pattern=row op=qkv_dw,layer=0,step=9,type=nan,pattern=0d; do
    rm -rf "$WORK/rb"
    $RUN -x 30 -abft 0 -fi "$spec" -rollback 1 -n 5 -o "$WORK/rb" > "$WORK/rb.log" 2>&1
    grep -q "^rollbacks: 1," "$WORK/rb.log" && [ "$(final "$WORK/rb.log")" = "$(final "$WORK/rate_clean.log")" ]
    status=$?
    check "rollback: ${spec%%,*} fault, one rollback, final loss $(final "$WORK/rb.log") = fault-free" $status
done

# ----------------------------------------------------------------------------
# Ctrl-C: the step under way finishes, a checkpoint is written, resume continues identically

$RUN -x 400 -o "$WORK/int" > "$WORK/int.log" 2>&1 &
pid=$!
sleep 1
kill -INT $pid
wait $pid
status=$?
[ $status -eq 130 ] && grep -q "interrupted after step" "$WORK/int.log"
check "SIGINT stops after the current step with exit 130" $? "exit $status"
step=$(ls "$WORK/int" | sed -n 's/^DONE_0*\([0-9][0-9]*\)$/\1/p' | sort -n | tail -1)
$RUN -x $((step + 2)) -o "$WORK/int" -y 1 > "$WORK/int2.log" 2>&1
check "the interrupted run resumes from its checkpoint at step ${step:-none}" $?

# ----------------------------------------------------------------------------
# kill -9 in the middle of writing a checkpoint (the moment a temporary file appears) and at
# arbitrary moments: the newest complete checkpoint always loads and training goes on. A
# 16M-parameter model makes each checkpoint ~190 MB, so a write lasts long enough to be hit.

BIG="$BIN -e L4C256H4V1000T64 $DATA -b 2 -t 32 -v 0 -s 0 -abft_quiet 1 -n 1 -o $WORK/kill"
$BIG -x 1 > "$WORK/kill.log" 2>&1 # a first complete checkpoint
hits=0
resumes_ok=0
kills=0
for when in tmp tmp tmp tmp 0.5 1.3; do
    $BIG -x 1000 -y 1 > "$WORK/kill.log" 2>&1 &
    pid=$!
    if [ "$when" = tmp ]; then
        for _ in $(seq 3000); do compgen -G "$WORK/kill/*.tmp" > /dev/null && break; sleep 0.005; done
    else
        sleep "$when"
    fi
    kill -9 $pid 2> /dev/null
    wait $pid 2> /dev/null
    kills=$((kills + 1))
    compgen -G "$WORK/kill/*.tmp" > /dev/null && hits=$((hits + 1))
    step=$(ls "$WORK/kill" | sed -n 's/^DONE_0*\([0-9][0-9]*\)$/\1/p' | sort -n | tail -1)
    $BIG -x $((step + 1)) -y 1 > "$WORK/kill_resume.log" 2>&1 && grep -q "resumed from step $step" "$WORK/kill_resume.log" \
        && resumes_ok=$((resumes_ok + 1))
done
[ $hits -ge 2 ] && [ $resumes_ok -eq $kills ]
check "kill -9 $kills times ($hits in the middle of a checkpoint write): the last good checkpoint resumed $resumes_ok times" $?

# ----------------------------------------------------------------------------
# llm.c's bf16 model files (version 5) are read and widened to fp32 exactly: the PyTorch
# reference writes a tiny model in bf16 (--write-bf16), then reads that back (--model-in) and
# writes it as fp32 (model.bin, the bf16-rounded values); the trainer trains from the two files
# alike, to the bit (the losses are printed to 6 digits only: the trained parameters are compared).

REF="$PY $(dirname "$0")/train_gpt2.py --batch 1 --seq 8 --steps 1"
$REF --out "$WORK/bf16_init" --init noisy --layers 1 --heads 2 --channels 32 --max-seq-len 64 --vocab 1000 \
    --write-bf16 "$WORK/model_bf16.bin" > "$WORK/bf16_ref.log" 2>&1 &&
    $REF --out "$WORK/bf16_widened" --model-in "$WORK/model_bf16.bin" >> "$WORK/bf16_ref.log" 2>&1
check "train_gpt2.py writes a bf16 model file (--write-bf16) and reads it back (--model-in)" $? "$(head -c 300 "$WORK/bf16_ref.log")"
"$PY" - "$WORK/bf16_init/model.bin" "$WORK/bf16_widened/model.bin" <<'EOF'
import sys, numpy as np
fp32, widened = (np.fromfile(path, dtype="<u4", offset=1024).astype(np.uint64) for path in sys.argv[1:])
nearest_bf16 = (fp32 + 0x7FFF + ((fp32 >> 16) & 1)) >> 16 << 16  # round the low half away, ties to even
sys.exit(0 if np.array_equal(widened, nearest_bf16) and not np.array_equal(widened, fp32) else 1)
EOF
check "... its fp32 rewrite holds each initial parameter rounded to the nearest bf16 (ties to even)" $?
BF16="$BIN $DATA -b 4 -t 32 -x 3 -v 0 -s 0 -l 3e-3 -abft_quiet 1"
$BF16 -e "$WORK/model_bf16.bin" -o "$WORK/bf16" > "$WORK/bf16.log" 2>&1 &&
    $BF16 -e "$WORK/bf16_widened/model.bin" -o "$WORK/bf16_fp32" > "$WORK/bf16_fp32.log" 2>&1
status=$?
losses() { sed -n 's/^step *[0-9]*\/[0-9]*: train loss \([^ ,]*\).*/\1/p' "$1"; }
[ $status -eq 0 ] && grep -q "model_bf16.bin: llm.c bf16 file, widened to fp32" "$WORK/bf16.log" &&
    [ "$(losses "$WORK/bf16.log" | wc -l)" -eq 3 ] && [ "$(losses "$WORK/bf16.log")" = "$(losses "$WORK/bf16_fp32.log")" ] &&
    cmp -s "$WORK/bf16/model.bin" "$WORK/bf16_fp32/model.bin"
status=$?
check "the trainer reads the bf16 file: 3 steps, losses ($(losses "$WORK/bf16.log" | paste -sd' ')) and trained parameters bit-identical to its fp32 rewrite's" $status \
    "fp32 rewrite: $(losses "$WORK/bf16_fp32.log" | paste -sd' ')"

# ----------------------------------------------------------------------------
# bad input: one line on stderr naming the file or flag, the reason and a hint; exit status 1

expect_error() { # NAME WHAT-THE-LINE-MUST-NAME COMMAND...
    local name=$1 what=$2
    shift 2
    "$@" > "$WORK/out.txt" 2> "$WORK/err.txt"
    local status=$?
    local line
    line=$(grep -v '^warning' "$WORK/err.txt" | head -1)
    if [ $status -eq 1 ] && [ "$(grep -vc '^warning' "$WORK/err.txt")" -eq 1 ] && [[ "$line" == "error: "*"$what"* ]] \
        && [[ "$line" == *"(hint: "* ]]; then
        check "bad input: $name" 0
    else
        check "bad input: $name" 1 "exit $status, stderr: $(head -c 300 "$WORK/err.txt")"
    fi
}

cp "$WORK/straight/model.bin" "$WORK/good_model.bin"
"$PY" - "$WORK" <<'EOF'
import sys, struct
w = sys.argv[1]
data = bytearray(open(f"{w}/good_model.bin", "rb").read())
open(f"{w}/model_magic.bin", "wb").write(struct.pack("<i", 42) + data[4:])
open(f"{w}/model_v4.bin", "wb").write(data[:4] + struct.pack("<i", 4) + data[8:])
open(f"{w}/model_trunc.bin", "wb").write(data[: len(data) // 2])
open(f"{w}/model_header_only.bin", "wb").write(data[:100])
EOF
TRAIN="$BIN -i $WORK/train_*.bin -j $WORK/val_*.bin -z $WORK/none.bin -b 4 -t 32 -x 1 -v 0 -s 0"
expect_error "model file missing" "$WORK/nope.bin" $TRAIN -e "$WORK/nope.bin"
expect_error "model file with a wrong magic number" "model_magic.bin" $TRAIN -e "$WORK/model_magic.bin"
expect_error "model file of version 4 (neither fp32 nor bf16)" "model_v4.bin: unsupported model file version 4" $TRAIN -e "$WORK/model_v4.bin"
bf16_size=$(stat -c %s "$WORK/model_bf16.bin")
head -c $((bf16_size - 1000)) "$WORK/model_bf16.bin" > "$WORK/model_bf16_trunc.bin"
expect_error "truncated bf16 model file" "model_bf16_trunc.bin" $TRAIN -e "$WORK/model_bf16_trunc.bin"
grep -q "(version 5, bf16) is $((bf16_size - 1000)) bytes, its header implies $bf16_size" "$WORK/err.txt"
check "... its error gives the size found and the size of a bf16 file of its header" $? "$(head -c 300 "$WORK/err.txt")"
expect_error "truncated model file" "model_trunc.bin" $TRAIN -e "$WORK/model_trunc.bin"
expect_error "model file shorter than its header" "model_header_only.bin" $TRAIN -e "$WORK/model_header_only.bin"
SHARD="$BIN $MODEL -j $WORK/val_*.bin -z $WORK/none.bin -b 4 -t 32 -x 1 -v 0 -s 0"
expect_error "no shard matches the pattern" "$WORK/missing_*.bin" $SHARD -i "$WORK/missing_*.bin"
expect_error "shard with a wrong magic number" "bad_magic.bin" $SHARD -i "$WORK/bad_magic.bin"
expect_error "shard with a wrong version" "bad_version.bin" $SHARD -i "$WORK/bad_version.bin"
expect_error "truncated shard" "truncated.bin" $SHARD -i "$WORK/truncated.bin"
expect_error "shard shorter than B*T+1 tokens" "short.bin" $SHARD -i "$WORK/short.bin"
expect_error "shard with a token beyond the vocabulary" "big_token.bin" $SHARD -i "$WORK/big_token.bin"
expect_error "tokenizer of another vocabulary size" "tok50257.bin" $RUN -x 1 -z "$WORK/tok50257.bin"
expect_error "non-numeric batch size" "-b" $RUN -x 1 -b abc
expect_error "batch size out of range" "-b" $RUN -x 1 -b 0
expect_error "negative learning rate" "-l" $RUN -x 1 -l -0.1
expect_error "sequence longer than the model's maximum" "-t" $RUN -x 1 -t 65
expect_error "unknown flag" "-zz" $RUN -x 1 -zz 3
expect_error "final learning rate fraction outside [0, 1]" "-q" $RUN -x 1 -q 1.5
expect_error "total batch not a multiple of B*T" "-d" $RUN -x 1 -d 200
expect_error "total batch of 0 tokens" "-d" $RUN -x 1 -d 0
expect_error "a negative warmup" "-u" $RUN -x 1 -u -1
expect_error "a negative clip" "-clip" $RUN -x 1 -clip -1
expect_error "-w (weight decay is -c, as in llm.c)" "-w" $RUN -x 1 -w 0.1
expect_error "sampling temperature 0" "-temp" $RUN -x 1 -temp 0
expect_error "flag without a value" "-x" $RUN -x
expect_error "bad fault spec" "-fi" $RUN -x 1 -fi op=attention,layer=0,step=0
expect_error "bad -abft_every spec" "-abft_every" $RUN -x 1 -abft_every qk=0
expect_error "-abft_every with an unknown op" "-abft_every" $RUN -x 1 -abft_every attention=2
expect_error "unknown -abft_scope" "-abft_scope" $RUN -x 1 -abft_scope mlp
expect_error "unknown -abft_tol" "-abft_tol" $RUN -x 1 -abft_tol tight
expect_error "a negative -guard" "-guard" $RUN -x 1 -guard -2
expect_error "a bit beyond 31" "-fi" $RUN -x 1 -fi op=qk,layer=0,step=0,type=bitflip,bit=32
expect_error "a bit with a fault type other than bitflip" "-fi" $RUN -x 1 -fi op=qk,layer=0,step=0,type=nan,bit=3
expect_error "a fault in the LM head at a layer other than 0" "-fi" $RUN -x 1 -abft_scope all -fi op=lm,layer=1,step=0
expect_error "a fault in a once-a-step kernel (adamw) at a layer other than 0" "-fi" $RUN -x 1 -abft_scope all -fi op=adamw,layer=1,step=0
expect_error "resume without a log directory" "-y" $RUN -x 1 -y 1
expect_error "resume from a directory without checkpoints" "$WORK/empty" $RUN -x 1 -y 1 -o "$WORK/empty"
# a corrupted state file in the newest checkpoint
mkdir -p "$WORK/badstate"
cp "$WORK/resumed/"*_00000012* "$WORK/badstate/"
head -c 5000 "$WORK/resumed/state_00000012.bin" > "$WORK/badstate/state_00000012.bin"
expect_error "truncated state file" "state_00000012.bin" $RUN -x 14 -y 1 -o "$WORK/badstate"
printf 'XXXX' | dd of="$WORK/badstate/state_00000012.bin" conv=notrunc status=none
expect_error "state file with a wrong magic number" "state_00000012.bin" $RUN -x 14 -y 1 -o "$WORK/badstate"
cp "$WORK/resumed/state_00000012.bin" "$WORK/badstate/"
expect_error "resume with another batch size" "state_00000012.bin" $BIN $MODEL $DATA -b 2 -t 32 -v 0 -s 0 -x 14 -y 1 -o "$WORK/badstate" $OPT
expect_error "resume with another total batch (-d)" "state_00000012.bin" $RUN -x 14 -y 1 -o "$WORK/badstate" -d 384

# ----------------------------------------------------------------------------
# -h lists the optimizer's flags and the sampling mode

$BIN -h > "$WORK/help.txt" 2>&1
status=0
for flag in -u -q -d -c -clip -sample -temp -topk; do grep -q "^  $flag " "$WORK/help.txt" || status=1; done
check "-h lists -u, -q, -d, -c, -clip and -sample with -temp and -topk" $status

# ----------------------------------------------------------------------------
# -sample: text from a trained model file, its prompt encoded with GPT-2's BPE

"$PY" - "$WORK" <<'EOF'
import sys
sys.path.insert(0, "scripts")
import gpt2_bpe, prepare_data
prepare_data.write_tokenizer(f"{sys.argv[1]}/gpt2_tokenizer.bin", gpt2_bpe.load_encoder())
EOF
TOK="-z $WORK/gpt2_tokenizer.bin"
$BIN -e L1C32H2T64 -i "$WORK/train_*.bin" $TOK -b 4 -t 32 -x 2 -v 0 -s 0 -o "$WORK/gpt" > "$WORK/gpt.log" 2>&1
SAMPLE="$BIN -e $WORK/gpt/model.bin $TOK -t 32 -g 12"
continuation() { sed -n '/^---$/,/^---$/p' "$1" | sed '1d;$d'; }
$SAMPLE -sample "And God said" -seed 1 > "$WORK/s1.txt" 2>&1 && $SAMPLE -sample "And God said" -seed 1 > "$WORK/s1b.txt" 2>&1 \
    && $SAMPLE -sample "And God said" -seed 2 > "$WORK/s2.txt" 2>&1
status=$?
text=$(continuation "$WORK/s1.txt")
[ $status -eq 0 ] && [ "${text#And God said}" != "$text" ] && [ ${#text} -gt 12 ] \
    && [ "$text" = "$(continuation "$WORK/s1b.txt")" ] && [ "$text" != "$(continuation "$WORK/s2.txt")" ]
check "-sample: continues the prompt; the same seed gives the same text, another seed another" $? "$(head -c 300 "$WORK/s1.txt")"
grep -q "^sample: 3 prompt tokens, 12 new" "$WORK/s1.txt"
check "-sample: 'And God said' is 3 GPT-2 tokens" $?
$SAMPLE -sample "And God said" -topk 1 -seed 1 > "$WORK/k1.txt" 2>&1 && $SAMPLE -sample "And God said" -topk 1 -seed 2 > "$WORK/k2.txt" 2>&1
[ $? -eq 0 ] && [ "$(continuation "$WORK/k1.txt")" = "$(continuation "$WORK/k2.txt")" ]
check "-sample -topk 1: greedy, so the seed changes nothing" $?
expect_error "-sample with a fresh model (a descriptor, not a file)" "-sample" $BIN -e L1C32H2 $TOK -sample "And God said"
expect_error "-sample with a prompt longer than the context" "-sample" $SAMPLE -t 4 -sample "In the beginning God created the heaven"
expect_error "-sample without a tokenizer" "$WORK/none.bin" $BIN -e "$WORK/gpt/model.bin" -z "$WORK/none.bin" -t 32 -sample "And God said"

# ----------------------------------------------------------------------------
# TF32: -tf32 auto (the default) turns it on where the trainer has it (the CUDA trainer on
# sm_80 and later, and through the CPU harness, whose device is sm_90); there a run raises no
# false alarm with every protected GEMM checked. Where it is missing (the CPU trainer),
# auto means fp32 and -tf32 1 is an error.

if $RUN -x 0 2> /dev/null | grep -q "^backend: .*TF32 tensor cores"; then
    $BIN -e L2C128H4V1000T64 $DATA -b 4 -t 64 -v 0 -s 0 -l 3e-3 -abft_quiet 1 -x 20 -tf32 1 -o "$WORK/tf32" > "$WORK/tf32.log" 2>&1
    [ "$(abft_report "$WORK/tf32" steps ops.qk.checked ops.qkv_dw.checked total.detected)" = "20 40 40 0" ]
    check "TF32: 20 steps of L2C128H4 on TF32 GEMMs, every protected GEMM checked, no false alarm" $?
else
    expect_error "-tf32 1 without TF32 tensor cores" "-tf32" $RUN -x 1 -tf32 1
fi

echo
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
