import KVServer
import Socket2
import Socket2Async
import Synchronization
import Testing

@Suite struct KVServerTests {
    @Test(arguments: backends)
    func twoHundredClientsTwentyRequestsEach(_ backend: Reactor.Backend) async throws {
        try await withKVServer(backend) { server, reactor in
            try await withThrowingTaskGroup { clients in
                for client in 0..<200 {
                    clients.addTask(executorPreference: reactor) {
                        let connection = try await Client(server, reactor)
                        for request in 0..<5 {
                            let key = "k\(client)-\(request)", value = "value \(client) \(request)"
                            #expect(try await connection.request("SET \(key) \(value)") == "OK")
                            #expect(try await connection.request("GET \(key)") == "VALUE \(value)")
                            #expect(try await connection.request("DEL \(key)") == "OK")
                            #expect(try await connection.request("GET \(key)") == "NOT_FOUND")
                        }
                    }
                }
                try await clients.waitForAll()
            }
            // One store for the whole group: a key set through one connection is seen by every
            // other, whichever reactor serves it.
            let first = try await Client(server, reactor)
            #expect(try await first.request("SET shared yes") == "OK")
            for _ in 0..<4 {
                #expect(try await Client(server, reactor).request("GET shared") == "VALUE yes")
            }
        }
    }

    @Test(arguments: backends)
    func badRequestsGetErrorsAndTheConnectionGoesOn(_ backend: Reactor.Backend) async throws {
        try await withKVServer(backend) { server, reactor in
            let client = try await Client(server, reactor)
            #expect(try await client.request("PUT a 1") == "ERR unknown command")
            #expect(try await client.request("") == "ERR unknown command")
            #expect(try await client.request("SET a") == "ERR wrong number of arguments for SET")
            #expect(try await client.request("GET a b") == "ERR a key is one word")
            #expect(try await client.request("SET a 1\r") == "OK")  // CRLF is accepted
            #expect(try await client.request("GET a") == "VALUE 1")
            #expect(try await client.request("QUIT") == "OK")
            #expect(try await client.reader.readLine() == nil)
        }
    }

    /// The client sends an over-long line and goes on sending without reading: the server's
    /// reply must still arrive, followed by the end of the stream — not a reset.
    @Test(arguments: backends)
    func anOverLongLineIsAnsweredBeforeTheClose(_ backend: Reactor.Backend) async throws {
        let configuration = KVServer.Configuration(maxLineLength: 100)
        try await withKVServer(backend, configuration) { server, reactor in
            let client = try await Client(server, reactor)
            try await client.socket.sendAll("SET key " + String(repeating: "x", count: 200) + "\n")
            try await client.socket.sendAll([UInt8](repeating: UInt8(ascii: "y"), count: 256 * 1024))
            #expect(try await client.reader.readLine() == "ERR line too long")
            #expect(try await client.reader.readLine() == nil)
        }
    }

    @Test(arguments: backends)
    func anIdleClientIsClosed(_ backend: Reactor.Backend) async throws {
        let configuration = KVServer.Configuration(idleTimeout: .milliseconds(300))
        try await withKVServer(backend, configuration) { server, reactor in
            let client = try await Client(server, reactor)
            #expect(try await client.request("SET a 1") == "OK")
            #expect(try await client.reader.readLine() == nil)  // no request for 300 ms: closed
        }
    }

    /// `serve` outside a `Server` (no shutdown signal): the connection is served as usual.
    @Test(arguments: backends)
    func aConnectionServedWithoutAServer(_ backend: Reactor.Backend) async throws {
        let reactor = try Reactor(backend: backend)
        defer { reactor.shutdown() }
        try await withDeadline {
            let pair = try Socket.pair(domain: .unix, type: .stream)
            let serverSide = try AsyncSocket(pair.first, reactor: reactor)
            let clientSide = try AsyncSocket(pair.second, reactor: reactor)
            async let served: Void = KVServer().serve(serverSide)
            let replies = BufferedReader(clientSide)
            // One request at a time, so that the server's reads wait.
            for (request, reply) in [("SET a 1", "OK"), ("GET a", "VALUE 1"), ("QUIT", "OK")] {
                try await clientSide.sendAll(request + "\n")
                #expect(try await replies.readLine() == reply)
            }
            #expect(try await replies.readLine() == nil)
            await served
            try await clientSide.close()
        }
    }

    /// A stop while a request is being served: the server stops accepting, closes the idle
    /// connection, answers the request in hand, and `run` returns normally.
    @Test(arguments: backends)
    func aGracefulStopLetsTheRequestInFlightFinish(_ backend: Reactor.Backend) async throws {
        let (arrived, arrival) = AsyncStream.makeStream(of: Void.self)
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let group = try ReactorGroup(count: 2, backend: backend)
        let reactor = try Reactor(backend: backend)
        defer { group.shutdown(); reactor.shutdown() }
        let kv = KVServer(configuration: KVServer.Configuration(gracePeriod: .seconds(30))) { command in
            guard command == .set(key: "slow", value: "1") else { return }
            arrival.yield()
            for await _ in released { break }
        }
        let server = try kv.listen(on: SockAddr(SocketAddrV4(.localhost, 0)), group: group)
        try await withDeadline {
            async let serving: Void = kv.run(server)
            let idle = try await Client(server, reactor)
            #expect(try await idle.request("SET a 1") == "OK")
            let busy = try await Client(server, reactor)
            try await busy.socket.sendAll("SET slow 1\n")
            for await _ in arrived { break }

            server.shutdown()
            #expect(try await idle.reader.readLine() == nil)   // the idle connection is closed
            release.yield()
            #expect(try await busy.reader.readLine() == "OK")  // the request in flight is answered
            #expect(try await busy.reader.readLine() == nil)
            try await serving                                   // a normal return
            #expect(kv.store.get("slow") == "1")

            let late = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            await #expect(throws: Errno.connectionRefused) { try await late.connect(server.localAddress) }
            try await late.close()
        }
    }
}
