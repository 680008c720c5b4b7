#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

/// Options at level `IPPROTO_TCP` (`SOL_TCP`), sorted by option name; see tcp(7).
extension SocketHandle where Self: ~Copyable {
    // MARK: TCP_CONGESTION

    /// The name of the congestion control algorithm (`cubic`, `bbr`, …): `TCP_CONGESTION`.
    ///
    /// The kernel fills a 16-byte buffer (`TCP_CA_NAME_MAX`) padded with NULs; unlike socket2,
    /// which returns the padding, the bytes are cut at the first NUL.
    public func tcpCongestion() throws(Errno) -> [UInt8] {
        Array(try getOptionBytes(SOL_TCP, TCP_CONGESTION, capacity: 16).prefix { $0 != 0 })
    }

    /// Chooses the congestion control algorithm by name: `TCP_CONGESTION`. `ENOENT` for an
    /// algorithm the kernel does not have; without `CAP_NET_ADMIN`, only those listed in
    /// `net.ipv4.tcp_allowed_congestion_control` (`EPERM` otherwise).
    public func setTcpCongestion(_ name: [UInt8]) throws(Errno) {
        try setOptionBytes(SOL_TCP, TCP_CONGESTION, name)
    }

    // MARK: TCP_CORK

    /// Whether partial frames are held back: `TCP_CORK`.
    public func tcpCork() throws(Errno) -> Bool {
        try getBoolOption(SOL_TCP, TCP_CORK)
    }

    /// Holds back partial frames until the option is cleared (or 200 ms pass), to send full
    /// segments: `TCP_CORK`.
    public func setTcpCork(_ cork: Bool) throws(Errno) {
        try setBoolOption(SOL_TCP, TCP_CORK, cork)
    }

    // MARK: TCP_DEFER_ACCEPT

    /// How long a listener waits for data before it completes a connection, `nil` when it does
    /// not wait: `TCP_DEFER_ACCEPT`.
    public func tcpDeferAccept() throws(Errno) -> Duration? {
        let seconds = try getSecondsOption(SOL_TCP, TCP_DEFER_ACCEPT)
        return seconds == .zero ? nil : seconds
    }

    /// Makes a listener hand a connection to `accept(2)` only once data arrives, waiting up to
    /// `timeout` (`nil`: no waiting): `TCP_DEFER_ACCEPT`. Whole seconds; the kernel rounds up to
    /// its SYN-ACK retransmission schedule (1, 3, 7, 15 … seconds), which the getter reports.
    /// Beyond socket2.
    public func setTcpDeferAccept(_ timeout: Duration?) throws(Errno) {
        try setSecondsOption(SOL_TCP, TCP_DEFER_ACCEPT, timeout ?? .zero)
    }

    // MARK: TCP_FASTOPEN

    /// The length of the TCP Fast Open queue of a listener, 0 when Fast Open is off:
    /// `TCP_FASTOPEN`.
    public func tcpFastopen() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_TCP, TCP_FASTOPEN)
    }

    /// Enables TCP Fast Open on a listener, with at most `queueLength` connections whose SYN
    /// carried data waiting to be accepted (0 turns it off): `TCP_FASTOPEN`. Set it before or
    /// after `listen(2)`; the kernel bounds the length by `net.core.somaxconn`. Servers need the
    /// server flag (2) of `net.ipv4.tcp_fastopen`. Beyond socket2.
    public func setTcpFastopen(_ queueLength: UInt32) throws(Errno) {
        try setUInt32Option(SOL_TCP, TCP_FASTOPEN, queueLength)
    }

    // MARK: TCP_FASTOPEN_CONNECT

    /// Whether `connect(2)` defers the SYN to carry the first data: `TCP_FASTOPEN_CONNECT`.
    public func tcpFastopenConnect() throws(Errno) -> Bool {
        try getBoolOption(SOL_TCP, TCP_FASTOPEN_CONNECT)
    }

    /// Makes `connect(2)` return at once and send the SYN with the first data written, using a
    /// Fast Open cookie when the client has one: `TCP_FASTOPEN_CONNECT`. Set it before
    /// connecting (`EINVAL` after); `EOPNOTSUPP` when the client flag (1) of
    /// `net.ipv4.tcp_fastopen` is off. Beyond socket2.
    public func setTcpFastopenConnect(_ enabled: Bool) throws(Errno) {
        try setBoolOption(SOL_TCP, TCP_FASTOPEN_CONNECT, enabled)
    }

    // MARK: TCP_INFO

    /// The kernel's state and statistics of the connection: `TCP_INFO`. See ``TcpInfo``. Beyond
    /// socket2.
    public func tcpInfo() throws(Errno) -> TcpInfo {
        let size = MemoryLayout<socket2_tcp_info>.size
        var bytes = try getOptionBytes(SOL_TCP, TCP_INFO, capacity: size)
        let reported = bytes.count
        bytes += repeatElement(0, count: size - reported)  // An older kernel fills less.
        let raw = bytes.withUnsafeBytes { $0.loadUnaligned(as: socket2_tcp_info.self) }
        return TcpInfo(raw, reportedLength: reported)
    }

    // MARK: TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL

    /// The number of unanswered keepalive probes before the connection is dropped:
    /// `TCP_KEEPCNT`. See ``setTcpKeepalive(_:)``.
    public func tcpKeepaliveRetries() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_TCP, TCP_KEEPCNT)
    }

    /// The idle time before the first keepalive probe: `TCP_KEEPIDLE`. See
    /// ``setTcpKeepalive(_:)``.
    public func tcpKeepaliveTime() throws(Errno) -> Duration {
        try getSecondsOption(SOL_TCP, TCP_KEEPIDLE)
    }

    /// The time between keepalive probes: `TCP_KEEPINTVL`. See ``setTcpKeepalive(_:)``.
    public func tcpKeepaliveInterval() throws(Errno) -> Duration {
        try getSecondsOption(SOL_TCP, TCP_KEEPINTVL)
    }

    /// Turns keepalive on (`SO_KEEPALIVE`), then sets each parameter `keepalive` gives:
    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL` (whole seconds, the fraction dropped as socket2 does),
    /// `TCP_KEEPCNT`.
    ///
    /// Every value is checked before the socket is touched: a time or interval under one second
    /// (which would truncate to 0) or above 32,767 seconds, and a count of 0 or above 127, are
    /// `Errno.invalidArgument` with keepalive left as it was. socket2 passes them to the kernel,
    /// which refuses them after `SO_KEEPALIVE` is already on. The up to four calls are not
    /// atomic: a failure of the kernel's (a socket that is not TCP) leaves the earlier ones done.
    public func setTcpKeepalive(_ keepalive: TcpKeepalive) throws(Errno) {
        let (time, interval, retries) = try keepalive.validated()
        try setKeepalive(true)
        if let time { try setOption(SOL_TCP, TCP_KEEPIDLE, time) }
        if let interval { try setOption(SOL_TCP, TCP_KEEPINTVL, interval) }
        if let retries { try setUInt32Option(SOL_TCP, TCP_KEEPCNT, retries) }
    }

    // MARK: TCP_MAXSEG

    /// The maximum segment size: `TCP_MAXSEG`. Before connecting, the value set (if any); after,
    /// the one in use.
    public func tcpMss() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_TCP, TCP_MAXSEG)
    }

    /// Caps the maximum segment size of outgoing segments: `TCP_MAXSEG`. The kernel refuses
    /// values below 88 or above 32767 (`EINVAL`); 0 restores the default.
    public func setTcpMss(_ mss: UInt32) throws(Errno) {
        try setUInt32Option(SOL_TCP, TCP_MAXSEG, mss)
    }

    // MARK: TCP_NODELAY

    /// Whether Nagle's algorithm is off: `TCP_NODELAY`.
    public func tcpNodelay() throws(Errno) -> Bool {
        try getBoolOption(SOL_TCP, TCP_NODELAY)
    }

    /// Turns Nagle's algorithm off (`true`), sending small segments at once instead of
    /// gathering them: `TCP_NODELAY`.
    public func setTcpNodelay(_ nodelay: Bool) throws(Errno) {
        try setBoolOption(SOL_TCP, TCP_NODELAY, nodelay)
    }

    // MARK: TCP_NOTSENT_LOWAT

    /// The most unsent bytes the socket queues before it stops being writable:
    /// `TCP_NOTSENT_LOWAT`.
    public func tcpNotsentLowat() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_TCP, TCP_NOTSENT_LOWAT)
    }

    /// Limits the unsent bytes queued before the socket stops being writable, keeping latency
    /// low for applications that write in response to writability: `TCP_NOTSENT_LOWAT`. Values
    /// above `Int32.max` are `Errno.invalidArgument`.
    public func setTcpNotsentLowat(_ bytes: UInt32) throws(Errno) {
        try setUInt32Option(SOL_TCP, TCP_NOTSENT_LOWAT, bytes)
    }

    // MARK: TCP_QUICKACK

    /// Whether acknowledgements are sent at once rather than delayed: `TCP_QUICKACK`.
    public func tcpQuickack() throws(Errno) -> Bool {
        try getBoolOption(SOL_TCP, TCP_QUICKACK)
    }

    /// Sends acknowledgements at once (`true`) or lets them be delayed: `TCP_QUICKACK`. Not
    /// permanent: the kernel switches modes on its own as the connection goes on.
    public func setTcpQuickack(_ quickack: Bool) throws(Errno) {
        try setBoolOption(SOL_TCP, TCP_QUICKACK, quickack)
    }

    // MARK: TCP_SYNCNT

    /// The number of SYN retransmissions before `connect(2)` gives up: `TCP_SYNCNT`.
    public func tcpSyncnt() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_TCP, TCP_SYNCNT)
    }

    /// Sets the number of SYN retransmissions before `connect(2)` gives up (default
    /// `net.ipv4.tcp_syn_retries`): `TCP_SYNCNT`. The kernel refuses 0 and values above 127.
    /// Beyond socket2.
    public func setTcpSyncnt(_ count: UInt32) throws(Errno) {
        try setUInt32Option(SOL_TCP, TCP_SYNCNT, count)
    }

    // MARK: TCP_THIN_LINEAR_TIMEOUTS

    /// Whether thin streams use linear retransmission timeouts: `TCP_THIN_LINEAR_TIMEOUTS`.
    public func tcpThinLinearTimeouts() throws(Errno) -> Bool {
        try getBoolOption(SOL_TCP, TCP_THIN_LINEAR_TIMEOUTS)
    }

    /// Keeps the retransmission timeout linear (no exponential backoff for the first six) on
    /// streams with few packets in flight: `TCP_THIN_LINEAR_TIMEOUTS`.
    public func setTcpThinLinearTimeouts(_ linear: Bool) throws(Errno) {
        try setBoolOption(SOL_TCP, TCP_THIN_LINEAR_TIMEOUTS, linear)
    }

    // MARK: TCP_USER_TIMEOUT

    /// How long sent data may stay unacknowledged before the connection is dropped, `nil` for
    /// the system default: `TCP_USER_TIMEOUT`.
    public func tcpUserTimeout() throws(Errno) -> Duration? {
        let milliseconds = try getOption(SOL_TCP, TCP_USER_TIMEOUT, as: CUnsignedInt.self)
        return milliseconds == 0 ? nil : .milliseconds(milliseconds)
    }

    /// Drops the connection when sent data stays unacknowledged for `timeout` (`nil` or zero:
    /// the system default): `TCP_USER_TIMEOUT`. Whole milliseconds, clamped to `UInt32.max`
    /// as socket2 does; the kernel refuses values above `Int32.max` (`EINVAL`).
    public func setTcpUserTimeout(_ timeout: Duration?) throws(Errno) {
        try setOption(SOL_TCP, TCP_USER_TIMEOUT, try timeout?.clampedMilliseconds() ?? 0)
    }

    // MARK: TCP_WINDOW_CLAMP

    /// The bound on the advertised receive window: `TCP_WINDOW_CLAMP`.
    public func tcpWindowClamp() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_TCP, TCP_WINDOW_CLAMP)
    }

    /// Bounds the advertised receive window, in bytes: `TCP_WINDOW_CLAMP`. The kernel raises
    /// small values to half of `SOCK_MIN_RCVBUF`; 0 removes the bound on an unconnected socket.
    /// Beyond socket2.
    public func setTcpWindowClamp(_ bytes: UInt32) throws(Errno) {
        try setUInt32Option(SOL_TCP, TCP_WINDOW_CLAMP, bytes)
    }
}
