import SystemPackage

/// The TCP keepalive parameters for ``SocketHandle/setTcpKeepalive(_:)``, built the way socket2
/// builds them: `TcpKeepalive().withTime(.seconds(60)).withRetries(5)`.
///
/// A field left `nil` keeps the socket's current value (the system default unless set before).
/// Linux counts time and interval in whole seconds: sub-second parts are dropped, as socket2
/// does, and a value under one second, which would be 0, is refused before the socket is touched
/// (see ``SocketHandle/setTcpKeepalive(_:)`` for the ranges).
public struct TcpKeepalive: Hashable, Sendable {
    /// Idle time before the first probe: `TCP_KEEPIDLE`.
    public var time: Duration?
    /// Time between probes: `TCP_KEEPINTVL`.
    public var interval: Duration?
    /// Unanswered probes before the connection is dropped: `TCP_KEEPCNT`.
    public var retries: UInt32?

    /// No parameter set: ``SocketHandle/setTcpKeepalive(_:)`` then only turns `SO_KEEPALIVE` on.
    public init() {}

    /// This value with the idle time before the first probe set (`TCP_KEEPIDLE`, seconds).
    public func withTime(_ time: Duration) -> TcpKeepalive {
        var copy = self
        copy.time = time
        return copy
    }

    /// This value with the time between probes set (`TCP_KEEPINTVL`, seconds).
    public func withInterval(_ interval: Duration) -> TcpKeepalive {
        var copy = self
        copy.interval = interval
        return copy
    }

    /// This value with the number of probes set (`TCP_KEEPCNT`).
    public func withRetries(_ retries: UInt32) -> TcpKeepalive {
        var copy = self
        copy.retries = retries
        return copy
    }

    /// The kernel's limits (`MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL`, `MAX_TCP_KEEPCNT`).
    static let maxSeconds: CInt = 32_767
    static let maxRetries: UInt32 = 127

    /// The values as the kernel takes them (whole seconds), each checked against the kernel's
    /// range.
    ///
    /// - Throws: `Errno.invalidArgument` for a time or interval outside 1…32,767 whole seconds or
    ///   a count outside 1…127.
    func validated() throws(Errno) -> (time: CInt?, interval: CInt?, retries: UInt32?) {
        func seconds(_ duration: Duration?) throws(Errno) -> CInt? {
            guard let duration else { return nil }
            let seconds = try duration.wholeSeconds()
            guard seconds >= 1, seconds <= Self.maxSeconds else { throw .invalidArgument }
            return seconds
        }
        if let retries, retries < 1 || retries > Self.maxRetries { throw .invalidArgument }
        return (try seconds(time), try seconds(interval), retries)
    }
}
