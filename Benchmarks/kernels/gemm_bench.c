// CKernels micro-benchmark (not a test). For the four linear layers of the model at dim 384
// (K x N = 384x1152 fused QKV, 384x384, 384x1536, 1536x384) and dim 768 (768x2304, 768x768,
// 768x3072, 3072x768), at M = 64, 128, 256, 384 rows, per ISA: int8 GEMM (qk_gemm_s8_f32) and
// fp32 sgemm_nt in MAC per cycle per core, and their ratio. The clock is measured in the same
// run, right before each shape, by a calibrated loop: a dependent chain of vfmadd (latency 4
// cycles on Zen 2/3/4 and on Skylake..Sapphire Rapids) timed in thread CPU time, cross-checked
// against a dependent imul chain (latency 3 cycles). Times are per-thread CPU time
// (CLOCK_THREAD_CPUTIME_ID: excludes descheduled time on a shared machine), median of repeats.
// Also prints measured instruction peaks of this machine. Build and run: run.sh.
#define _GNU_SOURCE
#include "ckernels.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
// CPU time of the calling thread: excludes time spent descheduled, so figures stay meaningful
// on a shared, oversubscribed machine (wall-clock medians are printed too).
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// ---- peaks -------------------------------------------------------------------------------------
#if defined(__x86_64__)
#define PEAK_ITERS 4000000L
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static double peak_vnni(void) {
    __m512i a0 = _mm512_set1_epi32(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
            a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512i u = _mm512_set1_epi8(3), w = _mm512_set1_epi8(-2);
    double t0 = cpu_now();
    for (long i = 0; i < PEAK_ITERS; i++) {
        a0 = _mm512_dpbusd_epi32(a0, u, w); a1 = _mm512_dpbusd_epi32(a1, u, w);
        a2 = _mm512_dpbusd_epi32(a2, u, w); a3 = _mm512_dpbusd_epi32(a3, u, w);
        a4 = _mm512_dpbusd_epi32(a4, u, w); a5 = _mm512_dpbusd_epi32(a5, u, w);
        a6 = _mm512_dpbusd_epi32(a6, u, w); a7 = _mm512_dpbusd_epi32(a7, u, w);
        a8 = _mm512_dpbusd_epi32(a8, u, w); a9 = _mm512_dpbusd_epi32(a9, u, w);
        a10 = _mm512_dpbusd_epi32(a10, u, w); a11 = _mm512_dpbusd_epi32(a11, u, w);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    }
    double t = cpu_now() - t0;
    volatile int sink = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3))) +
                        _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7))) +
                        _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
    (void)sink;
    return 12.0 * 64 * 2 * PEAK_ITERS / t * 1e-9; // 64 MACs per vpdpbusd zmm
}
// The AVX2 kernel's inner step per 8 channels x 4 k: vpsignb, vpmaddubsw, vpmaddwd, vpaddd.
__attribute__((target("avx2"), noinline)) static double peak_avx2_s8(void) {
    __m256i acc[8], a[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm256_set1_epi32(i), a[i] = _mm256_set1_epi8((char)(i - 4));
    const __m256i u = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i w = _mm256_set1_epi8(7);
    double t0 = cpu_now();
    for (long i = 0; i < PEAK_ITERS / 2; i++) {
        for (int j = 0; j < 8; j++)
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(w, a[j])), ones));
        __asm__ volatile("" : "+x"(w));
    }
    double t = cpu_now() - t0;
    __m256i s = acc[0];
    for (int i = 1; i < 8; i++) s = _mm256_add_epi32(s, acc[i]);
    volatile int sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return 8.0 * 32 * 2 * (PEAK_ITERS / 2) / t * 1e-9;
}
// The AVX2 kernel's steps (qk_avx2.c): with_xor, the XOR scheme for 8-bit weights (vpxor,
// vpmaddubsw, vpmaddwd, vpaddd); without, the narrow step on 7-bit weights (no vpxor).
__attribute__((target("avx2"), always_inline)) static inline double peak_avx2_u8(const int with_xor) {
    __m256i acc[8], n[4], u[4];
    for (int i = 0; i < 8; i++) acc[i] = _mm256_set1_epi32(i);
    for (int i = 0; i < 4; i++) n[i] = _mm256_set1_epi8((char)(i & 1 ? -1 : 0)), u[i] = _mm256_set1_epi8((char)(i + 1));
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i w0 = _mm256_set1_epi8(3), w1 = _mm256_set1_epi8(5);
    double t0 = cpu_now();
    for (long i = 0; i < PEAK_ITERS / 2; i++) {
        for (int r = 0; r < 4; r++) {
            __m256i a = _mm256_maddubs_epi16(u[r], with_xor ? _mm256_xor_si256(w0, n[r]) : w0);
            __m256i b = _mm256_maddubs_epi16(u[r], with_xor ? _mm256_xor_si256(w1, n[r]) : w1);
            acc[2 * r] = _mm256_add_epi32(acc[2 * r], _mm256_madd_epi16(a, ones));
            acc[2 * r + 1] = _mm256_add_epi32(acc[2 * r + 1], _mm256_madd_epi16(b, ones));
        }
        __asm__ volatile("" : "+x"(w0), "+x"(w1));
    }
    double t = cpu_now() - t0;
    __m256i s = acc[0];
    for (int i = 1; i < 8; i++) s = _mm256_add_epi32(s, acc[i]);
    volatile int sink = _mm256_extract_epi32(s, 0);
    (void)sink;
    return 8.0 * 32 * 2 * (PEAK_ITERS / 2) / t * 1e-9;
}
__attribute__((target("avx2"), noinline)) static double peak_avx2_xor(void) { return peak_avx2_u8(1); }
__attribute__((target("avx2"), noinline)) static double peak_avx2_narrow(void) { return peak_avx2_u8(0); }
__attribute__((target("avx2,fma"), noinline)) static double peak_fma_ymm(void) {
    __m256 acc[10];
    for (int i = 0; i < 10; i++) acc[i] = _mm256_set1_ps((float)i);
    const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
    double t0 = cpu_now();
    for (long i = 0; i < PEAK_ITERS; i++)
        for (int j = 0; j < 10; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    double t = cpu_now() - t0;
    float s = 0;
    for (int i = 0; i < 10; i++) s += _mm256_cvtss_f32(acc[i]);
    volatile float sink = s;
    (void)sink;
    return 10.0 * 16 * PEAK_ITERS / t * 1e-9;
}
__attribute__((target("avx512f"), noinline)) static double peak_fma_zmm(void) {
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
    double t0 = cpu_now();
    for (long i = 0; i < PEAK_ITERS; i++)
        for (int j = 0; j < 12; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    double t = cpu_now() - t0;
    float s = 0;
    for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(acc[i]);
    volatile float sink = s;
    (void)sink;
    return 12.0 * 32 * PEAK_ITERS / t * 1e-9;
}
#endif

// ---- clock --------------------------------------------------------------------------------------
#if defined(__x86_64__)
#define CLK_ITERS 4000000L
// 4 * CLK_ITERS cycles of dependent vfmadd (4-cycle latency), and 3 * CLK_ITERS of dependent
// imul (3-cycle latency on the same cores; a dependent `add` chain is no clock on Golden Cove,
// which folds add-immediate at rename).
__attribute__((target("fma"), noinline)) static double clock_fma_ghz(void) {
    __m128 x = _mm_set1_ps(1.0f);
    const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
    double t0 = cpu_now();
    for (long i = 0; i < CLK_ITERS; i += 4) {
        x = _mm_fmadd_ps(x, a, b);
        x = _mm_fmadd_ps(x, a, b);
        x = _mm_fmadd_ps(x, a, b);
        x = _mm_fmadd_ps(x, a, b);
    }
    double t = cpu_now() - t0;
    volatile float sink = _mm_cvtss_f32(x);
    (void)sink;
    return 4.0 * CLK_ITERS / t * 1e-9;
}
__attribute__((noinline)) static double clock_imul_ghz(void) {
    uint64_t x = 3;
    double t0 = cpu_now();
    for (long i = 0; i < CLK_ITERS; i += 4)
        __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0" : "+r"(x));
    double t = cpu_now() - t0;
    volatile uint64_t sink = x;
    (void)sink;
    return 3.0 * CLK_ITERS / t * 1e-9;
}
// Median of 5 calibrations.
static double clock_ghz(double *imul_ghz) {
    double f[5], a[5];
    for (int i = 0; i < 5; i++) f[i] = clock_fma_ghz(), a[i] = clock_imul_ghz();
    qsort(f, 5, sizeof(double), cmpd);
    qsort(a, 5, sizeof(double), cmpd);
    if (imul_ghz) *imul_ghz = a[2];
    return f[2];
}
#else
static double clock_ghz(double *imul_ghz) { if (imul_ghz) *imul_ghz = 0; return 0; }
#endif

// ---- GEMM timing -----------------------------------------------------------------------------------
typedef struct {
    int kind; // 0 int8 fused (qk_gemm_s8_f32), 1 fp32 sgemm_nt
    qk_isa isa;
    int M, N, K, n0, n1, reps;
    const int8_t *A8, *P;
    const int32_t *cs;
    const float *as, *ws, *bias, *Af, *Bf;
    float *C;
    pthread_barrier_t *bar;
    double *times, *cpu;
    int wmax; // max |w| of P (qk_s8_absmax): 127 for 8-bit weights, 64 for 7-bit (set by bench())
} job;

static void run_once(const job *j) {
    if (j->kind == 0)
        qk_gemm_s8_f32(j->isa, j->M, j->N, j->K, j->A8, (j->K + 3) / 4 * 4, j->as, j->P, j->cs, j->wmax, j->ws, j->bias,
                       QK_ACT_NONE, j->C, j->N, j->n0, j->n1);
    else
        qk_sgemm_nt(j->isa, j->M, j->N, j->K, j->Af, j->K, j->Bf, j->K, j->bias, QK_ACT_NONE, j->C, j->N, j->n0,
                    j->n1);
}

static void *worker(void *arg) {
    job *j = (job *)arg;
    for (int r = -1; r < j->reps; r++) { // r = -1: warm-up
        pthread_barrier_wait(j->bar);
        double t0 = now(), c0 = cpu_now();
        run_once(j);
        double c = cpu_now() - c0;
        pthread_barrier_wait(j->bar);
        if (r >= 0) {
            j->cpu[r] = c;
            if (j->times) j->times[r] = now() - t0;
        }
    }
    return NULL;
}

// Median wall seconds per call with `threads` threads splitting [0, N); *cpu gets the median
// over repeats of the slowest thread's CPU time (the uncontended estimate).
static double bench(job base, int threads, double *cpu) {
    int reps = base.reps;
    if (base.kind == 0) base.wmax = qk_s8_absmax(base.P, qk_packed_s8_size(base.N, base.K));
    double *times = calloc((size_t)reps, sizeof(double));
    double *ct[2] = {calloc((size_t)reps, sizeof(double)), calloc((size_t)reps, sizeof(double))};
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    job js[2];
    pthread_t th[2];
    int split = (base.N / threads + 15) / 16 * 16;
    for (int t = 0; t < threads; t++) {
        js[t] = base;
        js[t].bar = &bar;
        js[t].n0 = t == 0 ? 0 : split;
        js[t].n1 = t == threads - 1 ? base.N : split;
        js[t].times = t == 0 ? times : NULL;
        js[t].cpu = ct[t];
    }
    for (int t = 1; t < threads; t++) pthread_create(&th[t], NULL, worker, &js[t]);
    worker(&js[0]);
    for (int t = 1; t < threads; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&bar);
    qsort(times, (size_t)reps, sizeof(double), cmpd);
    double med = times[reps / 2];
    for (int r = 0; r < reps; r++) ct[0][r] = ct[0][r] > ct[1][r] ? ct[0][r] : ct[1][r];
    qsort(ct[0], (size_t)reps, sizeof(double), cmpd);
    *cpu = ct[0][reps / 2];
    free(times);
    free(ct[0]);
    free(ct[1]);
    return med;
}

// The model's linear layers (K x N) at dim 384 and 768, and the M (tokens) to run them at.
static const int lin_shapes[8][2] = {{384, 1152}, {384, 384}, {384, 1536}, {1536, 384},
                                     {768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
static const int lin_M[4] = {64, 128, 256, 384};

// MAC/cycle/core tables: int8 per ISA, fp32 sgemm (same ISA's sgemm), ratio, 1 thread (and 2).
static int mac_tables(const qk_isa *isas, int nisa, int threads2, int only_k, int only_n, double target_s) {
    printf("\nMAC/cycle/core = M*N*K / (thread CPU seconds * clock); clock measured before each shape.\n"
           "int8 = qk_gemm_s8_f32 (fused dequant + bias), fp32 = qk_sgemm_nt (bias) on the same shape;\n"
           "x = int8 MAC rate / fp32 MAC rate. Median of repeats. int8-w7: qk_gemm_s8_f32 on 7-bit weights\n"
           "(|w| <= 64, a blob made with --weight-bits 7), x7 its ratio to fp32.%s\n",
           threads2 ? " 2T: the same with N split over 2 threads (CPU time of the slower thread)." : "");
    printf("%-11s %5s %5s %4s %6s %9s %9s %6s %9s %9s %6s%s\n", "isa", "K", "N", "M", "GHz", "int8", "fp32", "x",
           "us-int8", "int8-w7", "x7", threads2 ? "   int8-2T   fp32-2T" : "");
    for (int s = 0; s < 8; s++) {
        const int K = lin_shapes[s][0], N = lin_shapes[s][1], Kp = (K + 3) / 4 * 4;
        if (only_k && (K != only_k || N != only_n)) continue;
        const int Mmax = 384;
        int8_t *W = malloc((size_t)N * K), *P = malloc(qk_packed_s8_size(N, K)), *A = calloc((size_t)Mmax * Kp, 1);
        int32_t *cs = malloc(sizeof(int32_t) * N), *cs7 = malloc(sizeof(int32_t) * N);
        int8_t *W7 = malloc((size_t)N * K), *P7 = malloc(qk_packed_s8_size(N, K));
        float *ws = malloc(sizeof(float) * N), *bias = malloc(sizeof(float) * N), *as = malloc(sizeof(float) * Mmax);
        float *C = malloc(sizeof(float) * (size_t)Mmax * N);
        float *Af = malloc(sizeof(float) * (size_t)Mmax * K), *Bf = malloc(sizeof(float) * (size_t)N * K);
        for (int i = 0; i < N * K; i++) W[i] = (int8_t)(rand() % 255 - 127);
        for (int i = 0; i < Mmax * Kp; i++) A[i] = (i % Kp) < K ? (int8_t)(rand() % 255 - 127) : 0;
        for (int i = 0; i < N; i++) { ws[i] = 0.01f; bias[i] = 0.5f; }
        for (int i = 0; i < Mmax; i++) as[i] = 0.02f;
        for (int i = 0; i < Mmax * K; i++) Af[i] = (float)(rand() % 200 - 100) * 0.01f;
        for (int i = 0; i < N * K; i++) Bf[i] = (float)(rand() % 200 - 100) * 0.01f;
        qk_pack_s8(N, K, W, K, P, cs);
        for (int i = 0; i < N * K; i++) W7[i] = (int8_t)(rand() % 129 - 64);
        qk_pack_s8(N, K, W7, K, P7, cs7);
        for (int mi = 0; mi < 4; mi++) {
            const int M = lin_M[mi];
            const double macs = (double)M * N * K;
            double ghz = clock_ghz(NULL);
            for (int ii = 0; ii < nisa; ii++) {
                int reps = (int)(target_s / (macs / 3e10));
                reps = reps < 5 ? 5 : reps > 2001 ? 2001 : reps;
                job j8 = {0, isas[ii], M, N, K, 0, N, reps, A, P, cs, as, ws, bias, NULL, NULL, C, NULL, NULL, NULL};
                job jf = {1, isas[ii], M, N, K, 0, N, reps / 2 < 5 ? 5 : reps / 2, NULL, NULL, NULL, NULL, NULL, bias, Af, Bf, C, NULL, NULL, NULL};
                job j7 = j8;
                j7.P = P7;
                j7.cs = cs7;
                double c8, c7, cf, c82 = 0, cf2 = 0;
                double w8 = bench(j8, 1, &c8);
                (void)w8;
                bench(j7, 1, &c7);
                bench(jf, 1, &cf);
                if (threads2) { bench(j8, 2, &c82); bench(jf, 2, &cf2); }
                const double m8 = macs / c8 * 1e-9 / ghz, m7 = macs / c7 * 1e-9 / ghz, mf = macs / cf * 1e-9 / ghz;
                printf("%-11s %5d %5d %4d %6.2f %9.2f %9.2f %6.2f %9.1f %9.2f %6.2f", qk_isa_name(isas[ii]), K, N, M, ghz,
                       m8, mf, m8 / mf, c8 * 1e6, m7, m7 / mf);
                if (threads2) printf(" %9.2f %9.2f", macs / c82 * 1e-9 / ghz / 2, macs / cf2 * 1e-9 / ghz / 2);
                printf("\n");
                fflush(stdout);
            }
        }
        free(W); free(P); free(A); free(cs); free(ws); free(bias); free(as); free(C); free(Af); free(Bf);
        free(W7); free(P7); free(cs7);
    }
    return 0;
}

// Attention, one head at sequence length L, on one head of a [L][3*D] qkv matrix (the engine's
// layout): the stand-in's heads (dh 32, D 384) and the 768-wide model's (dh 64, D 768).
// fp32 = qk_attention_head (the FP32 engine's), int16 = qk_attention_head_i16 (the int8
// engine's: Q, K, V and P quantized to int16, both products exact in int32). MAC/cycle over the
// 2*L*L*dh MACs of QK^T and PV, everything included (packing, quantization, softmax); FMA peak
// is 16 per cycle with ymm, 16 or 32 with zmm (half- or full-width units); vpdpwssd doubles it.
static void attention_table(const qk_isa *isas, int nisa) {
    printf("\nattention, one head, engine layout (qkv rows of 3*D floats), everything included.\n"
           "fp32 = qk_attention_head, int16 = qk_attention_head_i16: MAC/cycle over 2*L*L*dh;\n"
           "speedup = fp32 time / int16 time.\n");
    printf("%-11s %3s %4s %6s %9s %9s %9s\n", "isa", "dh", "L", "GHz", "fp32", "int16", "speedup");
    const int Ls[4] = {64, 128, 256, 384}, dhs[2] = {32, 64};
    for (int di = 0; di < 2; di++)
        for (int li = 0; li < 4; li++) {
            const int L = Ls[li], dh = dhs[di], D = dh * 12, ld = 3 * D;
            size_t ns = qk_attention_scratch(L, dh), n16 = qk_attention_i16_scratch(L, dh);
            float *QKV = malloc(sizeof(float) * (size_t)L * ld), *scr = malloc(sizeof(float) * (ns > n16 ? ns : n16));
            float *O = malloc(sizeof(float) * (size_t)L * D);
            for (int i = 0; i < L * ld; i++) QKV[i] = (float)(rand() % 200 - 100) * 0.01f;
            const float *Q = QKV, *K = QKV + D, *V = QKV + 2 * D;
            double ghz = clock_ghz(NULL);
            for (int ii = 0; ii < nisa; ii++) {
                enum { reps = 41 };
                double tf[reps], ti[reps];
                for (int r = 0; r < reps; r++) { // interleaved
                    double t0 = cpu_now();
                    qk_attention_head(isas[ii], L, dh, Q, K, V, ld, O, D, scr);
                    double t1 = cpu_now();
                    qk_attention_head_i16(isas[ii], L, dh, Q, K, V, ld, O, D, scr);
                    double t2 = cpu_now();
                    tf[r] = t1 - t0, ti[r] = t2 - t1;
                }
                qsort(tf, reps, sizeof(double), cmpd);
                qsort(ti, reps, sizeof(double), cmpd);
                const double macs = 2.0 * L * L * dh;
                printf("%-11s %3d %4d %6.2f %9.2f %9.2f %9.2f\n", qk_isa_name(isas[ii]), dh, L, ghz,
                       macs / tf[reps / 2] * 1e-9 / ghz, macs / ti[reps / 2] * 1e-9 / ghz, tf[reps / 2] / ti[reps / 2]);
                fflush(stdout);
            }
            free(QKV); free(scr); free(O);
        }
}

int main(int argc, char **argv) {
    const int shapes[6][2] = {{384, 384}, {384, 1536}, {1536, 384}, {768, 768}, {768, 3072}, {3072, 768}};
    const int Ms[3] = {1, 64, 384};
    int with_scalar = 0, only_k = 0, only_n = 0, legacy = 0, threads2 = 0, attention_only = 0;
    const char *only_isa = NULL;
    double target_s = 0.15;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--scalar") == 0) with_scalar = 1;
        else if (strcmp(argv[i], "--shape") == 0 && i + 2 < argc) { only_k = atoi(argv[i + 1]); only_n = atoi(argv[i + 2]); i += 2; }
        else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) only_isa = argv[++i];
        else if (strcmp(argv[i], "--gops") == 0) legacy = 1;
        else if (strcmp(argv[i], "--2t") == 0) threads2 = 1;
        else if (strcmp(argv[i], "--attention") == 0) attention_only = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) target_s = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: gemm_bench [--scalar] [--isa NAME] [--shape K N] [--2t] [--seconds S] [--attention] [--gops]\n"
                            "  default: MAC/cycle/core tables for the model's linear shapes at M = 64..384\n"
                            "  then the attention table (QK^T, softmax, PV per head); --attention: only that\n"
                            "  --gops: also the older GOPS tables (M = 1, 64, 384, 1 and 2 threads)\n");
            return 2;
        }
    }
    qk_isa isas[6];
    int nisa = 0;
    for (int i = with_scalar ? 0 : 1; i <= 5; i++)
        if (qk_isa_supported((qk_isa)i) && (!only_isa || strcmp(only_isa, qk_isa_name((qk_isa)i)) == 0))
            isas[nisa++] = (qk_isa)i;
    if (nisa == 0) isas[nisa++] = QK_ISA_SCALAR;

    printf("# CKernels benchmark; best ISA: %s\n", qk_isa_name(qk_isa_best()));
    double peak_s8 = 0, peak_f32 = 0;
#if defined(__x86_64__)
    double imul_ghz, ghz = clock_ghz(&imul_ghz);
    printf("clock (thread CPU time): %.3f GHz from the vfmadd latency chain, %.3f GHz from the imul chain\n",
           ghz, imul_ghz);
    if (qk_isa_supported(QK_ISA_AVX512VNNI)) {
        peak_s8 = peak_vnni();
        printf("peak vpdpbusd zmm (1 thread): %.1f GOPS = %.1f MAC/cycle\n", peak_s8, peak_s8 / 2 / ghz);
        peak_f32 = peak_fma_zmm();
        printf("peak vfmadd zmm  (1 thread): %.1f GFLOPS = %.1f MAC/cycle\n", peak_f32, peak_f32 / 2 / ghz);
    } else {
        printf("peak vpdpbusd zmm: not measurable, this CPU/OS has no AVX-512 VNNI\n");
    }
    if (qk_isa_supported(QK_ISA_AVX2)) {
        double p0 = peak_avx2_s8();
        printf("peak AVX2 int8 sign-trick step (vpsignb+vpmaddubsw+vpmaddwd+vpaddd, 1 thread): %.1f GOPS = %.1f MAC/cycle\n",
               p0, p0 / 2 / ghz);
        double p = peak_avx2_xor();
        printf("peak AVX2 int8 XOR step, the kernel's (vpxor+vpmaddubsw+vpmaddwd+vpaddd, 1 thread): %.1f GOPS = %.1f MAC/cycle\n",
               p, p / 2 / ghz);
        double pn = peak_avx2_narrow();
        printf("peak AVX2 int8 narrow step, the kernel's on 7-bit weights (vpmaddubsw+vpmaddwd+vpaddd, 1 thread): "
               "%.1f GOPS = %.1f MAC/cycle\n", pn, pn / 2 / ghz);
        double f = peak_fma_ymm();
        printf("peak vfmadd ymm (1 thread): %.1f GFLOPS = %.1f MAC/cycle\n", f, f / 2 / ghz);
        if (peak_s8 == 0) { peak_s8 = p; peak_f32 = f; }
    }
#endif
    if (!attention_only) mac_tables(isas, nisa, threads2, only_k, only_n, target_s);
    attention_table(isas, nisa);
    if (!legacy) return 0;
    printf("\nGOPS = 2*M*N*K / time, median of repeats; wall = wall clock, cpu = thread CPU time (slowest thread);\n"
           "%%peak = cpu-1T / peak above (peaks measured with thread CPU time too)\n");
    printf("%-11s %5s %5s %4s %8s %8s %8s %8s %8s %9s\n", "int8 isa", "K", "N", "M", "wall-1T", "cpu-1T", "%peak",
           "wall-2T", "cpu-2T", "us-wall1T");
    for (int s = 0; s < 6; s++) {
        const int K = shapes[s][0], N = shapes[s][1], Kp = (K + 3) / 4 * 4;
        if (only_k && (K != only_k || N != only_n)) continue;
        int8_t *W = malloc((size_t)N * K), *P = malloc(qk_packed_s8_size(N, K)), *A = calloc((size_t)384 * Kp, 1);
        int32_t *cs = malloc(sizeof(int32_t) * N);
        float *ws = malloc(sizeof(float) * N), *bias = malloc(sizeof(float) * N), *as = malloc(sizeof(float) * 384);
        float *C = malloc(sizeof(float) * (size_t)384 * N);
        for (int i = 0; i < N * K; i++) W[i] = (int8_t)(rand() % 255 - 127);
        for (int i = 0; i < 384 * Kp; i++) A[i] = (i % Kp) < K ? (int8_t)(rand() % 255 - 127) : 0;
        for (int i = 0; i < N; i++) { ws[i] = 0.01f; bias[i] = 0.5f; }
        for (int i = 0; i < 384; i++) as[i] = 0.02f;
        qk_pack_s8(N, K, W, K, P, cs);
        for (int mi = 0; mi < 3; mi++)
            for (int ii = 0; ii < nisa; ii++) {
                const int M = Ms[mi];
                const double ops = 2.0 * M * N * K;
                int reps = (int)(0.3 / (ops / (isas[ii] == QK_ISA_SCALAR ? 3e9 : 1e11)));
                reps = reps < 5 ? 5 : reps > 2001 ? 2001 : reps;
                job j = {0, isas[ii], M, N, K, 0, N, reps, A, P, cs, as, ws, bias, NULL, NULL, C, NULL, NULL, NULL};
                double b1, b2, t1 = bench(j, 1, &b1), t2 = bench(j, 2, &b2);
                printf("%-11s %5d %5d %4d %8.1f %8.1f %7.1f%% %8.1f %8.1f %9.1f\n", qk_isa_name(isas[ii]), K, N, M,
                       ops / t1 * 1e-9, ops / b1 * 1e-9, peak_s8 > 0 ? 100.0 * ops / b1 * 1e-9 / peak_s8 : 0.0,
                       ops / t2 * 1e-9, ops / b2 * 1e-9, t1 * 1e6);
                fflush(stdout);
            }
        free(W); free(P); free(A); free(cs); free(ws); free(bias); free(as); free(C);
    }
    printf("\n%-11s %5s %5s %4s %8s %8s %8s %8s %8s %9s\n", "fp32 isa", "K", "N", "M", "wall-1T", "cpu-1T", "%peak",
           "wall-2T", "cpu-2T", "us-wall1T");
    for (int s = 0; s < 6; s++) {
        const int K = shapes[s][0], N = shapes[s][1];
        if (only_k && (K != only_k || N != only_n)) continue;
        float *A = malloc(sizeof(float) * (size_t)384 * K), *B = malloc(sizeof(float) * (size_t)N * K);
        float *C = malloc(sizeof(float) * (size_t)384 * N), *bias = malloc(sizeof(float) * N);
        for (int i = 0; i < 384 * K; i++) A[i] = (float)(rand() % 200 - 100) * 0.01f;
        for (int i = 0; i < N * K; i++) B[i] = (float)(rand() % 200 - 100) * 0.01f;
        for (int i = 0; i < N; i++) bias[i] = 0.1f;
        for (int mi = 0; mi < 3; mi++)
            for (int ii = 0; ii < nisa; ii++) {
                const int M = Ms[mi];
                const double ops = 2.0 * M * N * K;
                int reps = (int)(0.3 / (ops / (isas[ii] == QK_ISA_SCALAR ? 2e9 : 4e10)));
                reps = reps < 5 ? 5 : reps > 2001 ? 2001 : reps;
                job j = {1, isas[ii], M, N, K, 0, N, reps, NULL, NULL, NULL, NULL, NULL, bias, A, B, C, NULL, NULL, NULL};
                double b1, b2, t1 = bench(j, 1, &b1), t2 = bench(j, 2, &b2);
                printf("%-11s %5d %5d %4d %8.1f %8.1f %7.1f%% %8.1f %8.1f %9.1f\n", qk_isa_name(isas[ii]), K, N, M,
                       ops / t1 * 1e-9, ops / b1 * 1e-9, peak_f32 > 0 ? 100.0 * ops / b1 * 1e-9 / peak_f32 : 0.0,
                       ops / t2 * 1e-9, ops / b2 * 1e-9, t1 * 1e6);
                fflush(stdout);
            }
        free(A); free(B); free(C); free(bias);
    }
    return 0;
}
