import Socket2
import Socket2Async
import Testing

// The snippets of the DocC article "Buffered reading and writing" (BufferedIO.md), as written
// there, so that they keep compiling and working on both backends.

/// Serves one connection of the line protocol until the client ends it.
func serveLines(_ connection: AsyncSocket) async throws {
    let reader = BufferedReader(connection)
    let writer = BufferedWriter(connection)
    while true {
        let line: String?
        do {
            line = try await AsyncSocket.withTimeout(.seconds(30)) {
                try await reader.readLine(maxLength: 1024, allowingCRLF: true)
            }
        } catch BufferedReaderError.tooLong {
            try await writer.write("ERR line too long\n")
            continue
        }
        guard let line else { break }                    // the client ended the stream
        if line == "PING" {
            try await writer.write("PONG\n")
        } else if line.hasPrefix("ECHO ") {
            try await writer.write(line.dropFirst(5).utf8)
            try await writer.write(UInt8(ascii: "\n"))
        } else {
            try await writer.write("ERR unknown command\n")
        }
        // Flush once no more requests are buffered: pipelined requests get one send.
        if reader.bufferedByteCount == 0 { try await writer.flush() }
    }
    try await writer.flush()
}

/// Reads a `key=value` line.
nonisolated(nonsending) func readSetting(_ reader: BufferedReader) async throws -> (String, String)? {
    guard let line = try await reader.readLine(maxLength: 256) else { return nil }
    let parts = line.split(separator: "=", maxSplits: 1)
    return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
}

extension AsyncTests {
    @Test(arguments: backends)
    func bufferedIOArticleExampleWorks(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let server = Task(executorPreference: reactor) {
                for try await (connection, _) in listener.incoming {
                    Task(executorPreference: reactor) {
                        try? await serveLines(connection)
                        try? await connection.close()
                    }
                }
            }
            defer { server.cancel() }

            try await Task(executorPreference: reactor) {
                let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
                try await client.connect(address)
                try await client.sendAll("PING\nECHO hello\n")
                let replies = BufferedReader(client)
                let pong = try await replies.readLine()           // "PONG"
                let hello = try await replies.readLine()          // "hello"
                #expect(pong == "PONG")
                #expect(hello == "hello")

                // An over-long line is answered and skipped; an unknown command too.
                try await client.sendAll(String(repeating: "x", count: 5000) + "\r\nWHAT\r\nPING\r\n")
                #expect(try await replies.readLine() == "ERR line too long")
                #expect(try await replies.readLine() == "ERR unknown command")
                #expect(try await replies.readLine() == "PONG")

                // The closure form (the article's snippet, here on a reply), and a helper of one's own.
                try await client.sendAll("PING\nECHO PING\nECHO mode=fast\n")
                let isPing = try await replies.readLine(maxLength: 64) { line in
                    line.withUnsafeBytes { $0.elementsEqual("PONG".utf8) }
                }
                #expect(isPing == true)
                #expect(try await replies.readLine() == "PING")
                let setting = try await readSetting(replies)
                #expect(setting?.0 == "mode" && setting?.1 == "fast")

                try await client.shutdown(.write)
                #expect(try await replies.readLine() == nil)
                try await client.close()
            }.value
        }
    }
}
