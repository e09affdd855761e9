#!/usr/bin/python3
"""
plot_loss.py: draws the loss curves of a train_gpt2 run from its log.

    /usr/bin/python3 scripts/plot_loss.py log/main.jsonl loss.png

The log (train_gpt2 -o DIR writes DIR/main.jsonl) has one JSON object per step:

    {"step": 1, "loss": 10.80, "val_loss": 10.83 or null, "lr": 6e-4, "grad_norm": 2.13, "ms": 319.8,
     "tok_s": 800.4, "mfu": 0.41 or null, "abft_detected": 0, "abft_corrected": 0, "abft_recomputed": 0}

The abft_* values are running totals; grad_norm is the global gradient norm before the clip;
mfu (model FLOPs utilization) is null where the trainer does not know the device's peak. The
top panel shows the training loss and the validation loss (at the steps that have one) against
the step, and a vertical line at every step where abft_detected went up, i.e. where ATTNChecker
found a fault; its title gives the final losses. The bottom panel shows the learning rate and
the gradient norm (logs written before they were logged have no bottom panel). Needs matplotlib (Debian: python3-matplotlib), which is installed when
run as root; otherwise the command to install it is printed.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys

KEYS = ("step", "loss", "val_loss", "ms", "tok_s", "abft_detected", "abft_corrected", "abft_recomputed")


class Fail(Exception):
    pass


def fail(what, reason, hint):
    raise Fail(f"{what}: {reason} (hint: {hint})")


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# C's printf writes non-finite values as nan, -nan, inf and -inf, which JSON has no words for
NONFINITE = re.compile(r'(:\s*)(-?)(nan|inf(?:inity)?)\b', re.IGNORECASE)


def json_nonfinite(m):
    if m.group(3).lower() == "nan":
        return m.group(1) + "NaN"
    return m.group(1) + ("-Infinity" if m.group(2) else "Infinity")


def parse_log(path):
    """The log's records, checked; a last line cut off by a killed run is skipped."""
    if not os.path.exists(path):
        fail(path, "no such file", "give the main.jsonl that train_gpt2 -o DIR writes")
    if os.path.isdir(path):
        fail(path, "is a directory", "give the main.jsonl file inside it")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(path, f"cannot read ({e.strerror})", "check the file permissions")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(path, f"is not UTF-8 text (offset {e.start})", "is this a train_gpt2 log?")
    lines = text.split("\n")
    cut = lines[-1] != ""  # no newline at the end: the last line may be incomplete
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            rec = json.loads(NONFINITE.sub(json_nonfinite, line))
        except ValueError as e:
            if cut and n == len(lines):
                print(f"warning: {where}: skipping the incomplete last line", file=sys.stderr)
                continue
            fail(where, f"not valid JSON ({e.msg} at column {e.colno})", "is this a train_gpt2 main.jsonl?")
        if not isinstance(rec, dict):
            fail(where, "not a JSON object", "is this a train_gpt2 main.jsonl?")
        missing = [k for k in KEYS if k not in rec]
        if missing:
            fail(where, f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                 "is this a train_gpt2 main.jsonl?")
        for k in KEYS:
            v = rec[k]
            if k == "val_loss" and v is None:
                continue
            if not is_number(v):
                fail(where, f"{k} is {json.dumps(v)}, not a number", "is this a train_gpt2 main.jsonl?")
        if rec["step"] != int(rec["step"]):
            fail(where, f"step {rec['step']} is not a whole number", "is this a train_gpt2 main.jsonl?")
        if records and rec["step"] <= records[-1]["step"]:
            fail(where, f"step {rec['step']} does not come after step {records[-1]['step']}",
                 "is this one run's log? train_gpt2 rewrites it on resume")
        records.append(rec)
    if not records:
        fail(path, "is empty" if not text.strip() else "has no complete record",
             "the trainer writes a line per step once it runs with -o DIR")
    return records


def import_matplotlib():
    try:
        import matplotlib
    except ImportError:
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", "python3-matplotlib"]
        if not (hasattr(os, "geteuid") and os.geteuid() == 0):
            fail("python3-matplotlib", "not installed", "sudo " + " ".join(cmd))
        if shutil.which("apt-get") is None:
            fail("python3-matplotlib", "not installed and apt-get is missing", "install matplotlib for this Python")
        print(f"installing python3-matplotlib: {' '.join(cmd)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            last = [l for l in r.stdout.splitlines() if l.strip()]
            fail("apt-get install python3-matplotlib", last[-1] if last else f"exit status {r.returncode}",
                 "run the command yourself to see the full output")
        import importlib
        importlib.invalidate_caches()
        try:
            import matplotlib
        except ImportError:
            fail("python3-matplotlib", f"installed, but this Python ({sys.executable}) cannot import it",
                 "run the script with /usr/bin/python3")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def fmt(x):
    return f"{x:.4f}" if math.isfinite(x) else str(x)


def detection_label(faults):
    events = sum(n for _, n in faults)
    return (f"ABFT fault detected: {events} event{'s' if events > 1 else ''} "
            f"at {len(faults)} step{'s' if len(faults) > 1 else ''}")


def plot_optimizer(ax, records):
    """The learning rate (left axis) and the gradient norm (right axis) against the step."""
    steps = [r["step"] for r in records]
    ax.plot(steps, [r["lr"] for r in records], color="tab:green", linewidth=1.2, label="learning rate")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax.grid(True, alpha=0.3)
    norm_ax = ax.twinx()
    norm_ax.plot(steps, [r["grad_norm"] for r in records], color="tab:purple", linewidth=0.9, alpha=0.8,
                 label="gradient norm (before the clip)")
    norm_ax.set_ylabel("gradient norm")
    lines = ax.get_lines() + norm_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")


def plot(records, out):
    steps = [r["step"] for r in records]
    loss = [r["loss"] for r in records]
    val = [(r["step"], r["val_loss"]) for r in records if r["val_loss"] is not None]
    # steps where the running total of detections went up (a drop means the counter restarted)
    faults, prev = [], 0
    for r in records:
        d = r["abft_detected"]
        if d > prev:
            faults.append((r["step"], d - prev))
        prev = d

    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        fail(out, f"the directory {out_dir} does not exist", "create it first, or write the image elsewhere")
    plt = import_matplotlib()

    with_optimizer = all(is_number(r.get("lr")) and is_number(r.get("grad_norm")) for r in records)
    if with_optimizer:
        fig, (ax, opt_ax) = plt.subplots(2, 1, figsize=(9, 8), dpi=110, sharex=True,
                                         gridspec_kw={"height_ratios": [2, 1]})
        plot_optimizer(opt_ax, records)
    else:
        fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    ax.plot(steps, loss, color="tab:blue", linewidth=1.2, label="train loss")
    if val:
        ax.plot([s for s, _ in val], [v for _, v in val], color="tab:orange", marker="o", markersize=4,
                linewidth=1.2, label="val loss")
    for k, (s, n) in enumerate(faults):
        ax.axvline(s, color="tab:red", linestyle="--", linewidth=0.9, alpha=0.7,
                   label=detection_label(faults) if k == 0 else None)
    if not with_optimizer:
        ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    title = f"final train loss {fmt(loss[-1])} (step {steps[-1]})"
    title += f", final val loss {fmt(val[-1][1])} (step {val[-1][0]})" if val else ", no val loss"
    ax.set_title(title)
    fig.tight_layout()

    tmp = f"{out}.tmp.{os.getpid()}.png"
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        fail(out, f"cannot write ({e.strerror})", "check the permissions and free disk space")
    finally:
        plt.close(fig)
    return steps, loss, val, faults


def main(argv):
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        if argv and argv[0] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        print("error: arguments: expected LOG.jsonl OUT.png, got "
              f"{len(argv)} argument{'s' if len(argv) != 1 else ''} "
              "(hint: /usr/bin/python3 scripts/plot_loss.py log/main.jsonl loss.png)", file=sys.stderr)
        return 1
    log_path, out = argv
    try:
        if os.path.isdir(out):
            fail(out, "is a directory", "give the image's file name, e.g. loss.png")
        records = parse_log(log_path)
        steps, loss, val, faults = plot(records, out)
    except Fail as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    msg = f"wrote {out}: {len(steps)} steps, final train loss {fmt(loss[-1])}"
    msg += f", final val loss {fmt(val[-1][1])}" if val else ", no val loss"
    if faults:
        msg += f", ABFT detections at step{'s' if len(faults) > 1 else ''} " + ", ".join(str(s) for s, _ in faults)
    print(msg)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
