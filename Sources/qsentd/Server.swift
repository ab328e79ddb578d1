import Dispatch
import Foundation
import Logging
import QsentCore
import QsentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The daemon: loads the model, listens, accepts, runs the inference worker, handles signals,
/// reload, idle exit and graceful shutdown.
final class Server: @unchecked Sendable {
    let config: DaemonConfig
    let logger: Logger
    let stats = Stats()
    let queue: WorkQueue

    /// Read end of the wake pipe: becomes readable (forever) once shutdown starts.
    private(set) var wakeFD: Int32 = -1
    private var wakeWriteFD: Int32 = -1

    private let stateLock = NSLock()
    /// Set in `run()` before any thread that reads it starts.
    private var engine: Engine!
    private var draining = false
    private var shutdownReason = ""
    private var connections: [Int: Connection] = [:]
    private var nextConnID = 1
    private var idleSince = Sys.monotonicNanos()
    private var heartbeat = Sys.monotonicNanos()
    private let reloadLock = NSLock()
    private var signalSources: [DispatchSourceSignal] = []
    private let signalQueue = DispatchQueue(label: "qsentd.signals")
    private let workerDone = DispatchSemaphore(value: 0)

    init(config: DaemonConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.queue = WorkQueue(capacity: config.maxQueue, capacityBytes: config.maxQueueBytes)
        var fds: [Int32] = [0, 0]
        if pipe(&fds) != 0 { throw SystemCallError("pipe", "wake pipe", errno: errno) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wakeFD = fds[0]
        wakeWriteFD = fds[1]
        signal(SIGPIPE, SIG_IGN)
    }

    var isDraining: Bool { stateLock.lock(); defer { stateLock.unlock() }; return draining }

    var currentEngine: Engine { stateLock.lock(); defer { stateLock.unlock() }; return engine }

    /// Loads and verifies (Engine init verifies) a model, then runs one warm-up inference.
    private static func loadEngine(config: DaemonConfig, logger: Logger) throws -> Engine {
        let t0 = Sys.monotonicNanos()
        let e = try Engine(path: config.model, options: EngineOptions(threads: config.threads, maxTokens: config.maxTokens))
        let t1 = Sys.monotonicNanos()
        _ = e.classify(["qsentd warm-up: this sentence exercises every layer once."])
        let t2 = Sys.monotonicNanos()
        if config.mlock {
            if mlockall(MCL_CURRENT) != 0 {
                throw SystemCallError("mlockall", "--mlock (raise LimitMEMLOCK= / RLIMIT_MEMLOCK or grant CAP_IPC_LOCK)", errno: errno)
            }
        }
        let i = e.info
        logger.info("model loaded", metadata: [
            "name": "\(i.name)", "precision": "\(i.precision)", "isa": "\(i.isa)", "checksum": "\(i.checksum)",
            "max_tokens": "\(i.maxTokens)", "load_ms": "\((t1 - t0) / 1_000_000)", "warmup_ms": "\((t2 - t1) / 1_000_000)",
        ])
        return e
    }

    // MARK: run

    /// Serves until SIGTERM/SIGINT or idle exit; returns the exit code.
    func run() -> Int32 {
        let listener: Listener
        do {
            listener = try Listener.open(path: config.socketPath, logger: logger)
        } catch {
            logger.critical("cannot listen: \(error)")
            SystemdDaemon.notify("STATUS=cannot listen: \(error)")
            return 1
        }
        installSignals()
        // Listen first: clients that connect during the load wait in the backlog, and a
        // socket conflict fails fast.
        SystemdDaemon.notify("STATUS=loading model \(config.model)")
        logger.info("loading model", metadata: ["path": "\(config.model)", "threads": "\(config.threads)"])
        do {
            engine = try Server.loadEngine(config: config, logger: logger)
        } catch {
            logger.critical("cannot load model: \(error)")
            SystemdDaemon.notify("STATUS=cannot load model: \(error)")
            listener.close(logger: logger)
            return 1
        }
        let worker = Thread { [self] in workerLoop() }
        worker.name = "qsentd-infer"
        worker.stackSize = 8 << 20
        worker.start()
        startWatchdog()

        let info = currentEngine.info
        SystemdDaemon.notify("READY=1\nSTATUS=serving \(info.name) (\(info.precision), \(info.isa)) on \(listener.describe)")
        logger.info("ready", metadata: ["socket": "\(listener.describe)", "model": "\(info.name)"])

        acceptLoop(listener)

        // Shutdown: no new connections; readers answer what they already received.
        SystemdDaemon.notify("STOPPING=1\nSTATUS=stopping: \(shutdownReason)")
        logger.info("stopping", metadata: ["reason": "\(shutdownReason)"])
        listener.close(logger: logger)
        let deadline = Sys.monotonicNanos() + UInt64(max(config.ioTimeout, 5) * 2 * 1e9)
        while stats.currentConnections > 0 && Sys.monotonicNanos() < deadline {
            stateLock.lock(); heartbeat = Sys.monotonicNanos(); stateLock.unlock()  // keep the watchdog fed while draining
            usleep(10_000)
        }
        if stats.currentConnections > 0 {
            logger.warning("connections still open at exit", metadata: ["count": "\(stats.currentConnections)"])
        }
        queue.stop()
        workerDone.wait()
        logger.info("stopped", metadata: ["requests": "\(stats.requests)", "texts": "\(stats.texts)"])
        return 0
    }

    func beginShutdown(_ reason: String) {
        stateLock.lock()
        let first = !draining
        if first { draining = true; shutdownReason = reason }
        stateLock.unlock()
        if first {
            var b: UInt8 = 1
            _ = write(wakeWriteFD, &b, 1)
        }
    }

    private func installSignals() {
        for (sig, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT"), (SIGHUP, "SIGHUP")] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            src.setEventHandler { [self] in
                if sig == SIGHUP {
                    stateLock.lock()
                    let loaded = engine != nil
                    stateLock.unlock()
                    guard loaded else { logger.notice("SIGHUP during startup ignored"); return }
                    Thread.detachNewThread { [self] in _ = reload(reason: "SIGHUP") }
                } else {
                    beginShutdown(name)
                }
            }
            src.resume()
            signalSources.append(src)
        }
    }

    private func acceptLoop(_ listener: Listener) {
        let idleNs = UInt64(config.idleExit * 1e9)
        stateLock.lock()
        idleSince = Sys.monotonicNanos()  // the idle clock starts once we serve, not at process start
        stateLock.unlock()
        while true {
            stateLock.lock()
            heartbeat = Sys.monotonicNanos()
            if draining {
                stateLock.unlock()
                if listener.ownedPath != nil { acceptBacklog(listener) }
                return
            }
            stateLock.unlock()
            var fds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, 200)
            if r <= 0 || fds[0].revents == 0 {
                // Idle exit only when nobody is connected and nobody is waiting to connect.
                stateLock.lock()
                let idle = connections.isEmpty && !draining
                let since = idleSince
                stateLock.unlock()
                if idleNs > 0 && idle && Sys.monotonicNanos() - since >= idleNs {
                    beginShutdown("idle for \(config.idleExit) s (--idle-exit)")
                }
                continue
            }
            let cfd = accept(listener.fd, nil, nil)
            if cfd < 0 {
                let e = errno
                if e == EINTR || e == EAGAIN || e == ECONNABORTED { continue }
                logger.error("\(SystemCallError("accept", listener.describe, errno: e))")
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM { usleep(100_000) }
                continue
            }
            _ = fcntl(cfd, F_SETFD, FD_CLOEXEC)
            admit(cfd)
        }
    }

    /// On shutdown of a socket we own, clients already waiting in the backlog would be reset
    /// when we close it: accept them so their requests are answered. (An inherited socket keeps
    /// its backlog; systemd starts us again for it.)
    private func acceptBacklog(_ listener: Listener) {
        try? Sys.setNonBlocking(listener.fd)
        while true {
            let cfd = accept(listener.fd, nil, nil)
            if cfd < 0 { break }
            _ = fcntl(cfd, F_SETFD, FD_CLOEXEC)
            admit(cfd)
        }
    }

    private func admit(_ cfd: Int32) {
        var cred = PeerCred()
        var len = socklen_t(MemoryLayout<PeerCred>.size)
        var peer = "pid=? uid=? gid=?"
        var uid: UInt32?
        var gid: UInt32?
        if getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 {
            peer = "pid=\(cred.pid) uid=\(cred.uid) gid=\(cred.gid)"
            uid = cred.uid
            gid = cred.gid
        } else {
            logger.warning("\(SystemCallError("getsockopt", "SO_PEERCRED", errno: errno))")
        }
        if config.allowUIDs != nil || config.allowGIDs != nil {
            let okUID = uid.map { config.allowUIDs?.contains($0) ?? false } ?? false
            let okGID = gid.map { config.allowGIDs?.contains($0) ?? false } ?? false
            if !(okUID || okGID) {
                logger.notice("connection refused: not in allow-list", metadata: ["peer": "\(peer)"])
                stats.rejected()
                rejectAndClose(cfd, ProtocolError(.unauthorized, "peer \(peer) is not allowed (--allow-uid/--allow-gid)"))
                return
            }
        }
        stateLock.lock()
        if connections.count >= config.maxClients {
            stateLock.unlock()
            logger.warning("connection refused: too many clients", metadata: ["peer": "\(peer)", "max": "\(config.maxClients)"])
            stats.rejected()
            rejectAndClose(cfd, ProtocolError(.busy, "too many connections (\(config.maxClients), --max-clients); retry later"))
            return
        }
        let id = nextConnID
        nextConnID += 1
        let conn = Connection(id: id, fd: cfd, peer: peer, server: self, logger: logger)
        connections[id] = conn
        stateLock.unlock()
        stats.connectionOpened()
        logger.info("connection", metadata: ["conn": "\(id)", "peer": "\(peer)"])
        conn.start()
    }

    /// Sends one error line and closes, without blocking the accept loop for long.
    private func rejectAndClose(_ fd: Int32, _ err: ProtocolError) {
        stats.error()
        var line = Array(err.line.utf8)
        line.append(0x0A)
        try? Sys.setNonBlocking(fd)
        try? Sys.writeAll(fd, line, timeoutMs: 100)
        _ = shutdown(fd, Int32(SHUT_WR))
        Thread.detachNewThread {
            // Drain briefly so the client reads the error rather than a reset.
            var junk = [UInt8](repeating: 0, count: 4096)
            let deadline = Sys.monotonicNanos() + 500_000_000
            while Sys.monotonicNanos() < deadline {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 50) <= 0 { continue }
                let n = junk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n <= 0 { break }
            }
            Sys.close(fd)
        }
    }

    func connectionClosed(_ c: Connection) {
        stateLock.lock()
        connections[c.id] = nil
        if connections.isEmpty { idleSince = Sys.monotonicNanos() }
        stateLock.unlock()
        stats.connectionClosed()
        logger.debug("connection closed", metadata: ["conn": "\(c.id)"])
    }

    // MARK: inference

    private func workerLoop() {
        while let batch = queue.popBatch(maxTexts: config.maxBatch, maxTokens: config.maxBatchTokens) {
            let e = currentEngine  // a reload swaps later batches only
            stats.batch(size: batch.count)
            let id = ObjectIdentifier(e)
            let results = e.classify(encodings: batch.map { $0.encodedBy == id ? $0.encoding : e.encode($0.text) })
            if results.count == batch.count {
                for (item, r) in zip(batch, results) {
                    item.connection.fill(item.slot, index: item.index, result: .success(r))
                }
            } else {
                let err = EngineResultCountError(expected: batch.count, got: results.count)
                logger.error("\(err)")
                for item in batch { item.connection.fill(item.slot, index: item.index, result: .failure(err)) }
            }
        }
        workerDone.signal()
    }

    struct EngineResultCountError: Error, CustomStringConvertible {
        var expected: Int, got: Int
        var description: String { "engine returned \(got) results for \(expected) texts" }
    }

    // MARK: reload

    /// Loads the model again from the same path, verifies and warms it up, then swaps it in.
    /// In-flight batches finish on the old engine. On failure the old engine keeps serving.
    func reload(reason: String) -> Result<ModelInfo, Error> {
        reloadLock.lock()
        defer { reloadLock.unlock() }
        logger.info("reloading model", metadata: ["reason": "\(reason)", "path": "\(config.model)"])
        SystemdDaemon.notify("RELOADING=1\nSTATUS=reloading \(config.model)")
        defer {
            let i = currentEngine.info
            SystemdDaemon.notify("READY=1\nSTATUS=serving \(i.name) (\(i.precision), \(i.isa))")
        }
        do {
            let fresh = try Server.loadEngine(config: config, logger: logger)
            stateLock.lock()
            engine = fresh
            stateLock.unlock()
            stats.reload(ok: true)
            logger.info("reload done", metadata: ["checksum": "\(fresh.info.checksum)"])
            return .success(fresh.info)
        } catch {
            stats.reload(ok: false)
            logger.error("reload refused, keeping the previous model: \(error)")
            return .failure(error)
        }
    }

    // MARK: watchdog

    private func startWatchdog() {
        guard let interval = SystemdDaemon.watchdogInterval() else { return }
        logger.info("watchdog enabled", metadata: ["interval_s": "\(interval)"])
        let t = Thread { [self] in
            while true {  // until the process exits (also while draining)
                usleep(useconds_t(interval / 2 * 1e6))
                stateLock.lock()
                let age = Double(Sys.monotonicNanos() - heartbeat) / 1e9
                stateLock.unlock()
                // Ping only while the accept loop is alive; a hung loop lets systemd restart us.
                if age < interval / 2 { SystemdDaemon.notify("WATCHDOG=1") }
                else { logger.warning("accept loop unresponsive; skipping watchdog ping", metadata: ["age_s": "\(age)"]) }
            }
        }
        t.name = "qsentd-watchdog"
        t.start()
    }

    // MARK: info / stats

    func infoLine(idJSON: String?) -> String {
        let i = currentEngine.info
        var w = JSONWriter()
        w.raw("{")
        if let idJSON { w.key("id"); w.raw(idJSON) }
        w.key("model"); w.string(i.name)
        w.key("architecture"); w.string(i.architecture)
        w.key("labels"); w.stringArray(i.labels)
        w.key("max_tokens"); w.number(i.maxTokens)
        w.key("isa"); w.string(i.isa)
        w.key("precision"); w.string(i.precision)
        w.key("checksum"); w.string(i.checksum)
        w.key("path"); w.string(i.path)
        w.key("version"); w.string(QsentVersion.string)
        w.key("max_batch"); w.number(config.maxBatch)
        w.key("max_line_bytes"); w.number(config.maxLineBytes)
        w.raw("}")
        return w.text
    }

    func statsLine(idJSON: String?) -> String {
        let (p50, p99, samples) = stats.percentiles()
        let rss = ProcStatus.rss()
        let s = stats
        var w = JSONWriter()
        w.raw("{")
        if let idJSON { w.key("id"); w.raw(idJSON) }
        s.locked {
            w.key("requests"); w.number(s.requests)
            w.key("texts"); w.number(s.texts)
            w.key("errors"); w.number(s.errors)
            w.key("batches"); w.number(s.batches)
            w.key("batched_texts"); w.number(s.batchedTexts)
            w.key("connections"); w.number(s.connections)
            w.key("connections_total"); w.number(s.connectionsTotal)
            w.key("connections_rejected"); w.number(s.rejectedConnections)
            w.key("reloads"); w.number(s.reloads)
            w.key("reload_failures"); w.number(s.reloadFailures)
        }
        w.key("latency_p50_ms"); if let p50 { w.number(p50) } else { w.raw("null") }
        w.key("latency_p99_ms"); if let p99 { w.number(p99) } else { w.raw("null") }
        w.key("latency_samples"); w.number(samples)
        w.key("queue_depth"); w.number(queue.depth)
        w.key("uptime_s"); w.number(s.uptimeSeconds)
        w.key("rss_anon_bytes"); w.number(rss.anon)
        w.key("rss_file_bytes"); w.number(rss.file)
        w.key("rss_shmem_bytes"); w.number(rss.shmem)
        w.raw("}")
        return w.text
    }
}

/// Layout of Linux `struct ucred` (not exported to Swift without _GNU_SOURCE).
struct PeerCred {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
