// harness_runtime.h: the CUDA runtime API (memory, copies, streams, events, errors, device
// queries) implemented on the CPU.
//
// "Device" memory is host memory from posix_memalign, recorded in a registry so that the
// harness can check what a GPU would refuse: a cudaMemcpy whose kind does not match its
// pointers, a copy that runs past the end of an allocation, cudaFree of a pointer that is not
// from cudaMalloc. Fresh device memory is filled with 0xFF bytes (a NaN in every float), so a
// kernel that reads memory nobody wrote produces NaN instead of a lucky zero.
//
// Streams and events exist as handles, and work runs synchronously, in order, at the call, with
// one exception: an NCCL collective (harness_nccl.h) on a stream created with
// cudaStreamNonBlocking is deferred until something waits for that stream (cudaStreamWaitEvent
// on an event recorded on it after the collective, cudaStreamSynchronize, cudaEventSynchronize,
// cudaDeviceSynchronize, cudaFree, or other work queued on the same stream). That is one order
// a GPU may run them in, since such a stream never waits for the default stream nor makes it
// wait; so a program that reads a collective's result without waiting for its stream reads what
// was there before, as it may on a GPU. An event's time is the host clock when it was recorded.
// Errors are reported like the real runtime: returned by the call and remembered as the
// calling host thread's last error until cudaGetLastError reads it.
#pragma once

#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <unistd.h>

#include "harness_sanitizer.h"
#include "harness_types.h"
#include "harness_util.h"

CUDA_HARNESS_UNTRACED_BEGIN

// ----------------------------------------------------------------------------
// handles: what a stream and an event are in the harness

struct CUstream_st {
    unsigned int flags = 0;
    std::deque<std::function<void()>> deferred; // the work deferred on it, in order (stream_defer)
    uint64_t queued = 0, ran = 0;                // how much work was ever deferred on it, and has run
};

struct CUevent_st {
    unsigned int flags = 0;
    bool recorded = false;
    std::chrono::steady_clock::time_point time;
    CUstream_st* stream = nullptr; // recorded on a stream that defers work: it marks the work deferred
    uint64_t position = 0;         // on it until then
};

namespace cuda_harness {

// ----------------------------------------------------------------------------
// the last error, per host thread as in the real runtime

inline thread_local cudaError_t tls_last_error = cudaSuccess;

// Every API call returns through this, so that a failure also becomes the last error.
inline cudaError_t record_error(cudaError_t err) {
    if (err != cudaSuccess) { tls_last_error = err; }
    return err;
}

// ----------------------------------------------------------------------------
// the registry of allocations

enum class MemoryKind { Device, PinnedHost, Managed };

struct Allocation {
    uintptr_t begin = 0;
    size_t size = 0;
    MemoryKind kind = MemoryKind::Device;
};

class MemoryRegistry {
public:
    void add(const void* p, size_t size, MemoryKind kind) {
        std::lock_guard<std::mutex> lock(mu_);
        blocks_[reinterpret_cast<uintptr_t>(p)] = Allocation{reinterpret_cast<uintptr_t>(p), size, kind};
    }

    // Forgets the allocation that starts at p if it is of the given kind; false if there is none.
    bool remove(const void* p, MemoryKind kind) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = blocks_.find(reinterpret_cast<uintptr_t>(p));
        if (it == blocks_.end() || it->second.kind != kind) { return false; }
        blocks_.erase(it);
        return true;
    }

    // The allocation that contains the byte at p; false if p is in none.
    bool find(const void* p, Allocation* out) const {
        std::lock_guard<std::mutex> lock(mu_);
        uintptr_t addr = reinterpret_cast<uintptr_t>(p);
        auto it = blocks_.upper_bound(addr);
        if (it == blocks_.begin()) { return false; }
        --it;
        if (addr >= it->second.begin + it->second.size) { return false; }
        *out = it->second;
        return true;
    }

private:
    mutable std::mutex mu_;
    std::map<uintptr_t, Allocation> blocks_;  // by start address
};

// Never destroyed, so that it stays usable while the program exits.
inline MemoryRegistry& memory_registry() {
    static MemoryRegistry* registry = new MemoryRegistry;
    return *registry;
}

// Where a range of bytes lies, as far as the GPU would see it.
enum class Placement { Host, Device, Managed, PinnedHost, PastTheEnd };

inline Placement placement_of(const void* p, size_t bytes) {
    Allocation a;
    if (!memory_registry().find(p, &a)) { return Placement::Host; }
    uintptr_t begin = reinterpret_cast<uintptr_t>(p);
    if (bytes > a.begin + a.size - begin) { return Placement::PastTheEnd; }
    switch (a.kind) {
    case MemoryKind::Device: return Placement::Device;
    case MemoryKind::Managed: return Placement::Managed;
    case MemoryKind::PinnedHost: return Placement::PinnedHost;
    }
    return Placement::Host;
}

// Memory a kernel or cuBLAS may touch on a GPU: device, managed, or pinned (mapped) host memory.
inline bool gpu_accessible(const void* p, size_t bytes) {
    Placement where = placement_of(p, bytes);
    return where == Placement::Device || where == Placement::Managed || where == Placement::PinnedHost;
}

// ----------------------------------------------------------------------------
// allocation

// Fills fresh device memory with 0xFF bytes: a NaN in every float, -1 in every int.
inline void poison(void* p, size_t bytes) { memset(p, 0xFF, bytes); }

// `file` and `line`: the caller's, named in sanitizer reports about the buffer.
inline cudaError_t allocate(void** ptr, size_t bytes, MemoryKind kind, const char* api, const char* file = "",
                            int line = 0) {
    if (ptr == nullptr) {
        diagnose("%s: the pointer to store the address in is NULL", api);
        return record_error(cudaErrorInvalidValue);
    }
    *ptr = nullptr;
    if (bytes == 0) { return cudaSuccess; }
    void* p = nullptr;
#ifdef CUDA_HARNESS_SANITIZE
    if (kind != MemoryKind::PinnedHost) { p = san::allocate(bytes, file, line); }  // from the shadowed arena
#else
    (void)file;
    (void)line;
#endif
    if (p == nullptr && posix_memalign(&p, 256, bytes) != 0) {  // 256: cudaMalloc's alignment
        diagnose("%s: cannot allocate %zu bytes of host memory", api, bytes);
        return record_error(cudaErrorMemoryAllocation);
    }
    if (kind != MemoryKind::PinnedHost) { poison(p, bytes); }
    memory_registry().add(p, bytes, kind);
    *ptr = p;
    return cudaSuccess;
}

inline cudaError_t release(void* p, MemoryKind kind, const char* api, const char* allocator) {
    if (p == nullptr) { return cudaSuccess; }
    if (!memory_registry().remove(p, kind)) {
        diagnose("%s(%p): not an address returned by %s, or already freed", api, p, allocator);
        return record_error(cudaErrorInvalidValue);
    }
#ifdef CUDA_HARNESS_SANITIZE
    if (san::owns(p)) {
        san::release(p);
        san::allocation_call(api);
        return cudaSuccess;
    }
#endif
    free(p);
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// copies: check the pointers against the copy kind as a GPU would, then memcpy

inline bool is_device_side(Placement where) { return where == Placement::Device || where == Placement::Managed; }
inline bool is_host_side(Placement where) { return where != Placement::Device && where != Placement::PastTheEnd; }

inline const char* memcpy_kind_name(cudaMemcpyKind kind) {
    switch (kind) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault: return "cudaMemcpyDefault";
    }
    return "an invalid cudaMemcpyKind";
}

// Checks one side of a copy: the range must not run past its allocation, and must be on
// the side the copy kind names ("device", "host" or "any").
inline bool copy_side_ok(const char* api, const char* role, const void* p, size_t bytes, const char* side,
                         cudaMemcpyKind kind) {
    Placement where = placement_of(p, bytes);
    if (where == Placement::PastTheEnd) {
        diagnose("%s: the %s range [%p, +%zu bytes) runs past the end of its allocation", api, role, p, bytes);
        return false;
    }
    bool ok = strcmp(side, "any") == 0 || (strcmp(side, "device") == 0 ? is_device_side(where) : is_host_side(where));
    if (!ok) {
        diagnose("%s: the %s %p is %s memory, but the copy kind is %s", api, role, p,
                 is_device_side(where) ? "device" : "host (not from cudaMalloc)", memcpy_kind_name(kind));
    }
    return ok;
}

// `blocking`: the host waits (cudaMemcpy); file and line: the caller's, for sanitizer reports.
inline cudaError_t checked_memcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* api,
                                  bool blocking, const char* file, int line) {
    if (bytes == 0) { return cudaSuccess; }
    const char* dst_side = "any";
    const char* src_side = "any";
    switch (kind) {
    case cudaMemcpyHostToHost: dst_side = "host"; src_side = "host"; break;
    case cudaMemcpyHostToDevice: dst_side = "device"; src_side = "host"; break;
    case cudaMemcpyDeviceToHost: dst_side = "host"; src_side = "device"; break;
    case cudaMemcpyDeviceToDevice: dst_side = "device"; src_side = "device"; break;
    case cudaMemcpyDefault: break;
    default:
        diagnose("%s: %d is not a cudaMemcpyKind", api, static_cast<int>(kind));
        return record_error(cudaErrorInvalidMemcpyDirection);
    }
    if (dst == nullptr || src == nullptr) {
        diagnose("%s: NULL %s pointer", api, dst == nullptr ? "destination" : "source");
        return record_error(cudaErrorInvalidValue);
    }
    if (!copy_side_ok(api, "destination", dst, bytes, dst_side, kind) ||
        !copy_side_ok(api, "source", src, bytes, src_side, kind)) {
        return record_error(cudaErrorInvalidValue);
    }
    memcpy(dst, src, bytes);  // overlapping ranges are an error in CUDA too; ASan reports them
    CUDA_HARNESS_SAN(san::copy_op(api, file, line, dst, src, bytes, blocking);)
    (void)blocking;
    (void)file;
    (void)line;
    return cudaSuccess;
}

inline cudaError_t checked_memset(void* dst, int value, size_t bytes, const char* api) {
    if (bytes == 0) { return cudaSuccess; }
    if (dst == nullptr || !is_device_side(placement_of(dst, bytes))) {
        diagnose("%s: [%p, +%zu bytes) is not inside memory from cudaMalloc", api, dst, bytes);
        return record_error(cudaErrorInvalidValue);
    }
    memset(dst, value, bytes);
    CUDA_HARNESS_SAN(san::memset_op(dst, bytes);)
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// streams and events: live handles are remembered so that a bad or destroyed one is an error

template <typename Handle>
class HandleSet {
public:
    void add(Handle h) {
        std::lock_guard<std::mutex> lock(mu_);
        live_.insert(h);
    }
    bool remove(Handle h) {
        std::lock_guard<std::mutex> lock(mu_);
        return live_.erase(h) == 1;
    }
    bool contains(Handle h) const {
        std::lock_guard<std::mutex> lock(mu_);
        return live_.count(h) == 1;
    }
    std::set<Handle> all() const {
        std::lock_guard<std::mutex> lock(mu_);
        return live_;
    }

private:
    mutable std::mutex mu_;
    std::set<Handle> live_;
};

inline HandleSet<cudaStream_t>& live_streams() {
    static HandleSet<cudaStream_t>* set = new HandleSet<cudaStream_t>;
    return *set;
}

inline HandleSet<cudaEvent_t>& live_events() {
    static HandleSet<cudaEvent_t>* set = new HandleSet<cudaEvent_t>;
    return *set;
}

// The default stream (0) is always valid.
inline bool stream_ok(cudaStream_t stream, const char* api) {
    if (stream == nullptr || live_streams().contains(stream)) { return true; }
    diagnose("%s: stream %p was not created by cudaStreamCreate, or was destroyed", api, static_cast<void*>(stream));
    return false;
}

inline bool event_ok(cudaEvent_t event, const char* api) {
    if (event != nullptr && live_events().contains(event)) { return true; }
    diagnose("%s: event %p was not created by cudaEventCreate, or was destroyed", api, static_cast<void*>(event));
    return false;
}

// ----------------------------------------------------------------------------
// deferred work: NCCL collectives on a non-blocking stream run when something waits for it

inline bool stream_defers(cudaStream_t stream) { return stream != nullptr && (stream->flags & cudaStreamNonBlocking) != 0; }

inline void stream_defer(cudaStream_t stream, std::function<void()> work) {
    stream->deferred.push_back(std::move(work));
    stream->queued++;
}

// Runs the work deferred on stream, in order, up to its `upto`-th deferral (all of it by default).
inline void stream_catch_up(cudaStream_t stream, uint64_t upto = UINT64_MAX) {
    while (stream != nullptr && stream->ran < std::min(upto, stream->queued)) {
        std::function<void()> work = std::move(stream->deferred.front());
        stream->deferred.pop_front();
        stream->ran++;
        work();
    }
}

inline void device_catch_up() {
    for (cudaStream_t stream : live_streams().all()) { stream_catch_up(stream); }
}

// ----------------------------------------------------------------------------
// the one "device": its properties

constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kSharedMemPerBlock = 48 * 1024;         // without cudaFuncSetAttribute
constexpr size_t kSharedMemPerBlockOptin = 227 * 1024;   // with it (an H100's limit)
constexpr int kMultiProcessorCount = 8;                  // fixed, so that grids sized from it are too

inline size_t host_memory_bytes(int which) {
    long pages = sysconf(which);
    long page_size = sysconf(_SC_PAGESIZE);
    return pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page_size) : 0;
}

inline void fill_device_properties(cudaDeviceProp* prop) {
    memset(prop, 0, sizeof(*prop));
    snprintf(prop->name, sizeof(prop->name), "CUDA CPU harness (no GPU: kernels run on the CPU)");
    prop->totalGlobalMem = host_memory_bytes(_SC_PHYS_PAGES);
    prop->sharedMemPerBlock = kSharedMemPerBlock;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->memPitch = 2147483647;
    prop->maxThreadsPerBlock = kMaxThreadsPerBlock;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->totalConstMem = 65536;
    prop->major = 9;  // reports compute capability 9.0, so code that requires sm_80+ runs
    prop->minor = 0;
    prop->textureAlignment = 512;
    prop->multiProcessorCount = kMultiProcessorCount;
    prop->canMapHostMemory = 1;
    prop->concurrentKernels = 1;
    prop->asyncEngineCount = 2;
    prop->unifiedAddressing = 1;
    prop->memoryBusWidth = 64;
    prop->l2CacheSize = 50 * 1024 * 1024;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->sharedMemPerMultiprocessor = 228 * 1024;
    prop->regsPerMultiprocessor = 65536;
    prop->managedMemory = 1;
    prop->cooperativeLaunch = 0;  // grid-wide synchronization is not supported
    prop->sharedMemPerBlockOptin = kSharedMemPerBlockOptin;
    prop->maxBlocksPerMultiProcessor = 32;
    prop->reservedSharedMemPerBlock = 1024;
}

inline bool device_attribute(cudaDeviceAttr attr, int* value) {
    cudaDeviceProp p;
    fill_device_properties(&p);
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; return true;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; return true;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; return true;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; return true;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; return true;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; return true;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; return true;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); return true;
    case cudaDevAttrTotalConstantMemory: *value = static_cast<int>(p.totalConstMem); return true;
    case cudaDevAttrWarpSize: *value = p.warpSize; return true;
    case cudaDevAttrMaxRegistersPerBlock: *value = p.regsPerBlock; return true;
    case cudaDevAttrClockRate: *value = 1000000; return true;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; return true;
    case cudaDevAttrIntegrated: *value = p.integrated; return true;
    case cudaDevAttrConcurrentKernels: *value = p.concurrentKernels; return true;
    case cudaDevAttrMemoryClockRate: *value = 1000000; return true;
    case cudaDevAttrGlobalMemoryBusWidth: *value = p.memoryBusWidth; return true;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; return true;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; return true;
    case cudaDevAttrUnifiedAddressing: *value = p.unifiedAddressing; return true;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; return true;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; return true;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = static_cast<int>(p.sharedMemPerMultiprocessor); return true;
    case cudaDevAttrManagedMemory: *value = p.managedMemory; return true;
    case cudaDevAttrCooperativeLaunch: *value = p.cooperativeLaunch; return true;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); return true;
    case cudaDevAttrMaxBlocksPerMultiprocessor: *value = p.maxBlocksPerMultiProcessor; return true;
    }
    return false;
}

}  // namespace cuda_harness

// ----------------------------------------------------------------------------
// errors

inline cudaError_t cudaGetLastError() {
    cudaError_t err = cuda_harness::tls_last_error;
    cuda_harness::tls_last_error = cudaSuccess;
    return err;
}

inline cudaError_t cudaPeekAtLastError() { return cuda_harness::tls_last_error; }

inline const char* cudaGetErrorName(cudaError_t err) {
    switch (err) {
#define CUDA_HARNESS_NAME(e) case e: return #e;
    CUDA_HARNESS_NAME(cudaSuccess)
    CUDA_HARNESS_NAME(cudaErrorInvalidValue)
    CUDA_HARNESS_NAME(cudaErrorMemoryAllocation)
    CUDA_HARNESS_NAME(cudaErrorInitializationError)
    CUDA_HARNESS_NAME(cudaErrorCudartUnloading)
    CUDA_HARNESS_NAME(cudaErrorInvalidConfiguration)
    CUDA_HARNESS_NAME(cudaErrorInvalidPitchValue)
    CUDA_HARNESS_NAME(cudaErrorInvalidSymbol)
    CUDA_HARNESS_NAME(cudaErrorInvalidDevicePointer)
    CUDA_HARNESS_NAME(cudaErrorInvalidMemcpyDirection)
    CUDA_HARNESS_NAME(cudaErrorStubLibrary)
    CUDA_HARNESS_NAME(cudaErrorInsufficientDriver)
    CUDA_HARNESS_NAME(cudaErrorDevicesUnavailable)
    CUDA_HARNESS_NAME(cudaErrorInvalidDeviceFunction)
    CUDA_HARNESS_NAME(cudaErrorNoDevice)
    CUDA_HARNESS_NAME(cudaErrorInvalidDevice)
    CUDA_HARNESS_NAME(cudaErrorNoKernelImageForDevice)
    CUDA_HARNESS_NAME(cudaErrorUnsupportedPtxVersion)
    CUDA_HARNESS_NAME(cudaErrorInvalidResourceHandle)
    CUDA_HARNESS_NAME(cudaErrorNotReady)
    CUDA_HARNESS_NAME(cudaErrorIllegalAddress)
    CUDA_HARNESS_NAME(cudaErrorLaunchOutOfResources)
    CUDA_HARNESS_NAME(cudaErrorLaunchTimeout)
    CUDA_HARNESS_NAME(cudaErrorAssert)
    CUDA_HARNESS_NAME(cudaErrorIllegalInstruction)
    CUDA_HARNESS_NAME(cudaErrorMisalignedAddress)
    CUDA_HARNESS_NAME(cudaErrorLaunchFailure)
    CUDA_HARNESS_NAME(cudaErrorCooperativeLaunchTooLarge)
    CUDA_HARNESS_NAME(cudaErrorNotPermitted)
    CUDA_HARNESS_NAME(cudaErrorNotSupported)
    CUDA_HARNESS_NAME(cudaErrorUnknown)
#undef CUDA_HARNESS_NAME
    }
    return "cudaErrorUnknown";
}

// The real runtime's wording, so that messages read the same with and without a GPU.
inline const char* cudaGetErrorString(cudaError_t err) {
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorCudartUnloading: return "driver shutting down";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorStubLibrary: return "CUDA driver is a stub library";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorDevicesUnavailable: return "CUDA-capable device(s) is/are busy or unavailable";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorUnsupportedPtxVersion: return "the provided PTX was compiled with an unsupported toolchain.";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorCooperativeLaunchTooLarge: return "too many blocks in cooperative launch";
    case cudaErrorNotPermitted: return "operation not permitted";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
    }
    return "unrecognized error code";
}

// ----------------------------------------------------------------------------
// device management: one device, number 0

inline cudaError_t cudaGetDeviceCount(int* count) {
    if (count == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    *count = 1;
    return cudaSuccess;
}

inline cudaError_t cudaSetDevice(int device) {
    if (device != 0) {
        cuda_harness::diagnose("cudaSetDevice(%d): the CPU harness has one device, number 0", device);
        return cuda_harness::record_error(cudaErrorInvalidDevice);
    }
    return cudaSuccess;
}

inline cudaError_t cudaGetDevice(int* device) {
    if (device == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    *device = 0;
    return cudaSuccess;
}

inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (prop == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    if (device != 0) { return cuda_harness::record_error(cudaErrorInvalidDevice); }
    cuda_harness::fill_device_properties(prop);
    return cudaSuccess;
}

inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    if (value == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    if (device != 0) { return cuda_harness::record_error(cudaErrorInvalidDevice); }
    if (!cuda_harness::device_attribute(attr, value)) {
        cuda_harness::diagnose("cudaDeviceGetAttribute: attribute %d is not known to the harness", static_cast<int>(attr));
        return cuda_harness::record_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

inline cudaError_t cudaDeviceSynchronize() {
    cuda_harness::device_catch_up();
    CUDA_HARNESS_SAN(cuda_harness::san::blocking_call("cudaDeviceSynchronize");)
    return cudaSuccess;
}
inline cudaError_t cudaDeviceReset() { return cudaSuccess; }

inline cudaError_t cudaRuntimeGetVersion(int* version) {
    if (version == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    *version = 13000;
    return cudaSuccess;
}

inline cudaError_t cudaDriverGetVersion(int* version) { return cudaRuntimeGetVersion(version); }

inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    if (free_bytes == nullptr || total_bytes == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    *free_bytes = cuda_harness::host_memory_bytes(_SC_AVPHYS_PAGES);
    *total_bytes = cuda_harness::host_memory_bytes(_SC_PHYS_PAGES);
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// memory

inline cudaError_t cudaMalloc(void** ptr, size_t bytes, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::allocate(ptr, bytes, cuda_harness::MemoryKind::Device, "cudaMalloc", file, line);
}

template <typename T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cudaMalloc(reinterpret_cast<void**>(ptr), bytes, file, line);
}

inline cudaError_t cudaFree(void* p) {
    cuda_harness::device_catch_up(); // cudaFree waits for the device
    return cuda_harness::release(p, cuda_harness::MemoryKind::Device, "cudaFree", "cudaMalloc");
}

inline cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t stream) {
    if (!cuda_harness::stream_ok(stream, "cudaMallocAsync")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    return cudaMalloc(ptr, bytes);
}

template <typename T>
inline cudaError_t cudaMallocAsync(T** ptr, size_t bytes, cudaStream_t stream) {
    return cudaMallocAsync(reinterpret_cast<void**>(ptr), bytes, stream);
}

inline cudaError_t cudaFreeAsync(void* p, cudaStream_t stream) {
    if (!cuda_harness::stream_ok(stream, "cudaFreeAsync")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    return cudaFree(p);
}

inline cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
    return cuda_harness::allocate(ptr, bytes, cuda_harness::MemoryKind::PinnedHost, "cudaMallocHost");
}

template <typename T>
inline cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
    return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}

inline cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int /*flags*/) { return cudaMallocHost(ptr, bytes); }

inline cudaError_t cudaFreeHost(void* p) {
    cuda_harness::device_catch_up();
    return cuda_harness::release(p, cuda_harness::MemoryKind::PinnedHost, "cudaFreeHost", "cudaMallocHost");
}

inline cudaError_t cudaMallocManaged(void** ptr, size_t bytes, unsigned int /*flags*/ = cudaMemAttachGlobal,
                                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::allocate(ptr, bytes, cuda_harness::MemoryKind::Managed, "cudaMallocManaged", file, line);
}

template <typename T>
inline cudaError_t cudaMallocManaged(T** ptr, size_t bytes, unsigned int flags = cudaMemAttachGlobal,
                                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cudaMallocManaged(reinterpret_cast<void**>(ptr), bytes, flags, file, line);
}

inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::checked_memcpy(dst, src, bytes, kind, "cudaMemcpy", true, file, line);
}

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t stream = nullptr, const char* file = __builtin_FILE(),
                                   int line = __builtin_LINE()) {
    if (!cuda_harness::stream_ok(stream, "cudaMemcpyAsync")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    cuda_harness::stream_catch_up(stream);
    return cuda_harness::checked_memcpy(dst, src, bytes, kind, "cudaMemcpyAsync", false, file, line);
}

inline cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
    return cuda_harness::checked_memset(dst, value, bytes, "cudaMemset");
}

inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr) {
    if (!cuda_harness::stream_ok(stream, "cudaMemsetAsync")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    cuda_harness::stream_catch_up(stream);
    return cuda_harness::checked_memset(dst, value, bytes, "cudaMemsetAsync");
}

// __device__ and __constant__ variables are ordinary globals in the harness.
template <typename T>
inline cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t bytes, size_t offset = 0,
                                      cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
    if (offset + bytes > sizeof(T)) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    (void)kind;
    memcpy(reinterpret_cast<char*>(&symbol) + offset, src, bytes);
    return cudaSuccess;
}

template <typename T>
inline cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t bytes, size_t offset = 0,
                                        cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
    if (offset + bytes > sizeof(T)) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    (void)kind;
    memcpy(dst, reinterpret_cast<const char*>(&symbol) + offset, bytes);
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// streams: in-order and synchronous, so idle but for deferred collectives (stream_defer)

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
    if (stream == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    *stream = new CUstream_st();
    (*stream)->flags = flags;
    cuda_harness::live_streams().add(*stream);
    return cudaSuccess;
}

inline cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

inline cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int /*priority*/) {
    return cudaStreamCreateWithFlags(stream, flags);
}

inline cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    if (stream == nullptr || !cuda_harness::live_streams().remove(stream)) {
        cuda_harness::diagnose("cudaStreamDestroy(%p): not a live stream", static_cast<void*>(stream));
        return cuda_harness::record_error(cudaErrorInvalidResourceHandle);
    }
    cuda_harness::stream_catch_up(stream); // its work completes, as on a GPU
    delete stream;
    return cudaSuccess;
}

inline cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (!cuda_harness::stream_ok(stream, "cudaStreamSynchronize")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    cuda_harness::stream_catch_up(stream);
    CUDA_HARNESS_SAN(cuda_harness::san::blocking_call("cudaStreamSynchronize");)
    return cudaSuccess;
}

inline cudaError_t cudaStreamQuery(cudaStream_t stream) {
    if (!cuda_harness::stream_ok(stream, "cudaStreamQuery")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    cuda_harness::stream_catch_up(stream); // done when asked, which is a time a GPU may finish it
    return cudaSuccess;
}

inline cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int /*flags*/ = 0) {
    if (!cuda_harness::stream_ok(stream, "cudaStreamWaitEvent") || !cuda_harness::event_ok(event, "cudaStreamWaitEvent")) {
        return cuda_harness::record_error(cudaErrorInvalidResourceHandle);
    }
    cuda_harness::stream_catch_up(event->stream, event->position);
    return cudaSuccess;
}

inline cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
    if (least != nullptr) { *least = 0; }
    if (greatest != nullptr) { *greatest = -5; }
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// events: the host clock at cudaEventRecord, which is when all earlier work has finished

inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
    if (event == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    *event = new CUevent_st();
    (*event)->flags = flags;
    cuda_harness::live_events().add(*event);
    return cudaSuccess;
}

inline cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

inline cudaError_t cudaEventDestroy(cudaEvent_t event) {
    if (event == nullptr || !cuda_harness::live_events().remove(event)) {
        cuda_harness::diagnose("cudaEventDestroy(%p): not a live event", static_cast<void*>(event));
        return cuda_harness::record_error(cudaErrorInvalidResourceHandle);
    }
    delete event;
    return cudaSuccess;
}

inline cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr) {
    if (!cuda_harness::event_ok(event, "cudaEventRecord") || !cuda_harness::stream_ok(stream, "cudaEventRecord")) {
        return cuda_harness::record_error(cudaErrorInvalidResourceHandle);
    }
    event->recorded = true;
    event->time = std::chrono::steady_clock::now();
    event->stream = cuda_harness::stream_defers(stream) ? stream : nullptr;
    event->position = event->stream != nullptr ? stream->queued : 0;
    return cudaSuccess;
}

inline cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (!cuda_harness::event_ok(event, "cudaEventSynchronize")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    cuda_harness::stream_catch_up(event->stream, event->position);
    CUDA_HARNESS_SAN(cuda_harness::san::blocking_call("cudaEventSynchronize");)
    return cudaSuccess;
}

inline cudaError_t cudaEventQuery(cudaEvent_t event) {
    if (!cuda_harness::event_ok(event, "cudaEventQuery")) { return cuda_harness::record_error(cudaErrorInvalidResourceHandle); }
    cuda_harness::stream_catch_up(event->stream, event->position);
    return cudaSuccess;
}

inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    if (ms == nullptr) { return cuda_harness::record_error(cudaErrorInvalidValue); }
    if (!cuda_harness::event_ok(start, "cudaEventElapsedTime") || !cuda_harness::event_ok(end, "cudaEventElapsedTime")) {
        return cuda_harness::record_error(cudaErrorInvalidResourceHandle);
    }
    if (!start->recorded || !end->recorded || ((start->flags | end->flags) & cudaEventDisableTiming) != 0) {
        cuda_harness::diagnose("cudaEventElapsedTime: an event was never recorded, or was created with cudaEventDisableTiming");
        return cuda_harness::record_error(cudaErrorInvalidResourceHandle);
    }
    *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
    return cudaSuccess;
}

CUDA_HARNESS_UNTRACED_END
