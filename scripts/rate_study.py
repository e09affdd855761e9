#!/usr/bin/python3
"""
rate_study.py: random faults at a fixed rate over one long run, with ATTNChecker on and off.

    /usr/bin/python3 scripts/rate_study.py                          # 1000 steps, bitflip and nan
    /usr/bin/python3 scripts/rate_study.py --types inf --rate 1e-3 --steps 2000 --out log_rate2

For each fault type (--types) the same run is trained three times (same data, same init, same
seed of the fault RNG, so the same faults land at the same GEMM executions):

    fault-free     train_gpt2 -e M -b B -t T -x S -v V -m 5 -s 0 -o OUT/faultfree
    ABFT on        ... -fi rate=R,type=TYPE,seed=SEED -o OUT/TYPE_on
    ABFT off       ... -fi rate=R,type=TYPE,seed=SEED -abft 0 -o OUT/TYPE_off

(the fault-free run is shared by the types). R is the probability that one execution of one
protected GEMM faults; there are 12 x layers executions per step, so about R x 12 x L x S faults
land in a run (~12 at the defaults: 5e-4 x 24 x 1000).

Reported (printed, and written to OUT/summary.md and OUT/summary.csv):

  - every fault of the ABFT-on run with what ATTNChecker did about it (the trainer's event
    lines), and the trainer's totals (injected, detected, corrected, recomputed);
  - ABFT on: the largest difference of its loss curve from the fault-free one;
  - ABFT off, classified as in scripts/fault_campaign.py: lost (a non-finite loss at some step:
    training is dead), degraded (the final loss, the mean training loss of the last
    --final-window steps, default 50, is more than --margin above the fault-free run's; 1% by
    default, the campaign's margin), or benign. The runs see the same batches in the same order
    and the trainer is deterministic, so the fault-free and faulty means compare like with like:
    without faults the difference is exactly 0. The final validation losses are given next to it.

OUT/loss.png: the three training-loss curves per fault type (one panel each; faint: every step,
bold: a 25-step moving average), the fault steps marked. With the defaults (five 1000-step runs of
~0.12 s per step, two at a time) that is ~6 minutes of 2 idle cores, 11 min 35 s on 2 cores
under a load average of ~4.
"""

import argparse
import concurrent.futures
import csv
import math
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_campaign as fc  # noqa: E402  (trainer/data resolution, errors, classification)
import adaptive_frequency as af  # noqa: E402  (reading the trainer's event lines and summary)
import plot_loss  # noqa: E402  (the log reader and matplotlib)

CORRECT_LINE = re.compile(r"^abft: step (\d+) layer (\d+) (\w+): fault detected in batch entry \d+, (.*)$")
SMOOTH = 25


def get_args(argv):
    p = fc.Parser(prog="rate_study.py", description="Rate-mode faults over a long run, ABFT on and off "
                  "(see the top of this file).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    fc.add_trainer_args(p, "log_rate")
    p.add_argument("--steps", type=int, default=1000, help="training steps")
    p.add_argument("--rate", type=float, default=5e-4, help="-fi rate=: fault probability per protected GEMM execution")
    p.add_argument("--types", default="bitflip,nan", help="fault types, one trio of runs each")
    p.add_argument("--seed", type=int, default=1, help="-fi seed=")
    p.add_argument("--val-every", type=int, default=100, help="trainer -v")
    p.add_argument("--val-batches", type=int, default=5, help="trainer -m")
    p.add_argument("--margin", type=float, default=0.01, help="relative final-loss margin for 'degraded'")
    p.add_argument("--final-window", type=int, default=50, help="the final loss is the mean of the last N steps")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per run")
    a = p.parse_args(argv)
    a.types = fc.parse_list("--types", a.types, fc.TYPES)
    if not 0 < a.rate <= 1:
        fc.fail("--rate", "%r is not in (0, 1]" % a.rate, "a probability per GEMM execution, e.g. 5e-4")
    if not (a.margin >= 0 and math.isfinite(a.margin)):
        fc.fail("--margin", "%r is not a non-negative number" % a.margin, "e.g. 0.01 for 1%")
    for flag, v in (("--steps", a.steps), ("--jobs", a.jobs),
                    ("--threads", a.threads), ("--val-batches", a.val_batches), ("--final-window", a.final_window)):
        if v < 1:
            fc.fail(flag, "%d is not positive" % v, "give a number >= 1")
    if a.steps < a.final_window:
        fc.fail("--steps", "%d is fewer than --final-window %d" % (a.steps, a.final_window), "the final loss is a mean over the last steps")
    a.out = os.path.abspath(a.out)
    fc.resolve_trainer_args(a)
    return a


def command(a, name, typ, abft):
    c = fc.trainer_cmd(a, "-x", str(a.steps), "-v", str(a.val_every), "-m", str(a.val_batches), "-s", "0",
                       "-abft", str(abft), "-o", os.path.join(a.out, name))
    if typ is not None:
        c += ["-fi", "rate=%g,type=%s,seed=%d" % (a.rate, typ, a.seed)]
    return c


def run(a, name, typ, abft):
    """One training run: its log records, stdout, and the faults its event lines show."""
    cmd = command(a, name, typ, abft)
    text = af.run_trainer(cmd, a.threads, name)
    with open(os.path.join(a.out, name + ".txt"), "w") as f:
        f.write(" ".join(cmd) + "\n" + text)
    records = plot_loss.parse_log(os.path.join(a.out, name, "main.jsonl"))
    try:
        os.unlink(os.path.join(a.out, name, "model.bin"))  # tens of MB; the losses are what is studied
    except OSError:
        pass
    if len(records) != a.steps:
        fc.fail(name, "%d of %d steps logged" % (len(records), a.steps), "see %s.txt" % os.path.join(a.out, name))
    return {"name": name, "type": typ, "abft": abft, "records": records, "text": text,
            "losses": [r["loss"] for r in records], "faults": af.match_faults(text)}


def final(res, window):
    """Mean training loss of the last `window` steps (NaN when any of them is not finite)."""
    tail = res["losses"][-window:]
    return sum(tail) / len(tail)


def val_final(res):
    # from the printed lines: the log writes a non-finite validation loss as null
    vals = re.findall(r"^val loss (\S+)", res["text"], re.M)
    return float(vals[-1]) if vals else float("nan")


def pct(x, ref):
    return "%+.2f%%" % (100 * (x - ref) / ref) if math.isfinite(x) else "-"


def outcome(a, res, ff):
    """ABFT off: lost / degraded / benign; ABFT on: how far its curve is from the fault-free one."""
    if res["abft"]:
        diff = max(abs(x - y) for x, y in zip(res["losses"], ff["losses"]))
        return "largest loss difference from the fault-free run at any step: %.2g" % diff
    bad = [r["step"] for r in res["records"] if not math.isfinite(r["loss"])]
    if bad:
        return "**lost**: loss not finite from step %d on" % bad[0]
    r = (final(res, a.final_window) - final(ff, a.final_window)) / final(ff, a.final_window)
    if r > a.margin:
        return "**degraded**: final loss %+.1f%% (margin %g%%)" % (100 * r, 100 * a.margin)
    return "benign: final loss %+.2f%% (within the %g%% margin)" % (100 * r, 100 * a.margin)


def report(a, ff, trios):
    w = a.final_window
    ff_final, ff_val = final(ff, w), val_final(ff)
    n_execs = 12 * (fc.model_layers(a.model) or 0) * a.steps
    lines = ["# Rate-mode faults over one run: %s -e %s -b %d -t %d, %d steps, -fi rate=%g (seed %d)"
             % (os.path.basename(a.trainer), a.model, a.batch, a.seq, a.steps, a.rate, a.seed), ""]
    if n_execs:
        lines.append("%d protected GEMM executions per run in training steps, so %.1f faults expected there (validation "
                     "passes run them too). " % (n_execs, n_execs * a.rate))
    lines.append("Fault-free run: final loss (mean training loss of the last %d steps) %.4f, final validation loss %.4f, "
                 "ABFT alarms %d. Same data, init and fault seed in every run." % (w, ff_final, ff_val, ff["records"][-1]["abft_detected"]))
    lines += ["", "| fault type | ABFT | faults injected | detected | corrected | recomputed | final loss | vs fault-free "
              "| final val loss | vs fault-free | outcome |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for typ, on, off in trios:
        for res in (on, off):
            last = res["records"][-1]
            fl, v, what = final(res, w), val_final(res), outcome(a, res, ff)
            lines.append("| %s | %s | %d | %d | %d | %d | %.4f | %s | %.4f | %s | %s |"
                         % (typ, "on" if res["abft"] else "off", len(res["faults"]), last["abft_detected"],
                            last["abft_corrected"], last["abft_recomputed"], fl, pct(fl, ff_final), v, pct(v, ff_val), what))
            rows.append({"type": typ, "abft": res["abft"], "injected": len(res["faults"]), "detected": last["abft_detected"],
                         "corrected": last["abft_corrected"], "recomputed": last["abft_recomputed"], "final_loss": fl,
                         "faultfree_final_loss": ff_final, "final_val_loss": v, "faultfree_final_val_loss": ff_val,
                         "outcome": what.replace("**", "")})
    for typ, on, off in trios:
        same = [f[:3] for f in on["faults"]] == [f[:3] for f in off["faults"]]
        lines += ["", "%s faults, ABFT on: each fault and what ATTNChecker did (the trainer's event lines)%s:" %
                  (typ, "" if same else "; the ABFT-off run drew other faults (recomputations use the fault RNG)"), ""]
        events = {}
        for line in on["text"].splitlines():
            m = CORRECT_LINE.match(line)
            if m:
                events.setdefault((int(m.group(1)), int(m.group(2)), m.group(3)), []).append(m.group(4))
        for s, l, op, how in on["faults"]:
            what = "; ".join(events.get((s, l, op), [])) or ("caught downstream" if how == "downstream" else "NOT DETECTED")
            lines.append("- step %d (from 0), layer %d, %s: %s" % (s, l, op, what))
        summ = af.parse_summary(on["text"])
        lines.append("- trainer summary: injected %d; detected %d, corrected %d, GEMMs recomputed %d"
                     % (summ["injected"], sum(o["detected"] for o in summ["ops"].values()),
                        sum(o["corrected"] for o in summ["ops"].values()), sum(o["recomputed"] for o in summ["ops"].values())))
    return "\n".join(lines) + "\n", rows


def plot(a, ff, trios, path):
    plt = plot_loss.import_matplotlib()
    fig, axes = plt.subplots(len(trios), 1, figsize=(9, 3.6 * len(trios)), dpi=110, squeeze=False)

    def smooth(ys):
        out = []
        for i in range(len(ys)):
            w = [y for y in ys[max(0, i - SMOOTH + 1):i + 1] if math.isfinite(y)]
            out.append(sum(w) / len(w) if len(w) == min(SMOOTH, i + 1) else float("nan"))
        return out
    for ax, (typ, on, off) in zip(axes[:, 0], trios):
        for res, label, color in ((ff, "fault-free", "black"), (on, "%s faults, ABFT on" % typ, "tab:green"),
                                  (off, "%s faults, ABFT off" % typ, "tab:red")):
            xs = [r["step"] for r in res["records"]]
            ys = [y if math.isfinite(y) else float("nan") for y in res["losses"]]
            bad = [x for x, y in zip(xs, res["losses"]) if not math.isfinite(y)]
            if bad:
                label += " (loss not finite from step %d)" % bad[0]
                ax.axvspan(bad[0], xs[-1], color=color, alpha=0.08)
            ax.plot(xs, ys, color=color, lw=0.5, alpha=0.25)
            ax.plot(xs, smooth(ys), color=color, lw=1.6, ls="--" if res is on else "-", label=label)
        for k, (s, _, _, _) in enumerate(on["faults"]):
            ax.axvline(s + 1, color="gray", lw=0.7, ls=":", label="fault injected" if k == 0 else None)
        ax.set_ylabel("training loss")
        ax.set_title("%s, %d steps, -fi rate=%g,type=%s: %d faults" % (a.model, a.steps, a.rate, typ, len(on["faults"])), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("step (thin: every step; thick: %d-step moving average)" % SMOOTH)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv):
    a = get_args(argv)
    os.makedirs(a.out, exist_ok=True)
    plan = [("faultfree", None, 1)] + [("%s_%s" % (t, "on" if ab else "off"), t, ab) for t in a.types for ab in (1, 0)]
    print("rate study: %d runs of %d steps, %d at a time, output %s/" % (len(plan), a.steps, a.jobs, a.out))
    for name, typ, ab in plan:
        print("  " + " ".join(os.path.relpath(x) if os.path.isabs(x) else x for x in command(a, name, typ, ab)))
    sys.stdout.flush()
    for name, _, _ in plan:
        shutil.rmtree(os.path.join(a.out, name), ignore_errors=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        done = dict(zip([p[0] for p in plan], pool.map(lambda p: run(a, *p), plan)))
    ff = done["faultfree"]
    if not all(math.isfinite(x) for x in ff["losses"]):
        fc.fail("fault-free run", "the loss is not finite", "try a smaller learning rate or model")
    trios = [(t, done[t + "_on"], done[t + "_off"]) for t in a.types]
    text, rows = report(a, ff, trios)
    png = os.path.join(a.out, "loss.png")
    plot(a, ff, trios, png)
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(text + "\n![loss curves](loss.png)\n")
    with open(os.path.join(a.out, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print()
    print(text)
    print("wrote %s, %s, %s" % (png, os.path.join(a.out, "summary.md"), os.path.join(a.out, "summary.csv")))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (fc.Fail, plot_loss.Fail) as e:
        print(e if str(e).startswith("error") else "error: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
