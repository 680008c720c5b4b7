import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Receives with the lean receive until the stream ends; returns every byte.
func receiveAll(_ socket: AsyncSocket) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    while true {
        let count = try await socket.receive { span in
            span.withUnsafeBytes { bytes.append(contentsOf: $0) }
            return span.byteCount
        }
        if count == 0 { return bytes }
    }
}

/// Receives with the lean receive until `count` bytes came (fails at the end of the stream).
func receiveExactly(_ socket: AsyncSocket, _ count: Int) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    while bytes.count < count {
        let received = try await socket.receive { span in
            span.withUnsafeBytes { bytes.append(contentsOf: $0) }
            return span.byteCount
        }
        if received == 0 { throw Errno.connectionReset }
    }
    return bytes
}

/// Resets the connection: `SO_LINGER` 0, then close (the peer sees `ECONNRESET`).
func resetByPeer(_ socket: AsyncSocket) async throws {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(socket.rawDescriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    try await socket.close()
}

/// `count` connected pairs on `reactor`: (clients, servers).
func tcpPairs(_ reactor: Reactor, _ count: Int) async throws -> ([AsyncSocket], [AsyncSocket]) {
    let (listener, address) = try tcpListener(reactor, backlog: CInt(count + 16))
    var clients: [AsyncSocket] = []
    var servers: [AsyncSocket] = []
    for _ in 0..<count {
        let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
        try await client.connect(address)
        clients.append(client)
        servers.append(try await listener.accept().socket)
    }
    try await listener.close()
    return (clients, servers)
}

/// Runs `body` with a reactor of `backend` whose receive pool has `size` (io_uring), under a
/// 60-second deadline.
func withPool(_ backend: Reactor.Backend, _ size: ReceivePoolSize,
              _ body: @escaping @Sendable (Reactor) async throws -> Void) async throws {
    var options = ReactorOptions()
    options.receivePool = size
    try await withReactor(backend, timeout: 60, options: options, body)
}

/// Receive-pool figures (io_uring; zeros on epoll).
func poolFigures(_ reactor: Reactor) async -> (exhaustions: Int, buffers: Int, incremental: Bool, mappings: Int) {
    await onReactor(reactor) {
        guard let pool = (reactor.impl as? URingBackend)?.pool else { return (0, 0, false, 0) }
        return (pool.exhaustions, pool.bufferCount, pool.incremental, pool.mappings)
    }
}

/// Sends `total` bytes of `block`-sized writes on `client`, then ends the stream.
func sendStream(_ client: AsyncSocket, total: Int, block: Int = 1 << 16) async throws {
    let bytes = [UInt8](repeating: 7, count: block)
    for _ in 0..<(total / block) { try await client.sendAll(bytes) }
    try await client.shutdown(.write)
}

/// Receives with the lean receive until the stream ends, counting the bytes.
func countStream(_ server: AsyncSocket) async throws -> Int {
    var received = 0
    while true {
        let count = try await server.receive { $0.byteCount }
        if count == 0 { return received }
        received += count
    }
}

/// Streams a different pattern over each of `connections` pairs, in sends of varying sizes
/// (1 to 4,099 bytes) and then the end of the stream, while the receiving side `check` returns
/// (its task's executor preference, its body) checks what each server socket receives; then
/// closes everything and checks that no operation is left.
func streamInPieces(
    _ reactor: Reactor, connections: Int, size: ((Int) -> Int)? = nil,
    _ check: (Int, AsyncSocket, [UInt8]) -> ((any TaskExecutor)?, @Sendable () async throws -> Void)
) async throws {
    let (clients, servers) = try await tcpPairs(reactor, connections)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<connections {
            let expected = pattern(size?(index) ?? 40_000 + index * 997, seed: index)
            let client = clients[index]
            let (executor, receiver) = check(index, servers[index], expected)
            group.addTask(executorPreference: executor, operation: receiver)
            group.addTask {
                var offset = 0, step = 1
                while offset < expected.count {
                    let end = min(expected.count, offset + step)
                    try await client.sendAll(Array(expected[offset..<end]))
                    offset = end
                    step = step * 3 % 4099 + 1
                }
                try await client.shutdown(.write)
            }
        }
        try await group.waitForAll()
    }
    for socket in clients + servers { try await socket.close() }
    #expect(await pendingOperations(reactor) == 0)
}

extension AsyncTests {
@Suite("Lean receive")
struct LeanReceiveTests {
    @Test("Many connections, many chunks: every byte in order, from tasks on and off the reactor", arguments: backends)
    func integrity(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 60) { reactor in
            try await streamInPieces(reactor, connections: 24) { index, server, expected in
                (index % 2 == 0 ? reactor : nil, { @Sendable () async throws in #expect(try await receiveAll(server) == expected) })
            }
        }
    }

    @Test("Bytes come as they arrive, and a large send in several calls", arguments: backends)
    func partialDelivery(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await client.sendAll([1, 2, 3])
            // Fewer bytes than a buffer: the call returns with what came.
            #expect(try await server.receive { span in span.withUnsafeBytes { Array($0) } } == [1, 2, 3])
            let large = pattern(1 << 20)
            async let sent: Void = client.sendAll(large)
            var calls = 0
            var received: [UInt8] = []
            while received.count < large.count {
                try await server.receive { span in
                    #expect(span.byteCount > 0 && span.byteCount <= 64 * 1024)
                    span.withUnsafeBytes { received.append(contentsOf: $0) }
                }
                calls += 1
            }
            try await sent
            #expect(received == large)
            #expect(calls > 1)
        }
    }

    @Test("A short read leaves the socket waiting for its next edge, and the bytes after it come", arguments: backends)
    func shortReadWaitsForTheEdge(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await client.sendAll([1, 2, 3])
            let (bytes, stillReadable) = try await Task(executorPreference: reactor) {
                let bytes = try await server.receive { span in span.withUnsafeBytes { Array($0) } }
                // Read on the reactor thread in the job that made the recv(2): no poll since.
                return (bytes, server.io.readReady)
            }.value
            #expect(bytes == [1, 2, 3])
            // Epoll: three bytes into 64 KiB of room emptied the queue, so the next receive
            // waits for the next edge instead of making a recv(2) that fails with EAGAIN.
            if backend == .epoll { #expect(!stillReadable) }
            let next = Task(executorPreference: reactor) { try await server.receive { span in span.withUnsafeBytes { Array($0) } } }
            try await client.sendAll([4, 5])
            #expect(try await next.value == [4, 5])
        }
    }

    @Test("The end of the stream is an empty span, every time", arguments: backends)
    func endOfStream(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await client.sendAll([9, 8])
            try await client.shutdown(.write)
            #expect(try await receiveAll(server) == [9, 8])
            #expect(try await server.receive { $0.byteCount } == 0)
            // A receive waiting when the peer ends the stream.
            let (client2, server2) = try await tcpPair(reactor)
            let waiting = Task(executorPreference: reactor) { try await server2.receive { $0.byteCount } }
            await waitUntilPending(reactor)
            try await client2.close()
            #expect(try await waiting.value == 0)
        }
    }

    @Test("Cancelled receives lose no byte, whenever the cancellation comes", arguments: backends)
    func cancellationLosesNothing(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            // Cancelled while waiting: what comes later is received next.
            let waiting = Task(executorPreference: reactor) { try await server.receive { $0.byteCount } }
            await waitUntilPending(reactor)
            waiting.cancel()
            await expectCancelled(waiting)
            try await client.sendAll([7])
            #expect(try await receiveExactly(server, 1) == [7])
            // Cancellations racing with arriving bytes: every byte is received once, in order.
            let rounds = 200
            var all: [UInt8] = []
            for round in 0..<rounds {
                let task = Task(executorPreference: round % 2 == 0 ? reactor : nil) {
                    try await server.receive { span in span.withUnsafeBytes { Array($0) } }
                }
                try await client.sendAll([UInt8(truncatingIfNeeded: round)])
                task.cancel()
                if let bytes = try? await task.value { all += bytes }
            }
            try await client.shutdown(.write)
            all += try await receiveAll(server)
            #expect(all == (0..<rounds).map { UInt8(truncatingIfNeeded: $0) })
        }
    }

    @Test("Mixed with recv(into:) and a stream: bytes the multishot took come first", arguments: backends)
    func mixing(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await client.sendAll([1])
            #expect(try await receiveExactly(server, 1) == [1])
            // The lean receive's request stays in the kernel and takes these into its queue.
            for byte in 2...9 as ClosedRange<UInt8> { try await client.sendAll([byte]) }
            #expect(try await recvExactly(server, 4) == [2, 3, 4, 5])
            // A lean receive takes what is there (some of 6…9), recv(into:) the rest.
            let some = try await server.receive { span in span.withUnsafeBytes { Array($0) } }
            #expect(try await some + recvExactly(server, 4 - some.count) == [6, 7, 8, 9])
            try await client.sendAll([10, 11, 12])
            #expect(try await receiveExactly(server, 3) == [10, 11, 12])
            try await client.sendAll([13, 14])
            var iterator = server.datagrams(maxSize: 16).makeAsyncIterator()
            var viaStream: [UInt8] = []
            while viaStream.count < 2, let chunk = try await iterator.next() { viaStream += chunk.bytes }
            #expect(viaStream == [13, 14])
            try await client.sendAll([15])
            try await client.shutdown(.write)
            #expect(try await receiveAll(server) == [15])
        }
    }

    @Test("An error the multishot took reaches the next receive of any form, after the bytes before it", arguments: backends)
    func errorAfterBytes(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            for form in 0..<3 {
                let (client, server) = try await tcpPair(reactor)
                try await client.sendAll([1])
                // The lean receive leaves its multishot request armed.
                #expect(try await receiveExactly(server, 1) == [1])
                try await client.sendAll([2, 3])
                try await resetByPeer(client)
                // io_uring: wait until the request took the bytes and the reset.
                while await onReactor(reactor, { !server.io.pooled.ended && reactor.usesReceivePool }) { await Task.yield() }
                switch form {
                case 0: #expect(try await recvExactly(server, 2) == [2, 3])
                case 1:
                    var bytes: [UInt8] = []
                    while bytes.count < 2 { bytes += try await server.recvFrom(maxCount: 16).bytes }
                    #expect(bytes == [2, 3])
                default: #expect(try await receiveExactly(server, 2) == [2, 3])
                }
                await #expect(throws: Errno.connectionReset) { _ = try await server.recv(maxCount: 16) }
                try await server.close()
            }
        }
    }

    @Test("A lean receive and recv waiting on one socket both end as bytes arrive", arguments: backends)
    func concurrentForms(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await withThrowingTaskGroup(of: [UInt8].self) { group in
                group.addTask(executorPreference: reactor) {
                    try await server.receive { span in span.withUnsafeBytes { Array($0) } }
                }
                await waitUntilPending(reactor)
                group.addTask { try await server.recv(maxCount: 16) }
                await waitUntilPending(reactor, 2)
                try await client.sendAll([1])
                let first = try await group.next()
                try await client.sendAll([2])
                let second = try await group.next()
                #expect([first, second] == [[1], [2]])
            }
        }
    }

    @Test("A tiny buffer ring and many connections: ENOBUFS loses no byte and starves no connection", arguments: backends)
    func exhaustedRing(backend: Reactor.Backend) async throws {
        try await withPool(backend, ReceivePoolSize(bufferSize: 512, minimumBuffers: 1, maximumBuffers: 2)) { reactor in
            let connections = 64
            let (clients, servers) = try await tcpPairs(reactor, connections)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<connections {
                    let expected = pattern(24_000, seed: index)
                    let server = servers[index], client = clients[index]
                    group.addTask(executorPreference: reactor) {
                        let received = try await receiveAll(server)
                        #expect(received == expected)
                    }
                    group.addTask {
                        try await client.sendAll(expected)
                        try await client.shutdown(.write)
                    }
                }
                try await group.waitForAll()
            }
            let figures = await poolFigures(reactor)
            if backend == .ioUring {
                #expect(figures.exhaustions > 0)
                #expect(figures.buffers <= 2)
                #expect(figures.incremental, "IOU_PBUF_RING_INC (Linux 6.12) not taken")
            }
            for socket in clients + servers { try await socket.close() }
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    @Test("A long fast stream: the pool keeps a few buffers, mapped once", arguments: backends)
    func streamKeepsItsBuffers(backend: Reactor.Backend) async throws {
        let figures = try await streamThroughPool(backend, options: ReactorOptions())
        if backend == .ioUring {
            // Unlimited, one request drained the socket's receive buffer (megabytes) into the pool,
            // which grew to 128 buffers (five or more exhaustions); and shrinking as soon as half
            // the pool sat in the ring mapped a buffer every few chunks, each faulted in page by
            // page.
            // With the limit a request holds at most four buffers' worth, partly consumed ones
            // besides: the ring may run dry a few times while it grows from its four.
            #expect(figures.limited, "the multishot byte limit (Linux 6.17) not taken")
            #expect(figures.pool.mappings <= 32, "\(figures)")
            #expect(figures.pool.exhaustions <= 3, "\(figures)")
        }
    }

    @Test("A kernel that refuses the multishot byte limit: receives go on without it")
    func multishotLimitRefused() async throws {
        var options = ReactorOptions()
        options.refuseMultishotLimit = true
        let figures = try await streamThroughPool(.ioUring, options: options, total: 8 << 20)
        #expect(!figures.limited)
    }

    /// Streams `total` bytes through one connection of a new reactor, received with the lean
    /// receive; the pool's figures afterwards, and whether the byte limit was taken.
    func streamThroughPool(_ backend: Reactor.Backend, options: ReactorOptions, total: Int = 128 << 20) async throws
        -> (pool: (exhaustions: Int, buffers: Int, incremental: Bool, mappings: Int), limited: Bool) {
        let reactor = try Reactor(backend: backend, options: options)
        defer { reactor.shutdown() }
        return try await withTimeout(60) {
            let (client, server) = try await tcpPair(reactor)
            let sender = Task { try await sendStream(client, total: total) }
            let received = try await countStream(server)
            #expect(received == total)
            try await sender.value
            for socket in [client, server] { try await socket.close() }
            let limited = await onReactor(reactor) {
                (reactor.impl as? URingBackend).map { $0.pooledByteLimit > 0 && $0.pooledByteLimitConfirmed } ?? false
            }
            return (await poolFigures(reactor), limited)
        }
    }

    @Test("Many connections' first bytes at once grow the pool to what they hold, not to its maximum", arguments: backends)
    func burstGrowsThePoolOnce(backend: Reactor.Backend) async throws {
        try await withPool(backend, ReceivePoolSize(bufferSize: 4096, minimumBuffers: 1, maximumBuffers: 256)) { reactor in
            let connections = 200
            let (clients, servers) = try await tcpPairs(reactor, connections)
            let receivers = servers.enumerated().map { index, server in
                Task(executorPreference: reactor) { try await receiveExactly(server, 64) == pattern(64, seed: index) }
            }
            // Every receive waits (its multishot request armed) before any byte is sent; then
            // one job of the reactor sends all 12,800 bytes (three buffers' worth) without
            // suspending, so the kernel completes the requests together, and most of them find
            // the one-buffer ring empty in the same batch of completions.
            await waitUntilPending(reactor, connections)
            try await Task(executorPreference: reactor) {
                for (index, client) in clients.enumerated() {
                    let sent = try pattern(64, seed: index).withUnsafeBytes { try client.sendWithFlags($0, flags: .noSignal) }
                    #expect(sent == 64)
                }
            }.value
            for receiver in receivers { #expect(try await receiver.value) }
            let figures = await poolFigures(reactor)
            if backend == .ioUring {
                #expect(figures.exhaustions > 0, "\(figures)")
                // Growing once per loop turn: a few doublings. Growing once per request that
                // found the ring empty took the maximum (256).
                #expect(figures.buffers <= 32, "\(figures)")
            }
            for socket in clients + servers { try await socket.close() }
        }
    }

    @Test("After a burst the pool shrinks back to what traffic holds", arguments: backends)
    func poolFollowsTraffic(backend: Reactor.Backend) async throws {
        try await withPool(backend, ReceivePoolSize(bufferSize: 512, minimumBuffers: 1, maximumBuffers: 64, usePeriod: 1_000_000)) { reactor in
            let (clients, servers) = try await tcpPairs(reactor, 16)
            // The burst: every connection at once, more than the pool holds.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (client, server) in zip(clients, servers) {
                    group.addTask(executorPreference: reactor) {
                        let received = try await countStream(server)
                        #expect(received == 1 << 16)
                    }
                    group.addTask { try await sendStream(client, total: 1 << 16, block: 1 << 12) }
                }
                try await group.waitForAll()
            }
            let grown = await poolFigures(reactor)
            // Then one small exchange after another on a new connection: as the periods pass, the
            // buffers that come back are let go down to twice what one exchange holds.
            let (client, server) = try await tcpPair(reactor)
            var exchanges = 0
            let message = pattern(256)
            while await poolFigures(reactor).buffers > 2 && exchanges < 100_000 {
                try await client.sendAll(message)
                let echoed = try await receiveExactly(server, message.count)
                #expect(echoed == message)
                exchanges += 1
            }
            if backend == .ioUring {
                #expect(grown.exhaustions > 0 && grown.buffers > 8, "\(grown)")
                #expect(await poolFigures(reactor).buffers <= 2)
            }
            for socket in clients + servers + [client, server] { try await socket.close() }
        }
    }

    @Test("Close and shutdown end a waiting receive cleanly", arguments: backends)
    func closeWhileWaiting(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let waiting = Task(executorPreference: reactor) { try await server.receive { $0.byteCount } }
            await waitUntilPending(reactor)
            try await server.close()
            await #expect(throws: ReactorError.socketClosed) { try await waiting.value }
            let (client2, server2) = try await tcpPair(reactor)
            let reading = Task { try await server2.receive { $0.byteCount } }
            await waitUntilPending(reactor)
            try await server2.shutdown(.read)
            #expect(try await reading.value == 0)
            try await server2.close()
            for socket in [client, client2] { try await socket.close() }
            #expect(await pendingOperations(reactor) == 0)
        }
        // A reactor shut down under a waiting receive.
        let reactor = try Reactor(backend: backend)
        let (client, server) = try await tcpPair(reactor)
        defer { withExtendedLifetime(client) {} }
        let waiting = Task(executorPreference: reactor) { try await server.receive { $0.byteCount } }
        await waitUntilPending(reactor)
        reactor.shutdown()
        await #expect(throws: ReactorError.shutDown) { try await waiting.value }
    }

    @Test("A deadline ends a waiting receive, and the bytes that come later are kept", arguments: backends)
    func deadline(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            await Task(executorPreference: reactor) {
                await expectTimedOut(atLeast: .milliseconds(20)) {
                    try await AsyncSocket.withTimeout(.milliseconds(20)) { try await server.receive { $0.byteCount } }
                }
            }.value
            try await client.sendAll([4, 5, 6])
            #expect(try await receiveExactly(server, 3) == [4, 5, 6])
            #expect(await pendingOperations(reactor) <= 1)  // io_uring: the multishot request
        }
    }

    @Test("An idle connection holds no buffer of the pool", arguments: [Reactor.Backend.ioUring])
    func idleHoldsNothing(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (clients, servers) = try await tcpPairs(reactor, 16)
            // Each server socket has a receive waiting, then idles with its request armed.
            for (client, server) in zip(clients, servers) {
                try await client.sendAll([1])
                #expect(try await receiveExactly(server, 1) == [1])
            }
            let held = await onReactor(reactor) { () -> Int in
                let pool = (reactor.impl as? URingBackend)?.pool
                return servers.reduce(0) { $0 + $1.io.pooled.chunks.count } + (pool.map { $0.bufferCount - $0.published } ?? -1)
            }
            #expect(held == 0)
        }
    }
}
}
