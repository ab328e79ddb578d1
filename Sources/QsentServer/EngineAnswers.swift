import QsentCore
import QsentProtocol

// The engine's results as protocol values: the one place where engine types become answers.
// `qsent classify --model` uses these too, so in-process and daemon output are identical.

extension ClassificationResult {
    public init(_ c: Classification) {
        self.init(label: c.label, labelId: c.labelId, score: c.score, logits: c.logits, tokens: c.tokens, truncated: c.truncated)
    }
}

extension InfoAnswer {
    /// The `info` answer for a loaded model and the daemon's request limits.
    init(_ i: ModelInfo, config: DaemonConfig) {
        self.init(model: i.name, architecture: i.architecture, labels: i.labels, maxTokens: i.maxTokens, isa: i.isa,
                  precision: i.precision, checksum: i.checksum, path: i.path, version: QsentVersion.string,
                  maxBatch: config.maxBatch, maxLineBytes: config.maxLineBytes)
    }
}

extension ReloadAnswer {
    init(_ i: ModelInfo) { self.init(reloaded: i.name, checksum: i.checksum) }
}
