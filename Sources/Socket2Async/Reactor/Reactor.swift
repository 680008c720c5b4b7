#if canImport(Glibc)
import Glibc
#endif
import Socket2
import CURing
import Synchronization

/// An event loop on a thread of its own, driving non-blocking sockets with epoll or io_uring,
/// and an executor for the tasks that use them.
///
/// A reactor owns one thread for its whole life. It is a `TaskExecutor` and a `SerialExecutor`:
/// a task started with `Task(executorPreference: reactor)` (or inside
/// `withTaskExecutorPreference(reactor)`) runs on the reactor thread, where its socket calls
/// are made without locks or thread hops, and where the completion of an operation resumes it in
/// the same loop turn. Tasks on other executors work too: a call that has to wait moves the task
/// to the reactor thread for the wait and back afterwards.
///
/// Each loop turn runs the jobs that are ready, submits I/O, waits for events only when no job is
/// runnable, and dispatches the events, resuming the tasks they complete. Jobs enqueued from the
/// reactor thread go on a local run queue; from other threads through one queue with at most one
/// eventfd wake-up per turn.
///
/// A reactor lives until ``shutdown()``: call it when done with a reactor you created.
public final class Reactor: TaskExecutor, SerialExecutor, @unchecked Sendable {
    /// The kernel interface a reactor uses.
    public enum Backend: Sendable, Hashable, CustomStringConvertible {
        /// Readiness with `epoll(7)`, edge-triggered, one registration per socket.
        case epoll
        /// Completions with `io_uring(7)`.
        case ioUring
        /// io_uring where the kernel allows it (probed), else epoll.
        case automatic

        /// `epoll`, `io_uring` or `automatic`.
        public var description: String {
            switch self {
            case .epoll: return "epoll"
            case .ioUring: return "io_uring"
            case .automatic: return "automatic"
            }
        }

        /// Parses `epoll`, `io_uring` (or `iouring`, `uring`) and `automatic` (or `auto`).
        init?(name: String) {
            switch name.lowercased() {
            case "epoll": self = .epoll
            case "io_uring", "iouring", "uring", "io-uring": self = .ioUring
            case "automatic", "auto", "": self = .automatic
            default: return nil
            }
        }
    }

    // MARK: State shared with other threads

    /// The backend in use: `.epoll` or `.ioUring`. Set before `init` returns, constant after.
    public private(set) var backend: Backend = .epoll
    /// Whether sockets keep readiness flags (the backend's `tracksReadiness`). Constant.
    private(set) var tracksReadiness = true
    /// Whether lean receives of stream sockets draw from a shared ring of provided buffers
    /// (io_uring with multishot receives). Constant.
    private(set) var usesReceivePool = false
    /// Wakes the reactor from its wait. Open for the reactor's whole life.
    let wakeFD: CInt
    private let inbox = Inbox()
    /// The reactor thread, written by that thread before `init` returns.
    private var threadID = pthread_t()
    private var thread = pthread_t()
    private let joined = Locked(false)
    private let shutdownRequested = Atomic<Bool>(false)
    /// Set when the reactor stops taking operations.
    let isShutDown = Atomic<Bool>(false)
    /// Set when the reactor thread has ended: nothing runs there any more.
    let isFinished = Atomic<Bool>(false)
    private var startupError: (any Error)?
    private let serialCompanion: ReactorSerialExecutor
    private var unownedSerial: UnownedSerialExecutor!
    private var unownedTask: UnownedTaskExecutor!

    // MARK: Reactor-thread state

    @exclusivity(unchecked) var ops = OpTable()
    @exclusivity(unchecked) private var runQueue = JobQueue()
    @exclusivity(unchecked) var timers = TimerHeap()
    /// The backend; set on the reactor thread before `init` returns.
    @exclusivity(unchecked) var impl: (any ReactorBackend)!
    /// The backend when it is io_uring (no dynamic cast on the lean receive's path).
    @exclusivity(unchecked) private(set) var uring: URingBackend?
    /// Shutting down: new operations fail at once with `ReactorError.shutDown`.
    @exclusivity(unchecked) var stopping = false
    /// The job running now is an actor's, not a task's that prefers the reactor (`onReactor`).
    @exclusivity(unchecked) private(set) var runningIsolatedJob = false
    /// Jobs and requests handed over from other threads so far (tests, diagnostics); counted
    /// here rather than by the posting threads, which would contend on one shared counter.
    @exclusivity(unchecked) private(set) var itemsFromOtherThreads = 0
    /// Sockets read by a handler (`startReading`), and those whose handler is served after the
    /// next poll (`readersServing`: the list being served, kept for its capacity).
    @exclusivity(unchecked) var readers: [ObjectIdentifier: IOState] = [:]
    @exclusivity(unchecked) var readersToServe: [IOState] = []
    @exclusivity(unchecked) var readersServing: [IOState] = []
    /// The loop has ended: jobs can no longer run here.
    @exclusivity(unchecked) private var threadFinished = false
    /// Operations the running job may still complete without waiting (see
    /// ``takeImmediateOperation()``).
    @exclusivity(unchecked) private var immediateBudget = Reactor.immediateOperationsPerJob
    /// A job used up its budget: end the turn after it, so that the backend is polled.
    @exclusivity(unchecked) private var pollRequested = false
    /// Operations of such a job, started after the poll (their tasks suspend meanwhile).
    @exclusivity(unchecked) private var deferredStarts: [Int32] = []
    /// Accept retries after `EMFILE`/`ENFILE` (for tests and diagnostics).
    let acceptBackoffs = Atomic<Int>(0)
    /// Times the io_uring completion queue overflowed and was flushed (tests, diagnostics).
    let completionOverflows = Atomic<Int>(0)

    // MARK: Life cycle

    /// Starts a reactor and its thread.
    ///
    /// - Parameters:
    ///   - backend: `.epoll`, `.ioUring`, or `.automatic` (io_uring when the kernel allows it,
    ///     else epoll).
    ///   - configuration: the sizes of its io_uring rings and receive pool (the defaults suit
    ///     tens of thousands of connections).
    /// - Throws: `ReactorError.invalidConfiguration` for a setting out of range;
    ///   `ReactorError.ioUringUnavailable` when `.ioUring` was asked for and cannot be used;
    ///   `Errno` when the kernel refuses an epoll instance or an eventfd.
    public convenience init(backend: Backend = .automatic, configuration: Configuration = Configuration()) throws {
        try self.init(backend: backend, options: ReactorOptions(configuration))
    }

    /// A reactor with `options` (tests: a failing io_uring probe, small rings).
    init(backend requested: Backend, options: ReactorOptions) throws {
        let fd = sys_eventfd()
        guard fd >= 0 else { throw ResultCode.error(for: fd) }
        wakeFD = CInt(fd)
        serialCompanion = ReactorSerialExecutor()
        unownedSerial = UnownedSerialExecutor(ordinary: serialCompanion)
        unownedTask = UnownedTaskExecutor(ordinary: self)
        serialCompanion.reactor = self
        let latch = Latch()
        thread = spawnThread(name: "socket2-reactor") { [self] in
            threadMain(requested: requested, options: options, latch: latch)
        }
        latch.wait()
        if let startupError {
            pthread_join(thread, nil)
            joined.withLock { $0 = true }
            throw startupError
        }
    }

    deinit {
        joined.withLock { joined in
            if !joined {
                if pthread_equal(pthread_self(), thread) != 0 {
                    pthread_detach(thread)
                } else {
                    pthread_join(thread, nil)
                }
                joined = true
            }
        }
        _ = sys_close(wakeFD)
    }

    /// The reactor every `AsyncSocket` uses unless told otherwise, started on first use. Its
    /// backend comes from the environment variable `SOCKET2_BACKEND` (`epoll`, `io_uring` or
    /// `automatic`, the default).
    public static let shared: Reactor = {
        let name = getenv("SOCKET2_BACKEND").map { String(cString: $0) } ?? ""
        let backend = Backend(name: name) ?? .automatic
        do {
            return try Reactor(backend: backend)
        } catch {
            fatalError("Socket2Async: cannot start the shared reactor (\(backend)): \(error)")
        }
    }()

    /// Stops the reactor: every pending operation completes with `ReactorError.shutDown` (with
    /// io_uring, once the kernel has let go of it), the reactor's own descriptors are closed, and
    /// its thread is joined. Idempotent. Called on the reactor thread itself, it starts the
    /// shutdown and returns; the loop ends after the current turn.
    ///
    /// Jobs enqueued on the reactor after its thread ended still run, on a fallback thread.
    public func shutdown() {
        shutdownRequested.store(true, ordering: .sequentiallyConsistent)
        if isCurrent { return }
        sys_eventfd_signal(wakeFD)
        joined.withLock { joined in
            if !joined {
                pthread_join(thread, nil)
                joined = true
            }
        }
    }

    /// The reactor's thread (for diagnostics and tests).
    var threadHandle: pthread_t { thread }

    /// Whether the caller runs on the reactor thread.
    public var isCurrent: Bool {
        @inline(__always) get { pthread_equal(pthread_self(), threadID) != 0 }
    }

    // MARK: Executor

    // A job reaches the reactor in one of two roles. As the task executor (a task that prefers
    // the reactor) it runs with no isolation, so that calling nonisolated async code on the
    // reactor thread costs no executor switch. As a serial executor (an actor whose executor is
    // `asUnownedSerialExecutor()`, which is a small companion object so that the two kinds of
    // job can be told apart) it runs isolated to that executor.

    /// Enqueues a job of a task that prefers the reactor.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if isCurrent && !threadFinished {
            runQueue.push(QueuedJob(job: job, isolated: false))
        } else {
            post(.job(job))
        }
    }

    /// Enqueues a job of an actor whose executor is the reactor.
    func enqueueIsolated(_ job: UnownedJob) {
        if isCurrent && !threadFinished {
            runQueue.push(QueuedJob(job: job, isolated: true))
        } else {
            post(.isolatedJob(job))
        }
    }

    /// The reactor as the serial executor of actors: `nonisolated var unownedExecutor:
    /// UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }` runs the actor on the
    /// reactor thread. A socket call of such an actor that has to wait runs the wait as a job
    /// of the reactor's task executor and comes back to the actor afterwards, all on the
    /// reactor thread.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { unownedSerial }

    /// The reactor as a task executor: `Task(executorPreference: reactor)`.
    public func asUnownedTaskExecutor() -> UnownedTaskExecutor { unownedTask }

    /// Traps unless called on the reactor thread.
    public func checkIsolated() {
        precondition(isCurrent, "not on the reactor thread")
    }

    /// Hands `item` to the reactor thread from any thread.
    func post(_ item: InboxItem) {
        let (accepted, wake) = inbox.push(item)
        if wake { sys_eventfd_signal(wakeFD) }
        if !accepted { orphan(item) }
    }

    // MARK: The loop

    private func threadMain(requested: Backend, options: ReactorOptions, latch: Latch) {
        threadID = pthread_self()
        do {
            impl = try makeBackend(requested, options: options)
            backend = impl.kind
            tracksReadiness = impl.tracksReadiness
            uring = impl as? URingBackend
            usesReceivePool = uring?.supportsMultishot ?? false
        } catch {
            startupError = error
            latch.post()
            return
        }
        latch.post()
        runLoop()
        finish()
    }

    private func makeBackend(_ requested: Backend, options: ReactorOptions) throws -> any ReactorBackend {
        switch requested {
        case .epoll:
            return try EpollBackend(reactor: self)
        case .ioUring:
            return try URingBackend(reactor: self, options: options)
        case .automatic:
            if let uring = try? URingBackend(reactor: self, options: options) { return uring }
            return try EpollBackend(reactor: self)
        }
    }

    private func runLoop() {
        var items: [InboxItem] = []
        items.reserveCapacity(64)
        deferredStarts.reserveCapacity(64)
        while true {
            inbox.take(into: &items)
            if !items.isEmpty {
                for item in items { handle(item) }
                items.removeAll(keepingCapacity: true)
            }
            runJobs()
            if !stopping && shutdownRequested.load(ordering: .relaxed) { beginShutdown() }
            if stopping && ops.count == 0 && runQueue.isEmpty { return }

            var timeout: UInt64? = nil
            if !runQueue.isEmpty || !deferredStarts.isEmpty || !readersToServe.isEmpty {
                timeout = 0
            } else if let deadline = timers.earliestDeadline {
                let now = monotonicNanoseconds()
                timeout = deadline > now ? deadline - now : 0
            }
            if timeout != 0 && !inbox.prepareToSleep() { timeout = 0 }
            impl.poll(timeout: timeout)
            if !timers.isEmpty { fireTimers() }
            if !deferredStarts.isEmpty { startDeferred() }
            if !readersToServe.isEmpty { serveQueuedReaders() }
        }
    }

    /// Starts the operations deferred by jobs that used up their budget, after the poll that
    /// queued the other connections' work: they complete behind it.
    private func startDeferred() {
        for index in deferredStarts {
            let record = ops.record(index)
            if stopping {
                complete(record, ResultCode.shutDown)
            } else {
                impl.start(index, record)
            }
        }
        deferredStarts.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func runJobs() {
        var budget = 4096
        pollRequested = false
        while budget > 0, let queued = runQueue.pop() {
            runningIsolatedJob = queued.isolated
            immediateBudget = Self.immediateOperationsPerJob
            if queued.isolated {
                queued.job.runSynchronously(on: unownedSerial)
            } else {
                queued.job.runSynchronously(on: unownedTask)
            }
            budget -= 1
            if pollRequested { break }
        }
        runningIsolatedJob = false
    }

    /// How many operations one job may complete on the reactor thread without waiting. A task
    /// whose socket always has bytes (a peer that keeps it fed) would otherwise never suspend and
    /// hold the thread while every other connection waits; past the budget its next operation
    /// takes the waiting path, which puts the task behind the others and ends the loop turn.
    static let immediateOperationsPerJob = 128

    /// Takes one operation from the running job's budget; false when it is used up (the caller
    /// then waits instead of completing at once). Reactor thread only.
    @inline(__always)
    func takeImmediateOperation() -> Bool {
        if immediateBudget > 0 {
            immediateBudget &-= 1
            return true
        }
        pollRequested = true
        return false
    }

    /// A job that can no longer run here goes to the fallback thread.
    private func orphan(_ item: InboxItem) {
        switch item {
        case .job(let job): OrphanedJobRunner.shared.enqueue(job, serial: nil, task: unownedTask)
        case .isolatedJob(let job): OrphanedJobRunner.shared.enqueue(job, serial: unownedSerial, task: nil)
        case .cancel, .release, .call: break
        }
    }

    private func handle(_ item: InboxItem) {
        itemsFromOtherThreads += 1
        switch item {
        case .job(let job): runQueue.push(QueuedJob(job: job, isolated: false))
        case .isolatedJob(let job): runQueue.push(QueuedJob(job: job, isolated: true))
        case .cancel(let id): cancelOperation(id, reason: .cancelled)
        case .release(let io): forget(io)
        case .call(let body): body()
        }
    }

    private func fireTimers() {
        let now = monotonicNanoseconds()
        while let timer = timers.popExpired(now: now) {
            switch timer.action {
            case .timeOut:
                // Like a cancellation (an operation not started yet fails when it starts).
                cancelOperation(timer.id, reason: .timedOut)
            case .retry:
                guard let record = ops.record(for: timer.id), record.pointee.state == .pending else { continue }
                impl.retry(Int32(timer.index), record)
            }
        }
    }

    /// The operations in flight, one line each (reactor thread; diagnostics).
    func dumpOperations() -> String {
        ops.indicesInUse().map { index in
            let record = ops.record(index).pointee
            return "#\(index) \(record.kind) \(record.state) cancel=\(record.cancelReason) listed=\(record.listed) fd=\(record.fd) closed=\(record.io?.takeUnretainedValue().closed ?? false) pending=\(record.io?.takeUnretainedValue().pendingCount ?? -1) closeWaiter=\(record.io?.takeUnretainedValue().closeWaiter ?? -1)"
        }.joined(separator: "\n")
    }

    /// Schedules `action` for operation `id` in `nanoseconds`.
    func schedule(_ action: Timer.Action, for id: OpID, in nanoseconds: UInt64) {
        timers.insert(Timer(deadline: monotonicDeadline(after: nanoseconds), id: id, action: action))
    }

    private func beginShutdown() {
        stopping = true
        isShutDown.store(true, ordering: .sequentiallyConsistent)
        for index in ops.indicesInUse() {
            let record = ops.record(index)
            if record.pointee.state == .pending, record.pointee.cancelReason == .none {
                record.pointee.cancelReason = .shutDown
                impl.cancel(index, record)
            }
        }
        timers.removeAll()
        endReaders()
    }

    private func finish() {
        threadFinished = true
        for item in inbox.close() { orphan(item) }
        while let queued = runQueue.pop() {
            orphan(queued.isolated ? .isolatedJob(queued.job) : .job(queued.job))
        }
        impl.destroy()
        isFinished.store(true, ordering: .sequentiallyConsistent)
    }

    // MARK: Operations (reactor thread)

    /// Finishes an operation: stores the result and resumes its task.
    @inline(__always)
    func complete(_ record: UnsafeMutablePointer<OpRecord>, _ result: Int) {
        settle(record)
        record.pointee.result = result
        record.pointee.state = .completed
        let continuation = record.pointee.continuation
        record.pointee.continuation = nil
        continuation?.resume(returning: result)
    }

    /// The backend is done with `record`: takes it off its socket's list and, if it was pending,
    /// off the socket's count (starting a close that waited for the count to reach zero).
    /// (The record's socket state is used without retaining it: the socket's waiting task keeps
    /// it alive. Here and in `markPending` that spares a retain and a release per operation.)
    @inline(__always)
    func settle(_ record: UnsafeMutablePointer<OpRecord>) {
        record.pointee.io?._withUnsafeGuaranteedRef { settle(record, io: $0) }
    }

    @inline(__always)
    private func settle(_ record: UnsafeMutablePointer<OpRecord>, io: IOState) {
        if record.pointee.listed != 0 { unlink(record, from: io) }
        if record.pointee.state == .pending && record.pointee.kind != .close {
            io.pendingCount -= 1
            if io.pendingCount == 0 && io.closeWaiter >= 0 {
                let waiter = io.closeWaiter
                io.closeWaiter = -1
                impl.start(waiter, ops.record(waiter))
            }
        }
    }

    /// Marks `record` as pending in the backend, at the end of its socket's input or output list.
    @inline(__always)
    func markPending(_ record: UnsafeMutablePointer<OpRecord>, input: Bool) {
        record.pointee.state = .pending
        record.pointee.io?._withUnsafeGuaranteedRef { markPending(record, input: input, io: $0) }
    }

    @inline(__always)
    private func markPending(_ record: UnsafeMutablePointer<OpRecord>, input: Bool, io: IOState) {
        if record.pointee.kind != .close { io.pendingCount += 1 }
        let index = record.pointee.index
        record.pointee.next = -1
        if input {
            record.pointee.listed = 1
            record.pointee.previous = io.inputTail
            if io.inputTail >= 0 { ops.record(io.inputTail).pointee.next = index } else { io.inputHead = index }
            io.inputTail = index
        } else {
            record.pointee.listed = 2
            record.pointee.previous = io.outputTail
            if io.outputTail >= 0 { ops.record(io.outputTail).pointee.next = index } else { io.outputHead = index }
            io.outputTail = index
        }
    }

    private func unlink(_ record: UnsafeMutablePointer<OpRecord>, from io: IOState) {
        let previous = record.pointee.previous, next = record.pointee.next
        let input = record.pointee.listed == 1
        if previous >= 0 {
            ops.record(previous).pointee.next = next
        } else if input {
            io.inputHead = next
        } else {
            io.outputHead = next
        }
        if next >= 0 {
            ops.record(next).pointee.previous = previous
        } else if input {
            io.inputTail = previous
        } else {
            io.outputTail = previous
        }
        record.pointee.previous = -1
        record.pointee.next = -1
        record.pointee.listed = 0
    }

    /// Cancels the operation `id` if it is still pending (reactor thread).
    func cancelOperation(_ id: OpID, reason: CancelReason) {
        guard let record = ops.record(for: id) else { return }
        switch record.pointee.state {
        case .preparing:
            if record.pointee.cancelReason == .none { record.pointee.cancelReason = reason }
        case .pending:
            if record.pointee.cancelReason == .none {
                record.pointee.cancelReason = reason
                impl.cancel(Int32(truncatingIfNeeded: id & 0xFFFF_FFFF), record)
            }
        case .completed, .free:
            break
        }
    }

    /// Cancels the operation `id` from any thread (a task's cancellation handler).
    func requestCancel(_ id: OpID) {
        if isCurrent {
            cancelOperation(id, reason: .cancelled)
        } else {
            post(.cancel(id))
        }
    }

    /// Runs one operation on the reactor thread and returns what `finish` makes of its result.
    ///
    /// `prepare` fills in the record; the backend starts it; the task waits (cancellably) for
    /// its completion; `finish` reads the result and the record before the record is reused.
    /// The wait ends with `ETIMEDOUT` after `timeout` or at the task's socket deadline
    /// (`AsyncSocket.withTimeout`), whichever comes first.
    @inline(__always)
    nonisolated(nonsending) func perform<R>(
        _ kind: OpKind, io: IOState, timeout: Duration? = nil,
        prepare: (UnsafeMutablePointer<OpRecord>) -> Void,
        finish: (Int, UnsafeMutablePointer<OpRecord>) throws -> R
    ) async throws -> R {
        if stopping { throw ReactorError.shutDown }
        if io.closed { throw ReactorError.socketClosed }
        if kind.receivesData && io.pooled.isActive { await takeBackPooledInput(io) }
        let index = ops.allocate(kind, fd: io.fd, io: io)
        let record = ops.record(index)
        prepare(record)
        if kind.receivesData, !io.strandedDatagrams.isEmpty,
           let datagram = io.takeStrandedDatagram(maxCount: OpRecord.receiveCapacity(record),
                                                  peek: record.pointee.flags & MessageFlags.peek.rawValue != 0) {
            defer { ops.free(index) }
            return try finish(datagram.deliver(into: record), record)
        }
        let id = ops.id(of: index)
        let limit = SocketDeadline.waitLimit(timeout)
        if let limit { schedule(.timeOut, for: id, in: limit) }
        // The variant that inherits the executor: no executor switch when entering and leaving
        // it (two fewer per suspended operation). Its operation closure runs on the generic
        // executor, which `onReactor` has made the reactor (the task prefers it): the
        // continuation then resumes the task on the reactor thread.
        let result = await _unsafeInheritExecutor_withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Int, Never>) in
                precondition(isCurrent, "Socket2Async: an operation started off the reactor thread")
                record.pointee.continuation = continuation
                // Checked again: a suspension before this point (an executor switch) could have
                // let a close or a shutdown in.
                if io.closed {
                    complete(record, ResultCode.closed)
                } else if stopping {
                    complete(record, ResultCode.shutDown)
                } else if pollRequested {
                    // The job used up its budget of operations completed at once: started now,
                    // an operation whose socket is ready would complete before the task
                    // suspends (epoll tries the call when it starts). Started after the poll,
                    // it puts the task behind the others, with no allocation.
                    deferredStarts.append(index)
                } else {
                    impl.start(index, record)
                }
            }
        } onCancel: { [self] in
            requestCancel(id)
        }
        if limit != nil { timers.removeTimeOut(of: index) }
        defer { ops.free(index) }
        return try finish(result, record)
    }

    /// Runs `body` on the reactor thread with the reactor as the task's executor: at once when
    /// the task already runs as a job of the reactor's task executor, else by moving it there for
    /// the duration (`withTaskExecutorPreference`). An actor job on the reactor thread moves
    /// too: the async closure in `perform` would leave the actor for the generic executor, and
    /// without the preference its continuation would resume on the global pool.
    @inline(__always)
    nonisolated(nonsending) func onReactor<R>(_ body: nonisolated(nonsending) () async throws -> R) async throws -> R {
        if isCurrent && !runningIsolatedJob { return try await body() }
        // A stopping reactor still runs (its operations fail with `shutDown`); a finished one
        // does not.
        if isFinished.load(ordering: .relaxed) { throw ReactorError.shutDown }
        if isCurrent {
            // An actor whose executor is this reactor: its isolation keeps it on this thread.
            return try await withTaskExecutorPreference(self) {
                guard isCurrent else { throw ReactorError.shutDown }
                return try await body()
            }
        }
        // From another thread (a default actor, the global pool): `isolation: nil`, so that the
        // body runs on the reactor, the task executor, also after its waits — resumed in the
        // caller's isolation it would touch the reactor's timers and records from that thread.
        return try await withTaskExecutorPreference(self, isolation: nil) {
            // Only a reactor whose thread is gone lets a task run elsewhere now.
            guard isCurrent else { throw ReactorError.shutDown }
            return try await body()
        }
    }

    /// Closes `io`: cancels its pending operations (they fail with `ReactorError.socketClosed`),
    /// waits until the kernel has let go of them, then closes the descriptor (reactor thread).
    nonisolated(nonsending) func close(_ io: IOState) async throws {
        guard beginClosing(io) else { return }
        try await finishClosing(io)
    }

    /// The first half of `close(_:)`: marks `io` closed (operations started from now on fail
    /// with `ReactorError.socketClosed`) and cancels its pending operations. False when `io` was
    /// closed or being closed already (reactor thread).
    func beginClosing(_ io: IOState) -> Bool {
        if io.closed { return false }
        io.closed = true
        stopReading(io)
        for head in [io.inputHead, io.outputHead] {
            var index = head
            while index >= 0 {
                let record = ops.record(index)
                let next = record.pointee.next
                cancelOperation(ops.id(of: index), reason: .closed)
                index = next
            }
        }
        return true
    }

    /// The second half of `close(_:)`: waits until the kernel has let go of the cancelled
    /// operations of `io`, then closes its descriptor (reactor thread).
    nonisolated(nonsending) func finishClosing(_ io: IOState) async throws {
        let index = ops.allocate(.close, fd: io.fd, io: io)
        let record = ops.record(index)
        let result = await withUnsafeContinuation { (continuation: UnsafeContinuation<Int, Never>) in
            record.pointee.continuation = continuation
            if io.pendingCount > 0 {
                io.closeWaiter = index
            } else {
                impl.start(index, record)
            }
        }
        ops.free(index)
        forget(io)
        _ = try ResultCode.check(result)
    }

    /// Closes `io` for the object that owns it (an `AsyncSocket` or `AsyncDescriptor`), whose
    /// `descriptor` says -1 from then on: on the reactor thread, or at once when the reactor is
    /// gone (and with it every pending operation).
    nonisolated(nonsending) func close(_ io: IOState, owner descriptor: borrowing Atomic<CInt>) async throws {
        do {
            try await onReactor {
                if io.closed { return }
                descriptor.store(-1, ordering: .relaxed)
                try await close(io)
            }
        } catch ReactorError.shutDown {
            let fd = descriptor.exchange(-1, ordering: .relaxed)
            if fd >= 0 { _ = try ResultCode.check(sys_close(fd)) }
        }
    }

    /// The socket of `io` is gone without `close` (its owner was deinitialised): forget it.
    func release(_ io: IOState) {
        if isCurrent {
            forget(io)
        } else {
            post(.release(io))
        }
    }

    /// Drops what the reactor keeps for a closed socket (reactor thread).
    private func forget(_ io: IOState) {
        io.released = true
        stopReading(io)
        for fd in io.strandedConnections { _ = sys_close(fd) }
        io.strandedConnections.removeAll()
        io.dropStrandedDatagrams()
        impl.forget(io)
    }
}

/// Settings of a reactor: those of its public ``Reactor/Configuration`` (whose defaults are
/// these) and those only tests change.
struct ReactorOptions: Sendable {
    /// Make the io_uring probe fail, as when the kernel forbids io_uring.
    var failIoUringProbe = false
    /// io_uring submission and completion queue sizes.
    var submissionEntries: UInt32 = 1024
    var completionEntries: UInt32 = 8192
    /// The sizes of the io_uring receive pool of lean receives.
    var receivePool = ReceivePoolSize()
    /// Make the kernel refuse limited multishot receives, as kernels before 6.17 do.
    var refuseMultishotLimit = false
    /// Submit every receive as one submitted while the kernel holds completions back (io_uring),
    /// which only load brings about.
    var queueEveryReceive = false
}

extension Duration {
    /// Nanoseconds, clamped to `0...UInt64.max`.
    var nanosecondsClamped: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return whole &+ UInt64(attoseconds / 1_000_000_000)
    }
}

/// The serial-executor face of a reactor (see `Reactor.asUnownedSerialExecutor()`).
final class ReactorSerialExecutor: SerialExecutor, @unchecked Sendable {
    /// Set once, right after the reactor's creation.
    unowned(unsafe) var reactor: Reactor!

    func enqueue(_ job: consuming ExecutorJob) {
        reactor.enqueueIsolated(UnownedJob(job))
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    func checkIsolated() {
        precondition(reactor.isCurrent, "not on the reactor thread")
    }
}
