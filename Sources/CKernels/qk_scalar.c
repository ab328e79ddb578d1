// Portable C reference for every kernel. SIMD kernels are tested against these
// (int8 paths bit-exact). Written so that -O2 auto-vectorizes the simple loops.
#include "qk_internal.h"
#include <math.h>
#include <stdlib.h>

// ---- packing ---------------------------------------------------------------------------

size_t qk_packed_s8_size(int N, int K) {
    if (N <= 0 || K <= 0) return 0;
    return (size_t)QK_ROUND_UP(N, 16) * (size_t)QK_ROUND_UP(K, 4);
}

void qk_pack_s8(int N, int K, const int8_t *W, int ldw, int8_t *packed, int32_t *colsum) {
    if (N <= 0 || K <= 0) return;
    const int Kp = QK_ROUND_UP(K, 4), Np = QK_ROUND_UP(N, 16);
    memset(packed, 0, (size_t)Np * (size_t)Kp);
    for (int n = 0; n < N; n++) {
        const int8_t *w = W + (size_t)n * (size_t)ldw;
        int8_t *panel = packed + (size_t)(n / 16) * (size_t)Kp * 16 + (size_t)(n % 16) * 4;
        int32_t s = 0;
        for (int k = 0; k < K; k++) {
            panel[(size_t)(k / 4) * 64 + (k % 4)] = w[k];
            s += w[k];
        }
        if (colsum) colsum[n] = s;
    }
}

int qk_s8_absmax(const int8_t *w, size_t count) {
    // Min and max of w XOR 0x80 (order-preserving, unsigned): byte-wide pminub / pmaxub, which
    // baseline x86-64 (SSE2) and NEON have, so -O2 vectorizes it without a target attribute.
    // It runs over every weight at model load: 42 MB at dim 768.
    uint8_t lo = 0x80, hi = 0x80; // 0 shifted
    for (size_t i = 0; i < count; i++) {
        const uint8_t u = (uint8_t)w[i] ^ 0x80;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    const int mn = (int)lo - 128, mx = (int)hi - 128;
    return -mn > mx ? -mn : mx;
}

// ---- quantization ------------------------------------------------------------------------

// Row scale: amax / 127, or 1 when that is 0 (all-zero row, or a denormal amax whose scale
// underflows). NaN elements are ignored by the max (the SIMD kernels use the same rule).
static float row_scale(int K, const float *x) {
    float amax = 0.0f;
    for (int k = 0; k < K; k++) {
        float a = fabsf(x[k]);
        amax = a > amax ? a : amax;
    }
    float s = amax / 127.0f;
    return s == 0.0f ? 1.0f : s;
}

// Round half away from zero of v already clamped to [-127, 127]: t = trunc(v), then step
// away from zero when |v - t| >= 0.5 (v - t is exact in fp32). Identical to roundf().
static inline int8_t quant1(float x, float s) {
    float v = x / s;
    v = v < 127.0f ? v : 127.0f; // NaN -> 127 (matches min_ps(v, 127))
    v = v > -127.0f ? v : -127.0f;
    float t = truncf(v);
    float d = v - t;
    if (d >= 0.5f) t += 1.0f;
    if (d <= -0.5f) t -= 1.0f;
    return (int8_t)(int)t;
}

void qk_scalar_quantize_rows_s8(int M, int K, const float *X, int ldx, int8_t *Q, int ldq,
                                float *scale) {
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * (size_t)ldx;
        int8_t *q = Q + (size_t)m * (size_t)ldq;
        float s = row_scale(K, x);
        scale[m] = s;
        for (int k = 0; k < K; k++) q[k] = quant1(x[k], s);
        for (int k = K; k < ldq; k++) q[k] = 0;
    }
}

// ---- int8 GEMM (reads the packed layout) ----------------------------------------------------

void qk_scalar_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                       const int8_t *packed, const float *wscale, const float *bias,
                       qk_act act, void *C, int ldc, int n0, int n1, int out_f32) {
    (void)N;
    const int Kp = QK_ROUND_UP(K, 4);
    for (int m = 0; m < M; m++) {
        const int8_t *a = A + (size_t)m * (size_t)lda;
        for (int nb = n0 & ~15; nb < n1; nb += 16) {
            const int8_t *p = packed + (size_t)(nb / 16) * (size_t)Kp * 16;
            int32_t acc[16] = {0};
            for (int kg = 0; kg < Kp / 4; kg++) {
                const int8_t *pk = p + (size_t)kg * 64;
                const int8_t *ak = a + kg * 4;
                for (int j = 0; j < 16; j++)
                    acc[j] += ak[0] * pk[j * 4 + 0] + ak[1] * pk[j * 4 + 1] +
                              ak[2] * pk[j * 4 + 2] + ak[3] * pk[j * 4 + 3];
            }
            int jlo = n0 > nb ? n0 - nb : 0;
            int jhi = n1 - nb < 16 ? n1 - nb : 16;
            if (out_f32) {
                float *c = (float *)C + (size_t)m * (size_t)ldc;
                for (int j = jlo; j < jhi; j++) {
                    int n = nb + j;
                    float v = (float)acc[j] * (ascale[m] * wscale[n]);
                    if (bias) v += bias[n];
                    c[n] = qk_act1(v, act);
                }
            } else {
                int32_t *c = (int32_t *)C + (size_t)m * (size_t)ldc;
                for (int j = jlo; j < jhi; j++) c[nb + j] = acc[j];
            }
        }
    }
}

// ---- fp32 GEMM (NT) -------------------------------------------------------------------------

void qk_scalar_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        const float *bias, qk_act act, float *C, int ldc, int n0, int n1) {
    (void)N;
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * (size_t)lda;
        float *c = C + (size_t)m * (size_t)ldc;
        for (int n = n0; n < n1; n++) {
            const float *b = B + (size_t)n * (size_t)ldb;
            float s[8] = {0};
            int k = 0;
            for (; k + 8 <= K; k += 8)
                for (int i = 0; i < 8; i++) s[i] += a[k + i] * b[k + i];
            for (; k < K; k++) s[0] += a[k] * b[k];
            float v = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
            if (bias) v += bias[n];
            c[n] = qk_act1(v, act);
        }
    }
}

// ---- fused attention (the reference every SIMD version matches bit for bit) ----------------

void qk_scalar_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                              float *out, int ldo, float *scratch) {
    float *e = scratch; // one row of L scores
    for (int i = 0; i < L; i++) {
        const float *q = Q + (size_t)i * (size_t)ld;
        float mx = -INFINITY;
        for (int j = 0; j < L; j++) {
            const float *k = K + (size_t)j * (size_t)ld;
            float acc = 0.0f;
            for (int d = 0; d < dh; d++) acc = fmaf(q[d], k[d], acc);
            e[j] = acc;
            mx = acc > mx ? acc : mx;
        }
        if (mx == -INFINITY) mx = 0.0f;
        float s[16] = {0};
        for (int j = 0; j < L; j++) {
            e[j] = qk_exp_fma(e[j] - mx);
            s[j % 16] += e[j];
        }
        const float inv = 1.0f / qk_sum16_tree(s);
        float *o = out + (size_t)i * (size_t)ldo;
        for (int c = 0; c < dh; c++) {
            float acc = 0.0f;
            for (int j = 0; j < L; j++) acc = fmaf(e[j], V[(size_t)j * (size_t)ld + c], acc);
            o[c] = acc * inv;
        }
    }
}

// ---- int16 attention: layout, quantization, the scalar twin ---------------------------------

int qk_att16_qmax(int dh) {
    if (dh <= 0) return 0;
    const int dhp = QK_ROUND_UP(dh, 2);
    int q = (int)sqrt(2147483647.0 / (double)dhp);
    while (q > 1 && (int64_t)dhp * q * q >= 2147483647LL) q--;
    while ((int64_t)dhp * (q + 1) * (q + 1) < 2147483647LL) q++;
    return q > 32767 ? 32767 : q;
}

// Byte offsets of qk_att16's eight regions (qq, qs, kp, ks, vp, vs, S, P; qk_internal.h), each
// 64-byte aligned; returns the total. The one place their sizes are written.
static size_t att16_offsets(int L, int dh, size_t off[8]) {
    const size_t Lp = (size_t)QK_ROUND_UP(L, 16), dhp = (size_t)QK_ROUND_UP(dh, 2), dh16 = (size_t)QK_ROUND_UP(dh, 16);
    const size_t mb = (size_t)QK_ATT_MB;
    const size_t bytes[8] = {(size_t)L * dhp * 2, (size_t)L * 4, Lp * dhp * 2, Lp * 4,
                             dh16 * Lp * 2,       dh16 * 4,      mb * Lp * 4,  mb * Lp * 2};
    size_t at = 0;
    for (int i = 0; i < 8; i++) {
        off[i] = at;
        at += QK_ROUND_UP(bytes[i], 64);
    }
    return at;
}

size_t qk_att16_bytes(int L, int dh) {
    size_t off[8];
    return att16_offsets(L, dh, off);
}

qk_att16 qk_att16_layout(int L, int dh, float *scratch) {
    qk_att16 w;
    w.Lp = QK_ROUND_UP(L, 16);
    w.dhp = QK_ROUND_UP(dh, 2);
    w.dh16 = QK_ROUND_UP(dh, 16);
    size_t off[8];
    att16_offsets(L, dh, off);
    char *b = (char *)scratch;
    w.qq = (int16_t *)(void *)(b + off[0]);
    w.qs = (float *)(void *)(b + off[1]);
    w.kp = (int16_t *)(void *)(b + off[2]);
    w.ks = (float *)(void *)(b + off[3]);
    w.vp = (int16_t *)(void *)(b + off[4]);
    w.vs = (float *)(void *)(b + off[5]);
    w.S = (float *)(void *)(b + off[6]);
    w.P = (int16_t *)(void *)(b + off[7]);
    return w;
}

void qk_scalar_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                  float *out, int ldo, float *scratch) {
    const qk_att16 w = qk_att16_layout(L, dh, scratch);
    qk_att16_prepare(L, dh, Q, K, V, ld, &w);
    const int Lp = w.Lp, dhp = w.dhp;
    float *e = w.S;
    int16_t *p = w.P;
    for (int i = 0; i < L; i++) {
        const int16_t *q = w.qq + (size_t)i * (size_t)dhp;
        float mx = -INFINITY;
        for (int j = 0; j < L; j++) {
            const int16_t *k = w.kp + (size_t)(j / 16) * (size_t)dhp * 16 + (size_t)(j % 16) * 2;
            int32_t acc = 0;
            for (int d = 0; d < dhp; d++) acc += (int32_t)q[d] * (int32_t)k[(size_t)(d / 2) * 32 + (d % 2)];
            e[j] = (float)acc * (w.qs[i] * w.ks[j]);
            mx = e[j] > mx ? e[j] : mx;
        }
        if (mx == -INFINITY) mx = 0.0f;
        float s[16] = {0};
        for (int j = 0; j < L; j++) {
            e[j] = qk_exp_fma(e[j] - mx);
            s[j % 16] += e[j];
        }
        const float f = (1.0f / qk_sum16_tree(s)) * QK_ATT16_PMAX;
        for (int j = 0; j < L; j++) p[j] = (int16_t)qk_q16(e[j], f, QK_ATT16_PMAX); // e >= 0: min(e f, 32767)
        for (int j = L; j < Lp; j++) p[j] = 0;
        float *o = out + (size_t)i * (size_t)ldo;
        for (int c = 0; c < dh; c++) {
            const int16_t *v = w.vp + (size_t)(c / 16) * (size_t)Lp * 16 + (size_t)(c % 16) * 2;
            int32_t acc = 0;
            for (int j = 0; j < Lp; j++) acc += (int32_t)p[j] * (int32_t)v[(size_t)(j / 2) * 32 + (j % 2)];
            o[c] = (float)acc * w.vs[c];
        }
    }
}

// ---- elementwise -------------------------------------------------------------------------------

void qk_scalar_gelu(size_t n, float *x) {
    for (size_t i = 0; i < n; i++) x[i] = qk_gelu1(x[i]);
}

void qk_scalar_softmax_rows(int M, int N, float *X, int ldx) {
    for (int m = 0; m < M; m++) {
        float *x = X + (size_t)m * (size_t)ldx;
        float mx = -INFINITY;
        for (int i = 0; i < N; i++) mx = x[i] > mx ? x[i] : mx;
        if (mx == -INFINITY) mx = 0.0f; // all -inf row: avoid inf - inf
        float s[8] = {0};
        int i = 0;
        for (; i + 8 <= N; i += 8)
            for (int j = 0; j < 8; j++) {
                float e = qk_exp_approx(x[i + j] - mx);
                x[i + j] = e;
                s[j] += e;
            }
        for (; i < N; i++) {
            float e = qk_exp_approx(x[i] - mx);
            x[i] = e;
            s[0] += e;
        }
        float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
        float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        for (i = 0; i < N; i++) x[i] *= inv;
    }
}

// The reference the SIMD versions (qk_avx2_layernorm) match bit for bit: 8 interleaved partial
// sums (the tail in the first) reduced in a fixed tree, for the mean and for the variance; the
// output as ((x - mean) * rstd) * gamma + beta, each step rounded (no fused multiply-add on x86).
void qk_scalar_layernorm(int M, int D, const float *X, int ldx, const float *gamma, const float *beta, float eps,
                         float *out, int ldo) {
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * (size_t)ldx;
        float *o = out + (size_t)m * (size_t)ldo;
        float s[8] = {0};
        int i = 0;
        for (; i + 8 <= D; i += 8)
            for (int j = 0; j < 8; j++) s[j] += x[i + j];
        for (; i < D; i++) s[0] += x[i];
        float mean = (((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))) / (float)D;
        float v[8] = {0};
        for (i = 0; i + 8 <= D; i += 8)
            for (int j = 0; j < 8; j++) {
                float d = x[i + j] - mean;
                v[j] += d * d;
            }
        for (; i < D; i++) {
            float d = x[i] - mean;
            v[0] += d * d;
        }
        float var = (((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))) / (float)D;
        float rstd = 1.0f / sqrtf(var + eps);
        for (i = 0; i < D; i++) o[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
    }
}

void qk_add(qk_isa isa, size_t n, const float *x, float *y) {
    (void)isa;
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void qk_tanh(qk_isa isa, size_t n, float *x) {
    (void)isa; // one implementation for every ISA (see ckernels.h)
    for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
}

const char *qk_env_isa(void) {
    const char *v = getenv("QSENT_ISA");
    return v && v[0] ? v : NULL;
}
