#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// The lean receive: no buffer of the caller's, none held while the connection is idle, no
// allocation per message. The bytes are lent to a closure rather than returned as a span: a
// non-escapable value cannot live across a suspension point, and the memory they are in is the
// reactor's, which takes it back when the closure returns.

extension AsyncSocket {
    /// Waits until bytes arrive (or the stream ends) and calls `body` with a borrowed view of
    /// them, valid only during the call. An empty span means the peer ended the stream (like
    /// `recv(2)` returning 0). All the bytes passed to `body` count as received.
    ///
    /// No buffer is held while the socket waits:
    ///
    /// - With io_uring (on a stream socket), the socket's multishot `IORING_OP_RECV` selects a
    ///   buffer from a ring of provided buffers that the reactor's sockets share, and only when
    ///   bytes arrive (with incremental consumption, `IOU_PBUF_RING_INC`, many small messages
    ///   share one buffer). The request stays in the kernel between calls. The ring grows when
    ///   the kernel runs out of buffers (`ENOBUFS`: no byte is lost, and the sockets that found
    ///   it empty are served first come, first served as buffers come back) and gives buffers
    ///   back when they go unused.
    /// - With epoll (and for datagram sockets), the call waits for readability and then makes a
    ///   `recv(2)` of up to 64 KiB into memory its thread owns.
    ///
    /// Like every receive: cancellation throws `CancellationError` and loses no byte (bytes the
    /// multishot request took but no call handed out yet stay with the socket for its next
    /// receive of any form); ``close()`` ends a waiting call with ``ReactorError/socketClosed``;
    /// ``withTimeout(_:_:)`` deadlines apply. An error the request took (`ECONNRESET`, say)
    /// comes after the bytes before it, to whichever receive is next. Receives of other forms may
    /// wait on the socket at the same time: each ends with bytes as they arrive.
    ///
    /// - Parameter body: reads the bytes; its result is returned. Do not keep the span: copy
    ///   what must outlive the call.
    public nonisolated(nonsending) func receive<R>(_ body: (RawSpan) throws -> R) async throws -> R {
        if io.isStream && reactor.usesReceivePool {
            return try await receivePooled(body)
        }
        switch try await receiveIntoThreadScratch() {
        case .scratch(let count):
            // No suspension since the call: still the thread whose scratch holds the bytes.
            return try body(RawSpan(_unsafeBytes: UnsafeRawBufferPointer(rebasing: ThreadScratch.current[..<count])))
        case .stranded(let bytes):
            return try bytes.withUnsafeBytes { try body(RawSpan(_unsafeBytes: $0)) }
        }
    }

    /// Where a receive into thread memory left the bytes.
    private enum ScratchReceipt {
        /// The first `count` bytes of the thread's scratch.
        case scratch(Int)
        /// Bytes a stopped io_uring stream had taken in.
        case stranded([UInt8])
    }

    /// `recv(2)` into the thread's scratch memory when the socket is readable.
    ///
    /// Never inlined: its frame (the readiness wait's state, some 600 bytes) would become part
    /// of `receive`'s, which every waiting receive holds, the io_uring form's included; an idle
    /// connection's task would need one more 1 KiB slab of the task allocator.
    @inline(never)
    private nonisolated(nonsending) func receiveIntoThreadScratch() async throws -> ScratchReceipt {
        let reactor = self.reactor, io = self.io
        return try await receiveWhenReadable(requested: ThreadScratch.size, transferred: { receipt in
            if case .scratch(let count) = receipt { count } else { 0 }
        }, { (socket) throws(Errno) in
            .scratch(try socket.recv(into: ThreadScratch.current))
        }, orStranded: {
            try await reactor.onReactor {
                try io.takeStrandedInput(maxCount: ThreadScratch.size).map { .stranded($0.payload) }
            }
        })
    }

    /// The io_uring form: chunks of the shared buffer ring (reactor thread).
    private nonisolated(nonsending) func receivePooled<R>(_ body: (RawSpan) throws -> R) async throws -> R {
        let reactor = self.reactor, io = self.io
        return try await reactor.onReactor {
            while true {
                guard let backend = reactor.uring else { throw ReactorError.shutDown }
                if io.closed { throw ReactorError.socketClosed }
                // Bytes (or the error) a receive of another form or a stopped stream left come first.
                if let datagram = try io.takeStrandedInput(maxCount: .max) {
                    return try datagram.payload.withUnsafeBytes { try body(RawSpan(_unsafeBytes: $0)) }
                }
                let pool = try backend.receivePool()
                if !io.pooled.chunks.isEmpty {
                    let chunk = io.pooled.chunks.removeFirst()
                    io.refreshHeldInput()
                    return try Self.hand(chunk, from: pool, to: body)
                }
                let handed: R? = try await reactor.perform(.pooledWait, io: io, prepare: { _ in }, finish: { result, record in
                    // A receive of another form took the socket's input back meanwhile: look again.
                    if result == URingBackend.pooledWaitRetry { return nil }
                    let count = try ResultCode.check(result)
                    return try Self.hand(PooledChunk(result: Int32(count), buffer: UInt16(truncatingIfNeeded: record.pointee.resultFlags),
                                                     offset: UInt32(truncatingIfNeeded: record.pointee.length)),
                                         from: pool, to: body)
                })
                if let handed { return handed }
            }
        }
    }

    /// Lends a chunk's bytes to `body`, then gives its buffer back.
    private static func hand<R>(_ chunk: PooledChunk, from pool: ReceivePool, to body: (RawSpan) throws -> R) throws -> R {
        if chunk.result < 0 { throw Errno(rawValue: -chunk.result) }
        defer { pool.release(chunk) }
        if chunk.result == 0 { return try body(RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: nil, count: 0))) }
        return try body(RawSpan(_unsafeBytes: pool.bytes(of: chunk)))
    }
}
