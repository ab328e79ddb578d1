import ArgumentParser
import QsentClient
import QsentIO
import QsentProtocol

/// `qsent ping`: is the daemon up and answering?
struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that qsentd answers (prints the round-trip time).")

    @OptionGroup var daemon: DaemonOptions

    func run() throws {
        let t0 = Clock.monotonicNanos()
        try daemon.ask(.ping).decode(PingAnswer.decode)
        print("ok " + NumberFormat.fixed(Double(Clock.monotonicNanos() - t0) / 1e6, 2) + " ms")
    }
}

/// `qsent info`: what model the daemon serves.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the model qsentd serves.")

    @OptionGroup var daemon: DaemonOptions

    @Flag(name: .long, help: "Print the protocol JSON answer.")
    var json = false

    func run() throws {
        let answer = try daemon.ask(.info)
        if json { print(answer.line); return }
        guard case .object(let members) = answer.value else { return }
        for m in members {
            switch m.value {
            case .string(let s): print("\(m.key): \(s)")
            case .array(let xs): print("\(m.key): " + xs.map { if case .string(let s) = $0 { return s } else { return "?" } }.joined(separator: ", "))
            default: print("\(m.key): \(m.raw)")
            }
        }
    }
}

/// `qsent stats`: counters, latency and memory, as JSON or Prometheus text.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show qsentd counters, latency percentiles and memory.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case json, prometheus }

    @OptionGroup var daemon: DaemonOptions

    @Option(name: .long, help: "json (the protocol answer) or prometheus (text exposition format 0.0.4).")
    var format: Format = .json

    func run() throws {
        let answer = try daemon.ask(.stats)
        switch format {
        case .json: print(answer.line)
        case .prometheus:
            do { print(Self.prometheus(try answer.decode(StatsAnswer.init(json:))), terminator: "") } catch {
                throw ExitCode(reportDaemonError(error))
            }
        }
    }

    /// (stats field, metric name, type, help, optional label)
    static let metrics: [(StatsAnswer.Field, String, String, String, String?)] = [
        (.requests, "qsentd_requests_total", "counter", "Request lines received.", nil),
        (.texts, "qsentd_texts_total", "counter", "Texts classified.", nil),
        (.errors, "qsentd_errors_total", "counter", "Error answers sent.", nil),
        (.batches, "qsentd_batches_total", "counter", "Inference batches run.", nil),
        (.batchedTexts, "qsentd_batched_texts_total", "counter", "Texts run in inference batches.", nil),
        (.connections, "qsentd_connections", "gauge", "Open client connections.", nil),
        (.connectionsTotal, "qsentd_connections_total", "counter", "Accepted connections.", nil),
        (.connectionsRejected, "qsentd_connections_rejected_total", "counter", "Connections refused (allow-list, --max-clients).", nil),
        (.reloads, "qsentd_reloads_total", "counter", "Successful model reloads.", nil),
        (.reloadFailures, "qsentd_reload_failures_total", "counter", "Refused model reloads.", nil),
        (.latencyP50Ms, "qsentd_request_latency_seconds", "gauge", "Classification request latency over the recent window, by quantile.", "quantile=\"0.5\""),
        (.latencyP99Ms, "qsentd_request_latency_seconds", "gauge", "", "quantile=\"0.99\""),
        (.queueDepth, "qsentd_queue_depth", "gauge", "Texts waiting for inference.", nil),
        (.uptimeS, "qsentd_uptime_seconds", "gauge", "Seconds since the daemon started.", nil),
        (.rssAnonBytes, "qsentd_resident_memory_bytes", "gauge", "Resident memory by kind (/proc/self/status RssAnon, RssFile, RssShmem).", "kind=\"anon\""),
        (.rssFileBytes, "qsentd_resident_memory_bytes", "gauge", "", "kind=\"file\""),
        (.rssShmemBytes, "qsentd_resident_memory_bytes", "gauge", "", "kind=\"shmem\""),
        (.heapArenas, "qsentd_malloc_arenas", "gauge", "glibc malloc arenas (qsentd limits them to 1).", nil),
        (.heapBytes, "qsentd_malloc_heap_bytes", "gauge", "Bytes the malloc arenas hold from the kernel, and of these the free ones (mallinfo2).", "kind=\"total\""),
        (.heapFreeBytes, "qsentd_malloc_heap_bytes", "gauge", "", "kind=\"free\""),
        (.activationBytes, "qsentd_activation_bytes", "gauge", "Bytes mapped for the engine's activations (its forward passes' workspaces).", nil),
    ]

    static func prometheus(_ stats: StatsAnswer) -> String {
        var out = ""
        var described = Set<String>()
        for (field, name, type, help, label) in metrics {
            guard let number = stats[field], number != .null else { continue }
            var value = number.description
            if field.rawValue.hasSuffix("_ms"), let d = number.doubleValue { value = String(d / 1000) }
            if !described.contains(name) {
                described.insert(name)
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            }
            out += name + (label.map { "{\($0)}" } ?? "") + " \(value)\n"
        }
        return out
    }
}
