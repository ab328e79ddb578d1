import SystemPackage

/// Splits a byte stream into lines ("\n"-terminated; a trailing "\r" is left to the JSON
/// parser, which treats it as whitespace). Bounded: a line longer than `maxLineBytes` is
/// reported as `.tooLong` as soon as that many bytes arrived without a newline.
public struct LineBuffer: Sendable {
    public enum Item: Equatable, Sendable { case line([UInt8]), tooLong }

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

    /// Appends the first `count` bytes of `chunk`.
    public mutating func append(_ chunk: [UInt8], count: Int) {
        chunk.withUnsafeBytes { append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
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

    /// At end of input: the bytes after the last newline as a final line (or `.tooLong`), nil
    /// if there are none. Call after `next()` returned nil.
    public mutating func takeRest() -> Item? {
        guard buf.count > start else { return nil }
        let n = buf.count - start
        let rest = Array(buf[start...])
        buf.removeAll()
        start = 0
        scanned = 0
        return n > maxLineBytes ? .tooLong : .line(rest)
    }
}

/// A blocking line-oriented connection to a Unix socket (the client's and the tests' side of
/// qsentd). Not thread-safe: one thread uses it at a time.
public final class LineConnection {
    public let fd: FileDescriptor
    public let path: String
    private var lines: LineBuffer
    private var chunk = [UInt8](repeating: 0, count: 65536)
    private var closed = false

    public init(path: String, maxLineBytes: Int = 64 << 20) throws(IOError) {
        self.path = path
        self.fd = try UnixSocket.connect(path: path)
        self.lines = LineBuffer(maxLineBytes: maxLineBytes)
    }

    deinit { close() }

    public func close() {
        if !closed { closed = true; fd.closeQuietly() }
    }

    /// Sends one line (a "\n" is appended).
    public func send(_ line: String) throws(IOError) {
        var b = Array(line.utf8)
        b.append(0x0A)
        try fd.writeAll(b, context: path)
    }

    public func sendRaw(_ bytes: [UInt8]) throws(IOError) {
        try fd.writeAll(bytes, context: path)
    }

    /// Half-closes the sending side (the daemon sees end of file after the sent lines).
    public func shutdownWrite() { fd.shutdown(.write) }

    /// Reads one line; nil at end of file. `timeoutMs` < 0 waits forever.
    public func readLine(timeoutMs: Int32 = -1) throws(IOError) -> String? {
        while true {
            if let item = lines.next() {
                switch item {
                case .line(let l): return String(decoding: l, as: UTF8.self)
                case .tooLong: throw IOError("read", "\(path): answer line too long", errno: .messageTooLong)
                }
            }
            if timeoutMs >= 0, !(try Poll.wait(fd, for: .readable, timeoutMs: timeoutMs)) {
                throw IOError("read", "\(path) (timed out)", errno: .timedOut)
            }
            let n = try fd.readSome(into: &chunk, context: path) ?? 0
            if n == 0 {
                if lines.pendingBytes > 0 { throw IOError("read", "\(path): connection closed mid-line", errno: .connectionReset) }
                return nil
            }
            lines.append(chunk, count: n)
        }
    }
}
