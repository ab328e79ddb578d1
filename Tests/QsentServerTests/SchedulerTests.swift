import QsentServer
import XCTest

/// A queued text for the scheduler: an id to follow it, its token count and byte size.
private struct Item: SchedulerItem, Equatable {
    var id: Int
    var tokens: Int
    var bytes: Int = 10
}

final class SchedulerTests: XCTestCase {
    private func ids(_ batch: [Item]?) -> [Int]? { batch?.map(\.id) }

    func testBatchesKeepArrivalOrderAcrossPushes() {
        let s = Scheduler<Item>(capacity: 100, capacityBytes: 1 << 20)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 5), Item(id: 2, tokens: 5)]))
        XCTAssertTrue(s.tryPush([Item(id: 3, tokens: 5)]))
        XCTAssertTrue(s.tryPush([Item(id: 4, tokens: 5), Item(id: 5, tokens: 5)]))
        XCTAssertEqual(s.depth, 5)
        XCTAssertEqual(ids(s.popBatch(maxTexts: 100, maxTokens: 1000)), [1, 2, 3, 4, 5])
        XCTAssertEqual(s.depth, 0)
    }

    func testMaxTextsSplitsBatches() {
        let s = Scheduler<Item>(capacity: 100, capacityBytes: 1 << 20)
        XCTAssertTrue(s.tryPush((1...7).map { Item(id: $0, tokens: 1) }))
        XCTAssertEqual(ids(s.popBatch(maxTexts: 3, maxTokens: 1000)), [1, 2, 3])
        XCTAssertEqual(ids(s.popBatch(maxTexts: 3, maxTokens: 1000)), [4, 5, 6])
        XCTAssertEqual(ids(s.popBatch(maxTexts: 3, maxTokens: 1000)), [7])
        XCTAssertEqual(s.depth, 0)
    }

    func testTokenBudgetStopsBeforeTheTextThatWouldExceedIt() {
        let s = Scheduler<Item>(capacity: 100, capacityBytes: 1 << 20)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 40), Item(id: 2, tokens: 60), Item(id: 3, tokens: 1), Item(id: 4, tokens: 100)]))
        // 40 + 60 = 100 fits exactly; + 1 would not.
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [1, 2])
        // FIFO: the small text does not jump the big one; the big one then runs alone.
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [3])
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [4])
    }

    func testFirstTextIsTakenEvenOverTheTokenBudget() {
        let s = Scheduler<Item>(capacity: 100, capacityBytes: 1 << 20)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 500), Item(id: 2, tokens: 1)]))
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [1])
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [2])
    }

    func testFullQueueRefusesWholeRequests() {
        let s = Scheduler<Item>(capacity: 4, capacityBytes: 1 << 20)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 1), Item(id: 2, tokens: 1), Item(id: 3, tokens: 1)]))
        // 3 + 2 > 4: all or nothing.
        XCTAssertFalse(s.tryPush([Item(id: 4, tokens: 1), Item(id: 5, tokens: 1)]))
        XCTAssertEqual(s.depth, 3)
        XCTAssertTrue(s.tryPush([Item(id: 6, tokens: 1)]))
        XCTAssertFalse(s.tryPush([Item(id: 7, tokens: 1)]))
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [1, 2, 3, 6])
        // Space again once drained.
        XCTAssertTrue(s.tryPush([Item(id: 8, tokens: 1)]))
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [8])
    }

    func testByteCapRefusesAndAnEmptyQueueTakesAnything() {
        let s = Scheduler<Item>(capacity: 100, capacityBytes: 100)
        // An empty queue accepts a request larger than both caps (it still has to run).
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 1, bytes: 150)]))
        XCTAssertFalse(s.tryPush([Item(id: 2, tokens: 1, bytes: 1)]))
        XCTAssertEqual(ids(s.popBatch(maxTexts: 10, maxTokens: 100)), [1])
        XCTAssertTrue(s.tryPush([Item(id: 3, tokens: 1, bytes: 60)]))
        XCTAssertTrue(s.tryPush([Item(id: 4, tokens: 1, bytes: 40)]))
        XCTAssertFalse(s.tryPush([Item(id: 5, tokens: 1, bytes: 1)]))
        // Popping frees the bytes.
        XCTAssertEqual(ids(s.popBatch(maxTexts: 1, maxTokens: 100)), [3])
        XCTAssertTrue(s.tryPush([Item(id: 6, tokens: 1, bytes: 60)]))
        let big = Scheduler<Item>(capacity: 2, capacityBytes: 1 << 20)
        XCTAssertTrue(big.tryPush((1...5).map { Item(id: $0, tokens: 1) }))
    }

    func testStopDrainsThenEnds() {
        let s = Scheduler<Item>(capacity: 100, capacityBytes: 1 << 20)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 1), Item(id: 2, tokens: 1)]))
        s.stop()
        XCTAssertEqual(ids(s.popBatch(maxTexts: 1, maxTokens: 100)), [1])
        XCTAssertEqual(ids(s.popBatch(maxTexts: 1, maxTokens: 100)), [2])
        XCTAssertNil(s.popBatch(maxTexts: 1, maxTokens: 100))
    }

    func testManyPushesAndPopsKeepOrder() {
        // Exercises the compaction of the consumed head of the queue.
        let s = Scheduler<Item>(capacity: 10_000, capacityBytes: 1 << 30)
        var next = 0, expected = 0
        for round in 0..<50 {
            let n = 40 + round
            XCTAssertTrue(s.tryPush((0..<n).map { Item(id: next + $0, tokens: 3) }))
            next += n
            while let b = s.popBatch(maxTexts: 7, maxTokens: 15), !b.isEmpty {
                XCTAssertLessThanOrEqual(b.count, 5)
                XCTAssertEqual(ids(b), Array(expected..<expected + b.count))
                expected += b.count
                if s.depth == 0 { break }
            }
        }
        XCTAssertEqual(expected, next)
    }
}
