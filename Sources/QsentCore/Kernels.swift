import CKernels

/// The kernel layer: ISA choice, threading, and the Swift side of every C kernel call.
/// Raw pointers live only in the kernel layer (this file, Buffers.swift, QuantizedModel.swift's
/// call of the C packer, and the C kernels in CKernels), the model-image layer (MappedFile.swift,
/// Blob.swift, XXH64.swift over the loaded bytes) and the I/O layer (QsentIO, QsentSystemd).
public struct Kernels: Sendable {
    public let isa: qk_isa
    public let threads: Int
    /// The persistent kernel threads (shared by copies of this value; see ThreadPool).
    let pool: ThreadPool

    public enum Failure: Error, CustomStringConvertible {
        case unknownISA(String)
        case unsupportedISA(String)
        public var description: String {
            switch self {
            case .unknownISA(let s):
                return "unknown kernel ISA '\(s)'; use one of: \(Kernels.allNames.joined(separator: ", "))"
            case .unsupportedISA(let s):
                return "this CPU cannot run the '\(s)' kernels; supported here: \(Kernels.supportedNames.joined(separator: ", "))"
            }
        }
    }

    static let all: [qk_isa] = [QK_ISA_SCALAR, QK_ISA_AVX2, QK_ISA_AVXVNNI, QK_ISA_AVX512VNNI, QK_ISA_NEON, QK_ISA_NEON_DOTPROD]
    public static var allNames: [String] { all.map { String(cString: qk_isa_name($0)) } }
    public static var supportedNames: [String] { all.filter { qk_isa_supported($0) != 0 }.map { String(cString: qk_isa_name($0)) } }

    /// `name` nil means $QSENT_ISA, else the best the CPU supports.
    public init(isaName name: String?, threads: Int) throws {
        let wanted = name ?? qk_env_isa().map { String(cString: $0) }
        if let wanted {
            guard let isa = Self.all.first(where: { String(cString: qk_isa_name($0)) == wanted }) else {
                throw Failure.unknownISA(wanted)
            }
            guard qk_isa_supported(isa) != 0 else { throw Failure.unsupportedISA(wanted) }
            self.isa = isa
        } else {
            isa = qk_isa_best()
        }
        self.threads = max(1, threads)
        pool = ThreadPool(threads: self.threads)
    }

    public var isaName: String { String(cString: qk_isa_name(isa)) }

    /// Runs body(0..<parts) on the pool (the calling thread plus its workers).
    @inline(__always) func parallel(_ parts: Int, _ body: (Int) -> Void) {
        pool.run(parts: parts, body)
    }

    /// Splits [0, n) into `threads` chunks whose inner boundaries are multiples of 16.
    func chunks(_ n: Int) -> [(Int, Int)] {
        let t = min(threads, max(1, (n + 15) / 16))
        let panels = (n + 15) / 16
        var out: [(Int, Int)] = []
        var start = 0
        for i in 0..<t {
            let endPanel = panels * (i + 1) / t
            let end = min(n, endPanel * 16)
            if end > start { out.append((start, end)) }
            start = end
        }
        return out
    }

    /// One thread's share of an [m][n] GEMM output: rows [m0, m1) x channels [n0, n1).
    struct Tile { let m0: Int, m1: Int, n0: Int, n1: Int }

    /// Splits an m x n GEMM over the threads: by channels (multiples of 16) while every
    /// thread gets at least 4 panels of 16, else by rows when there are enough rows (small N:
    /// the classifier head, narrow layers), else by whatever channels there are.
    func tiles(m: Int, n: Int) -> [Tile] {
        let panels = (n + 15) / 16
        if panels < 4 * threads && m >= 4 * threads { return rowTiles(m: m, n: n) }
        return chunks(n).map { Tile(m0: 0, m1: m, n0: $0.0, n1: $0.1) }
    }

    /// Rows [0, m) split over the threads (one tile if m < 4 per thread), all n channels.
    func rowTiles(m: Int, n: Int) -> [Tile] {
        let t = m >= 4 * threads ? threads : 1
        return (0..<t).map { i in Tile(m0: m * i / t, m1: m * (i + 1) / t, n0: 0, n1: n) }
    }

    // MARK: linear layers

    /// y = act(x W^T + b) with FP32 weights W [n][k].
    func linear(_ x: Matrix, _ l: DenseF32, act: qk_act) -> Matrix {
        precondition(x.cols == l.k)
        var y = Matrix(uninitializedRows: x.rows, cols: l.n)
        let parts = tiles(m: x.rows, n: l.n)
        let n = Int32(l.n), k = Int32(l.k)
        let isa = self.isa
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                l.weight.withPointer { w in
                    l.bias.withPointer { b in
                        let xb = xp.baseAddress!, yb = yp.baseAddress!
                        parallel(parts.count) { i in
                            let t = parts[i]
                            qk_sgemm_nt(isa, Int32(t.m1 - t.m0), n, k, xb + t.m0 * l.k, k, w, k, b, act,
                                        yb + t.m0 * l.n, n, Int32(t.n0), Int32(t.n1))
                        }
                    }
                }
            }
        }
        return y
    }

    /// y = act((q(x) · Wq^T) * sx * sw + b) with int8 packed weights. The rows are quantized
    /// on the pool first (by rows), then the GEMM runs on it (see `tiles`); with a row split
    /// each thread quantizes and multiplies its own rows in one job. With `pre` (the rows of x
    /// already quantized by the op that produced x, see `addLayerNorm`), only the GEMM runs.
    func linear(_ x: Matrix, _ l: DenseS8, act: qk_act, pre: QuantizedRows? = nil) -> Matrix {
        precondition(x.cols == l.k)
        let kp = PackedS8.paddedK(l.k)
        if let pre {
            precondition(pre.rows == x.rows && pre.kp == kp && pre.scales.count == x.rows)
            return pre.q.withUnsafeBufferPointer { qp in
                pre.scales.withUnsafeBufferPointer { sp in
                    let parts = tiles(m: x.rows, n: l.n)
                    return gemmS8(rows: x.rows, qp.baseAddress!, sp.baseAddress!, l, act: act) { gemm in
                        parallel(parts.count) { i in gemm(parts[i]) }
                    }
                }
            }
        }
        var q = [Int8](unsafeUninitializedCapacity: x.rows * kp) { _, n in n = x.rows * kp }
        var scales = [Float](unsafeUninitializedCapacity: x.rows) { _, n in n = x.rows }
        let isa = self.isa
        let k = Int32(l.k)
        let parts = tiles(m: x.rows, n: l.n)
        let byRows = parts.count > 1 && parts[0].n1 == l.n && parts[0].n0 == 0
        let rowParts = byRows ? parts : rowTiles(m: x.rows, n: l.n)
        return x.data.withUnsafeBufferPointer { xp in
            q.withUnsafeMutableBufferPointer { qp in
                scales.withUnsafeMutableBufferPointer { sp in
                    let xb = xp.baseAddress!, qb = qp.baseAddress!, sb = sp.baseAddress!
                    func quantize(_ t: Tile) {
                        qk_quantize_rows_s8(isa, Int32(t.m1 - t.m0), k, xb + t.m0 * l.k, k,
                                            qb + t.m0 * kp, Int32(kp), sb + t.m0)
                    }
                    return gemmS8(rows: x.rows, qb, sb, l, act: act) { gemm in
                        if byRows {
                            parallel(parts.count) { i in quantize(parts[i]); gemm(parts[i]) }
                        } else {
                            parallel(rowParts.count) { i in quantize(rowParts[i]) }
                            parallel(parts.count) { i in gemm(parts[i]) }
                        }
                    }
                }
            }
        }
    }

    /// The output matrix of an int8 layer over quantized rows qb/sb: `schedule` receives the
    /// per-tile GEMM and runs it on the pool (with or without a quantization step before it).
    private func gemmS8(rows: Int, _ qb: UnsafePointer<Int8>, _ sb: UnsafePointer<Float>, _ l: DenseS8,
                        act: qk_act, _ schedule: ((Tile) -> Void) -> Void) -> Matrix {
        var y = Matrix(uninitializedRows: rows, cols: l.n)
        let isa = self.isa
        let n = Int32(l.n), k = Int32(l.k), kp = Int32(PackedS8.paddedK(l.k))
        y.data.withUnsafeMutableBufferPointer { yp in
            l.packed.withPointer { w in
                l.colsum.withPointer { cs in
                    l.scale.withPointer { ws in
                        l.bias.withPointer { b in
                            let yb = yp.baseAddress!
                            schedule { t in
                                qk_gemm_s8_f32(isa, Int32(t.m1 - t.m0), n, k, qb + t.m0 * Int(kp), kp,
                                               sb + t.m0, w, cs, ws, b, act, yb + t.m0 * l.n, n,
                                               Int32(t.n0), Int32(t.n1))
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// `pre`: x's rows already quantized for an int8 layer (ignored by an FP32 layer).
    func linear(_ x: Matrix, _ l: Linear, act: qk_act = QK_ACT_NONE, pre: QuantizedRows? = nil) -> Matrix {
        switch l {
        case .f32(let d): return linear(x, d, act: act)
        case .s8(let d): return linear(x, d, act: act, pre: pre)
        }
    }

    // MARK: elementwise

    /// x = LayerNorm(x + residual) in place (residual may be nil), split by rows over the pool
    /// (each part adds and normalizes its own rows; the same per-row arithmetic as one call).
    /// With `quantize`, each part then quantizes its rows while they are in cache (the int8
    /// layer that consumes x takes them as `pre`): the same kernels on the same rows as that
    /// layer's own quantization pass, so the result is bit-identical, minus one pass and one
    /// pool dispatch.
    @discardableResult
    func addLayerNorm(_ x: inout Matrix, residual: Matrix?, _ ln: LayerNormWeights, eps: Float,
                      quantize: Bool = false) -> QuantizedRows? {
        let cols = x.cols
        let d = Int32(cols)
        let kp = PackedS8.paddedK(cols)
        let parts = rowTiles(m: x.rows, n: cols)
        if let residual { precondition(residual.data.count == x.data.count) }
        let isa = self.isa
        let count = quantize ? x.rows : 0
        // `[]` when not quantizing, not `unsafeUninitializedCapacity: 0`: with capacity 0 the
        // stdlib stores the count into the shared empty-array singleton, a data race with every
        // other thread reading an empty array (ThreadSanitizer, qsentd's infer vs accept thread).
        var q: [Int8] = quantize ? [Int8](unsafeUninitializedCapacity: count * kp) { _, n in n = count * kp } : []
        var scales: [Float] = quantize ? [Float](unsafeUninitializedCapacity: count) { _, n in n = count } : []
        x.data.withUnsafeMutableBufferPointer { xp in
            q.withUnsafeMutableBufferPointer { qp in
                scales.withUnsafeMutableBufferPointer { sp in
                    ln.gamma.withPointer { g in
                        ln.beta.withPointer { b in
                            // (an empty array's buffer may still have a base address: test the flag)
                            let xb = xp.baseAddress!
                            let qb = quantize ? qp.baseAddress : nil, sb = quantize ? sp.baseAddress : nil
                            func run(_ rp: UnsafePointer<Float>?) {
                                parallel(parts.count) { i in
                                    let t = parts[i]
                                    let rows = xb + t.m0 * cols
                                    if let rp { qk_add(isa, (t.m1 - t.m0) * cols, rp + t.m0 * cols, rows) }
                                    qk_layernorm(isa, Int32(t.m1 - t.m0), d, rows, d, g, b, eps, rows, d)
                                    if let qb, let sb {
                                        qk_quantize_rows_s8(isa, Int32(t.m1 - t.m0), d, rows, d, qb + t.m0 * kp,
                                                            Int32(kp), sb + t.m0)
                                    }
                                }
                            }
                            if let residual {
                                residual.data.withUnsafeBufferPointer { run($0.baseAddress) }
                            } else {
                                run(nil)
                            }
                        }
                    }
                }
            }
        }
        return quantize ? QuantizedRows(q: q, scales: scales, rows: x.rows, kp: kp) : nil
    }

    /// x = tanh(x) in place (the BERT pooler).
    func tanh(_ x: inout Matrix) {
        let count = x.data.count
        x.data.withUnsafeMutableBufferPointer { qk_tanh(isa, count, $0.baseAddress) }
    }

    // MARK: attention

    /// Multi-head self-attention over a packed batch. `qkv` is [T][3D] (Q already scaled by
    /// 1/sqrt(head dim)); `spans` are the (start row, length) of each sequence. Returns [T][D].
    /// One fused kernel call per (sequence, head): scores, softmax and P·V per block of rows,
    /// without an L x L matrix (qk_attention_head); the (sequence, head) items are spread over
    /// the pool, each thread with its own scratch.
    func attention(qkv: Matrix, dim: Int, heads: Int, spans: [(Int, Int)]) -> Matrix {
        let dh = dim / heads
        var ctx = Matrix(uninitializedRows: qkv.rows, cols: dim)
        let maxLen = spans.map(\.1).max() ?? 0
        let work = spans.count * heads
        let workers = min(threads, work)
        let isa = self.isa
        let ld = Int32(3 * dim)
        let scratchCount = qk_attention_scratch(Int32(maxLen), Int32(dh))
        qkv.data.withUnsafeBufferPointer { qp in
            ctx.data.withUnsafeMutableBufferPointer { cp in
                let q = qp.baseAddress!, c = cp.baseAddress!
                parallel(workers) { w in
                    var scratch = [Float](unsafeUninitializedCapacity: scratchCount) { _, n in n = scratchCount }
                    scratch.withUnsafeMutableBufferPointer { sp in
                        var item = w
                        while item < work {
                            let (start, len) = spans[item / heads]
                            let h = item % heads
                            let qh = q + start * 3 * dim + h * dh
                            qk_attention_head(isa, Int32(len), Int32(dh), qh, qh + dim, qh + 2 * dim, ld,
                                              c + start * dim + h * dh, Int32(dim), sp.baseAddress)
                            item += workers
                        }
                    }
                }
            }
        }
        return ctx
    }
}

extension Linear {
    /// An int8 layer (its input rows get quantized).
    var isInt8: Bool { if case .s8 = self { return true } else { return false } }
}

/// Activation rows quantized for an int8 layer: q is [rows][kp] (kp = paddedK(cols), zero
/// padding), scales[rows], exactly what `Kernels.linear` would compute from the FP32 rows.
struct QuantizedRows {
    let q: [Int8]
    let scales: [Float]
    let rows: Int
    let kp: Int
}
