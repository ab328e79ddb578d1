import Logging
import QsentCore
import QsentIO
import QsentProtocol
import SystemPackage

/// One client connection: a reader thread (parses lines, queues work, answers cheap requests
/// at once) and a writer thread (writes answers strictly in request order as they complete).
///
/// Bounds (docs/DAEMON.md "Resource bounds"): at most `--max-pipeline` unanswered requests and
/// `--max-pipeline-bytes` bytes of unanswered requests plus unwritten answers (one request is
/// always admitted); past either the reader stops reading (back-pressure). The socket is
/// non-blocking: a write that makes no progress for `--io-timeout` (2 s once the daemon is
/// stopping) closes the connection and drops its queued texts.
///
/// `@unchecked Sendable`: the slots and every mutable field below `cond` are guarded by
/// `cond` (shared by the reader, the writer and the inference worker).
final class Connection: @unchecked Sendable {
    let id: Int
    let fd: FileDescriptor
    let peer: String
    private unowned let server: Server
    private let logger: Logger
    private let cond = ConditionLock()
    private var slots: [Slot] = []
    private var slotHead = 0
    /// Bytes held by the slots not yet handed to the writer (`Slot.cost`).
    private var pendingBytes = 0
    private var readerDone = false
    private var writerDead = false
    private var partsLeft = 2
    /// Set when the connection closes because of a protocol violation: discard input briefly
    /// before closing so the client reads our error line instead of a reset.
    private var lingerOnClose = false
    private var lastWriteProgress = Clock.monotonicNanos()

    /// Stands in for slots already handed to the writer (their lines are released).
    private static let written = Slot(line: "", idJSON: nil)

    /// How long a write may make no progress once the daemon is stopping.
    static let drainWriteGraceNanos: UInt64 = 2_000_000_000

    init(id: Int, fd: FileDescriptor, peer: String, server: Server, logger: Logger) {
        self.id = id
        self.fd = fd
        self.peer = peer
        self.server = server
        var l = logger
        l[metadataKey: "conn"] = "\(id)"
        self.logger = l
    }

    /// Starts the reader and the writer. If no thread can be started the caller closes `fd`;
    /// if only the reader starts, the connection ends as if its writer had failed.
    func start() throws(IOError) {
        try fd.setNonBlocking()
        let r = try OSThread.spawn(name: "qsentd-rd-\(id)") { [self] in readerLoop() }
        r.detach()
        do {
            let w = try OSThread.spawn(name: "qsentd-wr-\(id)") { [self] in writerLoop() }
            w.detach()
        } catch {
            logger.error("cannot start the writer thread: \(error)")
            cond.withLock { writerDead = true; cond.broadcast() }
            finishPart()
        }
    }

    // MARK: slots

    private var pending: Int { slots.count - slotHead }

    /// Appends a slot in request order. Blocks while `maxPipeline` answers or
    /// `maxPipelineBytes` bytes are outstanding (back-pressure: we stop reading from a client
    /// that does not read its answers), unless nothing is outstanding or the daemon is draining.
    private func append(_ slot: Slot, allowOverLimit: Bool = false) {
        let maxLines = server.config.maxPipeline, maxBytes = server.config.maxPipelineBytes
        cond.lock()
        while !allowOverLimit && pending > 0 && (pending >= maxLines || pendingBytes + slot.cost > maxBytes)
            && !writerDead && !server.isDraining {
            cond.wait(untilMonotonicNanos: Clock.monotonicNanos() + 250_000_000)
        }
        if !writerDead {
            slots.append(slot)
            pendingBytes += slot.cost
        }
        cond.broadcast()
        cond.unlock()
    }

    private func appendAnswer(_ line: String, idJSON: String?, isError: Bool, allowOverLimit: Bool = false) {
        if isError { server.stats.error() }
        append(Slot(line: line, idJSON: idJSON), allowOverLimit: allowOverLimit)
    }

    /// Called by the inference worker for each finished (or expired) text.
    func fill(_ slot: Slot, index: Int, result: Result<ClassificationResult, TextFailure>) {
        cond.lock()
        switch result {
        case .success(let c): slot.results[index] = c
        case .failure(let e):
            if slot.failure == nil {
                slot.failure = slot.isBatch ? TextFailure(code: e.code, message: "texts[\(index)]: \(e.message)") : e
            }
        }
        slot.remaining -= 1
        if slot.remaining == 0 {
            // Counted before the answer can be written: a client that has read its answer
            // always finds it in `stats` (counting after the broadcast let a test's `stats`
            // miss the previous test's last answer, or see it arrive later).
            if slot.failure != nil {
                server.stats.error()
            } else {
                server.stats.classified(texts: slot.results.count, latencyMs: Double(Clock.monotonicNanos() - slot.start) / 1e6)
            }
            let line: String
            if let f = slot.failure {
                let what = f.code == .inferenceFailed ? "inference failed: " : ""
                line = ProtocolError(f.code, what + f.message, idJSON: slot.idJSON).line
            } else if slot.isBatch {
                line = BatchAnswer.line(slot.results.map { $0! }, idJSON: slot.idJSON)
            } else {
                line = slot.results[0]!.line(idJSON: slot.idJSON)
            }
            slot.line = line
            let cost = line.utf8.count + 1
            if !writerDead { pendingBytes += cost - slot.cost }
            slot.cost = cost
            cond.broadcast()
        }
        cond.unlock()
    }

    // MARK: reader

    private func readerLoop() {
        let config = server.config
        var lines = LineBuffer(maxLineBytes: config.maxLineBytes)
        var chunk = [UInt8](repeating: 0, count: 65536)
        var lastRead = Clock.monotonicNanos()
        let idleNs = DaemonConfig.nanos(config.idleTimeout)
        let ioNs = DaemonConfig.nanos(config.ioTimeout)
        var stopReason = "client closed"
        reading: while true {
            // Answer every complete line we hold.
            while let item = lines.next() {
                guard handle(item, &stopReason) else { break reading }
            }
            if isWriterDead { stopReason = "write failed"; break }
            if server.isDraining {
                // Read what the client already sent, answer it, then stop.
                drainRemaining(&lines, &chunk)
                stopReason = "daemon stopping"
                break
            }
            let ready: [Poll.Events]
            let watched: [(FileDescriptor, Poll.Events)] = [(fd, .readable), (server.wakeFD, .readable)]
            do { ready = try Poll.wait(watched, timeoutMs: 250) } catch {
                stopReason = "\(error)"
                break
            }
            if ready[0].isEmpty {
                // Timeouts.
                let now = Clock.monotonicNanos()
                if lines.pendingBytes > 0 && ioNs > 0 && now - lastRead > ioNs {
                    appendAnswer(ProtocolError(.timeout, "partial request line stalled for \(config.ioTimeout) s (--io-timeout); closing").line,
                                 idJSON: nil, isError: true, allowOverLimit: true)
                    stopReason = "io timeout"
                    markLinger()
                    break
                }
                if lines.pendingBytes == 0 && idleNs > 0 && now - lastRead > idleNs && isIdle(now: now, idleNs: idleNs) {
                    appendAnswer(ProtocolError(.timeout, "connection idle for \(config.idleTimeout) s (--idle-timeout); closing").line,
                                 idJSON: nil, isError: false, allowOverLimit: true)
                    stopReason = "idle timeout"
                    break
                }
                continue
            }
            let n: Int
            do {
                guard let got = try fd.readSome(into: &chunk, context: peer) else { continue }
                n = got
            } catch {
                stopReason = "\(error)"
                break
            }
            if n == 0 {
                // End of input: a last line without "\n" is still a request.
                if let rest = lines.takeRest() { _ = handle(rest, &stopReason) }
                break
            }
            lastRead = Clock.monotonicNanos()
            lines.append(chunk, count: n)
        }
        logger.debug("reader done", metadata: ["reason": "\(stopReason)"])
        cond.withLock {
            readerDone = true
            cond.broadcast()
        }
        finishPart()
    }

    /// Answers one framed line; false if the connection must stop reading.
    private func handle(_ item: LineBuffer.Item, _ stopReason: inout String, draining: Bool = false) -> Bool {
        switch item {
        case .tooLong:
            appendAnswer(ProtocolError(.lineTooLong, "request line longer than \(server.config.maxLineBytes) bytes (--max-line-bytes); closing the connection").line,
                         idJSON: nil, isError: true, allowOverLimit: true)
            server.stats.request()
            stopReason = "line too long"
            markLinger()
            return false
        case .line(let l):
            handle(line: l, draining: draining)
            return true
        }
    }

    /// While stopping: answers what the client had already sent, reading at most one
    /// pipeline's worth of bytes more (a client that keeps sending cannot hold the shutdown).
    private func drainRemaining(_ lines: inout LineBuffer, _ chunk: inout [UInt8]) {
        var budget = server.config.maxPipelineBytes + server.config.maxLineBytes
        var eof = false
        while budget > 0, let n = try? fd.readSome(into: &chunk, context: peer) {
            if n == 0 { eof = true; break }
            lines.append(chunk, count: n)
            budget -= n
        }
        var reason = ""
        while let item = lines.next() {
            guard handle(item, &reason, draining: true) else { return }
        }
        if eof, let rest = lines.takeRest() { _ = handle(rest, &reason, draining: true) }
    }

    private var isWriterDead: Bool { cond.withLock { writerDead } }

    private func isIdle(now: UInt64, idleNs: UInt64) -> Bool {
        cond.withLock { pending == 0 && now - lastWriteProgress > idleNs }
    }

    private func markLinger() {
        cond.withLock { lingerOnClose = true }
    }

    private func handle(line: [UInt8], draining: Bool = false) {
        server.stats.request()
        let start = Clock.monotonicNanos()
        let req: Request
        do {
            req = try Request.parse(line: line, maxBatch: server.config.maxBatch)
        } catch {
            appendAnswer(error.line, idJSON: error.idJSON, isError: true, allowOverLimit: draining)
            return
        }
        switch req.body {
        case .op(.ping):
            appendAnswer(PingAnswer.line(idJSON: req.idJSON), idJSON: req.idJSON, isError: false, allowOverLimit: draining)
        case .op(.info):
            appendAnswer(server.infoLine(idJSON: req.idJSON), idJSON: req.idJSON, isError: false, allowOverLimit: draining)
        case .op(.stats):
            appendAnswer(server.statsLine(idJSON: req.idJSON), idJSON: req.idJSON, isError: false, allowOverLimit: draining)
        case .op(.reload):
            if draining {
                appendAnswer(ProtocolError(.shuttingDown, "the daemon is stopping; reload refused", idJSON: req.idJSON).line,
                             idJSON: req.idJSON, isError: true, allowOverLimit: true)
                return
            }
            // Blocks this reader until the reload finished; answers stay in order.
            switch server.reload(reason: "op from \(peer)") {
            case .success(let info):
                appendAnswer(ReloadAnswer(info).line(idJSON: req.idJSON), idJSON: req.idJSON, isError: false)
            case .failure(let e):
                appendAnswer(ProtocolError(.reloadFailed, "reload refused, still serving the previous model: \(e)", idJSON: req.idJSON).line,
                             idJSON: req.idJSON, isError: true)
            }
        case .classify(let text):
            enqueue([text], req, isBatch: false, start: start, requestBytes: line.count, draining: draining)
        case .batch(let texts):
            if texts.isEmpty {
                appendAnswer(BatchAnswer.line([], idJSON: req.idJSON), idJSON: req.idJSON, isError: false, allowOverLimit: draining)
            } else {
                enqueue(texts, req, isBatch: true, start: start, requestBytes: line.count, draining: draining)
            }
        }
    }

    private func enqueue(_ texts: [String], _ req: Request, isBatch: Bool, start: UInt64, requestBytes: Int, draining: Bool) {
        let slot = Slot(idJSON: req.idJSON, count: texts.count, isBatch: isBatch, start: start, requestBytes: requestBytes,
                        deadlineMs: req.deadlineMs)
        let deadline = req.deadlineMs.map { start + UInt64($0) * 1_000_000 }
        let engine = server.currentEngine
        let items = texts.enumerated().map { i, t in
            WorkItem(text: t, encoding: engine.encode(t), encodedBy: ObjectIdentifier(engine), bytes: t.utf8.count,
                     slot: slot, index: i, connection: self, deadline: deadline)
        }
        // Reserve the slot first so order holds, then queue; on overflow turn it into `busy`.
        append(slot, allowOverLimit: draining)
        if isWriterDead { return }
        if !server.queue.tryPush(items) {
            server.stats.error()
            cond.withLock {
                slot.remaining = 0
                let line = ProtocolError(.busy, "inference queue full (\(server.config.maxQueue) texts, --max-queue); retry later", idJSON: req.idJSON).line
                slot.line = line
                let cost = line.utf8.count + 1
                if !writerDead { pendingBytes += cost - slot.cost }
                slot.cost = cost
                cond.broadcast()
            }
        }
    }

    // MARK: writer

    private func writerLoop() {
        var buffer: [UInt8] = []
        while true {
            cond.lock()
            while !(slotHead < slots.count && slots[slotHead].line != nil) && !(readerDone && slotHead == slots.count) {
                cond.wait()
            }
            if slotHead == slots.count && readerDone {
                cond.unlock()
                break
            }
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            while slotHead < slots.count, let l = slots[slotHead].line {
                buffer.append(contentsOf: l.utf8)
                buffer.append(0x0A)
                pendingBytes -= slots[slotHead].cost
                slots[slotHead] = Self.written  // let the answer go now, not at the next compaction
                slotHead += 1
            }
            if slotHead > 256 && slotHead * 2 > slots.count {
                slots.removeFirst(slotHead)
                slotHead = 0
            }
            cond.broadcast()
            cond.unlock()
            if let failure = write(buffer) {
                logger.info("dropping client: \(failure)")
                cond.withLock {
                    writerDead = true
                    // Nobody will read the rest; drop it so the reader never blocks on back-pressure.
                    slots.removeAll()
                    slotHead = 0
                    pendingBytes = 0
                    cond.broadcast()
                }
                // Its queued texts would cost compute for nobody.
                server.queue.remove(client: id)
                fd.shutdown(.read)
                break
            }
        }
        buffer = []
        finishPart()
    }

    /// Writes all of `bytes`; nil when done, else why the connection must be dropped. Fails when
    /// no byte could be written for `--io-timeout` (or 2 s once the daemon is stopping).
    private func write(_ bytes: [UInt8]) -> String? {
        let ioNs = DaemonConfig.nanos(server.config.ioTimeout)
        var offset = 0
        var lastProgress = Clock.monotonicNanos()
        while offset < bytes.count {
            let sent: Int?
            do { sent = try fd.sendSome(bytes, from: offset, context: peer) } catch { return "\(error)" }
            if let sent, sent > 0 {
                offset += sent
                lastProgress = Clock.monotonicNanos()
                cond.withLock { lastWriteProgress = lastProgress }
                continue
            }
            let now = Clock.monotonicNanos()
            var deadline = ioNs > 0 ? lastProgress + ioNs : UInt64.max
            var why = "answers not read for \(server.config.ioTimeout) s (--io-timeout)"
            if let stop = server.drainStartedAt {
                let d = max(lastProgress, stop) + Self.drainWriteGraceNanos
                if d < deadline { deadline = d; why = "answers not read for 2 s while the daemon stops" }
            }
            if now >= deadline { return why }
            // Short ticks: notice the start of a shutdown.
            let ms = min((deadline - now) / 1_000_000 + 1, 250)
            do { _ = try Poll.wait(fd, for: .writable, timeoutMs: Int32(ms)) } catch { return "\(error)" }
        }
        return nil
    }

    private func finishPart() {
        cond.lock()
        partsLeft -= 1
        let last = partsLeft == 0
        let linger = lingerOnClose
        cond.unlock()
        guard last else { return }
        server.queue.remove(client: id)
        if linger {
            // Let the client read our final error: stop writing, discard its input briefly.
            fd.closeAfterLinger(lingerMs: 1000, pollMs: 100)
        } else {
            fd.closeQuietly()
        }
        server.connectionClosed(self)
    }
}
