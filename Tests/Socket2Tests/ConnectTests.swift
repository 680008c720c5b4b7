// connect and connectTimeout on loopback: success, refusal, and a timeout that really waits.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

@Suite("Connecting")
struct ConnectTests {
    @Test(arguments: [Domain.ipv4, .ipv6])
    func connectTimeoutConnectsAndLeavesTheSocketBlocking(domain: Domain) throws {
        let listener = try TestNet.listener(domain)
        let client = try TestNet.socket(domain, .stream)
        try client.setNonblocking(true)  // whatever it was, it ends up blocking (as socket2)
        try client.connectTimeout(listener.localAddr(), timeout: .seconds(TestNet.safetySeconds))
        #expect(try client.peerAddr() == listener.localAddr())
        #expect(try client.nonblocking() == false)
        let accepted = try listener.accept()
        #expect(try accepted.address == client.localAddr())
        _ = try client.send(TestNet.bytes("connected"))
        #expect(try accepted.socket.recv(maxCount: 16) == TestNet.bytes("connected"))
    }

    @Test func connectTimeoutOverUnix() throws {
        let directory = try TemporaryDirectory()
        let address = try SockAddr.unix(directory.file("listener"))
        let listener = try TestNet.socket(.unix, .stream)
        try listener.bind(address)
        try listener.listen(1)
        let client = try TestNet.socket(.unix, .stream)
        try client.connectTimeout(address, timeout: .seconds(TestNet.safetySeconds))
        #expect(try client.peerAddr() == address)
        let nobody = try TestNet.socket(.unix, .stream)
        #expect(throws: Errno.noSuchFileOrDirectory) {
            try nobody.connectTimeout(SockAddr.unix(directory.file("nobody")), timeout: .seconds(1))
        }
    }

    @Test(arguments: [Domain.ipv4, .ipv6])
    func aPortWithoutListenerRefuses(domain: Domain) throws {
        // A bound socket that does not listen holds the port, so nobody else can take it.
        let holder = try Socket(domain: domain, type: .stream)
        try holder.bind(TestNet.loopback(domain))
        let address = try holder.localAddr()
        let timed = try TestNet.socket(domain, .stream)
        #expect(throws: Errno.connectionRefused) {
            try timed.connectTimeout(address, timeout: .seconds(TestNet.safetySeconds))
        }
        #expect(try timed.nonblocking() == false)
        let plain = try TestNet.socket(domain, .stream)
        #expect(throws: Errno.connectionRefused) { try plain.connect(address) }
    }

    @Test func aNonblockingConnectIsInProgress() throws {
        let listener = try TestNet.listener(.ipv4)
        let client = try TestNet.socket(.ipv4, .stream.nonblocking())
        #expect(throws: Errno.nowInProgress) { try client.connect(listener.localAddr()) }
        let events = TestNet.wait(for: POLLOUT, on: client.rawDescriptor)
        #expect(events & CInt(POLLOUT) != 0)
        #expect(try TestNet.intOption(client.rawDescriptor, SOL_SOCKET, SO_ERROR) == 0)
        #expect(try client.peerAddr() == listener.localAddr())
    }

    @Test func aZeroTimeoutTimesOutOnceTheConnectionIsUnderWay() throws {
        let listener = try TestNet.listener(.ipv4)
        let client = try TestNet.socket(.ipv4, .stream)
        #expect(throws: Errno.timedOut) { try client.connectTimeout(listener.localAddr(), timeout: .zero) }
        #expect(try client.nonblocking() == false)
    }

    /// A listener that never accepts, with a backlog of 0, takes one connection; the kernel then
    /// drops further SYNs, so a connection attempt can only time out. The test waits for that
    /// timeout, which is the event under test.
    @Test func connectTimeoutTimesOutWhenTheListenerDropsSyns() throws {
        let listener = try TestNet.listener(.ipv4, backlog: 0)
        let address = try listener.localAddr()
        var established: [CInt] = []
        defer { for fd in established { _ = Socket(rawDescriptor: fd) } }
        let timeout = Duration.milliseconds(200)
        var timedOutAfter: Duration?
        for _ in 0..<16 {
            let client = try Socket(domain: .ipv4, type: .stream)
            let clock = ContinuousClock()
            let start = clock.now
            let outcome = Result { () throws(Errno) in try client.connectTimeout(address, timeout: timeout) }
            switch outcome {
            case .success:
                established.append(client.intoRawDescriptor())
            case .failure(let error):
                #expect(error == .timedOut)
                timedOutAfter = start.duration(to: clock.now)
            }
            if timedOutAfter != nil { break }
        }
        let waited = try #require(timedOutAfter, "no connection attempt ever timed out")
        #expect(waited >= timeout)
        #expect(waited < .seconds(TestNet.safetySeconds))
        #expect(!established.isEmpty)  // the queue did take the first connection
    }
}
