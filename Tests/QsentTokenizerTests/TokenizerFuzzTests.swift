import Foundation
import XCTest

import QsentTokenizer

/// Optional differential fuzz against Hugging Face: a large corpus made by
/// Tests/Fixtures/make_tokenizer_fuzz.py (every Unicode scalar in random context), too big to
/// commit. Runs only when QSENT_TOKENIZER_FUZZ names that file.
final class TokenizerFuzzTests: XCTestCase {
    func testFuzzCorpusMatchesHuggingFace() throws {
        guard let path = ProcessInfo.processInfo.environment["QSENT_TOKENIZER_FUZZ"], !path.isEmpty else {
            throw XCTSkip("set QSENT_TOKENIZER_FUZZ to a corpus made by Tests/Fixtures/make_tokenizer_fuzz.py")
        }
        let dir = try TestPaths.requireModelDir()
        let tok = try WordPieceTokenizer.load(tokenizerJSON: dir.appendingPathComponent("tokenizer.json").path)
        var failures = 0
        let cases = try readJSONLines(URL(fileURLWithPath: path))
        for (n, obj) in cases.enumerated() {
            guard let text = obj["text"] as? String, let ids = intArray(obj["ids"]) else { throw CocoaError(.fileReadCorruptFile) }
            let got = tok.encode(text, maxTokens: Int.max).ids
            if let pos = firstDifference(got, ids) {
                failures += 1
                if failures <= 20 {
                    let scalars = text.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " ")
                    XCTFail("case \(n) [\(scalars)]: first difference at \(pos)")
                }
            }
        }
        XCTAssertGreaterThan(cases.count, 0)
        XCTAssertEqual(failures, 0, "\(failures) of \(cases.count) fuzz cases differ from Hugging Face")
    }
}
