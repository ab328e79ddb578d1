import Foundation
import QsentCore
import QsentQuantizer
import XCTest

/// Random-weight models generated identically by Tests/Fixtures/make_random_models.py and
/// RandomModels.swift, against the PyTorch FP32 logits stored in random_models.json.
/// - distilbert768: distilbert-base geometry (dim 768, FFN 3072, 12 heads, 6 layers), F32.
/// - bert_small: BertForSequenceClassification, sharded BF16 checkpoint, 3 labels.
final class RandomModelParityTests: XCTestCase {
    static let workDir: URL = FileManager.default.temporaryDirectory.appendingPathComponent("qsent-random-\(getpid())")

    override class func tearDown() {
        try? FileManager.default.removeItem(at: workDir)
    }

    /// Writes (once per test run) the HF folder of a random model.
    static func folder(_ name: String) throws -> URL {
        let dir = workDir.appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try RandomModels.write(name, to: dir)
        }
        return dir
    }

    func fp32Parity(_ name: String, tolerance: Float) throws {
        let dir = try Self.folder(name)
        let engine = try Engine(path: dir.path, options: EngineOptions(maxTokens: 512))
        let cases = try RandomModels.fixture().model(name).cases
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        var maxDiff: Float = 0
        for c in cases {
            let logits = engine.logits(ids: [c.ids.map(Int32.init)])[0]
            XCTAssertEqual(logits.count, c.logits.count)
            for (a, b) in zip(logits, c.logits) { maxDiff = max(maxDiff, abs(a - b)) }
            XCTAssertEqual(argmax(logits), argmax(c.logits), "\(name): argmax differs at length \(c.ids.count)")
        }
        XCTAssertLessThanOrEqual(maxDiff, tolerance, name)
        print("\(name) FP32 parity: \(cases.count) sequences, max |Δlogit| = \(maxDiff)")

        // The same cases as one packed batch.
        let batch = engine.logits(ids: cases.map { $0.ids.map(Int32.init) })
        for (b, c) in zip(batch, cases) {
            for (x, y) in zip(b, c.logits) { XCTAssertEqual(x, y, accuracy: tolerance) }
        }
    }

    func testDistilBert768MatchesPyTorch() throws {
        // Achieved max |Δlogit|: 2.06e-5 (avx512vnni, avx2), 1.38e-5 (scalar).
        try fp32Parity("distilbert768", tolerance: 5e-5)
    }

    func testShardedBF16BertMatchesPyTorch() throws {
        // Achieved max |Δlogit|: 5.4e-6 (avx512vnni, avx2).
        try fp32Parity("bert_small", tolerance: 1.5e-5)
    }

    /// int8 blob vs the FP32 engine on the same random 768-wide model: label agreement and
    /// logit error over the fixture cases plus 64 more random sequences. A random model's
    /// decision margins are arbitrary (many inputs sit near a tie), so overall agreement is
    /// reported, and the assertion is that int8 never flips a confident FP32 decision
    /// (margin > 0.5 logit, against a logit spread of ~1.8 std).
    func testInt8AgreesWithFP32At768() throws {
        let dir = try Self.folder("distilbert768")
        let blob = Self.workDir.appendingPathComponent("distilbert768.qsent")
        let (model, _) = try Quantizer.quantize(directory: dir.path, maxTokens: 384)
        try AtomicFile.write(try model.blobBytes(), to: blob.path, force: true)
        let fp32 = try Engine(path: dir.path)
        let int8 = try Engine(path: blob.path)
        var inputs = try RandomModels.fixture().model("distilbert768").cases.map { $0.ids.map(Int32.init) }.filter { $0.count <= 384 }
        var rng = SplitMix(seed: 768)
        for _ in 0..<64 {
            let len = 2 + Int(rng.next() % 383)
            inputs.append([101] + (0..<(len - 2)).map { _ in Int32(1000 + rng.next() % 29000) } + [102])
        }
        var agree = 0, sumDiff: Float = 0, maxDiff: Float = 0, count = 0, confident = 0
        var widestFlip: Float = 0  // the largest FP32 margin among the sequences int8 decides otherwise
        for ids in inputs {
            let a = fp32.logits(ids: [ids])[0], b = int8.logits(ids: [ids])[0]
            let sorted = a.sorted(by: >)
            if argmax(a) == argmax(b) { agree += 1 } else { widestFlip = max(widestFlip, sorted[0] - sorted[1]) }
            if sorted[0] - sorted[1] > 0.5 {
                confident += 1
                XCTAssertEqual(argmax(a), argmax(b), "int8 flipped a confident decision (margin \(sorted[0] - sorted[1]), length \(ids.count))")
            }
            for (x, y) in zip(a, b) { sumDiff += abs(x - y); maxDiff = max(maxDiff, abs(x - y)); count += 1 }
        }
        let agreement = Double(agree) / Double(inputs.count)
        print("distilbert768 int8 vs FP32: \(inputs.count) sequences (\(confident) with margin > 0.5), agreement \(agreement), mean |Δlogit| \(sumDiff / Float(count)), max \(maxDiff), widest flipped margin \(widestFlip)")
        XCTAssertGreaterThan(confident, inputs.count / 2)
        // Achieved (every ISA: the kernels are bit-exact across ISAs): 73/78 = 93.6 % agreement,
        // every flip a near-tie (FP32 margins 0.002, 0.025, 0.062, 0.069, 0.135), mean |Δlogit|
        // 0.0945, max 0.315. Before the fused attention kernel (same int8 GEMMs, FP32 attention
        // summed in another order) it was 76/78 with flips at margins 0.002 and 0.025, mean
        // 0.0939, max 0.278: a different rounding re-rolls which near-ties int8 flips; on the
        // real stand-in model, all 25,000 test reviews, agreement went 99.66 -> 99.67 %.
        XCTAssertEqual(inputs.count, 78)
        XCTAssertGreaterThanOrEqual(agree, 73, "int8 vs FP32 agreement fell to \(agree)/\(inputs.count)")
        XCTAssertLessThan(widestFlip, 0.2, "int8 flipped a decision with FP32 margin \(widestFlip): more than a near-tie")
        XCTAssertLessThanOrEqual(sumDiff / Float(count), 0.12)
        XCTAssertLessThanOrEqual(maxDiff, 0.4)
    }
}

/// Deterministic test RNG.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
