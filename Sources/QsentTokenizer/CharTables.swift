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

    private init() {
        var flat = [UInt8](repeating: 0, count: 0x110000)
        // The generated literal is wrapped at arbitrary points: drop the line breaks first.
        for item in UnicodeTables.flagRanges.filter({ $0 != "\n" }).split(separator: ",") {
            // "start-end:flags", hex
            let parts = item.split(separator: ":")
            let bounds = parts[0].split(separator: "-")
            let lo = Int(bounds[0], radix: 16)!, hi = Int(bounds[1], radix: 16)!
            let f = UInt8(parts[1], radix: 16)!
            for cp in lo...hi { flat[cp] = f }
        }
        var s1 = [UInt16](repeating: 0, count: 0x1100)
        var s2: [UInt8] = []
        var blockIndex: [[UInt8]: UInt16] = [:]
        for b in 0..<0x1100 {
            let block = Array(flat[(b << 8)..<((b + 1) << 8)])
            if let idx = blockIndex[block] {
                s1[b] = idx
            } else {
                let idx = UInt16(s2.count >> 8)
                blockIndex[block] = idx
                s2.append(contentsOf: block)
                s1[b] = idx
            }
        }
        stage1 = s1
        stage2 = s2
        stripMap = CharTables.parseMap(UnicodeTables.stripMap)
        lowerMap = CharTables.parseMap(UnicodeTables.lowerMap)
        var ccc: [UInt32: UInt8] = [:]
        for entry in UnicodeTables.reorderCCC.filter({ $0 != "\n" }).split(separator: ";") {
            let kv = entry.split(separator: "=")
            ccc[UInt32(kv[0], radix: 16)!] = UInt8(kv[1], radix: 16)!
        }
        reorderCCC = ccc
        reorderRange = ccc.isEmpty ? 0...0 : ccc.keys.min()!...ccc.keys.max()!
        dropBlockers = Set(UnicodeTables.dropBlockers.filter { $0 != "\n" }.split(separator: ",").map { UInt32($0, radix: 16)! })
    }

    private static func parseMap(_ text: String) -> [UInt32: [UInt32]] {
        var map: [UInt32: [UInt32]] = [:]
        let joined = text.filter { $0 != "\n" }
        for entry in joined.split(separator: ";") {
            let kv = entry.split(separator: "=", omittingEmptySubsequences: false)
            let key = UInt32(kv[0], radix: 16)!
            map[key] = kv[1].split(separator: " ").map { UInt32($0, radix: 16)! }
        }
        return map
    }

    @inline(__always)
    func flags(_ cp: UInt32) -> CharFlags {
        let block = Int(stage1[Int(cp >> 8)])
        return CharFlags(rawValue: stage2[(block << 8) | Int(cp & 0xFF)])
    }

    /// NFD minus nonspacing marks, for a scalar flagged `.stripMap`.
    func stripped(_ cp: UInt32) -> [UInt32] {
        if cp >= 0xAC00 && cp <= 0xD7A3 {  // Hangul syllables: algorithmic decomposition
            let s = cp - 0xAC00
            let l = 0x1100 + s / 588, v = 0x1161 + (s % 588) / 28, t = 0x11A7 + s % 28
            return t == 0x11A7 ? [l, v] : [l, v, t]
        }
        return stripMap[cp] ?? [cp]
    }
}

/// The combined normalizer mapping (strip_accents then lowercase) for one configuration.
struct NormalizerMap: Sendable {
    let map: [UInt32: [UInt32]]
    let mask: CharFlags

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
        var map: [UInt32: [UInt32]] = [:]
        if !mask.isEmpty {
            var keys = Set<UInt32>()
            if lower { keys.formUnion(t.lowerMap.keys) }
            if strip {
                keys.formUnion(t.stripMap.keys)
                for cp in UInt32(0xAC00)...0xD7A3 { keys.insert(cp) }
                // nonspacing marks (empty output)
                for cp in UInt32(0)..<0x110000 where t.flags(cp).contains(.stripDrop) { keys.insert(cp) }
            }
            for cp in keys {
                let f = t.flags(cp)
                var first: [UInt32]
                if strip && f.contains(.stripDrop) {
                    first = []
                } else if strip && f.contains(.stripMap) {
                    first = t.stripped(cp)
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
                if first != [cp] { map[cp] = first }
            }
        }
        self.map = map
    }
}
