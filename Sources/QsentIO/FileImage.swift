import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What stat(2) says about a path: its kind and the fields that change when the file is
/// replaced (device, inode), rewritten or truncated in place (size, mtime, ctime). The model
/// watcher compares these; the loaders use `kind` to refuse anything but a regular file.
public struct FileStatus: Equatable, Sendable {
    public var kind: Files.Kind
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    /// Last modification and last status change, in nanoseconds since the epoch.
    public var modifiedNanos: Int64
    public var changedNanos: Int64

    init(_ st: stat) {
        kind = Files.Kind(mode: st.st_mode)
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        #if canImport(Darwin)
        modifiedNanos = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        changedNanos = Int64(st.st_ctimespec.tv_sec) * 1_000_000_000 + Int64(st.st_ctimespec.tv_nsec)
        #else
        modifiedNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        changedNanos = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        #endif
    }
}

extension Files {
    /// stat(2), following symbolic links.
    public static func status(_ path: String) throws(IOError) -> FileStatus {
        var st = stat()
        guard stat(path, &st) == 0 else { throw IOError.last("stat", path) }
        return FileStatus(st)
    }

    /// The names in a directory, without "." and "..", sorted (byte order).
    public static func list(directory path: String) throws(IOError) -> [String] {
        guard let d = opendir(path) else { throw IOError.last("opendir", path) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

/// A whole regular file read once into private, read-only anonymous memory.
///
/// Why not mmap the file: a file-backed mapping shows whatever the file holds *now*. When an
/// operator truncates it in place, touching a page past the new end raises SIGBUS (which Swift
/// cannot catch); when they `cp` another file over it, the mapping silently shows the new bytes.
/// A private copy is immune to both: once read and verified, it is what the process runs on
/// until it is replaced. The memory is the same amount (RssAnon instead of RssFile).
///
/// Anything but a regular file is refused without blocking: the path is stat-checked, opened
/// with O_NONBLOCK (a FIFO swapped in meanwhile cannot block the open), and checked again with
/// fstat on the descriptor that is read. A file that changes while it is read (size, mtime or
/// ctime differ after the read, or it ends early) is refused as `changedWhileReading`.
///
/// `@unchecked Sendable` without a lock: nothing changes after init (the memory is PROT_READ
/// and unmapped only in deinit), so there is no state to guard.
public final class FileImage: @unchecked Sendable {
    public let path: String
    public let count: Int
    /// fstat of the descriptor once the read finished (equal to the one before it).
    public let status: FileStatus
    private let base: UnsafeRawPointer?

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case open(path: String, errno: Errno)
        case stat(path: String, errno: Errno)
        case notRegularFile(path: String, kind: String)
        case map(path: String, errno: Errno)
        case read(path: String, errno: Errno)
        case changedWhileReading(path: String, problem: String)
        case tooLarge(path: String, size: Int, memory: Int)

        public var description: String {
            switch self {
            case .open(let p, let e): return "cannot open \(p): \(e) — check the path and permissions"
            case .stat(let p, let e): return "cannot stat \(p): \(e)"
            case .notRegularFile(let p, let kind):
                return "\(p) is \(kind), not a regular file; pass a .qsent blob or a Hugging Face model folder"
            case .map(let p, let e): return "cannot allocate memory for \(p): \(e) — is there enough memory?"
            case .read(let p, let e): return "cannot read \(p): \(e)"
            case .tooLarge(let p, let size, let memory):
                return "\(p) is \(size) bytes, more than this machine's \(memory) bytes of memory; is it really the model?"
            case .changedWhileReading(let p, let what):
                return "\(p) changed while it was being read (\(what)); it is being written: replace it by rename (write a temporary file, then mv)"
            }
        }
    }

    /// Opens `path` for reading if it is a regular file, without ever blocking: stat, open
    /// with O_NONBLOCK, fstat. The caller closes the descriptor.
    private static func openRegular(_ path: String) throws(Failure) -> (FileDescriptor, FileStatus) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = Errno(rawValue: currentErrno())
            throw e == .noSuchFileOrDirectory ? Failure.open(path: path, errno: e) : Failure.stat(path: path, errno: e)
        }
        let named = FileStatus(st)
        guard named.kind == .regular else { throw Failure.notRegularFile(path: path, kind: named.kind.description) }
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
        } catch let e as Errno {
            throw Failure.open(path: path, errno: e)
        } catch {
            throw Failure.open(path: path, errno: .ioError)
        }
        guard fstat(fd.rawValue, &st) == 0 else {
            let e = Errno(rawValue: currentErrno())
            try? fd.close()
            throw Failure.stat(path: path, errno: e)
        }
        let opened = FileStatus(st)
        guard opened.kind == .regular else {
            try? fd.close()
            throw Failure.notRegularFile(path: path, kind: opened.kind.description)
        }
        return (fd, opened)
    }

    /// The first `count` bytes of a regular file (fewer if it is shorter) and its status, read
    /// with the same care as `init`: lets a loader refuse a file by its header before reading
    /// all of it.
    public static func head(path: String, count: Int) throws(Failure) -> (bytes: [UInt8], status: FileStatus) {
        let (fd, st) = try openRegular(path)
        defer { try? fd.close() }
        var out = [UInt8](repeating: 0, count: max(0, min(count, Int(st.size))))
        var done = 0
        while done < out.count {
            let r = out.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if r > 0 { done += r; continue }
            if r < 0 && currentErrno() == EINTR { continue }
            if r == 0 { break }
            throw Failure.read(path: path, errno: Errno(rawValue: currentErrno()))
        }
        return (Array(out[0..<done]), st)
    }

    public init(path: String) throws(Failure) {
        self.path = path
        let (fd, before) = try Self.openRegular(path)
        defer { try? fd.close() }
        var st = stat()
        let n = Int(before.size)
        // A file larger than the machine's memory cannot be held; refuse it before allocating.
        let memory = Int(sysconf(Int32(_SC_PHYS_PAGES))) &* Int(sysconf(Int32(_SC_PAGESIZE)))
        if memory > 0 && n > memory { throw Failure.tooLarge(path: path, size: n, memory: memory) }
        count = n
        if n == 0 {
            base = nil
            status = before
            return
        }
        let p = try Self.allocate(n, path: path)
        var done = 0
        while done < n {
            let r = pread(fd.rawValue, p + done, min(n - done, 1 << 30), off_t(done))
            if r > 0 { done += r; continue }
            let e = currentErrno()
            if r < 0 && e == EINTR { continue }
            munmap(p, Self.mappedLength(n))
            if r == 0 { throw Failure.changedWhileReading(path: path, problem: "it ended after \(done) of \(n) bytes") }
            throw Failure.read(path: path, errno: Errno(rawValue: e))
        }
        guard fstat(fd.rawValue, &st) == 0 else {
            munmap(p, Self.mappedLength(n))
            throw Failure.stat(path: path, errno: Errno(rawValue: currentErrno()))
        }
        let after = FileStatus(st)
        guard after.size == before.size, after.modifiedNanos == before.modifiedNanos, after.changedNanos == before.changedNanos else {
            munmap(p, Self.mappedLength(n))
            throw Failure.changedWhileReading(path: path, problem: "size, modification or change time moved during the read")
        }
        // From here on nothing may write it: a stray store faults instead of changing weights.
        guard mprotect(p, n, PROT_READ) == 0 else {
            let e = Errno(rawValue: currentErrno())
            munmap(p, Self.mappedLength(n))
            throw Failure.map(path: path, errno: e)
        }
        base = UnsafeRawPointer(p)
        status = after
    }

    /// The bytes mapped for an `n`-byte file: whole pages, plus one guard page.
    private static func mappedLength(_ n: Int) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return (n + page - 1) / page * page + page
    }

    /// Anonymous read-write memory for `n` bytes, followed by a PROT_NONE guard page: a read
    /// past the file's last page (a loader or kernel overrunning a section that ends the file)
    /// faults there at once, every time, instead of reading whatever mapping the kernel happened
    /// to place next. The guard costs address space, no memory.
    ///
    /// On Linux it is placed on a 2 MiB boundary and marked MADV_HUGEPAGE, so the read below
    /// faults in (and the kernel zeroes) a few transparent huge pages instead of one 4 KiB page
    /// at a time: for the 24 MB model, MAP_POPULATE of 4 KiB pages took 12 ms before the read
    /// could start. Without THP (`never`) it is ordinary memory, faulted in by the read.
    private static func allocate(_ n: Int, path: String) throws(Failure) -> UnsafeMutableRawPointer {
        #if os(Linux)
        let huge = 2 << 20
        if n >= huge {
            let reserve = mappedLength(n) + huge
            guard let r = mmap(nil, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), r != MAP_FAILED else {
                throw Failure.map(path: path, errno: Errno(rawValue: currentErrno()))
            }
            let start = Int(bitPattern: r)
            let aligned = (start + huge - 1) / huge * huge
            let end = aligned + mappedLength(n)
            if aligned > start { munmap(r, aligned - start) }
            if start + reserve > end { munmap(UnsafeMutableRawPointer(bitPattern: end), start + reserve - end) }
            let p = UnsafeMutableRawPointer(bitPattern: aligned)!
            _ = madvise(p, n, Int32(MADV_HUGEPAGE))  // advice only: without THP the read faults in 4 KiB pages
            return try guarded(p, n, path: path)
        }
        let flags = MAP_PRIVATE | MAP_ANONYMOUS
        #else
        let flags = MAP_PRIVATE | MAP_ANON
        #endif
        guard let p = mmap(nil, mappedLength(n), PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            throw Failure.map(path: path, errno: Errno(rawValue: currentErrno()))
        }
        return try guarded(p, n, path: path)
    }

    /// Makes the page after `n` bytes at `p` the guard (PROT_NONE).
    private static func guarded(_ p: UnsafeMutableRawPointer, _ n: Int, path: String) throws(Failure) -> UnsafeMutableRawPointer {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = mappedLength(n)
        guard mprotect(p + (length - page), page, PROT_NONE) == 0 else {
            let e = Errno(rawValue: currentErrno())
            munmap(p, length)
            throw Failure.map(path: path, errno: e)
        }
        return p
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), Self.mappedLength(count)) }
    }

    /// The whole file's bytes (valid as long as this object lives).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
