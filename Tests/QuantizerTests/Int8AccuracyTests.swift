import Foundation
import QsentCore
import XCTest

/// The committed int8 blob against the PyTorch FP32 reference on the 1,000-review benchmark
/// subset of the IMDB test split (every 25th review). The full 25,000-review run is the
/// `qsent eval --reference` command in the README.
final class Int8AccuracyTests: XCTestCase {
    func testSubsetAccuracyAndAgreement() throws {
        let model = try requireSharedModel()
        let shared = model.deletingLastPathComponent().deletingLastPathComponent()
        let test = shared.appendingPathComponent("data/imdb/test.jsonl")
        guard FileManager.default.fileExists(atPath: test.path) else { throw XCTSkip("../shared/data/imdb/test.jsonl is absent") }
        var refs: [String: [Float]] = [:]
        for line in try Data(contentsOf: model.appendingPathComponent("reference/test_logits_fp32_len384.jsonl")).split(separator: 0x0A) {
            let o = try JSONSerialization.jsonObject(with: line) as! [String: Any]
            refs[o["id"] as! String] = (o["logits"] as! [NSNumber]).map(\.floatValue)
        }
        let engine = try Engine(path: BlobTests.committedBlob.path)
        var n = 0, agree = 0, int8Correct = 0, fp32Correct = 0
        var sumDiff: Double = 0, maxDiff: Float = 0
        for (i, line) in try Data(contentsOf: test).split(separator: 0x0A).enumerated() where i % 25 == 0 {
            let o = try JSONSerialization.jsonObject(with: line) as! [String: Any]
            let label = (o["label"] as! NSNumber).intValue
            let ref = try XCTUnwrap(refs[o["id"] as! String])
            let c = engine.classify([o["text"] as! String])[0]
            let refLabel = ref[1] > ref[0] ? 1 : 0
            n += 1
            if c.labelId == refLabel { agree += 1 }
            if c.labelId == label { int8Correct += 1 }
            if refLabel == label { fp32Correct += 1 }
            for (a, b) in zip(c.logits, ref) { sumDiff += Double(abs(a - b)); maxDiff = max(maxDiff, abs(a - b)) }
        }
        XCTAssertEqual(n, 1000)
        let agreement = Double(agree) / Double(n)
        let delta = Double(int8Correct - fp32Correct) / Double(n) * 100
        print(String(format: "int8 subset: accuracy %.4f (FP32 %.4f, Δ %+.2f points), agreement %.4f, mean |Δlogit| %.4f, max %.3f",
                     Double(int8Correct) / Double(n), Double(fp32Correct) / Double(n), delta, agreement, sumDiff / Double(2 * n), maxDiff))
        XCTAssertGreaterThanOrEqual(agreement, 0.993)
        XCTAssertLessThanOrEqual(abs(delta), 0.3)
    }
}
