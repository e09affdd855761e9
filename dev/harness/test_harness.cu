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

#ifdef CUDA_CPU_HARNESS
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
#endif

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
    test_memory();
    test_events();
    test_device_queries();
    cublasHandle_t handle;
    cublasCheck(cublasCreate(&handle));
    test_cublas_sgemm(handle);
    test_cublas_strided_batched(handle);
    test_tf32_conversion();
    test_tf32_gemms(handle);
    cublasCheck(cublasDestroy(handle));
    test_cublaslt();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    printf("(%.2f s)\n", seconds);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
