import Foundation
import XCTest

import QsentTokenizer

/// Parity with the Hugging Face fast tokenizer on all 25,000 IMDB test reviews: the sha256 of
/// the ids truncated to 384, the untruncated count, and the full ids of the first 300 reviews
/// (golden data in <shared>/models/distilbert-h384-imdb/reference/test_tokens_len384.jsonl).
final class IMDBParityTests: XCTestCase {
    func testAllTestReviewsMatchHuggingFace() throws {
        let modelDir = try TestPaths.requireModelDir()
        let reviewsURL = TestPaths.shared.appendingPathComponent("data/imdb/test.jsonl")
        let referenceURL = modelDir.appendingPathComponent("reference/test_tokens_len384.jsonl")
        for url in [reviewsURL, referenceURL] where !FileManager.default.fileExists(atPath: url.path) {
            throw XCTSkip("\(url.path) not found (shared data absent)")
        }
        let tokenizer = try WordPieceTokenizer.load(tokenizerJSON: modelDir.appendingPathComponent("tokenizer.json").path)
        let reviews = try readJSONLines(reviewsURL)
        let reference = try readJSONLines(referenceURL)
        XCTAssertEqual(reviews.count, 25_000)
        XCTAssertEqual(reference.count, reviews.count)

        let texts = reviews.map { $0["text"] as? String ?? "" }
        let totalBytes = texts.reduce(0) { $0 + $1.utf8.count }

        // Timed pass (printed, never asserted): tokenize everything once.
        // Wall time and this thread's CPU time (the CPU figure is steadier on a shared machine).
        let clock = ContinuousClock()
        var encodings: [TokenEncoding] = []
        encodings.reserveCapacity(texts.count)
        let cpuStart = threadCPUSeconds()
        let elapsed = clock.measure {
            for text in texts { encodings.append(tokenizer.encode(text, maxTokens: 384)) }
        }
        let cpu = threadCPUSeconds() - cpuStart
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let totalTokens = encodings.reduce(0) { $0 + $1.nTokens }
        let mb = Double(totalBytes) / 1e6
        print(String(
            format: "[tokenizer throughput] %d reviews, %.1f MB, %d tokens: wall %.3f s = %.1f MB/s, %.2f M tokens/s; CPU %.3f s = %.1f MB/s, %.2f M tokens/s",
            texts.count, mb, totalTokens, seconds, mb / seconds, Double(totalTokens) / 1e6 / seconds,
            cpu, mb / cpu, Double(totalTokens) / 1e6 / cpu))

        var mismatches = 0
        var reported = 0
        for (i, ref) in reference.enumerated() {
            let id = ref["id"] as? String ?? "#\(i)"
            XCTAssertEqual(reviews[i]["id"] as? String, id, "review and reference out of order at line \(i)")
            let enc = encodings[i]
            var problems: [String] = []
            let refCount = (ref["n_tokens"] as? NSNumber)?.intValue ?? -1
            if enc.nTokens != refCount { problems.append("n_tokens \(enc.nTokens) != \(refCount)") }
            if SHA256.idsHash(enc.ids) != ref["sha256_ids_384"] as? String {
                problems.append("sha256 of ids[:384] differs")
            }
            if let full = intArray(ref["ids"]) {
                let mine = tokenizer.encode(texts[i], maxTokens: Int.max).ids
                if let pos = firstDifference(mine, full) {
                    let got = pos < mine.count ? String(mine[pos]) : "end"
                    let want = pos < full.count ? String(full[pos]) : "end"
                    problems.append("full ids differ at position \(pos): got \(got), expected \(want)")
                }
            }
            if !problems.isEmpty {
                mismatches += 1
                if reported < 20 {
                    reported += 1
                    var detail = problems.joined(separator: "; ")
                    if ref["ids"] == nil {
                        // Only a hash to compare with: show our first ids to help debugging.
                        detail += "; ours starts \(tokenizer.encode(texts[i], maxTokens: Int.max).ids.prefix(16))"
                    }
                    XCTFail("\(id): \(detail)")
                }
            }
        }
        XCTAssertEqual(mismatches, 0, "\(mismatches) of \(reference.count) reviews differ from Hugging Face")
        XCTAssertEqual(reference.filter { $0["ids"] != nil }.count, 300, "expected full ids for the first 300 reviews")
    }
}

/// CPU time of the calling thread, in seconds.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
