import Foundation
import QsentTokenizer
import XCTest

/// Proves that RandomModels (Swift) writes exactly the models make_random_models.py (numpy)
/// wrote when it produced the PyTorch logits in random_models.json. Independent of the engine:
/// the safetensors files are parsed here with a few lines of test code.
final class RandomModelGeneratorTests: XCTestCase {
    func testPrimitivesKnownAnswers() {
        // FNV-1a 64 reference values.
        XCTAssertEqual(RandomModels.fnv1a64(""), 0xCBF2_9CE4_8422_2325)
        XCTAssertEqual(RandomModels.fnv1a64("a"), 0xAF63_DC4C_8601_EC8C)
        // SplitMix64 seeded with 0: first three outputs.
        let g = RandomModels.golden
        XCTAssertEqual(RandomModels.mix64(g), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(RandomModels.mix64(g &* 2), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(RandomModels.mix64(g &* 3), 0x06C4_5D18_8009_454F)
        // torch float32 -> bfloat16 (round to nearest, ties to even), values from torch 2.15.
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_8000, 0x3F80), (0x3F81_8000, 0x3F82), (0xBF80_8000, 0xBF80),
            (0x3DCC_CCCD, 0x3DCD), (0x7F61_B1E6, 0x7F62), (0x0001_16C2, 0x0001),
        ]
        for (f, b) in cases {
            XCTAssertEqual(RandomModels.bf16Bits(Float(bitPattern: f)), b, String(f, radix: 16))
        }
    }

    func testSpecsMatchFixture() throws {
        let fx = try RandomModels.fixture()
        XCTAssertEqual(Set(fx.models.keys), Set(RandomModels.names))
        for name in RandomModels.names {
            let m = try RandomModels.spec(name)
            let f = try fx.model(name)
            XCTAssertEqual(f.arch, m.arch, name)
            XCTAssertEqual(UInt64(f.seed, radix: 16), m.seed, name)
            XCTAssertEqual(f.dtype, m.dtype, name)
            XCTAssertEqual(f.sharded, m.sharded, name)
            XCTAssertEqual(f.scales, m.scales.mapValues(Double.init), name)
            XCTAssertEqual(f.labels, m.labels, name)
            XCTAssertEqual(f.config, RandomModels.config(m), name)
            let specs = RandomModels.tensorSpecs(m)
            XCTAssertEqual(specs.map(\.name), f.tensors.map(\.name), name)
            for (s, t) in zip(specs, f.tensors) {
                XCTAssertEqual(s.shape, t.shape, s.name)
                XCTAssertEqual(Double(s.scale), t.scale, s.name)
                XCTAssertEqual(Double(s.offset), t.offset, s.name)
                XCTAssertEqual(s.shard, t.shard, s.name)
            }
            XCTAssertGreaterThanOrEqual(f.cases.count, 16, name)
            for c in f.cases {
                XCTAssertEqual(c.ids.first, 101)
                XCTAssertEqual(c.ids.last, 102)
                XCTAssertEqual(c.logits.count, m.labels.count)
                XCTAssertTrue(c.ids.allSatisfy { $0 >= 0 && $0 < m.vocab })
            }
        }
    }

    func testDistilBert768FolderMatchesPython() throws {
        try checkWrittenFolder("distilbert768")
    }

    func testBertSmallFolderMatchesPython() throws {
        try checkWrittenFolder("bert_small")
    }

    // MARK: - Helpers

    private func checkWrittenFolder(_ name: String) throws {
        let m = try RandomModels.spec(name)
        let expected = try RandomModels.fixture().model(name)
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("qsent-random-\(name)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try RandomModels.write(name, to: dir)

        // config.json and tokenizer files.
        let cfg = try JSONDecoder().decode(HFJSON.self, from: Data(contentsOf: dir.appendingPathComponent("config.json")))
        XCTAssertEqual(cfg, expected.config, "\(name): config.json differs from the fixture's config")
        let tok = try JSONDecoder().decode(HFJSON.self, from: Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json")))
        guard case .object(let tokObj) = tok else { return XCTFail("tokenizer_config.json is not an object") }
        XCTAssertEqual(tokObj["do_lower_case"], .bool(true))
        let vocab = try String(contentsOf: dir.appendingPathComponent("vocab.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        XCTAssertEqual(vocab.count, m.vocab)
        XCTAssertEqual(vocab[0], "[PAD]")
        XCTAssertEqual(vocab[100], "[UNK]")
        XCTAssertEqual(vocab[101], "[CLS]")
        XCTAssertEqual(vocab[102], "[SEP]")
        XCTAssertEqual(vocab[103], "[MASK]")
        XCTAssertEqual(Set(vocab).count, vocab.count, "vocab entries must be unique")

        // Which file holds which tensor.
        var fileOf: [String: String] = [:]
        if m.sharded {
            let index = try JSONDecoder().decode(
                HFJSON.self, from: Data(contentsOf: dir.appendingPathComponent("model.safetensors.index.json")))
            guard case .object(let o) = index, case .object(let wm)? = o["weight_map"] else {
                return XCTFail("index.json has no weight_map")
            }
            for (k, v) in wm {
                guard case .string(let f) = v else { return XCTFail("weight_map[\(k)] is not a string") }
                fileOf[k] = f
            }
            XCTAssertEqual(Set(fileOf.values).count, 2, "expected two shards")
        } else {
            for t in expected.tensors { fileOf[t.name] = "model.safetensors" }
        }
        XCTAssertEqual(Set(fileOf.keys), Set(expected.tensors.map(\.name)))

        var headers: [String: [String: SafetensorsEntry]] = [:]
        var dataStart: [String: UInt64] = [:]
        for file in Set(fileOf.values) {
            let (entries, start) = try readSafetensorsHeader(dir.appendingPathComponent(file))
            headers[file] = entries
            dataStart[file] = start
            XCTAssertEqual(Set(entries.keys), Set(fileOf.filter { $0.value == file }.keys), file)
        }

        let elementSize = m.dtype == "F32" ? 4 : 2
        for t in expected.tensors {
            let file = fileOf[t.name]!
            guard let e = headers[file]?[t.name] else { XCTFail("\(t.name) missing in \(file)"); continue }
            XCTAssertEqual(e.dtype, m.dtype, t.name)
            XCTAssertEqual(e.shape, t.shape, t.name)
            XCTAssertEqual(e.end - e.begin, t.shape.reduce(1, *) * elementSize, t.name)
            let handle = try FileHandle(forReadingFrom: dir.appendingPathComponent(file))
            defer { try? handle.close() }
            try handle.seek(toOffset: dataStart[file]! + UInt64(e.begin))
            let bytes = [UInt8](try handle.read(upToCount: e.end - e.begin) ?? Data())
            XCTAssertEqual(bytes.count, e.end - e.begin, t.name)
            var bits = [UInt32](repeating: 0, count: bytes.count / elementSize)
            if elementSize == 4 {
                for i in 0..<bits.count {
                    bits[i] = UInt32(bytes[4 * i]) | UInt32(bytes[4 * i + 1]) << 8
                        | UInt32(bytes[4 * i + 2]) << 16 | UInt32(bytes[4 * i + 3]) << 24
                }
            } else {
                for i in 0..<bits.count {
                    bits[i] = UInt32(bytes[2 * i]) | UInt32(bytes[2 * i + 1]) << 8
                }
            }
            let got = RandomModels.check(name: t.name, bits: bits, dtype: m.dtype)
            XCTAssertEqual(got.checksum, t.checksum, "\(name): \(t.name) checksum differs from Python")
            XCTAssertEqual(got.first, t.first, "\(name): \(t.name) first values differ from Python")
            XCTAssertEqual(got.sum, t.sum, accuracy: 1e-9 * max(1, abs(t.sum)) + 1e-6, "\(name): \(t.name) sum")
        }
    }

    private struct SafetensorsEntry {
        let dtype: String
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    /// Parses and validates a safetensors header; returns the entries and the data start.
    private func readSafetensorsHeader(_ url: URL) throws -> ([String: SafetensorsEntry], UInt64) {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let lenBytes = [UInt8](try handle.read(upToCount: 8) ?? Data())
        XCTAssertEqual(lenBytes.count, 8)
        let n = lenBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        XCTAssertEqual(n % 8, 0, "header length should be padded to 8")
        let headerData = try handle.read(upToCount: Int(n)) ?? Data()
        XCTAssertEqual(UInt64(headerData.count), n)
        let header = try JSONDecoder().decode(HFJSON.self, from: headerData)
        guard case .object(let obj) = header else {
            XCTFail("\(url.lastPathComponent): header is not an object")
            return ([:], 8 + n)
        }
        var out: [String: SafetensorsEntry] = [:]
        for (k, v) in obj where k != "__metadata__" {
            guard case .object(let e) = v, case .string(let dtype)? = e["dtype"],
                case .array(let shape)? = e["shape"], case .array(let offs)? = e["data_offsets"], offs.count == 2,
                case .int(let b) = offs[0], case .int(let end) = offs[1]
            else {
                XCTFail("\(url.lastPathComponent): malformed entry \(k)")
                continue
            }
            let dims: [Int] = shape.compactMap { if case .int(let d) = $0 { return d } else { return nil } }
            out[k] = SafetensorsEntry(dtype: dtype, shape: dims, begin: b, end: end)
        }
        // Data offsets must tile the data section exactly.
        let sorted = out.values.sorted { $0.begin < $1.begin }
        var pos = 0
        for e in sorted {
            XCTAssertEqual(e.begin, pos, "\(url.lastPathComponent): gap or overlap in data_offsets")
            pos = e.end
        }
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber
        XCTAssertEqual(size?.uint64Value, 8 + n + UInt64(pos), "\(url.lastPathComponent): file size")
        return (out, 8 + n)
    }
}
