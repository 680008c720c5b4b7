/// Errors of the reactor itself (the kernel's errors are thrown as `Errno`, a cancelled task's
/// as `CancellationError`).
public enum ReactorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The reactor was shut down before or while the operation was pending.
    case shutDown
    /// io_uring was asked for but cannot be used here (disabled by `kernel.io_uring_disabled`,
    /// seccomp or memlock limits, or an opcode the reactor needs is missing); the reason.
    case ioUringUnavailable(String)
    /// The socket was closed before or while the operation was pending.
    case socketClosed
    /// A setting of ``Reactor/Configuration`` is out of range: which, and its range.
    case invalidConfiguration(String)

    /// A sentence saying what went wrong.
    public var description: String {
        switch self {
        case .shutDown: return "the reactor is shut down"
        case .ioUringUnavailable(let reason): return "io_uring is unavailable: \(reason)"
        case .socketClosed: return "the socket is closed"
        case .invalidConfiguration(let reason): return "invalid reactor configuration: \(reason)"
        }
    }
}
