import Foundation
import QsentClient
import QsentCore
import QsentProtocol
import QsentServer
import XCTest

/// The client library and the Python reference client against a live daemon.
final class ClientLibraryTests: XCTestCase {
    // nonisolated(unsafe): read and written only under `lock`.
    nonisolated(unsafe) private static var daemon: DaemonProcess?
    private static let lock = NSLock()

    override class func tearDown() {
        daemon?.cleanup()
        daemon = nil
        super.tearDown()
    }

    private func liveDaemon() throws -> DaemonProcess {
        Self.lock.lock(); defer { Self.lock.unlock() }
        if let d = Self.daemon, d.process.isRunning { return d }
        let d = try DaemonProcess(mode: .bound, model: try TestEnv.model(), args: ["--max-batch", "8"], tag: "client")
        try d.waitReady()
        Self.daemon = d
        return d
    }

    func testSwiftClientMatchesTheEngine() throws {
        let d = try liveDaemon()
        let engine = try Engine(path: try TestEnv.model(), options: EngineOptions(threads: 2))
        let texts = ["A wonderful, moving film.", "Dreadful.", "", "Ünïcödé 😀 “quotes”"]
        let expected = engine.classify(texts).map(ClassificationResult.init)
        let client = QsentClient(path: d.socket)
        defer { client.close() }
        try client.ping()
        let info = try client.info()
        XCTAssertEqual(info.model, engine.info.name)
        XCTAssertEqual(info.checksum, engine.info.checksum)
        XCTAssertEqual(info.labels, engine.info.labels)
        XCTAssertEqual(info.maxBatch, 8)
        XCTAssertEqual(info.version, QsentVersion.string)
        for (t, want) in zip(texts, expected) {
            let got = try client.classify(t)
            XCTAssertEqual(got.label, want.label, t)
            XCTAssertEqual(got.tokens, want.tokens, t)
            XCTAssertEqual(got.truncated, want.truncated, t)
            for (a, b) in zip(got.logits, want.logits) { XCTAssertEqual(a, b, accuracy: 1e-4 + 1e-4 * abs(b), t) }
        }
        let batch = try client.classify(batch: texts)
        XCTAssertEqual(batch.map(\.label), expected.map(\.label))
        let many = Array(repeating: texts, count: 10).flatMap { $0 }
        XCTAssertEqual(try client.classify(pipelined: many, window: 7).map(\.label), Array(repeating: expected.map(\.label), count: 10).flatMap { $0 })
        let stats = try client.stats()
        guard case .int(let n)? = stats[.requests] else { return XCTFail("no request count: \(stats)") }
        XCTAssertGreaterThanOrEqual(n, 4 + 1 + 40)
        // Every stats field the daemon writes is one the protocol knows, and the other way round.
        let raw = try Answer(line: try client.request(#"{"op":"stats"}"#))
        guard case .object(let members) = raw.value else { return XCTFail("stats not an object") }
        XCTAssertEqual(members.map(\.key), StatsAnswer.Field.allCases.map(\.rawValue))
        // Error answers come back typed.
        XCTAssertThrowsError(try client.classify(batch: Array(repeating: "x", count: 9))) { e in
            guard case QsentClientError.answer(let a)? = e as? QsentClientError else { return XCTFail("\(e)") }
            XCTAssertEqual(a.knownCode, .batchTooLarge)
        }
        // Unreachable: typed, with the path.
        XCTAssertThrowsError(try QsentClient(path: d.dir.appendingPathComponent("none.sock").path).ping()) { e in
            guard case QsentClientError.unreachable(let p, let io)? = e as? QsentClientError else { return XCTFail("\(e)") }
            XCTAssertTrue(p.hasSuffix("none.sock"))
            XCTAssertEqual(io.errno, .noSuchFileOrDirectory)
        }
    }

    func testPythonReferenceClient() throws {
        guard let python = TestEnv.which("python3") else {
            throw XCTSkip("python3 is not installed; skipping the docs/examples/qsent_client.py test")
        }
        let d = try liveDaemon()
        let script = TestEnv.packageRoot.appendingPathComponent("docs/examples/qsent_client.py").path
        let engine = try Engine(path: try TestEnv.model(), options: EngineOptions(threads: 2))
        let texts = ["I loved this movie", "worst film ever", ""]
        let expected = engine.classify(texts)

        var (s, out, err) = try runTool(python, [script, "--socket", d.socket, "ping"])
        XCTAssertEqual(s, 0, err)
        XCTAssertEqual(out, "true\n")

        (s, out, err) = try runTool(python, [script, "--socket", d.socket, "info"])
        XCTAssertEqual(s, 0, err)
        let info = try InfoAnswer(json: try parseAnswer(out.trimmingCharacters(in: .newlines)))
        XCTAssertEqual(info.model, engine.info.name)
        XCTAssertEqual(info.checksum, engine.info.checksum)

        (s, out, err) = try runTool(python, [script, "classify"] + texts, env: ["QSENT_SOCKET": d.socket])
        XCTAssertEqual(s, 0, err)
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, texts.count, out)
        for (i, l) in lines.enumerated() where i < expected.count {
            let v = try parseAnswer(String(l))
            XCTAssertEqual(v["id"]?.raw, String(i))
            let got = try ClassificationResult(json: v)
            XCTAssertEqual(got.label, expected[i].label)
            XCTAssertEqual(got.tokens, expected[i].tokens)
            XCTAssertEqual(got.score, expected[i].score, accuracy: 1e-4)
        }

        (s, out, err) = try runTool(python, [script, "--socket", d.socket, "stats"])
        XCTAssertEqual(s, 0, err)
        XCTAssertNotNil(try StatsAnswer(json: try parseAnswer(out.trimmingCharacters(in: .newlines)))[.requests])

        (s, _, err) = try runTool(python, [script, "--socket", d.dir.appendingPathComponent("none.sock").path, "ping"])
        XCTAssertEqual(s, 2, err)
        XCTAssertTrue(err.contains("cannot talk to qsentd"), err)
    }
}
