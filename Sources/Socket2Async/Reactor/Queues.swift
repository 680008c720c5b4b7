#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A value behind a `pthread_mutex_t`: the lock of the reactor's cross-thread queues.
///
/// Not `Synchronization.Mutex`, whose Linux implementation (a priority-inheritance futex that
/// the kernel hands over) is invisible to ThreadSanitizer, which then reports every contended
/// use as a race; a pthread mutex it understands, so CI's sanitizer run checks these queues too.
final class Locked<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// A job and how to run it: as the reactor's task executor (a task preferring the reactor), or
/// isolated to its serial executor (an actor whose executor is the reactor).
struct QueuedJob {
    var job: UnownedJob
    var isolated: Bool
}

/// A growable ring buffer of jobs: the reactor thread's run queue. Single-threaded.
struct JobQueue: ~Copyable {
    private var storage: UnsafeMutablePointer<QueuedJob>
    private var capacity: Int
    private var head = 0
    private(set) var count = 0

    init(capacity: Int = 1024) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    mutating func push(_ job: QueuedJob) {
        if count == capacity { grow() }
        (storage + ((head + count) & (capacity - 1))).initialize(to: job)
        count += 1
    }

    @inline(__always)
    mutating func pop() -> QueuedJob? {
        guard count > 0 else { return nil }
        let job = (storage + head).move()
        head = (head + 1) & (capacity - 1)
        count -= 1
        return job
    }

    private mutating func grow() {
        let larger = UnsafeMutablePointer<QueuedJob>.allocate(capacity: capacity * 2)
        for offset in 0..<count {
            (larger + offset).initialize(to: (storage + ((head + offset) & (capacity - 1))).move())
        }
        storage.deallocate()
        storage = larger
        capacity *= 2
        head = 0
    }
}

/// Work handed to the reactor by other threads.
enum InboxItem: Sendable {
    case job(UnownedJob)
    /// A job of an actor whose executor is the reactor.
    case isolatedJob(UnownedJob)
    /// Cancel the operation with this id (a task cancelled on another thread).
    case cancel(OpID)
    /// The socket of this state is gone: drop its registration.
    case release(IOState)
    /// Anything else that must run on the reactor thread.
    case call(@Sendable () -> Void)
}

/// The reactor's multi-producer, single-consumer queue.
///
/// Producers append under a lock (uncontended but for producers racing each other), then bump
/// `signal`: bit 0 says the reactor is, or is about to be, asleep; the other bits count pushes
/// since the reactor last looked. Only the push that finds the reactor asleep with nothing
/// pushed before it writes the eventfd, so a loop turn costs at most one wake-up however many
/// threads push. The reactor takes everything with one swap of arrays.
final class Inbox: Sendable {
    private let items = Locked<[InboxItem]>([])
    private let signal = Atomic<Int>(0)
    /// Set once the reactor thread is gone: pushes are refused from then on.
    private let closed = Atomic<Bool>(false)

    /// Reactor: announce sleep. False when something was pushed since the last `take`.
    @inline(__always)
    func prepareToSleep() -> Bool {
        signal.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged
    }

    /// Reactor: swaps the queued items into `buffer` (which must be empty) and clears the signal.
    @inline(__always)
    func take(into buffer: inout [InboxItem]) {
        guard signal.load(ordering: .relaxed) != 0 else { return }
        signal.store(0, ordering: .sequentiallyConsistent)
        items.withLock { swap(&$0, &buffer) }
    }

    /// Reactor, at the very end: no more pushes will be taken; returns what is left.
    func close() -> [InboxItem] {
        items.withLock { items in
            closed.store(true, ordering: .sequentiallyConsistent)
            defer { items.removeAll() }
            return items
        }
    }

    /// Appends `item`. `accepted` is false (and nothing queued) once the reactor is gone; `wake`
    /// is true when the caller must wake the reactor.
    @inline(__always)
    func push(_ item: InboxItem) -> (accepted: Bool, wake: Bool) {
        let accepted = items.withLock { items -> Bool in
            if closed.load(ordering: .relaxed) { return false }
            items.append(item)
            return true
        }
        guard accepted else { return (false, false) }
        let previous = signal.wrappingAdd(2, ordering: .sequentiallyConsistent).oldValue
        return (true, previous == 1)
    }
}
