import Testing
@testable import Socket2Async
import Socket2
import SystemPackage

extension AsyncTests {
/// The async span forms on both backends: a receive waits with the span held across its
/// suspension, and a send reads a borrowed `RawSpan`.
@Suite("Async span I/O")
struct AsyncSpanTests {
    @Test(arguments: backends)
    func streamSpans(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, server) = try await tcpPair(reactor)
            let receiving = Task(executorPreference: reactor) { () async throws -> ([UInt8], Int) in
                // Only the test makes an OutputRawSpan from a buffer: Swift 6.3 has no safe producer.
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
                defer { buffer.deallocate() }
                buffer.copyBytes(from: [7, 8])
                var span = OutputRawSpan(buffer: buffer, initializedCount: 2)
                let count = try await server.recv(into: &span)  // waits: nothing is sent yet
                let initialized = span.finalize(for: buffer)
                return (Array(buffer[..<initialized]), count)
            }
            #expect(try await client.send(Array("span".utf8).span.bytes) == 4)
            let (bytes, count) = try await receiving.value
            #expect(count == 4 && bytes == [7, 8] + Array("span".utf8))

            let message = pattern(200_000)
            let sending = Task { try await client.sendAll(message.span.bytes) }
            var storage = [UInt8](repeating: 0, count: 4096)
            var received: [UInt8] = []
            while received.count < message.count {
                var mutable = storage.mutableSpan
                var raw = mutable.mutableBytes
                let count = try await server.recv(into: &raw)
                if count == 0 { break }
                received += storage[..<count]
            }
            try await sending.value
            #expect(received == message)

            // No free capacity: 0 at once, the bytes stay queued.
            _ = try await client.send(Array("x".utf8).span.bytes)
            let full = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
            defer { full.deallocate() }
            full.storeBytes(of: 1, as: UInt8.self)
            var fullSpan = OutputRawSpan(buffer: full, initializedCount: 1)
            #expect(try await server.recv(into: &fullSpan) == 0)
            _ = fullSpan.finalize(for: full)
            #expect(try await server.recv(maxCount: 4) == Array("x".utf8))
        }
    }

    @Test(arguments: backends)
    func datagramSpans(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, receiverAddress) = try udpSocket(reactor)
            let (sender, senderAddress) = try udpSocket(reactor)
            let receiving = Task(executorPreference: reactor) { () async throws -> ([UInt8], SockAddr) in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
                defer { buffer.deallocate() }
                var span = OutputRawSpan(buffer: buffer, initializedCount: 0)
                let result = try await receiver.recvFrom(into: &span, flags: .truncate)
                #expect(result.count == 6)  // MSG_TRUNC: the real length; the span keeps 4
                let initialized = span.finalize(for: buffer)
                return (Array(buffer[..<initialized]), result.address)
            }
            #expect(try await sender.sendTo(Array("abcdef".utf8).span.bytes, to: receiverAddress) == 6)
            let (bytes, from) = try await receiving.value
            #expect(bytes == Array("abcd".utf8) && from == senderAddress)

            _ = try await sender.sendTo(Array("again".utf8).span.bytes, to: receiverAddress)
            var storage = [UInt8](repeating: 0, count: 8)
            var mutable = storage.mutableSpan
            var raw = mutable.mutableBytes
            let result = try await receiver.recvFrom(into: &raw)
            #expect(result.count == 5 && result.address == senderAddress)
            #expect(storage.prefix(5) == Array("again".utf8)[...])
        }
    }

    @Test(arguments: backends)
    func offloadAndBatchSpans(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, receiverAddress) = try udpSocket(reactor)
            let (sender, senderAddress) = try udpSocket(reactor)
            let payload = pattern(2500)
            // Without UDP_GRO on the receiver each segment arrives as its own datagram.
            let sent = try await sender.sendSegmented(payload.span.bytes, segmentSize: 1000, to: receiverAddress)
            #expect(sent == 2500)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4000, alignment: 1)
            defer { buffer.deallocate() }
            var span = OutputRawSpan(buffer: buffer, initializedCount: 0)
            let first = try await receiver.recvCoalesced(into: &span)
            let initialized = span.finalize(for: buffer)
            #expect(first.count == 1000 && initialized == 1000 && first.address == senderAddress)
            #expect(Array(buffer[..<1000]) == Array(payload[..<1000]))
            var storage = [UInt8](repeating: 0, count: 4000)
            var mutable = storage.mutableSpan
            var raw = mutable.mutableBytes
            let second = try await receiver.recvCoalesced(into: &raw)
            #expect(second.count == 1000 && storage[..<1000] == payload[1000..<2000])

            let batches = try receiver.datagramBatches(count: 4, maxSize: 2048)
            for try await batch in batches {
                let bytes = batch.withRawSpan(at: 0) { (span: RawSpan) in
                    (0..<span.byteCount).map { span.unsafeLoad(fromByteOffset: $0, as: UInt8.self) }
                }
                #expect(bytes == Array(payload[2000...]))
                break
            }
        }
    }
}
}
