#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

// `SOL_UDP` options, see udp(7), sorted by option name. `SOL_UDP`, `UDP_GRO` and `UDP_SEGMENT`
// come from glibc's <netinet/udp.h> through CSocket2.

extension SocketHandle where Self: ~Copyable {
    /// Whether the socket accepts coalesced datagrams (UDP generic receive offload):
    /// `UDP_GRO` (Linux 5.0).
    public func udpGro() throws(Errno) -> Bool {
        try getBoolOption(SOL_UDP, UDP_GRO)
    }

    /// Lets the kernel hand this socket several datagrams of one flow as one buffer, with their
    /// segment size in a `UDP_GRO` control message (see ``SocketHandle/recvCoalesced(into:flags:)-(UnsafeMutableRawBufferPointer,_)``):
    /// `UDP_GRO` (Linux 5.0).
    /// Received as ``ReceivedControlMessage/udpGroSegmentSize(_:)``.
    public func setUdpGro(_ enabled: Bool) throws(Errno) {
        try setBoolOption(SOL_UDP, UDP_GRO, enabled)
    }

    /// The segment size every send of this socket is split into (0 = none): `UDP_SEGMENT`
    /// (Linux 4.18).
    public func udpSegment() throws(Errno) -> UInt16 {
        UInt16(truncatingIfNeeded: try getOption(SOL_UDP, UDP_SEGMENT, as: CInt.self))
    }

    /// Splits every send of this socket into datagrams of `size` payload bytes, the last one
    /// possibly shorter (UDP generic segmentation offload); 0 turns it off: `UDP_SEGMENT`
    /// (Linux 4.18). A per-send size is ``ControlMessage/udpSegment(_:)``.
    public func setUdpSegment(_ size: UInt16) throws(Errno) {
        try setOption(SOL_UDP, UDP_SEGMENT, CInt(size))
    }
}
