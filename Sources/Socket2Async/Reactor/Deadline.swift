#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// The deadline of the current task's socket operations, in monotonic nanoseconds
/// (`CLOCK_MONOTONIC`), set by ``AsyncSocket/withTimeout(_:_:)``.
enum SocketDeadline {
    @TaskLocal static var current: UInt64?

    /// How long an operation that is about to wait may wait, in nanoseconds: the smaller of its
    /// own `timeout` and the time left before the task's deadline (0 when that has passed);
    /// nil for no limit. Read only when an operation waits, so calls that complete at once
    /// never look.
    @inline(__always)
    static func waitLimit(_ timeout: Duration?) -> UInt64? {
        let own = timeout?.nanosecondsClamped
        guard let deadline = current else { return own }
        let now = monotonicNanoseconds()
        let left = deadline > now ? deadline - now : 0
        return own.map { min($0, left) } ?? left
    }
}

extension AsyncSocket {
    /// Runs `body` with a deadline `timeout` from now for every socket operation in it that
    /// has to wait, on any ``AsyncSocket`` and any reactor: an operation still waiting at the
    /// deadline ends and throws `Errno.timedOut` (`ETIMEDOUT`).
    ///
    /// `Errno.timedOut` here means "the deadline passed", although its description is the C
    /// library's "Connection timed out": the connection itself is fine. The kernel reports
    /// `ETIMEDOUT` on its own only for a connection it gave up on; ``deadlinePassed`` tells
    /// the two apart inside the scope.
    ///
    /// A time-out loses nothing, as a cancellation does not: an operation that completed before
    /// the deadline took effect returns its result, a receive that timed out took no byte, an
    /// accept that timed out took no connection, and a single send that timed out sent nothing;
    /// a `sendAll` that timed out may have sent part of its buffer (it does not say how much),
    /// as with `SO_SNDTIMEO` on a blocking socket. Operations that complete without waiting are
    /// not affected, so a deadline that has passed still lets queued data be received, as far
    /// as the kernel has it at once. ``close()`` ignores the deadline.
    ///
    /// Deadlines nest: an inner scope cannot extend an outer one (the earlier deadline holds),
    /// and ``connect(_:timeout:)`` waits for the earlier of its own time-out and the deadline.
    /// The deadline belongs to the task: child tasks inherit it, like any task-local value.
    ///
    /// ```swift
    /// // Drop a client that sends nothing for 30 seconds.
    /// let count = try await AsyncSocket.withTimeout(.seconds(30)) {
    ///     try await connection.recv(into: buffer)
    /// }
    /// ```
    ///
    /// `body` runs in the caller's isolation (it is `nonisolated(nonsending)`), so it can use
    /// what the caller holds — an actor's state, a local non-`Sendable` object — without sending
    /// it anywhere. A helper of your own that reads or writes a socket (a line reader, a framer)
    /// must keep to that isolation too: mark its async methods `nonisolated(nonsending)`, as
    /// `BufferedReader` and `BufferedWriter` do. Without it, a non-`Sendable` helper's async
    /// method runs on the generic executor, and a call inside `body` fails to compile ("sending
    /// 'reader' risks causing data races").
    ///
    /// ```swift
    /// final class LineReader {  // not Sendable
    ///     let socket: AsyncSocket
    ///     var pending: [UInt8] = []
    ///     init(_ socket: AsyncSocket) { self.socket = socket }
    ///
    ///     nonisolated(nonsending) func readLine() async throws -> String? { ... }
    /// }
    ///
    /// actor Session {
    ///     let reader: LineReader
    ///     func next() async throws -> String? {
    ///         try await AsyncSocket.withTimeout(.seconds(30)) { try await reader.readLine() }
    ///     }
    /// }
    /// ```
    ///
    /// The reactor keeps one timer per waiting operation
    /// and removes it when the operation ends, and allocates nothing for it; an operation that
    /// completes without waiting costs nothing. A scope around one waiting receive costs
    /// 0.7–0.9 µs more than the receive alone (package benchmark `await-resumed-timeout` against
    /// `await-resumed`, 2026-12-06): a scope around a whole exchange pays it once.
    public nonisolated(nonsending) static func withTimeout<R>(
        _ timeout: Duration, _ body: nonisolated(nonsending) () async throws -> R
    ) async rethrows -> R {
        var deadline = monotonicDeadline(after: timeout.nanosecondsClamped)
        if let outer = SocketDeadline.current { deadline = min(deadline, outer) }
        return try await SocketDeadline.$current.withValue(deadline) { try await body() }
    }

    /// Whether the current task's deadline (the innermost ``withTimeout(_:_:)`` scope, or an
    /// outer one that ends earlier) has passed; false outside any scope.
    ///
    /// Tells the two kinds of `Errno.timedOut` apart: the deadline's, and the kernel's own
    /// `ETIMEDOUT` for a connection it gave up on (unacknowledged data or zero-window probes past
    /// `TCP_USER_TIMEOUT`, keep-alive probes unanswered, a `connect` whose SYNs went unanswered).
    /// Ask inside the scope, where the deadline is known:
    ///
    /// ```swift
    /// try await AsyncSocket.withTimeout(.seconds(30)) {
    ///     do {
    ///         return try await connection.recv(into: buffer)
    ///     } catch let error as Errno where error == .timedOut && AsyncSocket.deadlinePassed {
    ///         throw IdleClient()  // the client sent nothing for 30 seconds
    ///     }
    /// }
    /// ```
    public static var deadlinePassed: Bool {
        guard let deadline = SocketDeadline.current else { return false }
        return monotonicNanoseconds() >= deadline
    }
}
