import FoundationEssentials  // JSONDecoder for the meta section
internal import QsentIO
import QsentTokenizer
import Synchronization

// The .qsent blob: see docs/FORMAT.md for the byte-level description. This file is the one
// place that knows the layout; the quantizer writes through `BlobWriter`, the engine reads
// through `Blob`.

public enum BlobFormat {
    /// "\x89QSENT\r\n": the high byte and CR LF catch 7-bit and text-mode mangling, like PNG.
    public static let magic: [UInt8] = [0x89, 0x51, 0x53, 0x45, 0x4E, 0x54, 0x0D, 0x0A]
    /// 2: the WordPiece table is stored built (`tokenizer.pieces`). 1 is refused: re-quantize.
    public static let version: UInt32 = 2
    public static let headerSize = 64
    public static let entrySize = 128
    public static let alignment = 64
    public static let nameBytes = 48
    public static let maxRank = 4

    /// A little-endian integer field at a fixed byte offset inside the header or a table entry.
    public struct Field<T: FixedWidthInteger & Sendable>: Sendable {
        public let offset: Int
        public var range: Range<Int> { offset..<(offset + MemoryLayout<T>.size) }
    }

    /// The 64-byte header (docs/FORMAT.md, "Header"): the one description the writer, the
    /// reader and the tests use.
    public enum Header {
        public static let magic = 0..<8
        public static let version = Field<UInt32>(offset: 8)
        public static let headerSize = Field<UInt32>(offset: 12)
        public static let fileSize = Field<UInt64>(offset: 16)
        public static let sectionCount = Field<UInt32>(offset: 24)
        public static let entrySize = Field<UInt32>(offset: 28)
        public static let tableOffset = Field<UInt64>(offset: 32)
        /// XXH64 of the section table: the blob's identity.
        public static let tableChecksum = Field<UInt64>(offset: 40)
        /// XXH64 of `checksummed`.
        public static let headerChecksum = Field<UInt64>(offset: 48)
        /// The header bytes covered by `headerChecksum`.
        public static let checksummed = 0..<48
    }

    /// One 128-byte section-table entry (docs/FORMAT.md, "Section entry").
    public enum Entry {
        /// UTF-8, NUL-padded.
        public static let name = 0..<BlobFormat.nameBytes
        public static let dtype = Field<UInt32>(offset: 48)
        public static let rank = Field<UInt32>(offset: 52)
        /// Dimension `i` (0..<maxRank); unused dimensions are 0.
        public static func dimension(_ i: Int) -> Field<UInt64> { Field(offset: 56 + 8 * i) }
        /// From the start of the file; a multiple of `alignment`.
        public static let offset = Field<UInt64>(offset: 88)
        public static let size = Field<UInt64>(offset: 96)
        public static let checksum = Field<UInt64>(offset: 104)
    }

    /// Byte offset of section-table entry `i` from the start of the file.
    public static func entryOffset(_ i: Int) -> Int { headerSize + i * entrySize }

    /// Rounds up to the section alignment.
    static func aligned(_ x: Int) -> Int { (x + alignment - 1) / alignment * alignment }

    /// Writes `value` little-endian into `bytes` at `field` (relative to `base`).
    static func put<T>(_ bytes: inout [UInt8], _ field: Field<T>, _ value: T, base: Int = 0) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.replaceSubrange(field.range.lowerBound + base..<field.range.upperBound + base, with: $0) }
    }
}

extension MappedFile {
    /// Reads a header or entry field; `base` is the offset of the header (0) or of the entry.
    func load<T>(_ field: BlobFormat.Field<T>, base: Int = 0) -> T {
        loadLE(T.self, at: base + field.offset)
    }
}

/// Element type of a section.
public enum BlobDType: UInt32, Sendable {
    case bytes = 0, f32 = 1, i8 = 2, i32 = 3

    var size: Int { self == .f32 || self == .i32 ? 4 : 1 }
    var name: String {
        switch self { case .bytes: return "bytes"; case .f32: return "f32"; case .i8: return "i8"; case .i32: return "i32" }
    }
}

public enum BlobError: Error, CustomStringConvertible, Equatable {
    case notABlob(path: String)
    case newerVersion(path: String, version: UInt32)
    case olderVersion(path: String, version: UInt32)
    case truncated(path: String, expected: UInt64, actual: Int)
    case corruptHeader(path: String, problem: String)
    case checksum(path: String, section: String)
    case badSection(path: String, section: String, problem: String)
    case missingSection(path: String, section: String)
    case unexpectedSection(path: String, section: String)
    case badMeta(path: String, problem: String)

    public var description: String {
        switch self {
        case .notABlob(let p):
            return "\(p) is not a .qsent blob (wrong magic number); make one with qsent-quantize, or pass an HF model folder"
        case .newerVersion(let p, let v):
            return "\(p) is format version \(v), newer than this qsent reads (\(BlobFormat.version)); upgrade qsent or re-quantize with this version"
        case .olderVersion(let p, let v):
            return "\(p) is format version \(v), older than this qsent reads (\(BlobFormat.version)); re-run qsent-quantize on the Hugging Face model folder to rebuild it"
        case .truncated(let p, let e, let a):
            return "\(p) is truncated: the header says \(e) bytes, the file has \(a); copy it again or re-quantize"
        case .corruptHeader(let p, let what):
            return "\(p): corrupt header (\(what)); re-quantize the model"
        case .checksum(let p, let s):
            return "\(p): checksum mismatch in section '\(s)'; the file is damaged: copy it again or re-quantize"
        case .badSection(let p, let s, let what):
            return "\(p): section '\(s)': \(what); re-quantize the model"
        case .missingSection(let p, let s):
            return "\(p): section '\(s)' is missing; the blob does not match its own config: re-quantize"
        case .unexpectedSection(let p, let s):
            return "\(p): unexpected section '\(s)'; the blob was not written by a compatible qsent-quantize"
        case .badMeta(let p, let what):
            return "\(p): bad metadata (\(what)); re-quantize the model"
        }
    }
}

/// The JSON "meta" section.
public struct BlobMeta: Codable, Sendable, Equatable {
    public var modelName: String
    public var config: ModelConfig
    public var maxTokens: Int
    public var tokenizer: TokenizerSettings
    /// Free-form facts about how the blob was made (quantizer version, scheme, source).
    public var quantization: [String: String]

    public init(modelName: String, config: ModelConfig, maxTokens: Int, tokenizer: TokenizerSettings,
                quantization: [String: String]) {
        self.modelName = modelName
        self.config = config
        self.maxTokens = maxTokens
        self.tokenizer = tokenizer
        self.quantization = quantization
    }
}

/// Section names, shared by writer and reader.
enum BlobNames {
    static let meta = "meta"
    static let vocab = "tokenizer.vocab"
    static let pieces = "tokenizer.pieces"
    static let words = "embeddings.words.q"
    static let wordScales = "embeddings.words.scale"
    static let positions = "embeddings.positions"
    static let embedNorm = "embeddings.norm"
    static func layer(_ i: Int) -> String { "layer.\(i)" }
}

extension LayerTensor {
    /// Section-name prefix of this tensor of layer `i`: `layer.{i}.qkv`, `layer.{i}.attn_norm`…
    public func section(layer i: Int) -> String { "\(BlobNames.layer(i)).\(blobName)" }
}

extension BlobNames {
    static let pre = "head.pre"
    static let classifier = "head.classifier"
}

// MARK: - Writer

/// Assembles sections into blob bytes. Deterministic: same sections in, same bytes out.
public struct BlobWriter {
    struct Section {
        let name: String
        let dtype: BlobDType
        let shape: [Int]
        let bytes: [UInt8]
    }
    private var sections: [Section] = []

    public init() {}

    mutating func add(_ name: String, _ dtype: BlobDType, shape: [Int], bytes: [UInt8]) {
        precondition(name.utf8.count < BlobFormat.nameBytes && shape.count <= BlobFormat.maxRank)
        precondition(shape.reduce(1, *) * dtype.size == bytes.count, "section \(name): shape/bytes mismatch")
        precondition(!sections.contains { $0.name == name }, "duplicate section \(name)")
        sections.append(Section(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        add(name, .f32, shape: shape, bytes: floats.withUnsafeBytes { Array($0) })
    }

    mutating func add(_ name: String, int8s: [Int8], shape: [Int]) {
        add(name, .i8, shape: shape, bytes: int8s.withUnsafeBytes { Array($0) })
    }

    mutating func add(_ name: String, int32s: [Int32], shape: [Int]) {
        add(name, .i32, shape: shape, bytes: int32s.withUnsafeBytes { Array($0) })
    }

    public func serialize() -> [UInt8] {
        typealias H = BlobFormat.Header
        typealias E = BlobFormat.Entry
        let tableOffset = BlobFormat.headerSize
        var offset = BlobFormat.aligned(BlobFormat.entryOffset(sections.count))
        var table: [UInt8] = []
        var layout: [Int] = []
        for s in sections {
            layout.append(offset)
            var e = [UInt8](repeating: 0, count: BlobFormat.entrySize)
            let name = Array(s.name.utf8)
            e.replaceSubrange(E.name.lowerBound..<(E.name.lowerBound + name.count), with: name)
            BlobFormat.put(&e, E.dtype, s.dtype.rawValue)
            BlobFormat.put(&e, E.rank, UInt32(s.shape.count))
            for (i, d) in s.shape.enumerated() { BlobFormat.put(&e, E.dimension(i), UInt64(d)) }
            BlobFormat.put(&e, E.offset, UInt64(offset))
            BlobFormat.put(&e, E.size, UInt64(s.bytes.count))
            BlobFormat.put(&e, E.checksum, XXH64.hash(s.bytes))
            table += e
            offset = BlobFormat.aligned(offset + s.bytes.count)
        }
        let fileSize = BlobFormat.aligned(layout.last.map { $0 + sections.last!.bytes.count } ?? tableOffset)
        var out = [UInt8](repeating: 0, count: fileSize)
        var h = [UInt8](repeating: 0, count: BlobFormat.headerSize)
        h.replaceSubrange(H.magic, with: BlobFormat.magic)
        BlobFormat.put(&h, H.version, BlobFormat.version)
        BlobFormat.put(&h, H.headerSize, UInt32(BlobFormat.headerSize))
        BlobFormat.put(&h, H.fileSize, UInt64(fileSize))
        BlobFormat.put(&h, H.sectionCount, UInt32(sections.count))
        BlobFormat.put(&h, H.entrySize, UInt32(BlobFormat.entrySize))
        BlobFormat.put(&h, H.tableOffset, UInt64(tableOffset))
        BlobFormat.put(&h, H.tableChecksum, XXH64.hash(table))
        BlobFormat.put(&h, H.headerChecksum, XXH64.hash(Array(h[H.checksummed])))
        out.replaceSubrange(0..<BlobFormat.headerSize, with: h)
        out.replaceSubrange(tableOffset..<(tableOffset + table.count), with: table)
        for (s, o) in zip(sections, layout) { out.replaceSubrange(o..<(o + s.bytes.count), with: s.bytes) }
        return out
    }
}

/// The `tokenizer.pieces` section (docs/FORMAT.md): the built WordPiece hash table, stored so
/// that a load copies it instead of hashing every piece.
enum PiecesFormat {
    static let headerSize = 32
    /// FNV-1a 32-bit with PieceTable's seeds, multiplier and filter (the only scheme so far).
    static let scheme: UInt32 = 1
    // u32 fields of the header
    static let slotCount = 0, filterWords = 4, entryBytes = 8, maxStart = 12, maxContinuation = 16, schemeAt = 20
}

extension BlobWriter {
    /// The pieces section: 32-byte header, slots u64[], filter u64[], entry bytes.
    static func piecesBytes(_ p: PieceTable.Parts) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(PiecesFormat.headerSize + 8 * (p.slots.count + p.filter.count) + p.entries.count)
        func u32(_ v: Int) { for i in 0..<4 { out.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        func u64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8((v >> (8 * UInt64(i))) & 0xFF)) } }
        u32(p.slots.count); u32(p.filter.count); u32(p.entries.count)
        u32(p.maxStartLength); u32(p.maxContinuationLength); u32(Int(PiecesFormat.scheme))
        u64(0)
        p.slots.forEach(u64)
        p.filter.forEach(u64)
        return out + p.entries
    }

    /// The vocabulary section: u32 count, u32 offsets[count + 1], then the UTF-8 bytes.
    static func vocabBytes(_ vocab: [String]) -> [UInt8] {
        var offsets: [UInt32] = [0]
        var blob: [UInt8] = []
        for t in vocab {
            blob += Array(t.utf8)
            offsets.append(UInt32(blob.count))
        }
        var out: [UInt8] = []
        out.reserveCapacity(4 + 4 * offsets.count + blob.count)
        func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }
        u32(UInt32(vocab.count))
        offsets.forEach(u32)
        return out + blob
    }
}

// MARK: - Reader

/// A verified `.qsent` blob. Opening reads the whole file into private read-only memory
/// (`MappedFile`), then checks the header, the section table, every section's bounds,
/// alignment, type and shape, and every section's checksum; weights are then used in place from
/// that memory (nothing more is copied), which later changes to the file cannot reach.
public final class Blob: Sendable {
    /// One verified entry of the section table.
    public struct Section: Sendable {
        public let name: String
        public let dtype: BlobDType
        public let shape: [Int]
        /// Byte offset of the data from the start of the file.
        public let offset: Int
        public let size: Int
        public let checksum: UInt64
    }

    public let path: String
    public let file: MappedFile
    public let meta: BlobMeta
    /// Identity of the blob: XXH64 of the section table (which holds every section's checksum).
    public let checksum: UInt64
    let sections: [String: Section]

    /// The section table, in file order.
    public var sectionTable: [Section] { sections.values.sorted { $0.offset < $1.offset } }

    public var modelName: String { meta.modelName }
    public var maxTokens: Int { meta.maxTokens }
    public var checksumHex: String {
        let s = String(checksum, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    public init(path: String) throws {
        typealias H = BlobFormat.Header
        typealias E = BlobFormat.Entry
        self.path = path
        // The header first: a file that is not a blob, or not the size its header says, is
        // refused without reading (and holding) all of it.
        let (head, size) = try MappedFile.head(path: path, count: BlobFormat.headerSize)
        guard head.count == BlobFormat.headerSize, Array(head[H.magic]) == BlobFormat.magic else {
            throw BlobError.notABlob(path: path)
        }
        func headerField<T: FixedWidthInteger>(_ field: BlobFormat.Field<T>) -> T {
            head[field.range].reversed().reduce(T.zero) { ($0 << 8) | T($1) }
        }
        if XXH64.hash(Array(head[H.checksummed])) == headerField(H.headerChecksum) {
            let v = headerField(H.version)
            if v > BlobFormat.version { throw BlobError.newerVersion(path: path, version: v) }
            if v < BlobFormat.version { throw BlobError.olderVersion(path: path, version: v) }
            let declared = headerField(H.fileSize)
            if declared > UInt64(size) { throw BlobError.truncated(path: path, expected: declared, actual: size) }
            if declared < UInt64(size) {
                throw BlobError.corruptHeader(path: path, problem: "file is \(size) bytes, header says \(declared)")
            }
        }
        let f = try MappedFile(path: path)
        file = f
        guard f.count >= BlobFormat.headerSize, Array(f.slice(H.magic)) == BlobFormat.magic else {
            throw BlobError.notABlob(path: path)
        }
        let version = f.load(H.version)
        guard XXH64.hash(f.slice(H.checksummed)) == f.load(H.headerChecksum) else {
            if version > BlobFormat.version { throw BlobError.newerVersion(path: path, version: version) }
            throw BlobError.corruptHeader(path: path, problem: "header checksum mismatch")
        }
        guard version <= BlobFormat.version else { throw BlobError.newerVersion(path: path, version: version) }
        guard version == BlobFormat.version else { throw BlobError.olderVersion(path: path, version: version) }
        let fileSize = f.load(H.fileSize)
        guard fileSize == UInt64(f.count) else {
            if fileSize > UInt64(f.count) { throw BlobError.truncated(path: path, expected: fileSize, actual: f.count) }
            throw BlobError.corruptHeader(path: path, problem: "file is \(f.count) bytes, header says \(fileSize)")
        }
        guard f.load(H.headerSize) == UInt32(BlobFormat.headerSize),
              f.load(H.entrySize) == UInt32(BlobFormat.entrySize) else {
            throw BlobError.corruptHeader(path: path, problem: "unexpected header or entry size")
        }
        let count = Int(f.load(H.sectionCount))
        let tableOffset = f.load(H.tableOffset)
        guard tableOffset == UInt64(BlobFormat.headerSize), count > 0, count < 100_000,
              BlobFormat.entryOffset(count) <= f.count else {
            throw BlobError.corruptHeader(path: path, problem: "section table out of range")
        }
        let dataStart = BlobFormat.entryOffset(count)
        let tableHash = XXH64.hash(f.slice(BlobFormat.headerSize..<dataStart))
        guard tableHash == f.load(H.tableChecksum) else {
            throw BlobError.corruptHeader(path: path, problem: "section table checksum mismatch")
        }
        checksum = tableHash

        var sections: [String: Section] = [:]
        var ranges: [(Int, Int, String)] = []
        for i in 0..<count {
            let at = BlobFormat.entryOffset(i)
            let nameBytes = Array(f.slice((at + E.name.lowerBound)..<(at + E.name.upperBound))).prefix { $0 != 0 }
            guard let name = String(validating: nameBytes, as: UTF8.self), !name.isEmpty else {
                throw BlobError.corruptHeader(path: path, problem: "section \(i) has no valid name")
            }
            guard let dtype = BlobDType(rawValue: f.load(E.dtype, base: at)) else {
                throw BlobError.badSection(path: path, section: name, problem: "unknown element type")
            }
            let rank = Int(f.load(E.rank, base: at))
            guard rank <= BlobFormat.maxRank else {
                throw BlobError.badSection(path: path, section: name, problem: "rank \(rank) > \(BlobFormat.maxRank)")
            }
            var shape: [Int] = []
            var elements: UInt64 = 1
            for r in 0..<rank {
                let d = f.load(E.dimension(r), base: at)
                guard d < (1 << 40) else { throw BlobError.badSection(path: path, section: name, problem: "dimension too large") }
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw BlobError.badSection(path: path, section: name, problem: "shape overflows") }
                elements = p
                shape.append(Int(d))
            }
            let offset = f.load(E.offset, base: at)
            let size = f.load(E.size, base: at)
            // (Each dimension is below 2^40 and their product fits 64 bits, but the byte count
            // can still overflow: [2^39, 2^24] of f32 is 2^65 bytes.)
            let (bytes, overflows) = elements.multipliedReportingOverflow(by: UInt64(dtype.size))
            guard !overflows else { throw BlobError.badSection(path: path, section: name, problem: "shape \(shape) overflows as \(dtype.name) bytes") }
            guard size == bytes else {
                throw BlobError.badSection(path: path, section: name, problem: "size \(size) does not match shape \(shape) of \(dtype.name)")
            }
            guard offset >= UInt64(dataStart), offset % UInt64(BlobFormat.alignment) == 0,
                  offset <= UInt64(f.count), size <= UInt64(f.count) - offset else {
                throw BlobError.badSection(path: path, section: name, problem: "offset \(offset) + \(size) bytes is misaligned or outside the file")
            }
            guard sections[name] == nil else {
                throw BlobError.badSection(path: path, section: name, problem: "appears twice")
            }
            let s = Section(name: name, dtype: dtype, shape: shape, offset: Int(offset), size: Int(size),
                            checksum: f.load(E.checksum, base: at))
            sections[name] = s
            ranges.append((s.offset, s.offset + s.size, name))
        }
        ranges.sort { $0.0 < $1.0 }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.0 < a.1 {
            throw BlobError.badSection(path: path, section: b.2, problem: "overlaps '\(a.2)'")
        }
        // Every section's checksum, before anything in the blob is trusted.
        if let bad = Self.firstBadChecksum(sections.values.sorted(by: { $0.offset < $1.offset }), in: f) {
            throw BlobError.checksum(path: path, section: bad)
        }
        self.sections = sections
        guard let m = sections[BlobNames.meta], m.dtype == .bytes else {
            throw BlobError.missingSection(path: path, section: BlobNames.meta)
        }
        do {
            meta = try JSONDecoder().decode(BlobMeta.self, from: f.data(m.offset..<(m.offset + m.size)))
        } catch {
            throw BlobError.badMeta(path: path, problem: "\(error)")
        }
        // Checksums prove the bytes are what the writer wrote, not that they make sense: the
        // config is held to the same rules as config.json before any weight is read.
        if let problem = meta.config.problem {
            throw BlobError.badMeta(path: path, problem: "config: \(problem)")
        }
        guard meta.maxTokens >= 2, meta.maxTokens <= meta.config.maxPositions else {
            throw BlobError.badMeta(path: path, problem: "maxTokens \(meta.maxTokens) is outside 2…\(meta.config.maxPositions)")
        }
    }

    /// Blobs at least this large are verified on two threads.
    static let parallelVerifyBytes = 4 << 20

    /// The name of the first section (in file order) whose XXH64 does not match, or nil. A
    /// large blob's sections are split in two halves of about equal size and the second half is
    /// hashed on a helper thread meanwhile (the checksums are a third of the load's CPU time;
    /// qsentd's cores are idle while it loads). Both halves are finished before this returns.
    static func firstBadChecksum(_ ordered: [Section], in f: MappedFile) -> String? {
        @Sendable func bad(_ part: ArraySlice<Section>) -> Section? {
            part.first { XXH64.hash(f.slice($0.offset..<($0.offset + $0.size))) != $0.checksum }
        }
        let total = ordered.reduce(0) { $0 + $1.size }
        guard total >= parallelVerifyBytes, ordered.count > 1 else { return bad(ordered[...])?.name }
        var split = 0, sum = 0
        while split < ordered.count - 1 && sum + ordered[split].size <= total / 2 {
            sum += ordered[split].size
            split += 1
        }
        split = max(split, 1)
        let second = ordered[split...]
        let result = VerifyResult()
        guard let helper = try? OSThread.spawn(name: "qsent-verify", { let b = bad(second)?.name; result.bad.withLock { $0 = b } }) else {
            return bad(ordered[...])?.name
        }
        let early = bad(ordered[..<split])
        helper.join()
        return early?.name ?? result.bad.withLock { $0 }
    }

    private final class VerifyResult: Sendable {
        /// The second half's first bad section; read after the join.
        let bad = Mutex<String?>(nil)
    }

    // MARK: typed access

    func section(_ name: String, _ dtype: BlobDType, _ shape: [Int]) throws -> Section {
        guard let s = sections[name] else { throw BlobError.missingSection(path: path, section: name) }
        guard s.dtype == dtype, s.shape == shape else {
            throw BlobError.badSection(path: path, section: name,
                                       problem: "is \(s.dtype.name)\(s.shape), expected \(dtype.name)\(shape)")
        }
        return s
    }

    func floats(_ name: String, _ shape: [Int]) throws -> ConstBuffer<Float> {
        let s = try section(name, .f32, shape)
        return ConstBuffer(mapped: file, offset: s.offset, count: s.size / 4)
    }

    func int8s(_ name: String, _ shape: [Int]) throws -> ConstBuffer<Int8> {
        let s = try section(name, .i8, shape)
        return ConstBuffer(mapped: file, offset: s.offset, count: s.size)
    }

    func int32s(_ name: String, _ shape: [Int]) throws -> ConstBuffer<Int32> {
        let s = try section(name, .i32, shape)
        return ConstBuffer(mapped: file, offset: s.offset, count: s.size / 4)
    }

    /// The tokenizer stored in the blob: the pieces and the built table are copied out in
    /// bulk (no String or hash insertion per piece), then bounds-checked.
    public func tokenizer() throws -> WordPieceTokenizer {
        guard let s = sections[BlobNames.vocab], s.dtype == .bytes, s.size >= 8 else {
            throw BlobError.missingSection(path: path, section: BlobNames.vocab)
        }
        let b = file.slice(s.offset..<(s.offset + s.size))
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        let n = Int(u32(0))
        let stringsAt = 4 + 4 * (n + 1)
        guard n > 0, stringsAt <= b.count, u32(4) == 0 else {
            throw BlobError.badSection(path: path, section: BlobNames.vocab, problem: "bad token count")
        }
        let ends = Self.copy(UInt32.self, b, at: 8, count: n)
        let list: PieceList
        do {
            list = try PieceList(bytes: Array(UnsafeRawBufferPointer(rebasing: b[stringsAt...])), ends: ends)
        } catch {
            throw BlobError.badSection(path: path, section: BlobNames.vocab, problem: "\(error)")
        }
        guard list.ends.last.map(Int.init) == b.count - stringsAt else {
            throw BlobError.badSection(path: path, section: BlobNames.vocab, problem: "the token bytes do not end where the section does")
        }
        let table = try pieceTable(vocabularyCount: n)
        do {
            return try WordPieceTokenizer(pieces: list, table: table, settings: meta.tokenizer, source: path)
        } catch {
            throw BlobError.badMeta(path: path, problem: "tokenizer: \(error)")
        }
    }

    /// The `tokenizer.pieces` section as a checked `PieceTable`.
    func pieceTable(vocabularyCount n: Int) throws -> PieceTable {
        typealias P = PiecesFormat
        guard let s = sections[BlobNames.pieces], s.dtype == .bytes, s.size >= P.headerSize else {
            throw BlobError.missingSection(path: path, section: BlobNames.pieces)
        }
        let b = file.slice(s.offset..<(s.offset + s.size))
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func bad(_ why: String) -> BlobError { BlobError.badSection(path: path, section: BlobNames.pieces, problem: why) }
        guard u32(P.schemeAt) == Int(P.scheme) else { throw bad("unknown hash scheme \(u32(P.schemeAt))") }
        let slots = u32(P.slotCount), words = u32(P.filterWords), bytes = u32(P.entryBytes)
        guard P.headerSize + 8 * (slots + words) + bytes == b.count else {
            throw bad("\(slots) slots, \(words) filter words and \(bytes) entry bytes do not make \(b.count) bytes")
        }
        let filterAt = P.headerSize + 8 * slots, entriesAt = filterAt + 8 * words
        let parts = PieceTable.Parts(slots: Self.copy(UInt64.self, b, at: P.headerSize, count: slots),
                                     filter: Self.copy(UInt64.self, b, at: filterAt, count: words),
                                     entries: Array(UnsafeRawBufferPointer(rebasing: b[entriesAt...])),
                                     maxStartLength: u32(P.maxStart), maxContinuationLength: u32(P.maxContinuation))
        do {
            return try PieceTable(parts: parts, vocabularyCount: n)
        } catch {
            throw bad("\(error)")
        }
    }

    /// `count` little-endian integers at byte `at` of `b`, in one pass (bounds checked by the caller).
    static func copy<T: FixedWidthInteger>(_: T.Type, _ b: UnsafeRawBufferPointer, at: Int, count: Int) -> [T] {
        precondition(at >= 0 && count >= 0 && at + count * MemoryLayout<T>.size <= b.count)
        if count == 0 { return [] } // (see Array.uninitialized: never fill the shared empty storage)
        return [T](unsafeUninitializedCapacity: count) { out, done in
            for i in 0..<count { out[i] = T(littleEndian: b.loadUnaligned(fromByteOffset: at + i * MemoryLayout<T>.size, as: T.self)) }
            done = count
        }
    }

    /// The int8 weights, in place in the mapping.
    func weights() throws -> ModelWeights {
        let c = meta.config
        var expected: Set<String> = [BlobNames.meta, BlobNames.vocab, BlobNames.pieces]
        func mark(_ n: String) -> String { expected.insert(n); return n }
        func norm(_ p: String) throws -> LayerNormWeights {
            LayerNormWeights(gamma: try floats(mark("\(p).gamma"), [c.dim]), beta: try floats(mark("\(p).beta"), [c.dim]))
        }
        // 7-bit weights (qsent-quantize --weight-bits 7): measure each layer's range.
        let measure = meta.quantization["weight_bits"] == "7"
        func int8Linear(_ p: String, n: Int, k: Int) throws -> Linear {
            return .s8(DenseS8(n: n, k: k,
                               packed: try int8s(mark("\(p).packed"), PackedS8.shape(n: n, k: k)),
                               colsum: try int32s(mark("\(p).colsum"), [n]),
                               scale: try floats(mark("\(p).scale"), [n]),
                               bias: try floats(mark("\(p).bias"), [n]), measure: measure))
        }
        func f32Linear(_ p: String, n: Int, k: Int) throws -> Linear {
            .f32(DenseF32(n: n, k: k, weight: try floats(mark("\(p).weight"), [n, k]), bias: try floats(mark("\(p).bias"), [n])))
        }
        let words = EmbeddingTable.s8(rows: try int8s(mark(BlobNames.words), [c.vocabSize, c.dim]),
                                      scales: try floats(mark(BlobNames.wordScales), [c.vocabSize]))
        let positions = try floats(mark(BlobNames.positions), [c.maxPositions, c.dim])
        let embedNorm = try norm(BlobNames.embedNorm)
        var layers: [EncoderLayer] = []
        for i in 0..<c.layers {
            layers.append(try EncoderLayer(config: c, linear: { role, n, k in try int8Linear(role.section(layer: i), n: n, k: k) },
                                           norm: { role, _ in try norm(role.section(layer: i)) }))
        }
        let pre = try int8Linear(BlobNames.pre, n: c.dim, k: c.dim)
        let classifier = try f32Linear(BlobNames.classifier, n: c.labels.count, k: c.dim)
        if let extra = sections.keys.sorted().first(where: { !expected.contains($0) }) {
            throw BlobError.unexpectedSection(path: path, section: extra)
        }
        return ModelWeights(config: c, words: words, positions: positions, embedNorm: embedNorm,
                            layers: layers, pre: pre, classifier: classifier)
    }
}
