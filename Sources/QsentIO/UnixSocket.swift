import CQsentIO
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let streamTypeValue = Int32(SOCK_STREAM.rawValue)
#else
private let streamTypeValue = SOCK_STREAM
#endif

/// Who is on the other end of a Unix socket (`SO_PEERCRED`; pid 0 where the OS cannot tell).
public struct PeerCredentials: Equatable, Sendable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid=\(pid) uid=\(uid) gid=\(gid)" }
}

/// AF_UNIX stream sockets: listen, accept, connect, peer credentials.
public enum UnixSocket {
    /// SOCK_STREAM as the C API takes it (e.g. for libsystemd's sd_is_socket_unix).
    public static let streamType: Int32 = streamTypeValue

    /// A new AF_UNIX stream socket, close-on-exec.
    public static func make() throws(IOError) -> FileDescriptor {
        #if os(Linux)
        let fd = socket(AF_UNIX, streamTypeValue | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw IOError.last("socket", "AF_UNIX") }
        return FileDescriptor(rawValue: fd)
        #else
        let fd = socket(AF_UNIX, streamTypeValue, 0)
        if fd < 0 { throw IOError.last("socket", "AF_UNIX") }
        let d = FileDescriptor(rawValue: fd)
        try d.setCloseOnExec()
        return d
        #endif
    }

    /// Builds a `sockaddr_un` for `path` and calls `body` with it.
    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws(IOError) -> R {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let cap = MemoryLayout.size(ofValue: addr.sun_path)
        guard !bytes.isEmpty, bytes.count < cap else {
            throw IOError("sockaddr_un", "\(path): path must be 1...\(cap - 1) bytes", errno: .fileNameTooLong)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, len) }
        }
    }

    /// Connects to the socket at `path`; returns the connected descriptor.
    public static func connect(path: String) throws(IOError) -> FileDescriptor {
        let fd = try make()
        do throws(IOError) {
            let e: Int32 = try withAddress(path) { addr, len in
                while libcConnect(fd.rawValue, addr, len) != 0 {
                    let e = currentErrno()
                    if e != EINTR { return e }
                }
                return 0
            }
            if e != 0 { throw IOError("connect", path, errno: Errno(rawValue: e)) }
        } catch {
            fd.closeQuietly()
            throw error
        }
        return fd
    }

    /// Binds `fd` to `path`.
    public static func bind(_ fd: FileDescriptor, path: String) throws(IOError) {
        let r: Int32 = try withAddress(path) { addr, len in libcBind(fd.rawValue, addr, len) == 0 ? 0 : currentErrno() }
        if r != 0 { throw IOError("bind", path, errno: Errno(rawValue: r)) }
    }

    public static func listen(_ fd: FileDescriptor, backlog: Int32, context: String = "") throws(IOError) {
        if libcListen(fd.rawValue, backlog) != 0 { throw IOError.last("listen", context) }
    }

    /// Accepts one connection (close-on-exec); nil if a non-blocking listener has none waiting.
    public static func accept(_ listener: FileDescriptor, context: String = "") throws(IOError) -> FileDescriptor? {
        while true {
            let fd = libcAccept(listener.rawValue, nil, nil)
            if fd >= 0 {
                let d = FileDescriptor(rawValue: fd)
                try? d.setCloseOnExec()
                return d
            }
            let e = currentErrno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw IOError("accept", context, errno: Errno(rawValue: e))
        }
    }

    /// The connected peer's pid, uid and gid.
    public static func peerCredentials(_ fd: FileDescriptor) throws(IOError) -> PeerCredentials {
        var c = cqsentio_peer_cred()
        if cqsentio_peer_credentials(fd.rawValue, &c) != 0 { throw IOError.last("getsockopt", "SO_PEERCRED") }
        return PeerCredentials(pid: c.pid, uid: c.uid, gid: c.gid)
    }
}

// The libc calls under names that do not clash with this enum's methods.
@inline(__always)
private func libcConnect(_ fd: Int32, _ a: UnsafePointer<sockaddr>, _ l: socklen_t) -> Int32 {
    connect(fd, a, l)
}

@inline(__always)
private func libcBind(_ fd: Int32, _ a: UnsafePointer<sockaddr>, _ l: socklen_t) -> Int32 {
    bind(fd, a, l)
}

@inline(__always)
private func libcListen(_ fd: Int32, _ backlog: Int32) -> Int32 {
    listen(fd, backlog)
}

@inline(__always)
private func libcAccept(_ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>?, _ l: UnsafeMutablePointer<socklen_t>?) -> Int32 {
    accept(fd, a, l)
}
