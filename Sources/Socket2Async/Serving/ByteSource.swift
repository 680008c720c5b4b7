/// Where a ``BufferedReader`` gets its bytes: a stream that lends each received chunk to a
/// closure. An empty chunk means the peer ended the stream. Internal, so that tests can feed a
/// reader chunks split at chosen points.
protocol ByteSource: AnyObject {
    /// Waits until bytes arrive (or the stream ends) and calls `body` with a borrowed view of
    /// them, valid only during the call; an empty span means the end of the stream.
    nonisolated(nonsending) func receive<R>(_ body: (RawSpan) throws -> R) async throws -> R
}

/// A socket lends its received bytes with its own borrowing receive
/// (``AsyncSocket/receive(_:)``): no buffer while it waits.
extension AsyncSocket: ByteSource {}
