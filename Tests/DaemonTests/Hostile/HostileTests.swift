import Foundation
import QsentProtocol
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Reproductions of issue 8's findings against the real qsentd, one test per finding.
//
// GATED: every test here SKIPS unless QSENT_HOSTILE=1 is set. They fail on main as of issue 8
// (each for the reason named in its comment) and must pass once the server fixes land; the
// gate keeps the suite green until then. Remove the gate (`try hostileGate()`) test by test as
// each fix is merged. Run them with:
//
//     QSENT_HOSTILE=1 swift test -c release --filter HostileTests
//
// Each test bounds its own time (no test waits more than ~30 s) and kills the daemon with
// SIGKILL at the end, so a hung daemon never holds the suite.

private func hostileGate() throws {
    guard ProcessInfo.processInfo.environment["QSENT_HOSTILE"] == "1" else {
        throw XCTSkip("issue 8 reproduction; fails until the fix lands; set QSENT_HOSTILE=1 to run")
    }
}

/// Milliseconds since `t`.
private func msSince(_ t: UInt64) -> Double { Double(Sys.monotonicNanos() - t) / 1e6 }

/// A daemon that is started but not waited for: some flags under test make it exit at once.
private func startDaemon(_ args: [String], tag: String, model: String? = nil) throws -> DaemonProcess {
    try DaemonProcess(mode: .bound, model: model ?? TestEnv.model(), args: args, tag: tag)
}

/// Pings until answered; false if the daemon exited first or `timeout` passed.
private func pingWhenUp(_ d: DaemonProcess, timeout: TimeInterval = 60) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if !d.process.isRunning { return false }
        if let c = try? d.connect(), (try? c.send("{\"op\":\"ping\"}")) != nil,
           let a = try? c.readLine(timeoutMs: 5000), a == "{\"ok\":true}" {
            return true
        }
        usleep(50_000)
    }
    return false
}

/// SIGTERM must end the daemon within 10 s (issue 8's bound); waits at most 12 s.
private func assertSigtermExitsWithin10s(_ d: DaemonProcess, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
    let t0 = Sys.monotonicNanos()
    d.signal(SIGTERM)
    let st = d.waitExit(timeout: 12)
    XCTAssertNotNil(st, "SIGTERM did not end qsentd within 12 s \(context)", file: file, line: line)
    if st != nil { XCTAssertLessThanOrEqual(msSince(t0), 10_000, "SIGTERM exit took too long \(context)", file: file, line: line) }
}

private func kill9(_ d: DaemonProcess) {
    d.signal(SIGKILL)
    _ = d.waitExit(timeout: 10)
    d.cleanup()
}

/// RssAnon of `pid` in bytes (nil if the process is gone).
private func rssAnon(_ pid: pid_t) -> Int? {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in s.split(separator: "\n") where line.hasPrefix("RssAnon:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return nil
}

/// Waits until the peer has closed `fd` (POLLHUP / POLLRDHUP), without reading; true if it did.
private func waitPeerClosed(_ fd: Int32, timeout: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    let rdhup: Int16 = 0x2000  // POLLRDHUP (Linux; Glibc exports it only with _GNU_SOURCE)
    let closedMask: Int16 = rdhup | Int16(POLLHUP) | Int16(POLLERR)
    while Date() < deadline {
        var p = pollfd(fd: fd, events: rdhup, revents: 0)
        let r = poll(&p, 1, 100)
        if r > 0 && (p.revents & closedMask) != 0 { return true }
    }
    return false
}

/// Deterministic long reviews (about 400 words: truncated at the model's 384 tokens).
private func longReview(_ i: Int) -> String {
    (0..<40).map { "Review \(i) part \($0): the acting was \(($0 + i) % 3 == 0 ? "superb" : "dull") and the plot kept me guessing." }
        .joined(separator: " ")
}

final class HostileTests: XCTestCase {

    // MARK: finding 1: starvation

    /// 8 clients pipeline 60 long reviews each; an interactive client then sends a short text.
    /// Its first answer must come within 1 s (issue 8's bound for the max). On main the batcher
    /// is FIFO: it waits behind the whole queue (22.6 s in the issue), so this times out at 8 s.
    func testInteractiveClientIsNotStarvedByPipeliners() throws {
        try hostileGate()
        let d = try startDaemon([], tag: "starve")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        var heavy: [LineConnection] = []
        for c in 0..<8 {
            let conn = try d.connect()
            heavy.append(conn)
            var batch = ""
            for r in 0..<60 { batch += "{\"id\":\(c * 100 + r),\"text\":\"\(longReview(c * 100 + r))\"}\n" }
            // The pipeliners read their answers (they are heavy, not hostile) on their own threads.
            Thread.detachNewThread { while (try? conn.readLine(timeoutMs: 30_000)) != nil {} }
            try conn.sendRaw(Array(batch.utf8))
        }
        usleep(300_000)
        let interactive = try d.connect()
        let t0 = Sys.monotonicNanos()
        try interactive.send("{\"id\":\"i\",\"text\":\"Great film.\"}")
        let answer = try? interactive.readLine(timeoutMs: 8000)
        let ms = msSince(t0)
        XCTAssertNotNil(answer, "interactive client got no answer within 8 s behind 8 x 60 pipelined reviews (FIFO starvation)")
        XCTAssertLessThanOrEqual(ms, 1000, "interactive client's first answer took \(Int(ms)) ms behind 8 pipelining clients")
        heavy.forEach { $0.shutdownWrite() }
    }

    // MARK: finding 2: --io-timeout on writes

    /// A client that sends many requests and never reads its answers: its answers fill the socket
    /// buffers and the writer blocks. With --io-timeout 2 the daemon must close the connection
    /// within a few seconds, and SIGTERM must then exit promptly. On main the writer blocks in
    /// send() forever (blocking socket; the timeout only applies after EAGAIN), so the connection
    /// is never closed.
    func testIoTimeoutClosesAClientThatDoesNotRead() throws {
        try hostileGate()
        let d = try startDaemon(["--io-timeout", "2"], tag: "noread")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let c = try d.connect()
        let id = String(repeating: "x", count: 8000)
        let line = Array("{\"op\":\"ping\",\"id\":\"\(id)\"}\n".utf8)
        // 400 x 8 KB answers (3.2 MB) exceed any socket buffer; send from a thread (our own send
        // blocks once the daemon stops reading).
        Thread.detachNewThread { for _ in 0..<400 { if (try? c.sendRaw(line)) == nil { return } } }
        let closed = waitPeerClosed(c.fd, timeout: 12)
        XCTAssertTrue(closed, "a client that never reads kept its connection 12 s with --io-timeout 2")
        assertSigtermExitsWithin10s(d, "with a non-reading client")
    }

    // MARK: finding 3: memory bounded in bytes

    /// Four clients pipeline 1 MB lines (`ping` with a 1 MB id) and never read. RssAnon must stay
    /// <= 512 MB (issue 8's bound). On main the bound is in lines (128 per connection), so it
    /// climbs past 1.4 GB; the test stops as soon as the bound is crossed.
    func testPipelinedMegabyteLinesStayWithinMemoryBound() throws {
        try hostileGate()
        let d = try startDaemon(["--io-timeout", "60"], tag: "mem")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let id = String(repeating: "m", count: 1_000_000)
        let line = Array("{\"op\":\"ping\",\"id\":\"\(id)\"}\n".utf8)
        var conns: [LineConnection] = []
        for _ in 0..<4 {
            let c = try d.connect()
            conns.append(c)
            Thread.detachNewThread { for _ in 0..<300 { if (try? c.sendRaw(line)) == nil { return } } }
        }
        var peak = 0
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, let r = rssAnon(d.process.pid) {
            peak = max(peak, r)
            if peak > 512 << 20 { break }
            usleep(200_000)
        }
        XCTAssertTrue(d.process.isRunning, "qsentd died under 1 MB pipelined lines:\n\(d.log)")
        XCTAssertLessThanOrEqual(peak, 512 << 20, "RssAnon reached \(peak >> 20) MB with 4 clients pipelining 1 MB lines without reading")
        conns.forEach { $0.close() }
    }

    // MARK: finding 4: huge timeout values

    /// Each huge value must either be refused at start with a message naming the flag (exit code
    /// 64 or any ordinary non-zero code, not a signal), or be accepted and survive a connection and
    /// SIGTERM (exit 0). On main all three pass validation and then trap on a Double -> UInt64
    /// conversion (SIGILL, status 132): --idle-exit at start, --idle-timeout at the first
    /// connection, --io-timeout at SIGTERM.
    func testHugeTimeoutFlagsNeverCrash() throws {
        try hostileGate()
        for (flag, value) in [("--io-timeout", "1e10"), ("--idle-timeout", "2e10"), ("--idle-exit", "2e10")] {
            let d = try startDaemon([flag, value], tag: "huge")
            defer { kill9(d) }
            let up = pingWhenUp(d, timeout: 60)
            if !up {
                let st = d.waitExit(timeout: 5)
                XCTAssertNotNil(st, "\(flag) \(value): daemon neither answered nor exited")
                if let st {
                    XCTAssertTrue(st != 0 && st < 128, "\(flag) \(value): exited with status \(st) (a signal if > 128):\n\(d.log)")
                    if st != 0 && st < 128 { XCTAssertTrue(d.log.contains(flag.dropFirst(2)) || d.log.uppercased().contains(flag.dropFirst(2).uppercased().replacingOccurrences(of: "-", with: "_")),
                                  "\(flag) \(value): refusal does not name the flag:\n\(d.log)") }
                }
                continue
            }
            d.signal(SIGTERM)
            let st = d.waitExit(timeout: 15)
            XCTAssertEqual(st, 0, "\(flag) \(value): accepted, but SIGTERM ended it with status \(st.map(String.init) ?? "none (still running)"):\n\(d.log)")
        }
    }

    // MARK: finding 5: model changed in place

    /// The served blob is truncated in place (`truncate -s 1M`). The next request must get an
    /// answer (an error is fine) and the daemon must live. On main the request touches a mapped
    /// page past the new end of file: SIGBUS kills the daemon and the request gets no answer.
    func testModelTruncatedInPlaceDoesNotKillDaemon() throws {
        try hostileGate()
        let dir = try TestEnv.tempDir("trunc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try ScratchModel(from: TestEnv.model(), in: dir)
        guard !m.isDir else { throw XCTSkip("needs a .qsent blob (QSENT_TEST_MODEL is a folder)") }
        let d = try startDaemon([], tag: "trunc", model: m.path)
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        XCTAssertEqual(truncate(m.path, 1 << 20), 0)
        let c = try d.connect()
        try c.send("{\"id\":1,\"text\":\"A wonderful, moving film.\"}")
        let a = try? c.readLine(timeoutMs: 10_000)
        XCTAssertNotNil(a, "no answer after the model was truncated in place")
        usleep(200_000)
        XCTAssertTrue(d.process.isRunning, "qsentd died (status \(d.waitExit(timeout: 0).map(String.init) ?? "?")) after its model was truncated in place:\n\(d.log)")
    }

    /// The served blob is overwritten in place (same size, weights garbled, as a `cp` of another
    /// file would). The daemon must not answer from the changed bytes: the same text must get the
    /// same logits as before, or an error. On main the mapping shows the new bytes: the answer
    /// changes while `info` still reports the old checksum.
    func testModelOverwrittenInPlaceNeverAnswersFromChangedFile() throws {
        try hostileGate()
        let dir = try TestEnv.tempDir("overw")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try ScratchModel(from: TestEnv.model(), in: dir)
        guard !m.isDir else { throw XCTSkip("needs a .qsent blob (QSENT_TEST_MODEL is a folder)") }
        let d = try startDaemon([], tag: "overw", model: m.path)
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let c = try d.connect()
        let ask = "{\"id\":1,\"text\":\"A wonderful, moving film with superb acting.\"}"
        try c.send(ask)
        let before = try parseAnswer(c.readLine(timeoutMs: 10_000))
        guard let beforeLogits = before["logits"]?.raw else { return XCTFail("no logits: \(before)") }
        try c.send("{\"op\":\"info\"}")
        let oldSum = try parseAnswer(c.readLine(timeoutMs: 10_000))["checksum"]?.raw

        // Overwrite everything past the first MB in place with a pattern (size unchanged).
        let fd = open(m.path, O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let size = Int((try FileManager.default.attributesOfItem(atPath: m.path)[.size] as? NSNumber)?.intValue ?? 0)
        let junk = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
        var off = 1 << 20
        while off < size {
            let n = min(junk.count, size - off)
            XCTAssertEqual(junk.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(off)) }, n)
            off += n
        }
        close(fd)

        try c.send(ask)
        let after = try parseAnswer(c.readLine(timeoutMs: 10_000))
        try c.send("{\"op\":\"info\"}")
        let newSum = try? parseAnswer(c.readLine(timeoutMs: 10_000))["checksum"]?.raw
        if errorCode(after) == nil {
            XCTAssertEqual(after["logits"]?.raw, beforeLogits,
                           "answer changed after the model was overwritten in place (info checksum before \(oldSum ?? "nil"), after \(newSum ?? "nil"))")
        }
    }

    // MARK: finding 8: unterminated last line

    /// `printf '{"op":"ping"}' | socat - UNIX:…`: a last line without "\n" before the client
    /// half-closes must be answered (HF-style line readers accept it). On main it is dropped: EOF.
    func testUnterminatedLastLineIsAnswered() throws {
        try hostileGate()
        let d = try startDaemon([], tag: "noeol")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let c = try d.connect()
        try c.sendRaw(Array("{\"op\":\"ping\",\"id\":7}".utf8))
        c.shutdownWrite()
        let a = try c.readLine(timeoutMs: 10_000)
        XCTAssertEqual(a, "{\"id\":7,\"ok\":true}", "unterminated last line got no answer")
    }

    // MARK: finding 9: FIFO at the model path

    /// The model path is replaced (by rename) with a FIFO and a reload is asked. The reload must
    /// be refused promptly (not a regular file), and SIGTERM must still exit quickly. On main the
    /// loader opens the FIFO for reading and blocks for a writer that never comes: the reload and
    /// its connection hang.
    func testReloadNeverBlocksOnAFifo() throws {
        try hostileGate()
        let dir = try TestEnv.tempDir("fifo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try ScratchModel(from: TestEnv.model(), in: dir)
        guard !m.isDir else { throw XCTSkip("needs a .qsent blob (QSENT_TEST_MODEL is a folder)") }
        let d = try startDaemon([], tag: "fifo", model: m.path)
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let fifo = dir.appendingPathComponent("fifo.tmp").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertEqual(rename(fifo, m.path), 0)
        let c = try d.connect()
        try c.send("{\"op\":\"reload\",\"id\":1}")
        let a = try? c.readLine(timeoutMs: 8000)
        XCTAssertNotNil(a, "reload with a FIFO at the model path did not answer within 8 s")
        if let a { XCTAssertEqual(errorCode(try parseAnswer(a)), "reload_failed", a) }
        assertSigtermExitsWithin10s(d, "after a reload on a FIFO")
    }

    // MARK: finding 10: empty allow-list

    /// `--allow-uid ''` and `QSENT_ALLOW_UID=` must mean the same thing (likewise for gid).
    /// On main the flag denies everyone and the empty variable allows everyone.
    func testEmptyAllowListMeansTheSameAsFlagAndEnvironment() throws {
        try hostileGate()
        for (flag, env) in [("--allow-uid", "QSENT_ALLOW_UID"), ("--allow-gid", "QSENT_ALLOW_GID")] {
            let viaFlag = try pingAllowed(args: [flag, ""], env: [:], tag: "alf")
            let viaEnv = try pingAllowed(args: [], env: [env: ""], tag: "ale")
            XCTAssertEqual(viaFlag, viaEnv, "\(flag) '' \(viaFlag ? "allows" : "denies") us, \(env)= \(viaEnv ? "allows" : "denies") us")
        }
    }

    /// Starts qsentd with `args` and extra environment, connects, pings: was it answered?
    private func pingAllowed(args: [String], env: [String: String], tag: String) throws -> Bool {
        let dir = try TestEnv.tempDir(tag)
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = dir.appendingPathComponent("q.sock").path
        let log = dir.appendingPathComponent("qsentd.log").path
        var e: [String: String?] = ["QSENT_SOCKET": nil, "QSENT_MODEL": nil, "QSENT_ALLOW_UID": nil, "QSENT_ALLOW_GID": nil]
        for (k, v) in env { e[k] = v }
        let child = try Child(TestEnv.qsentd(), ["--model", TestEnv.model(), "--threads", "1", "--socket", socket] + args,
                              env: e, stdoutPath: log, stderrPath: log)
        defer { child.signal(SIGKILL); _ = child.waitForever() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, child.isRunning {
            // Ready once the socket accepts; then the first answer tells allowed from refused.
            if let c = try? LineConnection(path: socket) {
                // A refused peer may be closed before or after our line: both mean "denied".
                guard (try? c.send("{\"op\":\"ping\"}")) != nil, let a = try? c.readLine(timeoutMs: 10_000) else { return false }
                return a == "{\"ok\":true}"
            }
            usleep(50_000)
        }
        XCTFail("qsentd \(args) \(env) did not come up:\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        return false
    }
}
