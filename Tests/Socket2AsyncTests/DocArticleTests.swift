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

// The overview's server, which serves forever, and its time-limit loop: compiled, never run.
private enum Overview {
    static func server() throws {
        let reactor = try Reactor()                  // io_uring if available, else epoll
        let listener = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
        try listener.bind(SockAddr(SocketAddrV4(.localhost, 8080)))
        try listener.listen(1024)
        Task(executorPreference: reactor) {
            for try await (connection, _) in listener.incoming {
                Task(executorPreference: reactor) {
                    while let bytes = try? await connection.recv(maxCount: 65536), !bytes.isEmpty {
                        try await connection.sendAll(bytes)
                    }
                    try? await connection.close()
                }
            }
        }
    }

    static func timeLimit(connection: AsyncSocket, buffer: UnsafeMutableRawBufferPointer) async throws {
        // Close a connection that sends nothing for 30 seconds.
        while true {
            let count = try await AsyncSocket.withTimeout(.seconds(30)) { try await connection.recv(into: buffer) }
            if count == 0 { break }
            try await connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }
}

actor Sessions {
    let reactor: Reactor
    init(reactor: Reactor) { self.reactor = reactor }
    nonisolated var unownedExecutor: UnownedSerialExecutor { reactor.asUnownedSerialExecutor() }
}
