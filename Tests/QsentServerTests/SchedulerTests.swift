import QsentServer
import Synchronization
import XCTest

/// A queued text for the scheduler: an id to follow it, its client, token count, size, deadline.
private struct Item: SchedulerItem, Equatable {
    var id: Int
    var client: Int = 0
    var tokens: Int
    var bytes: Int = 10
    var deadline: UInt64? = nil
}

/// The scheduler's clock, moved by hand.
private final class ManualClock: Sendable {
    private let t = Mutex<UInt64>(1_000_000_000)
    var now: UInt64 { t.withLock { $0 } }
    func advance(ms: UInt64) { t.withLock { $0 += ms * 1_000_000 } }
}

final class SchedulerTests: XCTestCase {
    private let clock = ManualClock()

    private func scheduler(capacity: Int = 10_000, bytes: Int = 1 << 30, maxTexts: Int = 100, maxTokens: Int = 1000,
                           minTokens: Int = 1, quantum: Int = 1000, targetMs: UInt64 = 100, soloMs: UInt64 = 300) -> Scheduler<Item> {
        let c = clock
        return Scheduler(capacity: capacity, capacityBytes: bytes,
                         policy: BatchPolicy(maxTexts: maxTexts, maxTokens: maxTokens, targetNanos: targetMs * 1_000_000,
                                             soloTargetNanos: soloMs * 1_000_000, minTokens: minTokens, quantum: quantum),
                         now: { c.now })
    }

    private func ids(_ batch: Batch<Item>?) -> [Int]? { batch?.items.map(\.id) }

    // MARK: one client: arrival order, caps

    func testOneClientKeepsArrivalOrderAcrossPushes() {
        let s = scheduler()
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 5), Item(id: 2, tokens: 5)]))
        XCTAssertTrue(s.tryPush([Item(id: 3, tokens: 5)]))
        XCTAssertTrue(s.tryPush([Item(id: 4, tokens: 5), Item(id: 5, tokens: 5)]))
        XCTAssertEqual(s.depth, 5)
        XCTAssertEqual(ids(s.popBatch()), [1, 2, 3, 4, 5])
        XCTAssertEqual(s.depth, 0)
        XCTAssertNil(s.nextBatch())
    }

    func testMaxTextsSplitsBatches() {
        let s = scheduler(maxTexts: 3)
        XCTAssertTrue(s.tryPush((1...7).map { Item(id: $0, tokens: 1) }))
        XCTAssertEqual(ids(s.popBatch()), [1, 2, 3])
        XCTAssertEqual(ids(s.popBatch()), [4, 5, 6])
        XCTAssertEqual(ids(s.popBatch()), [7])
        XCTAssertEqual(s.depth, 0)
    }

    func testTokenBudgetStopsBeforeTheTextThatWouldExceedIt() {
        let s = scheduler(maxTokens: 100)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 40), Item(id: 2, tokens: 60), Item(id: 3, tokens: 1), Item(id: 4, tokens: 100)]))
        // 40 + 60 = 100 fits exactly; + 1 would not.
        XCTAssertEqual(ids(s.popBatch()), [1, 2])
        // Within a client, order holds: the small text does not jump the big one.
        XCTAssertEqual(ids(s.popBatch()), [3])
        XCTAssertEqual(ids(s.popBatch()), [4])
    }

    func testFirstTextIsTakenEvenOverTheTokenBudget() {
        let s = scheduler(maxTokens: 100)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 500), Item(id: 2, tokens: 1)]))
        XCTAssertEqual(ids(s.popBatch()), [1])
        XCTAssertEqual(ids(s.popBatch()), [2])
    }

    func testFullQueueRefusesWholeRequestsOfABusyClient() {
        let s = scheduler(capacity: 4)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 1), Item(id: 2, tokens: 1), Item(id: 3, tokens: 1)]))
        // 3 + 2 > 4: all or nothing.
        XCTAssertFalse(s.tryPush([Item(id: 4, tokens: 1), Item(id: 5, tokens: 1)]))
        XCTAssertEqual(s.depth, 3)
        XCTAssertTrue(s.tryPush([Item(id: 6, tokens: 1)]))
        XCTAssertFalse(s.tryPush([Item(id: 7, tokens: 1)]))
        XCTAssertEqual(ids(s.popBatch()), [1, 2, 3, 6])
        // Space again once drained.
        XCTAssertTrue(s.tryPush([Item(id: 8, tokens: 1)]))
        XCTAssertEqual(ids(s.popBatch()), [8])
    }

    func testByteCapRefusesAndAnIdleClientIsAlwaysAdmitted() {
        let s = scheduler(capacity: 3, bytes: 100)
        // A client with nothing queued may queue one request larger than both caps.
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 1, bytes: 150)]))
        XCTAssertFalse(s.tryPush([Item(id: 2, tokens: 1, bytes: 1)]))
        // ...and so may another idle client, while the greedy one is refused: no lock-out.
        XCTAssertTrue(s.tryPush([Item(id: 3, client: 1, tokens: 1, bytes: 1), Item(id: 4, client: 1, tokens: 1, bytes: 1),
                                 Item(id: 5, client: 1, tokens: 1, bytes: 1)]))
        XCTAssertFalse(s.tryPush([Item(id: 6, client: 1, tokens: 1, bytes: 1)]))
        XCTAssertEqual(s.depth, 4)
        XCTAssertEqual(Set(ids(s.popBatch())!), [1, 3, 4, 5])
        // Popping frees the bytes.
        XCTAssertTrue(s.tryPush([Item(id: 7, tokens: 1, bytes: 60)]))
        XCTAssertTrue(s.tryPush([Item(id: 8, tokens: 1, bytes: 40)]))
        XCTAssertFalse(s.tryPush([Item(id: 9, tokens: 1, bytes: 1)]))
    }

    func testStopDrainsThenEnds() {
        let s = scheduler(maxTexts: 1)
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 1), Item(id: 2, tokens: 1)]))
        s.stop()
        XCTAssertEqual(ids(s.popBatch()), [1])
        XCTAssertEqual(ids(s.popBatch()), [2])
        XCTAssertNil(s.popBatch())
    }

    // MARK: fairness

    func testTurnsAlternateBetweenClientsInOneBatch() {
        // Quantum 100 = one text per turn; a batch packs several clients' texts.
        let s = scheduler(maxTexts: 6, maxTokens: 10_000, quantum: 100)
        XCTAssertTrue(s.tryPush((0..<5).map { Item(id: 10 + $0, client: 1, tokens: 100) }))
        XCTAssertTrue(s.tryPush((0..<5).map { Item(id: 20 + $0, client: 2, tokens: 100) }))
        XCTAssertTrue(s.tryPush((0..<5).map { Item(id: 30 + $0, client: 3, tokens: 100) }))
        // A client that becomes active is served next: 3, then 2, then 1 (then round robin).
        XCTAssertEqual(ids(s.popBatch()), [30, 20, 10, 31, 21, 11])
        XCTAssertEqual(ids(s.popBatch()), [32, 22, 12, 33, 23, 13])
        XCTAssertEqual(ids(s.popBatch()), [34, 24, 14])
        XCTAssertNil(s.nextBatch())
    }

    func testDeficitCountsTokensNotTexts() {
        // Client 1 sends 400-token texts, client 2 10-token texts; quantum 200.
        let s = scheduler(maxTexts: 1000, maxTokens: 800, quantum: 200)
        XCTAssertTrue(s.tryPush((0..<100).map { Item(id: $0, client: 1, tokens: 400) }))
        XCTAssertTrue(s.tryPush((0..<4000).map { Item(id: 10_000 + $0, client: 2, tokens: 10) }))
        var served = [1: 0, 2: 0]
        for _ in 0..<40 {
            for it in s.popBatch()!.items { served[it.client]! += it.tokens }
        }
        XCTAssertEqual(served[1]! + served[2]!, 40 * 800)
        // Equal shares in tokens, within one text.
        XCTAssertLessThanOrEqual(abs(served[1]! - served[2]!), 400, "\(served)")
    }

    func testInteractiveTextIsInTheNextBatchWhateverTheBacklog() {
        // 8 heavy clients with 60 full-length texts each; FIFO would run 480 texts first.
        let s = scheduler(maxTexts: 32, maxTokens: 4096, minTokens: 512, quantum: 512)
        for c in 1...8 { XCTAssertTrue(s.tryPush((0..<60).map { Item(id: c * 1000 + $0, client: c, tokens: 384) })) }
        _ = s.popBatch()
        _ = s.popBatch()
        XCTAssertTrue(s.tryPush([Item(id: 1, client: 99, tokens: 6)]))
        // In the next batch, right after the turn under way (FIFO: after 400+ other texts).
        let next = s.popBatch()!.items.map(\.id)
        guard let at = next.firstIndex(of: 1) else { return XCTFail("interactive text not in the next batch: \(next)") }
        XCTAssertEqual(Set(next[..<at].map { $0 / 1000 }).count, at == 0 ? 0 : 1, "only the turn under way goes first: \(next)")
        // Every heavy client advances in every round: after 15 batches of 10 texts (one per turn
        // with 384-token texts and a 4096-token budget), each got within 2 texts of the others.
        for _ in 0..<15 { _ = s.popBatch() }
        let left = (1...8).map { s.depth(client: $0) }
        XCTAssertLessThanOrEqual(left.max()! - left.min()!, 2, "\(left)")
    }

    func testBudgetShrinksWhileOthersWait() {
        let s = scheduler(maxTexts: 1000, maxTokens: 4000, minTokens: 300, quantum: 100, targetMs: 50, soloMs: 250)
        XCTAssertEqual(s.currentBudget, 4000)  // nothing measured yet
        s.finished(tokens: 1000, nanos: 100_000_000)  // 100 µs per token: 50 ms = 500 tokens, 250 ms = 2500
        XCTAssertTrue(s.tryPush((0..<100).map { Item(id: $0, client: 1, tokens: 100) }))
        XCTAssertEqual(s.currentBudget, 2500, "one client: bounded by the solo target only")
        XCTAssertEqual(s.popBatch()!.tokens, 2500)
        XCTAssertTrue(s.tryPush((0..<100).map { Item(id: 1000 + $0, client: 2, tokens: 100) }))
        XCTAssertEqual(s.currentBudget, 500)
        let b = s.popBatch()!
        XCTAssertEqual(b.budget, 500)
        XCTAssertEqual(b.tokens, 500)
        XCTAssertEqual(Set(b.items.map(\.client)), [1, 2])
        // Slower batches shrink it to the floor, never below.
        s.finished(tokens: 100, nanos: 1_000_000_000)
        XCTAssertEqual(s.currentBudget, 300)
        // Fast batches: never above --max-batch-tokens, with one client or several.
        let fast = scheduler(maxTexts: 1000, maxTokens: 4000, minTokens: 300, quantum: 100, targetMs: 50, soloMs: 250)
        fast.finished(tokens: 1000, nanos: 1_000_000)  // 1 µs per token
        XCTAssertTrue(fast.tryPush([Item(id: 1, client: 1, tokens: 100)]))
        XCTAssertEqual(fast.currentBudget, 4000)
        XCTAssertTrue(fast.tryPush([Item(id: 2, client: 2, tokens: 100)]))
        XCTAssertEqual(fast.currentBudget, 4000)
    }

    func testDeadlinePassedBeforeStartCostsNoCompute() {
        let s = scheduler(maxTexts: 2)
        let soon = clock.now + 10_000_000
        XCTAssertTrue(s.tryPush([Item(id: 1, tokens: 5), Item(id: 2, tokens: 5)]))
        XCTAssertTrue(s.tryPush([Item(id: 3, client: 1, tokens: 5, deadline: soon), Item(id: 4, client: 1, tokens: 5, deadline: soon)]))
        XCTAssertTrue(s.tryPush([Item(id: 5, client: 2, tokens: 5, deadline: soon + 1_000_000_000)]))
        clock.advance(ms: 9)
        // Newest active client first: 5 (client 2), then 3 (client 1); the batch is full.
        let first = s.popBatch()!
        XCTAssertEqual(first.items.map(\.id), [5, 3])
        XCTAssertEqual(first.expired, [])
        clock.advance(ms: 1)  // now == the deadline: 4 was not started by then
        let second = s.popBatch()!
        XCTAssertEqual(second.expired.map(\.id), [4])
        XCTAssertEqual(second.items.map(\.id), [1, 2])
        XCTAssertEqual(s.depth, 0)
        XCTAssertNil(s.nextBatch())
    }

    func testRemovingAClientDropsItsTextsOnly() {
        let s = scheduler(maxTexts: 100)
        XCTAssertTrue(s.tryPush([Item(id: 1, client: 1, tokens: 5), Item(id: 2, client: 1, tokens: 5)]))
        XCTAssertTrue(s.tryPush([Item(id: 3, client: 2, tokens: 5)]))
        XCTAssertEqual(s.remove(client: 1).map(\.id), [1, 2])
        XCTAssertEqual(s.depth, 1)
        XCTAssertEqual(s.activeClients, 1)
        XCTAssertEqual(ids(s.popBatch()), [3])
        XCTAssertEqual(s.remove(client: 7), [])
    }

    func testManyClientsManyPushesKeepPerClientOrderAndLoseNothing() {
        let s = scheduler(maxTexts: 7, maxTokens: 40, quantum: 9)
        var next = [Int](repeating: 0, count: 5), seen = [Int](repeating: 0, count: 5)
        var pushed = 0, popped = 0
        for round in 0..<200 {
            let c = (round * 7) % 5
            let n = 1 + round % 6
            XCTAssertTrue(s.tryPush((0..<n).map { Item(id: next[c] + $0, client: c, tokens: 1 + ($0 + round) % 8) }))
            next[c] += n
            pushed += n
            if round % 3 == 0, let b = s.nextBatch() {
                XCTAssertLessThanOrEqual(b.items.count, 7)
                for it in b.items {
                    XCTAssertEqual(it.id, seen[it.client], "client \(it.client) out of order")
                    seen[it.client] += 1
                }
                popped += b.items.count
            }
        }
        while let b = s.nextBatch() {
            for it in b.items { XCTAssertEqual(it.id, seen[it.client]); seen[it.client] += 1 }
            popped += b.items.count
        }
        XCTAssertEqual(popped, pushed)
        XCTAssertEqual(seen, next)
    }
}
