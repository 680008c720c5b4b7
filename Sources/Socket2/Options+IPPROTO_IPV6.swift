#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Options at level `IPPROTO_IPV6` (`SOL_IPV6`), sorted by option name; see ipv6(7).
extension SocketHandle where Self: ~Copyable {
    // MARK: IP6T_SO_ORIGINAL_DST

    /// The destination a connection had before netfilter NAT redirected it to this socket:
    /// `IP6T_SO_ORIGINAL_DST` at level `SOL_IPV6` (linux/netfilter_ipv6/ip6_tables.h). `ENOENT`
    /// when connection tracking knows no such connection; `ENOPROTOOPT` when it is not loaded.
    /// Unlike socket2, the address's length is that of a `sockaddr_in6`.
    public func originalDstV6() throws(Errno) -> SockAddr {
        try getOriginalDestination(SOL_IPV6, 80, length: MemoryLayout<sockaddr_in6>.size)
    }

    // MARK: IPV6_ADD_MEMBERSHIP

    /// Joins the multicast group `multiaddr` on the interface with index `interface` (0: the
    /// kernel picks one by routing): `IPV6_ADD_MEMBERSHIP` with `struct ipv6_mreq`.
    /// `EADDRINUSE` when already a member.
    public func joinMulticastV6(_ multiaddr: IPv6Address, interface: UInt32) throws(Errno) {
        try setOptionBytes(SOL_IPV6, IPV6_ADD_MEMBERSHIP, ipv6MreqBytes(multiaddr, interface))
    }

    // MARK: IPV6_DONTFRAG

    /// Whether datagrams larger than the path MTU fail rather than being fragmented:
    /// `IPV6_DONTFRAG`.
    public func dontfragV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_DONTFRAG)
    }

    /// Makes sending a datagram larger than the path MTU fail with `EMSGSIZE` instead of
    /// fragmenting it: `IPV6_DONTFRAG`. Beyond socket2.
    public func setDontfragV6(_ dontfrag: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_DONTFRAG, dontfrag)
    }

    // MARK: IPV6_DROP_MEMBERSHIP

    /// Leaves a multicast group joined with ``joinMulticastV6(_:interface:)``:
    /// `IPV6_DROP_MEMBERSHIP`. `EADDRNOTAVAIL` when not a member.
    public func leaveMulticastV6(_ multiaddr: IPv6Address, interface: UInt32) throws(Errno) {
        try setOptionBytes(SOL_IPV6, IPV6_DROP_MEMBERSHIP, ipv6MreqBytes(multiaddr, interface))
    }

    // MARK: IPV6_FREEBIND

    /// Whether the socket may bind to an address that is not (yet) local: `IPV6_FREEBIND`.
    public func freebindV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_FREEBIND)
    }

    /// Allows binding to an address that is not local, or not yet: `IPV6_FREEBIND`.
    public func setFreebindV6(_ freebind: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_FREEBIND, freebind)
    }

    // MARK: IPV6_HDRINCL

    /// Whether the application supplies the IPv6 header of what it sends: `IPV6_HDRINCL`.
    ///
    /// socket2 reads `IP_HDRINCL` at level `IPPROTO_IPV6` here, which Linux does not know; this
    /// reads `IPV6_HDRINCL`, the option ``setHeaderIncludedV6(_:)`` sets.
    public func headerIncludedV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_HDRINCL)
    }

    /// Makes the data sent on a raw IPv6 socket start with its own IPv6 header: `IPV6_HDRINCL`.
    /// Raw sockets only.
    public func setHeaderIncludedV6(_ included: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_HDRINCL, included)
    }

    // MARK: IPV6_MTU

    /// The path MTU the kernel knows for the connected destination: `IPV6_MTU`. `ENOTCONN` on a
    /// socket that is not connected. Beyond socket2.
    public func mtuV6() throws(Errno) -> Int {
        try getIntOption(SOL_IPV6, IPV6_MTU)
    }

    // MARK: IPV6_MTU_DISCOVER

    /// The path MTU discovery mode: `IPV6_MTU_DISCOVER`.
    public func mtuDiscoverV6() throws(Errno) -> PathMtuDiscovery {
        try getMtuDiscoverOption(SOL_IPV6, IPV6_MTU_DISCOVER)
    }

    /// Sets the path MTU discovery mode: `IPV6_MTU_DISCOVER`. Beyond socket2.
    public func setMtuDiscoverV6(_ mode: PathMtuDiscovery) throws(Errno) {
        try setOption(SOL_IPV6, IPV6_MTU_DISCOVER, mode.rawValue)
    }

    // MARK: IPV6_MULTICAST_ALL

    /// Whether the socket receives the datagrams of every multicast group joined on the system
    /// (the default): `IPV6_MULTICAST_ALL`.
    public func multicastAllV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_MULTICAST_ALL)
    }

    /// Chooses between receiving every joined multicast group's datagrams on the bound port
    /// (`true`, the default) or only those of groups this socket joined: `IPV6_MULTICAST_ALL`.
    public func setMulticastAllV6(_ all: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_MULTICAST_ALL, all)
    }

    // MARK: IPV6_MULTICAST_HOPS

    /// The hop limit of multicast packets sent: `IPV6_MULTICAST_HOPS`.
    public func multicastHopsV6() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_IPV6, IPV6_MULTICAST_HOPS)
    }

    /// Sets the hop limit of multicast packets sent (default 1): `IPV6_MULTICAST_HOPS`. The
    /// kernel refuses values above 255.
    public func setMulticastHopsV6(_ hops: UInt32) throws(Errno) {
        try setUInt32Option(SOL_IPV6, IPV6_MULTICAST_HOPS, hops)
    }

    // MARK: IPV6_MULTICAST_IF

    /// The index of the interface multicast packets are sent from, 0 for none:
    /// `IPV6_MULTICAST_IF`.
    public func multicastIfV6() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_IPV6, IPV6_MULTICAST_IF)
    }

    /// Sends multicast packets from the interface with this index (0: by routing):
    /// `IPV6_MULTICAST_IF`. The kernel refuses an unknown index (`EINVAL`).
    public func setMulticastIfV6(_ interface: UInt32) throws(Errno) {
        try setUInt32Option(SOL_IPV6, IPV6_MULTICAST_IF, interface)
    }

    // MARK: IPV6_MULTICAST_LOOP

    /// Whether multicast packets sent are looped back to local members: `IPV6_MULTICAST_LOOP`.
    public func multicastLoopV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_MULTICAST_LOOP)
    }

    /// Loops multicast packets sent back to local sockets that joined the group (the
    /// default), or not: `IPV6_MULTICAST_LOOP`.
    public func setMulticastLoopV6(_ loop: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_MULTICAST_LOOP, loop)
    }

    // MARK: IPV6_RECVERR

    /// Whether extended errors are queued on the error queue: `IPV6_RECVERR`.
    public func recvErrV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_RECVERR)
    }

    /// Queues extended reports of errors (ICMPv6 errors, local errors) on the error queue, read
    /// with `MSG_ERRQUEUE`: `IPV6_RECVERR`. Beyond socket2.
    /// Received (with `MSG_ERRQUEUE`) as ``ReceivedControlMessage/extendedError(_:)``.
    public func setRecvErrV6(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_RECVERR, receive)
    }

    // MARK: IPV6_RECVHOPLIMIT

    /// Whether received packets carry an `IPV6_HOPLIMIT` control message: `IPV6_RECVHOPLIMIT`.
    public func recvHoplimitV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_RECVHOPLIMIT)
    }

    /// Attaches the hop limit of each received packet (`IPV6_HOPLIMIT`): `IPV6_RECVHOPLIMIT`.
    /// Received as ``ReceivedControlMessage/hopLimitV6(_:)``.
    public func setRecvHoplimitV6(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_RECVHOPLIMIT, receive)
    }

    // MARK: IPV6_RECVPKTINFO

    /// Whether received packets carry an `IPV6_PKTINFO` control message: `IPV6_RECVPKTINFO`.
    public func recvPktinfoV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_RECVPKTINFO)
    }

    /// Attaches to each received packet its destination address and the index of the interface
    /// it arrived on (`IPV6_PKTINFO`, a `struct in6_pktinfo`): `IPV6_RECVPKTINFO`. Beyond
    /// socket2.
    /// Received as ``ReceivedControlMessage/packetInfoV6(address:interfaceIndex:)``.
    public func setRecvPktinfoV6(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_RECVPKTINFO, receive)
    }

    // MARK: IPV6_RECVTCLASS

    /// Whether received packets carry an `IPV6_TCLASS` control message: `IPV6_RECVTCLASS`.
    public func recvTclassV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_RECVTCLASS)
    }

    /// Attaches the traffic class of each received packet (`IPV6_TCLASS`): `IPV6_RECVTCLASS`.
    /// Received as ``ReceivedControlMessage/trafficClassV6(_:)``.
    public func setRecvTclassV6(_ receive: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_RECVTCLASS, receive)
    }

    // MARK: IPV6_TCLASS

    /// The traffic class (DSCP and ECN) of packets sent: `IPV6_TCLASS`.
    public func tclassV6() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_IPV6, IPV6_TCLASS)
    }

    /// Sets the traffic class of packets sent: `IPV6_TCLASS`. The kernel refuses values above
    /// 255.
    /// One datagram's own traffic class is the control message
    /// ``ControlMessage/trafficClassV6(_:)``.
    public func setTclassV6(_ tclass: UInt32) throws(Errno) {
        try setUInt32Option(SOL_IPV6, IPV6_TCLASS, tclass)
    }

    // MARK: IPV6_TRANSPARENT

    /// Whether the socket may act for non-local addresses (transparent proxying):
    /// `IPV6_TRANSPARENT`.
    public func ipTransparentV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_TRANSPARENT)
    }

    /// Lets the socket bind to and receive for non-local addresses, for transparent proxies:
    /// `IPV6_TRANSPARENT`. Needs `CAP_NET_ADMIN` or `CAP_NET_RAW` (`EPERM` otherwise).
    public func setIpTransparentV6(_ transparent: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_TRANSPARENT, transparent)
    }

    // MARK: IPV6_UNICAST_HOPS

    /// The hop limit of unicast packets sent: `IPV6_UNICAST_HOPS`.
    public func unicastHopsV6() throws(Errno) -> UInt32 {
        try getUInt32Option(SOL_IPV6, IPV6_UNICAST_HOPS)
    }

    /// Sets the hop limit of unicast packets sent: `IPV6_UNICAST_HOPS`. The kernel refuses
    /// values above 255.
    /// One datagram's own hop limit is the control message ``ControlMessage/hopLimitV6(_:)``.
    public func setUnicastHopsV6(_ hops: UInt32) throws(Errno) {
        try setUInt32Option(SOL_IPV6, IPV6_UNICAST_HOPS, hops)
    }

    // MARK: IPV6_V6ONLY

    /// Whether the socket is restricted to IPv6 (no IPv4-mapped addresses): `IPV6_V6ONLY`.
    public func onlyV6() throws(Errno) -> Bool {
        try getBoolOption(SOL_IPV6, IPV6_V6ONLY)
    }

    /// Restricts the socket to IPv6, or lets it also serve IPv4 through IPv4-mapped addresses
    /// (the default, `net.ipv6.bindv6only`): `IPV6_V6ONLY`. Set it before `bind(2)`.
    public func setOnlyV6(_ only: Bool) throws(Errno) {
        try setBoolOption(SOL_IPV6, IPV6_V6ONLY, only)
    }
}

/// The bytes of a `struct ipv6_mreq`. (`in6_addr` holds a C union, which Swift does not deem
/// `BitwiseCopyable`, so the structure travels as bytes.)
func ipv6MreqBytes(_ group: IPv6Address, _ interface: UInt32) -> [UInt8] {
    withUnsafeBytes(of: ipv6_mreq(ipv6mr_multiaddr: group.storage, ipv6mr_interface: interface)) {
        Array($0)
    }
}
