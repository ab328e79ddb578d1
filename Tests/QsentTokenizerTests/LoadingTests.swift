import Foundation
import XCTest

import QsentTokenizer

/// Loading errors: each bad input gets its specific typed error, whose message names the file.
final class LoadingTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("qsent-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    /// A small but valid BERT tokenizer.json, as a mutable JSON object.
    func miniTokenizerJSON() -> [String: Any] {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "!", "un", "##able"]
        var vocabMap: [String: Int] = [:]
        for (i, v) in vocab.enumerated() { vocabMap[v] = i }
        let added: [[String: Any]] = vocab.prefix(5).enumerated().map { i, v in
            ["id": i, "content": v, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        return [
            "version": "1.0",
            "added_tokens": added,
            "normalizer": ["type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": NSNull(), "lowercase": true],
            "pre_tokenizer": ["type": "BertPreTokenizer"],
            "post_processor": [
                "type": "TemplateProcessing",
                "single": [["SpecialToken": ["id": "[CLS]", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]], ["SpecialToken": ["id": "[SEP]", "type_id": 0]]],
                "special_tokens": ["[CLS]": ["id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]], "[SEP]": ["id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]]],
            ] as [String: Any],
            "model": ["type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocabMap] as [String: Any],
        ]
    }

    func write(_ name: String, _ object: Any) throws -> String {
        let url = tmp.appendingPathComponent(name)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return url.path
    }

    func write(_ name: String, text: String) throws -> String {
        let url = tmp.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// Runs `body`, expects a TokenizerError matching `matches`, and checks the message names `path`.
    func expectError(_ path: String, file: StaticString = #filePath, line: UInt = #line,
                     _ body: () throws -> Void, _ matches: (TokenizerError) -> Bool) {
        do {
            try body()
            XCTFail("expected an error for \(path)", file: file, line: line)
        } catch let error as TokenizerError {
            XCTAssertTrue(matches(error), "unexpected error case: \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(path), "message does not name \(path): \(error)", file: file, line: line)
        } catch {
            XCTFail("not a TokenizerError: \(error)", file: file, line: line)
        }
    }

    func testMiniTokenizerWorks() throws {
        let path = try write("tokenizer.json", miniTokenizerJSON())
        let tok = try WordPieceTokenizer.load(tokenizerJSON: path)
        XCTAssertEqual(tok.encode("Hello worlds! unable xyz [MASK]").ids, [2, 5, 6, 7, 8, 9, 10, 1, 4, 3])
        XCTAssertEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId], [0, 1, 2, 3])
        let viaDir = try WordPieceTokenizer.load(directory: tmp.path)
        XCTAssertEqual(viaDir.vocabulary, tok.vocabulary)
    }

    func testBadJSON() throws {
        let path = try write("tokenizer.json", text: "{ \"model\": [1, 2,, }")
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .malformedJSON(let p, _) = $0 { return p == path }; return false
        }
    }

    func testTruncatedFile() throws {
        let dir = try TestPaths.requireModelDir()
        let full = try Data(contentsOf: dir.appendingPathComponent("tokenizer.json"))
        let url = tmp.appendingPathComponent("tokenizer.json")
        try full.prefix(full.count / 2).write(to: url)
        expectError(url.path, { _ = try WordPieceTokenizer.load(tokenizerJSON: url.path) }) {
            if case .malformedJSON = $0 { return true }; return false
        }
    }

    func testTopLevelNotObject() throws {
        let path = try write("tokenizer.json", text: "[1, 2, 3]")
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .malformedJSON = $0 { return true }; return false
        }
    }

    func testWrongModelType() throws {
        var json = miniTokenizerJSON()
        var model = json["model"] as! [String: Any]
        model["type"] = "BPE"
        json["model"] = model
        let path = try write("tokenizer.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .unsupported(_, let what) = $0 { return what.contains("BPE") }; return false
        }
    }

    func testWrongNormalizerAndPreTokenizer() throws {
        var json = miniTokenizerJSON()
        json["normalizer"] = ["type": "Sequence", "normalizers": [] as [Any]]
        var path = try write("tokenizer.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .unsupported(_, let what) = $0 { return what.contains("normalizer") }; return false
        }
        json = miniTokenizerJSON()
        json["pre_tokenizer"] = ["type": "Whitespace"]
        path = try write("tokenizer2.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .unsupported(_, let what) = $0 { return what.contains("pre_tokenizer") }; return false
        }
    }

    func testUnsupportedAddedTokenOptions() throws {
        var json = miniTokenizerJSON()
        var added = json["added_tokens"] as! [[String: Any]]
        added[4]["lstrip"] = true
        json["added_tokens"] = added
        let path = try write("tokenizer.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .unsupported(_, let what) = $0 { return what.contains("lstrip") }; return false
        }
    }

    func testMissingVocab() throws {
        var json = miniTokenizerJSON()
        var model = json["model"] as! [String: Any]
        model.removeValue(forKey: "vocab")
        json["model"] = model
        let path = try write("tokenizer.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .missingField(_, let field) = $0 { return field == "model.vocab" }; return false
        }
        let noModel = try write("tokenizer_nomodel.json", ["version": "1.0"])
        expectError(noModel, { _ = try WordPieceTokenizer.load(tokenizerJSON: noModel) }) {
            if case .missingField(_, let field) = $0 { return field == "model" }; return false
        }
    }

    func testEmptyVocabInJSON() throws {
        var json = miniTokenizerJSON()
        var model = json["model"] as! [String: Any]
        model["vocab"] = [String: Int]()
        json["model"] = model
        let path = try write("tokenizer.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .emptyVocabulary = $0 { return true }; return false
        }
    }

    func removingFromVocab(_ token: String) -> [String: Any] {
        var json = miniTokenizerJSON()
        var model = json["model"] as! [String: Any]
        var vocab = model["vocab"] as! [String: Int]
        // Keep ids dense: move the last piece into the freed id.
        let freed = vocab.removeValue(forKey: token)!
        let last = vocab.first { $0.value == vocab.count }!.key
        vocab[last] = freed
        model["vocab"] = vocab
        json["model"] = model
        json["added_tokens"] = (json["added_tokens"] as! [[String: Any]]).filter { ($0["content"] as! String) != token }
        return json
    }

    func testMissingSpecialTokens() throws {
        for token in ["[UNK]", "[CLS]", "[SEP]", "[PAD]"] {
            let path = try write("tokenizer-\(token.dropFirst().dropLast()).json", removingFromVocab(token))
            expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
                if case .missingSpecialToken(_, let t, _) = $0 { return t == token }; return false
            }
        }
    }

    func testMissingPostProcessorSpecialToken() throws {
        var json = miniTokenizerJSON()
        var post = json["post_processor"] as! [String: Any]
        post["special_tokens"] = ["[CLS]": ["id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]]]
        json["post_processor"] = post
        let path = try write("tokenizer.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .missingSpecialToken(_, let t, _) = $0 { return t == "[SEP]" }; return false
        }
    }

    func testNonDenseVocabIds() throws {
        var json = miniTokenizerJSON()
        var model = json["model"] as! [String: Any]
        var vocab = model["vocab"] as! [String: Int]
        vocab["hello"] = 500
        model["vocab"] = vocab
        json["model"] = model
        let path = try write("tokenizer.json", json)
        expectError(path, { _ = try WordPieceTokenizer.load(tokenizerJSON: path) }) {
            if case .invalidVocabulary = $0 { return true }; return false
        }
    }

    func testEmptyVocabTXT() throws {
        let path = try write("vocab.txt", text: "")
        expectError(path, { _ = try WordPieceTokenizer.load(vocabTXT: path, tokenizerConfig: nil) }) {
            if case .emptyVocabulary(let p) = $0 { return p == path }; return false
        }
        let blank = try write("vocab2.txt", text: "\n\n")
        expectError(blank, { _ = try WordPieceTokenizer.load(vocabTXT: blank, tokenizerConfig: nil) }) {
            if case .emptyVocabulary = $0 { return true }; return false
        }
    }

    func testVocabTXTWithoutSpecialTokens() throws {
        let path = try write("vocab.txt", text: "[PAD]\n[CLS]\n[SEP]\nhello\n")
        expectError(path, { _ = try WordPieceTokenizer.load(vocabTXT: path, tokenizerConfig: nil) }) {
            if case .missingSpecialToken(_, let t, _) = $0 { return t == "[UNK]" }; return false
        }
    }

    func testVocabTXTWithCRLFAndNoConfig() throws {
        let path = try write("vocab.txt", text: "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello\r\nworld")
        let tok = try WordPieceTokenizer.load(vocabTXT: path, tokenizerConfig: nil)
        XCTAssertEqual(tok.vocabulary.count, 7)
        XCTAssertEqual(tok.encode("Hello WORLD hi").ids, [2, 5, 6, 1, 3])
    }

    func testBadTokenizerConfig() throws {
        let vocab = try write("vocab.txt", text: "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
        let bad = try write("tokenizer_config.json", text: "{\"do_lower_case\": tru")
        expectError(bad, { _ = try WordPieceTokenizer.load(vocabTXT: vocab, tokenizerConfig: bad) }) {
            if case .malformedJSON(let p, _) = $0 { return p == bad }; return false
        }
        let roberta = try write("tokenizer_config2.json", ["tokenizer_class": "RobertaTokenizer"])
        expectError(roberta, { _ = try WordPieceTokenizer.load(vocabTXT: vocab, tokenizerConfig: roberta) }) {
            if case .unsupported = $0 { return true }; return false
        }
        let wrongType = try write("tokenizer_config3.json", ["do_lower_case": "yes"])
        expectError(wrongType, { _ = try WordPieceTokenizer.load(vocabTXT: vocab, tokenizerConfig: wrongType) }) {
            if case .missingField(_, let f) = $0 { return f == "do_lower_case" }; return false
        }
        let missingSep = try write("tokenizer_config4.json", ["sep_token": "</s>"])
        expectError(vocab, { _ = try WordPieceTokenizer.load(vocabTXT: vocab, tokenizerConfig: missingSep) }) {
            if case .missingSpecialToken(_, let t, _) = $0 { return t == "</s>" }; return false
        }
    }

    func testMissingFiles() throws {
        let missing = tmp.appendingPathComponent("nope/tokenizer.json").path
        expectError(missing, { _ = try WordPieceTokenizer.load(tokenizerJSON: missing) }) {
            if case .fileNotFound(let p) = $0 { return p == missing }; return false
        }
        let missingVocab = tmp.appendingPathComponent("vocab.txt").path
        expectError(missingVocab, { _ = try WordPieceTokenizer.load(vocabTXT: missingVocab, tokenizerConfig: nil) }) {
            if case .fileNotFound = $0 { return true }; return false
        }
        let vocab = try write("vocab.txt", text: "[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
        let missingConfig = tmp.appendingPathComponent("tokenizer_config.json").path
        expectError(missingConfig, { _ = try WordPieceTokenizer.load(vocabTXT: vocab, tokenizerConfig: missingConfig) }) {
            if case .fileNotFound = $0 { return true }; return false
        }
        let emptyDir = tmp.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: emptyDir, withIntermediateDirectories: true)
        expectError(emptyDir.path, { _ = try WordPieceTokenizer.load(directory: emptyDir.path) }) {
            if case .noTokenizerFiles = $0 { return true }; return false
        }
        let noDir = tmp.appendingPathComponent("absent").path
        expectError(noDir, { _ = try WordPieceTokenizer.load(directory: noDir) }) {
            if case .fileNotFound = $0 { return true }; return false
        }
    }

    func testInitFromVocabularyErrors() {
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: [], settings: TokenizerSettings())) {
            guard case TokenizerError.emptyVocabulary = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: ["[PAD]", "[CLS]", "[SEP]", "[UNK]"], settings: TokenizerSettings())) {
            guard case TokenizerError.missingSpecialToken(_, let t, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(t, "[MASK]")
        }
        let ok = try? WordPieceTokenizer(
            vocabulary: ["[PAD]", "[CLS]", "[SEP]", "[UNK]"], settings: TokenizerSettings(maskToken: nil))
        XCTAssertNotNil(ok)
    }

    func testLoadDirectoryPrefersTokenizerJSON() throws {
        let dir = try TestPaths.requireModelDir()
        let tok = try WordPieceTokenizer.load(directory: dir.path)
        XCTAssertEqual(tok.vocabulary.count, 30522)
        XCTAssertEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId], [0, 100, 101, 102])
        XCTAssertEqual(tok.settings, try WordPieceTokenizer.load(tokenizerJSON: dir.appendingPathComponent("tokenizer.json").path).settings)
    }
}
