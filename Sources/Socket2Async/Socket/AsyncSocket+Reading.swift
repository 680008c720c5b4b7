import Socket2
import SystemPackage

// Reading a stream with a handler instead of a task. A task that awaits a receive holds its
// frames while it waits: some 2.4 KiB (the task and two 1 KiB slabs of its allocator) for every
// idle connection, which no receive can shrink below. A handler holds nothing but its closure:
// servers that keep tens of thousands of mostly idle connections read them this way and start a
// task only for work that must wait.

/// What a read handler wants after a chunk (``AsyncSocket/startReading(_:)``).
public enum ReadHandling: Sendable {
    /// Call the handler again with the next bytes.
    case keepReading
    /// Stop reading: the handler is released. Bytes that arrive from now on wait in the kernel
    /// (or with the reactor) for the socket's next receive, of any form, or the next
    /// ``AsyncSocket/startReading(_:)``.
    case stopReading
}

extension AsyncSocket {
    /// Reads this stream with `handler` instead of a task: the reactor calls it on its thread
    /// with each chunk of bytes as it arrives, until the handler returns
    /// ``ReadHandling/stopReading``, the stream ends or fails, or the socket is closed. Returns
    /// once reading has started.
    ///
    /// While the connection is idle nothing is held but the socket and the closure: no task,
    /// no buffer. The reactor keeps the socket alive while it reads (as a waiting task would):
    /// the handler need not capture it. The bytes are lent, as by the lean ``receive(_:)`` (a
    /// chunk of the reactor's shared buffer ring on io_uring; on epoll a `recv(2)` of up to
    /// 64 KiB into memory of the reactor thread, when the socket is readable) and valid only
    /// during the call. While a handler reads, do not receive on the socket by other means: the
    /// two would share the bytes in arrival order.
    ///
    /// The handler's calls:
    /// - `(bytes, nil)` with bytes: a chunk of the stream, in order.
    /// - `(empty, nil)`: the peer ended the stream (like `recv(2)` returning 0).
    /// - `(empty, error)`: the stream failed (`Errno.connectionReset`, say), or the reactor
    ///   shut down (``ReactorError/shutDown``).
    ///
    /// After the end or an error the handler is released whatever it returns. Closing the socket
    /// (``close()``, ``closeInBackground()``) releases it without another call. The handler
    /// runs on the reactor thread and must not block it: it answers with the synchronous,
    /// non-blocking calls (`sendWithFlags(_:flags:)`), closes with ``closeInBackground()``, and
    /// hands work that must wait (a reply the kernel cannot take at once) to a task, returning
    /// ``ReadHandling/stopReading`` and calling `startReading` again when that task is done, so
    /// that input waits meanwhile (the kernel's receive buffer then pushes back on the peer).
    ///
    /// A reactor serves a reading socket's input in turn with its other sockets: at most a few
    /// chunks (256 KiB) per readiness event on epoll, then the others come first.
    ///
    /// Chunks follow the kernel's and the buffer ring's boundaries, not the peer's writes: a
    /// request the peer wrote at once can come in two chunks (on io_uring, when it reaches the
    /// end of a ring buffer). A server that answers each chunk as it comes should set
    /// `setTcpNodelay(true)` on the connection, or the second answer waits for the peer's
    /// delayed acknowledgement of the first (up to 40 ms on Linux).
    ///
    /// A connection a ``Server`` accepted and a handler reads outlives its handler task: a
    /// graceful ``Server/shutdown(gracePeriod:)`` shuts down its reading side (the handler sees
    /// the end of the stream once it has had the bytes that came before, and finishes as it does
    /// when the client closes), waits for the socket to be closed, and shuts it down in both
    /// directions when the grace period ends. When the reactor shuts down, the handler is called
    /// with ``ReactorError/shutDown``; to end reading sooner, close the socket, or shut down its
    /// reading side (`shutdown(.read)`).
    ///
    /// - Throws: `Errno.notSupported` for a datagram socket; `Errno.alreadyInProcess` when the
    ///   socket is already being read (by a handler, or a receive waiting on it);
    ///   ``ReactorError/socketClosed``, ``ReactorError/shutDown``; the error of registering the
    ///   socket with the reactor.
    public nonisolated(nonsending) func startReading(
        _ handler: sending @escaping (_ bytes: RawSpan, _ error: (any Error)?) -> ReadHandling
    ) async throws {
        let reactor = self.reactor, io = self.io
        try await reactor.onReactor {
            try reactor.startReading(io, of: self, handler)
        }
    }
}
