// test_nccl.cu: tests of the CPU harness's NCCL (harness_nccl.h), run by every rank of
//     mpirun --allow-run-as-root --oversubscribe -np 2 dev/harness/test_nccl    (and -np 3)
// Build: make dev/harness/test_nccl (g++ -x c++ -DCUDA_CPU_HARNESS -DCUDA_HARNESS_NCCL with the
// flags of mpicxx --showme:compile and --showme:link); make harness-test-nccl builds and runs it.
//
// Every result is compared with a reference computed here on the host, independently of the
// harness (its own bf16 rounding, its own rank-order loops): what a rank contributes is a
// function of (test, rank, index), so each rank computes every other rank's contribution. The
// NCCL ranks are the MPI ranks reversed, so that placing data by MPI rank would fail the tests.
// Output: rank 0 prints "PASS name" for a check that passed on every rank; a rank on which a
// check fails prints "FAIL name: rank r: detail" (r its NCCL rank). Rank 0 closes with
// "N passed, M failed", counting a check failed if it failed on any rank; every rank then
// exits with status 1 if any check failed.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "llmc/cuda_common.h"

#include <mpi.h>

#ifndef CUDA_HARNESS_NCCL
#error "test_nccl.cu tests the CPU harness's NCCL: build with -DCUDA_CPU_HARNESS -DCUDA_HARNESS_NCCL and MPI"
#endif

namespace nccl_counters = cuda_harness::nccl;

// ----------------------------------------------------------------------------
// bookkeeping

static int g_world_rank = 0;  // in MPI_COMM_WORLD
static int g_n = 1;           // ranks
static int g_rank = 0;        // NCCL rank: the world rank reversed
static int g_passed = 0;
static int g_failed = 0;

// A check passes if it passes on every rank (one MPI_Allreduce per check, so every rank
// counts alike); each failing rank says why.
static void check(bool ok, const char* name, const char* fmt = "", ...) {
    if (!ok) {
        char detail[1024];
        va_list args;
        va_start(args, fmt);
        vsnprintf(detail, sizeof(detail), fmt, args);
        va_end(args);
        printf("FAIL %s: rank %d: %s\n", name, g_rank, detail);
        fflush(stdout);
    }
    int everywhere = ok ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &everywhere, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (everywhere == 0) {
        g_failed++;
        return;
    }
    g_passed++;
    if (g_world_rank == 0) {
        printf("PASS %s\n", name);
        fflush(stdout);
    }
}

// The harness explains every error it returns on stderr; while a test provokes errors on
// purpose, those explanations are noise.
static void expect_errors(bool expected) {
    if (expected) {
        setenv("CUDA_HARNESS_QUIET", "1", 1);
    } else {
        unsetenv("CUDA_HARNESS_QUIET");
    }
}

static const char* result_name(ncclResult_t r) {
    static const char* const names[] = {"ncclSuccess", "ncclUnhandledCudaError", "ncclSystemError",
                                        "ncclInternalError", "ncclInvalidArgument", "ncclInvalidUsage",
                                        "ncclRemoteError", "ncclInProgress"};
    return static_cast<int>(r) >= 0 && r < ncclNumResults ? names[r] : "?";
}

// "got ncclInvalidArgument (<the diagnosis>)"
static std::string got(ncclResult_t r) {
    const std::string diagnosis = r != ncclSuccess ? std::string(" (") + ncclGetLastError(nullptr) + ")" : "";
    return std::string("got ") + result_name(r) + diagnosis;
}

// ----------------------------------------------------------------------------
// host references

// Contribution `rank` of test `seed`, element i: magnitudes from 2^-6 to 2^6, so that the order
// and the rounding of the sums matter.
static float input(uint32_t seed, int rank, size_t i) {
    uint64_t h = (static_cast<uint64_t>(seed) << 40) ^ (static_cast<uint64_t>(rank) << 32) ^ i;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;  // splitmix64's finalizer
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    const float unit = static_cast<float>(h >> 40) / static_cast<float>(1 << 24);  // [0, 1)
    return std::ldexp(2.0f * unit - 1.0f, static_cast<int>((h >> 8) % 13) - 6);
}

// bf16 on its own here, not the harness's: round to nearest even on the fp32 bits.
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { return 0x7fff; }
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

static float from_bf16(uint16_t b) {
    const uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Every rank's contribution to test `seed`: [rank][i].
static std::vector<std::vector<float>> f32_inputs(uint32_t seed, size_t count) {
    std::vector<std::vector<float>> all(g_n, std::vector<float>(count));
    for (int r = 0; r < g_n; r++) {
        for (size_t i = 0; i < count; i++) { all[r][i] = input(seed, r, i); }
    }
    return all;
}

static std::vector<std::vector<uint16_t>> bf16_inputs(uint32_t seed, size_t count) {
    std::vector<std::vector<uint16_t>> all(g_n, std::vector<uint16_t>(count));
    for (int r = 0; r < g_n; r++) {
        for (size_t i = 0; i < count; i++) { all[r][i] = to_bf16(input(seed, r, i)); }
    }
    return all;
}

// The rank-order fp32 reduction: each add in fp32; ncclAvg multiplies each contribution by
// 1/n (an fp32) first.
static std::vector<float> reduce_f32(const std::vector<std::vector<float>>& in, ncclRedOp_t op) {
    const float scale = static_cast<float>(1.0 / g_n);
    std::vector<float> out(in[0].size());
    for (size_t i = 0; i < out.size(); i++) {
        float acc = 0.0f;
        for (int r = 0; r < g_n; r++) {
            float x = in[r][i];
            if (op == ncclAvg) { x = x * scale; }
            if (r == 0) {
                acc = x;
            } else if (op == ncclMax) {
                acc = std::max(acc, x);
            } else if (op == ncclMin) {
                acc = std::min(acc, x);
            } else if (op == ncclProd) {
                acc = acc * x;
            } else {
                acc = acc + x;
            }
        }
        out[i] = acc;
    }
    return out;
}

// The rank-order bf16 reduction: each operation in fp32, rounded to bf16 after it.
static std::vector<uint16_t> reduce_bf16(const std::vector<std::vector<uint16_t>>& in, ncclRedOp_t op) {
    const float scale = from_bf16(to_bf16(static_cast<float>(1.0 / g_n)));
    std::vector<uint16_t> out(in[0].size());
    for (size_t i = 0; i < out.size(); i++) {
        uint16_t acc = 0;
        for (int r = 0; r < g_n; r++) {
            uint16_t x = in[r][i];
            if (op == ncclAvg) { x = to_bf16(from_bf16(x) * scale); }
            if (r == 0) {
                acc = x;
            } else if (op == ncclMax) {
                acc = from_bf16(acc) < from_bf16(x) ? x : acc;
            } else if (op == ncclMin) {
                acc = from_bf16(x) < from_bf16(acc) ? x : acc;
            } else {
                acc = to_bf16(from_bf16(acc) + from_bf16(x));
            }
        }
        out[i] = acc;
    }
    return out;
}

// The first index where two arrays differ bitwise, or -1.
template <typename T>
static long first_difference(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) { return 0; }
    for (size_t i = 0; i < a.size(); i++) {
        if (memcmp(&a[i], &b[i], sizeof(T)) != 0) { return static_cast<long>(i); }
    }
    return -1;
}

// Whether every rank holds these very bytes (FNV-1a hashes compared).
static bool same_on_every_rank(const void* data, size_t bytes) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < bytes; i++) { h = (h ^ static_cast<const unsigned char*>(data)[i]) * 1099511628211ull; }
    std::vector<uint64_t> all(g_n);
    MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    return std::all_of(all.begin(), all.end(), [&](uint64_t x) { return x == all[0]; });
}

// ----------------------------------------------------------------------------
// device buffers

template <typename T>
struct Device {
    T* p = nullptr;
    size_t n = 0;

    explicit Device(size_t count) : n(count) { cudaCheck(cudaMalloc(&p, count * sizeof(T))); }
    explicit Device(const std::vector<T>& host) : Device(host.size()) {
        cudaCheck(cudaMemcpy(p, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
    }
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;
    ~Device() { cudaFree(p); }

    // The first `count` elements (all of them: SIZE_MAX), copied to the host.
    std::vector<T> host(size_t count = SIZE_MAX) const {
        std::vector<T> out(std::min(count, n));
        cudaCheck(cudaMemcpy(out.data(), p, out.size() * sizeof(T), cudaMemcpyDeviceToHost));
        return out;
    }
    void upload(const std::vector<T>& host, size_t offset = 0) {
        cudaCheck(cudaMemcpy(p + offset, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
};

__global__ void fill_kernel(float* x, int n, int rank) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { x[i] = static_cast<float>(rank) + 0.5f * static_cast<float>(i); }
}

// ----------------------------------------------------------------------------
// communicators

// Called before MPI_Init: the harness must refuse, and say why.
static bool init_refused_without_mpi() {
    ncclUniqueId id;
    ncclComm_t comm = nullptr;
    expect_errors(true);
    const bool ok = ncclGetUniqueId(&id) == ncclSuccess && ncclCommInitRank(&comm, 2, id, 0) == ncclInvalidUsage &&
                    comm == nullptr && strstr(ncclGetLastError(nullptr), "call MPI_Init first") != nullptr;
    expect_errors(false);
    return ok;
}

// A communicator of every rank: the id from world rank 0, sent by MPI_Bcast.
static ncclResult_t make_comm(ncclComm_t* comm) {
    ncclUniqueId id;
    if (g_world_rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) { MPI_Abort(MPI_COMM_WORLD, 1); }
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    return ncclCommInitRank(comm, g_n, id, g_rank);
}

static void test_versions() {
    int version = 0;
    check(ncclGetVersion(&version) == ncclSuccess && version == NCCL_VERSION_CODE && version == 22809 &&
              NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH) == 22809,
          "ncclGetVersion is NCCL 2.28's code", "version %d", version);
    const char* invalid = "invalid argument (run with NCCL_DEBUG=WARN for details)";
    check(strcmp(ncclGetErrorString(ncclInvalidArgument), invalid) == 0 &&
              strcmp(ncclGetErrorString(ncclSuccess), "no error") == 0,
          "ncclGetErrorString has NCCL's wording");
}

static void test_comm_queries(ncclComm_t comm) {
    int count = -1, rank = -1;
    ncclResult_t async = ncclInternalError;
    check(ncclCommCount(comm, &count) == ncclSuccess && count == g_n, "ncclCommCount is the number of ranks",
          "count %d", count);
    check(ncclCommUserRank(comm, &rank) == ncclSuccess && rank == g_rank, "ncclCommUserRank is the rank passed at init",
          "rank %d", rank);
    check(ncclCommGetAsyncError(comm, &async) == ncclSuccess && async == ncclSuccess, "ncclCommGetAsyncError: none");
}

// One ncclCommInitRank with these arguments on this rank; it must fail with `expected` on every rank.
static void expect_init_error(const char* name, int nranks, const ncclUniqueId& id, int rank, ncclResult_t expected) {
    ncclComm_t comm = reinterpret_cast<ncclComm_t>(&g_n);  // must become NULL
    expect_errors(true);
    const ncclResult_t r = ncclCommInitRank(&comm, nranks, id, rank);
    expect_errors(false);
    check(r == expected && comm == nullptr, name, "%s, expected %s", got(r).c_str(), result_name(expected));
}

static void test_init_errors() {
    ncclUniqueId id;
    if (g_world_rank == 0) { ncclGetUniqueId(&id); }
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    expect_init_error("init: mismatched nranks (rank 0 passes one more) fails on every rank",
                      g_rank == 0 ? g_n + 1 : g_n, id, g_rank, ncclInvalidArgument);
    expect_init_error("init: nranks other than the world size fails", g_n + 1, id, g_rank, ncclInvalidArgument);
    ncclUniqueId zeros;
    memset(&zeros, 0, sizeof(zeros));
    expect_init_error("init: an id not from ncclGetUniqueId fails", g_n, zeros, g_rank, ncclInvalidArgument);
    ncclUniqueId other = id;
    if (g_world_rank == 1) { ncclGetUniqueId(&other); }
    if (g_n > 1) {
        expect_init_error("init: another id on one rank fails on every rank", g_n, other, g_rank, ncclInvalidArgument);
        expect_init_error("init: the same rank twice fails", g_n, id, 0, ncclInvalidArgument);
    }
    expect_errors(true);
    const ncclResult_t r = ncclCommInitRank(nullptr, g_n, id, g_rank);
    expect_errors(false);
    check(r == ncclInvalidArgument, "init: NULL comm pointer", "%s", got(r).c_str());
}

// ----------------------------------------------------------------------------
// all-reduce

static void test_all_reduce_f32(ncclComm_t comm, ncclRedOp_t op, const char* op_name, size_t count, bool in_place) {
    char name[128];
    snprintf(name, sizeof(name), "all-reduce fp32 %s, count %zu, %s", op_name, count,
             in_place ? "in place" : "out of place");
    const std::vector<std::vector<float>> in = f32_inputs(100 + op, count);
    Device<float> send(in[g_rank]), out(count);
    float* recv = in_place ? send.p : out.p;
    const ncclResult_t r = ncclAllReduce(send.p, recv, count, ncclFloat32, op, comm, 0);
    const std::vector<float> result = in_place ? send.host() : out.host();
    const long bad = first_difference(result, reduce_f32(in, op));
    check(r == ncclSuccess && bad < 0, name, "%s, first difference at %ld", got(r).c_str(), bad);
    if (!in_place) {
        check(first_difference(send.host(), in[g_rank]) < 0, (std::string(name) + ": sendbuff unchanged").c_str());
    }
    check(same_on_every_rank(result.data(), result.size() * sizeof(float)),
          (std::string(name) + ": bit-identical on every rank").c_str());
}

static void test_all_reduce_bf16(ncclComm_t comm, ncclRedOp_t op, const char* op_name, size_t count, bool in_place) {
    char name[128];
    snprintf(name, sizeof(name), "all-reduce bf16 %s, count %zu, %s", op_name, count,
             in_place ? "in place" : "out of place");
    const std::vector<std::vector<uint16_t>> in = bf16_inputs(200 + op, count);
    Device<uint16_t> send(in[g_rank]), out(count);
    uint16_t* recv = in_place ? send.p : out.p;
    const ncclResult_t r = ncclAllReduce(send.p, recv, count, ncclBfloat16, op, comm, 0);
    const std::vector<uint16_t> result = in_place ? send.host() : out.host();
    const std::vector<uint16_t> expected = reduce_bf16(in, op);
    const long bad = first_difference(result, expected);
    check(r == ncclSuccess && bad < 0, name, "%s, first difference at %ld: 0x%04x, expected 0x%04x", got(r).c_str(), bad,
          bad >= 0 ? result[bad] : 0, bad >= 0 ? expected[bad] : 0);
    check(same_on_every_rank(result.data(), result.size() * sizeof(uint16_t)),
          (std::string(name) + ": bit-identical on every rank").c_str());
}

// bf16 sums must round after every add: the case where rounding once at the end would differ.
static void test_all_reduce_bf16_rounds_each_add(ncclComm_t comm) {
    // 1 + 2^-8 + 2^-8: each add of 2^-8 to 1 is a tie that rounds to even (1), so the rank-order
    // ring sum stays 1; fp32 summed and rounded once would give 1 + 2^-7.
    const std::vector<uint16_t> mine = {to_bf16(g_rank == 0 ? 1.0f : std::ldexp(1.0f, -8))};
    Device<uint16_t> buf(mine);
    const ncclResult_t r = ncclAllReduce(buf.p, buf.p, 1, ncclBfloat16, ncclSum, comm, 0);
    const float sum = from_bf16(buf.host()[0]);
    check(r == ncclSuccess && sum == 1.0f, "all-reduce bf16 sum rounds after each add (ties to even)",
          "%s, sum %.9g, expected 1", got(r).c_str(), sum);
}

static void test_all_reduce_other_types(ncclComm_t comm) {
    const size_t count = 101;
    std::vector<int32_t> ints(count);
    std::vector<uint8_t> bytes(count);
    std::vector<double> doubles(count);
    for (size_t i = 0; i < count; i++) {
        ints[i] = static_cast<int32_t>(input(300, g_rank, i) * 1000.0f);
        bytes[i] = static_cast<uint8_t>(200 + g_rank * 7 + i);
        doubles[i] = static_cast<double>(input(301, g_rank, i)) / 3.0;
    }
    Device<int32_t> i_sum(ints), i_avg(ints);
    Device<uint8_t> u8(bytes);
    Device<double> f64(doubles);
    ncclResult_t r = ncclAllReduce(i_sum.p, i_sum.p, count, ncclInt32, ncclSum, comm, 0);
    ncclResult_t r_avg = ncclAllReduce(i_avg.p, i_avg.p, count, ncclInt, ncclAvg, comm, 0);
    ncclResult_t r_u8 = ncclAllReduce(u8.p, u8.p, count, ncclUint8, ncclSum, comm, 0);
    ncclResult_t r_f64 = ncclAllReduce(f64.p, f64.p, count, ncclDouble, ncclSum, comm, 0);
    std::vector<int32_t> sum(count), avg(count);
    std::vector<uint8_t> wrapped(count);
    std::vector<double> dsum(count);
    for (size_t i = 0; i < count; i++) {
        int64_t s = 0;
        unsigned u = 0;
        double d = 0.0;
        for (int k = 0; k < g_n; k++) {
            s += static_cast<int32_t>(input(300, k, i) * 1000.0f);
            u += static_cast<uint8_t>(200 + k * 7 + i);
            d = k == 0 ? static_cast<double>(input(301, k, i)) / 3.0 : d + static_cast<double>(input(301, k, i)) / 3.0;
        }
        sum[i] = static_cast<int32_t>(s);
        avg[i] = static_cast<int32_t>(s / g_n);  // C++ division truncates, as the harness's does
        wrapped[i] = static_cast<uint8_t>(u % 256);
        dsum[i] = d;
    }
    check(r == ncclSuccess && first_difference(i_sum.host(), sum) < 0, "all-reduce int32 sum", "%s", got(r).c_str());
    check(r_avg == ncclSuccess && first_difference(i_avg.host(), avg) < 0, "all-reduce int32 avg: sum, then divide",
          "%s", got(r_avg).c_str());
    check(r_u8 == ncclSuccess && first_difference(u8.host(), wrapped) < 0, "all-reduce uint8 sum wraps", "%s",
          got(r_u8).c_str());
    check(r_f64 == ncclSuccess && first_difference(f64.host(), dsum) < 0, "all-reduce fp64 sum in fp64", "%s",
          got(r_f64).c_str());
}

static void test_all_reduce(ncclComm_t comm) {
    const struct {
        ncclRedOp_t op;
        const char* name;
    } ops[] = {{ncclSum, "sum"}, {ncclAvg, "avg"}, {ncclMax, "max"}, {ncclMin, "min"}, {ncclProd, "prod"}};
    for (const auto& o : ops) {
        test_all_reduce_f32(comm, o.op, o.name, 1001, false);
        test_all_reduce_f32(comm, o.op, o.name, 777, true);
    }
    for (const auto& o : ops) {
        if (o.op == ncclProd) { continue; }  // the reference has no bf16 product; fp32's covers the op
        test_all_reduce_bf16(comm, o.op, o.name, 1001, false);
        test_all_reduce_bf16(comm, o.op, o.name, 513, true);
    }
    test_all_reduce_bf16_rounds_each_add(comm);
    test_all_reduce_other_types(comm);
}

// An all-reduce of what a kernel wrote, on a stream: the harness's launches and NCCL together.
static void test_kernel_then_all_reduce(ncclComm_t comm) {
    const int count = 300;
    cudaStream_t stream;
    cudaCheck(cudaStreamCreate(&stream));
    Device<float> x(count);
    LAUNCH(fill_kernel, dim3((count + 127) / 128), dim3(128), 0, stream)(x.p, count, g_rank);
    cudaCheckLaunch();
    const ncclResult_t r = ncclAllReduce(x.p, x.p, count, ncclFloat, ncclSum, comm, stream);
    cudaCheck(cudaStreamSynchronize(stream));
    const std::vector<float> result = x.host();
    bool ok = true;
    for (int i = 0; i < count; i++) {
        float expected = 0.0f;
        for (int k = 0; k < g_n; k++) { expected = k == 0 ? k + 0.5f * i : expected + (k + 0.5f * i); }
        ok = ok && result[i] == expected;
    }
    check(r == ncclSuccess && ok, "all-reduce on a stream of what a kernel wrote", "%s", got(r).c_str());
    cudaCheck(cudaStreamDestroy(stream));
}

// On a non-blocking stream a collective is deferred until something waits for the stream:
// read before that, its recvbuff holds the old contents (as it may on a GPU); an event
// recorded on the stream before the collective does not wait for it, one recorded after does.
static void test_non_blocking_stream(ncclComm_t comm) {
    const int count = 300;
    cudaStream_t stream;
    cudaEvent_t before, after;
    cudaCheck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaCheck(cudaEventCreateWithFlags(&before, cudaEventDisableTiming));
    cudaCheck(cudaEventCreateWithFlags(&after, cudaEventDisableTiming));
    Device<float> x(std::vector<float>(count, static_cast<float>(g_rank + 1))), y(std::vector<float>(count, -1.0f));
    const float sum = static_cast<float>(g_n * (g_n + 1) / 2);
    auto all = [&](float value) {
        const std::vector<float> h = y.host();
        return std::all_of(h.begin(), h.end(), [value](float v) { return v == value; });
    };
    cudaCheck(cudaEventRecord(before, stream));
    const ncclResult_t r = ncclAllReduce(x.p, y.p, count, ncclFloat, ncclSum, comm, stream);
    const bool untouched = all(-1.0f);
    cudaCheck(cudaStreamWaitEvent(nullptr, before, 0));
    const bool still = all(-1.0f);
    cudaCheck(cudaEventRecord(after, stream));
    cudaCheck(cudaStreamWaitEvent(nullptr, after, 0));
    check(r == ncclSuccess && untouched && still && all(sum),
          "a non-blocking stream's all-reduce runs when an event recorded after it is waited for",
          "%s; untouched before any wait %d, after waiting for an earlier event %d", got(r).c_str(), untouched, still);
    const ncclResult_t r2 = ncclAllReduce(y.p, y.p, count, ncclFloat, ncclSum, comm, stream);
    cudaCheck(cudaStreamSynchronize(stream));
    check(r2 == ncclSuccess && all(sum * g_n), "... and when the stream is synchronized", "%s", got(r2).c_str());
    cudaCheck(cudaEventDestroy(before));
    cudaCheck(cudaEventDestroy(after));
    cudaCheck(cudaStreamDestroy(stream));
}

// ----------------------------------------------------------------------------
// reduce-scatter, all-gather, broadcast

static void test_reduce_scatter_f32(ncclComm_t comm, size_t recvcount, bool in_place) {
    const std::vector<std::vector<float>> in = f32_inputs(400, recvcount * g_n);
    const std::vector<float> full = reduce_f32(in, ncclSum);
    const std::vector<float> expected(full.begin() + g_rank * recvcount, full.begin() + (g_rank + 1) * recvcount);
    Device<float> send(in[g_rank]), out(recvcount);
    float* recv = in_place ? send.p + g_rank * recvcount : out.p;
    const ncclResult_t r = ncclReduceScatter(send.p, recv, recvcount, ncclFloat32, ncclSum, comm, 0);
    std::vector<float> result(recvcount);
    cudaCheck(cudaMemcpy(result.data(), recv, recvcount * sizeof(float), cudaMemcpyDeviceToHost));
    const long bad = first_difference(result, expected);
    char name[128];
    snprintf(name, sizeof(name), "reduce-scatter fp32 sum, recvcount %zu, %s", recvcount,
             in_place ? "in place (recvbuff = sendbuff + rank*recvcount)" : "out of place");
    check(r == ncclSuccess && bad < 0, name, "%s, first difference at %ld", got(r).c_str(), bad);
}

static void test_reduce_scatter_bf16_avg(ncclComm_t comm) {
    const size_t recvcount = 129;
    const std::vector<std::vector<uint16_t>> in = bf16_inputs(401, recvcount * g_n);
    const std::vector<uint16_t> full = reduce_bf16(in, ncclAvg);
    const std::vector<uint16_t> expected(full.begin() + g_rank * recvcount, full.begin() + (g_rank + 1) * recvcount);
    Device<uint16_t> send(in[g_rank]), out(recvcount);
    const ncclResult_t r = ncclReduceScatter(send.p, out.p, recvcount, ncclBfloat16, ncclAvg, comm, 0);
    const long bad = first_difference(out.host(), expected);
    check(r == ncclSuccess && bad < 0, "reduce-scatter bf16 avg, recvcount 129", "%s, first difference at %ld",
          got(r).c_str(), bad);
}

// Rank r's block is r * 100000 + i, so that a block in the wrong place shows.
static std::vector<int32_t> gather_block(int rank, size_t count) {
    std::vector<int32_t> block(count);
    for (size_t i = 0; i < count; i++) { block[i] = rank * 100000 + static_cast<int32_t>(i); }
    return block;
}

static void test_all_gather(ncclComm_t comm, bool in_place) {
    const size_t sendcount = 257;
    std::vector<int32_t> expected;
    for (int r = 0; r < g_n; r++) {
        const std::vector<int32_t> block = gather_block(r, sendcount);
        expected.insert(expected.end(), block.begin(), block.end());
    }
    Device<int32_t> recv(sendcount * g_n), separate(gather_block(g_rank, sendcount));
    int32_t* send = separate.p;
    if (in_place) {
        send = recv.p + g_rank * sendcount;
        recv.upload(gather_block(g_rank, sendcount), g_rank * sendcount);
    }
    const ncclResult_t r = ncclAllGather(send, recv.p, sendcount, ncclInt32, comm, 0);
    const long bad = first_difference(recv.host(), expected);
    check(r == ncclSuccess && bad < 0,
          in_place ? "all-gather int32, sendcount 257, in place (sendbuff = recvbuff + rank*sendcount)"
                   : "all-gather int32, sendcount 257, out of place: block r from rank r",
          "%s, first difference at %ld", got(r).c_str(), bad);
}

static void test_broadcast(ncclComm_t comm, int root, bool in_place) {
    const size_t count = 999;
    const std::vector<std::vector<float>> in = f32_inputs(500 + root, count);
    Device<float> buf(in[g_rank]), out(count);
    float* recv = in_place ? buf.p : out.p;
    const float* send = g_rank == root || in_place ? buf.p : nullptr;  // ignored off the root
    const ncclResult_t r = ncclBroadcast(send, recv, count, ncclFloat32, root, comm, 0);
    const long bad = first_difference(in_place ? buf.host() : out.host(), in[root]);
    char name[128];
    snprintf(name, sizeof(name), "broadcast fp32 from rank %d, count 999, %s", root,
             in_place ? "in place" : "out of place (sendbuff NULL off the root)");
    check(r == ncclSuccess && bad < 0, name, "%s, first difference at %ld", got(r).c_str(), bad);
}

// Buffers larger than the 16 MiB pieces the harness exchanges them in: the pieces' offsets.
static void test_beyond_one_chunk(ncclComm_t comm) {
    const size_t count = (size_t{16} << 20) / sizeof(float) + 1001;
    test_all_reduce_f32(comm, ncclSum, "sum", count, true);
    test_reduce_scatter_f32(comm, count, false);
}

// ----------------------------------------------------------------------------
// groups, count 0

static void test_groups(ncclComm_t comm) {
    const size_t count = 64;
    const std::vector<std::vector<float>> in = f32_inputs(600, count);
    Device<float> a(in[g_rank]), b(count * g_n), c(in[g_rank]);
    ncclResult_t r[6];
    r[0] = ncclGroupStart();
    r[1] = ncclAllReduce(a.p, a.p, count, ncclFloat32, ncclSum, comm, 0);
    r[2] = ncclGroupStart();  // nested
    r[3] = ncclAllGather(c.p, b.p, count, ncclFloat32, comm, 0);
    r[4] = ncclGroupEnd();
    r[5] = ncclGroupEnd();
    std::vector<float> gathered;
    for (int k = 0; k < g_n; k++) { gathered.insert(gathered.end(), in[k].begin(), in[k].end()); }
    const bool all_ok = std::all_of(r, r + 6, [](ncclResult_t x) { return x == ncclSuccess; });
    check(all_ok && first_difference(a.host(), reduce_f32(in, ncclSum)) < 0 && first_difference(b.host(), gathered) < 0,
          "a (nested) group of an all-reduce and an all-gather");

    expect_errors(true);
    const ncclResult_t unmatched = ncclGroupEnd();
    ncclGroupStart();
    const ncclResult_t inside = ncclAllReduce(a.p, a.p, count, ncclNumTypes, ncclSum, comm, 0);
    const ncclResult_t after = ncclAllReduce(a.p, a.p, count, ncclFloat32, ncclMax, comm, 0);
    const ncclResult_t end = ncclGroupEnd();
    expect_errors(false);
    check(unmatched == ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart", "%s", got(unmatched).c_str());
    check(inside == ncclInvalidArgument && after == ncclSuccess && end == ncclInvalidArgument,
          "ncclGroupEnd returns the first error inside the group", "inside %s, after %s, end %s", result_name(inside),
          result_name(after), result_name(end));
    check(ncclGroupStart() == ncclSuccess && ncclGroupEnd() == ncclSuccess, "the next group starts without error");
}

static void test_count_zero(ncclComm_t comm) {
    Device<float> buf(4);
    cudaCheck(cudaMemset(buf.p, 0xFF, 4 * sizeof(float)));
    const nccl_counters::Traffic before = nccl_counters::traffic().total();
    ncclResult_t r[5];
    r[0] = ncclAllReduce(buf.p, buf.p + 1, 0, ncclFloat32, ncclSum, comm, 0);
    r[1] = ncclReduceScatter(nullptr, nullptr, 0, ncclFloat32, ncclSum, comm, 0);
    r[2] = ncclAllGather(buf.p, buf.p, 0, ncclBfloat16, comm, 0);
    r[3] = ncclBroadcast(buf.p, buf.p + 2, 0, ncclFloat32, 0, comm, 0);
    r[4] = ncclAllReduce(nullptr, nullptr, 0, ncclBfloat16, ncclAvg, comm, 0);
    const std::vector<float> after = buf.host();
    uint32_t bits[4];
    memcpy(bits, after.data(), sizeof(bits));
    const nccl_counters::Traffic now = nccl_counters::traffic().total();
    check(std::all_of(r, r + 5, [](ncclResult_t x) { return x == ncclSuccess; }) &&
              std::all_of(bits, bits + 4, [](uint32_t b) { return b == 0xFFFFFFFFu; }) && now.calls == before.calls &&
              now.bytes_sent == before.bytes_sent,
          "count 0 is a no-op: success, nothing written, nothing counted");
}

// ----------------------------------------------------------------------------
// argument errors

// One call on every rank that must return `expected` on every rank, with a diagnosis naming `mentions`.
static void expect_error(const char* name, ncclResult_t r, ncclResult_t expected, const char* mentions) {
    const char* diagnosis = ncclGetLastError(nullptr);
    check(r == expected && strstr(diagnosis, mentions) != nullptr, name, "%s, expected %s mentioning '%s'",
          got(r).c_str(), result_name(expected), mentions);
}

static void test_argument_errors(ncclComm_t comm) {
    const size_t count = 10;
    std::vector<float> host(count * (g_n + 1), 1.0f);
    Device<float> a(std::vector<float>(count * (g_n + 1), 1.0f)), b(count * (g_n + 1));
    Device<float> small(count - 1);
    const ncclRedOp_t bad_op = static_cast<ncclRedOp_t>(7);
    expect_errors(true);
    expect_error("error: all-reduce from a host buffer",
                 ncclAllReduce(host.data(), b.p, count, ncclFloat32, ncclSum, comm, 0), ncclInvalidArgument, "sendbuff");
    expect_error("error: all-reduce into a host buffer",
                 ncclAllReduce(a.p, host.data(), count, ncclFloat32, ncclSum, comm, 0), ncclInvalidArgument, "recvbuff");
    expect_error("error: recvbuff smaller than the count",
                 ncclAllReduce(a.p, small.p, count, ncclFloat32, ncclSum, comm, 0), ncclInvalidArgument, "recvbuff");
    expect_error("error: all-reduce with recvbuff overlapping sendbuff, not equal",
                 ncclAllReduce(a.p, a.p + 1, count, ncclFloat32, ncclSum, comm, 0), ncclInvalidArgument, "overlap");
    expect_error("error: reduce-scatter with recvbuff at sendbuff + rank*recvcount + 1",
                 ncclReduceScatter(a.p, a.p + g_rank * count + 1, count, ncclFloat32, ncclSum, comm, 0),
                 ncclInvalidArgument, "recvbuff == sendbuff + rank*recvcount");
    expect_error("error: all-gather with sendbuff at recvbuff + rank*sendcount + 1",
                 ncclAllGather(b.p + g_rank * count + 1, b.p, count, ncclFloat32, comm, 0), ncclInvalidArgument,
                 "sendbuff == recvbuff + rank*sendcount");
    expect_error("error: datatype ncclNumTypes (not a type)",
                 ncclAllReduce(a.p, b.p, count, ncclNumTypes, ncclSum, comm, 0), ncclInvalidArgument,
                 "not an ncclDataType_t");
    expect_error("error: ncclFloat16 is not implemented", ncclAllReduce(a.p, b.p, count, ncclFloat16, ncclSum, comm, 0),
                 ncclInvalidArgument, "not implemented");
    expect_error("error: op 7", ncclAllReduce(a.p, b.p, count, ncclFloat32, bad_op, comm, 0), ncclInvalidArgument,
                 "ncclRedOp_t");
    expect_error("error: broadcast root out of range", ncclBroadcast(a.p, b.p, count, ncclFloat32, g_n, comm, 0),
                 ncclInvalidArgument, "root");
    expect_error("error: NULL comm", ncclAllReduce(a.p, b.p, count, ncclFloat32, ncclSum, nullptr, 0),
                 ncclInvalidArgument, "live communicator");
    expect_error("error: a stream that does not exist",
                 ncclAllReduce(a.p, b.p, count, ncclFloat32, ncclSum, comm, reinterpret_cast<cudaStream_t>(&host)),
                 ncclUnhandledCudaError, "stream");
    if (g_n > 1) {
        // one rank's bad argument: it reports it, the others ncclRemoteError, nobody hangs
        const ncclResult_t r = ncclAllReduce(g_rank == 0 ? host.data() : a.p, b.p, count, ncclFloat32, ncclSum, comm, 0);
        const ncclResult_t expected = g_rank == 0 ? ncclInvalidArgument : ncclRemoteError;
        check(r == expected, "error: a host buffer on rank 0 only: ncclInvalidArgument there, ncclRemoteError elsewhere",
              "%s, expected %s", got(r).c_str(), result_name(expected));
        expect_error("error: ranks passing different counts: ncclInvalidUsage on every rank",
                     ncclAllReduce(a.p, b.p, g_rank == 0 ? count : count - 1, ncclFloat32, ncclSum, comm, 0),
                     ncclInvalidUsage, "the ranks' calls differ");
        expect_error("error: ranks calling different collectives: ncclInvalidUsage on every rank",
                     g_rank == 0 ? ncclAllReduce(a.p, b.p, count, ncclFloat32, ncclSum, comm, 0)
                                 : ncclBroadcast(a.p, b.p, count, ncclFloat32, 0, comm, 0),
                     ncclInvalidUsage, "the ranks' calls differ");
    }
    expect_errors(false);
    // after all that, the communicator still works
    const std::vector<std::vector<float>> in = f32_inputs(700, count);
    a.upload(in[g_rank]);
    const ncclResult_t r = ncclAllReduce(a.p, b.p, count, ncclFloat32, ncclSum, comm, 0);
    check(r == ncclSuccess && first_difference(b.host(count), reduce_f32(in, ncclSum)) < 0,
          "the communicator works after the errors", "%s", got(r).c_str());
}

// ----------------------------------------------------------------------------
// traffic counters

static bool traffic_is(const nccl_counters::Traffic& t, uint64_t calls, uint64_t bytes) {
    return t.calls == calls && t.bytes_sent == bytes && t.bytes_received == bytes;
}

static void test_traffic(ncclComm_t comm) {
    ncclComm_t other = nullptr;
    check(make_comm(&other) == ncclSuccess, "a second communicator");
    nccl_counters::traffic() = {};
    nccl_counters::traffic(comm) = {};
    const uint64_t n = static_cast<uint64_t>(g_n);
    Device<float> f(std::vector<float>(1000 * n, 1.0f)), g(1000 * n);
    Device<uint16_t> h(std::vector<uint16_t>(100 * n, 0x3f80));
    Device<double> d(std::vector<double>(50, 2.0));
    ncclAllReduce(f.p, g.p, 1000, ncclFloat32, ncclSum, comm, 0);                 // 4000 bytes
    ncclAllReduce(f.p, g.p, 1000, ncclFloat32, ncclSum, comm, 0);
    ncclReduceScatter(f.p, g.p, 100, ncclFloat32, ncclSum, comm, 0);              // full buffer 400n bytes
    expect_errors(true);
    ncclAllGather(h.p + g_rank * 100, h.p, 100, ncclNumTypes, comm, 0);  // refused
    expect_errors(false);
    ncclAllGather(h.p + g_rank * 100, h.p, 100, ncclBfloat16, comm, 0);          // full buffer 200n bytes
    ncclBroadcast(d.p, d.p, 50, ncclFloat64, 0, comm, 0);                          // 400 bytes
    ncclAllReduce(f.p, g.p, 10, ncclFloat32, ncclMax, other, 0);                   // 40 bytes, other comm
    const nccl_counters::Counters& mine = nccl_counters::traffic(comm);
    const nccl_counters::Counters& all = nccl_counters::traffic();
    const uint64_t all_reduce = 2 * (n - 1) * 4000 / n;
    check(traffic_is(mine.all_reduce, 2, 2 * all_reduce), "traffic: all-reduce sends 2(n-1)/n of the buffer",
          "calls %llu, sent %llu, received %llu, expected 2 and %llu", (unsigned long long)mine.all_reduce.calls,
          (unsigned long long)mine.all_reduce.bytes_sent, (unsigned long long)mine.all_reduce.bytes_received,
          (unsigned long long)(2 * all_reduce));
    check(traffic_is(mine.reduce_scatter, 1, (n - 1) * 400), "traffic: reduce-scatter sends (n-1)/n of the full buffer",
          "sent %llu", (unsigned long long)mine.reduce_scatter.bytes_sent);
    check(traffic_is(mine.all_gather, 1, (n - 1) * 200),
          "traffic: all-gather sends (n-1)/n of the full buffer, a refused call counts nothing", "calls %llu, sent %llu",
          (unsigned long long)mine.all_gather.calls, (unsigned long long)mine.all_gather.bytes_sent);
    check(traffic_is(mine.broadcast, 1, n > 1 ? 400 : 0), "traffic: broadcast sends the buffer", "sent %llu",
          (unsigned long long)mine.broadcast.bytes_sent);
    const uint64_t other_bytes = 2 * (n - 1) * 40 / n;
    check(traffic_is(nccl_counters::traffic(other).total(), 1, other_bytes) &&
              traffic_is(all.total(), 6, 2 * all_reduce + (n - 1) * 600 + (n > 1 ? 400 : 0) + other_bytes),
          "traffic: per communicator, and the process's total over both");
    check(ncclCommAbort(other) == ncclSuccess, "ncclCommAbort");
}

// ----------------------------------------------------------------------------
// the sanitizer build: a collective reads and writes device memory as a kernel does

#ifdef CUDA_HARNESS_SANITIZE
static void test_sanitizer(ncclComm_t comm) {
    namespace san = cuda_harness::san;
    const size_t count = 40;
    Device<float> unwritten(count), out(count), gathered(count * g_n);
    check(san::race_reports() + san::init_reports() == 0, "sanitizer: no report from the tests before",
          "last: %s", san::last_report().c_str());
    const unsigned long before = san::init_reports();
    if (g_world_rank == 0) {
        printf("sanitizer: the next report is expected, once per rank\n");
        fflush(stdout);
    }
    MPI_Barrier(MPI_COMM_WORLD);  // the note before the reports
    san::record(true);
    const ncclResult_t r = ncclAllReduce(unwritten.p, out.p, count, ncclFloat32, ncclSum, comm, 0);
    san::record(false);
    const san::Op op = san::ops().back();
    check(r == ncclSuccess && san::init_reports() == before + 1 &&
              san::last_report().find("ncclAllReduce") != std::string::npos &&
              san::last_report().find("the send buffer") != std::string::npos,
          "sanitizer: initcheck reports an all-reduce of a send buffer nothing wrote", "%lu reports, last: %s",
          san::init_reports() - before, san::last_report().c_str());
    check(op.name == "ncclAllReduce" && op.kind == san::OpKind::Kernel && op.bytes_read == count * 4 &&
              op.bytes_written == count * 4 && op.sectors_read == (count * 4 + 31) / 32,
          "sanitizer: the all-reduce is counted as one launch with its bytes", "op %s, read %llu, written %llu",
          op.name.c_str(), (unsigned long long)op.bytes_read, (unsigned long long)op.bytes_written);
    out.host();  // the copy reads only what the all-reduce wrote
    check(san::init_reports() == before + 1, "sanitizer: the receive buffer is written");
    Device<float> block(std::vector<float>(count, 1.0f));
    san::record(true);
    ncclAllGather(block.p, gathered.p, count, ncclFloat32, comm, 0);
    san::record(false);
    const san::Op gather = san::ops().back();
    check(gather.name == "ncclAllGather" && gather.bytes_read == count * 4 && gather.bytes_written == count * 4 * g_n &&
              san::init_reports() == before + 1,
          "sanitizer: an all-gather reads its block and writes n blocks");
    san::forget_reports();  // the report above was expected
}
#endif

// ----------------------------------------------------------------------------

int main(int argc, char** argv) {
    const bool refused_before_init = init_refused_without_mpi();
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_n);
    g_rank = g_n - 1 - g_world_rank;
    check(refused_before_init, "init before MPI_Init: ncclInvalidUsage, with the hint to call MPI_Init");

    test_versions();
    ncclComm_t comm = nullptr;
    const ncclResult_t r = make_comm(&comm);
    check(r == ncclSuccess, "ncclCommInitRank with an id from ncclGetUniqueId, sent by MPI_Bcast", "%s", got(r).c_str());
    if (r != ncclSuccess) { MPI_Abort(MPI_COMM_WORLD, 1); }
    test_comm_queries(comm);
    test_init_errors();

    test_all_reduce(comm);
    test_kernel_then_all_reduce(comm);
    test_non_blocking_stream(comm);
    test_reduce_scatter_f32(comm, 333, false);
    test_reduce_scatter_f32(comm, 333, true);
    test_reduce_scatter_bf16_avg(comm);
    test_all_gather(comm, false);
    test_all_gather(comm, true);
    test_broadcast(comm, g_n - 1, false);
    test_broadcast(comm, 0, true);
    test_beyond_one_chunk(comm);
    test_groups(comm);
    test_count_zero(comm);
    test_argument_errors(comm);
    test_traffic(comm);
#ifdef CUDA_HARNESS_SANITIZE
    test_sanitizer(comm);
#endif

    check(ncclCommDestroy(comm) == ncclSuccess && ncclCommDestroy(nullptr) == ncclSuccess, "ncclCommDestroy");
    int count = 0;
    expect_errors(true);
    const ncclResult_t destroyed = ncclCommCount(comm, &count);
    expect_errors(false);
    check(destroyed == ncclInvalidArgument, "a destroyed communicator is refused", "%s", got(destroyed).c_str());

    if (g_world_rank == 0) { printf("%d passed, %d failed\n", g_passed, g_failed); }
    MPI_Finalize();
    return g_failed == 0 ? 0 : 1;
}
