import QsentIO
import QsentProtocol

/// Counters for the `stats` op. All methods are thread-safe (one lock: `Locked`, which
/// ThreadSanitizer sees, see QsentIO/Sync.swift).
final class Stats: Sendable {
    private struct Counters {
        var requests = 0
        var texts = 0
        var errors = 0
        var batches = 0
        var batchedTexts = 0
        var connections = 0
        var connectionsTotal = 0
        var rejectedConnections = 0
        var reloads = 0
        var reloadFailures = 0
        /// Bumped by every change: tells the memory trim whether anything happened.
        var events = 0
        /// Latencies (ms) of the last `window` classification requests, from line read to answer ready.
        var latencies: [Double]
        var latencyNext = 0
        var latencyCount = 0
    }

    private let state: Locked<Counters>
    let started = Clock.monotonicNanos()

    init(window: Int = 8192) {
        state = Locked(Counters(latencies: [Double](repeating: 0, count: window)))
    }

    private func change(_ f: (inout Counters) -> Void) {
        state.withLock { c in
            f(&c)
            c.events &+= 1
        }
    }

    func request() { change { $0.requests += 1 } }
    func error() { change { $0.errors += 1 } }
    func batch(size: Int) { change { $0.batches += 1; $0.batchedTexts += size } }
    func reload(ok: Bool) { change { if ok { $0.reloads += 1 } else { $0.reloadFailures += 1 } } }
    func rejected() { change { $0.rejectedConnections += 1 } }
    func connectionOpened() { change { $0.connections += 1; $0.connectionsTotal += 1 } }
    func connectionClosed() { change { $0.connections -= 1 } }
    var currentConnections: Int { state.withLock { $0.connections } }
    var requests: Int { state.withLock { $0.requests } }
    var texts: Int { state.withLock { $0.texts } }
    var activity: Int { state.withLock { $0.events } }

    func classified(texts n: Int, latencyMs: Double) {
        change { c in
            c.texts += n
            c.latencies[c.latencyNext] = latencyMs
            c.latencyNext = (c.latencyNext + 1) % c.latencies.count
            c.latencyCount = min(c.latencyCount + 1, c.latencies.count)
        }
    }

    /// (p50, p99, samples) over the latency window; nil percentiles when empty.
    func percentiles() -> (Double?, Double?, Int) {
        let sample: [Double] = state.withLock { Array($0.latencies[0..<$0.latencyCount]) }
        guard !sample.isEmpty else { return (nil, nil, 0) }
        let s = sample.sorted()
        // Nearest-rank percentile.
        func q(_ p: Double) -> Double { s[min(s.count - 1, max(0, Int((p * Double(s.count)).rounded(.up)) - 1))] }
        return (q(0.50), q(0.99), s.count)
    }

    /// The `stats` answer now.
    func answer(queueDepth: Int, activationBytes: Int) -> StatsAnswer {
        let (p50, p99, samples) = percentiles()
        let rss = ProcStatus.rss()
        let heap = Allocator.heapStatistics()
        let arenas = Allocator.arenaCount()
        let uptime = uptimeSeconds
        return state.withLock { c in
            StatsAnswer(requests: c.requests, texts: c.texts, errors: c.errors, batches: c.batches, batchedTexts: c.batchedTexts,
                        connections: c.connections, connectionsTotal: c.connectionsTotal, connectionsRejected: c.rejectedConnections,
                        reloads: c.reloads, reloadFailures: c.reloadFailures, latencyP50Ms: p50, latencyP99Ms: p99,
                        latencySamples: samples, queueDepth: queueDepth, uptimeS: uptime,
                        rssAnonBytes: rss.anon, rssFileBytes: rss.file, rssShmemBytes: rss.shmem,
                        heapArenas: arenas, heapBytes: heap?.heapBytes, heapFreeBytes: heap?.heapFree,
                        activationBytes: activationBytes)
        }
    }

    var uptimeSeconds: Double { Double(Clock.monotonicNanos() - started) / 1e9 }
}

enum ProcStatus {
    /// (RssAnon, RssFile, RssShmem) in bytes from /proc/self/status.
    static func rss() -> (anon: Int, file: Int, shmem: Int) {
        guard let bytes = ProcessControl.readSmallFile("/proc/self/status") else { return (0, 0, 0) }
        let s = String(decoding: bytes, as: UTF8.self)
        var anon = 0, file = 0, shmem = 0
        for line in s.split(separator: "\n") {
            func kb() -> Int {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                return parts.count >= 2 ? (Int(parts[1]) ?? 0) * 1024 : 0
            }
            if line.hasPrefix("RssAnon:") { anon = kb() }
            else if line.hasPrefix("RssFile:") { file = kb() }
            else if line.hasPrefix("RssShmem:") { shmem = kb() }
        }
        return (anon, file, shmem)
    }
}
