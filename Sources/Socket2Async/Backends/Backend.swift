/// What a reactor needs from its I/O backend (epoll or io_uring). Everything here runs on the
/// reactor thread; `AsyncSocket` only ever talks to the reactor, never to a backend.
protocol ReactorBackend: AnyObject {
    /// `.epoll` or `.ioUring`.
    var kind: Reactor.Backend { get }

    /// Whether the reactor should try a system call before handing an operation over: the
    /// readiness flags of `IOState` are kept up to date (epoll).
    var tracksReadiness: Bool { get }

    /// Takes a prepared operation (state `.preparing`, continuation set). It may complete it at
    /// once; else the operation becomes `.pending` and completes later. An operation whose
    /// `cancelReason` is already set and that cannot complete at once completes cancelled.
    func start(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>)

    /// Takes back a `.pending` operation whose `cancelReason` was just set: it completes now
    /// (epoll) or once the kernel has let go of it (io_uring), with its result if it finished
    /// before the cancellation took effect.
    func cancel(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>)

    /// A retry timer of a `.pending` operation fired.
    func retry(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>)

    /// Submits what is queued, waits for events up to `timeout` nanoseconds (0: do not wait;
    /// `nil`: until something happens, the reactor's eventfd included), and dispatches them.
    func poll(timeout: UInt64?)

    /// Prepares `io` to be read by a handler (`Reactor.startReading`): the epoll registration,
    /// the receive pool. 0, or a negative errno.
    func prepareReading(_ io: IOState) -> Int

    /// Hands the input `io` has now to its read handler, up to a fair share of it: what is left
    /// is served in a later turn (its socket queued in `readersToServe`), or when the next
    /// readiness event or completion comes.
    func serveReader(_ io: IOState)

    /// The socket is being closed: forget it (its pending operations are already over).
    func forget(_ io: IOState)

    /// Releases the backend's kernel resources. The last call.
    func destroy()
}

/// A backend's reference to the reactor that owns it (and outlives it). Each use of an
/// `unowned(unsafe)` reference still costs a retain and a release; through `callAsFunction`
/// the hot paths (a completion, a start, a readiness event) pay neither.
struct OwningReactor {
    private let reference: Unmanaged<Reactor>

    init(_ reactor: Reactor) { reference = .passUnretained(reactor) }

    @inline(__always)
    func callAsFunction<R>(_ body: (Reactor) -> R) -> R {
        reference._withUnsafeGuaranteedRef(body)
    }
}
