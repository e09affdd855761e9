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

HEADERS := abft.cuh $(wildcard llmc/*.h)

.PHONY: all train test bench clean
all: train_gpt2 test_gpt2

# The quick start: installs what is missing, prepares the King James Bible once (cached),
# builds, trains a small GPT-2 with ATTNChecker on (~5 minutes on 2 cores), plots the loss.
TRAIN_FLAGS ?= -e L4C256H4 -b 8 -t 64 -x 600 -l 1e-3 -v 100 -s 200 -g 64 -n 200
train:
	scripts/install_deps.sh train
	$(MAKE) train_gpt2
	$(PY3) scripts/prepare_data.py
	./train_gpt2 -i 'data/bible/train_*.bin' -j 'data/bible/val_*.bin' $(TRAIN_FLAGS) -o log_bible
	$(PY3) scripts/plot_loss.py log_bible/main.jsonl log_bible/loss.png

train_gpt2: train_gpt2.cpp $(HEADERS)
	$(CXX) $(CXXFLAGS) $(OMP) $(CPPFLAGS) $< -o $@ $(LDLIBS)

test_gpt2: test_gpt2.cpp train_gpt2.cpp $(HEADERS)
	$(CXX) $(CXXFLAGS) $(OMP) $(CPPFLAGS) $< -o $@ $(LDLIBS)

dev/test_llmc: dev/test_llmc.cpp $(wildcard llmc/*.h)
	$(CXX) $(CXXFLAGS) $(CPPFLAGS) $< -o $@

clean:
	rm -f train_gpt2 test_gpt2 dev/test_llmc dev/harness/test_harness_cpu dev/harness/test_harness_asan \
		dev/harness/test_harness_sm80 dev/harness/test_harness_sm90

# every test this machine can run; the closing line sums them all
include dev/harness/Makefile.inc
NVCC := $(firstword $(wildcard /usr/local/cuda/bin/nvcc) nvcc)

test: train_gpt2 test_gpt2 dev/test_llmc dev/harness/test_harness_cpu harness-test-nvcc
	@test -n "$(PYTHON)" || { echo "error: no python with torch found (hint: apt-get install python3-torch, or make test PYTHON=/path/to/python)"; exit 1; }
	scripts/run_tests.sh "./test_gpt2 -python $(PYTHON)" "dev/test_llmc" "scripts/test_train.sh ./train_gpt2 $(PYTHON)" \
		"$(PY3) scripts/test_bpe.py" "dev/harness/test_harness_cpu"

# ABFT overhead at a mid-size shape (the lm head dominates), then ms/step at GPT-2 124M shapes
bench: train_gpt2
	OMP_NUM_THREADS=2 ./train_gpt2 -e L4C256H4V50257T256 -b 4 -t 256 -bench 11
	OMP_NUM_THREADS=2 ./train_gpt2 -e d12 -b 4 -t 64 -bench 5
