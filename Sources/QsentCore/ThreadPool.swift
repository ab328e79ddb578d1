import CKernels
internal import QsentIO
import Synchronization

/// A persistent pool of kernel threads: `run(parts:)` executes `body(0..<parts)` on the
/// calling thread plus `threads - 1` workers that live as long as the pool.
///
/// A forward pass posts about nine jobs per layer, microseconds apart. Waking a sleeping
/// worker through a condition variable costs a futex wake-up and, in a VM, an inter-processor
/// interrupt to a halted vCPU: tens of microseconds each time, while the caller already runs
/// its share. So a worker that finishes a job spins (with the CPU's pause hint) for
/// `spinNanos` watching for the next one, and only then sleeps on the condition variable; the
/// caller likewise spins briefly for the last part before it sleeps. Parts are claimed one by
/// one from an atomic counter, so a thread that is late (woken late, preempted) takes fewer.
/// An idle pool sleeps: it spins only within `spinNanos` of its last job.
///
/// The workers are QsentIO `OSThread`s (pthreads); the job slot is guarded by a QsentIO
/// `ConditionLock`, the counters are `Synchronization.Atomic`s: no Foundation.
///
/// Owned by a `Kernels` value (copies share it); the workers stop, and are joined, when the
/// last owner goes. Several threads may call `run` at once (the engine is callable from several
/// threads): while one job occupies the workers, another caller runs its parts itself, so
/// nothing waits on a busy pool and nothing deadlocks.
final class ThreadPool: Sendable {
    /// Threads that take parts of a job: the caller plus the workers that could be started
    /// (fewer than asked for only if the OS refused to create a thread).
    let threads: Int
    private let state: State
    private let workers: [OSThread]

    /// How long a worker watches for the next job before it sleeps (and the caller for the
    /// last part of its job): longer than the gap between two jobs of a forward pass, short
    /// enough that an idle daemon is asleep a fraction of a millisecond after its last answer.
    static let defaultSpinNanos: UInt64 = 200_000

    init(threads: Int, spinNanos: UInt64 = ThreadPool.defaultSpinNanos) {
        let s = State(spinNanos: spinNanos)
        var started: [OSThread] = []
        for i in 1..<max(1, threads) {
            // 8 MiB, as the threads that call run() have (main, the daemon's inference thread):
            // the same kernels run on both, and unoptimized builds need it (at -O0 one
            // qk_avx512_attention_head frame is 1.04 MiB; a 1 MiB stack crashed debug builds).
            // Only the pages touched are ever backed by memory.
            guard let t = try? OSThread.spawn(name: "qsent-kern-\(i)", stackSize: 8 << 20, { s.workerLoop() }) else {
                break // run with the threads we have rather than fail the engine
            }
            started.append(t)
        }
        state = s
        workers = started
        self.threads = started.count + 1
    }

    deinit {
        state.stop()
        for t in workers { t.join() }
    }

    /// Runs body(i) for every i in 0..<parts, spread over the pool; returns when all are done.
    /// `body` must be safe to call concurrently for different i.
    func run(parts: Int, _ body: (Int) -> Void) {
        if parts <= 0 { return }
        if parts == 1 || threads == 1 {
            for i in 0..<parts { body(i) }
            return
        }
        withoutActuallyEscaping(body) { job in
            guard state.begin(job, parts: parts) else {
                for i in 0..<parts { job(i) } // pool busy with another caller's job
                return
            }
            state.work(job, parts: parts) // the caller takes parts too
            state.finish()
        }
    }

    /// The shared job slot. `@unchecked Sendable`: the stored `var`s below are read and written
    /// only with `cond` locked (a QsentIO ConditionLock: one pthread mutex plus its condition
    /// variable); the `Atomic`s are read without it. `job` is called outside the lock, for
    /// distinct part indices, only by the caller and by workers counted in `holders`, and the
    /// caller clears it only once `holders` is back to zero.
    private final class State: @unchecked Sendable {
        let cond = ConditionLock()
        let spinNanos: UInt64
        /// Bumped (with `cond` held) for every job posted and at stop: spinning workers watch it.
        let epoch = Atomic<Int>(0)
        /// The next unclaimed part of the current job.
        let next = Atomic<Int>(0)
        /// Parts of the current job not finished yet.
        let pending = Atomic<Int>(0)
        var job: ((Int) -> Void)?
        var parts = 0
        var holders = 0   // workers that took `job` and may still call it
        var sleepers = 0  // workers waiting on `cond` for a job
        var stopping = false

        init(spinNanos: UInt64) { self.spinNanos = spinNanos }

        /// Installs `job`, or returns false if another job is in progress.
        func begin(_ job: @escaping (Int) -> Void, parts: Int) -> Bool {
            cond.lock()
            defer { cond.unlock() }
            if self.job != nil { return false }
            self.job = job
            self.parts = parts
            next.store(0, ordering: .relaxed)
            pending.store(parts, ordering: .relaxed)
            // Releasing: a worker that sees the new epoch (acquiring) sees the counters above;
            // it reads `job` and `parts` under `cond`.
            epoch.wrappingAdd(1, ordering: .releasing)
            if sleepers > 0 { cond.broadcast() }
            return true
        }

        /// Claims and runs parts until none are left unclaimed.
        func work(_ job: (Int) -> Void, parts: Int) {
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= parts { return }
                job(i)
                // Releasing the part's results; the caller's acquiring load of 0 sees them all.
                if pending.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                    cond.lock()
                    cond.broadcast() // the caller may be asleep in finish()
                    cond.unlock()
                }
            }
        }

        /// Waits until every part has finished and no worker holds the job, then clears the slot.
        func finish() {
            if pending.load(ordering: .acquiring) > 0 {
                let deadline = Clock.monotonicNanos() &+ spinNanos
                var spins = 0
                while pending.load(ordering: .acquiring) > 0 {
                    qk_cpu_relax()
                    spins &+= 1
                    if spins & 63 == 0 && Clock.monotonicNanos() > deadline { break }
                }
            }
            cond.lock()
            while pending.load(ordering: .acquiring) > 0 || holders > 0 { cond.wait() }
            job = nil
            parts = 0
            cond.unlock()
        }

        func workerLoop() {
            var seen = 0
            while true {
                // Spin for the next job, then sleep.
                if epoch.load(ordering: .relaxed) == seen {
                    let deadline = Clock.monotonicNanos() &+ spinNanos
                    var spins = 0
                    while epoch.load(ordering: .relaxed) == seen {
                        qk_cpu_relax()
                        spins &+= 1
                        if spins & 63 == 0 && Clock.monotonicNanos() > deadline { break }
                    }
                }
                cond.lock()
                while epoch.load(ordering: .acquiring) == seen && !stopping {
                    sleepers += 1
                    cond.wait()
                    sleepers -= 1
                }
                if stopping {
                    cond.unlock()
                    return
                }
                seen = epoch.load(ordering: .acquiring)
                if takeJob() {
                    cond.lock()
                    holders -= 1
                    if holders == 0 { cond.broadcast() }
                }
                cond.unlock()
            }
        }

        /// Called with `cond` held: takes the current job (if its caller has not finished it
        /// already) and works on it with `cond` released; returns with `cond` released if it
        /// took one, held if not. Its own function so that this worker's reference to the job
        /// is gone when it returns, before `holders` goes down (withoutActuallyEscaping checks
        /// that no reference outlives run()).
        @inline(never)
        private func takeJob() -> Bool {
            guard let job else { return false } // that job is over (its caller did every part)
            let parts = self.parts
            holders += 1
            cond.unlock()
            work(job, parts: parts)
            return true
        }

        func stop() {
            cond.lock()
            stopping = true
            epoch.wrappingAdd(1, ordering: .releasing)
            cond.broadcast()
            cond.unlock()
        }
    }
}
