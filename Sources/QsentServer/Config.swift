import Logging
import QsentProtocol

/// The daemon's command-line options as given (nil = not on the command line). qsentd's
/// argument parser fills it; `DaemonConfig.resolve` combines it with the environment.
public struct DaemonFlags: Sendable, Equatable {
    public var model: String?
    public var socket: String?
    public var threads: Int?
    public var idleExit: Double?
    public var maxTokens: Int?
    public var maxBatch: Int?
    public var maxBatchTokens: Int?
    public var maxQueue: Int?
    public var maxLineBytes: Int?
    public var maxClients: Int?
    public var maxPipeline: Int?
    public var maxPipelineBytes: Int?
    public var idleTimeout: Double?
    public var ioTimeout: Double?
    public var allowUID: String?
    public var allowGID: String?
    public var mlock: Bool?
    public var logLevel: String?

    public init(model: String? = nil, socket: String? = nil, threads: Int? = nil, idleExit: Double? = nil,
                maxTokens: Int? = nil, maxBatch: Int? = nil, maxBatchTokens: Int? = nil, maxQueue: Int? = nil,
                maxLineBytes: Int? = nil, maxClients: Int? = nil, maxPipeline: Int? = nil, maxPipelineBytes: Int? = nil, idleTimeout: Double? = nil,
                ioTimeout: Double? = nil, allowUID: String? = nil, allowGID: String? = nil, mlock: Bool? = nil,
                logLevel: String? = nil) {
        self.model = model
        self.socket = socket
        self.threads = threads
        self.idleExit = idleExit
        self.maxTokens = maxTokens
        self.maxBatch = maxBatch
        self.maxBatchTokens = maxBatchTokens
        self.maxQueue = maxQueue
        self.maxLineBytes = maxLineBytes
        self.maxClients = maxClients
        self.maxPipeline = maxPipeline
        self.maxPipelineBytes = maxPipelineBytes
        self.idleTimeout = idleTimeout
        self.ioTimeout = ioTimeout
        self.allowUID = allowUID
        self.allowGID = allowGID
        self.mlock = mlock
        self.logLevel = logLevel
    }
}

/// A setting that cannot be used; the message says which and what to do.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Fully resolved daemon settings (flags > environment > defaults).
public struct DaemonConfig: Sendable, Equatable {
    public var model: String
    public var socketPath: String
    public var threads: Int = 2
    public var idleExit: Double = 0
    public var maxTokens: Int?
    public var maxBatch: Int = 32
    public var maxBatchTokens: Int = 4096
    public var maxQueue: Int = 1024
    public var maxQueueBytes: Int = 64 << 20
    public var maxLineBytes: Int = 1 << 20
    public var maxClients: Int = 256
    public var maxPipeline: Int = 128
    public var maxPipelineBytes: Int = 4 << 20
    public var idleTimeout: Double = 300
    public var ioTimeout: Double = 30
    /// nil: no restriction by uid (likewise gid). An empty list means the same as no list.
    public var allowUIDs: Set<UInt32>?
    public var allowGIDs: Set<UInt32>?
    public var mlock: Bool = false
    public var logLevel: Logger.Level = .info

    /// While several clients wait, a batch is sized to run for about this long; with one
    /// client, three times as long (Scheduler, BatchPolicy).
    public static let batchTargetNanos: UInt64 = 100_000_000

    public init(model: String, socketPath: String) {
        self.model = model
        self.socketPath = socketPath
    }

    /// The accepted range of each numeric option (docs/DAEMON.md lists them).
    public enum Limits {
        public static let threads = 1...256
        public static let maxTokens = 3...8192
        public static let maxBatch = 1...4096
        public static let maxBatchTokens = 1...(1 << 20)
        public static let maxQueue = 1...(1 << 20)
        public static let maxLineBytes = 64...(64 << 20)
        public static let maxClients = 1...16384
        public static let maxPipeline = 1...65536
        public static let maxPipelineBytes = 4096...(1 << 30)
        /// Seconds; 0 turns the timeout off.
        public static let idleExit = 0.0...2_592_000  // 30 days
        public static let idleTimeout = 0.0...2_592_000
        public static let ioTimeout = 0.0...86_400  // 1 day
    }

    /// Seconds (validated, finite, >= 0) as nanoseconds; 0 stays 0 (off).
    public static func nanos(_ seconds: Double) -> UInt64 {
        guard seconds > 0 else { return 0 }
        return UInt64(min(seconds * 1e9, 1e18).rounded())
    }

    public static func resolve(_ c: DaemonFlags, env: [String: String]) throws(ConfigError) -> DaemonConfig {
        func trimmed(_ s: String) -> String {
            var t = Substring(s)
            while let f = t.first, f == " " || f == "\t" { t.removeFirst() }
            while let l = t.last, l == " " || l == "\t" { t.removeLast() }
            return String(t)
        }
        func str(_ flag: String?, _ name: String) -> String? {
            if let flag { return flag }
            if let v = env[name], !v.isEmpty { return v }
            return nil
        }
        func int(_ flag: Int?, _ option: String, _ name: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            let want = "give an integer from \(range.lowerBound) to \(range.upperBound)"
            if let flag {
                guard range.contains(flag) else { throw ConfigError("--\(option) \(flag) is out of range: \(want)") }
                return flag
            }
            guard let s = env[name], !s.isEmpty else { return nil }
            guard let n = Int(trimmed(s)) else { throw ConfigError("\(name)=\(s) is not an integer: \(want)") }
            guard range.contains(n) else { throw ConfigError("\(name)=\(s) is out of range: \(want)") }
            return n
        }
        func seconds(_ flag: Double?, _ option: String, _ name: String, _ range: ClosedRange<Double>) throws(ConfigError) -> Double? {
            let want = "give seconds from 0 to \(Int(range.upperBound)) (0 = off)"
            if let flag {
                guard flag.isFinite, range.contains(flag) else { throw ConfigError("--\(option) \(flag) is out of range: \(want)") }
                return flag
            }
            guard let s = env[name], !s.isEmpty else { return nil }
            guard let n = Double(trimmed(s)) else { throw ConfigError("\(name)=\(s) is not a number: \(want)") }
            guard n.isFinite, range.contains(n) else { throw ConfigError("\(name)=\(s) is out of range: \(want)") }
            return n
        }
        /// Comma- or space-separated numeric ids; an empty list (flag or variable) is no list.
        func ids(_ flag: String?, _ option: String, _ name: String) throws(ConfigError) -> Set<UInt32>? {
            guard let s = str(flag, name) else { return nil }
            let source = flag != nil ? "--\(option)" : name
            var out = Set<UInt32>()
            for part in s.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
                guard let n = UInt32(part) else {
                    throw ConfigError("\(source): '\(part)' is not a numeric id (give ids like 0,1000; names are not looked up)")
                }
                out.insert(n)
            }
            return out.isEmpty ? nil : out
        }
        guard let model = str(c.model, "QSENT_MODEL") else {
            throw ConfigError("no model: pass --model PATH (a .qsent blob or an HF folder) or set QSENT_MODEL")
        }
        var cfg = DaemonConfig(model: model, socketPath: str(c.socket, "QSENT_SOCKET") ?? QsentDefaults.socketPath)
        if let v = try int(c.threads, "threads", "QSENT_THREADS", Limits.threads) { cfg.threads = v }
        if let v = try seconds(c.idleExit, "idle-exit", "QSENT_IDLE_EXIT", Limits.idleExit) { cfg.idleExit = v }
        cfg.maxTokens = try int(c.maxTokens, "max-tokens", "QSENT_MAX_TOKENS", Limits.maxTokens)
        if let v = try int(c.maxBatch, "max-batch", "QSENT_MAX_BATCH", Limits.maxBatch) { cfg.maxBatch = v }
        if let v = try int(c.maxBatchTokens, "max-batch-tokens", "QSENT_MAX_BATCH_TOKENS", Limits.maxBatchTokens) { cfg.maxBatchTokens = v }
        if let v = try int(c.maxQueue, "max-queue", "QSENT_MAX_QUEUE", Limits.maxQueue) { cfg.maxQueue = v }
        if let v = try int(c.maxLineBytes, "max-line-bytes", "QSENT_MAX_LINE_BYTES", Limits.maxLineBytes) { cfg.maxLineBytes = v }
        if let v = try int(c.maxClients, "max-clients", "QSENT_MAX_CLIENTS", Limits.maxClients) { cfg.maxClients = v }
        if let v = try int(c.maxPipeline, "max-pipeline", "QSENT_MAX_PIPELINE", Limits.maxPipeline) { cfg.maxPipeline = v }
        if let v = try int(c.maxPipelineBytes, "max-pipeline-bytes", "QSENT_MAX_PIPELINE_BYTES", Limits.maxPipelineBytes) {
            cfg.maxPipelineBytes = v
        }
        if let v = try seconds(c.idleTimeout, "idle-timeout", "QSENT_IDLE_TIMEOUT", Limits.idleTimeout) { cfg.idleTimeout = v }
        if let v = try seconds(c.ioTimeout, "io-timeout", "QSENT_IO_TIMEOUT", Limits.ioTimeout) { cfg.ioTimeout = v }
        cfg.allowUIDs = try ids(c.allowUID, "allow-uid", "QSENT_ALLOW_UID")
        cfg.allowGIDs = try ids(c.allowGID, "allow-gid", "QSENT_ALLOW_GID")
        if let m = c.mlock {
            cfg.mlock = m
        } else if let s = env["QSENT_MLOCK"] {
            switch trimmed(s).lowercased() {
            case "1", "true", "yes", "on": cfg.mlock = true
            case "", "0", "false", "no", "off": cfg.mlock = false
            default: throw ConfigError("QSENT_MLOCK=\(s) is not a boolean: give 1 or 0 (also true/false, yes/no, on/off)")
            }
        }
        if let s = str(c.logLevel, "QSENT_LOG_LEVEL") {
            guard let l = Logger.Level(rawValue: s.lowercased()) else {
                throw ConfigError("log level '\(s)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            cfg.logLevel = l
        }
        return cfg
    }
}
