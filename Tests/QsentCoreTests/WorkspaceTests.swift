@testable import QsentCore
import XCTest

/// Forward passes keep their activations in a reused `Workspace` (an anonymous mapping outside
/// malloc, see Buffers.swift) instead of allocating them per pass. These tests hold the engine
/// to what that promises: passes reuse the memory (it grows only for a larger batch), it never
/// changes an answer (stale contents from another text, a release in between), a workspace
/// above `retainBytes` is not kept, and `releaseIdleMemory` gives everything back.
final class WorkspaceTests: XCTestCase {
    static let texts = ThreadCountTests.texts
    static func bits(_ cs: [Classification]) -> [[UInt32]] { ThreadCountTests.bits(cs) }

    func testPassesReuseTheWorkspaceAndGrowOnlyForLargerBatches() throws {
        let e = try Engine(path: ThreadCountTests.blob, options: EngineOptions(threads: 2))
        XCTAssertEqual(e.activationBytes, 0, "nothing is mapped before the first pass")
        let longest = Self.texts.last!
        let want = Self.bits(e.classify([longest]))
        let one = e.activationBytes
        // 384 tokens of the 384-wide model: x, its int8 rows, QKV/FFN1, ctx, a and the head.
        let plan = ActivationPlan(weights: e.forward.weights, tokens: 384, sequences: 1, maxLength: 384,
                                  threads: 2, int16Attention: true)
        XCTAssertEqual(one, (plan.bytes + 4095) / 4096 * 4096, "the first pass maps exactly what its plan needs, in whole pages")
        XCTAssertLessThan(plan.bytes, 384 * 384 * 4 * 12, "the plan holds about 11 rows' worth of floats per token, not one buffer per op")
        for t in Self.texts.dropLast() { _ = e.classify([t]) }
        XCTAssertEqual(e.activationBytes, one, "shorter texts reuse the mapping")
        XCTAssertEqual(Self.bits(e.classify([longest])), want)

        let batch = Self.bits(e.classify(Self.texts))
        let grown = e.activationBytes
        XCTAssertGreaterThan(grown, one, "a batch of \(Self.texts.count) texts needs more")
        XCTAssertGreaterThanOrEqual(grown, one + one / 2, "it grows by at least half, so a few growths reach any size")
        XCTAssertEqual(Self.bits(e.classify([longest])), want, "after the batch, in the larger workspace")
        XCTAssertEqual(e.activationBytes, grown, "and the larger one is kept (below retainBytes)")

        e.releaseIdleMemory()
        XCTAssertEqual(e.activationBytes, 0)
        XCTAssertEqual(Self.bits(e.classify(Self.texts)), batch, "after a release the next pass maps anew, same answers")
        XCTAssertEqual(e.activationBytes, grown)
        print("WorkspaceTests: one 384-token text maps \(one) bytes of activations; a batch of \(Self.texts.count) texts \(grown)")
    }

    func testAWorkspaceAboveTheRetainLimitIsUnmappedAfterItsPass() {
        let pool = WorkspacePool(retainBytes: 1 << 20)
        pool.with { w in
            let p = w.reserve(256 << 10)
            p.storeBytes(of: 7, as: Int.self)  // the memory is writable
            XCTAssertEqual(w.capacity, 256 << 10)
        }
        XCTAssertEqual(pool.mappedBytes, 256 << 10, "kept: below the limit")
        pool.with { w in
            XCTAssertEqual(w.capacity, 256 << 10, "the same workspace again")
            _ = w.reserve(100 << 10)
            XCTAssertEqual(w.capacity, 256 << 10, "a smaller pass does not remap")
            _ = w.reserve(300 << 10)
            XCTAssertEqual(w.capacity, 384 << 10, "a growth takes at least half again")
            _ = w.reserve(3 << 20)
            XCTAssertEqual(w.capacity, 3 << 20)
        }
        XCTAssertEqual(pool.mappedBytes, 0, "3 MiB is above the 1 MiB limit: released after the pass")
        pool.with { XCTAssertEqual($0.capacity, 0) }
    }

    func testConcurrentPassesEachGetAWorkspace() {
        let pool = WorkspacePool()
        let inner = expectation(description: "a second pass ran inside the first")
        pool.with { outer in
            let a = outer.reserve(64 << 10)
            pool.with { second in
                let b = second.reserve(64 << 10)
                XCTAssertNotEqual(a, b, "a pass in flight never shares its workspace")
                inner.fulfill()
            }
        }
        wait(for: [inner], timeout: 1)
        XCTAssertEqual(pool.mappedBytes, 2 * (64 << 10), "both are kept for the next passes")
        pool.releaseIdle()
        XCTAssertEqual(pool.mappedBytes, 0)
    }
}
