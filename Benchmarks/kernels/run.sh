#!/usr/bin/env bash
# Build the CKernels sources (the same files as the Swift target) with the benchmark driver
# and run it. Usage: Benchmarks/kernels/run.sh [--scalar] [--isa NAME] [--shape K N] [--2t] [--seconds S] [--gops]
# Default output: MAC/cycle/core of int8 and fp32 on the model's linear shapes at M = 64..384,
# with the clock measured in the same run (see gemm_bench.c).
# Compiler: $CC, else clang (what SwiftPM compiles the package with), else cc. gcc 12 keeps
# some AVX-512 accumulators of the 6x4 VNNI micro-kernel on the stack; clang does not.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -n "${CC:-}" ]; then cc="$CC"; elif command -v clang >/dev/null 2>&1; then cc=clang; else cc=cc; fi
echo "# compiler: $cc -O2 ($("$cc" --version | head -1))"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$cc" -O2 -std=gnu11 -Wall -I"$root/Sources/CKernels/include" "$root"/Sources/CKernels/*.c \
    "$here/gemm_bench.c" -lm -lpthread -o "$out/gemm_bench"
"$out/gemm_bench" "$@"
