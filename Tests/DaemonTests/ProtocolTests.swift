import QsentIO
import QsentProtocol
import XCTest

final class JSONParserTests: XCTestCase {
    func parse(_ s: String) throws -> JSONValue { try JSONParser.parse(s) }

    func assertRejects(_ s: String, _ kind: JSONParseError.Kind = .syntax, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try JSONParser.parse(s), "accepted \(s)", file: file, line: line) { e in
            XCTAssertEqual((e as? JSONParseError)?.kind, kind, "\(s): \(e)", file: file, line: line)
        }
    }

    func testValues() throws {
        XCTAssertEqual(try parse("null"), .null)
        XCTAssertEqual(try parse(" true "), .bool(true))
        XCTAssertEqual(try parse("false"), .bool(false))
        XCTAssertEqual(try parse("-0.5e+3"), .number("-0.5e+3"))
        XCTAssertEqual(try parse("0"), .number("0"))
        XCTAssertEqual(try parse("[1, [], {}]"), .array([.number("1"), .array([]), .object([])]))
        XCTAssertEqual(try parse(#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#), .string("a\"\\/\u{8}\u{c}\n\r\té😀"))
        XCTAssertEqual(try parse("\"\\u0000\""), .string("\u{0}"))
        XCTAssertEqual(try parse("\"héllo ✓\""), .string("héllo ✓"))
    }

    func testRawMemberTextIsVerbatim() throws {
        let v = try parse(#"{ "id" :  1.50e0 , "x": {"a" : [1,2]} ,"s":"\u00e9"}"#)
        XCTAssertEqual(v["id"]?.raw, "1.50e0")
        XCTAssertEqual(v["x"]?.raw, #"{"a" : [1,2]}"#)
        XCTAssertEqual(v["s"]?.raw, #""\u00e9""#)
        XCTAssertEqual(v["s"]?.value, .string("é"))
    }

    func testRejectsMalformed() {
        for s in ["", " ", "nul", "tru", "[1,]", "{\"a\":1,}", "{a:1}", "{\"a\" 1}", "[1 2]", "01", "-", "1.", ".5", "1e", "+1",
                  "NaN", "Infinity", "'a'", "\"abc", "\"a\tb\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "1 2", "{} x", "[", "{",
                  "// c\n1", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\""] {
            XCTAssertThrowsError(try JSONParser.parse(s), "accepted \(s.debugDescription)")
        }
        assertRejects("\"\\ud800\"")
        assertRejects("\"\\ude00\\ud83d\"")
    }

    func testDuplicateKeysAndDepth() {
        assertRejects(#"{"a":1,"a":2}"#, .duplicateKey)
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        assertRejects(deep, .tooDeep)
        XCTAssertNoThrow(try JSONParser.parse(String(repeating: "[", count: 32) + String(repeating: "]", count: 32)))
        let deepObj = String(repeating: "{\"a\":", count: 33) + "1" + String(repeating: "}", count: 33)
        assertRejects(deepObj, .tooDeep)
    }

    func testUTF8Validation() {
        let good: [[UInt8]] = [Array("aé✓😀".utf8), [0xEF, 0xBF, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF], [0xED, 0x9F, 0xBF]]
        for g in good { XCTAssertNil(UTF8Validation.firstInvalidOffset(g), "\(g)") }
        let bad: [([UInt8], Int)] = [
            ([0x61, 0xFF], 1), ([0xC0, 0x80], 0), ([0xC1, 0xBF], 0), ([0xE0, 0x80, 0x80], 0),  // overlongs
            ([0xED, 0xA0, 0x80], 0),  // encoded surrogate
            ([0xF4, 0x90, 0x80, 0x80], 0), ([0xF5, 0x80, 0x80, 0x80], 0),  // > U+10FFFF
            ([0x61, 0x62, 0xE2, 0x9C], 2), ([0x80], 0), ([0xC3, 0x28], 0),
        ]
        for (b, off) in bad { XCTAssertEqual(UTF8Validation.firstInvalidOffset(b), off, "\(b)") }
        XCTAssertThrowsError(try JSONParser.parse(bytes: [0x22, 0xFF, 0x22])) { e in
            XCTAssertEqual((e as? JSONParseError)?.kind, .invalidUTF8)
        }
    }
}

final class RequestTests: XCTestCase {
    func req(_ s: String, maxBatch: Int = 4) throws(ProtocolError) -> Request { try Request.parse(line: Array(s.utf8), maxBatch: maxBatch) }

    func code(_ s: String, maxBatch: Int = 4) -> (String?, String?) {
        do { _ = try req(s, maxBatch: maxBatch); return (nil, nil) } catch { return (error.code.rawValue, error.idJSON) }
    }

    func testValidRequests() throws {
        XCTAssertEqual(try req(#"{"id":7,"text":"hi"}"#), Request(idJSON: "7", body: .classify("hi")))
        XCTAssertEqual(try req(#"{"text":"hi","extra":[1]}"#), Request(idJSON: nil, body: .classify("hi")))
        XCTAssertEqual(try req(#"{"id":{"k":[1,"x"]},"texts":["a","b"]}"#), Request(idJSON: #"{"k":[1,"x"]}"#, body: .batch(["a", "b"])))
        XCTAssertEqual(try req(#"{"id":null,"texts":[]}"#), Request(idJSON: "null", body: .batch([])))
        for op in Operation.allCases {
            XCTAssertEqual(try req(#"{"op":"\#(op.rawValue)","id":"z"}"#), Request(idJSON: "\"z\"", body: .op(op)))
        }
        XCTAssertEqual(try req("{\"text\":\"a\"}\r"), Request(idJSON: nil, body: .classify("a")))
    }

    func testErrorCodes() {
        XCTAssertEqual(code("nope").0, "invalid_json")
        XCTAssertEqual(code("").0, "invalid_json")
        XCTAssertEqual(code(#"{"id":1,"text":"a","text":"b"}"#).0, "invalid_json")
        XCTAssertEqual(code("[1]").0, "wrong_type")
        XCTAssertEqual(code("\"text\"").0, "wrong_type")
        XCTAssertEqual(code(#"{"id":1,"text":5}"#).0, "wrong_type")
        XCTAssertEqual(code(#"{"id":1,"text":5}"#).1, "1")
        XCTAssertEqual(code(#"{"id":"q","texts":"a"}"#).0, "wrong_type")
        XCTAssertEqual(code(#"{"id":"q","texts":["a",null]}"#).0, "wrong_type")
        XCTAssertEqual(code(#"{"op":3}"#).0, "wrong_type")
        XCTAssertEqual(code(#"{"id":2}"#).0, "missing_field")
        XCTAssertEqual(code(#"{"id":2}"#).1, "2")
        XCTAssertEqual(code(#"{"op":"dance","id":[1]}"#).0, "unknown_op")
        XCTAssertEqual(code(#"{"op":"dance","id":[1]}"#).1, "[1]")
        XCTAssertEqual(code(#"{"text":"a","texts":["b"]}"#).0, "invalid_request")
        XCTAssertEqual(code(#"{"op":"ping","text":"a"}"#).0, "invalid_request")
        XCTAssertEqual(code(#"{"texts":["a","b","c","d","e"]}"#, maxBatch: 4).0, "batch_too_large")
        XCTAssertNil(code(#"{"texts":["a","b","c","d"]}"#, maxBatch: 4).0)
        XCTAssertEqual(code(#"{"text":"\ud800"}"#).0, "invalid_json")
        do {
            _ = try Request.parse(line: [0x7B, 0xFF, 0x7D], maxBatch: 1)
            XCTFail("accepted invalid UTF-8")
        } catch {
            XCTAssertEqual(error.code, .invalidUTF8)
        }
    }

    func testDeadline() throws {
        XCTAssertEqual(try req(#"{"id":1,"text":"a","deadline_ms":250}"#), Request(idJSON: "1", body: .classify("a"), deadlineMs: 250))
        XCTAssertEqual(try req(#"{"texts":["a"],"deadline_ms":0}"#), Request(idJSON: nil, body: .batch(["a"]), deadlineMs: 0))
        XCTAssertEqual(try req(#"{"texts":["a"],"deadline_ms":86400000}"#).deadlineMs, 86_400_000)
        XCTAssertEqual(code(#"{"id":1,"text":"a","deadline_ms":"soon"}"#).0, "wrong_type")
        XCTAssertEqual(code(#"{"id":1,"text":"a","deadline_ms":"soon"}"#).1, "1")
        for bad in ["-1", "1.5", "1e3", "86400001", "99999999999999999999999"] {
            XCTAssertEqual(code(#"{"text":"a","deadline_ms":\#(bad)}"#).0, "invalid_request", bad)
        }
        XCTAssertEqual(code(#"{"op":"ping","deadline_ms":5}"#).0, "invalid_request")
        // The request writer emits it, and it parses back.
        let r = Request(idJSON: "\"x\"", body: .classify("t"), deadlineMs: 40)
        XCTAssertEqual(r.line, #"{"id":"x","text":"t","deadline_ms":40}"#)
        XCTAssertEqual(try req(r.line), r)
        XCTAssertEqual(ProtocolError(.deadlineExceeded, "late").line, #"{"error":{"code":"deadline_exceeded","message":"late"}}"#)
    }

    func testResponseWriters() throws {
        XCTAssertEqual(PingAnswer.line(idJSON: nil), #"{"ok":true}"#)
        XCTAssertEqual(PingAnswer.line(idJSON: "\"a\""), #"{"id":"a","ok":true}"#)
        let e = ProtocolError(.busy, "queue \"full\"", idJSON: "3").line
        XCTAssertEqual(e, #"{"id":3,"error":{"code":"busy","message":"queue \"full\""}}"#)
        // Writer output parses back (non-empty results are checked against the engine in the
        // integration tests).
        let r = BatchAnswer.line([], idJSON: "[1]")
        XCTAssertEqual(r, #"{"id":[1],"results":[]}"#)
        XCTAssertEqual(try JSONParser.parse(r)["id"]?.raw, "[1]")
        let weird = ErrorAnswer(code: "x", message: "ctl \u{1}\n\"é").line(idJSON: nil)
        XCTAssertEqual(try JSONParser.parse(weird)["error"]?.value["message"]?.value, .string("ctl \u{1}\n\"é"))
    }
}

final class LineBufferTests: XCTestCase {
    func testSplitsAcrossChunksAndBoundsLength() {
        var b = LineBuffer(maxLineBytes: 5)
        b.append(Array("ab".utf8))
        XCTAssertNil(b.next())
        b.append(Array("c\nde\n12345\n".utf8))
        XCTAssertEqual(b.next(), .line(Array("abc".utf8)))
        XCTAssertEqual(b.next(), .line(Array("de".utf8)))
        XCTAssertEqual(b.next(), .line(Array("12345".utf8)))
        XCTAssertNil(b.next())
        b.append(Array("1234".utf8))
        XCTAssertNil(b.next())
        b.append(Array("56".utf8))
        XCTAssertEqual(b.next(), .tooLong)
        var c = LineBuffer(maxLineBytes: 5)
        c.append(Array("123456\nok\n".utf8))
        XCTAssertEqual(c.next(), .tooLong)
    }

    func testRestAtEndOfInputIsALine() {
        var b = LineBuffer(maxLineBytes: 5)
        XCTAssertNil(b.takeRest())
        b.append(Array("ab\ncd".utf8))
        XCTAssertEqual(b.next(), .line(Array("ab".utf8)))
        XCTAssertNil(b.next())
        XCTAssertEqual(b.takeRest(), .line(Array("cd".utf8)))
        XCTAssertNil(b.takeRest())
        XCTAssertEqual(b.pendingBytes, 0)
        b.append(Array("12345".utf8))
        XCTAssertNil(b.next())
        XCTAssertEqual(b.takeRest(), .line(Array("12345".utf8)))
        b.append(Array("x\n123456".utf8))
        XCTAssertEqual(b.next(), .line(Array("x".utf8)))
        XCTAssertEqual(b.next(), .tooLong)
    }
}
