import QsentProtocol
import QsentServer
import XCTest

final class ConfigTests: XCTestCase {
    private func resolve(_ flags: DaemonFlags, _ env: [String: String] = [:]) throws -> DaemonConfig {
        try DaemonConfig.resolve(flags, env: env)
    }

    private func message(_ flags: DaemonFlags, _ env: [String: String] = [:]) -> String? {
        do { _ = try DaemonConfig.resolve(flags, env: env); return nil } catch { return error.message }
    }

    func testDefaults() throws {
        let c = try resolve(DaemonFlags(model: "m.qsent"))
        var expected = DaemonConfig(model: "m.qsent", socketPath: QsentDefaults.socketPath)
        expected.threads = 2
        XCTAssertEqual(c, expected)
        XCTAssertEqual(c.socketPath, "/run/qsentd/qsentd.sock")
        XCTAssertEqual(c.threads, 2)
        XCTAssertEqual(c.idleExit, 0)
        XCTAssertNil(c.maxTokens)
        XCTAssertEqual(c.maxBatch, 32)
        XCTAssertEqual(c.maxBatchTokens, 4096)
        XCTAssertEqual(c.maxQueue, 1024)
        XCTAssertEqual(c.maxQueueBytes, 64 << 20)
        XCTAssertEqual(c.maxLineBytes, 1 << 20)
        XCTAssertEqual(c.maxClients, 256)
        XCTAssertEqual(c.maxPipeline, 128)
        XCTAssertEqual(c.idleTimeout, 300)
        XCTAssertEqual(c.ioTimeout, 30)
        XCTAssertNil(c.allowUIDs)
        XCTAssertNil(c.allowGIDs)
        XCTAssertFalse(c.mlock)
        XCTAssertEqual(c.logLevel, .info)
    }

    func testEnvironmentFillsEveryOption() throws {
        let env = [
            "QSENT_MODEL": "/m", "QSENT_SOCKET": "/s.sock", "QSENT_THREADS": " 4 ", "QSENT_IDLE_EXIT": "600",
            "QSENT_MAX_TOKENS": "128", "QSENT_MAX_BATCH": "16", "QSENT_MAX_BATCH_TOKENS": "2048", "QSENT_MAX_QUEUE": "10",
            "QSENT_MAX_LINE_BYTES": "4096", "QSENT_MAX_CLIENTS": "3", "QSENT_MAX_PIPELINE": "5", "QSENT_IDLE_TIMEOUT": "1.5",
            "QSENT_IO_TIMEOUT": "0", "QSENT_ALLOW_UID": "0, 1000", "QSENT_ALLOW_GID": "27", "QSENT_MLOCK": "Yes",
            "QSENT_LOG_LEVEL": "DEBUG",
        ]
        let c = try resolve(DaemonFlags(), env)
        XCTAssertEqual(c.model, "/m")
        XCTAssertEqual(c.socketPath, "/s.sock")
        XCTAssertEqual(c.threads, 4)
        XCTAssertEqual(c.idleExit, 600)
        XCTAssertEqual(c.maxTokens, 128)
        XCTAssertEqual(c.maxBatch, 16)
        XCTAssertEqual(c.maxBatchTokens, 2048)
        XCTAssertEqual(c.maxQueue, 10)
        XCTAssertEqual(c.maxLineBytes, 4096)
        XCTAssertEqual(c.maxClients, 3)
        XCTAssertEqual(c.maxPipeline, 5)
        XCTAssertEqual(c.idleTimeout, 1.5)
        XCTAssertEqual(c.ioTimeout, 0)
        XCTAssertEqual(c.allowUIDs, [0, 1000])
        XCTAssertEqual(c.allowGIDs, [27])
        XCTAssertTrue(c.mlock)
        XCTAssertEqual(c.logLevel, .debug)
    }

    func testFlagsWinOverEnvironment() throws {
        let env = ["QSENT_MODEL": "/env", "QSENT_SOCKET": "/env.sock", "QSENT_THREADS": "8", "QSENT_MAX_BATCH": "not a number",
                   "QSENT_MLOCK": "1", "QSENT_LOG_LEVEL": "nonsense", "QSENT_ALLOW_UID": "x"]
        let c = try resolve(DaemonFlags(model: "/flag", socket: "/flag.sock", threads: 1, maxBatch: 2, allowUID: "7",
                                        mlock: false, logLevel: "error"), env)
        XCTAssertEqual(c.model, "/flag")
        XCTAssertEqual(c.socketPath, "/flag.sock")
        XCTAssertEqual(c.threads, 1)
        XCTAssertEqual(c.maxBatch, 2)
        XCTAssertEqual(c.allowUIDs, [7])
        XCTAssertFalse(c.mlock)
        XCTAssertEqual(c.logLevel, .error)
    }

    func testEmptyEnvironmentValuesAreUnset() throws {
        let c = try resolve(DaemonFlags(model: "/m"), ["QSENT_SOCKET": "", "QSENT_THREADS": "", "QSENT_IDLE_TIMEOUT": ""])
        XCTAssertEqual(c.socketPath, QsentDefaults.socketPath)
        XCTAssertEqual(c.threads, 2)
        XCTAssertEqual(c.idleTimeout, 300)
        XCTAssertFalse(try resolve(DaemonFlags(model: "/m"), ["QSENT_MLOCK": "0"]).mlock)
    }

    func testErrorsSayWhatToDo() {
        XCTAssertEqual(message(DaemonFlags()), "no model: pass --model PATH (a .qsent blob or an HF folder) or set QSENT_MODEL")
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_THREADS": "two"]), "QSENT_THREADS=two is not an integer")
        XCTAssertEqual(message(DaemonFlags(model: "m", threads: 0)), "qsent_threads must be >= 1, got 0")
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_MAX_TOKENS": "2"]), "qsent_max_tokens must be >= 3, got 2")
        XCTAssertEqual(message(DaemonFlags(model: "m", maxLineBytes: 63)), "qsent_max_line_bytes must be >= 64, got 63")
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_IO_TIMEOUT": "soon"]), "QSENT_IO_TIMEOUT=soon is not a number")
        XCTAssertEqual(message(DaemonFlags(model: "m", idleTimeout: -1)), "QSENT_IDLE_TIMEOUT must be a finite number >= 0")
        XCTAssertEqual(message(DaemonFlags(model: "m", idleExit: .infinity)), "QSENT_IDLE_EXIT must be a finite number >= 0")
        XCTAssertEqual(message(DaemonFlags(model: "m", allowGID: "10,wheel")), "QSENT_ALLOW_GID: 'wheel' is not a numeric id")
        XCTAssertEqual(message(DaemonFlags(model: "m", logLevel: "loud")),
                       "log level 'loud' is not one of trace, debug, info, notice, warning, error, critical")
    }
}
