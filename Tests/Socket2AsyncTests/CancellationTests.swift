import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Expects `task` to fail with `CancellationError`.
func expectCancelled<T: Sendable>(_ task: Task<T, any Error>, sourceLocation: SourceLocation = #_sourceLocation) async {
    do {
        _ = try await task.value
        Issue.record("the operation was not cancelled", sourceLocation: sourceLocation)
    } catch is CancellationError {
    } catch {
        Issue.record("expected CancellationError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// A loopback listener whose accept queue is full and never drained, so that a further connect
/// stays in SYN_SENT: `backlog` 0 and connections made until one does not complete.
final class FullListener: Sendable {
    let reactor: Reactor
    let listener: AsyncSocket
    let held: [AsyncSocket]
    let address: SockAddr

    init() async throws {
        reactor = try Reactor(backend: .epoll)
        listener = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
        try listener.bind(loopback())
        try listener.listen(0)
        address = try listener.localAddr()
        var held: [AsyncSocket] = []
        for _ in 0..<16 {
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            held.append(client)
            do {
                try await client.connect(address, timeout: .milliseconds(500))
            } catch Errno.timedOut {
                self.held = held
                return
            }
        }
        throw Errno.noBufferSpace
    }

    deinit { reactor.shutdown() }
}

extension AsyncTests {
@Suite("Cancellation")
struct CancellationTests {
    @Test("Cancelling a pending accept", arguments: backends)
    func acceptCancelled(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let task = Task(executorPreference: reactor) { try await listener.accept().address }
            await waitUntilPending(reactor)
            task.cancel()
            await expectCancelled(task)
            // The listener still works.
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            try await client.connect(address)
            let (connection, peer) = try await listener.accept()
            #expect(peer == (try client.localAddr()))
            try await connection.close()
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    @Test("Cancelling a pending connect to a full listener", arguments: backends)
    func connectCancelled(backend: Reactor.Backend) async throws {
        let full = try await FullListener()
        try await withReactor(backend) { reactor in
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            let task = Task { try await client.connect(full.address) }
            await waitUntilPending(reactor)
            #expect(tcpState(client) == 2)  // SYN_SENT: the connect is really pending
            task.cancel()
            await expectCancelled(task)

            let timed = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            await #expect(throws: Errno.timedOut) {
                try await timed.connect(full.address, timeout: .milliseconds(50))
            }
            #expect(await pendingOperations(reactor) == 0)
        }
        withExtendedLifetime(full) {}
    }

    @Test("Cancelling a pending recv keeps the socket usable", arguments: backends)
    func recvCancelled(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let buffer = TestBuffer(16)
            let task = Task(executorPreference: reactor) { try await server.recv(into: buffer.raw) }
            await waitUntilPending(reactor)
            task.cancel()
            await expectCancelled(task)
            try await client.sendAll([1, 2, 3])
            #expect(try await recvExactly(server, 3) == [1, 2, 3])
        }
    }

    @Test("Cancelling a send blocked on a full send buffer", arguments: backends)
    func sendCancelled(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            setBufferSize(client, SO_SNDBUF, 4096)
            setBufferSize(server, SO_RCVBUF, 4096)
            // Fill both buffers without waiting.
            let chunk = [UInt8](repeating: 7, count: 65536)
            var queued = 0
            while true {
                let sent = chunk.withUnsafeBytes { Glibc.send(client.rawDescriptor, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
                if sent <= 0 { break }
                queued += sent
            }
            let big = TestBuffer(chunk)
            let task = Task { try await client.send(big.readOnly) }
            await waitUntilPending(reactor)
            task.cancel()
            await expectCancelled(task)
            // Nothing of the cancelled send went out: exactly `queued` bytes arrive.
            try await client.shutdown(.write)
            var total = 0
            while true {
                let bytes = try await server.recv(maxCount: 65536)
                if bytes.isEmpty { break }
                total += bytes.count
            }
            #expect(total == queued)
        }
    }

    @Test("A recv racing its cancellation never loses bytes", arguments: backends)
    func recvRace(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 60) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let buffer = TestBuffer(1)
            var delivered = 0, cancelled = 0
            for round in 0..<300 {
                let task = Task(executorPreference: reactor) { try await server.recv(into: buffer.raw) }
                if round % 2 == 0 { await waitUntilPending(reactor) }
                async let send = client.send([UInt8(truncatingIfNeeded: round)])
                task.cancel()
                #expect(try await send == 1)
                do {
                    #expect(try await task.value == 1)
                    delivered += 1
                } catch is CancellationError {
                    cancelled += 1
                    // The byte was not taken: it is still there.
                    #expect(try await server.recv(into: buffer.raw) == 1)
                }
                #expect(buffer.bytes == [UInt8(truncatingIfNeeded: round)])
            }
            #expect(delivered + cancelled == 300)
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    @Test("An accept racing its cancellation never drops a connection", arguments: backends)
    func acceptRace(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 60) { reactor in
            let (listener, address) = try tcpListener(reactor, backlog: 512)
            let rounds = 200
            var accepted: [AsyncSocket] = []
            var clients: [AsyncSocket] = []
            for round in 0..<rounds {
                let task = Task(executorPreference: reactor) { try await listener.accept().socket }
                if round % 2 == 0 { await waitUntilPending(reactor) }
                let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
                async let connect: Void = client.connect(address)
                task.cancel()
                try await connect
                clients.append(client)
                do {
                    accepted.append(try await task.value)
                } catch is CancellationError {
                    // Not accepted by the cancelled call: the next accept gets it.
                    accepted.append(try await listener.accept().socket)
                }
            }
            // Every connection was accepted exactly once, in order.
            for (client, server) in zip(clients, accepted) {
                #expect(try client.localAddr() == server.peerAddr())
            }
            #expect(accepted.count == rounds)
            let listenerPort = port(of: address)
            #expect(openConnections(onPort: listenerPort) == rounds)
            for socket in accepted { try await socket.close() }
            accepted.removeAll()
            try await listener.close()
            #expect(openConnections(onPort: listenerPort) == 0)
        }
    }

    @Test("Closing a socket ends its pending operations", arguments: backends)
    func closeWithPendingOperation(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let buffer = TestBuffer(16)
            let recv = Task(executorPreference: reactor) { try await server.recv(into: buffer.raw) }
            let (listener, _) = try tcpListener(reactor)
            let accept = Task { try await listener.accept().address }
            await waitUntilPending(reactor, 2)
            try await server.close()
            try await listener.close()
            await #expect(throws: ReactorError.socketClosed) { try await recv.value }
            await #expect(throws: ReactorError.socketClosed) { try await accept.value }
            #expect(server.rawDescriptor == -1)
            await #expect(throws: ReactorError.socketClosed) { try await server.recv(maxCount: 1) }
            // The peer sees the close.
            #expect(try await client.recv(maxCount: 1).isEmpty)
            try await server.close()  // again: nothing happens
            #expect(await pendingOperations(reactor) == 0)
        }
    }
}
}
