import CQsentIO
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with its condition variable (pthread_mutex_t + pthread_cond_t on CLOCK_MONOTONIC),
/// for the threads of the engine pool and the daemon. Foundation's NSCondition does the same,
/// but Foundation brings ICU into a static binary; this keeps the binaries small.
///
/// `@unchecked Sendable`: the two pthread objects live in their own allocations, are never
/// moved, and are only touched through pthread calls, which are the synchronization.
public final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init")
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        #if !canImport(Darwin)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        #endif
        precondition(pthread_cond_init(cond, &attr) == 0, "pthread_cond_init")
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the mutex held.
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a signal. The caller holds the lock; it holds it again on return.
    /// Wake-ups may be spurious: re-check the condition in a loop.
    public func wait() { pthread_cond_wait(cond, mutex) }

    /// Waits for a signal or until `deadline` (``Clock/monotonicNanos()``); false on time-out.
    /// The caller holds the lock; it holds it again on return.
    @discardableResult
    public func wait(untilMonotonicNanos deadline: UInt64) -> Bool {
        #if canImport(Darwin)
        let now = Clock.monotonicNanos()
        let left = deadline > now ? deadline - now : 0
        var ts = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
        return pthread_cond_timedwait_relative_np(cond, mutex, &ts) != ETIMEDOUT
        #else
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT
        #endif
    }

    /// Wakes one waiter.
    public func signal() { pthread_cond_signal(cond) }
    /// Wakes every waiter.
    public func broadcast() { pthread_cond_broadcast(cond) }
}

/// A value behind a pthread mutex (a `ConditionLock`'s; the condition variable goes unused):
/// `Synchronization.Mutex`'s interface (`withLock` with the value `inout`), on a lock that
/// ThreadSanitizer sees. On Linux (Swift 6.3.1) `Mutex` locks inside the uninstrumented
/// standard library, so TSan sees no ordering between two threads' critical sections and
/// reports every contended `Mutex` as a race (checked: four threads incrementing one
/// `Mutex<Int>` print the right total and a "Swift access race"). The daemon's shared state
/// uses this so that Tests/sanitize.sh thread reports only real races.
///
/// `@unchecked Sendable`: `value` is only read or written inside `withLock`, under the lock.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    /// Runs `body` on the value with the mutex held.
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try lock.withLock { () throws(E) -> R in try body(&value) }
    }
}

/// A joinable POSIX thread running a Swift closure (Foundation's Thread without Foundation).
public struct OSThread: Sendable {
    private let handle: pthread_t

    /// Starts `body` on a new thread with the given stack size. `name` (at most 15 bytes are
    /// kept by Linux) shows in `top -H` and in crash reports.
    public static func spawn(
        name: String, stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void
    ) throws(IOError) -> OSThread {
        final class Start: @unchecked Sendable { // handed to exactly one thread, then released
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let start = Unmanaged.passRetained(Start(name: name, body: body))
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, max(stackSize, 64 << 10))
        #if canImport(Darwin)
        var tid: pthread_t?
        #else
        var tid = pthread_t()
        #endif
        let rc = pthread_create(&tid, &attr, { raw in
            #if canImport(Darwin)
            let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
            #else
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            #endif
            _ = start.name.withCString { cqsentio_set_thread_name($0) }
            start.body()
            return nil
        }, start.toOpaque())
        guard rc == 0 else {
            start.release()
            throw IOError("pthread_create", name, errno: Errno(rawValue: rc))
        }
        #if canImport(Darwin)
        return OSThread(handle: tid!)
        #else
        return OSThread(handle: tid)
        #endif
    }

    /// Waits for the thread to return.
    public func join() { pthread_join(handle, nil) }

    /// Lets the thread's resources go when it returns, without a join.
    public func detach() { pthread_detach(handle) }
}
