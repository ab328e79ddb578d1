// Runtime ISA detection and the public entry points. No global mutable state of our own:
// qk_isa_supported()/qk_isa_best() probe on every call (x86: cpuid + xgetbv; AArch64:
// getauxval); kernel entry points re-check the requested ISA on every call through the
// compiler runtime's CPU model (see qk_usable below) and fall back to scalar if it cannot run.
#include "qk_internal.h"

#if defined(QK_HAVE_X86)
#include <cpuid.h>
#endif
#if defined(QK_HAVE_ARM64) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

#if defined(QK_HAVE_X86)
static uint64_t qk_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

// bit 0: AVX2+FMA usable, bit 1: AVX-512 F/BW/VL/VNNI usable, bit 2: AVX-VNNI usable
// (CPU flags and OS-enabled state).
static int qk_x86_features(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(1, 0, a, b, c, d);
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return 0;
    const uint64_t xcr0 = qk_xgetbv0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;      // SSE + AVX state
    const int os_zmm = (xcr0 & 0xe6) == 0xe6;    // + opmask, ZMM_Hi256, Hi16_ZMM
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, f512 = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int vnni = (c >> 11) & 1;
    int r = 0;
    if (os_ymm && avx2 && fma) r |= 1;
    if ((r & 1) && os_zmm && f512 && bw && vl && vnni) r |= 2;
    // AVX-VNNI: CPUID.(EAX=7, ECX=1):EAX bit 4; ymm state only (XCR0 bits 1-2, checked above).
    if (a >= 1 && (r & 1)) { // a = max sub-leaf of leaf 7
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        if ((a1 >> 4) & 1) r |= 4;
    }
    return r;
}
#endif

int qk_isa_supported(qk_isa isa) {
    switch (isa) {
    case QK_ISA_SCALAR:
        return 1;
#if defined(QK_HAVE_X86)
    case QK_ISA_AVX2:
        return (qk_x86_features() & 1) != 0;
    case QK_ISA_AVX512VNNI:
#if defined(QK_AVX512_EMULATED)
        return 1;
#endif
        return (qk_x86_features() & 2) != 0;
    case QK_ISA_AVXVNNI:
#if defined(QK_AVXVNNI_EMULATED)
        return 1;
#endif
        return (qk_x86_features() & 4) != 0;
#endif
#if defined(QK_HAVE_ARM64)
    case QK_ISA_NEON:
        return 1; // Advanced SIMD is mandatory in AArch64
    case QK_ISA_NEON_DOTPROD:
#if defined(__linux__)
        return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
        return 1; // every Apple arm64 core has dotprod
#else
        return 0;
#endif
#endif
    default:
        return 0;
    }
}

qk_isa qk_isa_best(void) {
#if defined(QK_HAVE_X86)
    int f = qk_x86_features();
    if (f & 2) return QK_ISA_AVX512VNNI;
    if (f & 4) return QK_ISA_AVXVNNI;
    if (f & 1) return QK_ISA_AVX2;
#endif
#if defined(QK_HAVE_ARM64)
    if (qk_isa_supported(QK_ISA_NEON_DOTPROD)) return QK_ISA_NEON_DOTPROD;
    return QK_ISA_NEON;
#endif
    return QK_ISA_SCALAR;
}

const char *qk_isa_name(qk_isa isa) {
    switch (isa) {
    case QK_ISA_SCALAR: return "scalar";
    case QK_ISA_AVX2: return "avx2";
    case QK_ISA_AVX512VNNI: return "avx512vnni";
    case QK_ISA_NEON: return "neon";
    case QK_ISA_NEON_DOTPROD: return "neon-dotprod";
    case QK_ISA_AVXVNNI: return "avxvnni";
    default: return "unknown";
    }
}

// Per-call guard. cpuid traps to the hypervisor in a VM (measured ~1 us per cpuid on the
// Firecracker dev box, 3 per probe), far too slow to run on every small GEMV, so the per-call
// check reads the compiler runtime's CPU model instead (libgcc / compiler-rt __cpu_model,
// filled once by their constructor, read-only afterwards; it also checks XCR0 OS state).
// qk_isa_supported() above stays the precise cpuid + xgetbv probe. (Feature indices of
// __builtin_cpu_supports agree between clang and libgcc: FEATURE_AVX512VNNI is entry 34 of
// both enums, and libgcc only appends.)
#if defined(QK_HAVE_X86)
static int qk_x86_avx2_cheap(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int qk_x86_avx512_cheap(void) {
#if defined(QK_AVX512_EMULATED)
    return 1; // test-only build: the AVX-512 file runs on SIMDe's portable intrinsics
#endif
    return qk_x86_avx2_cheap() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni");
}
// "avxvnni" sits in __cpu_features2 of both runtimes (LLVM 17+ keeps libgcc's order).
static int qk_x86_avxvnni_cheap(void) {
#if defined(QK_AVXVNNI_EMULATED)
    return 1; // test-only build: the AVX-VNNI file runs on SIMDe's portable intrinsics
#endif
    return qk_x86_avx2_cheap() && __builtin_cpu_supports("avxvnni");
}
#endif

// An ISA that was asked for but cannot run here degrades to scalar (never SIGILL).
static qk_isa qk_usable(qk_isa isa) {
    switch (isa) {
#if defined(QK_HAVE_X86)
    case QK_ISA_AVX2: return qk_x86_avx2_cheap() ? isa : QK_ISA_SCALAR;
    case QK_ISA_AVX512VNNI: return qk_x86_avx512_cheap() ? isa : QK_ISA_SCALAR;
    case QK_ISA_AVXVNNI: return qk_x86_avxvnni_cheap() ? isa : QK_ISA_SCALAR;
#endif
#if defined(QK_HAVE_ARM64)
    case QK_ISA_NEON: return isa;
    case QK_ISA_NEON_DOTPROD: return qk_isa_supported(isa) ? isa : QK_ISA_SCALAR; // getauxval: cheap
#endif
    default: return QK_ISA_SCALAR;
    }
}

// Test hook (not in the public header): the ISA a kernel call with `isa` really runs, so the
// C checker can prove that a "supported" SIMD ISA is not silently served by scalar code.
int qk_internal_isa_usable(qk_isa isa);
int qk_internal_isa_usable(qk_isa isa) { return (int)qk_usable(isa); }

void qk_quantize_rows_s8(qk_isa isa, int M, int K, const float *X, int ldx, int8_t *Q, int ldq,
                         float *scale) {
    if (M <= 0 || K < 0) return;
    switch (qk_usable(isa)) {
#if defined(QK_HAVE_X86)
    case QK_ISA_AVX512VNNI:
        qk_avx512_quantize_rows_s8(M, K, X, ldx, Q, ldq, scale);
        return;
    case QK_ISA_AVX2:
    case QK_ISA_AVXVNNI:
        qk_avx2_quantize_rows_s8(M, K, X, ldx, Q, ldq, scale);
        return;
#endif
    default:
        qk_scalar_quantize_rows_s8(M, K, X, ldx, Q, ldq, scale);
    }
}

static void qk_gemm_s8_any(qk_isa isa, int M, int N, int K, const int8_t *A, int lda,
                           const float *ascale, const int8_t *packed, const int32_t *colsum,
                           int wmax, const float *wscale, const float *bias, qk_act act, void *C, int ldc,
                           int n0, int n1, int out_f32) {
    if (M <= 0 || K < 0 || n0 < 0 || n1 > N || n0 >= n1) return;
    (void)wmax; // only the AVX2 kernel has a narrow-weight step
    isa = K == 0 ? QK_ISA_SCALAR : qk_usable(isa); // K = 0: empty sums, scalar writes 0 / act(bias)
    // The VNNI kernels need the column sums for their +128 shift; without them use AVX2.
    if ((isa == QK_ISA_AVX512VNNI || isa == QK_ISA_AVXVNNI) && colsum == NULL) isa = qk_usable(QK_ISA_AVX2);
    switch (isa) {
#if defined(QK_HAVE_X86)
    case QK_ISA_AVXVNNI:
        qk_avxvnni_gemm_s8(M, N, K, A, lda, ascale, packed, colsum, wscale, bias, act, C, ldc, n0,
                           n1, out_f32);
        return;
    case QK_ISA_AVX512VNNI:
        qk_avx512_gemm_s8(M, N, K, A, lda, ascale, packed, colsum, wscale, bias, act, C, ldc, n0,
                          n1, out_f32);
        return;
    case QK_ISA_AVX2:
        qk_avx2_gemm_s8(M, N, K, A, lda, ascale, packed, colsum, wmax, wscale, bias, act, C, ldc,
                        n0, n1, out_f32);
        return;
#endif
#if defined(QK_HAVE_ARM64)
    case QK_ISA_NEON_DOTPROD:
        qk_neondot_gemm_s8(M, N, K, A, lda, ascale, packed, wscale, bias, act, C, ldc, n0, n1,
                           out_f32);
        return;
    case QK_ISA_NEON:
        qk_neon_gemm_s8(M, N, K, A, lda, ascale, packed, wscale, bias, act, C, ldc, n0, n1,
                        out_f32);
        return;
#endif
    default:
        qk_scalar_gemm_s8(M, N, K, A, lda, ascale, packed, wscale, bias, act, C, ldc, n0, n1,
                          out_f32);
    }
}

void qk_gemm_s8_s32(qk_isa isa, int M, int N, int K, const int8_t *A, int lda,
                    const int8_t *packed, const int32_t *colsum, int wmax, int32_t *C, int ldc,
                    int n0, int n1) {
    qk_gemm_s8_any(isa, M, N, K, A, lda, NULL, packed, colsum, wmax, NULL, NULL, QK_ACT_NONE, C, ldc,
                   n0, n1, 0);
}

void qk_gemm_s8_f32(qk_isa isa, int M, int N, int K, const int8_t *A, int lda,
                    const float *ascale, const int8_t *packed, const int32_t *colsum, int wmax,
                    const float *wscale, const float *bias, qk_act act, float *C, int ldc,
                    int n0, int n1) {
    qk_gemm_s8_any(isa, M, N, K, A, lda, ascale, packed, colsum, wmax, wscale, bias, act, C, ldc, n0,
                   n1, 1);
}

void qk_sgemm_nt(qk_isa isa, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, const float *bias, qk_act act, float *C, int ldc, int n0, int n1) {
    if (M <= 0 || n0 < 0 || n1 > N || n0 >= n1) return;
    if (K <= 0) { // empty sum: act(bias)
        for (int m = 0; m < M; m++)
            for (int n = n0; n < n1; n++)
                C[(size_t)m * (size_t)ldc + n] = qk_act1(bias ? bias[n] : 0.0f, act);
        return;
    }
    switch (qk_usable(isa)) {
#if defined(QK_HAVE_X86)
    case QK_ISA_AVX512VNNI:
        qk_avx512_sgemm_nt(M, N, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
    case QK_ISA_AVX2:
    case QK_ISA_AVXVNNI:
        qk_avx2_sgemm_nt(M, N, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
#endif
#if defined(QK_HAVE_ARM64)
    case QK_ISA_NEON_DOTPROD:
    case QK_ISA_NEON:
        qk_neon_sgemm_nt(M, N, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
        return;
#endif
    default:
        qk_scalar_sgemm_nt(M, N, K, A, lda, B, ldb, bias, act, C, ldc, n0, n1);
    }
}

// Elementwise kernels: every x86 SIMD ISA runs the AVX2 code (it is not the bottleneck
// there); scalar and the ARM ISAs run the portable C reference.
#if defined(QK_HAVE_X86)
static int qk_elementwise_avx2(qk_isa isa) {
    const qk_isa u = qk_usable(isa);
    return u == QK_ISA_AVX2 || u == QK_ISA_AVX512VNNI || u == QK_ISA_AVXVNNI;
}
#endif

void qk_softmax_rows(qk_isa isa, int M, int N, float *X, int ldx) {
    if (M <= 0 || N <= 0) return;
#if defined(QK_HAVE_X86)
    if (qk_elementwise_avx2(isa)) {
        qk_avx2_softmax_rows(M, N, X, ldx);
        return;
    }
#else
    (void)isa;
#endif
    qk_scalar_softmax_rows(M, N, X, ldx);
}

void qk_layernorm(qk_isa isa, int M, int D, const float *X, int ldx, const float *gamma,
                  const float *beta, float eps, float *out, int ldo) {
    if (M <= 0 || D <= 0) return;
#if defined(QK_HAVE_X86)
    if (qk_elementwise_avx2(isa)) {
        qk_avx2_layernorm(M, D, X, ldx, gamma, beta, eps, out, ldo);
        return;
    }
#else
    (void)isa;
#endif
    qk_scalar_layernorm(M, D, X, ldx, gamma, beta, eps, out, ldo);
}

void qk_gelu(qk_isa isa, size_t n, float *x) {
#if defined(QK_HAVE_X86)
    if (qk_elementwise_avx2(isa)) {
        qk_avx2_gelu(n, x);
        return;
    }
#else
    (void)isa;
#endif
    qk_scalar_gelu(n, x);
}

size_t qk_attention_scratch(int L, int dh) {
    if (L <= 0 || dh <= 0) return 1;
    return qk_att_kt_floats(L, dh) + qk_att_vp_floats(L, dh) + (size_t)QK_ATT_MB * (size_t)QK_ROUND_UP(L, 16);
}

void qk_attention_head(qk_isa isa, int L, int dh, const float *Q, const float *K, const float *V,
                       int ld, float *out, int ldo, float *scratch) {
    if (L <= 0 || dh <= 0) return;
    switch (qk_usable(isa)) {
#if defined(QK_HAVE_X86)
    case QK_ISA_AVX512VNNI:
        qk_avx512_attention_head(L, dh, Q, K, V, ld, out, ldo, scratch);
        return;
    case QK_ISA_AVX2:
    case QK_ISA_AVXVNNI:
        qk_avx2_attention_head(L, dh, Q, K, V, ld, out, ldo, scratch);
        return;
#endif
#if defined(QK_HAVE_ARM64)
    case QK_ISA_NEON_DOTPROD:
    case QK_ISA_NEON:
        qk_neon_attention_head(L, dh, Q, K, V, ld, out, ldo, scratch);
        return;
#endif
    default:
        qk_scalar_attention_head(L, dh, Q, K, V, ld, out, ldo, scratch);
    }
}

size_t qk_attention_i16_scratch(int L, int dh) {
    if (L <= 0 || dh <= 0) return 1;
    if (dh > QK_ATT16_MAX_DH) return qk_attention_scratch(L, dh);
    return (qk_att16_bytes(L, dh) + sizeof(float) - 1) / sizeof(float);
}

void qk_attention_head_i16(qk_isa isa, int L, int dh, const float *Q, const float *K, const float *V,
                           int ld, float *out, int ldo, float *scratch) {
    if (L <= 0 || dh <= 0) return;
    if (dh > QK_ATT16_MAX_DH) { // no model has such heads; the exact fp32 kernel serves them
        qk_attention_head(isa, L, dh, Q, K, V, ld, out, ldo, scratch);
        return;
    }
    switch (qk_usable(isa)) {
#if defined(QK_HAVE_X86)
    case QK_ISA_AVX512VNNI:
        qk_avx512_attention_head_i16(L, dh, Q, K, V, ld, out, ldo, scratch);
        return;
    case QK_ISA_AVX2:
    case QK_ISA_AVXVNNI:
        qk_avx2_attention_head_i16(L, dh, Q, K, V, ld, out, ldo, scratch);
        return;
#endif
#if defined(QK_HAVE_ARM64)
    case QK_ISA_NEON_DOTPROD:
    case QK_ISA_NEON:
        qk_neon_attention_head_i16(L, dh, Q, K, V, ld, out, ldo, scratch);
        return;
#endif
    default:
        qk_scalar_attention_head_i16(L, dh, Q, K, V, ld, out, ldo, scratch);
    }
}

void qk_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
