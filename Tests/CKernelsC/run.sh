#!/usr/bin/env bash
# (Lives outside Tests/CKernelsTests because SwiftPM rejects C files in a Swift test target.)
# Cross-compile the CKernels sources (the exact files the Swift package builds) plus
# kernel_check.c for AArch64 and run them under qemu-user:
#   -cpu max         : NEON + dotprod (checks neon and neon-dotprod against scalar)
#   -cpu cortex-a53  : ARMv8.0 without dotprod (plain NEON path; dispatch must not pick sdot)
# Exit 0 only if every run reports "0 failed". Exit 77 if the tools are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cc="${AARCH64_CC:-aarch64-linux-gnu-gcc}"
qemu="${QEMU_AARCH64:-qemu-aarch64}"
for t in "$cc" "$qemu"; do
    command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not found (apt-get install gcc-aarch64-linux-gnu qemu-user)"; exit 77; }
done
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$cc" -O2 -static -std=c11 -Wall -Wextra -Werror -I"$root/Sources/CKernels/include" \
    "$root"/Sources/CKernels/*.c "$here/kernel_check.c" -lm -o "$out/kernel_check"
status=0
# The Swift package compiles these files with clang: make sure clang accepts the AArch64
# code too (compile only; linking uses the gcc cross toolchain above).
if command -v clang >/dev/null 2>&1 && [ -d /usr/aarch64-linux-gnu/include ]; then
    for f in "$root"/Sources/CKernels/*.c; do
        clang --target=aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include -O2 -std=c11 -Wall -Wextra \
            -Werror -I"$root/Sources/CKernels/include" -c "$f" -o "$out/$(basename "$f").o" || status=1
    done
    echo "clang --target=aarch64-linux-gnu compile check: $([ $status = 0 ] && echo ok || echo FAILED)"
fi
for cpu in max cortex-a53; do
    echo "== qemu-aarch64 -cpu $cpu"
    if ! "$qemu" -cpu "$cpu" "$out/kernel_check"; then status=1; fi
done
exit $status
