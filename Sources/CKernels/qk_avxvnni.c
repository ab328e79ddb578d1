// x86-64 AVX-VNNI kernels: VEX-encoded vpdpbusd on ymm (Intel Alder Lake and later cores,
// N100/N150/N305 and most current x86 small boxes; AMD Zen 5). Per-function target attributes.
//
// int8 GEMM as in the AVX-512 VNNI file, on 256-bit registers: activations are shifted to
// unsigned, u = a + 128 (= a XOR 0x80), so  sum u*w = sum a*w + 128 * colsum[n]  and the
// output stage subtracts 128 * colsum[n]. vpdpbusd adds four u8*s8 products into int32 without
// intermediate saturation, so the result equals the scalar one whenever the true sum fits in
// int32 (K < 131000 for any inputs). Bit-exact with the scalar reference.
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

#define AV_MR 6              // rows per micro-kernel: 6 x 16 channels = 12 ymm accumulators
#define AV_STACK_KP 8192     // row-block buffer on the stack up to this Kp (48 KiB), else malloc

typedef struct {
    int M, N, Kp, lda, ldc, n0, n1, out_f32;
    const float *ascale, *wscale, *bias;
    const int32_t *colsum;
    qk_act act;
    void *C;
} av_args;

// Output: acc - 128 * colsum[n], through the shared AVX2 output stage.
QK_TI void av_store(const av_args *g, int m, int nb, __m256i acc0, __m256i acc1) {
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
QK_TI void av_kernel(const int R, const av_args *g, int m0, const uint8_t *ub, const int8_t *pw,
                     int nb) {
    const int nkg = g->Kp / 4;
    __m256i acc[AV_MR][2];
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
            acc[r][0] = QK_DPBUSD(acc[r][0], vu, w0);
            acc[r][1] = QK_DPBUSD(acc[r][1], vu, w1);
        }
    }
    QK_UNROLL
    for (int r = 0; r < R; r++) av_store(g, m0 + r, nb, acc[r][0], acc[r][1]);
}

// One row, four panels (GEMV, M = 1): eight independent accumulator chains to cover the
// vpdpbusd latency, four weight streams in flight.
QK_TI void av_kernel_1x4(const av_args *g, int m, const uint8_t *ub, const int8_t *pw, int nb) {
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
            acc[h] = QK_DPBUSD(acc[h], vu, wv);
        }
    }
    QK_UNROLL
    for (int p = 0; p < 4; p++) av_store(g, m, nb + 16 * p, acc[2 * p], acc[2 * p + 1]);
}

QK_TI void av_rows(const int R, const av_args *g, int m0, const uint8_t *ub, const int8_t *packed,
                   int nb_lo, int nb_hi) {
    int nb = nb_lo;
    if (R == 1)
        for (; nb + 64 <= nb_hi; nb += 64)
            av_kernel_1x4(g, m0, ub, packed + (size_t)(nb / 16) * (size_t)g->Kp * 16, nb);
    for (; nb < nb_hi; nb += 16) av_kernel(R, g, m0, ub, packed + (size_t)(nb / 16) * (size_t)g->Kp * 16, nb);
}

// ub[kg][r] = A[m0 + r][4kg..4kg+3] XOR 0x80 for the R rows of the block (Kp multiple of 4).
QK_T static void av_interleave(int R, int Kp, const int8_t *A, int lda, int m0, uint8_t *ub) {
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

QK_T void qk_avxvnni_gemm_s8(int M, int N, int K, const int8_t *A, int lda, const float *ascale,
                             const int8_t *packed, const int32_t *colsum, const float *wscale,
                             const float *bias, qk_act act, void *C, int ldc, int n0, int n1,
                             int out_f32) {
    const int Kp = QK_ROUND_UP(K, 4);
    av_args g = {M, N, Kp, lda, ldc, n0, n1, out_f32, ascale, wscale, bias, colsum, act, C};
    uint8_t stack_ub[AV_MR * (Kp <= AV_STACK_KP ? Kp : 4)] __attribute__((aligned(32)));
    uint8_t *ub = Kp <= AV_STACK_KP ? stack_ub : (uint8_t *)malloc((size_t)AV_MR * (size_t)Kp);
    if (!ub) {
        qk_scalar_gemm_s8(M, N, K, A, lda, ascale, packed, wscale, bias, act, C, ldc, n0, n1, out_f32);
        return;
    }
    // N chunks whose packed weights stay in L2 (<= ~256 KiB) while every row block uses them.
    int chunk = (256 * 1024) / (Kp * 16) * 16;
    if (chunk < 64) chunk = 64;
    for (int nc = n0 & ~15; nc < n1; nc += chunk) {
        const int nc_hi = nc + chunk < n1 ? nc + chunk : n1;
        for (int m0 = 0; m0 < M; m0 += AV_MR) {
            const int R = M - m0 < AV_MR ? M - m0 : AV_MR;
            av_interleave(R, Kp, A, lda, m0, ub);
            switch (R) {
            case 6: av_rows(6, &g, m0, ub, packed, nc, nc_hi); break;
            case 5: av_rows(5, &g, m0, ub, packed, nc, nc_hi); break;
            case 4: av_rows(4, &g, m0, ub, packed, nc, nc_hi); break;
            case 3: av_rows(3, &g, m0, ub, packed, nc, nc_hi); break;
            case 2: av_rows(2, &g, m0, ub, packed, nc, nc_hi); break;
            default: av_rows(1, &g, m0, ub, packed, nc, nc_hi); break;
            }
        }
    }
    if (ub != stack_ub) free(ub);
}

#endif
