import Logging
import QsentCore
import QsentIO
import QsentSystemd
import QsentProtocol
import SystemPackage

/// The daemon: loads the model, listens, accepts, runs the inference worker, handles signals,
/// reload, idle exit and graceful shutdown. The parts live in Accept.swift, Inference.swift,
/// Reload.swift, Signals.swift and Watchdog.swift; each connection in Connection.swift.
///
/// `@unchecked Sendable`: the mutable state below `stateLock` is guarded by it; `reload` is
/// serialized by `reloadLock`; everything else is immutable after `init`, or set in `run()`
/// before the threads that read it start. (Both locks are QsentIO's pthread `ConditionLock`,
/// used as plain mutexes: `lock()`/`unlock()` as Reload.swift calls them.)
public final class Server: @unchecked Sendable {
    let config: DaemonConfig
    let logger: Logger
    let stats = Stats()
    let queue: Scheduler<WorkItem>

    /// Read end of the wake pipe: becomes readable (forever) once shutdown starts.
    let wakeFD: FileDescriptor
    private let wakeWriteFD: FileDescriptor

    let stateLock = ConditionLock()
    /// Set in `run()` before any thread that reads it starts; swapped by `reload`.
    var engine: Engine!
    var draining = false
    /// When the shutdown began (monotonic ns).
    var drainStart: UInt64?
    var shutdownReason = ""
    var connections: [Int: Connection] = [:]
    var nextConnID = 1
    var idleSince = Clock.monotonicNanos()
    /// Last time the accept loop (or the shutdown wait) was alive, for the watchdog.
    var heartbeat = Clock.monotonicNanos()

    let reloadLock = ConditionLock()
    /// What the model file looked like when last read, and its problem if any (ModelWatch.swift).
    let modelWatch = ModelWatch()

    public init(config: DaemonConfig, logger: Logger) throws {
        Server.configureAllocator()
        self.config = config
        self.logger = logger
        self.queue = Scheduler(capacity: config.maxQueue, capacityBytes: config.maxQueueBytes,
                               policy: BatchPolicy(maxTexts: config.maxBatch, maxTokens: config.maxBatchTokens,
                                                   targetNanos: DaemonConfig.batchTargetNanos,
                                                   minTokens: 512, quantum: 512))
        let fds: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        do { fds = try FileDescriptor.pipe() } catch { throw IOError("pipe", "wake pipe", errno: (error as? Errno) ?? .ioError) }
        try fds.readEnd.setCloseOnExec()
        try fds.writeEnd.setCloseOnExec()
        wakeFD = fds.readEnd
        wakeWriteFD = fds.writeEnd
        ProcessControl.ignore(.brokenPipe)
    }

    /// glibc's arenas and thresholds, set before any thread starts (docs/DAEMON.md, "Memory";
    /// `AllocatorTests`). Left alone, every thread that allocates while the others are busy
    /// gets an arena of its own (up to 8 per core: inference, kernel pool, connections, each
    /// reload's thread), each keeps the freed space of the largest forward pass it ran, and in
    /// the 30-minute soak RssAnon crept from 87 to 100 MiB. Now:
    /// - one arena (`arenas`), glibc's main one, so freed activations are reused by the next
    ///   pass on any thread, and `malloc_trim` can give everything free back: it releases the
    ///   top of the main arena only, never of another one. With 2 arenas a burst of 1 MB lines
    ///   whose connection threads used the second arena left ~26 MiB resident for good in 3 of
    ///   6 runs of `testNonReadingClientsAreClosedAndMemoryReturns` (idle 27, 53 MiB after);
    ///   with one, 8 of 8 returned to 27-33 MiB. Its cost, measured: a single client pipelining
    ///   480 reviews got 35.8-41.1 texts/s against 40.1-44.6 with 2 arenas (its reader thread
    ///   and the inference threads share the arena's lock); 8 such clients, and `qsent eval`,
    ///   the same as with 2;
    /// - the mmap and trim thresholds pinned at `thresholdBytes` (32 MiB, glibc's own ceiling
    ///   for them): activation buffers come from the arenas and stay mapped between passes.
    ///   (Pinning them low instead, at 128 KiB, also kept RssAnon flat but made each of a
    ///   pass's ~60 buffers a fresh mapping: 15 times the page faults and ~25 % more CPU per text.)
    /// The daemon returns the free space with malloc_trim after a reload and once a burst is
    /// over (MemoryTrim).
    public static func configureAllocator() {
        Allocator.limitArenas(arenas)
        Allocator.pinThresholds(bytes: thresholdBytes)
    }

    /// See `configureAllocator`.
    public static let arenas = 1
    public static let thresholdBytes = 32 << 20

    var isDraining: Bool { stateLock.withLock { draining } }

    /// When the shutdown began; nil while serving.
    var drainStartedAt: UInt64? { stateLock.withLock { drainStart } }

    /// How long the shutdown waits for connections to finish before it gives up on them (and
    /// answers the texts still queued `shutting_down`).
    static let drainDeadlineNanos: UInt64 = 8_000_000_000

    var currentEngine: Engine { stateLock.withLock { engine } }

    /// A loaded engine and what its warm-up inference cost (it seeds the scheduler's cost per
    /// token, so no second inference is spent on that before the first connection).
    struct Loaded {
        let engine: Engine
        let warmUpTokens: Int
        let warmUpNanos: UInt64
    }

    /// Loads and verifies (Engine init verifies) a model, then runs one warm-up inference.
    static func loadEngine(config: DaemonConfig, logger: Logger) throws -> Loaded {
        let t0 = Clock.monotonicNanos()
        let e = try Engine(path: config.model, options: EngineOptions(threads: config.threads, maxTokens: config.maxTokens))
        let t1 = Clock.monotonicNanos()
        let w = e.classify(["qsentd warm-up: this sentence exercises every layer once."])
        let t2 = Clock.monotonicNanos()
        if config.mlock {
            try ProcessControl.lockAllMemory(context: "--mlock (raise LimitMEMLOCK= / RLIMIT_MEMLOCK or grant CAP_IPC_LOCK)")
        }
        let i = e.info
        logger.info("model loaded", metadata: [
            "name": "\(i.name)", "precision": "\(i.precision)", "attention": "\(i.attention)", "isa": "\(i.isa)", "checksum": "\(i.checksum)",
            "max_tokens": "\(i.maxTokens)", "load_ms": "\((t1 - t0) / 1_000_000)", "warmup_ms": "\((t2 - t1) / 1_000_000)",
        ])
        return Loaded(engine: e, warmUpTokens: w.first?.tokens ?? 0, warmUpNanos: t2 - t1)
    }

    // MARK: run

    /// Serves until SIGTERM/SIGINT or idle exit; returns the exit code.
    public func run() -> Int32 {
        let listener: Listener
        do {
            listener = try Listener.open(path: config.socketPath, logger: logger)
        } catch {
            logger.critical("cannot listen: \(error)")
            SystemdDaemon.notify("STATUS=cannot listen: \(error)")
            return 1
        }
        do { try installSignals() } catch {
            logger.critical("cannot install signal handlers: \(error)")
            listener.close(logger: logger)
            return 1
        }
        // Listen first: clients that connect during the load wait in the backlog, and a
        // socket conflict fails fast.
        SystemdDaemon.notify("STATUS=loading model \(config.model)")
        logger.info("loading model", metadata: ["path": "\(config.model)", "threads": "\(config.threads)"])
        do {
            let loaded = try loadWatchedEngine()
            stateLock.lock(); engine = loaded.engine; stateLock.unlock()
            // The warm-up's cost per token seeds the scheduler's budgets (a short text overstates
            // it: a conservative start, corrected by every batch that runs).
            queue.finished(tokens: loaded.warmUpTokens, nanos: loaded.warmUpNanos)
        } catch {
            logger.critical("cannot load model: \(error)")
            SystemdDaemon.notify("STATUS=cannot load model: \(error)")
            listener.close(logger: logger)
            return 1
        }
        let worker: OSThread
        do {
            worker = try startWorker()
            try startWatchdog()
            startModelWatch()
        } catch {
            logger.critical("cannot start threads: \(error)")
            listener.close(logger: logger)
            return 1
        }

        let info = currentEngine.info
        SystemdDaemon.notify("READY=1\nSTATUS=serving \(info.name) (\(info.precision), \(info.isa)) on \(listener.describe)")
        logger.info("ready", metadata: ["socket": "\(listener.describe)", "model": "\(info.name)"])

        acceptLoop(listener)

        // Shutdown: no new connections; readers answer what they already received.
        SystemdDaemon.notify("STOPPING=1\nSTATUS=stopping: \(shutdownReasonNow)")
        logger.info("stopping", metadata: ["reason": "\(shutdownReasonNow)"])
        listener.close(logger: logger)
        // Readers answer what their clients sent; writers give up on a client that does not
        // read for 2 s; after the drain deadline the rest is abandoned.
        let deadline = Clock.monotonicNanos() + Server.drainDeadlineNanos
        while stats.currentConnections > 0 && Clock.monotonicNanos() < deadline {
            stateLock.withLock { heartbeat = Clock.monotonicNanos() }  // keep the watchdog fed while draining
            Clock.sleep(milliseconds: 10)
        }
        if stats.currentConnections > 0 {
            logger.warning("connections still open at exit", metadata: ["count": "\(stats.currentConnections)"])
        }
        let abandoned = queue.removeAll()
        if !abandoned.isEmpty {
            logger.warning("texts not started by the shutdown deadline", metadata: ["count": "\(abandoned.count)"])
            for item in abandoned {
                item.connection.fill(item.slot, index: item.index, result: .failure(TextFailure(
                    code: .shuttingDown, message: "the daemon stopped before this text was started; send it again")))
            }
        }
        queue.stop()
        worker.join()
        logger.info("stopped", metadata: ["requests": "\(stats.requests)", "texts": "\(stats.texts)"])
        return 0
    }

    private var shutdownReasonNow: String { stateLock.withLock { shutdownReason } }

    func beginShutdown(_ reason: String) {
        stateLock.lock()
        let first = !draining
        if first { draining = true; shutdownReason = reason; drainStart = Clock.monotonicNanos() }
        stateLock.unlock()
        if first { _ = try? wakeWriteFD.writeAll([1]) }  // a pipe: write(2), not send(2)
    }

    func connectionClosed(_ c: Connection) {
        stateLock.lock()
        connections[c.id] = nil
        if connections.isEmpty { idleSince = Clock.monotonicNanos() }
        stateLock.unlock()
        stats.connectionClosed()
        logger.debug("connection closed", metadata: ["conn": "\(c.id)"])
    }

    // MARK: info / stats

    func infoLine(idJSON: String?) -> String {
        stateLock.lock()
        let (info, problem) = (engine.info, modelWatch.problem)  // one state: see Reload.swift
        stateLock.unlock()
        var answer = InfoAnswer(info, config: config)
        answer.modelProblem = problem
        return answer.line(idJSON: idJSON)
    }

    func statsLine(idJSON: String?) -> String {
        stats.answer(queueDepth: queue.depth, activationBytes: currentEngine.activationBytes).line(idJSON: idJSON)
    }
}

extension Server {
    /// Tells systemd why the daemon could not start (`STATUS=failed: …`).
    public static func notifyFailure(_ why: String) {
        SystemdDaemon.notify("STATUS=failed: \(why)")
    }
}
