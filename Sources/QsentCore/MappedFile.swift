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
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeRawPointer?

    public enum Failure: Error, CustomStringConvertible {
        case open(path: String, errno: Errno)
        case stat(path: String, errno: Errno)
        case notRegularFile(path: String)
        case map(path: String, errno: Errno)

        public var description: String {
            switch self {
            case .open(let p, let e): return "cannot open \(p): \(e) — check the path and permissions"
            case .stat(let p, let e): return "cannot stat \(p): \(e)"
            case .notRegularFile(let p): return "\(p) is not a regular file"
            case .map(let p, let e): return "cannot mmap \(p): \(e) — is there enough address space?"
            }
        }
    }

    /// Maps `path` read-only.
    public init(path: String) throws {
        self.path = path
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch let e as Errno {
            throw Failure.open(path: path, errno: e)
        }
        defer { try? fd.close() }
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { throw Failure.stat(path: path, errno: Errno(rawValue: errno)) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw Failure.notRegularFile(path: path) }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd.rawValue, 0)
        guard let p, p != MAP_FAILED else { throw Failure.map(path: path, errno: Errno(rawValue: errno)) }
        base = UnsafeRawPointer(p)
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
