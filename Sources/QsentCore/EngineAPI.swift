/// How to run a model.
public struct EngineOptions: Sendable, Equatable {
    /// Worker threads for one inference (GEMMs are split across them).
    public var threads: Int
    /// Token limit (special tokens included); nil means the model's own default (384).
    public var maxTokens: Int?
    /// Force a kernel ISA by name ("scalar", "avx2", "avx512vnni", "neon", "neon-dotprod");
    /// nil means the environment variable QSENT_ISA, else the fastest the CPU supports.
    public var isa: String?
    /// The arithmetic of attention (Q·Kᵀ, softmax, P·V); nil means the model's default
    /// (`AttentionArithmetic.default(int8:)`).
    public var attention: AttentionArithmetic?

    public init(threads: Int = 2, maxTokens: Int? = nil, isa: String? = nil, attention: AttentionArithmetic? = nil) {
        self.threads = threads
        self.maxTokens = maxTokens
        self.isa = isa
        self.attention = attention
    }
}

/// How attention is computed. The linear layers' arithmetic is the model file's (FP32 for an
/// HF folder, int8 for a .qsent blob); attention has no weights, so it is chosen at load.
public enum AttentionArithmetic: String, Sendable, CaseIterable {
    /// FP32 scores, softmax and P·V (qk_attention_head).
    case fp32
    /// Q, K rows and V columns quantized to int16, probabilities to [0, 32767]; both products
    /// exact int32 sums (qk_attention_head_i16).
    case int16

    /// The default for a model whose linear layers are int8 (a blob) or FP32 (a folder): an int8
    /// model gets int16 attention, 1.3-1.5x faster than FP32's, whose own error (mean |Δlogit|
    /// 0.0007 at dim 768, RandomModelParityTests) is about 1/125 of the int8 layers'; an FP32
    /// model stays the exact reference.
    public static func `default`(int8: Bool) -> AttentionArithmetic { int8 ? .int16 : .fp32 }
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
    /// Attention arithmetic in use: "fp32" or "int16" (AttentionArithmetic).
    public var attention: String
    /// Bits of the linear layers' weights: 8, 7 (a blob made with --weight-bits 7), or 32 (FP32).
    public var weightBits: Int
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
