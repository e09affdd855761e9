# Makefile: builds the CPU trainer and its tests; `make test` runs every test this machine can.
CXX ?= g++
CXXFLAGS ?= -O3 -march=native -std=c++17 -Wall -Wextra -Wno-unused-function
BLAS_INC := $(firstword $(wildcard /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/openblas))
BLAS_LIB := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/openblas))
CPPFLAGS += -I. $(if $(BLAS_INC),-I$(BLAS_INC))
LDLIBS += $(if $(BLAS_LIB),-L$(BLAS_LIB) -Wl$(comma)-rpath$(comma)$(BLAS_LIB)) -lopenblas -lm
comma := ,
OMP := -fopenmp

# a Python that imports torch, for the PyTorch reference (Debian's python3-torch)
PYTHON ?= $(firstword $(foreach p,/usr/bin/python3 python3 python,$(shell $(p) -c 'import torch' >/dev/null 2>&1 && echo $(p))))

# Debian's python3 (the one that apt-get gives packages to)
PY3 := $(firstword $(wildcard /usr/bin/python3) python3)

HEADERS := abft.cuh $(wildcard llmc/*.h llmc/*.cuh)

.PHONY: all train test run-tests test-bf16-train bench clean refs FORCE
all: train_gpt2 test_gpt2

# The quick start: installs what is missing, prepares the King James Bible once (cached),
# builds, trains a GPT-2 with ATTNChecker on, plots the loss. Where nvidia-smi sees a GPU and
# nvcc is installed it runs the CUDA trainer, else the CPU one. MODEL picks the preset:
#   small (default)  L4C256H4 at T=64, 600 steps into log_bible (5-13 minutes on 2 CPU cores)
#   d12              GPT-2 124M at T=1024 with llm.c's hyperparameters: 0.5M-token steps (32
#                    accumulated micro-batches of 16 x 1024), lr 6e-4 after a warmup, cosine decay
#                    to 0, weight decay 0.1, clipping at 1; 60 steps into log_bible_d12 (for a GPU)
MODEL ?= small
TRAIN_FLAGS_small := -e L4C256H4 -b 8 -t 64 -x 600 -l 1e-3 -u 30 -q 0.1 -v 100 -s 200 -g 64 -n 200
TRAIN_FLAGS_d12 := -e d12 -b 16 -t 1024 -d 524288 -x 60 -l 6e-4 -u 6 -q 0 -c 0.1 -v 10 -m 1 -s 20 -g 64 -n 20
TRAIN_FLAGS ?= $(TRAIN_FLAGS_$(MODEL))
TRAIN_LOG := log_bible$(if $(filter-out small,$(MODEL)),_$(MODEL))
HAVE_GPU = $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU' && echo yes)
TRAINER = $(if $(and $(HAVE_GPU),$(NVCC)),train_gpt2cu,train_gpt2)
train:
	@test -n "$(TRAIN_FLAGS_$(MODEL))" || { echo "error: MODEL=$(MODEL): no such preset (hint: MODEL=small or MODEL=d12)"; exit 1; }
	scripts/install_deps.sh train
	@echo "make train: $(if $(filter train_gpt2cu,$(TRAINER)),a GPU and nvcc: the CUDA trainer (train_gpt2cu),no GPU seen by nvidia-smi (or no nvcc): the CPU trainer (train_gpt2)), preset MODEL=$(MODEL)"
	$(if $(and $(filter d12,$(MODEL)),$(filter train_gpt2,$(TRAINER))),@echo "warning: MODEL=d12 is GPT-2 124M on 0.5M-token steps: on a CPU a step takes hours (hint: a GPU with nvcc, or MODEL=small)")
	$(MAKE) --no-print-directory $(TRAINER)
	$(PY3) scripts/prepare_data.py
	./$(TRAINER) -i 'data/bible/train_*.bin' -j 'data/bible/val_*.bin' $(TRAIN_FLAGS) -o $(TRAIN_LOG)
	$(PY3) scripts/plot_loss.py $(TRAIN_LOG)/main.jsonl $(TRAIN_LOG)/loss.png

train_gpt2: train_gpt2.cpp $(HEADERS)
	$(CXX) $(CXXFLAGS) $(OMP) $(CPPFLAGS) $< -o $@ $(LDLIBS)

test_gpt2: test_gpt2.cpp train_gpt2.cpp $(HEADERS)
	$(CXX) $(CXXFLAGS) $(OMP) $(CPPFLAGS) $< -o $@ $(LDLIBS)

dev/test_llmc: dev/test_llmc.cpp $(wildcard llmc/*.h)
	$(CXX) $(CXXFLAGS) $(CPPFLAGS) $< -o $@

# GPT-2's BPE encoder on the command line; scripts/test_bpe.py checks it against gpt2_bpe.py
dev/bpe_encode: dev/bpe_encode.cpp $(wildcard llmc/*.h)
	$(CXX) $(CXXFLAGS) $(CPPFLAGS) $< -o $@

clean:
	rm -f train_gpt2 test_gpt2 dev/test_llmc dev/bpe_encode dev/harness/test_harness_cpu dev/harness/test_harness_asan \
		train_gpt2cu test_gpt2cu train_gpt2cu_fp32 train_gpt2cu_cpu test_gpt2cu_cpu train_gpt2cu_bf16_cpu test_gpt2cu_bf16_cpu test_gpt2cu_asan .precision \
		dev/harness/test_harness_sm80 dev/harness/test_harness_sm90 $(SANITIZE_BINS) dev/harness/cost_gpt2 \
		dev/harness/cost_gpt2_bf16 dev/harness/cost_fp32.out dev/harness/cost_bf16.out dev/harness/cost_fp32.totals \
		dev/harness/cost_bf16.totals dev/harness/test_nccl dev/harness/test_nccl_san
	rm -rf dev/cuda/build

# every test this machine can run; the closing line sums them all
include dev/harness/Makefile.inc
NVCC := $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
# the nvcc builds `make test` checks (the binaries run only on a GPU); none without the CUDA toolkit.
# test_gpt2cu holds all of train_gpt2.cu, in PRECISION (bf16); train_gpt2cu_fp32 the fp32 build.
NVCC_BUILDS = $(if $(NVCC),harness-test-nvcc $(CUDA_DEV_NVCC) test_gpt2cu train_gpt2cu_fp32)

# ----------------------------------------------------------------------------
# the CUDA trainer and its test
#   train_gpt2cu, test_gpt2cu          nvcc, for the local GPU's architecture (nvidia-smi), or for
#                                      sm_80 and sm_90 where there is none; override: CUDA_ARCHS="86".
#                                      In bf16 (PRECISION=BF16, the default, as llm.c's) or fp32
#                                      (PRECISION=FP32): llmc/precision.h; train_gpt2cu_fp32 is
#                                      the fp32 build whatever PRECISION says
#   train_gpt2cu_cpu, test_gpt2cu_cpu  the same sources with every kernel on the CPU (dev/harness), fp32
#   train_gpt2cu_bf16_cpu, test_gpt2cu_bf16_cpu   the same in bf16
#   test_gpt2cu_asan                   test_gpt2cu_cpu under AddressSanitizer and UBSan
GPU_ARCH := $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '.')
CUDA_ARCHS ?= $(if $(GPU_ARCH),$(GPU_ARCH),80 90)
# unused static functions are normal in a build that includes a trainer for its tests (as
# -Wno-unused-function in CXXFLAGS)
PRECISION ?= BF16
ifeq ($(filter BF16 FP32,$(PRECISION)),)
$(error PRECISION=$(PRECISION): give BF16 or FP32)
endif
PRECISION_FLAGS := $(if $(filter BF16,$(PRECISION)),-DENABLE_BF16)
NVCC_TRAINER_FLAGS := -O3 -std=c++17 -I. $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                      -Xcudafe --diag_suppress=declared_but_not_referenced $(PRECISION_FLAGS)
CUDA_TRAINER_DEPS := train_gpt2.cu $(HEADERS)
# Data parallel (llmc/ranks.h): where MPI is installed, the trainers join an mpirun job; the
# GPU build averages gradients with NCCL (shipped with the CUDA toolkit), the harness build
# with the harness's NCCL over MPI (dev/harness/harness_nccl.h). Without MPI: one process.
TRAINER_MPI_CXXFLAGS := $(if $(HARNESS_MPICXX),-DUSE_MPI $(HARNESS_MPI_CXXFLAGS))
NVCC_MPI_LDLIBS := $(if $(HARNESS_MPICXX),-lnccl $(HARNESS_MPI_LDLIBS))
HARNESS_TRAINER_CXXFLAGS = $(HARNESS_CXXFLAGS) $(if $(HARNESS_MPICXX),-DCUDA_HARNESS_NCCL) $(TRAINER_MPI_CXXFLAGS)
HARNESS_TRAINER_LDLIBS = $(HARNESS_LDLIBS) $(HARNESS_MPI_LDLIBS)

# the precision the nvcc builds were made in: they are remade when PRECISION changes
.precision: FORCE
	@echo $(PRECISION) | cmp -s - $@ || echo $(PRECISION) > $@
FORCE:

train_gpt2cu: $(CUDA_TRAINER_DEPS) .precision
	$(NVCC) $(NVCC_TRAINER_FLAGS) $(TRAINER_MPI_CXXFLAGS) $< -o $@ $(NVCC_LDLIBS) $(NVCC_MPI_LDLIBS)

test_gpt2cu: test_gpt2.cu test_gpt2.cpp $(CUDA_TRAINER_DEPS) .precision
	$(NVCC) $(NVCC_TRAINER_FLAGS) $< -o $@ $(NVCC_LDLIBS)

train_gpt2cu_fp32: $(CUDA_TRAINER_DEPS)
	$(NVCC) $(filter-out -DENABLE_BF16,$(NVCC_TRAINER_FLAGS)) $(TRAINER_MPI_CXXFLAGS) $< -o $@ $(NVCC_LDLIBS) $(NVCC_MPI_LDLIBS)

train_gpt2cu_cpu: $(CUDA_TRAINER_DEPS) $(HARNESS_NCCL_HEADERS)
	$(HARNESS_CXX) $(HARNESS_TRAINER_CXXFLAGS) -Wno-unused-function $< -o $@ $(HARNESS_TRAINER_LDLIBS)

test_gpt2cu_cpu: test_gpt2.cu test_gpt2.cpp $(CUDA_TRAINER_DEPS) $(HARNESS_HEADERS)
	$(HARNESS_CXX) $(HARNESS_CXXFLAGS) -Wno-unused-function $< -o $@ $(HARNESS_LDLIBS)

train_gpt2cu_bf16_cpu: $(CUDA_TRAINER_DEPS) $(HARNESS_NCCL_HEADERS)
	$(HARNESS_CXX) $(HARNESS_TRAINER_CXXFLAGS) -DENABLE_BF16 -Wno-unused-function $< -o $@ $(HARNESS_TRAINER_LDLIBS)

test_gpt2cu_bf16_cpu: test_gpt2.cu test_gpt2.cpp $(CUDA_TRAINER_DEPS) $(HARNESS_HEADERS)
	$(HARNESS_CXX) $(HARNESS_CXXFLAGS) -DENABLE_BF16 -Wno-unused-function $< -o $@ $(HARNESS_LDLIBS)

test_gpt2cu_asan: test_gpt2.cu test_gpt2.cpp $(CUDA_TRAINER_DEPS) $(HARNESS_HEADERS)
	$(HARNESS_CXX) $(HARNESS_ASAN_CXXFLAGS) -Wno-unused-function $< -o $@ $(HARNESS_LDLIBS)

# ----------------------------------------------------------------------------
# dev/cuda: every kernel file runs its validations through the CPU harness, and must compile
# with nvcc for sm_80 and sm_90 (the binaries run only on a GPU: scripts/gpu_check.sh)
CUDA_DEV_SRCS := $(wildcard dev/cuda/*.cu)
CUDA_DEV_CPU := $(CUDA_DEV_SRCS:dev/cuda/%.cu=dev/cuda/build/%_cpu)
CUDA_DEV_NVCC := $(CUDA_DEV_SRCS:dev/cuda/%.cu=dev/cuda/build/%.nvcc)
CUDA_DEV_DEPS := dev/cuda/common.h $(HEADERS) $(HARNESS_HEADERS)

dev/cuda/build/%_cpu: dev/cuda/%.cu $(CUDA_DEV_DEPS)
	@mkdir -p $(@D)
	$(HARNESS_CXX) $(HARNESS_CXXFLAGS) $< -o $@ $(HARNESS_LDLIBS)

dev/cuda/build/%.nvcc: dev/cuda/%.cu $(CUDA_DEV_DEPS)
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -O3 -arch=sm_80 $< -o dev/cuda/build/$*_sm80 $(NVCC_LDLIBS)
	$(NVCC) $(NVCC_FLAGS) -O3 -arch=sm_90 $< -o dev/cuda/build/$*_sm90 $(NVCC_LDLIBS)
	touch $@

# The sanitizer run: any UBSan report fails it; 128 KiB of stack per simulated CUDA thread (the
# harness's ASan default is 1 MiB, and ASan clears a stack's shadow at every thread's end: 9x
# slower, for kernels that use a few hundred bytes).
ASAN_ENV := CUDA_HARNESS_STACK_KB=128 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# The PyTorch reference files of test_gpt2(cu) -seed 1, kept in refs/: for a GPU machine
# without PyTorch (scripts/gpu_check.sh runs test_gpt2cu on them).
refs: test_gpt2
	./test_gpt2 -python $(PYTHON) -seed 1 -refs refs

# `make test` installs what the tests need first (PyTorch for the reference, ...), then runs them
# in a fresh make, which finds the Python that imports torch; the builds run on every core, the
# tests two at a time (scripts/run_tests.sh; TEST_JOBS=1: one after another), the longest first
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test:
	scripts/install_deps.sh test
	$(MAKE) --no-print-directory -j$(BUILD_JOBS) run-tests

run-tests: train_gpt2 test_gpt2 dev/test_llmc dev/bpe_encode dev/harness/test_harness_cpu $(CUDA_DEV_CPU) \
           train_gpt2cu_cpu test_gpt2cu_cpu test_gpt2cu_bf16_cpu train_gpt2cu_bf16_cpu test_gpt2cu_asan $(SANITIZE_BINS) \
           dev/harness/test_nccl dev/harness/test_nccl_san $(NVCC_BUILDS)
	@test -n "$(PYTHON)" || { echo "error: no python with torch found (hint: apt-get install python3-torch, or make test PYTHON=/path/to/python)"; exit 1; }
	@test -n "$(NVCC)" || echo "note: no nvcc (CUDA toolkit): the nvcc builds of the .cu files were skipped; every test below runs"
	scripts/run_tests.sh "scripts/test_bf16_train.sh ./train_gpt2cu_bf16_cpu ./train_gpt2 $(PYTHON) all" \
		"scripts/test_train.sh ./train_gpt2cu_cpu $(PYTHON)" "./test_gpt2cu_bf16_cpu -python $(PYTHON) -fault_steps 2" \
		"scripts/test_ranks.sh ./train_gpt2cu_cpu $(PYTHON) ./train_gpt2cu_bf16_cpu" "$(ASAN_ENV) ./test_gpt2cu_asan -python $(PYTHON) -quick 1" \
		$(SANITIZE_TESTS) "$(PY3) scripts/test_bpe.py" "./test_gpt2cu_cpu -python $(PYTHON) -quick_faults 1" \
		"scripts/test_train.sh ./train_gpt2 $(PYTHON)" "./test_gpt2cu_cpu -python $(PYTHON) -quick 1 -tf32 1" \
		"./test_gpt2 -python $(PYTHON)" "$(MPIRUN) -np 2 dev/harness/test_nccl" "$(MPIRUN) -np 3 dev/harness/test_nccl" \
		"$(MPIRUN) -np 2 dev/harness/test_nccl_san" "dev/test_llmc" "dev/harness/test_harness_cpu" \
		$(foreach b,$(CUDA_DEV_CPU),"$(b)")

# 200 steps of make train's model in bf16 through the harness, every GEMM and kernel checked,
# against the fp32 CPU trainer: no ABFT alarm, the same loss within 1% (scripts/test_bf16_train.sh).
# Part of `make test`; this target runs it alone (about 10 minutes on 2 cores).
test-bf16-train:
	scripts/install_deps.sh train
	$(MAKE) --no-print-directory -j$(BUILD_JOBS) train_gpt2cu_bf16_cpu train_gpt2
	scripts/run_tests.sh "scripts/test_bf16_train.sh ./train_gpt2cu_bf16_cpu ./train_gpt2 $(PY3) all"

# ABFT overhead at a mid-size shape (the lm head dominates), then ms/step at GPT-2 124M shapes
bench: train_gpt2
	OMP_NUM_THREADS=2 ./train_gpt2 -e L4C256H4V50257T256 -b 4 -t 256 -bench 11
	OMP_NUM_THREADS=2 ./train_gpt2 -e d12 -b 4 -t 64 -bench 5
