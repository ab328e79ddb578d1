// x86-64 AVX2 + FMA kernels (no VNNI). Compiled with per-function target attributes only.
//
// int8 GEMM: pmaddubsw on |a| and the weights bit-flipped where a < 0, exact (see the int8
// GEMM section below). Results are bit-exact with the scalar reference.
#include "qk_internal.h"

#if defined(QK_HAVE_X86)
#include <immintrin.h>
#include <stdlib.h>

#define QK_T __attribute__((target("avx2,fma")))
#define QK_TI static inline __attribute__((always_inline, target("avx2,fma")))

// ---- vector math ---------------------------------------------------------------------------

#include "qk_avx2_math.h"

QK_TI __m256 exp8(__m256 x0) {
    __m256 x = _mm256_min_ps(x0, _mm256_set1_ps(QK_EXP_HI));
    x = _mm256_max_ps(x, _mm256_set1_ps(QK_EXP_LO));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(QK_LOG2E), magic), magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(QK_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(QK_LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(QK_EXP_P0), r, _mm256_set1_ps(QK_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(QK_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(QK_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(QK_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(QK_EXP_P5));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    __m256 under = _mm256_cmp_ps(x0, _mm256_set1_ps(QK_EXP_LO), _CMP_LT_OQ);
    return _mm256_andnot_ps(under, y);
}

// ---- elementwise -----------------------------------------------------------------------------

QK_T void qk_avx2_gelu(size_t n, float *x) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = qk_gelu1(x[i]);
}

// The 8 partial sums of qk_scalar_layernorm in one ymm (lane j = its s[j]), the tail into lane 0
// after the vector loop, and its reduction tree: bit-exact with it. Every x86 SIMD ISA uses this
// one (16 lanes would be 16 partial sums: other numbers).
QK_TI float ln_tree8(__m256 acc, const float *x, int i, int D, float mean, int squares) {
    float t[8];
    _mm256_storeu_ps(t, acc);
    for (; i < D; i++) { // one rounding per statement: no multiply-add may be fused here
        const float d = squares ? x[i] - mean : x[i];
        const float term = squares ? d * d : d;
        t[0] += term;
    }
    return ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
}

QK_T void qk_avx2_layernorm(int M, int D, const float *X, int ldx, const float *gamma, const float *beta, float eps,
                            float *out, int ldo) {
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * (size_t)ldx;
        float *o = out + (size_t)m * (size_t)ldo;
        __m256 s = _mm256_setzero_ps();
        int i = 0;
        for (; i + 8 <= D; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
        const float mean = ln_tree8(s, x, i, D, 0.0f, 0) / (float)D;
        const __m256 vmean = _mm256_set1_ps(mean);
        __m256 v = _mm256_setzero_ps();
        for (i = 0; i + 8 <= D; i += 8) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmean);
            v = _mm256_add_ps(v, _mm256_mul_ps(d, d));
        }
        const float var = ln_tree8(v, x, i, D, mean, 1) / (float)D;
        const float rstd = 1.0f / sqrtf(var + eps);
        const __m256 vr = _mm256_set1_ps(rstd);
        for (i = 0; i + 8 <= D; i += 8) {
            const __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmean), vr),
                                           _mm256_loadu_ps(gamma + i));
            _mm256_storeu_ps(o + i, _mm256_add_ps(y, _mm256_loadu_ps(beta + i)));
        }
        for (; i < D; i++) { // as the scalar expression, one rounding per statement (no fused multiply-add)
            const float a = (x[i] - mean) * rstd;
            const float y = a * gamma[i];
            o[i] = y + beta[i];
        }
    }
}

QK_T void qk_avx2_softmax_rows(int M, int N, float *X, int ldx) {
    for (int m = 0; m < M; m++) {
        float *x = X + (size_t)m * (size_t)ldx;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        int i = 0;
        for (; i + 8 <= N; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
        float t[8];
        _mm256_storeu_ps(t, vmax);
        float mx = t[0];
        for (int j = 1; j < 8; j++) mx = t[j] > mx ? t[j] : mx;
        for (; i < N; i++) mx = x[i] > mx ? x[i] : mx;
        if (mx == -INFINITY) mx = 0.0f;
        const __m256 vm = _mm256_set1_ps(mx);
        __m256 vs = _mm256_setzero_ps();
        for (i = 0; i + 8 <= N; i += 8) {
            __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
            _mm256_storeu_ps(x + i, e);
            vs = _mm256_add_ps(vs, e);
        }
        _mm256_storeu_ps(t, vs);
        float sum = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
        for (; i < N; i++) {
            float e = qk_exp_approx(x[i] - mx);
            x[i] = e;
            sum += e;
        }
        const __m256 inv = _mm256_set1_ps(sum > 0.0f ? 1.0f / sum : 0.0f);
        for (i = 0; i + 8 <= N; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
        for (; i < N; i++) x[i] *= sum > 0.0f ? 1.0f / sum : 0.0f;
    }
}

// The fused attention's softmax over one row of L scores (the scratch row has room for
// round_up(L, 16)): x[j] = exp(x[j] - max) for j < L (0 in the padding), returns 1 / sum with
// the sum formed as qk_sum16_tree of 16 interleaved partial sums (bit-exact with the scalar twin).
QK_T float qk_avx2_softmax_e16(int L, float *x) {
    // Four running maxima: one would be a chain of vmaxps latencies (the max is exact in any order).
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int j = 0;
    for (; j + 32 <= L; j += 32) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + j), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + j + 8), m1);
        m2 = _mm256_max_ps(_mm256_loadu_ps(x + j + 16), m2);
        m3 = _mm256_max_ps(_mm256_loadu_ps(x + j + 24), m3);
    }
    __m256 vmax = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    for (; j + 8 <= L; j += 8) vmax = _mm256_max_ps(_mm256_loadu_ps(x + j), vmax);
    float t[8];
    _mm256_storeu_ps(t, vmax);
    float mx = -INFINITY;
    for (int i = 0; i < 8; i++) mx = t[i] > mx ? t[i] : mx;
    for (; j < L; j++) mx = x[j] > mx ? x[j] : mx;
    if (mx == -INFINITY) mx = 0.0f;
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (j = 0; j + 16 <= L; j += 16) {
        const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm));
        const __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vm));
        _mm256_storeu_ps(x + j, e0);
        _mm256_storeu_ps(x + j + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    if (j < L) { // the padding lanes of the row (past L) are in the buffer; they become 0
        const __m256 m0 = _mm256_castsi256_ps(lane_mask(j, 0, L)), m1 = _mm256_castsi256_ps(lane_mask(j + 8, 0, L));
        const __m256 e0 = _mm256_and_ps(m0, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm)));
        const __m256 e1 = _mm256_and_ps(m1, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vm)));
        _mm256_storeu_ps(x + j, e0);
        _mm256_storeu_ps(x + j + 8, e1);
        s0 = _mm256_add_ps(s0, e0);
        s1 = _mm256_add_ps(s1, e1);
    }
    const __m256 t8 = _mm256_add_ps(s0, s1);                                                // i + (i+8)
    const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1)); // + (i+4)
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));                               // [0]+[2], [1]+[3]
    const float sum = _mm_cvtss_f32(_mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1)));
    return 1.0f / sum;
}

// ---- quantization (bit-exact with qk_scalar_quantize_rows_s8) ---------------------------------

QK_TI __m256i quant8(__m256 x, __m256 s) {
    __m256 v = _mm256_div_ps(x, s); // correctly rounded, same as the scalar division
    v = _mm256_min_ps(v, _mm256_set1_ps(127.0f));
    v = _mm256_max_ps(v, _mm256_set1_ps(-127.0f));
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 d = _mm256_sub_ps(v, t);
    __m256 up = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
    __m256 dn = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), _mm256_set1_ps(1.0f));
    t = _mm256_sub_ps(_mm256_add_ps(t, up), dn);
    return _mm256_cvttps_epi32(t);
}

QK_T void qk_avx2_quantize_rows_s8(int M, int K, const float *X, int ldx, int8_t *Q, int ldq,
                                   float *scale) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * (size_t)ldx;
        int8_t *q = Q + (size_t)m * (size_t)ldq;
        __m256 vmax = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= K; k += 8) // max(|x|, acc): a NaN |x| keeps acc, like the scalar rule
            vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + k), absmask), vmax);
        float t[8];
        _mm256_storeu_ps(t, vmax);
        float amax = 0.0f;
        for (int j = 0; j < 8; j++) amax = t[j] > amax ? t[j] : amax;
        for (; k < K; k++) {
            float a = fabsf(x[k]);
            amax = a > amax ? a : amax;
        }
        float s = amax / 127.0f;
        if (s == 0.0f) s = 1.0f;
        scale[m] = s;
        const __m256 vs = _mm256_set1_ps(s);
        const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (k = 0; k + 32 <= K; k += 32) {
            __m256i a = quant8(_mm256_loadu_ps(x + k), vs), b = quant8(_mm256_loadu_ps(x + k + 8), vs);
            __m256i c = quant8(_mm256_loadu_ps(x + k + 16), vs), d = quant8(_mm256_loadu_ps(x + k + 24), vs);
            __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
            __m256i r = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), perm);
            _mm256_storeu_si256((__m256i *)(q + k), r);
        }
        for (; k < K; k++) {
            float v = x[k] / s;
            v = v < 127.0f ? v : 127.0f;
            v = v > -127.0f ? v : -127.0f;
            float tr = truncf(v), d = v - tr;
            if (d >= 0.5f) tr += 1.0f;
            if (d <= -0.5f) tr -= 1.0f;
            q[k] = (int8_t)(int)tr;
        }
        for (k = K; k < ldq; k++) q[k] = 0;
    }
}

// ---- int8 GEMM ----------------------------------------------------------------------------------
//
// Exact scheme (fewer multiply-port operations than the sign trick): pmaddubsw needs one
// unsigned operand, so take u = |a| (u8; |-128| = 0x80 = 128) and flip the weights' bits where
// a < 0 with a byte mask n = (a < 0 ? 0xff : 0):
//   u * (w XOR n) = a * w                 if a >= 0
//                 = -a * (-w - 1) = a * w + a   if a < 0      (~w = -w - 1)
// so sum_k u_k * (w_k XOR n_k) = sum_k a_k w_k + sum_k min(a_k, 0): the error is a per-row
// constant (independent of the channel), computed once per row block and subtracted at store.
// Range: u <= 128 and w XOR n in [-128, 127] (w in [-127, 127]), so a pmaddubsw pair lies in
// [-32768, 32512]: it never saturates (the negative bound is INT16_MIN exactly). pmaddwd with
// ones then widens pairs to int32. One step of 8 channels x 4 k is vpxor + vpmaddubsw +
// vpmaddwd + vpaddd: the same count as the sign trick, but vpxor (unlike vpsignb) runs on
// every vector ALU port (Intel p0/p1/p5, Zen 3 FP0-3), leaving the multiply ports to the two
// multiplies. Bit-exact with the scalar reference.

#define S8_MR 4
#define S8_STACK_KP 4096 // row-block buffer on the stack up to this Kp (32 KiB), else malloc

// acc[r][h] += A[r] . W[panel channels 8h..8h+7] over nkg groups of 4 k.
// ib is the row block interleaved per k group: ib[kg][r] = {n[4kg..4kg+3], |a|[4kg..4kg+3]}
// (8 bytes per row), so the loop needs one activation pointer and broadcasts straight from it.
QK_TI void s8_kernel(const int R, int nkg, const uint8_t *ib, const int8_t *pw,
                     __m256i acc[S8_MR][2]) {
    const __m256i ones = _mm256_set1_epi16(1);
    QK_UNROLL
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int kg = 0; kg < nkg; kg++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(pw + (size_t)kg * 64));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(pw + (size_t)kg * 64 + 32));
        const uint8_t *p = ib + (size_t)kg * 8 * R;
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            int32_t nv, uv;
            memcpy(&nv, p + 8 * r, 4);
            memcpy(&uv, p + 8 * r + 4, 4);
            const __m256i vn = _mm256_set1_epi32(nv), vu = _mm256_set1_epi32(uv); // vpbroadcastd m32
            __m256i t0 = _mm256_maddubs_epi16(vu, _mm256_xor_si256(w0, vn));
            __m256i t1 = _mm256_maddubs_epi16(vu, _mm256_xor_si256(w1, vn));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(t0, ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(t1, ones));
        }
    }
}

typedef struct {
    int M, N, Kp, lda, ldc, n0, n1, out_f32;
    const int8_t *A;
    const float *ascale, *wscale, *bias;
    qk_act act;
    void *C;
} s8_args;

// Stores acc - neg (neg = the row's sum of min(a, 0), see above) through the output stage.
QK_TI void s8_store(const s8_args *g, int m, int nb, int32_t neg, __m256i acc0, __m256i acc1) {
    const __m256i vneg = _mm256_set1_epi32(neg);
    qk_avx2_store16(g->out_f32, g->C, g->ldc, m, nb, g->n0, g->n1, g->out_f32 ? g->ascale[m] : 0.0f,
                    g->wscale, g->bias, g->act, _mm256_sub_epi32(acc0, vneg), _mm256_sub_epi32(acc1, vneg));
}

// One row, two panels at once (GEMV, M = 1): four independent accumulator chains and two
// weight streams in flight.
QK_TI void s8_kernel_1x2(int nkg, const uint8_t *ib, const int8_t *pw0, const int8_t *pw1,
                         __m256i acc[4]) {
    const __m256i ones = _mm256_set1_epi16(1);
    acc[0] = acc[1] = acc[2] = acc[3] = _mm256_setzero_si256();
    for (int kg = 0; kg < nkg; kg++) {
        int32_t nv, uv;
        memcpy(&nv, ib + (size_t)kg * 8, 4);
        memcpy(&uv, ib + (size_t)kg * 8 + 4, 4);
        const __m256i vn = _mm256_set1_epi32(nv), vu = _mm256_set1_epi32(uv);
        const int8_t *w[2] = {pw0 + (size_t)kg * 64, pw1 + (size_t)kg * 64};
        QK_UNROLL
        for (int h = 0; h < 4; h++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(w[h >> 1] + 32 * (h & 1)));
            const __m256i t = _mm256_maddubs_epi16(vu, _mm256_xor_si256(wv, vn));
            acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(t, ones));
        }
    }
}

QK_TI void s8_block(const int R, const s8_args *g, int m0, const uint8_t *ib, const int32_t *neg,
                    const int8_t *packed, int nb_lo, int nb_hi) {
    int nb = nb_lo;
    if (R == 1) {
        for (; nb + 32 <= nb_hi; nb += 32) {
            const int8_t *pw = packed + (size_t)(nb / 16) * (size_t)g->Kp * 16;
            __m256i acc[4];
            s8_kernel_1x2(g->Kp / 4, ib, pw, pw + (size_t)g->Kp * 16, acc);
            s8_store(g, m0, nb, neg[0], acc[0], acc[1]);
            s8_store(g, m0, nb + 16, neg[0], acc[2], acc[3]);
        }
    }
    for (; nb < nb_hi; nb += 16) {
        const int8_t *pw = packed + (size_t)(nb / 16) * (size_t)g->Kp * 16;
        __m256i acc[S8_MR][2];
        s8_kernel(R, g->Kp / 4, ib, pw, acc);
        QK_UNROLL
        for (int r = 0; r < R; r++) s8_store(g, m0 + r, nb, neg[r], acc[r][0], acc[r][1]);
    }
}

// Builds the interleaved row block ib[kg][r] = {n, |a|} for rows m0..m0+R-1 and each row's
// sum of min(a, 0). Vectorized: 32 k (8 groups) per step; Kp is a multiple of 4.
QK_T static void s8_interleave(int R, int Kp, const int8_t *A, int lda, int m0, uint8_t *ib,
                               int32_t *neg) {
    const __m256i zero = _mm256_setzero_si256(), ones8 = _mm256_set1_epi8(1);
    for (int r = 0; r < R; r++) {
        const int8_t *src = A + (size_t)(m0 + r) * (size_t)lda;
        __m256i nsum = _mm256_setzero_si256(); // sums of |min(a,0)| in 16-bit pairs, widened below
        __m256i nacc = _mm256_setzero_si256();
        int k = 0;
        for (; k + 32 <= Kp; k += 32) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(src + k));
            const __m256i n = _mm256_cmpgt_epi8(zero, a);
            const __m256i u = _mm256_abs_epi8(a);
            // |min(a, 0)| = u & n; pair sums via maddubs with ones (<= 256, exact), then to int32.
            nsum = _mm256_maddubs_epi16(_mm256_and_si256(u, n), ones8);
            nacc = _mm256_add_epi32(nacc, _mm256_madd_epi16(nsum, _mm256_set1_epi16(1)));
            // 64-bit lanes of {n(4), u(4)} in k-group order: permute groups then unpack.
            const __m256i np = _mm256_permute4x64_epi64(n, 0xd8), up = _mm256_permute4x64_epi64(u, 0xd8);
            const __m256i lo = _mm256_unpacklo_epi32(np, up), hi = _mm256_unpackhi_epi32(np, up);
            // lo = groups 0,1 | 2,3 ; hi = groups 4,5 | 6,7 (after the 0xd8 lane permute)
            const int kg = k / 4;
            uint8_t *d = ib + ((size_t)kg * R + r) * 8;
            const size_t st = (size_t)R * 8;
            _mm_storel_epi64((__m128i *)(d + 0 * st), _mm256_castsi256_si128(lo));
            _mm_storeh_pd((double *)(d + 1 * st), _mm_castsi128_pd(_mm256_castsi256_si128(lo)));
            _mm_storel_epi64((__m128i *)(d + 2 * st), _mm256_extracti128_si256(lo, 1));
            _mm_storeh_pd((double *)(d + 3 * st), _mm_castsi128_pd(_mm256_extracti128_si256(lo, 1)));
            _mm_storel_epi64((__m128i *)(d + 4 * st), _mm256_castsi256_si128(hi));
            _mm_storeh_pd((double *)(d + 5 * st), _mm_castsi128_pd(_mm256_castsi256_si128(hi)));
            _mm_storel_epi64((__m128i *)(d + 6 * st), _mm256_extracti128_si256(hi, 1));
            _mm_storeh_pd((double *)(d + 7 * st), _mm_castsi128_pd(_mm256_extracti128_si256(hi, 1)));
        }
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, nacc);
        int32_t sneg = -(t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]);
        for (; k < Kp; k++) {
            const int v = src[k];
            uint8_t *d = ib + ((size_t)(k / 4) * R + r) * 8 + (k % 4);
            d[0] = (uint8_t)(v < 0 ? 0xff : 0);
            d[4] = (uint8_t)(v < 0 ? -v : v);
            sneg += v < 0 ? v : 0;
        }
        neg[r] = sneg;
    }
}

// ---- int8 GEMM, narrow weights ---------------------------------------------------------------
//
// When every weight lies in [-64, 64] (a blob quantized with 7-bit weights; the caller says so
// with wmax <= QK_S8_NARROW_MAX) a shorter exact step applies: take u = a + 128 (a XOR 0x80,
// u8 in [0, 255]) as the unsigned operand, then
//   sum_k u_k * w_k = sum_k a_k w_k + 128 * colsum[n]
// and a pmaddubsw pair lies in [-2 * 255 * 64, 2 * 255 * 64] = [-32640, 32640]: no saturation.
// One step of 8 channels x 4 k is vpmaddubsw + vpmaddwd + vpaddd (no vpxor, one broadcast):
// three vector ops instead of four, two of them on the multiply ports. The correction is per
// channel (128 * colsum), subtracted at store. Bit-exact with the scalar reference.

// The rows x 16 channels GEMM on u = a + 128 (shared with the AVX-VNNI kernel, which steps
// with vpdpbusd). 4 rows: each step needs temporaries besides the 8 accumulators.
#define U8S8_MR 4
#define U8S8_STEP(acc, u, w) _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, w), _mm256_set1_epi16(1)))
#include "qk_avx2_u8s8.h"

QK_T void qk_avx2_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                          const int8_t *packed, const int32_t *colsum, int wmax, const float *wscale,
                          const float *bias, qk_act act, void *C, int ldc, int n0, int n1, int out_f32) {
    if (colsum != NULL && wmax <= QK_S8_NARROW_MAX) {
        u8s8_gemm(M, N, K, A, lda, ascale, packed, colsum, wscale, bias, act, C, ldc, n0, n1, out_f32);
        return;
    }
    const int Kp = QK_ROUND_UP(K, 4);
    s8_args g = {M, N, Kp, lda, ldc, n0, n1, out_f32, A, ascale, wscale, bias, act, C};
    uint8_t stack_ib[S8_MR * 2 * (Kp <= S8_STACK_KP ? Kp : 4)] __attribute__((aligned(32)));
    uint8_t *ib = Kp <= S8_STACK_KP ? stack_ib : (uint8_t *)malloc((size_t)S8_MR * 2 * (size_t)Kp);
    if (!ib) {
        qk_scalar_gemm_s8(M, N, K, A, lda, ascale, packed, wscale, bias, act, C, ldc, n0, n1, out_f32);
        return;
    }
    int32_t neg[S8_MR];
    // N chunks whose packed weights stay in L2 (<= ~256 KiB) while every row block uses them.
    int chunk = (256 * 1024) / (Kp * 16) * 16;
    if (chunk < 16) chunk = 16;
    const int first = n0 & ~15;
    for (int nc = first; nc < n1; nc += chunk) {
        const int nc_hi = nc + chunk < n1 ? nc + chunk : n1;
        for (int m0 = 0; m0 < M; m0 += S8_MR) {
            const int R = M - m0 < S8_MR ? M - m0 : S8_MR;
            s8_interleave(R, Kp, A, lda, m0, ib, neg);
            switch (R) {
            case 4: s8_block(4, &g, m0, ib, neg, packed, nc, nc_hi); break;
            case 3: s8_block(3, &g, m0, ib, neg, packed, nc, nc_hi); break;
            case 2: s8_block(2, &g, m0, ib, neg, packed, nc, nc_hi); break;
            default: s8_block(1, &g, m0, ib, neg, packed, nc, nc_hi); break;
            }
        }
    }
    if (ib != stack_ib) free(ib);
}

// ---- fp32 GEMM (NT) ---------------------------------------------------------------------------
//
// B rows are packed per block into panels of 16 channels, [k][16] (zero padded past n1), so
// each k is two ymm loads; A is broadcast. Micro-kernel 6 rows x 16 channels (12 ymm acc).

#define SG_MR 6
#define SG_KC 256
#define SG_NC 128

QK_TI void sg_kernel(const int R, int kb, const float *a, int lda, const float *bp, float *c,
                     int ldc, int nb, int n0, int n1, int first, int last, const float *bias,
                     qk_act act) {
    __m256 acc[SG_MR][2];
    const int full = nb + 16 <= n1;
    const __m256i m0 = full ? _mm256_set1_epi32(-1) : lane_mask(nb, n0, n1);
    const __m256i m1 = full ? _mm256_set1_epi32(-1) : lane_mask(nb + 8, n0, n1);
    QK_UNROLL
    for (int r = 0; r < R; r++) {
        if (first) {
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        } else {
            float *cr = c + (size_t)r * (size_t)ldc + nb;
            acc[r][0] = _mm256_maskload_ps(cr, m0);
            acc[r][1] = _mm256_maskload_ps(cr + 8, m1);
        }
    }
    for (int k = 0; k < kb; k++) {
        const __m256 b0 = _mm256_loadu_ps(bp + (size_t)k * 16);
        const __m256 b1 = _mm256_loadu_ps(bp + (size_t)k * 16 + 8);
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const __m256 av = _mm256_broadcast_ss(a + (size_t)r * (size_t)lda + k);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    __m256 bb0 = _mm256_setzero_ps(), bb1 = _mm256_setzero_ps();
    if (last && bias) {
        bb0 = _mm256_maskload_ps(bias + nb, m0);
        bb1 = _mm256_maskload_ps(bias + nb + 8, m1);
    }
    QK_UNROLL
    for (int r = 0; r < R; r++) {
        __m256 v0 = acc[r][0], v1 = acc[r][1];
        if (last) {
            if (bias) {
                v0 = _mm256_add_ps(v0, bb0);
                v1 = _mm256_add_ps(v1, bb1);
            }
            v0 = act8(v0, act);
            v1 = act8(v1, act);
        }
        float *cr = c + (size_t)r * (size_t)ldc + nb;
        if (full) {
            _mm256_storeu_ps(cr, v0);
            _mm256_storeu_ps(cr + 8, v1);
        } else {
            _mm256_maskstore_ps(cr, m0, v0);
            _mm256_maskstore_ps(cr + 8, m1, v1);
        }
    }
}

// Small M (GEMV-like): dot products straight from B, four channels at a time, no packing
// (packing B would cost as much as the whole product). B rows stay in L1 across the M rows.
QK_T void qk_avx2_sgemm_small(int M, int K, const float *A, int lda, const float *B, int ldb,
                              const float *bias, qk_act act, float *C, int ldc, int n0, int n1) {
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        const float *b0 = B + (size_t)n * (size_t)ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        for (int m = 0; m < M; m++) {
            const float *a = A + (size_t)m * (size_t)lda;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            int k = 0;
            for (; k + 8 <= K; k += 8) {
                const __m256 av = _mm256_loadu_ps(a + k);
                s0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b0 + k), s0);
                s1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b1 + k), s1);
                s2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + k), s2);
                s3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b3 + k), s3);
            }
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
            __m128 v = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            float t[4];
            _mm_storeu_ps(t, v);
            for (; k < K; k++) {
                t[0] += a[k] * b0[k];
                t[1] += a[k] * b1[k];
                t[2] += a[k] * b2[k];
                t[3] += a[k] * b3[k];
            }
            float *c = C + (size_t)m * (size_t)ldc + n;
            for (int j = 0; j < 4; j++) c[j] = qk_act1(bias ? t[j] + bias[n + j] : t[j], act);
        }
    }
    for (; n < n1; n++) {
        const float *b = B + (size_t)n * (size_t)ldb;
        for (int m = 0; m < M; m++) {
            const float *a = A + (size_t)m * (size_t)lda;
            __m256 s0 = _mm256_setzero_ps();
            int k = 0;
            for (; k + 8 <= K; k += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
            float t[8];
            _mm256_storeu_ps(t, s0);
            float v = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
            for (; k < K; k++) v += a[k] * b[k];
            C[(size_t)m * (size_t)ldc + n] = qk_act1(bias ? v + bias[n] : v, act);
        }
    }
}

// ---- fused attention (one head) ------------------------------------------------------------------
//
// K is packed once per head (panels of 16 keys, [d][16]) and V too (panels of 16 columns,
// [j][16]). Then per block of QK_ATT_MB query rows: scores = Q K^T with the sgemm micro-kernel
// (key panel outer, so each panel is loaded into L1 once per block), the softmax in place
// (unnormalized e, and 1/sum), ctx = e V with the same micro-kernel (V panel outer), scaled by
// 1/sum. The L x L matrix is never written: a block's scores stay in L2.

QK_T void qk_avx2_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                 float *out, int ldo, float *scratch) {
    const int Lp = QK_ROUND_UP(L, 16);
    float *kt = scratch, *vp = kt + qk_att_kt_floats(L, dh), *S = vp + qk_att_vp_floats(L, dh);
    qk_pack_b16(K, ld, 0, dh, 0, L, kt);
    qk_pack_v16(V, ld, L, dh, vp);
    for (int mb = 0; mb < L; mb += QK_ATT_MB) {
        const int rows = L - mb < QK_ATT_MB ? L - mb : QK_ATT_MB;
        for (int nb = 0; nb < Lp; nb += 16) {
            const float *p = kt + (size_t)nb * (size_t)dh;
            for (int m0 = 0; m0 < rows; m0 += SG_MR) {
                const int R = rows - m0 < SG_MR ? rows - m0 : SG_MR;
                const float *q = Q + (size_t)(mb + m0) * (size_t)ld;
                QK_ROWS6(sg_kernel, R, dh, q, ld, p, S + (size_t)m0 * (size_t)Lp, Lp, nb, 0, Lp, 1, 1, NULL, QK_ACT_NONE)
            }
        }
        float inv[QK_ATT_MB];
        for (int r = 0; r < rows; r++) inv[r] = qk_avx2_softmax_e16(L, S + (size_t)r * (size_t)Lp);
        float *o = out + (size_t)mb * (size_t)ldo;
        for (int nb = 0; nb < dh; nb += 16) {
            const float *p = vp + (size_t)nb * (size_t)L;
            for (int m0 = 0; m0 < rows; m0 += SG_MR) {
                const int R = rows - m0 < SG_MR ? rows - m0 : SG_MR;
                QK_ROWS6(sg_kernel, R, L, S + (size_t)m0 * (size_t)Lp, Lp, p, o + (size_t)m0 * (size_t)ldo, ldo, nb, 0, dh, 1, 1, NULL,
                       QK_ACT_NONE)
            }
        }
        for (int r = 0; r < rows; r++) {
            float *orow = o + (size_t)r * (size_t)ldo;
            const __m256 vi = _mm256_set1_ps(inv[r]);
            int c = 0;
            for (; c + 8 <= dh; c += 8) _mm256_storeu_ps(orow + c, _mm256_mul_ps(_mm256_loadu_ps(orow + c), vi));
            for (; c < dh; c++) orow[c] *= inv[r];
        }
    }
}

// ---- int16 attention (qk_attention_head_i16) ---------------------------------------------------
//
// qk_avx512_attention_head_i16's scheme on ymm: vpmaddwd (8 lanes x a pair of int16 products,
// exact in int32) then vpaddd; a 16-wide panel is two ymm (lanes 0-7, 8-15). Tiles of up to 6
// query rows x one panel: 12 accumulators. The same float steps as the scalar twin.

#define B16_MR 6

// acc[r] = sum over t < npairs of pair t of row r of a (stride lda) . step t of the panel b
// (16 lanes x a pair, two ymm): the product both tiles share.
QK_TI void b16_dot(const int R, int npairs, const int16_t *a, size_t lda, const int16_t *b, __m256i acc[B16_MR][2]) {
    QK_UNROLL
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int t = 0; t < npairs; t++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + (size_t)t * 32));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + (size_t)t * 32 + 16));
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const __m256i x = _mm256_set1_epi32(qk_load_pair(a + (size_t)r * lda + 2 * t));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x, b1));
        }
    }
}

// Scores of query rows i0.. against key panel pn: s = (float)acc * (qs[i] * ks[j]).
QK_TI void b16_qk_tile(const int R, const qk_att16 *w, int i0, int pn, int ldS, float *S) {
    const size_t dhp = (size_t)w->dhp;
    __m256i acc[B16_MR][2];
    b16_dot(R, w->dhp / 2, w->qq + (size_t)i0 * dhp, dhp, w->kp + (size_t)pn * dhp * 16, acc);
    const __m256 ks0 = _mm256_loadu_ps(w->ks + (size_t)pn * 16), ks1 = _mm256_loadu_ps(w->ks + (size_t)pn * 16 + 8);
    QK_UNROLL
    for (int r = 0; r < R; r++) {
        const __m256 q = _mm256_set1_ps(w->qs[i0 + r]);
        float *s = S + (size_t)r * (size_t)ldS + (size_t)pn * 16;
        _mm256_storeu_ps(s, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][0]), _mm256_mul_ps(q, ks0)));
        _mm256_storeu_ps(s + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][1]), _mm256_mul_ps(q, ks1)));
    }
}

// Outputs of probability rows P.. for V column panel cp: out = (float)acc * vs[c].
QK_TI void b16_pv_tile(const int R, const qk_att16 *w, const int16_t *P, int cp, int dh, float *o, int ldo) {
    const size_t Lp = (size_t)w->Lp;
    __m256i acc[B16_MR][2];
    b16_dot(R, w->Lp / 2, P, Lp, w->vp + (size_t)cp * Lp * 16, acc);
    const int c = cp * 16;
    const __m256 vs0 = _mm256_loadu_ps(w->vs + c), vs1 = _mm256_loadu_ps(w->vs + c + 8);
    QK_UNROLL
    for (int r = 0; r < R; r++) {
        float *orow = o + (size_t)r * (size_t)ldo + c;
        const __m256 x0 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][0]), vs0);
        const __m256 x1 = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][1]), vs1);
        if (c + 16 <= dh) {
            _mm256_storeu_ps(orow, x0);
            _mm256_storeu_ps(orow + 8, x1);
        } else {
            float t16[16];
            _mm256_storeu_ps(t16, x0);
            _mm256_storeu_ps(t16 + 8, x1);
            for (int k = 0; k < dh - c; k++) orow[k] = t16[k];
        }
    }
}

QK_T void qk_avx2_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                     float *out, int ldo, float *scratch) {
    const qk_att16 w = qk_att16_layout(L, dh, scratch);
    qk_att16_prepare(L, dh, Q, K, V, ld, &w);
    const int Lp = w.Lp, kpanels = Lp / 16, vpanels = w.dh16 / 16;
    for (int mb = 0; mb < L; mb += QK_ATT_MB) {
        const int rows = L - mb < QK_ATT_MB ? L - mb : QK_ATT_MB;
        for (int m0 = 0; m0 < rows; m0 += B16_MR) {
            const int R = rows - m0 < B16_MR ? rows - m0 : B16_MR;
            for (int pn = 0; pn < kpanels; pn++) QK_ROWS6(b16_qk_tile, R, &w, mb + m0, pn, Lp, w.S + (size_t)m0 * (size_t)Lp)
        }
        for (int r = 0; r < rows; r++) {
            float *e = w.S + (size_t)r * (size_t)Lp;
            int16_t *p = w.P + (size_t)r * (size_t)Lp;
            const __m256 f = _mm256_set1_ps(qk_avx2_softmax_e16(L, e) * QK_ATT16_PMAX), top = _mm256_set1_ps(QK_ATT16_PMAX);
            for (int j = 0; j < Lp; j += 16) { // e is 0 past L, so p is too
                const __m256i i0 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(e + j), f), top));
                const __m256i i1 = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(e + j + 8), f), top));
                const __m256i pk = _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), _MM_SHUFFLE(3, 1, 2, 0));
                _mm256_storeu_si256((__m256i *)(p + j), pk);
            }
        }
        float *o = out + (size_t)mb * (size_t)ldo;
        for (int m0 = 0; m0 < rows; m0 += B16_MR) {
            const int R = rows - m0 < B16_MR ? rows - m0 : B16_MR;
            for (int cp = 0; cp < vpanels; cp++)
                QK_ROWS6(b16_pv_tile, R, &w, w.P + (size_t)m0 * (size_t)Lp, cp, dh, o + (size_t)m0 * (size_t)ldo, ldo)
        }
    }
}

QK_T void qk_avx2_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           const float *bias, qk_act act, float *C, int ldc, int n0, int n1) {
    (void)N;
    if (M < QK_SGEMM_SMALL_M) {
        qk_avx2_sgemm_small(M, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
    }
    float *bp = (float *)aligned_alloc(64, (size_t)SG_NC * (size_t)(K < SG_KC ? K : SG_KC) * sizeof(float));
    if (!bp) {
        qk_scalar_sgemm_nt(M, N, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
    }
    for (int nc = n0; nc < n1; nc += SG_NC) {
        const int nc_hi = nc + SG_NC < n1 ? nc + SG_NC : n1;
        for (int kc = 0; kc < K; kc += SG_KC) {
            const int kb = K - kc < SG_KC ? K - kc : SG_KC;
            qk_pack_b16(B, ldb, kc, kb, nc, nc_hi, bp);
            const int first = kc == 0, last = kc + kb >= K;
            for (int m0 = 0; m0 < M; m0 += SG_MR) {
                const int R = M - m0 < SG_MR ? M - m0 : SG_MR;
                const float *a = A + (size_t)m0 * (size_t)lda + kc;
                float *c = C + (size_t)m0 * (size_t)ldc;
                for (int nb = nc; nb < nc_hi; nb += 16) {
                    const float *p = bp + (size_t)(nb - nc) * kb;
                    switch (R) {
                    case 6: sg_kernel(6, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act); break;
                    case 5: sg_kernel(5, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act); break;
                    case 4: sg_kernel(4, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act); break;
                    case 3: sg_kernel(3, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act); break;
                    case 2: sg_kernel(2, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act); break;
                    default: sg_kernel(1, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act); break;
                    }
                }
            }
        }
    }
    free(bp);
}

#endif
