import Socket2
import Socket2Async
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
    /// The README's async example, as written there (with the backend chosen by the test), so
    /// that it stays true on both backends.
    @Test(arguments: backends)
    func readmeAsyncExampleWorks(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let listener = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            try listener.setReuseAddress(true)
            try listener.bind(SockAddr(SocketAddrV4(.localhost, 0)))
            try listener.listen(1024)
            let address = try listener.localAddr()

            let server = Task(executorPreference: reactor) {
                for try await (connection, _) in listener.incoming {
                    Task(executorPreference: reactor) {
                        var unsent: [UInt8] = []
                        // `receive` lends the bytes from the reactor's memory: no buffer per connection.
                        while let count = try? await connection.receive({ bytes in
                            bytes.withUnsafeBytes { buffer in
                                // Echo straight from them; copy only what the kernel cannot take now.
                                let sent = (try? connection.sendWithFlags(buffer, flags: .noSignal)) ?? 0
                                unsent += buffer[sent...]
                            }
                            return bytes.byteCount
                        }), count > 0 {
                            if !unsent.isEmpty {
                                try await connection.sendAll(unsent)
                                unsent.removeAll()
                            }
                        }
                        try? await connection.close()
                    }
                }
            }
            defer { server.cancel() }

            let reply = try await Task(executorPreference: reactor) {
                let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
                try await client.connect(address)
                try await client.sendAll(Array("hello".utf8))
                var reply: [UInt8] = []
                while reply.count < 5 {
                    let bytes = try await client.recv(maxCount: 64)
                    if bytes.isEmpty { break }
                    reply += bytes
                }
                try await client.close()
                return reply
            }.value
            #expect(String(decoding: reply, as: UTF8.self) == "hello")
        }
    }
}

/// The README's read-handler echo, as written there.
func readmeHandlerEcho(_ connection: AsyncSocket) async {
    do {
        try await connection.startReading { bytes, _ in
            if bytes.byteCount == 0 {                 // the end of the stream, or an error
                connection.closeInBackground()
                return .stopReading
            }
            var unsent: [UInt8] = []
            bytes.withUnsafeBytes { buffer in
                let sent = (try? connection.sendWithFlags(buffer, flags: .noSignal)) ?? 0
                unsent += buffer[sent...]
            }
            if unsent.isEmpty { return .keepReading }
            // The kernel cannot take it all now: a task waits for room; input waits meanwhile.
            Task(executorPreference: connection.reactor) {
                do { try await connection.sendAll(unsent) } catch { return connection.closeInBackground() }
                await readmeHandlerEcho(connection)
            }
            return .stopReading
        }
    } catch {
        connection.closeInBackground()
    }
}

extension AsyncTests {
    @Test("The README's read-handler echo returns 2 MiB sent faster than it is read back", arguments: backends)
    func readmeHandlerEchoWorks(backend: Reactor.Backend) async throws {
        try await withReactor(backend, timeout: 60) { reactor in
            let (client, server) = try await tcpPair(reactor)
            // Small buffers: the echo's sends fill the kernel's room and take the task path.
            setBufferSize(client, SO_RCVBUF, 16 * 1024)
            setBufferSize(server, SO_SNDBUF, 16 * 1024)
            await readmeHandlerEcho(server)
            let message = pattern(2 << 20, seed: 3)
            async let sent: Void = client.sendAll(message)
            #expect(try await recvExactly(client, message.count) == message)
            try await sent
            try await client.shutdown(.write)
            #expect(try await client.recv(maxCount: 16).isEmpty)   // the echo closed its side
            try await client.close()
        }
    }
}
