import Foundation
import QsentCore
import XCTest

/// The kernel thread pool and the way work is split over it (Kernels.tiles / rowTiles /
/// channelTiles, attention items claimed one by one) must not change a single bit of the
/// answer: every output element is computed by the same kernel arithmetic whichever part,
/// thread or order computes it. These tests compare raw logit bits across thread counts, over
/// inputs short enough to be split by channels and long enough to be split by rows, one at a
/// time and packed in one batch, and from several calling threads at once on one engine.
final class ThreadCountTests: XCTestCase {
    static let blob = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Quantizer/Models/distilbert-h384-imdb.qsent").path

    /// Texts from 1 word to past the 384-token limit: below 32 rows the GEMMs split by
    /// channels, above by rows (parts of a multiple of 4 rows, a short last part).
    static let texts: [String] = {
        let words = "the film was a quiet and moving study of grief though its middle hour drags badly and the score is loud".split(separator: " ")
        return [1, 3, 9, 17, 29, 30, 31, 45, 63, 64, 97, 150, 260, 420].map { n in
            (0..<n).map { String(words[$0 % words.count]) }.joined(separator: " ")
        }
    }()

    static func bits(_ cs: [Classification]) -> [[UInt32]] { cs.map { $0.logits.map(\.bitPattern) } }

    func testInt8LogitsAreIdenticalForEveryThreadCount() throws {
        let one = try Engine(path: Self.blob, options: EngineOptions(threads: 1))
        let single = Self.texts.map { Self.bits(one.classify([$0]))[0] }
        let batch = Self.bits(one.classify(Self.texts))
        XCTAssertEqual(single.count, Self.texts.count)
        for threads in [2, 3, 4, 7] {
            let e = try Engine(path: Self.blob, options: EngineOptions(threads: threads))
            // In the reverse order: each call then reuses a workspace last filled by a longer
            // text, so an output element that no part wrote cannot pass for right.
            for (i, t) in Self.texts.enumerated().reversed() {
                XCTAssertEqual(Self.bits(e.classify([t]))[0], single[i], "threads \(threads), text \(i) alone")
            }
            XCTAssertEqual(Self.bits(e.classify(Self.texts)), batch, "threads \(threads), one batch of \(Self.texts.count)")
        }
    }

    func testFP32LogitsAreIdenticalForEveryThreadCount() throws {
        let folder = try SharedData.requireModel().path
        let texts = [Self.texts[1], Self.texts[6], Self.texts[11]]
        let want = Self.bits(try Engine(path: folder, options: EngineOptions(threads: 1)).classify(texts))
        for threads in [2, 3] {
            let got = Self.bits(try Engine(path: folder, options: EngineOptions(threads: threads)).classify(texts))
            XCTAssertEqual(got, want, "FP32, threads \(threads)")
        }
    }

    /// Three threads call one 2-thread engine at once: one job holds the pool's workers while
    /// the others run their parts on their own threads (ThreadPool.run's busy path), and the
    /// workers go from spinning to sleeping and back between calls.
    func testConcurrentCallersGetTheSameAnswers() throws {
        let e = try Engine(path: Self.blob, options: EngineOptions(threads: 2))
        let texts = [Self.texts[2], Self.texts[7], Self.texts[10]]
        let want = texts.map { Self.bits(e.classify([$0]))[0] }
        let rounds = 12
        let results = Results(count: texts.count * rounds)
        DispatchQueue.concurrentPerform(iterations: texts.count) { caller in
            for r in 0..<rounds {
                if r % 4 == 3 { usleep(1_000) } // let the workers fall asleep now and then
                results.set(caller * rounds + r, Self.bits(e.classify([texts[caller]]))[0])
            }
        }
        for caller in 0..<texts.count {
            for r in 0..<rounds {
                XCTAssertEqual(results.get(caller * rounds + r), want[caller], "caller \(caller), round \(r)")
            }
        }
    }
}

/// Answers written by several threads (each slot by one thread), read after they joined.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [[UInt32]?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: [UInt32]) { lock.lock(); slots[i] = v; lock.unlock() }
    func get(_ i: Int) -> [UInt32]? { lock.lock(); defer { lock.unlock() }; return slots[i] }
}
