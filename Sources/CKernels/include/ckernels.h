// CKernels: the numeric kernels of qsent.
//
// Every kernel takes the ISA to run explicitly; there is no global state. `qk_isa_best()`
// probes the CPU once per call (cheap: cpuid / getauxval) and the engine keeps the answer.
// One file per ISA (qk_scalar.c, qk_avx2.c, qk_avx512vnni.c, qk_neon.c); SIMD functions use
// per-function __attribute__((target(...))) so one binary runs on every x86-64 / ARM64 box.
//
// Matrix conventions: row-major. A "linear" weight W is [N][K] (PyTorch nn.Linear layout:
// one row per output channel). GEMMs compute C[m][n] = sum_k A[m][k] * W[n][k] ("NT" form)
// for m in [0, M) and n in [n0, n1): callers split the N range across threads.
#ifndef QSENT_CKERNELS_H
#define QSENT_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    QK_ISA_SCALAR = 0,       // portable C reference
    QK_ISA_AVX2 = 1,         // x86-64 AVX2 + FMA (pmaddubsw with the sign trick; no VNNI)
    QK_ISA_AVX512VNNI = 2,   // x86-64 AVX-512 F/BW/VL + VNNI (vpdpbusd)
    QK_ISA_NEON = 3,         // AArch64 Advanced SIMD (smull/sadalp)
    QK_ISA_NEON_DOTPROD = 4, // AArch64 Advanced SIMD + dotprod (sdot)
    QK_ISA_AVXVNNI = 5,      // x86-64 AVX2 + FMA + AVX-VNNI (VEX vpdpbusd on ymm; Alder Lake, N100...)
} qk_isa;

/// Non-zero if this CPU (and OS) can run `isa`.
int qk_isa_supported(qk_isa isa);
/// The fastest supported ISA (x86: avx512vnni, then avxvnni, then avx2).
qk_isa qk_isa_best(void);
/// Stable lower-case name: "scalar", "avx2", "avx512vnni", "neon", "neon-dotprod", "avxvnni".
const char *qk_isa_name(qk_isa isa);

/// Activation functions fused into GEMM output stages.
typedef enum { QK_ACT_NONE = 0, QK_ACT_GELU = 1, QK_ACT_RELU = 2 } qk_act;

// ---------------------------------------------------------------------------------------
// int8 weights: packed layout (the layout stored in .qsent blobs, see docs/FORMAT.md)
//
//   Np = round_up(N, 16), Kp = round_up(K, 4)
//   packed[(n / 16) * (Kp * 16) + (k / 4) * 64 + (n % 16) * 4 + (k % 4)] = W[n][k]
//   padding (n >= N or k >= K) is 0.
//
// i.e. panels of 16 output channels; inside a panel, groups of 4 consecutive k for each
// channel, so one 64-byte load feeds one vpdpbusd (16 lanes x 4 bytes), two AVX2 ymm, or
// four NEON sdot q-registers. Weights must lie in [-127, 127].
// colsum[n] = sum_k W[n][k] (int32), needed by the VNNI +128 activation shift.
// ---------------------------------------------------------------------------------------
size_t qk_packed_s8_size(int N, int K);
void qk_pack_s8(int N, int K, const int8_t *W, int ldw, int8_t *packed, int32_t *colsum);

/// The largest |w| over `count` int8 weights (128 if one is -128; 0 for count 0): the `wmax`
/// a caller passes to the int8 GEMMs below for a layer's packed weights.
int qk_s8_absmax(const int8_t *w, size_t count);

/// Weights narrow enough for the AVX2 kernel's shorter exact step (7-bit weights: a blob made
/// with `qsent-quantize --weight-bits 7`): every |w| <= QK_S8_NARROW_MAX.
#define QK_S8_NARROW_MAX 64

/// Per-row symmetric dynamic quantization: scale[m] = max|X[m][:]| / 127 (1 if the row is 0),
/// Q[m][k] = round-half-away(X[m][k] / scale[m]) clamped to [-127, 127]; Q[m][K..ldq) = 0.
/// ldq must be >= round_up(K, 4).
void qk_quantize_rows_s8(qk_isa isa, int M, int K, const float *X, int ldx,
                         int8_t *Q, int ldq, float *scale);

/// Raw int32 accumulators: C[m][n] = sum_k A[m][k] * W[n][k] for n in [n0, n1).
/// A is int8 [M][lda] with lda >= round_up(K,4) and zero padding in [K, round_up(K,4)).
/// Activations may be any int8 (including -128); weights in [-127, 127].
/// wmax: a bound on |w| over the packed weights (qk_s8_absmax; 127 if unknown). Every kernel
/// gives the same exact sums for any wmax that holds; the AVX2 kernel takes its shorter step
/// when wmax <= QK_S8_NARROW_MAX and colsum is given. A wmax that does not hold may saturate.
/// Used by tests to check every SIMD kernel bit-exact against the scalar reference.
void qk_gemm_s8_s32(qk_isa isa, int M, int N, int K, const int8_t *A, int lda,
                    const int8_t *packed, const int32_t *colsum, int wmax,
                    int32_t *C, int ldc, int n0, int n1);

/// Fused int8 linear layer:
///   C[m][n] = act(acc[m][n] * ascale[m] * wscale[n] + bias[n])   (bias may be NULL)
void qk_gemm_s8_f32(qk_isa isa, int M, int N, int K, const int8_t *A, int lda,
                    const float *ascale, const int8_t *packed, const int32_t *colsum, int wmax,
                    const float *wscale, const float *bias, qk_act act,
                    float *C, int ldc, int n0, int n1);

// ---------------------------------------------------------------------------------------
// fp32 (the reference path, and attention)
// ---------------------------------------------------------------------------------------

/// C[m][n] = act(sum_k A[m][k] * B[n][k] + bias[n]) for n in [n0, n1). bias may be NULL.
void qk_sgemm_nt(qk_isa isa, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, const float *bias, qk_act act,
                 float *C, int ldc, int n0, int n1);

/// Floats of scratch memory qk_attention_head needs for sequence length L and head size dh.
size_t qk_attention_scratch(int L, int dh);

/// One attention head with the softmax fused (no L x L score matrix is written):
///   out[i][:dh] = sum_j softmax_j(Q[i] . K[j]) V[j][:dh]   for i, j in [0, L)
/// Q, K, V: L rows of dh floats at a row stride of ld floats (Q already scaled by 1/sqrt(dh));
/// out: L rows at stride ldo. No mask: every key is visible (packed batches have no padding).
/// `scratch` holds qk_attention_scratch(L, dh) floats (any alignment; reused across calls).
/// Every ISA computes the same numbers bit for bit: each score is an fma chain over d in order,
/// e = exp(s - max) by the same fma sequence, the row sum in 16 interleaved partial sums added
/// in a fixed tree, and out = (fma chain over j in order of e_j V[j]) * (1 / sum).
void qk_attention_head(qk_isa isa, int L, int dh, const float *Q, const float *K, const float *V,
                       int ld, float *out, int ldo, float *scratch);

/// Floats of scratch memory qk_attention_head_i16 needs for sequence length L and head size dh.
size_t qk_attention_i16_scratch(int L, int dh);

/// One attention head of an int8 model, its two products in exact int16 x int16 -> int32
/// arithmetic (vpdpwssd, vpmaddwd, smlal): qk_attention_head's contract, and
///   Q rows and K rows quantized to int16 with one scale per row at +-qk_att16_qmax(dh)
///     (the largest q with dh * q * q < 2^31: 8191 at dh = 32, 5792 at dh = 64), so a score's
///     int32 sum cannot overflow; s = (float)sum * (qscale[i] * kscale[j]);
///   e = exp(s - max) and the row sum exactly as qk_attention_head; p[j] = round(e[j] * (32767 / sum))
///     in [0, 32767] (the row's probabilities at 1/32767: sum p <= 32767 + L/2);
///   V quantized to int16 with one scale per column at +-32767;
///   out[i][c] = (float)(sum_j p[j] * V[j][c]) * (vscale[c] / 32767), exact in int32 for L < 65536.
/// Relative error per score ~1e-4 of the row's largest product, per probability 1.5e-5: two
/// orders below the int8 weights' own. Every ISA computes the same numbers bit for bit (the
/// integer sums are exact; every float step is the scalar twin's, lane for lane).
/// `scratch` holds qk_attention_i16_scratch(L, dh) floats (any 4-byte alignment). Head sizes
/// above 256 (no BERT has them) are served by qk_attention_head instead.
void qk_attention_head_i16(qk_isa isa, int L, int dh, const float *Q, const float *K, const float *V,
                           int ld, float *out, int ldo, float *scratch);

/// The int16 range of the Q and K rows in qk_attention_head_i16 for head size dh.
int qk_att16_qmax(int dh);

/// In place: X[m][:] = softmax(X[m][:N]) per row, with max subtraction.
/// SIMD on x86 (AVX2 code for every x86 SIMD ISA); scalar otherwise.
void qk_softmax_rows(qk_isa isa, int M, int N, float *X, int ldx);

/// out[m][:] = (X[m][:] - mean) / sqrt(var + eps) * gamma + beta, per row of D.
/// (biased variance, as torch.nn.LayerNorm). out may alias X.
/// SIMD on x86 (AVX2 code for every x86 SIMD ISA), bit-exact with the scalar version (8 partial
/// sums in a fixed order); scalar otherwise.
void qk_layernorm(qk_isa isa, int M, int D, const float *X, int ldx, const float *gamma,
                  const float *beta, float eps, float *out, int ldo);

/// In place: x[i] = GELU(x[i]) = 0.5 x (1 + erf(x / sqrt 2)) (exact erf form, torch default).
/// SIMD on x86 (AVX2 code for every x86 SIMD ISA); scalar otherwise. Bit-exact on every ISA:
/// the erf polynomial is the same chain of fused multiply-adds everywhere (fmaf in scalar), as
/// is the GELU in the int8 GEMMs' fused output stage.
void qk_gelu(qk_isa isa, size_t n, float *x);

/// y[i] += x[i]  (one portable C implementation for every ISA, as qk_layernorm)
void qk_add(qk_isa isa, size_t n, const float *x, float *y);

/// In place: x[i] = tanhf(x[i]) (libm; the BERT pooler, a few values per sequence, so one
/// portable implementation for every ISA).
void qk_tanh(qk_isa isa, size_t n, float *x);

/// The value of the environment variable QSENT_ISA (the kernel ISA override), or NULL if it is
/// unset or empty. Here so that the engine needs neither Foundation nor Glibc to read it.
const char *qk_env_isa(void);

/// A spin-wait hint for the kernel thread pool's workers (x86 `pause`, ARM `yield`, else
/// nothing): it keeps a spinning core from starving its SMT sibling and saves power.
void qk_cpu_relax(void);

#ifdef __cplusplus
}
#endif
#endif
