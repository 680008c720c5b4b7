#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 interface named by its index or by one of its addresses, as `struct ip_mreqn` lets
/// the kernel take either: ``SocketHandle/joinMulticastV4N(_:interface:)`` and
/// ``SocketHandle/setMulticastIfV4N(_:)``.
public enum InterfaceIndexOrAddress: Hashable, Sendable {
    /// The interface with this index (``NetworkInterface/index(ofName:)``, `if_nametoindex(3)`);
    /// 0 lets the kernel choose.
    case index(UInt32)
    /// The interface that has this address.
    case address(IPv4Address)

    /// The `ip_mreqn` for `group` on this interface: an index leaves the address 0.0.0.0, an
    /// address leaves the index 0, as socket2 does.
    func mreqn(group: IPv4Address) -> ip_mreqn {
        switch self {
        case .index(let index):
            return ip_mreqn(
                imr_multiaddr: group.inAddr, imr_address: IPv4Address.unspecified.inAddr,
                imr_ifindex: CInt(bitPattern: index))
        case .address(let address):
            return ip_mreqn(imr_multiaddr: group.inAddr, imr_address: address.inAddr, imr_ifindex: 0)
        }
    }
}
