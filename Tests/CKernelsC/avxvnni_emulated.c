// Test-only: compiles Sources/CKernels/qk_avxvnni.c against SIMDe's portable AVX2 and
// AVX512-VNNI/VL intrinsics (Debian libsimde-dev; _mm256_dpbusd_epi32 has the semantics of
// AVX-VNNI's VEX vpdpbusd), so the AVX-VNNI kernels' logic (shift, column-sum compensation,
// masks, blocking, fused output) is checked bit-exact on machines without AVX-VNNI. Built by
// avx512_emulated.sh instead of the real qk_avxvnni.c.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>
#include <simde/x86/avx512/dpbusd.h>
#include <stdint.h>
#include <string.h>
#include "emu_fma.h"

// Fused like the hardware (see emu_fma.h): the fused output stage's GELU is checked bit-exact.
EMU_FMA(emu_fmadd256_ps, simde__m256, 8, +)
#undef _mm256_fmadd_ps
#define _mm256_fmadd_ps emu_fmadd256_ps

#define QK_AVXVNNI_EMULATED 1
#include "../../Sources/CKernels/qk_avxvnni.c"
