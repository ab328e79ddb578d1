import Foundation
import QsentCore
import QsentProtocol
import QsentTokenizer

/// One answer owed to a connection, in request order. A `texts` request is one slot with
/// several results. Guarded by its connection's condition lock.
final class Slot {
    let idJSON: String?
    let start: UInt64
    let isBatch: Bool
    var results: [Classification?]
    var failure: String?
    var remaining: Int
    /// The response line, once complete.
    var line: String?

    init(idJSON: String?, count: Int, isBatch: Bool, start: UInt64) {
        self.idJSON = idJSON
        self.isBatch = isBatch
        self.start = start
        self.results = [Classification?](repeating: nil, count: count)
        self.remaining = count
    }

    /// An already-answered slot (errors, ping, info, stats).
    init(line: String, idJSON: String?) {
        self.idJSON = idJSON
        self.isBatch = false
        self.start = 0
        self.results = []
        self.remaining = 0
        self.line = line
    }
}

struct WorkItem {
    let text: String
    /// Tokenized by the connection's reader thread (tokenization runs in parallel across clients).
    let encoding: TokenEncoding
    /// The engine whose tokenizer made `encoding`; after a reload the worker re-encodes.
    let encodedBy: ObjectIdentifier
    var tokens: Int { encoding.ids.count }
    let bytes: Int
    let slot: Slot
    let index: Int
    let connection: Connection
}

/// Bounded FIFO of texts waiting for inference, drained in batches by one worker thread.
///
/// Batching policy: the worker takes texts in arrival order (FIFO across all clients) until
/// the batch has `maxBatch` texts or adding the next text would exceed `maxBatchTokens`
/// tokens (exact counts after truncation; the first text is always taken). The engine packs sequences without
/// padding, so cost grows with total tokens, and the token cap bounds a batch's latency.
/// There is no waiting window: while one batch runs, new texts accumulate for the next.
final class WorkQueue: @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [WorkItem] = []
    private var head = 0
    private var bytes = 0
    private var stopped = false
    let capacity: Int
    let capacityBytes: Int

    init(capacity: Int, capacityBytes: Int) {
        self.capacity = capacity
        self.capacityBytes = capacityBytes
    }

    var depth: Int {
        cond.lock(); defer { cond.unlock() }
        return items.count - head
    }

    /// Adds all items or none (false = queue full).
    func tryPush(_ new: [WorkItem]) -> Bool {
        let nb = new.reduce(0) { $0 + $1.bytes }
        cond.lock(); defer { cond.unlock() }
        let depth = items.count - head
        if depth > 0 && (depth + new.count > capacity || bytes + nb > capacityBytes) { return false }
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        items.append(contentsOf: new)
        bytes += nb
        cond.signal()
        return true
    }

    /// Blocks until texts are queued; nil once stopped and empty.
    func popBatch(maxTexts: Int, maxTokens: Int) -> [WorkItem]? {
        cond.lock(); defer { cond.unlock() }
        while head == items.count {
            if stopped { return nil }
            cond.wait()
        }
        var batch: [WorkItem] = []
        var tokens = 0
        while head < items.count && batch.count < maxTexts {
            let it = items[head]
            if !batch.isEmpty && tokens + it.tokens > maxTokens { break }
            batch.append(it)
            tokens += it.tokens
            bytes -= it.bytes
            head += 1
        }
        if head == items.count {
            items.removeAll(keepingCapacity: items.count < 4096)
            head = 0
        }
        return batch
    }

    func stop() {
        cond.lock()
        stopped = true
        cond.broadcast()
        cond.unlock()
    }
}
