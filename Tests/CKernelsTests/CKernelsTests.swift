import CKernels
import Foundation
import XCTest

/// Deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let allISAs: [qk_isa] = [QK_ISA_SCALAR, QK_ISA_AVX2, QK_ISA_AVX512VNNI, QK_ISA_NEON, QK_ISA_NEON_DOTPROD, QK_ISA_AVXVNNI]
/// Every SIMD ISA this machine can run (the scalar reference excluded).
let simdISAs: [qk_isa] = allISAs.filter { $0 != QK_ISA_SCALAR && qk_isa_supported($0) != 0 }

func isaName(_ isa: qk_isa) -> String { String(cString: qk_isa_name(isa)) }

func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

/// Weights, activations and packed form for one int8 GEMM case.
struct Int8Case {
    let M: Int, N: Int, K: Int, lda: Int
    var W: [Int8]     // [N][K]
    var A: [Int8]     // [M][lda], zero padding
    var packed: [Int8]
    var colsum: [Int32]

    /// narrow / narrowExtreme: 7-bit weights (|w| <= 64, the AVX2 kernel's shorter step).
    enum Mode { case random, extreme, allMin, narrow, narrowExtreme }
    static let allModes: [Mode] = [.random, .extreme, .allMin, .narrow, .narrowExtreme]

    /// max |w|: what the engine passes as wmax (qk_s8_absmax over the packed weights).
    var wmax: Int32 { Int32(qk_s8_absmax(packed, packed.count)) }

    init(M: Int, N: Int, K: Int, mode: Mode, rng: inout SplitMix64) {
        self.M = M; self.N = N; self.K = K
        let Kp = (K + 3) / 4 * 4
        lda = Kp + 4 * Int.random(in: 0...1, using: &rng)
        W = (0..<(N * K)).map { _ -> Int8 in
            switch mode {
            case .random: return Int8.random(in: -127...127, using: &rng)
            case .extreme: return Bool.random(using: &rng) ? 127 : -127
            case .allMin: return 127
            case .narrow: return Int8.random(in: -64...64, using: &rng)
            case .narrowExtreme: return Bool.random(using: &rng) ? 64 : -64
            }
        }
        A = [Int8](repeating: 0, count: M * lda)
        for m in 0..<M {
            for k in 0..<K {
                switch mode {
                case .random, .narrow: A[m * lda + k] = Int8.random(in: -128...127, using: &rng)
                case .extreme, .narrowExtreme: A[m * lda + k] = [-128, 127, -127][Int.random(in: 0..<3, using: &rng)]
                case .allMin: A[m * lda + k] = -128
                }
            }
        }
        packed = [Int8](repeating: 0x55, count: qk_packed_s8_size(Int32(N), Int32(K)))
        colsum = [Int32](repeating: 0, count: N)
        qk_pack_s8(Int32(N), Int32(K), W, Int32(K), &packed, &colsum)
    }

    func s32(_ isa: qk_isa, n0: Int, n1: Int, ldc: Int) -> [Int32] {
        var C = [Int32](repeating: 0x5A5A_5A5A, count: M * ldc)
        qk_gemm_s8_s32(isa, Int32(M), Int32(N), Int32(K), A, Int32(lda), packed, colsum, wmax, &C,
                       Int32(ldc), Int32(n0), Int32(n1))
        return C
    }
}

final class CKernelsTests: XCTestCase {
    func testDispatch() {
        XCTAssertEqual(qk_isa_supported(QK_ISA_SCALAR), 1)
        XCTAssertEqual(qk_isa_supported(qk_isa(rawValue: 99)), 0)
        XCTAssertNotEqual(qk_isa_supported(qk_isa_best()), 0)
        XCTAssertEqual(allISAs.map(isaName), ["scalar", "avx2", "avx512vnni", "neon", "neon-dotprod", "avxvnni"])
        #if arch(x86_64)
        XCTAssertEqual(qk_isa_supported(QK_ISA_NEON), 0)
        #elseif arch(arm64)
        XCTAssertEqual(qk_isa_supported(QK_ISA_AVX2), 0)
        XCTAssertEqual(qk_isa_supported(QK_ISA_NEON), 1)
        #endif
        print("CKernels: best ISA \(isaName(qk_isa_best())); SIMD ISAs tested here: \(simdISAs.map(isaName))")
    }

    func testPackLayout() {
        var rng = SplitMix64(seed: 1)
        for (N, K) in [(1, 1), (17, 5), (33, 7), (16, 64)] {
            let c = Int8Case(M: 1, N: N, K: K, mode: .random, rng: &rng)
            let Kp = (K + 3) / 4 * 4, Np = (N + 15) / 16 * 16
            XCTAssertEqual(c.packed.count, Np * Kp)
            for n in 0..<Np {
                for k in 0..<Kp {
                    let v = c.packed[(n / 16) * (Kp * 16) + (k / 4) * 64 + (n % 16) * 4 + (k % 4)]
                    XCTAssertEqual(v, n < N && k < K ? c.W[n * K + k] : 0, "N=\(N) K=\(K) n=\(n) k=\(k)")
                }
            }
            for n in 0..<N {
                XCTAssertEqual(c.colsum[n], (0..<K).reduce(Int32(0)) { $0 + Int32(c.W[n * K + $1]) })
            }
        }
    }

    /// qk_s8_absmax (the wmax the engine passes) against the definition, -128 included.
    func testAbsMax() {
        var rng = SplitMix64(seed: 11)
        XCTAssertEqual(qk_s8_absmax(nil, 0), 0)
        for count in [1, 3, 31, 32, 33, 64, 1000, 4099] {
            for bound in [Int8(1), 63, 64, 65, 127] {
                var w = (0..<count).map { _ in Int8.random(in: -bound...bound, using: &rng) }
                XCTAssertEqual(Int(qk_s8_absmax(w, w.count)), w.map { abs(Int($0)) }.max()!, "count \(count) bound \(bound)")
                w[Int.random(in: 0..<count, using: &rng)] = -128
                XCTAssertEqual(qk_s8_absmax(w, w.count), 128)
            }
        }
    }

    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 17, 5), (3, 33, 7), (5, 16, 64), (7, 1000, 37), (13, 48, 384), (6, 64, 130),
        (25, 100, 99), (64, 96, 384), (2, 35, 3), (9, 160, 1536), (1, 384, 384), (1, 1000, 37), (1, 50, 130),
    ]

    /// The scalar reference against a naive triple loop over the unpacked weights.
    func testScalarGemmMatchesNaive() {
        var rng = SplitMix64(seed: 2)
        for (M, N, K) in Self.shapes {
            for mode in Int8Case.allModes {
                let c = Int8Case(M: M, N: N, K: K, mode: mode, rng: &rng)
                let ldc = N + 3
                let got = c.s32(QK_ISA_SCALAR, n0: 0, n1: N, ldc: ldc)
                var bad = 0
                for m in 0..<M {
                    for n in 0..<N {
                        var ref: Int32 = 0
                        for k in 0..<K { ref += Int32(c.A[m * c.lda + k]) * Int32(c.W[n * K + k]) }
                        if got[m * ldc + n] != ref { bad += 1 }
                    }
                    for n in N..<ldc where got[m * ldc + n] != 0x5A5A_5A5A { bad += 1 }
                }
                XCTAssertEqual(bad, 0, "scalar vs naive M=\(M) N=\(N) K=\(K) \(mode)")
            }
        }
    }

    func testGemmS32BitExactEveryISA() throws {
        if simdISAs.isEmpty { throw XCTSkip("no SIMD ISA supported on this machine") }
        var rng = SplitMix64(seed: 3)
        for isa in simdISAs {
            for (M, N, K) in Self.shapes {
                for mode in Int8Case.allModes {
                    let c = Int8Case(M: M, N: N, K: K, mode: mode, rng: &rng)
                    var ranges = [(0, N)]
                    if N > 32 { ranges.append((16, N - (N > 40 ? 7 : 0))) }
                    if N >= 64 { ranges.append((32, 48)) }
                    if N > 6 { ranges.append((5, N - 1)) }  // not a multiple of 16: still honoured
                    for (n0, n1) in ranges {
                        let ref = c.s32(QK_ISA_SCALAR, n0: n0, n1: n1, ldc: N + 3)
                        let got = c.s32(isa, n0: n0, n1: n1, ldc: N + 3)
                        XCTAssertEqual(got, ref, "\(isaName(isa)) M=\(M) N=\(N) K=\(K) \(mode) n=[\(n0),\(n1))")
                    }
                }
            }
            // Random shapes and sub-ranges (n0 a multiple of 16, any n1).
            for _ in 0..<30 {
                let M = Int.random(in: 1...20, using: &rng), N = Int.random(in: 1...200, using: &rng)
                let K = Int.random(in: 1...300, using: &rng)
                let n0 = Int.random(in: 0..<N, using: &rng) / 16 * 16
                let n1 = Int.random(in: (n0 + 1)...N, using: &rng)
                let c = Int8Case(M: M, N: N, K: K, mode: Bool.random(using: &rng) ? .random : .narrow, rng: &rng)
                XCTAssertEqual(c.s32(isa, n0: n0, n1: n1, ldc: N), c.s32(QK_ISA_SCALAR, n0: n0, n1: n1, ldc: N),
                               "\(isaName(isa)) M=\(M) N=\(N) K=\(K) n=[\(n0),\(n1))")
            }
        }
    }

    func testGemmF32FusedEveryISA() throws {
        if simdISAs.isEmpty { throw XCTSkip("no SIMD ISA supported on this machine") }
        var rng = SplitMix64(seed: 4)
        for isa in simdISAs {
            for (M, N, K) in [(1, 17, 5), (7, 1000, 37), (13, 48, 384), (25, 100, 99), (6, 64, 768)] {
              for mode in [Int8Case.Mode.random, .narrow] {
                let c = Int8Case(M: M, N: N, K: K, mode: mode, rng: &rng)
                let ascale = (0..<M).map { _ in Float.random(in: 0.001...0.02, using: &rng) }
                let wscale = (0..<N).map { _ in Float.random(in: 0.0005...0.01, using: &rng) }
                let bias = (0..<N).map { _ in Float.random(in: -1...1, using: &rng) }
                for act in [QK_ACT_NONE, QK_ACT_GELU, QK_ACT_RELU] {
                    for withBias in [false, true] {
                        for (n0, n1) in [(0, N), (16, N)] where n1 > n0 {
                            var ref = [Float](repeating: -7, count: M * N)
                            var got = ref
                            qk_gemm_s8_f32(QK_ISA_SCALAR, Int32(M), Int32(N), Int32(K), c.A, Int32(c.lda), ascale,
                                           c.packed, c.colsum, c.wmax, wscale, withBias ? bias : nil, act, &ref,
                                           Int32(N), Int32(n0), Int32(n1))
                            qk_gemm_s8_f32(isa, Int32(M), Int32(N), Int32(K), c.A, Int32(c.lda), ascale,
                                           c.packed, c.colsum, c.wmax, wscale, withBias ? bias : nil, act, &got,
                                           Int32(N), Int32(n0), Int32(n1))
                            // Bit for bit, GELU included: every ISA's erf polynomial is the same
                            // chain of fused multiply-adds (the scalar one through fmaf).
                            var bad = 0
                            for i in 0..<ref.count where ref[i].bitPattern != got[i].bitPattern { bad += 1 }
                            XCTAssertEqual(bad, 0, "\(isaName(isa)) M=\(M) N=\(N) K=\(K) \(mode) act=\(act.rawValue) bias=\(withBias)")
                        }
                    }
                }
              }
            }
        }
    }

    /// Scalar quantization against an independent definition, then every ISA bit-exact.
    func testQuantizeRows() {
        var rng = SplitMix64(seed: 5)
        for (M, K) in [(1, 1), (3, 7), (5, 31), (6, 32), (7, 33), (11, 384), (4, 1001), (3, 3072)] {
            let ldx = K + 1, ldq = (K + 3) / 4 * 4 + 8
            var X = [Float](repeating: 0, count: M * ldx)
            for m in 0..<M {
                for k in 0..<ldx {
                    var v = Float.random(in: -1...1, using: &rng) * Float(m + 1)
                    if m % 5 == 1 { v = 0 }  // all-zero row
                    if m % 5 == 2 && k % 3 == 0 { v = Float(Int.random(in: -254...254, using: &rng)) * 0.5 }  // exact .5 ties
                    X[m * ldx + k] = v
                }
            }
            func run(_ isa: qk_isa) -> ([Int8], [Float]) {
                var Q = [Int8](repeating: 99, count: M * ldq)
                var s = [Float](repeating: -1, count: M)
                qk_quantize_rows_s8(isa, Int32(M), Int32(K), X, Int32(ldx), &Q, Int32(ldq), &s)
                return (Q, s)
            }
            let (Q, s) = run(QK_ISA_SCALAR)
            for m in 0..<M {
                let amax = (0..<K).map { abs(X[m * ldx + $0]) }.max()!
                let scale: Float = amax == 0 ? 1 : amax / 127
                XCTAssertEqual(s[m], scale, "M=\(M) K=\(K) row \(m)")
                for k in 0..<ldq {
                    let q = k < K ? Int8(max(-127, min(127, (X[m * ldx + k] / scale).rounded(.toNearestOrAwayFromZero)))) : 0
                    XCTAssertEqual(Q[m * ldq + k], q, "M=\(M) K=\(K) m=\(m) k=\(k)")
                }
            }
            for isa in simdISAs {
                let (Qi, si) = run(isa)
                XCTAssertEqual(Qi, Q, "\(isaName(isa)) M=\(M) K=\(K)")
                XCTAssertEqual(si.map(\.bitPattern), s.map(\.bitPattern), "\(isaName(isa)) M=\(M) K=\(K)")
            }
        }
        // Quantizer output never contains -128.
        var X = (0..<4096).map { _ in Float.random(in: -3...3, using: &rng) }
        X[7] = -3.5
        var Q = [Int8](repeating: 0, count: 4096)
        var s: Float = 0
        for isa in [QK_ISA_SCALAR] + simdISAs {
            qk_quantize_rows_s8(isa, 1, 4096, X, 4096, &Q, 4096, &s)
            XCTAssertEqual(Q.min(), -127)
        }
    }

    func testSgemmEveryISA() {
        var rng = SplitMix64(seed: 6)
        let cases = [(1, 1, 1), (1, 17, 5), (7, 33, 300), (13, 100, 513), (6, 64, 64), (20, 130, 37), (2, 40, 1536)]
        for isa in [QK_ISA_SCALAR] + simdISAs {
            for (M, N, K) in cases {
                let lda = K + 1, ldb = K + 2, ldc = N + 1
                let A = (0..<(M * lda)).map { _ in Float.random(in: -1...1, using: &rng) }
                let B = (0..<(N * ldb)).map { _ in Float.random(in: -1...1, using: &rng) }
                let bias = (0..<N).map { _ in Float.random(in: -1...1, using: &rng) }
                for act in [QK_ACT_NONE, QK_ACT_GELU, QK_ACT_RELU] {
                    for (n0, n1) in [(0, N), (16, N - 3)] where n1 > n0 {
                        var C = [Float](repeating: -9, count: M * ldc)
                        let useBias = act != QK_ACT_GELU
                        qk_sgemm_nt(isa, Int32(M), Int32(N), Int32(K), A, Int32(lda), B, Int32(ldb),
                                    useBias ? bias : nil, act, &C, Int32(ldc), Int32(n0), Int32(n1))
                        var bad = 0
                        for m in 0..<M {
                            for n in 0..<N {
                                let got = C[m * ldc + n]
                                if n < n0 || n >= n1 { if got != -9 { bad += 1 }; continue }
                                var s = useBias ? Double(bias[n]) : 0, sa = abs(s)
                                for k in 0..<K {
                                    let p = Double(A[m * lda + k]) * Double(B[n * ldb + k])
                                    s += p; sa += abs(p)
                                }
                                let ref = act == QK_ACT_NONE ? s : act == QK_ACT_RELU ? max(s, 0) : gelu(s)
                                // fp32 summation: |error| <= (K+1) u sum|a_k b_k| (u = 2^-24, any order),
                                // plus the GELU erf approximation (< 1e-6 |x|) and final rounding.
                                let tol = Double(K + 2) * 0x1p-24 * sa + 2e-6 * (1 + abs(s))
                                if !(abs(Double(got) - ref) <= tol) { bad += 1 }
                            }
                        }
                        XCTAssertEqual(bad, 0, "\(isaName(isa)) M=\(M) N=\(N) K=\(K) act=\(act.rawValue) n=[\(n0),\(n1))")
                    }
                }
            }
        }
    }

    /// erf approximation: max abs error <= 1e-6, checked densely against libm erf in double,
    /// through every code path that evaluates GELU (qk_gelu, and the fused activation of
    /// sgemm_nt for every ISA, with K = 1 and B = 1 so C = gelu(x)).
    func testGeluDenseAgainstLibmErf() {
        let xs = stride(from: -12.0, through: 12.0, by: 1.0 / 4096).map { Float($0) } + [0, -0.0, 1e-30, -1e-30, 50, -50]
        func check(_ got: [Float], _ label: String) {
            var worst = 0.0, worstX: Float = 0
            for (x, g) in zip(xs, got) {
                // g = 0.5 x (1 + erf~), so an erf error e shows as 0.5 |x| e; allow e = 1e-6
                // plus 2 ulps of fp32 rounding in the final products.
                let ref = gelu(Double(x))
                let err = abs(Double(g) - ref)
                let tol = 0.5 * abs(Double(x)) * 1e-6 + 2 * Double(Float(ref).ulp) + 1e-30
                if err / tol > worst { worst = err / tol; worstX = x }
            }
            XCTAssertLessThanOrEqual(worst, 1.0, "\(label): worst error/tolerance \(worst) at x=\(worstX)")
        }
        for isa in [QK_ISA_SCALAR] + simdISAs {
            var y = xs
            qk_gelu(isa, y.count, &y)
            check(y, "qk_gelu \(isaName(isa))")
        }
        var y = xs
        qk_gelu(QK_ISA_SCALAR, y.count, &y)
        for isa in [QK_ISA_SCALAR] + simdISAs {
            var C = [Float](repeating: 0, count: xs.count)
            let one: [Float] = [1]
            qk_sgemm_nt(isa, Int32(xs.count), 1, 1, xs, 1, one, 1, nil, QK_ACT_GELU, &C, 1, 0, 1)
            check(C, "sgemm GELU \(isaName(isa))")
        }
        // Odd symmetry of erf: gelu(x) - gelu(-x) = x exactly in real arithmetic.
        var neg = xs.map { -$0 }
        qk_gelu(QK_ISA_SCALAR, neg.count, &neg)
        for (i, x) in xs.enumerated() where abs(x) < 8 {
            XCTAssertEqual(Double(y[i] - neg[i]), Double(x), accuracy: 4e-6 * max(1, Double(abs(x))))
        }
    }

    func testSoftmax() {
        for isa in [QK_ISA_SCALAR] + simdISAs { softmaxCase(isa) }
    }

    func softmaxCase(_ isa: qk_isa) {
        var rng = SplitMix64(seed: 7)
        for (M, N) in [(1, 1), (3, 7), (5, 64), (4, 385), (2, 1000)] {
            let ld = N + 5
            var X = (0..<(M * ld)).map { _ in Float.random(in: -20...20, using: &rng) }
            if M > 2 { X[2 * ld] = -.infinity; X[2 * ld + N - 1] = -1e9 }  // masked positions
            let orig = X
            qk_softmax_rows(isa, Int32(M), Int32(N), &X, Int32(ld))
            for m in 0..<M {
                let row = (0..<N).map { Double(orig[m * ld + $0]) }
                let mx = row.max()!
                let e = row.map { exp($0 - mx) }
                let s = e.reduce(0, +)
                for n in 0..<N {
                    let ref = e[n] / s
                    // fp32 x - max is rounded (abs error <= ulp(|x - max|) / 2), and exp turns that
                    // into a relative error |x - max| * 2^-24; plus a few ulps for exp, sum and divide.
                    let tol = ref * (1e-6 + abs(row[n] - mx) * 0x1p-24) + 1e-30
                    XCTAssertEqual(Double(X[m * ld + n]), ref, accuracy: tol, "\(isaName(isa)) M=\(M) N=\(N) m=\(m) n=\(n)")
                }
                for n in N..<ld { XCTAssertEqual(X[m * ld + n], orig[m * ld + n]) }  // untouched
            }
        }
    }

    /// The fused attention head: every SIMD ISA bit-exact with the scalar twin, the scalar twin
    /// within fp32 rounding of softmax(Q K^T) V in double, and the output's padding untouched.
    func testAttentionHeadEveryISA() {
        // |V| <= 2 and scores up to ~dh * 4: fp32 score rounding (~dh ulp) through exp.
        attentionCases(seed: 11, [(1, 64), (3, 16), (9, 64), (16, 64), (37, 24), (130, 64), (384, 64)],
                       scratch: qk_attention_scratch, head: qk_attention_head) { _, dh in 2e-5 * Double(dh) / 16 }
    }

    /// The int8 model's attention head (int16 products): every SIMD ISA bit-exact with the scalar
    /// twin, the scalar twin within its quantization error of softmax(Q K^T) V in double, the
    /// output's padding untouched, and an odd head size (its zero pad) handled.
    func testAttentionHeadInt16EveryISA() {
        XCTAssertEqual(qk_att16_qmax(32), 8191)
        XCTAssertEqual(qk_att16_qmax(64), 5792)
        // |Q|, |K|, |V| <= 2: a score's worst case is off by dh * 4 / qmax (0.044 at dh 64); with
        // rounding errors that mostly cancel, measured 0.02-0.11 of that at these sizes (worst
        // 0.0034 at L 130, dh 64), so the bound is a quarter of it plus two V steps.
        attentionCases(seed: 12, [(1, 64), (3, 16), (9, 64), (16, 32), (37, 24), (130, 64), (384, 32), (50, 7)],
                       scratch: qk_attention_i16_scratch, head: qk_attention_head_i16) { _, dh in
            0.25 * Double(dh) * 4 / Double(qk_att16_qmax(Int32(dh))) + 4 / 32767
        }
    }

    /// One attention kernel on random heads of (L, dh), Q/K/V interleaved at a row stride of
    /// 3 dh + 2 and in [-2, 2]: every SIMD ISA bit-exact with scalar, the padding column of the
    /// output untouched, and the scalar twin within bound(L, dh) of softmax(Q K^T) V in double.
    func attentionCases(seed: UInt64, _ sizes: [(Int, Int)], scratch: (Int32, Int32) -> Int,
                        head: (qk_isa, Int32, Int32, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
                               Int32, UnsafeMutablePointer<Float>?, Int32, UnsafeMutablePointer<Float>?) -> Void,
                        bound: (Int, Int) -> Double) {
        var rng = SplitMix64(seed: seed)
        for (L, dh) in sizes {
            let ld = 3 * dh + 2, ldo = dh + 1
            let qkv = (0..<(L * ld)).map { _ in Float.random(in: -2...2, using: &rng) }
            func run(_ isa: qk_isa) -> [Float] {
                var out = [Float](repeating: 7, count: L * ldo)
                var work = [Float](repeating: .nan, count: scratch(Int32(L), Int32(dh)))
                qkv.withUnsafeBufferPointer { p in
                    let b = p.baseAddress!
                    head(isa, Int32(L), Int32(dh), b, b + dh, b + 2 * dh, Int32(ld), &out, Int32(ldo), &work)
                }
                return out
            }
            let ref = run(QK_ISA_SCALAR)
            for isa in simdISAs {
                XCTAssertEqual(run(isa).map(\.bitPattern), ref.map(\.bitPattern), "\(isaName(isa)) L=\(L) dh=\(dh)")
            }
            var worst = 0.0
            for i in 0..<L {
                var p = (0..<L).map { j in (0..<dh).reduce(0.0) { $0 + Double(qkv[i * ld + $1]) * Double(qkv[j * ld + dh + $1]) } }
                let mx = p.max()!
                p = p.map { exp($0 - mx) }
                let sum = p.reduce(0, +)
                for c in 0..<ldo {
                    if c >= dh { XCTAssertEqual(ref[i * ldo + c], 7); continue }
                    let want = (0..<L).reduce(0.0) { $0 + p[$1] / sum * Double(qkv[$1 * ld + 2 * dh + c]) }
                    worst = max(worst, abs(Double(ref[i * ldo + c]) - want))
                }
            }
            XCTAssertLessThan(worst, bound(L, dh), "scalar L=\(L) dh=\(dh) vs double")
        }
    }

    func testLayerNorm() {
        for isa in [QK_ISA_SCALAR] + simdISAs { layerNormCase(isa) }
    }

    func layerNormCase(_ isa: qk_isa) {
        var rng = SplitMix64(seed: 8)
        for (M, D) in [(1, 1), (3, 7), (5, 384), (2, 768)] {
            let ld = D + 3
            let X = (0..<(M * ld)).map { _ in Float.random(in: -3...5, using: &rng) }
            let g = (0..<D).map { _ in Float.random(in: 0.5...1.5, using: &rng) }
            let b = (0..<D).map { _ in Float.random(in: -1...1, using: &rng) }
            let eps: Float = 1e-12
            var out = [Float](repeating: 0, count: M * ld)
            qk_layernorm(isa, Int32(M), Int32(D), X, Int32(ld), g, b, eps, &out, Int32(ld))
            var inPlace = X
            qk_layernorm(isa, Int32(M), Int32(D), inPlace, Int32(ld), g, b, eps, &inPlace, Int32(ld))
            for m in 0..<M {
                let row = (0..<D).map { Double(X[m * ld + $0]) }
                let mean = row.reduce(0, +) / Double(D)
                let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(D)
                let rstd = 1 / (v + Double(eps)).squareRoot()
                for i in 0..<D {
                    let ref = (row[i] - mean) * rstd * Double(g[i]) + Double(b[i])
                    XCTAssertEqual(Double(out[m * ld + i]), ref, accuracy: 1e-5 * (1 + abs(ref)), "\(isaName(isa)) M=\(M) D=\(D)")
                    XCTAssertEqual(inPlace[m * ld + i], out[m * ld + i])
                }
            }
        }
    }

    func testAdd() {
        var rng = SplitMix64(seed: 9)
        for isa in [QK_ISA_SCALAR] + simdISAs {
            for n in [0, 1, 7, 8, 33, 1000] {
                let x = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                var y = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
                let y0 = y
                qk_add(isa, n, x, &y)
                XCTAssertEqual(y, zip(x, y0).map { $0 + $1 }, isaName(isa))
            }
        }
    }

    /// Forcing an ISA the CPU lacks must fall back to scalar (and not crash with SIGILL).
    func testUnsupportedISAFallsBack() throws {
        let missing = allISAs.filter { qk_isa_supported($0) == 0 }
        if missing.isEmpty { throw XCTSkip("every ISA is supported here") }
        var rng = SplitMix64(seed: 10)
        let c = Int8Case(M: 5, N: 40, K: 70, mode: .random, rng: &rng)
        let ref = c.s32(QK_ISA_SCALAR, n0: 0, n1: 40, ldc: 40)
        for isa in missing + [qk_isa(rawValue: 77)] {
            XCTAssertEqual(c.s32(isa, n0: 0, n1: 40, ldc: 40), ref, isaName(isa))
        }
    }

    /// Runs one of the Tests/CKernelsC scripts; exit 77 means "tools missing" (skip).
    func runScript(_ name: String) throws -> String {
        #if !os(Linux)
        throw XCTSkip("\(name) runs on Linux only")
        #else
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [root.appendingPathComponent("Tests/CKernelsC/\(name)").path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let out = String(decoding: data, as: UTF8.self)
        if p.terminationStatus == 77 {
            throw XCTSkip("\(name) skipped: \(out.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        XCTAssertEqual(p.terminationStatus, 0, out)
        XCTAssertFalse(out.contains("FAIL"), out)
        XCTAssertTrue(out.contains(" passed, 0 failed"), out)
        return out
        #endif
    }

    /// The C checker built natively: same comparisons as above from C, plus proof (through a
    /// test hook) that each supported ISA's calls really run that ISA's kernels.
    func testNativeCChecker() throws {
        let out = try runScript("native.sh")
        for isa in simdISAs { XCTAssertTrue(out.contains("ISA \(isaName(isa)): checking"), out) }
    }

    /// AArch64 kernels: cross-compile the same sources + Tests/CKernelsC/kernel_check.c and run
    /// them under qemu-user with dotprod (-cpu max) and without (-cpu cortex-a53).
    func testArm64UnderQemu() throws {
        let out = try runScript("run.sh")
        XCTAssertTrue(out.contains("best ISA: neon-dotprod"), out)
        XCTAssertTrue(out.contains("best ISA: neon\n"), out)
    }

    /// The AVX-512 VNNI and AVX-VNNI files compiled against SIMDe's portable intrinsics and checked bit-exact
    /// against scalar: covers its logic on machines without AVX-512 (like the dev VM). On an
    /// AVX-512 machine the native kernels are also covered by the tests above.
    func testAVX512KernelsEmulated() throws {
        let out = try runScript("avx512_emulated.sh")
        XCTAssertTrue(out.contains("ISA avx512vnni: checking"), out)
        XCTAssertTrue(out.contains("ISA avxvnni: checking"), out)
    }
}
