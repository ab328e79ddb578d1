import Logging
import QsentIO
import SystemPackage

/// One line per event on stderr. Under journald (JOURNAL_STREAM set) each line starts with a
/// syslog priority prefix `<N>` that journald turns into the entry's priority and the
/// timestamp is left to the journal; otherwise lines start with an ISO 8601 UTC timestamp.
public struct StderrLineHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    let label: String
    let journald: Bool
    /// One line at a time on stderr, shared by every handler.
    private let sink: Sink

    final class Sink: Sendable {
        private let mutex = Locked(())
        func write(_ line: String) {
            mutex.withLock { _ in _ = try? FileDescriptor.standardError.writeAll(line.utf8) }
        }
    }

    init(label: String, level: Logger.Level, journald: Bool, sink: Sink) {
        self.label = label
        self.logLevel = level
        self.journald = journald
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = ""
        if journald {
            line += "<\(Self.syslogPriority(event.level))>"
        } else {
            line += Clock.utcTimestamp() + " " + event.level.rawValue.uppercased() + " "
        }
        // Keep it on one line whatever the message holds.
        line += Self.oneLine(event.message.description)
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        for key in all.keys.sorted() {
            line += " \(key)=" + Self.quoteIfNeeded(Self.oneLine("\(all[key]!)"))
        }
        line += "\n"
        sink.write(line)
    }

    static func syslogPriority(_ l: Logger.Level) -> Int {
        switch l {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func oneLine(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) else { return s }
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            switch u {
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            default: out.append(u)
            }
        }
        return String(out)
    }

    static func quoteIfNeeded(_ s: String) -> String {
        guard s.isEmpty || s.unicodeScalars.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return s }
        var out = String.UnicodeScalarView()
        out.append("\"")
        for u in s.unicodeScalars {
            if u == "\\" || u == "\"" { out.append("\\") }
            out.append(u)
        }
        out.append("\"")
        return String(out)
    }

    /// Routes every Logger to stderr at `level`.
    public static func bootstrap(level: Logger.Level) {
        let journald = ProcessControl.environment("JOURNAL_STREAM") != nil
        let sink = Sink()
        LoggingSystem.bootstrap { label in
            StderrLineHandler(label: label, level: level, journald: journald, sink: sink)
        }
    }
}
