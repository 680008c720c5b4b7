// Creation, descriptor flags, ownership, shutdown and error behaviour of the core.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

@Suite("Socket creation")
struct SocketCreationTests {
    @Test(arguments: [
        (Domain.ipv4, SocketType.stream), (.ipv4, .dgram), (.ipv6, .stream), (.ipv6, .dgram),
        (.unix, .stream), (.unix, .dgram), (.unix, .seqpacket),
    ])
    func createsTheSocketAskedFor(domain: Domain, type: SocketType) throws {
        let socket = try Socket(domain: domain, type: type)
        #expect(try TestNet.intOption(socket.rawDescriptor, SOL_SOCKET, SO_DOMAIN) == domain.rawValue)
        #expect(try TestNet.intOption(socket.rawDescriptor, SOL_SOCKET, SO_TYPE) == type.rawValue)
    }

    @Test func passesTheProtocol() throws {
        let tcp = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
        #expect(try TestNet.intOption(tcp.rawDescriptor, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP)
        let udp = try Socket.newRaw(domain: .ipv6, type: .dgram, protocol: .udp)
        #expect(try TestNet.intOption(udp.rawDescriptor, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDP)
        let pair = try Socket.pair(domain: .unix, type: .stream, protocol: SocketProtocol(0))
        #expect(try TestNet.intOption(pair.first.rawDescriptor, SOL_SOCKET, SO_TYPE) == SOCK_STREAM.rawValue)
    }

    @Test func refusesAnUnknownDomainWithTheKernelsError() {
        #expect(throws: Errno.addressFamilyNotSupported) { _ = try Socket(domain: Domain(4242), type: .stream) }
        #expect(throws: Errno.invalidArgument) { _ = try Socket(domain: .ipv4, type: SocketType(4242)) }
    }

    @Test func fileDescriptorConversions() throws {
        let socket = try Socket(domain: .unix, type: .stream)
        let fd = socket.rawDescriptor
        #expect(socket.fileDescriptor.rawValue == fd)
        let descriptor = socket.intoFileDescriptor()
        #expect(descriptor.rawValue == fd)
        let again = Socket(descriptor)
        #expect(again.rawDescriptor == fd)
        let raw = again.intoRawDescriptor()
        let owned = Socket(rawDescriptor: raw)
        #expect(owned.rawDescriptor == fd)
        #expect(SockRef(descriptor).rawDescriptor == fd)
    }

    @Test func fileDescriptorViewWritesToTheSocket() throws {
        let pair = try TestNet.unixPair(.stream)
        let written = try pair.first.fileDescriptor.writeAll(TestNet.bytes("via swift-system"))
        #expect(written == 16)
        #expect(try pair.second.recv(maxCount: 64) == TestNet.bytes("via swift-system"))
    }

    @Test func domainForAddress() throws {
        #expect(Domain.forAddress(try SocketAddr("127.0.0.1:1")) == .ipv4)
        #expect(Domain.forAddress(try SocketAddr("[::1]:1")) == .ipv6)
    }
}

@Suite("Descriptor flags")
struct DescriptorFlagTests {
    /// Close-on-exec and non-blocking as the library reads them, checked against `fcntl(2)`.
    private func flags(_ fd: CInt, of socket: SockRef) throws -> (cloexec: Bool, nonblocking: Bool) {
        let cloexec = try socket.cloexec()
        let nonblocking = try socket.nonblocking()
        #expect(cloexec == (TestNet.fcntlFlags(fd, F_GETFD) & FD_CLOEXEC != 0))
        #expect(nonblocking == (TestNet.fcntlFlags(fd, F_GETFL) & O_NONBLOCK != 0))
        return (cloexec, nonblocking)
    }

    private func flags(of socket: borrowing Socket) throws -> (cloexec: Bool, nonblocking: Bool) {
        try flags(socket.rawDescriptor, of: SockRef(socket))
    }

    @Test func newSocketIsCloseOnExecAndBlocking() throws {
        let socket = try Socket(domain: .ipv4, type: .stream)
        #expect(try flags(of: socket) == (true, false))
        let nonblocking = try Socket(domain: .ipv4, type: .stream.nonblocking())
        #expect(try flags(of: nonblocking) == (true, true))
    }

    @Test func newRawSetsNothing() throws {
        let socket = try Socket.newRaw(domain: .ipv4, type: .stream)
        #expect(try flags(of: socket) == (false, false))
        let asked = try Socket.newRaw(domain: .ipv4, type: .dgram.cloexec().nonblocking())
        #expect(try flags(of: asked) == (true, true))
    }

    @Test func pairIsCloseOnExecAndPairRawIsNot() throws {
        let pair = try Socket.pair(domain: .unix, type: .stream)
        #expect(try flags(of: pair.first) == (true, false))
        #expect(try flags(of: pair.second) == (true, false))
        let raw = try Socket.pairRaw(domain: .unix, type: .dgram)
        #expect(try flags(of: raw.first) == (false, false))
        #expect(try flags(of: raw.second) == (false, false))
    }

    @Test func acceptIsCloseOnExecAndAcceptRawIsNot() throws {
        let listener = try TestNet.listener(.ipv4)
        // The listener is non-blocking; what accept returns must not inherit that.
        try listener.setNonblocking(true)
        let first = try TestNet.socket(.ipv4, .stream)
        try first.connect(listener.localAddr())
        let second = try TestNet.socket(.ipv4, .stream)
        try second.connect(listener.localAddr())
        let third = try TestNet.socket(.ipv4, .stream)
        try third.connect(listener.localAddr())
        let fourth = try TestNet.socket(.ipv4, .stream)
        try fourth.connect(listener.localAddr())

        TestNet.wait(for: POLLIN, on: listener.rawDescriptor)
        let accepted = try listener.accept()
        #expect(try flags(of: accepted.socket) == (true, false))
        #expect(accepted.address == (try first.localAddr()))

        TestNet.wait(for: POLLIN, on: listener.rawDescriptor)
        let raw = try listener.acceptRaw()
        #expect(try flags(of: raw.socket) == (false, false))
        #expect(raw.address == (try second.localAddr()))

        TestNet.wait(for: POLLIN, on: listener.rawDescriptor)
        let nonblocking = try listener.accept4(.nonblocking)
        #expect(try flags(of: nonblocking.socket) == (false, true))
        #expect(nonblocking.address == (try third.localAddr()))

        TestNet.wait(for: POLLIN, on: listener.rawDescriptor)
        let both = try listener.accept4([.nonblocking, .cloexec])
        #expect(try flags(of: both.socket) == (true, true))

        #expect(throws: Errno.wouldBlock) { _ = try listener.accept() }
    }

    @Test func tryCloneIsCloseOnExecAndSharesTheSocket() throws {
        let pair = try TestNet.unixPair(.stream)
        try pair.first.setCloexec(false)
        let clone = try pair.first.tryClone()
        #expect(clone.rawDescriptor != pair.first.rawDescriptor)
        #expect(try flags(of: clone) == (true, false))
        #expect(try flags(of: pair.first) == (false, false))
        // One socket behind two descriptors: same inode, shared file status flags.
        #expect(OpenDescriptors.inode(of: clone.rawDescriptor) == OpenDescriptors.inode(of: pair.first.rawDescriptor))
        try clone.setNonblocking(true)
        #expect(try pair.first.nonblocking())
        _ = try clone.send(TestNet.bytes("from the clone"))
        #expect(try pair.second.recv(maxCount: 64) == TestNet.bytes("from the clone"))
    }

    @Test func setNonblockingAndSetCloexecRoundTrip() throws {
        let socket = try Socket.newRaw(domain: .ipv4, type: .dgram)
        try socket.setNonblocking(true)
        try socket.setNonblocking(true)
        #expect(try flags(of: socket) == (false, true))
        try socket.setCloexec(true)
        #expect(try flags(of: socket) == (true, true))
        try socket.setNonblocking(false)
        #expect(try flags(of: socket) == (true, false))
        try socket.setCloexec(false)
        try socket.setCloexec(false)
        #expect(try flags(of: socket) == (false, false))
    }

    @Test func nonblockingReceiveWouldBlock() throws {
        let pair = try TestNet.unixPair(.stream)
        try pair.first.setNonblocking(true)
        #expect(throws: Errno.wouldBlock) { _ = try pair.first.recv(maxCount: 1) }
        // The per-call flag does the same on a blocking socket.
        #expect(throws: Errno.wouldBlock) { _ = try pair.second.recv(maxCount: 1, flags: .dontWait) }
    }
}

@Suite("Shutdown")
struct ShutdownTests {
    @Test func shutdownWriteIsEndOfStreamForThePeer() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        try pair.first.shutdown(.write)
        #expect(try pair.second.recv(maxCount: 8) == [])
        // The other direction still works.
        _ = try pair.second.send(TestNet.bytes("back"))
        #expect(try pair.first.recv(maxCount: 8) == TestNet.bytes("back"))
        #expect(throws: Errno.brokenPipe) { _ = try pair.first.send(TestNet.bytes("x")) }
    }

    @Test func shutdownReadStopsThePeersSends() throws {
        let pair = try TestNet.unixPair(.stream)
        try pair.first.shutdown(.read)
        #expect(try pair.first.recv(maxCount: 8) == [])
        #expect(throws: Errno.brokenPipe) { _ = try pair.second.send(TestNet.bytes("x")) }
        // The other direction still works.
        _ = try pair.first.send(TestNet.bytes("still"))
        #expect(try pair.second.recv(maxCount: 8) == TestNet.bytes("still"))
    }

    @Test func shutdownBoth() throws {
        let pair = try TestNet.unixPair(.stream)
        try pair.first.shutdown(.both)
        #expect(try pair.second.recv(maxCount: 8) == [])
        #expect(throws: Errno.brokenPipe) { _ = try pair.second.send(TestNet.bytes("x")) }
        #expect(throws: Errno.brokenPipe) { _ = try pair.first.send(TestNet.bytes("x")) }
    }

    @Test func shutdownOfAnUnconnectedSocketIsTheKernelsError() throws {
        let socket = try Socket(domain: .ipv4, type: .stream)
        #expect(throws: Errno.socketNotConnected) { try socket.shutdown(.both) }
    }
}

/// Ownership of descriptors, observed in `/proc/self/fd`. Other suites open and close sockets
/// in parallel, so the checks follow the inodes of the sockets made here rather than counts.
@Suite("Descriptor ownership", .serialized)
struct OwnershipTests {
    /// A descriptor and the socket inode it had when it was made.
    struct Made {
        let fd: CInt
        let inode: UInt64
        init(_ fd: CInt) {
            self.fd = fd
            inode = OpenDescriptors.inode(of: fd)!
        }
        var isOpen: Bool { OpenDescriptors.isOpen(fd, inode: inode) }
    }

    @Test func everyWayOfLettingGoClosesExactlyOnce() throws {
        var dropped: [Made] = []
        var kept: [Made] = []  // owned by no `Socket`, so they must stay open
        for round in 0..<32 {
            do {
                let socket = try Socket(domain: .ipv4, type: .dgram)
                dropped.append(Made(socket.rawDescriptor))
            }
            do {
                let pair = try Socket.pair(domain: .unix, type: .stream)
                dropped.append(Made(pair.first.rawDescriptor))
                dropped.append(Made(pair.second.rawDescriptor))
                let clone = try pair.first.tryClone()
                dropped.append(Made(clone.rawDescriptor))
            }
            do {
                let socket = try Socket.newRaw(domain: .unix, type: .dgram)
                dropped.append(Made(socket.rawDescriptor))
                try socket.close()
            }
            // A socket made right after the ones above probably reuses one of their numbers:
            // a second close of any of them would close it.
            let survivor = try Socket(domain: .unix, type: .dgram)
            kept.append(Made(survivor.intoRawDescriptor()))
            if round.isMultiple(of: 8) {
                let inodes = OpenDescriptors.socketInodes()
                #expect(kept.allSatisfy { inodes.contains($0.inode) })
            }
        }
        let inodes = OpenDescriptors.socketInodes()
        #expect(dropped.filter { inodes.contains($0.inode) }.isEmpty)
        #expect(kept.allSatisfy { $0.isOpen && inodes.contains($0.inode) })
        for made in kept { _ = Socket(rawDescriptor: made.fd) }  // and now they close
        let after = OpenDescriptors.socketInodes()
        #expect(kept.allSatisfy { !after.contains($0.inode) })
    }

    @Test func acceptedSocketsAreClosedWithTheirValue() throws {
        let listener = try TestNet.listener(.ipv4)
        var accepted: [Made] = []
        for _ in 0..<8 {
            let client = try TestNet.socket(.ipv4, .stream)
            try client.connect(listener.localAddr())
            let connection = try listener.accept()
            accepted.append(Made(connection.socket.rawDescriptor))
        }
        let inodes = OpenDescriptors.socketInodes()
        #expect(accepted.allSatisfy { !inodes.contains($0.inode) })
    }

    @Test func aSockRefNeverCloses() throws {
        let socket = try Socket(domain: .ipv4, type: .stream)
        let made = Made(socket.rawDescriptor)
        do {
            let view = SockRef(socket)
            _ = try view.localAddr()
            let copy = view
            _ = try copy.nonblocking()
        }
        #expect(made.isOpen)
        _ = consume socket
        #expect(!OpenDescriptors.socketInodes().contains(made.inode))
    }

    @Test func closeReportsAndCloses() throws {
        let socket = try Socket(domain: .ipv6, type: .stream)
        let made = Made(socket.rawDescriptor)
        try socket.close()
        #expect(!made.isOpen)
    }
}

@Suite("Error behaviour")
struct ErrorBehaviourTests {
    @Test func anAddressOfTheWrongFamilyGetsTheKernelsError() throws {
        let v4 = try Socket(domain: .ipv4, type: .stream)
        #expect(throws: Errno.addressFamilyNotSupported) { try v4.bind(TestNet.loopback(.ipv6)) }
        #expect(throws: Errno.addressFamilyNotSupported) { try v4.connect(TestNet.loopback(.ipv6, port: 9)) }
        let v6 = try Socket(domain: .ipv6, type: .stream)
        #expect(throws: Errno.invalidArgument) { try v6.bind(TestNet.loopback(.ipv4)) }
        let udp = try Socket(domain: .ipv4, type: .dgram)
        #expect(throws: Errno.addressFamilyNotSupported) {
            _ = try udp.sendTo(TestNet.bytes("x"), to: TestNet.loopback(.ipv6, port: 9))
        }
        let unix = try Socket(domain: .unix, type: .dgram)
        #expect(throws: Errno.invalidArgument) { try unix.bind(TestNet.loopback(.ipv4)) }
    }

    @Test func aClosedDescriptorIsBadFileDescriptor() throws {
        // A number far above what the tests open, so that no concurrent test reuses it.
        let socket = try Socket(domain: .ipv4, type: .dgram)
        let high: CInt = 900
        #expect(fcntl(high, F_GETFD) == -1)
        #expect(dup2(socket.rawDescriptor, high) == high)
        #expect(close(high) == 0)
        let view = SockRef(rawDescriptor: high)
        #expect(throws: Errno.badFileDescriptor) { _ = try view.localAddr() }
        #expect(throws: Errno.badFileDescriptor) { _ = try view.send(TestNet.bytes("x")) }
        #expect(throws: Errno.badFileDescriptor) { _ = try view.recv(maxCount: 1) }
        #expect(throws: Errno.badFileDescriptor) { _ = try view.nonblocking() }
        #expect(throws: Errno.badFileDescriptor) { try view.bind(TestNet.loopback(.ipv4)) }
        #expect(throws: Errno.badFileDescriptor) { _ = try view.tryClone() }
    }

    @Test func aNegativeMaxCountIsInvalid() throws {
        let pair = try TestNet.udpPair(.ipv4)
        _ = try pair.first.send(TestNet.bytes("kept"))
        #expect(throws: Errno.invalidArgument) { _ = try pair.second.recv(maxCount: -1) }
        #expect(throws: Errno.invalidArgument) { _ = try pair.second.recvFrom(maxCount: -1) }
        // Nothing was consumed by the refused calls.
        #expect(try pair.second.recv(maxCount: 8) == TestNet.bytes("kept"))
    }

    @Test func anAddressInUseIsTheKernelsError() throws {
        let first = try Socket(domain: .ipv4, type: .stream)
        try first.bind(TestNet.loopback(.ipv4))
        let second = try Socket(domain: .ipv4, type: .stream)
        #expect(throws: Errno.addressInUse) { try second.bind(first.localAddr()) }
    }
}

@Suite("Descriptions")
struct DescriptionTests {
    @Test func domainNames() {
        #expect(Domain.ipv4.description == "AF_INET" && Domain.ipv4.rawValue == AF_INET)
        #expect(Domain.ipv6.description == "AF_INET6" && Domain.ipv6.rawValue == AF_INET6)
        #expect(Domain.unix.description == "AF_UNIX" && Domain.unix.rawValue == AF_UNIX)
        #expect(Domain.packet.description == "AF_PACKET" && Domain.packet.rawValue == AF_PACKET)
        #expect(Domain.vsock.description == "AF_VSOCK" && Domain.vsock.rawValue == AF_VSOCK)
        #expect(Domain(0).description == "AF_UNSPEC")
        #expect(Domain(4242).description == "4242")
        #expect(Domain(rawValue: AF_INET) == .ipv4)
    }

    @Test func typeNames() {
        #expect(SocketType.stream.description == "SOCK_STREAM" && SocketType.stream.rawValue == 1)
        #expect(SocketType.dgram.description == "SOCK_DGRAM" && SocketType.dgram.rawValue == 2)
        #expect(SocketType.raw.description == "SOCK_RAW" && SocketType.raw.rawValue == 3)
        #expect(SocketType(4).description == "SOCK_RDM")
        #expect(SocketType.seqpacket.description == "SOCK_SEQPACKET" && SocketType.seqpacket.rawValue == 5)
        #expect(SocketType.dccp.description == "SOCK_DCCP" && SocketType.dccp.rawValue == 6)
        #expect(SocketType(99).description == "99")
        // The flags are or-ed in, not named (as socket2).
        let flagged = SocketType.stream.nonblocking().cloexec()
        #expect(flagged.rawValue == 1 | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue))
        #expect(flagged.description == String(flagged.rawValue))
    }

    @Test func protocolNames() {
        let expected: [(SocketProtocol, String, CInt)] = [
            (.icmpv4, "IPPROTO_ICMP", 1), (.icmpv6, "IPPROTO_ICMPV6", 58), (.tcp, "IPPROTO_TCP", 6),
            (.udp, "IPPROTO_UDP", 17), (.mptcp, "IPPROTO_MPTCP", 262), (.dccp, "IPPROTO_DCCP", 33),
            (.sctp, "IPPROTO_SCTP", 132), (.udplite, "IPPROTO_UDPLITE", 136),
        ]
        for (value, name, number) in expected {
            #expect(value.description == name)
            #expect(value.rawValue == number)
        }
        #expect(SocketProtocol(200).description == "200")
    }

    @Test func recvFlags() {
        let all = RecvFlags(rawValue: CInt(MSG_TRUNC | MSG_EOR | MSG_OOB | MSG_CONFIRM | MSG_DONTROUTE | MSG_CTRUNC))
        #expect(all.isTruncated() && all.isEndOfRecord() && all.isOutOfBand())
        #expect(all.isConfirm() && all.isDontroute() && all.isControlTruncated())
        let none = RecvFlags(rawValue: 0)
        #expect(!none.isTruncated() && !none.isEndOfRecord() && !none.isOutOfBand())
        #expect(!none.isConfirm() && !none.isDontroute() && !none.isControlTruncated())
        let truncated = RecvFlags(rawValue: CInt(MSG_TRUNC))
        #expect(truncated.isTruncated() && !truncated.isEndOfRecord())
        #expect(truncated.description == "RecvFlags(isTruncated: true, isEndOfRecord: false, "
            + "isOutOfBand: false, isConfirm: false, isDontroute: false, isControlTruncated: false)")
    }

    @Test func socketDescriptionShowsDescriptorAndAddresses() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        let fd = pair.first.rawDescriptor
        let local = try pair.first.localAddr()
        let peer = try pair.first.peerAddr()
        #expect(pair.first.description == "Socket(fd: \(fd), local: \(local), peer: \(peer))")
        #expect(local.description.hasPrefix("127.0.0.1:") && peer.description.hasPrefix("127.0.0.1:"))
        #expect(SockRef(pair.second).description
            == "SockRef(fd: \(pair.second.rawDescriptor), local: \(peer), peer: \(local))")

        let unbound = try Socket(domain: .unix, type: .dgram)
        #expect(unbound.description == "Socket(fd: \(unbound.rawDescriptor), local: unix:(unnamed))")
        #expect("\(SockRef(unbound))" == unbound.description.replacing("Socket(", with: "SockRef(", maxReplacements: 1))
    }
}
