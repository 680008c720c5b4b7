/// Where a ``BufferedReader`` gets its bytes: a stream that lends each received chunk to a
/// closure. An empty chunk means the peer ended the stream. Internal, so that tests can feed a
/// reader chunks split at chosen points.
protocol ByteSource: AnyObject {
    /// Waits until bytes arrive (or the stream ends) and calls `body` with a borrowed view of
    /// them, valid only during the call; an empty span means the end of the stream.
    nonisolated(nonsending) func receive<R>(_ body: (RawSpan) throws -> R) async throws -> R
}

/// Receives from a socket with `recv(into:)` into a buffer it keeps (allocated at the first
/// receive). A stand-in until the socket's own borrowing receive is there.
final class SocketByteSource: ByteSource {
    /// Bytes asked for per receive.
    static let chunkSize = 16384

    let socket: AsyncSocket
    private var buffer: UnsafeMutableRawBufferPointer?

    init(_ socket: AsyncSocket) { self.socket = socket }

    deinit { buffer?.deallocate() }

    nonisolated(nonsending) func receive<R>(_ body: (RawSpan) throws -> R) async throws -> R {
        let buffer = self.buffer ?? .allocate(byteCount: Self.chunkSize, alignment: 16)
        self.buffer = buffer
        let count = try await socket.recv(into: buffer)
        return try body(RawSpan(_unsafeBytes: UnsafeRawBufferPointer(rebasing: buffer[..<count])))
    }
}
