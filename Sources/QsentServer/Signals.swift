import QsentIO
import SystemPackage

extension Server {
    /// SIGTERM/SIGINT start the graceful shutdown; SIGHUP reloads the model (once it is loaded).
    /// The handlers only write the signal's number to a pipe; a thread reads it and acts.
    func installSignals() throws(IOError) {
        let pipe = try ProcessControl.signalPipe([.terminate, .interrupt, .hangUp])
        let t = try OSThread.spawn(name: "qsentd-signals", stackSize: 256 << 10) { [self] in
            var byte = [UInt8](repeating: 0, count: 1)
            while true {  // until the process exits
                guard let n = try? pipe.readSome(into: &byte), n == 1, let sig = ProcessControl.Signal(byte: byte[0]) else {
                    Clock.sleep(milliseconds: 10)
                    continue
                }
                handle(signal: sig)
            }
        }
        t.detach()
    }

    private func handle(signal sig: ProcessControl.Signal) {
        guard sig == .hangUp else {
            beginShutdown(sig.name)
            return
        }
        let loaded = stateLock.withLock { engine != nil }
        guard loaded else { logger.notice("SIGHUP during startup ignored"); return }
        do {
            try OSThread.spawn(name: "qsentd-reload") { [self] in _ = reload(reason: "SIGHUP") }.detach()
        } catch {
            logger.error("SIGHUP: cannot start the reload: \(error)")
        }
    }
}
