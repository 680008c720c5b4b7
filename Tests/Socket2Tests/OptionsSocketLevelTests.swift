// SOL_SOCKET options and queue sizes whose value is checked against known truth or observed by
// their effect, rather than round-tripped.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

/// Classic BPF instructions used below (linux/bpf_common.h).
private enum BPF {
    static func loadByte(at offset: UInt32) -> SockFilter {  // BPF_LD | BPF_B | BPF_ABS
        SockFilter(code: 0x30, jt: 0, jf: 0, k: offset)
    }
    static func jumpIfEqual(_ value: UInt32, skipIfTrue: UInt8, skipIfFalse: UInt8) -> SockFilter {
        SockFilter(code: 0x15, jt: skipIfTrue, jf: skipIfFalse, k: value)  // BPF_JMP | BPF_JEQ | BPF_K
    }
    static func ret(_ value: UInt32) -> SockFilter {  // BPF_RET | BPF_K
        SockFilter(code: 0x06, jt: 0, jf: 0, k: value)
    }
    static let acceptAll = [ret(0xffff_ffff)]
    static let dropAll = [ret(0)]
}

/// A name in the abstract Unix namespace that no other test (or process) uses.
private func uniqueAbstractAddress(_ tag: String) throws -> SockAddr {
    try SockAddr.unixAbstract(Array("socket2-options-\(getpid())-\(tag)".utf8))
}

/// The datagrams a socket dropped: `SK_MEMINFO_DROPS` of `SO_MEMINFO` (not an option of this
/// module, so read directly).
private func droppedCount(_ socket: SockRef) throws -> UInt32 {
    var info = [UInt32](repeating: 0, count: 9)  // SK_MEMINFO_VARS
    var length = socklen_t(info.count * 4)
    let result = info.withUnsafeMutableBytes {
        getsockopt(socket.rawDescriptor, SOL_SOCKET, SO_MEMINFO, $0.baseAddress, &length)
    }
    try #require(result == 0 && length == socklen_t(info.count * 4))
    return info[8]  // SK_MEMINFO_DROPS
}

@Suite("Options SOL_SOCKET")
struct OptionsSocketLevelTests {
    @Test("type(), domain(), protocol() report how the socket was made", arguments: SocketKind.allCases)
    func identity(_ kind: SocketKind) throws {
        let socket = try Socket(domain: kind.domain, type: kind.type.nonblocking())
        #expect(try socket.type() == kind.type)  // SO_TYPE carries no SOCK_NONBLOCK / SOCK_CLOEXEC.
        #expect(try socket.domain() == kind.domain)
        let expected: SocketProtocol? = switch kind {
        case .tcp4, .tcp6: .tcp
        case .udp4, .udp6: .udp
        case .unix, .unixDgram: nil
        }
        #expect(try socket.protocol() == expected)
    }

    @Test("isListener() is false before listen() and true after")
    func listener() throws {
        for domain in [Domain.ipv4, .ipv6] {
            let socket = try Socket(domain: domain, type: .stream)
            try socket.bind(loopback(domain))
            #expect(try socket.isListener() == false)
            try socket.listen(1)
            #expect(try socket.isListener() == true)
        }
        let unix = try Socket(domain: .unix, type: .stream)
        try unix.bind(uniqueAbstractAddress("listener"))
        #expect(try unix.isListener() == false)
        try unix.listen(1)
        #expect(try unix.isListener() == true)
    }

    @Test("takeError() reports a refused non-blocking connect once, then nil")
    func takeError() throws {
        for domain in [Domain.ipv4, .ipv6] {
            // A bound socket that does not listen: connecting to its port is refused.
            let closed = try Socket(domain: domain, type: .stream)
            try closed.bind(loopback(domain))
            let socket = try Socket(domain: domain, type: .stream.nonblocking())
            #expect(try socket.takeError() == nil)
            let connectError = thrownError { try socket.connect(closed.localAddr()) }
            #expect(connectError == .nowInProgress || connectError == .connectionRefused)
            if connectError == .nowInProgress {
                try waitWritable(SockRef(socket))
                #expect(try socket.takeError() == .connectionRefused)
            }
            #expect(try socket.takeError() == nil)
        }
    }

    @Test("cookie() is non-zero, stable, and differs between sockets")
    func cookie() throws {
        let first = try Socket(domain: .ipv4, type: .dgram)
        let second = try Socket(domain: .unix, type: .stream)
        let cookie = try first.cookie()
        #expect(cookie != 0)
        #expect(try first.cookie() == cookie)
        #expect(try SockRef(first).cookie() == cookie)
        #expect(try second.cookie() != cookie)
        #expect(try second.cookie() != 0)
    }

    @Test("peerCred() of a Unix socket is this process's pid, uid and gid")
    func peerCred() throws {
        let me = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
        let pair = try Socket.pair(domain: .unix, type: .stream)
        #expect(try pair.first.peerCred() == me)
        #expect(try pair.second.peerCred() == me)

        let address = try uniqueAbstractAddress("peercred")
        let listener = try Socket(domain: .unix, type: .stream)
        try listener.bind(address)
        try listener.listen(1)
        let client = try Socket(domain: .unix, type: .stream)
        try client.connect(address)
        let accepted = try listener.accept()
        #expect(try client.peerCred() == me)
        #expect(try accepted.socket.peerCred() == me)
    }

    @Test("sendLowat() reads 1 on Linux, and setting it is ENOPROTOOPT", arguments: SocketKind.allCases)
    func sendLowat(_ kind: SocketKind) throws {
        let socket = try kind.make()
        #expect(try socket.sendLowat() == 1)
        #expect(thrownError { try socket.setSendLowat(1) } == .protocolNotAvailable)
    }

    // MARK: Queue sizes

    @Test("bytesToRead() counts the bytes queued on a socket pair")
    func bytesToReadStream() throws {
        let pair = try Socket.pair(domain: .unix, type: .stream)
        #expect(try pair.second.bytesToRead() == 0)
        #expect(try pair.first.send([UInt8](repeating: 7, count: 1000)) == 1000)
        #expect(try pair.first.send([UInt8](repeating: 8, count: 234)) == 234)
        #expect(try pair.second.bytesToRead() == 1234)
        #expect(try pair.second.recv(maxCount: 1000).count == 1000)
        #expect(try pair.second.bytesToRead() == 234)
    }

    @Test("bytesToRead() of a datagram socket is the size of the next datagram")
    func bytesToReadDatagram() throws {
        let pair = try Socket.pair(domain: .unix, type: .dgram)
        #expect(try pair.first.send([UInt8](repeating: 1, count: 100)) == 100)
        #expect(try pair.first.send([UInt8](repeating: 2, count: 30)) == 30)
        #expect(try pair.second.bytesToRead() == 100)
        _ = try pair.second.recv(maxCount: 100)
        #expect(try pair.second.bytesToRead() == 30)
    }

    @Test("bytesNotSent() is 0 when idle and counts the unacknowledged bytes of a full connection")
    func bytesNotSent() throws {
        for domain in [Domain.ipv4, .ipv6] {
            let connection = try tcpConnection(domain)
            #expect(try connection.first.bytesNotSent() == 0)
            // The receiver does not read: its window closes and the sender's queue fills.
            try connection.second.setRecvBufferSize(4096)
            try connection.first.setSendBufferSize(4096)
            try connection.first.setNonblocking(true)
            let chunk = [UInt8](repeating: 0x5a, count: 4096)
            var sent = 0
            while true {
                do {
                    sent += try connection.first.send(chunk)
                } catch Errno.wouldBlock {
                    break
                } catch {
                    throw error
                }
            }
            let notSent = try connection.first.bytesNotSent()
            #expect(notSent > 0)
            #expect(notSent <= sent)
            // Every byte sent is unacknowledged at the sender or queued at the receiver (or, until
            // the receiver acknowledges it, both).
            let queued = try connection.second.bytesToRead()
            #expect(queued > 0)
            #expect(notSent + queued >= sent)
        }
    }

    @Test("bytesToRead() and bytesNotSent() refuse a listening socket")
    func queueSizesOfListener() throws {
        let listener = try Socket(domain: .ipv4, type: .stream)
        try listener.bind(loopback(.ipv4))
        try listener.listen(1)
        #expect(thrownError { try listener.bytesToRead() } == .invalidArgument)
        #expect(thrownError { try listener.bytesNotSent() } == .invalidArgument)
    }

    // MARK: Filters

    @Test("attachFilter(): accept-all delivers, a filter on the payload drops only what it rejects",
          arguments: [Domain.ipv4, .ipv6])
    func attachFilterUDP(_ domain: Domain) throws {
        let receiver = try boundUDP(domain)
        let sender = try Socket(domain: domain, type: .dgram)
        let address = try receiver.localAddr()

        try receiver.attachFilter(BPF.acceptAll)
        _ = try sender.sendTo(Array("accepted".utf8), to: address)
        try waitReadable(SockRef(receiver))
        #expect(try receiver.recv(maxCount: 64) == Array("accepted".utf8))

        // Drop datagrams whose first payload byte (after the 8-byte UDP header) is "A".
        try receiver.attachFilter([
            BPF.loadByte(at: 8),
            BPF.jumpIfEqual(UInt32(UInt8(ascii: "A")), skipIfTrue: 0, skipIfFalse: 1),
            BPF.ret(0),
            BPF.ret(0xffff_ffff),
        ])
        _ = try sender.sendTo(Array("A: dropped".utf8), to: address)
        _ = try sender.sendTo(Array("B: kept".utf8), to: address)
        try waitReadable(SockRef(receiver))
        #expect(try receiver.recv(maxCount: 64) == Array("B: kept".utf8))
        #expect(thrownError { try receiver.recv(maxCount: 64, flags: .dontWait) } == .wouldBlock)

        try receiver.detachFilter()
        _ = try sender.sendTo(Array("A: kept now".utf8), to: address)
        try waitReadable(SockRef(receiver))
        #expect(try receiver.recv(maxCount: 64) == Array("A: kept now".utf8))
        #expect(thrownError { try receiver.detachFilter() } == .noSuchFileOrDirectory)
    }

    @Test("attachFilter(): drop-all discards UDP datagrams, which the socket counts as dropped",
          arguments: [Domain.ipv4, .ipv6])
    func attachFilterDropAllUDP(_ domain: Domain) throws {
        let receiver = try boundUDP(domain)
        let sender = try Socket(domain: domain, type: .dgram)
        try receiver.attachFilter(BPF.dropAll)
        #expect(try droppedCount(SockRef(receiver)) == 0)
        _ = try sender.sendTo(Array("dropped".utf8), to: receiver.localAddr())
        // Loopback delivers in a softirq: wait, at most five seconds, until the datagram is
        // either counted as dropped (SO_MEMINFO) or readable.
        var entry = pollfd(fd: receiver.rawDescriptor, events: Int16(POLLIN), revents: 0)
        for _ in 0..<5_000 where try droppedCount(SockRef(receiver)) == 0 {
            if poll(&entry, 1, 1) != 0 { break }
        }
        #expect(try droppedCount(SockRef(receiver)) == 1)
        #expect(thrownError { try receiver.recv(maxCount: 64, flags: .dontWait) } == .wouldBlock)
    }

    @Test("attachFilter(): drop-all discards Unix datagrams as they are sent")
    func attachFilterDropAll() throws {
        let pair = try Socket.pair(domain: .unix, type: .dgram)
        try pair.second.attachFilter(BPF.dropAll)
        #expect(try pair.first.send(Array("dropped".utf8)) == 7)
        #expect(thrownError { try pair.second.recv(maxCount: 64, flags: .dontWait) } == .wouldBlock)
        try pair.second.attachFilter(BPF.acceptAll)
        #expect(try pair.first.send(Array("delivered".utf8)) == 9)
        #expect(try pair.second.recv(maxCount: 64, flags: .dontWait) == Array("delivered".utf8))
    }

    @Test("attachFilter() refuses an invalid program and one too long to describe")
    func attachFilterInvalid() throws {
        let socket = try Socket(domain: .ipv4, type: .dgram)
        // A program must end with a return.
        #expect(thrownError { try socket.attachFilter([BPF.loadByte(at: 0)]) } == .invalidArgument)
        let tooLong = [SockFilter](repeating: BPF.ret(0), count: Int(UInt16.max) + 1)
        #expect(thrownError { try socket.attachFilter(tooLong) } == .invalidArgument)
    }

    @Test("attachReuseportCbpf() steers every datagram of a SO_REUSEPORT group to the socket it names",
          arguments: [Domain.ipv4, .ipv6])
    func attachReuseportCbpf(_ domain: Domain) throws {
        let first = try Socket(domain: domain, type: .dgram)
        #expect(thrownError { try first.attachReuseportCbpf(BPF.acceptAll) } == .invalidArgument)
        try first.setReusePort(true)
        try first.bind(loopback(domain))
        let second = try Socket(domain: domain, type: .dgram)
        try second.setReusePort(true)
        try second.bind(first.localAddr())
        // Index 1 of the group: the second socket bound.
        try first.attachReuseportCbpf([BPF.ret(1)])

        let count = 8
        for index in 0..<count {  // From as many source ports, so that a hash would spread them.
            let sender = try Socket(domain: domain, type: .dgram)
            _ = try sender.sendTo([UInt8(index)], to: first.localAddr())
        }
        var received: [UInt8] = []
        for _ in 0..<count {
            try waitReadable(SockRef(second))
            received += try second.recv(maxCount: 8)
        }
        #expect(received.sorted() == (0..<UInt8(count)).map { $0 })
        #expect(thrownError { try first.recv(maxCount: 8, flags: .dontWait) } == .wouldBlock)
    }
}
