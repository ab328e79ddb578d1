/// A small strict RFC 8259 JSON parser for request lines.
///
/// Strictness: exactly one value surrounded by optional whitespace (space, tab, CR, LF);
/// no comments, no trailing commas, no leading zeros, no NaN/Infinity, no control characters
/// inside strings, no lone surrogates in `\u` escapes, no duplicate keys in one object,
/// nesting limited to `maxDepth`. Input must already be valid UTF-8 (see `UTF8Validation`);
/// `parse(bytes:)` checks it first.
///
/// Every object member keeps the raw JSON text of its value (`JSONMember.raw`), so a request's
/// `id` can be echoed back byte-for-byte.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's literal text, e.g. `-1.5e3` (validated against the RFC 8259 grammar).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// Looks up an object member by key (nil if not an object or absent).
    public subscript(key: String) -> JSONMember? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }
    }

    /// Short name of the JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

public struct JSONMember: Equatable, Sendable {
    public var key: String
    public var value: JSONValue
    /// The value's JSON text exactly as it appeared in the input (without surrounding whitespace).
    public var raw: String
}

public struct JSONParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable { case invalidUTF8, syntax, tooDeep, duplicateKey }
    public var kind: Kind
    /// Byte offset in the input where the problem was found.
    public var offset: Int
    public var message: String
    public var description: String { "\(message) at byte \(offset)" }
}

public enum UTF8Validation {
    /// Returns the offset of the first invalid byte, or nil if `bytes` is well-formed UTF-8
    /// (Unicode 15 table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
    public static func firstInvalidOffset<C: Collection>(_ bytes: C) -> Int? where C.Element == UInt8, C.Index == Int {
        var i = bytes.startIndex
        let end = bytes.endIndex
        while i < end {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            var need = 0
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: return i - bytes.startIndex
            }
            if end - i <= need { return i - bytes.startIndex }
            let b1 = bytes[i + 1]
            if b1 < lo || b1 > hi { return i - bytes.startIndex }
            for k in stride(from: 2, through: need, by: 1) {
                let b = bytes[i + k]
                if b < 0x80 || b > 0xBF { return i - bytes.startIndex }
            }
            i += need + 1
        }
        return nil
    }
}

public struct JSONParser {
    public static let defaultMaxDepth = 32

    /// Parses one JSON text. Validates UTF-8 first.
    public static func parse(bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        if let bad = UTF8Validation.firstInvalidOffset(bytes) {
            throw JSONParseError(kind: .invalidUTF8, offset: bad, message: "invalid UTF-8")
        }
        var p = JSONParser(buf: bytes, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        if p.pos != bytes.count { throw p.error("unexpected data after the JSON value") }
        return v
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        try parse(bytes: Array(text.utf8), maxDepth: maxDepth)
    }

    /// The input (held, not copied); indexed with bounds checks, no unsafe pointers.
    private let buf: [UInt8]
    private let maxDepth: Int
    private var pos = 0

    private init(buf: [UInt8], maxDepth: Int) {
        self.buf = buf
        self.maxDepth = maxDepth
    }

    private func error(_ msg: String, _ kind: JSONParseError.Kind = .syntax) -> JSONParseError {
        JSONParseError(kind: kind, offset: pos, message: msg)
    }

    private mutating func skipWhitespace() {
        while pos < buf.count {
            switch buf[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private func peek() -> UInt8? { pos < buf.count ? buf[pos] : nil }

    private static let trueBytes = Array("true".utf8), falseBytes = Array("false".utf8), nullBytes = Array("null".utf8)

    private mutating func expectLiteral(_ lit: [UInt8]) throws {
        let n = lit.count
        guard buf.count - pos >= n else { throw error("invalid literal") }
        for k in 0..<n where buf[pos + k] != lit[k] { throw error("invalid literal") }
        pos += n
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard let c = peek() else { throw error("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"):
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral(Self.trueBytes); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral(Self.falseBytes); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral(Self.nullBytes); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw error("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)", .tooDeep) }
        pos += 1  // {
        var members: [JSONMember] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyStart = pos
            let key = try parseString()
            if members.contains(where: { $0.key == key }) {
                pos = keyStart
                throw error("duplicate key \"\(key)\"", .duplicateKey)
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
            pos += 1
            skipWhitespace()
            let start = pos
            let value = try parseValue(depth: depth)
            let raw = String(decoding: buf[start..<pos], as: UTF8.self)
            members.append(JSONMember(key: key, value: value, raw: raw))
            skipWhitespace()
            guard let c = peek() else { throw error("unterminated object") }
            pos += 1
            if c == UInt8(ascii: "}") { return .object(members) }
            if c != UInt8(ascii: ",") { pos -= 1; throw error("expected ',' or '}'") }
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)", .tooDeep) }
        pos += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let c = peek() else { throw error("unterminated array") }
            pos += 1
            if c == UInt8(ascii: "]") { return .array(items) }
            if c != UInt8(ascii: ",") { pos -= 1; throw error("expected ',' or ']'") }
        }
    }

    private mutating func parseNumber() throws -> String {
        let start = pos
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard let d = peek(), isDigit(d) else { throw error("invalid number") }
        if d == UInt8(ascii: "0") {
            pos += 1
            if let n = peek(), isDigit(n) { throw error("leading zeros are not allowed") }
        } else {
            while let n = peek(), isDigit(n) { pos += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            pos += 1
            guard let n = peek(), isDigit(n) else { throw error("invalid number: digit expected after '.'") }
            while let n = peek(), isDigit(n) { pos += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            guard let n = peek(), isDigit(n) else { throw error("invalid number: digit expected in exponent") }
            while let n = peek(), isDigit(n) { pos += 1 }
        }
        return String(decoding: buf[start..<pos], as: UTF8.self)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    private mutating func hex4() throws -> UInt32 {
        guard buf.count - pos >= 4 else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        var runStart = pos
        while true {
            guard pos < buf.count else { throw error("unterminated string") }
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: buf[runStart..<pos])
                pos += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c < 0x20 { throw error("unescaped control character in string") }
            if c != UInt8(ascii: "\\") { pos += 1; continue }
            out.append(contentsOf: buf[runStart..<pos])
            pos += 1
            guard pos < buf.count else { throw error("unterminated escape") }
            let e = buf[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escStart = pos - 2
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard buf.count - pos >= 6, buf[pos] == UInt8(ascii: "\\"), buf[pos + 1] == UInt8(ascii: "u") else {
                        pos = escStart
                        throw error("lone high surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low <= 0xDFFF else {
                        pos = escStart
                        throw error("high surrogate not followed by a low surrogate")
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    pos = escStart
                    throw error("lone low surrogate in \\u escape")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default:
                pos -= 1
                throw error("invalid escape character")
            }
            runStart = pos
        }
    }
}
