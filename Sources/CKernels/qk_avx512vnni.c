// x86-64 AVX-512 (F/BW/VL) + VNNI kernels. Per-function target attributes only.
//
// int8 GEMM with vpdpbusd (u8 x s8): activations are shifted to unsigned, u = a + 128
// (= a XOR 0x80 as a byte), so   sum u*w = sum a*w + 128 * colsum[n]   and the kernel
// subtracts 128 * colsum[n]. vpdpbusd adds four u8*s8 products to int32 without saturation
// (|4 * 255 * 127| = 129540 per step); the int32 result equals the scalar one whenever the
// true sum fits in int32 (K < 131000 for any inputs). Bit-exact with the scalar reference.
//
// NOTE: the development VM for this code exposes no AVX-512 (XCR0 = 0x207), so this file is
// compile-checked only there; dispatch never runs it where qk_isa_supported() says no.
#include "qk_internal.h"

#if defined(QK_HAVE_X86) || defined(QK_AVX512_EMULATED)
#include <stdlib.h>

#if !defined(QK_AVX512_EMULATED)
#include <immintrin.h>
#define QK_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define QK_TI static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#else
// Test-only build (Tests/CKernelsC/avx512_emulated.sh): the intrinsics come from SIMDe's
// portable implementations so this file's logic can run on a machine without AVX-512.
#define QK_T
#define QK_TI static inline
#endif

QK_TI __m512 gelu16(__m512 v) {
    __m512 x = _mm512_mul_ps(v, _mm512_set1_ps(QK_SQRT1_2));
    x = _mm512_min_ps(x, _mm512_set1_ps(4.0f));
    x = _mm512_max_ps(x, _mm512_set1_ps(-4.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(QK_ERF_A13), _mm512_set1_ps(QK_ERF_A11));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(QK_ERF_A9));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(QK_ERF_A7));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(QK_ERF_A5));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(QK_ERF_A3));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(QK_ERF_A1));
    p = _mm512_mul_ps(x, p);
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(QK_ERF_B8), _mm512_set1_ps(QK_ERF_B6));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(QK_ERF_B4));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(QK_ERF_B2));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(QK_ERF_B0));
    __m512 erf = _mm512_div_ps(p, q);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v),
                         _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

QK_TI __m512 act16(__m512 v, qk_act act) {
    if (act == QK_ACT_GELU) return gelu16(v);
    if (act == QK_ACT_RELU) return _mm512_max_ps(v, _mm512_setzero_ps());
    return v;
}

// exp on 16 lanes: exp8's steps (qk_avx2.c) and qk_exp_fma's (the scalar twin), one for one,
// so every lane is bit-identical to theirs.
QK_TI __m512 exp16(__m512 x0) {
    __m512 x = _mm512_min_ps(x0, _mm512_set1_ps(QK_EXP_HI));
    x = _mm512_max_ps(x, _mm512_set1_ps(QK_EXP_LO));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(QK_LOG2E), magic), magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(QK_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(QK_LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(QK_EXP_P0), r, _mm512_set1_ps(QK_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QK_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QK_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QK_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(QK_EXP_P5));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    const __mmask16 under = _mm512_cmp_ps_mask(x0, _mm512_set1_ps(QK_EXP_LO), _CMP_LT_OQ);
    return _mm512_maskz_mov_ps((__mmask16)~under, y);
}

// Mask of lanes base+i (i < 16) inside [lo, hi).
QK_TI __mmask16 lane_mask16(int base, int lo, int hi) {
    __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(base),
                                   _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    return _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(lo)) &
           _mm512_cmplt_epi32_mask(idx, _mm512_set1_epi32(hi));
}

// The fused attention's softmax row on 16 lanes: qk_avx2_softmax_e16's contract and numbers
// (x[j] = exp(x[j] - max) for j < L, 0 in the padding up to round_up(L, 16); returns 1 / sum).
// Lane i of the one accumulator is the AVX2 version's partial sum i (its two ymm hold lanes
// 0-7 and 8-15 of each 16), and the reduction is its tree: (lane i + lane i+8), then the same
// 128-bit steps. The max is exact in any order.
QK_TI float softmax_e16_zmm(int L, float *x) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0; // two chains of vmaxps latency, not one
    int j = 0;
    for (; j + 32 <= L; j += 32) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(x + j), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(x + j + 16), m1);
    }
    __m512 vmax = _mm512_max_ps(m0, m1);
    for (; j + 16 <= L; j += 16) vmax = _mm512_max_ps(_mm512_loadu_ps(x + j), vmax);
    float mx = _mm512_reduce_max_ps(vmax);
    for (; j < L; j++) mx = x[j] > mx ? x[j] : mx;
    if (mx == -INFINITY) mx = 0.0f;
    const __m512 vm = _mm512_set1_ps(mx);
    __m512 s = _mm512_setzero_ps();
    for (j = 0; j + 16 <= L; j += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm));
        _mm512_storeu_ps(x + j, e);
        s = _mm512_add_ps(s, e);
    }
    if (j < L) { // the padding lanes of the row (past L) are in the buffer; they become 0
        const __m512 e = _mm512_maskz_mov_ps(lane_mask16(j, 0, L), exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm)));
        _mm512_storeu_ps(x + j, e);
        s = _mm512_add_ps(s, e);
    }
    const __m256 lo = _mm512_castps512_ps256(s);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
    const __m256 t8 = _mm256_add_ps(lo, hi);                                                 // i + (i+8)
    const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1)); // + (i+4)
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));                               // [0]+[2], [1]+[3]
    const float sum = _mm_cvtss_f32(_mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1)));
    return 1.0f / sum;
}

// ---- quantization (bit-exact with the scalar reference) --------------------------------------

QK_TI __m128i quant16(__m512 x, __m512 s) {
    __m512 v = _mm512_div_ps(x, s);
    v = _mm512_min_ps(v, _mm512_set1_ps(127.0f));
    v = _mm512_max_ps(v, _mm512_set1_ps(-127.0f));
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 d = _mm512_sub_ps(v, t);
    __mmask16 up = _mm512_cmp_ps_mask(d, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __mmask16 dn = _mm512_cmp_ps_mask(d, _mm512_set1_ps(-0.5f), _CMP_LE_OQ);
    t = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
    t = _mm512_mask_sub_ps(t, dn, t, _mm512_set1_ps(1.0f));
    return _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(t));
}

QK_T void qk_avx512_quantize_rows_s8(int M, int K, const float *X, int ldx, int8_t *Q, int ldq,
                                     float *scale) {
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * (size_t)ldx;
        int8_t *q = Q + (size_t)m * (size_t)ldq;
        __m512 vmax = _mm512_setzero_ps();
        int k = 0;
        for (; k + 16 <= K; k += 16) vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + k)), vmax);
        if (k < K) {
            __mmask16 mk = (__mmask16)((1u << (K - k)) - 1);
            vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k)), vmax);
        }
        float t16[16], amax = 0.0f;
        _mm512_storeu_ps(t16, vmax);
        for (int j = 0; j < 16; j++) amax = t16[j] > amax ? t16[j] : amax;
        float s = amax / 127.0f;
        if (s == 0.0f) s = 1.0f;
        scale[m] = s;
        const __m512 vs = _mm512_set1_ps(s);
        for (k = 0; k + 16 <= K; k += 16) _mm_storeu_si128((__m128i *)(q + k), quant16(_mm512_loadu_ps(x + k), vs));
        if (k < K) {
            __mmask16 mk = (__mmask16)((1u << (K - k)) - 1);
            _mm_mask_storeu_epi8(q + k, mk, quant16(_mm512_maskz_loadu_ps(mk, x + k), vs));
        }
        for (k = K; k < ldq; k++) q[k] = 0;
    }
}

// ---- int8 GEMM ---------------------------------------------------------------------------------

#define V_MR 6
#define V_NP 4 // panels (of 16 channels) per micro-kernel: 6 x 4 = 24 zmm accumulators

typedef struct {
    int M, N, Kp, lda, ldc, n0, n1, out_f32;
    const int8_t *A;
    const float *ascale, *wscale, *bias;
    const int32_t *colsum;
    qk_act act;
    void *C;
} v_args;

QK_TI void v_kernel(const int R, const int P, const v_args *g, int m0, const uint8_t *ub,
                    const int8_t *pw, int nb) {
    const int nkg = g->Kp / 4;
    const size_t pstride = (size_t)g->Kp * 16;
    __m512i acc[V_MR][V_NP];
    QK_UNROLL
    for (int r = 0; r < R; r++)
        QK_UNROLL
        for (int p = 0; p < P; p++) acc[r][p] = _mm512_setzero_si512();
    for (int kg = 0; kg < nkg; kg++) {
        __m512i w[V_NP];
        QK_UNROLL
        for (int p = 0; p < P; p++) {
            w[p] = _mm512_loadu_si512((const void *)(pw + p * pstride + (size_t)kg * 64));
            _mm_prefetch((const char *)(pw + p * pstride + (size_t)kg * 64 + 1024), _MM_HINT_T0);
        }
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            int32_t uv; // ub is interleaved: ub[kg][r] = 4 shifted activations of row r
            memcpy(&uv, ub + ((size_t)kg * R + r) * 4, 4);
            const __m512i va = _mm512_set1_epi32(uv);
            QK_UNROLL
            for (int p = 0; p < P; p++) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], va, w[p]);
        }
    }
    QK_UNROLL
    for (int p = 0; p < P; p++) {
        const int n = nb + 16 * p;
        const int full = n >= g->n0 && n + 16 <= g->n1;
        const __mmask16 mk = full ? (__mmask16)0xffff : lane_mask16(n, g->n0, g->n1);
        const __m512i cs = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mk, g->colsum + n), 7);
        __m512 ws = _mm512_setzero_ps(), b = _mm512_setzero_ps();
        if (g->out_f32) {
            ws = _mm512_maskz_loadu_ps(mk, g->wscale + n);
            if (g->bias) b = _mm512_maskz_loadu_ps(mk, g->bias + n);
        }
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const int m = m0 + r;
            const __m512i v = _mm512_sub_epi32(acc[r][p], cs);
            if (g->out_f32) {
                __m512 s = _mm512_mul_ps(_mm512_set1_ps(g->ascale[m]), ws);
                __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), s);
                if (g->bias) f = _mm512_add_ps(f, b);
                f = act16(f, g->act);
                _mm512_mask_storeu_ps((float *)g->C + (size_t)m * (size_t)g->ldc + n, mk, f);
            } else {
                _mm512_mask_storeu_epi32((int32_t *)g->C + (size_t)m * (size_t)g->ldc + n, mk, v);
            }
        }
    }
}

QK_TI void v_rows(const int R, const v_args *g, int m0, const uint8_t *ub, const int8_t *packed,
                  int nb_lo, int nb_hi) {
    int nb = nb_lo;
    for (; nb + 16 * V_NP <= nb_hi; nb += 16 * V_NP)
        v_kernel(R, V_NP, g, m0, ub, packed + (size_t)(nb / 16) * (size_t)g->Kp * 16, nb);
    const int rest = (nb_hi - nb + 15) / 16;
    const int8_t *pw = packed + (size_t)(nb / 16) * (size_t)g->Kp * 16;
    if (rest == 4) v_kernel(R, 4, g, m0, ub, pw, nb); // 49..63 channels left: last panel partial
    else if (rest == 3) v_kernel(R, 3, g, m0, ub, pw, nb);
    else if (rest == 2) v_kernel(R, 2, g, m0, ub, pw, nb);
    else if (rest == 1) v_kernel(R, 1, g, m0, ub, pw, nb);
}

QK_T void qk_avx512_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                            const int8_t *packed, const int32_t *colsum, const float *wscale,
                            const float *bias, qk_act act, void *C, int ldc, int n0, int n1,
                            int out_f32) {
    const int Kp = QK_ROUND_UP(K, 4);
    v_args g = {M, N, Kp, lda, ldc, n0, n1, out_f32, A, ascale, wscale, bias, colsum, act, C};
    uint8_t *ub = (uint8_t *)malloc((size_t)V_MR * (size_t)Kp);
    if (!ub) {
        qk_scalar_gemm_s8(M, N, K, A, lda, ascale, packed, wscale, bias, act, C, ldc, n0, n1, out_f32);
        return;
    }
    int chunk = (384 * 1024) / (Kp * 16 * V_NP) * 16 * V_NP; // ~384 KiB of weights
    if (chunk < 16 * V_NP) chunk = 16 * V_NP;
    for (int nc = n0 & ~15; nc < n1; nc += chunk) {
        const int nc_hi = nc + chunk < n1 ? nc + chunk : n1;
        for (int m0 = 0; m0 < M; m0 += V_MR) {
            const int R = M - m0 < V_MR ? M - m0 : V_MR;
            QK_UNROLL
            for (int r = 0; r < R; r++) { // u = a + 128 = a ^ 0x80, interleaved [kg][r][4]
                const int8_t *src = A + (size_t)(m0 + r) * (size_t)lda;
                for (int kg = 0; kg < Kp / 4; kg++) {
                    uint32_t v;
                    memcpy(&v, src + kg * 4, 4);
                    v ^= 0x80808080u;
                    memcpy(ub + ((size_t)kg * R + r) * 4, &v, 4);
                }
            }
            switch (R) {
            case 6: v_rows(6, &g, m0, ub, packed, nc, nc_hi); break;
            case 5: v_rows(5, &g, m0, ub, packed, nc, nc_hi); break;
            case 4: v_rows(4, &g, m0, ub, packed, nc, nc_hi); break;
            case 3: v_rows(3, &g, m0, ub, packed, nc, nc_hi); break;
            case 2: v_rows(2, &g, m0, ub, packed, nc, nc_hi); break;
            default: v_rows(1, &g, m0, ub, packed, nc, nc_hi); break;
            }
        }
    }
    free(ub);
}

// ---- fp32 GEMM (NT) ------------------------------------------------------------------------------

#define S_MR 6
#define S_NP 4
#define S_KC 256
#define S_NC 128

QK_TI void s_kernel(const int R, const int P, int kb, const float *a, int lda, const float *bp,
                    float *c, int ldc, int nb, int n0, int n1, int first, int last,
                    const float *bias, qk_act act) {
    __m512 acc[S_MR][S_NP];
    __mmask16 mk[S_NP];
    QK_UNROLL
    for (int p = 0; p < P; p++) {
        const int n = nb + 16 * p;
        mk[p] = n + 16 <= n1 ? (__mmask16)0xffff : lane_mask16(n, n0, n1);
    }
    QK_UNROLL
    for (int r = 0; r < R; r++)
        QK_UNROLL
        for (int p = 0; p < P; p++)
            acc[r][p] = first ? _mm512_setzero_ps()
                              : _mm512_maskz_loadu_ps(mk[p], c + (size_t)r * (size_t)ldc + nb + 16 * p);
    for (int k = 0; k < kb; k++) {
        __m512 b[S_NP];
        QK_UNROLL
        for (int p = 0; p < P; p++) b[p] = _mm512_loadu_ps(bp + (size_t)p * 16 * kb + (size_t)k * 16);
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(a[(size_t)r * (size_t)lda + k]);
            QK_UNROLL
            for (int p = 0; p < P; p++) acc[r][p] = _mm512_fmadd_ps(av, b[p], acc[r][p]);
        }
    }
    QK_UNROLL
    for (int p = 0; p < P; p++) {
        const int n = nb + 16 * p;
        __m512 bb = _mm512_setzero_ps();
        if (last && bias) bb = _mm512_maskz_loadu_ps(mk[p], bias + n);
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            __m512 v = acc[r][p];
            if (last) {
                if (bias) v = _mm512_add_ps(v, bb);
                v = act16(v, act);
            }
            _mm512_mask_storeu_ps(c + (size_t)r * (size_t)ldc + n, mk[p], v);
        }
    }
}

QK_TI void s_rows(const int R, int kb, const float *a, int lda, const float *bp, float *c, int ldc,
                  int nc, int nc_hi, int n0, int first, int last, const float *bias, qk_act act) {
    int nb = nc;
    for (; nb + 16 * S_NP <= nc_hi; nb += 16 * S_NP)
        s_kernel(R, S_NP, kb, a, lda, bp + (size_t)(nb - nc) * kb, c, ldc, nb, n0, nc_hi, first, last, bias, act);
    const int rest = (nc_hi - nb + 15) / 16;
    const float *p = bp + (size_t)(nb - nc) * kb;
    if (rest == 4) s_kernel(R, 4, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act);
    else if (rest == 3) s_kernel(R, 3, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act);
    else if (rest == 2) s_kernel(R, 2, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act);
    else if (rest == 1) s_kernel(R, 1, kb, a, lda, p, c, ldc, nb, n0, nc_hi, first, last, bias, act);
}

// Fused attention, one head: qk_avx2_attention_head's scheme (blocks of QK_ATT_MB query rows)
// with the zmm micro-kernel over pairs of 16-wide panels (6 rows x 32: 12 accumulators, the
// panel pair in L1) for Q K^T and e V; the softmax row on 16 lanes (softmax_e16_zmm: the same
// numbers as the AVX2 row and the scalar twin).

QK_T void qk_avx512_attention_head(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                   float *out, int ldo, float *scratch) {
    const int Lp = QK_ROUND_UP(L, 16);
    float *kt = scratch, *vp = kt + qk_att_kt_floats(L, dh), *S = vp + qk_att_vp_floats(L, dh);
    qk_pack_b16(K, ld, 0, dh, 0, L, kt);
    qk_pack_v16(V, ld, L, dh, vp);
    for (int mb = 0; mb < L; mb += QK_ATT_MB) {
        const int rows = L - mb < QK_ATT_MB ? L - mb : QK_ATT_MB;
        for (int nb = 0; nb < Lp; nb += 32) {
            const int hi = nb + 32 < Lp ? nb + 32 : Lp;
            const float *p = kt + (size_t)nb * (size_t)dh;
            for (int m0 = 0; m0 < rows; m0 += S_MR) {
                const int R = rows - m0 < S_MR ? rows - m0 : S_MR;
                const float *q = Q + (size_t)(mb + m0) * (size_t)ld;
                QK_ROWS6(s_rows, R, dh, q, ld, p, S + (size_t)m0 * (size_t)Lp, Lp, nb, hi, 0, 1, 1, NULL, QK_ACT_NONE)
            }
        }
        float inv[QK_ATT_MB];
        for (int r = 0; r < rows; r++) inv[r] = softmax_e16_zmm(L, S + (size_t)r * (size_t)Lp);
        float *o = out + (size_t)mb * (size_t)ldo;
        for (int nb = 0; nb < dh; nb += 32) {
            const int hi = nb + 32 < dh ? nb + 32 : dh;
            const float *p = vp + (size_t)nb * (size_t)L;
            for (int m0 = 0; m0 < rows; m0 += S_MR) {
                const int R = rows - m0 < S_MR ? rows - m0 : S_MR;
                QK_ROWS6(s_rows, R, L, S + (size_t)m0 * (size_t)Lp, Lp, p, o + (size_t)m0 * (size_t)ldo, ldo, nb, hi, 0, 1, 1, NULL,
                      QK_ACT_NONE)
            }
        }
        for (int r = 0; r < rows; r++) {
            float *orow = o + (size_t)r * (size_t)ldo;
            for (int c = 0; c < dh; c += 16) {
                const __mmask16 mk = c + 16 <= dh ? (__mmask16)0xffff : lane_mask16(c, 0, dh);
                const __m512 v = _mm512_maskz_loadu_ps(mk, orow + c);
                _mm512_mask_storeu_ps(orow + c, mk, _mm512_mul_ps(v, _mm512_set1_ps(inv[r])));
            }
        }
    }
}

QK_T void qk_avx512_sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                             const float *bias, qk_act act, float *C, int ldc, int n0, int n1) {
    (void)N;
    if (M < QK_SGEMM_SMALL_M) { // memory-bound: the AVX2 dot-product path (AVX-512 CPUs have AVX2)
        qk_avx2_sgemm_small(M, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
    }
    float *bp = (float *)aligned_alloc(64, (size_t)S_NC * (size_t)(K < S_KC ? K : S_KC) * sizeof(float));
    if (!bp) {
        qk_scalar_sgemm_nt(M, N, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
    }
    for (int nc = n0; nc < n1; nc += S_NC) {
        const int nc_hi = nc + S_NC < n1 ? nc + S_NC : n1;
        for (int kc = 0; kc < K; kc += S_KC) {
            const int kb = K - kc < S_KC ? K - kc : S_KC;
            qk_pack_b16(B, ldb, kc, kb, nc, nc_hi, bp);
            const int first = kc == 0, last = kc + kb >= K;
            for (int m0 = 0; m0 < M; m0 += S_MR) {
                const int R = M - m0 < S_MR ? M - m0 : S_MR;
                const float *a = A + (size_t)m0 * (size_t)lda + kc;
                float *c = C + (size_t)m0 * (size_t)ldc;
                switch (R) {
                case 6: s_rows(6, kb, a, lda, bp, c, ldc, nc, nc_hi, n0, first, last, bias, act); break;
                case 5: s_rows(5, kb, a, lda, bp, c, ldc, nc, nc_hi, n0, first, last, bias, act); break;
                case 4: s_rows(4, kb, a, lda, bp, c, ldc, nc, nc_hi, n0, first, last, bias, act); break;
                case 3: s_rows(3, kb, a, lda, bp, c, ldc, nc, nc_hi, n0, first, last, bias, act); break;
                case 2: s_rows(2, kb, a, lda, bp, c, ldc, nc, nc_hi, n0, first, last, bias, act); break;
                default: s_rows(1, kb, a, lda, bp, c, ldc, nc, nc_hi, n0, first, last, bias, act); break;
                }
            }
        }
    }
    free(bp);
}

// ---- int16 attention (qk_attention_head_i16) ---------------------------------------------------
//
// Both products with vpdpwssd (16 lanes x a pair of int16 products into int32, exact): Q K^T as
// R x NP tiles of (query rows) x (16-key panels), the reduction over d in pairs; P.V as R x NP
// tiles of (query rows) x (16-column V panels), the reduction over keys in pairs. The multiplier
// is a pair of the row broadcast as one int32. Every float step is the scalar twin's, lane for
// lane: s = (float)acc * (qs[i] * ks[j]), the softmax row above, p = cvtps(min(e * f, 32767)),
// out = (float)acc * vs[c].

#define A16_MR 6
#define A16_NP 4

// acc + pairwise a * b as one vpdpwssd. The intrinsic is not used natively: clang (tuning for
// generic x86-64) splits it into vpmaddwd + vpaddd, two instructions for one, which cost this
// kernel 20-30 % on a Zen 4 core (gemm_bench --attention).
QK_TI __m512i dpwssd16(__m512i acc, __m512i a, __m512i b) {
#if defined(QK_AVX512_EMULATED)
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
#endif
}

// acc[r][p] = sum over t < npairs of pair t of row r of a (stride lda) . step t of panel p of b
// (panels bstride apart, a step being 16 lanes x a pair): the product both tiles share.
QK_TI void a16_dot(const int R, const int NP, int npairs, const int16_t *a, size_t lda, const int16_t *b,
                   size_t bstride, __m512i acc[A16_MR][A16_NP]) {
    QK_UNROLL
    for (int r = 0; r < R; r++)
        QK_UNROLL
        for (int p = 0; p < NP; p++) acc[r][p] = _mm512_setzero_si512();
    for (int t = 0; t < npairs; t++) {
        __m512i bv[A16_NP];
        QK_UNROLL
        for (int p = 0; p < NP; p++) bv[p] = _mm512_loadu_si512(b + (size_t)p * bstride + (size_t)t * 32);
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const __m512i x = _mm512_set1_epi32(qk_load_pair(a + (size_t)r * lda + 2 * t));
            QK_UNROLL
            for (int p = 0; p < NP; p++) acc[r][p] = dpwssd16(acc[r][p], x, bv[p]);
        }
    }
}

// Scores of query rows i0.. against key panels pn..: s = (float)acc * (qs[i] * ks[j]).
QK_TI void a16_qk_tile(const int R, const int NP, const qk_att16 *w, int i0, int pn, int ldS, float *S) {
    const size_t dhp = (size_t)w->dhp;
    __m512i acc[A16_MR][A16_NP];
    a16_dot(R, NP, w->dhp / 2, w->qq + (size_t)i0 * dhp, dhp, w->kp + (size_t)pn * dhp * 16, dhp * 16, acc);
    QK_UNROLL
    for (int p = 0; p < NP; p++) {
        const __m512 ks = _mm512_loadu_ps(w->ks + (size_t)(pn + p) * 16);
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            const __m512 sc = _mm512_mul_ps(_mm512_set1_ps(w->qs[i0 + r]), ks);
            _mm512_storeu_ps(S + (size_t)r * (size_t)ldS + (size_t)(pn + p) * 16,
                             _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][p]), sc));
        }
    }
}

// Outputs of probability rows P.. for V column panels cp..: out = (float)acc * vs[c].
QK_TI void a16_pv_tile(const int R, const int NP, const qk_att16 *w, const int16_t *P, int cp, int dh, float *o,
                       int ldo) {
    const size_t Lp = (size_t)w->Lp;
    __m512i acc[A16_MR][A16_NP];
    a16_dot(R, NP, w->Lp / 2, P, Lp, w->vp + (size_t)cp * Lp * 16, Lp * 16, acc);
    QK_UNROLL
    for (int p = 0; p < NP; p++) {
        const int c = (cp + p) * 16;
        const __mmask16 mk = c + 16 <= dh ? (__mmask16)0xffff : lane_mask16(c, 0, dh);
        const __m512 vs = _mm512_loadu_ps(w->vs + c);
        QK_UNROLL
        for (int r = 0; r < R; r++)
            _mm512_mask_storeu_ps(o + (size_t)r * (size_t)ldo + c, mk, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][p]), vs));
    }
}

// F_(R, NP, ...) for R in 1...6 and NP in 1...4, both compile-time constants.
#define A16_TILE(F_, R_, NP_, ...)                                                                      \
    switch (NP_) {                                                                                  \
    case 4: QK_ROWS6(F_, R_, 4, __VA_ARGS__) break;                                                 \
    case 3: QK_ROWS6(F_, R_, 3, __VA_ARGS__) break;                                                 \
    case 2: QK_ROWS6(F_, R_, 2, __VA_ARGS__) break;                                                 \
    default: QK_ROWS6(F_, R_, 1, __VA_ARGS__) break;                                                \
    }

QK_T void qk_avx512_attention_head_i16(int L, int dh, const float *Q, const float *K, const float *V, int ld,
                                       float *out, int ldo, float *scratch) {
    const qk_att16 w = qk_att16_layout(L, dh, scratch);
    qk_att16_prepare(L, dh, Q, K, V, ld, &w);
    const int Lp = w.Lp, kpanels = Lp / 16, vpanels = w.dh16 / 16;
    for (int mb = 0; mb < L; mb += QK_ATT_MB) {
        const int rows = L - mb < QK_ATT_MB ? L - mb : QK_ATT_MB;
        for (int m0 = 0; m0 < rows; m0 += A16_MR) {
            const int R = rows - m0 < A16_MR ? rows - m0 : A16_MR;
            for (int pn = 0; pn < kpanels; pn += A16_NP) {
                const int NP = kpanels - pn < A16_NP ? kpanels - pn : A16_NP;
                A16_TILE(a16_qk_tile, R, NP, &w, mb + m0, pn, Lp, w.S + (size_t)m0 * (size_t)Lp)
            }
        }
        for (int r = 0; r < rows; r++) {
            float *e = w.S + (size_t)r * (size_t)Lp;
            int16_t *p = w.P + (size_t)r * (size_t)Lp;
            const __m512 f = _mm512_set1_ps(softmax_e16_zmm(L, e) * QK_ATT16_PMAX);
            for (int j = 0; j < Lp; j += 16) { // e is 0 past L, so p is too
                const __m512 v = _mm512_min_ps(_mm512_mul_ps(_mm512_loadu_ps(e + j), f), _mm512_set1_ps(QK_ATT16_PMAX));
                _mm256_storeu_si256((__m256i *)(p + j), _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(v)));
            }
        }
        float *o = out + (size_t)mb * (size_t)ldo;
        for (int m0 = 0; m0 < rows; m0 += A16_MR) {
            const int R = rows - m0 < A16_MR ? rows - m0 : A16_MR;
            for (int cp = 0; cp < vpanels; cp += A16_NP) {
                const int NP = vpanels - cp < A16_NP ? vpanels - cp : A16_NP;
                A16_TILE(a16_pv_tile, R, NP, &w, w.P + (size_t)m0 * (size_t)Lp, cp, dh, o + (size_t)m0 * (size_t)ldo, ldo)
            }
        }
    }
}

#endif
