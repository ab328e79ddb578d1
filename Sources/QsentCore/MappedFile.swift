import FoundationEssentials  // Data, for the JSON sections the loaders decode
internal import QsentIO  // internal: QsentCore's API shows none of QsentIO's types
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

    /// Why a file could not be read. Anything but a regular file is refused without blocking.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case open(path: String, errno: Errno)
        case stat(path: String, errno: Errno)
        case notRegularFile(path: String, kind: String)
        case map(path: String, errno: Errno)
        case read(path: String, errno: Errno)
        /// Size, mtime or ctime moved during the read, or the file ended early.
        case changedWhileReading(path: String, problem: String)
        /// Larger than the machine's memory.
        case tooLarge(path: String, size: Int, memory: Int)

        init(_ f: FileImage.Failure) {
            switch f {
            case .open(let p, let e): self = .open(path: p, errno: e)
            case .stat(let p, let e): self = .stat(path: p, errno: e)
            case .notRegularFile(let p, let k): self = .notRegularFile(path: p, kind: k)
            case .map(let p, let e): self = .map(path: p, errno: e)
            case .read(let p, let e): self = .read(path: p, errno: e)
            case .changedWhileReading(let p, let w): self = .changedWhileReading(path: p, problem: w)
            case .tooLarge(let p, let s, let m): self = .tooLarge(path: p, size: s, memory: m)
            }
        }

        public var description: String {
            switch self {
            case .open(let p, let e): return "cannot open \(p): \(e) — check the path and permissions"
            case .stat(let p, let e): return "cannot stat \(p): \(e)"
            case .notRegularFile(let p, let kind):
                return "\(p) is \(kind), not a regular file; pass a .qsent blob or a Hugging Face model folder"
            case .map(let p, let e): return "cannot allocate memory for \(p): \(e) — is there enough memory?"
            case .read(let p, let e): return "cannot read \(p): \(e)"
            case .changedWhileReading(let p, let what):
                return "\(p) changed while it was being read (\(what)); it is being written: replace it by rename (write a temporary file, then mv)"
            case .tooLarge(let p, let size, let memory):
                return "\(p) is \(size) bytes, more than this machine's \(memory) bytes of memory; is it really the model?"
            }
        }
    }

    public init(path: String) throws(Failure) {
        self.path = path
        do { image = try FileImage(path: path) } catch { throw Failure(error) }
        count = image.count
    }

    /// The first `count` bytes of the file (fewer if it is shorter) and its size, without
    /// reading the rest: for refusing a file by its header.
    public static func head(path: String, count: Int) throws(Failure) -> (bytes: [UInt8], size: Int) {
        do {
            let (bytes, status) = try FileImage.head(path: path, count: count)
            return (bytes, Int(status.size))
        } catch {
            throw Failure(error)
        }
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
