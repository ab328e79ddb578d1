import ArgumentParser
import Foundation
import QsentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `--socket PATH` shared by every daemon-facing command.
struct DaemonOptions: ParsableArguments {
    @Option(name: .long, help: "qsentd socket. [QSENT_SOCKET] (default: \(QsentDefaults.socketPath))")
    var socket: String?

    var path: String { DaemonClient.resolveSocket(socket) }

    /// Sends one `{"op":…}` request and returns the raw answer line and its parsed value; any
    /// failure is reported on stderr and becomes the CLI's exit code.
    func ask(_ op: String) throws -> (line: String, value: JSONValue) {
        do {
            let line = try DaemonClient(path: path).request("{\"op\":\"\(op)\"}")
            return (line, try DaemonClient.checkAnswer(line))
        } catch {
            throw ExitCode(reportDaemonError(error))
        }
    }
}

/// Why talking to the daemon failed; `exitCode` and a one-line `description` for the CLI.
enum DaemonClientError: Error, CustomStringConvertible {
    /// Could not connect (not running, wrong path, no permission).
    case unreachable(path: String, SystemCallError)
    /// The connection broke and the one retry failed too.
    case connectionLost(path: String, String)
    /// The daemon answered with an error object.
    case answer(code: String, message: String)
    /// The daemon sent something that is not a protocol answer.
    case badAnswer(String)

    var description: String {
        switch self {
        case .unreachable(let path, let e):
            var hint = "is qsentd running? pass --socket PATH or set QSENT_SOCKET"
            if e.errno == EACCES { hint = "permission denied: join the socket's group (qsentd) or ask for --allow-uid" }
            return "cannot reach qsentd at \(path): \(e) (\(hint))"
        case .connectionLost(let path, let why):
            return "connection to qsentd at \(path) lost: \(why)"
        case .answer(let code, let message):
            return "qsentd answered \(code): \(message)"
        case .badAnswer(let s):
            return "unexpected answer from qsentd: \(s.prefix(200))"
        }
    }

    /// 1 = the daemon answered with an error, 2 = cannot talk to the daemon.
    var exitCode: Int32 {
        switch self {
        case .answer, .badAnswer: return 1
        case .unreachable, .connectionLost: return 2
        }
    }
}

/// A connection to qsentd. Requests are idempotent, so a request whose connection was reset
/// (ECONNRESET/EPIPE, or closed before the answer, e.g. during a daemon restart) is sent again
/// once on a fresh connection.
final class DaemonClient {
    let path: String
    private var conn: LineConnection?

    init(path: String) {
        self.path = path
    }

    static func resolveSocket(_ flag: String?) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = ProcessInfo.processInfo.environment["QSENT_SOCKET"], !env.isEmpty { return env }
        return QsentDefaults.socketPath
    }

    func connect() throws {
        do {
            conn = try LineConnection(path: path)
        } catch let e as SystemCallError {
            throw DaemonClientError.unreachable(path: path, e)
        }
    }

    func close() {
        conn?.close()
        conn = nil
    }

    static func isRetryable(_ e: Error) -> Bool {
        if let s = e as? SystemCallError { return s.errno == ECONNRESET || s.errno == EPIPE }
        if case DaemonClientError.connectionLost = e { return true }
        return false
    }

    /// Sends lines and reads exactly one answer per line (pipelined, at most `window` unanswered),
    /// calling `onAnswer(index, line)` in order. Retries the unanswered rest once on a reset.
    func exchange(_ lines: [String], window: Int = 64, onAnswer: (Int, String) throws -> Void) throws {
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
                guard Self.isRetryable(error), !retried else {
                    if Self.isRetryable(error) { throw DaemonClientError.connectionLost(path: path, "\(error)") }
                    throw error
                }
                retried = true
                close()
            }
        }
    }

    /// Pulls lines from `next` until it returns nil and streams them with a bounded window.
    func stream(window: Int = 64, next: () throws -> String?, onAnswer: (String) throws -> Void) throws {
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
                    throw DaemonClientError.connectionLost(path: path, "daemon closed the connection")
                }
                outstandingHead += 1
                if outstandingHead > 1024 {
                    outstanding.removeFirst(outstandingHead)
                    outstandingHead = 0
                }
                try onAnswer(answer)
            } catch {
                guard Self.isRetryable(error), !retried else {
                    if Self.isRetryable(error) { throw DaemonClientError.connectionLost(path: path, "\(error)") }
                    throw error
                }
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
                throw DaemonClientError.connectionLost(path: path, "daemon closed the connection")
            }
            try onAnswer(received, answer)
            received += 1
        }
    }

    /// One request, one answer.
    func request(_ line: String) throws -> String {
        var out = ""
        try exchange([line]) { _, a in out = a }
        return out
    }

    /// Throws `.answer` if `line` is an error answer; returns the parsed object otherwise.
    static func checkAnswer(_ line: String) throws -> JSONValue {
        let v: JSONValue
        do { v = try JSONParser.parse(line) } catch { throw DaemonClientError.badAnswer(line) }
        guard case .object = v else { throw DaemonClientError.badAnswer(line) }
        if let e = v["error"] {
            var code = "error", message = e.raw
            if case .string(let c)? = e.value["code"]?.value { code = c }
            if case .string(let m)? = e.value["message"]?.value { message = m }
            throw DaemonClientError.answer(code: code, message: message)
        }
        return v
    }
}

/// Prints a daemon failure as one line and returns its exit code.
func reportDaemonError(_ error: Error) -> Int32 {
    let code = (error as? DaemonClientError)?.exitCode ?? 2
    FileHandle.standardError.write(Data("qsent: \(error)\n".utf8))
    return code
}
