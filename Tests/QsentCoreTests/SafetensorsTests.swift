import Foundation
import QsentCore
import XCTest

final class SafetensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("qsent-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    /// Writes a safetensors file from a raw header string and data bytes.
    @discardableResult
    func write(_ name: String, header: String, data: [UInt8], headerLength: UInt64? = nil) throws -> String {
        var bytes: [UInt8] = []
        let h = Array(header.utf8)
        let n = headerLength ?? UInt64(h.count)
        for i in 0..<8 { bytes.append(UInt8((n >> (8 * UInt64(i))) & 0xFF)) }
        bytes += h + data
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func expect(_ path: String, _ check: (SafetensorsError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { error in
            guard let e = error as? SafetensorsError else { return XCTFail("wrong error type \(error)", file: file, line: line) }
            XCTAssertTrue(check(e), "unexpected error: \(e)", file: file, line: line)
            XCTAssertTrue(e.description.contains(path), "message should name the file: \(e)", file: file, line: line)
        }
    }

    func testReadsF32F16BF16() throws {
        let f32: [Float] = [1.5, -2.25]
        var data = f32.withUnsafeBytes { Array($0) }
        data += [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00]          // f16: 1.0, -2.0, smallest subnormal
        data += [0x80, 0x3F, 0x40, 0xC0]                       // bf16: 1.0, -3.0
        let p = try write("ok.safetensors", header: """
            {"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},\
            "b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},"c":{"dtype":"BF16","shape":[1,2],"data_offsets":[14,18]}}
            """, data: data)
        let f = try SafetensorsFile(path: p)
        XCTAssertEqual(f.metadata["format"], "pt")
        XCTAssertEqual(try f.tensors["a"]!.floats(), [1.5, -2.25])
        XCTAssertEqual(try f.tensors["b"]!.floats(), [1.0, -2.0, Float(bitPattern: 0x3380_0000)])
        XCTAssertEqual(try f.tensors["c"]!.floats(), [1.0, -3.0])
        XCTAssertEqual(f.tensors["c"]!.shape, [1, 2])
    }

    func testHalfConversionIsExactForAllValues() {
        for h in 0...UInt16.max {
            let f = halfToFloat(h)
            let expected = Float(Float16(bitPattern: h))
            if f.isNaN { XCTAssertTrue(expected.isNaN); continue }
            XCTAssertEqual(f.bitPattern, expected.bitPattern, "half 0x\(String(h, radix: 16))")
        }
    }

    func testTooSmall() throws {
        let url = dir.appendingPathComponent("tiny.safetensors")
        try Data([1, 2, 3]).write(to: url)
        expect(url.path) { if case .tooSmall = $0 { return true }; return false }
    }

    func testHeaderLengthBeyondFile() throws {
        let p = try write("len.safetensors", header: "{}", data: [], headerLength: 1 << 40)
        expect(p) { if case .headerLength = $0 { return true }; return false }
    }

    func testHeaderNotJSON() throws {
        let p = try write("json.safetensors", header: "{not json", data: [])
        expect(p) { if case .headerNotJSON = $0 { return true }; return false }
    }

    func testUnknownDType() throws {
        let p = try write("dtype.safetensors", header: #"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        expect(p) { if case .unsupportedDType(_, "a", "F33") = $0 { return true }; return false }
    }

    func testNonFloatTensorIsRefusedAsWeights() throws {
        let p = try write("int.safetensors", header: #"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))
        let f = try SafetensorsFile(path: p)
        XCTAssertThrowsError(try f.tensors["a"]!.floats()) { e in
            guard case .notFloat = e as! SafetensorsError else { return XCTFail("\(e)") }
        }
    }

    func testOffsetsOutOfRange() throws {
        // Truncated: the header promises 16 bytes of data, the file has 8.
        let p = try write("trunc.safetensors", header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 8))
        expect(p) { if case .offsetsOutOfRange(_, "a", 0, 16, 8) = $0 { return true }; return false }
    }

    func testReversedOffsets() throws {
        let p = try write("rev.safetensors", header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [UInt8](repeating: 0, count: 8))
        expect(p) { if case .offsetsOutOfRange = $0 { return true }; return false }
    }

    func testShapeDoesNotMatchBytes() throws {
        let p = try write("shape.safetensors", header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))
        expect(p) { if case .sizeMismatch(_, "a", [3], "F32", 8) = $0 { return true }; return false }
    }

    func testOverflowingShape() throws {
        let p = try write("ovf.safetensors", header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))
        expect(p) { if case .sizeMismatch = $0 { return true }; return false }
    }

    func testNegativeOrFractionalNumbers() throws {
        let p1 = try write("neg.safetensors", header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        expect(p1) { if case .badEntry(_, "a", _) = $0 { return true }; return false }
        let p2 = try write("frac.safetensors", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}"#, data: [0, 0, 0, 0])
        expect(p2) { if case .badEntry = $0 { return true }; return false }
    }

    func testOverlappingTensors() throws {
        let p = try write("overlap.safetensors", header: """
            {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}
            """, data: [UInt8](repeating: 0, count: 12))
        expect(p) { if case .overlap = $0 { return true }; return false }
    }

    func testMissingFields() throws {
        let p = try write("fields.safetensors", header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0])
        expect(p) { if case .badEntry(_, "a", _) = $0 { return true }; return false }
    }

    func testShardedCheckpoint() throws {
        let sub = dir.appendingPathComponent("sharded")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let one: [Float] = [1, 2], two: [Float] = [3]
        _ = try write("sharded/model-00001-of-00002.safetensors", header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: one.withUnsafeBytes { Array($0) })
        _ = try write("sharded/model-00002-of-00002.safetensors", header: #"{"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: two.withUnsafeBytes { Array($0) })
        let index = #"{"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: sub.appendingPathComponent("model.safetensors.index.json"))
        let ck = try Checkpoint(directory: sub.path)
        XCTAssertEqual(try ck.floats("x", shape: [2]), [1, 2])
        XCTAssertEqual(try ck.floats("y", shape: [1]), [3])
        XCTAssertThrowsError(try ck.floats("y", shape: [2])) { e in
            guard case .badEntry = e as! SafetensorsError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try ck.floats("z", shape: [1])) { e in
            guard case .missingTensor("z", _) = e as! SafetensorsError else { return XCTFail("\(e)") }
        }

        // The index names a tensor the shard lacks.
        let bad = #"{"weight_map":{"x":"model-00001-of-00002.safetensors","q":"model-00002-of-00002.safetensors"}}"#
        try Data(bad.utf8).write(to: sub.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try Checkpoint(directory: sub.path)) { e in
            guard case .badIndex(let f, let p) = e as! SafetensorsError else { return XCTFail("\(e)") }
            XCTAssertTrue(f.hasSuffix("model.safetensors.index.json") && p.contains("'q'"), "\(e)")
        }
        // A missing shard, and a path that escapes the folder.
        for index in [#"{"weight_map":{"x":"nope.safetensors"}}"#, #"{"weight_map":{"x":"../x.safetensors"}}"#, "[1,2]", "{"] {
            try Data(index.utf8).write(to: sub.appendingPathComponent("model.safetensors.index.json"))
            XCTAssertThrowsError(try Checkpoint(directory: sub.path)) { e in
                guard case .badIndex = e as! SafetensorsError else { return XCTFail("\(e)") }
            }
        }
    }

    func testNoCheckpointInFolder() throws {
        XCTAssertThrowsError(try Checkpoint(directory: dir.path)) { e in
            XCTAssertTrue("\(e)".contains("no model.safetensors"), "\(e)")
        }
    }

    /// Every prefix of a valid file fails cleanly (never crashes, never reads out of bounds).
    func testEveryTruncationFailsCleanly() throws {
        let data: [Float] = [1, 2, 3, 4]
        let p = try write("full.safetensors", header: #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, data: data.withUnsafeBytes { Array($0) })
        let full = try Data(contentsOf: URL(fileURLWithPath: p))
        XCTAssertNoThrow(try SafetensorsFile(path: p))
        for cut in 0..<full.count {
            let q = dir.appendingPathComponent("cut.safetensors")
            try full.prefix(cut).write(to: q)
            XCTAssertThrowsError(try SafetensorsFile(path: q.path), "prefix of \(cut) bytes")
        }
    }
}
