import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
@Suite("Reactor")
struct ReactorTests {
    @Test("A task preferring the reactor resumes on the reactor thread", arguments: backends)
    func executorPreference(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            #expect(!reactor.isCurrent)
            let (client, server) = try await tcpPair(reactor)
            try await Task(executorPreference: reactor) {
                #expect(reactor.isCurrent)
                for round in 0..<50 {
                    async let echoed = server.recv(maxCount: 8)
                    #expect(reactor.isCurrent)
                    try await client.sendAll([UInt8(round)])
                    #expect(reactor.isCurrent)
                    #expect(try await echoed == [UInt8(round)])
                    #expect(reactor.isCurrent)
                }
            }.value
            try await withTaskExecutorPreference(reactor) {
                #expect(reactor.isCurrent)
                try await client.sendAll([9])
                #expect(try await server.recv(maxCount: 1) == [9])
                #expect(reactor.isCurrent)
            }
            // A task on the global executor goes back there after waiting on the reactor.
            let waiting = Task.detached { () -> Bool in
                _ = try await server.recv(maxCount: 1)
                return reactor.isCurrent
            }
            await waitUntilPending(reactor)
            try await client.sendAll([1])
            #expect(try await waiting.value == false)
        }
    }

    @Test("The reactor runs jobs as a serial executor")
    func serialExecutor() async throws {
        actor Counter {
            let reactor: Reactor
            var value = 0
            init(_ reactor: Reactor) { self.reactor = reactor }
            nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }
            func increment() -> Bool { value += 1; return reactor.isCurrent }
        }
        try await withReactor(.epoll) { reactor in
            let counter = Counter(reactor)
            var allOnReactor = true
            for _ in 0..<100 { allOnReactor = await counter.increment() && allOnReactor }
            #expect(allOnReactor)
            #expect(await counter.value == 100)
        }
    }

    /// An actor whose serial executor is the reactor.
    actor ReactorBoundEcho {
        let reactor: Reactor
        init(_ reactor: Reactor) { self.reactor = reactor }
        nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }

        /// Sends a byte and waits for it, `rounds` times; true when every step ran on the
        /// reactor thread.
        func roundTrips(_ client: AsyncSocket, _ server: AsyncSocket, rounds: Int) async throws -> Bool {
            var onReactor = reactor.isCurrent
            for round in 0..<rounds {
                try await client.sendAll([UInt8(truncatingIfNeeded: round)])
                onReactor = onReactor && reactor.isCurrent
                let received = try await server.recv(maxCount: 1)
                onReactor = onReactor && reactor.isCurrent && received == [UInt8(truncatingIfNeeded: round)]
            }
            return onReactor
        }

        func receive(_ socket: AsyncSocket) async throws -> (bytes: [UInt8], onReactor: Bool) {
            let bytes = try await socket.recv(maxCount: 16)
            return (bytes, reactor.isCurrent)
        }
    }

    // An actor job runs isolated to the actor, not as the reactor's task job: the wait must
    // still start on the reactor thread and resume the actor there (it once resumed on the
    // global executor, which started the next operation off the reactor thread and could hang).
    @Test("An actor whose executor is the reactor waits and resumes on the reactor thread", arguments: backends)
    func actorOnReactor(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let echo = ReactorBoundEcho(reactor)
            // From a task without an executor preference, and from one that prefers the reactor.
            #expect(try await Task.detached { try await echo.roundTrips(client, server, rounds: 300) }.value)
            #expect(try await Task(executorPreference: reactor) {
                try await echo.roundTrips(client, server, rounds: 300)
            }.value)
            async let received = echo.receive(server)
            await waitUntilPending(reactor)
            try await client.sendAll([7, 8])
            let (bytes, onReactor) = try await received
            #expect(bytes == [7, 8] && onReactor)
            // A wait of the actor is cancelled like any other; nothing sent later is lost.
            let cancelled = Task.detached { try await echo.receive(server).bytes }
            await waitUntilPending(reactor)
            cancelled.cancel()
            await expectCancelled(cancelled)
            try await client.sendAll([9])
            #expect(try await echo.receive(server).bytes == [9])
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    /// Iterates `incoming` and `datagrams` on an actor whose executor is the reactor.
    actor ReactorBoundServer {
        let reactor: Reactor
        init(_ reactor: Reactor) { self.reactor = reactor }
        nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }

        func accept(_ listener: AsyncSocket, count: Int) async throws -> Int {
            var accepted = 0
            for try await connection in listener.incoming {
                try await connection.socket.close()
                accepted += 1
                if accepted == count { break }
            }
            return accepted
        }

        func receive(_ socket: AsyncSocket, count: Int) async throws -> Int {
            var received = 0
            for try await _ in socket.datagrams(maxSize: 64) {
                received += 1
                if received == count { break }
            }
            return received
        }
    }

    // `for try await` on an actor uses `next(isolation:)`: no element leaves the reactor thread
    // (plain `next()` would hop to the global executor and back for every one).
    @Test("Streams iterated on an actor of the reactor stay on the reactor thread", arguments: backends)
    func streamsOnActor(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let server = ReactorBoundServer(reactor)
            let (listener, address) = try tcpListener(reactor)
            let (udp, udpAddress) = try udpSocket(reactor)
            let (sender, _) = try udpSocket(reactor)
            let count = 20
            // Tasks without an executor preference: only the actor keeps them on the reactor.
            let accepting = Task.detached { try await server.accept(listener, count: count) }
            let receiving = Task.detached { try await server.receive(udp, count: count) }
            await waitUntilPending(reactor, 2)
            let before = await onReactor(reactor) { reactor.itemsFromOtherThreads }
            try await Task(executorPreference: reactor) {
                for _ in 0..<count {
                    let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
                    try await client.connect(address)
                    try await client.close()
                    _ = try await sender.sendTo([1], to: udpAddress)
                }
            }.value
            let (accepted, received) = (try await accepting.value, try await receiving.value)
            let posts = await onReactor(reactor) { reactor.itemsFromOtherThreads } - before
            #expect(accepted == count && received == count)
            // Two hand-overs: starting the client task and reading the count; hopping would cost
            // one or two per element.
            #expect(posts <= 2)
        }
    }

    // A proxy's shape: a task on one reactor waits on sockets of another and comes back.
    @Test("A task on one reactor uses sockets of another", arguments: backends)
    func crossReactor(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { home in
            let other = try Reactor(backend: backend)
            defer { other.shutdown() }
            let (client, server) = try await tcpPair(other)
            let (allOnHome, echoed) = try await Task(executorPreference: home) { () -> (Bool, [UInt8]) in
                var onHome = home.isCurrent
                var echoed: [UInt8] = []
                for round in 0..<200 {
                    async let received = server.recv(maxCount: 1)
                    try await client.sendAll([UInt8(truncatingIfNeeded: round)])
                    onHome = onHome && home.isCurrent
                    echoed += try await received
                    onHome = onHome && home.isCurrent && !other.isCurrent
                }
                return (onHome, echoed)
            }.value
            #expect(allOnHome)
            #expect(echoed == (0..<200).map { UInt8(truncatingIfNeeded: $0) })
            try await client.close()
            try await server.close()
        }
    }

    @Test("Shutdown completes every pending operation with shutDown", arguments: backends)
    func shutdownWithPendingOperations(backend: Reactor.Backend) async throws {
        let full = try await FullListener()
        try await withTimeout {
            let reactor = try Reactor(backend: backend)
            let (client, server) = try await tcpPair(reactor)
            let (listener, _) = try tcpListener(reactor)
            let (udp, _) = try udpSocket(reactor)
            let connecting = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            let (streamListener, _) = try tcpListener(reactor)
            let (streamUDP, _) = try udpSocket(reactor)
            setBufferSize(client, SO_SNDBUF, 4096)
            while client.rawDescriptor >= 0,
                  [UInt8](repeating: 1, count: 65536).withUnsafeBytes({
                      Glibc.send(client.rawDescriptor, $0.baseAddress, $0.count, MessageFlags.dontWait.rawValue)
                  }) > 0 {}
            let big = TestBuffer(65536)
            let tasks: [Task<Void, any Error>] = [
                Task(executorPreference: reactor) { _ = try await client.recv(maxCount: 1) },
                Task { _ = try await listener.accept() },
                Task(executorPreference: reactor) { _ = try await udp.recvFrom(maxCount: 100) },
                Task { try await connecting.connect(full.address) },
                Task { _ = try await client.send(big.readOnly) },
                Task(executorPreference: reactor) { for try await _ in streamListener.incoming {} },
                Task { for try await _ in streamUDP.datagrams() {} },
            ]
            await waitUntilPending(reactor, 7)
            reactor.shutdown()
            for task in tasks {
                do {
                    try await task.value
                    Issue.record("an operation survived the shutdown")
                } catch ReactorError.shutDown {
                } catch {
                    Issue.record("expected ReactorError.shutDown, got \(error)")
                }
            }
            reactor.shutdown()  // idempotent
            await #expect(throws: ReactorError.shutDown) { try await udp.recvFrom(maxCount: 1) }
            await #expect(throws: ReactorError.shutDown) { try await listener.accept() }
            // Sockets can still be closed.
            try await client.close()
            try await server.close()
            #expect(client.rawDescriptor == -1)
        }
        withExtendedLifetime(full) {}
    }

    @Test("A reactor leaves no descriptor of its own behind")
    func noDescriptorLeak() async throws {
        // Earlier tests' reactors may still be going away: many rounds make a leak stand out.
        let before = reactorDescriptorCount()
        for round in 0..<20 {
            let reactor = try Reactor(backend: backends[round % 2])
            let (client, server) = try await tcpPair(reactor)
            try await client.sendAll([1])
            _ = try await server.recv(maxCount: 1)
            reactor.shutdown()
        }
        #expect(reactorDescriptorCount() <= before)
    }

    @Test("io_uring refused by the kernel: automatic falls back to epoll")
    func ioUringFallback() throws {
        let reactor = try Reactor(backend: .automatic, options: ReactorOptions(failIoUringProbe: true))
        defer { reactor.shutdown() }
        #expect(reactor.backend == .epoll)
        #expect(throws: ReactorError.self) { try Reactor(backend: .ioUring, options: ReactorOptions(failIoUringProbe: true)) }
        let automatic = try Reactor(backend: .automatic)
        defer { automatic.shutdown() }
        #expect(automatic.backend == .ioUring)
    }

    @Test("The shared reactor serves sockets created without a reactor")
    func sharedReactor() async throws {
        let shared = Reactor.shared
        #expect(shared === Reactor.shared)
        #expect(shared.backend == .epoll || shared.backend == .ioUring)
        try await withTimeout {
            let (server, address) = try udpSocket(shared)
            let client = try AsyncSocket(domain: .ipv4, type: .dgram)
            #expect(client.reactor === shared)
            _ = try await client.sendTo([42], to: address)
            #expect(try await server.recvFrom(maxCount: 8).bytes == [42])
        }
    }

    @Test("io_uring: a completion queue overflow loses nothing")
    func completionOverflow() async throws {
        let reactor = try Reactor(backend: .ioUring, options: ReactorOptions(submissionEntries: 8, completionEntries: 16))
        defer { reactor.shutdown() }
        try await withTimeout {
            let count = 200
            let (sender, _) = try udpSocket(reactor)
            var sockets: [(AsyncSocket, SockAddr)] = []
            for _ in 0..<count { sockets.append(try udpSocket(reactor)) }
            let all = sockets
            let receivers = Task(executorPreference: reactor) {
                try await withThrowingTaskGroup(of: [UInt8].self) { group in
                    for (socket, _) in all {
                        group.addTask(executorPreference: reactor) { try await socket.recvFrom(maxCount: 8).bytes }
                    }
                    var total = 0
                    for try await bytes in group { total += bytes.count == 1 ? 1 : 0 }
                    return total
                }
            }
            await waitUntilPending(reactor, count)
            // All completions become ready at once, in one job of the reactor thread (no wait
            // for completions in between): far more than the queue holds.
            try await Task(executorPreference: reactor) {
                for (index, (_, address)) in all.enumerated() {
                    _ = try await sender.sendTo([UInt8(truncatingIfNeeded: index)], to: address)
                }
            }.value
            #expect(try await receivers.value == count)
            #expect(reactor.completionOverflows.load(ordering: .relaxed) > 0)
        }
    }

    @Test("Backend names")
    func backendNames() {
        #expect(Reactor.Backend(name: "epoll") == .epoll)
        #expect(Reactor.Backend(name: "io_uring") == .ioUring)
        #expect(Reactor.Backend(name: "automatic") == .automatic)
        #expect(Reactor.Backend(name: "kqueue") == nil)
        #expect(Reactor.Backend.ioUring.description == "io_uring")
    }
}
}

extension AsyncTests.ReactorTests {
    actor Client {
        let socket: AsyncSocket
        init(_ socket: AsyncSocket) { self.socket = socket }
        func receive() async throws -> [UInt8] { try await socket.recv(maxCount: 16) }
    }

    @Test("An actor's call that has to wait still waits on the reactor", arguments: backends)
    func callFromActor(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let actor = Client(server)
            async let received = actor.receive()
            await waitUntilPending(reactor)
            try await client.sendAll([4, 2])
            #expect(try await received == [4, 2])
            @MainActor func onMain() async throws -> [UInt8] { try await server.recv(maxCount: 16) }
            async let fromMain = onMain()
            await waitUntilPending(reactor)
            try await client.sendAll([9])
            #expect(try await fromMain == [9])
        }
    }
}
