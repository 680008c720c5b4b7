#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Options at level `IPPROTO_IP` (`SOL_IP`), sorted by option name; see ip(7). They apply to
/// IPv4 sockets (and to IPv6 sockets for IPv4-mapped traffic).
extension SocketHandle where Self: ~Copyable {
    // MARK: IP_ADD_MEMBERSHIP

    /// Joins the multicast group `multiaddr` on the interface that has the address `interface`
    /// (0.0.0.0: the kernel picks one by routing): `IP_ADD_MEMBERSHIP` with `struct ip_mreq`.
    /// `EADDRINUSE` when already a member.
    public func joinMulticastV4(_ multiaddr: IPv4Address, interface: IPv4Address) throws(Errno) {
        try setOption(SOL_IP, IP_ADD_MEMBERSHIP, ip_mreq(multiaddr, interface))
    }

    /// Joins the multicast group `multiaddr` on an interface given by index or address:
    /// `IP_ADD_MEMBERSHIP` with `struct ip_mreqn`.
    public func joinMulticastV4N(
        _ multiaddr: IPv4Address, interface: InterfaceIndexOrAddress
    ) throws(Errno) {
        try setOption(SOL_IP, IP_ADD_MEMBERSHIP, interface.mreqn(group: multiaddr))
    }

    // MARK: IP_ADD_SOURCE_MEMBERSHIP

    /// Joins the source-specific multicast group `group`, receiving only what `source` sends,
    /// on the interface with the address `interface`: `IP_ADD_SOURCE_MEMBERSHIP` with
    /// `struct ip_mreq_source`.
    public func joinSsmV4(
        source: IPv4Address, group: IPv4Address, interface: IPv4Address
    ) throws(Errno) {
        try setOption(SOL_IP, IP_ADD_SOURCE_MEMBERSHIP, ip_mreq_source(source, group, interface))
    }

    // MARK: IP_BIND_ADDRESS_NO_PORT

    /// Whether `bind(2)` to port 0 defers choosing the port: `IP_BIND_ADDRESS_NO_PORT`.
    public func bindAddressNoPortV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_BIND_ADDRESS_NO_PORT)
    }

    /// Makes `bind(2)` with port 0 fix only the address and leave the port to `connect(2)`,
    /// which can then share a port among connections to different destinations:
    /// `IP_BIND_ADDRESS_NO_PORT`. Beyond socket2.
    public func setBindAddressNoPortV4(_ noPort: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_BIND_ADDRESS_NO_PORT, noPort)
    }

    // MARK: IP_DROP_MEMBERSHIP

    /// Leaves a multicast group joined with ``joinMulticastV4(_:interface:)``:
    /// `IP_DROP_MEMBERSHIP` with `struct ip_mreq`. `EADDRNOTAVAIL` when not a member.
    public func leaveMulticastV4(_ multiaddr: IPv4Address, interface: IPv4Address) throws(Errno) {
        try setOption(SOL_IP, IP_DROP_MEMBERSHIP, ip_mreq(multiaddr, interface))
    }

    /// Leaves a multicast group joined with ``joinMulticastV4N(_:interface:)``:
    /// `IP_DROP_MEMBERSHIP` with `struct ip_mreqn`.
    public func leaveMulticastV4N(
        _ multiaddr: IPv4Address, interface: InterfaceIndexOrAddress
    ) throws(Errno) {
        try setOption(SOL_IP, IP_DROP_MEMBERSHIP, interface.mreqn(group: multiaddr))
    }

    // MARK: IP_DROP_SOURCE_MEMBERSHIP

    /// Leaves a source-specific group joined with ``joinSsmV4(source:group:interface:)``:
    /// `IP_DROP_SOURCE_MEMBERSHIP`.
    public func leaveSsmV4(
        source: IPv4Address, group: IPv4Address, interface: IPv4Address
    ) throws(Errno) {
        try setOption(SOL_IP, IP_DROP_SOURCE_MEMBERSHIP, ip_mreq_source(source, group, interface))
    }

    // MARK: IP_FREEBIND

    /// Whether the socket may bind to an address that is not (yet) local: `IP_FREEBIND`.
    public func freebindV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_FREEBIND)
    }

    /// Allows binding to an address that is not local, or not yet: `IP_FREEBIND`.
    public func setFreebindV4(_ freebind: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_FREEBIND, freebind)
    }

    // MARK: IP_HDRINCL

    /// Whether the application supplies the IP header of what it sends: `IP_HDRINCL`.
    public func headerIncludedV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_HDRINCL)
    }

    /// Makes the data sent on a raw socket start with its own IPv4 header: `IP_HDRINCL`. Raw
    /// sockets only (`ENOPROTOOPT` on others).
    public func setHeaderIncludedV4(_ included: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_HDRINCL, included)
    }

    // MARK: IP_MTU

    /// The path MTU the kernel knows for the connected destination: `IP_MTU`. `ENOTCONN` on a
    /// socket that is not connected. Beyond socket2.
    public func mtuV4() throws(Errno) -> Int {
        try getIntOption(SOL_IP, IP_MTU)
    }

    // MARK: IP_MTU_DISCOVER

    /// The path MTU discovery mode: `IP_MTU_DISCOVER`.
    public func mtuDiscoverV4() throws(Errno) -> PathMtuDiscovery {
        try getMtuDiscoverOption(SOL_IP, IP_MTU_DISCOVER)
    }

    /// Sets the path MTU discovery mode, and with it whether the don't-fragment bit is set:
    /// `IP_MTU_DISCOVER`. Beyond socket2.
    public func setMtuDiscoverV4(_ mode: PathMtuDiscovery) throws(Errno) {
        try setOption(SOL_IP, IP_MTU_DISCOVER, mode.rawValue)
    }

    // MARK: IP_MULTICAST_ALL

    /// Whether the socket receives the datagrams of every multicast group joined on the system
    /// (the default) rather than only those it joined: `IP_MULTICAST_ALL`.
    public func multicastAllV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_MULTICAST_ALL)
    }

    /// Chooses between receiving every joined multicast group's datagrams on the bound port
    /// (`true`, the default) or only those of groups this socket joined: `IP_MULTICAST_ALL`.
    public func setMulticastAllV4(_ all: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_MULTICAST_ALL, all)
    }

    // MARK: IP_MULTICAST_IF

    /// The address of the interface multicast datagrams are sent from: `IP_MULTICAST_IF`.
    /// 0.0.0.0 when none was set, or when it was set by index (the kernel reports no index).
    public func multicastIfV4() throws(Errno) -> IPv4Address {
        IPv4Address(try getOption(SOL_IP, IP_MULTICAST_IF, as: in_addr.self))
    }

    /// Sends multicast datagrams from the interface with the address `interface` (0.0.0.0: by
    /// routing): `IP_MULTICAST_IF` with `struct in_addr`. `EADDRNOTAVAIL` when no interface has
    /// that address.
    public func setMulticastIfV4(_ interface: IPv4Address) throws(Errno) {
        try setOption(SOL_IP, IP_MULTICAST_IF, interface.inAddr)
    }

    /// Sends multicast datagrams from an interface given by index or address:
    /// `IP_MULTICAST_IF` with `struct ip_mreqn`. `EADDRNOTAVAIL` for an unknown interface.
    /// ``multicastIfV4()`` reads back the address, not the index: the kernel reports only that.
    /// Beyond socket2.
    public func setMulticastIfV4N(_ interface: InterfaceIndexOrAddress) throws(Errno) {
        try setOption(SOL_IP, IP_MULTICAST_IF, interface.mreqn(group: .unspecified))
    }

    // MARK: IP_MULTICAST_LOOP

    /// Whether multicast datagrams sent are looped back to local members: `IP_MULTICAST_LOOP`.
    public func multicastLoopV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_MULTICAST_LOOP)
    }

    /// Loops multicast datagrams sent back to local sockets that joined the group (the
    /// default), or not: `IP_MULTICAST_LOOP`.
    public func setMulticastLoopV4(_ loop: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_MULTICAST_LOOP, loop)
    }

    // MARK: IP_MULTICAST_TTL

    /// The time-to-live of multicast datagrams sent: `IP_MULTICAST_TTL`.
    public func multicastTtlV4() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_IP, IP_MULTICAST_TTL)
    }

    /// Sets the time-to-live of multicast datagrams sent (default 1: the local network):
    /// `IP_MULTICAST_TTL`. The kernel refuses values above 255.
    public func setMulticastTtlV4(_ ttl: UInt32) throws(Errno) {
        try setUInt32Option(SOL_IP, IP_MULTICAST_TTL, ttl)
    }

    // MARK: IP_PKTINFO

    /// Whether received datagrams carry an `IP_PKTINFO` control message: `IP_PKTINFO`.
    public func recvPktinfoV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_PKTINFO)
    }

    /// Attaches to each received datagram its destination address and the index of the
    /// interface it arrived on (`IP_PKTINFO`, a `struct in_pktinfo`): `IP_PKTINFO`. Beyond
    /// socket2.
    /// Received as ``ReceivedControlMessage/packetInfoV4(destination:interfaceIndex:specDestination:)``.
    public func setRecvPktinfoV4(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_PKTINFO, receive)
    }

    // MARK: IP_RECVERR

    /// Whether extended errors are queued on the error queue: `IP_RECVERR`.
    public func recvErrV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_RECVERR)
    }

    /// Queues extended reports of errors (ICMP errors, local errors, `struct sock_extended_err`)
    /// on the error queue, read with `MSG_ERRQUEUE`: `IP_RECVERR`. Datagram sockets also then
    /// report every ICMP error to the sender at once. Beyond socket2.
    /// Received (with `MSG_ERRQUEUE`) as ``ReceivedControlMessage/extendedError(_:)``.
    public func setRecvErrV4(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_RECVERR, receive)
    }

    // MARK: IP_RECVTOS

    /// Whether received datagrams carry an `IP_TOS` control message: `IP_RECVTOS`.
    public func recvTosV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_RECVTOS)
    }

    /// Attaches the type-of-service byte of each received datagram (`IP_TOS`): `IP_RECVTOS`.
    /// Received as ``ReceivedControlMessage/tosV4(_:)``.
    public func setRecvTosV4(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_RECVTOS, receive)
    }

    // MARK: IP_RECVTTL

    /// Whether received datagrams carry an `IP_TTL` control message: `IP_RECVTTL`.
    public func recvTtlV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_RECVTTL)
    }

    /// Attaches the time-to-live of each received datagram (`IP_TTL`): `IP_RECVTTL`. Beyond
    /// socket2.
    /// Received as ``ReceivedControlMessage/ttlV4(_:)``.
    public func setRecvTtlV4(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_RECVTTL, receive)
    }

    // MARK: IP_TOS

    /// The type-of-service byte (DSCP and ECN) of packets sent: `IP_TOS`.
    public func tosV4() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_IP, IP_TOS)
    }

    /// Sets the type-of-service byte of packets sent: `IP_TOS`. On TCP sockets the kernel keeps
    /// the ECN bits (the low two) to itself.
    /// One datagram's own type of service is the control message ``ControlMessage/tosV4(_:)``.
    public func setTosV4(_ tos: UInt32) throws(Errno) {
        try setUInt32Option(SOL_IP, IP_TOS, tos)
    }

    // MARK: IP_TRANSPARENT

    /// Whether the socket may act for non-local addresses (transparent proxying):
    /// `IP_TRANSPARENT`.
    public func ipTransparentV4() throws(Errno) -> Bool {
        try getBoolOption(SOL_IP, IP_TRANSPARENT)
    }

    /// Lets the socket bind to and receive for non-local addresses, for transparent proxies
    /// (with TPROXY rules): `IP_TRANSPARENT`. Needs `CAP_NET_ADMIN` or `CAP_NET_RAW` (`EPERM`
    /// otherwise).
    public func setIpTransparentV4(_ transparent: Bool) throws(Errno) {
        try setBoolOption(SOL_IP, IP_TRANSPARENT, transparent)
    }

    // MARK: IP_TTL

    /// The time-to-live of unicast packets sent: `IP_TTL`.
    public func ttlV4() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_IP, IP_TTL)
    }

    /// Sets the time-to-live of unicast packets sent: `IP_TTL`. The kernel refuses 0 and values
    /// above 255 (`EINVAL`).
    /// One datagram's own TTL is the control message ``ControlMessage/ttlV4(_:)``.
    public func setTtlV4(_ ttl: UInt32) throws(Errno) {
        try setUInt32Option(SOL_IP, IP_TTL, ttl)
    }

    // MARK: SO_ORIGINAL_DST

    /// The destination a connection had before netfilter NAT redirected it to this socket
    /// (`REDIRECT`/`DNAT`): `SO_ORIGINAL_DST` at level `SOL_IP` (linux/netfilter_ipv4.h).
    /// `ENOENT` when connection tracking knows no such connection; `ENOPROTOOPT` when connection
    /// tracking is not loaded. Unlike socket2, the address's length is that of a `sockaddr_in`
    /// (the kernel does not report one).
    public func originalDstV4() throws(Errno) -> SockAddr {
        try getOriginalDestination(SOL_IP, 80, length: MemoryLayout<sockaddr_in>.size)
    }

    /// `SO_ORIGINAL_DST` / `IP6T_SO_ORIGINAL_DST` (both 80): the kernel writes a `sockaddr_in`
    /// or `sockaddr_in6` without reporting its length, so it is set here.
    func getOriginalDestination(_ level: CInt, _ name: CInt, length: Int) throws(Errno) -> SockAddr {
        var address = try getOptionAddress(level, name)
        address.setLength(socklen_t(length))
        return address
    }
}

extension ip_mreq {
    init(_ group: IPv4Address, _ interface: IPv4Address) {
        self.init(imr_multiaddr: group.inAddr, imr_interface: interface.inAddr)
    }
}

extension ip_mreq_source {
    init(_ source: IPv4Address, _ group: IPv4Address, _ interface: IPv4Address) {
        self.init(
            imr_multiaddr: group.inAddr, imr_interface: interface.inAddr, imr_sourceaddr: source.inAddr)
    }
}
