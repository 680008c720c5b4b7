import SystemPackage

/// The path MTU discovery mode of a socket: `IP_MTU_DISCOVER` (``SocketHandle/setMtuDiscoverV4(_:)``)
/// and `IPV6_MTU_DISCOVER` (``SocketHandle/setMtuDiscoverV6(_:)``); see ip(7) and ipv6(7).
///
/// The `IP_PMTUDISC_*` and `IPV6_PMTUDISC_*` constants have the same values, so one type serves
/// both levels.
public enum PathMtuDiscovery: CInt, Hashable, Sendable, CaseIterable {
    /// `IP_PMTUDISC_DONT`: never set the don't-fragment bit; fragment locally as needed.
    case dont = 0
    /// `IP_PMTUDISC_WANT`: discover the path MTU, but fragment when a datagram exceeds it.
    case want = 1
    /// `IP_PMTUDISC_DO`: always set don't-fragment; sending more than the path MTU fails with
    /// `EMSGSIZE`.
    case `do` = 2
    /// `IP_PMTUDISC_PROBE`: set don't-fragment but ignore the path MTU (probe with big packets).
    case probe = 3
    /// `IP_PMTUDISC_INTERFACE`: use the interface MTU, ignore path MTU updates, don't fragment.
    case interface = 4
    /// `IP_PMTUDISC_OMIT`: like `interface`, but fragment when the interface MTU is exceeded.
    case omit = 5
}

extension SocketHandle where Self: ~Copyable {
    /// `IP_MTU_DISCOVER` or `IPV6_MTU_DISCOVER`. The kernel knows no other modes than these; a
    /// value outside them would be `Errno.invalidArgument`.
    func getMtuDiscoverOption(_ level: CInt, _ name: CInt) throws(Errno) -> PathMtuDiscovery {
        guard let mode = PathMtuDiscovery(rawValue: try getOption(level, name, as: CInt.self))
        else { throw .invalidArgument }
        return mode
    }
}
