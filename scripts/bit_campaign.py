#!/usr/bin/python3
"""
bit_campaign.py: finite corruptions, bit by bit: which single-bit flips in the output of a GEMM
(or of a kernel checked by an invariant) the checks detect, and what the ones they miss do to
training.

    /usr/bin/python3 scripts/bit_campaign.py                        # both tolerances, ~12 min
    /usr/bin/python3 scripts/bit_campaign.py --tols bound --seeds 1 --bits 16-31 --out log_b

Detection (phase 1). For each bit position (--bits) and fault seed (--seeds) the trainer runs
--steps steps with everything checked (-abft_scope all) and a fault in every execution of every
protected op, the 21 GEMMs and the 10 kernels checked by invariants:

    train_gpt2 -e L2C64H4 -b 4 -t 32 -x 10 -abft_scope all -abft_tol TOL \\
        -fi rate=1,type=bitflip,bit=BIT,seed=SEED -o DIR

Each fault flips that bit of one element (a live one: one the next kernel reads), and the
trainer logs it in DIR/faults.jsonl: the value before and after, the tolerance of its column's
check (a GEMM's; a kernel's fault has none of its own: its row's invariant has it), and whether
the check of that op found it. So each (op, bit) gets layers x steps x
seeds trials (the LM head's: steps x seeds). Every run is also compared with the fault-free
run: its loss deviation (the largest |loss - fault-free loss| / fault-free loss over the steps)
is what all of that bit's missed flips did together, the detected ones being repaired.

Effect of the misses (phase 2). For each op, its three highest bits with a miss in phase 1
(the misses that change a value most), one run each with that bit flipped in every execution of
that op only (-fi rate=1,op=OP,type=bitflip,bit=BIT,seed=1), ABFT on: how many of those flips
went undetected, and the run's loss deviation, which is what those misses did to training (the
detected flips are repaired).

--tols runs both phases with each checksum tolerance: bound (the fp32 worst case) and measured
(per-op factors from scripts/tolerance_study.py), for the before/after comparison.

Outputs in --out (default log_bits/): events.csv (every flip of phase 1), detection.csv (per
tolerance, op and bit: trials, detected, smallest detected relative error, largest missed
error / tolerance), effects.csv (phase 2), bits.md (the tables, also printed) and
detection.png (detection rate vs bit position, one line per op, a panel per tolerance).
"""

import argparse
import concurrent.futures
import csv
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_campaign as fc  # noqa: E402  (trainer/data resolution, errors, log reader)

GEMMS = fc.OPS + ("fc", "fcproj", "fcproj_dx", "fcproj_dw", "fc_dx", "fc_dw", "lm", "lm_dx", "lm_dw")
OPS = GEMMS + fc.KERNELS
EXPONENT = range(23, 31)
FRACTION = range(0, 23)
PHASE2_BITS = 3  # phase 2: this many bits per op and tolerance


def get_args(argv):
    p = fc.Parser(prog="bit_campaign.py", description="Single-bit flips in every protected op: detection "
                  "rate per bit and op, and the effect of the misses (see the top of this file).",
                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    fc.add_trainer_args(p, "log_bits")
    p.set_defaults(model="L2C64H4")
    p.add_argument("--steps", type=int, default=10, help="training steps per run")
    p.add_argument("--seeds", default="1,2,3", help="fault seeds (phase 1): trials per (op, bit) = layers x steps x seeds")
    p.add_argument("--bits", default="0-31", help="bit positions, e.g. 0-31 or 20,23,30")
    p.add_argument("--tols", default="bound,measured", help="trainer -abft_tol values to compare")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    a = p.parse_args(argv)
    a.seeds = fc.parse_list("--seeds", a.seeds, kind=int)
    a.tols = fc.parse_list("--tols", a.tols, ("bound", "measured"))
    a.bits = parse_bits(a.bits)
    for flag, v in (("--steps", a.steps), ("--jobs", a.jobs)):
        if v < 1:
            fc.fail(flag, "%d is not positive" % v, "give a number >= 1")
    fc.resolve_trainer_args(a)
    return a


def parse_bits(text):
    bits = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        lo, hi = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, -1)
        if not m or not 0 <= lo <= hi <= 31:
            fc.fail("--bits", "'%s' is not a bit position or range in 0-31" % part.strip(), "e.g. --bits 0-31 or 20,23-30")
        bits += [b for b in range(lo, hi + 1) if b not in bits]
    return bits


def run(a, tmp, tol, fault):
    """One training run; returns (losses, fault events)."""
    logdir = tempfile.mkdtemp(dir=tmp)
    cmd = fc.trainer_cmd(a, "-x", str(a.steps), "-v", "0", "-s", "0", "-abft_quiet", "1", "-abft_scope", "all",
                         "-abft_tol", tol, "-o", logdir)
    if fault:
        cmd += ["-fi", fault]
    p = subprocess.run(cmd, cwd=fc.REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        lines = (p.stderr or "").strip().splitlines()
        fc.fail(" ".join(cmd), "trainer exit status %d" % p.returncode, lines[-1] if lines else "run it by hand")
    losses = [float(r["loss"]) for r in fc.read_log(os.path.join(logdir, "main.jsonl"))]
    events_path = os.path.join(logdir, "faults.jsonl")
    events = fc.read_log(events_path) if os.path.exists(events_path) else []
    shutil.rmtree(logdir, ignore_errors=True)
    return losses, events


def deviation(losses, clean):
    """The largest relative distance of a loss curve from the fault-free one."""
    d = 0.0
    for x, y in zip(losses, clean):
        d = max(d, abs(x - y) / abs(y)) if math.isfinite(x) else math.inf
    return d


def relative_error(e):
    return abs(e["after"] - e["before"]) / abs(e["before"]) if e["before"] != 0 else math.inf


def detection_rows(a, events):
    """Per (tol, op, bit): trials, detected, smallest detected relative error, largest missed error/tolerance."""
    cells = {}
    for e in events:
        c = cells.setdefault((e["tol"], e["op"], e["bit"]), {"trials": 0, "detected": 0, "min_detected_rel": math.inf,
                                                            "max_missed_ratio": 0.0, "exp_missed": 0})
        c["trials"] += 1
        if e["detected"]:
            c["detected"] += 1
            c["min_detected_rel"] = min(c["min_detected_rel"], relative_error(e))
        else:
            if math.isfinite(e["tolerance"]):  # a kernel's fault has none of its own (its row's invariant has it)
                c["max_missed_ratio"] = max(c["max_missed_ratio"], e["error"] / e["tolerance"] if e["tolerance"] > 0 else math.inf)
            c["exp_missed"] += e["bit"] in EXPONENT
    return cells


def highest_misses(cells, count):
    """(tol, op, bit) of each op's `count` highest bits with a miss, per tolerance."""
    missed = {}
    for (t, o, b), c in cells.items():
        if c["detected"] < c["trials"]:
            missed.setdefault((t, o), []).append(b)
    return sorted((t, o, b) for (t, o), bits in missed.items() for b in sorted(bits)[-count:])


def share(cells, tol, op, bits):
    t = sum(cells.get((tol, op, b), {}).get("trials", 0) for b in bits)
    d = sum(cells.get((tol, op, b), {}).get("detected", 0) for b in bits)
    return "%.1f%%" % (100.0 * d / t) if t else "-"


def lowest_full_bit(cells, tol, op, bits):
    """The lowest bit b from which every flip of every bit up to 30 was detected."""
    low = None
    for b in sorted((b for b in bits if b <= 30), reverse=True):
        c = cells.get((tol, op, b))
        if c is None or c["detected"] < c["trials"]:
            break
        low = b
    return "-" if low is None else str(low)


def tables(a, cells, effects, bit_dev):
    lines = ["## Detection per op (%s, %d steps, seeds %s; every GEMM and kernel checked)" % (a.model, a.steps,
                                                                                            ",".join(map(str, a.seeds))),
             "",
             "| op | tol | fraction 0-22 | exponent 23-30 | sign 31 | all detected from bit | smallest detected rel. error "
             "| largest missed error / tol | exponent misses | worst effect of the misses |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for op in OPS:
        for tol in a.tols:
            mine = [c for (t, o, b), c in cells.items() if t == tol and o == op]
            if not mine:
                continue
            small = min(c["min_detected_rel"] for c in mine)
            missed = "%.2g" % max(c["max_missed_ratio"] for c in mine) if op in GEMMS else "-"
            exp_missed = sum(c["exp_missed"] for c in mine)
            eff = [x for (t, o, b), x in effects.items() if t == tol and o == op and x["missed"]]
            worst = "%.2g" % max(x["deviation"] for x in eff) if eff else "-"
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |" % (
                op, tol, share(cells, tol, op, FRACTION), share(cells, tol, op, EXPONENT), share(cells, tol, op, [31]),
                lowest_full_bit(cells, tol, op, a.bits), "%.2g" % small if math.isfinite(small) else "-", missed, exp_missed,
                worst))
    lines += ["",
              "Relative error: |after - before| / |before| of the flipped element. Missed error / tol: the flip's "
              "|after - before| over the tolerance of its column's check (a miss above 1 would be a check that let "
              "through more than its tolerance; a kernel's flip has no tolerance of its own). Worst effect of the misses: phase 2's largest loss deviation of a "
              "run with one of the op's three highest missed bits flipped in its every execution (the detected "
              "flips repaired).",
              "",
              "## Per bit: detection over all ops, and the loss deviation of the runs with every execution faulty",
              "",
              "| bit | " + " | ".join("detected (%s) | loss deviation (%s)" % (t, t) for t in a.tols) + " |",
              "|---:|" + "---:|---:|" * len(a.tols)]
    for b in a.bits:
        row = []
        for tol in a.tols:
            t = sum(c["trials"] for (tt, o, bb), c in cells.items() if tt == tol and bb == b)
            d = sum(c["detected"] for (tt, o, bb), c in cells.items() if tt == tol and bb == b)
            row += ["%.1f%%" % (100.0 * d / t) if t else "-", "%.2g" % bit_dev.get((tol, b), math.nan)]
        lines.append("| %d | %s |" % (b, " | ".join(row)))
    lines += ["", "Loss deviation: the largest over seeds of max over steps |loss - fault-free| / fault-free of a "
              "phase 1 run (that bit flipped in every execution of every op, the detected flips repaired)."]
    return lines


def plot(a, cells, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(a.tols), figsize=(7 * len(a.tols), 5), sharey=True, squeeze=False)
    # the attention's 12 GEMMs solid, the MLP's 6 dashed, the LM head's 3 dotted, the 10 kernels dash-dotted
    styles = [("-", plt.get_cmap("tab20")(k)) for k in range(12)] + \
             [("--", plt.get_cmap("Dark2")(k)) for k in range(6)] + [(":", c) for c in ("k", "tab:red", "tab:blue")] + \
             [("-.", plt.get_cmap("tab10")(k)) for k in range(10)]
    for ax, tol in zip(axes[0], a.tols):
        for op, (ls, color) in zip(OPS, styles):
            xs = [b for b in a.bits if (tol, op, b) in cells]
            ys = [100.0 * cells[(tol, op, b)]["detected"] / cells[(tol, op, b)]["trials"] for b in xs]
            if xs:
                ax.plot(xs, ys, marker=".", lw=1.2, ls=ls, color=color, label=op)
        ax.axvspan(22.5, 30.5, color="0.9", zorder=0)
        ax.set_title("-abft_tol %s" % tol)
        ax.set_xlabel("bit flipped (0-22 fraction, 23-30 exponent, 31 sign)")
        ax.set_xlim(-0.5, 31.5)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("detected (%)")
    axes[0][-1].legend(fontsize=6, ncol=3, loc="upper left")
    fig.suptitle("Single-bit flips in the outputs of GEMMs and kernels: detection rate by bit (%s)" % a.model)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv):
    a = get_args(argv)
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bits_", dir=a.out)
    try:
        return campaign(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def campaign(a, tmp):
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        clean = {tol: pool.submit(run, a, tmp, tol, None) for tol in a.tols}
        clean = {tol: f.result()[0] for tol, f in clean.items()}
        for tol in a.tols:
            if clean[tol] != clean[a.tols[0]]:
                print("note: fault-free losses differ between -abft_tol %s and %s: a false alarm's repair" % (a.tols[0], tol))
        jobs = {(tol, b, s): "rate=1,type=bitflip,bit=%d,seed=%d" % (b, s) for tol in a.tols for b in a.bits for s in a.seeds}
        print("phase 1: %d runs (%d bits x %d seeds x %d tolerances), %d at a time" % (len(jobs), len(a.bits), len(a.seeds),
                                                                                   len(a.tols), a.jobs), flush=True)
        futures = {pool.submit(run, a, tmp, key[0], spec): key for key, spec in jobs.items()}
        events, bit_dev = [], {}
        for n, f in enumerate(concurrent.futures.as_completed(futures), 1):
            tol, b, s = futures[f]
            losses, evs = f.result()
            for e in evs:
                e.update(tol=tol, seed=s)
            events += evs
            bit_dev[(tol, b)] = max(bit_dev.get((tol, b), 0.0), deviation(losses, clean[tol]))
            if n % 16 == 0 or n == len(futures):
                print("  %d/%d" % (n, len(futures)), flush=True)
        cells = detection_rows(a, events)
        todo = highest_misses(cells, PHASE2_BITS)
        print("phase 2: %d runs: each op's %d highest bits with a miss, flipped in that op alone" % (len(todo), PHASE2_BITS),
              flush=True)
        futures = {pool.submit(run, a, tmp, t, "rate=1,op=%s,type=bitflip,bit=%d,seed=1" % (o, b)): (t, o, b) for t, o, b in todo}
        effects = {}
        for f in concurrent.futures.as_completed(futures):
            t, o, b = futures[f]
            losses, evs = f.result()
            effects[(t, o, b)] = {"flips": len(evs), "missed": sum(not e["detected"] for e in evs),
                                  "deviation": deviation(losses, clean[t])}
    write_csvs(a, events, cells, effects)
    text = "\n".join(tables(a, cells, effects, bit_dev)) + "\n"
    print(text)
    with open(os.path.join(a.out, "bits.md"), "w") as f:
        f.write(text)
    plot(a, cells, os.path.join(a.out, "detection.png"))
    print("wrote %s/bits.md, detection.png, events.csv, detection.csv, effects.csv" % a.out)
    return 0


def write_csvs(a, events, cells, effects):
    keys = ("tol", "seed", "step", "layer", "op", "bit", "before", "after", "error", "tolerance", "detected")
    with open(os.path.join(a.out, "events.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        w.writerows([e[k] for k in keys] for e in events)
    with open(os.path.join(a.out, "detection.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("tol", "op", "bit", "trials", "detected", "min_detected_rel_error", "max_missed_error_over_tol"))
        for (t, o, b), c in sorted(cells.items()):
            w.writerow((t, o, b, c["trials"], c["detected"], "%.6g" % c["min_detected_rel"], "%.6g" % c["max_missed_ratio"]))
    with open(os.path.join(a.out, "effects.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("tol", "op", "bit", "flips", "missed", "loss_deviation"))
        for (t, o, b), x in sorted(effects.items()):
            w.writerow((t, o, b, x["flips"], x["missed"], "%.6g" % x["deviation"]))


if __name__ == "__main__":
    sys.exit(fc.run_main(lambda: main(sys.argv[1:])))
