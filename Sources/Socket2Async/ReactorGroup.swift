#if canImport(Glibc)
import Glibc
#endif
import Socket2
import Synchronization

/// Several reactors, one per core by default: a server scales across cores with one
/// `SO_REUSEPORT` listener per reactor and each connection's task on its listener's reactor.
public final class ReactorGroup: Sendable {
    /// The reactors, each with its own thread.
    public let reactors: [Reactor]
    private let counter = Atomic<UInt>(0)

    /// One reactor per online processor (`sysconf(_SC_NPROCESSORS_ONLN)`).
    public static var defaultCount: Int { onlineProcessorCount() }

    /// Starts `count` reactors (default: one per online processor) with `backend`.
    public init(count: Int = ReactorGroup.defaultCount, backend: Reactor.Backend = .automatic) throws {
        var reactors: [Reactor] = []
        do {
            for _ in 0..<max(count, 1) { reactors.append(try Reactor(backend: backend)) }
        } catch {
            for reactor in reactors { reactor.shutdown() }
            throw error
        }
        self.reactors = reactors
    }

    /// The next reactor, round robin.
    public func next() -> Reactor {
        reactors[Int(counter.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(reactors.count))]
    }

    /// Shuts every reactor down (see ``Reactor/shutdown()``).
    public func shutdown() {
        for reactor in reactors { reactor.shutdown() }
    }

    /// Serves TCP connections on `address`: binds one listener per reactor (`SO_REUSEADDR`,
    /// `SO_REUSEPORT`; port 0 picks one port for all) and runs `handler` for each accepted
    /// connection as a child task whose executor preference is the connection's reactor.
    ///
    /// Runs until the calling task is cancelled (then it closes the listeners, waits for the
    /// handlers, which see the cancellation, and throws `CancellationError`), or until a listener
    /// fails (the error is thrown).
    public nonisolated(nonsending) func serve(
        on address: SockAddr, backlog: CInt = 1024,
        _ handler: @escaping @Sendable (AsyncSocket, SockAddr) async -> Void
    ) async throws {
        try await serve(on: address, backlog: backlog, ready: { _ in }, handler)
    }

    /// `serve(on:backlog:_:)`, telling `ready` the bound address once every listener listens —
    /// the port the kernel picked when `address` has port 0.
    public nonisolated(nonsending) func serve(
        on address: SockAddr, backlog: CInt,
        ready: (SockAddr) -> Void,
        _ handler: @escaping @Sendable (AsyncSocket, SockAddr) async -> Void
    ) async throws {
        var listeners: [AsyncSocket] = []
        var bound = address
        for reactor in reactors {
            let listener = try AsyncSocket(domain: address.domain(), type: .stream, reactor: reactor)
            listeners.append(listener)
            try listener.setReuseAddress(true)
            try listener.setReusePort(true)
            try listener.bind(bound)
            try listener.listen(backlog)
            bound = try listener.localAddr()
        }
        ready(bound)
        let all = listeners
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for listener in all {
                    let reactor = listener.reactor
                    group.addTask(executorPreference: reactor) {
                        try await withThrowingDiscardingTaskGroup { connections in
                            for try await (connection, peer) in listener.incoming {
                                connections.addTask(executorPreference: reactor) {
                                    await handler(connection, peer)
                                }
                            }
                        }
                    }
                }
            }
        } catch {
            for listener in all { try? await listener.close() }
            throw error
        }
        for listener in all { try? await listener.close() }
    }
}
