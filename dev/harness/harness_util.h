// harness_util.h: fatal errors, diagnostics and settings shared by the CPU harness headers.
//
// Every message of the harness starts with "cuda harness:" (a diagnostic that explains an
// error code about to be returned) or "error:" (the program cannot go on and exits with 1),
// so that it is told apart from the program's own output.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

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

// ----------------------------------------------------------------------------
// where the time goes: CUDA_HARNESS_PROFILE=1

// With CUDA_HARNESS_PROFILE=1 each kernel launch and each GEMM is timed on the wall clock,
// by name (a GEMM's name includes its shape), and the totals are printed on stderr at exit,
// largest first: what to make faster when a harness run is slow.
class Profile {
public:
    static bool enabled() {
        static const bool on = env_long("CUDA_HARNESS_PROFILE", 0, 0, 1) == 1;
        return on;
    }
    static Profile& get() {
        static Profile* profile = [] {
            Profile* p = new Profile;
            atexit([] { Profile::get().print(); });
            return p;
        }();
        return *profile;
    }
    void add(const std::string& name, double seconds) {
        std::lock_guard<std::mutex> lock(mu_);
        Entry& e = entries_[name];
        e.calls++;
        e.seconds += seconds;
    }

private:
    struct Entry {
        long calls = 0;
        double seconds = 0.0;
    };
    void print() {
        std::lock_guard<std::mutex> lock(mu_);
        std::vector<std::pair<std::string, Entry>> rows(entries_.begin(), entries_.end());
        std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
        double total = 0.0;
        for (const auto& r : rows) { total += r.second.seconds; }
        fprintf(stderr, "cuda harness: profile: %.3f s in kernels and GEMMs\n%10s %8s %6s  %s\n", total, "seconds",
                "calls", "share", "kernel or GEMM");
        for (const auto& r : rows) {
            fprintf(stderr, "%10.3f %8ld %5.1f%%  %s\n", r.second.seconds, r.second.calls,
                    total > 0.0 ? 100.0 * r.second.seconds / total : 0.0, r.first.c_str());
        }
    }
    std::mutex mu_;
    std::map<std::string, Entry> entries_;
};

// Times its own lifetime into the profile under `name` (built only when profiling is on).
class ProfileScope {
public:
    template <typename Name>
    explicit ProfileScope(Name&& make_name) {
        if (Profile::enabled()) {
            name_ = make_name();
            start_ = std::chrono::steady_clock::now();
            on_ = true;
        }
    }
    ~ProfileScope() {
        if (on_) {
            Profile::get().add(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
        }
    }

private:
    bool on_ = false;
    std::string name_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace cuda_harness
