internal import QsentIO
import Synchronization

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

/// A row-major FP32 activation matrix: a view of `rows * cols` floats in a forward pass's
/// `Workspace` (the pass keeps the workspace checked out while any view of it is in use).
struct Matrix {
    let rows: Int
    let cols: Int
    let base: UnsafeMutablePointer<Float>

    var count: Int { rows * cols }
    func row(_ r: Int) -> UnsafeMutablePointer<Float> { base + r * cols }
}

/// Activation rows quantized for an int8 layer: q is [rows][kp] (kp = paddedK(cols), zero
/// padding), scales[rows], exactly what `Kernels.linear` would compute from the FP32 rows. A
/// view into a `Workspace`, as `Matrix` is; also the buffer an int8 layer quantizes its input
/// rows into when no op has done that for it.
struct QuantizedRows {
    let q: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>
    let rows: Int
    let kp: Int

    /// Bytes for `rows` rows of `cols` values: the int8 rows, then the scales (64-byte aligned).
    static func bytes(rows: Int, cols: Int) -> Int {
        Workspace.aligned(rows * PackedS8.paddedK(cols)) + rows * MemoryLayout<Float>.stride
    }

    /// Rows of `cols` values laid out at `base` as `bytes(rows:cols:)` counts them.
    init(at base: UnsafeMutableRawPointer, rows: Int, cols: Int) {
        let kp = PackedS8.paddedK(cols)
        q = base.bindMemory(to: Int8.self, capacity: rows * kp)
        scales = (base + Workspace.aligned(rows * kp)).bindMemory(to: Float.self, capacity: rows)
        self.rows = rows
        self.kp = kp
    }
}

/// The activation memory of forward passes: one anonymous mapping (QsentIO `AnonymousMemory`,
/// outside malloc's arenas) that a pass lays out its buffers in, kept for the next pass.
///
/// Why not arrays per buffer: a pass allocated about ten buffers per layer, megabytes each and a
/// different size for every batch; in a daemon that also allocates small long-lived things
/// between passes (connections, a reloaded tokenizer), malloc's one arena fragmented, and grew
/// by megabytes a round with most of it free (AllocatorTests in CI: 22 -> 32 MB, 29 MB free). A pass
/// now allocates no activation memory from malloc at all: it reuses this mapping, which grows
/// (by at least half, so a few growths reach any size) when a larger batch comes.
///
/// @unchecked Sendable: a workspace is used by one pass at a time; `WorkspacePool` hands it out
/// exclusively and takes it back after the pass.
final class Workspace: @unchecked Sendable {
    private var memory: AnonymousMemory?

    /// Bytes mapped now.
    var capacity: Int { memory?.count ?? 0 }

    /// `n` rounded up to 64 bytes (a cache line: each buffer starts on its own).
    static func aligned(_ n: Int) -> Int { (n + 63) & ~63 }

    /// The start of at least `bytes` bytes (64-byte aligned), mapped anew when the present
    /// mapping is smaller; its contents are undefined. Traps when the kernel refuses the memory:
    /// out of memory in the middle of a pass, as an array allocation failing would.
    func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if let m = memory, m.count >= bytes { return m.base }
        let page = 4096
        let want = max(bytes, capacity + capacity / 2)
        memory = nil  // unmap the smaller one first
        do {
            let m = try AnonymousMemory(count: (want + page - 1) / page * page)
            memory = m
            return m.base
        } catch {
            fatalError("cannot map \(want) bytes for activations: \(error)")
        }
    }

    /// Bytes left between two buffers of a plan: under AddressSanitizer they are poisoned
    /// (`guardGaps`), so a kernel that writes or reads past its buffer is reported, as it was
    /// when each buffer was an array of its own.
    static let gap = 64

    /// Under AddressSanitizer: makes the first `bytes` addressable except the `gaps` (byte
    /// ranges from the start), and the rest of the mapping unaddressable. Elsewhere a no-op.
    func guardGaps(bytes: Int, gaps: [Range<Int>]) {
        guard let m = memory else { return }
        m.unpoison(0..<bytes)
        for g in gaps { m.poison(g) }
        if bytes < m.count { m.poison(bytes..<m.count) }
    }

    /// Unmaps the memory (the next `reserve` maps anew).
    func release() { memory = nil }
}

/// The workspaces of an engine's forward passes: one per pass in flight (the daemon runs one
/// at a time; in-process callers may run several). A workspace larger than `retainBytes` after
/// its pass is released rather than kept, so a rare large batch does not stay resident.
///
/// The idle list is a QsentIO `Locked` (a pthread mutex), not a `Synchronization.Mutex`: qsentd's
/// accept thread releases idle workspaces while the inference thread takes and returns one, and
/// ThreadSanitizer reports a contended `Mutex` as a race (docs/TESTING.md, "Sanitizers").
final class WorkspacePool: Sendable {
    private let idle = Locked<[Workspace]>([])
    private let mapped = Atomic<Int>(0)
    let retainBytes: Int

    /// Kept between passes: 32 MiB, what glibc's arena may keep free at its top in qsentd
    /// (`Server.thresholdBytes`); a 384-token pass of the 768-wide model needs about 9 MB.
    static let defaultRetainBytes = 32 << 20

    init(retainBytes: Int = WorkspacePool.defaultRetainBytes) {
        self.retainBytes = retainBytes
    }

    /// Runs `body` with a workspace of its own.
    func with<R>(_ body: (Workspace) -> R) -> R {
        let w = idle.withLock { $0.popLast() } ?? Workspace()
        let before = w.capacity
        defer {
            if w.capacity > retainBytes { w.release() }
            mapped.wrappingAdd(w.capacity - before, ordering: .relaxed)
            idle.withLock { $0.append(w) }
        }
        return body(w)
    }

    /// Unmaps the idle workspaces' memory (they map anew when next used).
    func releaseIdle() {
        idle.withLock { workspaces in
            for w in workspaces {
                mapped.wrappingSubtract(w.capacity, ordering: .relaxed)
                w.release()
            }
        }
    }

    /// Bytes mapped by all workspaces, as of the end of the last pass.
    var mappedBytes: Int { mapped.load(ordering: .relaxed) }
}
