import QsentIO
import XCTest

final class SyncTests: XCTestCase {
    /// A timed wait with nobody signalling returns false, no earlier than its deadline.
    func testTimedWaitTimesOut() {
        let lock = ConditionLock()
        let start = Clock.monotonicNanos()
        let woken = lock.withLock { lock.wait(untilMonotonicNanos: start + 20_000_000) }
        XCTAssertFalse(woken)
        XCTAssertGreaterThanOrEqual(Clock.monotonicNanos() - start, 20_000_000)
    }

    /// Threads spawned with OSThread run their closure; join waits for it; the lock and
    /// condition hand a counter between them without losing an increment.
    func testThreadsAndConditionHandOff() throws {
        final class Box: @unchecked Sendable { var count = 0; var done = 0 } // guarded by `lock`
        let lock = ConditionLock()
        let box = Box()
        let threads = try (0..<4).map { i in
            try OSThread.spawn(name: "qsent-test-\(i)") {
                for _ in 0..<10_000 { lock.withLock { box.count += 1 } }
                lock.withLock { box.done += 1; lock.broadcast() }
            }
        }
        lock.withLock { while box.done < 4 { lock.wait() } }
        threads.forEach { $0.join() }
        XCTAssertEqual(box.count, 40_000)
    }
}
