import QsentIO

/// What the scheduler needs to know of a queued text.
public protocol SchedulerItem: Sendable {
    /// Exact token count after truncation (the cost of the text in a packed batch).
    var tokens: Int { get }
    /// Its size in bytes, for the byte cap of the queue.
    var bytes: Int { get }
    /// The connection it came from: the unit of fairness.
    var client: Int { get }
    /// Monotonic time (ns) by which it must have started, nil for none.
    var deadline: UInt64? { get }
}

/// How batches are formed (see `Scheduler`).
public struct BatchPolicy: Sendable, Equatable {
    /// Most texts in one batch (`--max-batch`).
    public var maxTexts: Int
    /// Token budget of a batch (`--max-batch-tokens`).
    public var maxTokens: Int
    /// While texts of two or more clients wait, a batch's budget shrinks so that it runs for
    /// about this long (from the measured cost per token), but not below `minTokens`.
    public var targetNanos: UInt64
    /// With one client active, a batch runs at most about this long, which bounds what a client
    /// arriving meanwhile waits for the batch in progress.
    public var soloTargetNanos: UInt64
    /// Floor of the shrunk budget (at least one full-length text).
    public var minTokens: Int
    /// Deficit-round-robin quantum: tokens a client is credited per turn.
    public var quantum: Int

    public init(maxTexts: Int, maxTokens: Int, targetNanos: UInt64 = 100_000_000, soloTargetNanos: UInt64? = nil,
                minTokens: Int = 512, quantum: Int = 512) {
        self.maxTexts = max(1, maxTexts)
        self.maxTokens = max(1, maxTokens)
        self.targetNanos = targetNanos
        self.soloTargetNanos = soloTargetNanos ?? 3 * targetNanos
        self.minTokens = max(1, min(minTokens, self.maxTokens))
        self.quantum = max(1, quantum)
    }
}

/// One scheduling decision: texts to run now, and texts whose deadline passed before they
/// started (they are answered `deadline_exceeded` and cost no compute).
public struct Batch<Item: SchedulerItem>: Sendable {
    public var items: [Item]
    public var expired: [Item]
    /// Token budget this batch was formed under.
    public var budget: Int
    public var tokens: Int { items.reduce(0) { $0 + $1.tokens } }
}

/// The queue of texts waiting for inference: one lane per client (connection), drained by one
/// worker thread in batches.
///
/// Policy (docs/PROTOCOL.md "Scheduling"):
/// - **Deficit round robin over clients, counted in tokens.** Clients with queued texts form a
///   ring. On its turn a client is credited `quantum` tokens and gives texts (in its own arrival
///   order) while its credit covers the next text; the rest of its credit carries to its next
///   turn, and is forfeited when its lane empties. A client that becomes active joins the ring
///   at the cursor, i.e. it is served next (after the turn under way): its wait depends on how
///   many clients are active, not on their backlog.
/// - **A batch packs texts from several clients** (the turns follow each other within a batch)
///   until it holds `maxTexts` texts or the next text would exceed the batch's token budget (the
///   first text is always taken). A turn cut short by a full batch continues in the next batch
///   without a new credit.
/// - **Bounded batch duration:** the budget is what runs in about `soloTargetNanos` at the
///   measured cost per token (`finished(tokens:nanos:)`) while one client is active, and shrinks
///   to about `targetNanos` while two or more are; never above `maxTokens`, never below
///   `minTokens`.
/// - **Deadlines:** a text whose deadline passed before it was taken is removed and returned in
///   `Batch.expired`.
/// - **Capacity:** at most `capacity` texts and `capacityBytes` bytes wait in all; a request
///   that does not fit is refused whole (the caller answers `busy`), except that a client with
///   nothing queued may always queue one request, so one greedy client cannot lock others out.
///
/// `@unchecked Sendable`: all mutable state is guarded by `cond`.
public final class Scheduler<Item: SchedulerItem>: @unchecked Sendable {
    private struct Lane {
        var items: [Item] = []
        var head = 0
        var deficit = 0
        var count: Int { items.count - head }
        var first: Item? { head < items.count ? items[head] : nil }

        mutating func removeFirst() -> Item {
            let it = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: items.count < 1024)
                head = 0
            } else if head > 256 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return it
        }
    }

    private let cond = ConditionLock()
    private let now: @Sendable () -> UInt64
    private var lanes: [Int: Lane] = [:]
    /// Active clients in turn order.
    private var ring: [Int] = []
    private var cursor = 0
    /// The client at `cursor` already got its credit for the current turn.
    private var credited = false
    private var depthNow = 0
    private var bytes = 0
    private var withDeadline = 0
    private var stopped = false
    /// Measured cost, nanoseconds per token (exponential average); nil before the first batch.
    private var nanosPerToken: Double?

    /// Most texts waiting in all.
    public let capacity: Int
    /// Most bytes of text waiting in all.
    public let capacityBytes: Int
    public let policy: BatchPolicy

    public init(capacity: Int, capacityBytes: Int, policy: BatchPolicy,
                now: @escaping @Sendable () -> UInt64 = { Clock.monotonicNanos() }) {
        self.capacity = capacity
        self.capacityBytes = capacityBytes
        self.policy = policy
        self.now = now
    }

    /// Texts waiting now.
    public var depth: Int { cond.withLock { depthNow } }

    /// Clients with texts waiting now.
    public var activeClients: Int { cond.withLock { ring.count } }

    /// Texts waiting from one client.
    public func depth(client: Int) -> Int { cond.withLock { lanes[client]?.count ?? 0 } }

    /// Adds all items or none (false = queue full: the caller answers `busy`). All items must
    /// come from the same client (one request).
    public func tryPush(_ new: [Item]) -> Bool {
        guard let client = new.first?.client else { return true }
        precondition(new.allSatisfy { $0.client == client }, "one request, one client")
        let nb = new.reduce(0) { $0 + $1.bytes }
        cond.lock(); defer { cond.unlock() }
        let idle = (lanes[client]?.count ?? 0) == 0
        if !idle && (depthNow + new.count > capacity || bytes + nb > capacityBytes) { return false }
        if idle {
            lanes[client] = Lane()
            // Served next: before the cursor's client, or right after it if its turn is under
            // way (a full batch cut it short; it continues without a new credit).
            if cursor >= ring.count { cursor = 0; credited = false }
            ring.insert(client, at: credited ? cursor + 1 : cursor)
        }
        lanes[client]!.items.append(contentsOf: new)
        depthNow += new.count
        bytes += nb
        withDeadline += new.reduce(0) { $0 + ($1.deadline == nil ? 0 : 1) }
        cond.signal()
        return true
    }

    /// Blocks until texts are queued and returns the next batch (possibly only expired texts);
    /// nil once stopped and empty.
    public func popBatch() -> Batch<Item>? {
        cond.lock(); defer { cond.unlock() }
        while depthNow == 0 {
            if stopped { return nil }
            cond.wait()
        }
        return formBatch()
    }

    /// The next batch without waiting; nil if nothing is queued.
    public func nextBatch() -> Batch<Item>? {
        cond.withLock { depthNow == 0 ? nil : formBatch() }
    }

    /// Reports how long a batch of `tokens` tokens took, to size later budgets.
    public func finished(tokens: Int, nanos: UInt64) {
        guard tokens > 0 else { return }
        let perToken = Double(nanos) / Double(tokens)
        cond.withLock {
            if let old = nanosPerToken { nanosPerToken = 0.7 * old + 0.3 * perToken } else { nanosPerToken = perToken }
        }
    }

    /// The budget the next batch gets now.
    public var currentBudget: Int { cond.withLock { budget() } }

    /// Removes everything a client has queued (its connection is gone) and returns it.
    @discardableResult
    public func remove(client: Int) -> [Item] {
        cond.lock(); defer { cond.unlock() }
        guard let lane = lanes[client] else { return [] }
        let gone = Array(lane.items[lane.head...])
        dropLane(client)
        for it in gone { account(removed: it) }
        return gone
    }

    /// Removes and returns everything queued (shutdown deadline reached).
    public func removeAll() -> [Item] {
        cond.lock(); defer { cond.unlock() }
        var out: [Item] = []
        for c in ring { if let l = lanes[c] { out += l.items[l.head...] } }
        lanes.removeAll()
        ring.removeAll()
        cursor = 0
        credited = false
        depthNow = 0
        bytes = 0
        withDeadline = 0
        return out
    }

    /// Wakes the worker; `popBatch` returns the rest, then nil.
    public func stop() {
        cond.withLock {
            stopped = true
            cond.broadcast()
        }
    }

    // MARK: under the lock

    private func budget() -> Int {
        guard let npt = nanosPerToken, npt > 0 else { return policy.maxTokens }
        let fit = Double(ring.count >= 2 ? policy.targetNanos : policy.soloTargetNanos) / npt
        let b = fit >= Double(policy.maxTokens) ? policy.maxTokens : Int(fit)
        return max(policy.minTokens, b)
    }

    private func account(removed it: Item) {
        depthNow -= 1
        bytes -= it.bytes
        if it.deadline != nil { withDeadline -= 1 }
    }

    private func dropLane(_ client: Int) {
        lanes[client] = nil
        guard let i = ring.firstIndex(of: client) else { return }
        ring.remove(at: i)
        if i < cursor { cursor -= 1 } else if i == cursor { credited = false }
        if cursor >= ring.count { cursor = 0 }
    }

    /// Removes texts whose deadline has passed, from every lane.
    private func sweepExpired(into expired: inout [Item]) {
        guard withDeadline > 0 else { return }
        let t = now()
        for c in ring {
            guard var lane = lanes[c] else { continue }
            var kept: [Item] = []
            var changed = false
            for it in lane.items[lane.head...] {
                if let d = it.deadline, d <= t { expired.append(it); account(removed: it); changed = true } else { kept.append(it) }
            }
            if changed {
                lane.items = kept
                lane.head = 0
                lanes[c] = lane
            }
        }
        for c in ring where lanes[c]!.count == 0 { dropLane(c) }
    }

    private func formBatch() -> Batch<Item> {
        var expired: [Item] = []
        sweepExpired(into: &expired)
        let limit = budget()
        var items: [Item] = []
        var tokens = 0
        turns: while items.count < policy.maxTexts && !ring.isEmpty {
            if cursor >= ring.count { cursor = 0; credited = false }
            let client = ring[cursor]
            var lane = lanes[client]!
            if !credited {
                lane.deficit += policy.quantum
                credited = true
            }
            var full = false
            while let head = lane.first, head.tokens <= lane.deficit {
                if items.count == policy.maxTexts || (!items.isEmpty && tokens + head.tokens > limit) {
                    full = true
                    break
                }
                let it = lane.removeFirst()
                lane.deficit -= it.tokens
                items.append(it)
                tokens += it.tokens
                account(removed: it)
            }
            if lane.count == 0 {
                dropLane(client)  // forfeits the rest of its credit; the cursor now names the next client
            } else {
                lanes[client] = lane
                if full { break turns }
                cursor += 1
                credited = false
            }
        }
        return Batch(items: items, expired: expired, budget: limit)
    }
}
