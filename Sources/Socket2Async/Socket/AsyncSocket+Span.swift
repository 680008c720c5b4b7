import Socket2

// Safe async forms over the standard library's spans. A span parameter is borrowed (or, inout,
// held exclusively) for the whole call, across its suspension, so its memory stays valid and
// untouched while the kernel reads or writes it — with io_uring after the call was submitted —
// and the call returns only once the kernel is done with it, as the raw forms do. Each form
// takes the span's pointer for that duration and delegates to its raw form: no allocation.

/// Runs `receive` over the free capacity of `span`, across its suspension (the caller's exclusive
/// access to the span lasts for the whole call), then counts the bytes it wrote as initialized:
/// `receive` returns the call's byte count, which with `MSG_TRUNC` may exceed the room.
nonisolated(nonsending) func appendReceived<R>(
    to span: inout OutputRawSpan,
    _ receive: nonisolated(nonsending) (UnsafeMutableRawBufferPointer) async throws -> (count: Int, result: R)
) async throws -> R {
    let free = span.withUnsafeMutableBytes { bytes, initialized in
        UnsafeMutableRawBufferPointer(rebasing: bytes[initialized...])
    }
    let (count, result) = try await receive(free)
    span.withUnsafeMutableBytes { _, initialized in initialized += min(max(count, 0), free.count) }
    return result
}

// MARK: - Receiving

extension AsyncSocket {
    /// Receives after the initialized bytes of `buffer`: `recv(2)` or `IORING_OP_RECV`. The
    /// span's initialized count grows by the bytes received; returns that number (0: end of
    /// stream, or no free capacity).
    ///
    /// The safe form of ``recv(into:flags:)-(UnsafeMutableRawBufferPointer,_)``.
    public nonisolated(nonsending) func recv(into buffer: inout OutputRawSpan, flags: MessageFlags = []) async throws -> Int {
        try await appendReceived(to: &buffer) { free in
            let count = try await recv(into: free, flags: flags)
            return (count, count)
        }
    }

    /// Receives into the front of `buffer`, overwriting it: `recv(2)` or `IORING_OP_RECV`.
    /// Returns the number of bytes written (0: end of stream, or an empty span).
    public nonisolated(nonsending) func recv(into buffer: inout MutableRawSpan, flags: MessageFlags = []) async throws -> Int {
        let bytes = buffer.withUnsafeMutableBytes { $0 }
        return try await recv(into: bytes, flags: flags)
    }

    /// Receives a datagram after the initialized bytes of `buffer`, and its sender:
    /// `recvfrom(2)` or `IORING_OP_RECVMSG`.
    public nonisolated(nonsending) func recvFrom(
        into buffer: inout OutputRawSpan, flags: MessageFlags = []
    ) async throws -> (count: Int, address: SockAddr) {
        try await appendReceived(to: &buffer) { free in
            let result = try await recvFrom(into: free, flags: flags)
            return (result.count, result)
        }
    }

    /// Receives a datagram into the front of `buffer`, and its sender: `recvfrom(2)` or
    /// `IORING_OP_RECVMSG`.
    public nonisolated(nonsending) func recvFrom(
        into buffer: inout MutableRawSpan, flags: MessageFlags = []
    ) async throws -> (count: Int, address: SockAddr) {
        let bytes = buffer.withUnsafeMutableBytes { $0 }
        return try await recvFrom(into: bytes, flags: flags)
    }

    /// Receives one buffer of coalesced datagrams after the initialized bytes of `buffer`, and
    /// its `UDP_GRO` segment size: `recvmsg(2)` when the socket is readable, without allocating.
    public nonisolated(nonsending) func recvCoalesced(
        into buffer: inout OutputRawSpan, flags: MessageFlags = []
    ) async throws -> CoalescedDatagrams {
        try await appendReceived(to: &buffer) { free in
            let datagrams = try await recvCoalesced(into: free, flags: flags)
            return (datagrams.count, datagrams)
        }
    }

    /// Receives one buffer of coalesced datagrams into the front of `buffer`, and its `UDP_GRO`
    /// segment size: `recvmsg(2)` when the socket is readable, without allocating.
    public nonisolated(nonsending) func recvCoalesced(
        into buffer: inout MutableRawSpan, flags: MessageFlags = []
    ) async throws -> CoalescedDatagrams {
        let bytes = buffer.withUnsafeMutableBytes { $0 }
        return try await recvCoalesced(into: bytes, flags: flags)
    }
}

// MARK: - Sending

extension AsyncSocket {
    /// Sends the bytes of `buffer`: `send(2)` or `IORING_OP_SEND`, with `MSG_NOSIGNAL`. Returns
    /// the number of bytes sent, which may be fewer on a stream socket.
    ///
    /// The safe form of ``send(_:flags:)-(UnsafeRawBufferPointer,_)``.
    public nonisolated(nonsending) func send(_ buffer: RawSpan, flags: MessageFlags = []) async throws -> Int {
        try await send(buffer.withUnsafeBytes { $0 }, flags: flags)
    }

    /// Sends all the bytes of `buffer`, waiting as often as needed.
    public nonisolated(nonsending) func sendAll(_ buffer: RawSpan) async throws {
        try await sendAll(buffer.withUnsafeBytes { $0 })
    }

    /// Sends the bytes of `buffer` as one datagram to `address`: `sendto(2)` or
    /// `IORING_OP_SENDMSG`.
    public nonisolated(nonsending) func sendTo(_ buffer: RawSpan, to address: SockAddr) async throws -> Int {
        try await sendTo(buffer.withUnsafeBytes { $0 }, to: address)
    }

    /// Sends the bytes of `buffer` as datagrams of `segmentSize` bytes each in one call:
    /// `sendmsg(2)` or `IORING_OP_SENDMSG` with a `UDP_SEGMENT` control message.
    public nonisolated(nonsending) func sendSegmented(
        _ buffer: RawSpan, segmentSize: UInt16, to address: SockAddr? = nil, flags: MessageFlags = []
    ) async throws -> Int {
        try await sendSegmented(buffer.withUnsafeBytes { $0 }, segmentSize: segmentSize, to: address, flags: flags)
    }
}

extension ReceivedDatagramBatch {
    /// Runs `body` over the bytes of datagram `index`, in place: the safe form of
    /// ``withUnsafeBytes(at:_:)``.
    public func withRawSpan<R, E: Error>(at index: Int, _ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes(at: index) { (bytes) throws(E) in try body(RawSpan(_unsafeBytes: bytes)) }
    }
}
