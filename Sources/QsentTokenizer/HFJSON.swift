import Foundation

/// A JSON value read from a model folder's files (config.json, tokenizer.json,
/// tokenizer_config.json): the one JSON value type of the tokenizer, the engine's config
/// reader and their tests. JSONSerialization's `Any` loses the Bool/number distinction on
/// Linux; this keeps it, and keeps integers apart from other numbers.
///
/// The wire protocol has its own strict parser and value type (QsentProtocol's `JSONValue`),
/// on purpose: it sits below no engine code (the protocol must not depend on the tokenizer or
/// the engine), it keeps each member's raw text so a request's `id` is echoed byte for byte,
/// and it enforces request-line limits (depth, duplicate keys, no NaN) that files read with
/// Foundation's `JSONDecoder` do not need.
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
