// test_gpt2.cu: the CUDA trainer (train_gpt2.cu) against the PyTorch reference, and the
// ATTNChecker fault suite: the checks of test_gpt2.cpp, run on this trainer.
//
//   on a GPU:         make test_gpt2cu && ./test_gpt2cu [-python /usr/bin/python3] [-seed N]
//   without a GPU:    make test_gpt2cu_cpu && ./test_gpt2cu_cpu   (every kernel on the CPU, through
//                     dev/harness; what `make test` runs in CI)
//
// The tolerances are test_gpt2.cpp's: fp32 against a float64 reference. With -tf32 they would
// not hold (TF32 keeps 10 fraction bits), so the tests run in fp32.
#define TESTING
#include "train_gpt2.cu"

#define TEST_CUDA_TRAINER
#include "test_gpt2.cpp"
