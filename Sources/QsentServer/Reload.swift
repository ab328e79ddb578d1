import QsentCore
import QsentIO
import QsentSystemd

extension Server {
    /// Loads the model again from the same path, verifies and warms it up, then swaps it in.
    /// In-flight batches finish on the old engine. On failure the old engine keeps serving (its
    /// weights are a private copy, complete and verified), and the problem is logged at error
    /// priority and shown by `info` (`model_problem`) until a load succeeds. Called for the
    /// `reload` op, SIGHUP and the model file watch (ModelWatch.swift); serialized by `reloadLock`.
    func reload(reason: String) -> Result<ModelInfo, Error> {
        reloadLock.lock()
        defer { reloadLock.unlock() }
        // Taken before the read: if the file changes while it is read, the watch sees a
        // difference at its next poll and reads it again.
        let observed = ModelFileState.observe(config.model)
        logger.info("reloading model", metadata: ["reason": "\(reason)", "path": "\(config.model)"])
        SystemdDaemon.notify("RELOADING=1\nSTATUS=reloading \(config.model)")
        defer {
            let i = currentEngine.info
            let problem = modelWatch.problem.map { "; \($0)" } ?? ""
            SystemdDaemon.notify("READY=1\nSTATUS=serving \(i.name) (\(i.precision), \(i.isa))\(problem)")
        }
        let previous = currentEngine.info.checksum
        do {
            let loaded = try Server.loadEngine(config: config, logger: logger)
            let fresh = loaded.engine
            // Both under stateLock, so `info` never pairs the new checksum with the old problem.
            stateLock.lock()
            engine = fresh
            modelWatch.record(observed, problem: nil)
            stateLock.unlock()
            stats.reload(ok: true)
            // The new model's warm-up joins the scheduler's running cost per token (as the first
            // load's seeds it): a model of another size moves the batch budgets at once, and the
            // batches that follow correct the estimate as usual.
            queue.finished(tokens: loaded.warmUpTokens, nanos: loaded.warmUpNanos)
            // The previous engine's small objects (tokenizer tables, names) were freed here or
            // go with its last batch; give their pages back now rather than at the next quiet second.
            ProcessControl.releaseFreeMemory()
            logger.notice("reload done", metadata: ["checksum": "\(fresh.info.checksum)", "previous_checksum": "\(previous)"])
            return .success(fresh.info)
        } catch {
            let problem = "\(error) (still serving the previous model, checksum \(previous), until the file is fixed)"
            modelWatch.record(observed, problem: problem)
            stats.reload(ok: false)
            logger.error("reload refused, keeping the previous model: \(problem)", metadata: ["reason": "\(reason)"])
            return .failure(error)
        }
    }
}
