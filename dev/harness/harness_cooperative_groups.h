// harness_cooperative_groups.h: the part of <cooperative_groups.h> (and
// <cooperative_groups/reduce.h>) that this project uses, built on the harness's barriers and
// warp exchanges: thread_block, thread_block_tile<Size> from tiled_partition<Size>, their
// sync and shuffles, and reduce with plus/less/greater/bit_and/bit_or/bit_xor.
//
// reduce does what a shuffle-xor butterfly does (log2(Size) rounds of
// v = op(v, shfl_xor(v, offset)), so every lane gets the same value in the same rounding
// order a GPU's butterfly produces), but in one exchange of the tile's values instead of
// log2(Size) exchanges.
#pragma once

#include "harness_device.h"

CUDA_HARNESS_UNTRACED_BEGIN

namespace cooperative_groups {

// ----------------------------------------------------------------------------
// the block

class thread_block {
public:
    void sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const { __syncthreads(file, line); }
    unsigned thread_rank() const { return cuda_harness::device_runner("thread_block").current().linear; }
    unsigned size() const { return static_cast<unsigned>(cuda_harness::device_runner("thread_block").thread_count()); }
    unsigned num_threads() const { return size(); }
    dim3 group_dim() const { return blockDim; }
    dim3 dim_threads() const { return blockDim; }
    uint3 group_index() const { return blockIdx; }
    uint3 thread_index() const { return threadIdx; }
};

inline thread_block this_thread_block() { return thread_block(); }

// ----------------------------------------------------------------------------
// tiles of Size lanes (a power of two up to 32) within a warp

namespace details {

template <unsigned Size>
class tile_base {
    static_assert(Size >= 1 && Size <= 32 && (Size & (Size - 1)) == 0, "tile sizes are powers of two up to 32");

public:
    unsigned thread_rank() const { return block_rank() & (Size - 1); }
    static constexpr unsigned size() { return Size; }
    static constexpr unsigned num_threads() { return Size; }
    unsigned meta_group_rank() const { return block_rank() / Size; }
    unsigned meta_group_size() const {
        return static_cast<unsigned>((cuda_harness::device_runner("thread_block_tile").thread_count() + Size - 1) / Size);
    }

    // The tile's lanes within the warp.
    unsigned mask() const {
        const unsigned lane = cuda_harness::device_runner("thread_block_tile").current().lane;
        return (0xffffffffu >> (32 - Size)) << (lane & ~(Size - 1));
    }

    void sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const { __syncwarp(mask(), file, line); }

    template <typename T>
    T shfl(T var, int src, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return __shfl_sync(mask(), var, src, Size, file, line);
    }
    template <typename T>
    T shfl_up(T var, unsigned delta, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return __shfl_up_sync(mask(), var, delta, Size, file, line);
    }
    template <typename T>
    T shfl_down(T var, unsigned delta, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return __shfl_down_sync(mask(), var, delta, Size, file, line);
    }
    template <typename T>
    T shfl_xor(T var, unsigned lane_mask, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return __shfl_xor_sync(mask(), var, static_cast<int>(lane_mask), Size, file, line);
    }

    int any(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return __any_sync(mask(), predicate, file, line);
    }
    int all(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        return __all_sync(mask(), predicate, file, line);
    }
    // Bit i: the tile's thread of rank i passed a nonzero predicate.
    unsigned ballot(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
        const unsigned lane = cuda_harness::device_runner("thread_block_tile").current().lane;
        return __ballot_sync(mask(), predicate, file, line) >> (lane & ~(Size - 1));
    }

private:
    static unsigned block_rank() { return cuda_harness::device_runner("thread_block_tile").current().linear; }
};

}  // namespace details

template <unsigned Size, typename ParentT = void>
class thread_block_tile : public details::tile_base<Size> {
public:
    thread_block_tile() = default;
    // tiled_partition<32>(block) has type thread_block_tile<32, thread_block>; it converts
    // to the thread_block_tile<32> that code declares, as in the real header.
    template <typename OtherParent>
    thread_block_tile(const thread_block_tile<Size, OtherParent>&) {}
};

template <unsigned Size, typename ParentT>
thread_block_tile<Size, ParentT> tiled_partition(const ParentT&) {
    return thread_block_tile<Size, ParentT>();
}

template <typename Group>
void sync(const Group& group, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    group.sync(file, line);
}

// ----------------------------------------------------------------------------
// reduce and its operators

template <typename T> struct plus { T operator()(const T& a, const T& b) const { return a + b; } };
template <typename T> struct less { T operator()(const T& a, const T& b) const { return b < a ? b : a; } };
template <typename T> struct greater { T operator()(const T& a, const T& b) const { return a < b ? b : a; } };
template <typename T> struct bit_and { T operator()(const T& a, const T& b) const { return a & b; } };
template <typename T> struct bit_or { T operator()(const T& a, const T& b) const { return a | b; } };
template <typename T> struct bit_xor { T operator()(const T& a, const T& b) const { return a ^ b; } };

// Every thread of the tile gets op over the tile's values, combined in butterfly order.
template <unsigned Size, typename ParentT, typename T, typename Op>
T reduce(const thread_block_tile<Size, ParentT>& tile, T value, Op op, const char* file = __builtin_FILE(),
         int line = __builtin_LINE()) {
    cuda_harness::BlockRunner& r = cuda_harness::device_runner("cooperative_groups::reduce");
    const cuda_harness::WarpSnapshot& snapshot =
        r.warp_exchange({"cooperative_groups::reduce", file, line}, tile.mask(), &value, sizeof(T));
    const unsigned lanes = r.current().exchange_lanes;
    const unsigned base = r.current().lane & ~(Size - 1);
    T v[Size] = {};
    bool present[Size];
    for (unsigned i = 0; i < Size; i++) {
        present[i] = (lanes & (1u << (base + i))) != 0;
        if (present[i]) { memcpy(&v[i], snapshot.values[base + i], sizeof(T)); }
        CUDA_HARNESS_SAN(if (!present[i]) {
            cuda_harness::san::undefined_lane("cooperative_groups::reduce", file, line, base + i,
                                              cuda_harness::missing_lane_reason(r, static_cast<int>(base + i)));
        })
    }
    // round by round, as v = op(v, shfl_xor(v, offset)) on every lane; a lane that is
    // missing from the tile gives back the caller's own value, as the shuffle would
    for (unsigned offset = Size / 2; offset > 0; offset /= 2) {
        T next[Size];
        for (unsigned i = 0; i < Size; i++) { next[i] = op(v[i], present[i ^ offset] ? v[i ^ offset] : v[i]); }
        for (unsigned i = 0; i < Size; i++) { v[i] = next[i]; }
    }
    return v[r.current().lane - base];
}

}  // namespace cooperative_groups

CUDA_HARNESS_UNTRACED_END
