#!/usr/bin/env python3
"""
train_gpt2.py: the PyTorch reference that the C++ GPT-2 trainer is checked against.

The C++ trainer computes GPT-2's forward pass, backward pass and AdamW update by hand in
fp32. This script computes the same three things with PyTorch autograd, by default in
float64 so that its answer is essentially exact and any difference is the C++ side's
rounding (or bug). It starts from a seeded initialization, trains a few steps on one fixed
batch with the C++ trainer's optimizer (AdamW with weight decay on the 2-D weights, llm.c's
warmup and cosine schedule, gradient-norm clipping), and writes everything a test needs to
compare against.

Usage (a tiny model, as the C++ test uses it):

    /usr/bin/python3 scripts/train_gpt2.py --out /tmp/ref --init noisy \\
        --layers 2 --heads 3 --channels 48 --max-seq-len 64 --vocab 101 \\
        --batch 1 --seq 7 --steps 10 --lr 1e-3

It writes three files into --out:

    model.bin        llm.c model file, version 3 (fp32): the initial parameters.
                     header: 256 int32 = [20240326, 3, maxT, V, L, NH, C, Vp, 0...],
                     then 16 tensors: wte (Vp,C), wpe (maxT,C), ln1w (L,C), ln1b (L,C),
                     qkvw (L,3C,C), qkvb (L,3C), attprojw (L,C,C), attprojb (L,C),
                     ln2w (L,C), ln2b (L,C), fcw (L,4C,C), fcb (L,4C), fcprojw (L,C,4C),
                     fcprojb (L,C), lnfw (C), lnfb (C). Matrices are (out, in) row-major,
                     like torch.nn.Linear.weight. Vp is V rounded up to a multiple of 128;
                     wte rows V..Vp-1 are padding and never used.
                     --model-in also reads llm.c's version 5: the same header with [1]=5,
                     then the same tensors in bf16 (the upper 16 bits of each fp32), which
                     are widened to fp32 exactly. --write-bf16 FILE writes the initial
                     parameters as such a file too, each rounded to the nearest bf16 as
                     PyTorch's bfloat16 (and llm.c's train_gpt2.py) does.
    debug_state.bin  header: 256 int32 = [20240327, 2, B, T, 0...], then the batch
                     x (B*T int32) and targets y (B*T int32), the logits (B,T,V) fp32,
                     the mean loss (1 fp32), and the gradient of the loss with respect to
                     every parameter at the initial point, in the order and shapes of
                     model.bin (the wte gradient has Vp rows; the padding rows are zero).
    losses.txt       "# lr=... beta1=... beta2=... eps=... weight_decay=... warmup=... final_frac=...
                     grad_clip=... steps=N", then N lines "loss grad_norm lr" of step i, each
                     printed with %.9e. Every step trains on the same batch: zero grads,
                     forward, record loss, backward, the gradient's global norm (before the
                     clip), clip, AdamW step at that step's learning rate. So line 0's loss
                     is the one in debug_state.bin (before rounding to fp32).

The optimizer, as the C++ trainer's (llmc/optimizer.h): step i (from 0) runs at
lr·(i+1)/warmup during the warmup, then lr_min + (lr − lr_min)·(1 + cos(π·(i − warmup)/(steps −
warmup)))/2 with lr_min = lr·final_frac; the gradient is scaled by
torch.nn.utils.clip_grad_norm_ to --grad-clip when its norm is above it (0: no clip); AdamW's
decoupled weight decay falls on wte, wpe, qkvw, attprojw, fcw and fcprojw only.

Initialization (--init, or --model-in FILE to start from an llm.c model file):

    random  GPT-2's init as in llm.c: weights and embeddings ~ N(0, 0.02), the two residual
            projections (attprojw, fcprojw) ~ N(0, 0.02/sqrt(2L)), biases 0, LayerNorm
            weight 1 and bias 0.
    noisy   like random, but biases ~ N(0, 0.02), LayerNorm weights ~ 1 + N(0, 0.1) and
            LayerNorm biases ~ N(0, 0.1), so that a bug in a bias or LayerNorm parameter
            cannot hide behind zeros and ones.
    gpt2    the pretrained 124M GPT-2 from Hugging Face transformers. It needs the
            transformers package and network access, so it is NOT exercised offline (and not
            by the tests); without them the script stops with a one-line error.

    The random and noisy draws come from one torch.Generator seeded with --seed. Tensors
    are drawn in model-file order, one normal_() call per tensor over its whole stacked
    shape (all layers at once); a tensor that is constant in the chosen mode draws nothing.
    wte is drawn as (V,C) and then padded with zero rows to (Vp,C). The init is generated
    in float32, so model.bin holds exactly the values the computation starts from.

The batch is B*T+1 tokens: x = tokens[:-1], y = tokens[1:], both viewed (B,T). By default
they are drawn with torch.randint(0, V) from a second torch.Generator seeded with --seed + 1;
with --tokens SHARD they are the first B*T+1 tokens of an llm.c token shard.

Every bad input ends the program with one line "error: <flag or file>: <reason> (hint: ...)"
on stderr and exit status 1, as the C++ programs do.
"""

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as exc:
    sys.stderr.write(f"error: python: cannot import {exc.name} "
                     f"(hint: run with a Python that has PyTorch and NumPy, e.g. /usr/bin/python3)\n")
    sys.exit(1)

# File formats shared with the C++ side (llm.c conventions).
HEADER_INTS = 256
MODEL_MAGIC, MODEL_VERSION = 20240326, 3  # the version written; fp32
MODEL_VERSION_BF16 = 5                      # llm.c's bf16 model file, read and written on request
STATE_MAGIC, STATE_VERSION = 20240327, 2
SHARD_MAGIC, SHARD_VERSION = 20240520, 1
VOCAB_PAD = 128  # the vocabulary is padded to a multiple of this in the model file

LN_EPS = 1e-5
INIT_STD = 0.02
NOISY_LN_STD = 0.1


# ----------------------------------------------------------------------------
# errors

def fail(where, reason, hint):
    """Stop with one line on stderr and exit status 1 (never a traceback)."""
    sys.stdout.flush()
    sys.stderr.write(f"error: {where}: {reason} (hint: {hint})\n")
    sys.exit(1)


def one_line(exc):
    """An exception's message squeezed onto one line, for use inside fail()."""
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


# ----------------------------------------------------------------------------
# the model's configuration and parameter layout

@dataclass
class GPTConfig:
    max_seq_len: int  # maxT
    vocab_size: int   # V
    num_layers: int   # L
    num_heads: int    # NH
    channels: int     # C
    padded_vocab_size: int  # Vp

    def describe(self):
        return (f"L={self.num_layers} NH={self.num_heads} C={self.channels} "
                f"maxT={self.max_seq_len} V={self.vocab_size} Vp={self.padded_vocab_size}")


def padded_vocab(V):
    return (V + VOCAB_PAD - 1) // VOCAB_PAD * VOCAB_PAD


def param_layout(cfg):
    """The 16 parameter tensors in model-file order: (name, shape, kind).

    The kind says how the tensor is initialized: 'embed' and 'weight' ~ N(0, 0.02),
    'resid' (projections back into the residual stream) ~ N(0, 0.02/sqrt(2L)),
    'bias', 'lnw' and 'lnb' are constant unless the init is noisy.
    """
    maxT, Vp, L, C = cfg.max_seq_len, cfg.padded_vocab_size, cfg.num_layers, cfg.channels
    return [
        ("wte", (Vp, C), "embed"),
        ("wpe", (maxT, C), "embed"),
        ("ln1w", (L, C), "lnw"),
        ("ln1b", (L, C), "lnb"),
        ("qkvw", (L, 3 * C, C), "weight"),
        ("qkvb", (L, 3 * C), "bias"),
        ("attprojw", (L, C, C), "resid"),
        ("attprojb", (L, C), "bias"),
        ("ln2w", (L, C), "lnw"),
        ("ln2b", (L, C), "lnb"),
        ("fcw", (L, 4 * C, C), "weight"),
        ("fcb", (L, 4 * C), "bias"),
        ("fcprojw", (L, C, 4 * C), "resid"),
        ("fcprojb", (L, C), "bias"),
        ("lnfw", (C,), "lnw"),
        ("lnfb", (C,), "lnb"),
    ]


def num_params(cfg):
    return sum(math.prod(shape) for _, shape, _ in param_layout(cfg))


# ----------------------------------------------------------------------------
# initialization: every init returns float32 tensors keyed by name, in file order

def init_random(cfg, seed, noisy):
    """GPT-2's init (see the top of the file); noisy also randomizes biases and LayerNorms."""
    gen = torch.Generator().manual_seed(seed)
    resid_std = INIT_STD / math.sqrt(2 * cfg.num_layers)

    def normal(shape, mean, std):
        return torch.empty(shape, dtype=torch.float32).normal_(mean, std, generator=gen)

    params = {}
    for name, shape, kind in param_layout(cfg):
        if name == "wte":
            # Draw only the V real rows, so the padding rows are exactly zero and the
            # draws do not depend on the padding.
            real = normal((cfg.vocab_size, cfg.channels), 0.0, INIT_STD)
            pad = torch.zeros(cfg.padded_vocab_size - cfg.vocab_size, cfg.channels)
            params[name] = torch.cat([real, pad])
        elif kind in ("embed", "weight"):
            params[name] = normal(shape, 0.0, INIT_STD)
        elif kind == "resid":
            params[name] = normal(shape, 0.0, resid_std)
        elif kind == "bias":
            params[name] = normal(shape, 0.0, INIT_STD) if noisy else torch.zeros(shape)
        elif kind == "lnw":
            params[name] = normal(shape, 1.0, NOISY_LN_STD) if noisy else torch.ones(shape)
        elif kind == "lnb":
            params[name] = normal(shape, 0.0, NOISY_LN_STD) if noisy else torch.zeros(shape)
        else:
            raise AssertionError(f"unknown parameter kind {kind}")
    return params


def init_from_model_file(path):
    """Load the config and the initial parameters from an llm.c model file: version 3 (fp32),
    or version 5 (bf16), whose values are widened to fp32 exactly."""
    hint = "pass an llm.c model file (version 3 or 5), e.g. a model.bin written by this script"
    header = read_header(path, hint)
    if header[0] != MODEL_MAGIC:
        fail(path, f"bad magic {header[0]}, expected {MODEL_MAGIC}: not an llm.c model file", hint)
    version = int(header[1])
    if version not in (MODEL_VERSION, MODEL_VERSION_BF16):
        fail(path, f"model file version {version} is not supported, expected {MODEL_VERSION} (fp32) "
                   f"or {MODEL_VERSION_BF16} (bf16)", hint)
    maxT, V, L, NH, C, Vp = (int(v) for v in header[2:8])
    for label, value in (("maxT", maxT), ("V", V), ("L", L), ("NH", NH), ("C", C), ("Vp", Vp)):
        if value < 1:
            fail(path, f"header field {label}={value} must be at least 1", hint)
    if Vp < V:
        fail(path, f"padded vocabulary Vp={Vp} is smaller than V={V}", hint)
    cfg = GPTConfig(maxT, V, L, NH, C, Vp)
    value_bytes = 4 if version == MODEL_VERSION else 2
    expected = HEADER_INTS * 4 + value_bytes * num_params(cfg)
    actual = os.path.getsize(path)
    if actual != expected:
        fail(path, f"size is {actual} bytes but the header (version {version}, {cfg.describe()}) "
                   f"implies {expected}", "the file is truncated or not of this kind; regenerate it")
    if version == MODEL_VERSION:
        values = np.fromfile(path, dtype="<f4", offset=HEADER_INTS * 4).astype(np.float32)
    else:  # a bf16 value is the upper half of an fp32: shifting its bits back gives it exactly
        bf16 = np.fromfile(path, dtype="<u2", offset=HEADER_INTS * 4)
        values = (bf16.astype(np.uint32) << 16).view(np.float32)
    flat = torch.from_numpy(values)
    params, offset = {}, 0
    for name, shape, _ in param_layout(cfg):
        n = math.prod(shape)
        params[name] = flat[offset:offset + n].view(shape).clone()
        offset += n
    return cfg, params


def init_from_huggingface():
    """The pretrained 124M GPT-2 from Hugging Face (needs transformers and the network).

    This path is not exercised offline. Hugging Face's Conv1D stores weights as (in, out),
    so every matrix is transposed to the (out, in) layout of the model file.
    """
    hint = ("install transformers and make sure huggingface.co is reachable, "
            "or start from an llm.c model file with --model-in")
    try:
        from transformers import GPT2LMHeadModel
    except Exception as exc:  # ImportError, or a broken install failing in its own imports
        fail("--init gpt2", f"cannot import transformers ({one_line(exc)})", hint)
    try:
        hf = GPT2LMHeadModel.from_pretrained("gpt2")
    except Exception as exc:  # the download or the cache can fail in many ways
        fail("--init gpt2", f"cannot load the pretrained model ({one_line(exc)})", hint)

    hc = hf.config
    V = hc.vocab_size
    cfg = GPTConfig(hc.n_positions, V, hc.n_layer, hc.n_head, hc.n_embd, padded_vocab(V))
    sd = {k: v.detach().to(torch.float32) for k, v in hf.state_dict().items()}

    def stacked(suffix, transpose=False):
        per_layer = [sd[f"transformer.h.{l}.{suffix}"] for l in range(cfg.num_layers)]
        return torch.stack([w.t().contiguous() if transpose else w for w in per_layer])

    wte = sd["transformer.wte.weight"]
    pad = torch.zeros(cfg.padded_vocab_size - V, cfg.channels)
    params = {
        "wte": torch.cat([wte, pad]),
        "wpe": sd["transformer.wpe.weight"].clone(),
        "ln1w": stacked("ln_1.weight"),
        "ln1b": stacked("ln_1.bias"),
        "qkvw": stacked("attn.c_attn.weight", transpose=True),
        "qkvb": stacked("attn.c_attn.bias"),
        "attprojw": stacked("attn.c_proj.weight", transpose=True),
        "attprojb": stacked("attn.c_proj.bias"),
        "ln2w": stacked("ln_2.weight"),
        "ln2b": stacked("ln_2.bias"),
        "fcw": stacked("mlp.c_fc.weight", transpose=True),
        "fcb": stacked("mlp.c_fc.bias"),
        "fcprojw": stacked("mlp.c_proj.weight", transpose=True),
        "fcprojb": stacked("mlp.c_proj.bias"),
        "lnfw": sd["transformer.ln_f.weight"].clone(),
        "lnfb": sd["transformer.ln_f.bias"].clone(),
    }
    for name, shape, _ in param_layout(cfg):  # catch a changed checkpoint layout early
        assert tuple(params[name].shape) == shape, (name, tuple(params[name].shape), shape)
    return cfg, params


# ----------------------------------------------------------------------------
# the batch

def read_header(path, hint):
    """The 256-int32 header of an llm.c file, with one-line errors for unreadable files."""
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_INTS * 4)
    except OSError as exc:
        fail(path, f"cannot open ({exc.strerror or one_line(exc)})", hint)
    if len(raw) < HEADER_INTS * 4:
        fail(path, f"only {len(raw)} bytes, shorter than the {HEADER_INTS * 4}-byte header",
             "the file is truncated or not of this kind; regenerate it")
    return np.frombuffer(raw, dtype="<i4")


def read_shard_tokens(path, count, V):
    """The first `count` tokens of an llm.c token shard, checked against the vocabulary."""
    hint = "pass an llm.c token shard (uint16 tokens after a 256-int32 header)"
    header = read_header(path, hint)
    if header[0] != SHARD_MAGIC:
        fail(path, f"bad magic {header[0]}, expected {SHARD_MAGIC}: not an llm.c token shard", hint)
    if header[1] != SHARD_VERSION:
        fail(path, f"token shard version {header[1]} is not supported, expected {SHARD_VERSION}", hint)
    ntok = int(header[2])
    available = (os.path.getsize(path) - HEADER_INTS * 4) // 2
    if ntok < 0 or available < ntok:
        fail(path, f"header says {ntok} tokens but the file holds {available}",
             "the file is truncated; regenerate it")
    if ntok < count:
        fail(path, f"holds {ntok} tokens, fewer than the B*T+1 = {count} one batch needs",
             "use a longer shard or a smaller --batch/--seq")
    tokens = np.fromfile(path, dtype="<u2", count=count, offset=HEADER_INTS * 4).astype(np.int64)
    too_big = np.nonzero(tokens >= V)[0]
    if too_big.size > 0:
        i = int(too_big[0])
        fail(path, f"token {i} is {int(tokens[i])}, not below the vocabulary size V={V}",
             "use a shard made with the model's tokenizer, or a larger --vocab")
    return torch.from_numpy(tokens)


def random_tokens(count, V, seed):
    # A generator of its own (seed + 1), so the batch does not depend on how many
    # numbers the init drew, nor on whether the init was random at all.
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, V, (count,), generator=gen)


# ----------------------------------------------------------------------------
# the model: GPT-2 written out as plain functions of the parameter tensors

def layer_norm(x, weight, bias):
    # Normalize over channels with the biased variance (divide by C), eps 1e-5.
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps=LN_EPS)


def gelu_tanh(h):
    # GPT-2's GELU, the tanh approximation.
    return 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h ** 3)))


def attention(x, qkvw, qkvb, projw, projb, num_heads):
    """Causal multi-head self-attention of x (B,T,C)."""
    B, T, C = x.shape
    hs = C // num_heads
    qkv = x @ qkvw.t() + qkvb                       # (B,T,3C): q, then k, then v
    q, k, v = qkv.split(C, dim=-1)
    # (B,T,C) -> (B,NH,T,HS): each head attends independently over its HS channels.
    q, k, v = (t.view(B, T, num_heads, hs).transpose(1, 2) for t in (q, k, v))
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B,NH,T,T)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    att = att.masked_fill(future, float("-inf"))     # position t sees positions <= t only
    att = torch.softmax(att, dim=-1)
    y = att @ v                                      # (B,NH,T,HS)
    y = y.transpose(1, 2).contiguous().view(B, T, C)
    return y @ projw.t() + projb


def mlp(x, fcw, fcb, projw, projb):
    h = gelu_tanh(x @ fcw.t() + fcb)                 # (B,T,4C)
    return h @ projw.t() + projb


def forward(p, cfg, x, y):
    """Logits (B,T,V) and the mean cross-entropy loss of predicting y from x."""
    B, T = x.shape
    V = cfg.vocab_size
    h = p["wte"][x] + p["wpe"][:T]                   # token + position embeddings
    for l in range(cfg.num_layers):
        h = h + attention(layer_norm(h, p["ln1w"][l], p["ln1b"][l]),
                          p["qkvw"][l], p["qkvb"][l], p["attprojw"][l], p["attprojb"][l],
                          cfg.num_heads)
        h = h + mlp(layer_norm(h, p["ln2w"][l], p["ln2b"][l]),
                    p["fcw"][l], p["fcb"][l], p["fcprojw"][l], p["fcprojb"][l])
    h = layer_norm(h, p["lnfw"], p["lnfb"])
    # The LM head is tied to the token embedding; the padding rows of wte take no part,
    # so their gradient is exactly zero.
    logits = h @ p["wte"][:V].t()
    loss = F.cross_entropy(logits.view(B * T, V), y.view(B * T))
    return logits, loss


# ----------------------------------------------------------------------------
# training

DECAYED_KINDS = ("embed", "weight", "resid")  # the 2-D weights: AdamW decays these only


def learning_rate(step, args):
    """llm.c's schedule (the C++ learning_rate_at): linear warmup, then cosine decay."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    if args.steps <= args.warmup:
        return args.lr
    decay = (step - args.warmup) / (args.steps - args.warmup)
    min_lr = args.lr * args.final_frac
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * decay)) * (args.lr - min_lr)


def train(p, cfg, x, y, args):
    """Train on the one batch for args.steps steps.

    Returns per step (loss, gradient norm before the clip, learning rate), and what
    debug_state.bin needs from step 0: the logits, the loss and the gradients at the
    initial parameters.
    """
    kinds = {name: kind for name, _, kind in param_layout(cfg)}
    decayed = [t for name, t in p.items() if kinds[name] in DECAYED_KINDS]
    others = [t for name, t in p.items() if kinds[name] not in DECAYED_KINDS]
    # foreach=False keeps the plain per-tensor update order
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": args.weight_decay},
                             {"params": others, "weight_decay": 0.0}],
                            lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps, foreach=False)
    history, first = [], None
    for step in range(args.steps):
        lr = learning_rate(step, args)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        logits, loss = forward(p, cfg, x, y)
        loss.backward()
        if step == 0:
            grads = {name: t.grad.detach().clone() for name, t in p.items()}
            first = (logits.detach(), loss.item(), grads)
        params = list(p.values())
        if args.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.grad) for t in params]))
        history.append((loss.item(), norm.item(), lr))
        opt.step()
    return history, first


# ----------------------------------------------------------------------------
# output files

def header_bytes(*values):
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:len(values)] = values
    return header.tobytes()


def f32_bytes(t):
    return t.detach().to(torch.float32).contiguous().numpy().astype("<f4", copy=False).tobytes()


def bf16_bytes(t):
    """t rounded to the nearest bf16 (ties to even, as PyTorch and llm.c's writer round); numpy
    has no bf16, so its bits go out as int16."""
    bits = t.detach().to(torch.float32).to(torch.bfloat16).contiguous().view(torch.int16)
    return bits.numpy().astype("<i2", copy=False).tobytes()


def write_file(path, chunks):
    try:
        with open(path, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
    except OSError as exc:
        fail(path, f"cannot write ({exc.strerror or one_line(exc)})", "check free disk space and permissions")


def write_model_file(path, cfg, params, bf16=False):
    """An llm.c model file: version 3 (fp32), or version 5 (bf16) with bf16=True."""
    version, to_bytes = (MODEL_VERSION_BF16, bf16_bytes) if bf16 else (MODEL_VERSION, f32_bytes)
    header = header_bytes(MODEL_MAGIC, version, cfg.max_seq_len, cfg.vocab_size,
                          cfg.num_layers, cfg.num_heads, cfg.channels, cfg.padded_vocab_size)
    write_file(path, [header] + [to_bytes(params[name]) for name, _, _ in param_layout(cfg)])


def write_debug_state(path, cfg, x, y, logits, loss, grads):
    B, T = x.shape
    chunks = [header_bytes(STATE_MAGIC, STATE_VERSION, B, T),
              x.numpy().astype("<i4").tobytes(),
              y.numpy().astype("<i4").tobytes(),
              f32_bytes(logits),
              np.array([loss], dtype="<f4").tobytes()]
    chunks += [f32_bytes(grads[name]) for name, _, _ in param_layout(cfg)]
    write_file(path, chunks)


def write_losses(path, args, history):
    lines = [f"# lr={args.lr!r} beta1={args.beta1!r} beta2={args.beta2!r} eps={args.eps!r} "
             f"weight_decay={args.weight_decay!r} warmup={args.warmup} final_frac={args.final_frac!r} "
             f"grad_clip={args.grad_clip!r} steps={args.steps}"]
    lines += ["%.9e %.9e %.9e" % step for step in history]
    write_file(path, [("\n".join(lines) + "\n").encode("ascii")])


# ----------------------------------------------------------------------------
# command line

class OneLineParser(argparse.ArgumentParser):
    """argparse, but its errors follow the one-line format and exit with status 1."""

    def error(self, message):
        if message.startswith("argument "):
            where, _, reason = message[len("argument "):].partition(": ")
            # "--layers/-l" style names: keep the long one
            fail(where.split("/")[0], reason, "see --help")
        fail("command line", message, "see --help")


def parse_args(argv):
    ap = OneLineParser(description="PyTorch reference for the C++ GPT-2 trainer: writes "
                                   "model.bin, debug_state.bin and losses.txt.")
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--layers", type=int, help="number of layers L")
    ap.add_argument("--heads", type=int, help="number of attention heads NH")
    ap.add_argument("--channels", type=int, help="channels C (a multiple of NH)")
    ap.add_argument("--max-seq-len", type=int, default=1024, help="maxT (default 1024)")
    ap.add_argument("--vocab", type=int, default=50257, help="vocabulary size V (default 50257)")
    ap.add_argument("--batch", type=int, default=4, help="batch size B (default 4)")
    ap.add_argument("--seq", type=int, default=64, help="sequence length T <= maxT (default 64)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the init and the batch (default 0)")
    ap.add_argument("--steps", type=int, default=10, help="training steps (default 10)")
    ap.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    ap.add_argument("--beta1", type=float, default=0.9, help="AdamW beta1 (default 0.9)")
    ap.add_argument("--beta2", type=float, default=0.999, help="AdamW beta2 (default 0.999)")
    ap.add_argument("--eps", type=float, default=1e-8, help="AdamW epsilon (default 1e-8)")
    ap.add_argument("--weight-decay", type=float, default=0.0,
                    help="AdamW weight decay of the 2-D weights (default 0)")
    ap.add_argument("--warmup", type=int, default=0, help="learning-rate warmup steps (default 0)")
    ap.add_argument("--final-frac", type=float, default=1.0,
                    help="final learning rate as a fraction of --lr, by cosine decay (default 1: constant)")
    ap.add_argument("--grad-clip", type=float, default=0.0,
                    help="clip the global gradient norm to this (default 0: no clip)")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="precision of the computation (default float64); the files are fp32")
    ap.add_argument("--init", choices=["random", "noisy", "gpt2"],
                    help="initialization (default random); gpt2 needs transformers and the network")
    ap.add_argument("--model-in", metavar="FILE",
                    help="start from this llm.c model file instead; its config overrides "
                         "--layers, --heads, --channels, --max-seq-len and --vocab")
    ap.add_argument("--write-bf16", metavar="FILE",
                    help="also write the initial parameters to FILE as an llm.c bf16 model file "
                         "(version 5), rounded to nearest; training still starts from fp32")
    ap.add_argument("--tokens", metavar="SHARD",
                    help="take the batch from the first B*T+1 tokens of this llm.c token shard")
    return ap.parse_args(argv)


def check_positive(flag, value):
    if value < 1:
        fail(flag, f"must be at least 1, got {value}", "pass a positive integer")


def check_args(args):
    """Validate what can be checked before the model config is known."""
    if args.model_in is not None and args.init is not None:
        fail("--model-in", "cannot be combined with --init", "pass one of --init and --model-in")
    if args.model_in is None and args.init in (None, "random", "noisy"):
        for flag, value in (("--layers", args.layers), ("--heads", args.heads),
                            ("--channels", args.channels)):
            if value is None:
                fail(flag, "missing; a random or noisy init needs the model size",
                     "pass --layers, --heads and --channels, or --model-in FILE")
    for flag, value in (("--layers", args.layers), ("--heads", args.heads),
                        ("--channels", args.channels), ("--max-seq-len", args.max_seq_len),
                        ("--vocab", args.vocab), ("--batch", args.batch), ("--seq", args.seq),
                        ("--steps", args.steps)):
        if value is not None:
            check_positive(flag, value)
    if not 0 <= args.seed < 2 ** 63 - 1:
        fail("--seed", f"must be in [0, 2^63-1), got {args.seed}", "pass a non-negative integer")
    if not (math.isfinite(args.lr) and args.lr >= 0):
        fail("--lr", f"must be a finite number >= 0, got {args.lr}", "e.g. --lr 1e-4")
    for flag, value in (("--beta1", args.beta1), ("--beta2", args.beta2)):
        if not 0 <= value < 1:
            fail(flag, f"must be in [0, 1), got {value}", "e.g. --beta1 0.9 --beta2 0.999")
    if not (math.isfinite(args.eps) and args.eps >= 0):
        fail("--eps", f"must be a finite number >= 0, got {args.eps}", "e.g. --eps 1e-8")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        fail("--weight-decay", f"must be a finite number >= 0, got {args.weight_decay}",
             "e.g. --weight-decay 0.0")
    if args.warmup < 0:
        fail("--warmup", f"must be >= 0, got {args.warmup}", "e.g. --warmup 3")
    if not 0 <= args.final_frac <= 1:
        fail("--final-frac", f"must be in [0, 1], got {args.final_frac}", "e.g. --final-frac 0.1")
    if not (math.isfinite(args.grad_clip) and args.grad_clip >= 0):
        fail("--grad-clip", f"must be a finite number >= 0, got {args.grad_clip}", "e.g. --grad-clip 1.0")


def check_config(cfg, args, where):
    """Validate the model config against itself and the batch shape."""
    if cfg.channels % cfg.num_heads != 0:
        fail(where, f"channels C={cfg.channels} is not a multiple of heads NH={cfg.num_heads}",
             "choose C divisible by NH")
    if args.seq > cfg.max_seq_len:
        fail("--seq", f"T={args.seq} is longer than the maximum sequence length maxT={cfg.max_seq_len}",
             "pass a smaller --seq or a larger --max-seq-len")


def set_threads(cfg, args):
    """One thread for small problems, torch's default for big ones.

    A tiny model's matmuls are far too small to split, and on a busy machine idle threads
    spinning at OpenMP barriers make a 0.1 s run take seconds. A training step costs about
    6 * params * tokens flops; below about a GFLOP one thread is fastest and most predictable.
    """
    if 6 * num_params(cfg) * args.batch * args.seq < 1e9:
        torch.set_num_threads(1)


def main(argv):
    t0 = time.time()
    args = parse_args(argv)
    check_args(args)

    # 1. the configuration and the float32 initial parameters
    if args.model_in is not None:
        cfg, params = init_from_model_file(args.model_in)
        init_name, where = f"model-in:{args.model_in}", "--model-in"
    elif args.init == "gpt2":
        cfg, params = init_from_huggingface()
        init_name, where = "gpt2", "--init gpt2"
    else:
        cfg = GPTConfig(args.max_seq_len, args.vocab, args.layers, args.heads, args.channels,
                        padded_vocab(args.vocab))
        init_name, where = args.init or "random", "--channels"
        check_config(cfg, args, where)  # before drawing anything
        params = init_random(cfg, args.seed, noisy=(init_name == "noisy"))
    check_config(cfg, args, where)
    set_threads(cfg, args)

    # 2. the batch
    count = args.batch * args.seq + 1
    if args.tokens is not None:
        tokens = read_shard_tokens(args.tokens, count, cfg.vocab_size)
    else:
        tokens = random_tokens(count, cfg.vocab_size, args.seed)
    x = tokens[:-1].view(args.batch, args.seq)
    y = tokens[1:].view(args.batch, args.seq)

    # 3. the model file holds the float32 init exactly; then compute in the chosen dtype
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        fail(args.out, f"cannot create the output directory ({exc.strerror or one_line(exc)})",
             "pass a writable --out directory")
    write_model_file(os.path.join(args.out, "model.bin"), cfg, params)
    if args.write_bf16 is not None:
        write_model_file(args.write_bf16, cfg, params, bf16=True)
    dtype = getattr(torch, args.dtype)
    p = {name: t.to(dtype).requires_grad_(True) for name, t in params.items()}

    # 4. train, then write the step-0 state and the loss curve
    history, (logits, loss0, grads) = train(p, cfg, x, y, args)
    losses = [loss for loss, _, _ in history]
    write_debug_state(os.path.join(args.out, "debug_state.bin"), cfg, x, y, logits, loss0, grads)
    write_losses(os.path.join(args.out, "losses.txt"), args, history)

    print(f"train_gpt2.py: {cfg.describe()} params={num_params(cfg)} B={args.batch} T={args.seq} "
          f"init={init_name} dtype={args.dtype} steps={args.steps}: "
          f"loss[0]={losses[0]:.6f} loss[{args.steps - 1}]={losses[-1]:.6f} "
          f"({time.time() - t0:.2f} s) -> {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
