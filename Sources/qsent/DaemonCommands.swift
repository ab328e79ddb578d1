import ArgumentParser
import Foundation
import QsentProtocol

/// `qsent ping`: is the daemon up and answering?
struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that qsentd answers (prints the round-trip time).")

    @OptionGroup var daemon: DaemonOptions

    func run() throws {
        let t0 = Date()
        _ = try daemon.ask("ping")
        print(String(format: "ok %.2f ms", Date().timeIntervalSince(t0) * 1000))
    }
}

/// `qsent info`: what model the daemon serves.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the model qsentd serves.")

    @OptionGroup var daemon: DaemonOptions

    @Flag(name: .long, help: "Print the protocol JSON answer.")
    var json = false

    func run() throws {
        let (line, v) = try daemon.ask("info")
        if json { print(line); return }
        guard case .object(let members) = v else { return }
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
        let (line, v) = try daemon.ask("stats")
        switch format {
        case .json: print(line)
        case .prometheus: print(Self.prometheus(v), terminator: "")
        }
    }

    /// (stats key, metric name, type, help, optional label)
    static let metrics: [(String, String, String, String, String?)] = [
        ("requests", "qsentd_requests_total", "counter", "Request lines received.", nil),
        ("texts", "qsentd_texts_total", "counter", "Texts classified.", nil),
        ("errors", "qsentd_errors_total", "counter", "Error answers sent.", nil),
        ("batches", "qsentd_batches_total", "counter", "Inference batches run.", nil),
        ("batched_texts", "qsentd_batched_texts_total", "counter", "Texts run in inference batches.", nil),
        ("connections", "qsentd_connections", "gauge", "Open client connections.", nil),
        ("connections_total", "qsentd_connections_total", "counter", "Accepted connections.", nil),
        ("connections_rejected", "qsentd_connections_rejected_total", "counter", "Connections refused (allow-list, --max-clients).", nil),
        ("reloads", "qsentd_reloads_total", "counter", "Successful model reloads.", nil),
        ("reload_failures", "qsentd_reload_failures_total", "counter", "Refused model reloads.", nil),
        ("latency_p50_ms", "qsentd_request_latency_seconds", "gauge", "Classification request latency over the recent window, by quantile.", "quantile=\"0.5\""),
        ("latency_p99_ms", "qsentd_request_latency_seconds", "gauge", "", "quantile=\"0.99\""),
        ("queue_depth", "qsentd_queue_depth", "gauge", "Texts waiting for inference.", nil),
        ("uptime_s", "qsentd_uptime_seconds", "gauge", "Seconds since the daemon started.", nil),
        ("rss_anon_bytes", "qsentd_resident_memory_bytes", "gauge", "Resident memory by kind (/proc/self/status RssAnon, RssFile, RssShmem).", "kind=\"anon\""),
        ("rss_file_bytes", "qsentd_resident_memory_bytes", "gauge", "", "kind=\"file\""),
        ("rss_shmem_bytes", "qsentd_resident_memory_bytes", "gauge", "", "kind=\"shmem\""),
    ]

    static func prometheus(_ v: JSONValue) -> String {
        var out = ""
        var described = Set<String>()
        for (key, name, type, help, label) in metrics {
            guard let m = v[key], case .number(var value) = m.value else { continue }
            if key.hasSuffix("_ms"), let d = Double(value) { value = String(d / 1000) }
            if !described.contains(name) {
                described.insert(name)
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            }
            out += name + (label.map { "{\($0)}" } ?? "") + " \(value)\n"
        }
        return out
    }
}
