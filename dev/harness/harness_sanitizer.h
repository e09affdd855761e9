// harness_sanitizer.h: racecheck, initcheck and traffic counters for the CPU harness, what
// compute-sanitizer and a profiler would say on a GPU, computed from every load and store.
//
// Built with -DCUDA_HARNESS_SANITIZE and clang's
//     -fsanitize-coverage=func,trace-loads,trace-stores -fno-sanitize-link-runtime
// the compiler calls __sanitizer_cov_load4(address), __sanitizer_cov_store16(address), ... at
// every memory access of the translation unit; this file defines those functions. They ignore
// everything but what a simulated CUDA thread does to device memory or to its block's shared
// memory, and the harness tells them, as it runs a launch, who is running: the block, the
// thread, how many __syncthreads the block has passed (its epoch), which warp operations have
// completed. The harness's own code is compiled without the instrumentation (the functions
// here are CUDA_HARNESS_UNTRACED, the other headers lie between CUDA_HARNESS_UNTRACED_BEGIN and
// _END), so what reaches the hooks is what kernels do. Everything runs on one OS thread (the
// worker pool has one worker in this build), so that the shadow state needs no locks and
// every run is the same.
//
// Device memory comes from one reserved address range (the arena), so that "is this device
// memory" is one comparison, and every 4 bytes of it have a shadow record (a Granule): the
// last write and the last two reads by distinct threads in the current launch, and which of
// its bytes were ever written (initcheck). Every 32-byte sector has a pair of launch stamps,
// so that each launch counts the distinct sectors it reads and writes. Shared memory has the
// same records per block run, dynamic shared memory by offset, static __shared__ arrays
// (static thread_local in the harness) by offset in the executable's thread-local block.
//
// Both checks are exact to the byte, as a GPU's memory is (threads that write neighbouring
// bf16 or char elements of one 4-byte word do not race). initcheck keeps a bit per byte. A
// granule's race records stand for its 4 bytes as long as the current launch (block run, for
// shared memory) accesses it only whole, as fp32 code and aligned 8- and 16-byte accesses do;
// the first 1- or 2-byte access splits it: it gets 4 records of its own bytes, copies of its
// records, in a pool of the launch (a Split), and from then on every access to it checks and
// updates the records of the bytes it touches. Records of an earlier launch never conflict
// (their stamp differs), so the pool is emptied when the next launch (block run) begins and
// the granule's own records serve again. The common case costs one more test and no memory;
// a bf16 tensor costs its splits for the launches that touch it. Simpler alternatives fall
// short: 2-byte granules would double the shadow and the work of every 4-byte access and still
// merge neighbouring chars; a byte mask on each record keeps one writer per word, so two blocks
// that both write a bf16 row (thread t element t) would go unreported: the record of element 0
// is thread 1's write of element 1 by the time the second block's thread 0 comes.
//
// The checks:
//   racecheck  two threads of a launch touch the same bytes, at least one writes, and nothing
//              orders them: threads of different blocks (global memory), or of one block in
//              the same epoch, unless they are lanes of one warp and a warp operation that
//              named both (__syncwarp, a shuffle, a vote, a cooperative-groups sync) completed
//              between the two accesses. Atomics are exempt.
//   initcheck  a kernel, a copy to the host or a cuBLAS/cuBLASLt call reads device bytes that
//              nothing wrote since cudaMalloc; a shuffle reads a lane that does not take part
//              (returned, or outside the mask): an undefined value.
// Reports are printed at the end of the launch (or call), one line each, with the source lines
// of both accesses (addr2line on the executable); a program that printed any exits with
// status 1.
//
// The counters: per launch (kernel, GEMM, memset, copy) the distinct 32-byte sectors and the
// bytes of every access it read and wrote; per cuBLAS/cuBLASLt call its FLOPs and the bytes of
// its operands and output, from its dimensions; the calls that block the host. A program
// reads them with cuda_harness::san::ops() (dev/harness/cost_gpt2.cu).
#pragma once

#ifdef CUDA_HARNESS_SANITIZE

#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "harness_types.h"
#include "harness_util.h"

#define CUDA_HARNESS_UNTRACED __attribute__((no_sanitize("coverage")))
#define CUDA_HARNESS_SAN(...) __VA_ARGS__

namespace cuda_harness {
namespace san {

// ----------------------------------------------------------------------------
// shadow records

// One access by a simulated thread: which launch (or block run, for shared memory), block,
// thread, the block's epoch and the warp's count of completed warp operations at the time,
// and where in the code (an offset into the executable).
struct Access {
    uint32_t stamp = 0;  // 0: none
    uint32_t block = 0;
    uint32_t epoch = 0;
    uint32_t wgen = 0;
    uint32_t pc = 0;
    uint16_t thread = 0;
    uint16_t unused = 0;
};

// The race records of some bytes.
struct Records {
    Access write;
    Access read1;  // the last read
    Access read2;  // the last read before it by another thread
};

// The shadow of 4 bytes.
struct Granule {
    Records race;    // of all 4 bytes, unless split
    uint32_t init;   // bit i: byte i was written since allocation
    uint32_t split;  // 1 + the index of its Split in the current launch's (block run's) pool, or 0
};

// The race records of each byte of a granule that the current launch (block run) accessed in
// part. A granule's `split` is valid while its Split points back to it: the pool is emptied
// when the next launch (block run) begins, so that an index from an earlier one is out of
// range or another granule's.
struct Split {
    const Granule* granule;
    Records byte[4];
};

// The shadow of a 32-byte sector: the last launches that read and wrote it.
struct Sector {
    uint32_t read_launch;
    uint32_t write_launch;
};

// ----------------------------------------------------------------------------
// what is counted

enum class OpKind { Kernel, Gemm, Memset, Copy, Sync, Alloc };

// One launch, cuBLAS call, memset, copy, blocking call, or cudaMalloc/cudaFree.
struct Op {
    std::string name;
    OpKind kind = OpKind::Kernel;
    uint64_t sectors_read = 0, sectors_written = 0;  // distinct 32-byte sectors (kernels, memsets)
    uint64_t bytes_read = 0, bytes_written = 0;      // every access; for a GEMM its operands and output
    double flops = 0.0;                              // GEMMs: 2 m n k per batch entry
    bool blocking = false;                           // the host waits for the device
};

constexpr size_t kPage = 4096;
constexpr size_t kArenaBytes = size_t{128} << 30;  // address space reserved for device memory
constexpr unsigned kWarpHistory = 64;              // warp operations remembered per warp

struct Buffer {
    uint64_t id;
    size_t bytes;
    const char* file;
    int line;
};

// A report waiting for the end of its launch: text around the source lines of one or two
// accesses (pc 0: none).
struct Pending {
    std::string head;   // "racecheck: kernel 'k': write-after-read hazard on ..."
    std::string first;  // "read by block (0,0,0) thread (1,0,0)"
    uint32_t first_pc = 0;
    std::string second;
    uint32_t second_pc = 0;
};

// All of the sanitizer's state: one OS thread runs every block.
struct State {
    bool race = true, init = true, counting = true;
    bool configured = false;
    unsigned atomic_depth = 0;

    // the arena and its shadows
    uintptr_t base = 0;
    size_t used = 0;
    Granule* granules = nullptr;
    Sector* sectors = nullptr;
    std::vector<Split> global_splits;  // of the current launch
    std::map<uintptr_t, Buffer> buffers;
    uint64_t next_buffer = 1;

    // the launch
    uint32_t launch = 0;
    const char* kernel = "";
    dim3 grid, block_dim;
    Op op;

    // the block and the running thread
    uint32_t block = 0;
    uint32_t block_run = 0;
    uint32_t epoch = 0;
    uint32_t thread = 0;
    std::vector<uint32_t> warp_gen;
    std::vector<uint32_t> warp_masks;  // warps x kWarpHistory: the lanes of each completed operation

    // shared memory
    uintptr_t dyn_base = 0;
    size_t dyn_size = 0;
    std::vector<Granule> dyn_shadow;
    uintptr_t tls_base = 0;
    size_t tls_size = 0;
    std::vector<std::pair<size_t, size_t>> tls_harness;  // [begin, end) offsets of the harness's own
    std::vector<Granule> tls_shadow;
    std::vector<Split> shared_splits;  // of the current block run, dynamic and static

    // reports and counters
    std::vector<Pending> pending;
    std::set<std::string> reported;
    unsigned long race_reports = 0, init_reports = 0, repeats = 0;
    std::string last_report;
    uintptr_t exe_base = 0;
    bool recording = false;
    std::vector<Op> ops;
};

inline State& state() {
    static State* s = new State;
    return *s;
}

inline State& g = state();

// What the hooks look at first, even before static initialization: whether a simulated thread
// runs (and is not inside an atomic).
inline bool tracing = false;

// ----------------------------------------------------------------------------
// settings and the arena

CUDA_HARNESS_UNTRACED inline int exe_phdr(struct dl_phdr_info* info, size_t, void* out) {
    *static_cast<uintptr_t*>(out) = info->dlpi_addr;
    return 1;  // the first object is the executable
}

// Reserves the arena and its shadows (no memory yet: pages are committed per allocation).
CUDA_HARNESS_UNTRACED inline void setup() {
    if (g.base != 0) { return; }
    if (!g.configured) {
        const char* checks = getenv("CUDA_HARNESS_CHECKS");
        if (checks != nullptr && checks[0] != '\0') {
            g.race = strstr(checks, "racecheck") != nullptr;
            g.init = strstr(checks, "initcheck") != nullptr;
        }
        g.configured = true;
    }
    auto reserve = [](size_t bytes) {
        void* p = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) { fatal("check ulimit -v", "sanitizer: cannot reserve %zu bytes of address space", bytes); }
        return p;
    };
    g.base = reinterpret_cast<uintptr_t>(reserve(kArenaBytes));
    g.granules = static_cast<Granule*>(reserve(kArenaBytes / 4 * sizeof(Granule)));
    g.sectors = static_cast<Sector*>(reserve(kArenaBytes / 32 * sizeof(Sector)));
    dl_iterate_phdr(exe_phdr, &g.exe_base);
}

// Which checks run (before the first allocation; default: both, or CUDA_HARNESS_CHECKS).
CUDA_HARNESS_UNTRACED inline void configure(bool race, bool init) {
    if (g.base != 0) { fatal(nullptr, "sanitizer: configure() after the first cudaMalloc"); }
    g.race = race;
    g.init = init;
    g.configured = true;
}

CUDA_HARNESS_UNTRACED inline void commit(void* begin, size_t bytes) {
    uintptr_t lo = reinterpret_cast<uintptr_t>(begin) & ~(kPage - 1);
    uintptr_t hi = (reinterpret_cast<uintptr_t>(begin) + bytes + kPage - 1) & ~(kPage - 1);
    if (mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ | PROT_WRITE) != 0) {
        fatal(nullptr, "sanitizer: cannot commit %zu bytes of shadow memory", hi - lo);
    }
}

// Gives back the whole pages inside [begin, begin + bytes).
CUDA_HARNESS_UNTRACED inline void decommit(void* begin, size_t bytes) {
    uintptr_t lo = (reinterpret_cast<uintptr_t>(begin) + kPage - 1) & ~(kPage - 1);
    uintptr_t hi = (reinterpret_cast<uintptr_t>(begin) + bytes) & ~(kPage - 1);
    if (hi <= lo) { return; }
    madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
    mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_NONE);
}

CUDA_HARNESS_UNTRACED inline void allocation_call(const char* api);

// Device memory: page-aligned, with an inaccessible page after it; addresses are never reused.
CUDA_HARNESS_UNTRACED inline void* allocate(size_t bytes, const char* file, int line) {
    setup();
    const size_t span = (bytes + kPage - 1) / kPage * kPage;
    if (g.used + span + kPage > kArenaBytes) {
        fatal("the sanitizer build's device memory is 128 GiB over the whole run: use smaller shapes",
              "sanitizer: out of device address space");
    }
    const size_t offset = g.used;
    g.used += span + kPage;
    void* p = reinterpret_cast<void*>(g.base + offset);
    commit(p, span);
    commit(g.sectors + offset / 32, span / 32 * sizeof(Sector));
    if (g.race || g.init) { commit(g.granules + offset / 4, span / 4 * sizeof(Granule)); }
    g.buffers[g.base + offset] = Buffer{g.next_buffer++, bytes, file, line};
    allocation_call("cudaMalloc");
    return p;
}

CUDA_HARNESS_UNTRACED inline bool owns(const void* p) {
    return g.base != 0 && reinterpret_cast<uintptr_t>(p) - g.base < g.used;
}

CUDA_HARNESS_UNTRACED inline void release(void* p) {
    auto it = g.buffers.find(reinterpret_cast<uintptr_t>(p));
    if (it == g.buffers.end()) { return; }
    const size_t offset = it->first - g.base;
    const size_t span = (it->second.bytes + kPage - 1) / kPage * kPage;
    decommit(p, span);  // a later access faults: use after free
    decommit(g.sectors + offset / 32, span / 32 * sizeof(Sector));
    if (g.race || g.init) { decommit(g.granules + offset / 4, span / 4 * sizeof(Granule)); }
}

// "buffer 3 (cudaMalloc at train_gpt2.cu:713, 4096 bytes) + 0x40"
CUDA_HARNESS_UNTRACED inline std::string describe_global(uintptr_t a) {
    auto it = g.buffers.upper_bound(a);
    char text[256];
    if (it == g.buffers.begin()) {
        snprintf(text, sizeof(text), "address %p", reinterpret_cast<void*>(a));
        return text;
    }
    --it;
    const char* file = strrchr(it->second.file, '/');
    snprintf(text, sizeof(text), "buffer %llu (cudaMalloc at %s:%d, %zu bytes) + 0x%llx",
             static_cast<unsigned long long>(it->second.id), file != nullptr ? file + 1 : it->second.file,
             it->second.line, it->second.bytes, static_cast<unsigned long long>(a - it->first));
    return text;
}

// "buffer 3": which allocation an address is in.
CUDA_HARNESS_UNTRACED inline std::string buffer_of(uintptr_t a) {
    auto it = g.buffers.upper_bound(a);
    return it == g.buffers.begin() ? std::string("?") : "buffer " + std::to_string(std::prev(it)->second.id);
}

CUDA_HARNESS_UNTRACED inline Granule& granule(uintptr_t a) { return g.granules[(a - g.base) / 4]; }

// ----------------------------------------------------------------------------
// reports

CUDA_HARNESS_UNTRACED inline std::string block_thread(uint32_t block, uint32_t thread) {
    const dim3 gd = g.grid, bd = g.block_dim;
    char text[128];
    snprintf(text, sizeof(text), "block (%u,%u,%u) thread (%u,%u,%u)", block % gd.x, block / gd.x % gd.y,
             block / (gd.x * gd.y), thread % bd.x, thread / bd.x % bd.y, thread / (bd.x * bd.y));
    return text;
}

CUDA_HARNESS_UNTRACED inline uint32_t pc_offset(const void* return_address) {
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(return_address) - g.exe_base - 1);
}

// "file:line" of one addr2line output line, without the directory and " (discriminator N)".
CUDA_HARNESS_UNTRACED inline std::string short_location(const std::string& line) {
    const size_t slash = line.rfind('/');
    std::string where = slash != std::string::npos ? line.substr(slash + 1) : line;
    const size_t paren = where.find(" (");
    if (paren != std::string::npos) { where.resize(paren); }
    return where;
}

// Of an access's inlined frames (innermost first), the program's own: an access made inside a
// harness function inlined into a kernel (a bf16 conversion reading its operand, __ldg...) is
// reported at the kernel's line that called it.
CUDA_HARNESS_UNTRACED inline std::string program_location(const std::vector<std::string>& frames) {
    for (const std::string& frame : frames) {
        if (short_location(frame).rfind("harness_", 0) != 0) { return short_location(frame); }
    }
    return frames.empty() ? "?" : short_location(frames.front());
}

// The source lines of code offsets, by addr2line (absent: "?"); -a starts each offset's
// output with the offset, -i adds the frames it was inlined into.
CUDA_HARNESS_UNTRACED inline std::map<uint32_t, std::string> source_lines(const std::vector<uint32_t>& pcs) {
    std::map<uint32_t, std::string> lines;
    for (uint32_t pc : pcs) { lines[pc] = "?"; }
    char hex[32];
    std::string cmd = "addr2line -a -i -e /proc/" + std::to_string(getpid()) + "/exe";
    for (uint32_t pc : pcs) {
        snprintf(hex, sizeof(hex), " 0x%x", pc);
        cmd += hex;
    }
    FILE* f = popen((cmd + " 2>/dev/null").c_str(), "r");
    if (f == nullptr) { return lines; }
    char line[1024];
    size_t index = 0;  // offsets seen so far; the frames belong to pcs[index - 1]
    std::vector<std::string> frames;
    auto finish = [&]() {
        if (index > 0 && index <= pcs.size()) { lines[pcs[index - 1]] = program_location(frames); }
        frames.clear();
    };
    while (fgets(line, sizeof(line), f) != nullptr) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "0x", 2) == 0) {
            finish();
            index++;
        } else {
            frames.push_back(line);
        }
    }
    finish();
    pclose(f);
    return lines;
}

CUDA_HARNESS_UNTRACED inline void report_exit() {
    if (g.race_reports + g.init_reports == 0) { return; }
    fflush(stdout);
    fprintf(stderr, "sanitizer: %lu racecheck and %lu initcheck reports (%lu repeats not printed): exit status 1\n",
            g.race_reports, g.init_reports, g.repeats);
    fflush(stderr);
    _exit(EXIT_FAILURE);
}

// Records a report, once per kind of hazard and pair of code locations.
CUDA_HARNESS_UNTRACED inline void report(bool race, const std::string& key, Pending p) {
    if (!g.reported.insert(key).second) {
        g.repeats++;
        return;
    }
    if (g.race_reports + g.init_reports == 0) { atexit(report_exit); }
    (race ? g.race_reports : g.init_reports)++;
    g.pending.push_back(std::move(p));
}

// Prints the reports of the launch that just ended.
CUDA_HARNESS_UNTRACED inline void flush_reports() {
    if (g.pending.empty()) { return; }
    std::vector<uint32_t> pcs;
    for (const Pending& p : g.pending) {
        if (p.first_pc != 0) { pcs.push_back(p.first_pc); }
        if (p.second_pc != 0) { pcs.push_back(p.second_pc); }
    }
    std::map<uint32_t, std::string> lines = source_lines(pcs);
    fflush(stdout);
    for (const Pending& p : g.pending) {
        std::string text = p.head + ": " + p.first;
        if (p.first_pc != 0) { text += " at " + lines[p.first_pc]; }
        if (!p.second.empty()) {
            text += ", then " + p.second;
            if (p.second_pc != 0) { text += " at " + lines[p.second_pc]; }
        }
        fprintf(stderr, "%s\n", text.c_str());
        g.last_report = text;
    }
    fflush(stderr);
    g.pending.clear();
}

// For the sanitizer's own tests: how many reports so far, and forgetting them.
CUDA_HARNESS_UNTRACED inline unsigned long race_reports() { return g.race_reports; }
CUDA_HARNESS_UNTRACED inline unsigned long init_reports() { return g.init_reports; }
CUDA_HARNESS_UNTRACED inline const std::string& last_report() { return g.last_report; }
CUDA_HARNESS_UNTRACED inline void forget_reports() {
    g.race_reports = g.init_reports = g.repeats = 0;
    g.reported.clear();
}

// ----------------------------------------------------------------------------
// ordering between two accesses of one block

// Whether a warp operation that named both lanes completed after warp generation `since`.
CUDA_HARNESS_UNTRACED inline bool warp_synced(uint32_t thread_a, uint32_t thread_b, uint32_t since) {
    const uint32_t warp = thread_b / 32;
    const uint32_t lanes = (1u << (thread_a % 32)) | (1u << (thread_b % 32));
    const uint32_t now = g.warp_gen[warp];
    for (uint32_t gen = now; gen > since; gen--) {
        if (now - gen >= kWarpHistory) { return true; }  // beyond the history: assume ordered
        if ((g.warp_masks[warp * kWarpHistory + gen % kWarpHistory] & lanes) == lanes) { return true; }
    }
    return false;
}

// Whether an earlier access by another thread of the running block is ordered before now.
CUDA_HARNESS_UNTRACED inline bool ordered(const Access& earlier) {
    if (earlier.epoch != g.epoch) { return true; }
    return earlier.thread / 32 == g.thread / 32 && warp_synced(earlier.thread, g.thread, earlier.wgen);
}

// Whether `earlier` (stamped `stamp`) and the running thread's access may run concurrently.
CUDA_HARNESS_UNTRACED inline bool conflicts(const Access& earlier, uint32_t stamp, bool global) {
    if (earlier.stamp != stamp) { return false; }
    if (global && earlier.block != g.block) { return true; }
    return earlier.thread != g.thread && !ordered(earlier);
}

CUDA_HARNESS_UNTRACED inline Access now(uint32_t stamp, uint32_t pc) {
    Access a;
    a.stamp = stamp;
    a.block = g.block;
    a.epoch = g.epoch;
    a.wgen = g.warp_gen[g.thread / 32];
    a.pc = pc;
    a.thread = static_cast<uint16_t>(g.thread);
    return a;
}

CUDA_HARNESS_UNTRACED inline void hazard(const char* kind, const std::string& where, const Access& earlier,
                                         const char* earlier_op, const char* op, uint32_t pc) {
    char key[256];
    snprintf(key, sizeof(key), "race|%s|%s|%u|%u", g.kernel, kind, earlier.pc, pc);
    Pending p;
    p.head = std::string("racecheck: kernel '") + g.kernel + "': " + kind + " hazard on " + where;
    p.first = std::string(earlier_op) + " by " + block_thread(earlier.block, earlier.thread);
    p.first_pc = earlier.pc;
    p.second = std::string(op) + " by " + block_thread(g.block, g.thread);
    p.second_pc = pc;
    report(true, key, std::move(p));
}

// ----------------------------------------------------------------------------
// one access

// The race check of the records of some bytes (`where`: the first), then the update.
CUDA_HARNESS_UNTRACED inline void check_records(Records& r, uint32_t stamp, bool global, bool write, uint32_t pc,
                                                uintptr_t where, bool shared_dynamic) {
    auto describe = [&]() {
        if (global) { return describe_global(where); }
        char text[96];
        snprintf(text, sizeof(text), "shared memory (%s) offset 0x%llx", shared_dynamic ? "dynamic" : "static __shared__, thread-local",
                 static_cast<unsigned long long>(where));
        return std::string(text);
    };
    if (conflicts(r.write, stamp, global)) {
        hazard(write ? "write-after-write" : "read-after-write", describe(), r.write, "write", write ? "write" : "read", pc);
    }
    if (write) {
        if (conflicts(r.read1, stamp, global)) {
            hazard("write-after-read", describe(), r.read1, "read", "write", pc);
        } else if (conflicts(r.read2, stamp, global)) {
            hazard("write-after-read", describe(), r.read2, "read", "write", pc);
        }
        r.write = now(stamp, pc);
    } else {
        const bool same = r.read1.stamp == stamp && r.read1.thread == g.thread && r.read1.block == g.block;
        if (!same) { r.read2 = r.read1; }
        r.read1 = now(stamp, pc);
    }
}

// The race check of the bytes `bytes` (bit i: byte i) of the granule r at `where` (its first
// byte: an address or a shared-memory offset) when it is split, or is to be: per byte (see the
// top of this file).
CUDA_HARNESS_UNTRACED __attribute__((noinline)) inline void check_split(Granule& r, std::vector<Split>& splits,
                                                                         uint32_t bytes, uint32_t stamp, bool global,
                                                                         bool write, uint32_t pc, uintptr_t where,
                                                                         bool shared_dynamic) {
    const bool split = r.split != 0 && r.split <= splits.size() && splits[r.split - 1].granule == &r;
    if (!split && bytes == 0xfu) {  // split by an earlier launch (block run): whole again
        r.split = 0;
        check_records(r.race, stamp, global, write, pc, where, shared_dynamic);
        return;
    }
    if (!split) {
        splits.push_back(Split{&r, {r.race, r.race, r.race, r.race}});
        r.split = static_cast<uint32_t>(splits.size());
    }
    Split& s = splits[r.split - 1];
    for (unsigned i = 0; i < 4; i++) {
        if ((bytes >> i & 1u) != 0) { check_records(s.byte[i], stamp, global, write, pc, where + i, shared_dynamic); }
    }
}

// The race check of the bytes `bytes` of the granule r at `where`: whole, as long as the launch
// (block run) accesses it only whole.
CUDA_HARNESS_UNTRACED __attribute__((always_inline)) inline void check_granule(Granule& r, std::vector<Split>& splits,
                                                                                uint32_t bytes, uint32_t stamp,
                                                                                bool global, bool write, uint32_t pc,
                                                                                uintptr_t where, bool shared_dynamic) {
    if (r.split == 0 && bytes == 0xfu) {
        check_records(r.race, stamp, global, write, pc, where, shared_dynamic);
    } else {
        check_split(r, splits, bytes, stamp, global, write, pc, where, shared_dynamic);
    }
}

// The bytes of the granule at x (4-aligned) that the access [a, a + n) touches: bit i, byte i.
CUDA_HARNESS_UNTRACED inline uint32_t granule_bytes(uintptr_t x, uintptr_t a, size_t n) {
    const uintptr_t lo = x < a ? a : x, hi = x + 4 < a + n ? x + 4 : a + n;
    return ((1u << (hi - lo)) - 1) << (lo - x);
}

CUDA_HARNESS_UNTRACED inline void global_access(uintptr_t a, unsigned n, bool write, uint32_t pc) {
    // traffic
    Op& op = g.op;
    (write ? op.bytes_written : op.bytes_read) += n;
    for (uintptr_t s = (a - g.base) / 32; s <= (a + n - 1 - g.base) / 32; s++) {
        uint32_t& stamp = write ? g.sectors[s].write_launch : g.sectors[s].read_launch;
        if (stamp != g.launch) {
            stamp = g.launch;
            (write ? op.sectors_written : op.sectors_read)++;
        }
    }
    if (!g.race && !g.init) { return; }
    for (uintptr_t x = a & ~uintptr_t{3}; x < a + n; x += 4) {
        Granule& r = granule(x);
        const uint32_t bytes = granule_bytes(x, a, n);
        if (g.init) {
            if (write) {
                r.init |= bytes;
            } else if ((r.init & bytes) != bytes) {
                const uintptr_t first = x + __builtin_ctz(bytes & ~r.init);  // the first byte never written
                char key[256];  // one report per kernel and buffer
                snprintf(key, sizeof(key), "init|%s|%s", g.kernel, buffer_of(first).c_str());
                Pending p;
                p.head = std::string("initcheck: kernel '") + g.kernel + "': read of uninitialized global memory " +
                         describe_global(first);
                p.first = "by " + block_thread(g.block, g.thread);
                p.first_pc = pc;
                report(false, key, std::move(p));
                r.init |= bytes;  // once per granule
            }
        }
        if (g.race) { check_granule(r, g.global_splits, bytes, g.launch, true, write, pc, x, false); }
    }
}

CUDA_HARNESS_UNTRACED inline void shared_access(std::vector<Granule>& shadow, size_t offset, unsigned n, bool write,
                                                uint32_t pc, bool dynamic) {
    for (size_t x = offset & ~size_t{3}; x < offset + n; x += 4) {
        if (x / 4 >= shadow.size()) { return; }
        check_granule(shadow[x / 4], g.shared_splits, granule_bytes(x, offset, n), g.block_run, false, write, pc, x,
                      dynamic);
    }
}

// Whether a thread-local offset belongs to the harness itself rather than to a __shared__ array.
CUDA_HARNESS_UNTRACED inline bool harness_tls(size_t offset) {
    for (const auto& range : g.tls_harness) {
        if (offset >= range.first && offset < range.second) { return true; }
    }
    return false;
}

CUDA_HARNESS_UNTRACED __attribute__((always_inline)) inline void access(const void* p, unsigned n, bool write,
                                                                         const void* return_address) {
    if (!tracing) { return; }
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (a - g.base < g.used) {
        global_access(a, n, write, pc_offset(return_address));
    } else if (a - g.dyn_base < g.dyn_size) {
        if (g.race) { shared_access(g.dyn_shadow, a - g.dyn_base, n, write, pc_offset(return_address), true); }
    } else if (a - g.tls_base < g.tls_size && g.race && !harness_tls(a - g.tls_base)) {
        shared_access(g.tls_shadow, a - g.tls_base, n, write, pc_offset(return_address), false);
    }
}

// ----------------------------------------------------------------------------
// what the harness tells the sanitizer

// The executable's static thread-local block of the calling OS thread, where the harness
// keeps static __shared__ arrays; `harness` lists the harness's own thread-local objects.
CUDA_HARNESS_UNTRACED inline int tls_phdr(struct dl_phdr_info* info, size_t, void* out) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            const size_t align = info->dlpi_phdr[i].p_align > 0 ? info->dlpi_phdr[i].p_align : 1;
            *static_cast<size_t*>(out) = (info->dlpi_phdr[i].p_memsz + align - 1) / align * align;
        }
    }
    return 1;
}

CUDA_HARNESS_UNTRACED inline void find_shared_tls(const std::vector<std::pair<const void*, size_t>>& harness) {
    if (g.tls_base != 0) { return; }
    size_t size = 0;
    dl_iterate_phdr(tls_phdr, &size);
    const uintptr_t tp = reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
    g.tls_base = tp - size;
    g.tls_size = size;
    for (const auto& object : harness) {
        const uintptr_t at = reinterpret_cast<uintptr_t>(object.first);
        if (at - g.tls_base >= size) {
            fatal(nullptr, "sanitizer: the harness's thread-local objects are not where expected (%p, block %p + %zu)",
                  object.first, reinterpret_cast<void*>(g.tls_base), size);
        }
        g.tls_harness.push_back({at - g.tls_base, at - g.tls_base + object.second});
    }
    g.tls_shadow.resize(size / 4 + 1);
}

CUDA_HARNESS_UNTRACED inline void begin_op(const char* name, OpKind kind) {
    setup();
    g.launch++;
    g.global_splits.clear();
    g.op = Op();
    g.op.name = name;
    g.op.kind = kind;
}

CUDA_HARNESS_UNTRACED inline void end_op() {
    if (g.recording) { g.ops.push_back(g.op); }
    flush_reports();
}

CUDA_HARNESS_UNTRACED inline void launch_begin(const char* name, dim3 grid, dim3 block) {
    begin_op(name, OpKind::Kernel);
    g.kernel = name;
    g.grid = grid;
    g.block_dim = block;
}

CUDA_HARNESS_UNTRACED inline void launch_end() {
    tracing = false;
    end_op();
}

CUDA_HARNESS_UNTRACED inline void block_begin(uint32_t block, void* dynamic_shared, size_t bytes, size_t threads) {
    g.block = block;
    g.block_run++;
    g.shared_splits.clear();
    g.epoch = 0;
    g.dyn_base = reinterpret_cast<uintptr_t>(dynamic_shared);
    g.dyn_size = bytes;
    if (g.race && g.dyn_shadow.size() < bytes / 4 + 1) { g.dyn_shadow.resize(bytes / 4 + 1); }
    const size_t warps = (threads + 31) / 32;
    g.warp_gen.assign(warps, 0);
    g.warp_masks.assign(warps * kWarpHistory, 0);
}

// The running simulated thread (linear index), or none (the scheduler runs).
CUDA_HARNESS_UNTRACED inline void switch_to(const void* thread, uint32_t linear) {
    g.thread = linear;
    tracing = thread != nullptr && g.atomic_depth == 0;
}

CUDA_HARNESS_UNTRACED inline void block_barrier() { g.epoch++; }

CUDA_HARNESS_UNTRACED inline void warp_operation(uint32_t warp, uint32_t lanes) {
    const uint32_t gen = ++g.warp_gen[warp];
    g.warp_masks[warp * kWarpHistory + gen % kWarpHistory] = lanes;
}

// A shuffle (or cooperative-groups reduce) of a lane that does not take part.
CUDA_HARNESS_UNTRACED inline void undefined_lane(const char* op, const char* file, int line, unsigned source,
                                                 const char* why) {
    char key[256];
    snprintf(key, sizeof(key), "lane|%s|%s|%d", g.kernel, file, line);
    const char* slash = strrchr(file, '/');
    char text[512];
    snprintf(text, sizeof(text), "initcheck: kernel '%s': %s at %s:%d reads lane %u, which %s (an undefined value)",
             g.kernel, op, slash != nullptr ? slash + 1 : file, line, source, why);
    Pending p;
    p.head = text;
    p.first = "in " + block_thread(g.block, g.thread);
    report(false, key, std::move(p));
}

// Atomics are exempt from racecheck, but read (initcheck) and move memory.
class AtomicScope {
public:
    CUDA_HARNESS_UNTRACED AtomicScope(const void* p, unsigned n) {
        const bool was = tracing;
        if (was && owns(p)) {
            const uintptr_t a = reinterpret_cast<uintptr_t>(p);
            const bool race = g.race;
            g.race = false;
            global_access(a, n, false, pc_offset(__builtin_return_address(0)));
            global_access(a, n, true, pc_offset(__builtin_return_address(0)));
            g.race = race;
        }
        g.atomic_depth++;
        tracing = false;
        tracing_ = was;
    }
    CUDA_HARNESS_UNTRACED ~AtomicScope() {
        g.atomic_depth--;
        tracing = tracing_;
    }

private:
    bool tracing_;
};

// ----------------------------------------------------------------------------
// device memory touched by the runtime and cuBLAS

// Marks bytes written (a copy to the device, a memset, a GEMM's output).
CUDA_HARNESS_UNTRACED inline void mark_written(const void* p, size_t n) {
    if (!g.init || !owns(p) || n == 0) { return; }
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    for (uintptr_t x = a & ~uintptr_t{3}; x < a + n; x += 4) { granule(x).init |= granule_bytes(x, a, n); }
}

// The first byte of [p, p + n) that was never written, or nullptr.
CUDA_HARNESS_UNTRACED inline const void* first_unwritten(const void* p, size_t n) {
    if (!g.init || !owns(p) || n == 0) { return nullptr; }
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    for (uintptr_t x = a & ~uintptr_t{3}; x < a + n; x += 4) {
        const uint32_t missing = granule_bytes(x, a, n) & ~granule(x).init;
        if (missing != 0) { return reinterpret_cast<const void*>(x + __builtin_ctz(missing)); }
    }
    return nullptr;
}

// A copy or cuBLAS call that reads [p, p + n): reports bytes never written.
CUDA_HARNESS_UNTRACED inline void check_read(const char* api, const char* file, int line, const char* what, const void* p,
                                             size_t n) {
    const void* bad = first_unwritten(p, n);
    if (bad == nullptr) { return; }
    const char* slash = strrchr(file, '/');
    char key[512];
    snprintf(key, sizeof(key), "init|%s|%s|%d|%s", api, file, line, what);
    Pending pending;
    pending.head = std::string("initcheck: ") + api + " at " + (slash != nullptr ? slash + 1 : file) + ":" +
                   std::to_string(line) + " reads uninitialized device memory (" + what + "), first at " +
                   describe_global(reinterpret_cast<uintptr_t>(bad));
    pending.first = "in a read of " + std::to_string(n) + " bytes";
    report(false, key, std::move(pending));
}

// A matrix operand of a GEMM: `cols` columns of `rows` elements of `element` bytes (4 for
// fp32, 2 for bf16), column j at element j * ld.
CUDA_HARNESS_UNTRACED inline void check_matrix(const char* api, const char* file, int line, const char* what,
                                               const void* p, int64_t rows, int64_t cols, int64_t ld, size_t element) {
    if (!g.init || rows <= 0 || cols <= 0) { return; }
    const char* bytes = static_cast<const char*>(p);
    if (ld == rows) {
        check_read(api, file, line, what, bytes, static_cast<size_t>(rows * cols) * element);
        return;
    }
    for (int64_t j = 0; j < cols; j++) {
        const size_t before = g.init_reports;
        check_read(api, file, line, what, bytes + j * ld * static_cast<int64_t>(element), static_cast<size_t>(rows) * element);
        if (g.init_reports != before) { return; }
    }
}

CUDA_HARNESS_UNTRACED inline void mark_matrix(const void* p, int64_t rows, int64_t cols, int64_t ld, size_t element) {
    if (!g.init || rows <= 0 || cols <= 0) { return; }
    const char* bytes = static_cast<const char*>(p);
    if (ld == rows) {
        mark_written(bytes, static_cast<size_t>(rows * cols) * element);
        return;
    }
    for (int64_t j = 0; j < cols; j++) {
        mark_written(bytes + j * ld * static_cast<int64_t>(element), static_cast<size_t>(rows) * element);
    }
}

// A cuBLAS/cuBLASLt call: its FLOPs and the bytes of its operands and output.
CUDA_HARNESS_UNTRACED inline void gemm(const char* api, double flops, uint64_t operand_bytes, uint64_t output_bytes) {
    begin_op(api, OpKind::Gemm);
    g.op.flops = flops;
    g.op.bytes_read = operand_bytes;
    g.op.bytes_written = output_bytes;
    g.op.sectors_read = operand_bytes / 32;
    g.op.sectors_written = output_bytes / 32;
    end_op();
}

CUDA_HARNESS_UNTRACED inline void memset_op(const void* p, size_t n) {
    mark_written(p, n);
    begin_op("cudaMemset", OpKind::Memset);
    g.op.bytes_written = n;
    g.op.sectors_written = (n + 31) / 32;
    end_op();
}

CUDA_HARNESS_UNTRACED inline bool written_byte(uintptr_t a) { return (granule(a).init >> (a & 3) & 1u) != 0; }

// A copy: reads of device memory are checked, writes to it marked; D2D copies carry the
// written-or-not state along with the bytes.
CUDA_HARNESS_UNTRACED inline void copy_op(const char* api, const char* file, int line, void* dst, const void* src,
                                          size_t n, bool blocking) {
    if (owns(src) && !owns(dst) && first_unwritten(src, n) != nullptr) {
        check_read(api, file, line, "the source of a copy to the host", src, n);
    }
    if (owns(dst) && owns(src) && g.init) {
        const uintptr_t d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
        for (size_t i = 0; i < n; i++) {
            const bool written = written_byte(s + i);
            uint32_t& init = granule(d + i).init;
            init = written ? init | (1u << ((d + i) & 3)) : init & ~(1u << ((d + i) & 3));
        }
    } else if (owns(dst)) {
        mark_written(dst, n);
    }
    begin_op(api, OpKind::Copy);
    if (owns(src)) { g.op.bytes_read = n; }
    if (owns(dst)) { g.op.bytes_written = n; }
    g.op.blocking = blocking;
    end_op();
}

// cudaMalloc or cudaFree (on a GPU, cudaFree also waits for the device).
CUDA_HARNESS_UNTRACED inline void allocation_call(const char* api) {
    begin_op(api, OpKind::Alloc);
    end_op();
}

// A call that makes the host wait for the device.
CUDA_HARNESS_UNTRACED inline void blocking_call(const char* api) {
    begin_op(api, OpKind::Sync);
    g.op.blocking = true;
    end_op();
}

// The counters: record every op from now on (or stop), and what was recorded.
CUDA_HARNESS_UNTRACED inline void record(bool on) { g.recording = on; }
CUDA_HARNESS_UNTRACED inline std::vector<Op>& ops() { return g.ops; }

}  // namespace san
}  // namespace cuda_harness

// ----------------------------------------------------------------------------
// the instrumentation's entry points

#define CUDA_HARNESS_HOOK(size, type)                                                                          \
    extern "C" CUDA_HARNESS_UNTRACED void __sanitizer_cov_load##size(type* p) {                                 \
        cuda_harness::san::access(p, size, false, __builtin_return_address(0));                                 \
    }                                                                                                          \
    extern "C" CUDA_HARNESS_UNTRACED void __sanitizer_cov_store##size(type* p) {                                \
        cuda_harness::san::access(p, size, true, __builtin_return_address(0));                                  \
    }
CUDA_HARNESS_HOOK(1, uint8_t)
CUDA_HARNESS_HOOK(2, uint16_t)
CUDA_HARNESS_HOOK(4, uint32_t)
CUDA_HARNESS_HOOK(8, uint64_t)
CUDA_HARNESS_HOOK(16, __int128)
#undef CUDA_HARNESS_HOOK

#else  // !CUDA_HARNESS_SANITIZE

#define CUDA_HARNESS_UNTRACED
#define CUDA_HARNESS_SAN(...)

#endif
