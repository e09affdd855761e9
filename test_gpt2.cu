// test_gpt2.cu: the CUDA trainer (train_gpt2.cu) against the PyTorch reference, and the
// ATTNChecker fault suite: the checks of test_gpt2.cpp, run on this trainer.
//
//   on a GPU:         make test_gpt2cu [PRECISION=FP32] && ./test_gpt2cu [-python /usr/bin/python3] [-seed N] [-tf32 1]
//   without a GPU:    make test_gpt2cu_cpu test_gpt2cu_bf16_cpu && ./test_gpt2cu_cpu && ./test_gpt2cu_bf16_cpu
//                     (every kernel on the CPU, through dev/harness; what `make test` runs in CI)
//
// The tests run in the build's precision, with test_gpt2.cpp's tolerances against a float64
// reference: fp32's, or in bf16 multiples of its unit roundoff; in fp32, -tf32 1 runs them on
// TF32 tensor cores (the float64 comparisons skipped, the fault suite with TF32 bounds:
// test_gpt2.cpp explains). `make test` runs fp32, bf16, and TF32 with -quick 1.
#define TESTING
#include "train_gpt2.cu"

#define TEST_CUDA_TRAINER
#include "test_gpt2.cpp"
