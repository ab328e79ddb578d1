import Foundation
import QsentIO
import QsentProtocol

/// Counters for the `stats` op. All methods are thread-safe.
///
/// `@unchecked Sendable`: every mutable field is guarded by `lock`.
final class Stats: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var requests = 0
    private(set) var texts = 0
    private(set) var errors = 0
    private(set) var batches = 0
    private(set) var batchedTexts = 0
    private(set) var connections = 0
    private(set) var connectionsTotal = 0
    private(set) var rejectedConnections = 0
    private(set) var reloads = 0
    private(set) var reloadFailures = 0
    /// Latencies (ms) of the last `window` classification requests, from line read to answer ready.
    private var latencies: [Double]
    private var latencyNext = 0
    private var latencyCount = 0
    let started = Clock.monotonicNanos()

    init(window: Int = 8192) {
        latencies = [Double](repeating: 0, count: window)
    }

    func locked<T>(_ f: () -> T) -> T { lock.lock(); defer { lock.unlock() }; return f() }

    func request() { locked { requests += 1 } }
    func error() { locked { errors += 1 } }
    func batch(size: Int) { locked { batches += 1; batchedTexts += size } }
    func reload(ok: Bool) { locked { if ok { reloads += 1 } else { reloadFailures += 1 } } }
    func rejected() { locked { rejectedConnections += 1 } }
    func connectionOpened() { locked { connections += 1; connectionsTotal += 1 } }
    func connectionClosed() { locked { connections -= 1 } }
    var currentConnections: Int { locked { connections } }

    func classified(texts n: Int, latencyMs: Double) {
        locked {
            texts += n
            latencies[latencyNext] = latencyMs
            latencyNext = (latencyNext + 1) % latencies.count
            latencyCount = min(latencyCount + 1, latencies.count)
        }
    }

    /// (p50, p99, samples) over the latency window; nil percentiles when empty.
    func percentiles() -> (Double?, Double?, Int) {
        let sample: [Double] = locked { Array(latencies[0..<latencyCount]) }
        guard !sample.isEmpty else { return (nil, nil, 0) }
        let s = sample.sorted()
        // Nearest-rank percentile.
        func q(_ p: Double) -> Double { s[min(s.count - 1, max(0, Int((p * Double(s.count)).rounded(.up)) - 1))] }
        return (q(0.50), q(0.99), s.count)
    }

    /// The `stats` answer now.
    func answer(queueDepth: Int) -> StatsAnswer {
        let (p50, p99, samples) = percentiles()
        let rss = ProcStatus.rss()
        let uptime = uptimeSeconds
        return locked {
            StatsAnswer(requests: requests, texts: texts, errors: errors, batches: batches, batchedTexts: batchedTexts,
                        connections: connections, connectionsTotal: connectionsTotal, connectionsRejected: rejectedConnections,
                        reloads: reloads, reloadFailures: reloadFailures, latencyP50Ms: p50, latencyP99Ms: p99,
                        latencySamples: samples, queueDepth: queueDepth, uptimeS: uptime,
                        rssAnonBytes: rss.anon, rssFileBytes: rss.file, rssShmemBytes: rss.shmem)
        }
    }

    var uptimeSeconds: Double { Double(Clock.monotonicNanos() - started) / 1e9 }
}

enum ProcStatus {
    /// (RssAnon, RssFile, RssShmem) in bytes from /proc/self/status.
    static func rss() -> (anon: Int, file: Int, shmem: Int) {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0, 0) }
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
