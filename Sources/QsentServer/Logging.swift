import Foundation
import Logging
import QsentIO

/// One line per event on stderr. Under journald (JOURNAL_STREAM set) each line starts with a
/// syslog priority prefix `<N>` that journald turns into the entry's priority and the
/// timestamp is left to the journal; otherwise lines start with an ISO 8601 UTC timestamp.
public struct StderrLineHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    let label: String
    let journald: Bool
    private let lock: NSLock

    init(label: String, level: Logger.Level, journald: Bool, lock: NSLock) {
        self.label = label
        self.logLevel = level
        self.journald = journald
        self.lock = lock
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
        lock.lock()
        FileHandle.standardError.write(line.data(using: .utf8)!)
        lock.unlock()
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
        s.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    }

    static func quoteIfNeeded(_ s: String) -> String {
        if s.isEmpty || s.contains(" ") || s.contains("\"") || s.contains("=") {
            return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return s
    }

    /// Routes every Logger to stderr at `level`.
    public static func bootstrap(level: Logger.Level) {
        let journald = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil
        let lock = NSLock()
        LoggingSystem.bootstrap { label in
            StderrLineHandler(label: label, level: level, journald: journald, lock: lock)
        }
    }
}
