/// printf's `%.Nf`, `%.Ne` and `%.Ng` without Foundation or libc, for the command-line tools'
/// human output. The text is what glibc prints: the exact binary value rounded to the asked
/// digits, ties to even (so `fixed(0.125, 2)` is "0.12", `fixed(2.675, 2)` is "2.67" since the
/// double is 2.67499999…); "-" for negative values including -0; "nan", "inf", "-inf".
/// (JSON numbers are written elsewhere, in the shortest round-trip form: `JSONWriter.number`.)
public enum NumberFormat {
    /// `%.{decimals}f`
    public static func fixed(_ x: Double, _ decimals: Int) -> String {
        precondition(decimals >= 0 && decimals <= 400)
        guard x.isFinite else { return nonFinite(x) }
        var k = ExactDecimal(x).rounded(toScale: decimals)
        if k.count < decimals + 1 { k = [UInt8](repeating: 0, count: decimals + 1 - k.count) + k }
        let split = k.count - decimals
        var s = x.sign == .minus ? "-" : ""
        s += text(k[..<split])
        if decimals > 0 { s += "." + text(k[split...]) }
        return s
    }

    /// `%.{decimals}e`
    public static func scientific(_ x: Double, _ decimals: Int) -> String {
        precondition(decimals >= 0 && decimals <= 400)
        guard x.isFinite else { return nonFinite(x) }
        let (k, exponent) = mantissa(x, digits: decimals + 1)
        var s = x.sign == .minus ? "-" : ""
        s += text(k[..<1])
        if decimals > 0 { s += "." + text(k[1...]) }
        return s + exponentText(exponent)
    }

    /// `%.{significant}g`: `%e` or `%f` style by the exponent, trailing zeros removed.
    public static func general(_ x: Double, _ significant: Int) -> String {
        precondition(significant >= 0 && significant <= 400)
        guard x.isFinite else { return nonFinite(x) }
        let p = max(1, significant)
        let (_, exponent) = mantissa(x, digits: p)
        if exponent < p && exponent >= -4 {
            return trimmingZeros(fixed(x, p - 1 - exponent))
        }
        let e = scientific(x, p - 1)
        let at = e.firstIndex(of: "e")!
        return trimmingZeros(String(e[..<at])) + String(e[at...])
    }

    /// `%-{width}s` (left) or `%{width}s`: pads with spaces to `width` characters.
    public static func padded(_ s: String, to width: Int, left: Bool = true) -> String {
        let pad = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + pad : pad + s
    }

    // MARK: -

    private static func nonFinite(_ x: Double) -> String {
        x.isNaN ? (x.sign == .minus ? "-nan" : "nan") : (x < 0 ? "-inf" : "inf")
    }

    /// The first `digits` significant digits (rounded) and the decimal exponent of the first.
    private static func mantissa(_ x: Double, digits: Int) -> ([UInt8], Int) {
        let d = ExactDecimal(x)
        guard !d.digits.isEmpty else { return ([UInt8](repeating: 0, count: digits), 0) }
        var exponent = d.pointPosition - 1
        var k = d.rounded(toScale: digits - 1 - exponent)
        if k.count > digits {  // 9.99… rounded up to 10.0…
            exponent += 1
            k.removeLast(k.count - digits)
        }
        return (k, exponent)
    }

    private static func exponentText(_ e: Int) -> String {
        let magnitude = String(abs(e))
        return (e < 0 ? "e-" : "e+") + (magnitude.count < 2 ? "0" : "") + magnitude
    }

    private static func trimmingZeros(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = Substring(s)
        while t.last == "0" { t.removeLast() }
        if t.last == "." { t.removeLast() }
        return String(t)
    }

    private static func text(_ digits: ArraySlice<UInt8>) -> String {
        String(decoding: digits.map { $0 + 0x30 }, as: UTF8.self)
    }
}

/// The exact decimal expansion of a finite double's magnitude: |x| = 0.d₁d₂…dₙ × 10^pointPosition
/// (no leading or trailing zero digit; no digits for zero). Doubles are dyadic rationals, so
/// the expansion is finite: m·2^e with e < 0 is m·5^-e / 10^-e.
struct ExactDecimal {
    var digits: [UInt8]
    var pointPosition: Int

    init(_ x: Double) {
        let bits = x.bitPattern
        let fraction = bits & ((1 << 52) - 1)
        let biased = Int((bits >> 52) & 0x7FF)
        let m = biased == 0 ? fraction : fraction | (1 << 52)
        let e = biased == 0 ? -1074 : biased - 1075
        guard m != 0 else { digits = []; pointPosition = 0; return }
        var n = BigNat(m)
        var scale = 0
        if e >= 0 {
            n.shiftLeft(e)
        } else {
            n.multiply(byPowerOf5: -e)
            scale = -e
        }
        var d = n.decimalDigits()
        pointPosition = d.count - scale
        while d.last == 0 { d.removeLast() }
        digits = d
    }

    /// The digits of round(|x| · 10^scale) as an integer (ties to even); [] or [0…] means 0.
    func rounded(toScale scale: Int) -> [UInt8] {
        let cut = pointPosition + scale  // how many of `digits` lie left of the cut
        if cut < 0 || digits.isEmpty { return [0] }
        if cut >= digits.count { return digits + [UInt8](repeating: 0, count: cut - digits.count) }
        var kept = Array(digits[..<cut])
        let first = digits[cut]
        let roundUp: Bool
        if first != 5 {
            roundUp = first > 5
        } else if cut + 1 < digits.count {
            roundUp = true  // digits has no trailing zeros: something nonzero follows the 5
        } else {
            roundUp = (kept.last ?? 0) % 2 == 1
        }
        if roundUp {
            var i = kept.count - 1
            while i >= 0 && kept[i] == 9 { kept[i] = 0; i -= 1 }
            if i >= 0 { kept[i] += 1 } else { kept.insert(1, at: 0) }
        }
        return kept.isEmpty ? [0] : kept
    }
}

/// A little arbitrary-precision natural number (base 2^32, least significant limb first): only
/// what `ExactDecimal` needs.
struct BigNat {
    var limbs: [UInt32]

    init(_ v: UInt64) { limbs = [UInt32(truncatingIfNeeded: v), UInt32(truncatingIfNeeded: v >> 32)]; trim() }

    mutating func trim() { while limbs.last == 0 { limbs.removeLast() } }

    mutating func multiply(by f: UInt32) {
        var carry: UInt64 = 0
        for i in limbs.indices {
            let p = UInt64(limbs[i]) * UInt64(f) + carry
            limbs[i] = UInt32(truncatingIfNeeded: p)
            carry = p >> 32
        }
        if carry != 0 { limbs.append(UInt32(carry)) }
    }

    mutating func shiftLeft(_ bits: Int) {
        var left = bits
        while left > 0 { let s = min(31, left); multiply(by: 1 << UInt32(s)); left -= s }
    }

    mutating func multiply(byPowerOf5 k: Int) {
        var left = k
        while left > 0 {
            let s = min(13, left)  // 5^13 < 2^32
            var f: UInt32 = 1
            for _ in 0..<s { f *= 5 }
            multiply(by: f)
            left -= s
        }
    }

    /// Decimal digits, most significant first, no leading zeros ([] for 0).
    func decimalDigits() -> [UInt8] {
        var n = limbs
        var chunks: [UInt32] = []  // base 10^9, least significant first
        while !n.isEmpty {
            var rem: UInt64 = 0
            for i in stride(from: n.count - 1, through: 0, by: -1) {
                let cur = (rem << 32) | UInt64(n[i])
                n[i] = UInt32(cur / 1_000_000_000)
                rem = cur % 1_000_000_000
            }
            chunks.append(UInt32(rem))
            while n.last == 0 { n.removeLast() }
        }
        var out: [UInt8] = []
        for (i, c) in chunks.reversed().enumerated() {
            var d = [UInt8](repeating: 0, count: 9)
            var v = c
            for j in stride(from: 8, through: 0, by: -1) { d[j] = UInt8(v % 10); v /= 10 }
            if i == 0 { out += d.drop { $0 == 0 } } else { out += d }
        }
        return out
    }
}
