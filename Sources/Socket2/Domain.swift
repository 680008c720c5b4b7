#if canImport(Glibc)
import Glibc
#endif

/// A socket's communication domain, the first argument of `socket(2)` (`AF_INET`, `AF_UNIX`, …).
///
/// `description` prints the C constant's name, or the number when it has none here.
public struct Domain: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `AF_*` value.
    public var rawValue: CInt

    /// Wraps any `AF_*` value.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// Wraps any `AF_*` value.
    public init(_ rawValue: CInt) { self.rawValue = rawValue }

    /// `AF_INET`: IPv4.
    public static let ipv4 = Domain(AF_INET)
    /// `AF_INET6`: IPv6.
    public static let ipv6 = Domain(AF_INET6)
    /// `AF_UNIX`: local (Unix domain) sockets.
    public static let unix = Domain(AF_UNIX)
    /// `AF_PACKET`: raw packets at the device level (needs `CAP_NET_RAW`).
    public static let packet = Domain(AF_PACKET)
    /// `AF_VSOCK`: communication between virtual machines and their host.
    public static let vsock = Domain(AF_VSOCK)

    /// The domain of an internet socket address: `ipv4` for `.v4`, `ipv6` for `.v6`.
    public static func forAddress(_ address: SocketAddr) -> Domain {
        switch address {
        case .v4: return .ipv4
        case .v6: return .ipv6
        }
    }

    /// The `AF_*` constant's name (`AF_INET`), or the number when it has none here, as
    /// socket2's `Debug`.
    public var description: String {
        switch rawValue {
        case AF_INET: return "AF_INET"
        case AF_INET6: return "AF_INET6"
        case AF_UNIX: return "AF_UNIX"
        case AF_PACKET: return "AF_PACKET"
        case AF_VSOCK: return "AF_VSOCK"
        case AF_UNSPEC: return "AF_UNSPEC"
        default: return String(rawValue)
        }
    }
}
