#!/usr/bin/python3
"""
fault_campaign.py: the fault propagation study of the ATTNChecker paper, on train_gpt2.

For every protected attention GEMM (--ops), every fault type (--types), a few layers (--layers)
and injection steps (--inject-steps), it trains K steps (--steps) with exactly ONE injected fault

    ./train_gpt2 ... -fi op=OP,layer=L,step=S,type=TYPE,pattern=0d,seed=1

once with ABFT off (-abft 0) and once with ABFT on (-abft 1), plus one fault-free run for each
ABFT setting, and classifies every faulty run against the fault-free run of the same setting.

    /usr/bin/python3 scripts/fault_campaign.py                      # the default campaign
    /usr/bin/python3 scripts/fault_campaign.py --resume             # continue after Ctrl-C
    /usr/bin/python3 scripts/fault_campaign.py --ops qk,pv --types inf,nan --layers 0 \\
        --inject-steps 3 --steps 30 --out log_small
    /usr/bin/python3 scripts/fault_campaign.py --model d12 --layers 0,5,11 --steps 50 \\
        --trainer ./train_gpt2cu --jobs 1 --threads 16             # bigger, or another trainer

Outcomes (the loss of a step is what the trainer writes to DIR/main.jsonl):

    non-trainable  the loss is NaN or infinite at some step: training is dead (the fault reached
                   the weights or the optimizer state, and every later step is NaN).
    degraded       all losses are finite, but the final loss (the mean of the last 3 steps'
                   losses, to smooth batch-to-batch noise) is above the fault-free run's final
                   loss by more than the margin (--margin, default 1% relative).
    benign         finite and within the margin: the fault was masked or corrected.
    error          the trainer failed (non-zero exit or no log); its message is in the CSV.

The margin. Runs are deterministic: the same seed, data order and thread count give the same
losses to the last bit, so a faulty run differs from its fault-free twin only because of the
fault; the script checks this by printing how far the ABFT-off and ABFT-on fault-free runs are
apart (0 when ABFT corrects nothing). After ~20 steps of a small model the loss is ~9 nats and
falls by ~0.05 nats per step, so 1% (~0.09 nats) is about two steps of lost training: far above
floating-point noise (0 here, ~1e-6 relative across machines), small enough to flag a fault that
set training back measurably, and large enough that a fault which perturbed a few values and was
washed out by later updates counts as benign.

Outputs in --out (default log_campaign/):

    campaign.csv      one row per run, written as runs finish (Ctrl-C keeps finished runs;
                      --resume skips runs already there with the same model/steps/batch/seq)
    curves.jsonl      every run's per-step losses (used for the plots and for --resume)
    outcomes.md       the outcome table (also printed): % non-trainable / degraded / benign of
                      the runs of each op and fault type, with ABFT off and with ABFT on
    curve_OP.png      representative loss curves: fault-free, faulty with ABFT off, faulty with
                      ABFT on, for a few ops (--plot-ops)

How long. The default (L2C128H4, batch 4 x 32 tokens, 20 steps, 12 ops x 5 types x 2 layers x
2 injection steps x ABFT off/on = 480 faulty runs + 2 fault-free) takes 10 min 48 s on 2 idle
cores, two runs at a time with one thread each; under a load of ~3.5 it took 17m15s (wall):
23.5 CPU-minutes in all, ~2.1 s of wall time per run. --jobs 2 with 1 thread each beats --jobs 1
with 2 threads (~2 s vs ~8 s per run, measured on the same loaded machine): these GEMMs are too
small for two threads, and start-ups overlap.
"""

import argparse
import concurrent.futures
import csv
import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

OPS = ("qkv", "qk", "pv", "proj", "proj_dx", "proj_dw", "pv_dp", "pv_dv", "qk_dq", "qk_dk", "qkv_dx", "qkv_dw")
# the kernels checked by invariants with -abft_scope all (they have no checksum tolerance of their own)
KERNELS = ("ln1", "softmax", "res2", "ln2", "gelu", "res3", "lnf", "loss", "dlogits", "adamw")
TYPES = ("inf", "-inf", "nan", "nearinf", "bitflip")
PATTERNS = ("0d", "row", "col", "2d")
OUTCOMES = ("non-trainable", "degraded", "benign")
FIELDS = ("op", "type", "layer", "step", "abft", "outcome", "final_loss", "faultfree_final_loss",
          "rel_diff", "first_nonfinite_step", "detected", "corrected", "recomputed",
          "model", "steps", "batch", "seq", "pattern", "seed", "seconds", "note")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINAL_WINDOW = 3


class Fail(Exception):
    pass


def fail(what, reason, hint):
    raise Fail("error: %s: %s (hint: %s)" % (what, reason, hint))


def run_main(body):
    """A study script's main: runs body(); a Fail prints its one-line error (exit 1), Ctrl-C exits 130."""
    try:
        return body()
    except Fail as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write("error: command line: %s (hint: %s -h lists the flags)\n" % (message, self.prog))
        sys.exit(1)


def parse_list(flag, text, allowed=None, kind=str):
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        fail(flag, "empty list", "give comma-separated values, e.g. %s %s" % (flag, ",".join((allowed or ("0", "1"))[:2])))
    out = []
    for x in items:
        if allowed is not None and x not in allowed:
            fail(flag, "unknown value '%s'" % x, "choose from " + " ".join(allowed))
        if kind is int:
            try:
                v = int(x)
            except ValueError:
                fail(flag, "'%s' is not an integer" % x, "e.g. %s 0,1" % flag)
            if v < 0:
                fail(flag, "'%s' is negative" % x, "layers and steps count from 0")
            x = v
        if x not in out:
            out.append(x)
    return out


def model_layers(model):
    """Number of layers of a model spec, or None when it cannot be told (an llm.c .bin file)."""
    m = re.fullmatch(r"L(\d+)C\d+H\d+(V\d+)?(T\d+)?", model)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"d(\d+)", model)
    if m:
        return int(m.group(1))
    return None


def resolve_trainer(path):
    """The trainer binary as an absolute path: as given, on PATH, or relative to the repository."""
    trainer = path
    if os.sep not in trainer and shutil.which(trainer):
        trainer = shutil.which(trainer)
    if not os.path.isfile(trainer):
        alt = os.path.join(REPO, trainer)
        if not os.path.isabs(trainer) and os.path.isfile(alt):
            trainer = alt
        else:
            fail(path, "trainer binary not found", "build it with `make train_gpt2` in %s, or pass --trainer PATH" % REPO)
    if not os.access(trainer, os.X_OK):
        fail(path, "not executable", "chmod +x it, or rebuild with `make train_gpt2`")
    return os.path.abspath(trainer)


def resolve_shards(pattern, what):
    """A token-shard glob as an absolute glob that matches files (relative ones also from the repository)."""
    g = pattern
    if not glob.glob(g) and not os.path.isabs(g) and glob.glob(os.path.join(REPO, g)):
        g = os.path.join(REPO, g)
    if not glob.glob(g):
        hint = ("run `/usr/bin/python3 scripts/prepare_data.py` in %s to make the Bible shards" % REPO
                if "data/bible/" in g else "check the path, or make shards with scripts/prepare_data.py --text FILE")
        fail(pattern, "no %s shards match" % what, hint)
    return os.path.abspath(g)


def add_trainer_args(p, out):
    """The flags every study script shares: which trainer, where its output goes, model and data."""
    p.add_argument("--trainer", default="./train_gpt2", help="trainer binary (train_gpt2 flags)")
    p.add_argument("--out", default=out, help="output directory")
    p.add_argument("--model", default="L2C128H4", help="trainer -e")
    p.add_argument("--batch", type=int, default=4, help="trainer -b")
    p.add_argument("--seq", type=int, default=32, help="trainer -t")
    p.add_argument("--train", default="data/bible/train_*.bin", help="trainer -i (glob)")
    p.add_argument("--val", default="data/bible/val_*.bin", help="trainer -j (glob)")


def resolve_trainer_args(a):
    """Checks and resolves add_trainer_args' flags: absolute trainer and shard paths."""
    for flag, v in (("--batch", a.batch), ("--seq", a.seq)):
        if v < 1:
            fail(flag, "%d is not positive" % v, "give a number >= 1")
    a.trainer = resolve_trainer(a.trainer)
    a.train = resolve_shards(a.train, "train")
    a.val = resolve_shards(a.val, "val")


def trainer_cmd(a, *extra):
    """The trainer's command line for add_trainer_args' flags, then extra flags."""
    return [a.trainer, "-e", a.model, "-b", str(a.batch), "-t", str(a.seq), "-i", a.train, "-j", a.val] + list(extra)


def get_args(argv):
    p = Parser(prog="fault_campaign.py", description="Fault propagation campaign on train_gpt2 "
               "(see the docstring at the top of this file).",
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_trainer_args(p, "log_campaign")
    p.add_argument("--steps", type=int, default=20, help="training steps K per run")
    p.add_argument("--layers", default="0,1", help="layers to inject into (from 0)")
    p.add_argument("--inject-steps", default="2,10", help="steps to inject at (from 0, < --steps)")
    p.add_argument("--ops", default=",".join(OPS), help="ops")
    p.add_argument("--types", default=",".join(TYPES), help="fault types")
    p.add_argument("--pattern", default="0d", help="fault pattern: " + " ".join(PATTERNS))
    p.add_argument("--seed", type=int, default=1, help="fault seed (-fi seed=)")
    p.add_argument("--margin", type=float, default=0.01, help="relative final-loss margin for 'degraded'")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS per run (0: cores / jobs)")
    p.add_argument("--plot-ops", default="qk,pv,proj,qkv_dw", help="ops whose loss curves are plotted")
    p.add_argument("--resume", action="store_true", help="keep the runs already in campaign.csv")
    p.add_argument("--overwrite", action="store_true", help="start again even if campaign.csv exists")
    a = p.parse_args(argv)

    a.ops = parse_list("--ops", a.ops, OPS)
    a.types = parse_list("--types", a.types, TYPES)
    a.plot_ops = parse_list("--plot-ops", a.plot_ops, OPS)
    a.layers = parse_list("--layers", a.layers, kind=int)
    a.inject_steps = parse_list("--inject-steps", a.inject_steps, kind=int)
    if a.pattern not in PATTERNS:
        fail("--pattern", "unknown pattern '%s'" % a.pattern, "choose from " + " ".join(PATTERNS))
    if a.steps < FINAL_WINDOW:
        fail("--steps", "%d is fewer than %d" % (a.steps, FINAL_WINDOW), "the final loss is the mean of the last %d steps" % FINAL_WINDOW)
    bad = [s for s in a.inject_steps if s >= a.steps]
    if bad:
        fail("--inject-steps", "step %d is not below --steps %d" % (bad[0], a.steps), "steps count from 0; use steps < %d" % a.steps)
    n_layers = model_layers(a.model)
    if n_layers is None and not os.path.isfile(a.model):
        fail("--model", "'%s' is neither LxCyHz, dN nor a file" % a.model, "e.g. --model L2C128H4 or --model d12")
    if n_layers is not None:
        bad = [l for l in a.layers if l >= n_layers]
        if bad:
            fail("--layers", "layer %d does not exist in %s (%d layers)" % (bad[0], a.model, n_layers), "layers count from 0")
    for flag, v in (("--jobs", a.jobs),):
        if v < 1:
            fail(flag, "%d is not positive" % v, "give a number >= 1")
    if a.threads < 0:
        fail("--threads", "%d is negative" % a.threads, "0 picks cores / jobs")
    if not (a.margin >= 0.0 and math.isfinite(a.margin)):
        fail("--margin", "%r is not a non-negative number" % a.margin, "e.g. --margin 0.01 for 1%")
    if a.resume and a.overwrite:
        fail("--resume", "cannot be combined with --overwrite", "pick one")
    if a.threads == 0:
        a.threads = max(1, (os.cpu_count() or 1) // a.jobs)

    resolve_trainer_args(a)
    return a


# ----------------------------------------------------------------------------------------------

def run_key(op, typ, layer, step, abft):
    return (op, typ, int(layer), int(step), int(abft))


def config_of(a):
    return {"model": a.model, "steps": str(a.steps), "batch": str(a.batch), "seq": str(a.seq),
            "pattern": a.pattern, "seed": str(a.seed)}


def plan(a):
    runs = [run_key("none", "none", -1, -1, ab) for ab in (0, 1)]
    for op in a.ops:
        for typ in a.types:
            for layer in a.layers:
                for step in a.inject_steps:
                    for ab in (0, 1):
                        runs.append(run_key(op, typ, layer, step, ab))
    return runs


def read_log(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                # the trainer writes nan/inf/-inf unquoted, which json.loads accepts as NaN/Infinity
                line = re.sub(r"(?<![\w.])-?(nan|inf)\b", lambda m: ("-Infinity" if m.group(0).startswith("-") and "inf" in m.group(0)
                                                                   else "Infinity" if "inf" in m.group(0) else "NaN"), line)
                rows.append(json.loads(line))
    return rows


class Runner:
    def __init__(self, a, tmp):
        self.a, self.tmp = a, tmp
        self.lock = threading.Lock()
        self.procs = set()
        self.stopping = False

    def cmd(self, key, logdir):
        op, typ, layer, step, ab = key
        a = self.a
        c = trainer_cmd(a, "-x", str(a.steps), "-v", "0", "-s", "0", "-abft_quiet", "1", "-abft", str(ab), "-o", logdir)
        if op != "none":
            c += ["-fi", "op=%s,layer=%d,step=%d,type=%s,pattern=%s,seed=%d" % (op, layer, step, typ, a.pattern, a.seed)]
        return c

    def run(self, key):
        """Runs one training; returns (key, losses, counters, seconds, note)."""
        if self.stopping:
            return None
        logdir = os.path.join(self.tmp, "_".join(str(k) for k in key).replace("-", "m"))
        os.makedirs(logdir, exist_ok=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(self.a.threads))
        t0 = time.time()
        # a new process group (setsid): a Ctrl-C in the terminal reaches this script only, which
        # then stops the runs
        p = subprocess.Popen(self.cmd(key, logdir), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        with self.lock:
            self.procs.add(p)
        _, err = p.communicate()
        with self.lock:
            self.procs.discard(p)
        secs = time.time() - t0
        if self.stopping:
            return None
        note, losses, counters = "", [], (0, 0, 0)
        log = os.path.join(logdir, "main.jsonl")
        try:
            rows = read_log(log) if os.path.exists(log) else []
        except (ValueError, OSError) as e:
            rows, note = [], "unreadable log: %s" % e
        if rows:
            losses = [float(r["loss"]) for r in rows]
            last = rows[-1]
            counters = (int(last.get("abft_detected", 0)), int(last.get("abft_corrected", 0)), int(last.get("abft_recomputed", 0)))
        if p.returncode != 0 or len(losses) != self.a.steps:
            lines = [l for l in (err or "").strip().splitlines() if l.strip()]
            note = note or (lines[-1] if lines else "exit status %d, %d of %d steps logged" % (p.returncode, len(losses), self.a.steps))
            if not note.startswith("error"):
                note = "trainer exit %d: %s" % (p.returncode, note)
        shutil.rmtree(logdir, ignore_errors=True)  # model.bin is tens of MB; keep only the losses
        return key, losses, counters, secs, note

    def stop(self):
        self.stopping = True
        with self.lock:
            for p in list(self.procs):
                try:
                    p.kill()
                except OSError:
                    pass


def final_loss(losses):
    tail = losses[-FINAL_WINDOW:]
    return sum(tail) / len(tail)


def classify(losses, ff_final, margin):
    bad = [i + 1 for i, x in enumerate(losses) if not math.isfinite(x)]
    if bad:
        return "non-trainable", bad[0], float("nan"), float("nan")
    fl = final_loss(losses)
    rel = (fl - ff_final) / ff_final
    return ("degraded" if rel > margin else "benign"), "", fl, rel


def fmt_time(s):
    s = int(round(s))
    return "%dm%02ds" % (s // 60, s % 60) if s >= 60 else "%ds" % s


# ----------------------------------------------------------------------------------------------

def load_existing(a, csv_path, curves_path):
    """Rows and curves of finished runs of the same configuration (for --resume)."""
    cfg = config_of(a)
    rows, curves = {}, {}
    if os.path.exists(csv_path):
        with open(csv_path, newline="") as f:
            for r in csv.DictReader(f):
                if all(r.get(k) == v for k, v in cfg.items()) and r.get("outcome") != "error":
                    rows[run_key(r["op"], r["type"], r["layer"], r["step"], r["abft"])] = r
    if os.path.exists(curves_path):
        with open(curves_path) as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if all(str(d.get(k)) == v for k, v in cfg.items()):
                    curves[tuple(d["key"])] = [float(x) for x in d["losses"]]
    keep = {k: r for k, r in rows.items() if k in curves}
    return keep, {k: curves[k] for k in keep}


def write_table(a, rows, out_dir):
    lines = []
    lines.append("# Fault propagation study: train_gpt2 -e %s -b %d -t %d, %d steps, one fault per run" % (a.model, a.batch, a.seq, a.steps))
    lines.append("")
    lines.append("Each cell: %% of runs non-trainable / degraded / benign (n runs: %d layers x %d injection steps)." % (len(a.layers), len(a.inject_steps)))
    lines.append("non-trainable: NaN/inf loss at some step; degraded: mean loss of the last %d steps more than %.3g%% above "
                 "the fault-free run's; benign: otherwise. Layers %s, injection steps %s (from 0), pattern %s."
                 % (FINAL_WINDOW, 100 * a.margin, ",".join(map(str, a.layers)), ",".join(map(str, a.inject_steps)), a.pattern))
    for ab in (0, 1):
        lines.append("")
        lines.append("## ABFT %s" % ("off" if ab == 0 else "on"))
        lines.append("")
        lines.append("| op | " + " | ".join(a.types) + " | all |")
        lines.append("|---|" + "---|" * (len(a.types) + 1))

        def cell(sel):
            n = len(sel)
            if n == 0:
                return "-"
            c = [sum(1 for r in sel if r["outcome"] == o) for o in OUTCOMES]
            e = n - sum(c)
            s = "/".join("%d" % round(100.0 * x / n) for x in c)
            return s + (" (%d err)" % e if e else "")
        for op in a.ops + ["all"]:
            cells = []
            for typ in a.types + ["all"]:
                sel = [r for k, r in rows.items() if k[0] != "none" and k[4] == ab
                       and (op == "all" or k[0] == op) and (typ == "all" or k[1] == typ)]
                cells.append(cell(sel))
            lines.append("| %s | %s |" % ("**all**" if op == "all" else op, " | ".join(cells)))
        sel = [r for k, r in rows.items() if k[0] != "none" and k[4] == ab]
        det = sum(1 for r in sel if int(r["detected"] or 0) > 0)
        lines.append("")
        lines.append("runs: %d; runs where ABFT detected the fault: %d" % (len(sel), det))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "outcomes.md"), "w") as f:
        f.write(text)
    return text


def plot(a, rows, curves, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib missing, no plots (hint: apt-get install python3-matplotlib)")
        return []
    made = []
    for op in a.plot_ops:
        if op not in a.ops:
            continue
        # the representative fault: the first type (in --types order) that kills training
        # without ABFT, at the first layer and injection step; else the first type
        cand = [(t, a.layers[0], a.inject_steps[0]) for t in a.types]
        pick = None
        for t, l, s in cand:
            k = run_key(op, t, l, s, 0)
            if k in rows and rows[k]["outcome"] == "non-trainable":
                pick = (t, l, s)
                break
        if pick is None:
            pick = cand[0]
        t, l, s = pick
        series = [("fault-free", run_key("none", "none", -1, -1, 0), "k", "-"),
                  ("%s fault, ABFT off" % t, run_key(op, t, l, s, 0), "tab:red", "-"),
                  ("%s fault, ABFT on" % t, run_key(op, t, l, s, 1), "tab:green", "--")]
        if any(k not in curves for _, k, _, _ in series):
            continue
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for label, k, color, ls in series:
            ys = curves[k]
            xs = list(range(1, len(ys) + 1))
            outcome = rows[k]["outcome"] if k[0] != "none" else "reference"
            ax.plot(xs, [y if math.isfinite(y) else float("nan") for y in ys], color=color, ls=ls, marker=".",
                    label="%s (%s)" % (label, outcome))
            bad = [x for x, y in zip(xs, ys) if not math.isfinite(y)]
            if bad:
                ax.axvspan(bad[0] - 0.5, len(ys) + 0.5, color=color, alpha=0.12)
                ax.annotate("loss not finite from step %d" % bad[0], xy=(bad[0], 0.95), xycoords=("data", "axes fraction"),
                            color=color, fontsize=8, va="top")
        ax.axvline(s + 1, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("step (fault injected in step %d, dotted line)" % (s + 1))
        ax.set_ylabel("training loss")
        ax.set_title("%s, layer %d: %s fault (%s, %s)" % (op, l, t, a.model, a.pattern))
        ax.legend(fontsize=8, loc="lower left")
        fig.tight_layout()
        path = os.path.join(out_dir, "curve_%s.png" % op)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


# ----------------------------------------------------------------------------------------------

def main(argv):
    a = get_args(argv)
    out_dir = a.out
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        fail(out_dir, "cannot create the output directory: %s" % e.strerror, "choose a writable --out")
    csv_path = os.path.join(out_dir, "campaign.csv")
    curves_path = os.path.join(out_dir, "curves.jsonl")
    if os.path.exists(csv_path) and not (a.resume or a.overwrite):
        fail(csv_path, "exists from an earlier campaign", "--resume continues it, --overwrite starts again")

    done_rows, curves = load_existing(a, csv_path, curves_path) if a.resume else ({}, {})
    # rewrite the files with the kept runs only (drops error rows and runs of other configs)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for r in done_rows.values():
            w.writerow({k: r.get(k, "") for k in FIELDS})
    with open(curves_path, "w") as f:
        for k, ys in curves.items():
            f.write(json.dumps(dict(config_of(a), key=list(k), losses=ys)) + "\n")

    todo = [k for k in plan(a) if k not in done_rows]
    total = len(plan(a))
    print("fault campaign: %s -e %s -b %d -t %d -x %d; %d ops x %d types x %d layers x %d steps x ABFT off/on + 2 fault-free = %d runs"
          % (os.path.relpath(a.trainer), a.model, a.batch, a.seq, a.steps, len(a.ops), len(a.types), len(a.layers),
             len(a.inject_steps), total))
    print("degraded = final loss (mean of last %d steps) > fault-free final loss x (1 + %.4g); %d jobs x %d threads; output %s/"
          % (FINAL_WINDOW, a.margin, a.jobs, a.threads, out_dir))
    if a.resume:
        print("resume: %d runs already done, %d to go" % (total - len(todo), len(todo)))
    sys.stdout.flush()

    tmp = tempfile.mkdtemp(prefix="runs_", dir=out_dir)
    runner = Runner(a, tmp)
    csv_f = open(csv_path, "a", newline="")
    csv_w = csv.DictWriter(csv_f, FIELDS)
    curves_f = open(curves_path, "a")
    t_start = time.time()
    n_new = 0
    interrupted = False
    ff = {}  # abft -> fault-free final loss

    def record(res):
        nonlocal n_new
        key, losses, counters, secs, note = res
        op, typ, layer, step, ab = key
        if note or not losses:
            outcome, nf, fl, rel, ffl = "error", "", float("nan"), float("nan"), ff.get(ab, float("nan"))
        elif op == "none":
            bad = [i + 1 for i, x in enumerate(losses) if not math.isfinite(x)]
            if bad:
                fail("fault-free run (abft %d)" % ab, "loss not finite at step %d" % bad[0], "the model or learning rate diverges without faults; try a smaller model")
            fl = final_loss(losses)
            ff[ab] = fl
            outcome, nf, rel, ffl = "fault-free", "", 0.0, fl
        else:
            ffl = ff[ab]
            outcome, nf, fl, rel = classify(losses, ffl, a.margin)
        row = {"op": op, "type": typ, "layer": layer, "step": step, "abft": ab, "outcome": outcome,
               "final_loss": "%.6f" % fl, "faultfree_final_loss": "%.6f" % ffl, "rel_diff": "%.6f" % rel,
               "first_nonfinite_step": nf, "detected": counters[0], "corrected": counters[1], "recomputed": counters[2],
               "seconds": "%.2f" % secs, "note": note}
        row.update(config_of(a))
        csv_w.writerow(row)
        csv_f.flush()
        if losses:
            curves_f.write(json.dumps(dict(config_of(a), key=list(key), losses=[x if math.isfinite(x) else None for x in losses])).replace("null", "NaN") + "\n")
            curves_f.flush()
        if outcome != "error":
            done_rows[key] = {k: str(v) for k, v in row.items()}
            curves[key] = losses
        n_new += 1
        done = total - len(todo) + n_new
        el = time.time() - t_start
        eta = el / n_new * (len(todo) - n_new)
        what = "fault-free" if op == "none" else "%s %s L%d s%d" % (op, typ, layer, step)
        print("[%3d/%d] %3d%%  elapsed %s  eta %s  %-24s abft=%s -> %s%s"
              % (done, total, 100 * done // total, fmt_time(el), fmt_time(eta), what, "on " if ab else "off", outcome,
                 (" (%s)" % note) if note else ""))
        sys.stdout.flush()

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs)
    try:
        # fault-free runs first: every faulty run is classified against them
        base = [k for k in todo if k[0] == "none"]
        for ab in (0, 1):
            if ("none", "none", -1, -1, ab) in done_rows:
                ff[ab] = float(done_rows[("none", "none", -1, -1, ab)]["final_loss"])
        for res in pool.map(runner.run, base):
            if res[4] or not res[1]:
                fail(os.path.relpath(a.trainer), "fault-free run failed: %s" % res[4], "run the trainer by hand with the same flags: " + " ".join(runner.cmd(res[0], "DIR")))
            record(res)
        if 0 in ff and 1 in ff:
            print("fault-free final loss: ABFT off %.6f, ABFT on %.6f (relative difference %.2g: run-to-run noise floor)"
                  % (ff[0], ff[1], abs(ff[1] - ff[0]) / ff[0]))
        futs = [pool.submit(runner.run, k) for k in todo if k[0] != "none"]
        for fut in concurrent.futures.as_completed(futs):
            res = fut.result()
            if res is not None:
                record(res)
    except KeyboardInterrupt:
        interrupted = True
        runner.stop()
        pool.shutdown(wait=True, cancel_futures=True)
    finally:
        runner.stop() if interrupted else None
        pool.shutdown(wait=True)
        csv_f.close()
        curves_f.close()
        shutil.rmtree(tmp, ignore_errors=True)

    el = time.time() - t_start
    print()
    if interrupted:
        print("interrupted after %s: %d runs of %d are in %s (hint: rerun with --resume to continue)"
              % (fmt_time(el), len(done_rows), total, csv_path))
    else:
        print("finished %d runs in %s (wall)" % (n_new, fmt_time(el)))
    print()
    print(write_table(a, done_rows, out_dir))
    made = plot(a, done_rows, curves, out_dir)
    print("wrote %s, %s, %s%s" % (csv_path, curves_path, os.path.join(out_dir, "outcomes.md"),
                                   "".join(", " + p for p in made)))
    errors = [k for k in plan(a) if k not in done_rows]
    if errors and not interrupted:
        print("note: %d runs failed (outcome 'error' in the CSV); --resume retries them" % len(errors))
    return 130 if interrupted else 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL) if hasattr(signal, "SIGPIPE") else None
    try:
        sys.exit(main(sys.argv[1:]))
    except Fail as e:
        sys.stderr.write(str(e) + "\n")
        sys.exit(1)
