import CKernels
import Synchronization

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

    /// One thread's share of an [m][n] GEMM output: rows [m0, m1) x channels [n0, n1).
    struct Tile { let m0: Int, m1: Int, n0: Int, n1: Int }

    /// Rows per part of a row split: a multiple of the int8 micro-kernel's 4 rows, at least 16
    /// so that each part's pass over the weights (streamed from L2/L3 once per part) costs
    /// little beside its multiply-adds.
    static let minRowsPerPart = 16

    /// Parts per thread: the pool hands parts out one by one, so a thread that starts late
    /// (woken late, preempted by another process on a shared box) takes fewer of them instead
    /// of holding everyone up at the end of the job.
    static let partsPerThread = 4

    /// Splits an m x n GEMM into parts for the pool. By rows while there are enough of them
    /// (each part multiplies its rows by all the weights: every row's quantization and GEMM
    /// stay in one part, and no part repeats another's work), else by channels in multiples of
    /// 16 (short inputs: each part re-reads all the rows, which are few). One tile on one thread.
    func tiles(m: Int, n: Int) -> [Tile] {
        if threads == 1 { return [Tile(m0: 0, m1: m, n0: 0, n1: n)] }
        let rowParts = rowTiles(m: m, n: n)
        if rowParts.count >= 2 * threads { return rowParts }
        let parts = channelTiles(m: m, n: n, parts: Self.partsPerThread * threads)
        return parts.count > rowParts.count ? parts : rowParts
    }

    /// Channels [0, n) in up to `parts` parts whose inner boundaries are multiples of 16, all m rows.
    func channelTiles(m: Int, n: Int, parts: Int) -> [Tile] {
        let panels = (n + 15) / 16
        let p = max(1, min(panels, parts))
        return (0..<p).compactMap { i in
            let lo = min(n, panels * i / p * 16), hi = min(n, panels * (i + 1) / p * 16)
            return hi > lo ? Tile(m0: 0, m1: m, n0: lo, n1: hi) : nil
        }
    }

    /// Rows [0, m) in parts of a multiple of 4 rows (at least `minRowsPerPart`, at most
    /// `partsPerThread` parts per thread), all n channels. One part on one thread.
    func rowTiles(m: Int, n: Int) -> [Tile] {
        if threads == 1 || m < 2 * Self.minRowsPerPart { return [Tile(m0: 0, m1: m, n0: 0, n1: n)] }
        let parts = min(Self.partsPerThread * threads, m / Self.minRowsPerPart)
        let step = (m + parts - 1) / parts
        let rows = (step + 3) / 4 * 4
        return stride(from: 0, to: m, by: rows).map { Tile(m0: $0, m1: min(m, $0 + rows), n0: 0, n1: n) }
    }

    /// Quantizes rows [t.m0, t.m1) of the [m][cols] FP32 matrix at `x` to int8 rows of `kp`
    /// bytes at `q` with one scale each at `scales` (qk_quantize_rows_s8 on that tile's rows):
    /// the one way every op here quantizes activations, so the int8 rows an op hands its consumer
    /// are the bytes the consumer's own pass would make.
    @inline(__always) func quantizeRows(_ t: Tile, cols: Int, _ x: UnsafePointer<Float>, kp: Int,
                                        _ q: UnsafeMutablePointer<Int8>, _ scales: UnsafeMutablePointer<Float>) {
        qk_quantize_rows_s8(isa, Int32(t.m1 - t.m0), Int32(cols), x + t.m0 * cols, Int32(cols),
                            q + t.m0 * kp, Int32(kp), scales + t.m0)
    }

    // MARK: linear layers

    /// y = act(x W^T + b) with FP32 weights W [n][k].
    func linear(_ x: Matrix, _ l: DenseF32, act: qk_act, into y: Matrix) {
        precondition(x.cols == l.k && y.rows == x.rows && y.cols == l.n)
        // By channels, one part per thread: each part packs its own channels of W once for all
        // rows (a row split would pack all of W in every part).
        let parts = channelTiles(m: x.rows, n: l.n, parts: threads)
        let n = Int32(l.n), k = Int32(l.k)
        let isa = self.isa
        let xb = x.base, yb = y.base
        l.weight.withPointer { w in
            l.bias.withPointer { b in
                parallel(parts.count) { i in
                    let t = parts[i]
                    qk_sgemm_nt(isa, Int32(t.m1 - t.m0), n, k, xb + t.m0 * l.k, k, w, k, b, act,
                                yb + t.m0 * l.n, n, Int32(t.n0), Int32(t.n1))
                }
            }
        }
    }

    /// y = act((q(x) · Wq^T) * sx * sw + b) with int8 packed weights.
    ///
    /// x's rows are quantized into `scratch` first, unless `pre` holds them already (quantized
    /// by the op that produced x: `addLayerNorm`, or a previous `linear` with `quantizeOutput`).
    /// With `quantizeOutput` (the next consumer of y is an int8 layer, e.g. GELU(FFN1) feeding
    /// FFN2), y's rows are quantized into it for that consumer too. Every step runs on the pool
    /// split as `tiles` says: split by rows, each part quantizes its input rows, multiplies them
    /// and quantizes its output rows in one job, the output while it is still in cache; split by
    /// channels (short inputs), the quantizations are jobs of their own. The quantization is the
    /// same kernel on the same rows as the consumer's own pass would be: bit-identical.
    func linear(_ x: Matrix, _ l: DenseS8, act: qk_act, pre: QuantizedRows?, scratch: QuantizedRows?,
                into y: Matrix, quantizeOutput out: QuantizedRows? = nil) {
        precondition(x.cols == l.k && y.rows == x.rows && y.cols == l.n)
        let kp = PackedS8.paddedK(l.k)
        let rows = x.rows
        guard let input = pre ?? scratch else {
            preconditionFailure("an int8 layer needs its input rows quantized, or a buffer to quantize them into")
        }
        precondition(input.rows == rows && input.kp == kp)
        if let out { precondition(out.rows == rows && out.kp == PackedS8.paddedK(l.n)) }
        let quantizeInput = pre == nil
        let isa = self.isa
        let n = Int32(l.n), k = Int32(l.k)
        let parts = tiles(m: rows, n: l.n)
        let byRows = parts.count > 1 && parts[0].n0 == 0 && parts[0].n1 == l.n
        let rowParts = byRows ? parts : rowTiles(m: rows, n: l.n)
        let xb = x.base, yb = y.base, qb = input.q, sb = input.scales
        l.packed.withPointer { w in
            l.colsum.withPointer { cs in
                l.scale.withPointer { ws in
                    l.bias.withPointer { b in
                        func quantizeIn(_ t: Tile) {
                            if quantizeInput { quantizeRows(t, cols: l.k, xb, kp: kp, qb, sb) }
                        }
                        func gemm(_ t: Tile) {
                            qk_gemm_s8_f32(isa, Int32(t.m1 - t.m0), n, k, qb + t.m0 * kp, Int32(kp),
                                           sb + t.m0, w, cs, l.wmax, ws, b, act, yb + t.m0 * l.n, n,
                                           Int32(t.n0), Int32(t.n1))
                        }
                        func quantizeOut(_ t: Tile) {
                            if let out { quantizeRows(t, cols: l.n, yb, kp: out.kp, out.q, out.scales) }
                        }
                        if byRows {
                            parallel(parts.count) { i in quantizeIn(parts[i]); gemm(parts[i]); quantizeOut(parts[i]) }
                        } else {
                            if quantizeInput { parallel(rowParts.count) { i in quantizeIn(rowParts[i]) } }
                            parallel(parts.count) { i in gemm(parts[i]) }
                            if out != nil { parallel(rowParts.count) { i in quantizeOut(rowParts[i]) } }
                        }
                    }
                }
            }
        }
    }

    /// y = act(x W^T + b). `pre`: x's rows already quantized for an int8 layer; `scratch`: where
    /// an int8 layer quantizes them otherwise. An FP32 layer ignores both.
    func linear(_ x: Matrix, _ l: Linear, act: qk_act = QK_ACT_NONE, pre: QuantizedRows? = nil,
                scratch: QuantizedRows?, into y: Matrix) {
        switch l {
        case .f32(let d): linear(x, d, act: act, into: y)
        case .s8(let d): linear(x, d, act: act, pre: pre, scratch: scratch, into: y)
        }
    }

    /// `linear` whose output feeds an int8 layer: an int8 layer also quantizes its output rows
    /// into `output` for that layer and returns it; an FP32 layer returns nil (the consumer then
    /// quantizes them itself).
    func linearQuantizingOutput(_ x: Matrix, _ l: Linear, act: qk_act, pre: QuantizedRows?, scratch: QuantizedRows?,
                                into y: Matrix, output: QuantizedRows) -> QuantizedRows? {
        switch l {
        case .f32(let d):
            linear(x, d, act: act, into: y)
            return nil
        case .s8(let d):
            linear(x, d, act: act, pre: pre, scratch: scratch, into: y, quantizeOutput: output)
            return output
        }
    }

    // MARK: embeddings

    /// x's rows = the word embedding of each id + the position embedding of its place (token
    /// type 0 is folded into the positions), split by rows over the pool: on a 2-core box a
    /// serial pass would leave the other core spinning.
    func embed(_ batch: [[Int32]], _ words: EmbeddingTable, positions: ConstBuffer<Float>, into x: Matrix) {
        let d = x.cols
        var ids: [Int32] = [], places: [Int] = []
        ids.reserveCapacity(x.rows)
        places.reserveCapacity(x.rows)
        for seq in batch {
            ids.append(contentsOf: seq)
            places.append(contentsOf: seq.indices)
        }
        let vocab = words.count / d
        precondition(ids.count == x.rows && ids.allSatisfy { $0 >= 0 && Int($0) < vocab }, "token id outside the vocabulary")
        precondition(batch.allSatisfy { $0.count * d <= positions.count }, "sequence longer than the position table")
        let parts = rowTiles(m: x.rows, n: d)
        let xb = x.base
        positions.withPointer { pp in
            let pos = pp!
            func rows(_ t: Tile, _ word: (Int, UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> Void) {
                for r in t.m0..<t.m1 { word(Int(ids[r]), xb + r * d, pos + places[r] * d) }
            }
            switch words {
            case .f32(let table):
                table.withPointer { tp in
                    let tb = tp!
                    parallel(parts.count) { i in
                        rows(parts[i]) { id, o, p in
                            let w = tb + id * d
                            for j in 0..<d { o[j] = w[j] + p[j] }
                        }
                    }
                }
            case .s8(let table, let scales):
                table.withPointer { tp in
                    scales.withPointer { sp in
                        let tb = tp!, sb = sp!
                        parallel(parts.count) { i in
                            rows(parts[i]) { id, o, p in
                                let w = tb + id * d, s = sb[id]
                                for j in 0..<d { o[j] = Float(w[j]) * s + p[j] }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: elementwise

    /// x = LayerNorm(x + residual) in place (residual may be nil), split by rows over the pool
    /// (each part adds and normalizes its own rows; the same per-row arithmetic as one call).
    /// With `quantizeInto`, each part then quantizes its rows into it while they are in cache
    /// (the int8 layer that consumes x takes them as `pre`): the same kernels on the same rows
    /// as that layer's own quantization pass, so the result is bit-identical, minus one pass and
    /// one pool dispatch. Returns `quantizeInto`.
    @discardableResult
    func addLayerNorm(_ x: Matrix, residual: Matrix?, _ ln: LayerNormWeights, eps: Float,
                      quantizeInto q: QuantizedRows? = nil) -> QuantizedRows? {
        let cols = x.cols
        let d = Int32(cols)
        let parts = rowTiles(m: x.rows, n: cols)
        if let residual { precondition(residual.rows == x.rows && residual.cols == x.cols) }
        if let q { precondition(q.rows == x.rows && q.kp == PackedS8.paddedK(cols)) }
        let isa = self.isa
        let xb = x.base, rp = residual?.base
        ln.gamma.withPointer { g in
            ln.beta.withPointer { b in
                parallel(parts.count) { i in
                    let t = parts[i]
                    let rows = xb + t.m0 * cols
                    if let rp { qk_add(isa, (t.m1 - t.m0) * cols, rp + t.m0 * cols, rows) }
                    qk_layernorm(isa, Int32(t.m1 - t.m0), d, rows, d, g, b, eps, rows, d)
                    if let q { quantizeRows(t, cols: cols, xb, kp: q.kp, q.q, q.scales) }
                }
            }
        }
        return q
    }

    /// x = tanh(x) in place (the BERT pooler).
    func tanh(_ x: Matrix) {
        qk_tanh(isa, x.count, x.base)
    }

    // MARK: attention

    /// Floats of scratch one thread of `attention` needs for sequences of up to `maxLength` tokens.
    static func attentionScratch(maxLength: Int, headDim: Int, int16: Bool) -> Int {
        int16 ? qk_attention_i16_scratch(Int32(maxLength), Int32(headDim))
              : qk_attention_scratch(Int32(maxLength), Int32(headDim))
    }

    /// Multi-head self-attention over a packed batch. `qkv` is [T][3D] (Q already scaled by
    /// 1/sqrt(head dim)); `spans` are the (start row, length) of each sequence; writes [T][D]
    /// into `ctx`. One fused kernel call per (sequence, head): scores, softmax and P·V per block
    /// of rows, without an L x L matrix (qk_attention_head); the (sequence, head) items are
    /// claimed one at a time by the pool's threads, each thread with its own part of `scratch`
    /// (`threads` parts of `attentionScratch` floats). `int16`: both products in exact int16
    /// arithmetic (qk_attention_head_i16); otherwise FP32 (qk_attention_head).
    func attention(qkv: Matrix, dim: Int, heads: Int, spans: [(Int, Int)], int16: Bool,
                   into ctx: Matrix, scratch: UnsafeMutablePointer<Float>) {
        precondition(qkv.cols == 3 * dim && ctx.rows == qkv.rows && ctx.cols == dim)
        let dh = dim / heads
        let maxLen = spans.map(\.1).max() ?? 0
        let work = spans.count * heads
        let workers = min(threads, work)
        let next = WorkCounter()
        let isa = self.isa
        let ld = Int32(3 * dim)
        let scratchCount = Self.attentionScratch(maxLength: maxLen, headDim: dh, int16: int16)
        let head = int16 ? qk_attention_head_i16 : qk_attention_head
        let q = qkv.base, c = ctx.base
        parallel(workers) { part in
            let sp = scratch + part * scratchCount
            // Items are claimed one by one: a thread that starts late takes fewer.
            while case let item = next.take(), item < work {
                let (start, len) = spans[item / heads]
                let h = item % heads
                let qh = q + start * 3 * dim + h * dh
                head(isa, Int32(len), Int32(dh), qh, qh + dim, qh + 2 * dim, ld,
                     c + start * dim + h * dh, Int32(dim), sp)
            }
        }
    }
}

/// A shared counter that hands out 0, 1, 2, … to the threads of one pool job.
final class WorkCounter: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

extension Linear {
    /// An int8 layer (its input rows get quantized).
    var isInt8: Bool { if case .s8 = self { return true } else { return false } }
}
