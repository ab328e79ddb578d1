// Internal declarations shared by the per-ISA kernel files (not part of the public API).
#ifndef QSENT_QK_INTERNAL_H
#define QSENT_QK_INTERNAL_H

#include "ckernels.h"
#include <math.h>
#include <string.h>

#define QK_ROUND_UP(x, m) ((((x) + (m) - 1) / (m)) * (m))

// Fully unroll the small register-block loops of the micro-kernels (trip counts are
// compile-time constants after inlining); gcc otherwise keeps the accumulators in memory.
#define QK_UNROLL _Pragma("GCC unroll 8")

// ---- scalar reference (qk_scalar.c) --------------------------------------------------
void qk_scalar_quantize_rows_s8(int M, int K, const float *X, int ldx, int8_t *Q, int ldq,
                                float *scale);
// out_f32 == 0: C is int32 accumulators; otherwise C is float through the fused output stage.
void qk_scalar_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                       const int8_t *packed, const float *wscale, const float *bias,
                       qk_act act, void *C, int ldc, int n0, int n1, int out_f32);
void qk_scalar_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        const float *bias, qk_act act, float *C, int ldc, int n0, int n1);
void qk_scalar_gelu(size_t n, float *x);
void qk_scalar_softmax_rows(int M, int N, float *X, int ldx);

// sgemm_nt with fewer rows than this uses direct dot products instead of packing B.
#define QK_SGEMM_SMALL_M 4

// ---- x86-64 ----------------------------------------------------------------------------
#if defined(__x86_64__) || defined(_M_X64)
#define QK_HAVE_X86 1
#endif
#if defined(QK_HAVE_X86) || defined(QK_AVX512_EMULATED)
void qk_avx2_quantize_rows_s8(int M, int K, const float *X, int ldx, int8_t *Q, int ldq,
                              float *scale);
void qk_avx2_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                     const int8_t *packed, const float *wscale, const float *bias, qk_act act,
                     void *C, int ldc, int n0, int n1, int out_f32);
void qk_avx2_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      const float *bias, qk_act act, float *C, int ldc, int n0, int n1);
void qk_avx2_sgemm_small(int M, int K, const float *A, int lda, const float *B, int ldb,
                         const float *bias, qk_act act, float *C, int ldc, int n0, int n1);
void qk_avx2_gelu(size_t n, float *x);
void qk_avx2_softmax_rows(int M, int N, float *X, int ldx);

void qk_avx512_quantize_rows_s8(int M, int K, const float *X, int ldx, int8_t *Q, int ldq,
                                float *scale);
void qk_avx512_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                       const int8_t *packed, const int32_t *colsum, const float *wscale,
                       const float *bias, qk_act act, void *C, int ldc, int n0, int n1,
                       int out_f32);
void qk_avx512_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        const float *bias, qk_act act, float *C, int ldc, int n0, int n1);
#endif
#if defined(QK_HAVE_X86) || defined(QK_AVXVNNI_EMULATED)
void qk_avxvnni_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                        const int8_t *packed, const int32_t *colsum, const float *wscale,
                        const float *bias, qk_act act, void *C, int ldc, int n0, int n1,
                        int out_f32);
#endif

// ---- AArch64 ---------------------------------------------------------------------------
#if defined(__aarch64__)
#define QK_HAVE_ARM64 1
void qk_neon_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                     const int8_t *packed, const float *wscale, const float *bias, qk_act act,
                     void *C, int ldc, int n0, int n1, int out_f32);
void qk_neondot_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                        const int8_t *packed, const float *wscale, const float *bias,
                        qk_act act, void *C, int ldc, int n0, int n1, int out_f32);
void qk_neon_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      const float *bias, qk_act act, float *C, int ldc, int n0, int n1);
#endif

// ---- shared scalar math (identical formulas in every ISA file) -------------------------
//
// erf approximation: x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (odd degree-13 numerator,
// even degree-8 denominator; the rational approximation used by Eigen/XLA for float erf).
// Measured against libm erf() in double over [-12, 12] step 1e-5 (see the tests):
// max abs error 4.2e-7 (plain fp32 evaluation), 3.6e-7 (with FMA); erf(+-4) rounds to +-1
// in fp32 so the clamp costs nothing.
#define QK_ERF_A13 (-2.72614225801306e-10f)
#define QK_ERF_A11 (2.77068142495902e-08f)
#define QK_ERF_A9 (-2.10102402082508e-06f)
#define QK_ERF_A7 (-5.69250639462346e-05f)
#define QK_ERF_A5 (-7.34990630326855e-04f)
#define QK_ERF_A3 (-2.95459980854025e-03f)
#define QK_ERF_A1 (-1.60960333262415e-02f)
#define QK_ERF_B8 (-1.45660718464996e-05f)
#define QK_ERF_B6 (-2.13374055278905e-04f)
#define QK_ERF_B4 (-1.68282697438203e-03f)
#define QK_ERF_B2 (-7.37332916720468e-03f)
#define QK_ERF_B0 (-1.42647390514189e-02f)
#define QK_SQRT1_2 0.70710678118654752f

static inline float qk_erf_approx(float a) {
    float x = a < 4.0f ? a : 4.0f; // NaN -> 4 (only matters for garbage input)
    x = x > -4.0f ? x : -4.0f;
    float x2 = x * x;
    float p = x2 * QK_ERF_A13 + QK_ERF_A11;
    p = x2 * p + QK_ERF_A9;
    p = x2 * p + QK_ERF_A7;
    p = x2 * p + QK_ERF_A5;
    p = x2 * p + QK_ERF_A3;
    p = x2 * p + QK_ERF_A1;
    p = x * p;
    float q = x2 * QK_ERF_B8 + QK_ERF_B6;
    q = x2 * q + QK_ERF_B4;
    q = x2 * q + QK_ERF_B2;
    q = x2 * q + QK_ERF_B0;
    return p / q;
}

/// GELU, exact-erf form: 0.5 x (1 + erf(x / sqrt 2)).
static inline float qk_gelu1(float x) { return 0.5f * x * (1.0f + qk_erf_approx(x * QK_SQRT1_2)); }

static inline float qk_act1(float v, qk_act act) {
    if (act == QK_ACT_GELU) return qk_gelu1(v);
    if (act == QK_ACT_RELU) return v > 0.0f ? v : 0.0f;
    return v;
}

// exp approximation (Cephes expf polynomial, Cody-Waite reduction), branch-free so loops
// vectorize. Relative error ~2 ulp on [-87.3, 88]; returns 0 below -87.3 (incl. -inf),
// and exp(88) for anything larger.
#define QK_EXP_HI 88.0f
#define QK_EXP_LO (-87.33f)
#define QK_LOG2E 1.44269504088896341f
#define QK_LN2_HI 0.693359375f
#define QK_LN2_LO (-2.12194440e-4f)
#define QK_EXP_P0 1.9875691500E-4f
#define QK_EXP_P1 1.3981999507E-3f
#define QK_EXP_P2 8.3334519073E-3f
#define QK_EXP_P3 4.1665795894E-2f
#define QK_EXP_P4 1.6666665459E-1f
#define QK_EXP_P5 5.0000001201E-1f

static inline float qk_exp_approx(float x0) {
    float x = x0 < QK_EXP_HI ? x0 : QK_EXP_HI;
    x = x > QK_EXP_LO ? x : QK_EXP_LO;
    // n = round-to-nearest(x * log2 e) with the 1.5 * 2^23 trick (exact for |n| < 2^22).
    float t = x * QK_LOG2E + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * QK_LN2_HI;
    r = r - n * QK_LN2_LO;
    float p = QK_EXP_P0 * r + QK_EXP_P1;
    p = p * r + QK_EXP_P2;
    p = p * r + QK_EXP_P3;
    p = p * r + QK_EXP_P4;
    p = p * r + QK_EXP_P5;
    p = p * (r * r) + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    float y = p * s;
    return x0 < QK_EXP_LO ? 0.0f : y;
}

/// Packs rows [nc, nc_hi) x columns [kc, kc + kb) of the fp32 "NT" operand B into panels of
/// 16 channels laid out [k][16] (zero past nc_hi), the layout every sgemm microkernel reads.
static inline void qk_pack_b16(const float *B, int ldb, int kc, int kb, int nc, int nc_hi, float *bp) {
    for (int nb = nc; nb < nc_hi; nb += 16) {
        float *p = bp + (size_t)(nb - nc) * (size_t)kb;
        for (int j = 0; j < 16; j++) {
            if (nb + j < nc_hi) {
                const float *b = B + (size_t)(nb + j) * (size_t)ldb + kc;
                for (int k = 0; k < kb; k++) p[(size_t)k * 16 + j] = b[k];
            } else {
                for (int k = 0; k < kb; k++) p[(size_t)k * 16 + j] = 0.0f;
            }
        }
    }
}

#endif
