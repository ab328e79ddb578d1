import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The file-system calls the daemon's listener needs (socket files).
public enum Files {
    /// Device and inode of a path (not following a final symlink), and whether it is a socket.
    public struct Identity: Equatable, Sendable {
        public var device: UInt64
        public var inode: UInt64
        public var isSocket: Bool
    }

    /// lstat(2); nil if the path does not exist (or cannot be examined).
    public static func identity(_ path: String) -> Identity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), isSocket: (st.st_mode & S_IFMT) == S_IFSOCK)
    }

    /// unlink(2); a path that is already gone is not an error.
    public static func remove(_ path: String) throws(IOError) {
        if unlink(path) != 0 && currentErrno() != ENOENT { throw IOError.last("unlink", path) }
    }

    public static func setPermissions(_ path: String, _ mode: FilePermissions) throws(IOError) {
        if chmod(path, mode_t(mode.rawValue)) != 0 { throw IOError.last("chmod", path) }
    }

    /// Sets the process umask (process-wide: only while no other thread creates files);
    /// returns the previous one.
    @discardableResult
    public static func setUmask(_ mask: FilePermissions) -> FilePermissions {
        FilePermissions(rawValue: CInterop.Mode(umask(mode_t(mask.rawValue))))
    }
}

/// Process-wide settings: signals and memory locking.
public enum ProcessControl {
    /// The signals the daemon handles.
    public enum Signal: Sendable, CaseIterable {
        case hangUp, interrupt, terminate, brokenPipe

        public var number: Int32 {
            switch self {
            case .hangUp: return SIGHUP
            case .interrupt: return SIGINT
            case .terminate: return SIGTERM
            case .brokenPipe: return SIGPIPE
            }
        }

        public var name: String {
            switch self {
            case .hangUp: return "SIGHUP"
            case .interrupt: return "SIGINT"
            case .terminate: return "SIGTERM"
            case .brokenPipe: return "SIGPIPE"
            }
        }
    }

    /// Sets the disposition to ignore (a dispatch signal source still sees the signal).
    public static func ignore(_ s: Signal) {
        _ = signal(s.number, SIG_IGN)
    }

    /// mlockall(MCL_CURRENT): keep every page mapped now resident.
    public static func lockAllMemory(context: String) throws(IOError) {
        if mlockall(MCL_CURRENT) != 0 { throw IOError.last("mlockall", context) }
    }
}
