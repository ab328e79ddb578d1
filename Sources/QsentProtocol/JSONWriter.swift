import QsentCore

/// Builds one JSON line. Used for every response the daemon writes and for the client's
/// `--json` output, so in-process and daemon answers are byte-identical.
public struct JSONWriter {
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
    /// `{"id":…,"label":"POSITIVE","label_id":1,"score":0.97,"logits":[…],"tokens":N,"truncated":false}`
    /// `idJSON` is the request's id as serialized JSON, or nil to omit the key.
    public static func classification(_ c: Classification, idJSON: String?) -> String {
        var w = JSONWriter()
        w.raw("{")
        w.classificationFields(c, idJSON: idJSON)
        w.raw("}")
        return w.text
    }

    public mutating func classificationFields(_ c: Classification, idJSON: String?) {
        if let idJSON {
            key("id")
            raw(idJSON)
        }
        key("label"); string(c.label)
        key("label_id"); number(c.labelId)
        key("score"); number(c.score)
        key("logits"); raw("[")
        for (i, l) in c.logits.enumerated() {
            if i > 0 { raw(",") }
            number(l)
        }
        raw("]")
        key("tokens"); number(c.tokens)
        key("truncated"); bool(c.truncated)
    }
}
