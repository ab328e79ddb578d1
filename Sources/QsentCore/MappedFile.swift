#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SystemPackage

/// A read-only memory mapping of a whole file: the mmap layer. It owns the mapping's raw
/// pointer; `ConstBuffer` (Buffers.swift) hands typed views of it to the kernel wrappers, and
/// the blob and safetensors readers and XXH64 read bounds-checked `slice`s of it
/// (`UnsafeRawBufferPointer`, never outliving the `MappedFile`).
/// @unchecked Sendable without a lock: nothing in it changes after init (the mapping is
/// PROT_READ, MAP_PRIVATE, unmapped only in deinit), so there is no state to guard.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeRawPointer?

    public enum Failure: Error, CustomStringConvertible {
        case open(path: String, errno: Errno)
        case stat(path: String, errno: Errno)
        case notRegularFile(path: String, kind: String)
        case map(path: String, errno: Errno)

        public var description: String {
            switch self {
            case .open(let p, let e): return "cannot open \(p): \(e) — check the path and permissions"
            case .stat(let p, let e): return "cannot stat \(p): \(e)"
            case .notRegularFile(let p, let kind):
                return "\(p) is \(kind), not a regular file; pass a .qsent blob or a Hugging Face model folder"
            case .map(let p, let e): return "cannot mmap \(p): \(e) — is there enough address space?"
            }
        }
    }

    /// Maps `path` read-only. Anything but a regular file (a FIFO, a device, a socket, a
    /// directory) is refused without blocking: the path is checked with stat first, opened
    /// with O_NONBLOCK (so a FIFO swapped in meanwhile cannot block the open), and checked
    /// again with fstat on the descriptor that is mapped.
    public init(path: String) throws {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = Errno(rawValue: errno)
            throw e == .noSuchFileOrDirectory ? Failure.open(path: path, errno: e) : Failure.stat(path: path, errno: e)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw Failure.notRegularFile(path: path, kind: Self.kind(st.st_mode)) }
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
        } catch let e as Errno {
            throw Failure.open(path: path, errno: e)
        }
        defer { try? fd.close() }
        guard fstat(fd.rawValue, &st) == 0 else { throw Failure.stat(path: path, errno: Errno(rawValue: errno)) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw Failure.notRegularFile(path: path, kind: Self.kind(st.st_mode)) }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd.rawValue, 0)
        guard let p, p != MAP_FAILED else { throw Failure.map(path: path, errno: Errno(rawValue: errno)) }
        base = UnsafeRawPointer(p)
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "of an unknown file type"
        }
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The whole mapping.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// A bounds-checked sub-range; callers validate ranges before asking.
    public func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "mapped slice out of bounds")
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// Copies a range out as Data (small things only: headers, JSON sections).
    public func data(_ range: Range<Int>) -> Data {
        Data(slice(range))
    }

    public func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count)
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
