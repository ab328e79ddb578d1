// x86-64 AVX-VNNI kernels: VEX-encoded vpdpbusd on ymm (Intel Alder Lake and later cores,
// N100/N150/N305 and most current x86 small boxes; AMD Zen 5). Per-function target attributes.
//
// int8 GEMM as in the AVX-512 VNNI file, on 256-bit registers (qk_avx2_u8s8.h, shared with the
// AVX2 kernel's 7-bit-weight step): activations are shifted to unsigned, u = a + 128
// (= a XOR 0x80), so  sum u*w = sum a*w + 128 * colsum[n]  and the output stage subtracts
// 128 * colsum[n]. vpdpbusd adds four u8*s8 products into int32 without intermediate
// saturation, so the result equals the scalar one whenever the true sum fits in int32
// (K < 131000 for any inputs). Bit-exact with the scalar reference.
//
// Quantization, sgemm and the elementwise kernels of this ISA are the AVX2 ones (dispatch).
#include "qk_internal.h"

#if defined(QK_HAVE_X86) || defined(QK_AVXVNNI_EMULATED)
#include <stdlib.h>

#if !defined(QK_AVXVNNI_EMULATED)
#include <immintrin.h>
#define QK_T __attribute__((target("avxvnni,avx2,fma")))
#define QK_TI static inline __attribute__((always_inline, target("avxvnni,avx2,fma")))
#define QK_DPBUSD(acc, u, w) _mm256_dpbusd_avx_epi32(acc, u, w)
#else
// Test-only build (Tests/CKernelsC/avx512_emulated.sh): SIMDe's portable intrinsics, so this
// file's logic runs bit-exact checks on machines without AVX-VNNI.
#define QK_T
#define QK_TI static inline
#define QK_DPBUSD(acc, u, w) _mm256_dpbusd_epi32(acc, u, w)
#endif

#include "qk_avx2_math.h"

// 6 rows x 16 channels = 12 ymm accumulators (vpdpbusd adds in place: no temporaries).
#define U8S8_MR 6
#define U8S8_STEP(acc, u, w) QK_DPBUSD(acc, u, w)
#include "qk_avx2_u8s8.h"

QK_T void qk_avxvnni_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                             const int8_t *packed, const int32_t *colsum, const float *wscale,
                             const float *bias, qk_act act, void *C, int ldc, int n0, int n1,
                             int out_f32) {
    u8s8_gemm(M, N, K, A, lda, ascale, packed, colsum, wscale, bias, act, C, ldc, n0, n1, out_f32);
}

#endif
