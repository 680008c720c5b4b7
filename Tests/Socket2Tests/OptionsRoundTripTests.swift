// Every option that can be set and read back, set and read back on every kind of socket it
// applies to; and the calls the kernel (or this module) must refuse.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

private let all = SocketKind.all
private let inet = SocketKind.inet

/// `SOL_SOCKET`.
private let socketLevel: [OptionCase] = [
    .refused("SO_ATTACH_FILTER empty program", on: all, with: .invalidArgument) { try $0.attachFilter([]) },
    .roundTrip("SO_BINDTODEVICE", on: all, privileged: true, get: { try $0.device() },
               set: { try $0.bindDevice($1) }, values: [Array("lo".utf8), nil]),
    .roundTrip("SO_BINDTOIFINDEX v4", on: all, privileged: true, get: { try $0.deviceIndexV4() },
               set: { try $0.bindDeviceByIndexV4($1) }, values: [loopbackIndex, nil]),
    .roundTrip("SO_BINDTOIFINDEX v6", on: all, privileged: true, get: { try $0.deviceIndexV6() },
               set: { try $0.bindDeviceByIndexV6($1) }, values: [loopbackIndex, nil]),
    .bool("SO_BROADCAST", on: all, get: { try $0.broadcast() }, set: { try $0.setBroadcast($1) }),
    .roundTrip("SO_BUSY_POLL", on: all, privileged: true, get: { try $0.busyPoll() },
               set: { try $0.setBusyPoll($1) }, values: [50, 0]),
    .refused("SO_BUSY_POLL > Int32.max", on: all, with: .invalidArgument) { try $0.setBusyPoll(.max) },
    .refused("SO_DETACH_FILTER without filter", on: all, with: .noSuchFileOrDirectory) { try $0.detachFilter() },
    .roundTrip("SO_INCOMING_CPU", on: all, get: { try $0.cpuAffinity() },
               set: { try $0.setCpuAffinity($1) }, values: [1, 0]),
    .refused("SO_INCOMING_CPU negative", on: all, with: .invalidArgument) { try $0.setCpuAffinity(-1) },
    .bool("SO_KEEPALIVE", on: all, get: { try $0.keepalive() }, set: { try $0.setKeepalive($1) }),
    .roundTrip("SO_LINGER", on: all, get: { try $0.linger() }, set: { try $0.setLinger($1) },
               values: [.seconds(5), nil, .zero, .milliseconds(2_900)],
               expected: { $0 == .milliseconds(2_900) ? .seconds(2) : $0 }),
    .refused("SO_LINGER negative", on: all, with: .invalidArgument) { try $0.setLinger(.seconds(-1)) },
    .roundTrip("SO_MARK", on: all, privileged: true, get: { try $0.mark() },
               set: { try $0.setMark($1) }, values: [7, 0]),
    .refused("SO_MARK > Int32.max", on: all, with: .invalidArgument) { try $0.setMark(0x8000_0000) },
    .bool("SO_OOBINLINE", on: all, get: { try $0.outOfBandInline() }, set: { try $0.setOutOfBandInline($1) }),
    .bool("SO_PASSCRED", on: [.unix, .unixDgram], get: { try $0.passcred() }, set: { try $0.setPasscred($1) }),
    // Linux 6.16 restricted SO_PASSCRED to Unix and netlink sockets.
    .bool("SO_PASSCRED on internet sockets", on: inet, orRefused: .notSupportedOnSocket,
          get: { try $0.passcred() }, set: { try $0.setPasscred($1) }),
    .roundTrip("SO_PRIORITY", on: all, get: { try $0.priority() }, set: { try $0.setPriority($1) },
               values: [3, 6, 0]),
    .roundTrip("SO_PRIORITY > 6", on: all, privileged: true, get: { try $0.priority() },
               set: { try $0.setPriority($1) }, values: [7]),
    .roundTrip("SO_RCVBUF", on: all, get: { try $0.recvBufferSize() }, set: { try $0.setRecvBufferSize($1) },
               values: [4096, 16384], expected: { $0 * 2 }),
    .refused("SO_RCVBUF negative", on: all, with: .invalidArgument) { try $0.setRecvBufferSize(-1) },
    .refused("SO_RCVBUF > Int32.max", on: all, with: .invalidArgument) {
        try $0.setRecvBufferSize(Int(Int32.max) + 1)
    },
    .roundTrip("SO_RCVLOWAT", on: all, get: { try $0.recvLowat() }, set: { try $0.setRecvLowat($1) },
               values: [10, 1]),
    .roundTrip("SO_RCVTIMEO", on: all, get: { try $0.readTimeout() }, set: { try $0.setReadTimeout($1) },
               values: [.milliseconds(1_500), nil, .seconds(2), .nanoseconds(500), .zero],
               expected: { $0 == .nanoseconds(500) || $0 == .zero ? nil : $0 }),
    .refused("SO_RCVTIMEO negative", on: all, with: .invalidArgument) { try $0.setReadTimeout(.seconds(-1)) },
    .bool("SO_REUSEADDR", on: all, get: { try $0.reuseAddress() }, set: { try $0.setReuseAddress($1) }),
    .bool("SO_REUSEPORT", on: inet, get: { try $0.reusePort() }, set: { try $0.setReusePort($1) }),
    .refused("SO_REUSEPORT on Unix", on: [.unix, .unixDgram], with: .notSupportedOnSocket) { try $0.setReusePort(true) },
    .roundTrip("SO_SNDBUF", on: all, get: { try $0.sendBufferSize() }, set: { try $0.setSendBufferSize($1) },
               values: [4096, 16384], expected: { $0 * 2 }),
    .refused("SO_SNDBUF negative", on: all, with: .invalidArgument) { try $0.setSendBufferSize(-4096) },
    .refused("SO_SNDLOWAT set", on: all, with: .protocolNotAvailable) { try $0.setSendLowat(1) },
    .roundTrip("SO_SNDTIMEO", on: all, get: { try $0.writeTimeout() }, set: { try $0.setWriteTimeout($1) },
               values: [.milliseconds(1_500), nil, .seconds(2), .nanoseconds(999), .zero],
               expected: { ($0 ?? .zero) < .microseconds(1) ? nil : $0 }),
    .bool("SO_TIMESTAMP", on: all, get: { try $0.timestamp() }, set: { try $0.setTimestamp($1) }),
    .roundTrip("SO_TIMESTAMPING", on: all, get: { try $0.timestamping() }, set: { try $0.setTimestamping($1) },
               values: [[.rxSoftware, .software], [.txSoftware, .software, .optTsonly], []]),
    .refused("SO_TIMESTAMPING unknown flag", on: all, with: .invalidArgument) {
        try $0.setTimestamping(TimestampingFlags(rawValue: 1 << 31))
    },
    .bool("SO_TIMESTAMPNS", on: all, get: { try $0.timestampns() }, set: { try $0.setTimestampns($1) }),
    .bool("SO_ZEROCOPY", on: inet, get: { try $0.zerocopy() }, set: { try $0.setZerocopy($1) }),
    .refused("SO_ZEROCOPY on Unix", on: [.unix, .unixDgram], with: .notSupportedOnSocket) { try $0.setZerocopy(true) },
]

/// `IPPROTO_IP`.
private let ipLevel: [OptionCase] = [
    .bool("IP_BIND_ADDRESS_NO_PORT", on: SocketKind.ipv4, get: { try $0.bindAddressNoPortV4() },
          set: { try $0.setBindAddressNoPortV4($1) }),
    .bool("IP_FREEBIND", on: SocketKind.ipv4, get: { try $0.freebindV4() }, set: { try $0.setFreebindV4($1) }),
    .refused("IP_HDRINCL on UDP", on: [.udp4], with: .protocolNotAvailable) { try $0.setHeaderIncludedV4(true) },
    .refused("IP_MTU unconnected", on: SocketKind.ipv4, with: .socketNotConnected) { _ = try $0.mtuV4() },
    .roundTrip("IP_MTU_DISCOVER", on: SocketKind.ipv4, get: { try $0.mtuDiscoverV4() },
               set: { try $0.setMtuDiscoverV4($1) }, values: PathMtuDiscovery.allCases + [.want]),
    .bool("IP_MULTICAST_ALL", on: SocketKind.ipv4, get: { try $0.multicastAllV4() },
          set: { try $0.setMulticastAllV4($1) }),
    .roundTrip("IP_MULTICAST_IF", on: [.udp4], get: { try $0.multicastIfV4() },
               set: { try $0.setMulticastIfV4($1) }, values: [.localhost, .unspecified]),
    // The kernel reports the address of IP_MULTICAST_IF only, 0.0.0.0 when set by index.
    .roundTrip("IP_MULTICAST_IF ip_mreqn", on: [.udp4], get: { .address(try $0.multicastIfV4()) },
               set: { try $0.setMulticastIfV4N($1) },
               values: [.address(.localhost), .index(loopbackIndex), .address(.unspecified)],
               expected: { if case .index = $0 { .address(.unspecified) } else { $0 } }),
    .refused("IP_MULTICAST_IF unknown index", on: [.udp4], with: .addressNotAvailable) {
        try $0.setMulticastIfV4N(.index(0x7fff_fff0))
    },
    .refused("IP_MULTICAST_IF no such address", on: [.udp4], with: .addressNotAvailable) {
        try $0.setMulticastIfV4N(.address(IPv4Address(203, 0, 113, 7)))
    },
    .bool("IP_MULTICAST_LOOP", on: SocketKind.ipv4, get: { try $0.multicastLoopV4() },
          set: { try $0.setMulticastLoopV4($1) }),
    .roundTrip("IP_MULTICAST_TTL", on: [.udp4], get: { try $0.multicastTtlV4() },
               set: { try $0.setMulticastTtlV4($1) }, values: [5, 255, 1]),
    .bool("IP_PKTINFO", on: SocketKind.ipv4, get: { try $0.recvPktinfoV4() }, set: { try $0.setRecvPktinfoV4($1) }),
    .bool("IP_RECVERR", on: SocketKind.ipv4, get: { try $0.recvErrV4() }, set: { try $0.setRecvErrV4($1) }),
    .bool("IP_RECVTOS", on: SocketKind.ipv4, get: { try $0.recvTosV4() }, set: { try $0.setRecvTosV4($1) }),
    .bool("IP_RECVTTL", on: SocketKind.ipv4, get: { try $0.recvTtlV4() }, set: { try $0.setRecvTtlV4($1) }),
    .roundTrip("IP_TOS", on: SocketKind.ipv4, get: { try $0.tosV4() }, set: { try $0.setTosV4($1) },
               values: [0x10, 0xb8, 0]),
    .bool("IP_TRANSPARENT", on: SocketKind.ipv4, privileged: true, get: { try $0.ipTransparentV4() },
          set: { try $0.setIpTransparentV4($1) }),
    .roundTrip("IP_TTL", on: SocketKind.ipv4, get: { try $0.ttlV4() }, set: { try $0.setTtlV4($1) },
               values: [10, 255, 64]),
    .refused("IP_TTL 256 (kernel)", on: SocketKind.ipv4, with: .invalidArgument) { try $0.setTtlV4(256) },
    .refused("IP_TTL > Int32.max", on: SocketKind.ipv4, with: .invalidArgument) { try $0.setTtlV4(.max) },
    .refused("IP_TTL on Unix", on: [.unix], with: .notSupportedOnSocket) { _ = try $0.ttlV4() },
]

/// `IPPROTO_IPV6`.
private let ipv6Level: [OptionCase] = [
    .bool("IPV6_DONTFRAG", on: SocketKind.ipv6, get: { try $0.dontfragV6() }, set: { try $0.setDontfragV6($1) }),
    .bool("IPV6_FREEBIND", on: SocketKind.ipv6, get: { try $0.freebindV6() }, set: { try $0.setFreebindV6($1) }),
    .refused("IPV6_MTU unconnected", on: SocketKind.ipv6, with: .socketNotConnected) { _ = try $0.mtuV6() },
    .roundTrip("IPV6_MTU_DISCOVER", on: SocketKind.ipv6, get: { try $0.mtuDiscoverV6() },
               set: { try $0.setMtuDiscoverV6($1) }, values: PathMtuDiscovery.allCases + [.want]),
    .bool("IPV6_MULTICAST_ALL", on: SocketKind.ipv6, get: { try $0.multicastAllV6() },
          set: { try $0.setMulticastAllV6($1) }),
    .roundTrip("IPV6_MULTICAST_HOPS", on: [.udp6], get: { try $0.multicastHopsV6() },
               set: { try $0.setMulticastHopsV6($1) }, values: [5, 255, 1]),
    .roundTrip("IPV6_MULTICAST_IF", on: [.udp6], get: { try $0.multicastIfV6() },
               set: { try $0.setMulticastIfV6($1) }, values: [loopbackIndex, 0]),
    .bool("IPV6_MULTICAST_LOOP", on: SocketKind.ipv6, get: { try $0.multicastLoopV6() },
          set: { try $0.setMulticastLoopV6($1) }),
    .bool("IPV6_RECVERR", on: SocketKind.ipv6, get: { try $0.recvErrV6() }, set: { try $0.setRecvErrV6($1) }),
    .bool("IPV6_RECVHOPLIMIT", on: SocketKind.ipv6, get: { try $0.recvHoplimitV6() },
          set: { try $0.setRecvHoplimitV6($1) }),
    .bool("IPV6_RECVPKTINFO", on: SocketKind.ipv6, get: { try $0.recvPktinfoV6() },
          set: { try $0.setRecvPktinfoV6($1) }),
    .bool("IPV6_RECVTCLASS", on: SocketKind.ipv6, get: { try $0.recvTclassV6() },
          set: { try $0.setRecvTclassV6($1) }),
    .roundTrip("IPV6_TCLASS", on: SocketKind.ipv6, get: { try $0.tclassV6() }, set: { try $0.setTclassV6($1) },
               values: [0x10, 0xb8, 0]),
    .bool("IPV6_TRANSPARENT", on: SocketKind.ipv6, privileged: true, get: { try $0.ipTransparentV6() },
          set: { try $0.setIpTransparentV6($1) }),
    .roundTrip("IPV6_UNICAST_HOPS", on: SocketKind.ipv6, get: { try $0.unicastHopsV6() },
               set: { try $0.setUnicastHopsV6($1) }, values: [10, 255, 64]),
    .refused("IPV6_UNICAST_HOPS 256 (kernel)", on: SocketKind.ipv6, with: .invalidArgument) {
        try $0.setUnicastHopsV6(256)
    },
    .bool("IPV6_V6ONLY", on: SocketKind.ipv6, get: { try $0.onlyV6() }, set: { try $0.setOnlyV6($1) }),
]

/// `IPPROTO_TCP`.
private let tcpLevel: [OptionCase] = [
    .roundTrip("TCP_CONGESTION", on: SocketKind.tcp, get: { try $0.tcpCongestion() },
               set: { try $0.setTcpCongestion($1) }, values: [Array("reno".utf8)]),
    .refused("TCP_CONGESTION unknown", on: SocketKind.tcp, with: .noSuchFileOrDirectory) {
        try $0.setTcpCongestion(Array("no-such-algorithm".utf8.prefix(15)))
    },
    .bool("TCP_CORK", on: SocketKind.tcp, get: { try $0.tcpCork() }, set: { try $0.setTcpCork($1) }),
    .roundTrip("TCP_DEFER_ACCEPT", on: SocketKind.tcp, get: { try $0.tcpDeferAccept() },
               set: { try $0.setTcpDeferAccept($1) }, values: [.seconds(3), nil, .seconds(5), .seconds(1)],
               expected: { $0 == .seconds(5) ? .seconds(7) : $0 }),
    .roundTrip("TCP_FASTOPEN", on: SocketKind.tcp, get: { try $0.tcpFastopen() },
               set: { try $0.setTcpFastopen($1) }, values: [5, 0, 128]),
    .bool("TCP_FASTOPEN_CONNECT", on: SocketKind.tcp, get: { try $0.tcpFastopenConnect() },
          set: { try $0.setTcpFastopenConnect($1) }),
    .roundTrip("TCP_MAXSEG", on: SocketKind.tcp, get: { try $0.tcpMss() }, set: { try $0.setTcpMss($1) },
               values: [1000, 536]),
    .refused("TCP_MAXSEG too small (kernel)", on: SocketKind.tcp, with: .invalidArgument) { try $0.setTcpMss(10) },
    .bool("TCP_NODELAY", on: SocketKind.tcp, get: { try $0.tcpNodelay() }, set: { try $0.setTcpNodelay($1) }),
    .refused("TCP_NODELAY on UDP", on: [.udp4, .udp6], with: .protocolNotAvailable) { try $0.setTcpNodelay(true) },
    .roundTrip("TCP_NOTSENT_LOWAT", on: SocketKind.tcp, get: { try $0.tcpNotsentLowat() },
               set: { try $0.setTcpNotsentLowat($1) }, values: [1000, 16384]),
    .bool("TCP_QUICKACK", on: SocketKind.tcp, get: { try $0.tcpQuickack() }, set: { try $0.setTcpQuickack($1) }),
    .roundTrip("TCP_SYNCNT", on: SocketKind.tcp, get: { try $0.tcpSyncnt() }, set: { try $0.setTcpSyncnt($1) },
               values: [3, 6, 127]),
    .refused("TCP_SYNCNT 128 (kernel)", on: SocketKind.tcp, with: .invalidArgument) { try $0.setTcpSyncnt(128) },
    .bool("TCP_THIN_LINEAR_TIMEOUTS", on: SocketKind.tcp, get: { try $0.tcpThinLinearTimeouts() },
          set: { try $0.setTcpThinLinearTimeouts($1) }),
    .roundTrip("TCP_USER_TIMEOUT", on: SocketKind.tcp, get: { try $0.tcpUserTimeout() },
               set: { try $0.setTcpUserTimeout($1) },
               values: [.seconds(5), nil, .milliseconds(1_500), .microseconds(1_999_999), .zero],
               expected: { $0 == .microseconds(1_999_999) ? .milliseconds(1_999) : $0 == .zero ? nil : $0 }),
    .refused("TCP_USER_TIMEOUT clamped then refused (kernel)", on: SocketKind.tcp, with: .invalidArgument) {
        try $0.setTcpUserTimeout(.seconds(Int64.max))
    },
    .roundTrip("TCP_WINDOW_CLAMP", on: SocketKind.tcp, get: { try $0.tcpWindowClamp() },
               set: { try $0.setTcpWindowClamp($1) }, values: [20_000, 40_000]),
]

@Suite("Option round trips")
struct OptionRoundTripTests {
    @Test("SOL_SOCKET", arguments: socketLevel)
    func socketOptions(_ option: OptionCase) throws { try option.run() }

    @Test("IPPROTO_IP", arguments: ipLevel)
    func ipOptions(_ option: OptionCase) throws { try option.run() }

    @Test("IPPROTO_IPV6", arguments: ipv6Level)
    func ipv6Options(_ option: OptionCase) throws { try option.run() }

    @Test("IPPROTO_TCP", arguments: tcpLevel)
    func tcpOptions(_ option: OptionCase) throws { try option.run() }
}
