/// How to run a model.
public struct EngineOptions: Sendable, Equatable {
    /// Worker threads for one inference (GEMMs are split across them).
    public var threads: Int
    /// Token limit (special tokens included); nil means the model's own default (384).
    public var maxTokens: Int?
    /// Force a kernel ISA by name ("scalar", "avx2", "avx512vnni", "neon", "neon-dotprod");
    /// nil means the environment variable QSENT_ISA, else the fastest the CPU supports.
    public var isa: String?

    public init(threads: Int = 2, maxTokens: Int? = nil, isa: String? = nil) {
        self.threads = threads
        self.maxTokens = maxTokens
        self.isa = isa
    }
}

/// What a loaded model is, for `info` answers and logs.
public struct ModelInfo: Sendable, Equatable {
    /// Model name: the blob's recorded name, or the HF folder's name.
    public var name: String
    /// Architecture as in config.json, e.g. "DistilBertForSequenceClassification".
    public var architecture: String
    /// Labels by id.
    public var labels: [String]
    /// Effective token limit (special tokens included).
    public var maxTokens: Int
    /// Kernel ISA in use, e.g. "avx512vnni".
    public var isa: String
    /// "int8" for .qsent blobs, "fp32" for HF folders.
    public var precision: String
    /// Hex checksum identifying the model file(s) (for blobs: the blob's whole-file checksum).
    public var checksum: String
    /// Path the model was loaded from.
    public var path: String
}

/// One classified text.
public struct Classification: Sendable, Equatable {
    public var labelId: Int
    public var label: String
    /// Softmax probability of the winning label.
    public var score: Float
    public var logits: [Float]
    /// Untruncated token count (special tokens included).
    public var tokens: Int
    /// True if the text was cut to maxTokens.
    public var truncated: Bool
}
