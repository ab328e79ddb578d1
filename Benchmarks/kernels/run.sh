#!/usr/bin/env bash
# Build the CKernels sources (the same files as the Swift target) with the benchmark driver
# and run it. Usage: Benchmarks/kernels/run.sh [--scalar]   (CC=clang to use another compiler)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cc="${CC:-cc}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$cc" -O2 -std=gnu11 -Wall -I"$root/Sources/CKernels/include" "$root"/Sources/CKernels/*.c \
    "$here/gemm_bench.c" -lm -lpthread -o "$out/gemm_bench"
"$out/gemm_bench" "$@"
