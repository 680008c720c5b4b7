#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Network interfaces by name and by index: `if_nametoindex(3)` and `if_indextoname(3)`.
///
/// The index is what the options and control messages that name an interface take (for
/// example ``InterfaceIndexOrAddress/index(_:)``, ``SocketHandle/bindDeviceByIndexV4(_:)``,
/// ``PacketInfo``) and what an IPv6 scope id (`fe80::1%lo`) is.
public enum NetworkInterface {
    /// The index of the interface named `name` (`lo`, `eth0`): `if_nametoindex(3)`.
    ///
    /// - Throws: `Errno.operationNotSupportedByDevice` (`ENODEV`) when no interface has that name (or the name is
    ///   longer than `IF_NAMESIZE - 1` bytes); `Errno.invalidArgument` for a name with a NUL byte
    ///   or an empty one, which the C call cannot carry.
    public static func index(ofName name: String) throws(Errno) -> UInt32 {
        guard !name.isEmpty, !name.utf8.contains(0) else { throw .invalidArgument }
        return try system_if_nametoindex_checked(name)
    }

    /// The name of the interface with index `index`: `if_indextoname(3)`.
    ///
    /// - Throws: `Errno.noSuchAddressOrDevice` (`ENXIO`) when no interface has that index.
    public static func name(ofIndex index: UInt32) throws(Errno) -> String {
        try system_if_indextoname(index)
    }
}
