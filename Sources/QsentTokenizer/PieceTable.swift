// Open-addressing hash table from UTF-8 byte strings to token ids. Lookups take a byte range
// of a caller's buffer, so WordPiece never allocates substrings. The FNV-1a hash is computed
// incrementally over a word's bytes, which gives the hashes of all prefixes in one pass.

struct PieceTable: Sendable {
    struct Slot: Sendable {
        var hash: UInt32 = 0
        var offset: UInt32 = 0
        var length: UInt32 = 0  // 0 = empty slot
        var id: Int32 = -1
    }

    static let fnvOffset: UInt32 = 2_166_136_261
    static let fnvPrime: UInt32 = 16_777_619

    private(set) var slots: [Slot]
    private(set) var keyBytes: [UInt8]
    private let shift: UInt32
    /// Longest key in bytes; no match can be longer.
    private(set) var maxKeyLength: Int = 0
    private(set) var count: Int = 0

    init(capacityFor n: Int) {
        var bits: UInt32 = 4
        while (1 << bits) < max(16, n * 2) { bits += 1 }
        slots = [Slot](repeating: Slot(), count: 1 << Int(bits))
        keyBytes = []
        keyBytes.reserveCapacity(n * 8)
        shift = 32 - bits
    }

    @inline(__always)
    static func hash<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var h = fnvOffset
        for b in bytes { h = (h ^ UInt32(b)) &* fnvPrime }
        return h
    }

    @inline(__always)
    private func slotIndex(_ h: UInt32) -> Int { Int((h &* 0x9E37_79B1) >> shift) }

    /// Inserts or overwrites (the last duplicate wins, as in Hugging Face's vocab loading).
    mutating func insert<C: Collection>(_ key: C, id: Int32) where C.Element == UInt8 {
        let len = key.count
        guard len > 0 else { return }
        let h = PieceTable.hash(key)
        let mask = slots.count - 1
        var i = slotIndex(h)
        while slots[i].length != 0 {
            let s = slots[i]
            if s.hash == h && Int(s.length) == len
                && keyBytes[Int(s.offset)..<Int(s.offset) + len].elementsEqual(key)
            {
                slots[i].id = id
                return
            }
            i = (i + 1) & mask
        }
        let off = keyBytes.count
        keyBytes.append(contentsOf: key)
        slots[i] = Slot(hash: h, offset: UInt32(off), length: UInt32(len), id: id)
        maxKeyLength = max(maxKeyLength, len)
        count += 1
    }

    /// Id of `bytes[start..<start+length]` whose FNV-1a hash is `h`, or nil.
    @inline(__always)
    func lookup(hash h: UInt32, bytes: [UInt8], start: Int, length: Int) -> Int32? {
        let mask = slots.count - 1
        var i = slotIndex(h)
        while true {
            let s = slots[i]
            if s.length == 0 { return nil }
            if s.hash == h && Int(s.length) == length {
                var off = Int(s.offset)
                var j = start
                let end = start + length
                var equal = true
                while j < end {
                    if keyBytes[off] != bytes[j] { equal = false; break }
                    off += 1
                    j += 1
                }
                if equal { return s.id }
            }
            i = (i + 1) & mask
        }
    }

    func lookup<C: Collection>(_ key: C) -> Int32? where C.Element == UInt8 {
        let bytes = Array(key)
        return lookup(hash: PieceTable.hash(bytes), bytes: bytes, start: 0, length: bytes.count)
    }

    /// Greedy longest match of a key that is a prefix of `bytes[start..<end]` and ends on a
    /// UTF-8 scalar boundary. `hashes` is scratch space. Returns (id, byte length) or nil.
    @inline(__always)
    func longestPrefixMatch(_ bytes: [UInt8], start: Int, end: Int, hashes: inout [UInt32]) -> (Int32, Int)? {
        let maxLen = min(end - start, maxKeyLength)
        if maxLen <= 0 { return nil }
        if hashes.count < maxLen + 1 { hashes = [UInt32](repeating: 0, count: maxLen + 1) }
        var h = PieceTable.fnvOffset
        var k = 0
        while k < maxLen {
            h = (h ^ UInt32(bytes[start + k])) &* PieceTable.fnvPrime
            k += 1
            hashes[k] = h
        }
        var len = maxLen
        while len > 0 {
            let next = start + len
            // Only try ends on scalar boundaries (the next byte is not a continuation byte).
            if next == end || (bytes[next] & 0xC0) != 0x80 {
                if let id = lookup(hash: hashes[len], bytes: bytes, start: start, length: len) {
                    return (id, len)
                }
            }
            len -= 1
        }
        return nil
    }
}
