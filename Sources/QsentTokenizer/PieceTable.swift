import QsentJSON
// Open-addressing hash table from UTF-8 byte strings to token ids, for WordPiece. Word-start
// pieces and continuation pieces (vocabulary entries with the continuing prefix, prefix
// stripped) share one table; the kind is part of the hash seed. FNV-1a with different seeds
// is a bijection of the seed for a fixed byte string, so the same bytes never collide across
// kinds. Lookups take a byte range of the caller's buffer: no substring is ever allocated.
//
// Layout, chosen to keep the table small (cache misses dominate): a slot is one UInt64,
// hash << 32 | offset (0 = empty); at `offset` in `entries` are the id (4 bytes LE), the key
// length (2 bytes LE) and the key bytes.
//
// The .qsent blob stores the built table (`Parts`, docs/FORMAT.md "tokenizer.pieces"), so a
// load copies three arrays instead of hashing and inserting every piece.

public struct PieceTable: Sendable, Equatable {
    static let startSeed: UInt32 = 2_166_136_261  // FNV-1a offset basis
    static let continuationSeed: UInt32 = 2_166_136_261 ^ 0x5BD1_E995
    static let prime: UInt32 = 16_777_619
    static let multiplier: UInt32 = 0x9E37_79B1

    private(set) var slots: [UInt64]
    private(set) var entries: [UInt8]
    let shift: UInt32
    /// One-bit-per-hash filter (about 14 bits per key, 64 KB for BERT): most absent probes
    /// of the longest-match search are rejected here, in cache, without touching `slots`.
    private(set) var filter: [UInt64]
    let filterShift: UInt32
    static let filterMultiplier: UInt32 = 0x85EB_CA6B
    /// Longest key of each kind in bytes; no match can be longer.
    private(set) var maxStartLength = 0
    private(set) var maxContinuationLength = 0

    init(capacityFor n: Int) {
        var bits: UInt32 = 4
        // Load factor at most ~0.6.
        while (1 << bits) * 3 < max(16, n) * 5 { bits += 1 }
        slots = [UInt64](repeating: 0, count: 1 << Int(bits))
        entries = [0]  // offset 0 is never used, so a slot of 0 means empty
        entries.reserveCapacity(n * 16)
        shift = 32 - bits
        var fbits: UInt32 = 9
        while (1 << fbits) < max(512, n * 14) && fbits < 30 { fbits += 1 }
        filter = [UInt64](repeating: 0, count: 1 << Int(fbits - 6))
        filterShift = 32 - fbits
    }

    /// The table as plain arrays: what the blob stores, and what `init(parts:)` checks.
    public struct Parts: Sendable, Equatable {
        public var slots: [UInt64]
        public var filter: [UInt64]
        public var entries: [UInt8]
        public var maxStartLength: Int
        public var maxContinuationLength: Int

        public init(slots: [UInt64], filter: [UInt64], entries: [UInt8], maxStartLength: Int, maxContinuationLength: Int) {
            self.slots = slots
            self.filter = filter
            self.entries = entries
            self.maxStartLength = maxStartLength
            self.maxContinuationLength = maxContinuationLength
        }
    }

    public var parts: Parts {
        Parts(slots: slots, filter: filter, entries: entries, maxStartLength: maxStartLength,
              maxContinuationLength: maxContinuationLength)
    }

    /// A stored table, checked so that no lookup can index out of bounds or probe forever:
    /// power-of-two slot and filter sizes, an empty slot, every entry inside `entries` with an
    /// id below `vocabularyCount` and a key no longer than the recorded maxima. (A table that
    /// passes but does not match the vocabulary can only give wrong ids, never bad memory; the
    /// blob's checksums make that the writer's table.) Returns the problem, or nil.
    public static func problem(_ p: Parts, vocabularyCount: Int) -> String? {
        let n = p.slots.count
        guard n >= 16, n & (n - 1) == 0, n <= 1 << 30 else { return "slot count \(n) is not a power of two in 16…2^30" }
        let f = p.filter.count
        guard f >= 8, f & (f - 1) == 0, f <= 1 << 24 else { return "filter size \(f) words is not a power of two in 8…2^24" }
        guard !p.entries.isEmpty, p.entries.count <= Int(UInt32.max) else { return "entries size \(p.entries.count) is out of range" }
        guard (0...0xFFFF).contains(p.maxStartLength), (0...0xFFFF).contains(p.maxContinuationLength) else {
            return "longest key lengths \(p.maxStartLength), \(p.maxContinuationLength) are out of range"
        }
        let longest = max(p.maxStartLength, p.maxContinuationLength)
        var empty = false
        let e = p.entries
        for s in p.slots {
            if s == 0 { empty = true; continue }
            let off = Int(truncatingIfNeeded: s & 0xFFFF_FFFF)
            guard off >= 1, off + 6 <= e.count else { return "a slot points outside the entries" }
            let len = length(e, off)
            guard len >= 1, len <= longest, off + 6 + len <= e.count else { return "an entry's key is out of range" }
            let i = id(e, off)
            guard i >= 0, Int(i) < vocabularyCount else { return "an entry's id \(i) is not below the vocabulary size \(vocabularyCount)" }
        }
        guard empty else { return "no empty slot" }
        return nil
    }

    /// A table from stored parts; throws if `problem` finds one.
    public init(parts p: Parts, vocabularyCount: Int) throws(TableError) {
        if let why = PieceTable.problem(p, vocabularyCount: vocabularyCount) { throw TableError(problem: why) }
        slots = p.slots
        filter = p.filter
        entries = p.entries
        shift = UInt32(32 - p.slots.count.trailingZeroBitCount)
        filterShift = UInt32(32 - (p.filter.count * 64).trailingZeroBitCount)
        maxStartLength = p.maxStartLength
        maxContinuationLength = p.maxContinuationLength
    }

    public struct TableError: Error, Equatable, CustomStringConvertible {
        public var problem: String
        public var description: String { problem }
    }

    @inline(__always)
    static func filterIndex(_ h: UInt32, _ shift: UInt32) -> Int { Int((h &* filterMultiplier) >> shift) }

    @inline(__always)
    static func hash<C: Collection>(_ bytes: C, seed: UInt32) -> UInt32 where C.Element == UInt8 {
        var h = seed
        for b in bytes { h = (h ^ UInt32(b)) &* prime }
        return h
    }

    @inline(__always)
    static func id(_ entries: [UInt8], _ offset: Int) -> Int32 {
        Int32(bitPattern: UInt32(entries[offset]) | UInt32(entries[offset + 1]) << 8
            | UInt32(entries[offset + 2]) << 16 | UInt32(entries[offset + 3]) << 24)
    }

    @inline(__always)
    static func length(_ entries: [UInt8], _ offset: Int) -> Int {
        Int(entries[offset + 4]) | Int(entries[offset + 5]) << 8
    }

    /// Slot index for key bytes[lo..<hi] with hash h, and the entry offset if present.
    private func find(_ bytes: [UInt8], _ lo: Int, _ hi: Int, hash h: UInt32) -> (slot: Int, offset: Int?) {
        let mask = slots.count - 1
        var i = Int((h &* PieceTable.multiplier) >> shift)
        let len = hi - lo
        while true {
            let s = slots[i]
            if s == 0 { return (i, nil) }
            let off = Int(truncatingIfNeeded: s & 0xFFFF_FFFF)
            if UInt32(truncatingIfNeeded: s >> 32) == h && PieceTable.length(entries, off) == len {
                var e = off + 6
                var k = lo
                while k < hi && entries[e] == bytes[k] {
                    e += 1
                    k += 1
                }
                if k == hi { return (i, off) }
            }
            i = (i + 1) & mask
        }
    }

    /// Builds the table for a vocabulary (id = index). Pieces starting with `prefix` are also
    /// entered, without it, as continuation pieces (with an empty prefix, every piece is).
    public static func build(vocabulary: [String], prefix: [UInt8]) -> PieceTable {
        // All pieces in one flat byte array, so hashing and comparing index plain arrays.
        var flat: [UInt8] = []
        flat.reserveCapacity(vocabulary.count * 8)
        var bounds = [Int](repeating: 0, count: vocabulary.count + 1)
        var continuationCount = 0
        let p = prefix.count
        for (i, piece) in vocabulary.enumerated() {
            let lo = flat.count
            flat.append(contentsOf: piece.utf8)
            bounds[i + 1] = flat.count
            if flat.count - lo >= p && flat[lo..<(lo + p)].elementsEqual(prefix) { continuationCount += 1 }
        }
        var table = PieceTable(capacityFor: vocabulary.count + continuationCount)
        for i in 0..<vocabulary.count {
            let lo = bounds[i], hi = bounds[i + 1]
            table.insert(flat, lo, hi, continuation: false, id: Int32(i))
            if hi - lo >= p && flat[lo..<(lo + p)].elementsEqual(prefix) {
                table.insert(flat, lo + p, hi, continuation: true, id: Int32(i))
            }
        }
        return table
    }

    /// Inserts bytes[lo..<hi] or overwrites its id (the last duplicate wins, as in Hugging
    /// Face's vocab loading). Keys longer than 65535 bytes are skipped: no word is that long.
    mutating func insert(_ bytes: [UInt8], _ lo: Int, _ hi: Int, continuation: Bool, id: Int32) {
        let len = hi - lo
        guard len > 0 && len <= 0xFFFF else { return }
        var h = continuation ? PieceTable.continuationSeed : PieceTable.startSeed
        for k in lo..<hi { h = (h ^ UInt32(bytes[k])) &* PieceTable.prime }
        let (slot, existing) = find(bytes, lo, hi, hash: h)
        let bits = UInt32(bitPattern: id)
        if let off = existing {
            for k in 0..<4 { entries[off + k] = UInt8(truncatingIfNeeded: bits >> (8 * UInt32(k))) }
            return
        }
        let off = entries.count
        entries.append(UInt8(truncatingIfNeeded: bits))
        entries.append(UInt8(truncatingIfNeeded: bits >> 8))
        entries.append(UInt8(truncatingIfNeeded: bits >> 16))
        entries.append(UInt8(truncatingIfNeeded: bits >> 24))
        entries.append(UInt8(len & 0xFF))
        entries.append(UInt8(len >> 8))
        entries.append(contentsOf: bytes[lo..<hi])
        slots[slot] = UInt64(h) << 32 | UInt64(off)
        let f = PieceTable.filterIndex(h, filterShift)
        filter[f >> 6] |= 1 << UInt64(f & 63)
        if continuation {
            maxContinuationLength = max(maxContinuationLength, len)
        } else {
            maxStartLength = max(maxStartLength, len)
        }
    }

    /// Id of a word-start piece, or nil (used for special tokens; not on the hot path).
    func lookup(_ key: String) -> Int32? {
        let bytes = Array(key.utf8)
        guard !bytes.isEmpty else { return nil }
        let (_, off) = find(bytes, 0, bytes.count, hash: PieceTable.hash(bytes, seed: PieceTable.startSeed))
        return off.map { PieceTable.id(entries, $0) }
    }
}

/// The vocabulary as one byte buffer and the end offset of each piece (id = index): what the
/// blob's `tokenizer.vocab` section holds, kept as is instead of one String per piece.
public struct PieceList: Sendable, Equatable {
    /// UTF-8 of all pieces back to back.
    public let bytes: [UInt8]
    /// ends[i] is where piece i ends in `bytes`; it starts where piece i - 1 ends (0 for i = 0).
    public let ends: [UInt32]

    public var count: Int { ends.count }

    public init(_ strings: [String]) {
        var b: [UInt8] = []
        var e: [UInt32] = []
        e.reserveCapacity(strings.count)
        for s in strings {
            b.append(contentsOf: s.utf8)
            e.append(UInt32(b.count))
        }
        bytes = b
        ends = e
    }

    /// Stored pieces; throws unless the ends are non-decreasing, inside `bytes`, and every
    /// piece is valid UTF-8 on its own.
    public init(bytes: [UInt8], ends: [UInt32]) throws(PieceTable.TableError) {
        var prev = 0
        for (i, end) in ends.enumerated() {
            let e = Int(end)
            guard e >= prev, e <= bytes.count else { throw PieceTable.TableError(problem: "token \(i) is out of range") }
            guard UTF8Validation.firstInvalidOffset(bytes[prev..<e]) == nil else { throw PieceTable.TableError(problem: "token \(i) is not UTF-8") }
            prev = e
        }
        self.bytes = bytes
        self.ends = ends
    }

    public func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : Int(ends[i - 1]))..<Int(ends[i]) }

    public subscript(i: Int) -> String { String(decoding: bytes[range(i)], as: UTF8.self) }

    public var strings: [String] { (0..<count).map { self[$0] } }
}
