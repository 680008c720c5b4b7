import CSocket2

/// The kernel's view of a TCP connection, as `TCP_INFO` reports it (`struct tcp_info` of
/// linux/tcp.h): ``SocketHandle/tcpInfo()``.
///
/// Field names follow the kernel's, without the `tcpi_` prefix. Times the kernel counts in
/// microseconds (`rto`, `ato`, `rtt`, `rttvar`, `rcvRtt`, `minRtt`, `busyTime`, `rwndLimited`,
/// `sndbufLimited`) or in milliseconds (the `last…` fields) are `Duration`s; rates are bytes per
/// second. An older kernel fills fewer bytes than this structure holds: ``reportedLength`` says
/// how many, and the fields it did not fill are zero.
public struct TcpInfo: Hashable, Sendable {
    /// How many bytes of `struct tcp_info` the kernel filled.
    public var reportedLength: Int

    /// The connection state (`tcpi_state`).
    public var state: TcpState
    /// The congestion-avoidance state (`tcpi_ca_state`).
    public var caState: TcpCaState
    /// Retransmissions of the current segment by the retransmit timer (`tcpi_retransmits`).
    public var retransmits: UInt8
    /// Unanswered zero-window or keepalive probes (`tcpi_probes`).
    public var probes: UInt8
    /// The exponential backoff of the retransmit timer (`tcpi_backoff`).
    public var backoff: UInt8
    /// The options negotiated with the peer (`tcpi_options`).
    public var options: TcpInfoOptions
    /// The send window scale (`tcpi_snd_wscale`).
    public var sndWscale: UInt8
    /// The receive window scale (`tcpi_rcv_wscale`).
    public var rcvWscale: UInt8
    /// Whether the delivery rate was limited by the application (`tcpi_delivery_rate_app_limited`).
    public var deliveryRateAppLimited: Bool
    /// Why a client's TCP Fast Open attempt failed, 0 when it did not (`tcpi_fastopen_client_fail`).
    public var fastopenClientFail: UInt8

    /// The retransmission timeout (`tcpi_rto`).
    public var rto: Duration
    /// The delayed-acknowledgement timeout (`tcpi_ato`).
    public var ato: Duration
    /// The maximum segment size for sending (`tcpi_snd_mss`).
    public var sndMss: UInt32
    /// The estimated maximum segment size of the peer (`tcpi_rcv_mss`).
    public var rcvMss: UInt32

    /// Segments sent and not yet acknowledged (`tcpi_unacked`).
    public var unacked: UInt32
    /// Segments selectively acknowledged (`tcpi_sacked`).
    public var sacked: UInt32
    /// Segments thought lost (`tcpi_lost`).
    public var lost: UInt32
    /// Segments retransmitted and not yet acknowledged (`tcpi_retrans`).
    public var retrans: UInt32
    /// Forward-acknowledged segments; always 0 since Linux 4.15 (`tcpi_fackets`).
    public var fackets: UInt32

    /// Time since data was last sent (`tcpi_last_data_sent`).
    public var lastDataSent: Duration
    /// Time since an acknowledgement was last sent; the kernel does not record it (0)
    /// (`tcpi_last_ack_sent`).
    public var lastAckSent: Duration
    /// Time since data was last received (`tcpi_last_data_recv`).
    public var lastDataRecv: Duration
    /// Time since an acknowledgement was last received (`tcpi_last_ack_recv`).
    public var lastAckRecv: Duration

    /// The path MTU (`tcpi_pmtu`).
    public var pmtu: UInt32
    /// The slow-start threshold of the receive window (`tcpi_rcv_ssthresh`).
    public var rcvSsthresh: UInt32
    /// The smoothed round-trip time (`tcpi_rtt`).
    public var rtt: Duration
    /// The round-trip time's mean deviation (`tcpi_rttvar`).
    public var rttvar: Duration
    /// The slow-start threshold, in segments (`tcpi_snd_ssthresh`).
    public var sndSsthresh: UInt32
    /// The congestion window, in segments (`tcpi_snd_cwnd`).
    public var sndCwnd: UInt32
    /// The advertised maximum segment size (`tcpi_advmss`).
    public var advmss: UInt32
    /// The reordering metric, in segments (`tcpi_reordering`).
    public var reordering: UInt32

    /// The receiver's estimate of the round-trip time (`tcpi_rcv_rtt`).
    public var rcvRtt: Duration
    /// The receive buffer space the kernel aims for (`tcpi_rcv_space`).
    public var rcvSpace: UInt32

    /// Retransmissions over the connection's life (`tcpi_total_retrans`).
    public var totalRetrans: UInt32

    /// The pacing rate, bytes per second (`tcpi_pacing_rate`).
    public var pacingRate: UInt64
    /// The maximum pacing rate, bytes per second; `UInt64.max` when unlimited
    /// (`tcpi_max_pacing_rate`).
    public var maxPacingRate: UInt64
    /// Bytes acknowledged by the peer (`tcpi_bytes_acked`).
    public var bytesAcked: UInt64
    /// Bytes received and acknowledged (`tcpi_bytes_received`).
    public var bytesReceived: UInt64
    /// Segments sent, retransmissions included (`tcpi_segs_out`).
    public var segsOut: UInt32
    /// Segments received (`tcpi_segs_in`).
    public var segsIn: UInt32

    /// Bytes queued and not yet sent (`tcpi_notsent_bytes`).
    public var notsentBytes: UInt32
    /// The minimum round-trip time observed (`tcpi_min_rtt`); `nil` while the connection has no
    /// sample (the kernel reports its "none", `~0U`, which would read as about 4,295 s) or when
    /// the kernel is too old to report it.
    public var minRtt: Duration?
    /// Segments received that carried data (`tcpi_data_segs_in`).
    public var dataSegsIn: UInt32
    /// Segments sent that carried data (`tcpi_data_segs_out`).
    public var dataSegsOut: UInt32

    /// The most recent delivery rate, bytes per second (`tcpi_delivery_rate`).
    public var deliveryRate: UInt64

    /// Time spent sending data (`tcpi_busy_time`).
    public var busyTime: Duration
    /// Time sending was limited by the receive window (`tcpi_rwnd_limited`).
    public var rwndLimited: Duration
    /// Time sending was limited by the send buffer (`tcpi_sndbuf_limited`).
    public var sndbufLimited: Duration

    /// Segments delivered to the peer (`tcpi_delivered`).
    public var delivered: UInt32
    /// Segments delivered with an ECN congestion mark (`tcpi_delivered_ce`).
    public var deliveredCe: UInt32

    /// Bytes sent, retransmissions included (`tcpi_bytes_sent`).
    public var bytesSent: UInt64
    /// Bytes retransmitted (`tcpi_bytes_retrans`).
    public var bytesRetrans: UInt64
    /// Duplicate segments reported by D-SACK (`tcpi_dsack_dups`).
    public var dsackDups: UInt32
    /// Reordering events seen (`tcpi_reord_seen`).
    public var reordSeen: UInt32

    /// Out-of-order packets received (`tcpi_rcv_ooopack`).
    public var rcvOoopack: UInt32

    /// The peer's advertised receive window after scaling, in bytes (`tcpi_snd_wnd`).
    public var sndWnd: UInt32

    init(_ raw: socket2_tcp_info, reportedLength: Int) {
        self.reportedLength = reportedLength
        state = TcpState(rawValue: raw.tcpi_state)
        caState = TcpCaState(rawValue: raw.tcpi_ca_state)
        retransmits = raw.tcpi_retransmits
        probes = raw.tcpi_probes
        backoff = raw.tcpi_backoff
        options = TcpInfoOptions(rawValue: raw.tcpi_options)
        sndWscale = raw.tcpi_snd_wscale
        rcvWscale = raw.tcpi_rcv_wscale
        deliveryRateAppLimited = raw.tcpi_delivery_rate_app_limited != 0
        fastopenClientFail = raw.tcpi_fastopen_client_fail
        rto = .microseconds(raw.tcpi_rto)
        ato = .microseconds(raw.tcpi_ato)
        sndMss = raw.tcpi_snd_mss
        rcvMss = raw.tcpi_rcv_mss
        unacked = raw.tcpi_unacked
        sacked = raw.tcpi_sacked
        lost = raw.tcpi_lost
        retrans = raw.tcpi_retrans
        fackets = raw.tcpi_fackets
        lastDataSent = .milliseconds(raw.tcpi_last_data_sent)
        lastAckSent = .milliseconds(raw.tcpi_last_ack_sent)
        lastDataRecv = .milliseconds(raw.tcpi_last_data_recv)
        lastAckRecv = .milliseconds(raw.tcpi_last_ack_recv)
        pmtu = raw.tcpi_pmtu
        rcvSsthresh = raw.tcpi_rcv_ssthresh
        rtt = .microseconds(raw.tcpi_rtt)
        rttvar = .microseconds(raw.tcpi_rttvar)
        sndSsthresh = raw.tcpi_snd_ssthresh
        sndCwnd = raw.tcpi_snd_cwnd
        advmss = raw.tcpi_advmss
        reordering = raw.tcpi_reordering
        rcvRtt = .microseconds(raw.tcpi_rcv_rtt)
        rcvSpace = raw.tcpi_rcv_space
        totalRetrans = raw.tcpi_total_retrans
        pacingRate = raw.tcpi_pacing_rate
        maxPacingRate = raw.tcpi_max_pacing_rate
        bytesAcked = raw.tcpi_bytes_acked
        bytesReceived = raw.tcpi_bytes_received
        segsOut = raw.tcpi_segs_out
        segsIn = raw.tcpi_segs_in
        notsentBytes = raw.tcpi_notsent_bytes
        let minRttEnd = MemoryLayout<socket2_tcp_info>.offset(of: \.tcpi_min_rtt)! + MemoryLayout<UInt32>.size
        minRtt = raw.tcpi_min_rtt == UInt32.max || reportedLength < minRttEnd ? nil : .microseconds(raw.tcpi_min_rtt)
        dataSegsIn = raw.tcpi_data_segs_in
        dataSegsOut = raw.tcpi_data_segs_out
        deliveryRate = raw.tcpi_delivery_rate
        busyTime = .microseconds(raw.tcpi_busy_time)
        rwndLimited = .microseconds(raw.tcpi_rwnd_limited)
        sndbufLimited = .microseconds(raw.tcpi_sndbuf_limited)
        delivered = raw.tcpi_delivered
        deliveredCe = raw.tcpi_delivered_ce
        bytesSent = raw.tcpi_bytes_sent
        bytesRetrans = raw.tcpi_bytes_retrans
        dsackDups = raw.tcpi_dsack_dups
        reordSeen = raw.tcpi_reord_seen
        rcvOoopack = raw.tcpi_rcv_ooopack
        sndWnd = raw.tcpi_snd_wnd
    }
}

/// A TCP connection state (`TCP_ESTABLISHED`, … of netinet/tcp.h), as ``TcpInfo/state`` reports it.
///
/// `description` prints the C constant's name, or the number when it has none here.
public struct TcpState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `TCP_*` state number.
    public var rawValue: UInt8

    /// Wraps any `TCP_*` state number.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `TCP_ESTABLISHED`.
    public static let established = TcpState(rawValue: 1)
    /// `TCP_SYN_SENT`.
    public static let synSent = TcpState(rawValue: 2)
    /// `TCP_SYN_RECV`.
    public static let synRecv = TcpState(rawValue: 3)
    /// `TCP_FIN_WAIT1`.
    public static let finWait1 = TcpState(rawValue: 4)
    /// `TCP_FIN_WAIT2`.
    public static let finWait2 = TcpState(rawValue: 5)
    /// `TCP_TIME_WAIT`.
    public static let timeWait = TcpState(rawValue: 6)
    /// `TCP_CLOSE`: not connected.
    public static let close = TcpState(rawValue: 7)
    /// `TCP_CLOSE_WAIT`.
    public static let closeWait = TcpState(rawValue: 8)
    /// `TCP_LAST_ACK`.
    public static let lastAck = TcpState(rawValue: 9)
    /// `TCP_LISTEN`.
    public static let listen = TcpState(rawValue: 10)
    /// `TCP_CLOSING`.
    public static let closing = TcpState(rawValue: 11)

    private static let names = [
        "TCP_ESTABLISHED", "TCP_SYN_SENT", "TCP_SYN_RECV", "TCP_FIN_WAIT1", "TCP_FIN_WAIT2",
        "TCP_TIME_WAIT", "TCP_CLOSE", "TCP_CLOSE_WAIT", "TCP_LAST_ACK", "TCP_LISTEN", "TCP_CLOSING",
    ]

    /// The C constant's name (`TCP_ESTABLISHED`), or the number.
    public var description: String {
        (1...11).contains(rawValue) ? Self.names[Int(rawValue) - 1] : String(rawValue)
    }
}

/// A TCP congestion-avoidance state (`TCP_CA_Open`, … of netinet/tcp.h), as
/// ``TcpInfo/caState`` reports it.
public struct TcpCaState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `TCP_CA_*` number.
    public var rawValue: UInt8

    /// Wraps any `TCP_CA_*` number.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `TCP_CA_Open`: nothing unusual.
    public static let open = TcpCaState(rawValue: 0)
    /// `TCP_CA_Disorder`: duplicate acknowledgements or selective acknowledgements seen.
    public static let disorder = TcpCaState(rawValue: 1)
    /// `TCP_CA_CWR`: the window was reduced after an ECN or local congestion signal.
    public static let cwr = TcpCaState(rawValue: 2)
    /// `TCP_CA_Recovery`: fast retransmission.
    public static let recovery = TcpCaState(rawValue: 3)
    /// `TCP_CA_Loss`: retransmission timeout.
    public static let loss = TcpCaState(rawValue: 4)

    private static let names = [
        "TCP_CA_Open", "TCP_CA_Disorder", "TCP_CA_CWR", "TCP_CA_Recovery", "TCP_CA_Loss",
    ]

    /// The C constant's name (`TCP_CA_Open`), or the number.
    public var description: String {
        rawValue < 5 ? Self.names[Int(rawValue)] : String(rawValue)
    }
}

/// The TCP options a connection negotiated (`TCPI_OPT_*` of linux/tcp.h), as
/// ``TcpInfo/options`` reports them.
///
/// `description` lists the C constants' names (`[TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK]`), and any
/// bit without one as a number.
public struct TcpInfoOptions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The `TCPI_OPT_*` bits.
    public var rawValue: UInt8

    /// Wraps any `TCPI_OPT_*` bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `TCPI_OPT_TIMESTAMPS`: TCP timestamps.
    public static let timestamps = TcpInfoOptions(rawValue: 1)
    /// `TCPI_OPT_SACK`: selective acknowledgements.
    public static let sack = TcpInfoOptions(rawValue: 2)
    /// `TCPI_OPT_WSCALE`: window scaling.
    public static let wscale = TcpInfoOptions(rawValue: 4)
    /// `TCPI_OPT_ECN`: ECN was negotiated.
    public static let ecn = TcpInfoOptions(rawValue: 8)
    /// `TCPI_OPT_ECN_SEEN`: at least one ECN-capable packet was received.
    public static let ecnSeen = TcpInfoOptions(rawValue: 16)
    /// `TCPI_OPT_SYN_DATA`: the SYN carried data (TCP Fast Open).
    public static let synData = TcpInfoOptions(rawValue: 32)
    /// `TCPI_OPT_USEC_TS`: timestamps in microseconds (Linux 6.7+).
    public static let usecTs = TcpInfoOptions(rawValue: 64)

    /// The names of the bits set (`[TCPI_OPT_SACK, TCPI_OPT_WSCALE]`).
    public var description: String {
        describeFlags(rawValue, [
            (1, "TCPI_OPT_TIMESTAMPS"), (2, "TCPI_OPT_SACK"), (4, "TCPI_OPT_WSCALE"), (8, "TCPI_OPT_ECN"),
            (16, "TCPI_OPT_ECN_SEEN"), (32, "TCPI_OPT_SYN_DATA"), (64, "TCPI_OPT_USEC_TS"),
        ])
    }
}
