import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Expects `body` to throw `Errno.timedOut`, no sooner than `atLeast` after it started.
func expectTimedOut<T>(
    atLeast: Duration = .zero, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async {
    let clock = ContinuousClock()
    let start = clock.now
    do {
        _ = try await body()
        Issue.record("the operation did not time out", sourceLocation: sourceLocation)
    } catch Errno.timedOut {
        #expect(clock.now - start >= atLeast, "timed out early", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected ETIMEDOUT, got \(error)", sourceLocation: sourceLocation)
    }
}

/// The reactor's timers (reactor thread).
func timerCount(_ reactor: Reactor) async -> Int {
    await onReactor(reactor) { reactor.timers.count }
}

extension AsyncTests {
@Suite("Time-outs")
struct TimeoutTests {
    @Test("A recv still waiting at the deadline throws ETIMEDOUT and takes nothing", arguments: backends)
    func recvTimesOut(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            await Task(executorPreference: reactor) {
                let buffer = TestBuffer(16)
                await expectTimedOut(atLeast: .milliseconds(20)) {
                    try await AsyncSocket.withTimeout(.milliseconds(20)) { try await server.recv(into: buffer.raw) }
                }
                // From a task with no executor preference too (the wait moves to the reactor).
                await expectTimedOut(atLeast: .milliseconds(20)) {
                    try await Task.detached {
                        try await AsyncSocket.withTimeout(.milliseconds(20)) { try await server.recv(maxCount: 4) }
                    }.value
                }
            }.value
            try await client.sendAll([1, 2, 3])
            #expect(try await recvExactly(server, 3) == [1, 2, 3])
            #expect(await pendingOperations(reactor) == 0)
            #expect(await timerCount(reactor) == 0)
        }
    }

    @Test("Queued data is received after the deadline has passed", arguments: backends)
    func queuedDataAfterDeadline(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let (receiver, address) = try udpSocket(reactor)
            let (sender, _) = try udpSocket(reactor)
            try await client.sendAll([4, 5])
            _ = try await sender.sendTo([6], to: address)
            let received = try await Task(executorPreference: reactor) {
                try await AsyncSocket.withTimeout(.zero) {
                    (try await server.recv(maxCount: 16), try await receiver.recvFrom(maxCount: 16).bytes)
                }
            }.value
            #expect(received.0 == [4, 5] && received.1 == [6])
            await expectTimedOut {
                try await AsyncSocket.withTimeout(.zero) { try await server.recv(maxCount: 16) }
            }
        }
    }

    @Test("An accept still waiting at the deadline takes no connection", arguments: backends)
    func acceptTimesOut(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            await expectTimedOut(atLeast: .milliseconds(20)) {
                try await AsyncSocket.withTimeout(.milliseconds(20)) { try await listener.accept() }
            }
            // The stream form (multishot on io_uring): leaving it by the time-out loses nothing.
            await expectTimedOut(atLeast: .milliseconds(20)) {
                try await AsyncSocket.withTimeout(.milliseconds(20)) {
                    for try await _ in listener.incoming { Issue.record("no client connected yet") }
                }
            }
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            try await client.connect(address)
            let (server, peer) = try await AsyncSocket.withTimeout(.seconds(10)) { try await listener.accept() }
            #expect(peer == (try client.localAddr()))
            try await client.sendAll([9])
            #expect(try await recvExactly(server, 1) == [9])
            #expect(await pendingOperations(reactor) == 0)
        }
    }

    @Test("A datagram stream left by its deadline keeps what arrives later", arguments: backends)
    func datagramStreamTimesOut(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, address) = try udpSocket(reactor)
            let (sender, _) = try udpSocket(reactor)
            await expectTimedOut(atLeast: .milliseconds(20)) {
                try await AsyncSocket.withTimeout(.milliseconds(20)) {
                    for try await _ in receiver.datagrams(maxSize: 64) { Issue.record("nothing was sent yet") }
                }
            }
            _ = try await sender.sendTo([1, 2], to: address)
            #expect(try await receiver.recvFrom(maxCount: 64).bytes == [1, 2])
        }
    }

    @Test("A send still waiting at the deadline throws ETIMEDOUT", arguments: backends)
    func sendTimesOut(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            setBufferSize(client, SO_SNDBUF, 4096)
            setBufferSize(server, SO_RCVBUF, 4096)
            let chunk = TestBuffer([UInt8](repeating: 7, count: 1 << 20))
            await expectTimedOut(atLeast: .milliseconds(20)) {
                try await AsyncSocket.withTimeout(.milliseconds(20)) { try await client.sendAll(chunk.readOnly) }
            }
            // The connection still works: what was sent arrives, then what is sent next.
            async let drained = { () async throws -> [UInt8] in
                var received: [UInt8] = []
                while true {
                    let bytes = try await server.recv(maxCount: 65536)
                    if bytes.isEmpty { return received }
                    received += bytes
                }
            }()
            try await client.sendAll([1])
            try await client.shutdown(.write)
            let received = try await drained
            #expect(received.count > 1 && received.dropLast().allSatisfy { $0 == 7 } && received.last == 1)
        }
    }

    @Test("A send under a deadline to a peer that stopped reading: the same on both backends", arguments: backends)
    func sendToStalledPeer(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            // Fixed buffers (no autotuning): the server's send buffer is 2 MiB in the kernel.
            setBufferSize(server, SO_SNDBUF, 1 << 20)
            setBufferSize(client, SO_RCVBUF, 128 * 1024)
            /// Sends `count` bytes under a 5 ms deadline, on the reactor thread as a server's
            /// handler does; whether they went out.
            @Sendable func send(_ count: Int) async throws -> Bool {
                try await Task(executorPreference: reactor) {
                    do {
                        try await AsyncSocket.withTimeout(.milliseconds(5)) {
                            try await server.sendAll([UInt8](repeating: 1, count: count))
                        }
                        return true
                    } catch Errno.timedOut {
                        return false
                    }
                }.value
            }
            // Replies the client does not read, until the buffers are full.
            var sent = 0
            while try await send(1000) { sent += 1000 }
            // The client reads a little: some room comes back in the server's send buffer,
            // far less than the third that makes a socket writable (poll(2), EPOLLOUT).
            let queuedBefore = outputQueue(server)
            var read = 0
            while queuedBefore - outputQueue(server) < 32 * 1024 {
                read += try await client.recv(maxCount: 16 * 1024).count
            }
            #expect(read < 512 * 1024)
            // No send goes out on either backend. (io_uring's kernel-side send used to try at
            // once and go out, where epoll waited for writability and timed out.)
            #expect(try await send(100) == false)
            #expect(sent > 0)
            // A send that waits for writability goes out once the client reads again.
            let last = Task(executorPreference: reactor) { try await server.sendAll([2]) }
            var tail: UInt8 = 0
            while tail != 2 { tail = try await client.recv(maxCount: 64 * 1024).last ?? 0 }
            try await last.value
            try await client.close()
            try await server.close()
        }
    }

    @Test("Nested deadlines: the earlier one holds, also for connect's own time-out", arguments: backends)
    func nestedDeadlines(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (peer, server) = try await tcpPair(reactor)
            await expectTimedOut(atLeast: .milliseconds(20)) {
                try await AsyncSocket.withTimeout(.milliseconds(20)) {
                    try await AsyncSocket.withTimeout(.seconds(3600)) { try await server.recv(maxCount: 1) }
                }
            }
            let full = try await FullListener()
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            await expectTimedOut(atLeast: .milliseconds(20)) {
                try await AsyncSocket.withTimeout(.milliseconds(20)) {
                    try await client.connect(full.address, timeout: .seconds(3600))
                }
            }
            // A time-out too long for the clock means no limit, not an expired one.
            let unlimited = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            let pending = Task { try await unlimited.connect(full.address, timeout: .seconds(Int64.max)) }
            await waitUntilPending(reactor)
            pending.cancel()
            await expectCancelled(pending)
            withExtendedLifetime((full, peer)) {}
            #expect(await pendingOperations(reactor) == 0)
            #expect(await timerCount(reactor) == 0)
        }
    }

    @Test("A wait of an actor on the reactor times out", arguments: backends)
    func actorTimesOut(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let echo = ReactorTests.ReactorBoundEcho(reactor)
            await expectTimedOut(atLeast: .milliseconds(20)) { try await echo.receive(server, within: .milliseconds(20)) }
            try await client.sendAll([3])
            #expect(try await echo.receive(server, within: .seconds(10)) == [3])
        }
    }

    // A server whose every receive carries a long time-out must not keep a timer per receive
    // it ever made.
    @Test("An operation's timer ends with the operation", arguments: backends)
    func timersEndWithOperations(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            try await Task(executorPreference: reactor) {
                let buffer = TestBuffer(1)
                try await AsyncSocket.withTimeout(.seconds(3600)) {
                    for round in 0..<500 {
                        async let received = server.recv(into: buffer.raw)
                        await waitUntilPending(reactor)  // the receive waits, with a timer
                        try await client.sendAll([UInt8(truncatingIfNeeded: round)])
                        #expect(try await received == 1)
                    }
                }
            }.value
            #expect(await timerCount(reactor) == 0)
        }
    }

    @Test("A recv racing its deadline never loses bytes", arguments: backends)
    func recvDeadlineRace(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 60) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let buffer = TestBuffer(1)
            var delivered = 0, timedOut = 0
            for round in 0..<300 {
                let byte = UInt8(truncatingIfNeeded: round)
                let task = Task(executorPreference: reactor) {
                    try await AsyncSocket.withTimeout(.microseconds(round % 30 * 10)) { try await server.recv(into: buffer.raw) }
                }
                async let send = client.send([byte])
                #expect(try await send == 1)
                do {
                    #expect(try await task.value == 1)
                    delivered += 1
                } catch Errno.timedOut {
                    timedOut += 1
                    // The byte was not taken: it is still there.
                    #expect(try await server.recv(into: buffer.raw) == 1)
                }
                #expect(buffer.bytes == [byte])
            }
            #expect(delivered + timedOut == 300)
            #expect(await pendingOperations(reactor) == 0)
            #expect(await timerCount(reactor) == 0)
        }
    }
}
}

extension AsyncTests.ReactorTests.ReactorBoundEcho {
    /// Receives up to 16 bytes within `timeout`.
    func receive(_ socket: AsyncSocket, within timeout: Duration) async throws -> [UInt8] {
        try await AsyncSocket.withTimeout(timeout) {
            // The body runs in the caller's isolation: on the actor, on the reactor thread.
            #expect(reactor.isCurrent)
            return try await socket.recv(maxCount: 16)
        }
    }
}

/// Bytes in the socket's send queue, not yet acknowledged by the peer (`SIOCOUTQ`).
func outputQueue(_ socket: AsyncSocket) -> Int {
    var count: CInt = 0
    _ = ioctl(socket.rawDescriptor, UInt(TIOCOUTQ), &count)
    return Int(count)
}
