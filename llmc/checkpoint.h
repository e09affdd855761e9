// checkpoint.h: the model and training-state files, shared by the CPU and CUDA trainers.
//
// Model file (llm.c's format): a 256-int32 header
//     [0]=20240326 magic, [1]=version, [2]=maxT, [3]=V, [4]=L, [5]=NH, [6]=C, [7]=Vp
// then the 16 parameter tensors in the order of fill_in_parameter_sizes (llmc/gpt2_model.h),
// each value fp32 (version 3) or bf16 (version 5, llm.c's mixed-precision trainer: the upper
// 16 bits of an fp32). Both are read, a bf16 file widened to fp32 exactly; version 3 is written.
//
// State file (this project's, the rest of what a bit-identical resume needs): a 256-int32
// header [0]=20240331 magic, [1]=1, [2]=step (steps completed), [3]=B, [4]=T, [5]=micro-batches
// per step (0 in files written before gradient accumulation: 1), [6]=data-parallel ranks (0 in
// files written before them: 1), then a TrainState record, then the AdamW moments m and v
// (num_parameters fp32 each).
//
// A checkpoint at step N is model_0000000N.bin + state_0000000N.bin + DONE_0000000N in the log
// directory. Each file is written to a temporary name, flushed to disk and renamed, and the
// DONE marker comes last, so a kill at any moment leaves the previous checkpoint usable.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "llmc/gpt2_model.h"
#include "llmc/utils.h"

constexpr int MODEL_MAGIC = 20240326;
constexpr int STATE_MAGIC = 20240331;

// ----------------------------------------------------------------------------
// atomic files: write to PATH.tmp, flush to disk, rename over PATH

struct AtomicFile {
    FILE* f;
    std::string path, tmp;
};

inline AtomicFile atomic_open(const std::string& path) {
    AtomicFile a{nullptr, path, path + ".tmp"};
    a.f = fopen_check(a.tmp.c_str(), "wb", "check that the directory exists and is writable");
    return a;
}

inline void fsync_directory_of(const std::string& path) {
    size_t slash = path.find_last_of('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    int fd = open(dir.c_str(), O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

inline void atomic_commit(AtomicFile* a) {
    if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0) {
        die(a->tmp.c_str(), "check free disk space", "flush failed (%s)", strerror(errno));
    }
    fclose_check(a->f, a->tmp.c_str());
    if (rename(a->tmp.c_str(), a->path.c_str()) != 0) {
        die(a->path.c_str(), "check permissions of the directory", "rename failed (%s)", strerror(errno));
    }
    fsync_directory_of(a->path);
}

// ----------------------------------------------------------------------------
// model files

inline void model_header(int header[HEADER_INTS], const GPT2Config& c) {
    memset(header, 0, HEADER_INTS * sizeof(int));
    header[0] = MODEL_MAGIC; header[1] = 3; header[2] = c.max_seq_len; header[3] = c.vocab_size;
    header[4] = c.num_layers; header[5] = c.num_heads; header[6] = c.channels; header[7] = c.padded_vocab_size;
}

// A bf16 value is the upper half of an fp32 (PyTorch's bfloat16), so shifting its bits back
// into place gives that fp32 exactly.
inline float bf16_to_float(uint16_t b) {
    const uint32_t bits = (uint32_t)b << 16;
    float x;
    memcpy(&x, &bits, sizeof(x));
    return x;
}

// An open model file, at its parameters.
struct ModelFile {
    FILE* f;
    const char* path;
    int version; // 3: fp32 values, 5: bf16
};

// Opens a model file and validates its header and size.
inline ModelFile model_open(const char* path, GPT2Config* config) {
    FILE* f = fopen_check(path, "rb", "give a model file written by scripts/train_gpt2.py or by this trainer");
    int header[HEADER_INTS];
    read_header_check(f, path, header, MODEL_MAGIC, "model");
    const int version = header[1];
    if (version != 3 && version != 5) {
        die(path, "give an llm.c model file, or regenerate it with scripts/train_gpt2.py",
            "unsupported model file version %d, expected 3 (fp32) or 5 (bf16)", version);
    }
    *config = GPT2Config{header[2], header[3], header[7], header[4], header[5], header[6]};
    check_config(*config, path);
    const size_t n = count_parameters(*config);
    const size_t value_bytes = version == 3 ? sizeof(float) : sizeof(uint16_t);
    long expected = (long)(HEADER_INTS * sizeof(int) + n * value_bytes);
    long size = file_size_check(f, path);
    if (size != expected) {
        die(path, "the file is truncated or was written for another config; regenerate it",
            "model file (version %d, %s) is %ld bytes, its header implies %ld", version, version == 3 ? "fp32" : "bf16",
            size, expected);
    }
    if (version == 5) { printf("%s: llm.c bf16 file, widened to fp32\n", path); }
    return ModelFile{f, path, version};
}

// Reads the n parameters into params as fp32 (a bf16 file's widened exactly, a chunk at a time:
// no bf16 copy of the whole model is held), and closes the file.
inline void model_read_params(ModelFile m, float* params, size_t n) {
    if (m.version == 3) {
        fread_check(params, sizeof(float), n, m.f, m.path);
    } else {
        std::vector<uint16_t> chunk(std::min(n, (size_t)1 << 20));
        for (size_t done = 0; done < n; done += chunk.size()) {
            const size_t count = std::min(chunk.size(), n - done);
            fread_check(chunk.data(), sizeof(uint16_t), count, m.f, m.path);
            for (size_t i = 0; i < count; i++) { params[done + i] = bf16_to_float(chunk[i]); }
        }
    }
    fclose_check(m.f, m.path);
}

inline void model_write(const std::string& path, const GPT2Config& c, const float* params) {
    int header[HEADER_INTS];
    model_header(header, c);
    AtomicFile a = atomic_open(path);
    fwrite_check(header, sizeof(int), HEADER_INTS, a.f, a.tmp.c_str());
    fwrite_check(params, sizeof(float), count_parameters(c), a.f, a.tmp.c_str());
    atomic_commit(&a);
}

// ----------------------------------------------------------------------------
// state files

// Everything besides parameters and moments that a resumed run needs to continue bit-identically.
struct TrainState {
    int64_t num_parameters;  // must match the model
    int64_t train_shard;     // data loader position
    int64_t train_position;
    uint64_t sample_rng;     // text sampling
    uint64_t fault_rng;      // fault injection in rate mode
    int64_t fault_fired;
};

// ranks: the processes of a data-parallel run (llmc/ranks.h), each with batches of (B, T)
inline void state_write(const std::string& path, int step, int B, int T, int micro_steps, int ranks, const TrainState& s,
                        const float* m, const float* v) {
    int header[HEADER_INTS] = {0};
    header[0] = STATE_MAGIC; header[1] = 1; header[2] = step; header[3] = B; header[4] = T;
    header[5] = micro_steps;
    header[6] = ranks;
    AtomicFile a = atomic_open(path);
    fwrite_check(header, sizeof(int), HEADER_INTS, a.f, a.tmp.c_str());
    fwrite_check(&s, sizeof(s), 1, a.f, a.tmp.c_str());
    fwrite_check(m, sizeof(float), (size_t)s.num_parameters, a.f, a.tmp.c_str());
    fwrite_check(v, sizeof(float), (size_t)s.num_parameters, a.f, a.tmp.c_str());
    atomic_commit(&a);
}

// Reads a state file written for a model of num_parameters and steps of micro_steps batches of
// (B, T) on each of `ranks` processes; returns the step.
inline int state_read(const char* path, size_t num_parameters, int B, int T, int micro_steps, int ranks, TrainState* s,
                      float* m, float* v) {
    FILE* f = fopen_check(path, "rb", "resume from a log directory holding a complete checkpoint");
    int header[HEADER_INTS];
    read_header_check(f, path, header, STATE_MAGIC, "training state");
    if (header[1] != 1) { die(path, "written by another version of this trainer", "unsupported state version %d", header[1]); }
    if (header[3] != B || header[4] != T) {
        die(path, "resume with the same -b and -t as the run that wrote it", "written for -b %d -t %d, this run has -b %d -t %d",
            header[3], header[4], B, T);
    }
    const int written_micro = header[5] > 0 ? header[5] : 1; // 0: written before gradient accumulation
    if (written_micro != micro_steps) {
        die(path, "resume with the same -d, -b and -t as the run that wrote it",
            "written for %d micro-batches per step, this run has %d", written_micro, micro_steps);
    }
    const int written_ranks = header[6] > 0 ? header[6] : 1; // 0: written before data-parallel runs
    if (written_ranks != ranks) {
        die(path, "resume with as many ranks as the run that wrote it (mpirun -np N)", "written by %d ranks, this run has %d",
            written_ranks, ranks);
    }
    long expected = (long)(HEADER_INTS * sizeof(int) + sizeof(TrainState) + 2 * num_parameters * sizeof(float));
    long size = file_size_check(f, path);
    if (size != expected) {
        die(path, "the file is truncated or belongs to another model", "state file is %ld bytes, expected %ld", size, expected);
    }
    fread_check(s, sizeof(*s), 1, f, path);
    if ((size_t)s->num_parameters != num_parameters) {
        die(path, "it belongs to another model", "state for %lld parameters, the model has %zu", (long long)s->num_parameters, num_parameters);
    }
    fread_check(m, sizeof(float), num_parameters, f, path);
    fread_check(v, sizeof(float), num_parameters, f, path);
    fclose_check(f, path);
    return header[2];
}

// ----------------------------------------------------------------------------
// checkpoints in a log directory

inline std::string checkpoint_path(const char* dir, const char* kind, int step) {
    char name[64];
    snprintf(name, sizeof(name), "/%s_%08d%s", kind, step, strcmp(kind, "DONE") == 0 ? "" : ".bin");
    return std::string(dir) + name;
}

inline void checkpoint_mark_done(const char* dir, int step) {
    AtomicFile a = atomic_open(checkpoint_path(dir, "DONE", step));
    atomic_commit(&a);
}

// Deletes the checkpoints older than `keep_from` (their DONE marker first, so that a kill in
// between never leaves a marked checkpoint with missing files).
inline void checkpoint_remove_older(const char* dir, int keep_from) {
    DIR* d = opendir(dir);
    if (d == nullptr) { return; }
    for (struct dirent* e = readdir(d); e != nullptr; e = readdir(d)) {
        int step = 0, consumed = 0;
        if (sscanf(e->d_name, "DONE_%8d%n", &step, &consumed) == 1 && e->d_name[consumed] == '\0' && step < keep_from) {
            remove(checkpoint_path(dir, "DONE", step).c_str());
            remove(checkpoint_path(dir, "model", step).c_str());
            remove(checkpoint_path(dir, "state", step).c_str());
        }
    }
    closedir(d);
}

// The step of the newest complete checkpoint in dir (one with its DONE marker), or -1.
inline int checkpoint_latest(const char* dir) {
    DIR* d = opendir(dir);
    if (d == nullptr) { return -1; }
    int latest = -1;
    for (struct dirent* e = readdir(d); e != nullptr; e = readdir(d)) {
        int step = 0, consumed = 0;
        if (sscanf(e->d_name, "DONE_%8d%n", &step, &consumed) == 1 && e->d_name[consumed] == '\0' && step > latest) {
            latest = step;
        }
    }
    closedir(d);
    return latest;
}
