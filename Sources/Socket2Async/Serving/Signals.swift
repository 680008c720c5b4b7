#if canImport(Glibc)
import Glibc
#endif
import CURing
import SystemPackage
import Synchronization

/// A signal's number: `SIGTERM`, `SIGINT`, ….
public struct SignalNumber: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The number (`SIGTERM` is 15 on Linux).
    public var rawValue: CInt

    /// The signal numbered `rawValue`.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `SIGHUP`: the terminal went away; daemons take it as "reload".
    public static let hangUp = SignalNumber(rawValue: SIGHUP)
    /// `SIGINT`: Control-C.
    public static let interrupt = SignalNumber(rawValue: SIGINT)
    /// `SIGQUIT`.
    public static let quit = SignalNumber(rawValue: SIGQUIT)
    /// `SIGTERM`: the polite request to stop (`kill`, systemd, Kubernetes).
    public static let terminate = SignalNumber(rawValue: SIGTERM)
    /// `SIGUSR1`.
    public static let user1 = SignalNumber(rawValue: SIGUSR1)
    /// `SIGUSR2`.
    public static let user2 = SignalNumber(rawValue: SIGUSR2)
    /// `SIGCHLD`: a child process stopped or ended.
    public static let child = SignalNumber(rawValue: SIGCHLD)
    /// `SIGWINCH`: the terminal's size changed.
    public static let windowChange = SignalNumber(rawValue: SIGWINCH)
    /// `SIGALRM`.
    public static let alarm = SignalNumber(rawValue: SIGALRM)

    /// The C name (`SIGTERM`), or the number.
    public var description: String {
        switch rawValue {
        case SIGHUP: "SIGHUP"
        case SIGINT: "SIGINT"
        case SIGQUIT: "SIGQUIT"
        case SIGTERM: "SIGTERM"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        case SIGCHLD: "SIGCHLD"
        case SIGWINCH: "SIGWINCH"
        case SIGALRM: "SIGALRM"
        default: "signal \(rawValue)"
        }
    }
}

/// The signals the process receives, as an `AsyncSequence` read from a `signalfd(2)` on a
/// reactor: `for try await signal in try Signals([.terminate, .interrupt]) { … }`.
///
/// **What it does to the process.** A signal can reach a signalfd only while it is blocked in
/// every thread: else the kernel hands it to a thread that does not block it, and its
/// disposition runs (`SIGTERM` would end the process). Threads created after a thread blocked
/// a signal inherit the block, but threads created before — the reactors' threads, the Swift
/// concurrency pool, anything a library started — do not, and a program cannot reach them.
/// So creating `Signals` installs, for each of its signals and for the rest of the process's
/// life, a handler (`sigaction(2)`) that makes the thread it runs on block the signal from
/// then on and sends the signal to the process again (`kill(getpid(), signal)`). The first
/// such signal may pass through a few threads this way; from then on it waits, pending, for a
/// signalfd. Consequences:
///
/// - Any earlier handler or disposition of these signals is replaced, also after the sequence
///   is closed: a signal that arrives while no `Signals` is open stays pending until one is
///   (a later `SIGTERM` does not end the process).
/// - A signal sent to the process (`kill(2)`, `kill(getpid(), …)`, a terminal's Control-C)
///   arrives. A signal sent to one thread (`raise(3)`, `pthread_kill(3)`) arrives when that
///   thread has not received this signal before; once it blocks it, such a signal stays
///   pending for that thread alone, where no signalfd of the reactor sees it.
/// - Several `Signals` for the same signal compete: each delivery goes to one of them.
/// - Ordinary signals do not queue: several of one kind sent before the sequence reads them
///   arrive as one.
///
/// The element's wait is a readiness wait on the signalfd (``AsyncDescriptor``), so a wait that
/// is cancelled (`CancellationError`) takes no signal.
public final class Signals: AsyncSequence, Sendable {
    /// The signalfd, on its reactor.
    public let descriptor: AsyncDescriptor
    /// The signals this sequence receives.
    public let signals: Set<SignalNumber>

    private static let routed = Mutex<Set<CInt>>([])

    /// Opens a signalfd (`SFD_NONBLOCK | SFD_CLOEXEC`) for `signals` on `reactor`, routing
    /// them to it as described above.
    ///
    /// - Throws: `Errno.invalidArgument` for a signal that cannot be caught (`SIGKILL`,
    ///   `SIGSTOP`) or out of range; `Errno` from `sigaction(2)` or `signalfd(2)`.
    public init(_ signals: Set<SignalNumber>, reactor: Reactor = .shared) throws {
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in signals {
            guard signal.rawValue != SIGKILL, signal.rawValue != SIGSTOP,
                  sigaddset(&mask, signal.rawValue) == 0
            else { throw Errno.invalidArgument }
        }
        try Self.routed.withLock { routed in
            for signal in signals where !routed.contains(signal.rawValue) {
                guard socket2async_route_signal(signal.rawValue) == 0 else { throw Errno(rawValue: errno) }
                routed.insert(signal.rawValue)
            }
        }
        let fd = signalfd(-1, &mask, CInt(SFD_NONBLOCK | SFD_CLOEXEC))
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        descriptor = try AsyncDescriptor(takingOwnershipOf: FileDescriptor(rawValue: fd), reactor: reactor)
        self.signals = signals
    }

    /// Closes the signalfd: a pending `next()` throws ``ReactorError/socketClosed``. The
    /// signals stay routed (see above).
    public func close() async throws {
        try await descriptor.close()
    }

    /// An iterator over the received signals.
    public func makeAsyncIterator() -> Iterator { Iterator(descriptor: descriptor) }

    /// Reads `signalfd_siginfo` records from the signalfd.
    public struct Iterator: AsyncIteratorProtocol {
        let descriptor: AsyncDescriptor

        /// The next signal received; waits until one comes. Never nil: the sequence ends only
        /// by an error (``ReactorError/socketClosed`` once closed).
        public mutating func next() async throws -> SignalNumber? {
            var info = signalfd_siginfo()
            let size = MemoryLayout<signalfd_siginfo>.size
            let count = try await descriptor.transfer(.readable, events: CShort(POLLIN)) { fd in
                withUnsafeMutableBytes(of: &info) { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            guard count == size else { throw Errno.ioError }
            return SignalNumber(rawValue: CInt(bitPattern: info.ssi_signo))
        }
    }
}
