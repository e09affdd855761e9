// test_llmc.cpp: tests for the shared headers llmc/dataloader.h, llmc/tokenizer.h, llmc/rand.h
// and the memory layout of llmc/gpt2_model.h.
//
// Build and run from the repository root:
//     g++ -O2 -std=c++17 -I. dev/test_llmc.cpp -o dev/test_llmc && ./dev/test_llmc
//
// The test writes its own small shard and tokenizer files into a fresh temporary directory.
// Error paths end the process through die(), so each one runs in a forked child whose exit
// status and stderr are checked: it must exit with status 1 (not crash, not succeed) and print
// one line "error: ... (hint: ...)" that names the bad file.
// Prints "PASS name" or "FAIL name: detail" per check, then "N passed, M failed".

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "llmc/dataloader.h"
#include "llmc/gpt2_model.h"
#include "llmc/rand.h"
#include "llmc/tokenizer.h"

// ----------------------------------------------------------------------------
// reporting

static int g_passed = 0;
static int g_failed = 0;

static void check(const std::string& name, bool ok, const std::string& detail = "") {
    if (ok) {
        printf("PASS %s\n", name.c_str());
        g_passed++;
    } else {
        printf("FAIL %s: %s\n", name.c_str(), detail.c_str());
        g_failed++;
    }
    fflush(stdout);
}

// ----------------------------------------------------------------------------
// scratch files in a temporary directory, removed at the end

static std::string g_dir;
static std::vector<std::string> g_files;
static std::vector<std::string> g_dirs;

static std::string scratch(const std::string& name) { return g_dir + "/" + name; }

static std::string write_file(const std::string& name, const std::vector<char>& bytes) {
    std::string path = scratch(name);
    FILE* f = fopen_check(path.c_str(), "wb", "check the temporary directory");
    fwrite_check(bytes.data(), 1, bytes.size(), f, path.c_str());
    fclose_check(f, path.c_str());
    g_files.push_back(path);
    return path;
}

static void append_ints(std::vector<char>* bytes, const int* values, int n) {
    const char* p = (const char*)values;
    bytes->insert(bytes->end(), p, p + n * sizeof(int));
}

static std::vector<char> header_bytes(int magic, int version, int a, int b = 0) {
    int header[HEADER_INTS] = {0};
    header[0] = magic;
    header[1] = version;
    header[2] = a;
    header[3] = b;
    std::vector<char> bytes;
    append_ints(&bytes, header, HEADER_INTS);
    return bytes;
}

// a shard whose header declares `declared` tokens, holding `tokens`
static std::vector<char> shard_bytes(const std::vector<uint16_t>& tokens, int declared, int magic = DATA_MAGIC,
                                     int version = DATA_VERSION) {
    std::vector<char> bytes = header_bytes(magic, version, declared);
    const char* p = (const char*)tokens.data();
    bytes.insert(bytes.end(), p, p + tokens.size() * sizeof(uint16_t));
    return bytes;
}

static std::vector<uint16_t> token_range(int first, int count) {
    std::vector<uint16_t> tokens;
    for (int i = 0; i < count; i++) { tokens.push_back((uint16_t)(first + i)); }
    return tokens;
}

static std::string write_shard(const std::string& name, const std::vector<uint16_t>& tokens) {
    return write_file(name, shard_bytes(tokens, (int)tokens.size()));
}

static std::vector<char> tokenizer_bytes(const std::vector<std::string>& pieces, int eot, int magic = TOKENIZER_MAGIC,
                                         int version = TOKENIZER_VERSION) {
    std::vector<char> bytes = header_bytes(magic, version, (int)pieces.size(), eot);
    for (const std::string& piece : pieces) {
        bytes.push_back((char)(unsigned char)piece.size());
        bytes.insert(bytes.end(), piece.begin(), piece.end());
    }
    return bytes;
}

static void make_scratch_dir() {
    char templ[] = "/tmp/test_llmc_XXXXXX";
    if (mkdtemp(templ) == nullptr) { die("/tmp", "check that /tmp is writable", "mkdtemp failed (%s)", strerror(errno)); }
    g_dir = templ;
}

static void remove_scratch_dir() {
    for (const std::string& f : g_files) { unlink(f.c_str()); }
    for (const std::string& d : g_dirs) { rmdir(d.c_str()); }
    rmdir(g_dir.c_str());
}

// ----------------------------------------------------------------------------
// running code that may die() in a child process

struct ChildResult {
    bool exited;      // false: killed by a signal (a crash)
    int code;         // exit status, when exited
    int signal;       // the signal, when not exited
    std::string out;  // its stdout
    std::string err;  // its stderr
};

static std::string read_whole(const std::string& path) {
    std::string text;
    FILE* f = fopen(path.c_str(), "rb");
    if (f == nullptr) { return text; }
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) { text.append(buf, got); }
    fclose(f);
    return text;
}

static ChildResult run_in_child(const std::function<void()>& fn) {
    std::string out_path = scratch("child.out");
    std::string err_path = scratch("child.err");
    fflush(stdout);  // otherwise the child would print the parent's buffered output again
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { die("fork", "check process limits", "fork failed (%s)", strerror(errno)); }
    if (pid == 0) {
        alarm(20);  // a hang in the child must not hang the test
        if (freopen(out_path.c_str(), "w", stdout) == nullptr || freopen(err_path.c_str(), "w", stderr) == nullptr) {
            _exit(98);
        }
        fn();
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ChildResult r;
    r.exited = WIFEXITED(status);
    r.code = r.exited ? WEXITSTATUS(status) : -1;
    r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    r.out = read_whole(out_path);
    r.err = read_whole(err_path);
    unlink(out_path.c_str());
    unlink(err_path.c_str());
    return r;
}

static bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

static bool is_one_line(const std::string& text) {
    return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

// fn must end through die(): status 1 and one "error: <where>: ... (hint: ...)" line containing every
// string in `needles` (the first one is normally the file name)
static void expect_error(const std::string& name, const std::function<void()>& fn,
                         const std::vector<std::string>& needles) {
    ChildResult r = run_in_child(fn);
    std::string detail;
    if (!r.exited) {
        detail = "crashed with signal " + std::to_string(r.signal);
    } else if (r.code == 0) {
        detail = "exited 0 instead of failing";
    } else if (r.code != 1) {
        detail = "exit status " + std::to_string(r.code) + ", expected 1";
    } else if (r.err.rfind("error: ", 0) != 0 || !is_one_line(r.err) || !contains(r.err, "(hint: ")) {
        detail = "stderr is not one 'error: ... (hint: ...)' line: [" + r.err + "]";
    } else {
        for (const std::string& needle : needles) {
            if (!contains(r.err, needle)) {
                detail = "stderr lacks '" + needle + "': [" + r.err.substr(0, r.err.size() - 1) + "]";
                break;
            }
        }
    }
    check(name, detail.empty(), detail);
}

// ----------------------------------------------------------------------------
// dataloader: batches

constexpr int TEST_B = 2;
constexpr int TEST_T = 4;
constexpr int TEST_VOCAB = 1000;

// Tokens are their own index plus a base (0 in shard 0, 100 in shard 1), so a batch starting
// at token value `first` must hold first, first+1, ... and targets one further.
static std::string batch_mismatch(const DataLoader* loader, int first) {
    int n = loader->B * loader->T;
    for (int i = 0; i < n; i++) {
        if (loader->inputs[i] != first + i || loader->targets[i] != first + i + 1) {
            return "at " + std::to_string(i) + " got input " + std::to_string(loader->inputs[i]) + " target " +
                   std::to_string(loader->targets[i]) + ", expected " + std::to_string(first + i) + " " +
                   std::to_string(first + i + 1);
        }
    }
    return "";
}

static void check_next_batch(const std::string& name, DataLoader* loader, int first) {
    dataloader_next_batch(loader);
    std::string detail = batch_mismatch(loader, first);
    check(name, detail.empty(), detail);
}

static std::string g_two_shards;  // pattern matching batch_000.bin (33 tokens: 0..32) and batch_001.bin (20: 100..119)

static void make_batch_shards() {
    write_shard("batch_000.bin", token_range(0, 33));
    write_shard("batch_001.bin", token_range(100, 20));
    g_two_shards = scratch("batch_*.bin");
}

static void test_batches() {
    DataLoader loader;
    dataloader_init(&loader, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB);
    check("dataloader finds both shards", loader.num_shards == 2, std::to_string(loader.num_shards) + " shards");
    check("dataloader counts all tokens", loader.num_tokens == 53, std::to_string(loader.num_tokens) + " tokens");
    // B*T = 8: shard 0 serves windows at 0, 8, 16, 24 (the last uses token 32, its final one)
    check_next_batch("batch inputs/targets offsets", &loader, 0);
    check_next_batch("batch advances by B*T", &loader, 8);
    check_next_batch("batch third window", &loader, 16);
    check_next_batch("batch uses the last token of a shard", &loader, 24);
    check_next_batch("batch moves to the next shard", &loader, 100);
    check_next_batch("batch second window of shard 1", &loader, 108);
    // 4 tokens left in shard 1, fewer than B*T+1 = 9
    check_next_batch("batch wraps around to the first shard", &loader, 0);
    DataLoaderState s = dataloader_get_state(&loader);
    check("state after wrap-around", s.shard == 0 && s.position == 8,
          "shard " + std::to_string(s.shard) + " position " + std::to_string(s.position));
    for (int i = 0; i < 5; i++) { dataloader_next_batch(&loader); }  // now in shard 1
    dataloader_reset(&loader);
    check_next_batch("reset goes back to shard 0 position 0", &loader, 0);
    dataloader_free(&loader);

    dataloader_init(&loader, scratch("batch_000.bin").c_str(), TEST_B, TEST_T, TEST_VOCAB);
    for (int i = 0; i < 4; i++) { dataloader_next_batch(&loader); }
    check_next_batch("single shard wraps to its start", &loader, 0);
    dataloader_free(&loader);
}

// Two ranks of batch B serve, slice by slice, what one loader of batch 2B serves, through
// shard changes and wrap-arounds, and share one state.
static void test_rank_slices() {
    DataLoader whole, rank0, rank1;
    dataloader_init(&whole, g_two_shards.c_str(), 2 * TEST_B, TEST_T, TEST_VOCAB);
    dataloader_init(&rank0, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB, 0, 2);
    dataloader_init(&rank1, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB, 1, 2);
    std::string detail;
    const int n = TEST_B * TEST_T;
    for (int b = 0; b < 6 && detail.empty(); b++) {
        dataloader_next_batch(&whole);
        dataloader_next_batch(&rank0);
        dataloader_next_batch(&rank1);
        for (int i = 0; i < 2 * n && detail.empty(); i++) {
            const DataLoader& r = i < n ? rank0 : rank1;
            if (r.inputs[i % n] != whole.inputs[i] || r.targets[i % n] != whole.targets[i]) {
                detail = "batch " + std::to_string(b) + " position " + std::to_string(i) + ": rank " +
                         std::to_string(i / n) + " differs from the whole batch";
            }
        }
        const DataLoaderState s0 = dataloader_get_state(&rank0), s1 = dataloader_get_state(&rank1);
        const DataLoaderState sw = dataloader_get_state(&whole);
        if (detail.empty() && (s0.shard != sw.shard || s0.position != sw.position || s1.shard != sw.shard ||
                               s1.position != sw.position)) {
            detail = "batch " + std::to_string(b) + ": the ranks' states differ from the whole loader's";
        }
    }
    check("2 ranks of batch B = 1 loader of batch 2B, slice by slice", detail.empty(), detail);
    dataloader_free(&whole);
    dataloader_free(&rank0);
    dataloader_free(&rank1);
}

// ----------------------------------------------------------------------------
// dataloader: resume state

static std::vector<int> next_batches(DataLoader* loader, int count) {
    std::vector<int> seen;
    for (int b = 0; b < count; b++) {
        dataloader_next_batch(loader);
        int n = loader->B * loader->T;
        seen.insert(seen.end(), loader->inputs, loader->inputs + n);
        seen.insert(seen.end(), loader->targets, loader->targets + n);
    }
    return seen;
}

static void test_state() {
    // a state taken after k batches, restored in a fresh loader, must continue identically;
    // k runs over every kind of position: mid-shard, end of shard, after switching, after wrapping
    std::string detail;
    for (int k = 0; k <= 8 && detail.empty(); k++) {
        DataLoader original, resumed;
        dataloader_init(&original, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB);
        for (int i = 0; i < k; i++) { dataloader_next_batch(&original); }
        DataLoaderState s = dataloader_get_state(&original);
        dataloader_init(&resumed, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB);
        dataloader_set_state(&resumed, s);
        DataLoaderState back = dataloader_get_state(&resumed);
        if (back.shard != s.shard || back.position != s.position) {
            detail = "after " + std::to_string(k) + " batches get_state does not return what set_state got";
        } else if (next_batches(&original, 5) != next_batches(&resumed, 5)) {
            detail = "after " + std::to_string(k) + " batches the resumed loader serves other tokens";
        }
        dataloader_free(&original);
        dataloader_free(&resumed);
    }
    check("state round trip continues identically", detail.empty(), detail);

    expect_error("set_state rejects a shard past the end", [] {
        DataLoader loader;
        dataloader_init(&loader, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB);
        dataloader_set_state(&loader, DataLoaderState{2, 0});
    }, {g_two_shards, "shard 2"});
    expect_error("set_state rejects a position past the shard", [] {
        DataLoader loader;
        dataloader_init(&loader, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB);
        dataloader_set_state(&loader, DataLoaderState{1, 21});
    }, {scratch("batch_001.bin"), "21"});
    expect_error("set_state rejects a negative position", [] {
        DataLoader loader;
        dataloader_init(&loader, g_two_shards.c_str(), TEST_B, TEST_T, TEST_VOCAB);
        dataloader_set_state(&loader, DataLoaderState{0, -1});
    }, {scratch("batch_000.bin")});
}

// ----------------------------------------------------------------------------
// dataloader: bad inputs

static void expect_init_error(const std::string& name, const std::string& pattern, const std::vector<std::string>& needles) {
    expect_error(name, [pattern] {
        DataLoader loader;
        dataloader_init(&loader, pattern.c_str(), TEST_B, TEST_T, TEST_VOCAB);
    }, needles);
}

static void test_bad_shards() {
    std::vector<uint16_t> ten = token_range(0, 10);
    std::string path;

    path = write_file("magic.bin", shard_bytes(ten, 10, 12345));
    expect_init_error("shard with wrong magic", path, {path, "magic"});

    path = write_file("version.bin", shard_bytes(ten, 10, DATA_MAGIC, 7));
    expect_init_error("shard with wrong version", path, {path, "version 7"});

    // the truncated shard comes second, so only the check at init (not the first load) can catch it
    write_shard("truncated_000.bin", ten);
    path = write_file("truncated_001.bin", shard_bytes(ten, 20));
    expect_init_error("truncated shard", scratch("truncated_*.bin"), {path, "truncated", "20 tokens"});

    path = write_file("trailing.bin", shard_bytes(token_range(0, 12), 10));
    expect_init_error("shard with trailing bytes", path, {path, "trailing"});

    path = write_file("tiny.bin", std::vector<char>(10, 0));
    expect_init_error("shard shorter than its header", path, {path, "header"});

    path = write_shard("short.bin", token_range(0, 8));
    expect_init_error("shard shorter than B*T+1", path, {path, "8 tokens", "9", "-b", "-t"});

    write_shard("every_000.bin", ten);
    path = write_file("every_001.bin", shard_bytes(ten, 10, 4242));
    expect_init_error("every shard is validated at init", scratch("every_*.bin"), {path, "magic"});

    std::vector<uint16_t> bad_token = ten;
    bad_token[5] = TEST_VOCAB;
    path = write_shard("vocab.bin", bad_token);
    expect_init_error("token >= vocab size", path, {path, "position 5", "1000"});

    // the second shard is only read when the loader reaches it
    write_shard("vocab2_000.bin", ten);
    bad_token = ten;
    bad_token[3] = 65535;
    path = write_shard("vocab2_001.bin", bad_token);
    expect_error("token >= vocab size in a later shard", [] {
        DataLoader loader;
        dataloader_init(&loader, scratch("vocab2_*.bin").c_str(), TEST_B, TEST_T, TEST_VOCAB);
        for (int i = 0; i < 4; i++) { dataloader_next_batch(&loader); }
    }, {path, "position 3"});

    std::string nothing = scratch("nothing_*.bin");
    expect_init_error("no file matches the pattern", nothing, {nothing, "no file matches"});

    std::string dir = scratch("dir_000.bin");
    if (mkdir(dir.c_str(), 0700) == 0) { g_dirs.push_back(dir); }
    expect_init_error("a directory matching the pattern", scratch("dir_*.bin"), {dir, "not a regular file"});

    expect_error("non-positive batch size", [] {
        DataLoader loader;
        dataloader_init(&loader, g_two_shards.c_str(), 0, TEST_T, TEST_VOCAB);
    }, {"-b/-t"});
}

// ----------------------------------------------------------------------------
// rand

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof(float)) == 0; }

// a mix of every generator call, so that any nondeterminism in any of them shows
static std::vector<float> rand_sequence(uint64_t seed) {
    uint64_t state = seed;
    std::vector<float> seq;
    for (int i = 0; i < 300; i++) {
        seq.push_back((float)random_u32(&state));
        seq.push_back(random_f32(&state));
        seq.push_back(random_normal(&state));
    }
    return seq;
}

static bool same_sequence(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) { return false; }
    for (size_t i = 0; i < a.size(); i++) {
        if (!same_bits(a[i], b[i])) { return false; }
    }
    return true;
}

static void test_rand_sequences() {
    // these values were computed independently (in Python) from the xorshift64* definition;
    // they pin the sequence so that every machine and every later version gives the same numbers
    uint64_t state = 1337;
    const uint32_t golden[4] = {989205090u, 818269915u, 1335155955u, 3876892996u};
    bool ok = true;
    for (int i = 0; i < 4; i++) { ok = ok && random_u32(&state) == golden[i]; }
    check("rand matches the reference sequence", ok && state == 3115803837778227132ull);

    // the same reference, through the float conversions (Box-Muller evaluated in double, rounded to float)
    state = 1337;
    float u = random_f32(&state);
    state = 1337;
    float z1 = random_normal(&state);
    float z2 = random_normal(&state);
    check("rand float and normal match the reference", u == 0.23031723499298096f && z1 == 0.2641717791557312f &&
          z2 == 0.706497311592102f, std::to_string(u) + " " + std::to_string(z1) + " " + std::to_string(z2));

    state = 0;
    uint32_t a = random_u32(&state);
    uint32_t b = random_u32(&state);
    check("rand seed 0 is not stuck at zero", a == 226735074u && b == 1422150777u,
          std::to_string(a) + " " + std::to_string(b));

    check("rand same seed gives the same sequence twice", same_sequence(rand_sequence(42), rand_sequence(42)));
    check("rand different seeds give different sequences", !same_sequence(rand_sequence(42), rand_sequence(43)));

    // the state is a plain value: a copy taken mid-sequence continues it exactly (checkpoint resume)
    state = 7;
    for (int i = 0; i < 10; i++) { random_normal(&state); }
    uint64_t saved = state;
    float first = random_normal(&state);
    check("rand saved state resumes the sequence", same_bits(first, random_normal(&saved)));
}

static void test_rand_distributions() {
    uint64_t state = 12345;
    const int n = 200000;
    bool in_range = true;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        float u = random_f32(&state);
        in_range = in_range && u >= 0.0f && u < 1.0f;
        sum += u;
    }
    check("random_f32 stays in [0, 1)", in_range);
    check("random_f32 mean is 0.5", fabs(sum / n - 0.5) < 0.01, std::to_string(sum / n));

    std::vector<float> values(n);
    normal_fill(values.data(), n, 5.0f, 2.0f, &state);
    double mean = 0.0, var = 0.0;
    bool finite = true;
    for (float v : values) { mean += v; finite = finite && std::isfinite(v); }
    mean /= n;
    for (float v : values) { var += (v - mean) * (v - mean); }
    double sd = sqrt(var / n);
    check("normal_fill values are finite", finite);
    check("normal_fill mean and std", fabs(mean - 5.0) < 0.03 && fabs(sd - 2.0) < 0.03,
          "mean " + std::to_string(mean) + " std " + std::to_string(sd));

    uint64_t s1 = 99, s2 = 99;
    float filled[3];
    normal_fill(filled, 3, 1.0f, 0.5f, &s1);
    bool same = true;
    for (int i = 0; i < 3; i++) { same = same && same_bits(filled[i], 1.0f + 0.5f * random_normal(&s2)); }
    check("normal_fill equals mean + std * random_normal", same && s1 == s2);
}

static void test_sample_mult() {
    const float quarter[3] = {0.25f, 0.25f, 0.5f};  // exact in float, so the boundaries are exact
    check("sample_mult coin 0 picks the first", sample_mult(quarter, 3, 0.0f) == 0);
    check("sample_mult coin just below a boundary", sample_mult(quarter, 3, 0.2499f) == 0);
    check("sample_mult coin on a boundary picks the next", sample_mult(quarter, 3, 0.25f) == 1);
    check("sample_mult coin on the last boundary", sample_mult(quarter, 3, 0.5f) == 2);
    check("sample_mult coin near 1 picks the last", sample_mult(quarter, 3, 0.9999f) == 2);
    const float short_sum[3] = {0.3f, 0.3f, 0.3f};
    check("sample_mult returns n-1 when rounding leaves the sum short", sample_mult(short_sum, 3, 0.95f) == 2);
    const float zeros[4] = {0.0f, 1.0f, 0.0f, 0.0f};
    check("sample_mult skips zero probabilities", sample_mult(zeros, 4, 0.0f) == 1 && sample_mult(zeros, 4, 0.99f) == 1);
    const float one[1] = {1.0f};
    check("sample_mult with one choice", sample_mult(one, 1, 0.7f) == 0);
    expect_error("sample_mult with no choices", [] { sample_mult(nullptr, 0, 0.5f); }, {"sample_mult"});
}

// ----------------------------------------------------------------------------
// tokenizer

static const std::vector<std::string> g_pieces = {"hello", " world", "\n", "\xe2\x80", "\x99", "\x01", "<|endoftext|>"};

static void test_tokenizer_round_trip(const std::string& path) {
    Tokenizer t;
    tokenizer_init(&t, path.c_str());
    check("tokenizer loads", t.ok && t.vocab_size == 7 && t.eot_token == 6,
          "ok " + std::to_string(t.ok) + " vocab " + std::to_string(t.vocab_size) + " eot " + std::to_string(t.eot_token));
    bool same = t.ok;
    for (int i = 0; same && i < (int)g_pieces.size(); i++) { same = g_pieces[i] == tokenizer_decode(&t, i); }
    check("tokenizer round trip", same);
    tokenizer_free(&t);
}

static void test_safe_print(const std::string& path) {
    ChildResult r = run_in_child([path] {
        Tokenizer t;
        tokenizer_init(&t, path.c_str());
        for (int i = 0; i < t.vocab_size; i++) { safe_print(tokenizer_decode(&t, i)); }
        safe_print("a\x07" "b\x7f" "c");
        safe_print("");
        safe_print(nullptr);
        tokenizer_free(&t);
    });
    // the lone \x01 token and the bell and delete bytes are dropped; the split UTF-8 quote survives
    std::string expected = "hello world\n\xe2\x80\x99<|endoftext|>abc";
    check("safe_print drops control bytes only", r.exited && r.code == 0 && r.out == expected,
          "printed [" + r.out + "]");
}

static void test_tokenizer_missing() {
    std::string path = scratch("no_tokenizer.bin");
    ChildResult r = run_in_child([path] {
        Tokenizer t;
        tokenizer_init(&t, path.c_str());
        fflush(stderr);  // _exit skips stdio, and a redirected stderr may be buffered
        _exit(t.ok ? 3 : 0);
    });
    bool ok = r.exited && r.code == 0 && r.err.rfind("warning: " + path + ": not found", 0) == 0 &&
              is_one_line(r.err) && contains(r.err, "(hint: ");
    check("missing tokenizer warns and sets ok=false", ok,
          "exit " + std::to_string(r.code) + " stderr [" + r.err + "]");
}

static void expect_tokenizer_error(const std::string& name, const std::string& path, const std::string& reason) {
    expect_error(name, [path] {
        Tokenizer t;
        tokenizer_init(&t, path.c_str());
    }, {path, reason});
}

static void test_bad_tokenizers() {
    std::string path = write_file("tok_magic.bin", tokenizer_bytes(g_pieces, 6, 20240520));
    expect_tokenizer_error("tokenizer with wrong magic", path, "magic");

    path = write_file("tok_version.bin", tokenizer_bytes(g_pieces, 6, TOKENIZER_MAGIC, 1));
    expect_tokenizer_error("tokenizer with wrong version", path, "version 1");

    std::vector<char> bytes = tokenizer_bytes(g_pieces, 6);
    bytes.resize(bytes.size() - 3);
    path = write_file("tok_truncated.bin", bytes);
    expect_tokenizer_error("truncated tokenizer", path, "truncated");

    std::vector<std::string> with_empty = g_pieces;
    with_empty[2] = "";
    path = write_file("tok_empty.bin", tokenizer_bytes(with_empty, 6));
    expect_tokenizer_error("tokenizer with a zero-length token", path, "token 2 has length 0");

    bytes = tokenizer_bytes(g_pieces, 6);
    ((int*)bytes.data())[2] = 2000000000;  // a corrupt vocab size must not become a huge allocation
    path = write_file("tok_vocab.bin", bytes);
    expect_tokenizer_error("tokenizer with a corrupt vocab size", path, "room for at most");

    path = write_file("tok_eot.bin", tokenizer_bytes(g_pieces, 7));
    expect_tokenizer_error("tokenizer with eot outside the vocabulary", path, "end-of-text");

    bytes = tokenizer_bytes(g_pieces, 6);
    bytes.push_back('x');
    path = write_file("tok_trailing.bin", bytes);
    expect_tokenizer_error("tokenizer with trailing bytes", path, "trailing");

    path = write_file("tok_tiny.bin", std::vector<char>(100, 0));
    expect_tokenizer_error("tokenizer shorter than its header", path, "header");
}

static void test_tokenizer() {
    std::string path = write_file("tokenizer.bin", tokenizer_bytes(g_pieces, 6));
    test_tokenizer_round_trip(path);
    test_safe_print(path);
    test_tokenizer_missing();
    test_bad_tokenizers();
    expect_error("decode rejects an out-of-range id", [path] {
        Tokenizer t;
        tokenizer_init(&t, path.c_str());
        tokenizer_decode(&t, 7);
    }, {"tokenizer", "token id 7", "out of range"});
    expect_error("decode without a tokenizer file", [] {
        Tokenizer t;  // what tokenizer_init leaves when the file is absent (without its warning line)
        memset(&t, 0, sizeof(t));
        tokenizer_decode(&t, 0);
    }, {"tokenizer", "without a tokenizer file"});
}

// ----------------------------------------------------------------------------
// the memory layout: activation gradients of one layer's size, GPT-2 124M within 16 GB

static GPT2Config gpt2_preset(const char* descriptor) {
    GPT2Config c;
    parse_model_descriptor(descriptor, &c);
    return c;
}

static void test_memory_layout() {
    const int B = 8, T = 1024;
    size_t acts[NUM_ACTIVATION_TENSORS], grads[NUM_ACTIVATION_GRAD_TENSORS];
    const GPT2Config d12 = gpt2_preset("d12"), d6c768 = gpt2_preset("L6C768H12");
    // the gradients are one layer's: the same for 6 layers as for 12
    const size_t g6 = fill_in_activation_grad_sizes(grads, d6c768, B, T);
    const size_t g12 = fill_in_activation_grad_sizes(grads, d12, B, T);
    check("activation gradients do not grow with the layers", g6 == g12,
          std::to_string(g6) + " floats at L=6, " + std::to_string(g12) + " at L=12");
    // the activations grow by what the backward pass reads of a layer: ln1, q, k, v, atty,
    // residual2, ln2, residual3 (B,T,C each), att (B,NH,T,T), fch, fch_gelu (B,T,4C each) and
    // four (B,T) layernorm statistics (float); in bytes, each tensor's a multiple of 16 here
    const size_t BT = (size_t)B * T, C = 768, NH = 12;
    const size_t per_layer = (8 * BT * C + B * NH * T * T + 2 * BT * 4 * C) * sizeof(floatX) + 4 * BT * sizeof(float);
    const size_t a6 = fill_in_activation_sizes(acts, d6c768, B, T, false);
    const size_t a12 = fill_in_activation_sizes(acts, d12, B, T, false);
    check("activations grow by the tensors the backward pass reads", a12 - a6 == 6 * per_layer,
          std::to_string(a12 - a6) + " bytes for 6 layers, expected " + std::to_string(6 * per_layer));
    // the CUDA trainer's layout (no probabilities) at GPT-2 124M, B=8, T=1024, with its 32 MiB
    // cuBLASLt workspace
    const MemoryFootprint m = model_footprint(d12, B, T, false, (size_t)32 << 20);
    check("GPT-2 124M at B=8, T=1024 fits in 16 GB", m.total() <= (size_t)16e9,
          std::to_string(m.total()) + " bytes");
}

// ----------------------------------------------------------------------------

int main() {
    make_scratch_dir();
    make_batch_shards();
    test_batches();
    test_rank_slices();
    test_state();
    test_bad_shards();
    test_rand_sequences();
    test_rand_distributions();
    test_sample_mult();
    test_tokenizer();
    test_memory_layout();
    remove_scratch_dir();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
