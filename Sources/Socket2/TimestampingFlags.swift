#if canImport(Glibc)
import Glibc
#endif
import CSocket2

/// What `SO_TIMESTAMPING` records and reports: the `SOF_TIMESTAMPING_*` flags of
/// linux/net_tstamp.h (see the kernel's Documentation/networking/timestamping.rst), for
/// ``SocketHandle/setTimestamping(_:)``.
///
/// `description` lists the C constants' names (`[SOF_TIMESTAMPING_RX_SOFTWARE,
/// SOF_TIMESTAMPING_SOFTWARE]`), and any bit without one as a number.
public struct TimestampingFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The `SOF_TIMESTAMPING_*` bits.
    public var rawValue: UInt32

    /// Wraps any `SOF_TIMESTAMPING_*` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    private init(_ flag: Int) { rawValue = UInt32(flag) }

    /// `SOF_TIMESTAMPING_TX_HARDWARE`: generate hardware transmit timestamps.
    public static let txHardware = TimestampingFlags(SOF_TIMESTAMPING_TX_HARDWARE)
    /// `SOF_TIMESTAMPING_TX_SOFTWARE`: generate software transmit timestamps.
    public static let txSoftware = TimestampingFlags(SOF_TIMESTAMPING_TX_SOFTWARE)
    /// `SOF_TIMESTAMPING_RX_HARDWARE`: generate hardware receive timestamps.
    public static let rxHardware = TimestampingFlags(SOF_TIMESTAMPING_RX_HARDWARE)
    /// `SOF_TIMESTAMPING_RX_SOFTWARE`: generate software receive timestamps.
    public static let rxSoftware = TimestampingFlags(SOF_TIMESTAMPING_RX_SOFTWARE)
    /// `SOF_TIMESTAMPING_SOFTWARE`: report software timestamps.
    public static let software = TimestampingFlags(SOF_TIMESTAMPING_SOFTWARE)
    /// `SOF_TIMESTAMPING_SYS_HARDWARE`: deprecated, ignored by the kernel.
    public static let sysHardware = TimestampingFlags(SOF_TIMESTAMPING_SYS_HARDWARE)
    /// `SOF_TIMESTAMPING_RAW_HARDWARE`: report hardware timestamps.
    public static let rawHardware = TimestampingFlags(SOF_TIMESTAMPING_RAW_HARDWARE)
    /// `SOF_TIMESTAMPING_OPT_ID`: attach a unique identifier to each transmitted packet.
    public static let optId = TimestampingFlags(SOF_TIMESTAMPING_OPT_ID)
    /// `SOF_TIMESTAMPING_TX_SCHED`: timestamp before the packet enters the packet scheduler.
    public static let txSched = TimestampingFlags(SOF_TIMESTAMPING_TX_SCHED)
    /// `SOF_TIMESTAMPING_TX_ACK`: timestamp when all data is acknowledged (TCP).
    public static let txAck = TimestampingFlags(SOF_TIMESTAMPING_TX_ACK)
    /// `SOF_TIMESTAMPING_OPT_CMSG`: report the `IP_PKTINFO`-like control message with every
    /// transmit timestamp.
    public static let optCmsg = TimestampingFlags(SOF_TIMESTAMPING_OPT_CMSG)
    /// `SOF_TIMESTAMPING_OPT_TSONLY`: return only the timestamp, not the packet, on the error
    /// queue.
    public static let optTsonly = TimestampingFlags(SOF_TIMESTAMPING_OPT_TSONLY)
    /// `SOF_TIMESTAMPING_OPT_STATS`: add TCP statistics to transmit timestamps.
    public static let optStats = TimestampingFlags(SOF_TIMESTAMPING_OPT_STATS)
    /// `SOF_TIMESTAMPING_OPT_PKTINFO`: add the receiving interface to receive timestamps.
    public static let optPktinfo = TimestampingFlags(SOF_TIMESTAMPING_OPT_PKTINFO)
    /// `SOF_TIMESTAMPING_OPT_TX_SWHW`: report software and hardware transmit timestamps both.
    public static let optTxSwhw = TimestampingFlags(SOF_TIMESTAMPING_OPT_TX_SWHW)
    /// `SOF_TIMESTAMPING_BIND_PHC`: bind to a PTP hardware clock (given by the kernel's
    /// `struct so_timestamping`, which this flag set alone cannot carry).
    public static let bindPhc = TimestampingFlags(SOF_TIMESTAMPING_BIND_PHC)
    /// `SOF_TIMESTAMPING_OPT_ID_TCP` (Linux 6.2+): count `optId` in bytes of payload for TCP.
    public static let optIdTcp = TimestampingFlags(rawValue: 1 << 16)
    /// `SOF_TIMESTAMPING_OPT_RX_FILTER` (Linux 6.12+): report only the receive timestamps that
    /// the generating flags ask for.
    public static let optRxFilter = TimestampingFlags(rawValue: 1 << 17)

    /// The names of the bits set (`[SOF_TIMESTAMPING_RX_SOFTWARE, SOF_TIMESTAMPING_SOFTWARE]`).
    public var description: String {
        describeFlags(rawValue, [
            (Self.txHardware, "TX_HARDWARE"), (.txSoftware, "TX_SOFTWARE"), (.rxHardware, "RX_HARDWARE"),
            (.rxSoftware, "RX_SOFTWARE"), (.software, "SOFTWARE"), (.sysHardware, "SYS_HARDWARE"),
            (.rawHardware, "RAW_HARDWARE"), (.optId, "OPT_ID"), (.txSched, "TX_SCHED"), (.txAck, "TX_ACK"),
            (.optCmsg, "OPT_CMSG"), (.optTsonly, "OPT_TSONLY"), (.optStats, "OPT_STATS"),
            (.optPktinfo, "OPT_PKTINFO"), (.optTxSwhw, "OPT_TX_SWHW"), (.bindPhc, "BIND_PHC"),
            (.optIdTcp, "OPT_ID_TCP"), (.optRxFilter, "OPT_RX_FILTER"),
        ].map { ($0.0.rawValue, "SOF_TIMESTAMPING_" + $0.1) })
    }
}
