#!/usr/bin/python3
"""
recovery_cost.py: what one fault costs to recover from, ABFT against checkpoint/restore, measured
on the same trainer, model, data and fault.

    /usr/bin/python3 scripts/recovery_cost.py [--trainer ./train_gpt2] [--intervals 10,20,40]

For each fault and each checkpoint interval N it runs the trainer twice:

  ABFT          -abft 1: the fault is detected and repaired in place; the cost is the time the
                trainer spent in repairs and recomputed GEMMs ("time in repairs ..." line).
  rollback      -abft 0 -rollback 1 -n N: the fault makes the loss or the parameters non-finite,
                training reloads the last checkpoint and recomputes; the cost is the time of the
                discarded steps plus the reload ("time lost" line). The fault is injected in the
                middle of an interval (step 2N + N/2), the expected case. A fault that leaves
                everything finite (e.g. a bit flip to a large finite value) is never seen by
                this detector: the table says "missed" and training goes on silently degraded.

It also reports what each approach costs when nothing goes wrong: the mean time to write one
checkpoint (rollback) — the per-step cost of ABFT's checks is `make bench`'s figure.
Takes about 3 minutes on 2 cores with the defaults. Prints a markdown table.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

FAULTS = [  # (op, type, pattern)
    ("qk", "inf", "row"),
    ("pv_dv", "nan", "0d"),
    ("qkv_dw", "-inf", "col"),
    ("proj", "bitflip", "0d"),
]


def fail(where, reason, hint):
    print(f"error: {where}: {reason} (hint: {hint})", file=sys.stderr)
    sys.exit(1)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        fail(cmd[0], f"exited with {p.returncode}: {p.stdout.strip().splitlines()[-1:]}", "run the command by hand to see why")
    return p.stdout


def number(pattern, text, what):
    m = re.search(pattern, text)
    if m is None:
        fail("trainer output", f"no '{what}' line", "is the trainer up to date? make train_gpt2")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description="recovery cost: ABFT vs checkpoint/restore")
    ap.add_argument("--trainer", default="./train_gpt2")
    ap.add_argument("--model", default="L4C256H4")
    ap.add_argument("--data", default="data/bible")
    ap.add_argument("--intervals", default="10,20,40", help="checkpoint intervals, comma separated")
    args = ap.parse_args()
    if not os.access(args.trainer, os.X_OK):
        fail(args.trainer, "not found or not executable", "build it with: make train_gpt2")
    if not os.path.exists(os.path.join(args.data, "train_000.bin")):
        fail(args.data, "no train_000.bin", "prepare it with: /usr/bin/python3 scripts/prepare_data.py")
    try:
        intervals = [int(x) for x in args.intervals.split(",")]
    except ValueError:
        fail("--intervals", f"not a list of integers: {args.intervals}", "e.g. --intervals 10,20,40")
    base = [args.trainer, "-e", args.model, "-b", "4", "-t", "64", "-l", "1e-3", "-v", "0", "-s", "0", "-abft_quiet", "1",
            "-i", os.path.join(args.data, "train_*.bin"), "-j", os.path.join(args.data, "val_*.bin")]
    rows = []
    checkpoint_costs = []
    for op, ftype, pattern in FAULTS:
        row = {"fault": f"{op} {ftype} {pattern}"}
        for n in intervals:
            step = 2 * n + n // 2
            spec = f"op={op},layer=1,step={step},type={ftype},pattern={pattern},seed=1"
            with tempfile.TemporaryDirectory() as log:
                out = run(base + ["-x", str(step + 3), "-abft", "0", "-rollback", "1", "-n", str(n), "-o", log, "-fi", spec])
            lost = number(r"rollbacks: \d+, steps recomputed \d+, time lost ([0-9.]+) s", out, "rollbacks")
            rollbacks = number(r"rollbacks: (\d+),", out, "rollbacks")
            k = number(r"(\d+) checkpoints written", out, "checkpoints")
            checkpoint_costs.append(number(r"checkpoints written in ([0-9.]+) s", out, "checkpoints") / k)
            row[n] = lost if rollbacks > 0 else None
            print(f"  {row['fault']}, checkpoint every {n}: " + (f"{lost:.3f} s lost" if rollbacks else "missed"), flush=True)
        spec = f"op={op},layer=1,step=5,type={ftype},pattern={pattern},seed=1"
        out = run(base + ["-x", "6", "-abft", "1", "-fi", spec])
        row["abft"] = number(r"time in repairs and recomputed GEMMs ([0-9.]+) ms", out, "repairs") / 1e3
        print(f"  {row['fault']}, ABFT: {1e3 * row['abft']:.3f} ms", flush=True)
        rows.append(row)

    print()
    head = "| fault (layer 1) | ABFT repair | " + " | ".join(f"rollback, checkpoint every {n} | ratio" for n in intervals) + " |"
    print(head)
    print("|" + "---|" * (2 + 2 * len(intervals)))
    for r in rows:
        cells = [r["fault"], f"{1e3 * r['abft']:.3f} ms"]
        for n in intervals:
            if r[n] is None:
                cells += ["missed (all finite)", "-"]
            else:
                cells += [f"{r[n]:.2f} s", f"{r[n] / max(r['abft'], 1e-9):,.0f}x"]
        print("| " + " | ".join(cells) + " |")
    print(f"\nmean time to write one checkpoint: {sum(checkpoint_costs) / len(checkpoint_costs):.2f} s "
          f"(model {args.model}, paid every N steps even when nothing goes wrong)")


if __name__ == "__main__":
    main()
