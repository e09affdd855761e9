// precision.h: floatX, the element type of the CUDA trainer's activations, their gradients, the
// parameters as the passes read them and their gradients, and its GEMMs' operands and outputs,
// as llm.c's PRECISION switch has it: float by default here; __nv_bfloat16 when built with
// -DENABLE_BF16 (`make train_gpt2cu` does: half the memory and bandwidth, bf16 tensor cores).
// Kernels load floatX, compute in float and store floatX: (float)x[i], then y[i] = (floatX)v.
// What is summed or must stay exact stays float whatever floatX is: the GEMMs' accumulation
// (CUBLAS_COMPUTE_32F), the layernorm statistics (mean, rstd), the softmax's and the loss's,
// the losses, ABFT's checksums and every sum of its checks, the AdamW moments, and the master
// parameters AdamW updates, from which it writes the floatX copy the passes read (the model
// files hold the masters).
//
// The CPU trainer (train_gpt2.cpp) is fp32 only: floatX is float there, so that the code it
// shares with the CUDA trainer (llmc/abft_core.h, llmc/gpt2_block.h, llmc/gpt2_model.h) reads
// the same in both.
#pragma once

#if defined(__CUDACC__) || defined(CUDA_CPU_HARNESS)
#include "llmc/cuda_common.h" // __nv_bfloat16 and the cuBLAS data types, or the harness's
#elif defined(ENABLE_BF16)
#error "ENABLE_BF16 is for the CUDA trainer (nvcc, or the CPU harness: -DCUDA_CPU_HARNESS); the CPU trainer is fp32 only"
#endif

#ifdef ENABLE_BF16
typedef __nv_bfloat16 floatX;
#else
typedef float floatX;
#endif

#if defined(__CUDACC__) || defined(CUDA_CPU_HARNESS)
// the data type of floatX matrices in cuBLAS and cuBLASLt calls
#ifdef ENABLE_BF16
constexpr cudaDataType_t CUBLAS_LOWP = CUDA_R_16BF;
#else
constexpr cudaDataType_t CUBLAS_LOWP = CUDA_R_32F;
#endif
#endif
