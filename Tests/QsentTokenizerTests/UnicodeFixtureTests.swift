import Foundation
import XCTest

import QsentTokenizer

/// Hard Unicode cases with untruncated ids from the Hugging Face fast tokenizer
/// (Tests/Fixtures/tokenizer_unicode.jsonl, made by Tests/Fixtures/make_tokenizer_corpus.py).
final class UnicodeFixtureTests: XCTestCase {
    struct Case {
        let text: String
        let ids: [Int32]
    }

    static func loadCases() throws -> [Case] {
        let url = TestPaths.fixtures.appendingPathComponent("tokenizer_unicode.jsonl")
        return try readJSONLines(url).map { obj in
            guard let text = obj["text"] as? String, let ids = intArray(obj["ids"]) else {
                throw CocoaError(.fileReadCorruptFile)
            }
            return Case(text: text, ids: ids)
        }
    }

    func tokenizerFromJSON() throws -> WordPieceTokenizer {
        let dir = try TestPaths.requireModelDir()
        return try WordPieceTokenizer.load(tokenizerJSON: dir.appendingPathComponent("tokenizer.json").path)
    }

    func check(_ tokenizer: WordPieceTokenizer, _ cases: [Case], label: String) {
        var failures = 0
        for (n, c) in cases.enumerated() {
            let enc = tokenizer.encode(c.text, maxTokens: Int.max)
            if let pos = firstDifference(enc.ids, c.ids) {
                failures += 1
                if failures <= 25 {
                    let got = Array(enc.ids[max(0, pos - 2)..<min(enc.ids.count, pos + 4)])
                    let want = Array(c.ids[max(0, pos - 2)..<min(c.ids.count, pos + 4)])
                    let scalars = c.text.unicodeScalars.prefix(24).map { String($0.value, radix: 16) }.joined(separator: " ")
                    XCTFail("\(label) case \(n) [\(scalars)]: first difference at \(pos): got …\(got)…, expected …\(want)…")
                }
            }
            XCTAssertEqual(enc.nTokens, c.ids.count, "\(label) case \(n): nTokens")
            XCTAssertFalse(enc.truncated)
        }
        XCTAssertEqual(failures, 0, "\(label): \(failures) of \(cases.count) cases differ from Hugging Face")
    }

    func testFixtureHasEnoughCases() throws {
        let cases = try Self.loadCases()
        XCTAssertGreaterThanOrEqual(cases.count, 300)
        // Every case is [CLS] … [SEP] in the oracle.
        for c in cases {
            XCTAssertEqual(c.ids.first, 101)
            XCTAssertEqual(c.ids.last, 102)
        }
    }

    func testUnicodeCasesFromTokenizerJSON() throws {
        check(try tokenizerFromJSON(), try Self.loadCases(), label: "tokenizer.json")
    }

    func testUnicodeCasesFromVocabTXT() throws {
        let dir = try TestPaths.requireModelDir()
        let tok = try WordPieceTokenizer.load(
            vocabTXT: dir.appendingPathComponent("vocab.txt").path,
            tokenizerConfig: dir.appendingPathComponent("tokenizer_config.json").path)
        check(tok, try Self.loadCases(), label: "vocab.txt")
        let fromJSON = try tokenizerFromJSON()
        XCTAssertEqual(tok.vocabulary, fromJSON.vocabulary)
        XCTAssertEqual(tok.settings.lowercase, fromJSON.settings.lowercase)
        XCTAssertEqual(tok.settings.stripAccents, fromJSON.settings.stripAccents)
        XCTAssertEqual(Set(tok.settings.addedTokens), Set(fromJSON.settings.addedTokens))
        XCTAssertEqual([tok.clsId, tok.sepId, tok.unkId, tok.padId], [fromJSON.clsId, fromJSON.sepId, fromJSON.unkId, fromJSON.padId])
    }

    /// Other BertNormalizer settings (cased, accents kept, strip without lowercase, no Chinese
    /// handling, no clean_text) on the same vocabulary, against HF with that normalizer
    /// (Tests/Fixtures/tokenizer_unicode_configs.jsonl).
    func testOtherNormalizerSettings() throws {
        let base = try tokenizerFromJSON()
        let url = TestPaths.fixtures.appendingPathComponent("tokenizer_unicode_configs.jsonl")
        var groups: [String: (TokenizerSettings, [Case])] = [:]
        var order: [String] = []
        for obj in try readJSONLines(url) {
            guard let name = obj["config"] as? String, let text = obj["text"] as? String, let ids = intArray(obj["ids"]),
                let lower = obj["lowercase"] as? Bool, let clean = obj["clean_text"] as? Bool,
                let chinese = obj["handle_chinese_chars"] as? Bool
            else { throw CocoaError(.fileReadCorruptFile) }
            if groups[name] == nil {
                var settings = base.settings
                settings.lowercase = lower
                settings.stripAccents = (obj["strip_accents"] as? Bool) ?? lower
                settings.cleanText = clean
                settings.handleChineseChars = chinese
                groups[name] = (settings, [])
                order.append(name)
            }
            groups[name]!.1.append(Case(text: text, ids: ids))
        }
        XCTAssertEqual(order.count, 5)
        for name in order {
            let (settings, cases) = groups[name]!
            let tok = try WordPieceTokenizer(vocabulary: base.vocabulary, settings: settings)
            check(tok, cases, label: name)
            // The setting matters on this corpus (otherwise the comparison would prove nothing).
            let differing = cases.filter { base.encode($0.text, maxTokens: Int.max).ids != $0.ids }.count
            XCTAssertGreaterThan(differing, 0, "\(name): no case differs from the default settings")
        }
    }

    /// NFD canonical ordering of marks that survive strip_accents, on a small vocabulary in
    /// which each such mark is a piece (Tests/Fixtures/tokenizer_reorder.jsonl). Needs no shared data.
    func testCanonicalOrderingOfSurvivingMarks() throws {
        let lines = try readJSONLines(TestPaths.fixtures.appendingPathComponent("tokenizer_reorder.jsonl"))
        let vocabulary = try XCTUnwrap(lines.first?["vocabulary"] as? [String])
        let cases = try lines.dropFirst().map { obj -> Case in
            guard let text = obj["text"] as? String, let ids = intArray(obj["ids"]) else { throw CocoaError(.fileReadCorruptFile) }
            return Case(text: text, ids: ids)
        }
        XCTAssertGreaterThan(cases.count, 300)
        let tok = try WordPieceTokenizer(vocabulary: vocabulary, settings: TokenizerSettings())
        check(tok, cases, label: "reorder")
        // The first two cases differ only in mark order, and HF gives both the same ids.
        XCTAssertEqual(cases[0].ids, cases[1].ids)
        XCTAssertNotEqual(Array(cases[0].text.unicodeScalars), Array(cases[1].text.unicodeScalars))
    }

    /// The .qsent blob path: vocabulary + settings (round-tripped through JSON) rebuild an
    /// identical tokenizer.
    func testRebuildFromVocabularyAndSettings() throws {
        let original = try tokenizerFromJSON()
        let data = try JSONEncoder().encode(original.settings)
        let settings = try JSONDecoder().decode(TokenizerSettings.self, from: data)
        XCTAssertEqual(settings, original.settings)
        let clock = ContinuousClock()
        var rebuilt: WordPieceTokenizer?
        let elapsed = clock.measure { rebuilt = try? WordPieceTokenizer(vocabulary: original.vocabulary, settings: settings) }
        print("[tokenizer init] \(original.vocabulary.count) pieces from vocabulary+settings in \(elapsed)")
        let tok = try XCTUnwrap(rebuilt)
        check(tok, try Self.loadCases(), label: "rebuilt")
    }

    /// Right truncation keeping [SEP]: [CLS] + first maxTokens-2 pieces + [SEP], nTokens untruncated.
    func testTruncationAtSmallLimits() throws {
        let tok = try tokenizerFromJSON()
        let cases = try Self.loadCases()
        var checked = 0
        for c in cases {
            let body = Array(c.ids.dropFirst().dropLast())
            for maxTokens in [2, 3, 5, 8, 384] {
                let enc = tok.encode(c.text, maxTokens: maxTokens)
                let expected = [Int32(101)] + body.prefix(maxTokens - 2) + [Int32(102)]
                XCTAssertEqual(enc.ids, expected, "maxTokens \(maxTokens): \(c.text.debugDescription.prefix(60))")
                XCTAssertEqual(enc.nTokens, c.ids.count)
                XCTAssertEqual(enc.truncated, c.ids.count > maxTokens)
                XCTAssertLessThanOrEqual(enc.ids.count, maxTokens)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 1000)
        // Values below 2 still keep both special tokens.
        let enc = tok.encode("hello world", maxTokens: 0)
        XCTAssertEqual(enc.ids, [101, 102])
        XCTAssertEqual(enc.nTokens, 4)
        XCTAssertTrue(enc.truncated)
    }

    /// One tokenizer shared by many threads gives the same ids as the oracle (encode keeps
    /// all its state local).
    func testConcurrentEncoding() throws {
        let tok = try tokenizerFromJSON()
        let cases = try Self.loadCases()
        let failures = LockedCount()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            var bad = 0
            for (n, c) in cases.enumerated() where n % 8 == worker || worker == 0 {
                if tok.encode(c.text, maxTokens: Int.max).ids != c.ids { bad += 1 }
            }
            failures.add(bad)
        }
        XCTAssertEqual(failures.value, 0)
    }

    func testSettingsDecodeWithDefaults() throws {
        let settings = try JSONDecoder().decode(TokenizerSettings.self, from: Data("{}".utf8))
        XCTAssertEqual(settings, TokenizerSettings())
        XCTAssertTrue(settings.lowercase && settings.stripAccents && settings.cleanText && settings.handleChineseChars)
        XCTAssertEqual(settings.addedTokens.map(\.content), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        let cased = try JSONDecoder().decode(TokenizerSettings.self, from: Data(#"{"lowercase": false}"#.utf8))
        XCTAssertFalse(cased.stripAccents, "strip_accents follows lowercase when absent")
    }

    func testDefaultMaxTokensIs384() throws {
        let tok = try tokenizerFromJSON()
        let text = Array(repeating: "word", count: 1000).joined(separator: " ")
        let enc = tok.encode(text)
        XCTAssertEqual(enc.ids.count, 384)
        XCTAssertEqual(enc.nTokens, 1002)
        XCTAssertEqual(enc.ids.last, tok.sepId)
    }
}

/// A counter shared by worker threads. @unchecked Sendable: `lock` guards `count`.
final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ n: Int) { lock.lock(); count += n; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
