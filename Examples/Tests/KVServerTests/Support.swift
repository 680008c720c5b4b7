import KVServer
import Socket2
import Socket2Async
import Synchronization
import Testing

let backends: [Reactor.Backend] = [.epoll, .ioUring]

/// A test's deadline passed.
struct TimedOut: Error {}

/// Runs `body`, failing with `TimedOut` after `seconds` instead of hanging.
func withDeadline<T: Sendable>(_ seconds: Int = 30, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { race in
        race.addTask { try await body() }
        race.addTask { try? await Task.sleep(for: .seconds(seconds)); return nil }
        defer { race.cancelAll() }
        if let finished = try await race.next(), let value = finished { return value }
        throw TimedOut()
    }
}

/// A key-value server on a group of two reactors of `backend`, serving on 127.0.0.1 while
/// `body` runs, then stopped.
func withKVServer(
    _ backend: Reactor.Backend, _ configuration: KVServer.Configuration = KVServer.Configuration(),
    beforeCommand: @escaping @Sendable (Command) async -> Void = { _ in },
    _ body: @escaping @Sendable (Server, Reactor) async throws -> Void
) async throws {
    let group = try ReactorGroup(count: 2, backend: backend)
    let clients = try Reactor(backend: backend)
    defer { group.shutdown(); clients.shutdown() }
    let kv = KVServer(configuration: configuration, beforeCommand: beforeCommand)
    let server = try kv.listen(on: SockAddr(SocketAddrV4(.localhost, 0)), group: group)
    try await withDeadline {
        try await withThrowingTaskGroup { tasks in
            tasks.addTask { try await kv.run(server) }
            try await body(server, clients)
            server.shutdown(gracePeriod: .zero)
            try await tasks.waitForAll()
        }
    }
}

/// A client connection that sends request lines and reads reply lines (one task uses it).
final class Client {
    let socket: AsyncSocket
    let reader: BufferedReader

    init(_ server: Server, _ reactor: Reactor) async throws {
        socket = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
        reader = BufferedReader(socket)
        try await socket.connect(server.localAddress)
    }

    /// Sends `line` and returns the reply line (nil at the end of the stream).
    func request(_ line: String) async throws -> String? {
        try await socket.sendAll(line + "\n")
        return try await reader.readLine()
    }

    deinit { socket.closeInBackground() }
}
