import Foundation
import QsentCore
import QsentQuantizer
import XCTest

/// The committed default blob, its reproducibility, and the loader's answers to damaged blobs.
final class BlobTests: XCTestCase {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let committedBlob = packageRoot.appendingPathComponent("Models/distilbert-h384-imdb.qsent")

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("qsent-blob-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func committedBytes() throws -> Data {
        try Data(contentsOf: Self.committedBlob)
    }

    func expectBlobError(_ data: Data, _ name: String = "bad.qsent", file: StaticString = #filePath, line: UInt = #line,
                         _ check: (BlobError) -> Bool) throws {
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        XCTAssertThrowsError(try Engine(path: url.path), file: file, line: line) { e in
            guard let b = e as? BlobError else { return XCTFail("not a BlobError: \(e)", file: file, line: line) }
            XCTAssertTrue(check(b), "unexpected: \(b)", file: file, line: line)
            XCTAssertTrue(b.description.contains(url.path), "message should name the file: \(b)", file: file, line: line)
        }
    }

    func testCommittedBlobLoadsAndClassifies() throws {
        let engine = try Engine(path: Self.committedBlob.path)
        XCTAssertEqual(engine.info.precision, "int8")
        XCTAssertEqual(engine.info.labels, ["NEGATIVE", "POSITIVE"])
        XCTAssertEqual(engine.info.maxTokens, 384)
        let r = engine.classify(["A wonderful, moving film with superb acting.", "Dull, predictable and far too long."])
        XCTAssertEqual(r.map(\.label), ["POSITIVE", "NEGATIVE"])
    }

    /// `qsent-quantize ../shared/models/distilbert-h384-imdb` reproduces Models/ byte for byte,
    /// and quantizing twice gives the same bytes.
    func testQuantizerIsDeterministicAndReproducesCommittedBlob() throws {
        let model = try requireSharedModel()
        let (a, _) = try Quantizer.quantize(directory: model.path, maxTokens: 384)
        let (b, _) = try Quantizer.quantize(directory: model.path, maxTokens: 384)
        let bytesA = try a.blobBytes(), bytesB = try b.blobBytes()
        XCTAssertEqual(bytesA, bytesB, "quantizing twice must give identical bytes")
        XCTAssertEqual(Data(bytesA), try committedBytes(),
                       "Models/distilbert-h384-imdb.qsent is stale: regenerate it with the command in README.md")
    }

    func testBlobIsAtMost27PercentOfSafetensors() throws {
        let model = try requireSharedModel()
        let st = try FileManager.default.attributesOfItem(atPath: model.appendingPathComponent("model.safetensors").path)[.size] as! NSNumber
        let blob = try committedBytes().count
        let ratio = Double(blob) / st.doubleValue
        print("blob size: \(blob) bytes = \(String(format: "%.1f", 100 * ratio)) % of \(st) bytes FP32 safetensors")
        XCTAssertLessThanOrEqual(ratio, 0.27)
    }

    func testWrongMagic() throws {
        var d = try committedBytes()
        d[1] = UInt8(ascii: "X")
        try expectBlobError(d) { if case .notABlob = $0 { return true }; return false }
        try expectBlobError(Data("{\"not\":\"a blob\"}".utf8)) { if case .notABlob = $0 { return true }; return false }
    }

    func testNewerVersion() throws {
        var d = try committedBytes()
        d[8] = 2  // version 2, with a valid header checksum
        let hash = d.withUnsafeBytes { XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[0..<48])) }
        for i in 0..<8 { d[48 + i] = UInt8((hash >> (8 * UInt64(i))) & 0xFF) }
        try expectBlobError(d) { if case .newerVersion(_, 2) = $0 { return true }; return false }
    }

    func testTruncation() throws {
        let d = try committedBytes()
        for cut in [d.count - 1, d.count / 2, 4096, 100, 64, 10, 0] {
            try expectBlobError(d.prefix(cut), "cut\(cut).qsent") { e in
                switch e {
                case .truncated, .notABlob, .corruptHeader: return true
                default: return false
                }
            }
        }
    }

    /// A flipped bit anywhere (header, section table, metadata, vocabulary, weights, padding
    /// inside a section) is caught.
    func testFlippedBytesAreCaught() throws {
        let d = try committedBytes()
        let blob = try Blob(path: Self.committedBlob.path)
        _ = blob
        var positions = [9, 20, 50, 64 + 5, 64 + 100, 64 + 128 * 3 + 90]
        var rng = SystemRandomNumberGenerator()
        // Sections occupy almost all of the file; sample positions across it.
        for _ in 0..<24 { positions.append(Int.random(in: 4096..<(d.count - 64), using: &rng)) }
        var caught = 0
        for p in positions {
            var bad = d
            bad[p] ^= 0x10
            let url = dir.appendingPathComponent("flip.qsent")
            try bad.write(to: url)
            do {
                _ = try Engine(path: url.path)
                // Only inter-section alignment padding is not covered by a checksum; the sampled
                // byte must then be padding, i.e. outside every section.
                XCTAssertTrue(try isPadding(p, in: Self.committedBlob), "flip at \(p) went unnoticed")
            } catch let e as BlobError {
                caught += 1
                XCTAssertTrue(e.description.contains(url.path))
            }
        }
        XCTAssertGreaterThan(caught, positions.count / 2)
    }

    /// True if `offset` lies in no section's data (alignment padding).
    func isPadding(_ offset: Int, in url: URL) throws -> Bool {
        let d = try Data(contentsOf: url)
        func u64(_ at: Int) -> Int { d[at..<(at + 8)].enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) } }
        let count = Int(d[24]) | Int(d[25]) << 8 | Int(d[26]) << 16
        if offset < 64 + 128 * count { return false }
        for i in 0..<count {
            let e = 64 + 128 * i
            let off = u64(e + 88), size = u64(e + 96)
            if offset >= off && offset < off + size { return false }
        }
        return true
    }

    func testMissingAndDirectoryPaths() {
        XCTAssertThrowsError(try Engine(path: "/nonexistent/model.qsent")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/model.qsent"), "\(e)")
        }
    }
}

func requireSharedModel() throws -> URL {
    let shared: URL
    if let env = ProcessInfo.processInfo.environment["QSENT_SHARED"], !env.isEmpty {
        shared = URL(fileURLWithPath: env)
    } else {
        shared = BlobTests.packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }
    let m = shared.appendingPathComponent("models/distilbert-h384-imdb")
    guard FileManager.default.fileExists(atPath: m.appendingPathComponent("model.safetensors").path) else {
        throw XCTSkip("../shared/models/distilbert-h384-imdb is absent (set QSENT_SHARED); skipping")
    }
    return m
}
