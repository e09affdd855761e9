// harness_util.h: fatal errors, diagnostics and settings shared by the CPU harness headers.
//
// Every message of the harness starts with "cuda harness:" (a diagnostic that explains an
// error code about to be returned) or "error:" (the program cannot go on and exits with 1),
// so that it is told apart from the program's own output.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

// The sanitizer build (harness_sanitizer.h) instruments every load and store of the program;
// the harness's own code is exempt, between these two markers (clang's attribute pragma).
#ifdef CUDA_HARNESS_SANITIZE
#define CUDA_HARNESS_UNTRACED_BEGIN \
    _Pragma("clang attribute push(__attribute__((no_sanitize(\"coverage\"))), apply_to = function)")
#define CUDA_HARNESS_UNTRACED_END _Pragma("clang attribute pop")
#else
#define CUDA_HARNESS_UNTRACED_BEGIN
#define CUDA_HARNESS_UNTRACED_END
#endif

namespace cuda_harness {

// ----------------------------------------------------------------------------
// messages

// Ends the program: "error: cuda harness: <message> (hint: <hint>)". _Exit, not exit: it
// may be called on a worker thread or a simulated thread's stack, where running static
// destructors while other threads still run would be unsafe. Output is flushed first.
[[noreturn]] inline void fatal(const char* hint, const char* fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "error: cuda harness: ");
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    if (hint != nullptr) { fprintf(stderr, " (hint: %s)", hint); }
    fprintf(stderr, "\n");
    fflush(stderr);
    _Exit(EXIT_FAILURE);
}

// Whether diagnostics are printed: CUDA_HARNESS_QUIET=1 turns them off (read at every
// diagnostic, so that a test can silence the errors it provokes on purpose).
inline bool diagnostics_enabled() {
    const char* quiet = getenv("CUDA_HARNESS_QUIET");
    return quiet == nullptr || quiet[0] == '\0' || quiet[0] == '0';
}

// Explains on stderr why an API call is about to return an error code: the code alone
// ("invalid argument") rarely says which argument.
inline void diagnose(const char* fmt, ...) {
    if (!diagnostics_enabled()) { return; }
    fflush(stdout);
    fprintf(stderr, "cuda harness: ");
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fprintf(stderr, "\n");
}

// ----------------------------------------------------------------------------
// settings from the environment

// A positive integer from the environment, or `fallback` when unset; garbage is fatal.
inline long env_long(const char* name, long fallback, long min_value, long max_value) {
    const char* text = getenv(name);
    if (text == nullptr || text[0] == '\0') { return fallback; }
    char* end = nullptr;
    long value = strtol(text, &end, 10);
    if (*end != '\0' || value < min_value || value > max_value) {
        fatal("unset it or give an integer in range", "%s=%s is not an integer in [%ld, %ld]", name, text,
              min_value, max_value);
    }
    return value;
}

}  // namespace cuda_harness
