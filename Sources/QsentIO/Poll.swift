import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// poll(2) over a few descriptors.
public enum Poll {
    /// What to wait for, and what happened (`revents`: hang-up and error count as ready).
    public struct Events: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: Int16(POLLIN))
        public static let writable = Events(rawValue: Int16(POLLOUT))
        public static let hangUp = Events(rawValue: Int16(POLLHUP))
        public static let error = Events(rawValue: Int16(POLLERR))
    }

    /// Waits up to `timeoutMs` (< 0: forever) until one of `fds` is ready. Returns what happened
    /// on each, in order; all empty on timeout or when a signal interrupted the wait.
    public static func wait(_ fds: [(FileDescriptor, Events)], timeoutMs: Int32) throws(IOError) -> [Events] {
        var p = fds.map { pollfd(fd: $0.0.rawValue, events: $0.1.rawValue, revents: 0) }
        let r = poll(&p, nfds_t(p.count), timeoutMs)
        if r < 0 {
            let e = currentErrno()
            if e == EINTR { return Array(repeating: [], count: fds.count) }
            throw IOError("poll", errno: Errno(rawValue: e))
        }
        return p.map { Events(rawValue: $0.revents) }
    }

    /// Waits until `fd` has `events`; false on timeout. A signal restarts the wait.
    public static func wait(_ fd: FileDescriptor, for events: Events, timeoutMs: Int32) throws(IOError) -> Bool {
        var p = pollfd(fd: fd.rawValue, events: events.rawValue, revents: 0)
        while true {
            let r = poll(&p, 1, timeoutMs)
            if r >= 0 { return r > 0 }
            let e = currentErrno()
            if e != EINTR { throw IOError("poll", errno: Errno(rawValue: e)) }
        }
    }
}
