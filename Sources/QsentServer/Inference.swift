import QsentCore
import QsentIO
import QsentProtocol

extension Server {
    /// The one inference thread: takes batches from the scheduler and fills the slots.
    func startWorker() throws(IOError) -> OSThread {
        try OSThread.spawn(name: "qsentd-infer", stackSize: 8 << 20) { [self] in workerLoop() }
    }

    private func workerLoop() {
        while let batch = queue.popBatch() {
            for item in batch.expired {
                let ms = item.slot.deadlineMs.map { "\($0)" } ?? "?"
                item.connection.fill(item.slot, index: item.index, result: .failure(TextFailure(
                    code: .deadlineExceeded,
                    message: "not started within deadline_ms=\(ms) (\(queue.activeClients) clients waiting); nothing was computed: retry, or allow a longer deadline_ms")))
            }
            guard !batch.items.isEmpty else { continue }
            let e = currentEngine  // a reload swaps later batches only
            stats.batch(size: batch.items.count)
            let id = ObjectIdentifier(e)
            let t0 = Clock.monotonicNanos()
            let results = e.classify(encodings: batch.items.map { $0.encodedBy == id ? $0.encoding : e.encode($0.text) })
            queue.finished(tokens: batch.tokens, nanos: Clock.monotonicNanos() - t0)
            if results.count == batch.items.count {
                for (item, r) in zip(batch.items, results) {
                    item.connection.fill(item.slot, index: item.index, result: .success(ClassificationResult(r)))
                }
            } else {
                let err = TextFailure(code: .inferenceFailed, message: "engine returned \(results.count) results for \(batch.items.count) texts")
                logger.error("\(err)")
                for item in batch.items { item.connection.fill(item.slot, index: item.index, result: .failure(err)) }
            }
        }
    }
}
