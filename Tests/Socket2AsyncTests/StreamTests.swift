import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
@Suite("Streams and scale")
struct StreamTests {
    @Test("incoming yields every connection and ends when the listener closes", arguments: backends)
    func incoming(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let count = 50
            let server = Task(executorPreference: reactor) { () -> [SockAddr] in
                var peers: [SockAddr] = []
                var held: [AsyncSocket] = []
                for try await (connection, peer) in listener.incoming {
                    #expect(reactor.isCurrent)
                    #expect(try connection.peerAddr() == peer)
                    try await connection.sendAll([UInt8(peers.count)])
                    peers.append(peer)
                    held.append(connection)
                }
                return peers
            }
            var clients: [AsyncSocket] = []
            for round in 0..<count {
                let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
                try await client.connect(address)
                #expect(try await client.recv(maxCount: 1) == [UInt8(round)])
                clients.append(client)
            }
            try await listener.close()
            let peers = try await server.value
            #expect(peers == (try clients.map { try $0.localAddr() }))
        }
    }

    @Test("incoming: a cancelled wait loses no connection", arguments: backends)
    func incomingCancelled(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let waiting = Task(executorPreference: reactor) { () -> Int in
                var count = 0
                for try await _ in listener.incoming { count += 1 }
                return count
            }
            await waitUntilPending(reactor)
            waiting.cancel()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            try await client.connect(address)
            var iterator = listener.incoming.makeAsyncIterator()
            let accepted = try await iterator.next()
            #expect(try accepted?.address == client.localAddr())
        }
    }

    @Test("datagrams echo, truncation and bursts beyond the provided buffers", arguments: backends)
    func datagrams(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            let (client, clientAddress) = try udpSocket(reactor)
            setBufferSize(server, SO_RCVBUF, 1 << 20)
            // A burst sent before anyone iterates: more datagrams than provided buffers.
            let burst = 100
            for round in 0..<burst {
                #expect(try await client.sendTo(pattern(100, seed: round), to: serverAddress) == 100)
            }
            var iterator = server.datagrams().makeAsyncIterator()
            for round in 0..<burst {
                let datagram = try await iterator.next()
                #expect(datagram?.bytes == pattern(100, seed: round))
                #expect(datagram?.address == clientAddress)
            }
            // Echo through the same stream.
            let echo = Task(executorPreference: reactor) { [iterator] in
                var iterator = iterator
                for _ in 0..<200 {
                    let (bytes, sender) = try #require(await iterator.next())
                    _ = try await server.sendTo(bytes, to: sender)
                }
            }
            for round in 0..<200 {
                let message = pattern(1 + round * 7, seed: round)
                _ = try await client.sendTo(message, to: serverAddress)
                let (bytes, sender) = try await client.recvFrom(maxCount: 4096)
                #expect(bytes == message)
                #expect(sender == serverAddress)
            }
            try await echo.value
            // Truncation to maxSize (another socket: a stream keeps taking datagrams while it lives).
            let (other, otherAddress) = try udpSocket(reactor)
            _ = try await client.sendTo(pattern(100), to: otherAddress)
            var small = other.datagrams(maxSize: 10).makeAsyncIterator()
            #expect(try await small.next()?.bytes == Array(pattern(100).prefix(10)))
            // Closing the socket ends the sequence.
            let ending = Task { () -> Bool in
                var it = client.datagrams().makeAsyncIterator()
                return try await it.next() == nil
            }
            await waitUntilPending(reactor)
            try await client.close()
            #expect(try await ending.value)
        }
    }

    @Test("1,000 concurrent connections echo", arguments: backends)
    func thousandConnections(backend: Reactor.Backend) async throws {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        try await withReactor(backend, timeout: 60) { reactor in
            let (listener, address) = try tcpListener(reactor, backlog: 1024)
            let connections = 1000
            let server = Task(executorPreference: reactor) {
                try await withThrowingDiscardingTaskGroup { group in
                    var accepted = 0
                    for try await (connection, _) in listener.incoming {
                        group.addTask(executorPreference: reactor) {
                            while true {
                                let bytes = try await connection.recv(maxCount: 1024)
                                if bytes.isEmpty { break }
                                try await connection.sendAll(bytes)
                            }
                            try await connection.close()
                        }
                        accepted += 1
                        if accepted == connections { break }
                    }
                }
            }
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<connections {
                    group.addTask {
                        let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
                        try await client.connect(address)
                        let message = pattern(200, seed: index)
                        try await client.sendAll(message)
                        let echoed = try await recvExactly(client, message.count)
                        try await client.shutdown(.write)
                        let end = try await client.recv(maxCount: 1)
                        try await client.close()
                        return echoed == message && end.isEmpty ? 1 : 0
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(total == connections)
            try await server.value
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    @Test("A reactor group serves on every reactor", arguments: backends)
    func group(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 2, backend: backend)
        defer { group.shutdown() }
        #expect(group.reactors.count == 2)
        #expect(group.next() !== group.next())
        try await withTimeout {
            let ready = AsyncStream<SockAddr>.makeStream()
            let handled = Mutex<Set<ObjectIdentifier>>([])
            let server = Task {
                try await group.serve(on: loopback(), backlog: 128, ready: { ready.continuation.yield($0) }) { connection, _ in
                    #expect(connection.reactor.isCurrent)
                    handled.withLock { _ = $0.insert(ObjectIdentifier(connection.reactor)) }
                    if let bytes = try? await connection.recv(maxCount: 100) {
                        try? await connection.sendAll(bytes)
                    }
                    try? await connection.close()
                }
            }
            var readyIterator = ready.stream.makeAsyncIterator()
            let address = try #require(await readyIterator.next())
            // SO_REUSEPORT spreads connections by hash: enough of them reach both reactors.
            for round in 0..<64 {
                let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
                try await client.connect(address)
                try await client.sendAll([UInt8(round)])
                #expect(try await client.recv(maxCount: 1) == [UInt8(round)])
                try await client.close()
                if round > 8 && handled.withLock({ $0.count }) == 2 { break }
            }
            #expect(handled.withLock { $0.count } == 2)
            server.cancel()
            await #expect(throws: CancellationError.self) { try await server.value }
        }
    }

    /// Lowering `RLIMIT_NOFILE` and taking every descriptor is process-wide: tests running
    /// beside it would fail to open sockets. So this test runs itself again in a child process
    /// that runs nothing else, and passes when the child's run of every case passes.
    @Test("EMFILE on accept: back off without spinning, then accept again (in a child process)")
    func outOfDescriptorsInAChildProcess() async throws {
        if isIsolatedChild {
            for backend in backends {
                for viaIncoming in [false, true] {
                    try await outOfDescriptors(backend: backend, viaIncoming: viaIncoming)
                }
            }
        } else {
            let status = try runThisTestInAChildProcess("outOfDescriptorsInAChildProcess")
            #expect(status == 0, "the child process's run failed (exit status \(status))")
        }
    }

    func outOfDescriptors(backend: Reactor.Backend, viaIncoming: Bool) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let clients = try (0..<3).map { _ in try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor) }
            var saved = rlimit()
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &saved)
            // Every descriptor up to a low limit taken.
            let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
            try #require(nullFD >= 0)
            var lowered = saved
            lowered.rlim_cur = rlim_t(nullFD + 64)
            try #require(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lowered) == 0)
            var filler: [CInt] = [nullFD]
            while true {
                let fd = fcntl(nullFD, F_DUPFD_CLOEXEC, 0)
                if fd < 0 { break }
                filler.append(fd)
            }
            let before = reactor.acceptBackoffs.load(ordering: .relaxed)
            let started = monotonicNanoseconds()
            let cpuBefore = threadCPUNanoseconds(of: reactor)
            for client in clients { try await client.connect(address) }
            let accepting = Task(executorPreference: reactor) { () -> [AsyncSocket] in
                if viaIncoming {
                    var accepted: [AsyncSocket] = []
                    for try await (connection, _) in listener.incoming {
                        accepted.append(connection)
                        if accepted.count == clients.count { break }
                    }
                    return accepted
                }
                var accepted: [AsyncSocket] = []
                for _ in clients { accepted.append(try await listener.accept().socket) }
                return accepted
            }
            while reactor.acceptBackoffs.load(ordering: .relaxed) - before < 4 { await Task.yield() }
            let elapsed = monotonicNanoseconds() - started
            let cpu = threadCPUNanoseconds(of: reactor) - cpuBefore
            let backoffs = reactor.acceptBackoffs.load(ordering: .relaxed) - before
            // Free the descriptors and restore the limit.
            for fd in filler { close(fd) }
            var limit = saved
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
            // Backing off 1, 2, 4 ms…: a handful of retries, and an idle reactor thread.
            #expect(backoffs < 12)
            #expect(elapsed >= 7_000_000)
            #expect(cpu < elapsed / 2)
            let accepted = try await accepting.value
            #expect(try accepted.map { try $0.peerAddr() } == clients.map { try $0.localAddr() })
        }
    }
}
}

/// CPU time used so far by the reactor's thread.
func threadCPUNanoseconds(of reactor: Reactor) -> UInt64 {
    let clock = UnsafeMutablePointer<clockid_t>.allocate(capacity: 1)
    defer { clock.deallocate() }
    let thread = reactor.threadHandle
    guard pthread_getcpuclockid(thread, clock) == 0 else { return 0 }
    var time = timespec()
    clock_gettime(clock.pointee, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}
