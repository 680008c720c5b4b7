#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// Three ways to close a socket:
//
// - `close()` (async): pending operations end, then the descriptor is closed, then it returns;
//   the error of `close(2)` is thrown.
// - `closeInBackground()` (synchronous, for `defer`): the same, started now and finished on the
//   reactor; it returns at once.
// - `closeLingering(...)` (async, streams): the peer gets everything sent before the close, even
//   while it is still sending.

extension AsyncSocket {
    /// Closes the socket: its pending operations end first (they throw
    /// ``ReactorError/socketClosed``, once the kernel has let go of their buffers), then the
    /// descriptor is closed (`close(2)`, or `IORING_OP_CLOSE`). Closing a closed socket does
    /// nothing.
    ///
    /// Where an `await` cannot go (a `defer`), ``closeInBackground()`` does the same without
    /// waiting. When the peer may still be sending, ``closeLingering(timeout:discardingAtMost:)``
    /// makes sure it gets the last reply: a plain close with unread input makes the kernel
    /// reset the connection (RFC 1122, 4.2.2.13), and a reset can destroy data the peer has not
    /// read yet.
    public nonisolated(nonsending) func close() async throws {
        registry?.closed(io)  // before the descriptor is closed (see `ConnectionRegistry`)
        try await reactor.close(io, owner: descriptor)
    }

    /// Starts closing the socket and returns at once: the synchronous form of ``close()``, safe
    /// in a `defer`.
    ///
    /// From the moment it returns, every call on the socket throws ``ReactorError/socketClosed``
    /// and ``rawDescriptor`` is -1. Pending operations are cancelled (they throw
    /// ``ReactorError/socketClosed``); the reactor closes the descriptor (`close(2)`, or
    /// `IORING_OP_CLOSE`) once the kernel has let go of all of them, so that no operation ever
    /// runs on a descriptor number the process has reused meanwhile. The error of `close(2)`
    /// is not reported (use ``close()`` to see it). Closing a closed socket does nothing.
    ///
    /// ```swift
    /// let connection = try await listener.accept().socket
    /// defer { connection.closeInBackground() }
    /// ```
    public func closeInBackground() {
        // -1 first, and only once: no call finds the descriptor once the reactor closes it.
        guard descriptor.exchange(-1, ordering: .relaxed) >= 0 else { return }
        registry?.closed(io)
        let reactor = self.reactor
        if reactor.isCurrent {
            // Cancels what is pending now, before the caller goes on.
            guard reactor.beginClosing(io) else { return }
            Task(executorPreference: reactor) { await self.finishClosingInBackground(started: true) }
        } else {
            Task(executorPreference: reactor) { await self.finishClosingInBackground(started: false) }
        }
    }

    /// The reactor's part of ``closeInBackground()``; `started` when the pending operations are
    /// cancelled already.
    private func finishClosingInBackground(started: Bool) async {
        let reactor = self.reactor, io = self.io
        do {
            try await reactor.onReactor {
                if started || reactor.beginClosing(io) { try await reactor.finishClosing(io) }
            }
        } catch ReactorError.shutDown {
            // The reactor's thread is gone (and the operations with it): close here.
            if !io.released { _ = sys_close(io.fd) }
        } catch {
            // close(2) failed: the descriptor is released all the same (close(2), ERRORS).
        }
    }

    /// Closes a stream socket so that the peer gets everything sent before, even while the peer
    /// is still sending: shuts down writing (`shutdown(2)` with `SHUT_WR`: the peer reads the
    /// last bytes and then the end of the stream), reads and discards what the peer still sends
    /// until it closes its side, `timeout` passes or more than `maxBytes` arrived, and then
    /// closes (``close()``).
    ///
    /// A plain ``close()`` of a socket with unread input makes the kernel reset the connection
    /// instead of ending it; the peer may then lose data that had reached it but that it had not
    /// read yet (a typical victim: a server's final "ERR line too long" to a client that is
    /// still sending the line). Lingering gives the peer time to read it.
    ///
    /// The wait also ends at the task's deadline (``withTimeout(_:_:)``) and when the task is
    /// cancelled; the socket is closed in every case, also when this throws. A datagram socket
    /// is closed at once.
    ///
    /// - Parameters:
    ///   - timeout: how long to wait for the peer to close its side (at least zero).
    ///   - maxBytes: how many bytes to read and discard at most (at least zero); past that,
    ///     the connection is closed (and reset if more input is queued).
    /// - Throws: `Errno.invalidArgument` for a negative `timeout` or `maxBytes` (the socket is
    ///   then left open); the error of ``close()``.
    public nonisolated(nonsending) func closeLingering(
        timeout: Duration = .seconds(2), discardingAtMost maxBytes: Int = 1 << 20
    ) async throws {
        guard timeout >= .zero, maxBytes >= 0 else { throw Errno.invalidArgument }
        if io.isStream && rawDescriptor >= 0 {
            await discardInput(timeout: timeout, maxBytes: maxBytes)
        }
        try await close()
    }

    /// Shuts down writing and reads until the end of the stream, an error, `timeout` or
    /// `maxBytes` (the first half of ``closeLingering(timeout:discardingAtMost:)``).
    private nonisolated(nonsending) func discardInput(timeout: Duration, maxBytes: Int) async {
        do {
            try await shutdown(.write)
            let chunk = 16 * 1024
            try await withScratch(chunk) { buffer in
                try await Self.withTimeout(timeout) {
                    var discarded = 0
                    while discarded <= maxBytes {
                        let count = try await recv(into: buffer)
                        if count == 0 { return }
                        discarded += count
                    }
                }
            }
        } catch {
            // A reset, the time-out, a cancellation, a closed socket: stop lingering and close.
        }
    }
}
