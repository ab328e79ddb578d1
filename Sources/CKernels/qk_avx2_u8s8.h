// The int8 GEMM on ymm registers with unsigned activations, shared by two files:
//   - qk_avxvnni.c: the AVX-VNNI kernel (step = vpdpbusd), for any int8 weights;
//   - qk_avx2.c: the AVX2 kernel's narrow step for 7-bit weights (|w| <= QK_S8_NARROW_MAX;
//     step = vpmaddubsw + vpmaddwd + vpaddd, whose pair sums cannot saturate then).
// Activations are shifted to unsigned, u = a + 128 (= a XOR 0x80), so
//   sum_k u_k * w_k = sum_k a_k * w_k + 128 * colsum[n]
// and the output stage subtracts 128 * colsum[n]. Both steps give exact int32 sums, so the
// results are bit-exact with the scalar reference.
//
// The including file defines, before including this header (once per translation unit; every
// function here is static):
//   QK_T, QK_TI        its target attributes (qk_avx2_math.h must be included already);
//   U8S8_STEP(a, u, w) acc += the four u8 x s8 products of each 32-bit lane of u and w;
//   U8S8_MR            rows per micro-kernel (registers: 2 x MR accumulators).
// It gets u8s8_gemm(), with qk_*_gemm_s8's arguments.

#define U8S8_STACK_KP 8192 // row-block buffer on the stack up to this Kp (MR x 8 KiB), else malloc

typedef struct {
    int M, N, Kp, lda, ldc, n0, n1, out_f32;
    const float *ascale, *wscale, *bias;
    const int32_t *colsum;
    qk_act act;
    void *C;
} u8s8_args;

// Output: acc - 128 * colsum[n], through the shared AVX2 output stage.
QK_TI void u8s8_store(const u8s8_args *g, int m, int nb, __m256i acc0, __m256i acc1) {
    const int full = nb >= g->n0 && nb + 16 <= g->n1;
    const __m256i m0 = full ? _mm256_set1_epi32(-1) : lane_mask(nb, g->n0, g->n1);
    const __m256i m1 = full ? _mm256_set1_epi32(-1) : lane_mask(nb + 8, g->n0, g->n1);
    const __m256i c0 = _mm256_slli_epi32(_mm256_maskload_epi32((const int *)g->colsum + nb, m0), 7);
    const __m256i c1 = _mm256_slli_epi32(_mm256_maskload_epi32((const int *)g->colsum + nb + 8, m1), 7);
    qk_avx2_store16(g->out_f32, g->C, g->ldc, m, nb, g->n0, g->n1, g->out_f32 ? g->ascale[m] : 0.0f,
                    g->wscale, g->bias, g->act, _mm256_sub_epi32(acc0, c0), _mm256_sub_epi32(acc1, c1));
}

// R rows x 16 channels: acc[r][h] += u[r] . W[panel channels 8h..8h+7]. ub is the row block
// interleaved per k group (ub[kg][r] = 4 shifted activations of row r), so every broadcast
// is a vpbroadcastd straight from one pointer.
QK_TI void u8s8_kernel(const int R, const u8s8_args *g, int m0, const uint8_t *ub, const int8_t *pw,
                       int nb) {
    const int nkg = g->Kp / 4;
    __m256i acc[U8S8_MR][2];
    QK_UNROLL
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int kg = 0; kg < nkg; kg++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(pw + (size_t)kg * 64));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(pw + (size_t)kg * 64 + 32));
        const uint8_t *p = ub + (size_t)kg * 4 * R;
        QK_UNROLL
        for (int r = 0; r < R; r++) {
            int32_t uv;
            memcpy(&uv, p + 4 * r, 4);
            const __m256i vu = _mm256_set1_epi32(uv);
            acc[r][0] = U8S8_STEP(acc[r][0], vu, w0);
            acc[r][1] = U8S8_STEP(acc[r][1], vu, w1);
        }
    }
    QK_UNROLL
    for (int r = 0; r < R; r++) u8s8_store(g, m0 + r, nb, acc[r][0], acc[r][1]);
}

// One row, four panels (GEMV, M = 1): eight independent accumulator chains to cover the
// step's latency, four weight streams in flight.
QK_TI void u8s8_kernel_1x4(const u8s8_args *g, int m, const uint8_t *ub, const int8_t *pw, int nb) {
    const int nkg = g->Kp / 4;
    const size_t ps = (size_t)g->Kp * 16;
    __m256i acc[8];
    QK_UNROLL
    for (int h = 0; h < 8; h++) acc[h] = _mm256_setzero_si256();
    for (int kg = 0; kg < nkg; kg++) {
        int32_t uv;
        memcpy(&uv, ub + (size_t)kg * 4, 4);
        const __m256i vu = _mm256_set1_epi32(uv);
        QK_UNROLL
        for (int h = 0; h < 8; h++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(pw + (size_t)(h >> 1) * ps + (size_t)kg * 64 + 32 * (h & 1)));
            acc[h] = U8S8_STEP(acc[h], vu, wv);
        }
    }
    QK_UNROLL
    for (int p = 0; p < 4; p++) u8s8_store(g, m, nb + 16 * p, acc[2 * p], acc[2 * p + 1]);
}

QK_TI void u8s8_rows(const int R, const u8s8_args *g, int m0, const uint8_t *ub, const int8_t *packed,
                     int nb_lo, int nb_hi) {
    int nb = nb_lo;
    if (R == 1)
        for (; nb + 64 <= nb_hi; nb += 64)
            u8s8_kernel_1x4(g, m0, ub, packed + (size_t)(nb / 16) * (size_t)g->Kp * 16, nb);
    for (; nb < nb_hi; nb += 16) u8s8_kernel(R, g, m0, ub, packed + (size_t)(nb / 16) * (size_t)g->Kp * 16, nb);
}

// ub[kg][r] = A[m0 + r][4kg..4kg+3] XOR 0x80 for the R rows of the block (Kp multiple of 4).
QK_T static void u8s8_interleave(int R, int Kp, const int8_t *A, int lda, int m0, uint8_t *ub) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int r = 0; r < R; r++) {
        const int8_t *src = A + (size_t)(m0 + r) * (size_t)lda;
        int k = 0;
        for (; k + 32 <= Kp; k += 32) {
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)t, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + k)), flip));
            uint8_t *d = ub + ((size_t)(k / 4) * R + r) * 4;
            QK_UNROLL
            for (int j = 0; j < 8; j++) memcpy(d + (size_t)j * 4 * R, &t[j], 4);
        }
        for (; k < Kp; k++) ub[((size_t)(k / 4) * R + r) * 4 + (k % 4)] = (uint8_t)(src[k] ^ 0x80);
    }
}

// The block driver: rows in blocks of U8S8_MR, output channels in chunks that stay in L2.
QK_T static void u8s8_gemm(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                           const int8_t *packed, const int32_t *colsum, const float *wscale,
                           const float *bias, qk_act act, void *C, int ldc, int n0, int n1, int out_f32) {
    const int Kp = QK_ROUND_UP(K, 4);
    u8s8_args g = {M, N, Kp, lda, ldc, n0, n1, out_f32, ascale, wscale, bias, colsum, act, C};
    uint8_t stack_ub[U8S8_MR * (Kp <= U8S8_STACK_KP ? Kp : 4)] __attribute__((aligned(32)));
    uint8_t *ub = Kp <= U8S8_STACK_KP ? stack_ub : (uint8_t *)malloc((size_t)U8S8_MR * (size_t)Kp);
    if (!ub) {
        qk_scalar_gemm_s8(M, N, K, A, lda, ascale, packed, wscale, bias, act, C, ldc, n0, n1, out_f32);
        return;
    }
    // N chunks whose packed weights stay in L2 (<= ~256 KiB) while every row block uses them.
    int chunk = (256 * 1024) / (Kp * 16) * 16;
    if (chunk < 64) chunk = 64;
    for (int nc = n0 & ~15; nc < n1; nc += chunk) {
        const int nc_hi = nc + chunk < n1 ? nc + chunk : n1;
        for (int m0 = 0; m0 < M; m0 += U8S8_MR) {
            const int R = M - m0 < U8S8_MR ? M - m0 : U8S8_MR;
            u8s8_interleave(R, Kp, A, lda, m0, ub);
            switch (R) {
#if U8S8_MR >= 6
            case 6: u8s8_rows(6, &g, m0, ub, packed, nc, nc_hi); break;
            case 5: u8s8_rows(5, &g, m0, ub, packed, nc, nc_hi); break;
#endif
            case 4: u8s8_rows(4, &g, m0, ub, packed, nc, nc_hi); break;
            case 3: u8s8_rows(3, &g, m0, ub, packed, nc, nc_hi); break;
            case 2: u8s8_rows(2, &g, m0, ub, packed, nc, nc_hi); break;
            default: u8s8_rows(1, &g, m0, ub, packed, nc, nc_hi); break;
            }
        }
    }
    if (ub != stack_ub) free(ub);
}
