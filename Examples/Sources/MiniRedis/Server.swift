import Socket2
import Socket2Async

/// mini-redis: a Redis-compatible server (RESP2, a subset of the commands) on a
/// ``Socket2Async/ReactorGroup``, one ``Shard`` of the key space per reactor.
public final class MiniRedisServer: Sendable {
    public let group: ReactorGroup
    public let shards: [Shard]
    public let configuration: Configuration

    /// Starts `threads` reactors of `backend` and a shard on each.
    public init(threads: Int = 1, backend: Reactor.Backend = .automatic, configuration: Configuration = Configuration()) async throws {
        group = try ReactorGroup(count: threads, backend: backend)
        self.configuration = configuration
        shards = group.reactors.enumerated().map { Shard(reactor: $1, index: $0, configuration: configuration) }
        for shard in shards { await shard.join(shards) }
    }

    /// The reactors' backend (the one `.automatic` chose).
    public var backend: Reactor.Backend { group.reactors[0].backend }

    /// Serves on `address` until the server is shut down gracefully (``Server/shutdown(gracePeriod:)``
    /// on the server `ready` gets: it stops accepting and lets connections finish within the
    /// grace period) or the calling task is cancelled (then throws `CancellationError`). `ready`
    /// gets the listening server (its `localAddress` has the port the kernel chose for port 0).
    public func serve(on address: SockAddr, ready: (Server) -> Void = { _ in }) async throws {
        let shards = self.shards
        try await withThrowingDiscardingTaskGroup { tasks in
            for shard in shards {
                tasks.addTask(executorPreference: shard.reactor) { await shard.sweepExpiredKeys() }
            }
            defer { tasks.cancelAll() }
            try await group.serve(on: address, ready: ready) { connection, _ in
                let reactor = connection.reactor
                let shard = shards.first { $0.reactor === reactor }!
                await shard.serve(connection)
            }
        }
    }

    /// Stops the reactors (after `serve` returned).
    public func shutdown() { group.shutdown() }
}
