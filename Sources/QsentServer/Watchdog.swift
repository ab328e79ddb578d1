import QsentIO

extension Server {
    /// With `WatchdogSec=`, pings systemd every half interval while the accept loop is alive.
    func startWatchdog() throws(IOError) {
        guard let interval = SystemdDaemon.watchdogInterval() else { return }
        logger.info("watchdog enabled", metadata: ["interval_s": "\(interval)"])
        let t = try OSThread.spawn(name: "qsentd-watchdog", stackSize: 256 << 10) { [self] in
            while true {  // until the process exits (also while draining)
                Clock.sleep(milliseconds: max(1, Int(interval / 2 * 1000)))
                let age = stateLock.withLock { Double(Clock.monotonicNanos() - heartbeat) / 1e9 }
                // Ping only while the accept loop is alive; a hung loop lets systemd restart us.
                if age < interval / 2 { SystemdDaemon.notify("WATCHDOG=1") }
                else { logger.warning("accept loop unresponsive; skipping watchdog ping", metadata: ["age_s": "\(age)"]) }
            }
        }
        t.detach()
    }
}
