#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

/// Options at level `SOL_DCCP`, sorted by option name; see the kernel's
/// Documentation/networking/dccp.rst. They apply to `SOCK_DCCP` sockets; Linux 6.16 removed
/// DCCP, and on such kernels (or with the module absent) creating the socket fails.
extension SocketHandle where Self: ~Copyable {
    // MARK: DCCP_SOCKOPT_AVAILABLE_CCIDS

    /// The congestion control identifiers the kernel offers: `DCCP_SOCKOPT_AVAILABLE_CCIDS`.
    /// `capacity` is the most it reads (socket2's `N`); the kernel refuses (`EINVAL`) a buffer
    /// smaller than its list.
    public func dccpAvailableCcids(capacity: Int = 16) throws(Errno) -> CcidEndpoints {
        let ccids = try getOptionBytes(SOL_DCCP, DCCP_SOCKOPT_AVAILABLE_CCIDS, capacity: capacity)
        return CcidEndpoints(endpoints: ccids)
    }

    // MARK: DCCP_SOCKOPT_CCID

    /// Chooses the congestion control identifier of both directions (2: TCP-like, 3: TFRC):
    /// `DCCP_SOCKOPT_CCID`, a one-byte value. Set it before connecting.
    public func setDccpCcid(_ ccid: UInt8) throws(Errno) {
        try setOption(SOL_DCCP, DCCP_SOCKOPT_CCID, ccid)
    }

    // MARK: DCCP_SOCKOPT_GET_CUR_MPS

    /// The current maximum packet size, the most application data one packet carries:
    /// `DCCP_SOCKOPT_GET_CUR_MPS`.
    public func dccpCurMps() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_DCCP, DCCP_SOCKOPT_GET_CUR_MPS)
    }

    // MARK: DCCP_SOCKOPT_QPOLICY_TXQLEN

    /// The length of the transmit queue, in packets: `DCCP_SOCKOPT_QPOLICY_TXQLEN`.
    public func dccpQpolicyTxqlen() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_DCCP, DCCP_SOCKOPT_QPOLICY_TXQLEN)
    }

    /// Sets the length of the transmit queue, in packets (0: no limit):
    /// `DCCP_SOCKOPT_QPOLICY_TXQLEN`.
    public func setDccpQpolicyTxqlen(_ length: UInt32) throws(Errno) {
        try setUInt32Option(SOL_DCCP, DCCP_SOCKOPT_QPOLICY_TXQLEN, length)
    }

    // MARK: DCCP_SOCKOPT_RECV_CSCOV

    /// The least checksum coverage accepted on received packets: `DCCP_SOCKOPT_RECV_CSCOV`.
    public func dccpRecvCscov() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_DCCP, DCCP_SOCKOPT_RECV_CSCOV)
    }

    /// Sets the least checksum coverage accepted on received packets (0: all of the packet,
    /// 1 to 15: that many 32-bit words of payload): `DCCP_SOCKOPT_RECV_CSCOV`.
    public func setDccpRecvCscov(_ coverage: UInt32) throws(Errno) {
        try setUInt32Option(SOL_DCCP, DCCP_SOCKOPT_RECV_CSCOV, coverage)
    }

    // MARK: DCCP_SOCKOPT_RX_CCID

    /// The congestion control identifier of the receiving direction: `DCCP_SOCKOPT_RX_CCID`.
    /// The name keeps socket2's spelling (`dccp_xx_ccid`).
    public func dccpXxCcid() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_DCCP, DCCP_SOCKOPT_RX_CCID)
    }

    // MARK: DCCP_SOCKOPT_SEND_CSCOV

    /// The checksum coverage of packets sent: `DCCP_SOCKOPT_SEND_CSCOV`.
    public func dccpSendCscov() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_DCCP, DCCP_SOCKOPT_SEND_CSCOV)
    }

    /// Sets the checksum coverage of packets sent (0: all of the packet, 1 to 15: that many
    /// 32-bit words of payload): `DCCP_SOCKOPT_SEND_CSCOV`.
    public func setDccpSendCscov(_ coverage: UInt32) throws(Errno) {
        try setUInt32Option(SOL_DCCP, DCCP_SOCKOPT_SEND_CSCOV, coverage)
    }

    // MARK: DCCP_SOCKOPT_SERVER_TIMEWAIT

    /// Whether the server, not the client, holds the `TIMEWAIT` state:
    /// `DCCP_SOCKOPT_SERVER_TIMEWAIT`. Read as a C `int` (socket2 reads one byte, which the
    /// kernel refuses).
    public func dccpServerTimewait() throws(Errno) -> Bool {
        try getBoolOption(SOL_DCCP, DCCP_SOCKOPT_SERVER_TIMEWAIT)
    }

    /// Makes the server hold the `TIMEWAIT` state when it closes: `DCCP_SOCKOPT_SERVER_TIMEWAIT`.
    public func setDccpServerTimewait(_ serverTimewait: Bool) throws(Errno) {
        try setBoolOption(SOL_DCCP, DCCP_SOCKOPT_SERVER_TIMEWAIT, serverTimewait)
    }

    // MARK: DCCP_SOCKOPT_SERVICE

    /// The service code of the socket: `DCCP_SOCKOPT_SERVICE`.
    public func dccpService() throws(Errno) -> UInt32 {
        try getOption(SOL_DCCP, DCCP_SOCKOPT_SERVICE, as: UInt32.self)
    }

    /// Sets the service code, the 32-bit number that names the application (any value; the
    /// kernel refuses only 4294967295, "invalid"): `DCCP_SOCKOPT_SERVICE`. Set it before
    /// connecting or listening. The value is passed as it is, as socket2 does; the kernel puts
    /// it on the wire as stored, so pass `code.bigEndian` for the code in network order.
    public func setDccpService(_ service: UInt32) throws(Errno) {
        try setOption(SOL_DCCP, DCCP_SOCKOPT_SERVICE, service)
    }

    // MARK: DCCP_SOCKOPT_TX_CCID

    /// The congestion control identifier of the sending direction: `DCCP_SOCKOPT_TX_CCID`.
    public func dccpTxCcid() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_DCCP, DCCP_SOCKOPT_TX_CCID)
    }
}
