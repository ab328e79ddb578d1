/// Every way loading a tokenizer can fail. Each case names the file (or the in-memory source)
/// and the problem; `description` also says what to do about it.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but could not be read (permissions, a directory, I/O error).
    case unreadableFile(path: String, reason: String)
    /// The file is not valid JSON (syntax error, truncated) or not a JSON object.
    case malformedJSON(path: String, reason: String)
    /// A required field is absent or has the wrong JSON type.
    case missingField(path: String, field: String)
    /// The file describes something this tokenizer does not implement (e.g. a BPE model).
    case unsupported(path: String, what: String)
    /// The vocabulary has no entries.
    case emptyVocabulary(path: String)
    /// The vocabulary is inconsistent (ids not 0..<n, duplicate ids, bad setting).
    case invalidVocabulary(path: String, reason: String)
    /// A special token (`role`: unk/cls/sep/pad, or an added token) is not in the vocabulary.
    case missingSpecialToken(path: String, token: String, role: String)
    /// No tokenizer files in a directory.
    case noTokenizerFiles(directory: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): file not found. Check the path; a model folder needs tokenizer.json, or vocab.txt (+ tokenizer_config.json)."
        case .unreadableFile(let path, let reason):
            return "\(path): cannot read the file (\(reason)). Check that it is a regular, readable file."
        case .malformedJSON(let path, let reason):
            return "\(path): not valid JSON (\(reason)). The file is corrupt or truncated; download or export it again."
        case .missingField(let path, let field):
            return "\(path): required field `\(field)` is missing or has the wrong type. Re-export the tokenizer with Hugging Face `tokenizers`/`transformers`."
        case .unsupported(let path, let what):
            return "\(path): unsupported tokenizer: \(what). qsent only supports BERT WordPiece tokenizers (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] … [SEP])."
        case .emptyVocabulary(let path):
            return "\(path): the vocabulary is empty. Use the model's complete vocab.txt / tokenizer.json."
        case .invalidVocabulary(let path, let reason):
            return "\(path): invalid vocabulary or settings: \(reason). Use the model's own, unmodified tokenizer files."
        case .missingSpecialToken(let path, let token, let role):
            return "\(path): special token \(token) (\(role)) is not in the vocabulary. Use the vocabulary that belongs to this model, or set the right special tokens in the config."
        case .noTokenizerFiles(let directory):
            return "\(directory): no tokenizer.json or vocab.txt found. Point to a Hugging Face model folder that contains the tokenizer files."
        }
    }
}
