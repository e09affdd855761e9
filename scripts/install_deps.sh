#!/usr/bin/env bash
# install_deps.sh: installs the Debian packages that training (`train`) or the tests (`test`)
# need and are missing. As root it runs apt-get; otherwise it prints the exact command to run.
#
#   scripts/install_deps.sh train|test
set -euo pipefail
what=${1:-train}

# package -> a file or command that shows it is installed
declare -A probe=(
    [make]=/usr/bin/make
    [g++]=/usr/bin/g++
    [libopenblas-openmp-dev]=/usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h
    [python3]=/usr/bin/python3
    [python3-numpy]=/usr/lib/python3/dist-packages/numpy
    [python3-regex]=/usr/lib/python3/dist-packages/regex
    [python3-matplotlib]=/usr/lib/python3/dist-packages/matplotlib
    [bible-kjv]=/usr/bin/bible
    [npm]=npm
    [python3-torch]=/usr/lib/python3/dist-packages/torch
    [clang-22]=/usr/bin/clang++-22
    [openmpi-bin]=/usr/bin/mpirun
    [libopenmpi-dev]=/usr/bin/mpicxx
)
packages="make g++ libopenblas-openmp-dev python3 python3-numpy python3-regex python3-matplotlib bible-kjv npm"
# clang-22: the sanitizer build (make sanitize, make cost: dev/harness/README.md); OpenMPI: the
# data-parallel tests (mpirun -np 2 on the CPU harness)
[ "$what" = test ] && packages="$packages python3-torch clang-22 openmpi-bin libopenmpi-dev"

missing=()
for p in $packages; do
    target=${probe[$p]}
    if [[ "$target" == /* ]]; then [ -e "$target" ] && continue; else command -v "$target" > /dev/null && continue; fi
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages: ${missing[*]} (hint: run: sudo apt-get install -y --no-install-recommends ${missing[*]})" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
