// harness_nccl.h: the NCCL API (nccl.h of NCCL 2.28) for the CPU harness, over MPI between
// processes, so that a multi-rank CUDA program runs as `mpirun -np 2 ./prog` without a GPU.
//
// cuda_harness.h includes it only with -DCUDA_HARNESS_NCCL; such a build compiles and links
// with MPI (`mpicxx --showme:compile`, `mpicxx --showme:link`). Types, enums, values, macros
// and signatures are nccl.h's; the collectives and ncclCommInitRank take two more, defaulted,
// arguments (the caller's file and line, for diagnoses and sanitizer reports), as the
// harness's cuBLAS does.
//
// Semantics:
//   rendezvous  as with NCCL: one rank calls ncclGetUniqueId (a magic marker and random
//               bytes), the program hands that id to every rank itself (MPI_Bcast, a shared
//               file), and every rank calls ncclCommInitRank(&comm, nranks, id, rank). MPI must
//               be initialized (else ncclInvalidUsage), and nranks must be the size of
//               MPI_COMM_WORLD: a communicator spans every process. The ranks check together
//               (one MPI_Allgather) that all passed the same id and nranks and that the ranks
//               are 0..nranks-1, once each; the communicator is MPI_Comm_split(MPI_COMM_WORLD,
//               0, rank), so that its MPI ranks are the NCCL ranks.
//   execution   a collective runs to its end during the call, as every stream operation of the
//               harness does (harness_runtime.h), except on a stream created with
//               cudaStreamNonBlocking: there this rank's checks run at the call and the rest
//               (agreement, data, counters) when something waits for the stream (an event
//               recorded on it after the call, cudaStreamSynchronize, cudaDeviceSynchronize,
//               cudaFree, ncclCommDestroy, other work on that stream), which is one order a GPU
//               may run it in: a result read before waiting for the stream is the old contents,
//               as on a GPU it may be. The error of such a deferred collective is the
//               communicator's asynchronous error (ncclCommGetAsyncError). Every rank must wait
//               at the same points (a rank that waits alone blocks until the others wait too;
//               on a GPU NCCL would progress on its own). ncclGroupStart/ncclGroupEnd nest and
//               collect errors: the calls between them have already run (or been deferred) when
//               ncclGroupEnd returns the first error among them. Count 0 is a no-op, as in NCCL
//               (nothing is exchanged or counted).
//   agreement   before any data moves, the ranks exchange what each was called with (the
//               collective, count, datatype, op, root) and whether its arguments passed the
//               checks. A rank whose arguments fail returns its error, every other rank
//               ncclRemoteError; ranks that disagree (rank 0 all-reduces 12 floats, rank 1 10)
//               all return ncclInvalidUsage naming both calls. On a GPU both hang or corrupt
//               data.
//   arguments   NCCL's rules: buffers inside memory a GPU could read (cudaMalloc, managed or
//               pinned host memory: the check harness_cublas.h makes of its matrices); in place
//               exactly where NCCL allows it (all-reduce and broadcast recvbuff == sendbuff,
//               reduce-scatter recvbuff == sendbuff + rank*recvcount, all-gather sendbuff ==
//               recvbuff + rank*sendcount) and no other overlap; a broadcast's root in
//               [0, nranks), its sendbuff read on the root only. Else ncclInvalidArgument.
//   reductions  deterministic, bit-identical on every rank: each rank obtains every rank's
//               contribution (MPI_Allgather of the bytes; for a reduce-scatter MPI_Alltoall of
//               the blocks) and reduces them in rank order 0, 1, ..., n-1 in the element type's
//               arithmetic: fp32 in fp32, fp64 in fp64, integers wrapping; bf16 widened to fp32
//               for each operation and rounded back to bf16 (to nearest even) after it, as each
//               hop of a ring rounds. ncclAvg on floating types multiplies each contribution by
//               1/nranks (rounded to the type) first, then sums, as NCCL's pre-multiplied sum
//               does; on integers it sums, then divides (truncating). ncclMax and ncclMin prefer
//               a number to a NaN (fmaxf, __hmax). NCCL's own order (ring chunks) is not rank
//               order: results agree with a GPU's up to rounding.
//   types       ncclInt8 (ncclChar), ncclUint8, ncclInt32 (ncclInt), ncclUint32, ncclInt64,
//               ncclUint64, ncclFloat32 (ncclFloat), ncclFloat64 (ncclDouble), ncclBfloat16.
//               ncclFloat16 and the fp8 types return ncclInvalidArgument (the harness has no
//               half type). Ops ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg (no
//               ncclRedOpCreatePreMulSum).
//   errors      returned as ncclResult_t, never fatal. The one-line diagnosis is printed
//               ("cuda harness: <file>:<line>: <call> on rank r of n: ...", silenced by
//               CUDA_HARNESS_QUIET=1) and returned by ncclGetLastError. A failed MPI call gives
//               ncclSystemError. A dead rank ends the job from mpirun (MPI_COMM_WORLD's
//               default error handler aborts), as a dead GPU rank hangs or aborts NCCL.
//   counters    cuda_harness::nccl::traffic() (this process) and traffic(comm): per collective
//               the calls and the bytes a rank sends and receives with NCCL's ring algorithms,
//               nccl-tests' bus bytes: all-reduce 2(n-1)/n of the buffer (rounded down),
//               reduce-scatter and all-gather (n-1)/n of the full n-block buffer, broadcast the
//               buffer (n > 1). In the sanitizer build a collective is also what a kernel is to
//               initcheck and the counters (on a GPU it is one): its send buffer is read
//               (initcheck reports bytes nothing wrote), its receive buffer is marked written,
//               and one launch named after the call is counted with those bytes.
#pragma once

#ifndef CUDA_HARNESS_NCCL
#error "harness_nccl.h is for builds with -DCUDA_HARNESS_NCCL (cuda_harness.h includes it then)"
#endif

// Only MPI's C API is used: OpenMPI's and MPICH's deprecated C++ bindings stay out.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "harness_bf16.h"
#include "harness_runtime.h"
#include "harness_util.h"

CUDA_HARNESS_UNTRACED_BEGIN

// ----------------------------------------------------------------------------
// types, with the real names and values (nccl.h of NCCL 2.28.9)

#define NCCL_MAJOR 2
#define NCCL_MINOR 28
#define NCCL_PATCH 9
#define NCCL_SUFFIX ""
#define NCCL_VERSION_CODE 22809
#define NCCL_VERSION(X, Y, Z) (((X) <= 2 && (Y) <= 8) ? (X) * 1000 + (Y) * 100 + (Z) : (X) * 10000 + (Y) * 100 + (Z))

typedef struct ncclComm* ncclComm_t;
#define NCCL_COMM_NULL NULL

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
    char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
    ncclNumResults = 8
} ncclResult_t;

typedef enum { ncclNumOps_dummy = 5 } ncclRedOp_dummy_t;
typedef enum {
    ncclSum = 0,
    ncclProd = 1,
    ncclMax = 2,
    ncclMin = 3,
    ncclAvg = 4,
    ncclNumOps = 5,
    ncclMaxRedOp = 0x7fffffff >> (32 - 8 * sizeof(ncclRedOp_dummy_t))
} ncclRedOp_t;

typedef enum {
    ncclInt8 = 0,
    ncclChar = 0,
    ncclUint8 = 1,
    ncclInt32 = 2,
    ncclInt = 2,
    ncclUint32 = 3,
    ncclInt64 = 4,
    ncclUint64 = 5,
    ncclFloat16 = 6,
    ncclHalf = 6,
    ncclFloat32 = 7,
    ncclFloat = 7,
    ncclFloat64 = 8,
    ncclDouble = 8,
    ncclBfloat16 = 9,
    ncclFloat8e4m3 = 10,
    ncclFloat8e5m2 = 11,
    ncclNumTypes = 12
} ncclDataType_t;

namespace cuda_harness {
namespace nccl {

// ----------------------------------------------------------------------------
// traffic counters, for a cost model of the communication

// One collective's successful calls (count > 0), and the bytes one rank sent and received for
// them with NCCL's ring algorithms.
struct Traffic {
    uint64_t calls = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
};

struct Counters {
    Traffic all_reduce, reduce_scatter, all_gather, broadcast;

    Traffic total() const {
        Traffic t;
        for (const Traffic* c : {&all_reduce, &reduce_scatter, &all_gather, &broadcast}) {
            t.calls += c->calls;
            t.bytes_sent += c->bytes_sent;
            t.bytes_received += c->bytes_received;
        }
        return t;
    }
};

// Every communicator of this process together; a program resets it with `traffic() = {}`.
// Never destroyed, so that it stays usable while the program exits.
inline Counters& traffic() {
    static Counters* counters = new Counters;
    return *counters;
}

}  // namespace nccl
}  // namespace cuda_harness

// A communicator: an MPI communicator whose ranks are the NCCL ranks.
struct ncclComm {
    MPI_Comm mpi;
    int rank;
    int nranks;
    cuda_harness::nccl::Counters traffic;
    ncclResult_t async_error = ncclSuccess; // the first error of a deferred collective (ncclCommGetAsyncError)
};

namespace cuda_harness {
namespace nccl {

// One communicator's counters.
inline Counters& traffic(ncclComm_t comm) { return comm->traffic; }

// ----------------------------------------------------------------------------
// diagnoses and the last error

inline thread_local std::string last_error;

// "test_nccl.cu:42: ncclAllReduce on rank 1 of 3": where a diagnosis comes from (rank < 0: unknown).
inline std::string site(const char* api, const char* file, int line, int rank, int nranks) {
    const char* slash = strrchr(file, '/');
    std::string where = std::string(slash != nullptr ? slash + 1 : file) + ":" + std::to_string(line) + ": " + api;
    if (rank >= 0) { where += " on rank " + std::to_string(rank) + " of " + std::to_string(nranks); }
    return where;
}

// Explains an error about to be returned: printed as a harness diagnosis, kept for ncclGetLastError.
__attribute__((format(printf, 3, 4))) inline ncclResult_t fail(ncclResult_t result, const std::string& where,
                                                               const char* fmt, ...) {
    char text[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    last_error = where + ": " + text;
    diagnose("%s", last_error.c_str());
    return result;
}

// ----------------------------------------------------------------------------
// groups: nesting and the first error inside them

inline thread_local int group_depth = 0;
inline thread_local ncclResult_t group_error = ncclSuccess;

// Every call returns through this, so that a failure inside a group is also ncclGroupEnd's.
inline ncclResult_t record(ncclResult_t result) {
    if (result != ncclSuccess && group_depth > 0 && group_error == ncclSuccess) { group_error = result; }
    return result;
}

// ----------------------------------------------------------------------------
// MPI

inline bool mpi_usable() {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    return initialized != 0 && finalized == 0;
}

inline ncclResult_t mpi_failure(const std::string& where, const char* call, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    return fail(ncclSystemError, where, "%s failed: %s", call, text);
}

// ----------------------------------------------------------------------------
// communicators: live handles, the unique id, the members' agreement

inline HandleSet<ncclComm_t>& live_comms() {
    static HandleSet<ncclComm_t>* set = new HandleSet<ncclComm_t>;
    return *set;
}

// What ncclGetUniqueId writes first, so that an id from elsewhere (zeros, garbage) is refused.
constexpr char kIdMagic[16] = "harness-nccl-id";

// What each process passed to ncclCommInitRank.
struct Member {
    int32_t world_rank;
    int32_t nranks;
    int32_t rank;
    char id[NCCL_UNIQUE_ID_BYTES];
};

// NCCL's requirements of the members, judged on the same table by every process, so that all
// reach the same verdict.
inline ncclResult_t check_members(const std::vector<Member>& all, int world_size, const std::string& where) {
    const Member& first = all[0];
    for (const Member& m : all) {
        if (m.nranks != first.nranks) {
            return fail(ncclInvalidArgument, where,
                        "the processes disagree on nranks: MPI rank %d passed %d, MPI rank %d passed %d",
                        first.world_rank, first.nranks, m.world_rank, m.nranks);
        }
    }
    if (first.nranks != world_size) {
        return fail(ncclInvalidArgument, where,
                    "nranks is %d but MPI_COMM_WORLD has %d processes (hint: a communicator of the harness spans "
                    "every process: start with mpirun -np %d, or pass nranks = the world size)",
                    first.nranks, world_size, first.nranks);
    }
    if (memcmp(first.id, kIdMagic, sizeof(kIdMagic)) != 0) {
        return fail(ncclInvalidArgument, where,
                    "the ncclUniqueId is not from ncclGetUniqueId (hint: call ncclGetUniqueId on one rank and send "
                    "its id to every rank, e.g. with MPI_Bcast)");
    }
    std::vector<int> holder(all.size(), -1);
    for (const Member& m : all) {
        if (memcmp(m.id, first.id, NCCL_UNIQUE_ID_BYTES) != 0) {
            return fail(ncclInvalidArgument, where,
                        "MPI rank %d passed another ncclUniqueId than MPI rank %d (hint: call ncclGetUniqueId on one "
                        "rank only and send its id to every rank)", m.world_rank, first.world_rank);
        }
        if (m.rank < 0 || m.rank >= m.nranks || holder[m.rank] >= 0) {
            return fail(ncclInvalidArgument, where, "MPI rank %d passed rank %d: the ranks must be 0..%d, each once%s",
                        m.world_rank, m.rank, m.nranks - 1,
                        m.rank >= 0 && m.rank < m.nranks ? " (another process passed it too)" : "");
        }
        holder[m.rank] = m.world_rank;
    }
    return ncclSuccess;
}

// Every process's arguments, exchanged over `mpi` (all of MPI_COMM_WORLD), then judged.
inline ncclResult_t agree_members(MPI_Comm mpi, int nranks, const ncclUniqueId& id, int rank, const std::string& where) {
    int world_rank = 0, world_size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(mpi, &world_size);
    Member mine{world_rank, nranks, rank, {}};
    memcpy(mine.id, id.internal, NCCL_UNIQUE_ID_BYTES);
    std::vector<Member> all(static_cast<size_t>(world_size));
    const int rc = MPI_Allgather(&mine, sizeof(Member), MPI_BYTE, all.data(), sizeof(Member), MPI_BYTE, mpi);
    if (rc != MPI_SUCCESS) { return mpi_failure(where, "MPI_Allgather", rc); }
    return check_members(all, world_size, where);
}

// ----------------------------------------------------------------------------
// element types and their arithmetic

inline size_t type_bytes(ncclDataType_t type) {
    switch (type) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    default: return 0;  // ncclFloat16, fp8, or not an ncclDataType_t
    }
}

inline std::string type_name(int type) {
    static const char* const names[] = {"ncclInt8", "ncclUint8", "ncclInt32", "ncclUint32", "ncclInt64", "ncclUint64",
                                        "ncclFloat16", "ncclFloat32", "ncclFloat64", "ncclBfloat16",
                                        "ncclFloat8e4m3", "ncclFloat8e5m2"};
    return type >= 0 && type < ncclNumTypes ? names[type] : "datatype " + std::to_string(type);
}

inline std::string op_name(int op) {
    static const char* const names[] = {"ncclSum", "ncclProd", "ncclMax", "ncclMin", "ncclAvg"};
    return op >= 0 && op < ncclNumOps ? names[op] : "op " + std::to_string(op);
}

template <typename T>
struct Tag {
    using type = T;
};

// Calls f(Tag<T>{}) with the C++ type of a supported datatype (type_bytes(type) > 0).
template <typename F>
inline void with_type(ncclDataType_t type, F f) {
    switch (type) {
    case ncclInt8: f(Tag<int8_t>{}); break;
    case ncclUint8: f(Tag<uint8_t>{}); break;
    case ncclInt32: f(Tag<int32_t>{}); break;
    case ncclUint32: f(Tag<uint32_t>{}); break;
    case ncclInt64: f(Tag<int64_t>{}); break;
    case ncclUint64: f(Tag<uint64_t>{}); break;
    case ncclFloat32: f(Tag<float>{}); break;
    case ncclFloat64: f(Tag<double>{}); break;
    case ncclBfloat16: f(Tag<__nv_bfloat16>{}); break;
    default: break;
    }
}

template <typename T>
constexpr bool kIsBf16 = std::is_same_v<T, __nv_bfloat16>;

// Integers wrap (computed unsigned: signed overflow is undefined in C++, modular on a GPU).
template <typename T>
inline T add(T a, T b) {
    if constexpr (kIsBf16<T>) {
        return __float2bfloat16(__bfloat162float(a) + __bfloat162float(b));
    } else if constexpr (std::is_integral_v<T>) {
        using U = std::make_unsigned_t<T>;
        return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
    } else {
        return a + b;
    }
}

template <typename T>
inline T mul(T a, T b) {
    if constexpr (kIsBf16<T>) {
        return __float2bfloat16(__bfloat162float(a) * __bfloat162float(b));
    } else if constexpr (std::is_integral_v<T>) {
        using U = std::make_unsigned_t<T>;
        return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
    } else {
        return a * b;
    }
}

template <typename T>
inline bool is_nan(T x) {
    if constexpr (kIsBf16<T>) {
        return __hisnan(x);
    } else if constexpr (std::is_integral_v<T>) {
        return false;
    } else {
        return std::isnan(x);
    }
}

template <typename T>
inline bool less(T a, T b) {
    if constexpr (kIsBf16<T>) {
        return __bfloat162float(a) < __bfloat162float(b);
    } else {
        return a < b;
    }
}

// fmax's rule: a number wins over a NaN. The operand itself is returned, bits and all.
template <typename T>
inline T maximum(T a, T b) {
    if (is_nan(a)) { return b; }
    if (is_nan(b)) { return a; }
    return less(a, b) ? b : a;
}

template <typename T>
inline T minimum(T a, T b) {
    if (is_nan(a)) { return b; }
    if (is_nan(b)) { return a; }
    return less(b, a) ? b : a;
}

// 1/n in a floating type, rounded once: ncclAvg's pre-multiplier.
template <typename T>
inline T reciprocal(int n) {
    if constexpr (kIsBf16<T>) {
        return __double2bfloat16(1.0 / n);
    } else {
        return static_cast<T>(1.0 / n);
    }
}

// out[i] = combine(...combine(combine(pre(c_0[i]), pre(c_1[i])), pre(c_2[i]))..., pre(c_{n-1}[i])),
// contribution r at in + r * elems: the rank-order reduction, every step rounded to T.
template <typename T, typename Pre, typename Combine>
inline void fold(const T* in, int n, size_t elems, T* out, Pre pre, Combine combine) {
    for (size_t i = 0; i < elems; i++) { out[i] = pre(in[i]); }
    for (int r = 1; r < n; r++) {
        const T* c = in + static_cast<size_t>(r) * elems;
        for (size_t i = 0; i < elems; i++) { out[i] = combine(out[i], pre(c[i])); }
    }
}

template <typename T>
inline void reduce_rank_order(const T* in, int n, size_t elems, ncclRedOp_t op, T* out) {
    auto same = [](T x) { return x; };
    switch (op) {
    case ncclSum: fold(in, n, elems, out, same, add<T>); break;
    case ncclProd: fold(in, n, elems, out, same, mul<T>); break;
    case ncclMax: fold(in, n, elems, out, same, maximum<T>); break;
    case ncclMin: fold(in, n, elems, out, same, minimum<T>); break;
    case ncclAvg:
        if constexpr (std::is_integral_v<T>) {  // NCCL's sum, then divide
            fold(in, n, elems, out, same, add<T>);
            for (size_t i = 0; i < elems; i++) { out[i] = static_cast<T>(out[i] / n); }
        } else {  // NCCL's pre-multiplied sum
            const T scale = reciprocal<T>(n);
            fold(in, n, elems, out, [scale](T x) { return mul(x, scale); }, add<T>);
        }
        break;
    default: break;  // refused by check_call
    }
}

// n contributions of `elems` elements each, consecutive in `in`, reduced into `out`.
inline void reduce_bytes(ncclDataType_t type, ncclRedOp_t op, const void* in, int n, size_t elems, void* out) {
    with_type(type, [&](auto tag) {
        using T = typename decltype(tag)::type;
        reduce_rank_order(static_cast<const T*>(in), n, elems, op, static_cast<T*>(out));
    });
}

// ----------------------------------------------------------------------------
// one collective call

enum class Collective : int32_t { AllReduce, ReduceScatter, AllGather, Broadcast };

inline const char* collective_name(int kind) {
    static const char* const names[] = {"ncclAllReduce", "ncclReduceScatter", "ncclAllGather", "ncclBroadcast"};
    return kind >= 0 && kind < 4 ? names[kind] : "a collective";
}

inline bool reduces(Collective kind) { return kind == Collective::AllReduce || kind == Collective::ReduceScatter; }

// A collective's arguments. count: all-reduce's and broadcast's count, reduce-scatter's
// recvcount, all-gather's sendcount (what every rank must pass alike).
struct Call {
    Collective kind;
    const char* api;
    const void* send;
    void* recv;
    size_t count;
    ncclDataType_t type;
    ncclRedOp_t op;  // reductions only
    int root;        // broadcast only
    ncclComm_t comm;
    cudaStream_t stream;
    const char* file;
    int line;
};

// The bytes a rank reads from sendbuff and writes to recvbuff.
inline size_t send_bytes(const Call& c, size_t element) {
    switch (c.kind) {
    case Collective::ReduceScatter: return c.count * c.comm->nranks * element;
    case Collective::Broadcast: return c.comm->rank == c.root ? c.count * element : 0;
    default: return c.count * element;
    }
}

inline size_t recv_bytes(const Call& c, size_t element) {
    return c.count * element * (c.kind == Collective::AllGather ? c.comm->nranks : 1);
}

// The recvbuff with which NCCL runs a collective in place, given sendbuff.
inline uintptr_t in_place_recv(const Call& c, size_t element) {
    const uintptr_t send = reinterpret_cast<uintptr_t>(c.send), block = c.count * element * c.comm->rank;
    switch (c.kind) {
    case Collective::ReduceScatter: return send + block;  // recvbuff == sendbuff + rank*recvcount
    case Collective::AllGather: return send - block;      // sendbuff == recvbuff + rank*sendcount
    default: return send;                                 // recvbuff == sendbuff
    }
}

inline const char* in_place_rule(Collective kind) {
    switch (kind) {
    case Collective::ReduceScatter: return "recvbuff == sendbuff + rank*recvcount";
    case Collective::AllGather: return "sendbuff == recvbuff + rank*sendcount";
    default: return "recvbuff == sendbuff";
    }
}

inline bool overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
    const uintptr_t x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
    return a_bytes > 0 && b_bytes > 0 && x < y + b_bytes && y < x + a_bytes;
}

inline ncclResult_t check_buffer(const char* name, const void* p, size_t bytes, const std::string& where) {
    if (bytes == 0 || (p != nullptr && gpu_accessible(p, bytes))) { return ncclSuccess; }
    return fail(ncclInvalidArgument, where,
                "%s [%p, +%zu bytes) is not inside memory from cudaMalloc (on a GPU: an illegal memory access) "
                "(hint: pass device memory, from cudaMalloc, cudaMallocManaged or cudaMallocHost, large enough for "
                "the count)", name, p, bytes);
}

// NCCL's argument rules, checked on this rank alone.
inline ncclResult_t check_call(const Call& c, const std::string& where) {
    if (c.stream != nullptr && !live_streams().contains(c.stream)) {
        return fail(ncclUnhandledCudaError, where, "stream %p was not created by cudaStreamCreate, or was destroyed",
                    static_cast<void*>(c.stream));
    }
    const size_t element = type_bytes(c.type);
    if (element == 0) {
        const bool known = static_cast<int>(c.type) >= 0 && static_cast<int>(c.type) < ncclNumTypes;
        return fail(ncclInvalidArgument, where, "%s %s (hint: the harness supports ncclInt8, ncclUint8, ncclInt32, "
                    "ncclUint32, ncclInt64, ncclUint64, ncclFloat32, ncclFloat64 and ncclBfloat16)",
                    type_name(c.type).c_str(),
                    known ? "is not implemented by the CPU harness" : "is not an ncclDataType_t");
    }
    if (reduces(c.kind) && (static_cast<int>(c.op) < 0 || static_cast<int>(c.op) >= ncclNumOps)) {
        return fail(ncclInvalidArgument, where, "%s is not a built-in ncclRedOp_t (ncclSum, ncclProd, ncclMax, ncclMin, "
                    "ncclAvg; the harness has no ncclRedOpCreatePreMulSum)", op_name(c.op).c_str());
    }
    if (c.kind == Collective::Broadcast && (c.root < 0 || c.root >= c.comm->nranks)) {
        return fail(ncclInvalidArgument, where, "root %d is not a rank of the communicator (0..%d)", c.root,
                    c.comm->nranks - 1);
    }
    const size_t in = send_bytes(c, element), out = recv_bytes(c, element);
    ncclResult_t status = check_buffer("sendbuff", c.send, in, where);
    if (status == ncclSuccess) { status = check_buffer("recvbuff", c.recv, out, where); }
    if (status != ncclSuccess) { return status; }
    const uintptr_t in_place = in_place_recv(c, element);
    if (reinterpret_cast<uintptr_t>(c.recv) != in_place && overlap(c.send, in, c.recv, out)) {
        return fail(ncclInvalidArgument, where,
                    "sendbuff [%p, +%zu bytes) and recvbuff [%p, +%zu bytes) overlap, but not in place (hint: NCCL runs "
                    "%s in place when %s, here at recvbuff %p; any other overlap gives wrong data)", c.send, in, c.recv,
                    out, c.api, in_place_rule(c.kind), reinterpret_cast<const void*>(in_place));
    }
    return ncclSuccess;
}

// What one rank was called with, exchanged before any data moves.
struct Header {
    int64_t status, kind, count, type, op, root;

    bool same_call(const Header& h) const {
        return kind == h.kind && count == h.count && type == h.type && op == h.op && root == h.root;
    }
    // "ncclAllReduce(count 12, ncclFloat32, ncclSum)"
    std::string describe() const {
        std::string text = std::string(collective_name(static_cast<int>(kind))) + "(count " + std::to_string(count) +
                           ", " + type_name(static_cast<int>(type));
        if (op >= 0) { text += ", " + op_name(static_cast<int>(op)); }
        if (root >= 0) { text += ", root " + std::to_string(root); }
        return text + ")";
    }
};

// Every rank learns every rank's call: a rank whose checks failed returns its own error and
// the others ncclRemoteError; ranks that disagree all return ncclInvalidUsage.
inline ncclResult_t agree(const Call& c, ncclResult_t local, const std::string& where) {
    const Header mine{local, static_cast<int64_t>(c.kind), static_cast<int64_t>(c.count), static_cast<int64_t>(c.type),
                      reduces(c.kind) ? static_cast<int64_t>(c.op) : -1, c.kind == Collective::Broadcast ? c.root : -1};
    std::vector<Header> all(static_cast<size_t>(c.comm->nranks));
    const int rc = MPI_Allgather(&mine, sizeof(Header), MPI_BYTE, all.data(), sizeof(Header), MPI_BYTE, c.comm->mpi);
    if (rc != MPI_SUCCESS) { return mpi_failure(where, "MPI_Allgather", rc); }
    if (local != ncclSuccess) { return local; }
    for (int r = 0; r < c.comm->nranks; r++) {
        if (all[r].status != ncclSuccess) {
            return fail(ncclRemoteError, where, "rank %d's %s failed its argument checks (its diagnosis says why); this "
                        "rank's call did nothing", r, collective_name(static_cast<int>(all[r].kind)));
        }
    }
    for (int r = 1; r < c.comm->nranks; r++) {
        if (!all[r].same_call(all[0])) {
            return fail(ncclInvalidUsage, where,
                        "the ranks' calls differ: rank 0 called %s, rank %d %s (hint: every rank must make the same "
                        "collective calls in the same order, with the same count, datatype, op and root; on a GPU this "
                        "hangs or corrupts data)", all[0].describe().c_str(), r, all[r].describe().c_str());
        }
    }
    return ncclSuccess;
}

// ----------------------------------------------------------------------------
// running a collective: MPI moves bytes in chunks (bounded memory, int counts), this rank reduces

constexpr size_t kChunkBytes = size_t{16} << 20;

// Reused between calls: a trainer all-reduces the same sizes every step.
inline std::vector<char>& staging(int which) {
    static thread_local std::vector<char> buffers[2];
    return buffers[which];
}

inline const char* bytes_at(const void* p, size_t offset) { return static_cast<const char*>(p) + offset; }
inline char* bytes_at(void* p, size_t offset) { return static_cast<char*>(p) + offset; }

// Calls chunk(first, elems) over [0, count) in pieces of at most kChunkBytes per rank.
template <typename Chunk>
inline ncclResult_t in_chunks(size_t count, size_t element, Chunk chunk) {
    const size_t per_chunk = kChunkBytes / element;
    for (size_t first = 0; first < count; first += per_chunk) {
        const ncclResult_t status = chunk(first, std::min(per_chunk, count - first));
        if (status != ncclSuccess) { return status; }
    }
    return ncclSuccess;
}

// Every rank's elements [first, first + elems) of sendbuff, in rank order, into gathered.
inline ncclResult_t gather_chunk(const Call& c, size_t element, size_t first, size_t elems, std::vector<char>& gathered,
                                 const std::string& where) {
    const size_t bytes = elems * element;
    gathered.resize(bytes * c.comm->nranks);
    const int rc = MPI_Allgather(bytes_at(c.send, first * element), static_cast<int>(bytes), MPI_BYTE, gathered.data(),
                                 static_cast<int>(bytes), MPI_BYTE, c.comm->mpi);
    return rc == MPI_SUCCESS ? ncclSuccess : mpi_failure(where, "MPI_Allgather", rc);
}

inline ncclResult_t run_all_reduce(const Call& c, size_t element, const std::string& where) {
    std::vector<char>& gathered = staging(0);
    return in_chunks(c.count, element, [&](size_t first, size_t elems) {
        const ncclResult_t status = gather_chunk(c, element, first, elems, gathered, where);
        if (status == ncclSuccess) {
            reduce_bytes(c.type, c.op, gathered.data(), c.comm->nranks, elems, bytes_at(c.recv, first * element));
        }
        return status;
    });
}

// Block j of sendbuff goes to rank j (MPI_Alltoall); this rank reduces the n copies of its block.
inline ncclResult_t run_reduce_scatter(const Call& c, size_t element, const std::string& where) {
    const int n = c.comm->nranks;
    std::vector<char>& outgoing = staging(0);
    std::vector<char>& incoming = staging(1);
    return in_chunks(c.count, element, [&](size_t first, size_t elems) {
        const size_t bytes = elems * element;
        outgoing.resize(bytes * n);
        incoming.resize(bytes * n);
        for (int j = 0; j < n; j++) {
            memcpy(outgoing.data() + j * bytes, bytes_at(c.send, (j * c.count + first) * element), bytes);
        }
        const int rc = MPI_Alltoall(outgoing.data(), static_cast<int>(bytes), MPI_BYTE, incoming.data(),
                                    static_cast<int>(bytes), MPI_BYTE, c.comm->mpi);
        if (rc != MPI_SUCCESS) { return mpi_failure(where, "MPI_Alltoall", rc); }
        reduce_bytes(c.type, c.op, incoming.data(), n, elems, bytes_at(c.recv, first * element));
        return ncclSuccess;
    });
}

inline ncclResult_t run_all_gather(const Call& c, size_t element, const std::string& where) {
    std::vector<char>& gathered = staging(0);
    return in_chunks(c.count, element, [&](size_t first, size_t elems) {
        const ncclResult_t status = gather_chunk(c, element, first, elems, gathered, where);
        for (int r = 0; status == ncclSuccess && r < c.comm->nranks; r++) {
            memcpy(bytes_at(c.recv, (r * c.count + first) * element), gathered.data() + r * elems * element,
                   elems * element);
        }
        return status;
    });
}

inline ncclResult_t run_broadcast(const Call& c, size_t element, const std::string& where) {
    if (c.comm->rank == c.root && c.send != c.recv) { memcpy(c.recv, c.send, c.count * element); }
    return in_chunks(c.count, element, [&](size_t first, size_t elems) {
        const int rc = MPI_Bcast(bytes_at(c.recv, first * element), static_cast<int>(elems * element), MPI_BYTE, c.root,
                                 c.comm->mpi);
        return rc == MPI_SUCCESS ? ncclSuccess : mpi_failure(where, "MPI_Bcast", rc);
    });
}

// The bytes a rank sends and receives with NCCL's ring algorithms, nccl-tests' bus bytes.
inline void count_traffic(const Call& c, size_t element) {
    const uint64_t n = static_cast<uint64_t>(c.comm->nranks), block = c.count * element;
    uint64_t bytes = 0;
    Traffic Counters::*which = &Counters::all_reduce;
    switch (c.kind) {
    case Collective::AllReduce: bytes = 2 * (n - 1) * block / n; break;
    case Collective::ReduceScatter: bytes = (n - 1) * block; which = &Counters::reduce_scatter; break;
    case Collective::AllGather: bytes = (n - 1) * block; which = &Counters::all_gather; break;
    case Collective::Broadcast: bytes = n > 1 ? block : 0; which = &Counters::broadcast; break;
    }
    for (Counters* counters : {&c.comm->traffic, &traffic()}) {
        Traffic& t = counters->*which;
        t.calls++;
        t.bytes_sent += bytes;
        t.bytes_received += bytes;
    }
}

#ifdef CUDA_HARNESS_SANITIZE
// The distinct 32-byte sectors of [p, p + bytes).
inline uint64_t sectors_of(const void* p, size_t bytes) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return bytes == 0 ? 0 : (a + bytes - 1) / 32 - a / 32 + 1;
}

// What the sanitizer sees of a collective, as of a kernel (NCCL's collectives are kernels on a
// GPU): its send buffer read (initcheck), its receive buffer written, one launch named after
// the call with the bytes of both.
inline void sanitize_collective(const Call& c, size_t element) {
    const size_t in = send_bytes(c, element), out = recv_bytes(c, element);
    san::check_read(c.api, c.file, c.line, "the send buffer", c.send, in);
    san::mark_written(c.recv, out);
    san::begin_op(c.api, san::OpKind::Kernel);
    if (san::owns(c.send)) {
        san::g.op.bytes_read = in;
        san::g.op.sectors_read = sectors_of(c.send, in);
    }
    if (san::owns(c.recv)) {
        san::g.op.bytes_written = out;
        san::g.op.sectors_written = sectors_of(c.recv, out);
    }
    san::end_op();
}
#endif

inline ncclResult_t run(const Call& c, size_t element, const std::string& where) {
    switch (c.kind) {
    case Collective::AllReduce: return run_all_reduce(c, element, where);
    case Collective::ReduceScatter: return run_reduce_scatter(c, element, where);
    case Collective::AllGather: return run_all_gather(c, element, where);
    case Collective::Broadcast: return run_broadcast(c, element, where);
    }
    return ncclInternalError;
}

// A collective from start to end: checks, agreement, data, counters.
// A collective after this rank's checks (local: their verdict): the ranks' agreement, the data,
// the counters.
inline ncclResult_t complete(const Call& c, ncclResult_t local, const std::string& where) {
    ncclResult_t status = agree(c, local, where);
    if (status != ncclSuccess) { return status; }
    const size_t element = type_bytes(c.type);
    ProfileScope timed([&] { return std::string(c.api) + " " + std::to_string(recv_bytes(c, element)) + " bytes"; });
    status = run(c, element, where);
    if (status != ncclSuccess) { return status; }
    count_traffic(c, element);
    CUDA_HARNESS_SAN(sanitize_collective(c, element);)
    return ncclSuccess;
}

// A collective call: checked on this rank at once; the rest (complete) at once too, or, on a
// stream created with cudaStreamNonBlocking, when something waits for that stream
// (harness_runtime.h, stream_defer). A deferred collective's error is the communicator's
// asynchronous error; one whose communicator was aborted meanwhile does nothing.
inline ncclResult_t collective(const Call& c) {
    if (c.comm == nullptr || !live_comms().contains(c.comm)) {
        return fail(ncclInvalidArgument, site(c.api, c.file, c.line, -1, 0),
                    "comm %p is not a live communicator (never initialized, or destroyed)", static_cast<void*>(c.comm));
    }
    const std::string where = site(c.api, c.file, c.line, c.comm->rank, c.comm->nranks);
    if (!mpi_usable()) {
        return fail(ncclInvalidUsage, where, "MPI is finalized (hint: call the collectives, and ncclCommDestroy, "
                    "before MPI_Finalize)");
    }
    const ncclResult_t local = check_call(c, where);
    if (c.count == 0) { return local; }  // nothing to exchange, as in NCCL
    if (!stream_defers(c.stream)) { return complete(c, local, where); }
    stream_defer(c.stream, [c, local, where] { // the other ranks learn of a local failure then
        if (!live_comms().contains(c.comm)) { return; }
        const ncclResult_t status = complete(c, local, where);
        if (status != ncclSuccess && c.comm->async_error == ncclSuccess) { c.comm->async_error = status; }
    });
    return local;
}

// Checks common to the communicator queries.
inline ncclResult_t check_query(const char* api, ncclComm_t comm, const void* out) {
    if (comm == nullptr || !live_comms().contains(comm)) {
        return fail(ncclInvalidArgument, api, "comm %p is not a live communicator (never initialized, or destroyed)",
                    static_cast<void*>(comm));
    }
    return out == nullptr ? fail(ncclInvalidArgument, api, "the pointer to store the result in is NULL") : ncclSuccess;
}

}  // namespace nccl
}  // namespace cuda_harness

// ----------------------------------------------------------------------------
// versions and errors

inline ncclResult_t ncclGetVersion(int* version) {
    if (version == nullptr) {
        return cuda_harness::nccl::fail(ncclInvalidArgument, "ncclGetVersion", "version is NULL");
    }
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

// The real library's wording.
inline const char* ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

// The diagnosis of this thread's last error, whichever communicator ("" if none).
inline const char* ncclGetLastError(ncclComm_t /*comm*/) { return cuda_harness::nccl::last_error.c_str(); }

// ----------------------------------------------------------------------------
// communicators

inline ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
    using namespace cuda_harness::nccl;
    if (uniqueId == nullptr) { return record(fail(ncclInvalidArgument, "ncclGetUniqueId", "uniqueId is NULL")); }
    memcpy(uniqueId->internal, kIdMagic, sizeof(kIdMagic));
    try {
        std::random_device random;
        for (size_t i = sizeof(kIdMagic); i < NCCL_UNIQUE_ID_BYTES; i += sizeof(uint32_t)) {
            const uint32_t bits = random();
            memcpy(uniqueId->internal + i, &bits, sizeof(bits));
        }
    } catch (const std::exception& e) {
        return record(fail(ncclSystemError, "ncclGetUniqueId", "no random numbers: %s", e.what()));
    }
    return ncclSuccess;
}

inline ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank,
                                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    using namespace cuda_harness::nccl;
    const std::string where = site("ncclCommInitRank", file, line, rank, nranks);
    if (comm == nullptr) { return record(fail(ncclInvalidArgument, where, "comm is NULL")); }
    *comm = nullptr;
    if (!mpi_usable()) {
        return record(fail(ncclInvalidUsage, where, "MPI is not initialized, or already finalized (hint: the harness's "
                           "NCCL runs over MPI: start under mpirun and call MPI_Init first)"));
    }
    // key = rank: the new communicator's MPI ranks are the NCCL ranks, once agree_members holds
    MPI_Comm mpi = MPI_COMM_NULL;
    const int rc = MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &mpi);
    if (rc != MPI_SUCCESS) { return record(mpi_failure(where, "MPI_Comm_split", rc)); }
    MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);  // an MPI failure becomes ncclSystemError, not an abort
    const ncclResult_t status = agree_members(mpi, nranks, commId, rank, where);
    if (status != ncclSuccess) {
        MPI_Comm_free(&mpi);
        return record(status);
    }
    *comm = new ncclComm{mpi, rank, nranks, {}};
    live_comms().add(*comm);
    return ncclSuccess;
}

// Frees this rank's communicator without waiting for the others (as NCCL's does).
inline ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    using namespace cuda_harness::nccl;
    if (comm == nullptr) { return ncclSuccess; }
    if (!live_comms().contains(comm)) {
        return record(fail(ncclInvalidArgument, "ncclCommDestroy", "comm %p is not a live communicator (never "
                           "initialized, or destroyed)", static_cast<void*>(comm)));
    }
    cuda_harness::device_catch_up(); // its deferred collectives complete first
    live_comms().remove(comm);
    if (mpi_usable()) { MPI_Comm_free(&comm->mpi); }  // after MPI_Finalize no MPI call is allowed
    delete comm;
    return ncclSuccess;
}

// As ncclCommDestroy, except that the MPI communicator is left to MPI_Finalize: an abort runs
// when other ranks may be gone, and must not depend on them.
inline ncclResult_t ncclCommAbort(ncclComm_t comm) {
    using namespace cuda_harness::nccl;
    if (comm == nullptr) { return ncclSuccess; }
    if (!live_comms().remove(comm)) {
        return record(fail(ncclInvalidArgument, "ncclCommAbort", "comm %p is not a live communicator (never "
                           "initialized, or destroyed)", static_cast<void*>(comm)));
    }
    delete comm;
    return ncclSuccess;
}

inline ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
    const ncclResult_t status = cuda_harness::nccl::check_query("ncclCommCount", comm, count);
    if (status != ncclSuccess) { return cuda_harness::nccl::record(status); }
    *count = comm->nranks;
    return ncclSuccess;
}

inline ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
    const ncclResult_t status = cuda_harness::nccl::check_query("ncclCommUserRank", comm, rank);
    if (status != ncclSuccess) { return cuda_harness::nccl::record(status); }
    *rank = comm->rank;
    return ncclSuccess;
}

// Errors are returned by the calls themselves: nothing runs asynchronously.
inline ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
    const ncclResult_t status = cuda_harness::nccl::check_query("ncclCommGetAsyncError", comm, asyncError);
    if (status != ncclSuccess) { return cuda_harness::nccl::record(status); }
    *asyncError = comm->async_error;
    return ncclSuccess;
}

// ----------------------------------------------------------------------------
// collectives

inline ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                  ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream,
                                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    using namespace cuda_harness::nccl;
    return record(collective(Call{Collective::AllReduce, "ncclAllReduce", sendbuff, recvbuff, count, datatype, op, -1,
                                  comm, stream, file, line}));
}

inline ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                                      ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream,
                                      const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    using namespace cuda_harness::nccl;
    return record(collective(Call{Collective::ReduceScatter, "ncclReduceScatter", sendbuff, recvbuff, recvcount,
                                  datatype, op, -1, comm, stream, file, line}));
}

inline ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                                  ncclComm_t comm, cudaStream_t stream, const char* file = __builtin_FILE(),
                                  int line = __builtin_LINE()) {
    using namespace cuda_harness::nccl;
    return record(collective(Call{Collective::AllGather, "ncclAllGather", sendbuff, recvbuff, sendcount, datatype,
                                  ncclSum, -1, comm, stream, file, line}));
}

inline ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                                  ncclComm_t comm, cudaStream_t stream, const char* file = __builtin_FILE(),
                                  int line = __builtin_LINE()) {
    using namespace cuda_harness::nccl;
    return record(collective(Call{Collective::Broadcast, "ncclBroadcast", sendbuff, recvbuff, count, datatype, ncclSum,
                                  root, comm, stream, file, line}));
}

// ----------------------------------------------------------------------------
// groups: every call has run when it returns, so a group only nests and collects errors

inline ncclResult_t ncclGroupStart() {
    cuda_harness::nccl::group_depth++;
    return ncclSuccess;
}

inline ncclResult_t ncclGroupEnd() {
    using namespace cuda_harness::nccl;
    if (group_depth == 0) {
        return fail(ncclInvalidUsage, "ncclGroupEnd", "no ncclGroupStart to end");
    }
    if (--group_depth > 0) { return ncclSuccess; }
    const ncclResult_t result = group_error;
    group_error = ncclSuccess;
    return result;
}

CUDA_HARNESS_UNTRACED_END
