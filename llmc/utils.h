// utils.h: checked file I/O, allocation and error reporting, shared by every program here.
//
// Every failure ends the program with one line on stderr of the form
//     error: <file or flag>: <reason> (hint: <what to do>)
// and exit status 1, so a bad input never turns into a crash or a silently wrong answer.
// The *_check functions take the path they operate on so that the message can name it.
#pragma once

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

// ----------------------------------------------------------------------------
// fatal errors

[[noreturn]] inline void die(const char* where, const char* hint, const char* fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "error: %s: ", where);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    if (hint != nullptr && hint[0] != '\0') { fprintf(stderr, " (hint: %s)", hint); }
    fprintf(stderr, "\n");
    exit(EXIT_FAILURE);
}

// ----------------------------------------------------------------------------
// time

inline double wall_seconds() {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// ----------------------------------------------------------------------------
// memory

inline void* malloc_check(size_t bytes, const char* what) {
    void* p = malloc(bytes);
    if (p == nullptr && bytes > 0) {
        die(what, "reduce the batch size (-b), the sequence length (-t) or the model size",
            "out of memory allocating %zu bytes", bytes);
    }
    return p;
}

inline void* calloc_check(size_t bytes, const char* what) {
    void* p = malloc_check(bytes, what);
    memset(p, 0, bytes);
    return p;
}

// ----------------------------------------------------------------------------
// files

inline FILE* fopen_check(const char* path, const char* mode, const char* hint) {
    FILE* f = fopen(path, mode);
    if (f == nullptr) { die(path, hint, "cannot open (%s)", strerror(errno)); }
    return f;
}

inline void fread_check(void* dst, size_t size, size_t count, FILE* f, const char* path) {
    long offset = ftell(f);
    size_t got = fread(dst, size, count, f);
    if (got != count) {
        if (ferror(f)) { die(path, "check the disk and file permissions", "read failed (%s)", strerror(errno)); }
        die(path, "the file is truncated or not of this kind; regenerate it",
            "truncated: expected %zu bytes at offset %ld, found only %zu", size * count, offset, size * got);
    }
}

inline void fwrite_check(const void* src, size_t size, size_t count, FILE* f, const char* path) {
    if (fwrite(src, size, count, f) != count) {
        die(path, "check free disk space and permissions", "write failed (%s)", strerror(errno));
    }
}

inline void fseek_check(FILE* f, long offset, int whence, const char* path) {
    if (fseek(f, offset, whence) != 0) { die(path, "the file may be truncated", "seek failed (%s)", strerror(errno)); }
}

inline void fclose_check(FILE* f, const char* path) {
    if (fclose(f) != 0) { die(path, "check free disk space", "close failed (%s)", strerror(errno)); }
}

inline long file_size_check(FILE* f, const char* path) {
    long here = ftell(f);
    fseek_check(f, 0, SEEK_END, path);
    long size = ftell(f);
    fseek_check(f, here, SEEK_SET, path);
    return size;
}

// ----------------------------------------------------------------------------
// llm.c file headers: 256 little-endian int32 values; [0] is the magic, [1] the version

constexpr int HEADER_INTS = 256;

inline void read_header_check(FILE* f, const char* path, int header[HEADER_INTS], int magic, const char* kind) {
    long size = file_size_check(f, path);
    if (size < (long)(HEADER_INTS * sizeof(int))) {
        die(path, "the file is truncated or not of this kind; regenerate it",
            "%s file too short for its 1024-byte header (%ld bytes)", kind, size);
    }
    fread_check(header, sizeof(int), HEADER_INTS, f, path);
    if (header[0] != magic) {
        die(path, "is this the right file? regenerate it with the scripts in scripts/",
            "bad magic number %d, expected %d for a %s file", header[0], magic, kind);
    }
}
