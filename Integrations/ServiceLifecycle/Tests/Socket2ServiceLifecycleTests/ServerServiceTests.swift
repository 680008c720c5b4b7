import Logging
import ServiceLifecycle
import Socket2
import Socket2Async
import Socket2ServiceLifecycle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Connects, sends a request, and reads until the server closes.
private func exchange(_ address: SockAddr, reactor: Reactor) async throws -> String {
    let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
    try await client.connect(address)
    try await client.sendAll(Array("hello".utf8))
    var reply: [UInt8] = []
    while true {
        let bytes = try await client.recv(maxCount: 256)
        if bytes.isEmpty { break }
        reply += bytes
    }
    try await client.close()
    return String(decoding: reply, as: UTF8.self)
}

@Suite(.serialized) struct ServerServiceTests {
    /// A signal the group is configured for shuts the server down gracefully: the handler in
    /// progress sees the shutdown signal, answers, and the group's run returns normally.
    @Test(arguments: [Reactor.Backend.epoll, .ioUring])
    func gracefulShutdownOnASignal(backend: Reactor.Backend) async throws {
        let reactors = try ReactorGroup(count: 2, backend: backend)
        defer { reactors.shutdown() }
        let server = try reactors.listen(on: SockAddr(SocketAddrV4(.localhost, 0)))
        let started = AsyncStream<Void>.makeStream()
        let service = ServerService(server) { connection, _ in
            _ = try? await connection.recv(maxCount: 16)
            started.continuation.yield()
            await ShutdownSignal.current?.wait()
            try? await connection.sendAll(Array("bye".utf8))
            try? await connection.close()
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [service], gracefulShutdownSignals: [.sigusr2], logger: logger))
        let running = Task { try await group.run() }
        let reply = Task { try await exchange(server.localAddress, reactor: reactors.reactors[0]) }
        var iterator = started.stream.makeAsyncIterator()
        await iterator.next()
        #expect(!server.isShuttingDown)
        kill(getpid(), SIGUSR2)
        #expect(try await reply.value == "bye")
        try await running.value
        #expect(server.isShuttingDown)
    }

    /// The group's own trigger works the same way, with nothing connected.
    @Test func gracefulShutdownByTheGroup() async throws {
        let reactors = try ReactorGroup(count: 1)
        defer { reactors.shutdown() }
        let server = try reactors.listen(on: SockAddr(SocketAddrV4(.localhost, 0)))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [ServerService(server) { _, _ in }], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(server.isShuttingDown)
    }
}
