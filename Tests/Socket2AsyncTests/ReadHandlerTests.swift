import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One call of a read handler, as a test sees it.
enum HandlerCall: Sendable {
    case bytes([UInt8])
    case end
    case failed(any Error)
    /// The handler's closure was released.
    case released

    var bytes: [UInt8]? { if case .bytes(let bytes) = self { bytes } else { nil } }
}

/// Signals when the closure that holds it is released.
private final class ReleaseSignal {
    let calls: AsyncStream<HandlerCall>.Continuation
    init(_ calls: AsyncStream<HandlerCall>.Continuation) { self.calls = calls }
    deinit { calls.yield(.released) }
}

/// Starts a handler on `socket` that reports each call (and its own release) and answers what
/// `handling` says for the n-th chunk of bytes (0, 1, …).
func startRecording(
    _ socket: AsyncSocket, handling: @escaping @Sendable (Int) -> ReadHandling = { _ in .keepReading }
) async throws -> AsyncStream<HandlerCall> {
    let (calls, continuation) = AsyncStream.makeStream(of: HandlerCall.self)
    let signal = ReleaseSignal(continuation)
    var chunks = 0
    try await socket.startReading { bytes, error in
        if let error {
            signal.calls.yield(.failed(error))
        } else if bytes.byteCount == 0 {
            signal.calls.yield(.end)
        } else {
            signal.calls.yield(.bytes(bytes.withUnsafeBytes { Array($0) }))
        }
        chunks += 1
        return handling(chunks - 1)
    }
    return calls
}

/// Collects the bytes of `calls` until `count` came.
func collect(_ calls: inout AsyncStream<HandlerCall>.Iterator, _ count: Int) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    while bytes.count < count {
        guard let call = await calls.next(), let chunk = call.bytes else { throw Errno.connectionReset }
        bytes += chunk
    }
    return bytes
}

extension AsyncTests {
@Suite("Read handlers")
struct ReadHandlerTests {
    @Test("Many connections' streams reach their handlers whole and in order, then the end", arguments: backends)
    func integrity(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 60) { reactor in
            try await streamInPieces(reactor, connections: 24) { _, server, expected in
                (nil, { @Sendable () async throws in
                    var calls = try await startRecording(server).makeAsyncIterator()
                    #expect(try await collect(&calls, expected.count) == expected)
                    guard case .end = await calls.next() else { throw Errno.badMessage }
                    guard case .released = await calls.next() else { throw Errno.badMessage }
                })
            }
        }
    }

    @Test("A handler answers with synchronous sends: an echo server without tasks", arguments: backends)
    func echo(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await server.startReading { bytes, _ in
                if bytes.byteCount == 0 {
                    server.closeInBackground()
                    return .stopReading
                }
                bytes.withUnsafeBytes { _ = try? server.sendWithFlags($0, flags: .noSignal) }
                return .keepReading
            }
            for round in 0..<100 {
                let message = pattern(1 + round * 37, seed: round)
                try await client.sendAll(message)
                #expect(try await recvExactly(client, message.count) == message)
            }
            try await client.shutdown(.write)
            // The handler closed the server's side at the end of the stream.
            #expect(try await client.recv(maxCount: 16).isEmpty)
            try await client.close()
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    @Test("Stopping loses nothing: the bytes after it go to the next receive, then to a new handler", arguments: backends)
    func stopAndResume(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            var calls = try await startRecording(server) { _ in .stopReading }.makeAsyncIterator()
            try await client.sendAll([1, 2, 3])
            #expect(await calls.next()?.bytes == [1, 2, 3])
            guard case .released = await calls.next() else { throw Errno.badMessage }
            // Started again at once (on io_uring the multishot request is still armed).
            var next = try await startRecording(server) { _ in .stopReading }.makeAsyncIterator()
            try await client.sendAll([4])
            #expect(await next.next()?.bytes == [4])
            guard case .released = await next.next() else { throw Errno.badMessage }
            // Not reading now: the bytes wait for the next receive, here the lean one.
            let middle = pattern(200_000, seed: 5)
            try await client.sendAll(middle)
            let first = try await server.receive { span in span.withUnsafeBytes { Array($0) } }
            #expect(!first.isEmpty && first[...] == middle[..<first.count])
            // A new handler gets the rest (what the lean receive's request took first), then the end.
            var again = try await startRecording(server).makeAsyncIterator()
            try await client.sendAll([5, 6])
            try await client.shutdown(.write)
            #expect(try await collect(&again, middle.count - first.count + 2) == Array(middle[first.count...]) + [5, 6])
            guard case .end = await again.next() else { throw Errno.badMessage }
            // The end is the end again for a later reader.
            var late = try await startRecording(server).makeAsyncIterator()
            guard case .end = await late.next() else { throw Errno.badMessage }
        }
    }

    @Test("A reset reaches the handler as an error, after the bytes before it", arguments: backends)
    func reset(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            var calls = try await startRecording(server).makeAsyncIterator()
            try await client.sendAll([1, 2])
            #expect(await calls.next()?.bytes == [1, 2])
            try await resetByPeer(client)
            guard case .failed(let error) = await calls.next() else { throw Errno.badMessage }
            #expect(error as? Errno == .connectionReset)
            guard case .released = await calls.next() else { throw Errno.badMessage }
            try await server.close()
        }
    }

    @Test("Closing the socket releases its handler without another call", arguments: backends)
    func closing(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            var calls = try await startRecording(server).makeAsyncIterator()
            try await server.close()
            guard case .released = await calls.next() else { throw Errno.badMessage }
            #expect(await pendingOperations(reactor) == 0)
            // Closed from inside the handler, at the first bytes.
            let (client2, server2) = try await tcpPair(reactor)
            let (closedCalls, continuation) = AsyncStream.makeStream(of: HandlerCall.self)
            do {
                let signal = ReleaseSignal(continuation)  // held by the handler alone after this block
                try await server2.startReading { bytes, _ in
                    signal.calls.yield(.bytes(bytes.withUnsafeBytes { Array($0) }))
                    server2.closeInBackground()
                    return .keepReading
                }
            }
            var closed = closedCalls.makeAsyncIterator()
            try await client2.sendAll([7])
            #expect(await closed.next()?.bytes == [7])
            guard case .released = await closed.next() else { throw Errno.badMessage }
            #expect(try await client2.recv(maxCount: 4).isEmpty)
            for socket in [client, client2] { try await socket.close() }
        }
    }

    @Test("The reactor keeps a reading socket alive, and lets it go at the end", arguments: backends)
    func readingKeepsTheSocket(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            weak let weakServer = server
            var calls = try await startRecording(server).makeAsyncIterator()
            _ = consume server
            try await client.sendAll([1, 2, 3])
            #expect(await calls.next()?.bytes == [1, 2, 3])
            #expect(weakServer != nil)
            try await client.shutdown(.write)
            guard case .end = await calls.next() else { throw Errno.badMessage }
            guard case .released = await calls.next() else { throw Errno.badMessage }
            // Released with the handler: its descriptor is closed, and the client sees the end.
            #expect(try await client.recv(maxCount: 4).isEmpty)
            try await client.close()
        }
    }

    @Test("Refused: a datagram socket, a socket already read, a closed one", arguments: backends)
    func refusals(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (udp, _) = try udpSocket(reactor)
            await #expect(throws: Errno.notSupported) { try await udp.startReading { _, _ in .keepReading } }
            let (client, server) = try await tcpPair(reactor)
            _ = try await startRecording(server)
            await #expect(throws: Errno.alreadyInProcess) { try await server.startReading { _, _ in .keepReading } }
            // A receive waiting on the socket reads it too.
            let waiting = Task(executorPreference: reactor) { try await client.receive { $0.byteCount } }
            await waitUntilPending(reactor)
            await #expect(throws: Errno.alreadyInProcess) { try await client.startReading { _, _ in .keepReading } }
            try await server.sendAll([1])
            #expect(try await waiting.value == 1)
            try await server.close()
            await #expect(throws: ReactorError.socketClosed) { try await server.startReading { _, _ in .keepReading } }
            for socket in [udp, client] { try await socket.close() }
        }
    }

    @Test("A reactor that shuts down tells its handlers", arguments: backends)
    func shutdown(backend: Reactor.Backend) async throws {
        let reactor = try Reactor(backend: backend)
        let (client, server) = try await tcpPair(reactor)
        var calls = try await startRecording(server).makeAsyncIterator()
        reactor.shutdown()
        guard case .failed(let error) = await calls.next() else { throw Errno.badMessage }
        #expect(error as? ReactorError == .shutDown)
        guard case .released = await calls.next() else { throw Errno.badMessage }
        _ = client
    }

    @Test("A connection that always has bytes does not hold up the others", arguments: backends)
    func fairness(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 60) { reactor in
            let (streamClient, streamServer) = try await tcpPair(reactor)
            let (echoClient, echoServer) = try await tcpPair(reactor)
            let streamed = Atomic<Int>(0)
            let total = 1 << 30
            try await streamServer.startReading { bytes, _ in
                streamed.add(bytes.byteCount, ordering: .relaxed)
                return bytes.byteCount == 0 ? .stopReading : .keepReading
            }
            try await echoServer.startReading { bytes, _ in
                bytes.withUnsafeBytes { _ = try? echoServer.sendWithFlags($0, flags: .noSignal) }
                return .keepReading
            }
            let sender = Task {
                let block = [UInt8](repeating: 1, count: 1 << 16)
                var sent = 0
                while sent < total && !Task.isCancelled {
                    try await streamClient.sendAll(block)
                    sent += block.count
                }
            }
            // While the stream keeps its socket readable, the echoes still come back.
            for round in 0..<50 {
                try await echoClient.sendAll([UInt8(round)])
                #expect(try await recvExactly(echoClient, 1) == [UInt8(round)])
            }
            #expect(streamed.load(ordering: .relaxed) < total)
            sender.cancel()
            _ = try? await sender.value
            for socket in [streamClient, streamServer, echoClient, echoServer] { try await socket.close() }
        }
    }

    @Test("Handlers that give their buffers back at once still make a short pool grow", arguments: backends)
    func poolGrowsUnderHandlers(backend: Reactor.Backend) async throws {
        try await withPool(backend, ReceivePoolSize(bufferSize: 4096, minimumBuffers: 1, maximumBuffers: 256)) { reactor in
            let connections = 200, rounds = 20
            let (clients, servers) = try await tcpPairs(reactor, connections)
            for server in servers {
                try await server.startReading { bytes, _ in
                    bytes.withUnsafeBytes { _ = try? server.sendWithFlags($0, flags: .noSignal) }
                    return bytes.byteCount == 0 ? .stopReading : .keepReading
                }
            }
            // Every round, 200 connections' 1 KiB messages arrive together: 50 buffers' worth
            // for a one-buffer ring, whose buffers the handlers give back within the batch.
            for round in 0..<rounds {
                try await Task(executorPreference: reactor) {
                    for (index, client) in clients.enumerated() {
                        let sent = try pattern(1024, seed: index + round).withUnsafeBytes { try client.sendWithFlags($0, flags: .noSignal) }
                        #expect(sent == 1024)
                    }
                }.value
                for (index, client) in clients.enumerated() {
                    #expect(try await recvExactly(client, 1024) == pattern(1024, seed: index + round))
                }
            }
            if backend == .ioUring {
                let figures = await poolFigures(reactor)
                // Grown by doublings, once per loop turn that saw the ring run dry; a pool that
                // grew only while its ring was empty stayed at one buffer here.
                #expect(figures.exhaustions > 0 && figures.buffers >= 4, "\(figures)")
            }
            for socket in clients + servers { try await socket.close() }
        }
    }

    @Test("Two thousand idle connections read by handlers, then each echoes", arguments: backends)
    func manyIdle(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 120) { reactor in
            let count = 2000
            let (clients, servers) = try await tcpPairs(reactor, count)
            for server in servers {
                try await server.startReading { bytes, _ in
                    bytes.withUnsafeBytes { _ = try? server.sendWithFlags($0, flags: .noSignal) }
                    return bytes.byteCount == 0 ? .stopReading : .keepReading
                }
            }
            for (index, client) in clients.enumerated() {
                try await client.sendAll([UInt8(truncatingIfNeeded: index)])
            }
            for (index, client) in clients.enumerated() {
                #expect(try await recvExactly(client, 1) == [UInt8(truncatingIfNeeded: index)])
            }
            for socket in clients + servers { try await socket.close() }
            #expect(await pendingOperations(reactor) == 0)
        }
    }
}
}
