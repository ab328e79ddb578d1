// AVX2 vector helpers shared by qk_avx2.c and qk_avxvnni.c (the fused output stage of their
// int8 GEMMs). Include after defining QK_TI (static inline + the file's target attribute); in
// the SIMDe test build the intrinsics are SIMDe's portable ones.
#ifndef QSENT_QK_AVX2_MATH_H
#define QSENT_QK_AVX2_MATH_H

QK_TI __m256 gelu8(__m256 v) {
    __m256 x = _mm256_mul_ps(v, _mm256_set1_ps(QK_SQRT1_2));
    x = _mm256_min_ps(x, _mm256_set1_ps(4.0f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-4.0f));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(QK_ERF_A13), _mm256_set1_ps(QK_ERF_A11));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(QK_ERF_A9));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(QK_ERF_A7));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(QK_ERF_A5));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(QK_ERF_A3));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(QK_ERF_A1));
    p = _mm256_mul_ps(x, p);
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(QK_ERF_B8), _mm256_set1_ps(QK_ERF_B6));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(QK_ERF_B4));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(QK_ERF_B2));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(QK_ERF_B0));
    __m256 erf = _mm256_div_ps(p, q);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

QK_TI __m256 act8(__m256 v, qk_act act) {
    if (act == QK_ACT_GELU) return gelu8(v);
    if (act == QK_ACT_RELU) return _mm256_max_ps(v, _mm256_setzero_ps());
    return v;
}

// Lane mask (all-ones int32 lanes) for lanes base+i (i < 8) inside [lo, hi).
QK_TI __m256i lane_mask(int base, int lo, int hi) {
    __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i ge = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(lo - 1));
    __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), idx);
    return _mm256_and_si256(ge, lt);
}

// Output stage of the int8 GEMMs for 16 channels [nb, nb+16) of row m, clipped to [n0, n1):
// int32 accumulators (already corrected) to C as int32, or as float
// act(acc * ascale_m * wscale[n] + bias[n]) (bias may be NULL).
QK_TI void qk_avx2_store16(int out_f32, void *C, int ldc, int m, int nb, int n0, int n1, float ascale_m,
                           const float *wscale, const float *bias, qk_act act, __m256i acc0, __m256i acc1) {
    const int full = nb >= n0 && nb + 16 <= n1;
    __m256i acc[2] = {acc0, acc1};
    QK_UNROLL
    for (int h = 0; h < 2; h++) {
        const int n = nb + 8 * h;
        if (!full && (n + 8 <= n0 || n >= n1)) continue;
        const __m256i mask = full ? _mm256_set1_epi32(-1) : lane_mask(n, n0, n1);
        if (out_f32) {
            float *c = (float *)C + (size_t)m * (size_t)ldc + n;
            __m256 ws, b = _mm256_setzero_ps();
            if (full) {
                ws = _mm256_loadu_ps(wscale + n);
                if (bias) b = _mm256_loadu_ps(bias + n);
            } else {
                ws = _mm256_maskload_ps(wscale + n, mask);
                if (bias) b = _mm256_maskload_ps(bias + n, mask);
            }
            __m256 s = _mm256_mul_ps(_mm256_set1_ps(ascale_m), ws);
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[h]), s);
            if (bias) v = _mm256_add_ps(v, b);
            v = act8(v, act);
            if (full) _mm256_storeu_ps(c, v);
            else _mm256_maskstore_ps(c, mask, v);
        } else {
            int32_t *c = (int32_t *)C + (size_t)m * (size_t)ldc + n;
            if (full) _mm256_storeu_si256((__m256i *)c, acc[h]);
            else _mm256_maskstore_epi32((int *)c, mask, acc[h]);
        }
    }
}

#endif
