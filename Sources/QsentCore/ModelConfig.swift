internal import QsentIO
import QsentTokenizer

/// Encoder families qsent runs.
public enum Architecture: String, Sendable, Codable {
    /// DistilBertForSequenceClassification: no token types; head = pre_classifier + ReLU + classifier.
    case distilbert = "DistilBertForSequenceClassification"
    /// BertForSequenceClassification (BERT, MiniLM, TinyBERT…): token types; head = pooler (tanh) + classifier.
    case bert = "BertForSequenceClassification"
}

public enum Activation: String, Sendable, Codable {
    case gelu, relu
}

/// The geometry and labels of a sequence-classification encoder, from HF `config.json`.
public struct ModelConfig: Sendable, Equatable, Codable {
    public var architecture: Architecture
    public var dim: Int
    public var layers: Int
    public var heads: Int
    public var hidden: Int
    public var vocabSize: Int
    public var maxPositions: Int
    /// BERT only (0 for DistilBERT).
    public var typeVocabSize: Int
    public var activation: Activation
    public var layerNormEps: Float
    public var labels: [String]

    public var headDim: Int { dim / heads }

    public init(architecture: Architecture, dim: Int, layers: Int, heads: Int, hidden: Int,
                vocabSize: Int, maxPositions: Int, typeVocabSize: Int, activation: Activation,
                layerNormEps: Float, labels: [String]) {
        self.architecture = architecture
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.hidden = hidden
        self.vocabSize = vocabSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.activation = activation
        self.layerNormEps = layerNormEps
        self.labels = labels
    }
}

extension ModelConfig {
    /// Upper bounds on the geometry: far above any DistilBERT/BERT classifier (bert-large is
    /// dim 1024, 24 layers, FFN 4096; multilingual vocabularies ~250k), low enough that sizes
    /// derived from them cannot overflow and a hostile file cannot ask for absurd memory.
    public enum Limits {
        public static let dim = 16_384
        public static let layers = 256
        public static let hidden = 65_536
        public static let vocabSize = 1_048_576
        public static let maxPositions = 65_536
        public static let typeVocabSize = 1_024
        public static let labels = 65_536
    }

    /// What is wrong with this geometry, or nil if it is one the engine can run. Both loaders
    /// (config.json and a blob's meta section) refuse a config with a problem.
    public var problem: String? {
        func range(_ name: String, _ v: Int, _ lo: Int, _ hi: Int) -> String? {
            v >= lo && v <= hi ? nil : "\(name) is \(v), outside \(lo)…\(hi)"
        }
        let checks: [String?] = [
            range("dim", dim, 1, Limits.dim),
            range("layers", layers, 1, Limits.layers),
            range("heads", heads, 1, max(1, dim)),
            range("hidden (FFN size)", hidden, 1, Limits.hidden),
            range("vocab size", vocabSize, 1, Limits.vocabSize),
            range("max positions", maxPositions, 2, Limits.maxPositions),
            architecture == .bert ? range("type vocab size", typeVocabSize, 1, Limits.typeVocabSize)
                                  : range("type vocab size", typeVocabSize, 0, 0),
            range("labels", labels.count, 1, Limits.labels),
        ]
        if let first = checks.compactMap({ $0 }).first { return first }
        if dim % heads != 0 { return "dim \(dim) is not divisible by \(heads) heads" }
        if !(layerNormEps.isFinite && layerNormEps > 0 && layerNormEps < 1) {
            return "layer norm eps \(layerNormEps) is not a small positive number"
        }
        if let i = labels.firstIndex(where: \.isEmpty) { return "label \(i) is empty" }
        return nil
    }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let problem: String
    public var description: String { "\(file): \(problem)" }
}

extension ModelConfig {
    /// Reads `config.json` from an HF model folder.
    public static func load(directory: String) throws -> ModelConfig {
        let path = joinPath(directory, "config.json")
        // Regular files only: a FIFO or device in place of config.json is refused, not read.
        let bytes: [UInt8]
        do { bytes = try Files.readRegularFile(path, limit: 64 << 20) } catch {
            throw ConfigError(file: path, problem: "cannot read config.json (\(error)); is \(directory) a Hugging Face model folder?")
        }
        return try parse(bytes, file: path)
    }

    public static func parse(_ data: some Collection<UInt8>, file: String) throws -> ModelConfig {
        func fail(_ p: String) -> ConfigError { ConfigError(file: file, problem: p) }
        guard let root = try? HFJSON.parse(Array(data)), case .object(let j) = root else {
            throw fail("not a valid JSON object")
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let v = j[key] else {
                if let d { return d }
                throw fail("missing '\(key)'")
            }
            guard let i = v.int, i > 0 else {
                throw fail("'\(key)' must be a positive integer, got \(v)")
            }
            return i
        }
        func string(_ key: String) -> String? { j[key]?.string }

        var archName: String?
        if case .array(let names)? = j["architectures"], names.allSatisfy({ $0.string != nil }) { archName = names.first?.string }
        let modelType = string("model_type")
        let arch: Architecture
        switch (archName, modelType) {
        case ("DistilBertForSequenceClassification", _): arch = .distilbert
        case ("BertForSequenceClassification", _): arch = .bert
        case (nil, "distilbert"): arch = .distilbert
        case (nil, "bert"): arch = .bert
        case (let a?, _):
            throw fail("architecture '\(a)' is not supported; qsent runs DistilBertForSequenceClassification and BertForSequenceClassification")
        default:
            throw fail("no 'architectures' or known 'model_type'; qsent runs DistilBERT and BERT sequence classifiers")
        }

        var cfg: ModelConfig
        switch arch {
        case .distilbert:
            if j["sinusoidal_pos_embds"]?.bool == true {
                throw fail("sinusoidal_pos_embds=true is not supported; qsent needs learned position embeddings")
            }
            let act = string("activation") ?? "gelu"
            guard let a = Activation(rawValue: act) else {
                throw fail("activation '\(act)' is not supported (gelu or relu)")
            }
            cfg = ModelConfig(architecture: .distilbert,
                              dim: try int("dim"), layers: try int("n_layers"), heads: try int("n_heads"),
                              hidden: try int("hidden_dim"), vocabSize: try int("vocab_size"),
                              maxPositions: try int("max_position_embeddings"), typeVocabSize: 0,
                              activation: a, layerNormEps: 1e-12, labels: [])
        case .bert:
            let act = string("hidden_act") ?? "gelu"
            guard let a = Activation(rawValue: act) else {
                throw fail("hidden_act '\(act)' is not supported (gelu or relu; the tanh approximation 'gelu_new' is not)")
            }
            if let p = string("position_embedding_type"), p != "absolute" {
                throw fail("position_embedding_type '\(p)' is not supported (absolute only)")
            }
            if j["is_decoder"]?.bool == true { throw fail("decoder models are not supported") }
            var eps: Float = 1e-12
            if let e = j["layer_norm_eps"] {
                guard let n = e.number, n > 0 else { throw fail("'layer_norm_eps' must be a positive number") }
                eps = Float(n)
            }
            cfg = ModelConfig(architecture: .bert,
                              dim: try int("hidden_size"), layers: try int("num_hidden_layers"),
                              heads: try int("num_attention_heads"), hidden: try int("intermediate_size"),
                              vocabSize: try int("vocab_size"), maxPositions: try int("max_position_embeddings"),
                              typeVocabSize: try int("type_vocab_size", default: 2),
                              activation: a, layerNormEps: eps, labels: [])
        }

        // Labels: id2label with contiguous ids 0..<n, else num_labels generic names.
        if let id2label = j["id2label"] {
            guard case .object(let m) = id2label, !m.isEmpty else { throw fail("'id2label' must be a non-empty object") }
            var labels = [String](repeating: "", count: m.count)
            for (k, v) in m {
                guard let i = Int(k), i >= 0, i < m.count else {
                    throw fail("id2label keys must be the ids 0..<\(m.count), got '\(k)'")
                }
                guard let s = v.string, !s.isEmpty else { throw fail("id2label[\(k)] must be a non-empty string") }
                labels[i] = s
            }
            if case .object(let l2i)? = j["label2id"] {
                for (name, v) in l2i {
                    guard let i = v.int, i >= 0, i < labels.count, labels[i] == name else {
                        throw fail("label2id['\(name)'] disagrees with id2label")
                    }
                }
            }
            cfg.labels = labels
        } else {
            let n = try int("num_labels", default: 2)
            // Bounded before the names are made: num_labels 2e10 would allocate them all first.
            guard n <= Limits.labels else { throw fail("num_labels is \(n), outside 1…\(Limits.labels)") }
            cfg.labels = (0..<n).map { "LABEL_\($0)" }
        }
        if let n = j["num_labels"]?.int, n != cfg.labels.count {
            throw fail("num_labels \(n) disagrees with id2label's \(cfg.labels.count) labels")
        }
        if let problem = cfg.problem {
            throw fail("\(problem); is config.json from a \(cfg.architecture.rawValue) checkpoint?")
        }
        return cfg
    }
}

/// `dir/name` (NSString.appendingPathComponent's result for a plain file name).
func joinPath(_ dir: String, _ name: String) -> String {
    if dir.isEmpty { return name }
    return dir.hasSuffix("/") ? dir + name : dir + "/" + name
}

/// Everything before the last "/" ("." for a bare name, "/" for a file in the root).
func parentPath(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    guard let slash = p.lastIndex(of: "/") else { return "." }
    if slash == p.startIndex { return "/" }
    return String(p[..<slash])
}
