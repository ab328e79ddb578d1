import QsentIO
import SystemPackage
import QsentCore
import QsentTokenizer

/// How one tensor was stored, for the summary.
public struct TensorReport: Sendable {
    public var name: String
    public var shape: [Int]
    /// "int8/channel" (or "int8/channel, 7-bit"), "int8/row" or "fp32".
    public var storage: String
    public var bytes: Int
    /// max |W - dequant(q(W))| / max |W| over the tensor (0 for fp32): about half a step.
    public var maxRelError: Float
    /// ||W - dequant(q(W))|| / ||W|| (Frobenius; 0 for fp32): how much of the layer is noise.
    public var rmsRelError: Float
}

public struct QuantizeReport: Sendable {
    public var tensors: [TensorReport]
    public var sourceBytes: Int
    /// The tensor with the largest relative RMS reconstruction error.
    public var worst: TensorReport? { tensors.max { $0.rmsRelError < $1.rmsRelError } }
}

/// HF folder -> QuantizedModel. The scheme (docs/FORMAT.md, "What is quantized"):
/// - every Linear of the encoder and the pre_classifier/pooler: symmetric int8 weights in
///   [-127, 127], one scale per output channel (max |row| / 127); with 7-bit weights
///   (`weightBits: 7`) in [-63, 63] (max |row| / 63), which the AVX2 kernel runs faster;
/// - word embeddings: int8, one scale per row (token);
/// - FP32: biases, LayerNorms, position embeddings, and the tiny classifier (labels x dim).
public enum Quantizer {
    public static let scheme = "int8 symmetric per-output-channel weights; int8 per-row word embeddings; fp32 biases, LayerNorm, positions, classifier"

    /// Bits of the linear layers' weights: 8 ([-127, 127]) or 7 ([-63, 63]).
    public static let weightBitChoices = [7, 8]

    public enum Failure: Error, CustomStringConvertible {
        case weightBits(Int)
        public var description: String {
            switch self {
            case .weightBits(let b): return "unsupported weight width \(b) bits; use 8 (the default) or 7 (faster on CPUs without VNNI)"
            }
        }
    }

    /// Symmetric per-row quantization of a row-major [n][k] matrix to [-qmax, qmax], rounding
    /// half away from zero.
    public static func quantizeRows(_ w: [Float], n: Int, k: Int, qmax: Float = 127) -> (q: [Int8], scale: [Float], maxRelError: Float, rmsRelError: Float) {
        precondition(w.count == n * k)
        var q = [Int8](repeating: 0, count: n * k)
        var scale = [Float](repeating: 1, count: n)
        var maxErr: Float = 0, maxAbs: Float = 0
        var errSq: Double = 0, normSq: Double = 0
        for r in 0..<n {
            var amax: Float = 0
            for j in 0..<k { amax = max(amax, abs(w[r * k + j])) }
            maxAbs = max(maxAbs, amax)
            guard amax > 0 else { continue }  // an all-zero row: scale 1, zeros
            let s = amax / qmax
            scale[r] = s
            for j in 0..<k {
                let v = (w[r * k + j] / s).rounded(.toNearestOrAwayFromZero)
                let qi = Int8(max(-qmax, min(qmax, v)))
                q[r * k + j] = qi
                let e = w[r * k + j] - Float(qi) * s
                maxErr = max(maxErr, abs(e))
                errSq += Double(e * e)
                normSq += Double(w[r * k + j] * w[r * k + j])
            }
        }
        return (q, scale, maxAbs > 0 ? maxErr / maxAbs : 0, normSq > 0 ? Float((errSq / normSq).squareRoot()) : 0)
    }

    /// Quantizes an HF model folder. `progress(done, total, name)` is called per step.
    public static func quantize(directory: String, maxTokens: Int, modelName: String? = nil, weightBits: Int = 8,
                                progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> (QuantizedModel, QuantizeReport) {
        guard weightBitChoices.contains(weightBits) else { throw Failure.weightBits(weightBits) }
        let qmax = Float((1 << (weightBits - 1)) - 1)
        let hf = try HFModel(directory: directory)
        let tokenizer = try WordPieceTokenizer.load(directory: directory)
        let c = hf.config
        guard tokenizer.vocabularyCount <= c.vocabSize else {
            throw EngineError.vocabularyMismatch(path: directory, tokenizer: tokenizer.vocabularyCount, model: c.vocabSize)
        }
        guard maxTokens >= 2, maxTokens <= c.maxPositions else {
            throw EngineError.badMaxTokens(maxTokens, limit: c.maxPositions)
        }
        var reports: [TensorReport] = []
        let total = 2 + 4 * c.layers + 1
        var done = 0
        func step(_ name: String) { done += 1; progress(done, total, name) }

        func linear(_ name: String, _ d: HFModel.Dense) -> QuantizedLinear {
            let (q, s, err, rms) = quantizeRows(d.weight, n: d.n, k: d.k, qmax: qmax)
            reports.append(TensorReport(name: name, shape: [d.n, d.k], storage: weightBits == 8 ? "int8/channel" : "int8/channel, 7-bit",
                                        bytes: d.n * d.k + 12 * d.n, maxRelError: err, rmsRelError: rms))
            step(name)
            return QuantizedLinear(n: d.n, k: d.k, weights: q, scale: s, bias: d.bias)
        }

        let (words, wordScales, wordErr, wordRms) = quantizeRows(hf.words, n: c.vocabSize, k: c.dim)
        reports.append(TensorReport(name: "embeddings.words", shape: [c.vocabSize, c.dim], storage: "int8/row",
                                    bytes: c.vocabSize * (c.dim + 4), maxRelError: wordErr, rmsRelError: wordRms))
        step("embeddings.words")
        reports.append(TensorReport(name: "embeddings.positions", shape: [c.maxPositions, c.dim], storage: "fp32",
                                    bytes: 4 * hf.positions.count, maxRelError: 0, rmsRelError: 0))
        step("embeddings.positions")
        var layers: [QuantizedModel.Layer] = []
        for (i, l) in hf.layers.enumerated() {
            layers.append(l.map(linear: { role, d in linear(role.section(layer: i), d) }, norm: { $1 }))
        }
        let pre = linear("head.pre", hf.pre)
        reports.append(TensorReport(name: "head.classifier", shape: [hf.classifier.n, hf.classifier.k], storage: "fp32",
                                    bytes: 4 * (hf.classifier.weight.count + hf.classifier.n), maxRelError: 0, rmsRelError: 0))
        let name = try modelName ?? folderName(directory)
        // weight_bits only when it is not the default 8, so an 8-bit blob's bytes stay what they were.
        var facts = ["scheme": scheme, "quantizer": "qsent-quantize \(QsentVersion.string)"]
        if weightBits != 8 { facts["weight_bits"] = "\(weightBits)" }
        let meta = BlobMeta(modelName: name, config: c, maxTokens: maxTokens, tokenizer: tokenizer.settings,
                            quantization: facts)
        let model = QuantizedModel(meta: meta, vocabulary: tokenizer.vocabulary, words: words, wordScales: wordScales,
                                   positions: hf.positions, embedNorm: hf.embedNorm, layers: layers, pre: pre,
                                   classifier: hf.classifier)
        let ck = try Checkpoint(directory: directory)
        let sourceBytes = ck.files.reduce(0) { $0 + $1.file.count }
        return (model, QuantizeReport(tensors: reports, sourceBytes: sourceBytes))
    }
}

/// Writes bytes to `path` atomically: a temporary file in the same directory, fsync, rename.
/// On any failure the temporary file is removed and `path` is untouched.
public enum AtomicFile {
    public enum Failure: Error, CustomStringConvertible {
        case exists(String)
        case write(String, String)
        public var description: String {
            switch self {
            case .exists(let p): return "\(p) already exists; pass --force to replace it"
            case .write(let p, let why): return "cannot write \(p): \(why)"
            }
        }
    }

    public static func write(_ bytes: [UInt8], to path: String, force: Bool) throws {
        if Files.exists(path) && !force { throw Failure.exists(path) }
        let file = FilePath(path)
        var dir = file.removingLastComponent()
        if dir.isEmpty { dir = "." }
        guard let name = file.lastComponent?.string else { throw Failure.write(path, "not a file name") }
        // O_EXCL on a random name: no other writer (another qsent-quantize) can share it.
        let tmp = dir.appending(".\(name).tmp-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))").string
        var ok = false
        defer { if !ok { try? Files.remove(tmp) } }
        do {
            let fd = try FileDescriptor.open(FilePath(tmp), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                             permissions: [.ownerReadWrite, .groupRead, .otherRead])
            try fd.closeAfter {
                _ = try fd.writeAll(bytes)
                try Files.sync(fd, context: tmp)
            }
            try Files.rename(tmp, to: path)
        } catch let e as IOError {
            throw Failure.write(path, "\(e.errno)")
        } catch {
            throw Failure.write(path, "\(error)")
        }
        ok = true
    }
}

/// The folder's own name, as its absolute, normalized path ends (so "." and "dir/" name the
/// folder, not "." or "").
func folderName(_ directory: String) throws -> String {
    var p = FilePath(directory)
    if !p.isAbsolute { p = FilePath(try Files.currentDirectory()).pushing(p) }
    return p.lexicallyNormalized().lastComponent?.string ?? "/"
}
