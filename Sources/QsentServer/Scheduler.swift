import Foundation

/// What the scheduler needs to know of a queued text.
public protocol SchedulerItem: Sendable {
    /// Exact token count after truncation (the cost of the text in a packed batch).
    var tokens: Int { get }
    /// Its size in bytes, for the byte cap of the queue.
    var bytes: Int { get }
}

/// Bounded FIFO of texts waiting for inference, drained in batches by one worker thread.
///
/// Batching policy: the worker takes texts in arrival order (FIFO across all clients) until
/// the batch has `maxTexts` texts or adding the next text would exceed `maxTokens` tokens
/// (exact counts after truncation; the first text is always taken). The engine packs sequences
/// without padding, so cost grows with total tokens, and the token cap bounds a batch's latency.
/// There is no waiting window: while one batch runs, new texts accumulate for the next.
///
/// `@unchecked Sendable`: all mutable state is guarded by `cond`.
public final class Scheduler<Item: SchedulerItem>: @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [Item] = []
    private var head = 0
    private var bytes = 0
    private var stopped = false
    /// Most texts waiting; a push that would exceed it is refused (unless the queue is empty).
    public let capacity: Int
    /// Most bytes of text waiting, likewise.
    public let capacityBytes: Int

    public init(capacity: Int, capacityBytes: Int) {
        self.capacity = capacity
        self.capacityBytes = capacityBytes
    }

    /// Texts waiting now.
    public var depth: Int {
        cond.lock(); defer { cond.unlock() }
        return items.count - head
    }

    /// Adds all items or none (false = queue full: the caller answers `busy`). An empty queue
    /// takes any request, so one request larger than the caps still runs.
    public func tryPush(_ new: [Item]) -> Bool {
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

    /// Blocks until texts are queued and returns the next batch; nil once stopped and empty.
    public func popBatch(maxTexts: Int, maxTokens: Int) -> [Item]? {
        cond.lock(); defer { cond.unlock() }
        while head == items.count {
            if stopped { return nil }
            cond.wait()
        }
        var batch: [Item] = []
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

    /// Wakes the worker; `popBatch` returns the rest, then nil.
    public func stop() {
        cond.lock()
        stopped = true
        cond.broadcast()
        cond.unlock()
    }
}
