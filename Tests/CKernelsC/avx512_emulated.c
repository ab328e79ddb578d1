// Test-only: compiles Sources/CKernels/qk_avx512vnni.c against SIMDe's portable AVX-512
// intrinsics (https://github.com/simd-everywhere/simde, Debian package libsimde-dev), so the
// VNNI kernels' logic (shift, column-sum compensation, masks, blocking, fused output,
// quantization) can be checked bit-exact on a machine without AVX-512. Built by
// avx512_emulated.sh instead of the real qk_avx512vnni.c.
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include "emu_fma.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

// A few intrinsics SIMDe 0.7.4 (Debian bookworm) lacks, written out from Intel's definitions.
typedef simde__mmask16 __mmask16;
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif
static inline __mmask16 emu_cmplt_epi32_mask(simde__m512i a, simde__m512i b) {
    int32_t x[16], y[16];
    memcpy(x, &a, 64);
    memcpy(y, &b, 64);
    __mmask16 m = 0;
    for (int i = 0; i < 16; i++) m |= (__mmask16)((x[i] < y[i]) << i);
    return m;
}
static inline simde__m512 emu_cvtepi32_ps(simde__m512i a) {
    int32_t x[16];
    float r[16];
    memcpy(x, &a, 64);
    for (int i = 0; i < 16; i++) r[i] = (float)x[i]; // round to nearest, as with default MXCSR
    simde__m512 v;
    memcpy(&v, r, 64);
    return v;
}
static inline simde__m512i emu_cvttps_epi32(simde__m512 a) {
    float x[16];
    int32_t r[16];
    memcpy(x, &a, 64);
    for (int i = 0; i < 16; i++) r[i] = (x[i] > -2147483648.0f && x[i] < 2147483648.0f) ? (int32_t)x[i] : INT32_MIN;
    simde__m512i v;
    memcpy(&v, r, 64);
    return v;
}
static inline void emu_mask_storeu_32(void *p, __mmask16 k, const void *v) {
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)p + 4 * i, (const char *)v + 4 * i, 4);
}
static inline void emu_mask_storeu_epi32(void *p, __mmask16 k, simde__m512i v) { emu_mask_storeu_32(p, k, &v); }
static inline void emu_mask_storeu_ps(void *p, __mmask16 k, simde__m512 v) { emu_mask_storeu_32(p, k, &v); }
static inline simde__m512i emu_maskz_loadu_epi32(__mmask16 k, const void *p) {
    simde__m512i v = simde_mm512_setzero_si512();
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)&v + 4 * i, (const char *)p + 4 * i, 4);
    return v;
}
static inline simde__m512 emu_maskz_loadu_ps(__mmask16 k, const void *p) {
    simde__m512 v = simde_mm512_setzero_ps();
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)&v + 4 * i, (const char *)p + 4 * i, 4);
    return v;
}
static inline void emu_mask_storeu_epi8(void *p, __mmask16 k, simde__m128i v) {
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)p + i, (const char *)&v + i, 1);
}
// SIMDe 0.7.4's portable _mm512_roundscale_ps ignores the rounding mode for imm = 0x0B
// (returns 31.75 for 31.75 instead of 31), so supply the imm8[7:4] = 0 case here.
static inline simde__m512 emu_roundscale_ps(simde__m512 a, int imm) {
    float x[16];
    memcpy(x, &a, 64);
    for (int i = 0; i < 16; i++) {
        switch (imm & 3) {
        case 0: x[i] = nearbyintf(x[i]); break;
        case 1: x[i] = floorf(x[i]); break;
        case 2: x[i] = ceilf(x[i]); break;
        default: x[i] = truncf(x[i]); break;
        }
    }
    simde__m512 v;
    memcpy(&v, x, 64);
    return v;
}
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps emu_roundscale_ps
// Fused like the hardware (see emu_fma.h): the fused attention is checked bit-exact.
EMU_FMA(emu_fmadd_ps, simde__m512, 16, +)
EMU_FMA(emu_fnmadd_ps, simde__m512, 16, -)
static inline simde__m512i emu_cvtps_epi32(simde__m512 a) { // round to nearest even, as with default MXCSR
    float x[16];
    int32_t r[16];
    memcpy(x, &a, 64);
    for (int i = 0; i < 16; i++) r[i] = (x[i] > -2147483648.0f && x[i] < 2147483648.0f) ? (int32_t)nearbyintf(x[i]) : INT32_MIN;
    simde__m512i v;
    memcpy(&v, r, 64);
    return v;
}
static inline simde__m256i emu_cvtepi32_epi16(simde__m512i a) { // vpmovdw: keep the low 16 bits
    int32_t x[16];
    int16_t r[16];
    memcpy(x, &a, 64);
    for (int i = 0; i < 16; i++) r[i] = (int16_t)(uint16_t)(uint32_t)x[i];
    simde__m256i v;
    memcpy(&v, r, 32);
    return v;
}
static inline float emu_reduce_max_ps(simde__m512 a) {
    float x[16];
    memcpy(x, &a, 64);
    float m = x[0];
    for (int i = 1; i < 16; i++) m = x[i] > m ? x[i] : m;
    return m;
}

#define _mm512_fmadd_ps emu_fmadd_ps
#define _mm512_fnmadd_ps emu_fnmadd_ps
#define _mm512_cvtps_epi32 emu_cvtps_epi32
#define _mm512_reduce_max_ps emu_reduce_max_ps
#define _mm512_cvtepi32_epi16 emu_cvtepi32_epi16
#define _mm512_cmplt_epi32_mask emu_cmplt_epi32_mask
#define _mm512_cvtepi32_ps emu_cvtepi32_ps
#define _mm512_cvttps_epi32 emu_cvttps_epi32
#define _mm512_mask_storeu_epi32 emu_mask_storeu_epi32
#define _mm512_mask_storeu_ps emu_mask_storeu_ps
#define _mm512_maskz_loadu_epi32 emu_maskz_loadu_epi32
#define _mm512_maskz_loadu_ps emu_maskz_loadu_ps
#define _mm_mask_storeu_epi8 emu_mask_storeu_epi8

#define QK_AVX512_EMULATED 1
#include "../../Sources/CKernels/qk_avx512vnni.c"
