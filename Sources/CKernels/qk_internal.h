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
void qk_scalar_layernorm(int M, int D, const float *X, int ldx, const float *gamma, const float *beta, float eps,
                         float *out, int ldo);

void qk_scalar_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                              float *out, int ldo, float *scratch);
// Query rows per block in the fused attention (the scratch holds this many score rows of Lp):
// a block's scores are computed key panel by key panel, each panel (16 keys x dh, in L1) used
// by every micro-kernel row group of the block, then the block's P.V the same way per 16-column
// panel of V. A multiple of every ISA's micro-kernel rows (AVX2/AVX-512 6, NEON 4).
#define QK_ATT_MB 48

// F_(R, ...) with R_ in 1...6 a compile-time constant: the micro-kernels' row-count dispatch.
#define QK_ROWS6(F_, R_, ...)                                                                          \
    switch (R_) {                                                                                   \
    case 6: F_(6, __VA_ARGS__); break;                                                              \
    case 5: F_(5, __VA_ARGS__); break;                                                              \
    case 4: F_(4, __VA_ARGS__); break;                                                              \
    case 3: F_(3, __VA_ARGS__); break;                                                              \
    case 2: F_(2, __VA_ARGS__); break;                                                              \
    default: F_(1, __VA_ARGS__); break;                                                             \
    }

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
                     const int8_t *packed, const int32_t *colsum, int wmax, const float *wscale,
                     const float *bias, qk_act act, void *C, int ldc, int n0, int n1, int out_f32);
void qk_avx2_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      const float *bias, qk_act act, float *C, int ldc, int n0, int n1);
void qk_avx2_sgemm_small(int M, int K, const float *A, int lda, const float *B, int ldb,
                         const float *bias, qk_act act, float *C, int ldc, int n0, int n1);
void qk_avx2_gelu(size_t n, float *x);
void qk_avx2_softmax_rows(int M, int N, float *X, int ldx);
void qk_avx2_layernorm(int M, int D, const float *X, int ldx, const float *gamma, const float *beta, float eps,
                       float *out, int ldo);
float qk_avx2_softmax_e16(int L, float *x);
void qk_avx2_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                            float *out, int ldo, float *scratch);
void qk_avx512_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                              float *out, int ldo, float *scratch);

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
void qk_neon_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                            float *out, int ldo, float *scratch);
#endif

// ---- shared scalar math (identical formulas in every ISA file) -------------------------
//
// erf approximation: x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (odd degree-13 numerator,
// even degree-8 denominator; the rational approximation used by Eigen/XLA for float erf).
// Measured against libm erf() in double over [-12, 12] step 1e-5 (see the tests):
// max abs error 4.2e-7 (plain fp32 evaluation), 3.6e-7 (with FMA); erf(+-4) rounds to +-1
// in fp32 so the clamp costs nothing. Every a*b+c is one fused multiply-add (fmaf), exactly as
// the SIMD versions compute it (gelu8, gelu16, gelu4), so GELU — and the int8 GEMM's fused
// output stage — is bit-exact on every ISA. On x86-64 without FMA, fmaf is libm's (the scalar
// path is the reference and the fallback, not a fast path).
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
    float p = fmaf(x2, QK_ERF_A13, QK_ERF_A11);
    p = fmaf(x2, p, QK_ERF_A9);
    p = fmaf(x2, p, QK_ERF_A7);
    p = fmaf(x2, p, QK_ERF_A5);
    p = fmaf(x2, p, QK_ERF_A3);
    p = fmaf(x2, p, QK_ERF_A1);
    p = x * p;
    float q = fmaf(x2, QK_ERF_B8, QK_ERF_B6);
    q = fmaf(x2, q, QK_ERF_B4);
    q = fmaf(x2, q, QK_ERF_B2);
    q = fmaf(x2, q, QK_ERF_B0);
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

// The fused attention's exp: the same steps as qk_exp_approx, but every a*b+c is one fused
// multiply-add, exactly as the SIMD versions compute it (exp8 in qk_avx2.c, exp4 in qk_neon.c),
// so all ISAs agree bit for bit. min/max keep the SIMD NaN rule (NaN -> QK_EXP_HI).
static inline float qk_exp_fma(float x0) {
    float x = x0 < QK_EXP_HI ? x0 : QK_EXP_HI;
    x = x > QK_EXP_LO ? x : QK_EXP_LO;
    const float magic = 12582912.0f;
    float n = fmaf(x, QK_LOG2E, magic) - magic;
    float r = fmaf(-n, QK_LN2_HI, x);
    r = fmaf(-n, QK_LN2_LO, r);
    float p = fmaf(QK_EXP_P0, r, QK_EXP_P1);
    p = fmaf(p, r, QK_EXP_P2);
    p = fmaf(p, r, QK_EXP_P3);
    p = fmaf(p, r, QK_EXP_P4);
    p = fmaf(p, r, QK_EXP_P5);
    p = fmaf(p, r * r, r) + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    float y = p * s;
    return x0 < QK_EXP_LO ? 0.0f : y;
}

// The fused attention's row sum: 16 partial sums s[j % 16] (added in j order), then this tree.
static inline float qk_sum16_tree(const float s[16]) {
    float t8[8], t4[4];
    for (int i = 0; i < 8; i++) t8[i] = s[i] + s[i + 8];
    for (int i = 0; i < 4; i++) t4[i] = t8[i] + t8[i + 4];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

// Scratch layout of qk_attention_head: K packed as qk_pack_b16 panels [Lp/16][dh][16], V as
// panels of 16 columns [dhp/16][L][16] (zero past dh), then QK_ATT_MB score rows of Lp.
static inline size_t qk_att_kt_floats(int L, int dh) { return (size_t)QK_ROUND_UP(L, 16) * (size_t)dh; }
static inline size_t qk_att_vp_floats(int L, int dh) { return (size_t)QK_ROUND_UP(dh, 16) * (size_t)L; }

/// Packs the V rows [0, L) x columns [0, dh) into panels of 16 columns laid out [j][16]
/// (zero past dh): the B operand of P.V for the sgemm micro-kernels, read sequentially.
static inline void qk_pack_v16(const float *V, int ld, int L, int dh, float *vp) {
    for (int cb = 0; cb < dh; cb += 16) {
        float *p = vp + (size_t)cb * (size_t)L;
        const int w = dh - cb < 16 ? dh - cb : 16;
        for (int j = 0; j < L; j++) {
            const float *v = V + (size_t)j * (size_t)ld + cb;
            float *d = p + (size_t)j * 16;
            int c = 0;
            for (; c < w; c++) d[c] = v[c];
            for (; c < 16; c++) d[c] = 0.0f;
        }
    }
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


// ---- int16 attention (qk_attention_head_i16) ------------------------------------------------
//
// Scratch layout, each region 64-byte aligned relative to the scratch start:
//   qq  int16 [L][dhp]              Q rows at +-qmax (dhp = round_up(dh, 2), zero pad)
//   qs  float [L]                   their scales
//   kp  int16 [Lp/16][dhp/2][16][2] K as panels of 16 keys, d in pairs (zero past L and dh)
//   ks  float [Lp]                  K row scales (0 past L)
//   vp  int16 [dh16/16][Lp/2][16][2] V as panels of 16 columns, j in pairs (zero past L, dh)
//   vs  float [dh16]                V column scale / 32767 (0 past dh)
//   S   float [QK_ATT_MB][Lp]       a block's score rows, then its e = exp(s - max)
//   P   int16 [QK_ATT_MB][Lp]       a block's quantized probabilities (0 past L)
// A pair (x[2t], x[2t+1]) of int16 is read as one int32 and broadcast: the multiplier of
// vpdpwssd / vpmaddwd, whose lanes each hold the matching pair of the panel.
typedef struct {
    int Lp, dhp, dh16;
    int16_t *qq, *kp, *vp, *P;
    float *qs, *ks, *vs, *S;
} qk_att16;

qk_att16 qk_att16_layout(int L, int dh, float *scratch);
size_t qk_att16_bytes(int L, int dh);
// The probability scale step: p = round(min(e * f, 32767)) with f = (1 / sum) * 32767, round
// half to even (as cvtps2dq in the default rounding mode).
#define QK_ATT16_PMAX 32767.0f
// The largest head size qk_attention_head_i16 takes (the dispatcher uses the fp32 kernel above).
#define QK_ATT16_MAX_DH 256

// round(min(max(x * inv, -qmax), qmax)) half to even (|v| <= 32767 < 2^22: adding and then
// subtracting 1.5 * 2^23 rounds to an integer exactly as cvtps2dq does); NaN -> qmax (the SIMD
// min/max rule). Separate statements: no fused multiply-add may form.
static inline int32_t qk_q16(float x, float inv, float qmax) {
    float v = x * inv;
    v = v < qmax ? v : qmax;
    v = v > -qmax ? v : -qmax;
    v = v + 12582912.0f;
    v = v - 12582912.0f;
    return (int32_t)v;
}

// Largest |x[i]| of n values (NaN ignored; the max is exact in any order, so 8 running maxima).
static inline float qk_amax(int n, const float *x) {
    float m[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            const float a = fabsf(x[i + k]);
            m[k] = a > m[k] ? a : m[k];
        }
    for (; i < n; i++) {
        const float a = fabsf(x[i]);
        m[0] = a > m[0] ? a : m[0];
    }
    float r = 0.0f;
    for (int k = 0; k < 8; k++) r = m[k] > r ? m[k] : r;
    return r;
}

// A row's quantization: inv for qk_q16 and its scale (amax / qmax), both 0 for a row with
// nothing to scale (all zero, or a non-finite largest value).
static inline float qk_row16(int n, const float *x, float qmax, float *inv) {
    const float am = qk_amax(n, x);
    const int ok = am > 0.0f && am <= 3.4e38f;
    *inv = ok ? qmax / am : 0.0f;
    return ok ? am / qmax : 0.0f;
}

// Q, K and V are a head's columns of the QKV projection's output: rows ld floats apart, most of
// them just written by the other thread's core, so a row's first read waits ~250 cycles. Reading
// ahead by QK_ATT16_PREFETCH rows overlaps those waits (perf: the amax loops held a fifth of the
// attention's time without it). A prefetch changes no result.
#define QK_ATT16_PREFETCH 8
// Prefetches the dh floats of row i + QK_ATT16_PREFETCH of `rows` (ld floats apart), if it is below L.
static inline void qk_att16_prefetch_ahead(const float *rows, int i, int L, int ld, int dh) {
    if (i + QK_ATT16_PREFETCH >= L) return;
    const float *x = rows + (size_t)(i + QK_ATT16_PREFETCH) * (size_t)ld;
    for (int d = 0; d < dh; d += 16) __builtin_prefetch(x + d);
    __builtin_prefetch(x + dh - 1);
}

// Quantizes and packs Q, K and V: O(L dh), portable C written so that it vectorizes, inlined
// into each ISA's attention (compiled with that file's target: AVX2, AVX-512, NEON) and into
// the scalar twin. Every step is exact or one IEEE operation, so each copy computes the same bits.
static inline void qk_att16_prepare(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                           const qk_att16 *w) {
    const int dhp = w->dhp, Lp = w->Lp, dh16 = w->dh16;
    const float qmax = (float)qk_att16_qmax(dh);
    // Q rows: scale = amax / qmax.
    for (int i = 0; i < L; i++) {
        const float *x = Q + (size_t)i * (size_t)ld;
        qk_att16_prefetch_ahead(Q, i, L, ld, dh);
        int16_t *o = w->qq + (size_t)i * (size_t)dhp;
        float inv;
        w->qs[i] = qk_row16(dh, x, qmax, &inv);
        for (int d = 0; d < dh; d++) o[d] = (int16_t)qk_q16(x[d], inv, qmax);
        if (dh < dhp) o[dh] = 0;
    }
    // K rows, the same way, into panels of 16 keys: the pair (d, d+1) of key j is one int32 at
    // [j / 16][d / 2][j % 16].
    int32_t *kp = (int32_t *)(void *)w->kp;
    for (int j = 0; j < Lp; j++) {
        int32_t *panel = kp + (size_t)(j / 16) * (size_t)(dhp / 2) * 16 + (j % 16);
        if (j >= L) {
            w->ks[j] = 0.0f;
            for (int t = 0; t < dhp / 2; t++) panel[(size_t)t * 16] = 0;
            continue;
        }
        const float *x = K + (size_t)j * (size_t)ld;
        qk_att16_prefetch_ahead(K, j, L, ld, dh);
        float inv;
        w->ks[j] = qk_row16(dh, x, qmax, &inv);
        int16_t row[QK_ATT16_MAX_DH + 2];
        for (int d = 0; d < dh; d++) row[d] = (int16_t)qk_q16(x[d], inv, qmax);
        row[dh] = 0;
        for (int t = 0; t < dhp / 2; t++)
            panel[(size_t)t * 16] = (int32_t)((uint32_t)(uint16_t)row[2 * t] | ((uint32_t)(uint16_t)row[2 * t + 1] << 16));
    }
    // V columns: scale = amax / 32767, stored divided by the probabilities' 32767. Keys j and
    // j + 1 of column c are one int32 at [c / 16][j / 2][c % 16].
    float am[QK_ATT16_MAX_DH], inv[QK_ATT16_MAX_DH];
    for (int c = 0; c < dh16; c++) am[c] = 0.0f;
    for (int j = 0; j < L; j++) {
        const float *x = V + (size_t)j * (size_t)ld;
        qk_att16_prefetch_ahead(V, j, L, ld, dh);
        for (int c = 0; c < dh; c++) {
            const float a = fabsf(x[c]);
            am[c] = a > am[c] ? a : am[c];
        }
    }
    for (int c = 0; c < dh16; c++) {
        const int ok = c < dh && am[c] > 0.0f && am[c] <= 3.4e38f;
        inv[c] = ok ? QK_ATT16_PMAX / am[c] : 0.0f;
        w->vs[c] = ok ? (am[c] / QK_ATT16_PMAX) / QK_ATT16_PMAX : 0.0f;
    }
    int32_t *vp = (int32_t *)(void *)w->vp;
    for (int j = 0; j < Lp; j += 2) {
        int16_t r0[QK_ATT16_MAX_DH], r1[QK_ATT16_MAX_DH];
        for (int c = 0; c < dh16; c++) r0[c] = r1[c] = 0;
        if (j < L) {
            const float *x = V + (size_t)j * (size_t)ld;
            for (int c = 0; c < dh; c++) r0[c] = (int16_t)qk_q16(x[c], inv[c], QK_ATT16_PMAX);
        }
        if (j + 1 < L) {
            const float *x = V + (size_t)(j + 1) * (size_t)ld;
            for (int c = 0; c < dh; c++) r1[c] = (int16_t)qk_q16(x[c], inv[c], QK_ATT16_PMAX);
        }
        for (int cp = 0; cp < dh16; cp += 16) {
            int32_t *panel = vp + (size_t)(cp / 16) * (size_t)(Lp / 2) * 16 + (size_t)(j / 2) * 16;
            for (int c = 0; c < 16; c++)
                panel[c] = (int32_t)((uint32_t)(uint16_t)r0[cp + c] | ((uint32_t)(uint16_t)r1[cp + c] << 16));
        }
    }
}

static inline int32_t qk_load_pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

void qk_scalar_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                  float *out, int ldo, float *scratch);
#if defined(QK_HAVE_X86) || defined(QK_AVX512_EMULATED)
void qk_avx2_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                float *out, int ldo, float *scratch);
void qk_avx512_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                  float *out, int ldo, float *scratch);
#endif
#if defined(QK_HAVE_ARM64)
void qk_neon_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                float *out, int ldo, float *scratch);
#endif

#endif
