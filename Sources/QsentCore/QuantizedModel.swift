import CKernels
import FoundationEssentials  // JSONEncoder for the meta section (no ICU)
import QsentTokenizer

/// An int8 linear layer ready for the blob: packed panels, per-channel scales, column sums.
public struct QuantizedLinear: Sendable {
    public var n: Int, k: Int
    public var packed: [Int8]
    public var colsum: [Int32]
    public var scale: [Float]
    public var bias: [Float]

    /// Packs row-major int8 weights [n][k] (values in [-127, 127]) into the kernel layout.
    public init(n: Int, k: Int, weights: [Int8], scale: [Float], bias: [Float]) {
        precondition(weights.count == n * k && scale.count == n && bias.count == n)
        precondition(weights.allSatisfy { $0 != -128 }, "int8 weights must lie in [-127, 127]")
        self.n = n
        self.k = k
        self.scale = scale
        self.bias = bias
        var packed = [Int8](repeating: 0, count: PackedS8.shape(n: n, k: k).reduce(1, *))
        var colsum = [Int32](repeating: 0, count: n)
        weights.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { p in
                colsum.withUnsafeMutableBufferPointer { c in
                    qk_pack_s8(Int32(n), Int32(k), w.baseAddress, Int32(k), p.baseAddress, c.baseAddress)
                }
            }
        }
        self.packed = packed
        self.colsum = colsum
    }
}

/// Everything a .qsent blob holds, in memory. The quantizer builds it; `blobBytes()` lays it out.
public struct QuantizedModel: Sendable {
    public typealias Layer = LayerTensors<QuantizedLinear, HFModel.Norm>

    public var meta: BlobMeta
    public var vocabulary: [String]
    public var words: [Int8]          // [vocab][dim]
    public var wordScales: [Float]    // [vocab]
    public var positions: [Float]     // [maxPositions][dim]
    public var embedNorm: HFModel.Norm
    public var layers: [Layer]
    public var pre: QuantizedLinear
    public var classifier: HFModel.Dense

    public init(meta: BlobMeta, vocabulary: [String], words: [Int8], wordScales: [Float], positions: [Float],
                embedNorm: HFModel.Norm, layers: [Layer], pre: QuantizedLinear, classifier: HFModel.Dense) {
        self.meta = meta; self.vocabulary = vocabulary; self.words = words; self.wordScales = wordScales
        self.positions = positions; self.embedNorm = embedNorm; self.layers = layers; self.pre = pre
        self.classifier = classifier
    }

    /// The blob, byte for byte (deterministic).
    public func blobBytes() throws -> [UInt8] {
        let c = meta.config
        var w = BlobWriter()
        // Compact with sorted keys, so the same model always makes the same bytes.
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let metaBytes = Array(try enc.encode(meta))
        w.add(BlobNames.meta, .bytes, shape: [metaBytes.count], bytes: metaBytes)
        let vocab = BlobWriter.vocabBytes(vocabulary)
        w.add(BlobNames.vocab, .bytes, shape: [vocab.count], bytes: vocab)
        let table = PieceTable.build(vocabulary: vocabulary, prefix: Array(meta.tokenizer.continuingSubwordPrefix.utf8))
        let pieces = BlobWriter.piecesBytes(table.parts)
        w.add(BlobNames.pieces, .bytes, shape: [pieces.count], bytes: pieces)
        w.add(BlobNames.words, int8s: words, shape: [c.vocabSize, c.dim])
        w.add(BlobNames.wordScales, floats: wordScales, shape: [c.vocabSize])
        w.add(BlobNames.positions, floats: positions, shape: [c.maxPositions, c.dim])
        func norm(_ p: String, _ n: HFModel.Norm) {
            w.add("\(p).gamma", floats: n.gamma, shape: [c.dim])
            w.add("\(p).beta", floats: n.beta, shape: [c.dim])
        }
        func lin(_ p: String, _ l: QuantizedLinear) {
            w.add("\(p).packed", int8s: l.packed, shape: PackedS8.shape(n: l.n, k: l.k))
            w.add("\(p).colsum", int32s: l.colsum, shape: [l.n])
            w.add("\(p).scale", floats: l.scale, shape: [l.n])
            w.add("\(p).bias", floats: l.bias, shape: [l.n])
        }
        norm(BlobNames.embedNorm, embedNorm)
        for (i, l) in layers.enumerated() {
            l.forEach(linear: { lin($0.section(layer: i), $1) }, norm: { norm($0.section(layer: i), $1) })
        }
        lin(BlobNames.pre, pre)
        w.add("\(BlobNames.classifier).weight", floats: classifier.weight, shape: [classifier.n, classifier.k])
        w.add("\(BlobNames.classifier).bias", floats: classifier.bias, shape: [classifier.n])
        return w.serialize()
    }
}
