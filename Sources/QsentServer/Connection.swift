import Foundation
import Logging
import QsentCore
import QsentIO
import QsentProtocol
import SystemPackage

/// One client connection: a reader thread (parses lines, queues work, answers cheap requests
/// at once) and a writer thread (writes answers strictly in request order as they complete).
///
/// `@unchecked Sendable`: the slots and every mutable field below `cond` are guarded by
/// `cond` (an NSCondition, shared by the reader, the writer and the inference worker).
final class Connection: @unchecked Sendable {
    let id: Int
    let fd: FileDescriptor
    let peer: String
    private unowned let server: Server
    private let logger: Logger
    private let cond = NSCondition()
    private var slots: [Slot] = []
    private var slotHead = 0
    private var readerDone = false
    private var writerDead = false
    private var partsLeft = 2
    /// Set when the connection closes because of a protocol violation: discard input briefly
    /// before closing so the client reads our error line instead of a reset.
    private var lingerOnClose = false
    private var lastWriteProgress = Clock.monotonicNanos()

    init(id: Int, fd: FileDescriptor, peer: String, server: Server, logger: Logger) {
        self.id = id
        self.fd = fd
        self.peer = peer
        self.server = server
        var l = logger
        l[metadataKey: "conn"] = "\(id)"
        self.logger = l
    }

    func start() {
        let r = Thread { [self] in readerLoop() }
        r.name = "qsentd-read-\(id)"
        r.stackSize = 1 << 20
        let w = Thread { [self] in writerLoop() }
        w.name = "qsentd-write-\(id)"
        w.stackSize = 1 << 20
        r.start()
        w.start()
    }

    // MARK: slots

    private var pending: Int { slots.count - slotHead }

    /// Appends a slot in request order. Blocks while `maxPipeline` answers are outstanding
    /// (back-pressure: we stop reading from a client that does not read its answers), unless
    /// the daemon is draining.
    private func append(_ slot: Slot, allowOverLimit: Bool = false) {
        cond.lock()
        while !allowOverLimit && pending >= server.config.maxPipeline && !writerDead && !server.isDraining {
            _ = cond.wait(until: Date(timeIntervalSinceNow: 0.25))
        }
        slots.append(slot)
        cond.broadcast()
        cond.unlock()
    }

    private func appendAnswer(_ line: String, idJSON: String?, isError: Bool, allowOverLimit: Bool = false) {
        if isError { server.stats.error() }
        append(Slot(line: line, idJSON: idJSON), allowOverLimit: allowOverLimit)
    }

    /// Called by the inference worker for each finished text.
    func fill(_ slot: Slot, index: Int, result: Result<ClassificationResult, Error>) {
        cond.lock()
        switch result {
        case .success(let c): slot.results[index] = c
        case .failure(let e): if slot.failure == nil { slot.failure = slot.isBatch ? "texts[\(index)]: \(e)" : "\(e)" }
        }
        slot.remaining -= 1
        var done = false
        if slot.remaining == 0 {
            done = true
            if let f = slot.failure {
                slot.line = ProtocolError(.inferenceFailed, "inference failed: \(f)", idJSON: slot.idJSON).line
            } else if slot.isBatch {
                slot.line = BatchAnswer.line(slot.results.map { $0! }, idJSON: slot.idJSON)
            } else {
                slot.line = slot.results[0]!.line(idJSON: slot.idJSON)
            }
            cond.broadcast()
        }
        cond.unlock()
        if done {
            if slot.failure != nil { server.stats.error() }
            let ms = Double(Clock.monotonicNanos() - slot.start) / 1e6
            server.stats.classified(texts: slot.results.count, latencyMs: ms)
        }
    }

    // MARK: reader

    private func readerLoop() {
        var lines = LineBuffer(maxLineBytes: server.config.maxLineBytes)
        var chunk = [UInt8](repeating: 0, count: 65536)
        var lastRead = Clock.monotonicNanos()
        let idleNs = UInt64(server.config.idleTimeout * 1e9)
        let ioNs = UInt64(server.config.ioTimeout * 1e9)
        var stopReason = "client closed"
        reading: while true {
            // Answer every complete line we hold.
            while let item = lines.next() {
                switch item {
                case .tooLong:
                    appendAnswer(ProtocolError(.lineTooLong, "request line longer than \(server.config.maxLineBytes) bytes (--max-line-bytes); closing the connection").line,
                                 idJSON: nil, isError: true, allowOverLimit: true)
                    server.stats.request()
                    stopReason = "line too long"
                    markLinger()
                    break reading
                case .line(let l):
                    handle(line: l)
                }
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
                    appendAnswer(ProtocolError(.timeout, "partial request line stalled for \(Int(server.config.ioTimeout)) s (--io-timeout); closing").line,
                                 idJSON: nil, isError: true, allowOverLimit: true)
                    stopReason = "io timeout"
                    markLinger()
                    break
                }
                if lines.pendingBytes == 0 && idleNs > 0 && now - lastRead > idleNs && isIdle(now: now, idleNs: idleNs) {
                    appendAnswer(ProtocolError(.timeout, "connection idle for \(Int(server.config.idleTimeout)) s (--idle-timeout); closing").line,
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
            if n == 0 { break }
            lastRead = Clock.monotonicNanos()
            lines.append(chunk, count: n)
        }
        logger.debug("reader done", metadata: ["reason": "\(stopReason)"])
        cond.lock()
        readerDone = true
        cond.broadcast()
        cond.unlock()
        finishPart()
    }

    private func drainRemaining(_ lines: inout LineBuffer, _ chunk: inout [UInt8]) {
        try? fd.setNonBlocking()
        while let n = try? fd.readSome(into: &chunk, context: peer), n > 0 {
            lines.append(chunk, count: n)
        }
        try? fd.setNonBlocking(false)
        while let item = lines.next() {
            guard case .line(let l) = item else { break }
            handle(line: l, draining: true)
        }
    }

    private var isWriterDead: Bool { cond.lock(); defer { cond.unlock() }; return writerDead }

    private func isIdle(now: UInt64, idleNs: UInt64) -> Bool {
        cond.lock(); defer { cond.unlock() }
        return pending == 0 && now - lastWriteProgress > idleNs
    }

    private func markLinger() {
        cond.lock(); lingerOnClose = true; cond.unlock()
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
            enqueue([text], idJSON: req.idJSON, isBatch: false, start: start, draining: draining)
        case .batch(let texts):
            if texts.isEmpty {
                appendAnswer(BatchAnswer.line([], idJSON: req.idJSON), idJSON: req.idJSON, isError: false, allowOverLimit: draining)
            } else {
                enqueue(texts, idJSON: req.idJSON, isBatch: true, start: start, draining: draining)
            }
        }
    }

    private func enqueue(_ texts: [String], idJSON: String?, isBatch: Bool, start: UInt64, draining: Bool) {
        let slot = Slot(idJSON: idJSON, count: texts.count, isBatch: isBatch, start: start)
        let engine = server.currentEngine
        let items = texts.enumerated().map { i, t in
            WorkItem(text: t, encoding: engine.encode(t), encodedBy: ObjectIdentifier(engine), bytes: t.utf8.count,
                     slot: slot, index: i, connection: self)
        }
        // Reserve the slot first so order holds, then queue; on overflow turn it into `busy`.
        append(slot, allowOverLimit: draining)
        if !server.queue.tryPush(items) {
            server.stats.error()
            cond.lock()
            slot.remaining = 0
            slot.line = ProtocolError(.busy, "inference queue full (\(server.config.maxQueue) texts, --max-queue); retry later", idJSON: idJSON).line
            cond.broadcast()
            cond.unlock()
        }
    }

    // MARK: writer

    private func writerLoop() {
        let ioMs = server.config.ioTimeout > 0 ? Int32(min(server.config.ioTimeout * 1000, 2e9)) : -1
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
            buffer.removeAll(keepingCapacity: true)
            while slotHead < slots.count, let l = slots[slotHead].line {
                buffer.append(contentsOf: l.utf8)
                buffer.append(0x0A)
                slotHead += 1
            }
            if slotHead > 256 && slotHead * 2 > slots.count {
                slots.removeFirst(slotHead)
                slotHead = 0
            }
            cond.broadcast()
            cond.unlock()
            do {
                try fd.writeAll(buffer, timeoutMs: ioMs, context: peer)
                cond.lock(); lastWriteProgress = Clock.monotonicNanos(); cond.unlock()
            } catch {
                logger.info("dropping client: \(error)")
                cond.lock()
                writerDead = true
                // Nobody will read the rest; drop it so the reader never blocks on back-pressure.
                slots.removeAll()
                slotHead = 0
                cond.broadcast()
                cond.unlock()
                fd.shutdown(.read)
                break
            }
        }
        finishPart()
    }

    private func finishPart() {
        cond.lock()
        partsLeft -= 1
        let last = partsLeft == 0
        let linger = lingerOnClose
        cond.unlock()
        guard last else { return }
        if linger {
            // Let the client read our final error: stop writing, discard its input briefly.
            fd.closeAfterLinger(lingerMs: 1000, pollMs: 100)
        } else {
            fd.closeQuietly()
        }
        server.connectionClosed(self)
    }
}
