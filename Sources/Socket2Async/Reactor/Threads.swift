#if canImport(Glibc)
import Glibc
#endif
import CURing

/// Starts a joinable thread running `body`.
func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, _ name: String) { self.body = body; self.name = name }
    }
    let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        _ = socket2async_set_thread_name(pthread_self(), String(box.name.prefix(15)))
        box.body()
        return nil
    }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    return thread
}

/// A one-shot signal between two threads (`sem_t`): one side waits until the other posts.
final class Latch: @unchecked Sendable {
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init() { sem_init(semaphore, 0, 0) }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func post() { sem_post(semaphore) }

    func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }
}

/// Runs the jobs that are enqueued on a reactor after its thread has ended (a task resumed by
/// the shutdown that still prefers the reactor, for instance), so that no task is stranded.
/// One lazily started thread for the whole process; it runs such jobs as if on their reactor.
final class OrphanedJobRunner: Sendable {
    static let shared = OrphanedJobRunner()

    private struct Entry: Sendable {
        let job: UnownedJob
        let serial: UnownedSerialExecutor?
        let task: UnownedTaskExecutor?
    }

    private let jobs = Locked<[Entry]>([])
    private let event: CInt

    private init() {
        event = eventfd(0, CInt(EFD_CLOEXEC))
        precondition(event >= 0, "eventfd failed: \(errno)")
        let thread = spawnThread(name: "socket2-orphans") { [self] in run() }
        pthread_detach(thread)
    }

    /// Runs `job` on `serial` (an actor's job) or `task` (a task's job).
    func enqueue(_ job: UnownedJob, serial: UnownedSerialExecutor?, task: UnownedTaskExecutor?) {
        jobs.withLock { $0.append(Entry(job: job, serial: serial, task: task)) }
        sys_eventfd_signal(event)
    }

    private func run() -> Never {
        var batch: [Entry] = []
        while true {
            sys_eventfd_drain(event)
            jobs.withLock { swap(&$0, &batch) }
            for entry in batch {
                if let serial = entry.serial {
                    entry.job.runSynchronously(on: serial)
                } else if let task = entry.task {
                    entry.job.runSynchronously(on: task)
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}

/// Memory each thread owns for receives whose bytes are lent to a closure before the thread
/// can run anything else (`AsyncSocket.receive(_:)` with epoll): 64 KiB, made at the thread's
/// first use and freed when it ends.
enum ThreadScratch {
    static let size = 64 * 1024

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let result = pthread_key_create(&key) { free($0) }
        precondition(result == 0, "pthread_key_create failed: \(result)")
        return key
    }()

    /// This thread's scratch memory.
    static var current: UnsafeMutableRawBufferPointer {
        if let memory = pthread_getspecific(key) { return UnsafeMutableRawBufferPointer(start: memory, count: size) }
        guard let memory = malloc(size) else { fatalError("Socket2Async: out of memory") }
        pthread_setspecific(key, memory)
        return UnsafeMutableRawBufferPointer(start: memory, count: size)
    }
}
