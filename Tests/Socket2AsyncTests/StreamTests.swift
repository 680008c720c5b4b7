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

    @Test("incoming: connections an iterator took in but did not hand out stay with the listener",
          arguments: backends)
    func droppedIncoming(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            var clients: [AsyncSocket] = []
            for _ in 0..<6 {
                let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
                try await client.connect(address)
                clients.append(client)
            }
            let (first, stranded) = try await Task(executorPreference: reactor) { () -> (SockAddr?, Int) in
                var first: SockAddr?
                for try await (_, peer) in listener.incoming {
                    first = peer
                    break
                }
                return (first, listener.io.strandedConnections.count)
            }.value
            if backend == .ioUring { #expect(stranded > 0, "the test must leave connections with the listener") }
            var peers = [try #require(first)]
            for _ in 0..<3 { peers.append(try await listener.accept().address) }
            var iterator = listener.incoming.makeAsyncIterator()
            for _ in 0..<2 { peers.append(try #require(try await iterator.next()).address) }
            #expect(Set(peers) == Set(try clients.map { try $0.localAddr() }))
        }
    }

    @Test("A datagram stream that goes away loses nothing: every receive form gets what it took in, in order",
          arguments: backends)
    func droppedDatagramStream(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            let (client, clientAddress) = try udpSocket(reactor)
            func datagram(_ index: Int) -> [UInt8] { pattern(10 + index, seed: index) }
            let total = 24
            for index in 0..<total { _ = try await client.sendTo(datagram(index), to: serverAddress) }
            // On io_uring the stream's multishot request takes the whole burst in at once.
            let stranded = try await Task(executorPreference: reactor) { () -> Int in
                var taken = 0
                for try await (bytes, sender) in server.datagrams() {
                    #expect(bytes == datagram(taken) && sender == clientAddress)
                    taken += 1
                    if taken == 3 { break }
                }
                return server.io.strandedDatagrams.count
            }.value
            if backend == .ioUring { #expect(stranded > 0, "the test must leave datagrams with the socket") }

            var next = 3
            // A peek leaves the datagram; recvFrom then takes it.
            let peeked = TestBuffer(100)
            #expect(try await server.recv(into: peeked.raw, flags: .peek) == datagram(next).count)
            #expect(peeked.prefix(datagram(next).count) == datagram(next))
            var (bytes, sender) = try await server.recvFrom(maxCount: 100)
            #expect(bytes == datagram(next) && sender == clientAddress)
            next += 1
            // From a task that does not run on the reactor thread.
            (bytes, sender) = try await Task { try await server.recvFrom(maxCount: 100) }.value
            #expect(bytes == datagram(next) && sender == clientAddress)
            next += 1
            // Scattered over two buffers, with the sender.
            let head = TestBuffer(4), tail = TestBuffer(100)
            let message = try await server.recvMsg(into: [head.raw, tail.raw])
            #expect(message.count == datagram(next).count && message.address == clientAddress)
            #expect(!message.flags.isTruncated())
            #expect(head.bytes + tail.prefix(message.count - 4) == datagram(next))
            next += 1
            // Cut to a short buffer, as the kernel cuts a datagram.
            let short = TestBuffer(5)
            let cut = try await server.recvMsg(into: [short.raw])
            #expect(cut.count == 5 && cut.flags.isTruncated() && short.bytes == Array(datagram(next).prefix(5)))
            next += 1
            #expect(try await server.recv(maxCount: 100) == datagram(next))
            next += 1
            let coalesced = try await server.recvCoalesced()
            #expect(coalesced.bytes == datagram(next) && coalesced.datagrams.address == clientAddress)
            next += 1
            // A batch iterator, dropped after one batch; then a new datagram stream takes the rest.
            do {
                var batches = try server.datagramBatches(count: 3).makeAsyncIterator()
                let batch = try #require(try await batches.next())
                for index in 0..<batch.count {
                    #expect(batch.bytes(at: index) == datagram(next) && batch.address(at: index) == clientAddress)
                    next += 1
                }
            }
            // Later datagrams come after the stranded ones.
            for index in total..<total + 4 { _ = try await client.sendTo(datagram(index), to: serverAddress) }
            var rest = server.datagrams().makeAsyncIterator()
            while next < total + 4 {
                let element = try #require(try await rest.next())
                #expect(element.bytes == datagram(next) && element.address == clientAddress)
                next += 1
            }
            #expect(await onReactor(reactor) { server.io.strandedDatagrams.isEmpty })
        }
    }

    @Test("A byte stream read through datagrams() loses nothing when the iterator goes away",
          arguments: backends)
    func droppedChunkStream(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let sent = pattern(1000)
            try await client.sendAll(sent)
            let (first, stranded) = try await Task(executorPreference: reactor) { () -> ([UInt8], Int) in
                var first: [UInt8] = []
                for try await chunk in server.datagrams(maxSize: 100) {
                    first = chunk.bytes
                    #expect(chunk.address.len() == 0)
                    break
                }
                return (first, server.io.strandedDatagrams.count)
            }.value
            if backend == .ioUring { #expect(stranded > 0, "the test must leave chunks with the socket") }
            // Reads shorter than the chunks leave the rest of each chunk for the next read.
            var received = first
            while received.count < sent.count {
                let piece = try await server.recv(maxCount: 37)
                if piece.isEmpty { break }
                received += piece
            }
            #expect(received == sent)
            try await client.shutdown(.write)
            #expect(try await server.recv(maxCount: 10).isEmpty)
            // The chunk stream ends at the end of the stream (and says so again).
            for _ in 0..<2 {
                var chunks = server.datagrams(maxSize: 100).makeAsyncIterator()
                #expect(try await chunks.next() == nil)
            }
        }
    }

    @Test("Stranded datagrams keep their control data: packet info from a dropped batch iterator",
          arguments: backends)
    func strandedPacketInfo(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            let (client, _) = try udpSocket(reactor)
            let batches = try server.datagramBatches(count: 1, packetInfo: true)
            for index in 0..<4 { _ = try await client.sendTo([UInt8(index)], to: serverAddress) }
            let (first, stranded) = try await Task(executorPreference: reactor) { () -> ([UInt8], Int) in
                var first: [UInt8] = []
                do {
                    var iterator = batches.makeAsyncIterator()
                    let batch = try #require(try await iterator.next())
                    #expect(batch.packetInfo(at: 0) != nil)
                    first = batch.bytes(at: 0)
                }
                return (first, server.io.strandedDatagrams.count)
            }.value
            #expect(first == [0])
            if backend == .ioUring { #expect(stranded > 0, "the test must leave datagrams with the socket") }
            for index in 1..<4 {
                let buffer = TestBuffer(16)
                let message = try await server.recvWithControl(into: buffer.raw, controlCapacity: 256)
                #expect(buffer.prefix(message.count) == [UInt8(index)])
                let hasPacketInfo = message.control.contains { if case .packetInfoV4 = $0 { true } else { false } }
                #expect(hasPacketInfo, "datagram \(index): \(message.control)")
            }
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
                try await group.serve(on: loopback(), options: ServerOptions(backlog: 128), ready: { ready.continuation.yield($0.localAddress) }) { connection, _ in
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
            // The accepting reactor hands connections to the reactors in turn.
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
