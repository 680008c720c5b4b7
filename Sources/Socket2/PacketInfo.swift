#if canImport(Glibc)
import Glibc
#endif
import CSocket2

/// Where a datagram arrived: the address it was sent to and the interface it came in on, from
/// its `IP_PKTINFO` (`struct in_pktinfo`) or `IPV6_PKTINFO` (`struct in6_pktinfo`) control
/// message. The socket asks for them with `setRecvPktinfoV4(_:)` (`IP_PKTINFO`) or
/// `setRecvPktinfoV6(_:)` (`IPV6_RECVPKTINFO`).
///
/// A server bound to a wildcard address answers from the address a request was sent to by
/// sending with ``ControlMessage/packetInfoV4(destination:interfaceIndex:specDestination:)`` or
/// ``ControlMessage/packetInfoV6(address:interfaceIndex:)``.
public struct PacketInfo: Sendable, Hashable, CustomStringConvertible {
    /// The datagram's destination address: `ipi_addr` (IPv4) or `ipi6_addr` (IPv6).
    public var destination: IPAddress
    /// The index of the interface the datagram arrived on (`ipi_ifindex`, `ipi6_ifindex`; its
    /// name is ``NetworkInterface/name(ofIndex:)``, `if_indextoname(3)`).
    public var interfaceIndex: UInt32

    /// Packet info from its parts.
    public init(destination: IPAddress, interfaceIndex: UInt32) {
        self.destination = destination
        self.interfaceIndex = interfaceIndex
    }

    /// The packet info of a received ``ReceivedControlMessage/packetInfoV4(destination:interfaceIndex:specDestination:)``
    /// or ``ReceivedControlMessage/packetInfoV6(address:interfaceIndex:)``; `nil` for any other message.
    public init?(_ message: ReceivedControlMessage) {
        switch message {
        case .packetInfoV4(let destination, let interfaceIndex, _):
            self.init(destination: .v4(destination), interfaceIndex: interfaceIndex)
        case .packetInfoV6(let address, let interfaceIndex):
            self.init(destination: .v6(address), interfaceIndex: interfaceIndex)
        default:
            return nil
        }
    }

    /// The first `IP_PKTINFO` or `IPV6_PKTINFO` message in received control data (the
    /// `msg_controllen` bytes the kernel reported), read in place: nothing is allocated and no
    /// other message is decoded (descriptors of `SCM_RIGHTS` messages stay where they are, owned
    /// by whoever owns the data). `nil` when there is none.
    public static func find(in control: UnsafeRawBufferPointer) -> PacketInfo? {
        var found: PacketInfo?
        forEachControlMessage(in: control) { raw in
            guard found == nil, case .message(let level, let type, let data) = raw else { return }
            if level == CInt(IPPROTO_IP), type == IP_PKTINFO, data.count == MemoryLayout<in_pktinfo>.size {
                let info = data.loadUnaligned(as: in_pktinfo.self)
                found = PacketInfo(destination: .v4(IPv4Address(info.ipi_addr)),
                                   interfaceIndex: UInt32(bitPattern: info.ipi_ifindex))
            } else if level == CInt(IPPROTO_IPV6), type == IPV6_PKTINFO,
                      data.count == MemoryLayout<socket2_in6_pktinfo>.size {
                let info = data.loadUnaligned(as: socket2_in6_pktinfo.self)
                found = PacketInfo(destination: .v6(IPv6Address(info.ipi6_addr)), interfaceIndex: info.ipi6_ifindex)
            }
        }
        return found
    }

    public var description: String {
        "PacketInfo(destination: \(destination), interfaceIndex: \(interfaceIndex))"
    }
}
