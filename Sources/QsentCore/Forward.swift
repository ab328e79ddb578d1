import CKernels

/// The encoder forward pass over a packed batch: every sequence's rows are concatenated
/// (no padding); linear layers run on all rows at once and attention runs per sequence.
/// All activations live in a `Workspace` laid out by `ActivationPlan`; the pass allocates
/// nothing else but a few small arrays.
struct Forward {
    let weights: ModelWeights
    let kernels: Kernels
    let attention: AttentionArithmetic
    let workspaces: WorkspacePool

    init(weights: ModelWeights, kernels: Kernels, attention: AttentionArithmetic,
         workspaces: WorkspacePool = WorkspacePool()) {
        self.weights = weights
        self.kernels = kernels
        self.attention = attention
        self.workspaces = workspaces
    }

    /// Logits for each token-id sequence (each already has [CLS] … [SEP]).
    func logits(_ batch: [[Int32]]) -> [[Float]] {
        let c = weights.config
        guard !batch.isEmpty else { return [] }
        var spans: [(Int, Int)] = []
        var total = 0
        for ids in batch {
            precondition(!ids.isEmpty && ids.count <= c.maxPositions, "sequence length outside 1…maxPositions")
            spans.append((total, ids.count))
            total += ids.count
        }
        let plan = ActivationPlan(weights: weights, tokens: total, sequences: batch.count,
                                  maxLength: spans.map(\.1).max() ?? 0, threads: kernels.threads,
                                  int16Attention: attention == .int16)
        return workspaces.with { workspace in
            let base = workspace.reserve(plan.bytes)
            workspace.guardGaps(bytes: plan.bytes, gaps: plan.gaps)
            return run(batch, spans: spans, plan.buffers(in: base))
        }
    }

    private func run(_ batch: [[Int32]], spans: [(Int, Int)], _ m: ActivationPlan.Buffers) -> [[Float]] {
        let c = weights.config
        // Embeddings: word + position (+ token type 0, folded into positions), then LayerNorm.
        let x = m.x
        kernels.embed(batch, weights.words, positions: weights.positions, into: x)
        // A LayerNorm whose output feeds an int8 layer also quantizes its rows (bit-identical
        // to the layer's own quantization, see Kernels.addLayerNorm).
        let layers = weights.layers
        var xq = kernels.addLayerNorm(x, residual: nil, weights.embedNorm, eps: c.layerNormEps,
                                      quantizeInto: layers.first?.qkv.isInt8 == true ? m.rowsQ : nil)

        // Each buffer is reused once what it held is dead (see ActivationPlan): x is the input
        // and, from FFN2 on, the output of every layer.
        let act: qk_act = c.activation == .gelu ? QK_ACT_GELU : QK_ACT_RELU
        for (i, layer) in layers.enumerated() {
            kernels.linear(x, layer.qkv, pre: xq, scratch: m.rowsQ, into: m.qkv)
            kernels.attention(qkv: m.qkv, dim: c.dim, heads: c.heads, spans: spans,
                              int16: attention == .int16, into: m.ctx, scratch: m.attentionScratch)
            kernels.linear(m.ctx, layer.out, scratch: m.rowsQ, into: m.a)
            let aq = kernels.addLayerNorm(m.a, residual: x, layer.attnNorm, eps: c.layerNormEps,
                                          quantizeInto: layer.ffn1.isInt8 ? m.rowsQ : nil)
            // GELU(FFN1)'s output rows are quantized for FFN2 by the parts that compute them.
            var hq: QuantizedRows? = nil
            if layer.ffn2.isInt8 {
                hq = kernels.linearQuantizingOutput(m.a, layer.ffn1, act: act, pre: aq, scratch: m.rowsQ,
                                                    into: m.h, output: m.hiddenQ)
            } else {
                kernels.linear(m.a, layer.ffn1, act: act, pre: aq, scratch: m.rowsQ, into: m.h)
            }
            kernels.linear(m.h, layer.ffn2, pre: hq, scratch: m.hiddenQ, into: x)
            xq = kernels.addLayerNorm(x, residual: m.a, layer.outNorm, eps: c.layerNormEps,
                                      quantizeInto: i + 1 < layers.count && layers[i + 1].qkv.isInt8 ? m.rowsQ : nil)
        }

        // Head on each sequence's first ([CLS]) row.
        for (i, (start, _)) in spans.enumerated() {
            m.cls.row(i).update(from: x.row(start), count: c.dim)
        }
        switch c.architecture {
        case .distilbert:
            kernels.linear(m.cls, weights.pre, act: QK_ACT_RELU, scratch: m.clsQ, into: m.pooled)
        case .bert:
            kernels.linear(m.cls, weights.pre, scratch: m.clsQ, into: m.pooled)
            kernels.tanh(m.pooled)
        }
        kernels.linear(m.pooled, weights.classifier, scratch: m.pooledQ, into: m.logits)
        return (0..<batch.count).map { Array(UnsafeBufferPointer(start: m.logits.row($0), count: m.logits.cols)) }
    }
}

/// Where a forward pass keeps its activations: one region of a `Workspace`, cut into the
/// buffers below (each 64-byte aligned). A buffer is reused once what it held is dead, so a
/// pass over T tokens of width D with FFN width F needs about T·(4D + kp(D) + 4·max(3D, F) +
/// max(4D, kp(F)) + 4D) bytes, about what the live activations of the widest step take:
///
/// | buffer     | holds, in the order of a layer                                   |
/// |------------|------------------------------------------------------------------|
/// | x          | the layer's input (and residual); FFN2's output, the next input  |
/// | rowsQ      | x quantized for QKV; ctx quantized for the output projection;    |
/// |            | a quantized for FFN1                                             |
/// | qkv / h    | QKV's output; after attention, FFN1's output                     |
/// | ctx / hq   | attention's output; after the output projection, h quantized     |
/// | a          | the output projection's output (FFN2's residual)                 |
///
/// plus each thread's attention scratch and the head's few rows per sequence. Between two
/// buffers lies a gap of at least `Workspace.gap` bytes, poisoned under AddressSanitizer.
struct ActivationPlan {
    let bytes: Int
    private let layout: [(offset: Int, bytes: Int)]
    /// The byte ranges between buffers (and after the last).
    var gaps: [Range<Int>] {
        layout.enumerated().map { i, b in
            (b.offset + b.bytes)..<(i + 1 < layout.count ? layout[i + 1].offset : bytes)
        }
    }
    private let tokens: Int, sequences: Int, dim: Int, hidden: Int, preN: Int, labels: Int

    init(weights: ModelWeights, tokens t: Int, sequences b: Int, maxLength: Int, threads: Int, int16Attention: Bool) {
        let c = weights.config
        let f = MemoryLayout<Float>.stride
        tokens = t
        sequences = b
        dim = c.dim
        hidden = c.hidden
        preN = weights.pre.n
        labels = weights.classifier.n
        let scratch = Kernels.attentionScratch(maxLength: maxLength, headDim: c.dim / c.heads, int16: int16Attention)
        let sizes = [
            t * dim * f,                                                  // x
            QuantizedRows.bytes(rows: t, cols: dim),                      // rowsQ
            t * max(3 * dim, hidden) * f,                                 // qkv / h
            max(t * dim * f, QuantizedRows.bytes(rows: t, cols: hidden)), // ctx / hq
            t * dim * f,                                                  // a
            threads * scratch * f,                                        // attention scratch
            b * dim * f,                                                  // cls
            QuantizedRows.bytes(rows: b, cols: dim),                      // cls quantized
            b * preN * f,                                                 // pooled
            QuantizedRows.bytes(rows: b, cols: preN),                     // pooled quantized
            b * labels * f,                                               // logits
        ]
        var offset = 0
        var layout: [(Int, Int)] = []
        for s in sizes {
            layout.append((offset, s))
            offset += Workspace.aligned(s + Workspace.gap)
        }
        self.layout = layout
        bytes = offset
    }

    /// The views of one pass.
    struct Buffers {
        let x: Matrix, rowsQ: QuantizedRows, qkv: Matrix, h: Matrix, ctx: Matrix, hiddenQ: QuantizedRows, a: Matrix
        let attentionScratch: UnsafeMutablePointer<Float>
        let cls: Matrix, clsQ: QuantizedRows, pooled: Matrix, pooledQ: QuantizedRows, logits: Matrix
    }

    /// The buffers at `base` (at least `bytes` bytes, 64-byte aligned).
    func buffers(in base: UnsafeMutableRawPointer) -> Buffers {
        func at(_ i: Int) -> UnsafeMutableRawPointer { base + layout[i].offset }
        func floats(_ i: Int, _ rows: Int, _ cols: Int) -> Matrix {
            precondition(rows * cols * MemoryLayout<Float>.stride <= layout[i].bytes)
            return Matrix(rows: rows, cols: cols, base: at(i).bindMemory(to: Float.self, capacity: rows * cols))
        }
        func quantized(_ i: Int, _ rows: Int, _ cols: Int) -> QuantizedRows {
            precondition(QuantizedRows.bytes(rows: rows, cols: cols) <= layout[i].bytes)
            return QuantizedRows(at: at(i), rows: rows, cols: cols)
        }
        let t = tokens, b = sequences
        return Buffers(
            x: floats(0, t, dim), rowsQ: quantized(1, t, dim),
            qkv: floats(2, t, 3 * dim), h: floats(2, t, hidden),
            ctx: floats(3, t, dim), hiddenQ: quantized(3, t, hidden),
            a: floats(4, t, dim),
            attentionScratch: at(5).bindMemory(to: Float.self, capacity: layout[5].bytes / MemoryLayout<Float>.stride),
            cls: floats(6, b, dim), clsQ: quantized(7, b, dim),
            pooled: floats(8, b, preN), pooledQ: quantized(9, b, preN),
            logits: floats(10, b, labels))
    }
}
