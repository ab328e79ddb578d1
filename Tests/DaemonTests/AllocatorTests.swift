import QsentCore
import QsentIO
import QsentServer
import Synchronization
import XCTest

/// The daemon's RssAnon crept in the soak (87 → 100 MiB over 30 minutes): every thread that
/// allocated while the others were busy got a glibc arena of its own, and each arena kept the
/// freed activations (MBs, a different size per batch) of the largest forward pass it ran.
/// `Server.configureAllocator()` limits the arenas to 2 and pins the thresholds. This test
/// replays the daemon's pattern in-process — models loaded and warmed up on short-lived threads
/// (SIGHUP's reload thread), batches of varying sizes on a long-lived one (the inference
/// thread), old engines dropped, and a burst of connection threads allocating at once — and
/// checks both the mechanism and its effect:
/// - no arena is made beyond the limit (glibc gives each new thread an arena of its own up to 8
///   per core: without `configureAllocator` the burst alone makes 8 more; checked, that
///   mutation fails here, while the growth bound below alone did not catch it);
/// - the arenas grow by less than 4 MiB after the first round (the warm-up, which has seen
///   every batch size): flat after warm-up, as the soak must be.
/// Arenas outlive their threads, so a test that ran earlier in this process may have made
/// some: the bound is max(arenas before, the limit).
final class AllocatorTests: XCTestCase {
    /// Bound on the arenas' growth over the replay; see the class comment for the figures.
    static let maxHeapGrowth = 4 << 20

    func testReloadsAndVaryingBatchesLeaveTheArenasSmall() throws {
        Server.configureAllocator()
        let model = try TestEnv.model()
        guard let before = Allocator.heapStatistics() else { throw XCTSkip("no mallinfo2 here (needs glibc 2.33 or later)") }
        // Texts from 3 to about 250 tokens, so each batch's activations have another size.
        let texts = (0..<16).map { i in
            "Review \(i): " + String(repeating: "the acting was \(i % 2 == 0 ? "superb" : "wooden") and the plot dragged, ", count: 1 + (i * 7) % 23)
        }
        let arenasBefore = Allocator.arenaCount()
        let sizes = [1, 8, 3, 16, 5, 12, 2, 7]
        var peakMapped = 0
        var warm = before
        for round in 0..<6 {
            // Load and warm up on a thread of its own, like a SIGHUP reload.
            let loaded = Mutex<Result<Engine, any Error>?>(nil)
            try OSThread.spawn(name: "test-reload", stackSize: 8 << 20) {
                let r = Result { () throws -> Engine in
                    let e = try Engine(path: model, options: EngineOptions(threads: 2))
                    _ = e.classify(["warm-up: this sentence exercises every layer once."])
                    return e
                }
                loaded.withLock { $0 = r }
            }.join()
            let engine = try XCTUnwrap(loaded.withLock { $0 }).get()
            for k in 0..<sizes.count {
                let n = sizes[(k + round) % sizes.count]
                let batch = (0..<n).map { texts[($0 * 5 + k + round) % texts.count] }
                XCTAssertEqual(engine.classify(batch).count, n)
                if let s = Allocator.heapStatistics() { peakMapped = max(peakMapped, s.mmappedBytes) }
            }
            if round == 0 { warm = try XCTUnwrap(Allocator.heapStatistics()) }
        }
        // A burst of threads alive at once, each allocating (as connection threads do).
        let burst = 8
        let gate = ConditionLock()
        let counter = Locked(0)
        let threads = try (0..<burst).map { _ in
            try OSThread.spawn(name: "test-conn") {
                let buffer = [UInt8](repeating: 1, count: 64 << 10)
                gate.withLock {
                    counter.withLock { $0 += Int(buffer[0]) }
                    gate.broadcast()
                    while counter.withLock({ $0 }) < burst { gate.wait() }
                }
            }
        }
        for t in threads { t.join() }
        XCTAssertEqual(counter.withLock { $0 }, burst)
        if let before = arenasBefore, let now = Allocator.arenaCount() {
            let bound = max(before, Server.arenas)
            print("AllocatorTests: malloc arenas \(before) before, \(now) after \(burst) threads at once and 6 reloads (bound \(bound))")
            XCTAssertLessThanOrEqual(now, bound,
                                     "glibc made \(now - before) more arenas (now \(now)): is Server.configureAllocator() still limiting them to \(Server.arenas)?")
        }
        let after = try XCTUnwrap(Allocator.heapStatistics())
        let grown = after.heapBytes - warm.heapBytes
        print("AllocatorTests: arenas \(before.heapBytes) -> \(warm.heapBytes) after the first round -> \(after.heapBytes) bytes (free \(warm.heapFree) -> \(after.heapFree)), in use \(after.heapInUse), own mappings now \(after.mmappedBytes) in \(after.mmappedChunks)")
        XCTAssertLessThan(grown, Self.maxHeapGrowth,
                          "the arenas grew by \(grown) bytes over 5 more reloads and 40 batches after the first round (free in them: \(after.heapFree)): freed activations are not being reused — is Server.configureAllocator() still limiting glibc's arenas before the threads start?")
    }
}
