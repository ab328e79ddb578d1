import Foundation
import QsentTokenizer

// The .qsent blob: see docs/FORMAT.md for the byte-level description. This file is the one
// place that knows the layout; the quantizer writes through `BlobWriter`, the engine reads
// through `Blob`.

public enum BlobFormat {
    /// "\x89QSENT\r\n": the high byte and CR LF catch 7-bit and text-mode mangling, like PNG.
    public static let magic: [UInt8] = [0x89, 0x51, 0x53, 0x45, 0x4E, 0x54, 0x0D, 0x0A]
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let entrySize = 128
    public static let alignment = 64
    public static let nameBytes = 48
    public static let maxRank = 4
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
    static let words = "embeddings.words.q"
    static let wordScales = "embeddings.words.scale"
    static let positions = "embeddings.positions"
    static let embedNorm = "embeddings.norm"
    static func layer(_ i: Int) -> String { "layer.\(i)" }
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
        func align(_ x: Int) -> Int { (x + BlobFormat.alignment - 1) / BlobFormat.alignment * BlobFormat.alignment }
        let tableOffset = BlobFormat.headerSize
        var offset = align(tableOffset + sections.count * BlobFormat.entrySize)
        var table: [UInt8] = []
        var layout: [Int] = []
        for s in sections {
            layout.append(offset)
            var e = [UInt8](repeating: 0, count: BlobFormat.entrySize)
            let name = Array(s.name.utf8)
            e.replaceSubrange(0..<name.count, with: name)
            put32(&e, 48, s.dtype.rawValue)
            put32(&e, 52, UInt32(s.shape.count))
            for (i, d) in s.shape.enumerated() { put64(&e, 56 + 8 * i, UInt64(d)) }
            put64(&e, 88, UInt64(offset))
            put64(&e, 96, UInt64(s.bytes.count))
            put64(&e, 104, XXH64.hash(s.bytes))
            table += e
            offset = align(offset + s.bytes.count)
        }
        let fileSize = layout.last.map { _ in align(layout.last! + sections.last!.bytes.count) } ?? align(tableOffset)
        var out = [UInt8](repeating: 0, count: fileSize)
        var h = [UInt8](repeating: 0, count: BlobFormat.headerSize)
        h.replaceSubrange(0..<8, with: BlobFormat.magic)
        put32(&h, 8, BlobFormat.version)
        put32(&h, 12, UInt32(BlobFormat.headerSize))
        put64(&h, 16, UInt64(fileSize))
        put32(&h, 24, UInt32(sections.count))
        put32(&h, 28, UInt32(BlobFormat.entrySize))
        put64(&h, 32, UInt64(tableOffset))
        put64(&h, 40, XXH64.hash(table))
        put64(&h, 48, XXH64.hash(Array(h[0..<48])))
        out.replaceSubrange(0..<BlobFormat.headerSize, with: h)
        out.replaceSubrange(tableOffset..<(tableOffset + table.count), with: table)
        for (s, o) in zip(sections, layout) { out.replaceSubrange(o..<(o + s.bytes.count), with: s.bytes) }
        return out
    }

    private func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { b[at + i] = UInt8((v >> (8 * UInt32(i))) & 0xFF) }
    }
    private func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
        for i in 0..<8 { b[at + i] = UInt8((v >> (8 * UInt64(i))) & 0xFF) }
    }
}

extension BlobWriter {
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

/// A mapped, verified `.qsent` blob. Opening checks the header, the section table, every
/// section's bounds, alignment, type and shape, and every section's checksum; weights are then
/// used in place from the read-only mapping (nothing is copied).
public final class Blob: @unchecked Sendable {
    struct Section {
        let name: String
        let dtype: BlobDType
        let shape: [Int]
        let offset: Int
        let size: Int
        let checksum: UInt64
    }

    public let path: String
    public let file: MappedFile
    public let meta: BlobMeta
    /// Identity of the blob: XXH64 of the section table (which holds every section's checksum).
    public let checksum: UInt64
    let sections: [String: Section]

    public var modelName: String { meta.modelName }
    public var maxTokens: Int { meta.maxTokens }
    public var checksumHex: String {
        let s = String(checksum, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    public init(path: String, verify: Bool = true) throws {
        self.path = path
        let f = try MappedFile(path: path)
        file = f
        guard f.count >= BlobFormat.headerSize, Array(f.slice(0..<8)) == BlobFormat.magic else {
            throw BlobError.notABlob(path: path)
        }
        let version = f.loadLE(UInt32.self, at: 8)
        let headerHash = f.loadLE(UInt64.self, at: 48)
        guard XXH64.hash(f.slice(0..<48)) == headerHash else {
            if version > BlobFormat.version { throw BlobError.newerVersion(path: path, version: version) }
            throw BlobError.corruptHeader(path: path, problem: "header checksum mismatch")
        }
        guard version <= BlobFormat.version else { throw BlobError.newerVersion(path: path, version: version) }
        guard version == BlobFormat.version else {
            throw BlobError.corruptHeader(path: path, problem: "unknown version \(version)")
        }
        let fileSize = f.loadLE(UInt64.self, at: 16)
        guard fileSize == UInt64(f.count) else {
            if fileSize > UInt64(f.count) { throw BlobError.truncated(path: path, expected: fileSize, actual: f.count) }
            throw BlobError.corruptHeader(path: path, problem: "file is \(f.count) bytes, header says \(fileSize)")
        }
        guard f.loadLE(UInt32.self, at: 12) == UInt32(BlobFormat.headerSize),
              f.loadLE(UInt32.self, at: 28) == UInt32(BlobFormat.entrySize) else {
            throw BlobError.corruptHeader(path: path, problem: "unexpected header or entry size")
        }
        let count = Int(f.loadLE(UInt32.self, at: 24))
        let tableOffset = f.loadLE(UInt64.self, at: 32)
        guard tableOffset == UInt64(BlobFormat.headerSize), count > 0, count < 100_000,
              BlobFormat.headerSize + count * BlobFormat.entrySize <= f.count else {
            throw BlobError.corruptHeader(path: path, problem: "section table out of range")
        }
        let table = f.slice(BlobFormat.headerSize..<(BlobFormat.headerSize + count * BlobFormat.entrySize))
        let tableHash = XXH64.hash(table)
        guard tableHash == f.loadLE(UInt64.self, at: 40) else {
            throw BlobError.corruptHeader(path: path, problem: "section table checksum mismatch")
        }
        checksum = tableHash

        var sections: [String: Section] = [:]
        var ranges: [(Int, Int, String)] = []
        let dataStart = BlobFormat.headerSize + count * BlobFormat.entrySize
        for i in 0..<count {
            let at = BlobFormat.headerSize + i * BlobFormat.entrySize
            let nameBytes = Array(f.slice(at..<(at + BlobFormat.nameBytes))).prefix { $0 != 0 }
            guard let name = String(validating: nameBytes, as: UTF8.self), !name.isEmpty else {
                throw BlobError.corruptHeader(path: path, problem: "section \(i) has no valid name")
            }
            guard let dtype = BlobDType(rawValue: f.loadLE(UInt32.self, at: at + 48)) else {
                throw BlobError.badSection(path: path, section: name, problem: "unknown element type")
            }
            let rank = Int(f.loadLE(UInt32.self, at: at + 52))
            guard rank <= BlobFormat.maxRank else {
                throw BlobError.badSection(path: path, section: name, problem: "rank \(rank) > \(BlobFormat.maxRank)")
            }
            var shape: [Int] = []
            var elements: UInt64 = 1
            for r in 0..<rank {
                let d = f.loadLE(UInt64.self, at: at + 56 + 8 * r)
                guard d < (1 << 40) else { throw BlobError.badSection(path: path, section: name, problem: "dimension too large") }
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw BlobError.badSection(path: path, section: name, problem: "shape overflows") }
                elements = p
                shape.append(Int(d))
            }
            let offset = f.loadLE(UInt64.self, at: at + 88)
            let size = f.loadLE(UInt64.self, at: at + 96)
            guard size == elements * UInt64(dtype.size) else {
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
                            checksum: f.loadLE(UInt64.self, at: at + 104))
            sections[name] = s
            ranges.append((s.offset, s.offset + s.size, name))
        }
        ranges.sort { $0.0 < $1.0 }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.0 < a.1 {
            throw BlobError.badSection(path: path, section: b.2, problem: "overlaps '\(a.2)'")
        }
        if verify {
            for s in sections.values.sorted(by: { $0.offset < $1.offset }) {
                guard XXH64.hash(f.slice(s.offset..<(s.offset + s.size))) == s.checksum else {
                    throw BlobError.checksum(path: path, section: s.name)
                }
            }
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

    /// The tokenizer stored in the blob.
    public func tokenizer() throws -> WordPieceTokenizer {
        guard let s = sections[BlobNames.vocab], s.dtype == .bytes, s.size >= 8 else {
            throw BlobError.missingSection(path: path, section: BlobNames.vocab)
        }
        let b = file.slice(s.offset..<(s.offset + s.size))
        let n = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        let stringsAt = 4 + 4 * (n + 1)
        guard n > 0, stringsAt <= b.count else {
            throw BlobError.badSection(path: path, section: BlobNames.vocab, problem: "bad token count")
        }
        var vocab: [String] = []
        vocab.reserveCapacity(n)
        var prev = 0
        for i in 0..<n {
            let end = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 + 4 * (i + 1), as: UInt32.self)))
            guard end >= prev, stringsAt + end <= b.count,
                  let t = String(validating: UnsafeRawBufferPointer(rebasing: b[(stringsAt + prev)..<(stringsAt + end)]), as: UTF8.self) else {
                throw BlobError.badSection(path: path, section: BlobNames.vocab, problem: "token \(i) is out of range or not UTF-8")
            }
            vocab.append(t)
            prev = end
        }
        return try WordPieceTokenizer(vocabulary: vocab, settings: meta.tokenizer)
    }

    /// The int8 weights, in place in the mapping.
    func weights() throws -> ModelWeights {
        let c = meta.config
        var expected: Set<String> = [BlobNames.meta, BlobNames.vocab]
        func mark(_ n: String) -> String { expected.insert(n); return n }
        func norm(_ p: String) throws -> LayerNormWeights {
            LayerNormWeights(gamma: try floats(mark("\(p).gamma"), [c.dim]), beta: try floats(mark("\(p).beta"), [c.dim]))
        }
        func int8Linear(_ p: String, n: Int, k: Int) throws -> Linear {
            let np = (n + 15) / 16 * 16, kp = (k + 3) / 4 * 4
            return .s8(DenseS8(n: n, k: k,
                               packed: try int8s(mark("\(p).packed"), [np, kp]),
                               colsum: try int32s(mark("\(p).colsum"), [n]),
                               scale: try floats(mark("\(p).scale"), [n]),
                               bias: try floats(mark("\(p).bias"), [n])))
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
            let p = BlobNames.layer(i)
            layers.append(EncoderLayer(
                qkv: try int8Linear("\(p).qkv", n: 3 * c.dim, k: c.dim),
                out: try int8Linear("\(p).out", n: c.dim, k: c.dim),
                attnNorm: try norm("\(p).attn_norm"),
                ffn1: try int8Linear("\(p).ffn1", n: c.hidden, k: c.dim),
                ffn2: try int8Linear("\(p).ffn2", n: c.dim, k: c.hidden),
                outNorm: try norm("\(p).out_norm")))
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
