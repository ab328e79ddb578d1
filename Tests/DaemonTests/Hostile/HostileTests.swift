import Foundation
import QsentIO
import QsentProtocol
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Reproductions of issue 8's findings against the real qsentd, one test per finding (the
// model-file findings 5 and 9 are in ModelFileTests.swift). Each failed against the daemon
// before its fix, for the reason named in its comment (run against an older build with
// QSENT_BIN_DIR=DIR). Run them with:
//
//     swift test -c release --filter HostileTests
//
// Each test bounds its own time (no test waits more than ~30 s) and kills the daemon with
// SIGKILL at the end, so a hung daemon never holds the suite.

/// Milliseconds since `t`.
private func msSince(_ t: UInt64) -> Double { Double(Clock.monotonicNanos() - t) / 1e6 }

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
    let t0 = Clock.monotonicNanos()
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

/// A connection handed to one other thread.
///
/// `@unchecked Sendable`: after the hand-off only that thread uses `conn`; the test thread only
/// reads the immutable descriptor number `fd` (to poll it).
private final class Handoff: @unchecked Sendable {
    let conn: LineConnection
    let fd: Int32
    init(_ c: LineConnection) { conn = c; fd = c.fd.rawValue }
}

/// Deterministic long reviews: 40 parts are about 400 words (truncated at the model's 384
/// tokens); 4 parts about 70 tokens.
private func longReview(_ i: Int, parts: Int = 40) -> String {
    (0..<parts).map { "Review \(i) part \($0): the acting was \(($0 + i) % 3 == 0 ? "superb" : "dull") and the plot kept me guessing." }
        .joined(separator: " ")
}

final class HostileTests: XCTestCase {

    // MARK: finding 1: starvation

    /// 8 clients each pipeline 60 long reviews (and read their answers); an interactive client
    /// sends a short text every 0.5 s meanwhile. Bounds are ratios within one run, so a loaded
    /// machine slows both sides alike:
    /// - the interactive client's worst latency is at most a quarter of the time the heavy
    ///   clients take (FIFO: its first answer waits behind the whole backlog, about all of it;
    ///   22.6 s in the issue);
    /// - the heavy clients finish within 2x of each other (FIFO: 4.2 s to 23.6 s, 5.6x).
    ///
    /// Under a sanitizer the kernels run 30-70x slower (every memory access of the SIMD loops is
    /// a call into the runtime: `qsent eval` of the ASan build did 300 tokens/s with `--isa avx2`
    /// on the AVX-512 box, against about 20,000 unsanitized), and the 480 full-length reviews
    /// (184,000 tokens) did not finish in 240 s on AVX2 machines. There the heavy clients send
    /// 30 reviews of about 70 tokens each (17,000 tokens in all): the same contention, fewer
    /// tokens; the bounds, ratios, stay as they are.
    func testInteractiveClientIsNotStarvedByPipeliners() throws {
        let sanitized = TestEnv.sanitizer != nil
        let perClient = sanitized ? 30 : 60, parts = sanitized ? 4 : 40
        let d = try startDaemon([], tag: "starve")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        /// `@unchecked Sendable`: every field is guarded by `lock`.
        final class Finish: @unchecked Sendable {
            let lock = NSLock()
            var ms: [Double] = []
            var problems: [String] = []
        }
        let fin = Finish()
        let t0 = Clock.monotonicNanos()
        for c in 0..<8 {
            Thread.detachNewThread {
                do {
                    let conn = try d.connect()
                    var batch = ""
                    for r in 0..<perClient { batch += "{\"id\":\(c * 100 + r),\"text\":\"\(longReview(c * 100 + r, parts: parts))\"}\n" }
                    try conn.sendRaw(Array(batch.utf8))
                    for r in 0..<perClient {
                        guard let a = try conn.readLine(timeoutMs: 180_000), a.hasPrefix("{\"id\":\(c * 100 + r),\"label\"") else {
                            throw DaemonTestError.badAnswer("heavy client \(c) answer \(r) missing or wrong")
                        }
                    }
                    fin.lock.lock(); fin.ms.append(msSince(t0)); fin.lock.unlock()
                } catch {
                    fin.lock.lock(); fin.problems.append("\(error)"); fin.lock.unlock()
                }
            }
        }
        usleep(300_000)
        let interactive = try d.connect()
        var latencies: [Double] = []
        while msSince(t0) < 240_000 {
            fin.lock.lock(); let done = fin.ms.count + fin.problems.count; fin.lock.unlock()
            if done == 8 { break }
            let ts = Clock.monotonicNanos()
            try interactive.send("{\"id\":\"i\",\"text\":\"Great film.\"}")
            let answer = try interactive.readLine(timeoutMs: 180_000)
            latencies.append(msSince(ts))
            XCTAssertEqual(answer.map { $0.hasPrefix("{\"id\":\"i\",\"label\"") }, true, "interactive answer: \(answer ?? "EOF")")
            usleep(500_000)
        }
        fin.lock.lock(); let heavy = fin.ms, problems = fin.problems; fin.lock.unlock()
        XCTAssertEqual(problems, [])
        XCTAssertEqual(heavy.count, 8, "not every heavy client finished within 240 s")
        guard let first = heavy.min(), let last = heavy.max(), let worst = latencies.max() else { return XCTFail("no figures") }
        let summary = "8 heavy clients of \(perClient) reviews (\(parts) parts each) finished in \(Int(first))...\(Int(last)) ms; interactive latencies (ms): \(latencies.map { Int($0) })"
        XCTAssertLessThanOrEqual(worst, last / 4, "interactive client starved: \(summary)")
        XCTAssertLessThanOrEqual(last, first * 2, "heavy clients finished far apart: \(summary)")
        print("fairness: \(summary)")
    }

    // MARK: finding 2: --io-timeout on writes

    /// A client that sends many requests and never reads its answers: its answers fill the socket
    /// buffers and the writer blocks. With --io-timeout 2 the daemon must close the connection
    /// within a few seconds, and SIGTERM must then exit promptly. On main the writer blocks in
    /// send() forever (blocking socket; the timeout only applies after EAGAIN), so the connection
    /// is never closed.
    func testIoTimeoutClosesAClientThatDoesNotRead() throws {
        let d = try startDaemon(["--io-timeout", "2"], tag: "noread")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let c = Handoff(try d.connect())
        let id = String(repeating: "x", count: 8000)
        let line = Array("{\"op\":\"ping\",\"id\":\"\(id)\"}\n".utf8)
        // 400 x 8 KB answers (3.2 MB) exceed any socket buffer; send from a thread (our own send
        // blocks once the daemon stops reading).
        Thread.detachNewThread { for _ in 0..<400 { if (try? c.conn.sendRaw(line)) == nil { return } } }
        let closed = waitPeerClosed(c.fd, timeout: 12)
        XCTAssertTrue(closed, "a client that never reads kept its connection 12 s with --io-timeout 2")
        assertSigtermExitsWithin10s(d, "with a non-reading client")
    }

    // MARK: finding 3: memory bounded in bytes

    /// Four clients pipeline 1 MB lines (`ping` with a 1 MB id) and never read. RssAnon must stay
    /// <= 512 MB (issue 8's bound). On main the bound is in lines (128 per connection), so it
    /// climbs past 1.4 GB; the test stops as soon as the bound is crossed.
    func testPipelinedMegabyteLinesStayWithinMemoryBound() throws {
        let d = try startDaemon(["--io-timeout", "60"], tag: "mem")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let id = String(repeating: "m", count: 1_000_000)
        let line = Array("{\"op\":\"ping\",\"id\":\"\(id)\"}\n".utf8)
        for _ in 0..<4 {
            let c = Handoff(try d.connect())
            // The senders end when the daemon is killed at the end of the test.
            Thread.detachNewThread { for _ in 0..<300 { if (try? c.conn.sendRaw(line)) == nil { return } } }
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
        print("memory: 4 clients pipelining 1 MB lines without reading for 20 s: RssAnon peak \(peak >> 20) MiB")
    }

    /// The rest of issue 8's done-when for findings 2 and 3: the same four clients with
    /// --io-timeout 3 are closed (on main they were kept for good), RssAnon then falls back to
    /// near its idle level (on main about 250 MB stayed: no malloc_trim), and SIGTERM exits
    /// within 10 s.
    /// How far above idle RssAnon may stay once a burst is over (measured: idle 27 MiB, 28 MiB
    /// after the trim; the burst's peak is about 77 MiB).
    static let returnSlack = 8 << 20

    func testNonReadingClientsAreClosedAndMemoryReturns() throws {
        let d = try startDaemon(["--io-timeout", "3"], tag: "memback")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        usleep(1_500_000)  // let the start-up trim run
        guard let idle = rssAnon(d.process.pid) else { return XCTFail("no RssAnon") }
        let id = String(repeating: "m", count: 1_000_000)
        let line = Array("{\"op\":\"ping\",\"id\":\"\(id)\"}\n".utf8)
        var clients: [Handoff] = []
        for _ in 0..<4 {
            let c = Handoff(try d.connect())
            clients.append(c)
            Thread.detachNewThread { for _ in 0..<300 { if (try? c.conn.sendRaw(line)) == nil { return } } }
        }
        var peak = 0
        let t0 = Clock.monotonicNanos()
        var closedAfterMs: [Double] = []
        for c in clients {
            let closed = waitPeerClosed(c.fd, timeout: 20)
            XCTAssertTrue(closed, "a client that never reads kept its connection 20 s with --io-timeout 3")
            closedAfterMs.append(msSince(t0))
            peak = max(peak, rssAnon(d.process.pid) ?? 0)
        }
        XCTAssertLessThanOrEqual(peak, 512 << 20, "RssAnon reached \(peak >> 20) MB")
        // Back near idle within 5 s (one quiet second, then the daemon's malloc_trim): at most
        // `Self.returnSlack` above it. The burst's peak is only about 50 MiB above idle, so a
        // looser bound would pass with nothing returned. Not under a sanitizer: there freed
        // memory belongs to the sanitizer's allocator (ASan holds it in its 256 MB quarantine so
        // that use-after-free is caught), which malloc_trim does not touch, so RssAnon after the
        // burst measures the sanitizer, not qsentd (docs/TESTING.md "Sanitizers"); the closing,
        // peak and SIGTERM checks still run there.
        var afterBurst = "return to idle not checked under a sanitizer"
        if TestEnv.sanitizer == nil {
            var after = Int.max
            let t1 = Clock.monotonicNanos()
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline {
                after = rssAnon(d.process.pid) ?? 0
                if after <= idle + Self.returnSlack { break }
                usleep(100_000)
            }
            XCTAssertLessThanOrEqual(after, idle + Self.returnSlack,
                                     "RssAnon stayed at \(after >> 20) MiB after the burst (idle \(idle >> 20) MiB): is the daemon still trimming the heap once a burst is over (MemoryTrim)?")
            afterBurst = "after \(after >> 20) MiB (\(Int(msSince(t1))) ms after the last close)"
        }
        print("memory: idle RssAnon \(idle >> 20) MiB, peak \(peak >> 20) MiB, \(afterBurst); non-reading clients closed after \(closedAfterMs.map { Int($0) }) ms")
        assertSigtermExitsWithin10s(d, "after non-reading clients")
    }

    // MARK: finding 4: huge timeout values

    /// Each huge value must either be refused at start with a message naming the flag (exit code
    /// 64 or any ordinary non-zero code, not a signal), or be accepted and survive a connection and
    /// SIGTERM (exit 0). On main all three pass validation and then trap on a Double -> UInt64
    /// conversion (SIGILL, status 132): --idle-exit at start, --idle-timeout at the first
    /// connection, --io-timeout at SIGTERM.
    func testHugeTimeoutFlagsNeverCrash() throws {
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

    // MARK: finding 8: unterminated last line

    /// `printf '{"op":"ping"}' | socat - UNIX:…`: a last line without "\n" before the client
    /// half-closes must be answered (HF-style line readers accept it). On main it is dropped: EOF.
    func testUnterminatedLastLineIsAnswered() throws {
        let d = try startDaemon([], tag: "noeol")
        defer { kill9(d) }
        XCTAssertTrue(pingWhenUp(d), "daemon did not start:\n\(d.log)")
        let c = try d.connect()
        try c.sendRaw(Array("{\"op\":\"ping\",\"id\":7}".utf8))
        c.shutdownWrite()
        let a = try c.readLine(timeoutMs: 10_000)
        XCTAssertEqual(a, "{\"id\":7,\"ok\":true}", "unterminated last line got no answer")
    }

    // MARK: finding 10: empty allow-list

    /// `--allow-uid ''` and `QSENT_ALLOW_UID=` must mean the same thing (likewise for gid).
    /// On main the flag denies everyone and the empty variable allows everyone.
    func testEmptyAllowListMeansTheSameAsFlagAndEnvironment() throws {
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
