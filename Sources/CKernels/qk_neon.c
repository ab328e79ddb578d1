// AArch64 kernels: plain Advanced SIMD (smull/smlal + sadalp) and dotprod (sdot) int8 GEMM,
// NEON fp32 sgemm_nt. Only compiled for AArch64; dotprod code uses a per-function target
// attribute so the file builds with any -march baseline (gcc: "arch=armv8.2-a+dotprod", which its arm_neon.h needs for vdotq_s32; clang: "dotprod").
//
// Plain NEON int8: products a*w lie in [-16256, 16256] (a in [-128,127], w in [-127,127]), so
// one smull plus one smlal (two k groups) stays within int16 (|sum| <= 32512); sadalp then
// widens pairs into int32. sdot accumulates four s8*s8 products straight into int32.
// Both are exact, hence bit-exact with the scalar reference.
#include "qk_internal.h"

#if defined(QK_HAVE_ARM64)
#include <arm_neon.h>
#include <stdlib.h>

#if defined(__clang__)
#define QK_DOT __attribute__((target("dotprod")))
#define QK_DOTI static inline __attribute__((always_inline, target("dotprod")))
#else
#define QK_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define QK_DOTI static inline __attribute__((always_inline, target("arch=armv8.2-a+dotprod")))
#endif
#define QK_I static inline __attribute__((always_inline))

QK_I float32x4_t gelu4(float32x4_t v) {
    float32x4_t x = vmulq_n_f32(v, QK_SQRT1_2);
    x = vminq_f32(x, vdupq_n_f32(4.0f));
    x = vmaxq_f32(x, vdupq_n_f32(-4.0f));
    float32x4_t x2 = vmulq_f32(x, x);
    float32x4_t p = vfmaq_f32(vdupq_n_f32(QK_ERF_A11), x2, vdupq_n_f32(QK_ERF_A13));
    p = vfmaq_f32(vdupq_n_f32(QK_ERF_A9), x2, p);
    p = vfmaq_f32(vdupq_n_f32(QK_ERF_A7), x2, p);
    p = vfmaq_f32(vdupq_n_f32(QK_ERF_A5), x2, p);
    p = vfmaq_f32(vdupq_n_f32(QK_ERF_A3), x2, p);
    p = vfmaq_f32(vdupq_n_f32(QK_ERF_A1), x2, p);
    p = vmulq_f32(x, p);
    float32x4_t q = vfmaq_f32(vdupq_n_f32(QK_ERF_B6), x2, vdupq_n_f32(QK_ERF_B8));
    q = vfmaq_f32(vdupq_n_f32(QK_ERF_B4), x2, q);
    q = vfmaq_f32(vdupq_n_f32(QK_ERF_B2), x2, q);
    q = vfmaq_f32(vdupq_n_f32(QK_ERF_B0), x2, q);
    float32x4_t erf = vdivq_f32(p, q);
    return vmulq_f32(vmulq_n_f32(v, 0.5f), vaddq_f32(vdupq_n_f32(1.0f), erf));
}

QK_I float32x4_t act4(float32x4_t v, qk_act act) {
    if (act == QK_ACT_GELU) return gelu4(v);
    if (act == QK_ACT_RELU) return vmaxq_f32(v, vdupq_n_f32(0.0f));
    return v;
}

typedef struct {
    int M, N, Kp, lda, ldc, n0, n1, out_f32;
    const int8_t *A;
    const float *ascale, *wscale, *bias;
    qk_act act;
    void *C;
} n_args;

// Store channels nb .. nb+15 of row m from four int32x4 (channels 4q .. 4q+3).
QK_I void n_store(const n_args *g, int m, int nb, const int32x4_t v[4]) {
    const int full = nb >= g->n0 && nb + 16 <= g->n1;
    if (g->out_f32) {
        float *c = (float *)g->C + (size_t)m * (size_t)g->ldc;
        const float as = g->ascale[m];
        if (full) {
            QK_UNROLL
            for (int q = 0; q < 4; q++) {
                const int n = nb + 4 * q;
                float32x4_t s = vmulq_n_f32(vld1q_f32(g->wscale + n), as);
                float32x4_t f = vmulq_f32(vcvtq_f32_s32(v[q]), s);
                if (g->bias) f = vaddq_f32(f, vld1q_f32(g->bias + n));
                vst1q_f32(c + n, act4(f, g->act));
            }
        } else {
            int32_t t[16];
            QK_UNROLL
            for (int q = 0; q < 4; q++) vst1q_s32(t + 4 * q, v[q]);
            for (int j = 0; j < 16; j++) {
                const int n = nb + j;
                if (n < g->n0 || n >= g->n1) continue;
                float f = (float)t[j] * (as * g->wscale[n]);
                if (g->bias) f += g->bias[n];
                c[n] = qk_act1(f, g->act);
            }
        }
    } else {
        int32_t *c = (int32_t *)g->C + (size_t)m * (size_t)g->ldc;
        if (full) {
            QK_UNROLL
            for (int q = 0; q < 4; q++) vst1q_s32(c + nb + 4 * q, v[q]);
        } else {
            int32_t t[16];
            QK_UNROLL
            for (int q = 0; q < 4; q++) vst1q_s32(t + 4 * q, v[q]);
            for (int j = 0; j < 16; j++)
                if (nb + j >= g->n0 && nb + j < g->n1) c[nb + j] = t[j];
        }
    }
}

QK_I int8x16_t dup4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// ---- plain NEON: 2 rows x 16 channels --------------------------------------------------------

#define N_MR 2

QK_I void n_kernel(const int R, const n_args *g, int m0, const int8_t *pw, int nb) {
    const int nkg = g->Kp / 4;
    const int8_t *a[N_MR];
    QK_UNROLL
    for (int r = 0; r < R; r++) a[r] = g->A + (size_t)(m0 + r) * (size_t)g->lda;
    int32x4_t acc[N_MR][4][2];
    QK_UNROLL
    for (int r = 0; r < R; r++)
        QK_UNROLL
        for (int q = 0; q < 4; q++) acc[r][q][0] = acc[r][q][1] = vdupq_n_s32(0);
    int kg = 0;
    for (; kg + 2 <= nkg; kg += 2) {
        int8x16_t w0[4], w1[4];
        QK_UNROLL
        for (int q = 0; q < 4; q++) {
            w0[q] = vld1q_s8(pw + (size_t)kg * 64 + 16 * q);
            w1[q] = vld1q_s8(pw + (size_t)(kg + 1) * 64 + 16 * q);
        }
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const int8x16_t a0 = dup4(a[r] + kg * 4), a1 = dup4(a[r] + kg * 4 + 4);
            QK_UNROLL
            for (int q = 0; q < 4; q++) {
                int16x8_t lo = vmull_s8(vget_low_s8(w0[q]), vget_low_s8(a0));
                lo = vmlal_s8(lo, vget_low_s8(w1[q]), vget_low_s8(a1));
                int16x8_t hi = vmull_high_s8(w0[q], a0);
                hi = vmlal_high_s8(hi, w1[q], a1);
                acc[r][q][0] = vpadalq_s16(acc[r][q][0], lo);
                acc[r][q][1] = vpadalq_s16(acc[r][q][1], hi);
            }
        }
    }
    if (kg < nkg) {
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const int8x16_t a0 = dup4(a[r] + kg * 4);
            QK_UNROLL
            for (int q = 0; q < 4; q++) {
                const int8x16_t w = vld1q_s8(pw + (size_t)kg * 64 + 16 * q);
                acc[r][q][0] = vpadalq_s16(acc[r][q][0], vmull_s8(vget_low_s8(w), vget_low_s8(a0)));
                acc[r][q][1] = vpadalq_s16(acc[r][q][1], vmull_high_s8(w, a0));
            }
        }
    }
    QK_UNROLL
    for (int r = 0; r < R; r++) {
        int32x4_t v[4];
        QK_UNROLL
        for (int q = 0; q < 4; q++) v[q] = vpaddq_s32(acc[r][q][0], acc[r][q][1]);
        n_store(g, m0 + r, nb, v);
    }
}

void qk_neon_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                     const int8_t *packed, const float *wscale, const float *bias, qk_act act,
                     void *C, int ldc, int n0, int n1, int out_f32) {
    const int Kp = QK_ROUND_UP(K, 4);
    n_args g = {M, N, Kp, lda, ldc, n0, n1, out_f32, A, ascale, wscale, bias, act, C};
    int chunk = (256 * 1024) / (Kp * 16) * 16;
    if (chunk < 16) chunk = 16;
    for (int nc = n0 & ~15; nc < n1; nc += chunk) {
        const int nc_hi = nc + chunk < n1 ? nc + chunk : n1;
        for (int m0 = 0; m0 < M; m0 += N_MR) {
            const int R = M - m0 < N_MR ? M - m0 : N_MR;
            for (int nb = nc; nb < nc_hi; nb += 16) {
                const int8_t *pw = packed + (size_t)(nb / 16) * (size_t)Kp * 16;
                if (R == 2) n_kernel(2, &g, m0, pw, nb);
                else n_kernel(1, &g, m0, pw, nb);
            }
        }
    }
}

// ---- NEON + dotprod: 4 rows x 16 channels ------------------------------------------------------

#define D_MR 4

QK_DOTI void d_kernel(const int R, const n_args *g, int m0, const int8_t *pw, int nb) {
    const int nkg = g->Kp / 4;
    const int8_t *a[D_MR];
    QK_UNROLL
    for (int r = 0; r < R; r++) a[r] = g->A + (size_t)(m0 + r) * (size_t)g->lda;
    int32x4_t acc[D_MR][4];
    QK_UNROLL
    for (int r = 0; r < R; r++)
        QK_UNROLL
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_s32(0);
    for (int kg = 0; kg < nkg; kg++) {
        int8x16_t w[4];
        QK_UNROLL
        for (int q = 0; q < 4; q++) w[q] = vld1q_s8(pw + (size_t)kg * 64 + 16 * q);
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const int8x16_t av = dup4(a[r] + kg * 4);
            QK_UNROLL
            for (int q = 0; q < 4; q++) acc[r][q] = vdotq_s32(acc[r][q], w[q], av);
        }
    }
    QK_UNROLL
    for (int r = 0; r < R; r++) n_store(g, m0 + r, nb, acc[r]);
}

QK_DOT void qk_neondot_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                               const int8_t *packed, const float *wscale, const float *bias,
                               qk_act act, void *C, int ldc, int n0, int n1, int out_f32) {
    const int Kp = QK_ROUND_UP(K, 4);
    n_args g = {M, N, Kp, lda, ldc, n0, n1, out_f32, A, ascale, wscale, bias, act, C};
    int chunk = (256 * 1024) / (Kp * 16) * 16;
    if (chunk < 16) chunk = 16;
    for (int nc = n0 & ~15; nc < n1; nc += chunk) {
        const int nc_hi = nc + chunk < n1 ? nc + chunk : n1;
        for (int m0 = 0; m0 < M; m0 += D_MR) {
            const int R = M - m0 < D_MR ? M - m0 : D_MR;
            for (int nb = nc; nb < nc_hi; nb += 16) {
                const int8_t *pw = packed + (size_t)(nb / 16) * (size_t)Kp * 16;
                switch (R) {
                case 4: d_kernel(4, &g, m0, pw, nb); break;
                case 3: d_kernel(3, &g, m0, pw, nb); break;
                case 2: d_kernel(2, &g, m0, pw, nb); break;
                default: d_kernel(1, &g, m0, pw, nb); break;
                }
            }
        }
    }
}

// ---- fp32 GEMM (NT): 4 rows x 16 channels, B packed [k][16] per block --------------------------

#define F_MR 4
#define F_KC 256
#define F_NC 128

QK_I void f_kernel(const int R, int kb, const float *a, int lda, const float *bp, float *c, int ldc,
                   int nb, int n1, int first, int last, const float *bias, qk_act act) {
    const int full = nb + 16 <= n1;
    const int nv = full ? 16 : n1 - nb;
    float32x4_t acc[F_MR][4];
    QK_UNROLL
    for (int r = 0; r < R; r++) {
        float t[16] = {0};
        const float *src = c + (size_t)r * (size_t)ldc + nb;
        if (!first) {
            if (!full) {
                for (int j = 0; j < nv; j++) t[j] = src[j];
                src = t;
            }
        } else {
            src = t;
        }
        QK_UNROLL
        for (int q = 0; q < 4; q++) acc[r][q] = vld1q_f32(src + 4 * q);
    }
    for (int k = 0; k < kb; k++) {
        float32x4_t b[4];
        QK_UNROLL
        for (int q = 0; q < 4; q++) b[q] = vld1q_f32(bp + (size_t)k * 16 + 4 * q);
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const float av = a[(size_t)r * (size_t)lda + k];
            QK_UNROLL
            for (int q = 0; q < 4; q++) acc[r][q] = vfmaq_n_f32(acc[r][q], b[q], av);
        }
    }
    float bb[16] = {0};
    if (last && bias)
        for (int j = 0; j < nv; j++) bb[j] = bias[nb + j];
    QK_UNROLL
    for (int r = 0; r < R; r++) {
        float t[16];
        float *dst = full ? c + (size_t)r * (size_t)ldc + nb : t;
        QK_UNROLL
        for (int q = 0; q < 4; q++) {
            float32x4_t v = acc[r][q];
            if (last) {
                if (bias) v = vaddq_f32(v, vld1q_f32(bb + 4 * q));
                v = act4(v, act);
            }
            vst1q_f32(dst + 4 * q, v);
        }
        if (!full)
            for (int j = 0; j < nv; j++) c[(size_t)r * (size_t)ldc + nb + j] = t[j];
    }
}

void qk_neon_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      const float *bias, qk_act act, float *C, int ldc, int n0, int n1) {
    (void)N;
    float *bp = (float *)malloc((size_t)F_NC * (size_t)(K < F_KC ? K : F_KC) * sizeof(float));
    if (!bp) {
        qk_scalar_sgemm_nt(M, N, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
    }
    for (int nc = n0; nc < n1; nc += F_NC) {
        const int nc_hi = nc + F_NC < n1 ? nc + F_NC : n1;
        for (int kc = 0; kc < K; kc += F_KC) {
            const int kb = K - kc < F_KC ? K - kc : F_KC;
            qk_pack_b16(B, ldb, kc, kb, nc, nc_hi, bp);
            const int first = kc == 0, last = kc + kb >= K;
            for (int m0 = 0; m0 < M; m0 += F_MR) {
                const int R = M - m0 < F_MR ? M - m0 : F_MR;
                const float *a = A + (size_t)m0 * (size_t)lda + kc;
                float *c = C + (size_t)m0 * (size_t)ldc;
                for (int nb = nc; nb < nc_hi; nb += 16) {
                    const float *p = bp + (size_t)(nb - nc) * kb;
                    switch (R) {
                    case 4: f_kernel(4, kb, a, lda, p, c, ldc, nb, nc_hi, first, last, bias, act); break;
                    case 3: f_kernel(3, kb, a, lda, p, c, ldc, nb, nc_hi, first, last, bias, act); break;
                    case 2: f_kernel(2, kb, a, lda, p, c, ldc, nb, nc_hi, first, last, bias, act); break;
                    default: f_kernel(1, kb, a, lda, p, c, ldc, nb, nc_hi, first, last, bias, act); break;
                    }
                }
            }
        }
    }
    free(bp);
}

// ---- fused attention (one head), bit-exact with qk_scalar_attention_head ------------------------
//
// The scheme of qk_avx2_attention_head with the 4 x 16 micro-kernel above. exp4 is the scalar
// twin's qk_exp_fma step by step (vfmaq/vfmsq are fused); min/max/select use compare + bsl so
// that NaN follows the scalar rule (NEON's fmin/fmax would propagate it instead).

QK_I float32x4_t sel_lt(float32x4_t a, float32x4_t b) { return vbslq_f32(vcltq_f32(a, b), a, b); } // a < b ? a : b
QK_I float32x4_t sel_gt(float32x4_t a, float32x4_t b) { return vbslq_f32(vcgtq_f32(a, b), a, b); } // a > b ? a : b

QK_I float32x4_t exp4(float32x4_t x0) {
    float32x4_t x = sel_lt(x0, vdupq_n_f32(QK_EXP_HI));
    x = sel_gt(x, vdupq_n_f32(QK_EXP_LO));
    const float32x4_t magic = vdupq_n_f32(12582912.0f);
    const float32x4_t n = vsubq_f32(vfmaq_f32(magic, x, vdupq_n_f32(QK_LOG2E)), magic);
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(QK_LN2_HI));
    r = vfmsq_f32(r, n, vdupq_n_f32(QK_LN2_LO));
    float32x4_t p = vfmaq_f32(vdupq_n_f32(QK_EXP_P1), vdupq_n_f32(QK_EXP_P0), r);
    p = vfmaq_f32(vdupq_n_f32(QK_EXP_P2), p, r);
    p = vfmaq_f32(vdupq_n_f32(QK_EXP_P3), p, r);
    p = vfmaq_f32(vdupq_n_f32(QK_EXP_P4), p, r);
    p = vfmaq_f32(vdupq_n_f32(QK_EXP_P5), p, r);
    p = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vbslq_f32(vcltq_f32(x0, vdupq_n_f32(QK_EXP_LO)), vdupq_n_f32(0.0f), y);
}

// x[j] = exp(x[j] - max) for j < L (0 in the padding up to round_up(L, 16)); returns 1 / sum.
static float softmax_e16(int L, float *x) {
    float32x4_t vmax = vdupq_n_f32(-INFINITY);
    int j = 0;
    for (; j + 4 <= L; j += 4) vmax = sel_gt(vld1q_f32(x + j), vmax);
    float t[4];
    vst1q_f32(t, vmax);
    float mx = -INFINITY;
    for (int i = 0; i < 4; i++) mx = t[i] > mx ? t[i] : mx;
    for (; j < L; j++) mx = x[j] > mx ? x[j] : mx;
    if (mx == -INFINITY) mx = 0.0f;
    const float32x4_t vm = vdupq_n_f32(mx);
    float32x4_t s[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    const int32_t lane[4] = {0, 1, 2, 3};
    const int32x4_t lanes = vld1q_s32(lane);
    for (j = 0; j < L; j += 16) {
        const int full = j + 16 <= L;
        QK_UNROLL
        for (int q = 0; q < 4; q++) {
            float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + j + 4 * q), vm));
            if (!full) {
                const uint32x4_t in = vcltq_s32(vaddq_s32(lanes, vdupq_n_s32(j + 4 * q)), vdupq_n_s32(L));
                e = vbslq_f32(in, e, vdupq_n_f32(0.0f));
            }
            vst1q_f32(x + j + 4 * q, e);
            s[q] = vaddq_f32(s[q], e);
        }
    }
    const float32x4_t t4 = vaddq_f32(vaddq_f32(s[0], s[2]), vaddq_f32(s[1], s[3])); // (i + i+8) + (i+4 + i+12)
    const float32x2_t t2 = vadd_f32(vget_low_f32(t4), vget_high_f32(t4));
    return 1.0f / (vget_lane_f32(t2, 0) + vget_lane_f32(t2, 1));
}

#define ATT_F(R_, ...)                                                                                 \
    switch (R_) {                                                                                   \
    case 4: f_kernel(4, __VA_ARGS__); break;                                                           \
    case 3: f_kernel(3, __VA_ARGS__); break;                                                           \
    case 2: f_kernel(2, __VA_ARGS__); break;                                                           \
    default: f_kernel(1, __VA_ARGS__); break;                                                          \
    }

void qk_neon_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                            float *out, int ldo, float *scratch) {
    const int Lp = QK_ROUND_UP(L, 16);
    float *kt = scratch, *vp = kt + qk_att_kt_floats(L, dh), *S = vp + qk_att_vp_floats(L, dh);
    qk_pack_b16(K, ld, 0, dh, 0, L, kt);
    qk_pack_v16(V, ld, L, dh, vp);
    for (int mb = 0; mb < L; mb += QK_ATT_MB) {
        const int rows = L - mb < QK_ATT_MB ? L - mb : QK_ATT_MB;
        for (int nb = 0; nb < Lp; nb += 16) {
            const float *p = kt + (size_t)nb * (size_t)dh;
            for (int m0 = 0; m0 < rows; m0 += F_MR) {
                const int R = rows - m0 < F_MR ? rows - m0 : F_MR;
                const float *q = Q + (size_t)(mb + m0) * (size_t)ld;
                ATT_F(R, dh, q, ld, p, S + (size_t)m0 * (size_t)Lp, Lp, nb, Lp, 1, 1, NULL, QK_ACT_NONE)
            }
        }
        float inv[QK_ATT_MB];
        for (int r = 0; r < rows; r++) inv[r] = softmax_e16(L, S + (size_t)r * (size_t)Lp);
        float *o = out + (size_t)mb * (size_t)ldo;
        for (int nb = 0; nb < dh; nb += 16) {
            const float *p = vp + (size_t)nb * (size_t)L;
            for (int m0 = 0; m0 < rows; m0 += F_MR) {
                const int R = rows - m0 < F_MR ? rows - m0 : F_MR;
                ATT_F(R, L, S + (size_t)m0 * (size_t)Lp, Lp, p, o + (size_t)m0 * (size_t)ldo, ldo, nb, dh, 1, 1, NULL,
                      QK_ACT_NONE)
            }
        }
        for (int r = 0; r < rows; r++) {
            float *orow = o + (size_t)r * (size_t)ldo;
            int c = 0;
            for (; c + 4 <= dh; c += 4) vst1q_f32(orow + c, vmulq_n_f32(vld1q_f32(orow + c), inv[r]));
            for (; c < dh; c++) orow[c] *= inv[r];
        }
    }
}

// ---- int16 attention (qk_attention_head_i16) ---------------------------------------------------
//
// qk_avx512_attention_head_i16's scheme with smlal: a panel step (16 keys or columns x a pair)
// is four int16x8 vectors, each 4 outputs x (even, odd) half of the pair; the pair of the row,
// broadcast as one int32, is the int16x4 multiplier [x0 x1 x0 x1]. Even and odd products
// accumulate in their own int32 lanes (exact), added pairwise (vpaddq) at the end. Tiles of up
// to 2 rows x one panel: 16 accumulators. The same float steps as the scalar twin.

#define H16_MR 2

QK_I void h16_tile(const int R, int npairs, const int16_t *a, size_t lda, const int16_t *b, int32x4_t out[2][4]) {
    int32x4_t acc[H16_MR][8];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 8; v++) acc[r][v] = vdupq_n_s32(0);
    for (int t = 0; t < npairs; t++) {
        int16x8_t bv[4];
        for (int v = 0; v < 4; v++) bv[v] = vld1q_s16(b + (size_t)t * 32 + 8 * v);
        for (int r = 0; r < R; r++) {
            const int16x8_t x = vreinterpretq_s16_s32(vdupq_n_s32(qk_load_pair(a + (size_t)r * lda + 2 * t)));
            for (int v = 0; v < 4; v++) {
                acc[r][2 * v] = vmlal_s16(acc[r][2 * v], vget_low_s16(bv[v]), vget_low_s16(x));
                acc[r][2 * v + 1] = vmlal_high_s16(acc[r][2 * v + 1], bv[v], x);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 4; v++) out[r][v] = vpaddq_s32(acc[r][2 * v], acc[r][2 * v + 1]);
}

void qk_neon_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                float *out, int ldo, float *scratch) {
    const qk_att16 w = qk_att16_layout(L, dh, scratch);
    qk_att16_prepare(L, dh, Q, K, V, ld, &w);
    const int Lp = w.Lp, dhp = w.dhp, kpanels = Lp / 16, vpanels = w.dh16 / 16;
    const float32x4_t top = vdupq_n_f32(QK_ATT16_PMAX);
    for (int mb = 0; mb < L; mb += QK_ATT_MB) {
        const int rows = L - mb < QK_ATT_MB ? L - mb : QK_ATT_MB;
        for (int m0 = 0; m0 < rows; m0 += H16_MR) {
            const int R = rows - m0 < H16_MR ? rows - m0 : H16_MR;
            for (int pn = 0; pn < kpanels; pn++) {
                int32x4_t acc[2][4];
                const int16_t *a = w.qq + (size_t)(mb + m0) * (size_t)dhp, *b = w.kp + (size_t)pn * (size_t)dhp * 16;
                if (R == 2) h16_tile(2, dhp / 2, a, (size_t)dhp, b, acc);
                else h16_tile(1, dhp / 2, a, (size_t)dhp, b, acc);
                for (int r = 0; r < R; r++) {
                    const float32x4_t q = vdupq_n_f32(w.qs[mb + m0 + r]);
                    float *s = w.S + (size_t)(m0 + r) * (size_t)Lp + (size_t)pn * 16;
                    for (int v = 0; v < 4; v++)
                        vst1q_f32(s + 4 * v, vmulq_f32(vcvtq_f32_s32(acc[r][v]), vmulq_f32(q, vld1q_f32(w.ks + pn * 16 + 4 * v))));
                }
            }
        }
        for (int r = 0; r < rows; r++) {
            float *e = w.S + (size_t)r * (size_t)Lp;
            int16_t *p = w.P + (size_t)r * (size_t)Lp;
            const float32x4_t f = vdupq_n_f32(softmax_e16(L, e) * QK_ATT16_PMAX);
            for (int j = 0; j < Lp; j += 4) // e is 0 past L, so p is too
                vst1_s16(p + j, vmovn_s32(vcvtnq_s32_f32(sel_lt(vmulq_f32(vld1q_f32(e + j), f), top))));
        }
        float *o = out + (size_t)mb * (size_t)ldo;
        for (int m0 = 0; m0 < rows; m0 += H16_MR) {
            const int R = rows - m0 < H16_MR ? rows - m0 : H16_MR;
            for (int cp = 0; cp < vpanels; cp++) {
                int32x4_t acc[2][4];
                const int16_t *a = w.P + (size_t)m0 * (size_t)Lp, *b = w.vp + (size_t)cp * (size_t)Lp * 16;
                if (R == 2) h16_tile(2, Lp / 2, a, (size_t)Lp, b, acc);
                else h16_tile(1, Lp / 2, a, (size_t)Lp, b, acc);
                const int c = cp * 16;
                for (int r = 0; r < R; r++) {
                    float t16[16];
                    for (int v = 0; v < 4; v++) vst1q_f32(t16 + 4 * v, vmulq_f32(vcvtq_f32_s32(acc[r][v]), vld1q_f32(w.vs + c + 4 * v)));
                    float *orow = o + (size_t)(m0 + r) * (size_t)ldo + c;
                    const int n = dh - c < 16 ? dh - c : 16;
                    for (int k = 0; k < n; k++) orow[k] = t16[k];
                }
            }
        }
    }
}

#endif
