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

HEADERS := abft.cuh $(wildcard llmc/*.h)

.PHONY: all test bench clean
all: train_gpt2 test_gpt2

train_gpt2: train_gpt2.cpp $(HEADERS)
	$(CXX) $(CXXFLAGS) $(OMP) $(CPPFLAGS) $< -o $@ $(LDLIBS)

test_gpt2: test_gpt2.cpp train_gpt2.cpp $(HEADERS)
	$(CXX) $(CXXFLAGS) $(OMP) $(CPPFLAGS) $< -o $@ $(LDLIBS)

dev/test_llmc: dev/test_llmc.cpp $(wildcard llmc/*.h)
	$(CXX) $(CXXFLAGS) $(CPPFLAGS) $< -o $@

clean:
	rm -f train_gpt2 test_gpt2 dev/test_llmc

# every test this machine can run; the closing line sums them all
test: train_gpt2 test_gpt2 dev/test_llmc
	@test -n "$(PYTHON)" || { echo "error: no python with torch found (hint: apt-get install python3-torch, or make test PYTHON=/path/to/python)"; exit 1; }
	scripts/run_tests.sh "./test_gpt2 -python $(PYTHON)" "dev/test_llmc" "scripts/test_train.sh ./train_gpt2 $(PYTHON)"

# ABFT overhead at a mid-size shape (the lm head dominates), then ms/step at GPT-2 124M shapes
bench: train_gpt2
	OMP_NUM_THREADS=2 ./train_gpt2 -e L4C256H4V50257T256 -b 4 -t 256 -bench 11
	OMP_NUM_THREADS=2 ./train_gpt2 -e d12 -b 4 -t 64 -bench 5
