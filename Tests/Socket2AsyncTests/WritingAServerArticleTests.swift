// Every snippet of the DocC article "Writing a server" (Socket2Async.docc/WritingAServer.md),
// as written there, and tests that run them on both backends. Change both together.
import Socket2
import Socket2Async
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Snippets of the article

/// The keys and values: an actor whose executor is a reactor, so that its methods run on that
/// reactor's thread.
actor KeyValueStore {
    let reactor: Reactor
    private var values: [String: String] = [:]

    init(reactor: Reactor) { self.reactor = reactor }

    nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }

    func value(for key: String) -> String? { values[key] }
    func set(_ key: String, to value: String) { values[key] = value }
}

/// The answer to one request line (`GET key`, `SET key value`); nil for `QUIT`.
func respond(to line: String, store: KeyValueStore) async -> String? {
    let words = line.split(separator: " ", maxSplits: 2).map(String.init)
    switch (words.first, words.count) {
    case ("GET", 2):
        return await store.value(for: words[1]).map { "VALUE \($0)" } ?? "NOT FOUND"
    case ("SET", 3):
        await store.set(words[1], to: words[2])
        return "OK"
    case ("QUIT", 1):
        return nil
    default:
        return "ERR unknown command"
    }
}

/// One connection: a request a line, an idle client closed after `idleTimeout`, a goodbye when
/// the server shuts down.
func handle(_ connection: AsyncSocket, store: KeyValueStore, idleTimeout: Duration = .seconds(30)) async {
    defer { connection.closeInBackground() }
    let reader = BufferedReader(connection)
    let shutdown = ShutdownSignal.current ?? ShutdownSignal()
    do {
        // On a graceful shutdown, a read waiting for the next request sees the end of input.
        try await shutdown.endingReads(of: connection) {
            while true {
                let line = try await AsyncSocket.withTimeout(idleTimeout) {
                    try await reader.readLine(maxLength: 1024)
                }
                guard let line, let reply = await respond(to: line, store: store) else { return }
                try await connection.sendAll(reply + "\n")
            }
        }
        try await connection.sendAll("BYE\n")
    } catch BufferedReaderError.tooLong(limit: _) {
        try? await connection.sendAll("ERR line too long\n")
        try? await connection.closeLingering()  // the client is still sending: let it read this
    } catch let error as Errno where error == .timedOut {
        try? await connection.sendAll("ERR idle for too long\n")
    } catch {
        // The client went away, or the grace period ended (CancellationError).
    }
}

/// Serves until the server shuts down, with one store for the whole group.
func serveKeyValues(on server: Server) async throws {
    let store = KeyValueStore(reactor: server.group.reactors[0])
    try await server.run { connection, _ in
        await handle(connection, store: store)
    }
}

/// The program: listens, serves, and shuts down gracefully on a signal.
func runKeyValueServer(
    on address: SockAddr, stopOn signals: Set<SignalNumber> = [.terminate, .interrupt],
    ready: (SockAddr) -> Void = { _ in }
) async throws {
    let group = try ReactorGroup()
    defer { group.shutdown() }
    let server = try group.listen(on: address)  // a port in use fails here: EADDRINUSE
    let stop = try Signals(signals)
    let watcher = Task {
        for try await _ in stop {
            server.shutdown(gracePeriod: .seconds(5))  // stop accepting; 5 s for open requests
            return
        }
    }
    defer { watcher.cancel() }
    ready(server.localAddress)
    try await serveKeyValues(on: server)
}

/// A client: connects by name, sends requests, reads the replies.
func askKeyValueServer(port: UInt16, _ requests: [String]) async throws -> [String] {
    let connection = try await AsyncSocket.connect(host: "localhost", port: port, timeout: .seconds(5))
    defer { connection.closeInBackground() }
    let reader = BufferedReader(connection)
    var replies: [String] = []
    for request in requests {
        try await connection.sendAll(request + "\n")
        guard let reply = try await reader.readLine() else { break }
        replies.append(reply)
    }
    return replies
}

/// A UDP responder: answers each datagram with its bytes reversed.
func runUDPResponder(on address: SockAddr, reactor: Reactor, ready: (SockAddr) -> Void = { _ in }) async throws {
    let socket = try AsyncSocket(domain: address.domain(), type: .dgram, reactor: reactor)
    try socket.bind(address)  // no SO_REUSEADDR: a second responder fails with EADDRINUSE
    ready(try socket.localAddr())
    for try await datagram in socket.datagrams(maxSize: 2048) {
        _ = try await socket.sendTo(Array(datagram.bytes.reversed()), to: datagram.address)
    }
}

// MARK: - Tests

extension AsyncTests {
    /// The article's server, client and signal handling, end to end.
    @Test func writingAServerArticleKeyValueServer() async throws {
        try await withTimeout {
            let ready = AsyncStream<SockAddr>.makeStream()
            let server = Task {
                try await runKeyValueServer(on: loopback(), stopOn: [.user1]) { ready.continuation.yield($0) }
            }
            var addresses = ready.stream.makeAsyncIterator()
            let port = try #require(await addresses.next()?.asSocketIpv4()?.port)
            #expect(try await askKeyValueServer(port: port, ["SET greeting hello", "GET greeting", "GET other", "HELLO"])
                    == ["OK", "VALUE hello", "NOT FOUND", "ERR unknown command"])
            // Another connection, maybe on another reactor, sees the same store.
            #expect(try await askKeyValueServer(port: port, ["GET greeting", "QUIT"]) == ["VALUE hello", "BYE"])
            // Over-long input: the error reaches the client, which is still sending.
            #expect(try await askKeyValueServer(port: port, [String(repeating: "x", count: 5000)])
                    == ["ERR line too long"])
            // A second server on the port fails at once.
            await #expect(throws: Errno.addressInUse) {
                try await runKeyValueServer(on: loopback(port), stopOn: [.user1])
            }
            // A client in the middle of its session when the signal comes gets its goodbye.
            let client = try await AsyncSocket.connect(host: "localhost", port: port)
            let reader = BufferedReader(client)
            try await client.sendAll("SET a 1\n")
            #expect(try await reader.readLine() == "OK")
            kill(getpid(), SIGUSR1)
            try await server.value  // a graceful stop returns normally
            try await client.sendAll("GET a\n")
            var rest: [String] = []
            while let line = try? await reader.readLine() { rest.append(line) }
            #expect(rest == ["VALUE 1", "BYE"] || rest == ["BYE"])
            try await client.close()
        }
    }

    /// The article's listener options.
    @Test func writingAServerArticleOptions() async throws {
        let group = try ReactorGroup(count: 1, backend: .epoll)
        defer { group.shutdown() }
        let options = ServerOptions(backlog: 4096) { socket in
            try socket.setTcpFastopen(256)
        }
        let server = try group.listen(on: loopback(), options: options)
        #expect(server.options.backlog == 4096)
    }

    /// The article's idle time-out, on both backends.
    @Test(arguments: backends)
    func writingAServerArticleIdleTimeout(backend: Reactor.Backend) async throws {
        let group = try ReactorGroup(count: 1, backend: backend)
        defer { group.shutdown() }
        try await withTimeout {
            let server = try group.listen(on: loopback())
            let store = KeyValueStore(reactor: group.reactors[0])
            let running = Task {
                try await server.run { connection, _ in
                    await handle(connection, store: store, idleTimeout: .milliseconds(50))
                }
            }
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: group.reactors[0])
            try await client.connect(server.localAddress)
            let reader = BufferedReader(client)
            #expect(try await reader.readLine() == "ERR idle for too long")
            #expect(try await reader.readLine() == nil)
            try await client.close()
            server.shutdown()
            try await running.value
        }
    }

    /// The article's UDP responder, on both backends; a second one on its port fails.
    @Test(arguments: backends)
    func writingAServerArticleUDPResponder(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let ready = AsyncStream<SockAddr>.makeStream()
            let responder = Task { try await runUDPResponder(on: loopback(), reactor: reactor) { ready.continuation.yield($0) } }
            var addresses = ready.stream.makeAsyncIterator()
            let address = try #require(await addresses.next())
            await #expect(throws: Errno.addressInUse) { try await runUDPResponder(on: address, reactor: reactor) }
            let (client, _) = try udpSocket(reactor)
            _ = try await client.sendTo(Array("abc".utf8), to: address)
            #expect(try await client.recvFrom(maxCount: 64).bytes == Array("cba".utf8))
            responder.cancel()
            _ = try? await responder.value
        }
    }
}
