/// Read-only typed memory that the kernels read weights from: either a region of a mapped
/// `.qsent` blob, or memory this process owns (the FP32 reference path). The owner keeps the
/// memory alive as long as any buffer points into it.
///
/// @unchecked Sendable without a lock: the memory is never written after init (read-only
/// mapping, or owned storage filled once), and `owner` keeps it alive.
public struct ConstBuffer<T>: @unchecked Sendable {
    let owner: AnyObject
    let base: UnsafePointer<T>?
    public let count: Int

    /// Copies `values` into 64-byte-aligned owned memory.
    public init(_ values: [T]) {
        let storage = AlignedStorage(bytes: max(1, values.count) * MemoryLayout<T>.stride)
        let p = storage.raw.bindMemory(to: T.self, capacity: max(1, values.count))
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { p.initialize(from: s, count: values.count) }
        }
        owner = storage
        base = UnsafePointer(p)
        count = values.count
    }

    /// A view of `count` elements at `offset` bytes into a mapped file. The caller has checked
    /// the range and alignment.
    init(mapped file: MappedFile, offset: Int, count: Int) {
        precondition(offset >= 0 && offset + count * MemoryLayout<T>.stride <= file.count)
        precondition(offset % MemoryLayout<T>.alignment == 0)
        owner = file
        base = count == 0 ? nil : file.bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: T.self)
        self.count = count
    }

    public subscript(i: Int) -> T {
        precondition(i >= 0 && i < count)
        return base![i]
    }

    @inline(__always) func withPointer<R>(_ body: (UnsafePointer<T>?) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(base) }
    }
}

/// 64-byte aligned heap memory, freed with its owner.
final class AlignedStorage {
    let raw: UnsafeMutableRawPointer
    init(bytes: Int) {
        raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    }
    deinit { raw.deallocate() }
}

/// A row-major FP32 activation matrix.
public struct Matrix: Sendable {
    public var rows: Int
    public var cols: Int
    public var data: [Float]

    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        data = [Float](repeating: 0, count: rows * cols)
    }

    /// A matrix whose every element the caller overwrites before reading (kernel outputs):
    /// skips the zero fill.
    init(uninitializedRows rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        data = .uninitialized(count: rows * cols)
    }

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols)
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    public func row(_ r: Int) -> ArraySlice<Float> { data[(r * cols)..<((r + 1) * cols)] }
}

extension Array where Element: BitwiseCopyable {
    /// `count` elements whose values the caller writes before reading them (kernel outputs and
    /// scratch): no fill. [] for 0: `Array(unsafeUninitializedCapacity: 0)` stores its count
    /// into the standard library's one shared empty-array storage, which other threads read at
    /// the same time (a data race ThreadSanitizer reports, Tests/sanitize.sh thread).
    static func uninitialized(count: Int) -> [Element] {
        count == 0 ? [] : [Element](unsafeUninitializedCapacity: count) { _, n in n = count }
    }
}
