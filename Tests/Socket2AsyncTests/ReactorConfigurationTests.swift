import Testing
@testable import Socket2Async
import Socket2
#if canImport(Glibc)
import Glibc
#endif

/// A configuration with one setting changed.
private func configuration(_ change: (inout Reactor.Configuration) -> Void) -> Reactor.Configuration {
    var configuration = Reactor.Configuration()
    change(&configuration)
    return configuration
}

/// Runs `body` with a reactor made by the public initializer, shut down afterwards, under a
/// 60-second deadline.
private func withConfiguredReactor(
    _ backend: Reactor.Backend, _ configuration: Reactor.Configuration,
    _ body: @escaping @Sendable (Reactor) async throws -> Void
) async throws {
    let reactor = try Reactor(backend: backend, configuration: configuration)
    #expect(reactor.backend == backend)
    defer { reactor.shutdown() }
    try await withTimeout(60) { try await body(reactor) }
}

/// The io_uring sizes a reactor took (nil on epoll): submission and completion entries, and
/// its receive pool's sizes.
private func uringSizes(_ reactor: Reactor) async -> (sq: UInt32, cq: UInt32, pool: ReceivePoolSize)? {
    await onReactor(reactor) {
        guard let backend = reactor.impl as? URingBackend else { return nil }
        return (backend.ring.pointee.sq.ring_entries, backend.ring.pointee.cq.ring_entries, backend.poolSize)
    }
}

/// `count` connections stream `size` bytes each (`streamInPieces`), read by lean receives or
/// by read handlers; every byte is checked, and no operation is left.
private func streamOnConnections(_ reactor: Reactor, count: Int, size: Int, handlers: Bool) async throws {
    try await streamInPieces(reactor, connections: count, size: { _ in size }) { _, server, expected in
        if handlers {
            return (nil, { @Sendable () async throws in
                var calls = try await startRecording(server).makeAsyncIterator()
                #expect(try await collect(&calls, expected.count) == expected)
                guard case .end = await calls.next() else { throw Errno.badMessage }
            })
        }
        return (reactor, { @Sendable () async throws in #expect(try await receiveAll(server) == expected) })
    }
}

extension AsyncTests {
@Suite("Reactor configuration")
struct ReactorConfigurationTests {
    /// Settings out of range, each with the name its error must start with.
    static let outOfRange: [(setting: String, configuration: Reactor.Configuration)] = [
        ("submissionQueueEntries", configuration { $0.submissionQueueEntries = 0 }),
        ("submissionQueueEntries", configuration { $0.submissionQueueEntries = 32769 }),
        ("completionQueueEntries", configuration { $0.submissionQueueEntries = 1024; $0.completionQueueEntries = 512 }),
        ("completionQueueEntries", configuration { $0.completionQueueEntries = 65537 }),
        ("receiveBufferSize", configuration { $0.receiveBufferSize = 0 }),
        ("receiveBufferSize", configuration { $0.receiveBufferSize = (1 << 30) + 1 }),
        ("maximumReceiveBuffers", configuration { $0.maximumReceiveBuffers = 0 }),
        ("maximumReceiveBuffers", configuration { $0.maximumReceiveBuffers = 32769 }),
        ("minimumReceiveBuffers", configuration { $0.minimumReceiveBuffers = 0 }),
        ("minimumReceiveBuffers", configuration { $0.maximumReceiveBuffers = 8; $0.minimumReceiveBuffers = 9 }),
    ]

    @Test("Each setting out of range is refused with an error that names it, by a reactor and a group", arguments: backends)
    func outOfRangeRefused(backend: Reactor.Backend) throws {
        for (setting, configuration) in Self.outOfRange {
            for group in [false, true] {
                do {
                    if group {
                        try ReactorGroup(count: 2, backend: backend, configuration: configuration).shutdown()
                    } else {
                        try Reactor(backend: backend, configuration: configuration).shutdown()
                    }
                    Issue.record("accepted: \(setting) in \(configuration)")
                } catch ReactorError.invalidConfiguration(let reason) {
                    #expect(reason.hasPrefix(setting + " is "), "\(reason)")
                    #expect(ReactorError.invalidConfiguration(reason).description.contains(setting))
                }
            }
        }
    }

    @Test("The defaults are the reactor's own, and a reactor takes the sizes it is given", arguments: backends)
    func sizesTaken(backend: Reactor.Backend) async throws {
        let defaults = Reactor.Configuration()
        #expect(defaults.submissionQueueEntries == 1024 && defaults.completionQueueEntries == 8192)
        #expect(defaults.receiveBufferSize == 65536 && defaults.minimumReceiveBuffers == 4
            && defaults.maximumReceiveBuffers == 64)
        var chosen = Reactor.Configuration()
        chosen.submissionQueueEntries = 100  // rounded up to 128 by the kernel
        chosen.completionQueueEntries = 256
        chosen.receiveBufferSize = 16384
        chosen.minimumReceiveBuffers = 2
        chosen.maximumReceiveBuffers = 8
        let group = try ReactorGroup(count: 2, backend: backend, configuration: chosen)
        defer { group.shutdown() }
        for reactor in group.reactors {
            #expect(reactor.backend == backend)
            let sizes = await uringSizes(reactor)
            if backend == .ioUring {
                #expect(sizes?.sq == 128 && sizes?.cq == 256)
                #expect(sizes?.pool.bufferSize == 16384 && sizes?.pool.minimumBuffers == 2
                    && sizes?.pool.maximumBuffers == 8)
            } else {
                #expect(sizes == nil)
            }
        }
        try await withConfiguredReactor(backend, chosen) { reactor in
            try await streamOnConnections(reactor, count: 4, size: 100_000, handlers: false)
        }
    }

    @Test("A small receive pool bounds its buffers and loses no byte, read by receives and by handlers",
          arguments: backends, [false, true])
    func smallPool(backend: Reactor.Backend, handlers: Bool) async throws {
        var small = Reactor.Configuration()
        small.receiveBufferSize = 4096
        small.minimumReceiveBuffers = 1
        small.maximumReceiveBuffers = 2
        try await withConfiguredReactor(backend, small) { reactor in
            try await streamOnConnections(reactor, count: 32, size: 48_000, handlers: handlers)
            let figures = await poolFigures(reactor)
            if backend == .ioUring {
                #expect(figures.buffers >= 1 && figures.buffers <= 2)
                #expect(figures.exhaustions > 0, "32 streams through 2 buffers of 4 KiB never ran the ring dry")
            }
        }
    }

    @Test("The article's snippet: a group whose reactors keep at most 1 MiB of receive buffers each")
    func articleSnippet() async throws {
        var configuration = Reactor.Configuration()
        configuration.maximumReceiveBuffers = 16  // at most 1 MiB of receive buffers per reactor
        let group = try ReactorGroup(count: 4, configuration: configuration)
        defer { group.shutdown() }
        #expect(group.reactors.count == 4)
        for reactor in group.reactors where reactor.backend == .ioUring {
            #expect(await uringSizes(reactor)?.pool.maximumBuffers == 16)
        }
    }

    @Test("The smallest configuration still serves: one queue entry, one buffer of one byte", arguments: backends)
    func smallestServes(backend: Reactor.Backend) async throws {
        var smallest = Reactor.Configuration()
        smallest.submissionQueueEntries = 1
        smallest.completionQueueEntries = 1
        smallest.receiveBufferSize = 1
        smallest.minimumReceiveBuffers = 1
        smallest.maximumReceiveBuffers = 1
        try await withConfiguredReactor(backend, smallest) { reactor in
            try await streamOnConnections(reactor, count: 8, size: 2000, handlers: false)
            try await streamOnConnections(reactor, count: 8, size: 2000, handlers: true)
            if backend == .ioUring {
                // What the sizes are for: the kernel held completions back, and the ring ran dry.
                #expect(reactor.completionOverflows.load(ordering: .relaxed) > 0)
                #expect(await poolFigures(reactor).exhaustions > 0)
            }
        }
    }
}
}
