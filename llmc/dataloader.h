// dataloader.h: serves (inputs, targets) batches from llm.c token shards, for training and evaluation.
//
// A shard is a header of 256 little-endian int32 values ([0] magic 20240520, [1] version 1,
// [2] number of tokens) followed by that many uint16 tokens. A glob pattern selects the shards;
// they are read in sorted order, one B*T window at a time, wrapping around to the first shard
// after the last one, forever. In a data-parallel run (llmc/ranks.h) the window is world*B*T
// tokens and rank r takes its r-th B*T slice: every rank's loader is in the same place, and
// world ranks of batch B see what one process of batch world*B would.
//
// Only one shard is held in memory at a time because real shards are ~200MB. Every shard's
// header and size is still checked at init, so that a bad file stops the run at startup instead
// of hours into training. Token values are checked when a shard is loaded (that needs its data).
#pragma once

#include <glob.h>
#include <sys/stat.h>

#include "utils.h"

// ----------------------------------------------------------------------------
// shard format

constexpr int DATA_MAGIC = 20240520;
constexpr int DATA_VERSION = 1;

// ----------------------------------------------------------------------------
// loader state

struct DataLoader {
    int B, T;               // batch size and sequence length (of this rank's slice)
    int rank, world;        // which slice of each world*B*T window this loader serves
    int vocab_size;         // every token must be below this
    char* pattern;          // copy of the glob pattern, so errors can name it later
    glob_t glob_result;     // the shard paths, sorted by glob(3)
    long num_shards;
    long shard_index;       // which shard shard_tokens holds
    long position;          // index in the current shard of the next batch's first token
    uint16_t* shard_tokens; // the current shard, sized for the largest shard
    long shard_num_tokens;  // tokens in the current shard
    long shard_capacity;    // tokens shard_tokens can hold (the largest shard)
    int* inputs;            // (B*T) tokens[pos+rank*B*T : pos+(rank+1)*B*T]
    int* targets;           // (B*T) the same, one token later
    long num_tokens;        // total across all shards
};

// the resume point saved in a checkpoint: the shard and the position within it
struct DataLoaderState {
    long shard;
    long position;
};

// ----------------------------------------------------------------------------
// small helpers

inline const char* dataloader_shard_path(const DataLoader* loader, long shard) {
    return loader->glob_result.gl_pathv[shard];
}

// a batch reads world*B*T inputs plus one more token for the last target
inline long dataloader_tokens_per_batch(const DataLoader* loader) {
    return (long)loader->world * loader->B * loader->T + 1;
}

// ----------------------------------------------------------------------------
// reading and checking one shard

// Reads and checks a shard's header and returns its token count. The count must agree exactly
// with the file size: fewer bytes means a cut-off download or copy, more means a wrong file.
inline long shard_read_token_count(const char* path) {
    FILE* f = fopen_check(path, "rb", "check the path of the data shards");
    int header[HEADER_INTS];
    read_header_check(f, path, header, DATA_MAGIC, "data shard");
    if (header[1] != DATA_VERSION) {
        die(path, "regenerate the shard with the data preparation scripts",
            "unsupported data shard version %d, expected %d", header[1], DATA_VERSION);
    }
    long count = header[2];
    if (count < 0) {
        die(path, "the file is corrupt; regenerate it", "negative token count %ld in the header", count);
    }
    long size = file_size_check(f, path);
    long expected = (long)(HEADER_INTS * sizeof(int)) + count * (long)sizeof(uint16_t);
    if (size < expected) {
        die(path, "the file is truncated; regenerate or re-download it",
            "truncated: the header declares %ld tokens (%ld bytes in all) but the file has %ld bytes",
            count, expected, size);
    }
    if (size > expected) {
        die(path, "is this the right file? regenerate it",
            "%ld trailing bytes after the %ld tokens the header declares", size - expected, count);
    }
    fclose_check(f, path);
    return count;
}

// a batch never spans two shards, so each shard must hold at least one whole batch
inline void shard_check_length(const char* path, long count, const DataLoader* loader) {
    long needed = dataloader_tokens_per_batch(loader);
    if (count < needed) {
        die(path, "use a smaller batch size (-b) or sequence length (-t), or fewer ranks",
            "shard has %ld tokens, fewer than the %ld (ranks*B*T+1 with %d ranks, B=%d, T=%d) one batch needs", count,
            needed, loader->world, loader->B, loader->T);
    }
}

// a token id past the vocabulary would index outside the embedding table
inline void shard_check_tokens(const char* path, const uint16_t* tokens, long count, int vocab_size) {
    for (long i = 0; i < count; i++) {
        if (tokens[i] >= vocab_size) {
            die(path, "the data was tokenized for a different vocabulary; prepare it again for this model",
                "token %d at position %ld is out of range for vocab size %d", (int)tokens[i], i, vocab_size);
        }
    }
}

// ----------------------------------------------------------------------------
// finding and validating the shards

inline void dataloader_glob(DataLoader* loader, const char* pattern) {
    int rc = glob(pattern, 0, nullptr, &loader->glob_result);
    if (rc == GLOB_NOMATCH) {
        die(pattern, "prepare the data first, or check the path; quote the pattern so the shell does not expand it",
            "no file matches this pattern");
    }
    if (rc != 0) {
        die(pattern, "check the directory permissions", "glob failed (code %d)", rc);
    }
    loader->num_shards = (long)loader->glob_result.gl_pathc;
}

// a directory matched by the pattern would otherwise fail later with a confusing read error
inline void shard_check_regular_file(const char* path) {
    struct stat st;
    if (stat(path, &st) != 0) { die(path, "check the path of the data shards", "cannot stat (%s)", strerror(errno)); }
    if (!S_ISREG(st.st_mode)) {
        die(path, "make the pattern match only shard files", "not a regular file");
    }
}

// checks every shard up front; sets num_tokens and the size of the largest shard
inline void dataloader_validate_shards(DataLoader* loader) {
    loader->num_tokens = 0;
    loader->shard_capacity = 0;
    for (long s = 0; s < loader->num_shards; s++) {
        const char* path = dataloader_shard_path(loader, s);
        shard_check_regular_file(path);
        long count = shard_read_token_count(path);
        shard_check_length(path, count, loader);
        loader->num_tokens += count;
        if (count > loader->shard_capacity) { loader->shard_capacity = count; }
    }
}

// ----------------------------------------------------------------------------
// loading a shard into memory

// Reads shard `shard` into shard_tokens. The header is read again because the file may have
// been replaced since init; a size we did not plan for must not overflow the buffer.
inline void dataloader_load_shard(DataLoader* loader, long shard) {
    const char* path = dataloader_shard_path(loader, shard);
    long count = shard_read_token_count(path);
    if (count > loader->shard_capacity) {
        die(path, "do not modify the data while a run uses it",
            "shard grew to %ld tokens since startup (largest shard then: %ld)", count, loader->shard_capacity);
    }
    shard_check_length(path, count, loader);
    FILE* f = fopen_check(path, "rb", "check the path of the data shards");
    fseek_check(f, (long)(HEADER_INTS * sizeof(int)), SEEK_SET, path);
    fread_check(loader->shard_tokens, sizeof(uint16_t), (size_t)count, f, path);
    fclose_check(f, path);
    shard_check_tokens(path, loader->shard_tokens, count, loader->vocab_size);
    loader->shard_index = shard;
    loader->shard_num_tokens = count;
    loader->position = 0;
}

// moves to the start of shard `shard`, skipping the reload when it is already in memory
// (the common case with a single shard)
inline void dataloader_go_to_shard(DataLoader* loader, long shard) {
    if (shard == loader->shard_index) {
        loader->position = 0;
        return;
    }
    dataloader_load_shard(loader, shard);
}

// ----------------------------------------------------------------------------
// public API

inline void dataloader_check_sizes(int B, int T, int vocab_size) {
    if (B <= 0 || T <= 0) {
        die("-b/-t", "use positive values", "batch size %d and sequence length %d must both be positive", B, T);
    }
    if (vocab_size <= 0) {
        die("vocab size", "this is a bug in the caller", "vocab size %d must be positive", vocab_size);
    }
}

// rank, world: this process's place in a data-parallel run (1 process: 0, 1)
inline void dataloader_init(DataLoader* loader, const char* pattern, int B, int T, int vocab_size, int rank = 0,
                            int world = 1) {
    dataloader_check_sizes(B, T, vocab_size);
    memset(loader, 0, sizeof(*loader));
    loader->B = B;
    loader->T = T;
    loader->rank = rank;
    loader->world = world;
    loader->vocab_size = vocab_size;
    loader->pattern = (char*)malloc_check(strlen(pattern) + 1, "dataloader pattern");
    strcpy(loader->pattern, pattern);
    dataloader_glob(loader, pattern);
    dataloader_validate_shards(loader);
    size_t batch = (size_t)B * (size_t)T;
    loader->shard_tokens = (uint16_t*)malloc_check((size_t)loader->shard_capacity * sizeof(uint16_t), "dataloader shard");
    loader->inputs = (int*)malloc_check(batch * sizeof(int), "dataloader inputs");
    loader->targets = (int*)malloc_check(batch * sizeof(int), "dataloader targets");
    loader->shard_index = -1; // nothing loaded yet, so the next line really loads shard 0
    dataloader_load_shard(loader, 0);
}

inline void dataloader_reset(DataLoader* loader) {
    dataloader_go_to_shard(loader, 0);
}

inline void dataloader_next_batch(DataLoader* loader) {
    // a batch must fit in the current shard, otherwise start the next one (wrapping to the first)
    if (loader->shard_num_tokens - loader->position < dataloader_tokens_per_batch(loader)) {
        dataloader_go_to_shard(loader, (loader->shard_index + 1) % loader->num_shards);
    }
    long n = (long)loader->B * loader->T;
    const uint16_t* slice = loader->shard_tokens + loader->position + loader->rank * n;
    for (long i = 0; i < n; i++) {
        loader->inputs[i] = slice[i];
        loader->targets[i] = slice[i + 1];
    }
    loader->position += loader->world * n;
}

inline DataLoaderState dataloader_get_state(const DataLoader* loader) {
    DataLoaderState s;
    s.shard = loader->shard_index;
    s.position = loader->position;
    return s;
}

// A state from a checkpoint must point into the same shards; a different data set or pattern
// would silently train on other tokens, so a state that does not fit is an error.
inline void dataloader_set_state(DataLoader* loader, DataLoaderState s) {
    if (s.shard < 0 || s.shard >= loader->num_shards) {
        die(loader->pattern, "resume with the same training data the checkpoint was made with",
            "the saved data position is in shard %ld, but the pattern matches %ld shards", s.shard, loader->num_shards);
    }
    dataloader_go_to_shard(loader, s.shard);
    if (s.position < 0 || s.position > loader->shard_num_tokens) {
        die(dataloader_shard_path(loader, s.shard), "resume with the same training data the checkpoint was made with",
            "the saved position %ld is outside this shard's %ld tokens", s.position, loader->shard_num_tokens);
    }
    loader->position = s.position;
}

inline void dataloader_free(DataLoader* loader) {
    free(loader->inputs);
    free(loader->targets);
    free(loader->shard_tokens);
    free(loader->pattern);
    globfree(&loader->glob_result);
    memset(loader, 0, sizeof(*loader));
}
