import ArgumentParser
import Foundation
import Logging
import QsentProtocol

/// Fully resolved daemon settings (flags > environment > defaults).
struct DaemonConfig {
    var model: String
    var socketPath: String
    var threads: Int = 2
    var idleExit: Double = 0
    var maxTokens: Int?
    var maxBatch: Int = 32
    var maxBatchTokens: Int = 4096
    var maxQueue: Int = 1024
    var maxQueueBytes: Int = 64 << 20
    var maxLineBytes: Int = 1 << 20
    var maxClients: Int = 256
    var maxPipeline: Int = 128
    var idleTimeout: Double = 300
    var ioTimeout: Double = 30
    var allowUIDs: Set<UInt32>?
    var allowGIDs: Set<UInt32>?
    var mlock: Bool = false
    var logLevel: Logger.Level = .info

    static func resolve(_ c: Qsentd, env: [String: String]) throws -> DaemonConfig {
        func str(_ flag: String?, _ name: String) -> String? {
            if let flag { return flag }
            if let v = env[name], !v.isEmpty { return v }
            return nil
        }
        func int(_ flag: Int?, _ name: String, min: Int) throws -> Int? {
            var v = flag
            if v == nil, let s = env[name], !s.isEmpty {
                guard let n = Int(s.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("\(name)=\(s) is not an integer")
                }
                v = n
            }
            if let v, v < min { throw ValidationError("\(name.lowercased()) must be >= \(min), got \(v)") }
            return v
        }
        func double(_ flag: Double?, _ name: String) throws -> Double? {
            var v = flag
            if v == nil, let s = env[name], !s.isEmpty {
                guard let n = Double(s.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("\(name)=\(s) is not a number")
                }
                v = n
            }
            if let v, !(v >= 0) || !v.isFinite { throw ValidationError("\(name) must be a finite number >= 0") }
            return v
        }
        func ids(_ flag: String?, _ name: String) throws -> Set<UInt32>? {
            guard let s = str(flag, name) else { return nil }
            var out = Set<UInt32>()
            for part in s.split(whereSeparator: { $0 == "," || $0 == " " }) where !part.isEmpty {
                guard let n = UInt32(part) else { throw ValidationError("\(name): '\(part)' is not a numeric id") }
                out.insert(n)
            }
            return out
        }
        guard let model = str(c.model, "QSENT_MODEL") else {
            throw ValidationError("no model: pass --model PATH (a .qsent blob or an HF folder) or set QSENT_MODEL")
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
                throw ValidationError("log level '\(s)' is not one of trace, debug, info, notice, warning, error, critical")
            }
            cfg.logLevel = l
        }
        return cfg
    }
}
