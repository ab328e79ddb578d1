import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if os(Linux)
private let sendFlags = Int32(MSG_NOSIGNAL)
#else
private let sendFlags: Int32 = 0  // SIGPIPE is ignored by the daemon; see `Signals.ignore`
#endif

/// Socket and descriptor operations the daemon and the client need beyond swift-system's.
extension FileDescriptor {
    public enum ShutdownSide: Sendable { case read, write }

    /// Writes all bytes (no SIGPIPE on Linux). With `timeoutMs` >= 0, waits at most that long
    /// for a full non-blocking socket to become writable again.
    public func writeAll(_ bytes: UnsafeRawBufferPointer, timeoutMs: Int32 = -1, context: String = "") throws(IOError) {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = send(rawValue, p, left, sendFlags)
            if n >= 0 { p += n; left -= n; continue }
            let e = currentErrno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                if !(try Poll.wait(self, for: .writable, timeoutMs: timeoutMs)) {
                    throw IOError("send", context + " (timed out)", errno: .timedOut)
                }
                continue
            }
            throw IOError("send", context, errno: Errno(rawValue: e))
        }
    }

    public func writeAll(_ bytes: [UInt8], timeoutMs: Int32 = -1, context: String = "") throws(IOError) {
        var failure: IOError?
        bytes.withUnsafeBytes { b in
            do throws(IOError) { try writeAll(b, timeoutMs: timeoutMs, context: context) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// One send of `bytes[offset...]` (no SIGPIPE on Linux): the count written, nil if a
    /// non-blocking socket cannot take any now. EINTR is retried.
    public func sendSome(_ bytes: [UInt8], from offset: Int, context: String = "") throws(IOError) -> Int? {
        precondition(offset >= 0 && offset <= bytes.count)
        var result: Result<Int?, IOError> = .success(0)
        bytes.withUnsafeBytes { b in
            guard let base = b.baseAddress, offset < b.count else { return }
            while true {
                let n = send(rawValue, base + offset, b.count - offset, sendFlags)
                if n >= 0 { result = .success(n); return }
                let e = currentErrno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { result = .success(nil); return }
                result = .failure(IOError("send", context, errno: Errno(rawValue: e)))
                return
            }
        }
        return try result.get()
    }

    /// One read; 0 at end of file, nil if a non-blocking descriptor has nothing now. EINTR is retried.
    public func readSome(into buffer: UnsafeMutableRawBufferPointer, context: String = "") throws(IOError) -> Int? {
        while true {
            let n = libcRead(rawValue, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            let e = currentErrno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw IOError("read", context, errno: Errno(rawValue: e))
        }
    }

    /// Reads into `buffer` (resized to its capacity first); returns the count, 0 at end of file,
    /// nil when a non-blocking descriptor has nothing now.
    public func readSome(into buffer: inout [UInt8], context: String = "") throws(IOError) -> Int? {
        var result: Result<Int?, IOError> = .success(nil)
        buffer.withUnsafeMutableBytes { b in
            result = Result { () throws(IOError) in try readSome(into: b, context: context) }
        }
        return try result.get()
    }

    public func setNonBlocking(_ on: Bool = true) throws(IOError) {
        let flags = fcntl(rawValue, F_GETFL)
        if flags < 0 { throw IOError.last("fcntl", "F_GETFL") }
        let nf = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if fcntl(rawValue, F_SETFL, nf) < 0 { throw IOError.last("fcntl", "F_SETFL") }
    }

    public func setCloseOnExec() throws(IOError) {
        if fcntl(rawValue, F_SETFD, FD_CLOEXEC) < 0 { throw IOError.last("fcntl", "F_SETFD FD_CLOEXEC") }
    }

    /// Half-closes a socket; errors (e.g. already disconnected) are ignored.
    public func shutdown(_ side: ShutdownSide) {
        #if canImport(Glibc)
        let how = side == .read ? Int32(SHUT_RD) : Int32(SHUT_WR)
        #else
        let how = side == .read ? SHUT_RD : SHUT_WR
        #endif
        _ = libcShutdown(rawValue, how)
    }

    /// Closes, ignoring errors (the descriptor is gone either way).
    public func closeQuietly() { try? close() }

    /// Ends a connection so the peer reads our last line instead of a reset: half-close the
    /// sending side, discard the peer's input for up to `lingerMs` (or until it closes), close.
    public func closeAfterLinger(lingerMs: Int, pollMs: Int32) {
        shutdown(.write)
        var junk = [UInt8](repeating: 0, count: 65536)
        let deadline = Clock.monotonicNanos() + UInt64(lingerMs) * 1_000_000
        while Clock.monotonicNanos() < deadline {
            guard (try? Poll.wait(self, for: .readable, timeoutMs: pollMs)) == true else { continue }
            guard let n = try? readSome(into: &junk), n > 0 else { break }
        }
        closeQuietly()
    }
}

// The libc functions under names that do not clash with FileDescriptor's methods.
@inline(__always)
private func libcRead(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int {
    read(fd, p, n)
}

@inline(__always)
private func libcShutdown(_ fd: Int32, _ how: Int32) -> Int32 {
    shutdown(fd, how)
}
