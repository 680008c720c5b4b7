// IPPROTO_IP and IPPROTO_IPV6 options checked by their effect or against known truth. Multicast
// groups are joined on the loopback interface only.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

@Suite("Options IPPROTO_IP and IPPROTO_IPV6")
struct OptionsIPTests {
    private let group = IPv4Address(239, 255, 42, 99)

    @Test("joinMulticastV4 / leaveMulticastV4 (ip_mreq) change the membership")
    func multicastV4() throws {
        let socket = try Socket(domain: .ipv4, type: .dgram)
        #expect(thrownError { try socket.leaveMulticastV4(group, interface: .localhost) } == .addressNotAvailable)
        try socket.joinMulticastV4(group, interface: .localhost)
        #expect(thrownError { try socket.joinMulticastV4(group, interface: .localhost) } == .addressInUse)
        try socket.leaveMulticastV4(group, interface: .localhost)
        #expect(thrownError { try socket.leaveMulticastV4(group, interface: .localhost) } == .addressNotAvailable)
        // Not a multicast address.
        #expect(thrownError { try socket.joinMulticastV4(.localhost, interface: .localhost) } == .invalidArgument)
    }

    @Test("joinMulticastV4N / leaveMulticastV4N (ip_mreqn) by index and by address name the same membership")
    func multicastV4N() throws {
        let socket = try Socket(domain: .ipv4, type: .dgram)
        try socket.joinMulticastV4N(group, interface: .index(loopbackIndex))
        #expect(thrownError { try socket.joinMulticastV4N(group, interface: .address(.localhost)) } == .addressInUse)
        #expect(thrownError { try socket.joinMulticastV4(group, interface: .localhost) } == .addressInUse)
        try socket.leaveMulticastV4N(group, interface: .address(.localhost))
        #expect(thrownError { try socket.leaveMulticastV4N(group, interface: .index(loopbackIndex)) }
            == .addressNotAvailable)
        #expect(thrownError { try socket.joinMulticastV4N(group, interface: .index(0x7fff_fff0)) }
            == .operationNotSupportedByDevice)
    }

    @Test("joinSsmV4 / leaveSsmV4 (ip_mreq_source) change the source-specific membership")
    func sourceSpecificMulticast() throws {
        let socket = try Socket(domain: .ipv4, type: .dgram)
        let ssmGroup = IPv4Address(232, 1, 2, 3)
        let source = IPv4Address(127, 0, 0, 2)
        // Leaving a group never joined: EINVAL ("must have a prior join").
        #expect(thrownError { try socket.leaveSsmV4(source: source, group: ssmGroup, interface: .localhost) }
            == .invalidArgument)
        try socket.joinSsmV4(source: source, group: ssmGroup, interface: .localhost)
        // The group and the source are distinct fields: swapped, the group is not multicast.
        #expect(thrownError { try socket.joinSsmV4(source: ssmGroup, group: source, interface: .localhost) }
            == .invalidArgument)
        // Leaving another source of the joined group: that source is not in the list.
        #expect(thrownError {
            try socket.leaveSsmV4(source: IPv4Address(127, 0, 0, 3), group: ssmGroup, interface: .localhost)
        } == .addressNotAvailable)
        // Leaving the last source leaves the group, so a second leave finds no group.
        try socket.leaveSsmV4(source: source, group: ssmGroup, interface: .localhost)
        #expect(thrownError { try socket.leaveSsmV4(source: source, group: ssmGroup, interface: .localhost) }
            == .invalidArgument)
    }

    @Test("joinMulticastV6 / leaveMulticastV6 change the membership")
    func multicastV6() throws {
        let socket = try Socket(domain: .ipv6, type: .dgram)
        let group = try IPv6Address("ff02::5c:2")
        #expect(thrownError { try socket.leaveMulticastV6(group, interface: loopbackIndex) } == .addressNotAvailable)
        try socket.joinMulticastV6(group, interface: loopbackIndex)
        #expect(thrownError { try socket.joinMulticastV6(group, interface: loopbackIndex) } == .addressInUse)
        try socket.leaveMulticastV6(group, interface: loopbackIndex)
        #expect(thrownError { try socket.leaveMulticastV6(group, interface: loopbackIndex) } == .addressNotAvailable)
        #expect(thrownError { try socket.joinMulticastV6(.localhost, interface: loopbackIndex) } == .invalidArgument)
    }

    @Test("mtuV4() / mtuV6() of a connected loopback UDP socket: the loopback MTU (65536), at most 65535 for IPv4")
    func mtu() throws {
        let v4 = try Socket(domain: .ipv4, type: .dgram)
        try v4.connect(loopback(.ipv4, port: 9))
        #expect(try v4.mtuV4() == 65535)  // The route's MTU is bounded by IP_MAX_MTU.
        let v6 = try Socket(domain: .ipv6, type: .dgram)
        try v6.connect(loopback(.ipv6, port: 9))
        #expect(try v6.mtuV6() == 65536)
    }

    @Test("setDontfragV6(true) refuses a datagram above the path MTU that would otherwise be fragmented")
    func dontfrag() throws {
        let receiver = try boundUDP(.ipv6)
        let socket = try Socket(domain: .ipv6, type: .dgram)
        try socket.connect(receiver.localAddr())
        // 65500 bytes + 8 (UDP) + 40 (IPv6) exceed the loopback MTU of 65536.
        let datagram = [UInt8](repeating: 0, count: 65500)
        #expect(try socket.send(datagram) == datagram.count)  // Fragmented.
        try socket.setDontfragV6(true)
        #expect(thrownError { try socket.send(datagram) } == .messageTooLong)
        #expect(try socket.send([UInt8](repeating: 0, count: 65000)) == 65000)  // Fits.
    }

    @Test("header included: round trip on raw sockets when CAP_NET_RAW allows them, else EPERM")
    func headerIncluded() throws {
        let v4 = thrownError { try Socket(domain: .ipv4, type: .raw, protocol: .udp).headerIncludedV4() }
        let v6 = thrownError { try Socket(domain: .ipv6, type: .raw, protocol: .udp).headerIncludedV6() }
        if v4 == .notPermitted || v6 == .notPermitted {
            #expect(v4 == .notPermitted && v6 == .notPermitted)
            return
        }
        let raw4 = try Socket(domain: .ipv4, type: .raw, protocol: .udp)
        for value in [true, false, true] {
            try raw4.setHeaderIncludedV4(value)
            #expect(try raw4.headerIncludedV4() == value)
        }
        let raw6 = try Socket(domain: .ipv6, type: .raw, protocol: .udp)
        for value in [true, false, true] {
            try raw6.setHeaderIncludedV6(value)
            #expect(try raw6.headerIncludedV6() == value)
        }
        // A raw socket of protocol IPPROTO_RAW always includes the header.
        let rawRaw = try Socket(domain: .ipv4, type: .raw, protocol: SocketProtocol(CInt(IPPROTO_RAW)))
        #expect(try rawRaw.headerIncludedV4() == true)
    }

    @Test("originalDstV4 / V6: without NAT, the connection's own destination, or the kernel's refusal",
          arguments: [Domain.ipv4, .ipv6])
    func originalDestination(_ domain: Domain) throws {
        let connection = try tcpConnection(domain)
        // On the accepted side, the original destination is the address the client connected to.
        do {
            let original = try domain == .ipv4
                ? connection.second.originalDstV4() : connection.second.originalDstV6()
            #expect(original == (try connection.second.localAddr()))
        } catch {
            // Connection tracking absent (ENOPROTOOPT) or not tracking loopback (ENOENT).
            #expect(error == .protocolNotAvailable || error == .noSuchFileOrDirectory)
        }
        // Not an IPv4 option on an IPv6 socket and conversely.
        let other = domain == .ipv4
            ? thrownError { try connection.second.originalDstV6() }
            : thrownError { try connection.second.originalDstV4() }
        #expect(other != nil)
    }
}
