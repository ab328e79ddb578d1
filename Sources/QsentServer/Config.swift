import Foundation
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
    public var idleTimeout: Double?
    public var ioTimeout: Double?
    public var allowUID: String?
    public var allowGID: String?
    public var mlock: Bool?
    public var logLevel: String?

    public init(model: String? = nil, socket: String? = nil, threads: Int? = nil, idleExit: Double? = nil,
                maxTokens: Int? = nil, maxBatch: Int? = nil, maxBatchTokens: Int? = nil, maxQueue: Int? = nil,
                maxLineBytes: Int? = nil, maxClients: Int? = nil, maxPipeline: Int? = nil, idleTimeout: Double? = nil,
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
    public var idleTimeout: Double = 300
    public var ioTimeout: Double = 30
    public var allowUIDs: Set<UInt32>?
    public var allowGIDs: Set<UInt32>?
    public var mlock: Bool = false
    public var logLevel: Logger.Level = .info

    public init(model: String, socketPath: String) {
        self.model = model
        self.socketPath = socketPath
    }

    public static func resolve(_ c: DaemonFlags, env: [String: String]) throws(ConfigError) -> DaemonConfig {
        func str(_ flag: String?, _ name: String) -> String? {
            if let flag { return flag }
            if let v = env[name], !v.isEmpty { return v }
            return nil
        }
        func int(_ flag: Int?, _ name: String, min: Int) throws(ConfigError) -> Int? {
            var v = flag
            if v == nil, let s = env[name], !s.isEmpty {
                guard let n = Int(s.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigError("\(name)=\(s) is not an integer")
                }
                v = n
            }
            if let v, v < min { throw ConfigError("\(name.lowercased()) must be >= \(min), got \(v)") }
            return v
        }
        func double(_ flag: Double?, _ name: String) throws(ConfigError) -> Double? {
            var v = flag
            if v == nil, let s = env[name], !s.isEmpty {
                guard let n = Double(s.trimmingCharacters(in: .whitespaces)) else {
                    throw ConfigError("\(name)=\(s) is not a number")
                }
                v = n
            }
            if let v, !(v >= 0) || !v.isFinite { throw ConfigError("\(name) must be a finite number >= 0") }
            return v
        }
        func ids(_ flag: String?, _ name: String) throws(ConfigError) -> Set<UInt32>? {
            guard let s = str(flag, name) else { return nil }
            var out = Set<UInt32>()
            for part in s.split(whereSeparator: { $0 == "," || $0 == " " }) where !part.isEmpty {
                guard let n = UInt32(part) else { throw ConfigError("\(name): '\(part)' is not a numeric id") }
                out.insert(n)
            }
            return out
        }
        guard let model = str(c.model, "QSENT_MODEL") else {
            throw ConfigError("no model: pass --model PATH (a .qsent blob or an HF folder) or set QSENT_MODEL")
        }
        var cfg = DaemonConfig(model: model, socketPath: str(c.socket, "QSENT_SOCKET") ?? QsentDefaults.socketPath)
        if let v = try int(c.threads, "QSENT_THREADS", min: 1) { cfg.threads = v }
        if let v = try double(c.idleExit, "QSENT_IDLE_EXIT") { cfg.idleExit = v }
        cfg.maxTokens = try int(c.maxTokens, "QSENT_MAX_TOKENS", min: 3)
        if let v = try int(c.maxBatch, "QSENT_MAX_BATCH", min: 1) { cfg.maxBatch = v }
        if let v = try int(c.maxBatchTokens, "QSENT_MAX_BATCH_TOKENS", min: 1) { cfg.maxBatchTokens = v }
        if let v = try int(c.maxQueue, "QSENT_MAX_QUEUE", min: 1) { cfg.maxQueue = v }
        if let v = try int(c.maxLineBytes, "QSENT_MAX_LINE_BYTES", min: 64) { cfg.maxLineBytes = v }
        if let v = try int(c.maxClients, "QSENT_MAX_CLIENTS", min: 1) { cfg.maxClients = v }
        if let v = try int(c.maxPipeline, "QSENT_MAX_PIPELINE", min: 1) { cfg.maxPipeline = v }
        if let v = try double(c.idleTimeout, "QSENT_IDLE_TIMEOUT") { cfg.idleTimeout = v }
        if let v = try double(c.ioTimeout, "QSENT_IO_TIMEOUT") { cfg.ioTimeout = v }
        cfg.allowUIDs = try ids(c.allowUID, "QSENT_ALLOW_UID")
        cfg.allowGIDs = try ids(c.allowGID, "QSENT_ALLOW_GID")
        if let m = c.mlock {
            cfg.mlock = m
        } else if let s = env["QSENT_MLOCK"] {
            cfg.mlock = ["1", "true", "yes", "on"].contains(s.lowercased())
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
