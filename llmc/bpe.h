// bpe.h: GPT-2's byte-level BPE encoder, text -> token ids, for prompts given as text.
//
// It gives the same ids as encode() in scripts/gpt2_bpe.py (tiktoken's "gpt2" encode_ordinary),
// in three steps:
//
//  1. UTF-8 -> code points. Input that is not valid UTF-8 does not fail: each maximal ill-formed
//     subsequence (a byte that cannot start a character, or a truncated character) becomes one
//     U+FFFD. This is what Python's bytes.decode("utf-8", errors="replace") does, so the ids are
//     gpt2_bpe.py's for the text Python reads from the same bytes that way. Overlong forms,
//     encoded UTF-16 surrogates and values above U+10FFFF are ill-formed too.
//
//  2. Pre-tokenizing: the text is cut into pieces with GPT-2's pattern
//         's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     which a regex engine applies as: at the current position, the first alternative that
//     matches wins, and it takes as many characters as it can. Written out, a piece is
//       - a contraction: an apostrophe and s, t, re, ve, m, ll or d (lower case only);
//       - else a run of letters, or of numbers, or of "other" characters (neither letter, number
//         nor white space), with one U+0020 space in front when there is one;
//       - else a run of white space. `\s+(?!\S)` must not be followed by a non-space, so a run
//         that a non-space follows leaves its last character for the next piece: as that
//         piece's leading space when it is U+0020, else on its own (a run of one such character
//         cannot give anything back, and `\s+` takes it alone). At the end of the text the whole
//         run is one piece.
//     The classes \p{L}, \p{N} and \s come from llmc/unicode_tables.h, generated from the same
//     Python `regex` module that gpt2_bpe.py uses.
//
//  3. BPE, on each piece's UTF-8 bytes: a piece that is itself a vocabulary entry is one token.
//     Otherwise start from single bytes and repeatedly join the adjacent pair whose
//     concatenation is the vocabulary entry with the lowest id (the leftmost such pair on a
//     tie), until no adjacent pair concatenates to an entry. In GPT-2 a token's id is 256 + the
//     rank of the merge that made it, so the tokens' bytes (the file tokenizer.h reads) are all
//     the encoder needs; vocab.bpe's list of merges is not.
//
// "<|endoftext|>" in the text is ordinary text (seven tokens), as in gpt2_bpe.py's encode();
// a caller that wants the end-of-text token adds tokenizer.eot_token itself.
//
// Usage:
//     std::vector<int> ids = bpe_encode(tokenizer, "Hello world");   // {15496, 995}
// which builds the lookup table on each call (about 15 ms for GPT-2's 50257 tokens); to encode
// many texts, build it once with bpe_encoder_init(tokenizer) and call bpe_encode(encoder, text).
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer.h"
#include "unicode_tables.h"
#include "utils.h"

// ----------------------------------------------------------------------------
// step 1: UTF-8 -> code points

constexpr uint32_t UNICODE_REPLACEMENT_CHARACTER = 0xFFFD;

// What a lead byte promises: how many continuation bytes follow, the range the first of them
// must be in, and the lead's own bits of the code point. The range is narrower than 0x80..0xBF
// after E0 and F0 (which would make overlong forms), ED (UTF-16 surrogates) and F4 (above
// U+10FFFF); Unicode defines well-formed UTF-8 exactly this way.
struct Utf8Lead {
    int continuation_bytes;  // -1: the byte cannot start a character
    unsigned char first_lo, first_hi;
    uint32_t bits;
};

inline Utf8Lead utf8_lead(unsigned char b) {
    if (b < 0x80) { return {0, 0, 0, b}; }
    if (b >= 0xC2 && b <= 0xDF) { return {1, 0x80, 0xBF, (uint32_t)(b & 0x1F)}; }
    if (b >= 0xE0 && b <= 0xEF) {
        return {2, (unsigned char)(b == 0xE0 ? 0xA0 : 0x80), (unsigned char)(b == 0xED ? 0x9F : 0xBF), (uint32_t)(b & 0x0F)};
    }
    if (b >= 0xF0 && b <= 0xF4) {
        return {3, (unsigned char)(b == 0xF0 ? 0x90 : 0x80), (unsigned char)(b == 0xF4 ? 0x8F : 0xBF), (uint32_t)(b & 0x07)};
    }
    return {-1, 0, 0, 0};  // a continuation byte 80..BF, or C0, C1, F5..FF, which UTF-8 never uses
}

// Decodes the character at text[*pos] and moves *pos past it. An ill-formed sequence gives
// U+FFFD and moves past the lead and the continuation bytes that fit, stopping at the first
// byte that does not: that byte may start the next character.
inline uint32_t utf8_next(const std::string& text, size_t* pos) {
    Utf8Lead lead = utf8_lead((unsigned char)text[*pos]);
    (*pos)++;
    if (lead.continuation_bytes < 0) { return UNICODE_REPLACEMENT_CHARACTER; }
    uint32_t cp = lead.bits;
    unsigned char lo = lead.first_lo, hi = lead.first_hi;
    for (int k = 0; k < lead.continuation_bytes; k++) {
        if (*pos >= text.size()) { return UNICODE_REPLACEMENT_CHARACTER; }
        unsigned char c = (unsigned char)text[*pos];
        if (c < lo || c > hi) { return UNICODE_REPLACEMENT_CHARACTER; }
        cp = (cp << 6) | (c & 0x3F);
        (*pos)++;
        lo = 0x80, hi = 0xBF;  // only the first continuation byte has a narrower range
    }
    return cp;
}

inline std::vector<uint32_t> utf8_decode(const std::string& text) {
    std::vector<uint32_t> cps;
    cps.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) { cps.push_back(utf8_next(text, &pos)); }
    return cps;
}

// appends cp, a Unicode scalar value (utf8_decode gives no others), as UTF-8
inline void utf8_append(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
        out->push_back((char)cp);
    } else if (cp < 0x800) {
        out->push_back((char)(0xC0 | (cp >> 6)));
        out->push_back((char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out->push_back((char)(0xE0 | (cp >> 12)));
        out->push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
        out->push_back((char)(0x80 | (cp & 0x3F)));
    } else {
        out->push_back((char)(0xF0 | (cp >> 18)));
        out->push_back((char)(0x80 | ((cp >> 12) & 0x3F)));
        out->push_back((char)(0x80 | ((cp >> 6) & 0x3F)));
        out->push_back((char)(0x80 | (cp & 0x3F)));
    }
}

// ----------------------------------------------------------------------------
// step 2: pre-tokenizing

// The pattern sees every character as exactly one of these (the generator of unicode_tables.h
// checks that the three tables do not overlap).
enum class CharClass { Letter, Number, Space, Other };

template <size_t N>
inline bool unicode_in_ranges(const UnicodeRange (&ranges)[N], uint32_t cp) {
    // the ranges are sorted and disjoint: only the first one that ends at or after cp can hold it
    const UnicodeRange* r = std::lower_bound(ranges, ranges + N, cp,
                                             [](const UnicodeRange& range, uint32_t c) { return range.last < c; });
    return r != ranges + N && r->first <= cp;
}

inline CharClass unicode_char_class(uint32_t cp) {
    if (unicode_in_ranges(UNICODE_LETTERS, cp)) { return CharClass::Letter; }
    if (unicode_in_ranges(UNICODE_NUMBERS, cp)) { return CharClass::Number; }
    if (unicode_in_ranges(UNICODE_SPACES, cp)) { return CharClass::Space; }
    return CharClass::Other;
}

// The text as the matchers below see it: its code points and the class of each.
struct PretokenText {
    std::vector<uint32_t> cps;
    std::vector<CharClass> classes;
};

inline PretokenText pretoken_text(const std::string& utf8_text) {
    PretokenText t;
    t.cps = utf8_decode(utf8_text);
    t.classes.reserve(t.cps.size());
    for (uint32_t cp : t.cps) { t.classes.push_back(unicode_char_class(cp)); }
    return t;
}

// Each matcher returns the length in code points of its alternative's match at position i,
// or 0 when that alternative does not match there.

// 's|'t|'re|'ve|'m|'ll|'d
inline size_t pretoken_contraction(const PretokenText& t, size_t i) {
    if (t.cps[i] != '\'') { return 0; }
    // 0 past the end of the text: it is none of the letters looked for
    uint32_t a = i + 1 < t.cps.size() ? t.cps[i + 1] : 0;
    uint32_t b = i + 2 < t.cps.size() ? t.cps[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') { return 2; }
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) { return 3; }
    return 0;
}

// ` ?X+` for X one of \p{L}, \p{N}, [^\s\p{L}\p{N}]. The space is taken only when an X follows;
// without it the run must start at i, and a space is not an X, so then nothing matches.
inline size_t pretoken_run(const PretokenText& t, size_t i, CharClass x) {
    size_t n = t.cps.size();
    size_t run_start = (t.cps[i] == ' ' && i + 1 < n && t.classes[i + 1] == x) ? i + 1 : i;
    size_t end = run_start;
    while (end < n && t.classes[end] == x) { end++; }
    return end > run_start ? end - i : 0;
}

// \s+(?!\S)|\s+
inline size_t pretoken_spaces(const PretokenText& t, size_t i) {
    size_t n = t.cps.size();
    size_t end = i;
    while (end < n && t.classes[end] == CharClass::Space) { end++; }
    size_t run = end - i;
    if (run == 0) { return 0; }
    // \s+(?!\S): the whole run at the end of the text; before a non-space, the regex engine
    // backtracks one character, so that a space follows the match
    if (end == n) { return run; }
    if (run >= 2) { return run - 1; }
    return 1;  // a single space character before a non-space: only \s+ matches it
}

// The length of the piece at position i: the alternatives in the pattern's order.
inline size_t pretoken_length(const PretokenText& t, size_t i) {
    size_t len = pretoken_contraction(t, i);
    if (len == 0) { len = pretoken_run(t, i, CharClass::Letter); }
    if (len == 0) { len = pretoken_run(t, i, CharClass::Number); }
    if (len == 0) { len = pretoken_run(t, i, CharClass::Other); }
    if (len == 0) { len = pretoken_spaces(t, i); }
    // every character is a letter, number, space or other, so one of the alternatives matched
    return len;
}

// The pieces of the text, each as UTF-8 bytes; together they are the (decoded) text.
inline std::vector<std::string> pretokenize(const std::string& utf8_text) {
    PretokenText t = pretoken_text(utf8_text);
    std::vector<std::string> pieces;
    for (size_t i = 0; i < t.cps.size();) {
        size_t len = pretoken_length(t, i);
        std::string piece;
        for (size_t k = i; k < i + len; k++) { utf8_append(&piece, t.cps[k]); }
        pieces.push_back(std::move(piece));
        i += len;
    }
    return pieces;
}

// ----------------------------------------------------------------------------
// step 3: BPE on the bytes of each piece

// Marks an adjacent pair that does not concatenate to a vocabulary entry: larger than any id,
// so the search for the lowest id passes over it.
constexpr int BPE_NO_TOKEN = INT_MAX;

struct BpeEncoder {
    std::unordered_map<std::string, int> ids;  // a token's bytes -> its id; the end-of-text token is left out
};

inline int bpe_token_id(const BpeEncoder& enc, const std::string& piece, size_t begin, size_t end) {
    auto it = enc.ids.find(piece.substr(begin, end - begin));
    return it == enc.ids.end() ? BPE_NO_TOKEN : it->second;
}

// the index of the pair with the lowest id; the first one on a tie (the same bytes can occur
// twice, as in "aaaa")
inline size_t bpe_best_pair(const std::vector<int>& pair_ids) {
    size_t best = 0;
    for (size_t k = 1; k < pair_ids.size(); k++) {
        if (pair_ids[k] < pair_ids[best]) { best = k; }
    }
    return best;
}

// Appends the ids of one piece. Part k of the piece is bytes [starts[k], starts[k + 1]);
// pair_ids[k] is the id of parts k and k + 1 joined. A join changes only the pairs next to it,
// so only those two are looked up again. The search for the best pair is linear, which makes
// a piece of n bytes O(n^2): pieces are words, numbers or runs of the same kind of character,
// and prompts are short.
inline void bpe_encode_piece(const BpeEncoder& enc, const std::string& piece, std::vector<int>* out) {
    // A piece that is an entry is one token: tiktoken's rule. With GPT-2's vocabulary the joins
    // below reach every entry that can be a piece anyway (scripts/test_bpe.py's cpp_vocab_entries
    // passes without these lines), so here they only save time; the rule is kept explicit.
    int whole = bpe_token_id(enc, piece, 0, piece.size());
    if (whole != BPE_NO_TOKEN) {
        out->push_back(whole);
        return;
    }
    std::vector<size_t> starts(piece.size() + 1);
    for (size_t k = 0; k < starts.size(); k++) { starts[k] = k; }
    std::vector<int> pair_ids(piece.size() - 1);
    for (size_t k = 0; k < pair_ids.size(); k++) { pair_ids[k] = bpe_token_id(enc, piece, starts[k], starts[k + 2]); }

    while (!pair_ids.empty()) {
        size_t best = bpe_best_pair(pair_ids);
        if (pair_ids[best] == BPE_NO_TOKEN) { break; }
        // parts best and best + 1 become one part
        starts.erase(starts.begin() + (std::ptrdiff_t)best + 1);
        pair_ids.erase(pair_ids.begin() + (std::ptrdiff_t)best);
        if (best > 0) { pair_ids[best - 1] = bpe_token_id(enc, piece, starts[best - 1], starts[best + 1]); }
        if (best < pair_ids.size()) { pair_ids[best] = bpe_token_id(enc, piece, starts[best], starts[best + 2]); }
    }
    // every part is a vocabulary entry: a single byte (bpe_encoder_init checked that all 256 are)
    // or the result of a join, which is one by construction
    for (size_t k = 0; k + 1 < starts.size(); k++) { out->push_back(bpe_token_id(enc, piece, starts[k], starts[k + 1])); }
}

// ----------------------------------------------------------------------------
// public API

inline BpeEncoder bpe_encoder_init(const Tokenizer& tok) {
    if (!tok.ok) {
        die("tokenizer", "prepare the data first (scripts/prepare_data.py), which writes data/gpt2_tokenizer.bin",
            "encoding text needs the tokenizer file");
    }
    BpeEncoder enc;
    enc.ids.reserve((size_t)tok.vocab_size);
    for (int id = 0; id < tok.vocab_size; id++) {
        if (id == tok.eot_token) { continue; }  // "<|endoftext|>" in the text stays text
        // emplace keeps the first of equal byte strings, so the lowest id wins (GPT-2 has none)
        enc.ids.emplace(std::string(tok.tokens[id], (size_t)tok.lengths[id]), id);
    }
    // any byte can occur in a piece, so every single byte must be a token
    for (int b = 0; b < 256; b++) {
        if (enc.ids.count(std::string(1, (char)b)) == 0) {
            die("tokenizer", "use GPT-2's tokenizer file (scripts/prepare_data.py writes it)",
                "no token for the byte 0x%02x: not a byte-level BPE vocabulary", b);
        }
    }
    return enc;
}

inline std::vector<int> bpe_encode(const BpeEncoder& enc, const std::string& utf8_text) {
    std::vector<int> ids;
    for (const std::string& piece : pretokenize(utf8_text)) { bpe_encode_piece(enc, piece, &ids); }
    return ids;
}

inline std::vector<int> bpe_encode(const Tokenizer& tok, const std::string& utf8_text) {
    return bpe_encode(bpe_encoder_init(tok), utf8_text);
}
