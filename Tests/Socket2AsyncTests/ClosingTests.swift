import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Everything a client reads until the end of the stream, or until an error, which is returned
/// beside the bytes.
func readToEnd(_ socket: AsyncSocket) async -> (bytes: [UInt8], error: (any Error)?) {
    var bytes: [UInt8] = []
    do {
        while true {
            let chunk = try await socket.recv(maxCount: 64 * 1024)
            if chunk.isEmpty { return (bytes, nil) }
            bytes += chunk
        }
    } catch {
        return (bytes, error)
    }
}

extension AsyncTests {
@Suite("Closing")
struct ClosingTests {
    static let finalReply = Array("ERR line too long\n".utf8)

    /// A connection whose server read part of an over-long line (32 KiB unread) and then
    /// answers with earlier replies the client has not read yet (they wait in the server's send
    /// queue: the client's receive buffer is small) and a final error, and closes with `close`.
    /// Returns the client and the server's task.
    static func serverClosingWithUnreadInput(
        _ reactor: Reactor, _ close: @escaping @Sendable (AsyncSocket) async throws -> Void
    ) async throws -> (client: AsyncSocket, server: AsyncSocket, done: Task<Void, any Error>) {
        let (client, server) = try await tcpPair(reactor)
        setBufferSize(client, SO_RCVBUF, 4096)
        setBufferSize(server, SO_SNDBUF, 1 << 20)
        try await client.sendAll([UInt8](repeating: UInt8(ascii: "x"), count: 32 * 1024))
        let done = Task {
            _ = try await server.recv(maxCount: 16)
            try await server.sendAll([UInt8](repeating: UInt8(ascii: "."), count: 64 * 1024) + finalReply)
            try await close(server)
        }
        return (client, server, done)
    }

    @Test("A plain close with unread input resets the connection: the final reply is lost", arguments: backends)
    func plainCloseLosesReply(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, _, serverDone) = try await Self.serverClosingWithUnreadInput(reactor) { try await $0.close() }
            try await serverDone.value
            let (bytes, error) = await readToEnd(client)
            try await client.close()
            #expect(error as? Errno == .connectionReset, "\(String(describing: error))")
            #expect(bytes.count < 64 * 1024)
            #expect(!bytes.ends(with: Self.finalReply))
        }
    }

    @Test("A lingering close delivers the final reply to a peer that is still sending", arguments: backends)
    func lingeringCloseDeliversReply(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server, serverDone) = try await Self.serverClosingWithUnreadInput(reactor) {
                try await $0.closeLingering(timeout: .seconds(30))
            }
            // The client keeps sending while it reads: the server discards it.
            try await client.sendAll([UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024))
            let (bytes, error) = await readToEnd(client)
            #expect(error == nil, "\(String(describing: error))")
            #expect(bytes.count == 64 * 1024 + Self.finalReply.count)
            #expect(bytes.ends(with: Self.finalReply))
            // The server's close ends when the client closes (not at its time-out).
            try await client.close()
            try await serverDone.value
            #expect(server.rawDescriptor == -1)
        }
    }

    @Test("A lingering close ends at its time-out and after its byte limit", arguments: backends)
    func lingeringCloseIsBounded(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            // A peer that neither sends nor closes: the time-out ends the wait.
            let (client, server) = try await tcpPair(reactor)
            try await server.closeLingering(timeout: .milliseconds(20))
            #expect(server.rawDescriptor == -1)
            #expect(try await client.recv(maxCount: 8) == [])  // the peer saw the end of the stream
            try await client.close()

            // A peer that sends more than the limit: the close does not wait for the time-out.
            let (client2, server2) = try await tcpPair(reactor)
            try await client2.sendAll([UInt8](repeating: 1, count: 1000))
            try await server2.closeLingering(timeout: .seconds(3600), discardingAtMost: 10)
            #expect(server2.rawDescriptor == -1)
            try await client2.close()
        }
    }

    @Test("A lingering close refuses negative limits and leaves the socket open", arguments: backends)
    func lingeringCloseBadInput(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            await #expect(throws: Errno.invalidArgument) { try await server.closeLingering(timeout: .seconds(-1)) }
            await #expect(throws: Errno.invalidArgument) { try await server.closeLingering(discardingAtMost: -1) }
            #expect(server.rawDescriptor >= 0)
            try await client.sendAll([7])
            #expect(try await server.recv(maxCount: 1) == [7])
            // A datagram socket closes at once.
            let (udp, _) = try udpSocket(reactor)
            try await udp.closeLingering()
            #expect(udp.rawDescriptor == -1)
            try await client.close()
            try await server.close()
        }
    }

    @Test("closeInBackground in a defer: pending operations end, calls after it fail, the peer sees the end", arguments: backends)
    func closeInBackground(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            // From a task on the reactor thread and from one elsewhere.
            for onReactorThread in [true, false] {
                let (client, server) = try await tcpPair(reactor)
                let pending = Task(executorPreference: onReactorThread ? reactor : nil) {
                    try await server.recv(maxCount: 8)
                }
                await waitUntilPending(reactor)
                let closer: @Sendable () async throws -> Void = {
                    defer { server.closeInBackground() }
                    #expect(server.rawDescriptor >= 0)
                }
                if onReactorThread {
                    try await Task(executorPreference: reactor) { try await closer() }.value
                } else {
                    try await Task.detached { try await closer() }.value
                }
                #expect(server.rawDescriptor == -1)
                await #expect(throws: ReactorError.socketClosed) { try await pending.value }
                await #expect(throws: ReactorError.socketClosed) { try await server.recv(maxCount: 8) }
                await #expect(throws: ReactorError.socketClosed) { try await server.send([1]) }
                server.closeInBackground()  // again: nothing
                try await server.close()  // nothing either
                // The descriptor is closed: the peer reads the end of the stream.
                #expect(try await client.recv(maxCount: 8) == [])
                try await client.close()
            }
        }
    }

    @Test("The snippets of the ConnectingAndClosing article", arguments: backends)
    func articleSnippets(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let port = port(of: address)
            let addresses = try await AsyncSocket.resolve(host: "localhost", service: "\(port)", type: .stream)
            #expect(addresses.map(\.address) == [address])
            // The article's lines, on the shared reactor as written there.
            let connection = try await AsyncSocket.connect(host: "localhost", port: port, timeout: .seconds(5))
            let second = try await { () async throws -> AsyncSocket in
                let resolver = NameResolver.fixed([SockAddr(SocketAddrV6(.localhost, port)),
                                                   SockAddr(SocketAddrV4(.localhost, port))])
                let connection = try await AsyncSocket.connect(host: "db", port: port, resolver: resolver)
                return connection
            }()

            func handle(_ connection: AsyncSocket) async throws {
                defer { connection.closeInBackground() }   // whatever happens below
                // ...
                try await connection.sendAll(Array("ERR line too long\n".utf8))
                try await connection.closeLingering(timeout: .seconds(2))
            }
            let (accepted, _) = try await listener.accept()
            async let handled: Void = handle(accepted)
            #expect(await readToEnd(connection).bytes == Self.finalReply)
            try await connection.close()
            try await handled
            for socket in [second, listener] { try await socket.close() }
        }
    }

    @Test("closeInBackground on a stopped reactor closes the descriptor at once")
    func closeInBackgroundAfterShutdown() async throws {
        let reactor = try Reactor(backend: .epoll)
        let (client, server) = try await tcpPair(reactor)
        reactor.shutdown()
        server.closeInBackground()
        #expect(server.rawDescriptor == -1)
        // Blocking read of the synchronous core: the peer sees the end of the stream.
        let peer = SockRef(rawDescriptor: client.rawDescriptor)
        try peer.setNonblocking(false)
        try peer.setReadTimeout(.seconds(10))
        var byte: UInt8 = 0
        let count = try withUnsafeMutableBytes(of: &byte) { try peer.recv(into: $0) }
        #expect(count == 0)
    }
}
}

extension Array where Element: Equatable {
    func ends(with suffix: [Element]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
