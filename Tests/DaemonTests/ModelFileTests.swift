import Foundation
import QsentCore
import QsentIO
import QsentJSON
import QsentProtocol
import XCTest

/// Issue 8 findings 5 and 9, against the real qsentd: the served blob is truncated, rewritten in
/// place (`cp`), half-written, or replaced by a FIFO. The daemon must stay alive, answer only
/// from a complete verified model (compared with the in-process engine), report the problem in
/// its log (error priority), `reload` and `info`, and take up a valid new file by itself.
final class ModelFileTests: XCTestCase {
    static let texts = ["A wonderful, moving film with superb acting.", "Dull, predictable and far too long.",
                        "It was fine, I guess, though the middle dragged."]
    /// The watch polls every second and acts after two equal polls; a reload takes well under
    /// a second. Generous, as daemon tests may be.
    static let settle: TimeInterval = 30

    var dir: URL!

    override func setUpWithError() throws {
        dir = try TestEnv.tempDir("mf")
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    // MARK: helpers

    /// A copy of the test blob in `dir`, served by a fresh qsentd.
    func serve(_ tag: String) throws -> (ScratchModel, DaemonProcess) {
        let m = try ScratchModel(from: try TestEnv.model(), in: dir)
        guard !m.isDir else { throw XCTSkip("needs a .qsent blob (QSENT_TEST_MODEL is a folder)") }
        let d = try DaemonProcess(mode: .bound, model: m.path, tag: tag)
        try d.waitReady()
        return (m, d)
    }

    /// Another valid model: the test blob with its classifier bias shifted (+1.5 / -1.5), every
    /// checksum recomputed. Different answers, different checksum.
    func otherModel() throws -> String {
        typealias H = BlobFormat.Header
        typealias E = BlobFormat.Entry
        let original = try TestEnv.model()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: original)))
        let table = try Blob(path: original).sectionTable
        guard let index = table.firstIndex(where: { $0.name == "head.classifier.bias" }) else {
            XCTFail("the test blob has no head.classifier.bias section"); throw DaemonTestError.exited
        }
        let s = table[index]
        for (k, delta) in [Float(1.5), -1.5].enumerated() {
            let at = s.offset + 4 * k
            let v = Float(bitPattern: UInt32(littleEndian: bytes[at..<(at + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
            withUnsafeBytes(of: (v + delta).bitPattern.littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
        }
        func put(_ value: UInt64, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<(offset + 8), with: $0) }
        }
        // Section table entries are in file order (the table lists sections by offset).
        put(XXH64.hash(Array(bytes[s.offset..<(s.offset + s.size)])), at: BlobFormat.entryOffset(index) + E.checksum.offset)
        put(XXH64.hash(Array(bytes[BlobFormat.headerSize..<BlobFormat.entryOffset(table.count)])), at: H.tableChecksum.offset)
        put(XXH64.hash(Array(bytes[H.checksummed])), at: H.headerChecksum.offset)
        let path = dir.appendingPathComponent("other.qsent").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// What `cp SRC DST` does to an existing DST: open it with O_TRUNC and write into the same
    /// inode. Writes the first `count` bytes (all by default); returns the descriptor, open.
    func writeInPlace(_ bytes: [UInt8], to path: String, count: Int? = nil) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_TRUNC)
        guard fd >= 0 else { throw IOError.last("open", path) }
        try writeAll(fd, bytes[0..<(count ?? bytes.count)])
        return fd
    }

    func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            guard n > 0 else { throw IOError.last("write", "model file") }
            done += n
        }
    }

    func classifyAll(_ c: LineConnection) throws -> [JSONValue] {
        var out: [JSONValue] = []
        for (i, t) in Self.texts.enumerated() {
            try c.send(Request(idJSON: String(i), body: .classify(t)).line)
            out.append(try parseAnswer(try c.readLine(timeoutMs: 60_000)))
        }
        return out
    }

    /// Whether the answers are the engine's classifications of `texts` (same labels, token
    /// counts and logits; batching composition moves logits by < 1e-4).
    func same(_ answers: [JSONValue], _ expected: [Classification]) -> Bool {
        guard answers.count == expected.count else { return false }
        for (v, c) in zip(answers, expected) {
            guard v["label"]?.value == .string(c.label), v["tokens"]?.value == .number(String(c.tokens)),
                  case .array(let ls)? = v["logits"]?.value, ls.count == c.logits.count else { return false }
            for (a, b) in zip(ls, c.logits) {
                guard case .number(let s) = a, let x = Float(s), abs(x - b) <= 1e-4 + 1e-4 * abs(b) else { return false }
            }
        }
        return true
    }

    func info(_ c: LineConnection) throws -> InfoAnswer {
        try c.send(#"{"op":"info"}"#)
        let v = try parseAnswer(try c.readLine(timeoutMs: 10_000))
        return try InfoAnswer(json: v)
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    func eventually(_ timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    func assertAlive(_ d: DaemonProcess, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(d.process.isRunning, "qsentd died (status \(d.waitExit(timeout: 0).map(String.init) ?? "?")) \(context):\n\(d.log)",
                      file: file, line: line)
    }

    func assertStopsWithin10s(_ d: DaemonProcess, file: StaticString = #filePath, line: UInt = #line) {
        let t0 = Date()
        d.signal(SIGTERM)
        let status = d.waitExit(timeout: 12)
        XCTAssertEqual(status, 0, "SIGTERM: exit status \(status.map(String.init) ?? "none within 12 s"):\n\(d.log)", file: file, line: line)
        XCTAssertLessThanOrEqual(Date().timeIntervalSince(t0), 10, "SIGTERM took too long", file: file, line: line)
    }

    // MARK: finding 5: truncated in place

    /// `truncate -s 1M model.qsent` while served. On main the next request touches a mapped page
    /// past the new end of file: SIGBUS kills the daemon. Now it keeps answering from its private
    /// copy, reports the problem, and takes the file back once a good copy is `cp`ed over it.
    func testTruncatedWhileServedKeepsAnsweringThenReloadsTheRestoredFile() throws {
        let (m, d) = try serve("trunc")
        defer { d.cleanup() }
        let engine = try Engine(path: m.original, options: EngineOptions(threads: 2))
        let expected = engine.classify(Self.texts)
        let c = try d.connect()
        XCTAssertTrue(same(try classifyAll(c), expected), "answers before the truncation")

        XCTAssertEqual(truncate(m.path, 1 << 20), 0)
        let right = try classifyAll(c)
        assertAlive(d, "after its model was truncated in place")
        XCTAssertTrue(same(right, expected), "answers right after the truncation differ from the engine's: \(right)")

        XCTAssertTrue(try eventually(Self.settle) { try info(c).modelProblem != nil }, "info never reported the truncated file:\n\(d.log)")
        let i = try info(c)
        XCTAssertEqual(i.checksum, engine.info.checksum, "info's checksum must stay the one of the model answering")
        XCTAssertTrue(i.modelProblem?.contains("truncated") == true && i.modelProblem?.contains(m.path) == true, i.modelProblem ?? "")
        XCTAssertTrue(d.log.contains("ERROR reload refused"), "no error-priority log line:\n\(d.log)")
        XCTAssertTrue(same(try classifyAll(c), expected), "answers while the file is truncated")
        try c.send(#"{"id":"r","op":"reload"}"#)
        let refusal = try c.readLine(timeoutMs: 60_000) ?? ""
        XCTAssertEqual(errorCode(try parseAnswer(refusal)), "reload_failed", refusal)
        XCTAssertTrue(refusal.contains("truncated"), refusal)

        // cp good.qsent model.qsent
        close(try writeInPlace([UInt8](try Data(contentsOf: URL(fileURLWithPath: m.original))), to: m.path))
        XCTAssertTrue(try eventually(Self.settle) { try info(c).modelProblem == nil }, "the restored file was not taken up:\n\(d.log)")
        XCTAssertEqual(try info(c).checksum, engine.info.checksum)
        XCTAssertTrue(same(try classifyAll(c), expected), "answers after the restore")
        assertAlive(d, "after the restore")
        assertStopsWithin10s(d)
    }

    // MARK: finding 5: another model copied in place

    /// `cp other.qsent model.qsent`. On main the mapping silently shows the new bytes while
    /// `info` keeps the old checksum. Now the new model is verified and swapped in: answers are
    /// the new model's and `info`'s checksum changes with them; never a mixture.
    func testAnotherModelCopiedInPlaceIsServedWithItsChecksum() throws {
        let (m, d) = try serve("cp")
        defer { d.cleanup() }
        let other = try otherModel()
        let old = try Engine(path: m.original, options: EngineOptions(threads: 2))
        let new = try Engine(path: other, options: EngineOptions(threads: 2))
        XCTAssertNotEqual(old.info.checksum, new.info.checksum)
        let oldAnswers = old.classify(Self.texts), newAnswers = new.classify(Self.texts)
        XCTAssertFalse(zip(oldAnswers, newAnswers).contains { $0.logits == $1.logits }, "the two models must answer differently")
        let c = try d.connect()
        XCTAssertTrue(same(try classifyAll(c), oldAnswers))
        XCTAssertEqual(try info(c).checksum, old.info.checksum)

        close(try writeInPlace([UInt8](try Data(contentsOf: URL(fileURLWithPath: other))), to: m.path))
        var switched = false
        let deadline = Date().addingTimeInterval(Self.settle)
        while Date() < deadline && !switched {
            // Read the checksum before and after the answers: when they agree, the answers must
            // be that model's.
            let before = try info(c).checksum
            let answers = try classifyAll(c)
            let after = try info(c).checksum
            assertAlive(d, "after another model was copied over its model")
            if before == after {
                let want = after == new.info.checksum ? newAnswers : oldAnswers
                XCTAssertTrue(after == new.info.checksum || after == old.info.checksum, "info shows checksum \(after) of neither model")
                guard same(answers, want) else {
                    return XCTFail("answers are not those of the model info names (\(after)): \(answers)")
                }
            }
            switched = after == new.info.checksum
            if !switched { usleep(200_000) }
        }
        XCTAssertTrue(switched, "info never showed the new model's checksum:\n\(d.log)")
        XCTAssertTrue(same(try classifyAll(c), newAnswers), "answers after the switch")
        XCTAssertNil(try info(c).modelProblem)
        XCTAssertTrue(d.log.contains("model file changed on disk"), d.log)
        assertStopsWithin10s(d)
    }

    // MARK: finding 5: half-written copy

    /// A copy interrupted halfway (the first half of another model written over the file in
    /// place). No answer may come from it: the old model keeps answering, `info` reports the
    /// problem. When the rest is written the new model takes over.
    func testHalfWrittenCopyIsNeverServed() throws {
        let (m, d) = try serve("half")
        defer { d.cleanup() }
        let other = try otherModel()
        let old = try Engine(path: m.original, options: EngineOptions(threads: 2))
        let new = try Engine(path: other, options: EngineOptions(threads: 2))
        let oldAnswers = old.classify(Self.texts), newAnswers = new.classify(Self.texts)
        let c = try d.connect()
        XCTAssertTrue(same(try classifyAll(c), oldAnswers))

        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: other)))
        let half = bytes.count / 2
        let fd = try writeInPlace(bytes, to: m.path, count: half)
        defer { close(fd) }
        // Long enough for the watch to see the file settle and try it (at least 3 polls).
        let until = Date().addingTimeInterval(4)
        while Date() < until {
            let answers = try classifyAll(c)
            assertAlive(d, "with a half-written model file")
            guard same(answers, oldAnswers) else { return XCTFail("an answer did not come from the complete old model: \(answers)") }
            usleep(200_000)
        }
        XCTAssertTrue(try eventually(Self.settle) { try info(c).modelProblem != nil }, "info never reported the half-written file:\n\(d.log)")
        XCTAssertEqual(try info(c).checksum, old.info.checksum)
        XCTAssertTrue(d.log.contains("ERROR reload refused"), d.log)

        try writeAll(fd, bytes[half...])
        XCTAssertTrue(try eventually(Self.settle) { try info(c).checksum == new.info.checksum }, "the completed file was not taken up:\n\(d.log)")
        XCTAssertNil(try info(c).modelProblem)
        XCTAssertTrue(same(try classifyAll(c), newAnswers), "answers after the copy completed")
        assertStopsWithin10s(d)
    }

    // MARK: finding 9: FIFO at the model path

    /// A FIFO renamed over the model path. `reload` must answer promptly with a clear error
    /// (nothing blocks on the FIFO), the old model keeps answering, `info` reports it, and
    /// SIGTERM still ends the daemon within 10 s. (On main the reload blocked in open(2) for a
    /// writer that never came, and SIGTERM took the full 60 s drain.)
    func testFIFOAtModelPathIsRefusedPromptly() throws {
        let (m, d) = try serve("fifo")
        defer { d.cleanup() }
        let engine = try Engine(path: m.original, options: EngineOptions(threads: 2))
        let expected = engine.classify(Self.texts)
        let fifo = dir.appendingPathComponent("fifo.tmp").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertEqual(rename(fifo, m.path), 0)
        let c = try d.connect()
        let t0 = Date()
        try c.send(#"{"id":"f","op":"reload"}"#)
        let line = try c.readLine(timeoutMs: 8000)
        XCTAssertNotNil(line, "reload with a FIFO at the model path did not answer within 8 s")
        if line != nil {
            XCTAssertLessThan(Date().timeIntervalSince(t0), 5, "reload on a FIFO was slow")
            XCTAssertEqual(errorCode(try parseAnswer(line)), "reload_failed", line ?? "")
            XCTAssertTrue(line?.contains("is a FIFO, not a regular file") == true, line ?? "")
        }
        XCTAssertTrue(same(try classifyAll(c), expected), "answers with a FIFO at the model path")
        XCTAssertTrue(try eventually(Self.settle) { try info(c).modelProblem?.contains("FIFO") == true },
                      "info does not report the FIFO:\n\(d.log)")
        assertAlive(d, "with a FIFO at the model path")
        assertStopsWithin10s(d)
    }
}
