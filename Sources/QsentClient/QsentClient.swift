import QsentIO
import QsentJSON
import QsentProtocol

/// Why talking to qsentd failed.
public enum QsentClientError: Error, CustomStringConvertible, Sendable {
    /// Could not connect (not running, wrong path, no permission).
    case unreachable(path: String, IOError)
    /// The connection broke and the one retry failed too.
    case connectionLost(path: String, String)
    /// The daemon answered with an error object.
    case answer(ErrorAnswer)
    /// The daemon sent something that is not the answer asked for.
    case badAnswer(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let e):
            var hint = "is qsentd running? pass --socket PATH or set QSENT_SOCKET"
            if e.errno == .permissionDenied { hint = "permission denied: join the socket's group (qsent) or ask for --allow-uid" }
            return "cannot reach qsentd at \(path): \(e) (\(hint))"
        case .connectionLost(let path, let why):
            return "connection to qsentd at \(path) lost: \(why)"
        case .answer(let e):
            return "qsentd answered \(e.code): \(e.message)"
        case .badAnswer(let s):
            return "unexpected answer from qsentd: \(s.prefix(200))"
        }
    }
}

/// One answer line as received, parsed.
public struct Answer: Sendable {
    /// The line exactly as the daemon sent it (without the newline).
    public let line: String
    /// Its parsed JSON object.
    public let value: JSONValue

    /// Parses a line; throws `.answer` for an error answer and `.badAnswer` for anything that
    /// is not a JSON object.
    public init(line: String) throws(QsentClientError) {
        let v: JSONValue
        do { v = try JSONParser.parse(line) } catch { throw .badAnswer(line) }
        guard case .object = v else { throw .badAnswer(line) }
        if let e = ErrorAnswer(json: v) { throw .answer(e) }
        self.line = line
        self.value = v
    }

    /// Decodes the answer as `T` (e.g. `InfoAnswer.init(json:)`); `.badAnswer` if it does not fit.
    public func decode<T>(_ decode: (JSONValue) throws(AnswerDecodingError) -> T) throws(QsentClientError) -> T {
        do { return try decode(value) } catch { throw .badAnswer("\(error): \(line)") }
    }
}

/// A connection to qsentd over its Unix socket, for any Swift program (no engine needed).
///
/// Requests are idempotent, so a request whose connection was reset (ECONNRESET/EPIPE, or
/// closed before the answer, e.g. during a daemon restart) is sent again once on a fresh
/// connection. Not thread-safe: use one client per thread.
public final class QsentClient {
    public let path: String
    private var conn: LineConnection?

    /// Connects lazily, on the first request.
    public init(path: String) {
        self.path = path
    }

    deinit { close() }

    /// The socket path: `flag` if given, else `$QSENT_SOCKET`, else the default.
    public static func resolveSocket(_ flag: String?, environment: [String: String]) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment["QSENT_SOCKET"], !env.isEmpty { return env }
        return QsentDefaults.socketPath
    }

    public func connect() throws(QsentClientError) {
        do {
            conn = try LineConnection(path: path)
        } catch {
            throw .unreachable(path: path, error)
        }
    }

    public func close() {
        conn?.close()
        conn = nil
    }

    static func isRetryable(_ e: Error) -> Bool {
        if let s = e as? IOError { return s.errno == .connectionReset || s.errno == .brokenPipe }
        if case QsentClientError.connectionLost = e { return true }
        return false
    }

    private func lost(_ error: Error) -> Error {
        Self.isRetryable(error) ? QsentClientError.connectionLost(path: path, "\(error)") : error
    }

    // MARK: typed requests

    /// `{"op":"ping"}`.
    public func ping() throws {
        try ask(Request(idJSON: nil, body: .op(.ping))).decode(PingAnswer.decode)
    }

    /// `{"op":"info"}`: the model served and the request limits.
    public func info() throws -> InfoAnswer {
        try ask(Request(idJSON: nil, body: .op(.info))).decode(InfoAnswer.init(json:))
    }

    /// `{"op":"stats"}`.
    public func stats() throws -> StatsAnswer {
        try ask(Request(idJSON: nil, body: .op(.stats))).decode(StatsAnswer.init(json:))
    }

    /// `{"op":"reload"}`: reloads the model file; throws `.answer` with `reload_failed` if refused.
    public func reload() throws -> ReloadAnswer {
        try ask(Request(idJSON: nil, body: .op(.reload))).decode(ReloadAnswer.init(json:))
    }

    /// Classifies one text.
    public func classify(_ text: String) throws -> ClassificationResult {
        try ask(Request(idJSON: nil, body: .classify(text))).decode(ClassificationResult.init(json:))
    }

    /// Classifies texts in one `texts` request (at most the daemon's `max_batch`; see `info`).
    public func classify(batch texts: [String]) throws -> [ClassificationResult] {
        try ask(Request(idJSON: nil, body: .batch(texts))).decode(BatchAnswer.decode)
    }

    /// Classifies many texts with pipelined single requests: at most `window` unanswered at a
    /// time, results in input order. Stops at the first error answer.
    public func classify(pipelined texts: [String], window: Int = 64) throws -> [ClassificationResult] {
        var out: [ClassificationResult] = []
        out.reserveCapacity(texts.count)
        try exchange(texts.map { Request(idJSON: nil, body: .classify($0)).line }, window: window) { _, line in
            out.append(try Answer(line: line).decode(ClassificationResult.init(json:)))
        }
        return out
    }

    /// Sends one request and returns its parsed answer (an error answer throws `.answer`).
    public func ask(_ request: Request) throws -> Answer {
        try Answer(line: try self.request(request.line))
    }

    // MARK: raw lines

    /// One request line, one answer line (retried once on a reset).
    public func request(_ line: String) throws -> String {
        var out = ""
        try exchange([line]) { _, a in out = a }
        return out
    }

    /// Sends lines and reads exactly one answer per line (pipelined, at most `window`
    /// unanswered), calling `onAnswer(index, line)` in order. Retries the unanswered rest once
    /// on a reset.
    public func exchange(_ lines: [String], window: Int = 64, onAnswer: (Int, String) throws -> Void) throws {
        var nextAnswer = 0
        var retried = false
        while nextAnswer < lines.count {
            do {
                if conn == nil { try connect() }
                try pipeline(lines, from: nextAnswer, window: window) { i, answer in
                    nextAnswer = i + 1
                    try onAnswer(i, answer)
                }
            } catch {
                guard Self.isRetryable(error), !retried else { throw lost(error) }
                retried = true
                close()
            }
        }
    }

    /// Pulls lines from `next` until it returns nil and streams them with at most `window`
    /// unanswered, calling `onAnswer` with each answer line in order.
    public func stream(window: Int = 64, next: () throws -> String?, onAnswer: (String) throws -> Void) throws {
        var outstanding: [String] = []
        var outstandingHead = 0
        var exhausted = false
        var retried = false
        if conn == nil { try connect() }
        while true {
            do {
                guard let c = conn else { try connect(); continue }
                while !exhausted && outstanding.count - outstandingHead < window {
                    guard let l = try next() else { exhausted = true; break }
                    outstanding.append(l)
                    try c.send(l)
                }
                if outstandingHead == outstanding.count { return }
                guard let answer = try c.readLine() else {
                    throw QsentClientError.connectionLost(path: path, "daemon closed the connection")
                }
                outstandingHead += 1
                if outstandingHead > 1024 {
                    outstanding.removeFirst(outstandingHead)
                    outstandingHead = 0
                }
                try onAnswer(answer)
            } catch {
                guard Self.isRetryable(error), !retried else { throw lost(error) }
                retried = true
                close()
                try connect()
                for l in outstanding[outstandingHead...] { try conn!.send(l) }
            }
        }
    }

    private func pipeline(_ lines: [String], from start: Int, window: Int, onAnswer: (Int, String) throws -> Void) throws {
        guard let c = conn else { return }
        var sent = start
        var received = start
        while received < lines.count {
            while sent < lines.count && sent - received < window {
                try c.send(lines[sent])
                sent += 1
            }
            guard let answer = try c.readLine() else {
                throw QsentClientError.connectionLost(path: path, "daemon closed the connection")
            }
            try onAnswer(received, answer)
            received += 1
        }
    }
}
