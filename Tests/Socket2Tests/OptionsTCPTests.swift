// IPPROTO_TCP options checked by their effect or against known truth: keepalive parameters,
// TCP_INFO over a loopback transfer, congestion control names.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

@Suite("Options IPPROTO_TCP")
struct OptionsTCPTests {
    @Test("TcpKeepalive builds by value; each with… sets one field")
    func keepaliveBuilder() {
        let empty = TcpKeepalive()
        #expect(empty.time == nil && empty.interval == nil && empty.retries == nil)
        let full = empty.withTime(.seconds(30)).withInterval(.seconds(5)).withRetries(4)
        #expect(full.time == .seconds(30) && full.interval == .seconds(5) && full.retries == 4)
        #expect(empty == TcpKeepalive())  // Untouched.
    }

    @Test("setTcpKeepalive turns SO_KEEPALIVE on and sets only the fields given", arguments: SocketKind.tcp)
    func setTcpKeepalive(_ kind: SocketKind) throws {
        let socket = try kind.make()
        let defaults = (try socket.tcpKeepaliveTime(), try socket.tcpKeepaliveInterval())
        #expect(try socket.keepalive() == false)
        try socket.setTcpKeepalive(TcpKeepalive().withRetries(4))
        #expect(try socket.keepalive() == true)
        #expect(try socket.tcpKeepaliveRetries() == 4)
        #expect(try socket.tcpKeepaliveTime() == defaults.0)
        #expect(try socket.tcpKeepaliveInterval() == defaults.1)

        try socket.setKeepalive(false)
        try socket.setTcpKeepalive(
            TcpKeepalive().withTime(.milliseconds(30_900)).withInterval(.seconds(5)).withRetries(9))
        #expect(try socket.keepalive() == true)
        #expect(try socket.tcpKeepaliveTime() == .seconds(30))  // Whole seconds.
        #expect(try socket.tcpKeepaliveInterval() == .seconds(5))
        #expect(try socket.tcpKeepaliveRetries() == 9)
    }

    @Test("setTcpKeepalive refuses what the kernel or the conversion cannot take", arguments: SocketKind.tcp)
    func setTcpKeepaliveRefused(_ kind: SocketKind) throws {
        let socket = try kind.make()
        // The kernel's bounds: 32767 seconds, 127 probes.
        #expect(thrownError { try socket.setTcpKeepalive(TcpKeepalive().withTime(.seconds(40_000))) }
            == .invalidArgument)
        #expect(thrownError { try socket.setTcpKeepalive(TcpKeepalive().withRetries(200)) } == .invalidArgument)
        // Ours: negative durations, counts that do not fit a C int.
        #expect(thrownError { try socket.setTcpKeepalive(TcpKeepalive().withInterval(.seconds(-1))) }
            == .invalidArgument)
        #expect(thrownError { try socket.setTcpKeepalive(TcpKeepalive().withRetries(.max)) } == .invalidArgument)
    }

    @Test("tcpCongestion() names an algorithm the kernel has, without NUL padding", arguments: SocketKind.tcp)
    func congestion(_ kind: SocketKind) throws {
        let socket = try kind.make()
        let name = try socket.tcpCongestion()
        #expect(!name.isEmpty && !name.contains(0))
        try socket.setTcpCongestion(name)
        #expect(try socket.tcpCongestion() == name)
    }

    @Test("tcpInfo(): state, and counters that grow with a loopback transfer", arguments: [Domain.ipv4, .ipv6])
    func tcpInfo(_ domain: Domain) throws {
        let unconnected = try Socket(domain: domain, type: .stream)
        #expect(try unconnected.tcpInfo().state == .close)
        let listener = try Socket(domain: domain, type: .stream)
        try listener.bind(loopback(domain))
        try listener.listen(1)
        #expect(try listener.tcpInfo().state == .listen)

        let connection = try tcpConnection(domain)
        let before = try connection.first.tcpInfo()
        #expect(before.state == .established)
        #expect(before.state.description == "TCP_ESTABLISHED")
        #expect(before.reportedLength > 100)
        #expect(before.pmtu == (domain == .ipv4 ? 65535 : 65536))  // IPv4 routes stop at IP_MAX_MTU.
        #expect(before.sndMss > 0)
        #expect(before.options.contains(.sack) && before.options.contains(.timestamps))

        // 256 KiB in 16 KiB steps, each read completely before the next is sent.
        let chunk = [UInt8](repeating: 0xab, count: 16 * 1024)
        let steps = 16
        for _ in 0..<steps {
            #expect(try connection.first.send(chunk) == chunk.count)
            var received = 0
            while received < chunk.count {
                received += try connection.second.recv(maxCount: chunk.count - received).count
            }
        }
        let total = UInt64(chunk.count * steps)

        let after = try connection.first.tcpInfo()
        #expect(after.state == .established)
        #expect(after.bytesAcked > before.bytesAcked)
        #expect(after.segsOut > before.segsOut)
        #expect(after.dataSegsOut > before.dataSegsOut)
        #expect(after.bytesSent >= total)
        #expect(after.rtt > .zero)
        #expect(after.sndCwnd > 0)
        let server = try connection.second.tcpInfo()
        #expect(server.bytesReceived == total)
        #expect(server.dataSegsIn > 0)
        #expect(server.lastDataRecv < .seconds(60))
    }

    @Test("tcpInfo() is a TCP option: reading it elsewhere is EOPNOTSUPP")
    func tcpInfoRefused() throws {
        let udp = try Socket(domain: .ipv4, type: .dgram)
        #expect(thrownError { try udp.tcpInfo() } == .notSupportedOnSocket)
        let unix = try Socket(domain: .unix, type: .stream)
        #expect(thrownError { try unix.tcpInfo() } == .notSupportedOnSocket)
    }

    @Test("tcpFastopen() on a listener keeps the queue length after listen()", arguments: [Domain.ipv4, .ipv6])
    func fastopenListener(_ domain: Domain) throws {
        let listener = try Socket(domain: domain, type: .stream)
        try listener.setTcpFastopen(16)
        try listener.bind(loopback(domain))
        try listener.listen(8)
        #expect(try listener.tcpFastopen() == 16)
        try listener.setTcpFastopen(32)
        #expect(try listener.tcpFastopen() == 32)
        // A connected socket is neither closed nor listening: EINVAL.
        let connection = try tcpConnection(domain)
        #expect(thrownError { try connection.first.setTcpFastopen(4) } == .invalidArgument)
        #expect(thrownError { try connection.first.setTcpFastopenConnect(true) } == .invalidArgument)
    }
}
