internal import QsentIO

/// A persistent pool of kernel threads: `run(parts:)` executes `body(0..<parts)` on the
/// calling thread plus `threads - 1` workers that live as long as the pool, so a GEMM costs a
/// condition-variable wake-up instead of a thread dispatch per call. The workers are QsentIO
/// `OSThread`s (pthreads) and the job slot is guarded by a QsentIO `ConditionLock`: no Foundation.
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

    init(threads: Int) {
        let s = State()
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
            state.work() // the caller takes parts too
            state.finish()
        }
    }

    /// The shared job slot. `@unchecked Sendable`: every stored property below is read and
    /// written only with `cond` locked (a QsentIO ConditionLock: one pthread mutex plus its
    /// condition variable); `job` itself is called outside the lock, for distinct part indices.
    private final class State: @unchecked Sendable {
        let cond = ConditionLock()
        var job: ((Int) -> Void)?
        var parts = 0
        var next = 0      // next unclaimed part
        var pending = 0   // parts not yet finished
        var stopping = false

        /// Installs `job`, or returns false if another job is in progress.
        func begin(_ job: @escaping (Int) -> Void, parts: Int) -> Bool {
            cond.lock()
            defer { cond.unlock() }
            if self.job != nil { return false }
            self.job = job
            self.parts = parts
            next = 0
            pending = parts
            cond.broadcast()
            return true
        }

        /// Claims and runs parts of the current job until none are left unclaimed.
        func work() {
            cond.lock()
            while let job, next < parts {
                let i = next
                next += 1
                cond.unlock()
                job(i)
                cond.lock()
                pending -= 1
                if pending == 0 { cond.broadcast() }
            }
            cond.unlock()
        }

        /// Waits until every part has finished, then clears the slot.
        func finish() {
            cond.lock()
            while pending > 0 { cond.wait() }
            job = nil
            parts = 0
            next = 0
            cond.broadcast()
            cond.unlock()
        }

        func workerLoop() {
            cond.lock()
            while !stopping {
                if job != nil && next < parts {
                    cond.unlock()
                    work()
                    cond.lock()
                } else {
                    cond.wait()
                }
            }
            cond.unlock()
        }

        func stop() {
            cond.lock()
            stopping = true
            cond.broadcast()
            cond.unlock()
        }
    }
}
