/// Builds one JSON line. Every request and answer type of QsentProtocol encodes itself with it,
/// so the daemon, the client and `qsent classify --json` in-process write identical bytes.
public struct JSONWriter: Sendable {
    public private(set) var text: String = ""

    public init() { text.reserveCapacity(256) }

    /// Appends already-serialized JSON (e.g. a request's `id`, echoed verbatim).
    public mutating func raw(_ json: String) { text += json }

    public mutating func string(_ s: String) {
        text.append("\"")
        for u in s.unicodeScalars {
            switch u {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case "\u{08}": text += "\\b"
            case "\u{0C}": text += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    text.unicodeScalars.append(u)
                }
            }
        }
        text.append("\"")
    }

    /// Shortest round-trip decimal form; non-finite values (never produced by a sane model)
    /// become null, since JSON has no NaN or infinity.
    public mutating func number(_ x: Float) {
        text += x.isFinite ? "\(x)" : "null"
    }

    public mutating func number(_ x: Double) {
        text += x.isFinite ? "\(x)" : "null"
    }

    public mutating func number(_ x: Int) { text += String(x) }

    public mutating func bool(_ b: Bool) { text += b ? "true" : "false" }

    public mutating func key(_ k: String) {
        if let last = text.last, last != "{" && last != "[" { text.append(",") }
        string(k)
        text.append(":")
    }
}

extension JSONWriter {
    /// Appends an array of strings.
    public mutating func stringArray(_ xs: [String]) {
        raw("[")
        for (i, s) in xs.enumerated() {
            if i > 0 { raw(",") }
            string(s)
        }
        raw("]")
    }

    /// Appends an array of numbers.
    public mutating func numberArray(_ xs: [Float]) {
        raw("[")
        for (i, x) in xs.enumerated() {
            if i > 0 { raw(",") }
            number(x)
        }
        raw("]")
    }
}
