// The DocC catalog's Swift snippets, copied verbatim (scripts/check-doc-snippets.py keeps each
// copy equal to its article): compiled with the tests, and run where they can run.

import Testing
@testable import Socket2Async
import Socket2

extension AsyncTests {
@Suite("DocC catalog")
struct DocArticleTests {
    /// The echo loop of "Spans", with a client that sends, shuts down and reads the echo.
    @Test(arguments: backends)
    func spanEcho(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, connection) = try await tcpPair(reactor)
            let message = pattern(10_000)
            try await client.sendAll(message)
            try await client.shutdown(.write)
            // Echo with one buffer reused from call to call, and no unsafe pointer.
            var storage = [UInt8](repeating: 0, count: 4096)
            while true {
                var span = storage.mutableSpan
                var buffer = span.mutableBytes
                let count = try await connection.recv(into: &buffer)
                if count == 0 { break }
                try await connection.sendAll(buffer.bytes.extracting(first: count))
            }
            #expect(try await recvExactly(client, message.count) == message)
        }
    }
}
}

// The overview's server, which serves forever on port 8080: compiled, never run.
private enum Overview {
    static func server() throws {
        let reactor = try Reactor()                  // io_uring if available, else epoll
        let listener = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
        try listener.bind(SockAddr(SocketAddrV4(.localhost, 8080)))
        try listener.listen(1024)
        Task(executorPreference: reactor) {
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
    }
}

/// A protocol parser as the overview's time-limit loop feeds one: it counts the lent bytes.
final class ByteCounter {
    var total = 0
    func consume(_ bytes: RawSpan) { total += bytes.byteCount }
}

/// The overview's time-limit loop.
func overviewTimeLimit(_ connection: AsyncSocket, parser: ByteCounter) async throws {
    // Close a connection that sends nothing for 30 seconds.
    while true {
        let count = try await AsyncSocket.withTimeout(.seconds(30)) {
            try await connection.receive { bytes in
                parser.consume(bytes)  // your protocol's parser, reading the lent bytes
                return bytes.byteCount
            }
        }
        if count == 0 { break }
    }
}

// MARK: - Deadlines (DeadlinesAndHelpers.md)

struct IdleClient: Error {}

func receiveWithin30Seconds(_ connection: AsyncSocket, into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
    // Drop a client that sends nothing for 30 seconds.
    let count = try await AsyncSocket.withTimeout(.seconds(30)) {
        try await connection.recv(into: buffer)
    }
    return count
}

func receiveOrIdleClient(_ connection: AsyncSocket, into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
    try await AsyncSocket.withTimeout(.seconds(30)) {
        do {
            return try await connection.recv(into: buffer)
        } catch let error as Errno where error == .timedOut && AsyncSocket.deadlinePassed {
            throw IdleClient()  // say what happened in your own words
        }
    }
}

actor Sessions {
    let reactor: Reactor
    init(reactor: Reactor) { self.reactor = reactor }
    nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }
}

// MARK: - Buffered reading and writing (BufferedIO.md)

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

/// The README's buffered loop, as written there.
func readmeBufferedLoop(_ connection: AsyncSocket) async throws {
    let reader = BufferedReader(connection), writer = BufferedWriter(connection)
    while let line = try await reader.readLine(maxLength: 1024) {
        try await writer.write("you said: \(line)\n")
        if reader.bufferedByteCount == 0 { try await writer.flush() }   // one send per burst
    }
}

extension AsyncTests.DocArticleTests {
    /// The line protocol's server, accept loop and client, and what the server does with an
    /// over-long line, an unknown command and the closure form.
    @Test(arguments: backends)
    func bufferedLineProtocol(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            Task(executorPreference: reactor) {
                for try await (connection, _) in listener.incoming {
                    Task(executorPreference: reactor) {
                        try? await serveLines(connection)
                        try? await connection.close()
                    }
                }
            }
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

                // A helper of one's own.
                try await client.sendAll("ECHO mode=fast\n")
                let setting = try await readSetting(replies)
                #expect(setting?.0 == "mode" && setting?.1 == "fast")

                try await client.shutdown(.write)
                #expect(try await replies.readLine() == nil)
                try await client.close()
            }.value
            try await listener.close()   // ends the accept loop
        }
    }

    /// The closure form, on a line that arrives whole.
    @Test(arguments: backends)
    func bufferedReadWithoutAllocating(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, connection) = try await tcpPair(reactor)
            try await client.sendAll("PING\nPONG\n")
            let reader = BufferedReader(connection)
            let isPing = try await reader.readLine(maxLength: 64) { line in
                line.withUnsafeBytes { $0.elementsEqual("PING".utf8) }
            }
            #expect(isPing == true)
            #expect(try await reader.readLine(maxLength: 64) { line in
                line.withUnsafeBytes { $0.elementsEqual("PING".utf8) }
            } == false)
        }
    }

    /// The README's buffered loop.
    @Test(arguments: backends)
    func readmeBufferedLoopWorks(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let serving = Task(executorPreference: reactor) { try await readmeBufferedLoop(server) }
            try await client.sendAll("a\nb\n")
            try await client.shutdown(.write)
            try await serving.value
            let replies = BufferedReader(client)
            #expect(try await replies.readLine() == "you said: a")
            #expect(try await replies.readLine() == "you said: b")
        }
    }
}

extension AsyncTests.DocArticleTests {
    /// The overview's time-limit loop reads every byte the client sends and ends with the stream.
    @Test(arguments: backends)
    func overviewTimeLimitLoop(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, connection) = try await tcpPair(reactor)
            try await client.sendAll(pattern(10_000))
            try await client.shutdown(.write)
            let parser = ByteCounter()
            try await overviewTimeLimit(connection, parser: parser)
            #expect(parser.total == 10_000)
        }
    }

    /// The deadline snippets of DeadlinesAndHelpers receive what was sent within the deadline.
    @Test(arguments: backends)
    func deadlineSnippets(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, connection) = try await tcpPair(reactor)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
            defer { buffer.deallocate() }
            try await client.sendAll("hello")
            #expect(try await receiveWithin30Seconds(connection, into: buffer) == 5)
            try await client.sendAll("again")
            #expect(try await receiveOrIdleClient(connection, into: buffer) == 5)
        }
    }
}
