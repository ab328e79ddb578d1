import Foundation
import QsentCore
import QsentProtocol

extension Server {
    /// The one inference thread: takes batches from the scheduler and fills the slots.
    func startWorker() {
        let worker = Thread { [self] in workerLoop() }
        worker.name = "qsentd-infer"
        worker.stackSize = 8 << 20
        worker.start()
    }

    private func workerLoop() {
        while let batch = queue.popBatch(maxTexts: config.maxBatch, maxTokens: config.maxBatchTokens) {
            let e = currentEngine  // a reload swaps later batches only
            stats.batch(size: batch.count)
            let id = ObjectIdentifier(e)
            let results = e.classify(encodings: batch.map { $0.encodedBy == id ? $0.encoding : e.encode($0.text) })
            if results.count == batch.count {
                for (item, r) in zip(batch, results) {
                    item.connection.fill(item.slot, index: item.index, result: .success(ClassificationResult(r)))
                }
            } else {
                let err = EngineResultCountError(expected: batch.count, got: results.count)
                logger.error("\(err)")
                for item in batch { item.connection.fill(item.slot, index: item.index, result: .failure(err)) }
            }
        }
        workerDone.signal()
    }
}

struct EngineResultCountError: Error, CustomStringConvertible {
    var expected: Int, got: Int
    var description: String { "engine returned \(got) results for \(expected) texts" }
}
