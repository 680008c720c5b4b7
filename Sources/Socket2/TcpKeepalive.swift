/// The TCP keepalive parameters for ``SocketHandle/setTcpKeepalive(_:)``, built the way socket2
/// builds them: `TcpKeepalive().withTime(.seconds(60)).withRetries(5)`.
///
/// A field left `nil` keeps the socket's current value (the system default unless set before).
/// Linux counts time and interval in whole seconds: sub-second parts are dropped.
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
}
