import CKernels
/// FP32 linear layer: weight [n][k] (PyTorch layout), bias [n].
struct DenseF32: Sendable {
    let n: Int
    let k: Int
    let weight: ConstBuffer<Float>
    let bias: ConstBuffer<Float>
}

/// int8 linear layer, as stored in a .qsent blob: packed panels (see ckernels.h), per-output-
/// channel scales, column sums for the VNNI shift, and an FP32 bias.
struct DenseS8: Sendable {
    let n: Int
    let k: Int
    let packed: ConstBuffer<Int8>
    let colsum: ConstBuffer<Int32>
    let scale: ConstBuffer<Float>
    let bias: ConstBuffer<Float>
    /// The kernels' `wmax`, a bound on |w| over `packed`: 127, or with `measure` the largest
    /// |w| there is (qk_s8_absmax, one pass over the weights), which lets the AVX2 kernel take
    /// its shorter exact step on 7-bit weights. A blob whose meta says 7-bit is measured, not
    /// trusted; the others skip the pass (about 1 ms per 10 MB of weights at load).
    let wmax: Int32

    init(n: Int, k: Int, packed: ConstBuffer<Int8>, colsum: ConstBuffer<Int32>, scale: ConstBuffer<Float>,
         bias: ConstBuffer<Float>, measure: Bool) {
        self.n = n; self.k = k; self.packed = packed; self.colsum = colsum; self.scale = scale; self.bias = bias
        wmax = measure ? packed.withPointer { Int32(qk_s8_absmax($0, packed.count)) } : 127
    }
}

enum Linear: Sendable {
    case f32(DenseF32)
    case s8(DenseS8)

    var n: Int { switch self { case .f32(let d): return d.n; case .s8(let d): return d.n } }
    var k: Int { switch self { case .f32(let d): return d.k; case .s8(let d): return d.k } }
}

struct LayerNormWeights: Sendable {
    let gamma: ConstBuffer<Float>
    let beta: ConstBuffer<Float>
}

/// Word embeddings: FP32 rows, or int8 rows with one scale per row.
enum EmbeddingTable: Sendable {
    case f32(ConstBuffer<Float>)
    case s8(rows: ConstBuffer<Int8>, scales: ConstBuffer<Float>)

    /// Elements in the table ([vocab][dim]).
    var count: Int {
        switch self {
        case .f32(let table): return table.count
        case .s8(let rows, _): return rows.count
        }
    }
}

/// One layer as the forward pass reads it (Q, K and V fused into one [3D][D] layer, the Q
/// third pre-scaled by 1/sqrt(head dim)); shapes from `LayerTensor`.
typealias EncoderLayer = LayerTensors<Linear, LayerNormWeights>

/// Architecture-neutral weights of a sequence classifier.
struct ModelWeights: Sendable {
    let config: ModelConfig
    let words: EmbeddingTable
    /// [maxPositions][dim]; for BERT the token-type-0 embedding is already added in.
    let positions: ConstBuffer<Float>
    let embedNorm: LayerNormWeights
    let layers: [EncoderLayer]
    /// DistilBERT pre_classifier (ReLU) or BERT pooler (tanh).
    let pre: Linear
    let classifier: Linear

    /// Width of the encoder's and head's linear weights: 32 (FP32), 8, or 7 when every int8
    /// layer's weights lie in [-63, 63] (`qsent-quantize --weight-bits 7`; the AVX2 kernel's
    /// narrow step, see ckernels.h).
    var weightBits: Int {
        var linears = [pre]
        for l in layers { l.forEach(linear: { _, d in linears.append(d) }, norm: { _, _ in }) }
        var widest = 0
        for l in linears {
            guard case .s8(let d) = l else { return 32 }
            widest = max(widest, Int(d.wmax))
        }
        return widest > 63 ? 8 : 7
    }
}

/// Tensor names of the two HF layouts.
struct TensorNames {
    let arch: Architecture

    var prefix: String { arch == .distilbert ? "distilbert" : "bert" }
    var words: String { "\(prefix).embeddings.word_embeddings.weight" }
    var positions: String { "\(prefix).embeddings.position_embeddings.weight" }
    var tokenTypes: String { "bert.embeddings.token_type_embeddings.weight" }
    var embedNorm: String { "\(prefix).embeddings.LayerNorm" }

    func layer(_ i: Int) -> String {
        arch == .distilbert ? "distilbert.transformer.layer.\(i)" : "bert.encoder.layer.\(i)"
    }
    func q(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).attention.q_lin" : "\(layer(i)).attention.self.query" }
    func k(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).attention.k_lin" : "\(layer(i)).attention.self.key" }
    func v(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).attention.v_lin" : "\(layer(i)).attention.self.value" }
    func out(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).attention.out_lin" : "\(layer(i)).attention.output.dense" }
    func attnNorm(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).sa_layer_norm" : "\(layer(i)).attention.output.LayerNorm" }
    func ffn1(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).ffn.lin1" : "\(layer(i)).intermediate.dense" }
    func ffn2(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).ffn.lin2" : "\(layer(i)).output.dense" }
    func outNorm(_ i: Int) -> String { arch == .distilbert ? "\(layer(i)).output_layer_norm" : "\(layer(i)).output.LayerNorm" }

    /// The HF tensor prefixes behind one of a layer's tensors: Q, K and V for the fused `qkv`
    /// (each a third of its rows), else one.
    func parts(_ role: LayerTensor, layer i: Int) -> [String] {
        switch role {
        case .qkv: return [q(i), k(i), v(i)]
        case .out: return [out(i)]
        case .attnNorm: return [attnNorm(i)]
        case .ffn1: return [ffn1(i)]
        case .ffn2: return [ffn2(i)]
        case .outNorm: return [outNorm(i)]
        }
    }
    var pre: String { arch == .distilbert ? "pre_classifier" : "bert.pooler.dense" }
    var classifier: String { "classifier" }

    /// Every tensor the model needs, with its shape: the contract checked by loaders and the quantizer.
    func expected(_ c: ModelConfig) -> [(String, [Int])] {
        var list: [(String, [Int])] = [
            (words, [c.vocabSize, c.dim]), (positions, [c.maxPositions, c.dim]),
            ("\(embedNorm).weight", [c.dim]), ("\(embedNorm).bias", [c.dim]),
        ]
        if arch == .bert { list.append((tokenTypes, [c.typeVocabSize, c.dim])) }
        func lin(_ p: String, _ n: Int, _ k: Int) { list.append(("\(p).weight", [n, k])); list.append(("\(p).bias", [n])) }
        func ln(_ p: String) { list.append(("\(p).weight", [c.dim])); list.append(("\(p).bias", [c.dim])) }
        for i in 0..<c.layers {
            for role in LayerTensor.allCases {
                let ps = parts(role, layer: i)
                switch role.shape(c) {
                case .linear(let n, let k): for p in ps { lin(p, n / ps.count, k) }
                case .norm: ps.forEach(ln)
                }
            }
        }
        lin(pre, c.dim, c.dim)
        lin(classifier, c.labels.count, c.dim)
        return list
    }
}

extension Checkpoint {
    /// Reads a LayerNorm's weight/bias, accepting the old gamma/beta names of early BERT checkpoints.
    func layerNorm(_ prefix: String, dim: Int) throws -> (gamma: [Float], beta: [Float]) {
        if tensor("\(prefix).weight") == nil, tensor("\(prefix).gamma") != nil {
            return (try floats("\(prefix).gamma", shape: [dim]), try floats("\(prefix).beta", shape: [dim]))
        }
        return (try floats("\(prefix).weight", shape: [dim]), try floats("\(prefix).bias", shape: [dim]))
    }

    func dense(_ prefix: String, n: Int, k: Int) throws -> (w: [Float], b: [Float]) {
        (try floats("\(prefix).weight", shape: [n, k]), try floats("\(prefix).bias", shape: [n]))
    }
}

/// The pieces of an HF checkpoint in qsent's arrangement, FP32. Both the FP32 engine and the
/// quantizer start from this, so there is one place that knows HF tensor names.
public struct HFModel: Sendable {
    public struct Dense: Sendable {
        public var n: Int, k: Int
        public var weight: [Float]  // [n][k]
        public var bias: [Float]
    }
    public struct Norm: Sendable { public var gamma: [Float], beta: [Float] }
    /// One layer; `qkv` is fused, its Q third pre-scaled by 1/sqrt(head dim).
    public typealias Layer = LayerTensors<Dense, Norm>

    public var config: ModelConfig
    public var words: [Float]      // [vocab][dim]
    public var positions: [Float]  // [maxPositions][dim] (+ token type 0 for BERT)
    public var embedNorm: Norm
    public var layers: [Layer]
    public var pre: Dense
    public var classifier: Dense

    /// Loads and rearranges an HF folder's weights (config.json + safetensors).
    public init(directory: String) throws {
        let config = try ModelConfig.load(directory: directory)
        let ckpt = try Checkpoint(directory: directory)
        try self.init(config: config, checkpoint: ckpt)
    }

    public init(config c: ModelConfig, checkpoint ck: Checkpoint) throws {
        let names = TensorNames(arch: c.architecture)
        config = c
        // The layer count must match the tensors actually present, before anything is sized
        // from it.
        let files = ck.files.map { $0.file.path }.joined(separator: ", ")
        let present = (0...c.layers).first { ck.tensor("\(names.q($0)).weight") == nil } ?? (c.layers + 1)
        guard present == c.layers else {
            throw SafetensorsError.badIndex(file: files, problem: present > c.layers
                ? "holds more than the \(c.layers) layers config.json declares; is config.json from the same model?"
                : "holds \(present) layers but config.json declares \(c.layers); is config.json from the same model?")
        }
        // Refuse tensors this architecture does not have: they mean a different model.
        let expected = Set(names.expected(c).map(\.0))
        for name in ck.tensorNames where !expected.contains(name) {
            let legacyNorm = name.hasSuffix("LayerNorm.gamma") || name.hasSuffix("LayerNorm.beta")
            let buffer = name.hasSuffix("embeddings.position_ids")  // a non-weight buffer in older checkpoints
            if !legacyNorm && !buffer {
                throw SafetensorsError.badIndex(file: files,
                                                problem: "unexpected tensor '\(name)' for \(c.architecture.rawValue); is config.json from the same model?")
            }
        }
        words = try ck.floats(names.words, shape: [c.vocabSize, c.dim])
        var pos = try ck.floats(names.positions, shape: [c.maxPositions, c.dim])
        if c.architecture == .bert {
            let types = try ck.floats(names.tokenTypes, shape: [c.typeVocabSize, c.dim])
            for p in 0..<c.maxPositions {
                for j in 0..<c.dim { pos[p * c.dim + j] += types[j] }
            }
        }
        positions = pos
        let en = try ck.layerNorm(names.embedNorm, dim: c.dim)
        embedNorm = Norm(gamma: en.gamma, beta: en.beta)
        let qScale = 1 / Float(c.headDim).squareRoot()
        var layers: [Layer] = []
        for i in 0..<c.layers {
            layers.append(try Layer(config: c, linear: { role, n, k in
                let ps = names.parts(role, layer: i)
                var w: [Float] = [], b: [Float] = []
                for (j, p) in ps.enumerated() {
                    var d = try ck.dense(p, n: n / ps.count, k: k)
                    if role == .qkv && j == 0 {  // Q
                        for x in d.w.indices { d.w[x] *= qScale }
                        for x in d.b.indices { d.b[x] *= qScale }
                    }
                    w += d.w
                    b += d.b
                }
                return Dense(n: n, k: k, weight: w, bias: b)
            }, norm: { role, d in
                let ln = try ck.layerNorm(names.parts(role, layer: i)[0], dim: d)
                return Norm(gamma: ln.gamma, beta: ln.beta)
            }))
        }
        self.layers = layers
        let p = try ck.dense(names.pre, n: c.dim, k: c.dim)
        pre = Dense(n: c.dim, k: c.dim, weight: p.w, bias: p.b)
        let cl = try ck.dense(names.classifier, n: c.labels.count, k: c.dim)
        classifier = Dense(n: c.labels.count, k: c.dim, weight: cl.w, bias: cl.b)
    }

    /// The FP32 reference weights for the engine.
    func weights() -> ModelWeights {
        func dense(_ d: Dense) -> Linear {
            .f32(DenseF32(n: d.n, k: d.k, weight: ConstBuffer(d.weight), bias: ConstBuffer(d.bias)))
        }
        func norm(_ n: Norm) -> LayerNormWeights { LayerNormWeights(gamma: ConstBuffer(n.gamma), beta: ConstBuffer(n.beta)) }
        return ModelWeights(
            config: config, words: .f32(ConstBuffer(words)), positions: ConstBuffer(positions),
            embedNorm: norm(embedNorm),
            layers: layers.map { $0.map(linear: { dense($1) }, norm: { norm($1) }) },
            pre: dense(pre), classifier: dense(classifier))
    }
}
