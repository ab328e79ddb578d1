import Foundation
import XCTest

/// Locates ../shared (the read-only data beside the clone), or $QSENT_SHARED.
enum SharedData {
    static var root: URL? {
        if let env = ProcessInfo.processInfo.environment["QSENT_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        // Tests/QsentCoreTests/SharedData.swift -> package root -> ../shared
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shared = pkg.deletingLastPathComponent().appendingPathComponent("shared")
        return FileManager.default.fileExists(atPath: shared.path) ? shared : nil
    }

    static var model: URL? { root?.appendingPathComponent("models/distilbert-h384-imdb") }

    /// The model folder, or XCTSkip with a clear reason.
    static func requireModel() throws -> URL {
        guard let m = model, FileManager.default.fileExists(atPath: m.appendingPathComponent("model.safetensors").path) else {
            throw XCTSkip("../shared/models/distilbert-h384-imdb is absent (set QSENT_SHARED to the shared folder); skipping")
        }
        return m
    }

    static func requireTestSet() throws -> URL {
        guard let r = root, FileManager.default.fileExists(atPath: r.appendingPathComponent("data/imdb/test.jsonl").path) else {
            throw XCTSkip("../shared/data/imdb/test.jsonl is absent (set QSENT_SHARED to the shared folder); skipping")
        }
        return r.appendingPathComponent("data/imdb/test.jsonl")
    }

    /// Parses a JSONL file into objects.
    static func jsonl(_ url: URL) throws -> [[String: Any]] {
        let data = try Data(contentsOf: url)
        var out: [[String: Any]] = []
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            guard let o = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                throw NSError(domain: "jsonl", code: 1, userInfo: [NSLocalizedDescriptionKey: "bad line in \(url.path)"])
            }
            out.append(o)
        }
        return out
    }

    /// The benchmark/CI subset: test reviews at 0-based index i with i % 25 == 0 (1,000 reviews).
    static let subsetStride = 25

    static func referenceLogits() throws -> [String: [Float]] {
        let m = try requireModel()
        var out: [String: [Float]] = [:]
        for o in try jsonl(m.appendingPathComponent("reference/test_logits_fp32_len384.jsonl")) {
            out[o["id"] as! String] = (o["logits"] as! [NSNumber]).map(\.floatValue)
        }
        return out
    }
}
