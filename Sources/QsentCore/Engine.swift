internal import QsentIO
import QsentTokenizer
import RealModule

/// A loaded model: tokenizer + weights + forward pass. Reentrant: `classify` may be called
/// from several threads at once (each call in flight has a workspace of its own, see `Workspace`).
public final class Engine: Sendable {
    public let info: ModelInfo
    public let tokenizer: WordPieceTokenizer
    let forward: Forward

    /// The default token limit, as on the reference model card.
    public static let defaultMaxTokens = 384

    /// Loads an HF model folder (FP32 reference path) or a `.qsent` blob (int8 path).
    public init(path: String, options: EngineOptions = EngineOptions()) throws {
        let kernels = try Kernels(isaName: options.isa, threads: options.threads)
        let weights: ModelWeights
        let name: String, checksum: String, precision: String, defaultMax: Int
        if try Self.isFolder(path) {
            let hf = try HFModel(directory: path)
            tokenizer = try WordPieceTokenizer.load(directory: path)
            weights = hf.weights()
            name = Self.lastComponent(path)
            checksum = try Self.folderChecksum(path)
            precision = "fp32"
            defaultMax = Self.defaultMaxTokens
        } else {
            let blob = try Blob(path: path)
            tokenizer = try blob.tokenizer()
            weights = try blob.weights()
            name = blob.modelName
            checksum = blob.checksumHex
            precision = "int8"
            defaultMax = blob.maxTokens
        }
        let c = weights.config
        guard tokenizer.vocabularyCount <= c.vocabSize else {
            throw EngineError.vocabularyMismatch(path: path, tokenizer: tokenizer.vocabularyCount, model: c.vocabSize)
        }
        let maxTokens = options.maxTokens ?? defaultMax
        guard maxTokens >= 2, maxTokens <= c.maxPositions else {
            throw EngineError.badMaxTokens(maxTokens, limit: c.maxPositions)
        }
        let attention = options.attention ?? .default(int8: precision == "int8")
        forward = Forward(weights: weights, kernels: kernels, attention: attention)
        info = ModelInfo(name: name, architecture: c.architecture.rawValue, labels: c.labels,
                         maxTokens: maxTokens, isa: kernels.isaName, precision: precision,
                         checksum: checksum, path: path, attention: attention.rawValue,
                         weightBits: weights.weightBits)
    }

    public var config: ModelConfig { forward.weights.config }

    /// The tokenizer of an HF folder or a .qsent blob, with the token limit the model defaults
    /// to, without loading any weights (`qsent tokenize`).
    public static func tokenizer(path: String) throws -> (WordPieceTokenizer, defaultMaxTokens: Int) {
        if try isFolder(path) { return (try WordPieceTokenizer.load(directory: path), defaultMaxTokens) }
        let blob = try Blob(path: path)
        return (try blob.tokenizer(), blob.maxTokens)
    }

    /// Tokenizes as the engine does (truncated to `info.maxTokens`).
    public func encode(_ text: String) -> TokenEncoding {
        tokenizer.encode(text, maxTokens: info.maxTokens)
    }

    /// Classifies texts; several texts run as one packed batch.
    public func classify(_ texts: [String]) -> [Classification] {
        classify(encodings: texts.map(encode))
    }

    /// Classifies already-tokenized inputs.
    public func classify(encodings: [TokenEncoding]) -> [Classification] {
        let logits = forward.logits(encodings.map(\.ids))
        return zip(encodings, logits).map { enc, l in
            let (best, p) = Self.softmaxArgmax(l)
            return Classification(labelId: best, label: info.labels[best], score: p, logits: l,
                                  tokens: enc.nTokens, truncated: enc.truncated)
        }
    }

    /// Unmaps the activation memory kept for the next inference (the workspaces of the passes
    /// not in flight, see `Workspace`); the next inference maps and faults it in again. qsentd
    /// calls it once a burst is over, as it trims malloc's heap.
    public func releaseIdleMemory() {
        forward.workspaces.releaseIdle()
    }

    /// Bytes mapped for activations (the workspaces of all passes, as of the end of the last
    /// one; a pass in flight that grew its workspace counts once it ends).
    public var activationBytes: Int { forward.workspaces.mappedBytes }

    /// Raw logits for token-id sequences (each with [CLS] … [SEP], at most maxPositions long).
    public func logits(ids batch: [[Int32]]) -> [[Float]] {
        forward.logits(batch)
    }

    static func softmaxArgmax(_ l: [Float]) -> (Int, Float) {
        var best = 0
        for i in l.indices where l[i] > l[best] { best = i }
        var sum: Double = 0
        for v in l { sum += Double.exp(Double(v - l[best])) }  // RealModule (swift-numerics)
        return (best, Float(1 / sum))
    }

    /// Whether `path` is an HF folder (a directory) rather than a blob; refuses a missing path.
    static func isFolder(_ path: String) throws -> Bool {
        do {
            return try Files.status(path).kind == .directory
        } catch {
            if error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory { throw EngineError.notFound(path) }
            throw EngineError.unreadable(path, "\(error)")
        }
    }

    /// The last path component, ignoring trailing slashes ("models/imdb/" -> "imdb").
    static func lastComponent(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        return String(p.split(separator: "/").last ?? p)
    }

    /// A cheap identity for an HF folder: FNV-1a over the names, sizes and mtimes (ns) of its files.
    static func folderChecksum(_ dir: String) throws -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for f in try Files.list(directory: dir) {
            let st = try Files.status(dir + "/" + f)
            for b in "\(f):\(st.size):\(st.modifiedNanos);".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        return String(h, radix: 16)
    }
}

public enum EngineError: Error, CustomStringConvertible {
    case notFound(String)
    case unreadable(String, String)
    case vocabularyMismatch(path: String, tokenizer: Int, model: Int)
    case badMaxTokens(Int, limit: Int)

    public var description: String {
        switch self {
        case .notFound(let p):
            return "\(p): no such model; pass an HF model folder or a .qsent blob"
        case .unreadable(let p, let e):
            return "\(p): cannot examine the model path (\(e)); check its permissions"
        case .vocabularyMismatch(let p, let t, let m):
            return "\(p): the tokenizer has \(t) tokens but the model's vocab_size is \(m); tokenizer and weights do not belong together"
        case .badMaxTokens(let n, let limit):
            return "max tokens \(n) is out of range: use 2…\(limit) (the model's max_position_embeddings)"
        }
    }
}
