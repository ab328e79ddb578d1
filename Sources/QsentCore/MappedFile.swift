import FoundationEssentials  // Data, for the JSON sections the loaders decode
public import QsentIO  // MappedFile.Failure is QsentIO's FileImage.Failure
import SystemPackage

/// A model file held in memory: the mmap layer. It reads the whole file once into private,
/// read-only anonymous memory (`FileImage`, QsentIO) instead of mapping the file, so a file
/// truncated or rewritten in place later can neither raise SIGBUS nor change the weights under
/// a running engine (docs/DAEMON.md, "Replacing the model"). `ConstBuffer` (Buffers.swift) hands
/// typed views of it to the kernel wrappers, and the blob and safetensors readers and XXH64 read
/// bounds-checked `slice`s of it (`UnsafeRawBufferPointer`, never outliving the `MappedFile`).
///
/// @unchecked Sendable without a lock: nothing in it changes after init (the memory is
/// PROT_READ, unmapped only when the `FileImage` goes), so there is no state to guard.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let image: FileImage

    /// Why a file could not be read (QsentIO's `FileImage.Failure`: anything but a regular file
    /// is refused without blocking; a file that changes while it is read is refused).
    public typealias Failure = FileImage.Failure

    public init(path: String) throws(Failure) {
        self.path = path
        image = try FileImage(path: path)
        count = image.count
    }

    /// The first `count` bytes of the file (fewer if it is shorter) and its size, without
    /// reading the rest: for refusing a file by its header.
    public static func head(path: String, count: Int) throws(Failure) -> (bytes: [UInt8], size: Int) {
        let (bytes, status) = try FileImage.head(path: path, count: count)
        return (bytes, Int(status.size))
    }

    /// The whole file.
    public var bytes: UnsafeRawBufferPointer { image.bytes }

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
