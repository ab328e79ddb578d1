import Dispatch
import Foundation
import QsentIO

extension Server {
    /// SIGTERM/SIGINT start the graceful shutdown; SIGHUP reloads the model (once it is loaded).
    func installSignals() {
        for sig in [ProcessControl.Signal.terminate, .interrupt, .hangUp] {
            ProcessControl.ignore(sig)
            let src = DispatchSource.makeSignalSource(signal: sig.number, queue: signalQueue)
            src.setEventHandler { [self] in
                if sig == .hangUp {
                    stateLock.lock()
                    let loaded = engine != nil
                    stateLock.unlock()
                    guard loaded else { logger.notice("SIGHUP during startup ignored"); return }
                    Thread.detachNewThread { [self] in _ = reload(reason: "SIGHUP") }
                } else {
                    beginShutdown(sig.name)
                }
            }
            src.resume()
            signalSources.append(src)
        }
    }
}
