import CQsentIO
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

        /// The signal a byte read from `signalPipe` stands for.
        public init?(byte: UInt8) {
            guard let s = Signal.allCases.first(where: { $0.number == Int32(byte) }) else { return nil }
            self = s
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

    /// Sets the disposition to ignore.
    public static func ignore(_ s: Signal) {
        _ = signal(s.number, SIG_IGN)
    }

    /// Routes `signals` to a pipe: returns its read end, from which each delivered signal
    /// can be read as one byte (see `Signal(byte:)`). Once per process.
    public static func signalPipe(_ signals: [Signal]) throws(IOError) -> FileDescriptor {
        let numbers = signals.map(\.number)
        let fd = numbers.withUnsafeBufferPointer { cqsentio_signal_pipe($0.baseAddress, Int32($0.count)) }
        if fd < 0 { throw IOError.last("sigaction", "signal pipe") }
        return FileDescriptor(rawValue: fd)
    }

    /// Returns free heap memory to the kernel (glibc `malloc_trim(0)`; a no-op elsewhere).
    public static func releaseFreeMemory() {
        _ = cqsentio_release_free_memory()
    }

    /// The value of an environment variable, nil if unset.
    public static func environment(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    /// Reads a small file whole (e.g. under /proc, whose size stat cannot tell); nil if it
    /// cannot be read. Stops at `limit` bytes.
    public static func readSmallFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { _ = close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if currentErrno() == EINTR { continue }; return nil }
            if n == 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    /// mlockall(MCL_CURRENT): keep every page mapped now resident.
    public static func lockAllMemory(context: String) throws(IOError) {
        if mlockall(MCL_CURRENT) != 0 { throw IOError.last("mlockall", context) }
    }
}
