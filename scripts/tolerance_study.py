#!/usr/bin/python3
"""
tolerance_study.py: how close fault-free checks come to their tolerance, op by op, and the
per-op tolerances measured from it (the trainer's -abft_tol measured).

    /usr/bin/python3 scripts/tolerance_study.py                     # measure the residuals
    /usr/bin/python3 scripts/tolerance_study.py --tol measured      # false alarms with the
                                                                    # measured tolerances

Every check compares a column sum of a GEMM's output with its checksum (or a kernel's output
with its invariant: llmc/abft_invariants.h). Without a fault the two differ by rounding only;
the trainer records the largest difference of each op, in units of the fp32 worst case that
-abft_tol bound allows (its tolerance with tau = 1: (K + n + 2)·u times the column's Σ|A|·|B|;
a kernel's: its invariant's), over the checks that found nothing (LOGDIR/abft.json: "residual"
and "residual_checks"). This script trains the runs below fault-free on the Bible data with
every GEMM and kernel checked (-abft_scope all), one training each, two at a time:

    train600   make train's model and run: -e L4C256H4 -b 8 -t 64 -x 600 -l 1e-3
    rate1000   the rate study's: -e L2C128H4 -b 4 -t 32 -x 1000
    odd300     odd shapes, as the tests use: -e L3C96H3 -b 3 -t 37 -x 300 -l 1e-3

With --tol bound (the default) it prints and writes OUT/residuals.md and OUT/residuals.csv: per
op the largest residual of each run, the largest of all, and the measured tolerance factor:
20 × that largest residual, rounded down to two significant digits, and never above the
bound's tau (2: where 20 × the residual is more, measuring gains nothing): what abft.cuh's
abft_measured_tau holds.

With --tol measured it trains, with those factors, runs they were not measured on (the
trainer is deterministic: rerunning the runs above could not raise an alarm), and the table
gives the false alarms (checks that found a "fault" in a fault-free run: any is a failure)
and the checks made:

    seed300    make train's model, another init: -e L4C256H4 -b 8 -t 64 -x 300 -l 1e-3 -seed 7
    wide100    wider, longer reductions: -e L2C384H6 -b 4 -t 128 -x 100 -l 1e-3 -seed 11
    odd400     odd shapes: -e L2C80H5 -b 5 -t 29 -x 400 -l 1e-3 -seed 3

How long: --tol bound 18 min on 2 cores (train600 is most of it: ~1.4 s a step with every
GEMM checked on one core); --tol measured 8 min.
"""

import argparse
import concurrent.futures
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_campaign as fc  # noqa: E402  (trainer/data resolution, errors)

RUNS = {  # the runs the factors are measured on (--tol bound)
    "train600": "-e L4C256H4 -b 8 -t 64 -x 600 -l 1e-3",
    "rate1000": "-e L2C128H4 -b 4 -t 32 -x 1000",
    "odd300": "-e L3C96H3 -b 3 -t 37 -x 300 -l 1e-3",
}
HELD_OUT = {  # runs they were not measured on: other inits, shapes, batches (--tol measured)
    "seed300": "-e L4C256H4 -b 8 -t 64 -x 300 -l 1e-3 -seed 7",
    "wide100": "-e L2C384H6 -b 4 -t 128 -x 100 -l 1e-3 -seed 11",
    "odd400": "-e L2C80H5 -b 5 -t 29 -x 400 -l 1e-3 -seed 3",
}
MARGIN = 20.0  # the measured tolerance: at most this many times the largest fault-free residual
BOUND_TAU = 2.0  # -abft_tau's default: the bound's factor, the most a measured one may be


def get_args(argv):
    p = fc.Parser(prog="tolerance_study.py", description="Fault-free check residuals per op, and the "
                  "tolerances measured from them (see the top of this file).",
                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--trainer", default="./train_gpt2", help="trainer binary (train_gpt2 flags)")
    p.add_argument("--out", default="log_tolerance", help="output directory")
    p.add_argument("--train", default="data/bible/train_*.bin", help="trainer -i (glob)")
    p.add_argument("--val", default="data/bible/val_*.bin", help="trainer -j (glob)")
    p.add_argument("--tol", default="bound", choices=("bound", "measured"), help="trainer -abft_tol")
    p.add_argument("--runs", help="which runs (default: %s with --tol bound, %s with --tol measured)"
                   % (",".join(RUNS), ",".join(HELD_OUT)))
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    a = p.parse_args(argv)
    a.runs = fc.parse_list("--runs", a.runs or ",".join(RUNS if a.tol == "bound" else HELD_OUT), tuple(RUNS) + tuple(HELD_OUT))
    if a.jobs < 1:
        fc.fail("--jobs", "%d is not positive" % a.jobs, "give a number >= 1")
    a.trainer = fc.resolve_trainer(a.trainer)
    a.train = fc.resolve_shards(a.train, "train")
    a.val = fc.resolve_shards(a.val, "val")
    return a


def train(a, name):
    """One fault-free run; returns its abft.json."""
    out = os.path.join(a.out, name + "_" + a.tol)
    cmd = [a.trainer] + dict(RUNS, **HELD_OUT)[name].split() + ["-i", a.train, "-j", a.val, "-v", "0", "-s", "0", "-abft_quiet", "1",
                                              "-abft_scope", "all", "-abft_tol", a.tol, "-o", out]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(out + ".log", "w") as log:
        status = subprocess.call(cmd, cwd=fc.REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    if status != 0:
        fc.fail(" ".join(cmd), "trainer exit status %d" % status, "see %s.log" % out)
    with open(os.path.join(out, "abft.json")) as f:
        report = json.load(f)
    os.remove(os.path.join(out, "model.bin"))  # tens of MB; the report is what counts
    return report


def round_down(x, digits=2):
    """x rounded down to `digits` significant digits."""
    if x <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return math.floor(x / scale + 1e-9) * scale


def residual_table(a, reports):
    ops = list(next(iter(reports.values()))["ops"])
    lines = ["| op | " + " | ".join(reports) + " | largest | measured tau (≤ %g×, ≤ %g) |" % (MARGIN, BOUND_TAU),
             "|---|" + "---:|" * (len(reports) + 2)]
    rows = []
    for op in ops:
        worst = [r["ops"][op]["residual"] for r in reports.values()]
        tau = min(BOUND_TAU, round_down(MARGIN * max(worst))) if max(worst) > 0 else BOUND_TAU  # 0: not measured
        rows.append((op, worst, max(worst), tau))
        shown = "%.2g" % tau if op not in fc.KERNELS else "- (keeps %g)" % BOUND_TAU  # the trainer measures GEMMs only
        lines.append("| %s | %s | %.3g | %s |" % (op, " | ".join("%.3g" % w for w in worst), max(worst), shown))
    checks = sum(r["ops"][op]["residual_checks"] for r in reports.values() for op in ops)
    lines.append("")
    lines.append("Residual: the largest |column sum − checksum| of a fault-free check, in units of the fp32 "
                 "worst case (-abft_tol bound's tolerance at tau = 1); for a kernel, its invariant's deviation in "
                 "units of its worst case (GELU's and AdamW's are bounds: 0 inside). %d checks over %d runs."
                 % (checks, len(reports)))
    with open(os.path.join(a.out, "residuals.csv"), "w") as f:
        f.write("op," + ",".join(reports) + ",largest,measured_tau\n")
        for op, worst, top, tau in rows:
            f.write("%s,%s,%.6g,%.6g\n" % (op, ",".join("%.6g" % w for w in worst), top, tau))
    return lines, "residuals.md"


def alarm_table(a, reports):
    ops = list(next(iter(reports.values()))["ops"])
    lines = ["| op | tau | " + " | ".join("%s: alarms / checks, residual / tau" % n for n in reports) + " |",
             "|---|---:|" + "---:|" * len(reports)]
    alarms = checks = 0
    for op in ops:
        cells = []
        for r in reports.values():
            o = r["ops"][op]
            cells.append("%d / %d, %.2f" % (o["detected"], o["checked"], o["residual"] / o["tau"]))
            alarms += o["detected"]
            checks += o["checked"]
        lines.append("| %s | %g | %s |" % (op, next(iter(reports.values()))["ops"][op]["tau"], " | ".join(cells)))
    lines.append("")
    lines.append("-abft_tol measured, fault-free: %d false alarms in %d checks. Residual / tau: how close the "
                 "closest check came to an alarm (1 is the tolerance)." % (alarms, checks))
    return lines, "alarms.md"


def main(argv):
    a = get_args(argv)
    os.makedirs(a.out, exist_ok=True)
    print("tolerance study: %s, -abft_tol %s, %d at a time" % (" ".join(a.runs), a.tol, a.jobs), flush=True)
    reports = {}
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        futures = {pool.submit(train, a, name): name for name in a.runs}
        for done in concurrent.futures.as_completed(futures):
            reports[futures[done]] = done.result()
            print("  %s done" % futures[done], flush=True)
    reports = {name: reports[name] for name in a.runs}
    lines, name = (residual_table if a.tol == "bound" else alarm_table)(a, reports)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(a.out, name), "w") as f:
        f.write(text)
    print("wrote %s" % os.path.join(a.out, name))
    return 0

if __name__ == "__main__":
    sys.exit(fc.run_main(lambda: main(sys.argv[1:])))
