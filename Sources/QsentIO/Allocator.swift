import CQsentIO

/// The C allocator's knobs and figures (glibc malloc; elsewhere no-ops and nil).
public enum Allocator {
    /// Limits glibc to `count` malloc arenas (mallopt M_ARENA_MAX). Call before starting
    /// threads. False where there is no such knob or it was refused.
    @discardableResult
    public static func limitArenas(_ count: Int) -> Bool {
        count >= 1 && count <= Int(Int32.max) && cqsentio_limit_malloc_arenas(Int32(count)) == 1
    }

    /// Pins glibc's mmap and trim thresholds at `bytes` (mallopt M_MMAP_THRESHOLD and
    /// M_TRIM_THRESHOLD): a buffer of `bytes` or more gets its own mapping, unmapped on free, and
    /// an arena keeps at most that much free space at its top. qsentd pins 32 MiB
    /// (`Server.thresholdBytes`). Pinning also stops glibc from raising them by itself: left dynamic, they
    /// rise after the first free of a large mmapped buffer, and from then on large buffers of
    /// varying sizes (activations) are cut from the arenas, whose freed space stays resident
    /// and grows with fragmentation. Call before starting threads. False where there is no such
    /// knob or it was refused.
    @discardableResult
    public static func pinThresholds(bytes: Int) -> Bool {
        bytes >= 0 && cqsentio_pin_malloc_thresholds(bytes) == 1
    }

    /// How many malloc arenas the process has now (glibc malloc_info); nil where unknown.
    /// An arena, once made, lives as long as the process; `limitArenas` caps how many are made.
    public static func arenaCount() -> Int? {
        let n = cqsentio_malloc_arena_count()
        return n >= 1 ? Int(n) : nil
    }

    /// Heap figures summed over all arenas (glibc mallinfo2).
    public struct HeapStatistics: Sendable, Equatable {
        /// Bytes the arenas hold from the kernel (not counting chunks with their own mapping).
        public var heapBytes: Int
        /// Of these, bytes allocated.
        public var heapInUse: Int
        /// Of these, bytes free (resident unless trimmed).
        public var heapFree: Int
        /// Bytes in chunks with their own mapping.
        public var mmappedBytes: Int
        public var mmappedChunks: Int
    }

    /// Nil without glibc 2.33 or later.
    public static func heapStatistics() -> HeapStatistics? {
        var s = cqsentio_heap_stats()
        guard cqsentio_heap_statistics(&s) == 0 else { return nil }
        return HeapStatistics(heapBytes: Int(s.heap_bytes), heapInUse: Int(s.heap_in_use), heapFree: Int(s.heap_free),
                              mmappedBytes: Int(s.mmapped_bytes), mmappedChunks: Int(s.mmapped_chunks))
    }
}
