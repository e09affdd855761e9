// harness_scheduler.h: how a kernel launch runs on the CPU.
//
// A launch runs every block of the grid. Blocks are spread over a few OS threads, the
// workers (CUDA_HARNESS_THREADS, default: one per core; the launching thread is worker 0),
// statically: worker w runs blocks w, w+W, w+2W, ... in order, so what each block sees
// (for instance stale static __shared__ contents) does not depend on timing.
//
// Within a block, every CUDA thread is a fiber (harness_fiber.h) and the block's threads
// are scheduled cooperatively, in passes: each pass runs every ready thread, in order of
// its linear index (x + y*Dx + z*Dx*Dy), until it reaches a synchronization point or
// returns. Thread 0 therefore runs ahead to its first barrier before thread 1 starts, and
// code that lacks a __syncthreads reads what has not been written yet, every time.
// After a pass the scheduler releases what can be released:
//   - a warp operation (shuffle, vote, __syncwarp) completes when every live lane named in
//     its mask waits at the same operation with the same mask; the lanes' values are then
//     copied into the warp's snapshot, from which each lane reads its result;
//   - __syncthreads completes when every thread of the block waits at it, at the same call.
// If nothing can be released, the block is deadlocked: a __syncthreads that some threads
// never reach (divergent code, an early return), lanes at different warp operations. The
// harness then prints where each thread waits and ends the program with status 1.
//
// A thread gets a fiber of its own only when it is switched to before it has run. A thread
// that returns runs the next ready thread on its own fiber if that one has not started yet
// (fiber_main): same order, no switch. So a kernel without barriers runs each block on a
// single fiber, and one with barriers switches once per thread and wait.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <ucontext.h>
#include <vector>

#include "harness_fiber.h"
#include "harness_runtime.h"

CUDA_HARNESS_UNTRACED_BEGIN

namespace cuda_harness {

constexpr unsigned kWarpSize = 32;
constexpr size_t kWarpValueBytes = 32;  // the largest value one lane can exchange

// ----------------------------------------------------------------------------
// a launch: the kernel with its arguments bound, and its configuration

// The kernel call with its arguments, type-erased so that the scheduler is not a template.
struct KernelBody {
    void (*invoke)(const void* call);
    const void* call;
};

struct LaunchJob {
    const char* kernel_name = "";
    dim3 grid;
    dim3 block;
    size_t shared_bytes = 0;
    KernelBody body{};
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::string error;  // the first block's failure
};

// ----------------------------------------------------------------------------
// a simulated CUDA thread

enum class ThreadState : uint8_t { Ready, AtBlockBarrier, AtWarpOp, Finished };

// Where a thread waits: matched between threads, and printed in deadlock reports.
struct WaitSite {
    const char* op = "";
    const char* file = "";
    int line = 0;
};

// Two strings of a site: almost always the same literal, so the pointers are compared first.
inline bool same_text(const char* a, const char* b) { return a == b || strcmp(a, b) == 0; }

inline bool same_site(const WaitSite& a, const WaitSite& b) {
    return a.line == b.line && same_text(a.op, b.op) && same_text(a.file, b.file);
}

// Two cache lines (with the x86-64 switch): what scheduling a thread touches is in the first.
struct alignas(64) SimThread {
    ThreadState state = ThreadState::Ready;
    bool started = false;         // whether it has run in this block (its context is set up)
    unsigned linear = 0;          // x + y*Dx + z*Dx*Dy: warps are consecutive runs of 32
    unsigned lane = 0;
    unsigned warp = 0;
    uint3 thread_idx{0, 0, 0};
    unsigned warp_mask = 0;       // the mask of the warp operation it waits at
    unsigned exchange_lanes = 0;  // after one completes: the lanes that took part
    int predicate = 0;            // its argument to __syncthreads_count/_and/_or
    Context context;
    WaitSite site;
    alignas(16) unsigned char value[kWarpValueBytes];  // its contribution to a warp exchange
};

// The values of the lanes of a warp at their last completed exchange.
struct WarpSnapshot {
    alignas(16) unsigned char values[kWarpSize][kWarpValueBytes];
};

// Which lanes of a warp have not returned, and which wait at a warp operation: kept up to date
// as threads return and arrive, so that releasing a warp looks only at the lanes that wait.
struct WarpLanes {
    unsigned live = 0;
    unsigned waiting = 0;
};

struct BlockInfo {
    uint3 block_idx{0, 0, 0};
    dim3 block_dim;
    dim3 grid_dim;
};

// ----------------------------------------------------------------------------
// settings

inline size_t stack_bytes() {
#ifdef CUDA_HARNESS_ASAN
    const long default_kb = 1024;  // AddressSanitizer's frames are several times larger
#else
    const long default_kb = 256;
#endif
    static const size_t bytes = static_cast<size_t>(env_long("CUDA_HARNESS_STACK_KB", default_kb, 16, 1 << 20)) * 1024;
    return bytes;
}

// ----------------------------------------------------------------------------
// the block runner: one per worker, reused for every block the worker runs

class BlockRunner;
inline thread_local BlockRunner* tls_runner = nullptr;  // set while a block runs on this OS thread
inline void prepare_stack_overflow_reports();

class BlockRunner {
public:
    BlockRunner() = default;
    BlockRunner(const BlockRunner&) = delete;
    BlockRunner& operator=(const BlockRunner&) = delete;

    ~BlockRunner() {
        for (Stack& s : stacks_) { stack_free(s); }
        free(shared_);
    }

    // Runs block number `block_linear` of the launch. On a deadlock, records the report in
    // the job and returns false.
    bool run(LaunchJob& job, size_t block_linear) {
        prepare_stack_overflow_reports();
        prepare(job, block_linear);
        tls_runner = this;
        bool ok = schedule();
        tls_runner = nullptr;
        set_current(nullptr);
        if (!ok) { record_failure(job); }
        return ok;
    }

    // --- the interface of the simulated threads (harness_device.h) ---

    SimThread& current() { return *current_; }
    const BlockInfo& block() const { return block_; }
    const char* kernel_name() const { return job_ != nullptr ? job_->kernel_name : "?"; }
    unsigned char* dynamic_shared() { return shared_; }
    size_t thread_count() const { return n_; }

    // Whether a fault at `address`, with the stack pointer at `sp`, is the running thread
    // running past the bottom of its stack.
    bool overflowed_stack(const void* address, const void* sp) const {
        if (current_ == nullptr) { return false; }
        const Stack& s = *current_->context.stack;  // its own, or its predecessor's when chained (fiber_main)
        return in_guard(s, address) || (sp != nullptr && static_cast<const char*>(sp) < s.lo &&
                                        static_cast<const char*>(sp) >= s.lo - (size_t{1} << 30));
    }

    // The lanes of warp `warp` that have not returned, as a mask.
    unsigned live_lanes(unsigned warp) const { return warp_lanes_[warp].live; }

    // __syncthreads and friends: waits until every thread of the block is here; returns how
    // many threads passed a nonzero predicate.
    int block_barrier(WaitSite site, int predicate) {
        current_->predicate = predicate;
        at_block_barrier_++;
        wait_here(ThreadState::AtBlockBarrier, site);
        return barrier_count_;
    }

    // A warp operation: deposits `bytes` of `value`, waits until every live lane named in
    // `mask` has arrived at the same operation, and returns the snapshot of their values
    // (lanes that took part: current().exchange_lanes).
    const WarpSnapshot& warp_exchange(WaitSite site, unsigned mask, const void* value, size_t bytes) {
        SimThread& me = *current_;
        if ((mask & (1u << me.lane)) == 0) {
            fatal("a lane must name itself in the mask of a warp operation",
                  "%s:%d: %s in kernel '%s': thread %u (lane %u) calls it with mask 0x%08x", site.file, site.line,
                  site.op, job_->kernel_name, me.linear, me.lane, mask);
        }
        memcpy(me.value, value, bytes);
        me.warp_mask = mask;
        warp_lanes_[me.warp].waiting |= 1u << me.lane;
        wait_here(ThreadState::AtWarpOp, site);
        return warps_[me.warp];
    }

private:
    // --- setting up a block ---

    void prepare(LaunchJob& job, size_t block_linear) {
        job_ = &job;
        const dim3 b = job.block;
        const dim3 g = job.grid;
        n_ = static_cast<size_t>(b.x) * b.y * b.z;
        block_.block_dim = b;
        block_.grid_dim = g;
        block_.block_idx = uint3{static_cast<unsigned>(block_linear % g.x),
                                 static_cast<unsigned>(block_linear / g.x % g.y),
                                 static_cast<unsigned>(block_linear / (static_cast<size_t>(g.x) * g.y))};
#ifdef CUDA_HARNESS_ASAN
        // AddressSanitizer must be told the bounds of the stack it switches back to
        if (scheduler_.stack == nullptr) {
            scheduler_stack_ = current_thread_stack();
            scheduler_.stack = &scheduler_stack_;
        }
#endif
        while (stacks_.size() < n_) { stacks_.push_back(stack_allocate(stack_bytes(), stack_color(stacks_.size()))); }
        fp_start_ = fp_state_now();
        if (threads_.size() < n_) { threads_.resize(n_); }
        if (b.x != laid_out_.x || b.y != laid_out_.y || b.z != laid_out_.z) { lay_out(b); }
        for (size_t i = 0; i < n_; i++) {
            threads_[i].state = ThreadState::Ready;
            threads_[i].started = false;  // its context is set up when it first runs (context_of)
        }
        const size_t warps = (n_ + kWarpSize - 1) / kWarpSize;
        warps_.resize(warps);
        warp_lanes_.assign(warps, WarpLanes{});
        for (size_t w = 0; w < warps; w++) {
            const size_t lanes = std::min<size_t>(kWarpSize, n_ - w * kWarpSize);
            warp_lanes_[w].live = lanes == kWarpSize ? ~0u : (1u << lanes) - 1;
        }
        prepare_shared(job.shared_bytes);
        CUDA_HARNESS_SAN(san::block_begin(static_cast<uint32_t>(block_linear), shared_, job.shared_bytes, n_);)
        finished_ = 0;
        at_block_barrier_ = 0;
        barrier_count_ = 0;
        error_.clear();
    }

    // Each thread's indices, for blocks of shape b: computed when the shape changes, since
    // consecutive launches (and every block of a launch) mostly have the same.
    void lay_out(dim3 b) {
        for (size_t i = 0; i < n_; i++) {
            SimThread& t = threads_[i];
            const unsigned linear = static_cast<unsigned>(i);
            t.linear = linear;
            t.thread_idx = uint3{linear % b.x, linear / b.x % b.y, linear / (b.x * b.y)};
            t.lane = linear % kWarpSize;
            t.warp = linear / kWarpSize;
        }
        laid_out_ = b;
    }

    // Dynamic shared memory: exactly the requested size (so that AddressSanitizer sees
    // overruns), filled with 0xFF bytes at every block (a NaN in every float), so that
    // reading what this block has not written shows.
    void prepare_shared(size_t bytes) {
        if (shared_ == nullptr || bytes != shared_size_) {
            free(shared_);
            shared_ = nullptr;
            if (posix_memalign(reinterpret_cast<void**>(&shared_), 128, bytes > 0 ? bytes : 1) != 0) {
                fatal(nullptr, "cannot allocate %zu bytes of dynamic shared memory", bytes);
            }
            shared_size_ = bytes;
        }
        poison(shared_, bytes);
    }

    // --- running the threads ---

    // Where a fiber starts: it runs the kernel for the thread it was started for, on that
    // thread's stack. When the kernel returns and the next ready thread has never run, that
    // thread is chained: it runs here too, on the same stack, instead of on a fiber of its
    // own. That is what a switch to it would do, in the same order (the sanitizer is told of
    // the new current thread just the same), without the switch; a kernel without barriers
    // runs a whole block on one fiber. The stack is free: every thread that ran on it has
    // returned.
    static void fiber_main() {
        context_started();
        BlockRunner& r = *tls_runner;
        for (;;) {
            r.job_->body.invoke(r.job_->body.call);
            SimThread& me = *r.current_;
            me.state = ThreadState::Finished;
            r.finished_++;
            r.warp_lanes_[me.warp].live &= ~(1u << me.lane);
            SimThread* next = r.next_ready(me.linear + 1);
            if (next == nullptr || next->started) { break; }
            next->started = true;
            next->context.stack = me.context.stack;  // where it runs: for overflow reports and AddressSanitizer
            fp_state_set(r.fp_start_);                // what a fiber of its own would start with
            r.set_current(next);
        }
        r.leave(*r.current_, true);
        fatal(nullptr, "internal error: a finished thread was resumed");
    }

    // Suspends the calling thread in state `state` and lets the others run.
    void wait_here(ThreadState state, WaitSite site) {
        SimThread& me = *current_;
        me.state = state;
        // member by member: a copy of the whole struct compiles (g++ -O2) to a 16-byte load of
        // the two pointers just stored separately, which stalls on every warp operation
        me.site.op = site.op;
        me.site.file = site.file;
        me.site.line = site.line;
        leave(me, false);
    }

    // Switches from thread `me` to the next ready thread of this pass, or back to the
    // scheduler when there is none; returns when `me` is resumed.
    void leave(SimThread& me, bool finished) {
        SimThread* next = next_ready(me.linear + 1);
        Context* to = next != nullptr ? &context_of(*next) : &scheduler_;
        set_current(next);
        context_switch(&me.context, to, finished);
    }

    // Where thread t goes on: its context, set up on its own stack if it has not run yet.
    // Set up lazily: most threads of a kernel without barriers never need one (fiber_main).
    Context& context_of(SimThread& t) {
        if (!t.started) { start_fiber(t); }
        return t.context;
    }

    // A fiber for t on t's own stack, which nothing uses before t starts: it is used only by
    // the fiber started for t and the threads chained after t on it. Out of line: it would
    // keep the switch from being inlined into every warp operation.
    __attribute__((noinline)) void start_fiber(SimThread& t) {
        t.started = true;
        context_init(&t.context, &stacks_[t.linear], &BlockRunner::fiber_main, fp_start_);
    }

    // The thread that runs next (nullptr: the scheduler), as the sanitizer must know it too.
    void set_current(SimThread* t) {
        current_ = t;
        CUDA_HARNESS_SAN(san::switch_to(t, t != nullptr ? t->linear : 0);)
    }

    SimThread* next_ready(size_t from) {
        for (size_t i = from; i < n_; i++) {
            if (threads_[i].state == ThreadState::Ready) { return &threads_[i]; }
        }
        return nullptr;
    }

    // Runs passes until every thread has returned; false on a deadlock.
    bool schedule() {
        for (;;) {
            run_pass();
            if (finished_ == n_) { return true; }
            bool released = release_warps();
            if (!released) { released = release_block_barrier(); }
            if (!error_.empty()) { return false; }
            if (!released) {
                error_ = "deadlock: no thread can go on";
                return false;
            }
        }
    }

    void run_pass() {
        SimThread* first = next_ready(0);
        if (first == nullptr) { return; }
        Context& to = context_of(*first);
        set_current(first);
        context_switch(&scheduler_, &to, false);
    }

    // --- releasing waiting threads ---

    bool release_warps() {
        bool released = false;
        for (unsigned w = 0; w < warps_.size(); w++) { released = release_warp(w) || released; }
        return released;
    }

    // Completes every warp operation of warp w whose lanes have all arrived, trying the
    // waiting lanes in order of their index.
    bool release_warp(unsigned w) {
        SimThread* lanes = &threads_[w * kWarpSize];
        WarpLanes& warp = warp_lanes_[w];
        bool released = false;
        unsigned pending = warp.waiting;
        while (pending != 0) {
            const SimThread& first = lanes[__builtin_ctz(pending)];
            pending &= pending - 1;
            const unsigned group = first.warp_mask & warp.live;
            if (!group_arrived(lanes, group, warp.waiting, first)) { continue; }
            for (unsigned rest = group; rest != 0; rest &= rest - 1) {
                const unsigned m = static_cast<unsigned>(__builtin_ctz(rest));
                memcpy(warps_[w].values[m], lanes[m].value, kWarpValueBytes);
                lanes[m].exchange_lanes = group;
                lanes[m].state = ThreadState::Ready;
            }
            warp.waiting &= ~group;
            pending &= ~group;
            CUDA_HARNESS_SAN(san::warp_operation(w, group);)
            released = true;
        }
        return released;
    }

    // Whether every lane in `group` waits (is in `waiting`) at the same warp operation as
    // `first`, with its mask.
    static bool group_arrived(const SimThread* lanes, unsigned group, unsigned waiting, const SimThread& first) {
        if ((group & ~waiting) != 0) { return false; }
        for (unsigned rest = group; rest != 0; rest &= rest - 1) {
            const SimThread& t = lanes[__builtin_ctz(rest)];
            if (t.warp_mask != first.warp_mask || !same_text(t.site.op, first.site.op)) { return false; }
        }
        return true;
    }

    // Completes __syncthreads when every thread of the block waits at it. A thread that has
    // returned can never arrive: that is reported at once, as is waiting at different calls.
    bool release_block_barrier() {
        const size_t waiting = at_block_barrier_;
        if (waiting == 0 || waiting + finished_ != n_) { return false; }
        const WaitSite& site = first_waiting_site();
        if (finished_ > 0) {
            error_ = std::to_string(waiting) + " threads wait at " + site.op + " (" + site.file + ":" +
                     std::to_string(site.line) + ") but " + std::to_string(finished_) +
                     " threads of the block have already returned: a barrier in divergent code, or after an "
                     "early return";
            return false;
        }
        for (size_t i = 0; i < n_; i++) {
            if (!same_site(threads_[i].site, site)) {
                error_ = "threads wait at different barriers (" + std::string(site.op) + " at " + site.file + ":" +
                         std::to_string(site.line) + " and " + threads_[i].site.op + " at " + threads_[i].site.file +
                         ":" + std::to_string(threads_[i].site.line) + "): a barrier in divergent code";
                return false;
            }
        }
        int count = 0;
        for (size_t i = 0; i < n_; i++) { count += threads_[i].predicate != 0; }
        barrier_count_ = count;
        for (size_t i = 0; i < n_; i++) { threads_[i].state = ThreadState::Ready; }
        at_block_barrier_ = 0;
        CUDA_HARNESS_SAN(san::block_barrier();)
        return true;
    }

    const WaitSite& first_waiting_site() const {
        for (size_t i = 0; i < n_; i++) {
            if (threads_[i].state == ThreadState::AtBlockBarrier) { return threads_[i].site; }
        }
        return threads_[0].site;
    }

    // --- reporting a deadlock ---

    // One line per run of consecutive threads in the same state at the same place.
    std::string describe_threads() const {
        std::string out;
        int lines = 0;
        size_t start = 0;
        for (size_t i = 1; i <= n_; i++) {
            if (i < n_ && same_state(threads_[i], threads_[start])) { continue; }
            if (++lines <= 16) { out += describe_run(start, i - 1); }
            start = i;
        }
        if (lines > 16) { out += "    ... and " + std::to_string(lines - 16) + " more groups of threads\n"; }
        return out;
    }

    static bool same_state(const SimThread& a, const SimThread& b) {
        if (a.state != b.state) { return false; }
        if (a.state == ThreadState::Finished || a.state == ThreadState::Ready) { return true; }
        return same_site(a.site, b.site) && a.warp_mask == b.warp_mask;
    }

    std::string describe_run(size_t first, size_t last) const {
        const SimThread& t = threads_[first];
        char head[64];
        if (first == last) {
            snprintf(head, sizeof(head), "    thread %zu", first);
        } else {
            snprintf(head, sizeof(head), "    threads %zu-%zu", first, last);
        }
        char what[512];
        switch (t.state) {
        case ThreadState::Finished: snprintf(what, sizeof(what), "returned"); break;
        case ThreadState::Ready: snprintf(what, sizeof(what), "ready"); break;
        case ThreadState::AtBlockBarrier:
            snprintf(what, sizeof(what), "wait at %s, %s:%d", t.site.op, t.site.file, t.site.line);
            break;
        case ThreadState::AtWarpOp:
            snprintf(what, sizeof(what), "wait at %s with mask 0x%08x, %s:%d", t.site.op, t.warp_mask, t.site.file,
                     t.site.line);
            break;
        }
        return std::string(head) + ": " + what + "\n";
    }

    void record_failure(LaunchJob& job) {
        std::lock_guard<std::mutex> lock(job.mu);
        if (job.failed.load()) { return; }
        char head[256];
        snprintf(head, sizeof(head), "kernel '%s', block (%u,%u,%u) of a grid (%u,%u,%u) of blocks (%u,%u,%u): ",
                 job.kernel_name, block_.block_idx.x, block_.block_idx.y, block_.block_idx.z, job.grid.x, job.grid.y,
                 job.grid.z, job.block.x, job.block.y, job.block.z);
        job.error = head + error_ +
                    " (hint: every thread of a block must reach each __syncthreads, and every lane named in a warp "
                    "operation's mask must reach it; threads are numbered x + y*blockDim.x + "
                    "z*blockDim.x*blockDim.y)\n" +
                    describe_threads();
        job.failed.store(true);
    }

    std::vector<SimThread> threads_;
    std::vector<Stack> stacks_;      // grows only between blocks: contexts point into it
    FpState fp_start_;               // the worker's floating-point state at the block's start: each fiber's first
    std::vector<WarpSnapshot> warps_;
    std::vector<WarpLanes> warp_lanes_;
    dim3 laid_out_{0, 0, 0};         // the block shape threads_' indices are computed for
    Context scheduler_;              // where the scheduler loop runs: the worker's own stack
#ifdef CUDA_HARNESS_ASAN
    Stack scheduler_stack_;          // its bounds, for AddressSanitizer
#endif
    SimThread* current_ = nullptr;   // the thread running now
    LaunchJob* job_ = nullptr;
    BlockInfo block_;
    size_t n_ = 0;                   // threads in the block
    size_t finished_ = 0;
    size_t at_block_barrier_ = 0;    // threads waiting at __syncthreads
    int barrier_count_ = 0;          // result of the last block barrier (predicates passed)
    unsigned char* shared_ = nullptr;
    size_t shared_size_ = 0;
    std::string error_;              // why the block cannot go on; empty while it can
};

// ----------------------------------------------------------------------------
// stack overflows: a simulated thread that runs past its stack faults in the guard region
// below it. A SIGSEGV handler, on an alternate stack (the thread's own is exhausted), tells
// that apart from other faults and says what to do. It is installed only where nothing
// else handles SIGSEGV (AddressSanitizer reports stack overflows itself).

inline void write_stderr(const char* text) {
    ssize_t ignored = write(2, text, strlen(text));
    (void)ignored;
}

// The stack pointer when the fault happened, where the platform tells it.
inline const void* fault_stack_pointer(void* context) {
#if defined(__x86_64__) && defined(REG_RSP)
    return reinterpret_cast<const void*>(static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RSP]);
#else
    (void)context;
    return nullptr;
#endif
}

inline void on_segv(int sig, siginfo_t* info, void* context) {
    BlockRunner* runner = tls_runner;
    if (runner != nullptr && runner->overflowed_stack(info->si_addr, fault_stack_pointer(context))) {
        static std::atomic<bool> reported{false}; // one report: workers that overflow together would interleave theirs
        if (reported.exchange(true)) {
            for (;;) { pause(); } // the first one's _exit ends the process
        }
        write_stderr("error: cuda harness: stack overflow in a thread of kernel '");
        write_stderr(runner->kernel_name());
        write_stderr("' (hint: raise CUDA_HARNESS_STACK_KB, the stack of each simulated thread, or shrink the "
                     "kernel's local arrays)\n");
        _exit(EXIT_FAILURE);
    }
    signal(sig, SIG_DFL);  // any other fault: returning re-executes it, with the default action
}

inline bool& segv_handler_installed() {
    static bool installed = false;
    return installed;
}

// Once per process: the handler; once per worker thread: its alternate signal stack.
inline void prepare_stack_overflow_reports() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction old;
        if (sigaction(SIGSEGV, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) {
            return;
        }
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_sigaction = on_segv;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        segv_handler_installed() = sigaction(SIGSEGV, &action, nullptr) == 0;
    });
    static thread_local bool has_alternate_stack = false;
    if (!segv_handler_installed() || has_alternate_stack) { return; }
    const size_t bytes = 64 * 1024;
    void* alternate = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alternate == MAP_FAILED) { return; }
    stack_t ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_sp = alternate;
    ss.ss_size = bytes;
    has_alternate_stack = sigaltstack(&ss, nullptr) == 0;
}

// Each OS thread's runner, created on its first block.
inline BlockRunner& this_worker_runner() {
    static thread_local BlockRunner runner;
    return runner;
}

// ----------------------------------------------------------------------------
// the worker pool: the OS threads blocks (and GEMM columns) run on

inline thread_local bool tls_in_pool_task = false;

class WorkerPool {
public:
    explicit WorkerPool(unsigned workers) : workers_(workers) {
        for (unsigned w = 1; w < workers_; w++) { std::thread(&WorkerPool::work, this, w).detach(); }
    }

    unsigned size() const { return workers_; }

    // Runs task(i) for every i < count and returns when all are done. Worker w runs
    // i = w, w + size(), w + 2 size(), ...; the calling thread is worker 0.
    void run(size_t count, const std::function<void(size_t)>& task) {
        if (count <= 1 || workers_ == 1 || tls_in_pool_task) {
            for (size_t i = 0; i < count; i++) { task(i); }
            return;
        }
        std::lock_guard<std::mutex> one_job_at_a_time(run_mu_);
        {
            std::lock_guard<std::mutex> lock(mu_);
            task_ = &task;
            count_ = count;
            pending_ = workers_ - 1;
            generation_++;
        }
        wake_.notify_all();
        run_share(0);
        std::unique_lock<std::mutex> lock(mu_);
        done_.wait(lock, [&] { return pending_ == 0; });
        task_ = nullptr;
    }

private:
    void work(unsigned w) {
        uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(mu_);
                wake_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
            }
            run_share(w);
            std::lock_guard<std::mutex> lock(mu_);
            if (--pending_ == 0) { done_.notify_one(); }
        }
    }

    void run_share(unsigned w) {
        tls_in_pool_task = true;
        for (size_t i = w; i < count_; i += workers_) { (*task_)(i); }
        tls_in_pool_task = false;
    }

    const unsigned workers_;
    std::mutex run_mu_;
    std::mutex mu_;
    std::condition_variable wake_;
    std::condition_variable done_;
    const std::function<void(size_t)>* task_ = nullptr;
    size_t count_ = 0;
    unsigned pending_ = 0;    // helpers that have not finished the current job
    uint64_t generation_ = 0; // counts jobs, so that a helper sees a new one
};

inline WorkerPool*& pool_slot() {
    static WorkerPool* pool = nullptr;
    return pool;
}

// The pool, created at first use and never destroyed (its threads wait until the process
// ends). A child process after fork() has none of the parent's threads: it starts a new pool.
inline WorkerPool& worker_pool() {
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(nullptr, nullptr, [] { pool_slot() = nullptr; }); });
    static std::mutex creating;
    std::lock_guard<std::mutex> lock(creating);
    WorkerPool*& pool = pool_slot();
    if (pool == nullptr) {
        unsigned cores = std::max(1u, std::min(64u, std::thread::hardware_concurrency()));
#ifdef CUDA_HARNESS_SANITIZE
        cores = 1;  // the sanitizer's shadow state has no locks: every block runs on the calling thread
        if (env_long("CUDA_HARNESS_THREADS", 1, 1, 256) != 1) { diagnose("the sanitizer build runs one worker"); }
        pool = new WorkerPool(cores);
#else
        pool = new WorkerPool(static_cast<unsigned>(env_long("CUDA_HARNESS_THREADS", cores, 1, 256)));
#endif
    }
    return *pool;
}

// ----------------------------------------------------------------------------
// launch configuration: checked as a GPU checks it

class KernelAttributes {
public:
    // The dynamic shared memory a kernel may use: 48 KiB unless raised by cudaFuncSetAttribute.
    size_t max_dynamic_shared(const void* kernel) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = max_dynamic_shared_.find(kernel);
        return it == max_dynamic_shared_.end() ? kSharedMemPerBlock : it->second;
    }
    void set_max_dynamic_shared(const void* kernel, size_t bytes) {
        std::lock_guard<std::mutex> lock(mu_);
        max_dynamic_shared_[kernel] = bytes;
    }

private:
    mutable std::mutex mu_;
    std::map<const void*, size_t> max_dynamic_shared_;
};

inline KernelAttributes& kernel_attributes() {
    static KernelAttributes* attributes = new KernelAttributes;
    return *attributes;
}

inline cudaError_t check_launch(const char* name, const void* kernel, dim3 grid, dim3 block, size_t shared_bytes,
                                cudaStream_t stream) {
    const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        threads > static_cast<uint64_t>(kMaxThreadsPerBlock)) {
        diagnose("launch of %s: a block of (%u,%u,%u) threads: at most 1024 threads, x and y at most 1024, z at most "
                 "64, none 0", name, block.x, block.y, block.z);
        return cudaErrorInvalidConfiguration;
    }
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
        diagnose("launch of %s: a grid of (%u,%u,%u) blocks: x at most 2^31-1, y and z at most 65535, none 0", name,
                 grid.x, grid.y, grid.z);
        return cudaErrorInvalidConfiguration;
    }
    const size_t limit = kernel_attributes().max_dynamic_shared(kernel);
    if (shared_bytes > limit) {
        diagnose("launch of %s: %zu bytes of dynamic shared memory, over the kernel's limit of %zu (raise it with "
                 "cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), up to %zu)",
                 name, shared_bytes, limit, kSharedMemPerBlockOptin);
        return cudaErrorInvalidValue;
    }
    if (!stream_ok(stream, name)) { return cudaErrorInvalidResourceHandle; }
    return cudaSuccess;
}

// Runs a launch to completion. A configuration error becomes the last error, as on a GPU;
// a deadlocked block ends the program with a report of where its threads wait.
inline void run_kernel(const char* name, const void* kernel, dim3 grid, dim3 block, size_t shared_bytes,
                       cudaStream_t stream, KernelBody body) {
    if (tls_runner != nullptr) {
        fatal("the harness does not support dynamic parallelism", "kernel '%s' launched from device code", name);
    }
    cudaError_t err = check_launch(name, kernel, grid, block, shared_bytes, stream);
    if (err != cudaSuccess) {
        record_error(err);
        return;
    }
    stream_catch_up(stream); // what the stream deferred comes first
    LaunchJob job;
    job.kernel_name = name;
    job.grid = grid;
    job.block = block;
    job.shared_bytes = shared_bytes;
    job.body = body;
    const size_t blocks = static_cast<size_t>(grid.x) * grid.y * grid.z;
#ifdef CUDA_HARNESS_SANITIZE
    // static __shared__ arrays live among the thread-locals; these belong to the harness
    san::find_shared_tls({{&tls_runner, sizeof(tls_runner)}, {&this_worker_runner(), sizeof(BlockRunner)},
                          {&tls_last_error, sizeof(tls_last_error)}, {&tls_in_pool_task, sizeof(tls_in_pool_task)}});
    san::launch_begin(name, grid, block);
#endif
    ProfileScope timed([name] { return std::string(name); });
    worker_pool().run(blocks, [&job](size_t b) {
        if (!job.failed.load(std::memory_order_relaxed)) { this_worker_runner().run(job, b); }
    });
    CUDA_HARNESS_SAN(san::launch_end();)
    if (job.failed.load()) {
        fflush(stdout);
        fprintf(stderr, "error: cuda harness: %s", job.error.c_str());
        fflush(stderr);
        exit(EXIT_FAILURE);
    }
}

// What LAUNCH(kernel, grid, block, shared_bytes, stream) builds; calling it with the
// kernel's arguments runs the launch. The arguments convert to the kernel's parameter
// types as in any call; every simulated thread gets its own copy, as on a GPU.
template <typename... Params>
class KernelLaunch {
public:
    KernelLaunch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                 const char* name)
        : kernel_(kernel), grid_(grid), block_(block), shared_bytes_(shared_bytes), stream_(stream), name_(name) {}

    void operator()(Params... args) const {
        Call call{kernel_, std::tuple<Params...>(args...)};
        run_kernel(name_, reinterpret_cast<const void*>(kernel_), grid_, block_, shared_bytes_, stream_,
                   KernelBody{&KernelLaunch::invoke, &call});
    }

private:
    struct Call {
        void (*kernel)(Params...);
        std::tuple<Params...> args;
    };

    static void invoke(const void* call) {
        const Call& c = *static_cast<const Call*>(call);
        std::apply(c.kernel, c.args);
    }

    void (*kernel_)(Params...);
    dim3 grid_;
    dim3 block_;
    size_t shared_bytes_;
    cudaStream_t stream_;
    const char* name_;
};

template <typename... Params>
KernelLaunch<Params...> make_launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                                    cudaStream_t stream, const char* name) {
    return KernelLaunch<Params...>(kernel, grid, block, shared_bytes, stream, name);
}

}  // namespace cuda_harness

// ----------------------------------------------------------------------------
// the runtime API for kernels

inline cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
    if (kernel == nullptr) { return cuda_harness::record_error(cudaErrorInvalidDeviceFunction); }
    switch (attr) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
        if (value < 0 || static_cast<size_t>(value) > cuda_harness::kSharedMemPerBlockOptin) {
            cuda_harness::diagnose("cudaFuncSetAttribute: %d bytes of dynamic shared memory, over the device's %zu",
                                   value, cuda_harness::kSharedMemPerBlockOptin);
            return cuda_harness::record_error(cudaErrorInvalidValue);
        }
        cuda_harness::kernel_attributes().set_max_dynamic_shared(kernel, static_cast<size_t>(value));
        return cudaSuccess;
    case cudaFuncAttributePreferredSharedMemoryCarveout:
        return value >= -1 && value <= 100 ? cudaSuccess : cuda_harness::record_error(cudaErrorInvalidValue);
    }
    return cuda_harness::record_error(cudaErrorInvalidValue);
}

template <typename T>
inline cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

// A plausible occupancy: the multiprocessor's 2048 threads in blocks of blockSize.
template <typename T>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, T* /*kernel*/, int blockSize,
                                                                 size_t /*dynamicSMemSize*/) {
    if (blocks == nullptr || blockSize <= 0) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    *blocks = std::max(1, std::min(32, 2048 / blockSize));
    return cudaSuccess;
}

CUDA_HARNESS_UNTRACED_END
