import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Connects to `address` on `reactor`, sends `request`, and returns what comes back until the
/// server closes.
private func exchange(_ address: SockAddr, _ request: String, reactor: Reactor) async throws -> String {
    let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
    try await client.connect(address)
    try await client.sendAll(Array(request.utf8))
    var reply: [UInt8] = []
    while true {
        let bytes = try await client.recv(maxCount: 256)
        if bytes.isEmpty { break }
        reply += bytes
    }
    try await client.close()
    return String(decoding: reply, as: UTF8.self)
}

extension AsyncTests {
    /// A port that a server holds cannot be taken by a second server, whatever it runs in; only
    /// two `.reusePort` servers share one, as asked.
    @Test(arguments: backends)
    func secondServerOnABusyPortFails(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 2, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            let first = try group.listen(on: loopback())
            let address = first.localAddress
            #expect(address.asSocketIpv4()?.port != 0)
            #expect(throws: Errno.addressInUse) { try group.listen(on: address) }
            #expect(throws: Errno.addressInUse) { try group.listen(on: address, options: ServerOptions(sharing: .reusePort)) }
            // serve in a bare Task: the bind error ends the task at once.
            let bare = Task { try await group.serve(on: address) { _, _ in } }
            await #expect(throws: Errno.addressInUse) { try await bare.value }
            // Nor can a plain socket with SO_REUSEPORT join it.
            let intruder = try Socket(domain: .ipv4, type: .stream)
            try intruder.setReuseAddress(true)
            try intruder.setReusePort(true)
            #expect(throws: Errno.addressInUse) { try intruder.bind(address) }
            first.shutdown()
            try await first.run { _, _ in }

            // Opting in: two SO_REUSEPORT servers share a port.
            let sharing = ServerOptions(sharing: .reusePort)
            let one = try group.listen(on: loopback(), options: sharing)
            let two = try group.listen(on: one.localAddress, options: sharing)
            #expect(two.localAddress == one.localAddress)
        }
    }

    /// The hook runs before bind (the socket has no port yet), and its error is thrown.
    @Test func listenerOptionsHook() async throws {
        let group = try ReactorGroup(count: 1, backend: .epoll)
        defer { group.shutdown() }
        let portsSeen = Mutex<[UInt16?]>([])
        let server = try group.listen(on: loopback(), options: ServerOptions(backlog: 16) { socket in
            portsSeen.withLock { $0.append(try? socket.localAddr().asSocketIpv4()?.port) }
            try socket.setTcpDeferAccept(.seconds(1))
        })
        #expect(portsSeen.withLock { $0 } == [0])
        #expect(server.options.backlog == 16)
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try group.listen(on: loopback(), options: ServerOptions { _ in throw Refused() })
        }
    }

    /// Graceful shutdown: the server stops accepting, a running handler sees the signal, says
    /// goodbye and ends; `run` returns normally.
    @Test(arguments: backends)
    func gracefulShutdownLetsHandlersFinish(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 2, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            let server = try group.listen(on: loopback())
            let started = AsyncStream<Void>.makeStream()
            let running = Task {
                try await server.run { connection, _ in
                    guard let signal = ShutdownSignal.current, (try? await connection.recv(maxCount: 16)) != nil
                    else { return }
                    started.continuation.yield()
                    await signal.wait()
                    #expect(!Task.isCancelled)
                    try? await connection.sendAll(Array("bye".utf8))
                    try? await connection.close()
                }
            }
            let reply = Task { try await exchange(server.localAddress, "hello", reactor: group.reactors[0]) }
            var iterator = started.stream.makeAsyncIterator()
            await iterator.next()
            #expect(!server.isShuttingDown)
            server.shutdown(gracePeriod: .seconds(30))
            #expect(try await reply.value == "bye")
            try await running.value  // no CancellationError
            #expect(server.shutdownSignal.isTriggered)
            // Not accepting any more.
            let late = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
            await #expect(throws: Errno.connectionRefused) { try await late.connect(server.localAddress) }
            await #expect(throws: Errno.invalidArgument) { try await server.run { _, _ in } }
        }
    }

    /// A handler still running when the grace period ends is cancelled; `run` still returns
    /// normally. A shutdown before `run` makes it return at once.
    @Test(arguments: backends)
    func gracePeriodEndsInCancellation(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 1, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            let server = try group.listen(on: loopback())
            let started = AsyncStream<Void>.makeStream()
            let outcome = Mutex<(any Error)?>(nil)
            let running = Task {
                try await server.run { connection, _ in
                    started.continuation.yield()
                    do {
                        _ = try await connection.recv(maxCount: 16)  // the client sends nothing
                    } catch {
                        outcome.withLock { $0 = error }
                    }
                }
            }
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
            try await client.connect(server.localAddress)
            var iterator = started.stream.makeAsyncIterator()
            await iterator.next()
            server.shutdown(gracePeriod: .milliseconds(50))
            try await running.value
            #expect(outcome.withLock { $0 } is CancellationError)
            try await client.close()

            let early = try group.listen(on: loopback())
            early.shutdown()
            try await early.run { _, _ in Issue.record("no connection was made") }
        }
    }

    /// Cancelling the task that runs the server cancels its handlers at once and throws
    /// `CancellationError`.
    @Test(arguments: backends)
    func cancellingRunCancelsHandlers(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 2, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            let started = AsyncStream<SockAddr>.makeStream()
            let cancelled = Mutex(false)
            let running = Task {
                try await group.serve(on: loopback(), ready: { started.continuation.yield($0.localAddress) }) { connection, _ in
                    started.continuation.yield(loopback())
                    do { _ = try await connection.recv(maxCount: 16) } catch is CancellationError {
                        cancelled.withLock { $0 = true }
                    } catch {}
                }
            }
            var iterator = started.stream.makeAsyncIterator()
            let address = try #require(await iterator.next())
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
            try await client.connect(address)
            _ = await iterator.next()
            running.cancel()
            await #expect(throws: CancellationError.self) { try await running.value }
            #expect(cancelled.withLock { $0 })
            try await client.close()
        }
    }
}

extension AsyncTests {
    /// `endingReads(of:)`: a handler waiting for the next request sees the end of input when
    /// the server shuts down gracefully, and can still say goodbye.
    @Test(arguments: backends)
    func endingReadsOnShutdown(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 1, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            let server = try group.listen(on: loopback())
            let started = AsyncStream<Void>.makeStream()
            let running = Task {
                try await server.run { connection, _ in
                    do {
                        try await server.shutdownSignal.endingReads(of: connection) {
                            started.continuation.yield()
                            while try await !connection.recv(maxCount: 16).isEmpty {}
                        }
                        #expect(!Task.isCancelled)
                        try await connection.sendAll("bye")
                    } catch {
                        Issue.record("handler: \(error)")
                    }
                    try? await connection.close()
                }
            }
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
            try await client.connect(server.localAddress)
            var iterator = started.stream.makeAsyncIterator()
            await iterator.next()
            server.shutdown(gracePeriod: .seconds(30))
            #expect(try await recvExactly(client, 3) == Array("bye".utf8))
            try await running.value
            try await client.close()
        }
    }
}

extension AsyncTests {
    /// A connection read by a handler outlives its handler task: a graceful shutdown ends its
    /// reading (the handler sees the end of the stream after the bytes that had come) and
    /// `run` returns only once it is closed.
    @Test(arguments: backends)
    func gracefulShutdownEndsReadHandlersAndWaitsForTheirClose(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 2, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            let server = try group.listen(on: loopback())
            let sawEnd = AsyncStream<Void>.makeStream()
            let release = AsyncStream<Void>.makeStream()
            let returned = Mutex(false)
            let running = Task {
                try await server.run { connection, _ in
                    try? await connection.startReading { bytes, _ in
                        if bytes.byteCount > 0 {
                            _ = bytes.withUnsafeBytes { try? connection.sendWithFlags($0, flags: .noSignal) }
                            return .keepReading
                        }
                        sawEnd.continuation.yield()
                        Task(executorPreference: connection.reactor) {
                            for await _ in release.stream { break }
                            try? await connection.sendAll("bye")
                            try? await connection.close()
                        }
                        return .stopReading
                    }
                }
                returned.withLock { $0 = true }
            }
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
            try await client.connect(server.localAddress)
            try await client.sendAll("hi")
            #expect(try await recvExactly(client, 2) == Array("hi".utf8))
            server.shutdown(gracePeriod: .seconds(30))
            var ends = sawEnd.stream.makeAsyncIterator()
            await ends.next()
            // The connection is open until the handler's task closes it: `run` cannot have returned.
            #expect(!returned.withLock { $0 })
            release.continuation.yield()
            #expect(try await recvExactly(client, 3) == Array("bye".utf8))
            #expect(try await client.recv(maxCount: 1).isEmpty)
            try await running.value
            #expect(returned.withLock { $0 })
            try await client.close()
        }
    }

    /// Connections still open when the grace period ends, or when the task running the server
    /// is cancelled, are shut down before `run` returns: their peers see the end of the stream
    /// (their owners still close them).
    @Test(arguments: backends)
    func connectionsLeftOpenAreShutDownWhenRunEnds(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 1, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            for graceful in [true, false] {
                let server = try group.listen(on: loopback())
                let kept = Mutex<[AsyncSocket]>([])
                let reading = AsyncStream<Void>.makeStream()
                let running = Task {
                    try await server.run { connection, _ in
                        // A handler that never closes: it keeps the socket, and ignores the end.
                        kept.withLock { $0.append(connection) }
                        try? await connection.startReading { _, _ in .keepReading }
                        reading.continuation.yield()
                    }
                }
                let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
                try await client.connect(server.localAddress)
                var iterator = reading.stream.makeAsyncIterator()
                await iterator.next()
                if graceful {
                    server.shutdown(gracePeriod: .milliseconds(50))
                    try await running.value
                } else {
                    running.cancel()
                    await #expect(throws: CancellationError.self) { try await running.value }
                }
                #expect(try await client.recv(maxCount: 1).isEmpty)  // the server shut it down
                for socket in kept.withLock({ $0 }) {
                    #expect(socket.rawDescriptor >= 0)  // the owner's to close
                    try await socket.close()
                }
                try await client.close()
            }
        }
    }
}
