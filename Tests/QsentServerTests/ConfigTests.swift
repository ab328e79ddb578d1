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
        XCTAssertEqual(c.maxPipelineBytes, 4 << 20)
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
            "QSENT_MAX_LINE_BYTES": "4096", "QSENT_MAX_CLIENTS": "3", "QSENT_MAX_PIPELINE": "5", "QSENT_MAX_PIPELINE_BYTES": "65536", "QSENT_IDLE_TIMEOUT": "1.5",
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
        XCTAssertEqual(c.maxPipelineBytes, 65536)
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
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_THREADS": "two"]),
                       "QSENT_THREADS=two is not an integer: give an integer from 1 to 256")
        XCTAssertEqual(message(DaemonFlags(model: "m", threads: 0)), "--threads 0 is out of range: give an integer from 1 to 256")
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_MAX_TOKENS": "2"]),
                       "QSENT_MAX_TOKENS=2 is out of range: give an integer from 3 to 8192")
        XCTAssertEqual(message(DaemonFlags(model: "m", maxLineBytes: 63)),
                       "--max-line-bytes 63 is out of range: give an integer from 64 to 67108864")
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_IO_TIMEOUT": "soon"]),
                       "QSENT_IO_TIMEOUT=soon is not a number: give seconds from 0 to 86400 (0 = off)")
        XCTAssertEqual(message(DaemonFlags(model: "m", idleTimeout: -1)),
                       "--idle-timeout -1.0 is out of range: give seconds from 0 to 2592000 (0 = off)")
        XCTAssertEqual(message(DaemonFlags(model: "m", idleExit: .infinity)),
                       "--idle-exit inf is out of range: give seconds from 0 to 2592000 (0 = off)")
        XCTAssertEqual(message(DaemonFlags(model: "m", allowGID: "10,wheel")),
                       "--allow-gid: 'wheel' is not a numeric id (give ids like 0,1000; names are not looked up)")
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_ALLOW_UID": "root"]),
                       "QSENT_ALLOW_UID: 'root' is not a numeric id (give ids like 0,1000; names are not looked up)")
        XCTAssertEqual(message(DaemonFlags(model: "m"), ["QSENT_MLOCK": "maybe"]),
                       "QSENT_MLOCK=maybe is not a boolean: give 1 or 0 (also true/false, yes/no, on/off)")
        XCTAssertEqual(message(DaemonFlags(model: "m", logLevel: "loud")),
                       "log level 'loud' is not one of trace, debug, info, notice, warning, error, critical")
    }

    /// Issue 8 finding 4: huge timeouts passed validation, then trapped converting to UInt64
    /// nanoseconds. Every numeric option now has an upper bound, as flag and as variable.
    func testEveryNumericOptionHasAnUpperBound() {
        typealias L = DaemonConfig.Limits
        let ints: [(String, String, ClosedRange<Int>, (inout DaemonFlags, Int) -> Void)] = [
            ("threads", "QSENT_THREADS", L.threads, { $0.threads = $1 }),
            ("max-tokens", "QSENT_MAX_TOKENS", L.maxTokens, { $0.maxTokens = $1 }),
            ("max-batch", "QSENT_MAX_BATCH", L.maxBatch, { $0.maxBatch = $1 }),
            ("max-batch-tokens", "QSENT_MAX_BATCH_TOKENS", L.maxBatchTokens, { $0.maxBatchTokens = $1 }),
            ("max-queue", "QSENT_MAX_QUEUE", L.maxQueue, { $0.maxQueue = $1 }),
            ("max-line-bytes", "QSENT_MAX_LINE_BYTES", L.maxLineBytes, { $0.maxLineBytes = $1 }),
            ("max-clients", "QSENT_MAX_CLIENTS", L.maxClients, { $0.maxClients = $1 }),
            ("max-pipeline", "QSENT_MAX_PIPELINE", L.maxPipeline, { $0.maxPipeline = $1 }),
            ("max-pipeline-bytes", "QSENT_MAX_PIPELINE_BYTES", L.maxPipelineBytes, { $0.maxPipelineBytes = $1 }),
        ]
        for (option, env, range, set) in ints {
            for ok in [range.lowerBound, range.upperBound] {
                var f = DaemonFlags(model: "m")
                set(&f, ok)
                XCTAssertNil(message(f), "--\(option) \(ok)")
                XCTAssertNil(message(DaemonFlags(model: "m"), [env: "\(ok)"]), "\(env)=\(ok)")
            }
            for bad in [range.lowerBound - 1, range.upperBound + 1, Int.max] {
                var f = DaemonFlags(model: "m")
                set(&f, bad)
                XCTAssertEqual(message(f), "--\(option) \(bad) is out of range: give an integer from \(range.lowerBound) to \(range.upperBound)")
                XCTAssertEqual(message(DaemonFlags(model: "m"), [env: "\(bad)"]),
                               "\(env)=\(bad) is out of range: give an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            XCTAssertEqual(message(DaemonFlags(model: "m"), [env: "99999999999999999999"]),
                           "\(env)=99999999999999999999 is not an integer: give an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        let secs: [(String, String, ClosedRange<Double>, (inout DaemonFlags, Double) -> Void)] = [
            ("idle-exit", "QSENT_IDLE_EXIT", L.idleExit, { $0.idleExit = $1 }),
            ("idle-timeout", "QSENT_IDLE_TIMEOUT", L.idleTimeout, { $0.idleTimeout = $1 }),
            ("io-timeout", "QSENT_IO_TIMEOUT", L.ioTimeout, { $0.ioTimeout = $1 }),
        ]
        for (option, env, range, set) in secs {
            let want = "give seconds from 0 to \(Int(range.upperBound)) (0 = off)"
            var f = DaemonFlags(model: "m")
            set(&f, range.upperBound)
            XCTAssertEqual(try resolve(f).socketPath, QsentDefaults.socketPath, option)
            for bad in [1e10, 2e10, range.upperBound + 0.5, -0.001, .nan, .infinity] {
                var f = DaemonFlags(model: "m")
                set(&f, bad)
                XCTAssertEqual(message(f), "--\(option) \(bad) is out of range: \(want)")
            }
            for bad in ["1e10", "2e10", "nan", "-inf", "-1"] {
                XCTAssertEqual(message(DaemonFlags(model: "m"), [env: bad]), "\(env)=\(bad) is out of range: \(want)")
            }
        }
        // The largest accepted values convert to nanoseconds without trapping.
        XCTAssertEqual(DaemonConfig.nanos(L.idleExit.upperBound), 2_592_000_000_000_000)
        XCTAssertEqual(DaemonConfig.nanos(L.ioTimeout.upperBound), 86_400_000_000_000)
        XCTAssertEqual(DaemonConfig.nanos(0), 0)
        XCTAssertEqual(DaemonConfig.nanos(1.5), 1_500_000_000)
    }

    /// Issue 8 finding 10: `--allow-uid ''` denied everyone while `QSENT_ALLOW_UID=` allowed
    /// everyone. An empty list now means "no list" both ways (systemd EnvironmentFile lines like
    /// `QSENT_ALLOW_UID=` are placeholders; a list nobody may pass would make a useless daemon).
    func testEmptyAllowListMeansNoListAsFlagAndAsVariable() throws {
        for empty in ["", " ", ",", " , "] {
            let viaFlag = try resolve(DaemonFlags(model: "m", allowUID: empty, allowGID: empty))
            let viaEnv = try resolve(DaemonFlags(model: "m"), ["QSENT_ALLOW_UID": empty, "QSENT_ALLOW_GID": empty])
            XCTAssertNil(viaFlag.allowUIDs, "--allow-uid '\(empty)'")
            XCTAssertNil(viaFlag.allowGIDs, "--allow-gid '\(empty)'")
            XCTAssertEqual(viaFlag, viaEnv, "'\(empty)'")
        }
        // An empty uid list next to a gid list: only the gid list restricts.
        let c = try resolve(DaemonFlags(model: "m", allowUID: "", allowGID: "27"))
        XCTAssertNil(c.allowUIDs)
        XCTAssertEqual(c.allowGIDs, [27])
        // An empty flag still wins over a non-empty variable (the flag says: no uid list).
        XCTAssertNil(try resolve(DaemonFlags(model: "m", allowUID: ""), ["QSENT_ALLOW_UID": "1000"]).allowUIDs)
    }
}
