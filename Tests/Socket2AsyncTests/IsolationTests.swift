import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A helper as a user writes one (the example of `AsyncSocket.withTimeout`'s documentation):
/// not `Sendable`, its async method `nonisolated(nonsending)`, so that it runs in its caller's
/// isolation and can be used inside `withTimeout` from an actor or from nonisolated code; then
/// an actor that owns one and calls it under a deadline, and the same from nonisolated code.
/// The very text of the DeadlinesAndHelpers article.
final class LineReader {  // not Sendable
    let socket: AsyncSocket
    var pending: [UInt8] = []
    init(_ socket: AsyncSocket) { self.socket = socket }

    nonisolated(nonsending) func readLine() async throws -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                defer { pending.removeFirst(newline + 1) }
                return String(decoding: pending[..<newline], as: UTF8.self)
            }
            let chunk = try await socket.recv(maxCount: 4096)
            if chunk.isEmpty { return nil }
            pending += chunk
        }
    }
}

actor Session {
    let reader: LineReader
    init(_ socket: AsyncSocket) { reader = LineReader(socket) }

    func next(within timeout: Duration) async throws -> String? {
        try await AsyncSocket.withTimeout(timeout) { try await reader.readLine() }
    }
}

nonisolated func firstTwoLines(_ socket: AsyncSocket) async throws -> [String?] {
    let reader = LineReader(socket)
    return try await AsyncSocket.withTimeout(.seconds(10)) {
        [try await reader.readLine(), try await reader.readLine()]
    }
}

extension AsyncTests {
@Suite("Isolation and deadlines")
struct IsolationTests {
    @Test("A non-Sendable helper inside withTimeout, from an actor and from nonisolated code", arguments: backends)
    func helperInsideWithTimeout(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let session = Session(server)
            await expectTimedOut { try await session.next(within: .milliseconds(20)) }
            try await client.sendAll(Array("hello\nworld\n".utf8))
            #expect(try await session.next(within: .seconds(10)) == "hello")
            #expect(try await session.next(within: .seconds(10)) == "world")

            let (client2, server2) = try await tcpPair(reactor)
            try await client2.sendAll(Array("one\ntwo\n".utf8))
            #expect(try await firstTwoLines(server2) == ["one", "two"])
            for socket in [client, server, client2, server2] { try await socket.close() }
        }
    }

    @Test("deadlinePassed tells the deadline's ETIMEDOUT from none", arguments: backends)
    func deadlinePassed(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            #expect(!AsyncSocket.deadlinePassed)  // no scope
            let sawDeadline = try await AsyncSocket.withTimeout(.milliseconds(20)) { () -> Bool in
                #expect(!AsyncSocket.deadlinePassed)
                do {
                    _ = try await server.recv(maxCount: 1)
                    return false
                } catch Errno.timedOut where AsyncSocket.deadlinePassed {
                    return true
                }
            }
            #expect(sawDeadline)
            // An inner scope cannot extend an outer one that has passed.
            await AsyncSocket.withTimeout(.zero) {
                await AsyncSocket.withTimeout(.seconds(3600)) { #expect(AsyncSocket.deadlinePassed) }
            }
            #expect(!AsyncSocket.deadlinePassed)
            try await client.close()
            try await server.close()
        }
    }

    @Test("The kernel's own ETIMEDOUT (TCP_USER_TIMEOUT) is not the deadline's", arguments: backends)
    func kernelTimeOutIsNotTheDeadline(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            // The client reads nothing: the server's data waits behind a zero window, and the
            // kernel gives up probing it after TCP_USER_TIMEOUT.
            try server.setTcpUserTimeout(.milliseconds(50))
            setBufferSize(server, SO_SNDBUF, 4096)
            let chunk = [UInt8](repeating: 7, count: 64 * 1024)
            let kernelTimedOut = try await AsyncSocket.withTimeout(.seconds(3600)) { () -> Bool in
                do {
                    while true { try await server.sendAll(chunk) }
                } catch Errno.timedOut {
                    return !AsyncSocket.deadlinePassed
                }
            }
            #expect(kernelTimedOut)
            try await client.close()
            try await server.close()
        }
    }
}
}
