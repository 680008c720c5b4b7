import Socket2
import Socket2Async
import Testing

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
