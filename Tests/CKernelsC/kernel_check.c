// Standalone kernel checker: every ISA that qk_isa_supported() reports is compared with
// QK_ISA_SCALAR (int8 GEMM bit-exact on int32 accumulators, quantization bit-exact, fused
// output and sgemm within fp32 rounding), and the scalar reference with a naive triple loop
// over the unpacked weights. Built by run.sh for AArch64 (qemu) and usable natively on x86.
// Exit status 0 and a final "N passed, 0 failed" line when everything matches.
#include "ckernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qk_internal_isa_usable(qk_isa isa); // test hook in qk_dispatch.c

static int passed, failed;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static int rint_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rfloat(void) { return (float)((double)rnd() / 4294967296.0 * 2.0 - 1.0); } // [-1,1)

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (cond) passed++;                                                                     \
        else {                                                                                  \
            failed++;                                                                           \
            printf("FAIL: " __VA_ARGS__);                                                       \
            printf("\n");                                                                       \
        }                                                                                       \
    } while (0)

// mode 0 random, 1 extreme (w = +-127, a in {-128, 127, -127}), 2 all -128 * 127; 3 and 4 as 0
// and 1 with 7-bit weights (|w| <= 64: the AVX2 kernel's shorter step)
static void check_gemm(qk_isa isa, int M, int N, int K, int mode, int n0, int n1) {
    const int Kp = (K + 3) / 4 * 4, lda = Kp + 4 * (rnd() % 2);
    int8_t *W = malloc((size_t)N * K), *A = calloc((size_t)M * lda, 1);
    for (int i = 0; i < N * K; i++)
        W[i] = mode == 0 ? (int8_t)rint_in(-127, 127) : mode == 1 ? (rnd() & 1 ? 127 : -127)
             : mode == 3 ? (int8_t)rint_in(-64, 64) : mode == 4 ? (rnd() & 1 ? 64 : -64) : 127;
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) {
            int8_t v;
            if (mode == 0 || mode == 3) v = (int8_t)rint_in(-128, 127);
            else if (mode == 1 || mode == 4) { int t = rnd() % 3; v = t == 0 ? -128 : t == 1 ? 127 : -127; }
            else v = -128;
            A[(size_t)m * lda + k] = v;
        }
    int8_t *P = malloc(qk_packed_s8_size(N, K));
    int32_t *cs = malloc(sizeof(int32_t) * N);
    qk_pack_s8(N, K, W, K, P, cs);
    const int wmax = qk_s8_absmax(P, qk_packed_s8_size(N, K));
    const int ldc = N + 3;
    int32_t *Cs = malloc(sizeof(int32_t) * (size_t)M * ldc), *Cv = malloc(sizeof(int32_t) * (size_t)M * ldc);
    for (int i = 0; i < M * ldc; i++) Cs[i] = Cv[i] = 0x5a5a5a5a;
    qk_gemm_s8_s32(QK_ISA_SCALAR, M, N, K, A, lda, P, cs, wmax, Cs, ldc, n0, n1);
    qk_gemm_s8_s32(isa, M, N, K, A, lda, P, cs, wmax, Cv, ldc, n0, n1);
    int bad = 0, naive_bad = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            size_t i = (size_t)m * ldc + n;
            if (Cs[i] != Cv[i]) bad++;
            if (n >= n0 && n < n1) {
                int32_t ref = 0;
                for (int k = 0; k < K; k++) ref += A[(size_t)m * lda + k] * W[(size_t)n * K + k];
                if (ref != Cs[i]) naive_bad++;
            } else if (Cs[i] != 0x5a5a5a5a) naive_bad++; // outside [n0,n1) untouched
        }
    CHECK(bad == 0, "gemm_s8_s32 %s M=%d N=%d K=%d mode=%d n=[%d,%d): %d mismatches", qk_isa_name(isa), M, N, K, mode, n0, n1, bad);
    CHECK(naive_bad == 0, "scalar vs naive M=%d N=%d K=%d mode=%d: %d mismatches", M, N, K, mode, naive_bad);

    // fused f32 output stage, every activation, with and without bias
    float *as = malloc(sizeof(float) * M), *ws = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    for (int m = 0; m < M; m++) as[m] = 0.001f + 0.01f * (rnd() % 100) / 100.0f;
    for (int n = 0; n < N; n++) { ws[n] = 0.0005f + 0.01f * (rnd() % 100) / 100.0f; b[n] = rfloat(); }
    float *Fs = malloc(sizeof(float) * (size_t)M * ldc), *Fv = malloc(sizeof(float) * (size_t)M * ldc);
    for (int act = 0; act < 3; act++)
        for (int wb = 0; wb < 2; wb++) {
            for (int i = 0; i < M * ldc; i++) Fs[i] = Fv[i] = -7.0f;
            qk_gemm_s8_f32(QK_ISA_SCALAR, M, N, K, A, lda, as, P, cs, wmax, ws, wb ? b : NULL, (qk_act)act, Fs, ldc, n0, n1);
            qk_gemm_s8_f32(isa, M, N, K, A, lda, as, P, cs, wmax, ws, wb ? b : NULL, (qk_act)act, Fv, ldc, n0, n1);
            int fbad = 0; // bit for bit, GELU included (fused multiply-adds in every erf polynomial)
            for (int i = 0; i < M * ldc; i++)
                if (memcmp(&Fs[i], &Fv[i], sizeof(float)) != 0) fbad++;
            CHECK(fbad == 0, "gemm_s8_f32 %s M=%d N=%d K=%d act=%d bias=%d: %d mismatches", qk_isa_name(isa), M, N, K, act, wb, fbad);
        }
    free(W); free(A); free(P); free(cs); free(Cs); free(Cv); free(as); free(ws); free(b); free(Fs); free(Fv);
}

static void check_quant(qk_isa isa, int M, int K) {
    const int ldx = K + 1, ldq = (K + 3) / 4 * 4 + 8;
    float *X = calloc((size_t)M * ldx, sizeof(float));
    for (int m = 0; m < M; m++)
        for (int k = 0; k < ldx; k++) {
            float v = rfloat() * (float)(1 + m);
            if (m % 5 == 1) v = 0.0f;                                   // zero row
            if (m % 5 == 2 && k % 3 == 0) v = (float)rint_in(-254, 254) * 0.5f; // exact halves
            X[(size_t)m * ldx + k] = v;
        }
    int8_t *Qs = malloc((size_t)M * ldq), *Qv = malloc((size_t)M * ldq);
    memset(Qs, 99, (size_t)M * ldq);
    memset(Qv, 99, (size_t)M * ldq);
    float *ss = malloc(sizeof(float) * M), *sv = malloc(sizeof(float) * M);
    qk_quantize_rows_s8(QK_ISA_SCALAR, M, K, X, ldx, Qs, ldq, ss);
    qk_quantize_rows_s8(isa, M, K, X, ldx, Qv, ldq, sv);
    int bad = memcmp(Qs, Qv, (size_t)M * ldq) != 0 || memcmp(ss, sv, sizeof(float) * M) != 0;
    int ref_bad = 0;
    for (int m = 0; m < M; m++) {
        double amax = 0;
        for (int k = 0; k < K; k++) amax = fmax(amax, fabs(X[(size_t)m * ldx + k]));
        float s = (float)amax / 127.0f;
        if (s == 0.0f) s = 1.0f;
        if (ss[m] != s) ref_bad++;
        for (int k = 0; k < ldq; k++) {
            int q = k < K ? (int)roundf(X[(size_t)m * ldx + k] / s) : 0;
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            if (Qs[(size_t)m * ldq + k] != q) ref_bad++;
        }
    }
    CHECK(bad == 0, "quantize %s M=%d K=%d differs from scalar", qk_isa_name(isa), M, K);
    CHECK(ref_bad == 0, "quantize scalar M=%d K=%d vs roundf reference: %d", M, K, ref_bad);
    free(X); free(Qs); free(Qv); free(ss); free(sv);
}

static void check_sgemm(qk_isa isa, int M, int N, int K, int n0, int n1) {
    const int lda = K + 1, ldb = K + 2, ldc = N + 1;
    float *A = malloc(sizeof(float) * (size_t)M * lda), *B = malloc(sizeof(float) * (size_t)N * ldb);
    float *bias = malloc(sizeof(float) * N), *C = malloc(sizeof(float) * (size_t)M * ldc);
    for (int i = 0; i < M * lda; i++) A[i] = rfloat();
    for (int i = 0; i < N * ldb; i++) B[i] = rfloat();
    for (int i = 0; i < N; i++) bias[i] = rfloat();
    for (int act = 0; act < 3; act++) {
        for (int i = 0; i < M * ldc; i++) C[i] = -9.0f;
        qk_sgemm_nt(isa, M, N, K, A, lda, B, ldb, act == 1 ? NULL : bias, (qk_act)act, C, ldc, n0, n1);
        int bad = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                float got = C[(size_t)m * ldc + n];
                if (n < n0 || n >= n1) { bad += got != -9.0f; continue; }
                double s = act == 1 ? 0.0 : bias[n], sa = fabs(s);
                for (int k = 0; k < K; k++) {
                    double p = (double)A[(size_t)m * lda + k] * B[(size_t)n * ldb + k];
                    s += p;
                    sa += fabs(p);
                }
                double ref = act == 0 ? s : act == 2 ? (s > 0 ? s : 0) : 0.5 * s * (1 + erf(s / sqrt(2.0)));
                // fp32 accumulation error bound ~ K * eps * sum|a*b|; plus the GELU approximation.
                double tol = (K + 2) * 1.2e-7 * sa + 2e-6 * (1 + fabs(s));
                if (!(fabs(got - ref) <= tol)) bad++;
            }
        CHECK(bad == 0, "sgemm_nt %s M=%d N=%d K=%d act=%d n=[%d,%d): %d bad", qk_isa_name(isa), M, N, K, act, n0, n1, bad);
    }
    free(A); free(B); free(bias); free(C);
}

// Fused attention (one head): `isa` bit-exact with the scalar twin, and the scalar twin within
// fp32 rounding of a double-precision softmax(Q K^T) V. Q/K/V interleaved as in the engine's
// [T][3D] qkv matrix (row stride ld), output at a stride of its own.
static void check_attention(qk_isa isa, int L, int dh, float amp) {
    const int ld = 3 * dh + 5, ldo = dh + 3;
    float *qkv = malloc(sizeof(float) * (size_t)L * ld), *o = malloc(sizeof(float) * (size_t)L * ldo);
    float *r = malloc(sizeof(float) * (size_t)L * ldo), *scr = malloc(sizeof(float) * qk_attention_scratch(L, dh));
    double *p = malloc(sizeof(double) * (size_t)L);
    for (int i = 0; i < L * ld; i++) qkv[i] = rfloat() * amp;
    for (int i = 0; i < L * ldo; i++) o[i] = r[i] = 12345.0f; // the padding columns must stay
    const float *Q = qkv, *K = qkv + dh, *V = qkv + 2 * dh;
    qk_attention_head(QK_ISA_SCALAR, L, dh, Q, K, V, ld, r, ldo, scr);
    for (size_t i = 0; i < qk_attention_scratch(L, dh); i++) scr[i] = NAN; // carries nothing between calls
    qk_attention_head(isa, L, dh, Q, K, V, ld, o, ldo, scr);
    CHECK(memcmp(o, r, sizeof(float) * (size_t)L * ldo) == 0, "attention %s L=%d dh=%d differs from scalar",
          qk_isa_name(isa), L, dh);
    int bad = 0;
    for (int i = 0; i < L; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < L; j++) {
            double s = 0;
            for (int d = 0; d < dh; d++) s += (double)Q[i * ld + d] * K[j * ld + d];
            p[j] = s;
            mx = fmax(mx, s);
        }
        for (int j = 0; j < L; j++) sum += p[j] = exp(p[j] - mx);
        for (int c = 0; c < ldo; c++) {
            if (c >= dh) { bad += r[i * ldo + c] != 12345.0f; continue; }
            double ref = 0, mag = 0;
            for (int j = 0; j < L; j++) ref += p[j] / sum * V[j * ld + c], mag += p[j] / sum * fabs(V[j * ld + c]);
            // scores carry ~dh ulp of |q||k|, amplified by exp; 2e-6 relative to the magnitude
            if (!(fabs(r[i * ldo + c] - ref) <= 2e-6 * (1 + amp * amp * dh / 8) * mag + 1e-7)) bad++;
        }
    }
    CHECK(bad == 0, "attention scalar L=%d dh=%d vs double reference: %d bad", L, dh, bad);
    free(qkv); free(o); free(r); free(scr); free(p);
}

// int16 attention (one head, qk_attention_head_i16): `isa` bit-exact with the scalar twin, the
// scalar twin within its quantization error of a double-precision softmax(Q K^T) V. Rows with a
// spread of magnitudes, a zero row, and exact ties (all keys equal) are included.
static double att16_worst; // the largest error seen / its bound, printed at the end
static void check_attention_i16(qk_isa isa, int L, int dh, float amp) {
    const int ld = 3 * dh + 5, ldo = dh + 3;
    const size_t nscr = qk_attention_i16_scratch(L, dh);
    float *qkv = malloc(sizeof(float) * (size_t)L * ld), *o = malloc(sizeof(float) * (size_t)L * ldo);
    float *r = malloc(sizeof(float) * (size_t)L * ldo), *scr = malloc(sizeof(float) * nscr);
    double *p = malloc(sizeof(double) * (size_t)L);
    for (int i = 0; i < L * ld; i++) qkv[i] = rfloat() * amp * (i / ld % 3 == 1 ? 0.01f : 1.0f);
    if (L > 3) for (int d = 0; d < 3 * dh; d++) qkv[2 * ld + d] = 0.0f; // a zero Q, K and V row
    for (int i = 0; i < L * ldo; i++) o[i] = r[i] = 12345.0f;        // the padding columns must stay
    const float *Q = qkv, *K = qkv + dh, *V = qkv + 2 * dh;
    for (size_t i = 0; i < nscr; i++) scr[i] = NAN;
    qk_attention_head_i16(QK_ISA_SCALAR, L, dh, Q, K, V, ld, r, ldo, scr);
    for (size_t i = 0; i < nscr; i++) scr[i] = NAN; // carries nothing between calls
    qk_attention_head_i16(isa, L, dh, Q, K, V, ld, o, ldo, scr);
    CHECK(memcmp(o, r, sizeof(float) * (size_t)L * ldo) == 0, "attention_i16 %s L=%d dh=%d differs from scalar",
          qk_isa_name(isa), L, dh);
    const double qmax = qk_att16_qmax(dh);
    int bad = 0;
    for (int i = 0; i < L; i++) {
        double mx = -INFINITY, sum = 0, qa = 0, ka = 0;
        for (int d = 0; d < dh; d++) qa = fmax(qa, fabs(Q[i * ld + d]));
        for (int j = 0; j < L; j++) {
            double s = 0, kj = 0;
            for (int d = 0; d < dh; d++) s += (double)Q[i * ld + d] * K[j * ld + d], kj = fmax(kj, fabs(K[j * ld + d]));
            ka = fmax(ka, kj);
            p[j] = s;
            mx = fmax(mx, s);
        }
        for (int j = 0; j < L; j++) sum += p[j] = exp(p[j] - mx);
        // A score is off by at most dh * qa * ka / qmax (half a step of q times |k|, and of k
        // times |q|); p then by that factor, each p by 0.5/32767 more, each V by half its step.
        const double ds = dh * qa * ka / qmax;
        for (int c = 0; c < ldo; c++) {
            if (c >= dh) { bad += r[i * ldo + c] != 12345.0f; continue; }
            double ref = 0, va = 0;
            for (int j = 0; j < L; j++) ref += p[j] / sum * V[j * ld + c], va = fmax(va, fabs(V[j * ld + c]));
            const double bound = va * (expm1(2 * ds) + L * 0.5 / 32767 + 0.5 / 32767) + 1e-30;
            const double err = fabs(r[i * ldo + c] - ref);
            if (err / bound > att16_worst) att16_worst = err / bound;
            if (!(err <= bound)) bad++;
        }
    }
    CHECK(bad == 0, "attention_i16 scalar L=%d dh=%d vs double reference: %d bad", L, dh, bad);
    free(qkv); free(o); free(r); free(scr); free(p);
}

// softmax / layernorm / gelu / add through `isa` (the SIMD path and its scalar twin are both
// run, since main() calls this for QK_ISA_SCALAR and every supported ISA) vs double references.
static void check_elementwise(qk_isa isa) {
    enum { M = 3, N = 517 };
    static float X[M * N], Y[M * N];
    for (int i = 0; i < M * N; i++) X[i] = Y[i] = rfloat() * 20.0f;
    X[5] = Y[5] = -INFINITY;
    qk_softmax_rows(isa, M, N, Y, N);
    int bad = 0;
    for (int m = 0; m < M; m++) {
        double mx = -INFINITY, s = 0;
        for (int n = 0; n < N; n++) mx = fmax(mx, X[m * N + n]);
        for (int n = 0; n < N; n++) s += exp(X[m * N + n] - mx);
        for (int n = 0; n < N; n++) {
            double ref = exp(X[m * N + n] - mx) / s, d = fabs(X[m * N + n] - mx);
            if (!(fabs(Y[m * N + n] - ref) <= (ref == 0 ? 0 : ref * (1e-6 + d * 0x1p-24)) + 1e-30)) bad++;
        }
    }
    CHECK(bad == 0, "softmax %s: %d bad", qk_isa_name(isa), bad);
    for (int i = 0; i < M * N; i++) Y[i] = X[i] = rfloat() * 6.0f;
    qk_gelu(isa, M * N, Y);
    bad = 0;
    for (int i = 0; i < M * N; i++) {
        double x = X[i], ref = 0.5 * x * (1 + erf(x / sqrt(2.0)));
        if (!(fabs(Y[i] - ref) <= 0.5 * fabs(x) * 1e-6 + 3e-7 * fabs(ref) + 1e-30)) bad++;
    }
    CHECK(bad == 0, "gelu %s: %d bad", qk_isa_name(isa), bad);
    { // and bit for bit with the scalar twin (M * N = 1551: a tail past the last 8 and 16)
        static float G[M * N];
        for (int i = 0; i < M * N; i++) G[i] = X[i];
        qk_gelu(QK_ISA_SCALAR, M * N, G);
        CHECK(memcmp(G, Y, sizeof G) == 0, "gelu %s differs from scalar", qk_isa_name(isa));
    }
    float g[N], b[N];
    for (int i = 0; i < N; i++) { g[i] = 1.0f + rfloat() * 0.5f; b[i] = rfloat(); }
    qk_layernorm(isa, M, N, X, N, g, b, 1e-5f, Y, N);
    bad = 0;
    for (int m = 0; m < M; m++) {
        double mean = 0, var = 0;
        for (int n = 0; n < N; n++) mean += X[m * N + n];
        mean /= N;
        for (int n = 0; n < N; n++) var += (X[m * N + n] - mean) * (X[m * N + n] - mean);
        var /= N;
        for (int n = 0; n < N; n++) {
            double ref = (X[m * N + n] - mean) / sqrt(var + 1e-5) * g[n] + b[n];
            if (!(fabs(Y[m * N + n] - ref) <= 1e-5 * (1 + fabs(ref)))) {
                if (!bad) printf("layernorm m=%d n=%d got %.9g ref %.9g\n", m, n, Y[m * N + n], ref);
                bad++;
            }
        }
    }
    CHECK(bad == 0, "layernorm %s: %d bad", qk_isa_name(isa), bad);
    // Bit-exact with the scalar twin, at widths with and without a tail past the last 8, on rows
    // with a large common offset (the variance pass then subtracts a mean far from 0), out of
    // place and in place (out == X, as the engine calls it).
    enum { DMAX = 768 };
    const int widths[] = {1, 7, 8, 20, 64, 384, 517, DMAX};
    static float LX[M * DMAX], LY[M * DMAX], LZ[M * DMAX], LR[M * DMAX], lg[DMAX], lb[DMAX];
    for (int i = 0; i < DMAX; i++) { lg[i] = 1.0f + rfloat() * 0.5f; lb[i] = rfloat(); }
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        const int D = widths[w];
        for (int i = 0; i < M * D; i++) LX[i] = LZ[i] = rfloat() * 3.0f + (i / D == 1 ? 1000.0f : 0.0f);
        qk_layernorm(QK_ISA_SCALAR, M, D, LX, D, lg, lb, 1e-12f, LR, D);
        qk_layernorm(isa, M, D, LX, D, lg, lb, 1e-12f, LY, D);
        qk_layernorm(isa, M, D, LZ, D, lg, lb, 1e-12f, LZ, D);
        CHECK(memcmp(LY, LR, sizeof(float) * (size_t)(M * D)) == 0, "layernorm %s D=%d differs from scalar", qk_isa_name(isa), D);
        CHECK(memcmp(LZ, LR, sizeof(float) * (size_t)(M * D)) == 0, "layernorm %s D=%d in place differs from scalar",
              qk_isa_name(isa), D);
    }
    for (int i = 0; i < M * N; i++) Y[i] = X[i] + 1.0f;
    qk_add(isa, M * N, X, Y);
    bad = 0;
    for (int i = 0; i < M * N; i++) bad += Y[i] != X[i] + (X[i] + 1.0f);
    CHECK(bad == 0, "add %s: %d bad", qk_isa_name(isa), bad);
}

int main(void) {
    qk_isa all[6] = {QK_ISA_SCALAR, QK_ISA_AVX2, QK_ISA_AVX512VNNI, QK_ISA_AVXVNNI, QK_ISA_NEON, QK_ISA_NEON_DOTPROD};
    printf("best ISA: %s\n", qk_isa_name(qk_isa_best()));
    for (int i = 0; i < 6; i++) {
        qk_isa isa = all[i];
        if (!qk_isa_supported(isa)) {
            // Forcing an unsupported ISA must degrade to scalar, never SIGILL.
            printf("ISA %s: not supported here; checking the scalar fallback only\n", qk_isa_name(isa));
            check_gemm(isa, 5, 33, 70, 0, 0, 33);
            check_quant(isa, 3, 40);
            check_sgemm(isa, 3, 20, 9, 0, 20);
            check_attention(isa, 9, 20, 1.0f);
            check_attention_i16(isa, 9, 20, 1.0f);
            continue;
        }
        printf("ISA %s: checking\n", qk_isa_name(isa));
        check_elementwise(isa);
        const int at[][2] = {{1, 64}, {2, 64}, {5, 16}, {7, 64}, {13, 8}, {17, 64}, {31, 40}, {64, 64}, {100, 64}, {129, 32}, {384, 64}};
        for (size_t s = 0; s < sizeof at / sizeof at[0]; s++) check_attention(isa, at[s][0], at[s][1], s % 2 ? 3.0f : 1.0f);
        const int a16[][2] = {{1, 64}, {2, 32}, {5, 16}, {7, 64}, {13, 8}, {17, 64}, {31, 40}, {64, 64}, {100, 32},
                              {129, 32}, {384, 32}, {384, 64}, {33, 7}, {20, 100}};
        for (size_t s = 0; s < sizeof a16 / sizeof a16[0]; s++) check_attention_i16(isa, a16[s][0], a16[s][1], s % 2 ? 3.0f : 1.0f);
        // The per-call dispatch guard must agree with qk_isa_supported(), or the comparisons
        // below would silently compare scalar with scalar.
        CHECK(qk_internal_isa_usable(isa) == (int)isa, "ISA %s is reported supported but calls run %s",
              qk_isa_name(isa), qk_isa_name((qk_isa)qk_internal_isa_usable(isa)));
        const int shapes[][3] = {{1, 1, 1}, {1, 17, 5}, {3, 33, 7}, {5, 16, 64}, {7, 1000, 37}, {13, 48, 384},
                                 {6, 64, 130}, {25, 100, 99}, {64, 96, 384}, {2, 35, 3}, {9, 160, 1536},
                                 {1, 1000, 37}, {1, 50, 130}, {1, 96, 768}};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int mode = 0; mode < 5; mode++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                check_gemm(isa, M, N, K, mode, 0, N);
                if (N > 32) check_gemm(isa, M, N, K, mode, 16, N - (N > 40 ? 7 : 0));
                if (N >= 64) check_gemm(isa, M, N, K, mode, 32, 48);
                if (N > 6) check_gemm(isa, M, N, K, mode, 5, N - 1);
            }
        for (int t = 0; t < 20; t++) {
            int M = rint_in(1, 20), N = rint_in(1, 200), K = rint_in(1, 300);
            int n0 = (rint_in(0, N - 1) / 16) * 16, n1 = rint_in(n0 + 1, N);
            check_gemm(isa, M, N, K, t % 2 ? 3 : 0, n0, n1);
        }
        const int qs[][2] = {{1, 1}, {3, 7}, {5, 31}, {6, 32}, {7, 33}, {11, 384}, {4, 1001}};
        for (size_t s = 0; s < sizeof qs / sizeof qs[0]; s++) check_quant(isa, qs[s][0], qs[s][1]);
        const int ss[][3] = {{1, 1, 1}, {1, 17, 5}, {7, 33, 300}, {13, 100, 513}, {6, 64, 64}, {20, 130, 37}};
        for (size_t s = 0; s < sizeof ss / sizeof ss[0]; s++) {
            check_sgemm(isa, ss[s][0], ss[s][1], ss[s][2], 0, ss[s][1]);
            if (ss[s][1] > 20) check_sgemm(isa, ss[s][0], ss[s][1], ss[s][2], 16, ss[s][1] - 3);
        }
    }
    printf("attention_i16: largest error / its bound %.3g\n", att16_worst);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
