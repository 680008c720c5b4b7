import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
@Suite("Echo over loopback")
struct EchoTests {
    /// Echoes everything received on `connection` until end of stream, then closes it.
    static func echo(_ connection: AsyncSocket) async throws {
        while true {
            let bytes = try await connection.recv(maxCount: 4096)
            if bytes.isEmpty { break }
            try await connection.sendAll(bytes)
        }
        try await connection.close()
    }

    @Test("TCP echo, server on the reactor, client elsewhere", arguments: backends)
    func tcpEcho(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (listener, address) = try tcpListener(reactor)
            let server = Task(executorPreference: reactor) {
                let (connection, _) = try await listener.accept()
                #expect(reactor.isCurrent)
                try await Self.echo(connection)
            }
            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            try await client.connect(address)
            var expected: [UInt8] = []
            for round in 0..<200 {
                let message = pattern(1 + (round * 37) % 3000, seed: round)
                try await client.sendAll(message)
                expected = message
                let echoed = try await recvExactly(client, message.count)
                #expect(echoed == expected)
            }
            // A large message that fills the socket buffers both ways.
            let large = pattern(4 << 20, seed: 99)
            async let sent: Void = client.sendAll(large)
            let echoed = try await recvExactly(client, large.count)
            try await sent
            #expect(echoed == large)
            try await client.shutdown(.write)
            #expect(try await client.recv(maxCount: 16).isEmpty)
            try await server.value
            try await client.close()
            try await listener.close()
        }
    }

    @Test("TCP echo with both ends on the reactor thread", arguments: backends)
    func tcpEchoOnReactor(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            try await Task(executorPreference: reactor) {
                let (client, server) = try await tcpPair(reactor)
                let echo = Task(executorPreference: reactor) { try await Self.echo(server) }
                let buffer = TestBuffer(64)
                for round in 0..<1000 {
                    let message = TestBuffer(pattern(64, seed: round))
                    let sent = try await client.send(message.readOnly)
                    #expect(sent == 64)
                    #expect(reactor.isCurrent)
                    var received = 0
                    while received < 64 {
                        let count = try await client.recv(into: buffer.from(received))
                        #expect(reactor.isCurrent)
                        #expect(count > 0)
                        received += count
                    }
                    #expect(buffer.bytes == message.bytes)
                }
                try await client.close()
                try await echo.value
            }.value
        }
    }

    @Test("UDP echo with recvFrom and sendTo", arguments: backends)
    func udpEcho(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            let (client, clientAddress) = try udpSocket(reactor)
            let rounds = 300
            let echo = Task(executorPreference: reactor) {
                for _ in 0..<rounds {
                    let (bytes, sender) = try await server.recvFrom(maxCount: 2048)
                    #expect(sender == clientAddress)
                    _ = try await server.sendTo(bytes, to: sender)
                }
            }
            for round in 0..<rounds {
                let message = pattern(1 + round % 1400, seed: round)
                #expect(try await client.sendTo(message, to: serverAddress) == message.count)
                let (bytes, sender) = try await client.recvFrom(maxCount: 2048)
                #expect(sender == serverAddress)
                #expect(bytes == message)
            }
            try await echo.value
        }
    }

    @Test("An empty datagram is a datagram: later receives still wait", arguments: backends)
    func emptyDatagram(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            let (client, _) = try udpSocket(reactor)
            let received = Task(executorPreference: reactor) { () -> [Int] in
                var sizes: [Int] = []
                for _ in 0..<3 { sizes.append(try await server.recvFrom(maxCount: 64).bytes.count) }
                #expect(!server.io.inputClosed)
                return sizes
            }
            #expect(try await client.sendTo([], to: serverAddress) == 0)
            #expect(try await client.sendTo([], to: serverAddress) == 0)
            // The third receive has to wait for its datagram, once the queue is empty.
            await waitUntilPending(reactor)
            #expect(try await client.sendTo([1, 2, 3], to: serverAddress) == 3)
            #expect(try await received.value == [0, 0, 3])
        }
    }

    @Test("A datagram send that waits resumes when the peer makes room; the socket still receives",
          arguments: backends)
    func datagramSendWaits(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (sender, receiver) = try unixPair(reactor, type: .dgram)
            let count = 2000
            let sending = Task(executorPreference: reactor) {
                for index in 0..<count { _ = try await sender.send(pattern(512, seed: index)) }
            }
            // The receiver's queue fills up: a send waits (epoll: with EPOLLOUT watched for it).
            await waitUntilPending(reactor)
            for index in 0..<count {
                #expect(try await receiver.recv(maxCount: 1024) == pattern(512, seed: index))
            }
            try await sending.value
            // Sends that no longer wait, and receives on the same socket, go on as before.
            for round in 0..<3 {
                _ = try await sender.send([UInt8(round)])
                #expect(try await receiver.recv(maxCount: 16) == [UInt8(round)])
                _ = try await receiver.send([UInt8(round)])
                #expect(try await sender.recv(maxCount: 16) == [UInt8(round)])
            }
        }
    }

    @Test("Unix stream echo", arguments: backends)
    func unixEcho(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let name = Array("socket2-async-test-\(getpid())-\(backend)".utf8)
            let address = try SockAddr.unixAbstract(name)
            let listener = try AsyncSocket(domain: .unix, type: .stream, reactor: reactor)
            try listener.bind(address)
            try listener.listen(16)
            let server = Task(executorPreference: reactor) {
                let (connection, _) = try await listener.accept()
                try await Self.echo(connection)
            }
            let client = try AsyncSocket(domain: .unix, type: .stream, reactor: reactor)
            try await client.connect(address)
            for round in 0..<100 {
                let message = pattern(100 + round, seed: round)
                try await client.sendAll(message)
                #expect(try await recvExactly(client, message.count) == message)
            }
            try await client.shutdown(.write)
            #expect(try await client.recv(maxCount: 1).isEmpty)
            try await server.value
        }
    }

    @Test("Vectored messages with recvMsg and sendMsg", arguments: backends)
    func messages(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            let (client, clientAddress) = try udpSocket(reactor)
            let head = pattern(10, seed: 1), tail = pattern(20, seed: 2)
            let receiver = Task {
                let first = TestBuffer(10), second = TestBuffer(40)
                let result = try await server.recvMsg(into: [first.raw, second.raw])
                #expect(result.count == 30)
                #expect(result.address == clientAddress)
                #expect(!result.flags.isTruncated())
                #expect(first.bytes == head)
                #expect(second.prefix(20) == tail)
            }
            let a = TestBuffer(head), b = TestBuffer(tail)
            let sent = try await client.sendMsg([a.readOnly, b.readOnly], to: serverAddress)
            #expect(sent == 30)
            try await receiver.value
        }
    }

    // A waiting recvMsg or sendMsg keeps its iovecs in the operation record: up to 4 inline,
    // more in memory of their own. Seven parts, after a wait, on both sides.
    @Test("Messages of seven parts, received and sent after waiting", arguments: backends)
    func manyPartMessages(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let parts = (0..<7).map { pattern(5, seed: $0) }
            let sources = parts.map { TestBuffer($0) }
            // A datagram received in seven parts by a receive that waited for it.
            let (server, serverAddress) = try udpSocket(reactor)
            let (client, _) = try udpSocket(reactor)
            let targets = (0..<7).map { _ in TestBuffer(5) }
            let receiving = Task(executorPreference: reactor) {
                try await server.recvMsg(into: targets.map(\.raw)).count
            }
            await waitUntilPending(reactor)
            #expect(try await client.sendMsg(sources.map(\.readOnly), to: serverAddress) == 35)
            #expect(try await receiving.value == 35)
            #expect(targets.map(\.bytes) == parts)
            // Seven parts sent on a stream whose send buffer is full: the send waits.
            let (sender, receiver) = try await tcpPair(reactor)
            setBufferSize(sender, SO_SNDBUF, 4096)
            setBufferSize(receiver, SO_RCVBUF, 4096)
            var queued = 0
            let filler = [UInt8](repeating: 0xEE, count: 65536)
            while true {
                let result = filler.withUnsafeBytes {
                    Glibc.send(sender.rawDescriptor, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT))
                }
                if result <= 0 { break }
                queued += result
            }
            let sending = Task(executorPreference: reactor) {
                try await sender.sendMsg(sources.map(\.readOnly))
            }
            await waitUntilPending(reactor)
            var received = try await recvExactly(receiver, queued)
            #expect(received.allSatisfy { $0 == 0xEE })
            let sent = try await sending.value
            received = try await recvExactly(receiver, sent)
            #expect(received == Array(parts.joined().prefix(sent)))
            #expect(sent > 0)
        }
    }
}
}
