#if canImport(Glibc)
import Glibc
#endif

/// A socket's type, the second argument of `socket(2)` (`SOCK_STREAM`, `SOCK_DGRAM`, …);
/// socket2's `Type`.
///
/// The flags `SOCK_NONBLOCK` and `SOCK_CLOEXEC` may be or-ed in with ``nonblocking()`` and
/// ``cloexec()``. `description` prints the C constant's name, or the number when it has none.
public struct SocketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `SOCK_*` value, flags included.
    public var rawValue: CInt

    /// Wraps any `SOCK_*` value.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// Wraps any `SOCK_*` value.
    public init(_ rawValue: CInt) { self.rawValue = rawValue }

    /// `SOCK_STREAM`: a reliable, ordered byte stream (TCP).
    public static let stream = SocketType(CInt(SOCK_STREAM.rawValue))
    /// `SOCK_DGRAM`: datagrams (UDP).
    public static let dgram = SocketType(CInt(SOCK_DGRAM.rawValue))
    /// `SOCK_SEQPACKET`: reliable, ordered datagrams with boundaries.
    public static let seqpacket = SocketType(CInt(SOCK_SEQPACKET.rawValue))
    /// `SOCK_RAW`: raw network protocol access.
    public static let raw = SocketType(CInt(SOCK_RAW.rawValue))
    /// `SOCK_DCCP`: the Datagram Congestion Control Protocol.
    public static let dccp = SocketType(CInt(SOCK_DCCP.rawValue))

    /// This type with `SOCK_NONBLOCK` set: the socket is created non-blocking.
    public func nonblocking() -> SocketType {
        SocketType(rawValue | CInt(SOCK_NONBLOCK.rawValue))
    }

    /// This type with `SOCK_CLOEXEC` set: the socket is closed on `execve(2)`.
    public func cloexec() -> SocketType {
        SocketType(rawValue | CInt(SOCK_CLOEXEC.rawValue))
    }

    /// The `SOCK_*` constant's name (`SOCK_STREAM`), or the number when it has none here (flag
    /// bits such as `SOCK_NONBLOCK` included), as socket2's `Debug`.
    public var description: String {
        switch rawValue {
        case CInt(SOCK_STREAM.rawValue): return "SOCK_STREAM"
        case CInt(SOCK_DGRAM.rawValue): return "SOCK_DGRAM"
        case CInt(SOCK_DCCP.rawValue): return "SOCK_DCCP"
        case CInt(SOCK_RAW.rawValue): return "SOCK_RAW"
        case CInt(SOCK_RDM.rawValue): return "SOCK_RDM"
        case CInt(SOCK_SEQPACKET.rawValue): return "SOCK_SEQPACKET"
        default: return String(rawValue)
        }
    }
}
