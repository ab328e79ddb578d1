// BERT WordPiece tokenizer, bit-exact with the Hugging Face fast tokenizer (`tokenizers` 0.23):
//   AddedVocabulary split (raw text) -> BertNormalizer -> BertPreTokenizer -> WordPiece
//   -> TemplateProcessing `[CLS] $A [SEP]`, right truncation keeping [SEP].
// Normalization and pre-tokenization run in one streaming pass over the UTF-8 bytes with an
// ASCII fast path; WordPiece hashes byte ranges of a reused word buffer (no substrings).

/// The result of `WordPieceTokenizer.encode`.
public struct TokenEncoding: Sendable, Equatable {
    /// `[CLS]` + word pieces (truncated to fit `maxTokens`) + `[SEP]`.
    public var ids: [Int32]
    /// The untruncated length, special tokens included.
    public var nTokens: Int
    public var truncated: Bool { nTokens > ids.count }

    public init(ids: [Int32], nTokens: Int) {
        self.ids = ids
        self.nTokens = nTokens
    }
}

public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String]
    public let settings: TokenizerSettings
    public let clsId: Int32
    public let sepId: Int32
    public let unkId: Int32
    public let padId: Int32

    /// Default `maxTokens` of `encode` (DistilBERT IMDB models are evaluated at 384).
    public static let defaultMaxTokens = 384

    let startTable: PieceTable
    let continuationTable: PieceTable
    let added: [(bytes: [UInt8], id: Int32)]
    let addedFirstByte: [Bool]
    /// ASCII fast path: 0 append `asciiOut[b]`, 1 drop, 2 split (whitespace), 3 isolate (punctuation).
    let asciiAction: [UInt8]
    let asciiOut: [UInt8]
    let tables: CharTables
    let normalizerMap: NormalizerMap

    /// Builds a tokenizer from a vocabulary (id = index; for duplicates the last index wins,
    /// as in Hugging Face) and resolved settings. Throws if a special or added token is not in
    /// the vocabulary.
    public init(vocabulary: [String], settings: TokenizerSettings) throws {
        try self.init(vocabulary: vocabulary, settings: settings, source: "<in-memory vocabulary>")
    }

    init(vocabulary: [String], settings: TokenizerSettings, source: String) throws {
        guard !vocabulary.isEmpty else { throw TokenizerError.emptyVocabulary(path: source) }
        guard vocabulary.count < Int(Int32.max) else {
            throw TokenizerError.invalidVocabulary(path: source, reason: "more than 2^31 entries")
        }
        guard settings.maxInputCharsPerWord > 0 else {
            throw TokenizerError.invalidVocabulary(
                path: source, reason: "max_input_chars_per_word is \(settings.maxInputCharsPerWord), must be > 0")
        }
        self.vocabulary = vocabulary
        self.settings = settings

        var start = PieceTable(capacityFor: vocabulary.count)
        let prefix = Array(settings.continuingSubwordPrefix.utf8)
        var continuationCount = 0
        for piece in vocabulary where piece.utf8.starts(with: prefix) { continuationCount += 1 }
        var cont = PieceTable(capacityFor: prefix.isEmpty ? 1 : continuationCount)
        for (i, piece) in vocabulary.enumerated() {
            let u = piece.utf8
            start.insert(u, id: Int32(i))
            if !prefix.isEmpty && u.starts(with: prefix) {
                cont.insert(u.dropFirst(prefix.count), id: Int32(i))
            }
        }
        startTable = start
        continuationTable = prefix.isEmpty ? start : cont

        func id(_ token: String, _ role: String) throws -> Int32 {
            guard let v = start.lookup(token.utf8) else {
                throw TokenizerError.missingSpecialToken(path: source, token: token, role: role)
            }
            return v
        }
        unkId = try id(settings.unkToken, "unk_token")
        clsId = try id(settings.clsToken, "cls_token")
        sepId = try id(settings.sepToken, "sep_token")
        padId = try id(settings.padToken, "pad_token")
        var added: [(bytes: [UInt8], id: Int32)] = []
        var first = [Bool](repeating: false, count: 256)
        for token in settings.addedTokens where !token.content.isEmpty {
            let bytes = Array(token.content.utf8)
            added.append((bytes, try id(token.content, "added token")))
            first[Int(bytes[0])] = true
        }
        self.added = added
        addedFirstByte = first

        let tables = CharTables.shared
        self.tables = tables
        normalizerMap = NormalizerMap.forSettings(strip: settings.stripAccents, lower: settings.lowercase)
        var action = [UInt8](repeating: 0, count: 128)
        var out = [UInt8](repeating: 0, count: 128)
        for b in 0..<128 {
            let f = tables.flags(UInt32(b))
            out[b] = UInt8(b)
            if settings.cleanText && f.contains(.control) {
                action[b] = 1
            } else if (settings.cleanText && f.contains(.cleanWhitespace)) || f.contains(.splitWhitespace) {
                action[b] = 2
            } else if f.contains(.punctuation) {
                action[b] = 3
            } else if settings.lowercase && f.contains(.lowerMap) {
                out[b] = UInt8(tables.lowerMap[UInt32(b)]![0])
            }
        }
        asciiAction = action
        asciiOut = out
    }

    /// Tokenizes `text` into `[CLS] pieces [SEP]`, keeping at most `maxTokens` ids (the first
    /// `maxTokens - 2` pieces; values below 2 are treated as 2). `nTokens` is the untruncated count.
    public func encode(_ text: String, maxTokens: Int = WordPieceTokenizer.defaultMaxTokens) -> TokenEncoding {
        var run = EncodeRun(tokenizer: self, limit: max(maxTokens, 2) - 2)
        var text = text
        text.makeContiguousUTF8()
        let bytes = Array(text.utf8)
        run.encode(bytes)
        var ids = [Int32]()
        ids.reserveCapacity(run.pieces.count + 2)
        ids.append(clsId)
        ids.append(contentsOf: run.pieces)
        ids.append(sepId)
        return TokenEncoding(ids: ids, nTokens: run.total + 2)
    }
}

/// Mutable state of one `encode` call.
private struct EncodeRun {
    let tok: WordPieceTokenizer
    let limit: Int
    let clean: Bool
    let chinese: Bool
    let mapMask: CharFlags
    let maxChars: Int
    var pieces: [Int32] = []
    var total = 0
    var word: [UInt8] = []
    var wordScalars = 0
    var wordIds: [Int32] = []
    var hashes: [UInt32] = []

    init(tokenizer: WordPieceTokenizer, limit: Int) {
        tok = tokenizer
        self.limit = limit
        clean = tokenizer.settings.cleanText
        chinese = tokenizer.settings.handleChineseChars
        mapMask = tokenizer.normalizerMap.mask
        maxChars = tokenizer.settings.maxInputCharsPerWord
        pieces.reserveCapacity(min(limit, 512))
        word.reserveCapacity(64)
        wordIds.reserveCapacity(16)
        hashes = [UInt32](repeating: 0, count: 64)
    }

    mutating func encode(_ bytes: [UInt8]) {
        let n = bytes.count
        if tok.added.isEmpty {
            segment(bytes, 0, n)
            return
        }
        var segStart = 0
        var i = 0
        while i < n {
            if tok.addedFirstByte[Int(bytes[i])] {
                // Leftmost-longest match, as aho-corasick MatchKind::LeftmostLongest.
                var best = -1
                var bestLen = 0
                for (k, a) in tok.added.enumerated() where a.bytes.count > bestLen && i + a.bytes.count <= n {
                    if bytes[i..<(i + a.bytes.count)].elementsEqual(a.bytes) {
                        best = k
                        bestLen = a.bytes.count
                    }
                }
                if best >= 0 {
                    segment(bytes, segStart, i)
                    emit(tok.added[best].id)
                    i += bestLen
                    segStart = i
                    continue
                }
            }
            i += 1
        }
        segment(bytes, segStart, n)
    }

    @inline(__always)
    mutating func emit(_ id: Int32) {
        total += 1
        if pieces.count < limit { pieces.append(id) }
    }

    /// Normalizes and pre-tokenizes bytes[lo..<hi], running WordPiece on each word.
    mutating func segment(_ bytes: [UInt8], _ lo: Int, _ hi: Int) {
        var i = lo
        while i < hi {
            let b = bytes[i]
            if b < 0x80 {
                switch tok.asciiAction[Int(b)] {
                case 0:
                    word.append(tok.asciiOut[Int(b)])
                    wordScalars += 1
                case 1:
                    break
                case 2:
                    flush()
                default:
                    flush()
                    word.append(b)
                    wordScalars = 1
                    flush()
                }
                i += 1
                continue
            }
            let cp: UInt32
            let b0 = UInt32(b)
            if b0 < 0xE0 {
                cp = (b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)
                i += 2
            } else if b0 < 0xF0 {
                cp = (b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)
                i += 3
            } else {
                cp = (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
                    | UInt32(bytes[i + 3] & 0x3F)
                i += 4
            }
            scalar(cp)
        }
        flush()
    }

    /// BertNormalizer on one input scalar: clean_text, handle_chinese_chars, strip_accents, lowercase.
    @inline(__always)
    mutating func scalar(_ cp: UInt32) {
        let f = tok.tables.flags(cp)
        if clean {
            if f.contains(.control) { return }
            if f.contains(.cleanWhitespace) { flush(); return }
        }
        if chinese && f.contains(.cjk) {
            flush()
            normalized(cp, f)
            flush()
            return
        }
        normalized(cp, f)
    }

    @inline(__always)
    mutating func normalized(_ cp: UInt32, _ f: CharFlags) {
        if !f.isDisjoint(with: mapMask), let mapped = tok.normalizerMap.map[cp] {
            for x in mapped { preTokenize(x, tok.tables.flags(x)) }
        } else {
            preTokenize(cp, f)
        }
    }

    /// BertPreTokenizer on one normalized scalar: split on whitespace, isolate punctuation.
    @inline(__always)
    mutating func preTokenize(_ cp: UInt32, _ f: CharFlags) {
        if f.contains(.splitWhitespace) {
            flush()
        } else if f.contains(.punctuation) {
            flush()
            append(cp)
            flush()
        } else {
            append(cp)
        }
    }

    @inline(__always)
    mutating func append(_ cp: UInt32) {
        if cp < 0x80 {
            word.append(UInt8(cp))
        } else if cp < 0x800 {
            word.append(UInt8(0xC0 | (cp >> 6)))
            word.append(UInt8(0x80 | (cp & 0x3F)))
        } else if cp < 0x10000 {
            word.append(UInt8(0xE0 | (cp >> 12)))
            word.append(UInt8(0x80 | ((cp >> 6) & 0x3F)))
            word.append(UInt8(0x80 | (cp & 0x3F)))
        } else {
            word.append(UInt8(0xF0 | (cp >> 18)))
            word.append(UInt8(0x80 | ((cp >> 12) & 0x3F)))
            word.append(UInt8(0x80 | ((cp >> 6) & 0x3F)))
            word.append(UInt8(0x80 | (cp & 0x3F)))
        }
        wordScalars += 1
    }

    /// WordPiece on the current word: greedy longest-match-first; any unmatchable rest, or
    /// more than max_input_chars_per_word scalars, makes the whole word [UNK].
    mutating func flush() {
        let n = word.count
        if n == 0 { return }
        defer {
            word.removeAll(keepingCapacity: true)
            wordScalars = 0
        }
        if wordScalars > maxChars {
            emit(tok.unkId)
            return
        }
        wordIds.removeAll(keepingCapacity: true)
        var start = 0
        while start < n {
            let table = start == 0 ? tok.startTable : tok.continuationTable
            guard let (id, len) = table.longestPrefixMatch(word, start: start, end: n, hashes: &hashes) else {
                emit(tok.unkId)
                return
            }
            wordIds.append(id)
            start += len
        }
        for id in wordIds { emit(id) }
    }
}
