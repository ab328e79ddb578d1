#!/usr/bin/env bash
# Run kernel_check.c with the AVX-512 VNNI and the AVX-VNNI kernels compiled through SIMDe's
# portable intrinsics (for machines without them, such as AMD Zen 3 CI boxes: XCR0 = 0x207).
# This checks the kernels' logic bit-exact against scalar; it says nothing about speed, and
# real hardware still has to run the native build (kernel_check or swift test) once.
# Exit 77 if SIMDe is not installed (apt-get install libsimde-dev).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cc="${CC:-cc}"
case "$(uname -m)" in x86_64) ;; *) echo "SKIP: x86-64 only"; exit 77 ;; esac
if ! echo '#include <simde/x86/avx512.h>' | "$cc" -E -x c - >/dev/null 2>&1; then
    echo "SKIP: SIMDe headers not found (apt-get install libsimde-dev)"; exit 77
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
src="$root/Sources/CKernels"
"$cc" -O1 -std=gnu11 -DQK_AVX512_EMULATED=1 -DQK_AVXVNNI_EMULATED=1 -I"$src/include" -I"$src" \
    "$src/qk_scalar.c" "$src/qk_avx2.c" "$src/qk_neon.c" "$src/qk_dispatch.c" \
    "$here/avx512_emulated.c" "$here/avxvnni_emulated.c" "$here/kernel_check.c" -lm \
    -o "$out/kernel_check_avx512emu"
"$out/kernel_check_avx512emu"
