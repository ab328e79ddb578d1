import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// What the command-line tools, the tokenizer's and the engine's file readers and the quantizer
// need from the system without Foundation: whole small files, stat, fsync/rename, the standard
// streams, the environment and exit.

extension Files {
    /// What a path names (stat(2), following symlinks).
    public enum Kind: Equatable, Sendable, CustomStringConvertible {
        case regular, directory, fifo, characterDevice, blockDevice, socket, symlink, unknown

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .regular
            case S_IFDIR: self = .directory
            case S_IFIFO: self = .fifo
            case S_IFCHR: self = .characterDevice
            case S_IFBLK: self = .blockDevice
            case S_IFSOCK: self = .socket
            case S_IFLNK: self = .symlink
            default: self = .unknown
            }
        }

        /// "a directory", "a FIFO", …, for messages.
        public var description: String {
            switch self {
            case .regular: return "a regular file"
            case .directory: return "a directory"
            case .fifo: return "a FIFO"
            case .characterDevice: return "a character device"
            case .blockDevice: return "a block device"
            case .socket: return "a socket"
            case .symlink: return "a symbolic link"
            case .unknown: return "of an unknown file type"
            }
        }
    }

    /// The kind of file at `path` (symlinks followed); nil if nothing is there (ENOENT or
    /// ENOTDIR). Other failures (EACCES on a parent, ELOOP…) throw.
    public static func kind(_ path: String) throws(IOError) -> Kind? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = currentErrno()
            if e == ENOENT || e == ENOTDIR { return nil }
            throw IOError("stat", path, errno: Errno(rawValue: e))
        }
        return Kind(mode: st.st_mode)
    }

    /// True if something exists at `path` (symlinks followed).
    public static func exists(_ path: String) -> Bool {
        (try? kind(path)) != nil
    }

    /// The whole contents of a regular file. The file is opened with O_NONBLOCK and checked with
    /// fstat, so a FIFO or device put in its place is refused (errno EINVAL; EISDIR for a
    /// directory) instead of blocking or never ending. At most `limit` bytes (EFBIG beyond).
    public static func readRegularFile(_ path: String, limit: Int = 1 << 30) throws(IOError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw IOError.last("open", path) }
        defer { _ = close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOError.last("fstat", path) }
        let kind = Kind(mode: st.st_mode)
        guard kind == .regular else {
            throw IOError("read", "\(path) is \(kind)", errno: kind == .directory ? .isDirectory : .invalidArgument)
        }
        guard Int(st.st_size) <= limit else { throw IOError("read", path, errno: .fileTooLarge) }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var filled = 0
        // The size may change while reading: read to end of file, growing as needed.
        while true {
            if filled == out.count {
                guard out.count < limit else { throw IOError("read", path, errno: .fileTooLarge) }
                out.append(contentsOf: repeatElement(0, count: min(max(4096, out.count), limit - out.count)))
            }
            let n = out.withUnsafeMutableBytes { b in read(fd, b.baseAddress! + filled, b.count - filled) }
            if n < 0 {
                if currentErrno() == EINTR { continue }
                throw IOError.last("read", path)
            }
            if n == 0 { break }
            filled += n
        }
        out.removeLast(out.count - filled)
        return out
    }

    /// fsync(2).
    public static func sync(_ fd: FileDescriptor, context: String = "") throws(IOError) {
        while fsync(fd.rawValue) != 0 {
            if currentErrno() != EINTR { throw IOError.last("fsync", context) }
        }
    }

    /// rename(2): atomically replaces `to` with `from` (same file system).
    public static func rename(_ from: String, to: String) throws(IOError) {
        if libcRename(from, to) != 0 { throw IOError.last("rename", "\(from) -> \(to)") }
    }

    /// getcwd(3).
    public static func currentDirectory() throws(IOError) -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { throw IOError.last("getcwd") }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

private func libcRename(_ a: String, _ b: String) -> Int32 { rename(a, b) }

/// stdin, stdout and stderr, with write(2) (not send(2): they are rarely sockets).
public enum StandardStream: Sendable {
    case input, output, error

    public var descriptor: FileDescriptor {
        switch self {
        case .input: return .standardInput
        case .output: return .standardOutput
        case .error: return .standardError
        }
    }

    /// Writes every byte (EINTR retried). A closed pipe or a full disk throws.
    public func write(_ bytes: [UInt8]) throws(IOError) {
        let fd = descriptor.rawValue
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { b in libcWrite(fd, b.baseAddress! + done, b.count - done) }
            if n < 0 {
                if currentErrno() == EINTR { continue }
                throw IOError.last("write", self == .output ? "stdout" : "stderr")
            }
            done += n
        }
    }

    public func write(_ text: String) throws(IOError) { try write(Array(text.utf8)) }

    /// Best effort, for diagnostics: a failure to write to stderr has nowhere to be reported.
    public func writeQuietly(_ text: String) { try? write(Array(text.utf8)) }

    /// isatty(3).
    public var isTerminal: Bool { isatty(descriptor.rawValue) == 1 }
}

private func libcWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

extension ProcessControl {
    /// The process environment (environ), as a dictionary; the first of duplicate names wins,
    /// as getenv(3) does.
    public static func environment() -> [String: String] {
        var out: [String: String] = [:]
        var p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        guard p != nil else { return out }
        while let entry = p!.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                let key = String(s[..<eq])
                if out[key] == nil { out[key] = String(s[s.index(after: eq)...]) }
            }
            p! += 1
        }
        return out
    }

    /// exit(3): flushes stdio and ends the process.
    public static func exit(_ code: Int32) -> Never { libcExit(code) }
}

private func libcExit(_ code: Int32) -> Never { exit(code) }
