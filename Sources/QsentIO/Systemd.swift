#if canImport(CSystemd)
import CSystemd
#endif
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// libsystemd's sd-daemon API: socket activation and service notifications.
/// Every call is a no-op outside systemd (no NOTIFY_SOCKET / LISTEN_FDS), and where libsystemd
/// does not exist (macOS).
public enum SystemdDaemon {
    public struct ListenedSocket: Sendable {
        public var fd: FileDescriptor
        public var name: String
    }

    /// Sockets passed by systemd (LISTEN_FDS), with their FileDescriptorName=. Unsets the
    /// environment variables so children do not inherit them.
    public static func listenFDs() throws(IOError) -> [ListenedSocket] {
        #if canImport(CSystemd)
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let n = sd_listen_fds_with_names(1, &names)
        if n < 0 { throw IOError("sd_listen_fds_with_names", errno: Errno(rawValue: -n)) }
        var out: [ListenedSocket] = []
        for i in 0..<Int(n) {
            var name = "unknown"
            if let names, let p = names[i] { name = String(cString: p) }
            out.append(ListenedSocket(fd: FileDescriptor(rawValue: SD_LISTEN_FDS_START + Int32(i)), name: name))
        }
        if let names {
            for i in 0..<Int(n) { free(names[i]) }
            free(names)
        }
        return out
        #else
        return []
        #endif
    }

    /// True if `fd` is a listening Unix stream socket.
    public static func isListeningUnixStream(_ fd: FileDescriptor) -> Bool {
        #if canImport(CSystemd)
        return sd_is_socket_unix(fd.rawValue, UnixSocket.streamType, 1, nil, 0) > 0
        #else
        return false
        #endif
    }

    @discardableResult
    public static func notify(_ state: String) -> Bool {
        #if canImport(CSystemd)
        return sd_notify(0, state) > 0
        #else
        return false
        #endif
    }

    /// The watchdog interval (seconds) if the service manager expects keep-alive pings.
    public static func watchdogInterval() -> Double? {
        #if canImport(CSystemd)
        var usec: UInt64 = 0
        let r = sd_watchdog_enabled(0, &usec)
        guard r > 0, usec > 0 else { return nil }
        return Double(usec) / 1_000_000
        #else
        return nil
        #endif
    }
}
