// test_harness.cu: tests of the CUDA CPU harness, written as ordinary CUDA.
//
// The same source builds both ways (dev/harness/README.md):
//   g++ -x c++ -DCUDA_CPU_HARNESS ...   kernels run on the CPU under the harness
//   nvcc ...                            kernels run on a GPU
// Every check compares against a reference computed by plain loops on the host. A few
// checks are about the harness itself (a missing __syncthreads must give a wrong answer,
// a divergent __syncthreads must be reported, copies in the wrong direction are refused):
// they run in the harness build only, and print SKIP in the GPU build.
// Output: one "PASS name" or "FAIL name: detail" per check, then "N passed, M failed";
// the exit status is 1 if any check failed.
#include <algorithm>
#include <chrono>
#include <cfloat>
#include <cmath>
#include <cfenv>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "llmc/cuda_common.h"

#ifdef CUDA_CPU_HARNESS
#include <sys/wait.h>
#include <unistd.h>
#endif

// ----------------------------------------------------------------------------
// bookkeeping

static int g_passed = 0;
static int g_failed = 0;

// Prints "PASS name" or "FAIL name: <detail>".
static void check(bool ok, const char* name, const char* fmt = "", ...) {
    if (ok) {
        printf("PASS %s\n", name);
        g_passed++;
        return;
    }
    printf("FAIL %s: ", name);
    va_list args;
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
    g_failed++;
}

// The harness explains every error code it returns on stderr; while a test provokes errors
// on purpose, those explanations are noise.
static void expect_errors(bool expected) {
#ifdef CUDA_CPU_HARNESS
    if (expected) {
        setenv("CUDA_HARNESS_QUIET", "1", 1);
    } else {
        unsetenv("CUDA_HARNESS_QUIET");
    }
#else
    (void)expected;
#endif
}

[[maybe_unused]] static void skip(const char* name, const char* why) { printf("SKIP %s: %s\n", name, why); }

// ----------------------------------------------------------------------------
// host helpers

template <typename T>
static T* to_device(const std::vector<T>& host) {
    T* d = nullptr;
    cudaCheck(cudaMalloc(&d, host.size() * sizeof(T)));
    cudaCheck(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <typename T>
static std::vector<T> to_host(const T* d, size_t count) {
    std::vector<T> host(count);
    cudaCheck(cudaMemcpy(host.data(), d, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
}

// Integer-valued floats below `limit`, so that sums in any order are exact (below 2^24).
static std::vector<float> small_integers(size_t count, unsigned seed, unsigned limit = 100) {
    std::vector<float> v(count);
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = static_cast<float>((seed >> 16) % limit);
    }
    return v;
}

// Uniform in [-1, 1).
static std::vector<float> random_floats(size_t count, unsigned seed) {
    std::vector<float> v(count);
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = static_cast<float>(seed >> 8) / 8388608.0f - 1.0f;
    }
    return v;
}

static float from_bits(uint32_t bits) {
    float x;
    memcpy(&x, &bits, sizeof(x));
    return x;
}

static uint32_t to_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof(bits));
    return bits;
}

// The largest |a - b| / (1 + |b|) over two arrays.
static double max_rel_error(const std::vector<float>& got, const std::vector<double>& want) {
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); i++) {
        const double err = std::fabs(got[i] - want[i]) / (1.0 + std::fabs(want[i]));
        worst = std::isnan(err) ? INFINITY : std::max(worst, err);
    }
    return worst;
}

// ----------------------------------------------------------------------------
// kernels: block reductions

constexpr int kReduceThreads = 256;

// The classic shared-memory tree reduction: one sum per block.
__global__ void block_sum_kernel(const float* in, float* out, int n) {
    __shared__ float buf[kReduceThreads];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    buf[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) { buf[t] += buf[t + stride]; }
        __syncthreads();
    }
    if (t == 0) { out[blockIdx.x] = buf[0]; }
}

// The same without its barriers: thread 0 reads partial sums nobody has written yet.
__global__ void block_sum_no_barrier_kernel(const float* in, float* out, int n) {
    __shared__ float buf[kReduceThreads];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    buf[t] = i < n ? in[i] : 0.0f;
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) { buf[t] += buf[t + stride]; }
    }
    if (t == 0) { out[blockIdx.x] = buf[0]; }
}

// __syncthreads_count over a predicate.
__global__ void barrier_count_kernel(const float* in, int* out) {
    const int count = __syncthreads_count(in[blockIdx.x * blockDim.x + threadIdx.x] >= 50.0f);
    if (threadIdx.x == 0) { out[blockIdx.x] = count; }
}

// ----------------------------------------------------------------------------
// kernels: warps

constexpr unsigned kFullMask = 0xffffffffu;

struct WarpResults {
    float* down_sum;    // per warp, from lane 0
    float* xor_sum;     // per thread: every lane has the sum
    float* broadcast;   // per thread: lane 5's value
    int* scan;          // per thread: inclusive prefix sum within the warp
    unsigned* ballot;   // per warp: lanes whose value is >= 50
    int* any_all;       // per warp: any(v >= 99) + 2 * all(v >= 0)
    float* segment_sum; // per thread: the sum of its segment of 8 lanes (lane % 8 == 0 only)
    float* segment_up;  // per thread: v += shfl_up(v, 1, 2, 4) within segments of 8, unguarded
    float* segment_bcast; // per thread: lane 3 of its segment of 8
};

__global__ void warp_ops_kernel(const float* in, WarpResults r) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int lane = threadIdx.x % warpSize;
    const int warp = i / warpSize;
    const float v = in[i];

    float down = v;
    for (int offset = 16; offset > 0; offset /= 2) { down += __shfl_down_sync(kFullMask, down, offset); }
    if (lane == 0) { r.down_sum[warp] = down; }

    float butterfly = v;
    for (int offset = 16; offset > 0; offset /= 2) { butterfly += __shfl_xor_sync(kFullMask, butterfly, offset); }
    r.xor_sum[i] = butterfly;

    r.broadcast[i] = __shfl_sync(kFullMask, v, 5);

    int scan = static_cast<int>(v);
    for (int offset = 1; offset < 32; offset *= 2) {
        const int up = __shfl_up_sync(kFullMask, scan, offset);
        if (lane >= offset) { scan += up; }
    }
    r.scan[i] = scan;

    const unsigned ballot = __ballot_sync(kFullMask, v >= 50.0f);
    const int any_all = __any_sync(kFullMask, v >= 99.0f) + 2 * __all_sync(kFullMask, v >= 0.0f);
    if (lane == 0) {
        r.ballot[warp] = ballot;
        r.any_all[warp] = any_all;
    }

    float segment = v;
    for (int offset = 4; offset > 0; offset /= 2) { segment += __shfl_down_sync(kFullMask, segment, offset, 8); }
    r.segment_sum[i] = segment;

    // a lane whose source lies before its segment gets its own value back
    float up = v;
    for (int offset = 1; offset < 8; offset *= 2) { up += __shfl_up_sync(kFullMask, up, offset, 8); }
    r.segment_up[i] = up;
    r.segment_bcast[i] = __shfl_sync(kFullMask, v, 3, 8);
}

// Per warp: the sum and the maximum by cooperative groups, and the tile's geometry.
__global__ void cg_reduce_kernel(const float* in, float* sums, float* maxes, int* geometry) {
    cg::thread_block block = cg::this_thread_block();
    cg::thread_block_tile<32> warp = cg::tiled_partition<32>(block);
    const float v = in[blockIdx.x * blockDim.x + block.thread_rank()];
    const float sum = cg::reduce(warp, v, cg::plus<float>{});
    const float largest = cg::reduce(warp, v, cg::greater<float>{});
    float tile_sum = v;  // the same sum by the tile's own shuffles: down, then a butterfly
    for (int offset = 16; offset > 0; offset /= 2) { tile_sum += warp.shfl_down(tile_sum, offset); }
    float butterfly = v;
    for (int offset = 16; offset > 0; offset /= 2) { butterfly += warp.shfl_xor(butterfly, offset); }
    const bool all_agree = warp.all(butterfly == sum);
    const int slot = blockIdx.x * warp.meta_group_size() + warp.meta_group_rank();
    if (warp.thread_rank() == 0) {
        sums[slot] = sum == tile_sum && all_agree ? sum : -1.0f;
        maxes[slot] = largest;
        geometry[slot] = static_cast<int>(warp.meta_group_size() * 100 + warp.size());
    }
    block.sync();
}

// ----------------------------------------------------------------------------
// kernels: atomics, shared memory, indexing

struct AtomicResults {
    float* float_sum;
    int* int_sum;
    int* int_max;
    unsigned long long* count;
    double* double_sum;
    int* winners;  // blocks that won the atomicCAS race: must be 1
    int* flag;
};

__global__ void atomics_kernel(const float* values, int n, AtomicResults r) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const int v = static_cast<int>(values[i]);
        atomicAdd(r.float_sum, values[i]);
        atomicAdd(r.int_sum, v);
        atomicMax(r.int_max, v);
        atomicAdd(r.count, 1ull);
        atomicAdd(r.double_sum, static_cast<double>(v));
    }
    if (threadIdx.x == 0 && atomicCAS(r.flag, 0, static_cast<int>(blockIdx.x) + 1) == 0) { atomicAdd(r.winners, 1); }
}

// Reverses each block's slice through dynamic shared memory.
__global__ void reverse_kernel(const float* in, float* out) {
    DYNAMIC_SHARED(float, tile);
    const int t = threadIdx.x;
    const int base = blockIdx.x * blockDim.x;
    tile[t] = in[base + t];
    __syncthreads();
    out[base + t] = tile[blockDim.x - 1 - t];
}

// Fills and reads back 64 KiB of dynamic shared memory (needs cudaFuncSetAttribute).
constexpr int kBigSharedFloats = 16384;
__global__ void big_shared_kernel(float* out) {
    DYNAMIC_SHARED(float, big);
    for (int i = threadIdx.x; i < kBigSharedFloats; i += blockDim.x) { big[i] = static_cast<float>(i); }
    __syncthreads();
    float sum = 0.0f;
    for (int i = threadIdx.x; i < kBigSharedFloats; i += blockDim.x) { sum += big[kBigSharedFloats - 1 - i]; }
    out[threadIdx.x] = sum;
}

struct Saxpy {
    int n;
    float a;
};

// y = a x + y with a grid-stride loop and a struct argument.
__global__ void saxpy_kernel(Saxpy p, const float* x, float* y) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) { y[i] = p.a * x[i] + y[i]; }
}

// out = in^T for a rows×cols row-major matrix, 2D grid of 2D blocks.
__global__ void transpose_kernel(const float* in, float* out, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    const int r = blockIdx.y * blockDim.y + threadIdx.y;
    if (r < rows && c < cols) { out[c * rows + r] = in[r * cols + c]; }
}

// Every thread of a 3D grid of 3D blocks writes its coordinates.
__global__ void coordinates_kernel(int* out) {
    const int block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const int thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    const int threads = blockDim.x * blockDim.y * blockDim.z;
    out[block * threads + thread] = static_cast<int>(blockIdx.x * 100000 + blockIdx.y * 10000 + blockIdx.z * 1000 +
                                                     threadIdx.x * 100 + threadIdx.y * 10 + threadIdx.z);
}

__global__ void noop_kernel() {}

#ifdef CUDA_CPU_HARNESS
// Each thread notes in `order` when it starts (its index) and when it returns (its index + 100):
// lanes 0-15 wait at a shuffle among themselves, lanes 16-31 run straight through.
__global__ void execution_order_kernel(int* order, int* next) {
    const int t = threadIdx.x;
    order[atomicAdd(next, 1)] = t;
    if (t < 16) { (void)__shfl_xor_sync(0x0000ffffu, t, 1); }
    order[atomicAdd(next, 1)] = t + 100;
}

// Thread 0 rounds downward from its start, and returns without setting it back; each thread
// writes 1/3 as it rounds it, after a barrier or not. Every other thread starts as the block
// did, whether on a fiber of its own or after thread 0 on its fiber.
__global__ void rounding_mode_kernel(float* out, int barrier) {
    if (threadIdx.x == 0) { fesetround(FE_DOWNWARD); }
    if (barrier) { __syncthreads(); }
    volatile float one = 1.0f, three = 3.0f;
    out[threadIdx.x] = one / three;
}
#endif

// ----------------------------------------------------------------------------
// kernels the harness must reject (run in a child process)

__global__ void divergent_barrier_kernel(float* out) {
    if (threadIdx.x < 16) { __syncthreads(); }
    out[threadIdx.x] = 1.0f;
}

__global__ void mismatched_barriers_kernel(float* out) {
    if (threadIdx.x < 16) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}

__global__ void mismatched_warp_ops_kernel(float* out) {
    float v = static_cast<float>(threadIdx.x);
    if (threadIdx.x < 16) {
        v = __shfl_xor_sync(kFullMask, v, 1);
    } else {
        v = static_cast<float>(__ballot_sync(kFullMask, v > 20.0f));
    }
    out[threadIdx.x] = v;
}

#if defined(CUDA_CPU_HARNESS) && !defined(CUDA_HARNESS_ASAN)
// Thread 37 runs far past its stack: a local array four times the default stack, written from
// its top down, so that the first write past the stack lands in the guard region below it.
// Without the barrier thread 37 runs on thread 0's stack (chained after it), with it on its own.
__global__ void stack_overflow_kernel(float* out, int barrier_first) {
    if (barrier_first) { __syncthreads(); }
    if (threadIdx.x == 37) {
        constexpr int kBytes = 1 << 20;
        volatile char big[kBytes];
        for (int i = kBytes - 1; i >= 0; i -= 512) { big[i] = 1; }
        out[0] = big[0];
    }
}
#endif

// ----------------------------------------------------------------------------
// tests: kernels

static void test_block_reduction() {
    const int n = 5000;
    const int blocks = (n + kReduceThreads - 1) / kReduceThreads;
    std::vector<float> host = small_integers(n, 1);
    float* d_in = to_device(host);
    float* d_out = nullptr;
    cudaCheck(cudaMalloc(&d_out, blocks * sizeof(float)));

    LAUNCH(block_sum_kernel, blocks, kReduceThreads, 0, 0)(d_in, d_out, n);
    cudaCheckLaunch();
    std::vector<float> got = to_host(d_out, blocks);
    int wrong = 0;
    for (int b = 0; b < blocks; b++) {
        double want = 0.0;
        for (int i = b * kReduceThreads; i < std::min(n, (b + 1) * kReduceThreads); i++) { want += host[i]; }
        wrong += got[b] != static_cast<float>(want);
    }
    check(wrong == 0, "block reduction with __syncthreads", "%d of %d block sums wrong", wrong, blocks);

#ifdef CUDA_CPU_HARNESS
    LAUNCH(block_sum_no_barrier_kernel, blocks, kReduceThreads, 0, 0)(d_in, d_out, n);
    cudaCheckLaunch();
    std::vector<float> racy = to_host(d_out, blocks);
    int differ = 0;
    for (int b = 0; b < blocks; b++) { differ += racy[b] != got[b]; }
    check(differ == blocks, "block reduction without __syncthreads gives wrong sums",
          "only %d of %d block sums differ from the correct ones: barriers are not real", differ, blocks);
#else
    skip("block reduction without __syncthreads gives wrong sums", "a data race on a GPU, harness build only");
#endif

    int* d_count = nullptr;
    cudaCheck(cudaMalloc(&d_count, blocks * sizeof(int)));
    LAUNCH(barrier_count_kernel, blocks - 1, kReduceThreads, 0, 0)(d_in, d_count);
    cudaCheckLaunch();
    std::vector<int> counts = to_host(d_count, blocks - 1);
    int bad = 0;
    for (int b = 0; b < blocks - 1; b++) {
        int want = 0;
        for (int i = 0; i < kReduceThreads; i++) { want += host[b * kReduceThreads + i] >= 50.0f; }
        bad += counts[b] != want;
    }
    check(bad == 0, "__syncthreads_count", "%d blocks wrong", bad);
    cudaCheck(cudaFree(d_count));
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
}

// The CUDA guide's rule for width 8: shfl_up from before the segment's start returns the
// caller's own value; shfl(v, 3, 8) reads lane 3 of the caller's segment.
static int bad_segment_lanes(const std::vector<float>& v, const std::vector<float>& up, const std::vector<float>& bcast) {
    int bad = 0;
    for (size_t warp = 0; warp < v.size() / 32; warp++) {
        std::vector<float> want(v.begin() + warp * 32, v.begin() + (warp + 1) * 32);
        for (int offset = 1; offset < 8; offset *= 2) {
            std::vector<float> next = want;
            for (int l = 0; l < 32; l++) { next[l] += (l % 8 >= offset) ? want[l - offset] : want[l]; }
            want = next;
        }
        for (int l = 0; l < 32; l++) {
            bad += up[warp * 32 + l] != want[l];
            bad += bcast[warp * 32 + l] != v[warp * 32 + l / 8 * 8 + 3];
        }
    }
    return bad;
}

static void test_warp_ops() {
    const int threads = 128;
    const int blocks = 3;
    const int n = threads * blocks;
    const int warps = n / 32;
    std::vector<float> host = small_integers(n, 2);
    float* d_in = to_device(host);
    WarpResults r{};
    cudaCheck(cudaMalloc(&r.down_sum, warps * sizeof(float)));
    cudaCheck(cudaMalloc(&r.xor_sum, n * sizeof(float)));
    cudaCheck(cudaMalloc(&r.broadcast, n * sizeof(float)));
    cudaCheck(cudaMalloc(&r.scan, n * sizeof(int)));
    cudaCheck(cudaMalloc(&r.ballot, warps * sizeof(unsigned)));
    cudaCheck(cudaMalloc(&r.any_all, warps * sizeof(int)));
    cudaCheck(cudaMalloc(&r.segment_sum, n * sizeof(float)));
    cudaCheck(cudaMalloc(&r.segment_up, n * sizeof(float)));
    cudaCheck(cudaMalloc(&r.segment_bcast, n * sizeof(float)));
    LAUNCH(warp_ops_kernel, blocks, threads, 0, 0)(d_in, r);
    cudaCheckLaunch();

    std::vector<float> down = to_host(r.down_sum, warps), butterfly = to_host(r.xor_sum, n),
                       broadcast = to_host(r.broadcast, n), segment = to_host(r.segment_sum, n);
    std::vector<int> scan = to_host(r.scan, n), any_all = to_host(r.any_all, warps);
    std::vector<unsigned> ballot = to_host(r.ballot, warps);
    std::vector<float> segment_up = to_host(r.segment_up, n), segment_bcast = to_host(r.segment_bcast, n);
    int bad_down = 0, bad_xor = 0, bad_broadcast = 0, bad_scan = 0, bad_vote = 0, bad_segment = 0;
    for (int w = 0; w < warps; w++) {
        float sum = 0.0f;
        unsigned want_ballot = 0;
        bool any = false;
        int prefix = 0;
        for (int l = 0; l < 32; l++) {
            const int i = w * 32 + l;
            sum += host[i];
            prefix += static_cast<int>(host[i]);
            bad_scan += scan[i] != prefix;
            bad_broadcast += broadcast[i] != host[w * 32 + 5];
            if (host[i] >= 50.0f) { want_ballot |= 1u << l; }
            any = any || host[i] >= 99.0f;
            if (l % 8 == 0) {
                float seg = 0.0f;
                for (int s = 0; s < 8; s++) { seg += host[i + s]; }
                bad_segment += segment[i] != seg;
            }
        }
        bad_down += down[w] != sum;
        for (int l = 0; l < 32; l++) { bad_xor += butterfly[w * 32 + l] != sum; }
        bad_vote += ballot[w] != want_ballot || any_all[w] != (any ? 1 : 0) + 2;
    }
    check(bad_down == 0, "warp reduction with __shfl_down_sync", "%d warps wrong", bad_down);
    check(bad_xor == 0, "warp reduction with __shfl_xor_sync (all lanes)", "%d lanes wrong", bad_xor);
    check(bad_broadcast == 0, "warp broadcast with __shfl_sync", "%d lanes wrong", bad_broadcast);
    check(bad_scan == 0, "warp inclusive scan with __shfl_up_sync", "%d lanes wrong", bad_scan);
    check(bad_vote == 0, "__ballot_sync, __any_sync, __all_sync", "%d warps wrong", bad_vote);
    check(bad_segment == 0, "__shfl_down_sync with width 8", "%d segments wrong", bad_segment);
    check(bad_segment_lanes(host, segment_up, segment_bcast) == 0,
          "__shfl_up_sync and __shfl_sync with width 8 stay within their segments", "%d lanes wrong",
          bad_segment_lanes(host, segment_up, segment_bcast));

    cudaCheck(cudaFree(r.down_sum));
    cudaCheck(cudaFree(r.xor_sum));
    cudaCheck(cudaFree(r.broadcast));
    cudaCheck(cudaFree(r.scan));
    cudaCheck(cudaFree(r.ballot));
    cudaCheck(cudaFree(r.any_all));
    cudaCheck(cudaFree(r.segment_sum));
    cudaCheck(cudaFree(r.segment_up));
    cudaCheck(cudaFree(r.segment_bcast));
    cudaCheck(cudaFree(d_in));
}

static void test_cooperative_groups() {
    const int threads = 256;
    const int blocks = 4;
    const int tiles = blocks * threads / 32;
    std::vector<float> host = small_integers(threads * blocks, 3);
    float* d_in = to_device(host);
    float *d_sums = nullptr, *d_maxes = nullptr;
    int* d_geometry = nullptr;
    cudaCheck(cudaMalloc(&d_sums, tiles * sizeof(float)));
    cudaCheck(cudaMalloc(&d_maxes, tiles * sizeof(float)));
    cudaCheck(cudaMalloc(&d_geometry, tiles * sizeof(int)));
    LAUNCH(cg_reduce_kernel, blocks, threads, 0, 0)(d_in, d_sums, d_maxes, d_geometry);
    cudaCheckLaunch();
    std::vector<float> sums = to_host(d_sums, tiles), maxes = to_host(d_maxes, tiles);
    std::vector<int> geometry = to_host(d_geometry, tiles);
    int bad = 0, bad_geometry = 0;
    for (int t = 0; t < tiles; t++) {
        float sum = 0.0f, largest = -1.0f;
        for (int l = 0; l < 32; l++) {
            sum += host[t * 32 + l];
            largest = std::max(largest, host[t * 32 + l]);
        }
        bad += sums[t] != sum || maxes[t] != largest;
        bad_geometry += geometry[t] != (threads / 32) * 100 + 32;
    }
    check(bad == 0, "cooperative groups reduce (plus, greater), tile shfl_down, shfl_xor, all", "%d tiles wrong", bad);
    check(bad_geometry == 0, "cooperative groups tile meta_group_size and size", "%d tiles wrong", bad_geometry);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_sums));
    cudaCheck(cudaFree(d_maxes));
    cudaCheck(cudaFree(d_geometry));
}

static void test_atomics() {
    // large enough that the workers' blocks overlap in time: a non-atomic add loses updates
    const int n = 400000;
    std::vector<float> host = small_integers(n, 4, 40);
    float* d_values = to_device(host);
    AtomicResults r{};
    cudaCheck(cudaMalloc(&r.float_sum, sizeof(float)));
    cudaCheck(cudaMalloc(&r.int_sum, sizeof(int)));
    cudaCheck(cudaMalloc(&r.int_max, sizeof(int)));
    cudaCheck(cudaMalloc(&r.count, sizeof(unsigned long long)));
    cudaCheck(cudaMalloc(&r.double_sum, sizeof(double)));
    cudaCheck(cudaMalloc(&r.winners, sizeof(int)));
    cudaCheck(cudaMalloc(&r.flag, sizeof(int)));
    cudaCheck(cudaMemset(r.float_sum, 0, sizeof(float)));
    cudaCheck(cudaMemset(r.int_sum, 0, sizeof(int)));
    cudaCheck(cudaMemset(r.int_max, 0, sizeof(int)));
    cudaCheck(cudaMemset(r.count, 0, sizeof(unsigned long long)));
    cudaCheck(cudaMemset(r.double_sum, 0, sizeof(double)));
    cudaCheck(cudaMemset(r.winners, 0, sizeof(int)));
    cudaCheck(cudaMemset(r.flag, 0, sizeof(int)));
    LAUNCH(atomics_kernel, 37, 128, 0, 0)(d_values, n, r);
    cudaCheckLaunch();

    long long want = 0;
    int want_max = 0;
    for (float v : host) {
        want += static_cast<long long>(v);
        want_max = std::max(want_max, static_cast<int>(v));
    }
    const float float_sum = to_host(r.float_sum, 1)[0];
    const int int_sum = to_host(r.int_sum, 1)[0];
    const int int_max = to_host(r.int_max, 1)[0];
    const unsigned long long count = to_host(r.count, 1)[0];
    const double double_sum = to_host(r.double_sum, 1)[0];
    const int winners = to_host(r.winners, 1)[0];
    check(float_sum == static_cast<float>(want) && int_sum == want && double_sum == static_cast<double>(want),
          "atomicAdd (float, int, double) from 37 blocks", "sums %.1f %d %.1f, want %lld", float_sum, int_sum,
          double_sum, want);
    check(count == static_cast<unsigned long long>(n) && int_max == want_max, "atomicAdd (unsigned long long), atomicMax",
          "count %llu (want %d), max %d (want %d)", count, n, int_max, want_max);
    check(winners == 1, "atomicCAS: exactly one block wins", "%d winners", winners);
    cudaCheck(cudaFree(d_values));
    cudaCheck(cudaFree(r.float_sum));
    cudaCheck(cudaFree(r.int_sum));
    cudaCheck(cudaFree(r.int_max));
    cudaCheck(cudaFree(r.count));
    cudaCheck(cudaFree(r.double_sum));
    cudaCheck(cudaFree(r.winners));
    cudaCheck(cudaFree(r.flag));
}

static void test_dynamic_shared() {
    const int threads = 96;
    const int blocks = 5;
    std::vector<float> host = small_integers(threads * blocks, 5);
    float* d_in = to_device(host);
    float* d_out = nullptr;
    cudaCheck(cudaMalloc(&d_out, host.size() * sizeof(float)));
    LAUNCH(reverse_kernel, blocks, threads, threads * sizeof(float), 0)(d_in, d_out);
    cudaCheckLaunch();
    std::vector<float> got = to_host(d_out, host.size());
    int bad = 0;
    for (int b = 0; b < blocks; b++) {
        for (int t = 0; t < threads; t++) { bad += got[b * threads + t] != host[b * threads + threads - 1 - t]; }
    }
    check(bad == 0, "dynamic shared memory", "%d elements wrong", bad);

    // 64 KiB: over the default 48 KiB limit until cudaFuncSetAttribute raises it
    const size_t big = kBigSharedFloats * sizeof(float);
    expect_errors(true);
    LAUNCH(big_shared_kernel, 1, 128, big, 0)(d_out);
    const cudaError_t refused = cudaGetLastError();
    expect_errors(false);
    cudaCheck(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(big)));
    LAUNCH(big_shared_kernel, 1, 128, big, 0)(d_out);
    const cudaError_t accepted = cudaGetLastError();
    std::vector<float> sums = to_host(d_out, 128);
    int bad_big = 0;
    for (int t = 0; t < 128; t++) {
        double want = 0.0;
        for (int i = t; i < kBigSharedFloats; i += 128) { want += kBigSharedFloats - 1 - i; }
        bad_big += sums[t] != static_cast<float>(want);
    }
    check(refused != cudaSuccess && accepted == cudaSuccess && bad_big == 0,
          "64 KiB dynamic shared memory needs cudaFuncSetAttribute", "without: %s, with: %s, %d sums wrong",
          cudaGetErrorString(refused), cudaGetErrorString(accepted), bad_big);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
}

static void test_indexing() {
    const int n = 100003;
    std::vector<float> x = random_floats(n, 6), y = random_floats(n, 7);
    float* d_x = to_device(x);
    float* d_y = to_device(y);
    LAUNCH(saxpy_kernel, 4, 64, 0, 0)(Saxpy{n, 2.5f}, d_x, d_y);
    cudaCheckLaunch();
    std::vector<float> got = to_host(d_y, n);
    int bad = 0;
    for (int i = 0; i < n; i++) { bad += got[i] != 2.5f * x[i] + y[i]; }
    check(bad == 0, "grid-stride loop with a struct argument", "%d elements wrong", bad);

    const int rows = 37, cols = 53;
    std::vector<float> m = random_floats(rows * cols, 8);
    float* d_m = to_device(m);
    float* d_t = nullptr;
    cudaCheck(cudaMalloc(&d_t, m.size() * sizeof(float)));
    const dim3 block(16, 8);
    const dim3 grid((cols + block.x - 1) / block.x, (rows + block.y - 1) / block.y);
    LAUNCH(transpose_kernel, grid, block, 0, 0)(d_m, d_t, rows, cols);
    cudaCheckLaunch();
    std::vector<float> t = to_host(d_t, m.size());
    int bad_t = 0;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) { bad_t += t[c * rows + r] != m[r * cols + c]; }
    }
    check(bad_t == 0, "2D grid of 2D blocks (transpose)", "%d elements wrong", bad_t);

    const dim3 grid3(2, 3, 2), block3(4, 3, 2);
    const int total = 2 * 3 * 2 * 4 * 3 * 2;
    int* d_coords = nullptr;
    cudaCheck(cudaMalloc(&d_coords, total * sizeof(int)));
    LAUNCH(coordinates_kernel, grid3, block3, 0, 0)(d_coords);
    cudaCheckLaunch();
    std::vector<int> coords = to_host(d_coords, total);
    int bad_c = 0, i = 0;
    for (unsigned bz = 0; bz < 2; bz++) for (unsigned by = 0; by < 3; by++) for (unsigned bx = 0; bx < 2; bx++)
    for (unsigned tz = 0; tz < 2; tz++) for (unsigned ty = 0; ty < 3; ty++) for (unsigned tx = 0; tx < 4; tx++) {
        bad_c += coords[i++] != static_cast<int>(bx * 100000 + by * 10000 + bz * 1000 + tx * 100 + ty * 10 + tz);
    }
    check(bad_c == 0, "3D grid of 3D blocks (threadIdx, blockIdx, blockDim, gridDim)", "%d threads wrong", bad_c);
    cudaCheck(cudaFree(d_x));
    cudaCheck(cudaFree(d_y));
    cudaCheck(cudaFree(d_m));
    cudaCheck(cudaFree(d_t));
    cudaCheck(cudaFree(d_coords));
}

static void test_invalid_launches() {
    cudaCheck(cudaGetLastError());  // start clean
    expect_errors(true);
    LAUNCH(noop_kernel, 1, 1025, 0, 0)();
    const cudaError_t too_many = cudaGetLastError();
    const cudaError_t after = cudaGetLastError();
    check(too_many == cudaErrorInvalidConfiguration && after == cudaSuccess,
          "1025 threads per block: cudaGetLastError reports it, then is reset", "got %s, then %s",
          cudaGetErrorName(too_many), cudaGetErrorName(after));
    LAUNCH(noop_kernel, 0, 32, 0, 0)();
    const cudaError_t empty = cudaGetLastError();
    LAUNCH(noop_kernel, dim3(1, 1, 1), dim3(32, 1, 65), 0, 0)();
    const cudaError_t deep = cudaGetLastError();
    expect_errors(false);
    check(empty == cudaErrorInvalidConfiguration && deep == cudaErrorInvalidConfiguration,
          "grid of 0 blocks and blockDim.z 65 are invalid configurations", "got %s and %s", cudaGetErrorName(empty),
          cudaGetErrorName(deep));
}

#ifdef CUDA_CPU_HARNESS
// Runs fn in a child process; returns its exit status (or -1), and what it wrote on stderr.
static int run_in_child(void (*fn)(), std::string* err) {
    fflush(stdout);
    fflush(stderr);
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) { return -1; }
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(pipe_fds[1], 2);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        fn();
        fflush(nullptr);
        _exit(0);
    }
    close(pipe_fds[1]);
    char buf[4096];
    ssize_t got;
    while ((got = read(pipe_fds[0], buf, sizeof(buf))) > 0) { err->append(buf, static_cast<size_t>(got)); }
    close(pipe_fds[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) { return -1; }
    return WEXITSTATUS(status);
}

static void launch_in_child(void (*kernel)(float*)) {
    float* d_out = nullptr;
    cudaCheck(cudaMalloc(&d_out, 64 * sizeof(float)));
    LAUNCH(kernel, 2, 64, 0, 0)(d_out);
    cudaCheckLaunch();
}

#ifndef CUDA_HARNESS_ASAN
static void launch_stack_overflow(int barrier_first) {
    float* d_out = nullptr;
    cudaCheck(cudaMalloc(&d_out, sizeof(float)));
    LAUNCH(stack_overflow_kernel, 2, 64, 0, 0)(d_out, barrier_first);
    cudaCheckLaunch();
}
static void launch_stack_overflow_chained() { launch_stack_overflow(0); }
static void launch_stack_overflow_own_stack() { launch_stack_overflow(1); }
#endif

static void launch_divergent_barrier() { launch_in_child(divergent_barrier_kernel); }
static void launch_mismatched_barriers() { launch_in_child(mismatched_barriers_kernel); }
static void launch_mismatched_warp_ops() { launch_in_child(mismatched_warp_ops_kernel); }

static void expect_deadlock_report(void (*fn)(), const char* name, const char* must_say) {
    std::string err;
    const int status = run_in_child(fn, &err);
    const bool said = err.find("error: cuda harness: kernel '") != std::string::npos &&
                      err.find(must_say) != std::string::npos && err.find("test_harness.cu:") != std::string::npos;
    check(status == 1 && said, name, "exit status %d, stderr: %s", status, err.c_str());
}
#endif

static void test_deadlocks() {
#ifdef CUDA_CPU_HARNESS
    expect_deadlock_report(launch_divergent_barrier, "divergent __syncthreads is reported (child process)",
                           "have already returned");
    expect_deadlock_report(launch_mismatched_barriers, "__syncthreads at two different calls is reported (child process)",
                           "different barriers");
    expect_deadlock_report(launch_mismatched_warp_ops, "lanes at different warp operations are reported (child process)",
                           "__ballot_sync");
#else
    skip("divergent __syncthreads is reported", "harness build only: a GPU may hang");
#endif
}

static void test_stack_overflow() {
#if defined(CUDA_CPU_HARNESS) && !defined(CUDA_HARNESS_ASAN)
    const char* report = "error: cuda harness: stack overflow in a thread of kernel 'stack_overflow_kernel'";
    std::string err;
    int status = run_in_child(launch_stack_overflow_chained, &err);
    check(status == 1 && err.find(report) != std::string::npos,
          "stack overflow of a thread chained onto another's stack is reported (child process)",
          "exit status %d, stderr: %s", status, err.c_str());
    err.clear();
    status = run_in_child(launch_stack_overflow_own_stack, &err);
    check(status == 1 && err.find(report) != std::string::npos,
          "stack overflow of a thread on its own stack is reported (child process)", "exit status %d, stderr: %s",
          status, err.c_str());
#else
    skip("stack overflow is reported", "harness build without AddressSanitizer only (it reports overflows itself)");
#endif
}

// Threads run in passes, in order of their index, until they wait or return; a thread that
// returns hands over to the next ready one, whether that one has run before or not.
static void test_execution_order() {
#ifdef CUDA_CPU_HARNESS
    int* d_order = nullptr;
    int* d_next = nullptr;
    cudaCheck(cudaMalloc(&d_order, 64 * sizeof(int)));
    cudaCheck(cudaMalloc(&d_next, sizeof(int)));
    cudaCheck(cudaMemset(d_next, 0, sizeof(int)));
    LAUNCH(execution_order_kernel, 1, 32, 0, 0)(d_order, d_next);
    cudaCheckLaunch();
    const std::vector<int> order = to_host(d_order, 64);
    std::vector<int> expected;
    for (int t = 0; t < 16; t++) { expected.push_back(t); }  // each to the shuffle
    for (int t = 16; t < 32; t++) {                           // straight through
        expected.push_back(t);
        expected.push_back(t + 100);
    }
    for (int t = 0; t < 16; t++) { expected.push_back(t + 100); }  // the next pass
    check(order == expected, "threads run in passes in linear order (started, resumed and run straight through)",
          "order differs");
    cudaCheck(cudaFree(d_order));
    cudaCheck(cudaFree(d_next));

    float* d_third = nullptr;
    cudaCheck(cudaMalloc(&d_third, 64 * sizeof(float)));
    volatile float one = 1.0f, three = 3.0f;
    const float nearest = one / three;  // rounded up
    for (int barrier = 0; barrier < 2; barrier++) {
        LAUNCH(rounding_mode_kernel, 1, 64, 0, 0)(d_third, barrier);
        cudaCheckLaunch();
        const std::vector<float> third = to_host(d_third, 64);
        int wrong = third[0] == std::nextafter(nearest, 0.0f) ? 0 : 1;
        for (int t = 1; t < 64; t++) { wrong += third[t] != nearest; }
        check(wrong == 0 && fegetround() == FE_TONEAREST,
              barrier ? "a thread's rounding mode is its own (threads after a barrier, the launching thread)"
                      : "a thread's rounding mode is its own (threads run after it returned, the launching thread)",
              "%d threads round wrongly, the launching thread rounds %s", wrong,
              fegetround() == FE_TONEAREST ? "to nearest" : "otherwise");
    }
    cudaCheck(cudaFree(d_third));
#else
    skip("threads run in passes in linear order", "harness build only: the order is undefined on a GPU");
#endif
}

// ----------------------------------------------------------------------------
// tests: runtime API

static void test_memory() {
    const size_t n = 1000;
    std::vector<float> host = random_floats(n, 9);
    float *d_a = nullptr, *d_b = nullptr, *pinned = nullptr;
    cudaCheck(cudaMalloc(&d_a, n * sizeof(float)));
    cudaCheck(cudaMalloc(&d_b, n * sizeof(float)));
    cudaCheck(cudaMallocHost(&pinned, n * sizeof(float)));
    cudaStream_t stream;
    cudaCheck(cudaStreamCreate(&stream));
    cudaCheck(cudaMemcpy(d_a, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpyAsync(d_b, d_a, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
    cudaCheck(cudaMemcpyAsync(pinned, d_b, n * sizeof(float), cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    check(memcmp(pinned, host.data(), n * sizeof(float)) == 0, "cudaMemcpy round trip (H2D, D2D async, D2H async)",
          "data differs");

    cudaCheck(cudaMemsetAsync(d_b, 0, n * sizeof(float), stream));
    cudaCheck(cudaMemset(d_b + 10, 0xFF, 5 * sizeof(float)));
    std::vector<float> back(n);
    cudaCheck(cudaMemcpy(back.data(), d_b, n * sizeof(float), cudaMemcpyDefault));
    bool ok = true;
    for (size_t i = 0; i < n; i++) { ok = ok && ((i >= 10 && i < 15) ? std::isnan(back[i]) : back[i] == 0.0f); }
    check(ok, "cudaMemset, cudaMemsetAsync, cudaMemcpyDefault", "wrong contents");

#ifdef CUDA_CPU_HARNESS
    // what a GPU refuses, or what would be undefined on it, the harness refuses
    expect_errors(true);
    const cudaError_t wrong_kind = cudaMemcpy(host.data(), d_a, n * sizeof(float), cudaMemcpyHostToDevice);
    const cudaError_t past_end = cudaMemcpy(d_a, host.data(), (n + 1) * sizeof(float), cudaMemcpyHostToDevice);
    const cudaError_t bad_free = cudaFree(host.data());
    cudaGetLastError();
    expect_errors(false);
    check(wrong_kind == cudaErrorInvalidValue && past_end == cudaErrorInvalidValue && bad_free == cudaErrorInvalidValue,
          "copies against their kind, past an allocation, cudaFree of host memory are refused", "got %s, %s, %s",
          cudaGetErrorName(wrong_kind), cudaGetErrorName(past_end), cudaGetErrorName(bad_free));
    float* fresh = nullptr;
    cudaCheck(cudaMalloc(&fresh, 4 * sizeof(float)));
    const std::vector<float> poisoned = to_host(fresh, 4);
    check(std::isnan(poisoned[0]) && std::isnan(poisoned[3]), "fresh cudaMalloc memory reads as NaN", "%g", poisoned[0]);
    cudaCheck(cudaFree(fresh));
#else
    skip("copies against their kind are refused", "harness build only");
#endif
    cudaCheck(cudaStreamDestroy(stream));
    cudaCheck(cudaFreeHost(pinned));
    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_b));
}

static void test_events() {
    cudaEvent_t start, stop, never;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    cudaCheck(cudaEventCreate(&never));
    cudaCheck(cudaEventRecord(start));
    LAUNCH(noop_kernel, 1, 32, 0, 0)();
    cudaCheckLaunch();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    cudaCheck(cudaEventRecord(stop));
    cudaCheck(cudaEventSynchronize(stop));
    float ms = -1.0f;
    cudaCheck(cudaEventElapsedTime(&ms, start, stop));
    float unused = 0.0f;
    expect_errors(true);
    const cudaError_t unrecorded = cudaEventElapsedTime(&unused, start, never);
    cudaGetLastError();
    expect_errors(false);
    check(ms >= 15.0f && ms < 5000.0f && unrecorded != cudaSuccess, "events: elapsed time, unrecorded event refused",
          "%.3f ms for a 20 ms sleep, unrecorded: %s", ms, cudaGetErrorName(unrecorded));
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    cudaCheck(cudaEventDestroy(never));
}

static void test_device_queries() {
    int count = 0;
    cudaCheck(cudaGetDeviceCount(&count));
    cudaCheck(cudaSetDevice(0));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    int sms = 0, optin = 0;
    cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaCheck(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    bool ok = count >= 1 && prop.warpSize == 32 && prop.maxThreadsPerBlock == 1024 && sms == prop.multiProcessorCount &&
              sms > 0 && static_cast<size_t>(optin) == prop.sharedMemPerBlockOptin;
#ifdef CUDA_CPU_HARNESS
    ok = ok && count == 1 && strstr(prop.name, "harness") != nullptr;
#endif
    check(ok, "device count, properties and attributes", "count %d, name '%s', warpSize %d, SMs %d", count, prop.name,
          prop.warpSize, sms);
}

// ----------------------------------------------------------------------------
// tests: cuBLAS and cuBLASLt

// Element (i, j) of op(X) for a column-major X with leading dimension ld.
static double op_at(const std::vector<float>& x, int ld, bool transpose, int i, int j) {
    return transpose ? x[j + static_cast<size_t>(i) * ld] : x[i + static_cast<size_t>(j) * ld];
}

// C = alpha op(A) op(B) + beta C on the host, in double; C is m×n with leading dimension ldc.
static std::vector<double> reference_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float>& a,
                                          int lda, const std::vector<float>& b, int ldb, float beta,
                                          const std::vector<float>& c, int ldc) {
    std::vector<double> out(c.begin(), c.end());
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < m; i++) {
            double sum = 0.0;
            for (int l = 0; l < k; l++) { sum += op_at(a, lda, ta, i, l) * op_at(b, ldb, tb, l, j); }
            const size_t at = i + static_cast<size_t>(j) * ldc;
            out[at] = alpha * sum + (beta == 0.0f ? 0.0 : beta * c[at]);
        }
    }
    return out;
}

static void test_cublas_sgemm(cublasHandle_t handle) {
    const int m = 37, n = 29, k = 23;
    const float alpha = 0.75f, beta = -0.5f;
    int worst_combo = -1;
    double worst = 0.0;
    for (int combo = 0; combo < 4; combo++) {
        const bool ta = combo & 1, tb = combo & 2;
        const int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 5, ldc = m + 2;
        const std::vector<float> a = random_floats(static_cast<size_t>(lda) * (ta ? m : k), 10 + combo);
        const std::vector<float> b = random_floats(static_cast<size_t>(ldb) * (tb ? k : n), 20 + combo);
        const std::vector<float> c = random_floats(static_cast<size_t>(ldc) * n, 30 + combo);
        float *d_a = to_device(a), *d_b = to_device(b), *d_c = to_device(c);
        cublasCheck(cublasSgemm(handle, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                                d_a, lda, d_b, ldb, &beta, d_c, ldc));
        // the rows between m and ldc must be untouched: the reference keeps them as they were
        const double err = max_rel_error(to_host(d_c, c.size()),
                                         reference_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
        if (err > worst) {
            worst = err;
            worst_combo = combo;
        }
        cudaCheck(cudaFree(d_a));
        cudaCheck(cudaFree(d_b));
        cudaCheck(cudaFree(d_c));
    }
    check(worst < 1e-5, "cublasSgemm NN NT TN TT, odd sizes, padded lda/ldb/ldc, alpha and beta",
          "relative error %.3g (transa=%d transb=%d)", worst, worst_combo & 1, (worst_combo & 2) / 2);

    // beta = 0: C is not read, so NaN in it does not leak through
    const std::vector<float> a = random_floats(m * k, 40), b = random_floats(k * n, 41);
    std::vector<float> c(static_cast<size_t>(m) * n, NAN);
    float *d_a = to_device(a), *d_b = to_device(b), *d_c = to_device(c);
    const float zero = 0.0f, one = 1.0f;
    cublasCheck(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, d_a, m, d_b, k, &zero, d_c, m));
    const double err = max_rel_error(to_host(d_c, c.size()), reference_gemm(false, false, m, n, k, 1.0f, a, m, b, k, 0.0f, c, m));
    check(err < 1e-5, "cublasSgemm with beta = 0 ignores NaN in C", "relative error %.3g", err);

    // a leading dimension below the rows is refused, as cuBLAS refuses it
    expect_errors(true);
    const cublasStatus_t bad = cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, d_a, m - 1, d_b, k, &zero, d_c, m);
    expect_errors(false);
    check(bad == CUBLAS_STATUS_INVALID_VALUE, "cublasSgemm refuses lda < m", "got %s", cublasGetStatusName(bad));
    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_c));
}

static void test_cublas_strided_batched(cublasHandle_t handle) {
    const int m = 19, n = 13, k = 11, batch = 3;
    const int lda = k + 1, ldb = k, ldc = m;  // A is stored k×m (op T), B k×n
    const long long stride_a = static_cast<long long>(lda) * m + 7, stride_b = static_cast<long long>(ldb) * n + 3,
                    stride_c = static_cast<long long>(ldc) * n + 5;
    const std::vector<float> a = random_floats(stride_a * batch, 50), b = random_floats(stride_b * batch, 51),
                             c = random_floats(stride_c * batch, 52);
    float *d_a = to_device(a), *d_b = to_device(b), *d_c = to_device(c);
    const float alpha = 1.25f, beta = 0.5f;
    cublasCheck(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, d_a, lda, stride_a, d_b, ldb,
                                          stride_b, &beta, d_c, ldc, stride_c, batch));
    const std::vector<float> got = to_host(d_c, c.size());
    double worst = 0.0;
    for (int i = 0; i < batch; i++) {
        const std::vector<float> ai(a.begin() + i * stride_a, a.begin() + (i + 1) * stride_a);
        const std::vector<float> bi(b.begin() + i * stride_b, b.begin() + (i + 1) * stride_b);
        const std::vector<float> ci(c.begin() + i * stride_c, c.begin() + (i + 1) * stride_c);
        const std::vector<float> gi(got.begin() + i * stride_c, got.begin() + (i + 1) * stride_c);
        worst = std::max(worst, max_rel_error(gi, reference_gemm(true, false, m, n, k, alpha, ai, lda, bi, ldb, beta, ci, ldc)));
    }
    check(worst < 1e-5, "cublasSgemmStridedBatched (T, N), padded strides", "relative error %.3g", worst);
    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_c));
}

static double gelu_reference(double x) {
    return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static double gelu_grad_reference(double x) {
    const double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    const double t = std::tanh(u);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
}

// One cublasLtMatmul: D = epilogue(alpha op(A) op(B) + beta C) over `batch` matrices, all column-major.
struct LtCase {
    const char* name;
    bool ta, tb;
    int m, n, k, batch;
    float alpha, beta;
    cublasLtEpilogue_t epilogue;
    bool tf32;  // CUBLAS_COMPUTE_32F_FAST_TF32: a GPU rounds inputs to 10 mantissa bits
};

static void run_lt_case(cublasLtHandle_t lt, const LtCase& t) {
    const int lda = t.ta ? t.k : t.m, ldb = t.tb ? t.n : t.k, ldd = t.m;
    const long long sa = static_cast<long long>(lda) * (t.ta ? t.m : t.k), sb = static_cast<long long>(ldb) * (t.tb ? t.k : t.n),
                    sd = static_cast<long long>(ldd) * t.n;
    const std::vector<float> a = random_floats(sa * t.batch, 60), b = random_floats(sb * t.batch, 61),
                             c = random_floats(sd * t.batch, 62), bias_in = random_floats(t.m, 63),
                             aux_in = random_floats(sd * t.batch, 64);
    const bool bgrad_b = t.epilogue == CUBLASLT_EPILOGUE_BGRADB;
    const bool aux_out = t.epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    const bool aux_in_used = t.epilogue == CUBLASLT_EPILOGUE_DGELU;
    const bool adds_bias = t.epilogue == CUBLASLT_EPILOGUE_BIAS || t.epilogue == CUBLASLT_EPILOGUE_GELU_BIAS || aux_out;
    const bool gelu = t.epilogue == CUBLASLT_EPILOGUE_GELU_BIAS || aux_out;
    float *d_a = to_device(a), *d_b = to_device(b), *d_c = to_device(c), *d_d = nullptr;
    float* d_bias = to_device(bgrad_b ? std::vector<float>(t.n, 0.0f) : bias_in);
    float* d_aux = to_device(aux_in);
    cudaCheck(cudaMalloc(&d_d, sd * t.batch * sizeof(float)));

    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, t.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opa = t.ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = t.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &t.epilogue, sizeof(t.epilogue)));
    if (t.epilogue != CUBLASLT_EPILOGUE_DEFAULT && !aux_in_used) {
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &d_bias, sizeof(d_bias)));
    }
    if (aux_out || aux_in_used) {
        const int64_t aux_ld = ldd, aux_stride = sd;
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &d_aux, sizeof(d_aux)));
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, &aux_stride,
                                                   sizeof(aux_stride)));
    }
    cublasLtMatrixLayout_t la, lb, lc;
    cublasCheck(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, t.ta ? t.k : t.m, t.ta ? t.m : t.k, lda));
    cublasCheck(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, t.tb ? t.n : t.k, t.tb ? t.k : t.n, ldb));
    cublasCheck(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, t.m, t.n, ldd));
    const long long strides[3] = {sa, sb, sd};
    cublasLtMatrixLayout_t layouts[3] = {la, lb, lc};
    for (int i = 0; i < 3 && t.batch > 1; i++) {
        const int32_t count = t.batch;
        const int64_t stride = strides[i];
        cublasCheck(cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
        cublasCheck(cublasLtMatrixLayoutSetAttribute(layouts[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                     sizeof(stride)));
    }
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t workspace = 0;
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                     sizeof(workspace)));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1, &heuristic, &found));
    if (found != 1) {
        check(false, t.name, "the heuristic found %d algorithms", found);
    } else {
        // C and D share a layout; D is a separate buffer
        cublasCheck(cublasLtMatmul(lt, desc, &t.alpha, d_a, la, d_b, lb, &t.beta, d_c, lc, d_d, lc, &heuristic.algo,
                                   nullptr, 0, 0));
        const std::vector<float> got = to_host(d_d, sd * t.batch), bias_got = to_host(d_bias, bgrad_b ? t.n : t.m),
                                 aux_got = to_host(d_aux, sd * t.batch);
        double worst = 0.0;
        for (int bi = 0; bi < t.batch; bi++) {
            for (int j = 0; j < t.n; j++) {
                for (int i = 0; i < t.m; i++) {
                    double x = 0.0;
                    for (int l = 0; l < t.k; l++) {
                        const size_t ia = bi * sa + (t.ta ? l + static_cast<size_t>(i) * lda : i + static_cast<size_t>(l) * lda);
                        const size_t ib = bi * sb + (t.tb ? j + static_cast<size_t>(l) * ldb : l + static_cast<size_t>(j) * ldb);
                        x += static_cast<double>(a[ia]) * b[ib];
                    }
                    const size_t id = bi * sd + i + static_cast<size_t>(j) * ldd;
                    x = t.alpha * x + t.beta * c[id];
                    if (adds_bias) { x += bias_in[i]; }
                    if (aux_out) { worst = std::max(worst, std::fabs(aux_got[id] - x) / (1.0 + std::fabs(x))); }
                    if (gelu) { x = gelu_reference(x); }
                    if (aux_in_used) { x *= gelu_grad_reference(aux_in[id]); }
                    worst = std::max(worst, std::fabs(got[id] - x) / (1.0 + std::fabs(x)));
                }
            }
        }
        if (bgrad_b) {  // bias[j] = sum over l of op(B)(l, j), batch 0
            for (int j = 0; j < t.n; j++) {
                double sum = 0.0;
                for (int l = 0; l < t.k; l++) { sum += b[t.tb ? j + static_cast<size_t>(l) * ldb : l + static_cast<size_t>(j) * ldb]; }
                worst = std::max(worst, std::fabs(bias_got[j] - sum) / (1.0 + std::fabs(sum)));
            }
        }
        check(worst < (t.tf32 ? 5e-3 : 1e-5), t.name, "relative error %.3g", worst);
    }
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    cublasCheck(cublasLtMatrixLayoutDestroy(la));
    cublasCheck(cublasLtMatrixLayoutDestroy(lb));
    cublasCheck(cublasLtMatrixLayoutDestroy(lc));
    cublasCheck(cublasLtMatmulDescDestroy(desc));
    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_c));
    cudaCheck(cudaFree(d_d));
    cudaCheck(cudaFree(d_bias));
    cudaCheck(cudaFree(d_aux));
}

static void test_cublaslt() {
    cublasLtHandle_t lt;
    cublasCheck(cublasLtCreate(&lt));
    const LtCase cases[] = {
        {"cublasLtMatmul T N, alpha, beta", true, false, 24, 17, 40, 1, 0.5f, 0.25f, CUBLASLT_EPILOGUE_DEFAULT, false},
        {"cublasLtMatmul N T, batch 3", false, true, 16, 9, 12, 3, 1.0f, 0.0f, CUBLASLT_EPILOGUE_DEFAULT, false},
        {"cublasLtMatmul N N, compute type 32F_FAST_TF32", false, false, 20, 12, 28, 1, 1.0f, 0.0f, CUBLASLT_EPILOGUE_DEFAULT, true},
        {"cublasLtMatmul epilogue BIAS (T N)", true, false, 32, 20, 24, 1, 1.0f, 0.0f, CUBLASLT_EPILOGUE_BIAS, false},
        {"cublasLtMatmul epilogue GELU_BIAS (T N, batch 2)", true, false, 24, 16, 32, 2, 1.0f, 0.0f, CUBLASLT_EPILOGUE_GELU_BIAS, false},
        {"cublasLtMatmul epilogue GELU_AUX_BIAS", true, false, 16, 8, 16, 1, 1.0f, 0.0f, CUBLASLT_EPILOGUE_GELU_AUX_BIAS, false},
        {"cublasLtMatmul epilogue DGELU", false, true, 16, 8, 24, 1, 1.0f, 0.0f, CUBLASLT_EPILOGUE_DGELU, false},
        {"cublasLtMatmul epilogue BGRADB", false, true, 24, 16, 32, 1, 1.0f, 0.0f, CUBLASLT_EPILOGUE_BGRADB, false},
    };
    for (const LtCase& t : cases) { run_lt_case(lt, t); }
    cublasCheck(cublasLtDestroy(lt));
}

// ----------------------------------------------------------------------------
// tests: TF32

// TF32 computed independently of the harness's bit manipulation: x to 11 significant bits
// (10 fraction bits and the implicit one), rounded to nearest with ties away from zero
// (std::round); subnormals on the fixed grid of 2^-136 (13 bits above 2^-149, where the
// harness's bit mask cuts). Infinities and NaNs pass through; the float conversion at the end
// turns a value rounded past the largest finite TF32 into infinity.
static float reference_tf32(float x) {
    if (!std::isfinite(x)) { return x; }
    if (std::fabs(x) < FLT_MIN) { return static_cast<float>(std::round(std::ldexp(x, 136)) * std::ldexp(1.0, -136)); }
    int e = 0;
    const double m = std::frexp(static_cast<double>(x), &e);  // x = m·2^e, 0.5 <= |m| < 1
    return static_cast<float>(std::ldexp(std::round(std::ldexp(m, 11)), e - 11));
}

// The conversion itself, on bit patterns: 1.0f is 0x3f800000 and fraction bit 2^-k of a
// number in [1, 2) is bit 23-k, so 2^-10 (the last kept bit) is 0x2000, 2^-11 (half of it)
// 0x1000. Harness only: a GPU's conversion is inside cuBLAS.
static void test_tf32_conversion() {
#ifdef CUDA_CPU_HARNESS
    struct Case {
        const char* what;
        uint32_t in, want;
    };
    const Case cases[] = {
        {"1.5 is TF32 already", 0x3fc00000u, 0x3fc00000u},
        {"1 + 2^-23 (only the last bit) -> 1", 0x3f800001u, 0x3f800000u},
        {"1 + 2^-11 - 2^-23 (just below half) -> 1", 0x3f800fffu, 0x3f800000u},
        {"1 + 2^-10 - 2^-23 (above half) -> 1 + 2^-10", 0x3f801fffu, 0x3f802000u},
        {"1 + 2^-11 (tie, even neighbour below) -> 1 + 2^-10: ties away from zero", 0x3f801000u, 0x3f802000u},
        {"1 + 2^-10 + 2^-11 (tie, odd neighbour below) -> 1 + 2^-9", 0x3f803000u, 0x3f804000u},
        {"-(1 + 2^-11) (negative tie) -> -(1 + 2^-10)", 0xbf801000u, 0xbf802000u},
        {"-(1 + 2^-11 - 2^-23) -> -1", 0xbf800fffu, 0xbf800000u},
        {"2 - 2^-23 -> 2 (the carry moves into the exponent)", 0x3fffffffu, 0x40000000u},
        {"FLT_MAX -> infinity (rounds past the largest TF32)", 0x7f7fffffu, 0x7f800000u},
        {"+infinity", 0x7f800000u, 0x7f800000u},
        {"-infinity", 0xff800000u, 0xff800000u},
        {"quiet NaN, payload kept", 0x7fc00001u, 0x7fc00001u},
        {"signalling NaN (low payload bits only) stays NaN", 0x7f800001u, 0x7f800001u},
        {"+0", 0x00000000u, 0x00000000u},
        {"-0", 0x80000000u, 0x80000000u},
        {"smallest subnormal 2^-149 -> 0", 0x00000001u, 0x00000000u},
        {"subnormal tie 2^-137 -> 2^-136", 0x00001000u, 0x00002000u},
        {"-(subnormal below half) -> -0", 0x80000800u, 0x80000000u},
        {"largest subnormal -> FLT_MIN", 0x007fffffu, 0x00800000u},
    };
    for (const Case& c : cases) {
        const uint32_t got = to_bits(cuda_harness::to_tf32(from_bits(c.in)));
        const uint32_t independent = to_bits(reference_tf32(from_bits(c.in)));
        char name[160];
        snprintf(name, sizeof(name), "to_tf32: %s", c.what);
        const bool nan = std::isnan(from_bits(c.in));
        check(got == c.want && (nan || independent == c.want), name, "0x%08x -> 0x%08x (want 0x%08x, reference 0x%08x)",
              c.in, got, c.want, independent);
    }
    // many random values: the bit-mask conversion agrees with the arithmetic one everywhere
    const std::vector<float> xs = random_floats(100000, 70);
    int disagree = 0;
    for (float x : xs) {
        const float scaled = x * 1e-3f;  // also values whose dropped bits are all that differ
        disagree += to_bits(cuda_harness::to_tf32(x)) != to_bits(reference_tf32(x));
        disagree += to_bits(cuda_harness::to_tf32(scaled)) != to_bits(reference_tf32(scaled));
    }
    check(disagree == 0, "to_tf32 equals the arithmetic reference on 200000 values", "%d differ", disagree);
#else
    skip("to_tf32", "the harness's conversion; a GPU converts inside cuBLAS");
#endif
}

// One TF32 or fp32 product's outputs (m×n per batch, ldc = m) against two float64 references:
// the product of the operands as given, and of the operands converted to TF32.
struct GemmOperands {
    bool ta, tb;
    int m, n, k, batch;
    std::vector<float> a, b;  // batch matrices each, column-major, lda = rows of the stored A
};

static GemmOperands gemm_operands(bool ta, bool tb, int m, int n, int k, int batch, unsigned seed) {
    return GemmOperands{ta, tb, m, n, k, batch, random_floats(static_cast<size_t>(m) * k * batch, seed),
                        random_floats(static_cast<size_t>(k) * n * batch, seed + 1)};
}

// expect_tf32: the product must equal the one of TF32 operands (to fp32 rounding: 1e-5, as
// every fp32 check here; harness only, a GPU may truncate instead) and stay within TF32's
// bound of the exact product, |error| <= (2·2^-10 + k·2^-24)·Σ|a||b| (two operands each off
// by up to 2^-10 relative, truncation included), yet differ from it by more than fp32 does
// (> 1e-5). Otherwise it must be the fp32 product (within 1e-5).
static void check_tf32_product(const char* name, const GemmOperands& g, const std::vector<float>& got, bool expect_tf32) {
    const int lda = g.ta ? g.k : g.m, ldb = g.tb ? g.n : g.k;
    double vs_rounded = 0.0, vs_exact = 0.0, worst_bound = 0.0;
    for (int bi = 0; bi < g.batch; bi++) {
        const float* a = g.a.data() + static_cast<size_t>(bi) * g.m * g.k;
        const float* b = g.b.data() + static_cast<size_t>(bi) * g.k * g.n;
        for (int j = 0; j < g.n; j++) {
            for (int i = 0; i < g.m; i++) {
                double exact = 0.0, rounded = 0.0, abs_sum = 0.0;
                for (int l = 0; l < g.k; l++) {
                    const float x = g.ta ? a[l + static_cast<size_t>(i) * lda] : a[i + static_cast<size_t>(l) * lda];
                    const float y = g.tb ? b[j + static_cast<size_t>(l) * ldb] : b[l + static_cast<size_t>(j) * ldb];
                    exact += static_cast<double>(x) * y;
                    rounded += static_cast<double>(reference_tf32(x)) * reference_tf32(y);
                    abs_sum += std::fabs(static_cast<double>(x) * y);
                }
                const double out = got[static_cast<size_t>(bi) * g.m * g.n + i + static_cast<size_t>(j) * g.m];
                vs_rounded = std::max(vs_rounded, std::fabs(out - rounded) / (1.0 + std::fabs(rounded)));
                vs_exact = std::max(vs_exact, std::fabs(out - exact) / (1.0 + std::fabs(exact)));
                const double bound = (2.0 / 1024.0 + g.k * std::ldexp(1.0, -24)) * abs_sum;
                worst_bound = std::max(worst_bound, std::fabs(out - exact) / bound);
            }
        }
    }
    if (!expect_tf32) {
        check(vs_exact < 1e-5, name, "fp32 expected: relative error %.3g", vs_exact);
        return;
    }
    bool ok = worst_bound <= 1.0 && vs_exact > 1e-5;
#ifdef CUDA_CPU_HARNESS
    ok = ok && vs_rounded < 1e-5;
#endif
    check(ok, name, "vs TF32 operands %.3g (harness: < 1e-5), vs exact %.3g (> 1e-5), %.2f of the TF32 bound", vs_rounded,
          vs_exact, worst_bound);
}

static void test_tf32_gemms(cublasHandle_t handle) {
    const float one = 1.0f, zero = 0.0f;
    const GemmOperands g = gemm_operands(true, false, 37, 29, 64, 1, 80);
    const GemmOperands gb = gemm_operands(false, true, 19, 13, 48, 3, 82);
    float *d_a = to_device(g.a), *d_b = to_device(g.b), *d_ba = to_device(gb.a), *d_bb = to_device(gb.b), *d_c = nullptr;
    cudaCheck(cudaMalloc(&d_c, static_cast<size_t>(g.m) * g.n * sizeof(float)));
    float* d_bc = nullptr;
    cudaCheck(cudaMalloc(&d_bc, static_cast<size_t>(gb.m) * gb.n * gb.batch * sizeof(float)));
    const size_t c_count = static_cast<size_t>(g.m) * g.n, bc_count = static_cast<size_t>(gb.m) * gb.n * gb.batch;

    cublasCheck(cublasSetMathMode(handle, CUBLAS_TF32_TENSOR_OP_MATH));
    cublasCheck(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &one, d_a, g.k, d_b, g.k, &zero, d_c, g.m));
    check_tf32_product("cublasSgemm (T, N) under CUBLAS_TF32_TENSOR_OP_MATH: TF32 operands", g, to_host(d_c, c_count), true);
    cublasCheck(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_T, gb.m, gb.n, gb.k, &one, d_ba, gb.m,
                                          static_cast<long long>(gb.m) * gb.k, d_bb, gb.n, static_cast<long long>(gb.k) * gb.n,
                                          &zero, d_bc, gb.m, static_cast<long long>(gb.m) * gb.n, gb.batch));
    check_tf32_product("cublasSgemmStridedBatched (N, T, batch 3) under CUBLAS_TF32_TENSOR_OP_MATH: TF32 operands", gb,
                       to_host(d_bc, bc_count), true);
    cublasCheck(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &one, d_a, CUDA_R_32F, g.k, d_b, CUDA_R_32F,
                             g.k, &zero, d_c, CUDA_R_32F, g.m, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
    check_tf32_product("cublasGemmEx, compute type 32F_PEDANTIC under the TF32 math mode: fp32", g, to_host(d_c, c_count), false);

    cublasCheck(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
    cublasCheck(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &one, d_a, g.k, d_b, g.k, &zero, d_c, g.m));
    check_tf32_product("cublasSgemm under CUBLAS_DEFAULT_MATH: fp32", g, to_host(d_c, c_count), false);
    cublasCheck(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &one, d_a, CUDA_R_32F, g.k, d_b, CUDA_R_32F,
                             g.k, &zero, d_c, CUDA_R_32F, g.m, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
    check_tf32_product("cublasGemmEx, compute type 32F_FAST_TF32 under the default math mode: TF32 operands", g,
                       to_host(d_c, c_count), true);

    // cuBLASLt: the compute type of the matmul descriptor decides
    cublasLtHandle_t lt;
    cublasCheck(cublasLtCreate(&lt));
    for (bool tf32 : {true, false}) {
        cublasLtMatmulDesc_t desc;
        cublasCheck(cublasLtMatmulDescCreate(&desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t opa = CUBLAS_OP_T;
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
        cublasLtMatrixLayout_t la, lb, lc;
        cublasCheck(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, g.k, g.m, g.k));
        cublasCheck(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, g.k, g.n, g.k));
        cublasCheck(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, g.m, g.n, g.m));
        cublasCheck(cublasLtMatmul(lt, desc, &one, d_a, la, d_b, lb, &zero, d_c, lc, d_c, lc, nullptr, nullptr, 0, 0));
        check_tf32_product(tf32 ? "cublasLtMatmul (T, N), compute type 32F_FAST_TF32: TF32 operands"
                                : "cublasLtMatmul (T, N), compute type 32F: fp32",
                           g, to_host(d_c, c_count), tf32);
        cublasCheck(cublasLtMatrixLayoutDestroy(la));
        cublasCheck(cublasLtMatrixLayoutDestroy(lb));
        cublasCheck(cublasLtMatrixLayoutDestroy(lc));
        cublasCheck(cublasLtMatmulDescDestroy(desc));
    }
    cublasCheck(cublasLtDestroy(lt));
    for (float* p : {d_a, d_b, d_ba, d_bb, d_c, d_bc}) { cudaCheck(cudaFree(p)); }
}

// ----------------------------------------------------------------------------
// tests: bf16 (cuda_bf16.h under nvcc, dev/harness/harness_bf16.h in the harness)
//
// Every result is compared with a reference computed here without the code under test: bf16
// values are read as the upper half of an fp32 (bf16_value), and rounding is done by arithmetic
// on doubles (reference_bf16). A NaN must be the canonical 0x7FFF in the harness; a GPU may
// give another NaN.

enum class Rounding { Nearest, Zero, Down, Up };

// x rounded to bf16 by arithmetic: to 8 significant bits for |x| >= 2^-126, to the fixed grid
// of 2^-133 below (bf16's subnormals), to nearest with ties to even (std::nearbyint in the
// default rounding mode), toward zero, down or up; a result of magnitude 2^128 or more is
// infinity. For the double result of + - * / of two bf16 values this is the correctly rounded
// bf16: rounding twice, to 53 bits and then to 8, is innocuous for them (53 >= 2·8 + 2).
static double reference_bf16(double x, Rounding mode = Rounding::Nearest) {
    if (!std::isfinite(x) || x == 0.0) { return x; }
    int exponent = 0;
    std::frexp(x, &exponent);  // 2^(exponent-1) <= |x| < 2^exponent
    const int quantum = std::max(exponent - 8, -133);
    const double scaled = std::ldexp(x, -quantum);
    const double rounded = mode == Rounding::Nearest ? std::nearbyint(scaled)
                           : mode == Rounding::Zero  ? std::trunc(scaled)
                           : mode == Rounding::Down  ? std::floor(scaled)
                                                     : std::ceil(scaled);
    const double r = std::ldexp(rounded, quantum);
    return std::fabs(r) >= 0x1p128 ? std::copysign(INFINITY, x) : r;
}

// a·b + c rounded once to bf16, for bf16 a, b, c: a·b is exact in double, and the double sum s
// with its exact error e (Knuth's TwoSum) is the exact a·b + c. It rounds as s does, unless s
// lies exactly halfway between two bf16 values and e != 0: then the exact sum is on e's side.
static double reference_fma_bf16(double a, double b, double c) {
    const double product = a * b, s = product + c;
    if (!std::isfinite(s)) { return reference_bf16(s); }
    const double c_part = s - product, e = (product - (s - c_part)) + (c - c_part);
    int exponent = 0;
    std::frexp(s, &exponent);
    const int quantum = std::max(exponent - 8, -133);
    const double scaled = std::ldexp(s, -quantum);
    if (e == 0.0 || scaled - std::floor(scaled) != 0.5) { return reference_bf16(s); }
    const double r = std::ldexp(e > 0.0 ? std::ceil(scaled) : std::floor(scaled), quantum);
    return std::fabs(r) >= 0x1p128 ? std::copysign(INFINITY, r) : r;
}

static double bf16_value(unsigned short bits) { return from_bits(static_cast<uint32_t>(bits) << 16); }
static bool bf16_bits_nan(unsigned short bits) { return (bits & 0x7FFFu) > 0x7F80u; }

// The bits of x, a bf16 value held in a double; NaN gives the canonical NaN.
static unsigned short bf16_bits_of(double x) {
    return std::isnan(x) ? 0x7FFF : static_cast<unsigned short>(to_bits(static_cast<float>(x)) >> 16);
}

// Whether `got` is `want`; for a NaN, the harness must give the canonical NaN, a GPU any NaN.
static bool bf16_matches(unsigned short got, unsigned short want) {
#ifdef CUDA_CPU_HARNESS
    return got == want;
#else
    return got == want || (bf16_bits_nan(want) && bf16_bits_nan(got));
#endif
}

// Random 32-bit patterns (every float: NaNs, infinities, subnormals, all exponents).
static std::vector<uint32_t> random_bits(size_t count, unsigned seed) {
    std::vector<uint32_t> v(count);
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        const uint32_t high = seed >> 16;
        seed = seed * 1664525u + 1013904223u;
        v[i] = high << 16 | seed >> 16;
    }
    return v;
}

// Random bf16 values in [-1, 1) (uniform floats with the low 16 bits cut off), as floats.
static std::vector<float> random_bf16_values(size_t count, unsigned seed) {
    std::vector<float> v = random_floats(count, seed);
    for (float& x : v) { x = from_bits(to_bits(x) & 0xFFFF0000u); }
    return v;
}

static std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& bf16_values) {
    std::vector<__nv_bfloat16> v(bf16_values.size());
    for (size_t i = 0; i < v.size(); i++) { v[i] = __ushort_as_bfloat16(static_cast<unsigned short>(to_bits(bf16_values[i]) >> 16)); }
    return v;
}

// ----------------------------------------------------------------------------
// kernels: bf16

constexpr int kConversions = 6;  // rn, rz, rd, ru, __float2bfloat16, the constructor

// Each float converted to bf16 every way, and the first result widened back with operator float.
__global__ void bf16_convert_kernel(const float* in, unsigned short* out, float* widened, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float x = in[i];
        const __nv_bfloat16 rn = __float2bfloat16_rn(x);
        const __nv_bfloat16 constructed = x;
        unsigned short* o = out + kConversions * i;
        o[0] = __bfloat16_as_ushort(rn);
        o[1] = __bfloat16_as_ushort(__float2bfloat16_rz(x));
        o[2] = __bfloat16_as_ushort(__float2bfloat16_rd(x));
        o[3] = __bfloat16_as_ushort(__float2bfloat16_ru(x));
        o[4] = __bfloat16_as_ushort(__float2bfloat16(x));
        o[5] = __bfloat16_as_ushort(constructed);
        widened[i] = static_cast<float>(rn);
    }
}

// __double2bfloat16 of each double, then the constructors from long long and unsigned long long.
__global__ void bf16_convert_wide_kernel(const double* doubles, int nd, const long long* ints, int ni,
                                         const unsigned long long* uints, int nu, unsigned short* out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) { return; }
    for (int i = 0; i < nd; i++) { out[i] = __bfloat16_as_ushort(__double2bfloat16(doubles[i])); }
    for (int i = 0; i < ni; i++) { out[nd + i] = __bfloat16_as_ushort(__nv_bfloat16(ints[i])); }
    for (int i = 0; i < nu; i++) { out[nd + ni + i] = __bfloat16_as_ushort(__nv_bfloat16(uints[i])); }
}

enum Bf16Op { kAdd, kSub, kMul, kDiv, kFma, kNeg, kAbs, kBf16Ops };

__device__ inline bool same_bf16(__nv_bfloat16 x, __nv_bfloat16 y) {
    return __bfloat16_as_ushort(x) == __bfloat16_as_ushort(y) || (__hisnan(x) && __hisnan(y));
}

// One bit per comparison of x and y: the six operators, __hne, the six unordered ones,
// __hisnan(x), and __hisinf(x) + 1 in two bits.
__device__ inline int compare_mask(__nv_bfloat16 x, __nv_bfloat16 y) {
    const bool bits[] = {x == y, x != y, x < y, x <= y, x > y, x >= y, __hne(x, y), __hequ(x, y), __hneu(x, y),
                         __hltu(x, y), __hleu(x, y), __hgtu(x, y), __hgeu(x, y), __hisnan(x)};
    int mask = 0;
    for (int b = 0; b < 14; b++) { mask |= bits[b] ? 1 << b : 0; }
    return mask | (__hisinf(x) + 1) << 14;
}

// The packed comparison operators (true when both halves compare true).
__device__ inline int compare2_mask(__nv_bfloat162 x, __nv_bfloat162 y) {
    return (x == y) | (x != y) << 1 | (x < y) << 2 | (x <= y) << 3 | (x > y) << 4 | (x >= y) << 5;
}

struct Bf16ArithmeticOut {
    unsigned short* result;  // [op][element]: the scalar intrinsics
    int* disagree;           // per element: bit op set when an operator or a packed form differs
    int* compare;            // per element: compare_mask
    int* compare2;           // per pair: compare2_mask
};

// Elements 2t and 2t+1 of a, b, c: each op by its scalar intrinsic, its operator and the packed
// __nv_bfloat162 intrinsic and operator (loaded as pairs, 4-byte aligned).
__global__ void bf16_arithmetic_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, const __nv_bfloat16* c,
                                       int pairs, Bf16ArithmeticOut out) {
    const int n = 2 * pairs;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < pairs; t += gridDim.x * blockDim.x) {
        const __nv_bfloat162 a2 = reinterpret_cast<const __nv_bfloat162*>(a)[t];
        const __nv_bfloat162 b2 = reinterpret_cast<const __nv_bfloat162*>(b)[t];
        const __nv_bfloat162 c2 = reinterpret_cast<const __nv_bfloat162*>(c)[t];
        const __nv_bfloat162 packed[kBf16Ops] = {__hadd2(a2, b2), __hsub2(a2, b2), __hmul2(a2, b2), __h2div(a2, b2),
                                                 __hfma2(a2, b2, c2), __hneg2(a2), __habs2(a2)};
        const __nv_bfloat162 operators[kBf16Ops] = {a2 + b2, a2 - b2, a2 * b2, a2 / b2, packed[kFma], -a2, packed[kAbs]};
        out.compare2[t] = compare2_mask(a2, b2);
        for (int h = 0; h < 2; h++) {
            const int i = 2 * t + h;
            const __nv_bfloat16 x = a[i], y = b[i], z = c[i];
            const __nv_bfloat16 scalar[kBf16Ops] = {__hadd(x, y), __hsub(x, y), __hmul(x, y), __hdiv(x, y),
                                                    __hfma(x, y, z), __hneg(x), __habs(x)};
            const __nv_bfloat16 scalar_operators[kBf16Ops] = {x + y, x - y, x * y, x / y, scalar[kFma], -x, scalar[kAbs]};
            int disagree = 0;
            for (int op = 0; op < kBf16Ops; op++) {
                out.result[op * n + i] = __bfloat16_as_ushort(scalar[op]);
                const __nv_bfloat16 p = h == 0 ? __low2bfloat16(packed[op]) : __high2bfloat16(packed[op]);
                const __nv_bfloat16 q = h == 0 ? operators[op].x : operators[op].y;
                if (!same_bf16(scalar[op], p) || !same_bf16(scalar[op], q) || !same_bf16(scalar[op], scalar_operators[op])) {
                    disagree |= 1 << op;
                }
            }
            out.disagree[i] = disagree;
            out.compare[i] = compare_mask(x, y);
        }
    }
}

// Per lane: 8 bf16 through one 16-byte load into four __nv_bfloat162 (llm.c's x128), summed
// pairwise (low halves and high halves apart), then a butterfly over the warp with
// __shfl_xor_sync on __nv_bfloat162, after which every lane has the same pair. Also a bf16
// broadcast from lane 5 (__shfl_sync) and a bf16 sum to lane 0 (__shfl_down_sync).
__global__ void bf16_warp_kernel(const __nv_bfloat16* in, __nv_bfloat162* pairs, __nv_bfloat16* broadcast,
                                 __nv_bfloat16* down) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int4 packed = reinterpret_cast<const int4*>(in)[i];
    __nv_bfloat162 h[4];
    memcpy(h, &packed, sizeof(packed));
    __nv_bfloat162 acc = __hadd2(__hadd2(h[0], h[1]), __hadd2(h[2], h[3]));
    for (int offset = 16; offset > 0; offset /= 2) { acc = acc + __shfl_xor_sync(kFullMask, acc, offset); }
    pairs[i] = acc;
    broadcast[i] = __shfl_sync(kFullMask, h[3].y, 5);
    __nv_bfloat16 sum = __low2bfloat16(h[0]);
    for (int offset = 16; offset > 0; offset /= 2) { sum += __shfl_down_sync(kFullMask, sum, offset); }
    if (threadIdx.x % warpSize == 0) { down[i / warpSize] = sum; }
}

// ----------------------------------------------------------------------------
// tests: bf16 conversions and arithmetic

// Float bit patterns with their bf16 bits rounded to nearest, toward zero, down and up. In
// [1, 2) the last bf16 bit is 2^-7 (0x10000 in the float's bits) and half of it 0x8000.
struct Bf16ConversionCase {
    const char* what;
    uint32_t in;
    unsigned short rn, rz, rd, ru;
};

static const Bf16ConversionCase kBf16ConversionCases[] = {
    {"1 + 2^-8 (tie, even neighbour below) -> 1", 0x3F808000u, 0x3F80, 0x3F80, 0x3F80, 0x3F81},
    {"1 + 2^-7 + 2^-8 (tie, odd neighbour below) -> 1 + 2^-6", 0x3F818000u, 0x3F82, 0x3F81, 0x3F81, 0x3F82},
    {"just below a tie rounds down", 0x3F807FFFu, 0x3F80, 0x3F80, 0x3F80, 0x3F81},
    {"just above a tie rounds up", 0x3F808001u, 0x3F81, 0x3F80, 0x3F80, 0x3F81},
    {"-(1 + 2^-8) (negative tie) -> -1", 0xBF808000u, 0xBF80, 0xBF80, 0xBF81, 0xBF80},
    {"-(1 + 2^-7 + 2^-8) -> -(1 + 2^-6)", 0xBF818000u, 0xBF82, 0xBF81, 0xBF82, 0xBF81},
    {"1.5 is bf16 already", 0x3FC00000u, 0x3FC0, 0x3FC0, 0x3FC0, 0x3FC0},
    {"2 - 2^-23 -> 2 (the carry moves into the exponent)", 0x3FFFFFFFu, 0x4000, 0x3FFF, 0x3FFF, 0x4000},
    {"the largest finite bf16 (0x7F7F)", 0x7F7F0000u, 0x7F7F, 0x7F7F, 0x7F7F, 0x7F7F},
    {"just below halfway above 0x7F7F stays finite", 0x7F7F7FFFu, 0x7F7F, 0x7F7F, 0x7F7F, 0x7F80},
    {"halfway above 0x7F7F (odd) -> infinity", 0x7F7F8000u, 0x7F80, 0x7F7F, 0x7F7F, 0x7F80},
    {"FLT_MAX -> infinity (toward zero/down: 0x7F7F)", 0x7F7FFFFFu, 0x7F80, 0x7F7F, 0x7F7F, 0x7F80},
    {"-FLT_MAX -> -infinity (toward zero/up: -0x7F7F)", 0xFF7FFFFFu, 0xFF80, 0xFF7F, 0xFF80, 0xFF7F},
    {"+infinity", 0x7F800000u, 0x7F80, 0x7F80, 0x7F80, 0x7F80},
    {"-infinity", 0xFF800000u, 0xFF80, 0xFF80, 0xFF80, 0xFF80},
    {"quiet NaN -> canonical NaN", 0x7FC00000u, 0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF},
    {"NaN with payload only in the dropped bits stays NaN (not infinity)", 0x7F800001u, 0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF},
    {"negative NaN -> canonical NaN", 0xFFC00001u, 0x7FFF, 0x7FFF, 0x7FFF, 0x7FFF},
    {"+0", 0x00000000u, 0x0000, 0x0000, 0x0000, 0x0000},
    {"-0 keeps its sign", 0x80000000u, 0x8000, 0x8000, 0x8000, 0x8000},
    {"2^-149 (smallest fp32 subnormal) -> 0 (up: 2^-133)", 0x00000001u, 0x0000, 0x0000, 0x0000, 0x0001},
    {"-2^-149 -> -0 (down: -2^-133)", 0x80000001u, 0x8000, 0x8000, 0x8001, 0x8000},
    {"2^-133 (smallest bf16 subnormal) is kept", 0x00010000u, 0x0001, 0x0001, 0x0001, 0x0001},
    {"2^-134 (subnormal tie, even neighbour 0) -> 0", 0x00008000u, 0x0000, 0x0000, 0x0000, 0x0001},
    {"3·2^-134 (subnormal tie, odd neighbour below) -> 2^-132", 0x00018000u, 0x0002, 0x0001, 0x0001, 0x0002},
    {"the largest fp32 subnormal -> FLT_MIN (0x0080)", 0x007FFFFFu, 0x0080, 0x007F, 0x007F, 0x0080},
};

// The four roundings of x by the reference, as bits.
static void reference_conversions(float x, unsigned short want[4]) {
    const Rounding modes[4] = {Rounding::Nearest, Rounding::Zero, Rounding::Down, Rounding::Up};
    for (int m = 0; m < 4; m++) { want[m] = bf16_bits_of(reference_bf16(x, modes[m])); }
}

// Whether the conversions of one input agree with `want` (rn rz rd ru), __float2bfloat16 and
// the constructor with rn, and operator float with the value of rn's bits.
static bool conversions_ok(const unsigned short* got, float widened, const unsigned short want[4]) {
    bool ok = true;
    for (int m = 0; m < 4; m++) { ok = ok && bf16_matches(got[m], want[m]); }
    const double value = bf16_value(got[0]);
    return ok && got[4] == got[0] && got[5] == got[0] && (widened == value || (std::isnan(widened) && std::isnan(value)));
}

static void test_bf16_conversions() {
    std::vector<float> in;
    for (const Bf16ConversionCase& c : kBf16ConversionCases) { in.push_back(from_bits(c.in)); }
    const size_t named = in.size();
    // every float pattern, and patterns at and next to ties (low halves 0x8000, 0x7FFF, 0x8001)
    const std::vector<uint32_t> patterns = random_bits(60000, 90);
    const uint32_t lows[] = {0x8000u, 0x7FFFu, 0x8001u};
    for (size_t i = 0; i < patterns.size(); i++) {
        in.push_back(from_bits(i % 2 == 0 ? patterns[i] : (patterns[i] & 0xFFFF0000u) | lows[i / 2 % 3]));
    }
    const int n = static_cast<int>(in.size());
    float* d_in = to_device(in);
    unsigned short* d_out = nullptr;
    float* d_widened = nullptr;
    cudaCheck(cudaMalloc(&d_out, static_cast<size_t>(n) * kConversions * sizeof(unsigned short)));
    cudaCheck(cudaMalloc(&d_widened, static_cast<size_t>(n) * sizeof(float)));
    LAUNCH(bf16_convert_kernel, 32, 128, 0, 0)(d_in, d_out, d_widened, n);
    cudaCheckLaunch();
    const std::vector<unsigned short> out = to_host(d_out, static_cast<size_t>(n) * kConversions);
    const std::vector<float> widened = to_host(d_widened, static_cast<size_t>(n));

    for (size_t i = 0; i < named; i++) {
        const Bf16ConversionCase& c = kBf16ConversionCases[i];
        const unsigned short want[4] = {c.rn, c.rz, c.rd, c.ru};
        unsigned short independent[4];
        reference_conversions(in[i], independent);
        const unsigned short* got = &out[i * kConversions];
        char name[160];
        snprintf(name, sizeof(name), "bf16 conversion: %s", c.what);
        bool ok = conversions_ok(got, widened[i], want);
        for (int m = 0; m < 4; m++) { ok = ok && independent[m] == want[m]; }  // the table agrees with the reference
        check(ok, name, "0x%08x -> rn 0x%04x rz 0x%04x rd 0x%04x ru 0x%04x, __float2bfloat16 0x%04x, constructor 0x%04x "
              "(want 0x%04x 0x%04x 0x%04x 0x%04x)", c.in, got[0], got[1], got[2], got[3], got[4], got[5], want[0],
              want[1], want[2], want[3]);
    }
    int wrong = 0;
    size_t first = 0;
    for (size_t i = named; i < in.size(); i++) {
        unsigned short want[4];
        reference_conversions(in[i], want);
        if (!conversions_ok(&out[i * kConversions], widened[i], want)) {
            first = wrong++ == 0 ? i : first;
        }
    }
    check(wrong == 0, "bf16 conversions rn rz rd ru equal the arithmetic reference on 60000 float patterns (all, near ties)",
          "%d differ, first 0x%08x -> rn 0x%04x", wrong, wrong ? to_bits(in[first]) : 0u,
          wrong ? out[first * kConversions] : 0);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_out));
    cudaCheck(cudaFree(d_widened));
}

// Doubles and integers rounded to bf16 once, not through a float rounded to nearest first
// (which would make 1 + 2^-8 + 2^-40 a tie and give 1).
static void test_bf16_wide_conversions() {
    std::vector<double> doubles = {1.0 + 0x1p-8 + 0x1p-40, -(1.0 + 0x1p-8 + 0x1p-40), 1.0 + 0x1p-8 - 0x1p-40,
                                   1.0 + 0x1p-8, 0x1.FFp127 * (1.0 - 0x1p-40), 0x1.FFp127, 1e300, -1e-300,
                                   0x1p-134 + 0x1p-160, 0x1p-134, NAN};
    const std::vector<unsigned short> want_doubles = {0x3F81, 0xBF81, 0x3F80, 0x3F80, 0x7F7F, 0x7F80,
                                                      0x7F80, 0x8000, 0x0001, 0x0000, 0x7FFF};
    const size_t named = doubles.size();
    uint64_t seed = 91;
    for (int i = 0; i < 4000; i++) {  // exponents from below bf16's subnormals to beyond its range, 52-bit fractions
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const double fraction = 1.0 + static_cast<double>(seed >> 12) * 0x1p-52;
        doubles.push_back(std::ldexp((seed & 1) ? -fraction : fraction, static_cast<int>(seed >> 40) % 280 - 145));
    }
    const std::vector<long long> ints = {0, 1, -3, 257, 259, INT32_MIN, INT64_MIN, (1ll << 60) + (1ll << 52) + 1};
    const std::vector<unsigned short> want_ints = {0x0000, 0x3F80, 0xC040, 0x4380, 0x4382, 0xCF00, 0xDF00, 0x5D81};
    const std::vector<unsigned long long> uints = {0xFFFFFFFFull, ~0ull};
    const std::vector<unsigned short> want_uints = {0x4F80, 0x5F80};
    const int nd = static_cast<int>(doubles.size()), ni = static_cast<int>(ints.size()), nu = static_cast<int>(uints.size());
    double* d_doubles = to_device(doubles);
    long long* d_ints = to_device(ints);
    unsigned long long* d_uints = to_device(uints);
    unsigned short* d_out = nullptr;
    cudaCheck(cudaMalloc(&d_out, static_cast<size_t>(nd + ni + nu) * sizeof(unsigned short)));
    LAUNCH(bf16_convert_wide_kernel, 1, 32, 0, 0)(d_doubles, nd, d_ints, ni, d_uints, nu, d_out);
    cudaCheckLaunch();
    const std::vector<unsigned short> out = to_host(d_out, static_cast<size_t>(nd + ni + nu));
    int wrong_named = 0, wrong_random = 0, wrong_ints = 0;
    for (size_t i = 0; i < named; i++) {
        wrong_named += !bf16_matches(out[i], want_doubles[i]) || bf16_bits_of(reference_bf16(doubles[i])) != want_doubles[i];
    }
    for (size_t i = named; i < doubles.size(); i++) {
        wrong_random += !bf16_matches(out[i], bf16_bits_of(reference_bf16(doubles[i])));
    }
    for (int i = 0; i < ni; i++) { wrong_ints += out[nd + i] != want_ints[i]; }
    for (int i = 0; i < nu; i++) { wrong_ints += out[nd + ni + i] != want_uints[i]; }
    check(wrong_named == 0 && wrong_random == 0,
          "__double2bfloat16 rounds once (1 + 2^-8 + 2^-40 -> 1 + 2^-7), 4000 random doubles equal the reference",
          "%d of %zu chosen and %d of 4000 random doubles wrong (1 + 2^-8 + 2^-40 -> 0x%04x)", wrong_named, named,
          wrong_random, out[0]);
    check(wrong_ints == 0, "integer constructors round to nearest even (257 -> 256, 2^60 + 2^52 + 1 -> 2^60 + 2^53)",
          "%d of %d wrong", wrong_ints, ni + nu);
    cudaCheck(cudaFree(d_doubles));
    cudaCheck(cudaFree(d_ints));
    cudaCheck(cudaFree(d_uints));
    cudaCheck(cudaFree(d_out));
}

// Random bf16 bit patterns whose exponent field lies in [low, high], with random sign and fraction.
static unsigned short random_bf16_bits(unsigned* seed, int low, int high) {
    *seed = *seed * 1664525u + 1013904223u;
    const unsigned r = *seed >> 8;
    const unsigned exponent = static_cast<unsigned>(low) + r % static_cast<unsigned>(high - low + 1);
    return static_cast<unsigned short>((r >> 12 & 1u) << 15 | exponent << 7 | (r >> 13 & 0x7Fu));
}

// The comparisons of compare_mask, on doubles.
static int reference_compare_mask(double x, double y) {
    const bool unordered = std::isnan(x) || std::isnan(y);
    const bool bits[] = {x == y, x != y, x < y, x <= y, x > y, x >= y, x < y || x > y, x == y || unordered, x != y,
                         x < y || unordered, x <= y || unordered, x > y || unordered, x >= y || unordered, std::isnan(x)};
    int mask = 0;
    for (int b = 0; b < 14; b++) { mask |= bits[b] ? 1 << b : 0; }
    return mask | (std::isinf(x) ? (x > 0 ? 2 : 0) : 1) << 14;
}

// The packed comparisons of compare2_mask: both halves must compare true (!= unordered).
static int reference_compare2_mask(double x0, double y0, double x1, double y1) {
    return (x0 == y0 && x1 == y1) | (x0 != y0 && x1 != y1) << 1 | (x0 < y0 && x1 < y1) << 2 |
           (x0 <= y0 && x1 <= y1) << 3 | (x0 > y0 && x1 > y1) << 4 | (x0 >= y0 && x1 >= y1) << 5;
}

// The reference bits of op on bf16 bits x, y, z; for neg and abs of a NaN, any NaN will do
// (`any_nan`).
static unsigned short reference_op(int op, unsigned short x, unsigned short y, unsigned short z, bool* any_nan) {
    const double a = bf16_value(x), b = bf16_value(y), c = bf16_value(z);
    *any_nan = (op == kNeg || op == kAbs) && bf16_bits_nan(x);
    switch (op) {
    case kAdd: return bf16_bits_of(reference_bf16(a + b));
    case kSub: return bf16_bits_of(reference_bf16(a - b));
    case kMul: return bf16_bits_of(reference_bf16(a * b));
    case kDiv: return bf16_bits_of(reference_bf16(a / b));
    case kFma: return bf16_bits_of(reference_fma_bf16(a, b, c));
    case kNeg: return static_cast<unsigned short>(x ^ 0x8000u);
    default: return static_cast<unsigned short>(x & 0x7FFFu);
    }
}

// The operands: fma cases a rounding through double would get wrong, random patterns (NaN,
// infinity, subnormals, every exponent), sums and differences of subnormals, products and
// quotients that land among the subnormals, and fma with cancellation (c = -a·b, give or take
// an ulp).
struct Bf16Operands {
    std::vector<unsigned short> a, b, c;
    void add(unsigned short x, unsigned short y, unsigned short z) {
        a.push_back(x);
        b.push_back(y);
        c.push_back(z);
    }
};

constexpr int kNamedFmaCases = 4;

static Bf16Operands bf16_operands() {
    Bf16Operands o;
    o.add(0x4040, 0x3F81, 0x8D80);  // 3·(1 + 2^-7) - 2^-100: below the midpoint 3·(1 + 2^-7) -> 0x4041
    o.add(0x4040, 0x3F81, 0x0D80);  // ... + 2^-100: above it -> 0x4042
    o.add(0xC040, 0x3F81, 0x0D80);  // -3·(1 + 2^-7) + 2^-100 -> 0xC041
    o.add(0x5F80, 0x5F80, 0xFF00);  // 2^64·2^64 - 2^127 = 2^127 (0x7F00), though 2^128 overflows fp32
    unsigned seed = 92;
    for (int i = 0; i < 16000; i++) { o.add(random_bf16_bits(&seed, 0, 255), random_bf16_bits(&seed, 0, 255), random_bf16_bits(&seed, 0, 255)); }
    for (int i = 0; i < 2000; i++) { o.add(random_bf16_bits(&seed, 0, 3), random_bf16_bits(&seed, 0, 3), random_bf16_bits(&seed, 0, 255)); }
    for (int i = 0; i < 2000; i++) { o.add(random_bf16_bits(&seed, 30, 60), random_bf16_bits(&seed, 30, 60), random_bf16_bits(&seed, 0, 3)); }
    for (int i = 0; i < 2000; i++) { o.add(random_bf16_bits(&seed, 1, 20), random_bf16_bits(&seed, 100, 140), random_bf16_bits(&seed, 0, 255)); }
    for (int i = 0; i < 2000; i++) {
        const unsigned short x = random_bf16_bits(&seed, 100, 150), y = random_bf16_bits(&seed, 100, 150);
        const unsigned short product = bf16_bits_of(reference_bf16(bf16_value(x) * bf16_value(y)));
        o.add(x, y, static_cast<unsigned short>((product ^ 0x8000u) + (seed >> 30) % 3 - 1));
    }
    return o;
}

static std::vector<__nv_bfloat16> bf16_from_bits(const std::vector<unsigned short>& bits) {
    std::vector<__nv_bfloat16> v(bits.size());
    for (size_t i = 0; i < bits.size(); i++) { v[i] = __ushort_as_bfloat16(bits[i]); }
    return v;
}

static void test_bf16_arithmetic() {
    const Bf16Operands o = bf16_operands();
    const int n = static_cast<int>(o.a.size()), pairs = n / 2;
    __nv_bfloat16 *d_a = to_device(bf16_from_bits(o.a)), *d_b = to_device(bf16_from_bits(o.b)), *d_c = to_device(bf16_from_bits(o.c));
    Bf16ArithmeticOut out{};
    cudaCheck(cudaMalloc(&out.result, static_cast<size_t>(n) * kBf16Ops * sizeof(unsigned short)));
    cudaCheck(cudaMalloc(&out.disagree, static_cast<size_t>(n) * sizeof(int)));
    cudaCheck(cudaMalloc(&out.compare, static_cast<size_t>(n) * sizeof(int)));
    cudaCheck(cudaMalloc(&out.compare2, static_cast<size_t>(pairs) * sizeof(int)));
    LAUNCH(bf16_arithmetic_kernel, 32, 128, 0, 0)(d_a, d_b, d_c, pairs, out);
    cudaCheckLaunch();
    const std::vector<unsigned short> result = to_host(out.result, static_cast<size_t>(n) * kBf16Ops);
    const std::vector<int> disagree = to_host(out.disagree, n), compare = to_host(out.compare, n),
                           compare2 = to_host(out.compare2, pairs);

    const char* names[kBf16Ops] = {"__hadd, +, __hadd2, packed +", "__hsub, -, __hsub2, packed -",
                                   "__hmul, *, __hmul2, packed *", "__hdiv, /, __h2div, packed /",
                                   "__hfma, __hfma2 (one rounding)", "__hneg, unary -, __hneg2, packed unary -",
                                   "__habs, __habs2"};
    for (int op = 0; op < kBf16Ops; op++) {
        int wrong = 0, inconsistent = 0, first = -1;
        for (int i = 0; i < n; i++) {
            bool any_nan = false;
            const unsigned short want = reference_op(op, o.a[i], o.b[i], o.c[i], &any_nan);
            const unsigned short got = result[static_cast<size_t>(op) * n + i];
            const bool ok = any_nan ? bf16_bits_nan(got) : bf16_matches(got, want);
            if (!ok && first < 0) { first = i; }
            wrong += !ok;
            inconsistent += (disagree[i] >> op) & 1;
        }
        char name[160];
        snprintf(name, sizeof(name), "bf16 %s equal the reference on %d operands", names[op], n);
        const int f = first < 0 ? 0 : first;
        bool unused = false;
        check(wrong == 0 && inconsistent == 0, name,
              "%d wrong (first: 0x%04x, 0x%04x, 0x%04x -> 0x%04x, want 0x%04x), %d where an operator or packed form differs",
              wrong, o.a[f], o.b[f], o.c[f], result[static_cast<size_t>(op) * n + f], reference_op(op, o.a[f], o.b[f], o.c[f], &unused),
              inconsistent);
    }
    int fma_named_wrong = 0;
    for (int i = 0; i < kNamedFmaCases; i++) {
        const unsigned short want[kNamedFmaCases] = {0x4041, 0x4042, 0xC041, 0x7F00};
        fma_named_wrong += result[static_cast<size_t>(kFma) * n + i] != want[i];
    }
    check(fma_named_wrong == 0, "bf16 __hfma: a·b a bf16 midpoint plus a tiny c, and a·b beyond fp32 (2^128 - 2^127)",
          "%d of %d wrong: 0x%04x 0x%04x 0x%04x 0x%04x (want 0x4041 0x4042 0xC041 0x7F00)", fma_named_wrong,
          kNamedFmaCases, result[kFma * n + 0], result[kFma * n + 1], result[kFma * n + 2], result[kFma * n + 3]);
    int wrong_compare = 0, wrong_compare2 = 0;
    for (int i = 0; i < n; i++) { wrong_compare += compare[i] != reference_compare_mask(bf16_value(o.a[i]), bf16_value(o.b[i])); }
    for (int t = 0; t < pairs; t++) {
        wrong_compare2 += compare2[t] != reference_compare2_mask(bf16_value(o.a[2 * t]), bf16_value(o.b[2 * t]),
                                                                 bf16_value(o.a[2 * t + 1]), bf16_value(o.b[2 * t + 1]));
    }
    check(wrong_compare == 0 && wrong_compare2 == 0,
          "bf16 comparisons (== != < <= > >=, __hne, the unordered __h*u, __hisnan, __hisinf; packed: both halves)",
          "%d scalar and %d packed comparisons wrong", wrong_compare, wrong_compare2);
    for (void* p : {static_cast<void*>(d_a), static_cast<void*>(d_b), static_cast<void*>(d_c), static_cast<void*>(out.result),
                    static_cast<void*>(out.disagree), static_cast<void*>(out.compare), static_cast<void*>(out.compare2)}) {
        cudaCheck(cudaFree(p));
    }
}

static void test_bf16_warp() {
    const int blocks = 3, threads = 64, lanes = blocks * threads;
    const std::vector<float> values = random_bf16_values(static_cast<size_t>(lanes) * 8, 93);
    __nv_bfloat16* d_in = to_device(to_bf16(values));
    __nv_bfloat162* d_pairs = nullptr;
    __nv_bfloat16 *d_broadcast = nullptr, *d_down = nullptr;
    cudaCheck(cudaMalloc(&d_pairs, lanes * sizeof(__nv_bfloat162)));
    cudaCheck(cudaMalloc(&d_broadcast, lanes * sizeof(__nv_bfloat16)));
    cudaCheck(cudaMalloc(&d_down, lanes / 32 * sizeof(__nv_bfloat16)));
    LAUNCH(bf16_warp_kernel, blocks, threads, 0, 0)(d_in, d_pairs, d_broadcast, d_down);
    cudaCheckLaunch();
    const std::vector<__nv_bfloat162> pairs = to_host(d_pairs, lanes);
    const std::vector<__nv_bfloat16> broadcast = to_host(d_broadcast, lanes), down = to_host(d_down, lanes / 32);
    auto add = [](double x, double y) { return reference_bf16(x + y); };
    int wrong_pairs = 0, wrong_broadcast = 0, wrong_down = 0;
    for (int w = 0; w < lanes / 32; w++) {
        const float* v = values.data() + static_cast<size_t>(w) * 32 * 8;
        double low[32], high[32], sum[32];
        for (int l = 0; l < 32; l++) {
            const float* x = v + l * 8;
            low[l] = add(add(x[0], x[2]), add(x[4], x[6]));
            high[l] = add(add(x[1], x[3]), add(x[5], x[7]));
            sum[l] = x[0];
        }
        for (int offset = 16; offset > 0; offset /= 2) {
            double next_low[32], next_high[32], next_sum[32];
            for (int l = 0; l < 32; l++) {
                next_low[l] = add(low[l], low[l ^ offset]);
                next_high[l] = add(high[l], high[l ^ offset]);
                next_sum[l] = add(sum[l], l + offset < 32 ? sum[l + offset] : sum[l]);
            }
            memcpy(low, next_low, sizeof(low));
            memcpy(high, next_high, sizeof(high));
            memcpy(sum, next_sum, sizeof(sum));
        }
        for (int l = 0; l < 32; l++) {
            const __nv_bfloat162& p = pairs[static_cast<size_t>(w) * 32 + l];
            wrong_pairs += bf16_value(__bfloat16_as_ushort(p.x)) != low[l] || bf16_value(__bfloat16_as_ushort(p.y)) != high[l];
            wrong_broadcast += bf16_value(__bfloat16_as_ushort(broadcast[static_cast<size_t>(w) * 32 + l])) != v[5 * 8 + 7];
        }
        wrong_down += bf16_value(__bfloat16_as_ushort(down[w])) != sum[0];
    }
    check(wrong_pairs == 0 && wrong_broadcast == 0 && wrong_down == 0,
          "bf16 in a warp: 16-byte loads into __nv_bfloat162, __hadd2, __shfl_xor_sync / __shfl_sync / __shfl_down_sync "
          "on __nv_bfloat162 and __nv_bfloat16",
          "%d lanes' pairs, %d broadcasts, %d warp sums wrong", wrong_pairs, wrong_broadcast, wrong_down);
    cudaCheck(cudaFree(d_in));
    cudaCheck(cudaFree(d_pairs));
    cudaCheck(cudaFree(d_broadcast));
    cudaCheck(cudaFree(d_down));
}

// ----------------------------------------------------------------------------
// tests: bf16 GEMMs (cuBLAS and cuBLASLt with CUDA_R_16BF operands, fp32 accumulation)

// Values in device memory as `type` (bf16 values when type is CUDA_R_16BF), and back as doubles.
static void* to_device_as(const std::vector<float>& values, cudaDataType type) {
    if (type == CUDA_R_16BF) { return to_device(to_bf16(values)); }
    return to_device(values);
}

static std::vector<double> to_host_as(const void* d, size_t count, cudaDataType type) {
    std::vector<double> out(count);
    if (type == CUDA_R_16BF) {
        const std::vector<__nv_bfloat16> v = to_host(static_cast<const __nv_bfloat16*>(d), count);
        for (size_t i = 0; i < count; i++) { out[i] = bf16_value(__bfloat16_as_ushort(v[i])); }
    } else {
        const std::vector<float> v = to_host(static_cast<const float*>(d), count);
        for (size_t i = 0; i < count; i++) { out[i] = v[i]; }
    }
    return out;
}

// Element (i, j) of op(X) for a column-major X with leading dimension ld.
static float op_element(const float* x, int ld, bool transpose, int i, int j) {
    return transpose ? x[j + static_cast<size_t>(i) * ld] : x[i + static_cast<size_t>(j) * ld];
}

// One output of alpha op(A) op(B) + beta C + bias: `fp32` as the harness computes it (the
// products summed over l in order in fp32, exact for bf16 operands; times alpha; plus beta·c
// when beta != 0; plus the bias if any), `exact` in double, and `magnitude`, the sum of the
// terms' absolute values, which bounds fp32's error: (k + 3)·u·magnitude.
struct GemmElement {
    float fp32;
    double exact, magnitude;
};

static GemmElement gemm_element(const float* a, int lda, bool ta, const float* b, int ldb, bool tb, int k, int i, int j,
                                float alpha, float beta, float c, const float* bias) {
    float sum = 0.0f;
    double exact = 0.0, magnitude = 0.0;
    for (int l = 0; l < k; l++) {
        const float x = op_element(a, lda, ta, i, l), y = op_element(b, ldb, tb, l, j);
        sum += x * y;
        exact += static_cast<double>(x) * y;
        magnitude += std::fabs(static_cast<double>(x) * y);
    }
    GemmElement e{alpha * sum, alpha * exact, std::fabs(alpha) * magnitude};
    if (beta != 0.0f) {
        e.fp32 += beta * c;
        e.exact += static_cast<double>(beta) * c;
        e.magnitude += std::fabs(static_cast<double>(beta) * c);
    }
    if (bias != nullptr) {
        e.fp32 += *bias;
        e.exact += *bias;
        e.magnitude += std::fabs(*bias);
    }
    return e;
}

// The outputs of a bf16 GEMM, judged one by one: in the harness each must be the fp32
// arithmetic above rounded once to the output's type, bit for bit (not with
// -DCUDA_HARNESS_OPENBLAS, which sums in OpenBLAS's order); everywhere it must lie within
// (k + 3)·u·magnitude (+ 2^-8·|D| for a bf16 output) of the exact value. u is 2^-24 in the
// harness; a GPU's tensor cores may truncate and sum in another order, so 2^-22 there.
struct GemmTally {
    int k = 0;
    bool bf16 = true;
    int checked = 0, inexact = 0;
    double worst = 0.0;  // the largest error as a fraction of its bound

    void add(double got, const GemmElement& e) {
        const double want = bf16 ? reference_bf16(e.fp32) : static_cast<double>(e.fp32);
        add(got, want, e.exact, e.magnitude, 1.0);
    }
    // `slope`: how much the function applied after the sum can magnify its error (GELU: < 1.2)
    void add(double got, double want, double exact, double magnitude, double slope) {
#ifdef CUDA_CPU_HARNESS
        const double u = 0x1p-24;
#else
        const double u = 0x1p-22;
#endif
#if defined(CUDA_CPU_HARNESS) && !defined(CUDA_HARNESS_OPENBLAS)
        inexact += got != want;
#else
        (void)want;
#endif
        const double bound = slope * (k + 3) * u * magnitude + (bf16 ? 0x1p-8 * std::fabs(got) : 0.0) + 0x1p-133;
        worst = std::max(worst, std::isnan(got) ? INFINITY : std::fabs(got - exact) / bound);
        checked++;
    }
    bool ok() const { return inexact == 0 && worst <= 1.0 && checked > 0; }
};

// `touched`: elements outside the output that changed (they must not).
static void check_tally(const GemmTally& t, const char* name, int touched = 0) {
    check(t.ok() && touched == 0, name,
          "%d of %d outputs differ from the fp32 arithmetic rounded once; worst error %.3g of the bound; %d elements "
          "outside the output changed", t.inexact, t.checked, t.worst, touched);
}

// cublasGemmEx / cublasGemmStridedBatchedEx with bf16 A and B and a C of c_type, in place.
struct ExCase {
    const char* name;
    bool ta, tb;
    int m, n, k, batch;
    float alpha, beta;
    cudaDataType c_type;
};

static void run_ex_case(cublasHandle_t handle, const ExCase& t) {
    const int lda = (t.ta ? t.k : t.m) + 3, ldb = (t.tb ? t.n : t.k) + 1, ldc = t.m + 2;
    const long long sa = static_cast<long long>(lda) * (t.ta ? t.m : t.k) + 5, sb = static_cast<long long>(ldb) * (t.tb ? t.k : t.n),
                    sc = static_cast<long long>(ldc) * t.n + 3;
    const std::vector<float> a = random_bf16_values(sa * t.batch, 100), b = random_bf16_values(sb * t.batch, 101);
    std::vector<float> c = random_bf16_values(sc * t.batch, 102);
    if (t.beta == 0.0f) { std::fill(c.begin(), c.end(), NAN); }  // beta = 0: C is not read
    void *d_a = to_device_as(a, CUDA_R_16BF), *d_b = to_device_as(b, CUDA_R_16BF), *d_c = to_device_as(c, t.c_type);
    const cublasOperation_t opa = t.ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = t.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (t.batch == 1) {
        cublasCheck(cublasGemmEx(handle, opa, opb, t.m, t.n, t.k, &t.alpha, d_a, CUDA_R_16BF, lda, d_b, CUDA_R_16BF, ldb,
                                 &t.beta, d_c, t.c_type, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
        cublasCheck(cublasGemmStridedBatchedEx(handle, opa, opb, t.m, t.n, t.k, &t.alpha, d_a, CUDA_R_16BF, lda, sa, d_b,
                                               CUDA_R_16BF, ldb, sb, &t.beta, d_c, t.c_type, ldc, sc, t.batch,
                                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    const std::vector<double> got = to_host_as(d_c, c.size(), t.c_type);
    GemmTally tally;
    tally.k = t.k;
    tally.bf16 = t.c_type == CUDA_R_16BF;
    int touched = 0;  // rows from m to ldc, and the gaps between batches, must keep their values
    for (size_t at = 0; at < c.size(); at++) {
        const long long bi = static_cast<long long>(at) / sc, within = static_cast<long long>(at) % sc;
        const int i = static_cast<int>(within % ldc), j = static_cast<int>(within / ldc);
        if (i >= t.m || j >= t.n) {
            touched += !(got[at] == c[at] || (std::isnan(got[at]) && std::isnan(c[at])));
            continue;
        }
        tally.add(got[at], gemm_element(a.data() + bi * sa, lda, t.ta, b.data() + bi * sb, ldb, t.tb, t.k, i, j, t.alpha,
                                        t.beta, c[at], nullptr));
    }
    check_tally(tally, t.name, touched);
    cudaCheck(cudaFree(d_a));
    cudaCheck(cudaFree(d_b));
    cudaCheck(cudaFree(d_c));
}

static void test_bf16_cublas(cublasHandle_t handle) {
    const ExCase cases[] = {
        {"cublasGemmEx bf16 A, B, C (N N), odd sizes, padded ld, alpha, beta", false, false, 37, 29, 23, 1, 0.75f, -0.5f, CUDA_R_16BF},
        {"cublasGemmEx bf16 A, B, C (N T)", false, true, 37, 29, 23, 1, 0.75f, -0.5f, CUDA_R_16BF},
        {"cublasGemmEx bf16 A, B, C (T N)", true, false, 37, 29, 23, 1, 0.75f, -0.5f, CUDA_R_16BF},
        {"cublasGemmEx bf16 A, B, C (T T)", true, true, 37, 29, 23, 1, 0.75f, -0.5f, CUDA_R_16BF},
        {"cublasGemmEx bf16 A, B with an fp32 C (T N), beta", true, false, 21, 19, 45, 1, 1.0f, 0.25f, CUDA_R_32F},
        {"cublasGemmStridedBatchedEx bf16 (N T, batch 3, padded strides, beta 0 ignores NaN in C)", false, true, 19, 13,
         33, 3, 1.25f, 0.0f, CUDA_R_16BF},
    };
    for (const ExCase& t : cases) { run_ex_case(handle, t); }

#ifdef CUDA_CPU_HARNESS
    // combinations cuBLAS's table does not have: NOT_SUPPORTED, explained on stderr
    __nv_bfloat16* d_x = to_device(std::vector<__nv_bfloat16>(64, __ushort_as_bfloat16(0x3F80)));
    float* d_f = to_device(std::vector<float>(64, 1.0f));
    const float one = 1.0f, zero = 0.0f;
    expect_errors(true);
    const cublasStatus_t mixed = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, d_x, CUDA_R_16BF, 8, d_f,
                                              CUDA_R_32F, 8, &zero, d_f, CUDA_R_32F, 8, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    const cublasStatus_t tf32 = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, d_x, CUDA_R_16BF, 8, d_x,
                                             CUDA_R_16BF, 8, &zero, d_x, CUDA_R_16BF, 8, CUBLAS_COMPUTE_32F_FAST_TF32,
                                             CUBLAS_GEMM_DEFAULT);
    const cublasStatus_t fp16 = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, d_x, CUDA_R_16BF, 8, d_x,
                                             CUDA_R_16BF, 8, &zero, d_x, CUDA_R_16F, 8, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    expect_errors(false);
    check(mixed == CUBLAS_STATUS_NOT_SUPPORTED && tf32 == CUBLAS_STATUS_NOT_SUPPORTED && fp16 == CUBLAS_STATUS_NOT_SUPPORTED,
          "cublasGemmEx refuses bf16 A with fp32 B, bf16 with compute type 32F_FAST_TF32, and an fp16 C",
          "got %s, %s, %s", cublasGetStatusName(mixed), cublasGetStatusName(tf32), cublasGetStatusName(fp16));
    cudaCheck(cudaFree(d_x));
    cudaCheck(cudaFree(d_f));
#else
    skip("cublasGemmEx refuses unsupported type combinations", "the harness's own refusal; a GPU's status may differ");
#endif
}

// cublasLtMatmul with bf16 A and B: D = epilogue(alpha op(A) op(B) + beta C), C and D of d_type
// in separate column-major buffers, the bias of bias_type (set as BIAS_DATA_TYPE when it is not
// D's type, its default), aux of D's type.
struct LtBf16Case {
    const char* name;
    bool ta, tb;
    int m, n, k, batch;
    float alpha, beta;
    cublasLtEpilogue_t epilogue;  // DEFAULT, BIAS, GELU_AUX_BIAS or BGRADB
    cudaDataType d_type, bias_type;
};

// A matmul descriptor for t, with the bias and aux pointers its epilogue needs.
static cublasLtMatmulDesc_t lt_bf16_desc(const LtBf16Case& t, void* const* bias, void* const* aux, int64_t aux_ld,
                                         int64_t aux_stride) {
    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opa = t.ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = t.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &t.epilogue, sizeof(t.epilogue)));
    if (t.epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, sizeof(*bias)));
    }
    if (t.bias_type != t.d_type) {
        const int32_t type = t.bias_type;
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type, sizeof(type)));
    }
    if (t.epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS) {
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux, sizeof(*aux)));
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
        cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, &aux_stride,
                                                   sizeof(aux_stride)));
    }
    return desc;
}

static cublasLtMatrixLayout_t lt_layout(cudaDataType type, int rows, int cols, int ld, int batch, long long stride) {
    cublasLtMatrixLayout_t layout;
    cublasCheck(cublasLtMatrixLayoutCreate(&layout, type, rows, cols, ld));
    if (batch > 1) {
        const int32_t count = batch;
        const int64_t offset = stride;
        cublasCheck(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
        cublasCheck(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &offset, sizeof(offset)));
    }
    return layout;
}

static void run_lt_bf16_case(cublasLtHandle_t lt, const LtBf16Case& t) {
    const int lda = t.ta ? t.k : t.m, ldb = t.tb ? t.n : t.k, ldd = t.m;
    const long long sa = static_cast<long long>(lda) * (t.ta ? t.m : t.k), sb = static_cast<long long>(ldb) * (t.tb ? t.k : t.n),
                    sd = static_cast<long long>(ldd) * t.n;
    const bool gelu = t.epilogue == CUBLASLT_EPILOGUE_GELU_AUX_BIAS, bgrad = t.epilogue == CUBLASLT_EPILOGUE_BGRADB;
    const bool adds_bias = t.epilogue == CUBLASLT_EPILOGUE_BIAS || gelu;
    const std::vector<float> a = random_bf16_values(sa * t.batch, 110), b = random_bf16_values(sb * t.batch, 111),
                             c = random_bf16_values(sd * t.batch, 112), bias = random_bf16_values(t.m, 113);
    void *d_a = to_device_as(a, CUDA_R_16BF), *d_b = to_device_as(b, CUDA_R_16BF), *d_c = to_device_as(c, t.d_type);
    void* d_bias = to_device_as(bgrad ? std::vector<float>(t.n, 0.0f) : bias, t.bias_type);
    void *d_d = to_device_as(std::vector<float>(sd * t.batch, 0.0f), t.d_type), *d_aux = to_device_as(std::vector<float>(sd * t.batch, 0.0f), t.d_type);
    cublasLtMatmulDesc_t desc = lt_bf16_desc(t, &d_bias, &d_aux, ldd, sd);
    cublasLtMatrixLayout_t la = lt_layout(CUDA_R_16BF, t.ta ? t.k : t.m, t.ta ? t.m : t.k, lda, t.batch, sa);
    cublasLtMatrixLayout_t lb = lt_layout(CUDA_R_16BF, t.tb ? t.n : t.k, t.tb ? t.k : t.n, ldb, t.batch, sb);
    cublasLtMatrixLayout_t lc = lt_layout(t.d_type, t.m, t.n, ldd, t.batch, sd);
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1, &heuristic, &found));
    if (found == 1) {
        cublasCheck(cublasLtMatmul(lt, desc, &t.alpha, d_a, la, d_b, lb, &t.beta, d_c, lc, d_d, lc, &heuristic.algo,
                                   nullptr, 0, 0));
    }
    const std::vector<double> d = to_host_as(d_d, sd * t.batch, t.d_type), aux = to_host_as(d_aux, sd * t.batch, t.d_type),
                              bias_got = to_host_as(d_bias, bgrad ? t.n : t.m, t.bias_type);
    GemmTally out, aux_tally, bias_tally;
    out.k = aux_tally.k = t.k;
    out.bf16 = aux_tally.bf16 = t.d_type == CUDA_R_16BF;
    for (int bi = 0; bi < t.batch; bi++) {
        for (int j = 0; j < t.n; j++) {
            for (int i = 0; i < t.m; i++) {
                const size_t at = bi * sd + i + static_cast<size_t>(j) * ldd;
                const GemmElement e = gemm_element(a.data() + bi * sa, lda, t.ta, b.data() + bi * sb, ldb, t.tb, t.k, i, j,
                                                   t.alpha, t.beta, c[at], adds_bias ? &bias[i] : nullptr);
                if (!gelu) {
                    out.add(d[at], e);
                    continue;
                }
                aux_tally.add(aux[at], e);  // the GELU input, stored in D's type
                out.add(d[at], d[at], gelu_reference(e.exact), e.magnitude, 1.2);  // GELU's slope is below 1.2
            }
        }
    }
    if (bgrad) {  // bias[j] = sum over l of op(B)(l, j), batch 0, in fp32 and then the bias's type
        bias_tally.k = t.k;
        bias_tally.bf16 = t.bias_type == CUDA_R_16BF;
        for (int j = 0; j < t.n; j++) {
            GemmElement e{0.0f, 0.0, 0.0};
            for (int l = 0; l < t.k; l++) {
                const float y = op_element(b.data(), ldb, t.tb, l, j);
                e.fp32 += y;
                e.exact += y;
                e.magnitude += std::fabs(y);
            }
            bias_tally.add(bias_got[j], e);
        }
    }
    check(found == 1 && out.ok() && (!gelu || aux_tally.ok()) && (!bgrad || bias_tally.ok()), t.name,
          "heuristic found %d; D: %d of %d differ from the fp32 arithmetic rounded once, worst %.3g of the bound; aux: %d "
          "differ, worst %.3g; bias gradient: %d differ, worst %.3g", found, out.inexact, out.checked, out.worst,
          aux_tally.inexact, aux_tally.worst, bias_tally.inexact, bias_tally.worst);
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    for (cublasLtMatrixLayout_t l : {la, lb, lc}) { cublasCheck(cublasLtMatrixLayoutDestroy(l)); }
    cublasCheck(cublasLtMatmulDescDestroy(desc));
    for (void* p : {d_a, d_b, d_c, d_d, d_bias, d_aux}) { cudaCheck(cudaFree(p)); }
}

#ifdef CUDA_CPU_HARNESS
// The heuristic's status for a matmul of 8×8 bf16 A and B with C of c_type, D of d_type, and
// the descriptor changed by `set` (compute type: compute).
template <typename Set>
static cublasStatus_t lt_bf16_status(cublasLtHandle_t lt, cublasComputeType_t compute, cudaDataType c_type,
                                     cudaDataType d_type, Set set) {
    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F));
    set(desc);
    cublasLtMatrixLayout_t la = lt_layout(CUDA_R_16BF, 8, 8, 8, 1, 0), lc = lt_layout(c_type, 8, 8, 8, 1, 0),
                           ld = lt_layout(d_type, 8, 8, 8, 1, 0);
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(lt, desc, la, la, lc, ld, pref, 1, &heuristic, &found);
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    for (cublasLtMatrixLayout_t l : {la, lc, ld}) { cublasCheck(cublasLtMatrixLayoutDestroy(l)); }
    cublasCheck(cublasLtMatmulDescDestroy(desc));
    return status;
}
#endif

static void test_bf16_cublaslt() {
    cublasLtHandle_t lt;
    cublasCheck(cublasLtCreate(&lt));
    const LtBf16Case cases[] = {
        {"cublasLtMatmul bf16 (T N), alpha, beta", true, false, 24, 17, 40, 1, 0.5f, 0.25f, CUBLASLT_EPILOGUE_DEFAULT,
         CUDA_R_16BF, CUDA_R_16BF},
        {"cublasLtMatmul bf16 (N T, batch 3)", false, true, 16, 9, 12, 3, 1.0f, 0.0f, CUBLASLT_EPILOGUE_DEFAULT,
         CUDA_R_16BF, CUDA_R_16BF},
        {"cublasLtMatmul bf16, epilogue BIAS with a bf16 bias (its default type)", true, false, 33, 20, 24, 1, 1.0f,
         0.0f, CUBLASLT_EPILOGUE_BIAS, CUDA_R_16BF, CUDA_R_16BF},
        {"cublasLtMatmul bf16, epilogue BIAS with an fp32 bias (BIAS_DATA_TYPE), batch 2", false, false, 21, 18, 27, 2,
         1.0f, 0.5f, CUBLASLT_EPILOGUE_BIAS, CUDA_R_16BF, CUDA_R_32F},
        {"cublasLtMatmul bf16, epilogue GELU_AUX_BIAS (bf16 aux)", true, false, 16, 8, 32, 1, 1.0f, 0.0f,
         CUBLASLT_EPILOGUE_GELU_AUX_BIAS, CUDA_R_16BF, CUDA_R_16BF},
        {"cublasLtMatmul bf16 A, B with fp32 C and D, epilogue BIAS (fp32 bias)", true, false, 19, 23, 31, 1, 0.75f,
         -0.5f, CUBLASLT_EPILOGUE_BIAS, CUDA_R_32F, CUDA_R_32F},
        {"cublasLtMatmul bf16, epilogue BGRADB into a bf16 bias", false, true, 24, 16, 32, 1, 1.0f, 0.0f,
         CUBLASLT_EPILOGUE_BGRADB, CUDA_R_16BF, CUDA_R_16BF},
    };
    for (const LtBf16Case& t : cases) { run_lt_bf16_case(lt, t); }

#ifdef CUDA_CPU_HARNESS
    void* d_bias = to_device_as(std::vector<float>(8, 1.0f), CUDA_R_32F);
    const cublasLtEpilogue_t bias_epilogue = CUBLASLT_EPILOGUE_BIAS, gelu_aux = CUBLASLT_EPILOGUE_GELU_AUX;
    const int32_t bf16_type = CUDA_R_16BF, fp32_type = CUDA_R_32F;
    const int64_t aux_ld = 8;
    expect_errors(true);
    const cublasStatus_t bf16_bias = lt_bf16_status(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_32F, [&](cublasLtMatmulDesc_t d) {
        cublasCheck(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE, &bias_epilogue, sizeof(bias_epilogue)));
        cublasCheck(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &d_bias, sizeof(d_bias)));
        cublasCheck(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bf16_type, sizeof(bf16_type)));
    });
    const cublasStatus_t fp32_aux = lt_bf16_status(lt, CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16BF, [&](cublasLtMatmulDesc_t d) {
        cublasCheck(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE, &gelu_aux, sizeof(gelu_aux)));
        cublasCheck(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &d_bias, sizeof(d_bias)));
        cublasCheck(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)));
        cublasCheck(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, &fp32_type, sizeof(fp32_type)));
    });
    const cublasStatus_t mixed_cd = lt_bf16_status(lt, CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_32F, [](cublasLtMatmulDesc_t) {});
    const cublasStatus_t tf32 = lt_bf16_status(lt, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_16BF, CUDA_R_16BF, [](cublasLtMatmulDesc_t) {});
    expect_errors(false);
    const cublasStatus_t refused = CUBLAS_STATUS_NOT_SUPPORTED;
    check(bf16_bias == refused && fp32_aux == refused && mixed_cd == refused && tf32 == refused,
          "cublasLtMatmul refuses a bf16 bias with fp32 D, fp32 aux with bf16 D, C and D of different types, bf16 with "
          "compute type 32F_FAST_TF32", "got %s, %s, %s, %s", cublasGetStatusName(bf16_bias),
          cublasGetStatusName(fp32_aux), cublasGetStatusName(mixed_cd), cublasGetStatusName(tf32));
    cudaCheck(cudaFree(d_bias));
#else
    skip("cublasLtMatmul refuses unsupported type combinations", "the harness's own refusal; a GPU's status may differ");
#endif
    cublasCheck(cublasLtDestroy(lt));
}

// ----------------------------------------------------------------------------
// tests: the harness's GEMM (harness_gemm.h), bit for bit
//
// run_gemm promises each sum made in float, starting at +0, adding op(A)(i, l)·op(B)(l, j) for
// l = 0, 1, ..., k-1, each product rounded to float before it is added. Whatever its blocking
// and vectorization, every build of its tile kernel must give exactly those bits: compared with
// memcmp against a triple loop, over odd shapes (so tiles are partial at every edge, and k and
// m cross the kernel's blocks of l and of rows), a batch of 3, every combination of transposed
// and plain views, views strided in both directions, fp32, fp32 converted to TF32, and bf16.

#ifdef CUDA_CPU_HARNESS
// An m×k or k×n operand of `batch` matrices, each `span` elements, element (r, c) of batch b
// at b·span + r·row_stride + c·col_stride. layout 0: column-major, padded leading dimension;
// 1: its transpose; 2: neither dimension contiguous.
struct GemmTestOperand {
    int64_t row_stride, col_stride, span;

    GemmTestOperand(int64_t rows, int64_t cols, int layout)
        : row_stride(layout == 0 ? 1 : layout == 1 ? cols + 1 : 2),
          col_stride(layout == 0 ? rows + 2 : layout == 1 ? 1 : 2 * rows + 3),
          span(rows == 0 || cols == 0 ? 0 : (rows - 1) * row_stride + (cols - 1) * col_stride + 1) {}
    int64_t at(int64_t b, int64_t r, int64_t c) const { return b * span + r * row_stride + c * col_stride; }
};

// The sums, column after column, batch after batch: the triple loop (reference) or run_gemm
// with one build of the tile kernel. Elements are floats, or bf16 values held in floats.
static std::vector<float> gemm_sums(const cuda_harness::TileKernel* kernel, bool bf16, bool tf32, int64_t m, int64_t n,
                                    int64_t k, int64_t batch, const GemmTestOperand& ao, const std::vector<float>& a,
                                    const GemmTestOperand& bo, const std::vector<float>& b) {
    std::vector<float> out(static_cast<size_t>(m * n * batch), std::nanf(""));
    if (kernel == nullptr) {
        for (int64_t bi = 0; bi < batch; bi++) {
            for (int64_t j = 0; j < n; j++) {
                for (int64_t i = 0; i < m; i++) {
                    float sum = 0.0f;
                    for (int64_t l = 0; l < k; l++) {
                        const float x = a[ao.at(bi, i, l)], y = b[bo.at(bi, l, j)];
                        // rounded to float before it is added, whatever the compiler's contraction
                        const volatile float product = tf32 ? reference_tf32(x) * reference_tf32(y) : x * y;
                        sum = sum + product;
                    }
                    out[(bi * n + j) * m + i] = sum;
                }
            }
        }
        return out;
    }
    auto done = [&](int64_t bi, int64_t j, const float* sums) { memcpy(&out[(bi * n + j) * m], sums, m * sizeof(float)); };
    const cuda_harness::GemmShape shape{m, n, k, batch};
    if (bf16) {
        using Bf16View = cuda_harness::StridedMatrix<__nv_bfloat16>;
        const std::vector<__nv_bfloat16> a16 = to_bf16(a), b16 = to_bf16(b);
        auto operands = [&](int64_t bi) {
            return std::make_pair(Bf16View{a16.data() + bi * ao.span, ao.row_stride, ao.col_stride},
                                  Bf16View{b16.data() + bi * bo.span, bo.row_stride, bo.col_stride});
        };
        cuda_harness::run_gemm(shape, operands, done, false, kernel);
    } else {
        auto operands = [&](int64_t bi) {
            return std::make_pair(cuda_harness::MatrixView{a.data() + bi * ao.span, ao.row_stride, ao.col_stride},
                                  cuda_harness::MatrixView{b.data() + bi * bo.span, bo.row_stride, bo.col_stride});
        };
        cuda_harness::run_gemm(shape, operands, done, tf32, kernel);
    }
    return out;
}
#endif

static void test_gemm_bits() {
#ifdef CUDA_CPU_HARNESS
    struct Shape {
        int64_t m, n, k;
    };
    std::vector<Shape> shapes;
    const int64_t sizes[] = {1, 3, 17, 33, 130};
    for (int64_t m : sizes) {
        for (int64_t n : sizes) {
            for (int64_t k : sizes) { shapes.push_back({m, n, k}); }
        }
    }
    // past the kernel's blocks of l (256) and of rows (256); and no l at all
    shapes.push_back({300, 7, 520});
    shapes.push_back({5, 200, 300});
    shapes.push_back({9, 11, 0});
    const int layouts[][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 2}};
    const int64_t batch = 3;
    const std::vector<cuda_harness::TileKernel>& kernels = cuda_harness::tile_kernels();
    const char* types[] = {"fp32", "fp32 under TF32", "bf16"};
    for (int type = 0; type < 3; type++) {
        const bool tf32 = type == 1, bf16 = type == 2;
        int cases = 0;
        std::vector<int> wrong(kernels.size(), 0);
        std::vector<std::string> first_wrong(kernels.size());
        unsigned seed = 200;
        for (const Shape& s : shapes) {
            for (const auto& layout : layouts) {
                const GemmTestOperand ao(s.m, s.k, layout[0]), bo(s.k, s.n, layout[1]);
                const size_t a_count = static_cast<size_t>(batch * ao.span), b_count = static_cast<size_t>(batch * bo.span);
                const std::vector<float> a = bf16 ? random_bf16_values(a_count, seed) : random_floats(a_count, seed);
                const std::vector<float> b = bf16 ? random_bf16_values(b_count, seed + 1) : random_floats(b_count, seed + 1);
                seed += 2;
                const std::vector<float> want = gemm_sums(nullptr, bf16, tf32, s.m, s.n, s.k, batch, ao, a, bo, b);
                cases++;
                for (size_t i = 0; i < kernels.size(); i++) {
                    const std::vector<float> got = gemm_sums(&kernels[i], bf16, tf32, s.m, s.n, s.k, batch, ao, a, bo, b);
                    if (memcmp(want.data(), got.data(), want.size() * sizeof(float)) != 0 && wrong[i]++ == 0) {
                        first_wrong[i] = "first at m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                                         " k=" + std::to_string(s.k) + ", layouts " + std::to_string(layout[0]) + ", " +
                                         std::to_string(layout[1]);
                    }
                }
            }
        }
        for (size_t i = 0; i < kernels.size(); i++) {
            char name[160];
            snprintf(name, sizeof(name), "run_gemm, %s tile kernel, %s: the triple loop's bits on %d shapes and layouts",
                     kernels[i].name, types[type], cases);
            check(wrong[i] == 0, name, "%d of %d differ (%s)", wrong[i], cases, first_wrong[i].c_str());
        }
    }
#else
    skip("run_gemm bit for bit", "the harness's own GEMM");
#endif
}

// ----------------------------------------------------------------------------

int main() {
    cuda_require_device();
    const auto start = std::chrono::steady_clock::now();
    test_block_reduction();
    test_warp_ops();
    test_cooperative_groups();
    test_atomics();
    test_dynamic_shared();
    test_indexing();
    test_invalid_launches();
    test_deadlocks();
    test_stack_overflow();
    test_execution_order();
    test_memory();
    test_events();
    test_device_queries();
    test_bf16_conversions();
    test_bf16_wide_conversions();
    test_bf16_arithmetic();
    test_bf16_warp();
    cublasHandle_t handle;
    cublasCheck(cublasCreate(&handle));
    test_cublas_sgemm(handle);
    test_cublas_strided_batched(handle);
    test_tf32_conversion();
    test_tf32_gemms(handle);
    test_bf16_cublas(handle);
    cublasCheck(cublasDestroy(handle));
    test_cublaslt();
    test_bf16_cublaslt();
    test_gemm_bits();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    printf("(%.2f s)\n", seconds);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
