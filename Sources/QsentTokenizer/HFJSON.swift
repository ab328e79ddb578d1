import QsentProtocol

/// A JSON value read from a model folder's files (config.json, tokenizer.json,
/// tokenizer_config.json): the one JSON value type of the tokenizer, the engine's config
/// reader and their tests. JSONSerialization's `Any` loses the Bool/number distinction on
/// Linux; this keeps it, and keeps integers apart from other numbers.
///
/// Files are parsed with the wire protocol's strict RFC 8259 parser (QsentProtocol's
/// `JSONParser`, fuzzed; no Foundation) and converted: `JSONValue` keeps each member's raw text
/// and number literals, for echoing a request's `id`; this type is the typed view of a file.
/// A file with a duplicate key is refused as malformed rather than read with one value lost.
public enum HFJSON: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    /// A number that is not an integer that fits in Int.
    case double(Double)
    case string(String)
    case array([HFJSON])
    case object([String: HFJSON])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([HFJSON].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: HFJSON].self))
        }
    }

    /// Nesting allowed in a model folder's JSON files (HF files nest about 6 deep).
    public static let maxDepth = 64

    /// Parses one JSON document (UTF-8).
    /// Parses one JSON document (UTF-8); throws `JSONParseError` (syntax, invalid UTF-8,
    /// nesting, a duplicate key), whose description gives the byte offset.
    public static func parse(_ bytes: [UInt8]) throws -> HFJSON {
        HFJSON(try JSONParser.parse(bytes: bytes, maxDepth: maxDepth))
    }

    /// The typed view of a parsed value: integer literals that fit in Int become `.int`, other
    /// numbers `.double`.
    public init(_ v: JSONValue) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let literal):
            if let i = Int(literal) { self = .int(i) } else { self = .double(Double(literal) ?? .nan) }
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(HFJSON.init))
        case .object(let members):
            var o: [String: HFJSON] = [:]
            o.reserveCapacity(members.count)
            for m in members { o[m.key] = HFJSON(m.value) }
            self = .object(o)
        }
    }

    public subscript(key: String) -> HFJSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var isNull: Bool { self == .null }
    /// The value as an integer, if it is a number with no fractional part (|x| < 1e15).
    public var int: Int? {
        switch self {
        case .int(let i) where abs(i) < 1_000_000_000_000_000: return i
        case .double(let d) where d.rounded() == d && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }
    /// The value as a Double, if it is a number.
    public var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
}

extension HFJSON: CustomStringConvertible {
    /// Compact JSON text, for error messages.
    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[" + a.map(\.description).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\"\($0)\":\(o[$0]!)" }.joined(separator: ",") + "}"
        }
    }
}
