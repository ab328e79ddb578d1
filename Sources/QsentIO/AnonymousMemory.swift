import CQsentIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Private read-write memory of its own mapping (mmap MAP_PRIVATE | MAP_ANONYMOUS), unmapped
/// when the object goes: memory that stays outside malloc's arenas, so buffers of varying
/// sizes kept in it cannot fragment them, and its pages go back to the kernel as soon as it is
/// released. Pages are backed by memory only once touched. Page-aligned.
///
/// The engine keeps each forward pass's activations in one (QsentCore's `Workspace`).
public final class AnonymousMemory {
    public let count: Int
    public let base: UnsafeMutableRawPointer

    /// Maps `count` bytes (at least one page). Fails with ENOMEM where the address space or the
    /// overcommit limit refuses it.
    public init(count: Int) throws(IOError) {
        precondition(count >= 0)
        let length = max(1, count)
        #if os(Linux)
        let flags = MAP_PRIVATE | MAP_ANONYMOUS
        #else
        let flags = MAP_PRIVATE | MAP_ANON
        #endif
        guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            throw IOError.last("mmap", "\(length) bytes of anonymous memory")
        }
        base = p
        self.count = length
    }

    deinit {
        unpoison(0..<count)  // the pages may be mapped again for something else
        munmap(base, count)
    }

    /// Under AddressSanitizer, marks these bytes unaddressable: an access there is reported, as
    /// one past a malloc'd buffer would be (the gaps between buffers cut from this memory).
    /// Elsewhere a no-op.
    public func poison(_ bytes: Range<Int>) { mark(bytes, poisoned: true) }

    /// Under AddressSanitizer, marks these bytes addressable again. Elsewhere a no-op.
    public func unpoison(_ bytes: Range<Int>) { mark(bytes, poisoned: false) }

    private func mark(_ bytes: Range<Int>, poisoned: Bool) {
        precondition(bytes.lowerBound >= 0 && bytes.upperBound <= count)
        cqsentio_asan_mark(base + bytes.lowerBound, bytes.count, poisoned ? 1 : 0)
    }
}
