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

    /// The random 768-wide model's int8 blob (written once per test run).
    static func blob768() throws -> URL {
        let blob = workDir.appendingPathComponent("distilbert768.qsent")
        if !FileManager.default.fileExists(atPath: blob.path) {
            let (model, _) = try Quantizer.quantize(directory: try folder("distilbert768").path, maxTokens: 384)
            try AtomicFile.write(try model.blobBytes(), to: blob.path, force: true)
        }
        return blob
    }

    /// `count` random sequences of 2…384 tokens ([CLS] random ids [SEP]).
    static func randomSequences(_ count: Int, seed: UInt64) -> [[Int32]] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in
            let len = 2 + Int(rng.next() % 383)
            return [101] + (0..<(len - 2)).map { _ in Int32(1000 + rng.next() % 29000) } + [102]
        }
    }

    /// The fixture cases (≤ 384 tokens) plus 64 random sequences: 78 inputs.
    static func inputs768() throws -> [[Int32]] {
        try RandomModels.fixture().model("distilbert768").cases.map { $0.ids.map(Int32.init) }.filter { $0.count <= 384 }
            + randomSequences(64, seed: 768)
    }

    /// Logit differences between two engines over `inputs`, and the decisions they split.
    struct Comparison: CustomStringConvertible {
        var sequences = 0, agree = 0, confident = 0
        var sumDiff: Float = 0, maxDiff: Float = 0, count = 0
        var flippedMargins: [Float] = []  // the reference's margins where the other decides otherwise
        var meanDiff: Float { sumDiff / Float(count) }
        var widestFlip: Float { flippedMargins.max() ?? 0 }
        var description: String {
            "\(sequences) sequences (\(confident) with margin > 0.5), agreement \(agree), mean |Δlogit| \(meanDiff), max \(maxDiff), flips at margins \(flippedMargins.sorted())"
        }

        init(_ reference: Engine, _ other: Engine, _ inputs: [[Int32]]) {
            for ids in inputs {
                let a = reference.logits(ids: [ids])[0], b = other.logits(ids: [ids])[0]
                let sorted = a.sorted(by: >)
                sequences += 1
                if argmax(a) == argmax(b) { agree += 1 } else { flippedMargins.append(sorted[0] - sorted[1]) }
                if sorted[0] - sorted[1] > 0.5 { confident += 1 }
                for (x, y) in zip(a, b) { sumDiff += abs(x - y); maxDiff = max(maxDiff, abs(x - y)); count += 1 }
            }
        }
    }

    /// int8 blob (default arithmetic: int8 layers, int16 attention) vs the FP32 engine on the same
    /// random 768-wide model: label agreement and logit error over 78 sequences. A random
    /// model's decision margins are arbitrary (many inputs sit near a tie), so overall agreement
    /// is reported, and the assertion is that int8 never flips a confident FP32 decision (margin
    /// > 0.5 logit, against a logit spread of ~1.8 std) and only flips near-ties.
    func testInt8AgreesWithFP32At768() throws {
        let fp32 = try Engine(path: try Self.folder("distilbert768").path)
        let int8 = try Engine(path: try Self.blob768().path)
        XCTAssertEqual(int8.info.attention, "int16")
        let r = Comparison(fp32, int8, try Self.inputs768())
        print("distilbert768 int8 vs FP32: \(r)")
        XCTAssertEqual(r.sequences, 78)
        XCTAssertGreaterThan(r.confident, r.sequences / 2)
        XCTAssertLessThanOrEqual(r.widestFlip, 0.5, "int8 flipped a confident decision: \(r)")
        // Achieved (every ISA: the kernels are bit-exact across ISAs): 74/78 = 94.9 % agreement,
        // flips at FP32 margins 0.0020, 0.022, 0.025, 0.218; mean |Δlogit| 0.0988, max 0.343.
        // With FP32 attention it was 73/78, flips up to 0.135, mean 0.0945, max 0.315.
        // Which near-ties int8 flips is re-rolled by any change of rounding: int8 activation
        // rounding turns a tiny perturbation into a full int8-sized one (the two int8 engines
        // differ from each other by as much as each differs from FP32). Over 400 random
        // sequences (testAttentionArithmeticStudy) both arithmetics flip near-ties up to 0.25-0.28,
        // agree on 97.0-97.8 % and have the same mean |Δlogit| (0.0886 FP32 attention, 0.0893
        // int16). Hence 0.3, the tail of that distribution, for the widest flip here.
        XCTAssertGreaterThanOrEqual(r.agree, 73, "int8 vs FP32 agreement fell: \(r)")
        XCTAssertLessThan(r.widestFlip, 0.3, "int8 flipped a decision that is more than a near-tie: \(r)")
        XCTAssertLessThanOrEqual(r.meanDiff, 0.11)
        XCTAssertLessThanOrEqual(r.maxDiff, 0.4)
    }

    /// The int16 attention kernel's own error at dim 768 (12 heads of 64), with everything else
    /// FP32: the FP32 engine with int16 attention vs the FP32 engine, on the same 78 sequences.
    func testInt16AttentionErrorAt768() throws {
        let dir = try Self.folder("distilbert768").path
        let fp32 = try Engine(path: dir)
        let int16 = try Engine(path: dir, options: EngineOptions(attention: .int16))
        XCTAssertEqual(fp32.info.attention, "fp32")
        let r = Comparison(fp32, int16, try Self.inputs768())
        print("distilbert768 FP32 with int16 attention vs FP32: \(r)")
        // Achieved (every ISA): mean |Δlogit| 0.00069, max 0.0023, 78/78 agree (over 400 sequences:
        // 0.00071, max 0.0034); int8's layers add ~0.09, 130x more (the test above).
        XCTAssertLessThanOrEqual(r.meanDiff, 1e-3)
        XCTAssertLessThanOrEqual(r.maxDiff, 4e-3)
        XCTAssertGreaterThanOrEqual(r.agree, 77)
    }

    /// A larger comparison of the two attention arithmetics inside the int8 engine, both against
    /// the FP32 engine, plus int16 attention's own error (FP32 layers). About 0.5 s per sequence;
    /// output of 400 in Benchmarks/results/2026-12-07-attention-study-768.txt.
    /// QSENT_ATTENTION_STUDY=400 swift test -c release --filter testAttentionArithmeticStudy
    func testAttentionArithmeticStudy() throws {
        guard let n = ProcessInfo.processInfo.environment["QSENT_ATTENTION_STUDY"].flatMap({ Int($0) }), n > 0 else {
            throw XCTSkip("set QSENT_ATTENTION_STUDY to a number of random sequences")
        }
        let dir = try Self.folder("distilbert768").path, blob = try Self.blob768().path
        let fp32 = try Engine(path: dir)
        let inputs = Self.randomSequences(n, seed: 12345)
        for (name, engine) in [("int8, fp32 attention", try Engine(path: blob, options: EngineOptions(attention: .fp32))),
                               ("int8, int16 attention", try Engine(path: blob, options: EngineOptions(attention: .int16))),
                               ("fp32, int16 attention", try Engine(path: dir, options: EngineOptions(attention: .int16)))] {
            print("study \(name) vs FP32: \(Comparison(fp32, engine, inputs))")
        }
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
