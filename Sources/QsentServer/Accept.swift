import QsentIO
import QsentProtocol
import SystemPackage

extension Server {
    /// Accepts connections until shutdown begins; checks idle exit between polls.
    func acceptLoop(_ listener: Listener) {
        let idleNs = DaemonConfig.nanos(config.idleExit)
        var trim = MemoryTrim()
        stateLock.lock()
        idleSince = Clock.monotonicNanos()  // the idle clock starts once we serve, not at process start
        stateLock.unlock()
        while true {
            stateLock.lock()
            heartbeat = Clock.monotonicNanos()
            if draining {
                stateLock.unlock()
                if listener.ownedPath != nil { acceptBacklog(listener) }
                return
            }
            stateLock.unlock()
            let watched: [(FileDescriptor, Poll.Events)] = [(listener.fd, .readable), (wakeFD, .readable)]
            let listenerReady = (try? Poll.wait(watched, timeoutMs: 200))?.first.map { !$0.isEmpty } ?? false
            trim.tick(activity: stats.activity, queueDepth: queue.depth) { currentEngine.releaseIdleMemory() }
            if !listenerReady {
                // Idle exit only when nobody is connected and nobody is waiting to connect.
                stateLock.lock()
                let idle = connections.isEmpty && !draining
                let since = idleSince
                stateLock.unlock()
                if idleNs > 0 && idle && Clock.monotonicNanos() - since >= idleNs {
                    beginShutdown("idle for \(config.idleExit) s (--idle-exit)")
                }
                continue
            }
            do {
                guard let cfd = try UnixSocket.accept(listener.fd, context: listener.describe) else { continue }
                admit(cfd)
            } catch {
                if error.errno == .connectionAbort { continue }
                logger.error("\(error)")
                let outOfResources: [Errno] = [.tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory]
                if outOfResources.contains(error.errno) {
                    Clock.sleep(milliseconds: 100)
                }
            }
        }
    }

    /// On shutdown of a socket we own, clients already waiting in the backlog would be reset
    /// when we close it: accept them so their requests are answered. (An inherited socket keeps
    /// its backlog; systemd starts us again for it.)
    private func acceptBacklog(_ listener: Listener) {
        try? listener.fd.setNonBlocking()
        while let cfd = try? UnixSocket.accept(listener.fd, context: listener.describe) { admit(cfd) }
    }

    /// Checks the peer against the allow-list and `--max-clients`, then starts its connection.
    private func admit(_ cfd: FileDescriptor) {
        var peer = "pid=? uid=? gid=?"
        var cred: PeerCredentials?
        do {
            let c = try UnixSocket.peerCredentials(cfd)
            peer = c.description
            cred = c
        } catch {
            logger.warning("\(error)")
        }
        if config.allowUIDs != nil || config.allowGIDs != nil {
            let okUID = cred.map { config.allowUIDs?.contains($0.uid) ?? false } ?? false
            let okGID = cred.map { config.allowGIDs?.contains($0.gid) ?? false } ?? false
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
        do {
            try conn.start()
        } catch {
            logger.error("connection refused: \(error)", metadata: ["peer": "\(peer)"])
            cfd.closeQuietly()
            connectionClosed(conn)
        }
    }

    /// Sends one error line and closes, without blocking the accept loop for long.
    private func rejectAndClose(_ fd: FileDescriptor, _ err: ProtocolError) {
        stats.error()
        var line = Array(err.line.utf8)
        line.append(0x0A)
        try? fd.setNonBlocking()
        try? fd.sendAll(line, timeoutMs: 100)
        // Linger briefly so the client reads the error rather than a reset.
        do {
            try OSThread.spawn(name: "qsentd-reject", stackSize: 256 << 10) { fd.closeAfterLinger(lingerMs: 500, pollMs: 50) }.detach()
        } catch {
            fd.closeQuietly()
        }
    }
}

/// Gives freed heap pages back to the kernel once a burst is over: after one second without new
/// requests or connections and with nothing queued, if anything happened since the last trim.
/// (glibc keeps freed memory in its arenas; one burst of 1 MB lines would otherwise hold
/// hundreds of MB for good.) `release` also runs then: qsentd unmaps the engine's idle
/// activation workspace with it (`Engine.releaseIdleMemory`), the rest of what a burst leaves.
struct MemoryTrim {
    private var lastActivity = -1
    private var quietSince: UInt64 = 0
    private var trimmedAt = -1

    mutating func tick(activity: Int, queueDepth: Int, now: UInt64 = Clock.monotonicNanos(), release: () -> Void) {
        if activity != lastActivity || queueDepth > 0 {
            lastActivity = activity
            quietSince = now
            return
        }
        if trimmedAt != activity && now - quietSince >= 1_000_000_000 {
            release()
            ProcessControl.releaseFreeMemory()
            trimmedAt = activity
        }
    }
}
