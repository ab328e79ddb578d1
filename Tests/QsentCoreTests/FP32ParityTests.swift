import Foundation
import QsentCore
import XCTest

/// The FP32 reference path against PyTorch FP32 logits for the IMDB test set
/// (../shared/models/distilbert-h384-imdb/reference/test_logits_fp32_len384.jsonl).
final class FP32ParityTests: XCTestCase {
    /// Achieved: max |Δlogit| 4.8e-6 over all 25,000 test reviews (README); ~3x margin for
    /// other ISAs' summation orders.
    static let tolerance: Float = 1.5e-5

    /// Golden token ids (from the HF fast tokenizer, first 300 reviews) straight into the
    /// forward pass: isolates the model from the tokenizer.
    func testGoldenIdsMatchPyTorch() throws {
        let model = try SharedData.requireModel()
        let engine = try Engine(path: model.path)
        let refs = try SharedData.referenceLogits()
        let tokens = try SharedData.jsonl(model.appendingPathComponent("reference/test_tokens_len384.jsonl"))
        var maxDiff: Float = 0, n = 0
        for t in tokens.prefix(300) {
            guard let ids = t["ids"] as? [Int] else { continue }
            var cut = ids.map(Int32.init)
            if cut.count > 384 { cut = Array(cut.prefix(383)) + [cut.last!] }
            let logits = engine.logits(ids: [cut])[0]
            let ref = try XCTUnwrap(refs[t["id"] as! String])
            for (a, b) in zip(logits, ref) { maxDiff = max(maxDiff, abs(a - b)) }
            XCTAssertEqual(argmax(logits), argmax(ref), "argmax differs for \(t["id"]!)")
            n += 1
        }
        XCTAssertEqual(n, 300)
        XCTAssertLessThanOrEqual(maxDiff, Self.tolerance)
        print("FP32 golden-ids parity: \(n) reviews, max |Δlogit| = \(maxDiff)")
    }

    /// End to end (tokenizer + FP32 forward) on the 1,000-review subset (every 25th test review).
    /// The full 25,000-review run is `qsent eval --reference` (README).
    func testSubsetEndToEndMatchesPyTorch() throws {
        let model = try SharedData.requireModel()
        let test = try SharedData.requireTestSet()
        let engine = try Engine(path: model.path)
        let refs = try SharedData.referenceLogits()
        let reviews = try SharedData.jsonl(test)
        var maxDiff: Float = 0, agree = 0, n = 0
        for (i, r) in reviews.enumerated() where i % SharedData.subsetStride == 0 {
            let id = r["id"] as! String
            let c = engine.classify([r["text"] as! String])[0]
            let ref = try XCTUnwrap(refs[id])
            for (a, b) in zip(c.logits, ref) { maxDiff = max(maxDiff, abs(a - b)) }
            if c.labelId == argmax(ref) { agree += 1 } else { XCTFail("argmax differs for \(id)") }
            n += 1
        }
        XCTAssertEqual(n, 1000)
        XCTAssertEqual(agree, n)
        XCTAssertLessThanOrEqual(maxDiff, Self.tolerance)
        print("FP32 end-to-end parity: \(n) reviews, max |Δlogit| = \(maxDiff), argmax agreement \(agree)/\(n)")
    }

    /// A packed batch gives the same logits as one-at-a-time runs.
    func testPackedBatchEqualsSingles() throws {
        let model = try SharedData.requireModel()
        let engine = try Engine(path: model.path)
        let texts = ["Great film!", "", "An utterly dreadful, boring mess of a movie that I regret seeing.",
                     String(repeating: "long review words ", count: 200)]
        let batch = engine.classify(texts)
        for (t, b) in zip(texts, batch) {
            let single = engine.classify([t])[0]
            XCTAssertEqual(single.labelId, b.labelId)
            for (x, y) in zip(single.logits, b.logits) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        }
        XCTAssertTrue(batch[3].truncated)
        XCTAssertEqual(engine.encode(texts[3]).ids.count, 384)
    }
}

func argmax(_ v: [Float]) -> Int {
    var b = 0
    for i in v.indices where v[i] > v[b] { b = i }
    return b
}
