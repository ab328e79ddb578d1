// Test-only: compiles Sources/CKernels/qk_avxvnni.c against SIMDe's portable AVX2 and
// AVX512-VNNI/VL intrinsics (Debian libsimde-dev; _mm256_dpbusd_epi32 has the semantics of
// AVX-VNNI's VEX vpdpbusd), so the AVX-VNNI kernels' logic (shift, column-sum compensation,
// masks, blocking, fused output) is checked bit-exact on machines without AVX-VNNI. Built by
// avx512_emulated.sh instead of the real qk_avxvnni.c.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>
#include <simde/x86/avx512/dpbusd.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

// SIMDe's portable _mm256_fmadd_ps rounds the product before the add (unless built with FMA);
// the real instruction, and the scalar twin's fmaf, round once. The fused output stage's GELU
// is compared bit for bit, so the emulation must fuse too.
static inline simde__m256 emu_fmadd256_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
    float x[8], y[8], z[8];
    memcpy(x, &a, 32);
    memcpy(y, &b, 32);
    memcpy(z, &c, 32);
    for (int i = 0; i < 8; i++) x[i] = fmaf(x[i], y[i], z[i]);
    simde__m256 v;
    memcpy(&v, x, 32);
    return v;
}
#undef _mm256_fmadd_ps
#define _mm256_fmadd_ps emu_fmadd256_ps

#define QK_AVXVNNI_EMULATED 1
#include "../../Sources/CKernels/qk_avxvnni.c"
