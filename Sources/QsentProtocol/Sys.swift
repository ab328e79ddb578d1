import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: which call, on what, and errno.
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var context: String
    public var errno: Int32

    public init(_ call: String, _ context: String, errno: Int32) {
        self.call = call
        self.context = context
        self.errno = errno
    }

    public var description: String {
        let what = context.isEmpty ? call : "\(call)(\(context))"
        return "\(what): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Thin wrappers over the socket system calls used by daemon and client.
public enum Sys {
    /// Builds a `sockaddr_un` for `path` and calls `body` with it.
    public static func withUnixAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let cap = MemoryLayout.size(ofValue: addr.sun_path)
        guard !bytes.isEmpty, bytes.count < cap else {
            throw SystemCallError("sockaddr_un", "\(path): path must be 1...\(cap - 1) bytes", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return try withUnsafePointer(to: &addr) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, len) }
        }
    }

    public static func socket() throws -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemCallError("socket", "AF_UNIX", errno: errno) }
        return fd
    }

    /// Connects to a Unix stream socket; returns the fd.
    public static func connect(path: String) throws -> Int32 {
        let fd = try socket()
        do {
            try withUnixAddress(path) { addr, len in
                while Glibc.connect(fd, addr, len) != 0 {
                    if errno == EINTR { continue }
                    throw SystemCallError("connect", path, errno: errno)
                }
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// Writes all bytes (no SIGPIPE). With a timeout, waits at most that long for the socket to
    /// become writable each time it is full.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, timeoutMs: Int32 = -1, context: String = "") throws {
        var off = 0
        while off < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            if n >= 0 { off += n; continue }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let r = poll(&p, 1, timeoutMs)
                if r == 0 { throw SystemCallError("send", context + " (timed out)", errno: ETIMEDOUT) }
                continue
            }
            throw SystemCallError("send", context, errno: e)
        }
    }

    public static func writeAll(_ fd: Int32, _ data: [UInt8], timeoutMs: Int32 = -1, context: String = "") throws {
        try data.withUnsafeBytes { try writeAll(fd, $0, timeoutMs: timeoutMs, context: context) }
    }

    /// One read; returns 0 at end of file. EINTR is retried.
    public static func read(_ fd: Int32, into buf: UnsafeMutableRawBufferPointer, context: String = "") throws -> Int {
        while true {
            let n = Glibc.read(fd, buf.baseAddress!, buf.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw SystemCallError("read", context, errno: errno)
        }
    }

    public static func setNonBlocking(_ fd: Int32, _ on: Bool = true) throws {
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 { throw SystemCallError("fcntl", "F_GETFL", errno: errno) }
        let nf = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if fcntl(fd, F_SETFL, nf) < 0 { throw SystemCallError("fcntl", "F_SETFL", errno: errno) }
    }

    /// Monotonic clock in nanoseconds.
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Splits a byte stream into lines ("\n"-terminated; a trailing "\r" is left to the JSON
/// parser, which treats it as whitespace). Bounded: a line longer than `maxLineBytes` is
/// reported as `.tooLong` as soon as that many bytes arrived without a newline.
public struct LineBuffer {
    public enum Item: Equatable { case line([UInt8]), tooLong }

    private var buf: [UInt8] = []
    private var start = 0
    private var scanned = 0
    public let maxLineBytes: Int

    public init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
    }

    /// Bytes buffered that are not yet part of a returned line.
    public var pendingBytes: Int { buf.count - start }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= buf.count / 2 {
            buf.removeFirst(start)
            scanned -= start
            start = 0
        }
        buf.append(contentsOf: bytes.bindMemory(to: UInt8.self))
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete line, `.tooLong`, or nil if more bytes are needed.
    public mutating func next() -> Item? {
        var i = max(scanned, start)
        while i < buf.count {
            if buf[i] == 0x0A {
                if i - start > maxLineBytes { start = i + 1; scanned = start; return .tooLong }
                let line = Array(buf[start..<i])
                start = i + 1
                scanned = start
                return .line(line)
            }
            i += 1
        }
        scanned = i
        if buf.count - start > maxLineBytes { return .tooLong }
        return nil
    }
}

/// A blocking line-oriented connection to qsentd (used by the client and tests).
public final class LineConnection {
    public let fd: Int32
    public let path: String
    private var lines: LineBuffer
    private var closed = false

    public init(path: String, maxLineBytes: Int = 64 << 20) throws {
        self.path = path
        self.fd = try Sys.connect(path: path)
        self.lines = LineBuffer(maxLineBytes: maxLineBytes)
    }

    deinit { close() }

    public func close() {
        if !closed { closed = true; Sys.close(fd) }
    }

    /// Sends one line (a "\n" is appended).
    public func send(_ line: String) throws {
        var b = Array(line.utf8)
        b.append(0x0A)
        try Sys.writeAll(fd, b, context: path)
    }

    public func sendRaw(_ bytes: [UInt8]) throws {
        try Sys.writeAll(fd, bytes, context: path)
    }

    /// Half-closes the sending side (the daemon sees end of file after the sent lines).
    public func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// Reads one line; nil at end of file. `timeoutMs` < 0 waits forever.
    public func readLine(timeoutMs: Int32 = -1) throws -> String? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let item = lines.next() {
                switch item {
                case .line(let l): return String(decoding: l, as: UTF8.self)
                case .tooLong: throw SystemCallError("read", "\(path): answer line too long", errno: EMSGSIZE)
                }
            }
            if timeoutMs >= 0 {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                var r: Int32
                repeat { r = poll(&p, 1, timeoutMs) } while r < 0 && errno == EINTR
                if r == 0 { throw SystemCallError("read", "\(path) (timed out)", errno: ETIMEDOUT) }
            }
            let n = try chunk.withUnsafeMutableBytes { try Sys.read(fd, into: $0, context: path) }
            if n == 0 {
                if lines.pendingBytes > 0 { throw SystemCallError("read", "\(path): connection closed mid-line", errno: ECONNRESET) }
                return nil
            }
            chunk.withUnsafeBytes { lines.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }
}
