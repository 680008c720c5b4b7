// Linux UAPI constants the tests need that Swift's Glibc module does not import. Only this file
// imports CSocket2; the others use these names.
import CSocket2

enum Kernel {
    static let solUDP = CInt(SOL_UDP)
    static let udpGRO = CInt(UDP_GRO)
    static let udpSegment = CInt(UDP_SEGMENT)
    static let scmCredentials = socket2_SCM_CREDENTIALS
    static let eeOriginICMP = UInt8(SO_EE_ORIGIN_ICMP)
    static let eeOriginZeroCopy = UInt8(SO_EE_ORIGIN_ZEROCOPY)
    static let eeCodeZeroCopyCopied = UInt8(SO_EE_CODE_ZEROCOPY_COPIED)
    static let timestampingRxSoftware = UInt32(SOF_TIMESTAMPING_RX_SOFTWARE)
    static let timestampingSoftware = UInt32(SOF_TIMESTAMPING_SOFTWARE)
}
