import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// [::1]:`port`.
func loopbackV6(_ port: UInt16 = 0) -> SockAddr { SockAddr(SocketAddrV6(.localhost, port)) }

/// A TCP listener on `address`.
func tcpListener(_ reactor: Reactor, on address: SockAddr, backlog: CInt = 128) throws -> AsyncSocket {
    let listener = try AsyncSocket(domain: address.domain(), type: .stream, reactor: reactor)
    try listener.bind(address)
    try listener.listen(backlog)
    return listener
}

/// An event from a blocking call to the test: an `AsyncStream` the call yields to.
struct TestEvent: Sendable {
    let stream: AsyncStream<Void>
    let continuation: AsyncStream<Void>.Continuation
    init() { (stream, continuation) = AsyncStream.makeStream() }
    func post() { continuation.yield() }
    func wait() async { for await _ in stream { return } }
}

extension AsyncTests {
@Suite("Names")
struct NameTests {
    @Test("resolve runs getaddrinfo off the reactor: localhost is 127.0.0.1 here")
    func resolveLocalhost() async throws {
        let addresses = try await AsyncSocket.resolve(host: "localhost", service: "8080", type: .stream)
        #expect(addresses.map(\.address).contains(loopback(8080)))
        #expect(addresses.allSatisfy { $0.type == .stream })
        // Bad input: a numeric-only query of a name (no lookup goes out).
        await #expect(throws: AddressInfoError.noName) {
            try await AsyncSocket.resolve(host: "localhost", flags: .numericHost)
        }
    }

    @Test("A blocking call waits on a helper thread: the reactor goes on, a cancellation returns at once", arguments: backends)
    func blockingCallOffTheReactor(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let release = Latch(), started = TestEvent()
            let call = Task(executorPreference: reactor) {
                try await BlockingCalls.shared.run { () -> Bool in
                    started.post()
                    release.wait()
                    return reactor.isCurrent
                }
            }
            await started.wait()
            // getaddrinfo-like call in progress: the reactor still serves sockets.
            let (client, server) = try await tcpPair(reactor)
            try await client.sendAll([1, 2])
            #expect(try await recvExactly(server, 2) == [1, 2])
            release.post()
            #expect(try await call.value == false)  // not on the reactor thread

            // Cancelled while the call blocks: the caller returns at once.
            let release2 = Latch(), started2 = TestEvent()
            let cancelled = Task(executorPreference: reactor) {
                try await BlockingCalls.shared.run { started2.post(); release2.wait() }
            }
            await started2.wait()
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            release2.post()

            // Cancelled before: no call at all.
            let ran = Locked(false)
            let early = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await BlockingCalls.shared.run { ran.withLock { $0 = true } }
            }
            await #expect(throws: CancellationError.self) { try await early.value }
            #expect(!ran.withLock { $0 })
            try await client.close()
            try await server.close()
        }
    }

    @Test("Happy Eyeballs order: IPv6 and IPv4 alternate, IPv6 first, duplicates dropped")
    func interleaving() {
        let v6 = (1...3).map { loopbackV6(UInt16($0)) }, v4 = (1...2).map { loopback(UInt16($0)) }
        #expect(AsyncSocket.interleavedByFamily([v4[0], v4[1], v6[0], v6[1], v6[2]])
                == [v6[0], v4[0], v6[1], v4[1], v6[2]])
        #expect(AsyncSocket.interleavedByFamily([v4[0], v4[0], v4[1]]) == [v4[0], v4[1]])
        #expect(AsyncSocket.interleavedByFamily([]) == [])
    }

    @Test("connect(host:port:) with the real resolver: localhost", arguments: backends)
    func connectLocalhost(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let client = try await AsyncSocket.connect(host: "localhost", port: port(of: address), reactor: reactor)
            let (server, _) = try await listener.accept()
            #expect(try client.peerAddr() == address)
            try await client.sendAll([42])
            #expect(try await recvExactly(server, 1) == [42])
            for socket in [client, server, listener] { try await socket.close() }
        }
    }

    @Test("Both families resolved, a server on only one of them: the connection is made to it", arguments: backends)
    func connectToTheFamilyThatListens(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            for listensOnV6 in [false, true] {
                let first = try tcpListener(reactor, on: listensOnV6 ? loopbackV6() : loopback())
                let port = port(of: try first.localAddr())
                let listening = listensOnV6 ? loopbackV6(port) : loopback(port)
                let resolver = NameResolver.fixed([loopback(port), loopbackV6(port)])
                let client = try await AsyncSocket.connect(host: "dual", port: port, reactor: reactor, resolver: resolver)
                #expect(try client.peerAddr() == listening)
                let (server, _) = try await first.accept()
                for socket in [client, server, first] { try await socket.close() }
            }
        }
    }

    @Test("No server on either address: the error names both and why", arguments: backends)
    func connectFailsOnBoth(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            // A port nobody listens on: one that was just free.
            let (probe, address) = try tcpListener(reactor)
            let port = port(of: address)
            try await probe.close()
            let resolver = NameResolver.fixed([loopback(port), loopbackV6(port)])
            do {
                _ = try await AsyncSocket.connect(host: "nowhere", port: port, reactor: reactor, resolver: resolver)
                Issue.record("connected to nothing")
            } catch let error as ConnectError {
                guard case .allAttemptsFailed = error.reason else { Issue.record("\(error.reason)"); return }
                #expect(error.attempts.map(\.address) == [loopbackV6(port), loopback(port)])
                #expect(error.attempts.allSatisfy { $0.error as? Errno == .connectionRefused && !$0.cutOffByDeadline })
                #expect(error.description.contains("[::1]:\(port)"))
                #expect(error.description.contains("127.0.0.1:\(port)"))
                #expect(error.description.contains("nowhere"))
            }
        }
    }

    /// A listener on [::1] (backlog 0) and one on 127.0.0.1, on one port. The port the kernel picks
    /// for the first may be taken on the other family (another socket's source port): try again.
    func listenersOnOnePort(_ reactor: Reactor) async throws -> (v6: AsyncSocket, v4: AsyncSocket) {
        for _ in 0..<50 {
            let stalled = try tcpListener(reactor, on: loopbackV6(), backlog: 0)
            do {
                return (stalled, try tcpListener(reactor, on: loopback(port(of: try stalled.localAddr()))))
            } catch Errno.addressInUse {
                try await stalled.close()
            }
        }
        throw Errno.addressInUse
    }

    /// What the TCP sockets of this host whose remote port is `port` name in `/proc/self/fd`
    /// (`socket:[inode]`, from `/proc/net/tcp` and `/proc/net/tcp6`): connected or still
    /// connecting to `port`, whichever test made them.
    static func tcpSockets(toPort port: UInt16) -> Set<String> {
        var files: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let file = fopen(table, "r") else { continue }
            defer { fclose(file) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            defer { free(line) }
            while getline(&line, &capacity, file) > 0, let line {
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                let fields = String(cString: line).split(separator: " ")
                guard fields.count > 9, let colon = fields[2].lastIndex(of: ":"),
                      UInt16(fields[2][fields[2].index(after: colon)...], radix: 16) == port
                else { continue }
                files.insert("socket:[\(fields[9])]")
            }
        }
        return files
    }

    @Test("A stalled first address: the second attempt starts after the delay and wins, the first is closed", arguments: backends)
    func stalledFirstAddress(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            // [::1]:port accepts nothing: its queue (backlog 0) is full, so SYNs are dropped.
            let (stalled, listener) = try await listenersOnOnePort(reactor)
            let port = port(of: try stalled.localAddr())
            let filler = try Socket(domain: .ipv6, type: .stream)
            try filler.connect(loopbackV6(port))
            let resolver = NameResolver.fixed([loopbackV6(port), loopback(port)])
            let baseline = openDescriptors()
            let client = try await AsyncSocket.connect(host: "stalled", port: port, reactor: reactor, resolver: resolver)
            #expect(try client.peerAddr() == loopback(port))
            // Only the winner is open: the loser's socket is closed. (Only sockets to the port
            // count: the other modules' tests run beside this suite in the same process.)
            #expect(descriptorsOpened(since: baseline, naming: Self.tcpSockets(toPort: port)) == 1)

            // With a delay longer than the time-out the second attempt never starts; the error
            // says the first was cut off by the deadline.
            do {
                _ = try await AsyncSocket.connect(host: "stalled", port: port, reactor: reactor, timeout: .milliseconds(50),
                                                  attemptDelay: .seconds(3600), resolver: resolver)
                Issue.record("connected to a full queue")
            } catch let error as ConnectError {
                guard case .deadlinePassed = error.reason else { Issue.record("\(error.reason)"); return }
                #expect(error.attempts.map(\.address) == [loopbackV6(port)])
                #expect(error.attempts.first?.cutOffByDeadline == true)
                #expect(error.description.contains("deadline passed"))
            }
            #expect(descriptorsOpened(since: baseline, naming: Self.tcpSockets(toPort: port)) == 1)
            let (server, _) = try await listener.accept()
            for socket in [client, server, listener, stalled] { try await socket.close() }
        }
    }

    @Test("Bad input and cancellation", arguments: backends)
    func badInputAndCancellation(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            await #expect(throws: Errno.invalidArgument) {
                try await AsyncSocket.connect(host: "x", port: 1, reactor: reactor, attemptDelay: .seconds(-1))
            }
            await #expect(throws: Errno.invalidArgument) {
                try await AsyncSocket.connect(host: "x", port: 1, reactor: reactor, timeout: .seconds(-1))
            }
            do {
                _ = try await AsyncSocket.connect(host: "x", port: 1, reactor: reactor, resolver: .fixed([]))
                Issue.record("connected without an address")
            } catch let error as ConnectError {
                guard case .noAddresses = error.reason else { Issue.record("\(error.reason)"); return }
            }
            do {
                _ = try await AsyncSocket.connect(host: "bad", port: 1, reactor: reactor,
                                                  resolver: NameResolver { _, _ in throw AddressInfoError.noName })
                Issue.record("connected without a name")
            } catch let error as ConnectError {
                guard case .resolutionFailed(let cause) = error.reason else { Issue.record("\(error.reason)"); return }
                #expect(cause as? AddressInfoError == .noName)
                #expect(error.description.contains("bad"))
            }
            // Cancelled while the resolver blocks: returns at once.
            let release = Latch(), started = TestEvent()
            let resolver = NameResolver { _, _ in
                try await BlockingCalls.shared.run { started.post(); release.wait(); return [] }
            }
            let connecting = Task { try await AsyncSocket.connect(host: "slow", port: 1, reactor: reactor, resolver: resolver) }
            await started.wait()
            connecting.cancel()
            await #expect(throws: CancellationError.self) { try await connecting.value }
            release.post()
        }
    }
}
}
