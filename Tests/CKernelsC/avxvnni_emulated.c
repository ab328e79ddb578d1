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

#define QK_AVXVNNI_EMULATED 1
#include "../../Sources/CKernels/qk_avxvnni.c"
