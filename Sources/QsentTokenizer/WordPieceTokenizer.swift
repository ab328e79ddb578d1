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
    /// The pieces by id, as one byte buffer (no String per piece at load).
    public let pieceList: PieceList
    /// The pieces by id as Strings (built on each call: for tests and tools, not hot paths).
    public var vocabulary: [String] { pieceList.strings }
    public var vocabularyCount: Int { pieceList.count }
    public let settings: TokenizerSettings
    public let clsId: Int32
    public let sepId: Int32
    public let unkId: Int32
    public let padId: Int32

    /// Default `maxTokens` of `encode` (DistilBERT IMDB models are evaluated at 384).
    public static let defaultMaxTokens = 384

    /// The built WordPiece table (what the blob stores as `tokenizer.pieces`).
    public let pieces: PieceTable
    let added: [(bytes: [UInt8], id: Int32)]
    /// Lead bytes of added tokens (for the non-ASCII path; ASCII ones are in `ascii`).
    let addedFirstByte: [Bool]
    let addedNonASCIIStart: Bool
    /// ASCII fast path, per byte: low 8 bits = normalized byte, bits 8-10 = action
    /// (0 append, 1 drop, 2 split on whitespace, 3 isolate punctuation), bit 11 = may start
    /// an added token.
    let ascii: [UInt16]
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
        let table = PieceTable.build(vocabulary: vocabulary, prefix: Array(settings.continuingSubwordPrefix.utf8))
        try self.init(pieces: PieceList(vocabulary), table: table, settings: settings, source: source)
    }

    /// A tokenizer from a stored vocabulary and its built piece table (the .qsent blob's
    /// `tokenizer.vocab` and `tokenizer.pieces`): nothing is hashed or allocated per piece.
    /// The table must be `PieceTable.build` of the same pieces and prefix (the blob's
    /// checksums make it the writer's); `PieceTable(parts:)` has already bounds-checked it.
    public init(pieces list: PieceList, table: PieceTable, settings: TokenizerSettings, source: String) throws {
        guard list.count > 0 else { throw TokenizerError.emptyVocabulary(path: source) }
        guard list.count < Int(Int32.max) else {
            throw TokenizerError.invalidVocabulary(path: source, reason: "more than 2^31 entries")
        }
        guard settings.maxInputCharsPerWord > 0 else {
            throw TokenizerError.invalidVocabulary(
                path: source, reason: "max_input_chars_per_word is \(settings.maxInputCharsPerWord), must be > 0")
        }
        pieceList = list
        self.settings = settings
        pieces = table
        let start = table

        func id(_ token: String, _ role: String) throws -> Int32 {
            guard let v = start.lookup(token) else {
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
        addedNonASCIIStart = first[128...].contains(true)

        let tables = CharTables.shared
        self.tables = tables
        normalizerMap = NormalizerMap.forSettings(strip: settings.stripAccents, lower: settings.lowercase)
        var ascii = [UInt16](repeating: 0, count: 128)
        for b in 0..<128 {
            let f = tables.flags(UInt32(b))
            var out = UInt16(b)
            var action: UInt16 = 0
            if settings.cleanText && f.contains(.control) {
                action = 1
            } else if (settings.cleanText && f.contains(.cleanWhitespace)) || f.contains(.splitWhitespace) {
                action = 2
            } else if f.contains(.punctuation) {
                action = 3
            } else if settings.lowercase && f.contains(.lowerMap) {
                out = UInt16(tables.lowerMap[UInt32(b)]![0])
            }
            ascii[b] = out | action << 8 | (first[b] ? 1 << 11 : 0)
        }
        self.ascii = ascii
    }

    /// Tokenizes `text` into `[CLS] pieces [SEP]`, keeping at most `maxTokens` ids (the first
    /// `maxTokens - 2` pieces; values below 2 are treated as 2). `nTokens` is the untruncated count.
    public func encode(_ text: String, maxTokens: Int = WordPieceTokenizer.defaultMaxTokens) -> TokenEncoding {
        var run = EncodeRun(tokenizer: self, limit: max(maxTokens, 2) - 2)
        var text = text
        text.makeContiguousUTF8()
        run.run(Array(text.utf8))
        var ids = [Int32]()
        ids.reserveCapacity(run.pieces.count + 2)
        ids.append(clsId)
        ids.append(contentsOf: run.pieces)
        ids.append(sepId)
        return TokenEncoding(ids: ids, nTokens: run.total + 2)
    }
}

/// Mutable state of one `encode` call. The tokenizer's tables are copied into `let`s so the
/// hot loops index them directly.
private struct EncodeRun {
    let tok: WordPieceTokenizer
    let limit: Int
    let clean: Bool
    let chinese: Bool
    let mapMask: CharFlags
    let maxChars: Int
    let unkId: Int32
    let ascii: [UInt16]
    let slots: [UInt64]
    let entries: [UInt8]
    let shift: UInt32
    let filter: [UInt64]
    let filterShift: UInt32
    let slotMask: Int
    let maxStart: Int
    let maxContinuation: Int
    let tables: CharTables
    /// strip_accents is on: NFD's canonical ordering of surviving marks applies.
    let reorder: Bool
    /// Byte offset in `word` where the current run of reorderable marks starts, or -1.
    var runStart = -1
    /// Ids after [CLS], at most `limit`; `total` counts all of them.
    var pieces: [Int32] = []
    var total = 0
    /// The current word, normalized UTF-8, in word[0..<wordLength].
    var word: [UInt8]
    var wordLength = 0
    var wordScalars = 0

    init(tokenizer: WordPieceTokenizer, limit: Int) {
        tok = tokenizer
        self.limit = limit
        clean = tokenizer.settings.cleanText
        chinese = tokenizer.settings.handleChineseChars
        mapMask = tokenizer.normalizerMap.mask
        maxChars = tokenizer.settings.maxInputCharsPerWord
        unkId = tokenizer.unkId
        ascii = tokenizer.ascii
        slots = tokenizer.pieces.slots
        entries = tokenizer.pieces.entries
        shift = tokenizer.pieces.shift
        filter = tokenizer.pieces.filter
        filterShift = tokenizer.pieces.filterShift
        slotMask = tokenizer.pieces.slots.count - 1
        maxStart = tokenizer.pieces.maxStartLength
        maxContinuation = tokenizer.pieces.maxContinuationLength
        tables = tokenizer.tables
        reorder = tokenizer.settings.stripAccents
        pieces.reserveCapacity(min(limit, 512))
        word = [UInt8](repeating: 0, count: 128)
    }

    mutating func run(_ bytes: [UInt8]) {
        let n = bytes.count
        var i = 0
        while i < n {
            let b = bytes[i]
            if b < 0x80 {
                let e = ascii[Int(b)]
                if e & 0x800 != 0, let (id, len) = matchAdded(bytes, i) {
                    flush()
                    emit(id)
                    i += len
                    continue
                }
                switch (e >> 8) & 7 {
                case 0:
                    append(byte: UInt8(truncatingIfNeeded: e))
                case 1:
                    break
                case 2:
                    flush()
                default:
                    flush()
                    append(byte: b)
                    flush()
                }
                i += 1
                continue
            }
            if tok.addedNonASCIIStart && tok.addedFirstByte[Int(b)], let (id, len) = matchAdded(bytes, i) {
                flush()
                emit(id)
                i += len
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

    /// The added token at bytes[i...], leftmost-longest (aho-corasick MatchKind::LeftmostLongest
    /// as in HF's AddedVocabulary: the scan reaches i only if nothing matched further left).
    func matchAdded(_ bytes: [UInt8], _ i: Int) -> (Int32, Int)? {
        var best: (Int32, Int)? = nil
        for a in tok.added where a.bytes.count > (best?.1 ?? 0) && i + a.bytes.count <= bytes.count {
            if bytes[i..<(i + a.bytes.count)].elementsEqual(a.bytes) { best = (a.id, a.bytes.count) }
        }
        return best
    }

    @inline(__always)
    mutating func emit(_ id: Int32) {
        total += 1
        if pieces.count < limit { pieces.append(id) }
    }

    /// BertNormalizer on one non-ASCII input scalar: clean_text, handle_chinese_chars,
    /// strip_accents, lowercase; then pre-tokenization of the result.
    mutating func scalar(_ cp: UInt32) {
        let f = tables.flags(cp)
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
        if !f.isDisjoint(with: mapMask) {
            if cp >= 0xAC00 && cp <= 0xD7A3 && tok.normalizerMap.hangul {
                // Hangul syllable: NFD is algorithmic (conjoining jamo; lowercase leaves them).
                let s = cp - 0xAC00
                preTokenize(0x1100 + s / 588, tables.flags(0x1100 + s / 588))
                preTokenize(0x1161 + (s % 588) / 28, tables.flags(0x1161 + (s % 588) / 28))
                if s % 28 != 0 { preTokenize(0x11A7 + s % 28, tables.flags(0x11A7 + s % 28)) }
                return
            }
            if let packed = tok.normalizerMap.map[cp] {
                let count = Int(packed & 0xFF)
                if count == 0 && reorder && tables.dropBlockers.contains(cp) { runStart = -1 }
                var i = Int(packed >> 8)
                let end = i + count
                while i < end {
                    let x = tok.normalizerMap.data[i]
                    preTokenize(x, tables.flags(x))
                    i += 1
                }
                return
            }
            preTokenize(cp, f)
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
            append(scalar: cp)
            flush()
        } else {
            append(scalar: cp)
        }
    }

    @inline(__always)
    mutating func append(byte: UInt8) {
        runStart = -1
        wordScalars += 1
        // A word longer than max_input_chars_per_word becomes [UNK]: stop storing its bytes.
        if wordScalars > maxChars { return }
        if wordLength == word.count { word.append(contentsOf: repeatElement(0, count: word.count)) }
        word[wordLength] = byte
        wordLength += 1
    }

    @inline(__always)
    mutating func append(scalar cp: UInt32) {
        if cp < 0x80 {
            append(byte: UInt8(cp))
            return
        }
        wordScalars += 1
        if wordScalars > maxChars { return }
        if wordLength + 4 > word.count { word.append(contentsOf: repeatElement(0, count: word.count)) }
        if reorder && tables.reorderRange.contains(cp), let k = tables.reorderCCC[cp] {
            // NFD canonical ordering: a stable sort by combining class within the run.
            if runStart < 0 { runStart = wordLength }
            var at = wordLength
            while at > runStart {
                var p = at - 1
                while word[p] & 0xC0 == 0x80 { p -= 1 }
                guard let prevClass = tables.reorderCCC[decodeScalar(word, p)], prevClass > k else { break }
                at = p
            }
            if at < wordLength {
                let n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4
                var j = wordLength - 1
                while j >= at {
                    word[j + n] = word[j]
                    j -= 1
                }
                let end = wordLength + n
                wordLength = at
                writeScalar(cp)
                wordLength = end
                return
            }
        } else {
            runStart = -1
        }
        writeScalar(cp)
    }

    /// Writes the UTF-8 bytes of a non-ASCII scalar at word[wordLength...] (capacity checked by the caller).
    @inline(__always)
    mutating func writeScalar(_ cp: UInt32) {
        if cp < 0x800 {
            word[wordLength] = UInt8(0xC0 | (cp >> 6))
            word[wordLength + 1] = UInt8(0x80 | (cp & 0x3F))
            wordLength += 2
        } else if cp < 0x10000 {
            word[wordLength] = UInt8(0xE0 | (cp >> 12))
            word[wordLength + 1] = UInt8(0x80 | ((cp >> 6) & 0x3F))
            word[wordLength + 2] = UInt8(0x80 | (cp & 0x3F))
            wordLength += 3
        } else {
            word[wordLength] = UInt8(0xF0 | (cp >> 18))
            word[wordLength + 1] = UInt8(0x80 | ((cp >> 12) & 0x3F))
            word[wordLength + 2] = UInt8(0x80 | ((cp >> 6) & 0x3F))
            word[wordLength + 3] = UInt8(0x80 | (cp & 0x3F))
            wordLength += 4
        }
    }

    func decodeScalar(_ b: [UInt8], _ i: Int) -> UInt32 {
        let b0 = UInt32(b[i])
        if b0 < 0x80 { return b0 }
        if b0 < 0xE0 { return (b0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F) }
        if b0 < 0xF0 { return (b0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F) }
        return (b0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F)
    }

    /// WordPiece on the current word: greedy longest-match-first (ends on scalar boundaries);
    /// an unmatchable rest, or more than max_input_chars_per_word scalars, makes it one [UNK].
    mutating func flush() {
        let n = wordLength
        let scalars = wordScalars
        runStart = -1
        if scalars == 0 { return }
        wordLength = 0
        wordScalars = 0
        if scalars > maxChars {
            emit(unkId)
            return
        }
        let savedTotal = total
        let savedCount = pieces.count
        var start = 0
        while start < n {
            let continuation = start > 0
            let seed = continuation ? PieceTable.continuationSeed : PieceTable.startSeed
            var len = min(n - start, continuation ? maxContinuation : maxStart)
            var found: Int32 = -1
            while len > 0 {
                let end = start + len
                if end == n || word[end] & 0xC0 != 0x80 {
                    found = lookup(seed: seed, start: start, end: end)
                    if found >= 0 { break }
                }
                len -= 1
            }
            if found < 0 {
                total = savedTotal
                if pieces.count > savedCount { pieces.removeLast(pieces.count - savedCount) }
                emit(unkId)
                return
            }
            emit(found)
            start += len
        }
    }

    /// Id of word[start..<end] in the piece table (continuation kind if `seed` says so), or -1.
    @inline(__always)
    func lookup(seed: UInt32, start: Int, end: Int) -> Int32 {
        var h = seed
        var j = start
        while j < end {
            h = (h ^ UInt32(word[j])) &* PieceTable.prime
            j += 1
        }
        let f = PieceTable.filterIndex(h, filterShift)
        if filter[f >> 6] & (1 << UInt64(f & 63)) == 0 { return -1 }
        let length = end - start
        var i = Int((h &* PieceTable.multiplier) >> shift)
        while true {
            let s = slots[i]
            if s == 0 { return -1 }
            if UInt32(truncatingIfNeeded: s >> 32) == h {
                let off = Int(truncatingIfNeeded: s & 0xFFFF_FFFF)
                if PieceTable.length(entries, off) == length {
                    var e = off + 6
                    var k = start
                    while k < end && entries[e] == word[k] {
                        e += 1
                        k += 1
                    }
                    if k == end { return PieceTable.id(entries, off) }
                }
            }
            i = (i + 1) & slotMask
        }
    }
}
