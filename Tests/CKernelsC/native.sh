#!/usr/bin/env bash
# Build kernel_check.c natively with the CKernels sources and run it: every ISA this CPU
# supports against scalar, and a check that the per-call dispatch really runs that ISA.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -n "${CC:-}" ]; then cc="$CC"; elif command -v clang >/dev/null 2>&1; then cc=clang; else cc=cc; fi
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler"; exit 77; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$cc" -O2 -std=c11 -Wall -Wextra -I"$root/Sources/CKernels/include" "$root"/Sources/CKernels/*.c \
    "$here/kernel_check.c" -lm -o "$out/kernel_check"
"$out/kernel_check"
