import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
/// io_uring submits a receive made while the kernel holds completions back with
/// `IORING_RECVSEND_POLL_FIRST`, so that it queues behind them (see `FairnessTests`). Only load
/// brings that about, and then not on every run; here every receive is made to take that path,
/// and every kind of receive must still deliver what it delivers otherwise: bytes that were
/// already there when it was submitted, bytes that came later, datagrams with their senders.
@Suite("Receives queued behind held completions (io_uring)")
struct QueuedReceiveTests {
    /// Runs `body` on an io_uring reactor whose every receive waits for readability first.
    static func withQueuedReceives(_ body: @escaping @Sendable (Reactor) async throws -> Void) async throws {
        var options = ReactorOptions()
        options.queueEveryReceive = true
        try await withReactor(.ioUring, timeout: 60, options: options) { reactor in
            try await body(reactor)
            #expect(await queuedReceives(reactor) > 0, "no receive took the queued path")
        }
    }

    static func queuedReceives(_ reactor: Reactor) async -> Int {
        await onReactor(reactor) { (reactor.impl as! URingBackend).receivesQueuedBehind }
    }

    @Test("recv(into:) gets bytes that came after it was submitted, and bytes that were there")
    func streamReceive() async throws {
        try await Self.withQueuedReceives { reactor in
            let (client, server) = try await tcpPair(reactor)
            async let later = server.recv(maxCount: 100)
            await waitUntilPending(reactor)
            try await client.sendAll(pattern(40, seed: 1))
            #expect(try await later == pattern(40, seed: 1))
            // On the reactor after a short read the socket counts as not ready: the receive is
            // submitted, with its bytes there (sent and arrived before it).
            let before = await Self.queuedReceives(reactor)
            let there = try await Task(executorPreference: reactor) {
                let sent = pattern(30, seed: 2).withUnsafeBytes {
                    Glibc.send(client.rawDescriptor, $0.baseAddress, $0.count, MessageFlags.noSignal.rawValue)
                }
                #expect(sent == 30)
                waitForInput(server)
                return try await server.recv(maxCount: 100)
            }.value
            #expect(there == pattern(30, seed: 2))
            #expect(await Self.queuedReceives(reactor) > before)
            try await client.shutdown(.write)
            #expect(try await server.recv(maxCount: 100) == [])
            try await client.close()
            try await server.close()
        }
    }

    @Test("Streams read by recv(into:) and by the lean receive arrive whole and in order")
    func streams() async throws {
        try await Self.withQueuedReceives { reactor in
            try await streamInPieces(reactor, connections: 16) { index, server, expected in
                (reactor, { @Sendable () async throws in
                    if index.isMultiple(of: 2) {
                        #expect(try await receiveAll(server) == expected)
                    } else {
                        let (bytes, error) = await readToEnd(server)
                        #expect(error == nil)
                        #expect(bytes == expected)
                    }
                })
            }
        }
    }

    @Test("recvFrom and recvMsg get datagrams and their senders")
    func datagrams() async throws {
        try await Self.withQueuedReceives { reactor in
            let (receiver, target) = try udpSocket(reactor)
            let (sender, senderAddress) = try udpSocket(reactor)
            let buffer = TestBuffer(2048)
            for round in 0..<4 {
                let message = pattern(100 + round, seed: round)
                if round.isMultiple(of: 2) {
                    async let received = receiver.recvFrom(maxCount: 2048)
                    await waitUntilPending(reactor)
                    _ = try await sender.sendTo(message, to: target)
                    let (bytes, from) = try await received
                    #expect(bytes == message)
                    #expect(from == senderAddress)
                } else {
                    async let received = receiver.recvMsg(into: [buffer.raw])
                    await waitUntilPending(reactor)
                    _ = try await sender.sendTo(message, to: target)
                    let (count, _, _, from) = try await received
                    #expect(count == message.count)
                    #expect(buffer.prefix(count) == message)
                    #expect(from == senderAddress)
                }
            }
            try await receiver.close()
            try await sender.close()
        }
    }
}
}

