// Per-scalar behaviour of BertNormalizer and BertPreTokenizer, decoded once per process from
// the generated UnicodeTables.swift (immutable `static let`s, built lazily and thread-safely).

struct CharFlags: OptionSet, Sendable {
    let rawValue: UInt8
    /// clean_text drops it (\0, U+FFFD, Cc/Cf/Co/Cs except \t \n \r).
    static let control = CharFlags(rawValue: 1)
    /// clean_text maps it to ' ' (\t \n \r and Rust char::is_whitespace).
    static let cleanWhitespace = CharFlags(rawValue: 2)
    /// BertPreTokenizer splits on it (Rust char::is_whitespace).
    static let splitWhitespace = CharFlags(rawValue: 4)
    /// BertPreTokenizer isolates it (ASCII punctuation or Unicode P*).
    static let punctuation = CharFlags(rawValue: 8)
    /// handle_chinese_chars puts spaces around it.
    static let cjk = CharFlags(rawValue: 16)
    /// strip_accents removes it (a nonspacing mark).
    static let stripDrop = CharFlags(rawValue: 32)
    /// strip_accents replaces it (NFD minus nonspacing marks).
    static let stripMap = CharFlags(rawValue: 64)
    /// lowercase replaces it.
    static let lowerMap = CharFlags(rawValue: 128)
}

struct CharTables: Sendable {
    static let shared = CharTables()

    /// Two-stage lookup: block index per 256 scalars, then 256 flag bytes per distinct block.
    let stage1: [UInt16]
    let stage2: [UInt8]
    let stripMap: [UInt32: [UInt32]]
    let lowerMap: [UInt32: [UInt32]]
    /// Canonical combining class (in HF's NFD tables) of the marks that survive strip_accents
    /// with a non-zero class; NFD's canonical ordering can swap them.
    let reorderCCC: [UInt32: UInt8]
    let reorderRange: ClosedRange<UInt32>
    /// Marks removed by strip_accents whose combining class is 0: they separate reordering runs.
    let dropBlockers: Set<UInt32>

    /// RFC 4648 base64 (the tables' own text: line breaks and other characters outside the
    /// alphabet are skipped; decoding stops at "=").
    static func base64Decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 4 * 3)
        var acc: UInt32 = 0, bits = 0
        for c in text.utf8 {
            let v: UInt32
            switch c {
            case 0x41...0x5A: v = UInt32(c - 0x41)
            case 0x61...0x7A: v = UInt32(c - 0x61 + 26)
            case 0x30...0x39: v = UInt32(c - 0x30 + 52)
            case 0x2B: v = 62
            case 0x2F: v = 63
            case 0x3D: return out
            default: continue
            }
            acc = (acc << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }

    private init() {
        let s1 = CharTables.base64Decode(UnicodeTables.stage1)
        let s2 = CharTables.base64Decode(UnicodeTables.stage2)
        var blocks = [UInt16](repeating: 0, count: s1.count / 2)
        let raw = s1
        for i in 0..<blocks.count { blocks[i] = UInt16(raw[2 * i]) | UInt16(raw[2 * i + 1]) << 8 }
        precondition(blocks.count == 0x1100 && s2.count % 256 == 0, "corrupt UnicodeTables")
        stage1 = blocks
        stage2 = s2
        stripMap = CharTables.parseMap(UnicodeTables.stripMap)
        lowerMap = CharTables.parseMap(UnicodeTables.lowerMap)
        var ccc: [UInt32: UInt8] = [:]
        for (k, v) in CharTables.parseEntries(UnicodeTables.reorderCCC) {
            precondition(v.count == 1 && v[0] <= 0xFF, "corrupt UnicodeTables.reorderCCC")
            ccc[k] = UInt8(v[0])
        }
        reorderCCC = ccc
        reorderRange = ccc.isEmpty ? 0...0 : ccc.keys.min()!...ccc.keys.max()!
        dropBlockers = Set(CharTables.parseEntries(UnicodeTables.dropBlockers).map(\.key))
    }

    private static func parseMap(_ text: String) -> [UInt32: [UInt32]] {
        var map: [UInt32: [UInt32]] = [:]
        for (k, v) in parseEntries(text) { map[k] = v }
        return map
    }

    /// The generated lists, read over their UTF-8 bytes (a String/Character pass cost ~70 M
    /// instructions at every start, a third of a cold `qsent classify`): entries are separated
    /// by ";" or ",", an entry is a hex key with an optional "=" and hex values separated by
    /// spaces; newlines are line wrapping anywhere, even inside a number.
    static func parseEntries(_ text: String) -> [(key: UInt32, values: [UInt32])] {
        var out: [(key: UInt32, values: [UInt32])] = []
        var key: UInt32?
        var values: [UInt32] = []
        var number: UInt32 = 0
        var digits = 0
        func endNumber() {
            guard digits > 0 else { return }
            if key == nil { key = number } else { values.append(number) }
            number = 0
            digits = 0
        }
        func endEntry() {
            endNumber()
            if let k = key { out.append((k, values)) }
            key = nil
            values = []
        }
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): number = number << 4 | UInt32(c &- 0x30); digits += 1
            case UInt8(ascii: "A")...UInt8(ascii: "F"): number = number << 4 | UInt32(c &- 0x37); digits += 1
            case UInt8(ascii: "a")...UInt8(ascii: "f"): number = number << 4 | UInt32(c &- 0x57); digits += 1
            case UInt8(ascii: "="):
                endNumber()
                precondition(key != nil && values.isEmpty, "corrupt UnicodeTables: '=' without a key")
            case UInt8(ascii: " "): endNumber()
            case UInt8(ascii: ";"), UInt8(ascii: ","): endEntry()
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): continue
            default: preconditionFailure("corrupt UnicodeTables: byte \(c)")
            }
            precondition(digits <= 8, "corrupt UnicodeTables: number too long")
        }
        endEntry()
        return out
    }

    @inline(__always)
    func flags(_ cp: UInt32) -> CharFlags {
        let block = Int(stage1[Int(cp >> 8)])
        return CharFlags(rawValue: stage2[(block << 8) | Int(cp & 0xFF)])
    }
}

/// The combined normalizer mapping (strip_accents then lowercase) for one configuration, as
/// scalar -> (offset << 8 | count) into one flat array. Hangul syllables are decomposed
/// algorithmically by the caller (`hangul`), not stored.
struct NormalizerMap: Sendable {
    let map: [UInt32: UInt32]
    let data: [UInt32]
    let mask: CharFlags
    /// strip_accents is on: Hangul syllables decompose into conjoining jamo.
    let hangul: Bool

    static let stripLower = NormalizerMap(strip: true, lower: true)
    static let stripOnly = NormalizerMap(strip: true, lower: false)
    static let lowerOnly = NormalizerMap(strip: false, lower: true)
    static let identity = NormalizerMap(strip: false, lower: false)

    static func forSettings(strip: Bool, lower: Bool) -> NormalizerMap {
        switch (strip, lower) {
        case (true, true): return .stripLower
        case (true, false): return .stripOnly
        case (false, true): return .lowerOnly
        case (false, false): return .identity
        }
    }

    private init(strip: Bool, lower: Bool) {
        let t = CharTables.shared
        var mask: CharFlags = []
        if strip { mask.formUnion([.stripDrop, .stripMap]) }
        if lower { mask.insert(.lowerMap) }
        self.mask = mask
        hangul = strip
        var map: [UInt32: UInt32] = [:]
        var data: [UInt32] = []
        if !mask.isEmpty {
            var keys: [UInt32] = []
            if lower { keys.append(contentsOf: t.lowerMap.keys) }
            if strip {
                keys.append(contentsOf: t.stripMap.keys)
                // Nonspacing marks (empty output): scan only the blocks that have any. Most of
                // the 0x1100 stage-1 entries share a few distinct blocks, so each distinct block
                // is scanned once (scanning every entry's 256 bytes was 5 M instructions a start).
                let drop = CharFlags.stripDrop.rawValue
                var blockHasDrop = [Bool](repeating: false, count: t.stage2.count >> 8)
                for blk in blockHasDrop.indices {
                    var any: UInt8 = 0
                    for i in (blk << 8)..<((blk << 8) + 256) { any |= t.stage2[i] & drop }
                    blockHasDrop[blk] = any != 0
                }
                for b in 0..<0x1100 where blockHasDrop[Int(t.stage1[b])] {
                    let base = Int(t.stage1[b]) << 8
                    for lo in 0..<256 where t.stage2[base + lo] & drop != 0 {
                        keys.append(UInt32(b << 8 | lo))
                    }
                }
            }
            for cp in keys where map[cp] == nil && !(strip && cp >= 0xAC00 && cp <= 0xD7A3) {
                let f = t.flags(cp)
                var first: [UInt32]
                if strip && f.contains(.stripDrop) {
                    first = []
                } else if strip && f.contains(.stripMap) {
                    first = t.stripMap[cp] ?? [cp]
                } else {
                    first = [cp]
                }
                if lower {
                    var out: [UInt32] = []
                    for x in first {
                        if t.flags(x).contains(.lowerMap), let l = t.lowerMap[x] { out.append(contentsOf: l) } else { out.append(x) }
                    }
                    first = out
                }
                if first != [cp] {
                    map[cp] = UInt32(data.count) << 8 | UInt32(first.count)
                    data.append(contentsOf: first)
                }
            }
        }
        self.map = map
        self.data = data
    }
}
