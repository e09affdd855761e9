// tokenizer.h: turns GPT-2 token ids back into bytes, so that samples can be printed as text.
//
// Decoding only: training reads already-tokenized shards. The file is a header of 256
// little-endian int32 values ([0] magic 20240328, [1] version 2, [2] vocab size, [3] the
// end-of-text token id) followed, for each token, by a uint8 length (> 0) and that many bytes.
// (llmc/bpe.h encodes prompts with the same tokens.)
//
// The tokenizer is optional: without the file, samples print token ids instead (ok == false).
// A file that is there but malformed is an error, because it would print wrong text.
#pragma once

#include <cctype>

#include "utils.h"

// ----------------------------------------------------------------------------
// file format

constexpr int TOKENIZER_MAGIC = 20240328;
constexpr int TOKENIZER_VERSION = 2;

struct Tokenizer {
    int vocab_size;
    int eot_token;  // <|endoftext|>
    char** tokens;  // vocab_size NUL-terminated byte strings
    int* lengths;   // each token's length in bytes: GPT-2's token 188 is the byte 0x00, which strlen misses
    bool ok;        // false when the file was absent: callers print ids instead
};

// ----------------------------------------------------------------------------
// reading the file

inline void tokenizer_check_header(const int header[HEADER_INTS], long file_size, const char* path) {
    const char* hint = "regenerate the tokenizer file with the data preparation scripts";
    if (header[1] != TOKENIZER_VERSION) {
        die(path, hint, "unsupported tokenizer version %d, expected %d", header[1], TOKENIZER_VERSION);
    }
    int vocab_size = header[2];
    if (vocab_size <= 0) { die(path, hint, "vocab size %d must be positive", vocab_size); }
    // each token takes at least 2 bytes (length + one byte); checking this before allocating
    // keeps a corrupt vocab size from turning into a misleading out-of-memory error
    long room = (file_size - (long)(HEADER_INTS * sizeof(int))) / 2;
    if (vocab_size > room) {
        die(path, "the file is truncated; regenerate it",
            "truncated: the header declares %d tokens but the file has room for at most %ld", vocab_size, room);
    }
    int eot = header[3];
    if (eot < 0 || eot >= vocab_size) {
        die(path, hint, "end-of-text token id %d is outside the vocabulary of %d tokens", eot, vocab_size);
    }
}

// reads one length-prefixed token as a NUL-terminated string; *out_length gets its length
inline char* tokenizer_read_piece(FILE* f, const char* path, int id, int* out_length) {
    unsigned char length;
    fread_check(&length, 1, 1, f, path);
    if (length == 0) {
        die(path, "the file is corrupt; regenerate it", "token %d has length 0", id);
    }
    char* piece = (char*)malloc_check((size_t)length + 1, "tokenizer token");
    fread_check(piece, 1, length, f, path);
    piece[length] = '\0';
    *out_length = length;
    return piece;
}

// bytes after the last token mean the header and the data disagree
inline void tokenizer_check_end(FILE* f, long file_size, const char* path) {
    long here = ftell(f);
    if (here != file_size) {
        die(path, "is this the right file? regenerate it",
            "%ld trailing bytes after the last token", file_size - here);
    }
}

// ----------------------------------------------------------------------------
// public API

inline void tokenizer_init(Tokenizer* t, const char* path) {
    memset(t, 0, sizeof(*t));
    t->eot_token = -1;
    FILE* f = fopen(path, "rb");
    if (f == nullptr) {
        if (errno != ENOENT) { die(path, "check the file permissions", "cannot open (%s)", strerror(errno)); }
        fprintf(stderr, "warning: %s: not found; samples will print token ids (hint: prepare the data first, "
                        "which also writes the tokenizer)\n", path);
        return;
    }
    int header[HEADER_INTS];
    read_header_check(f, path, header, TOKENIZER_MAGIC, "tokenizer");
    long file_size = file_size_check(f, path);
    tokenizer_check_header(header, file_size, path);
    t->vocab_size = header[2];
    t->eot_token = header[3];
    t->tokens = (char**)malloc_check((size_t)t->vocab_size * sizeof(char*), "tokenizer table");
    t->lengths = (int*)malloc_check((size_t)t->vocab_size * sizeof(int), "tokenizer lengths");
    for (int i = 0; i < t->vocab_size; i++) { t->tokens[i] = tokenizer_read_piece(f, path, i, &t->lengths[i]); }
    tokenizer_check_end(f, file_size, path);
    fclose_check(f, path);
    t->ok = true;
}

inline const char* tokenizer_decode(const Tokenizer* t, int token_id) {
    if (!t->ok) {
        die("tokenizer", "check tokenizer.ok before decoding; print the id instead", "decode called without a tokenizer file");
    }
    if (token_id < 0 || token_id >= t->vocab_size) {
        die("tokenizer", "the model and the tokenizer disagree on the vocabulary",
            "token id %d is out of range for vocab size %d", token_id, t->vocab_size);
    }
    return t->tokens[token_id];
}

// Prints a decoded piece without control bytes, which could garble the terminal.
// Printable ASCII and whitespace pass, and so do bytes >= 0x80: GPT-2 splits UTF-8 characters
// across tokens, and dropping those parts would lose every non-ASCII character.
inline bool tokenizer_byte_printable(unsigned char c) {
    return c >= 0x80 || isprint(c) || isspace(c);
}

inline void safe_print(const char* piece) {
    if (piece == nullptr) { return; }
    for (const unsigned char* p = (const unsigned char*)piece; *p != '\0'; p++) {
        if (tokenizer_byte_printable(*p)) { putchar(*p); }
    }
}

inline void tokenizer_free(Tokenizer* t) {
    if (t->tokens != nullptr) {
        for (int i = 0; i < t->vocab_size; i++) { free(t->tokens[i]); }
        free(t->tokens);
    }
    free(t->lengths);
    memset(t, 0, sizeof(*t));
}
