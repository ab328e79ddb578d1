import CKernels

/// The encoder forward pass over a packed batch: every sequence's rows are concatenated
/// (no padding); linear layers run on all rows at once and attention runs per sequence.
struct Forward {
    let weights: ModelWeights
    let kernels: Kernels
    let attention: AttentionArithmetic

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

        // Embeddings: word + position (+ token type 0, folded into positions), then LayerNorm.
        var x = Matrix(uninitializedRows: total, cols: c.dim)
        kernels.embed(batch, weights.words, positions: weights.positions, into: &x)
        // A LayerNorm whose output feeds an int8 layer also quantizes its rows (bit-identical
        // to the layer's own quantization, see Kernels.addLayerNorm).
        let layers = weights.layers
        var xq = kernels.addLayerNorm(&x, residual: nil, weights.embedNorm, eps: c.layerNormEps,
                                      quantize: layers.first.map { $0.qkv.isInt8 } ?? false)

        let act: qk_act = c.activation == .gelu ? QK_ACT_GELU : QK_ACT_RELU
        for (i, layer) in layers.enumerated() {
            let qkv = kernels.linear(x, layer.qkv, pre: xq)
            let ctx = kernels.attention(qkv: qkv, dim: c.dim, heads: c.heads, spans: spans,
                                        int16: attention == .int16)
            var a = kernels.linear(ctx, layer.out)
            let aq = kernels.addLayerNorm(&a, residual: x, layer.attnNorm, eps: c.layerNormEps,
                                          quantize: layer.ffn1.isInt8)
            // GELU(FFN1)'s output rows are quantized for FFN2 by the parts that compute them.
            let (h, hq) = layer.ffn2.isInt8
                ? kernels.linearQuantizingOutput(a, layer.ffn1, act: act, pre: aq)
                : (kernels.linear(a, layer.ffn1, act: act, pre: aq), nil)
            var f = kernels.linear(h, layer.ffn2, pre: hq)
            xq = kernels.addLayerNorm(&f, residual: a, layer.outNorm, eps: c.layerNormEps,
                                      quantize: i + 1 < layers.count && layers[i + 1].qkv.isInt8)
            x = f
        }

        // Head on each sequence's first ([CLS]) row.
        var cls = Matrix(rows: batch.count, cols: c.dim)
        for (i, (start, _)) in spans.enumerated() {
            cls.data.replaceSubrange((i * c.dim)..<((i + 1) * c.dim), with: x.row(start))
        }
        var pooled: Matrix
        switch c.architecture {
        case .distilbert:
            pooled = kernels.linear(cls, weights.pre, act: QK_ACT_RELU)
        case .bert:
            pooled = kernels.linear(cls, weights.pre)
            kernels.tanh(&pooled)
        }
        let logits = kernels.linear(pooled, weights.classifier)
        return (0..<batch.count).map { Array(logits.row($0)) }
    }
}
