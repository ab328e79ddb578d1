/// Top-level keys of requests and answers that several types share.
public enum ProtocolKey {
    /// The request's id, echoed verbatim in its answer.
    public static let id = "id"
    static let text = "text"
    static let texts = "texts"
    static let op = "op"
    static let deadlineMs = "deadline_ms"
    static let ok = "ok"
    static let error = "error"
    static let code = "code"
    static let message = "message"
    static let results = "results"
}

/// Stable error codes of the wire protocol (docs/PROTOCOL.md lists them).
public enum ErrorCode: String, Sendable, CaseIterable {
    /// The line is not valid UTF-8.
    case invalidUTF8 = "invalid_utf8"
    /// The line is not one valid JSON value (syntax, nesting too deep, duplicate key).
    case invalidJSON = "invalid_json"
    /// A field (or the request itself) has the wrong JSON type.
    case wrongType = "wrong_type"
    /// Neither "text", "texts" nor "op" is present.
    case missingField = "missing_field"
    /// Conflicting fields, e.g. both "text" and "texts".
    case invalidRequest = "invalid_request"
    /// "op" is not one of ping, info, stats, reload.
    case unknownOp = "unknown_op"
    /// More texts in one request than --max-batch.
    case batchTooLarge = "batch_too_large"
    /// The inference queue is full, or too many connections; retry later.
    case busy = "busy"
    /// The line exceeds --max-line-bytes; the connection is closed after this error.
    case lineTooLong = "line_too_long"
    /// The peer's uid/gid is not in the allow-list; the connection is closed.
    case unauthorized = "unauthorized"
    /// Idle or slow client; the connection is closed.
    case timeout = "timeout"
    /// The engine failed on this text.
    case inferenceFailed = "inference_failed"
    /// A reload was refused; the old model keeps serving.
    case reloadFailed = "reload_failed"
    /// The daemon is stopping and no longer accepts this request.
    case shuttingDown = "shutting_down"
    /// A text was not started within the request's `deadline_ms`; nothing was computed for it.
    case deadlineExceeded = "deadline_exceeded"
}

/// An error answer: `{"id":…,"error":{"code":"…","message":"…"}}`.
public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// The request's id as raw JSON, when it could be read.
    public var idJSON: String?

    public init(_ code: ErrorCode, _ message: String, idJSON: String? = nil) {
        self.code = code
        self.message = message
        self.idJSON = idJSON
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The answer line: `{"id":…,"error":{"code":…,"message":…}}`.
    public var line: String { ErrorAnswer(code: code.rawValue, message: message).line(idJSON: idJSON) }
}

public enum Operation: String, Sendable, CaseIterable {
    case ping, info, stats, reload
}

/// One parsed request line.
public struct Request: Equatable, Sendable {
    public enum Body: Equatable, Sendable {
        case classify(String)
        case batch([String])
        case op(Operation)
    }

    /// The `id` value's raw JSON text, echoed verbatim; nil if absent.
    public var idJSON: String?
    public var body: Body
    /// `deadline_ms`: milliseconds after the daemon read the line by which each text must have
    /// started inference, else it is answered `deadline_exceeded`; nil for no deadline.
    public var deadlineMs: Int?

    /// The largest `deadline_ms` accepted (one day).
    public static let maxDeadlineMs = 86_400_000

    public init(idJSON: String?, body: Body, deadlineMs: Int? = nil) {
        self.idJSON = idJSON
        self.body = body
        self.deadlineMs = deadlineMs
    }

    /// The request as one line (without the newline): the id first, then the body.
    public var line: String {
        JSONWriter.object(idJSON: idJSON) { w in
            switch body {
            case .classify(let t): w.key(ProtocolKey.text); w.string(t)
            case .batch(let ts): w.key(ProtocolKey.texts); w.stringArray(ts)
            case .op(let o): w.key(ProtocolKey.op); w.string(o.rawValue)
            }
            if let d = deadlineMs { w.key(ProtocolKey.deadlineMs); w.number(d) }
        }
    }

    /// Parses one line (without its trailing newline). Unknown top-level keys are ignored.
    /// - Parameter maxBatch: the largest allowed "texts" array.
    public static func parse(line: [UInt8], maxBatch: Int, maxDepth: Int = JSONParser.defaultMaxDepth) throws(ProtocolError) -> Request {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: line, maxDepth: maxDepth)
        } catch let e as JSONParseError {
            if e.kind == .invalidUTF8 {
                throw ProtocolError(.invalidUTF8, "request line is not valid UTF-8 (byte \(e.offset))")
            }
            throw ProtocolError(.invalidJSON, "request line is not valid JSON: \(e.description)")
        } catch {
            throw ProtocolError(.invalidJSON, "request line is not valid JSON")
        }
        guard case .object = value else {
            throw ProtocolError(.wrongType, "request must be a JSON object, got \(value.typeName)")
        }
        let id = value[ProtocolKey.id]?.raw
        let op = value[ProtocolKey.op]
        let text = value[ProtocolKey.text]
        let texts = value[ProtocolKey.texts]
        var deadlineMs: Int?
        if let d = value[ProtocolKey.deadlineMs] {
            guard case .number(let n) = d.value else {
                throw ProtocolError(.wrongType, "\"deadline_ms\" must be a number of milliseconds, got \(d.value.typeName)", idJSON: id)
            }
            guard let ms = Int(n), ms >= 0, ms <= maxDeadlineMs else {
                throw ProtocolError(.invalidRequest, "\"deadline_ms\" must be an integer from 0 to \(maxDeadlineMs), got \(n)", idJSON: id)
            }
            deadlineMs = ms
        }

        if let op {
            guard case .string(let name) = op.value else {
                throw ProtocolError(.wrongType, "\"op\" must be a string, got \(op.value.typeName)", idJSON: id)
            }
            guard let o = Operation(rawValue: name) else {
                throw ProtocolError(.unknownOp, "unknown op \"\(name)\"; expected ping, info, stats or reload", idJSON: id)
            }
            if text != nil || texts != nil {
                throw ProtocolError(.invalidRequest, "\"op\" cannot be combined with \"text\" or \"texts\"", idJSON: id)
            }
            if deadlineMs != nil {
                throw ProtocolError(.invalidRequest, "\"deadline_ms\" applies to \"text\" and \"texts\" requests, not to \"op\"", idJSON: id)
            }
            return Request(idJSON: id, body: .op(o))
        }
        if text != nil && texts != nil {
            throw ProtocolError(.invalidRequest, "give either \"text\" or \"texts\", not both", idJSON: id)
        }
        if let text {
            guard case .string(let s) = text.value else {
                throw ProtocolError(.wrongType, "\"text\" must be a string, got \(text.value.typeName)", idJSON: id)
            }
            return Request(idJSON: id, body: .classify(s), deadlineMs: deadlineMs)
        }
        if let texts {
            guard case .array(let items) = texts.value else {
                throw ProtocolError(.wrongType, "\"texts\" must be an array of strings, got \(texts.value.typeName)", idJSON: id)
            }
            if items.count > maxBatch {
                throw ProtocolError(.batchTooLarge, "\(items.count) texts in one request; the limit is \(maxBatch) (--max-batch)", idJSON: id)
            }
            var out: [String] = []
            out.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else {
                    throw ProtocolError(.wrongType, "\"texts\"[\(i)] must be a string, got \(item.typeName)", idJSON: id)
                }
                out.append(s)
            }
            return Request(idJSON: id, body: .batch(out), deadlineMs: deadlineMs)
        }
        throw ProtocolError(.missingField, "request needs \"text\", \"texts\" or \"op\"", idJSON: id)
    }
}
