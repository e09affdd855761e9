#!/usr/bin/python3
"""
guard_zscores.py: the step guard's z-scores over a finished run, to choose -guard Z.

    /usr/bin/python3 scripts/guard_zscores.py LOGDIR/main.jsonl [more logs...]

The run must have logged the gradient norm, which the trainer computes only with the guard on:
train with -guard 1e6 (the guard on, never firing). For each log, replays the guard's statistic
(llmc/trainer.h: the mean and standard deviation of the last 64 steps, from the 16th step on)
and prints the largest z-score of the loss and of the gradient norm, and the steps where they
were reached. A -guard Z above every fault-free run's largest z never fires on those runs.
"""

import json
import math
import sys

WINDOW, WARMUP = 64, 16  # llmc/trainer.h: GUARD_WINDOW, GUARD_WARMUP


def zscores(values):
    """(z, step) of every value against the WINDOW values before it, once there are WARMUP."""
    out = []
    for i, x in enumerate(values):
        hist = values[max(0, i - WINDOW):i]
        if len(hist) < WARMUP:
            continue
        mean = sum(hist) / len(hist)
        std = math.sqrt(sum((h - mean) ** 2 for h in hist) / len(hist))
        out.append(((x - mean) / std if std > 0 else math.inf, i + 1))
    return out


def main(paths):
    if not paths:
        print("usage: guard_zscores.py LOGDIR/main.jsonl [...]", file=sys.stderr)
        return 1
    for path in paths:
        try:
            rows = [json.loads(line) for line in open(path) if line.strip()]
        except (OSError, ValueError) as e:
            print("error: %s: %s (hint: give a trainer's main.jsonl)" % (path, e), file=sys.stderr)
            return 1
        if not rows or rows[0].get("grad_norm") is None:
            print("error: %s: no gradient norms logged (hint: train with -guard 1e6)" % path, file=sys.stderr)
            return 1
        loss = zscores([r["loss"] for r in rows])
        norm = zscores([r["grad_norm"] for r in rows])
        lz, ls = max(loss) if loss else (math.nan, 0)
        nz, ns = max(norm) if norm else (math.nan, 0)
        print("%s: %d steps; largest z: loss %.2f (step %d), gradient norm %.2f (step %d)" % (path, len(rows), lz, ls, nz, ns))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
