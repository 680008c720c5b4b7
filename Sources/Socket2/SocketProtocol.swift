#if canImport(Glibc)
import Glibc
#endif

/// A socket's protocol, the third argument of `socket(2)` (`IPPROTO_TCP`, …); socket2's
/// `Protocol`.
///
/// `description` prints the C constant's name, or the number when it has none here.
public struct SocketProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `IPPROTO_*` value.
    public var rawValue: CInt

    /// Wraps any protocol number.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// Wraps any protocol number.
    public init(_ rawValue: CInt) { self.rawValue = rawValue }

    /// `IPPROTO_ICMP`.
    public static let icmpv4 = SocketProtocol(CInt(IPPROTO_ICMP))
    /// `IPPROTO_ICMPV6`.
    public static let icmpv6 = SocketProtocol(CInt(IPPROTO_ICMPV6))
    /// `IPPROTO_TCP`.
    public static let tcp = SocketProtocol(CInt(IPPROTO_TCP))
    /// `IPPROTO_UDP`.
    public static let udp = SocketProtocol(CInt(IPPROTO_UDP))
    /// `IPPROTO_MPTCP`: Multipath TCP.
    public static let mptcp = SocketProtocol(262)
    /// `IPPROTO_DCCP`.
    public static let dccp = SocketProtocol(CInt(IPPROTO_DCCP))
    /// `IPPROTO_SCTP`.
    public static let sctp = SocketProtocol(CInt(IPPROTO_SCTP))
    /// `IPPROTO_UDPLITE`.
    public static let udplite = SocketProtocol(CInt(IPPROTO_UDPLITE))

    /// The `IPPROTO_*` constant's name (`IPPROTO_TCP`), or the number when it has none here, as
    /// socket2's `Debug`.
    public var description: String {
        switch self {
        case .icmpv4: return "IPPROTO_ICMP"
        case .icmpv6: return "IPPROTO_ICMPV6"
        case .tcp: return "IPPROTO_TCP"
        case .udp: return "IPPROTO_UDP"
        case .mptcp: return "IPPROTO_MPTCP"
        case .dccp: return "IPPROTO_DCCP"
        case .sctp: return "IPPROTO_SCTP"
        case .udplite: return "IPPROTO_UDPLITE"
        default: return String(rawValue)
        }
    }
}
