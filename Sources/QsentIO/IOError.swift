import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one error type of the I/O layer: which call failed, on what (a path, a peer, a flag),
/// and the errno (swift-system's `Errno`, whose description is strerror's text).
public struct IOError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The system call or step, e.g. "connect", "bind", "sockaddr_un".
    public var call: String
    /// What it was applied to, e.g. the socket path; may be empty.
    public var context: String
    public var errno: Errno

    public init(_ call: String, _ context: String = "", errno: Errno) {
        self.call = call
        self.context = context
        self.errno = errno
    }

    /// An error from the calling thread's current errno.
    public static func last(_ call: String, _ context: String = "") -> IOError {
        IOError(call, context, errno: Errno(rawValue: currentErrno()))
    }

    public var description: String {
        let what = context.isEmpty ? call : "\(call)(\(context))"
        return "\(what): \(errno) (errno \(errno.rawValue))"
    }
}

/// errno of the calling thread.
@inline(__always)
func currentErrno() -> Int32 {
    #if canImport(Glibc)
    return Glibc.errno
    #elseif canImport(Musl)
    return Musl.errno
    #else
    return Darwin.errno
    #endif
}
