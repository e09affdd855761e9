#!/usr/bin/python3
"""
adaptive_frequency.py: how often to check each attention GEMM (train_gpt2 -abft_every), derived
from a fault rate, each op's measured vulnerability and each op's measured check cost; and the
trade-off that buys (check time against the fraction of injected faults caught), measured.

    /usr/bin/python3 scripts/adaptive_frequency.py                   # table + schedule for --rate
    /usr/bin/python3 scripts/adaptive_frequency.py --rate 0.3 --no-measure   # just the flag
    /usr/bin/python3 scripts/adaptive_frequency.py --types inf,nan --target 0.001

Inputs

    lambda  --rate: faults per hour of compute that land in the protected attention GEMMs. They
            are split evenly over the 12 ops, lambda/12 each, as `-fi rate=` does (every
            execution of every protected GEMM faults with the same probability, and each op runs
            once per layer per step).
    v_op    vulnerability: of the campaign's runs with one fault in op and ABFT OFF (fault types
            --types), the fraction that harmed training (non-trainable or degraded), read from
            scripts/fault_campaign.py's CSV (--campaign, default log_campaign/campaign.csv).
            When that file is missing, a reduced campaign runs first (one layer, one injection
            step: 122 runs, a few minutes) into OUT/campaign/.
    c_op    check cost: ms per training step spent in op's checksums and checks, from
            `train_gpt2 -bench N` (mean over its ABFT-on steps) on the same model and batch.

The rule. An op checked every n-th step (train_gpt2 checks it at the steps s with s % n == 0)
catches the faults that land in a checked step; a fault in an unchecked step is missed, and
harms training with probability v_op. The expected number of harmful undetected faults per hour
is therefore

    E = sum over ops of (lambda/12) · v_op · (1 - 1/n_op)

and the check cost per step is sum of c_op / n_op. We choose the intervals n_op in 1..--max-interval
that minimize the cost subject to E <= --target (harmful undetected faults per hour; default
0.01, one per 100 hours). In x = 1/n this is a fractional knapsack, solved exactly by a greedy
pass: relax the ops in decreasing order of c_op / (lambda/12 · v_op), the check time saved per
unit of harm risked (ops that are never harmful, v = 0, first), each to the largest interval
that keeps E within the target, until the budget is spent. So a rarely harmful or expensive op
is checked less often, and at a high enough fault rate every op is checked every step (the
trainer's default). Faults caught downstream (a NaN from an unchecked Q turns the check of S or
Y red and the ladder recomputes the layer) are not counted on: the rule is conservative.

Measurement. For every distinct schedule of the table (one per --rates value, and "every op every
step" if no rate gives it), the trainer runs --measure-steps steps in rate mode with it:

    train_gpt2 -e M -b B -t T -x S -fi rate=R,type=TYPE,seed=SEED -abft_every SCHEDULE

with the same seed for all schedules, so the same faults land at the same places (the fault RNG
is apart from the training RNG). R (--measure-rate) is far above any real rate so that enough
faults land in a short run; the fraction caught does not depend on R while faults are sparse.
Faults are counted from the trainer's event lines (`fault: step S layer L OP ...` and `abft: step
S layer L OP: fault detected ...`): caught in its own op, caught downstream in the same step, or
missed. TYPE defaults to bitflip, which checks always detect but which, missed, leaves training
alive (the campaign finds it benign at this scale), so every fault of the run gets counted. With
--measure-type nan, a missed fault in a backward op poisons the weights and the run is lost
(the trainer stops with `error: abft: step N still faulty after it was redone`): the table then
says where, and counts the faults up to there. The check time in the run is the trainer's own
ABFT report (LOGDIR/abft.json: ms per op, checks done) over the steps.

Overhead in wall time. At the default shape the checks are ~0.4% of a step (the 50257-word
output layer dominates), below the step-to-step noise of a 2-core machine, so wall-time
overheads are not measured here; `make bench` measures the full-step overhead at larger shapes.
The table gives the check time itself, measured twice: -bench's per-op cost weighted by 1/n, and
the time the trainer spent in checks during the measurement run.

Outputs in --out (default log_adaptive/): tradeoff.md (the table, also printed), tradeoff.csv,
schedule.txt (the -abft_every string for --rate). The default run takes 4 min 14 s on 2 cores
under a load average of 2-4, with the campaign CSV there; the reduced campaign that runs
without it takes about 5 minutes more.
"""

import argparse
import concurrent.futures
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_campaign as fc  # noqa: E402  (shared helpers: trainer/data resolution, errors, op names)

OPS = fc.OPS
HARMFUL = ("non-trainable", "degraded")
CSV_FIELDS = ("faults_per_hour", "abft_every", "check_ms_bench", "check_fraction", "harm_per_hour_rule", "check_ms_run",
              "injected", "caught_own", "caught_downstream", "missed", "harm_per_hour_measured", "steps", "lost")


# ----------------------------------------------------------------------------------------------
# reading the trainer's output

FAULT_LINE = re.compile(r"^fault: step (\d+) layer (\d+) (\w+): ")
DETECT_LINE = re.compile(r"^abft: step (\d+) layer (\d+) (\w+): fault detected")
STEP_LINE = re.compile(r"^step\s+(\d+)/(\d+): train loss (\S+) \(([0-9.]+) ms")


def read_report(logdir):
    """The ABFT counters a run wrote to LOGDIR/abft.json: {op: {checked, detected, corrected,
    recomputed, ms}}, plus the injected count and the steps it covers."""
    path = os.path.join(logdir, "abft.json")
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        fc.fail(path, "no readable ABFT report (%s)" % e, "is the trainer up to date? make train_gpt2")
    ops = {op: {"checked": c["checked"], "detected": c["detected"], "corrected": sum(c["repaired"].values()),
                "recomputed": c["recomputed"], "ms": c["ms"]} for op, c in r["ops"].items() if op in OPS}
    if len(ops) != len(OPS):
        fc.fail(path, "the report lacks ops %s" % ",".join(sorted(set(OPS) - set(ops))), "make train_gpt2")
    return {"ops": ops, "injected": r["injected"], "steps": r["steps"]}


def match_faults(text):
    """Every injected fault in order, each marked 'own' (detected by its op's check), 'downstream'
    (another check of the same step turned red after it) or 'missed'. Returns [(step, layer, op, how)]."""
    events = []
    for line in text.splitlines():
        for kind, rx in (("fault", FAULT_LINE), ("detect", DETECT_LINE)):
            m = rx.match(line)
            if m:
                events.append((kind, int(m.group(1)), int(m.group(2)), m.group(3)))
    # one detection per GEMM execution (several bad batch entries print several lines)
    dets, seen = [], set()
    for i, (kind, s, l, op) in enumerate(events):
        if kind == "detect" and (s, l, op) not in seen:
            seen.add((s, l, op))
            dets.append((i, s, l, op))
    used = set()
    faults = [(i, s, l, op) for i, (kind, s, l, op) in enumerate(events) if kind == "fault"]
    how = {}
    for i, s, l, op in faults:
        for d in dets:
            if d not in used and d[1:] == (s, l, op) and d[0] > i:
                used.add(d)
                how[i] = "own"
                break
    for i, s, l, op in faults:
        if i in how:
            continue
        for d in dets:
            if d not in used and d[1] == s and d[0] > i:
                used.add(d)
                how[i] = "downstream"
                break
    return [(s, l, op, how.get(i, "missed")) for i, s, l, op in faults]


def step_times(text):
    return [float(m.group(4)) for m in map(STEP_LINE.match, text.splitlines()) if m]


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "no output"


def run_trainer(cmd, threads, what, allow_fail=False):
    """The trainer's output (stdout and stderr); with allow_fail, (exit status, output)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = subprocess.run(cmd, cwd=fc.REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if allow_fail:
        return p.returncode, p.stdout
    if p.returncode != 0:
        fc.fail(what, "trainer exited with %d: %s" % (p.returncode, last_line(p.stdout)), "run by hand: " + " ".join(cmd))
    return p.stdout


# ----------------------------------------------------------------------------------------------
# the inputs: vulnerability (campaign CSV) and check cost (-bench)

def vulnerability(csv_path, types, model):
    """{op: (harmful fraction, runs)} from the ABFT-off runs of the campaign CSV."""
    counts = {op: [0, 0] for op in OPS}
    models = set()
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            if r.get("abft") != "0" or r.get("op") not in counts or r.get("outcome") not in fc.OUTCOMES:
                continue
            if types and r.get("type") not in types:
                continue
            models.add(r.get("model"))
            counts[r["op"]][0] += r["outcome"] in HARMFUL
            counts[r["op"]][1] += 1
    if models and models != {model}:
        print("warning: the campaign ran on %s, the schedule is for %s" % (",".join(sorted(models)), model))
    missing = [op for op in OPS if counts[op][1] == 0]
    if len(missing) == len(OPS):
        fc.fail(csv_path, "no ABFT-off runs of fault types %s" % ",".join(types or ["any"]),
                "run scripts/fault_campaign.py with those --types, or choose other --types")
    for op in missing:
        print("warning: no campaign runs of %s: taken as always harmful (v = 1)" % op)
    return {op: ((h / n, n) if n else (1.0, 0)) for op, (h, n) in counts.items()}


def bench_costs(a):
    """Per-op check ms per step and the ABFT-off/on step times: the median over --bench-runs runs
    of `-bench N` (each a mean over its ABFT-on steps; the median drops runs disturbed by other load)."""
    cmd = fc.trainer_cmd(a, "-bench", str(a.bench))
    runs = []
    for _ in range(a.bench_runs):
        out = run_trainer(cmd, a.threads, "-bench")
        m = re.search(r"step time: abft off ([0-9.]+) ms, abft on ([0-9.]+) ms", out)
        costs = {}
        for line in out.splitlines():
            mm = re.match(r"^\s+(\w+)\s+([0-9.]+) ms\s", line)
            if mm and mm.group(1) in OPS:
                costs[mm.group(1)] = float(mm.group(2))
        if m is None or len(costs) != len(OPS):
            fc.fail("-bench", "no per-op breakdown in the output", "is the trainer up to date? make train_gpt2")
        runs.append((costs, float(m.group(1)), float(m.group(2))))
    med = statistics.median
    return ({op: med(r[0][op] for r in runs) for op in OPS}, med(r[1] for r in runs), med(r[2] for r in runs))


# ----------------------------------------------------------------------------------------------
# the rule

def expected_harm(rate, vul, every):
    return sum(rate / len(OPS) * vul[op] * (1.0 - 1.0 / every[op]) for op in OPS)


def schedule(rate, vul, cost, target, cap):
    """Intervals minimizing sum(cost/n) subject to expected_harm <= target (see the top comment)."""
    every = {op: 1 for op in OPS}
    budget = target

    def merit(op):  # check time saved per unit of harm risked by relaxing op
        risk = rate / len(OPS) * vul[op]
        return math.inf if risk <= 0 else cost[op] / risk
    for op in sorted(OPS, key=merit, reverse=True):
        risk = rate / len(OPS) * vul[op]
        if risk <= 0:
            every[op] = cap
            continue
        frac = budget / risk  # the largest tolerable 1 - 1/n
        n = cap if frac >= 1.0 - 1.0 / cap else (1 if frac < 0.5 else int(math.floor(1.0 / (1.0 - frac) + 1e-9)))
        every[op] = max(1, min(cap, n))
        budget -= risk * (1.0 - 1.0 / every[op])
    return every


def every_flag(every):
    return ",".join("%s=%d" % (op, every[op]) for op in OPS if every[op] > 1)


# ----------------------------------------------------------------------------------------------

def get_args(argv):
    p = fc.Parser(prog="adaptive_frequency.py", description="Per-op ABFT check intervals from a fault rate, "
                  "vulnerability and check cost, and the measured trade-off (see the top of this file).",
                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    fc.add_trainer_args(p, "log_adaptive")
    p.add_argument("--campaign", default="log_campaign/campaign.csv", help="fault_campaign.py CSV (vulnerability)")
    p.add_argument("--types", default="", help="fault types whose campaign runs define the vulnerability (default: all)")
    p.add_argument("--rate", type=float, default=0.1, help="fault rate (faults per hour) for the printed -abft_every")
    p.add_argument("--rates", default="0.01,0.03,0.1,0.3,1", help="fault rates (per hour) of the trade-off table")
    p.add_argument("--target", type=float, default=0.01, help="allowed harmful undetected faults per hour")
    p.add_argument("--max-interval", type=int, default=16, help="the longest check interval (steps)")
    p.add_argument("--bench", type=int, default=10, help="trainer -bench repeats (check cost per op)")
    p.add_argument("--bench-runs", type=int, default=3, help="-bench runs; the median per op is taken")
    p.add_argument("--measure-type", default="bitflip", help="fault type of the measurement runs")
    p.add_argument("--measure-rate", type=float, default=0.01, help="-fi rate= of the measurement runs (per GEMM execution)")
    p.add_argument("--measure-steps", type=int, default=400, help="steps of each measurement run")
    p.add_argument("--seed", type=int, default=1, help="fault seed of the measurement runs")
    p.add_argument("--no-measure", action="store_true", help="only derive the schedule(s); run no measurements")
    p.add_argument("--jobs", type=int, default=1, help="measurement runs at a time (1: check times less disturbed)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per run (1: stable timings on a busy machine)")
    a = p.parse_args(argv)
    a.types = fc.parse_list("--types", a.types, fc.TYPES) if a.types else []
    a.rates = [float(x) for x in fc.parse_list("--rates", a.rates)]
    if a.measure_type not in fc.TYPES:
        fc.fail("--measure-type", "unknown type '%s'" % a.measure_type, "choose from " + " ".join(fc.TYPES))
    for flag, v in (("--rate", a.rate), ("--target", a.target)) + tuple(("--rates", r) for r in a.rates):
        if not (v >= 0 and math.isfinite(v)):
            fc.fail(flag, "%r is not a non-negative number" % v, "faults per hour, e.g. 0.1")
    if not 0 < a.measure_rate <= 1:
        fc.fail("--measure-rate", "%r is not in (0, 1]" % a.measure_rate, "a probability per GEMM execution, e.g. 0.01")
    for flag, v in (("--max-interval", a.max_interval), ("--bench", a.bench), ("--bench-runs", a.bench_runs),
                    ("--measure-steps", a.measure_steps), ("--jobs", a.jobs), ("--threads", a.threads)):
        if v < 1:
            fc.fail(flag, "%d is not positive" % v, "give a number >= 1")
    a.out = os.path.abspath(a.out)
    fc.resolve_trainer_args(a)
    return a


def campaign_csv(a):
    for path in (a.campaign, os.path.join(fc.REPO, a.campaign)):
        if os.path.exists(path):
            return path
    out = os.path.join(a.out, "campaign")
    path = os.path.join(out, "campaign.csv")
    if os.path.exists(path):
        print("campaign: %s not found, using %s" % (a.campaign, path))
        return path
    cmd = [sys.executable, os.path.join(fc.REPO, "scripts", "fault_campaign.py"), "--trainer", a.trainer,
           "--model", a.model, "--batch", str(a.batch), "--seq", str(a.seq), "--train", a.train, "--val", a.val,
           "--layers", "0", "--inject-steps", "2", "--out", out, "--overwrite"] + (["--types", ",".join(a.types)] if a.types else [])
    print("campaign: %s not found; running a reduced one (layer 0, injection step 2):\n  %s" % (a.campaign, " ".join(cmd)))
    sys.stdout.flush()
    if subprocess.call(cmd, cwd=fc.REPO, stdout=subprocess.DEVNULL) != 0 or not os.path.exists(path):
        fc.fail("fault_campaign.py", "the reduced campaign failed", "run the command above by hand")
    return path


def measure(a, every):
    cmd = fc.trainer_cmd(a, "-x", str(a.measure_steps), "-v", "0", "-s", "0",
                         "-fi", "rate=%g,type=%s,seed=%d" % (a.measure_rate, a.measure_type, a.seed))
    if every_flag(every):
        cmd += ["-abft_every", every_flag(every)]
    logdir = tempfile.mkdtemp(prefix="adaptive_frequency_")
    cmd += ["-o", logdir]
    status, out = run_trainer(cmd, a.threads, "measurement run", allow_fail=True)
    faults = match_faults(out)
    steps = len(step_times(out))
    if status != 0:
        # a missed fault that poisoned the weights: every later check fails, the ladder gives up
        if not last_line(out).startswith("error: abft"):
            fc.fail("measurement run", "trainer exited with %d: %s" % (status, last_line(out)), "run by hand: " + " ".join(cmd))
        shutil.rmtree(logdir, ignore_errors=True)
        return {"summary": None, "faults": faults, "steps": steps, "lost": "lost in step %d" % (steps + 1)}
    summ = read_report(logdir)
    shutil.rmtree(logdir, ignore_errors=True)
    if len(faults) != summ["injected"]:
        fc.fail("trainer output", "%d fault lines but the summary says injected %d" % (len(faults), summ["injected"]),
                "the event lines are needed: do not pass -abft_quiet")
    return {"summary": summ, "faults": faults, "steps": steps, "lost": ""}


def fmt_sched(every):
    return every_flag(every) or "(every op every step)"


def main(argv):
    a = get_args(argv)
    os.makedirs(a.out, exist_ok=True)
    csv_path = campaign_csv(a)
    vul_n = vulnerability(csv_path, a.types, a.model)
    vul = {op: vul_n[op][0] for op in OPS}
    print("bench: %s -e %s -b %d -t %d -bench %d, %d runs (OMP_NUM_THREADS=%d)" % (os.path.relpath(a.trainer), a.model, a.batch,
                                                                              a.seq, a.bench, a.bench_runs, a.threads))
    sys.stdout.flush()
    cost, step_off, step_on = bench_costs(a)
    total_cost = sum(cost.values())

    every_rate = schedule(a.rate, vul, cost, a.target, a.max_interval)
    lines = ["# Adaptive detection frequency: %s -e %s -b %d -t %d" % (os.path.basename(a.trainer), a.model, a.batch, a.seq), ""]
    lines.append("vulnerability: %s (ABFT-off runs, fault types %s); check cost: median of %d runs of -bench %d, step %.1f ms with ABFT off, "
                 "%.1f ms on; target: %g harmful undetected faults per hour; intervals 1..%d" %
                 (os.path.relpath(csv_path), ",".join(a.types) or "all", a.bench_runs, a.bench, step_off, step_on, a.target, a.max_interval))
    lines += ["", "| op | vulnerability (runs) | check ms/step | interval at %g faults/h |" % a.rate, "|---|---|---|---|"]
    for op in OPS:
        lines.append("| %s | %.2f (%d) | %.3f | %d |" % (op, vul[op], vul_n[op][1], cost[op], every_rate[op]))
    lines.append("| all | | %.3f (%.2f%% of the step) | |" % (total_cost, 100 * total_cost / step_off))

    rows = []
    for r in a.rates:
        rows.append(("%g" % r, schedule(r, vul, cost, a.target, a.max_interval), r))
    if not any(all(ev[op] == 1 for op in OPS) for _, ev, _ in rows):
        rows.append(("(any)", {op: 1 for op in OPS}, None))  # the trainer's default, for reference
    results = {}
    if not a.no_measure:
        distinct = []
        for _, ev, _ in rows:
            if fmt_sched(ev) not in [fmt_sched(d) for d in distinct]:
                distinct.append(ev)
        print("measuring %d schedules: %d steps each, -fi rate=%g,type=%s,seed=%d, %d at a time" %
              (len(distinct), a.measure_steps, a.measure_rate, a.measure_type, a.seed, a.jobs))
        sys.stdout.flush()
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
            for ev, res in zip(distinct, pool.map(lambda ev: measure(a, ev), distinct)):
                results[fmt_sched(ev)] = res

    lines += ["", "Trade-off. Predicted: from -bench's per-op cost and the rule. Measured: %d steps with "
              "`-fi rate=%g,type=%s,seed=%d` (the same faults in every run) and the schedule of the row." %
              (a.measure_steps, a.measure_rate, a.measure_type, a.seed), ""]
    head = ["faults/h", "-abft_every", "check ms/step (bench x 1/n)", "vs every step",
            "harmful undetected/h (rule)"]
    if results:
        head += ["check ms/step (in the run)", "injected", "caught own op", "downstream", "missed", "caught (expected)",
                 "harmful undetected/h (measured misses)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    csv_rows = []
    for label, ev, r in rows:
        c = sum(cost[op] / ev[op] for op in OPS)
        harm = expected_harm(r, vul, ev) if r is not None else 0.0
        cells = [label, "`%s`" % fmt_sched(ev), "%.3f (%.2f%%)" % (c, 100 * c / step_off), "%.0f%%" % (100 * c / total_cost),
                 "%.3g" % harm]
        row = {"faults_per_hour": label, "abft_every": every_flag(ev), "check_ms_bench": "%.4f" % c,
               "check_fraction": "%.4f" % (c / total_cost), "harm_per_hour_rule": "%.4g" % harm}
        res = results.get(fmt_sched(ev))
        if res:
            n = len(res["faults"])
            hows = [f[3] for f in res["faults"]]
            own, down, miss = hows.count("own"), hows.count("downstream"), hows.count("missed")
            run_ms = (sum(o["ms"] for o in res["summary"]["ops"].values()) / res["steps"]) if res["summary"] else float("nan")
            # the measured misses, as a harm rate at this fault rate: lambda · E[v_op · missed]
            mharm = (r * sum(vul[op] for _, _, op, how in res["faults"] if how == "missed") / n) if (n and r is not None) else 0.0
            # expected: the share of the run's steps at which each op is checked, averaged over ops
            st = max(1, res["steps"])
            expect = sum(math.ceil(st / ev[op]) / st for op in OPS) / len(OPS)
            cells += [res["lost"] or "%.3f" % run_ms, "%d" % n, "%d" % own, "%d" % down, "%d" % miss,
                      ("%.0f%% (%.0f%%)" % (100.0 * (own + down) / n, 100 * expect)) if n else "-", "%.3g" % mharm]
            row.update({"check_ms_run": "%.4f" % run_ms, "injected": n, "caught_own": own, "caught_downstream": down,
                        "missed": miss, "harm_per_hour_measured": "%.4g" % mharm, "steps": res["steps"], "lost": res["lost"]})
        lines.append("| " + " | ".join(cells) + " |")
        csv_rows.append(row)
    lines += ["", "-abft_every for %g faults/h: %s" % (a.rate, every_flag(every_rate) or "(none needed: every op every step)")]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    with open(os.path.join(a.out, "tradeoff.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "tradeoff.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS)
        w.writeheader()
        w.writerows(csv_rows)
    with open(os.path.join(a.out, "schedule.txt"), "w") as f:
        f.write(every_flag(every_rate) + "\n")
    print("-abft_every %s" % every_flag(every_rate) if every_flag(every_rate) else "no -abft_every: check every op every step")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except fc.Fail as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
