import ServiceLifecycle
import Socket2
import Socket2Async

/// A Socket2Async ``Server`` as a swift-service-lifecycle `Service`: run it in a
/// `ServiceGroup`, and the group's graceful shutdown (on `SIGTERM`/`SIGINT`, as the group's
/// configuration says) shuts the server down gracefully — it stops accepting, its handlers see
/// ``ShutdownSignal/current`` and may finish within the server's grace period — and `run()`
/// returns normally.
///
/// ```swift
/// let group = try ReactorGroup()
/// let server = try group.listen(on: address)        // bind errors here, before the group runs
/// let services = ServiceGroup(configuration: .init(
///     services: [ServerService(server) { connection, peer in … }],
///     gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await services.run()
/// ```
///
/// When the service group cancels the service (its own time-out passed, or another service
/// failed), the handlers are cancelled and `run()` throws `CancellationError`.
public struct ServerService: Service {
    /// The server this service runs.
    public let server: Server
    private let handler: @Sendable (AsyncSocket, SockAddr) async -> Void

    /// A service that runs `server` with `handler` for each connection.
    public init(_ server: Server, handler: @escaping @Sendable (AsyncSocket, SockAddr) async -> Void) {
        self.server = server
        self.handler = handler
    }

    /// Runs the server (``Server/run(_:)``) until the service group's graceful shutdown, which
    /// becomes ``Server/shutdown(gracePeriod:)`` with the server's grace period.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.run(handler)
        } onGracefulShutdown: { [server] in
            server.shutdown()
        }
    }
}
