import Socket2
import Socket2Async

/// The key-value server: one task per connection on a `ReactorGroup`, a ``Store`` they all
/// share, an idle time-out per connection and a graceful stop.
public final class KVServer: Sendable {
    /// Limits and time-outs.
    public struct Configuration: Sendable {
        /// The longest request line, without its line ending; a longer one is answered with
        /// `ERR line too long` and the connection closed.
        public var maxLineLength: Int
        /// How long a connection may wait for its next request before it is closed.
        public var idleTimeout: Duration
        /// How long open requests may run after a stop before they are cancelled.
        public var gracePeriod: Duration

        public init(maxLineLength: Int = 1024, idleTimeout: Duration = .seconds(60), gracePeriod: Duration = .seconds(10)) {
            self.maxLineLength = maxLineLength
            self.idleTimeout = idleTimeout
            self.gracePeriod = gracePeriod
        }
    }

    public let store: Store
    public let configuration: Configuration
    /// Runs before each command (the tests hold a request in flight with it).
    private let beforeCommand: @Sendable (Command) async -> Void

    public init(
        store: Store = Store(), configuration: Configuration = Configuration(),
        beforeCommand: @escaping @Sendable (Command) async -> Void = { _ in }
    ) {
        self.store = store
        self.configuration = configuration
        self.beforeCommand = beforeCommand
    }

    /// Binds to `address` on `group` (bind errors are thrown here); `run` serves.
    public func listen(on address: SockAddr, group: ReactorGroup) throws -> Server {
        try group.listen(on: address, options: ServerOptions(gracePeriod: configuration.gracePeriod))
    }

    /// Serves on `server` until it is shut down: then open requests are answered, idle
    /// connections closed, and this returns once every connection has ended (or the grace
    /// period has passed).
    public func run(_ server: Server) async throws {
        try await server.run { connection, _ in await self.serve(connection) }
    }

    /// Serves on `server` until the process receives SIGINT or SIGTERM, then stops gracefully.
    public func runUntilSignalled(_ server: Server, onSignal: @escaping @Sendable (SignalNumber) -> Void = { _ in }) async throws {
        let signals = try Signals([.interrupt, .terminate], reactor: server.group.reactors[0])
        let watcher = Task {
            for try await signal in signals {
                onSignal(signal)
                server.shutdown()
                return
            }
        }
        defer { watcher.cancel() }
        try await run(server)
        try? await signals.close()
    }

    /// Serves one connection until the client quits or ends the stream, stays idle too long,
    /// sends an over-long line, or the server stops.
    public func serve(_ connection: AsyncSocket) async {
        defer { connection.closeInBackground() }
        // Answers go out at once: requests that arrive in two reads are answered by two writes,
        // which Nagle's algorithm would hold back for the client's delayed acknowledgement.
        try? connection.setTcpNodelay(true)
        // A graceful stop must also end a connection that waits idle for its next request: its
        // read is woken by shutting down reading (the read returns the end of the stream).
        let shutdownSignal = ShutdownSignal.current
        let shutdownWatcher = Task(executorPreference: connection.reactor) {
            guard let shutdownSignal else { return }  // served outside a `Server`
            await shutdownSignal.wait()
            if !Task.isCancelled { try? await connection.shutdown(.read) }
        }
        defer { shutdownWatcher.cancel() }
        let reader = BufferedReader(connection)
        let writer = BufferedWriter(connection)
        do {
            while shutdownSignal?.isTriggered != true {
                let line: String?
                do {
                    line = try await AsyncSocket.withTimeout(configuration.idleTimeout) {
                        try await reader.readLine(maxLength: configuration.maxLineLength, allowingCRLF: true)
                    }
                } catch BufferedReaderError.tooLong {
                    try await writer.write("ERR line too long\n")
                    try await writer.flush()
                    try await connection.closeLingering()
                    return
                }
                guard let line else { break }
                let (reply, quit) = await execute(line)
                try await writer.write(reply)
                if quit { break }
                // One send for the replies to requests that arrived together.
                if reader.bufferedByteCount == 0 { try await writer.flush() }
            }
            try await writer.flush()
        } catch {
            // The idle time-out (Errno.timedOut), a reset, the end of the stream inside a line,
            // a cancellation at the end of the grace period: the connection is closed.
        }
    }

    /// The reply to one request line (with its line ending), and whether the client quits.
    func execute(_ line: String) async -> (reply: String, quit: Bool) {
        let command: Command
        do {
            command = try Command(parsing: line[...])
        } catch {
            return ("ERR \(error)\n", false)
        }
        await beforeCommand(command)
        switch command {
        case .get(let key):
            guard let value = store.get(key) else { return ("NOT_FOUND\n", false) }
            return ("VALUE \(value)\n", false)
        case .set(let key, let value):
            store.set(key, value)
            return ("OK\n", false)
        case .delete(let key):
            return (store.delete(key) ? "OK\n" : "NOT_FOUND\n", false)
        case .quit:
            return ("OK\n", true)
        }
    }
}
