import Foundation
import QsentIO
import QsentJSON
import QsentProtocol
import SystemPackage
import XCTest

/// Where the built binaries, the test model and scratch space are.
enum TestEnv {
    /// Package root (Tests/DaemonTests/Harness.swift -> ../..).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Directory holding `qsentd` and `qsent`: $QSENT_BIN_DIR, else the directory of the test
    /// bundle (SwiftPM puts the test runner next to the products of the same configuration).
    static func binDir() throws -> URL {
        var candidates: [URL] = []
        if let d = ProcessInfo.processInfo.environment["QSENT_BIN_DIR"], !d.isEmpty { candidates.append(URL(fileURLWithPath: d)) }
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
            candidates.append(b.bundleURL.deletingLastPathComponent())
            candidates.append(b.bundleURL)
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL)
        for c in candidates where FileManager.default.isExecutableFile(atPath: c.appendingPathComponent("qsentd").path)
            && FileManager.default.isExecutableFile(atPath: c.appendingPathComponent("qsent").path) {
            return c
        }
        throw XCTSkip("qsentd/qsent binaries not found next to the test bundle (looked in \(candidates.map(\.path))); build them (swift build --build-tests) or set QSENT_BIN_DIR")
    }

    static func qsentd() throws -> String { try binDir().appendingPathComponent("qsentd").path }
    static func qsent() throws -> String { try binDir().appendingPathComponent("qsent").path }

    /// The model the daemon tests serve: $QSENT_TEST_MODEL (a .qsent blob or an HF folder),
    /// else the committed int8 blob, which the product ships and which needs nothing from ../shared.
    static let defaultModel = packageRoot.appendingPathComponent("Quantizer/Models/distilbert-h384-imdb.qsent").path

    static var sharedRoot: URL {
        if let env = ProcessInfo.processInfo.environment["QSENT_SHARED"], !env.isEmpty { return URL(fileURLWithPath: env) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    static func model() throws -> String {
        if let m = ProcessInfo.processInfo.environment["QSENT_TEST_MODEL"], !m.isEmpty {
            guard FileManager.default.fileExists(atPath: m) else { throw XCTSkip("QSENT_TEST_MODEL=\(m) does not exist") }
            return m
        }
        guard FileManager.default.fileExists(atPath: defaultModel) else {
            throw XCTSkip("test model \(defaultModel) is absent (set QSENT_TEST_MODEL); skipping daemon tests")
        }
        return defaultModel
    }

    /// Some IMDB test reviews (shortest-ish first), for realistic inputs.
    static func reviews(_ n: Int) throws -> [String] {
        let url = sharedRoot.appendingPathComponent("data/imdb/test.jsonl")
        guard let h = FileHandle(forReadingAtPath: url.path) else {
            return (0..<n).map { "Review number \($0): the plot was \($0 % 2 == 0 ? "wonderful" : "dreadful")." }
        }
        defer { try? h.close() }
        let data = h.readData(ofLength: 4 << 20)
        var out: [String] = []
        for line in data.split(separator: 0x0A) {
            guard let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any], let t = o["text"] as? String else { continue }
            if t.utf8.count < 1500 { out.append(t) }
            if out.count == n { break }
        }
        return out
    }

    static func tempDir(_ tag: String) throws -> URL {
        // Short: sun_path holds at most 107 bytes.
        let base = URL(fileURLWithPath: "/tmp").appendingPathComponent("qdt-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        return base
    }

    /// `-E NAME` for each sanitizer setting that is set: systemd-socket-activate gives the daemon
    /// only TERM, PATH, HOME and LISTEN_*, so without this an activated qsentd under
    /// Tests/sanitize.sh would run with the sanitizer's defaults (reports on stderr, not in the
    /// run's log directory).
    static var forwardedToActivated: [String] {
        let env = ProcessInfo.processInfo.environment
        return ["ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS", "QSENT_TEST_SANITIZER"]
            .filter { env[$0] != nil }.flatMap { ["-E", $0] }
    }

    /// `address` or `thread` under Tests/sanitize.sh (QSENT_TEST_SANITIZER), else nil: a test
    /// whose work must fit a fixed product deadline sends less of it there (never a looser
    /// bound; docs/TESTING.md "Sanitizers").
    static var sanitizer: String? {
        ProcessInfo.processInfo.environment["QSENT_TEST_SANITIZER"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

/// A model path that can be broken and restored (for reload tests): a folder of symlinks for an
/// HF folder, or a copy of a blob. Files are replaced by rename, never rewritten in place
/// (the daemon maps blobs; see docs/PROTOCOL.md).
struct ScratchModel {
    let path: String
    let original: String
    let isDir: Bool

    init(from original: String, in dir: URL) throws {
        self.original = original
        var d: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: original, isDirectory: &d)
        isDir = d.boolValue
        let fm = FileManager.default
        if isDir {
            let m = dir.appendingPathComponent("model")
            try fm.createDirectory(at: m, withIntermediateDirectories: true)
            for f in try fm.contentsOfDirectory(atPath: original) {
                try fm.createSymbolicLink(atPath: m.appendingPathComponent(f).path, withDestinationPath: original + "/" + f)
            }
            path = m.path
        } else {
            path = dir.appendingPathComponent("model.qsent").path
            try fm.copyItem(atPath: original, toPath: path)
        }
    }

    /// The file whose content the reload must verify.
    private var target: String { isDir ? path + "/model.safetensors" : path }

    func breakIt() throws {
        let tmp = target + ".tmp"
        try Data("this is not a model\n".utf8 + [UInt8](repeating: 0xAB, count: 4096)).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, target) == 0 else { throw IOError.last("rename", tmp) }
    }

    func restore() throws {
        let tmp = target + ".tmp"
        if isDir {
            try FileManager.default.createSymbolicLink(atPath: tmp, withDestinationPath: original + "/model.safetensors")
        } else {
            try FileManager.default.copyItem(atPath: original, toPath: tmp)
        }
        guard rename(tmp, target) == 0 else { throw IOError.last("rename", tmp) }
    }
}

/// How the daemon gets its socket.
enum SocketMode: String {
    /// `systemd-socket-activate -l PATH --fdname=qsentd qsentd …` (LISTEN_FDS, sd_listen_fds_with_names).
    case activated
    /// qsentd binds --socket PATH itself.
    case bound
}

/// A running qsentd for one test. Immutable apart from `process`, which locks itself.
final class DaemonProcess: Sendable {
    let process: Child
    let socket: String
    let dir: URL
    let logURL: URL
    let mode: SocketMode

    init(mode: SocketMode, model: String, args: [String] = [], tag: String) throws {
        let qsentd = try TestEnv.qsentd()
        self.mode = mode
        dir = try TestEnv.tempDir(tag)
        socket = dir.appendingPathComponent("q.sock").path
        logURL = dir.appendingPathComponent("qsentd.log")
        let daemonArgs = ["--model", model, "--threads", "2"] + args
        let env: [String: String?] = ["QSENT_SOCKET": nil, "QSENT_MODEL": nil]
        switch mode {
        case .activated:
            guard let sa = TestEnv.which("systemd-socket-activate") else {
                throw XCTSkip("systemd-socket-activate is not installed (package systemd); skipping socket-activation tests")
            }
            process = try Child(sa, ["-l", socket, "--fdname=\(QsentDefaults.fdName)"] + TestEnv.forwardedToActivated + [qsentd] + daemonArgs, env: env,
                                stdoutPath: logURL.path, stderrPath: logURL.path)
        case .bound:
            process = try Child(qsentd, daemonArgs + ["--socket", socket], env: env,
                                stdoutPath: logURL.path, stderrPath: logURL.path)
        }
    }

    /// Waits until the daemon answers a ping (for socket activation the first connection starts it).
    func waitReady(timeout: TimeInterval = 120) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let st = process.wait(timeout: 0) { XCTFail("qsentd exited early (status \(st)):\n\(log)"); throw DaemonTestError.exited }
            if let c = try? LineConnection(path: socket) {
                if (try? c.send("{\"op\":\"ping\"}")) != nil, let a = try? c.readLine(timeoutMs: Int32(timeout * 1000)), a == "{\"ok\":true}" {
                    return
                }
            }
            usleep(50_000)
        }
        XCTFail("qsentd not ready after \(timeout) s:\n\(log)")
        throw DaemonTestError.timeout
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { process.signal(sig) }

    /// Waits for exit; returns the status (nil on timeout).
    @discardableResult
    func waitExit(timeout: TimeInterval = 60) -> Int32? { process.wait(timeout: timeout) }

    func stop() {
        if process.isRunning {
            signal(SIGTERM)
            if waitExit(timeout: 30) == nil { signal(SIGKILL); _ = process.waitForever() }
        }
    }

    func cleanup() {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }

    func connect() throws -> LineConnection { try LineConnection(path: socket) }
}


/// A child process started with posix_spawn and reaped with waitpid (Foundation's Process
/// cannot be used here: with a long-running child its monitor blocks reaping the others).
///
/// `@unchecked Sendable`: `status` is guarded by `lock`.
final class Child: @unchecked Sendable {
    let pid: pid_t
    private var status: Int32?
    private let lock = NSLock()

    /// stdin from `stdinPath` (or /dev/null), stdout and stderr appended to the given files.
    init(_ path: String, _ args: [String], env: [String: String?] = [:], stdinPath: String? = nil,
         stdoutPath: String, stderrPath: String, extraFD: (Int32, Int32)? = nil) throws {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, stdoutPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        posix_spawn_file_actions_addopen(&fa, 2, stderrPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        if let (from, to) = extraFD { posix_spawn_file_actions_adddup2(&fa, from, to) }
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        let cEnv = e.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let cArgs = ([path] + args).map { strdup($0) } + [nil]
        defer { cEnv.forEach { free($0) }; cArgs.forEach { free($0) } }
        var p: pid_t = 0
        let r = posix_spawn(&p, path, &fa, nil, cArgs, cEnv)
        guard r == 0 else { throw IOError("posix_spawn", path, errno: Errno(rawValue: r)) }
        pid = p
    }

    private func reap(block: Bool) -> Int32? {
        lock.lock(); defer { lock.unlock() }
        if let status { return status }
        var st: Int32 = 0
        let r = waitpid(pid, &st, block ? 0 : WNOHANG)
        if r == pid {
            // Exit code, or 128 + signal like a shell.
            status = (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
        }
        return status
    }

    var isRunning: Bool { reap(block: false) == nil }

    /// Waits up to `timeout` seconds; the exit status, or nil if still running.
    func wait(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = reap(block: false) { return s }
            usleep(10_000)
        }
        return reap(block: false)
    }

    func waitForever() -> Int32 { reap(block: true)! }

    func signal(_ sig: Int32) { if isRunning { kill(pid, sig) } }
}

enum DaemonTestError: Error { case exited, timeout, badAnswer(String) }

/// Systemd-style socket activation done by the test, for the idle-exit test: owns the listening
/// socket, starts qsentd (LISTEN_FDS=1 on fd 3, LISTEN_PID via `exec`) whenever a client is
/// waiting and no daemon runs. systemd-socket-activate cannot do this: it execs once.
///
/// `@unchecked Sendable`: `child`, `launchCount`, `statuses` and `stopping` are guarded by
/// `lock`; `thread` is set once by `start()` before the loop runs.
final class MiniActivator: @unchecked Sendable {
    let socket: String
    let listenFD: Int32
    private let argv: [String]
    private let logPath: String
    private let lock = NSLock()
    private var child: pid_t = 0
    private var launchCount = 0
    private var statuses: [Int32] = []
    private var stopping = false
    private var thread: Thread?

    init(socket: String, daemonArgs: [String], logPath: String) throws {
        self.socket = socket
        self.logPath = logPath
        let fd = try UnixSocket.make()
        try UnixSocket.bind(fd, path: socket)
        try UnixSocket.listen(fd, backlog: 64, context: socket)
        // Keep it away from 3 so dup2(fd, 3) really creates fd 3 without FD_CLOEXEC.
        let high = fcntl(fd.rawValue, F_DUPFD_CLOEXEC, 100)
        fd.closeQuietly()
        listenFD = high
        argv = ["/bin/sh", "-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", try TestEnv.qsentd()] + daemonArgs
    }

    func start() {
        let t = Thread { [self] in loop() }
        thread = t
        t.start()
    }

    private func spawn() {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        posix_spawn_file_actions_adddup2(&fa, listenFD, 3)
        posix_spawn_file_actions_addopen(&fa, 1, logPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        posix_spawn_file_actions_addopen(&fa, 2, logPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        var env = ProcessInfo.processInfo.environment
        env["LISTEN_FDS"] = "1"
        env["LISTEN_FDNAMES"] = QsentDefaults.fdName
        env["QSENT_SOCKET"] = nil
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let cArgs = argv.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        let r = posix_spawn(&pid, argv[0], &fa, nil, cArgs, cEnv)
        posix_spawn_file_actions_destroy(&fa)
        cEnv.forEach { free($0) }
        cArgs.forEach { free($0) }
        lock.lock()
        if r == 0 { child = pid; launchCount += 1 }
        lock.unlock()
    }

    private func loop() {
        while true {
            lock.lock()
            if stopping { lock.unlock(); return }
            var running = child != 0
            if running {
                var status: Int32 = 0
                if waitpid(child, &status, WNOHANG) == child {
                    statuses.append((status >> 8) & 0xff)
                    child = 0
                    running = false
                }
            }
            lock.unlock()
            if !running {
                var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 20) > 0 { spawn() }
            } else {
                usleep(20_000)
            }
        }
    }

    var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return child != 0 }
    /// Read under `lock`: the loop thread writes them (a bare read raced, ThreadSanitizer).
    var launches: Int { lock.lock(); defer { lock.unlock() }; return launchCount }
    var exitStatuses: [Int32] { lock.lock(); defer { lock.unlock() }; return statuses }

    func stop() {
        lock.lock()
        stopping = true
        let c = child
        lock.unlock()
        if c != 0 {
            kill(c, SIGTERM)
            var status: Int32 = 0
            waitpid(c, &status, 0)
        }
        close(listenFD)
        unlink(socket)
    }
}

/// Runs a command to completion, returning (status, stdout, stderr).
@discardableResult
func runTool(_ path: String, _ args: [String], env: [String: String] = [:], stdin: String? = nil, timeout: TimeInterval = 300) throws -> (Int32, String, String) {
    let dir = try TestEnv.tempDir("tool")
    defer { try? FileManager.default.removeItem(at: dir) }
    let inPath = dir.appendingPathComponent("in").path, outPath = dir.appendingPathComponent("out").path
    let errPath = dir.appendingPathComponent("err").path
    try Data((stdin ?? "").utf8).write(to: URL(fileURLWithPath: inPath))
    let c = try Child(path, args, env: env.mapValues { Optional($0) }, stdinPath: inPath, stdoutPath: outPath, stderrPath: errPath)
    guard let status = c.wait(timeout: timeout) else {
        c.signal(SIGKILL)
        _ = c.waitForever()
        throw DaemonTestError.timeout
    }
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return (status, out, err)
}

/// Parses an answer line, failing the test on non-JSON.
func parseAnswer(_ line: String?, file: StaticString = #filePath, line l: UInt = #line) throws -> JSONValue {
    guard let line else { XCTFail("connection closed instead of an answer", file: file, line: l); throw DaemonTestError.badAnswer("EOF") }
    do { return try JSONParser.parse(line) } catch {
        XCTFail("answer is not JSON: \(line)", file: file, line: l)
        throw DaemonTestError.badAnswer(line)
    }
}

func errorCode(_ v: JSONValue) -> String? {
    if case .string(let c)? = v["error"]?.value["code"]?.value { return c }
    return nil
}
