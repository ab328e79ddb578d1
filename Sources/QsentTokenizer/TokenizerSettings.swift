// Settings of a BERT WordPiece tokenizer (normalizer, model and special tokens), resolved
// from tokenizer.json or vocab.txt + tokenizer_config.json. Codable so that the .qsent blob
// can carry them next to the vocabulary; `WordPieceTokenizer(vocabulary:settings:)` rebuilds
// an identical tokenizer from the two.

/// A token that the Hugging Face `AddedVocabulary` splits out of the raw input text before
/// normalization (for BERT: `[PAD] [UNK] [CLS] [SEP] [MASK]`). Only `normalized == false`
/// tokens without lstrip/rstrip/single_word are supported; the loaders refuse the others.
public struct AddedToken: Sendable, Equatable, Codable, Hashable {
    public var content: String
    public init(content: String) { self.content = content }
}

public struct TokenizerSettings: Sendable, Equatable, Codable {
    /// BertNormalizer `lowercase` (Rust `char::to_lowercase`, full mapping, no final-sigma rule).
    public var lowercase: Bool
    /// BertNormalizer `strip_accents`, resolved (`null` in the JSON follows `lowercase`).
    public var stripAccents: Bool
    /// BertNormalizer `clean_text`: drop control characters, map whitespace to a space.
    public var cleanText: Bool
    /// BertNormalizer `handle_chinese_chars`: put spaces around CJK ideographs.
    public var handleChineseChars: Bool
    public var unkToken: String
    public var clsToken: String
    public var sepToken: String
    public var padToken: String
    /// WordPiece `continuing_subword_prefix`.
    public var continuingSubwordPrefix: String
    /// WordPiece `max_input_chars_per_word`, counted in Unicode scalars; longer words become `unkToken`.
    public var maxInputCharsPerWord: Int
    /// Tokens matched verbatim in the raw text (leftmost-longest) and mapped straight to their id.
    public var addedTokens: [AddedToken]

    /// Defaults are those of `bert-base-uncased`.
    public init(
        lowercase: Bool = true,
        stripAccents: Bool? = nil,
        cleanText: Bool = true,
        handleChineseChars: Bool = true,
        unkToken: String = "[UNK]",
        clsToken: String = "[CLS]",
        sepToken: String = "[SEP]",
        padToken: String = "[PAD]",
        maskToken: String? = "[MASK]",
        continuingSubwordPrefix: String = "##",
        maxInputCharsPerWord: Int = 100,
        addedTokens: [AddedToken]? = nil
    ) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.unkToken = unkToken
        self.clsToken = clsToken
        self.sepToken = sepToken
        self.padToken = padToken
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
        if let addedTokens {
            self.addedTokens = addedTokens
        } else {
            // What transformers registers for a BERT tokenizer built from vocab.txt.
            var specials = [padToken, unkToken, clsToken, sepToken]
            if let maskToken { specials.append(maskToken) }
            var seen = Set<String>()
            self.addedTokens = specials.filter { seen.insert($0).inserted }.map(AddedToken.init(content:))
        }
    }

    private enum CodingKeys: String, CodingKey {
        case lowercase, stripAccents, cleanText, handleChineseChars, unkToken, clsToken, sepToken,
            padToken, continuingSubwordPrefix, maxInputCharsPerWord, addedTokens
    }

    /// Missing keys take the `bert-base-uncased` defaults, so older serialized settings still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let lowercase = try c.decodeIfPresent(Bool.self, forKey: .lowercase) ?? true
        self.init(
            lowercase: lowercase,
            stripAccents: try c.decodeIfPresent(Bool.self, forKey: .stripAccents),
            cleanText: try c.decodeIfPresent(Bool.self, forKey: .cleanText) ?? true,
            handleChineseChars: try c.decodeIfPresent(Bool.self, forKey: .handleChineseChars) ?? true,
            unkToken: try c.decodeIfPresent(String.self, forKey: .unkToken) ?? "[UNK]",
            clsToken: try c.decodeIfPresent(String.self, forKey: .clsToken) ?? "[CLS]",
            sepToken: try c.decodeIfPresent(String.self, forKey: .sepToken) ?? "[SEP]",
            padToken: try c.decodeIfPresent(String.self, forKey: .padToken) ?? "[PAD]",
            continuingSubwordPrefix: try c.decodeIfPresent(String.self, forKey: .continuingSubwordPrefix) ?? "##",
            maxInputCharsPerWord: try c.decodeIfPresent(Int.self, forKey: .maxInputCharsPerWord) ?? 100,
            addedTokens: try c.decodeIfPresent([AddedToken].self, forKey: .addedTokens)
        )
    }
}
