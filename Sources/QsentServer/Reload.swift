import Foundation
import QsentCore

extension Server {
    /// Loads the model again from the same path, verifies and warms it up, then swaps it in.
    /// In-flight batches finish on the old engine. On failure the old engine keeps serving.
    func reload(reason: String) -> Result<ModelInfo, Error> {
        reloadLock.lock()
        defer { reloadLock.unlock() }
        logger.info("reloading model", metadata: ["reason": "\(reason)", "path": "\(config.model)"])
        SystemdDaemon.notify("RELOADING=1\nSTATUS=reloading \(config.model)")
        defer {
            let i = currentEngine.info
            SystemdDaemon.notify("READY=1\nSTATUS=serving \(i.name) (\(i.precision), \(i.isa))")
        }
        do {
            let fresh = try Server.loadEngine(config: config, logger: logger)
            stateLock.lock()
            engine = fresh
            stateLock.unlock()
            stats.reload(ok: true)
            logger.info("reload done", metadata: ["checksum": "\(fresh.info.checksum)"])
            return .success(fresh.info)
        } catch {
            stats.reload(ok: false)
            logger.error("reload refused, keeping the previous model: \(error)")
            return .failure(error)
        }
    }
}
