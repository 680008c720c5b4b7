import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// `count` datagrams of `size` bytes, then one of `lastSize` bytes if that is not 0.
func segments(_ count: Int, size: Int, lastSize: Int = 0) -> [[UInt8]] {
    var result = (0..<count).map { pattern(size, seed: $0) }
    if lastSize > 0 { result.append(pattern(lastSize, seed: count)) }
    return result
}

extension AsyncTests {
@Suite("UDP segmentation and receive coalescing")
struct AsyncUdpOffloadTests {
    @Test("A GSO send arrives as the datagrams it was cut into", arguments: backends)
    func segmentedSend(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, receiverAddress) = try udpSocket(reactor)
            let (sender, senderAddress) = try udpSocket(reactor)
            let expected = segments(10, size: 1000, lastSize: 300)
            let payload = Array(expected.joined())
            #expect(try await sender.sendSegmented(payload, segmentSize: 1000, to: receiverAddress) == payload.count)
            for datagram in expected {
                let (bytes, address) = try await receiver.recvFrom(maxCount: 2048)
                #expect(address == senderAddress)
                #expect(bytes == datagram)
            }
            // The raw-buffer form, on the reactor thread.
            let buffer = TestBuffer(payload)
            let sent = try await Task(executorPreference: reactor) {
                try await sender.sendSegmented(buffer.readOnly, segmentSize: 1000, to: receiverAddress)
            }.value
            #expect(sent == payload.count)
            for datagram in expected {
                #expect(try await receiver.recvFrom(maxCount: 2048).bytes == datagram)
            }
        }
    }

    @Test("GRO receive gives back the datagrams of a GSO send, the receive waiting first", arguments: backends)
    func coalescedReceive(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, receiverAddress) = try udpSocket(reactor)
            try receiver.setUdpGro(true)
            let (sender, senderAddress) = try udpSocket(reactor)
            let expected = segments(20, size: 1200, lastSize: 100)
            let total = expected.reduce(0) { $0 + $1.count }
            let receiving = Task(executorPreference: reactor) { () -> ([[UInt8]], [Int?]) in
                let buffer = TestBuffer(65_535)
                var datagrams: [[UInt8]] = [], sizes: [Int?] = []
                while datagrams.reduce(0, { $0 + $1.count }) < total {
                    let info = try await receiver.recvCoalesced(into: buffer.raw)
                    #expect(info.address == senderAddress)
                    #expect(!info.flags.isTruncated())
                    sizes.append(info.segmentSize)
                    let bytes = buffer.prefix(info.count)
                    datagrams += info.datagramRanges.map { Array(bytes[$0]) }
                }
                return (datagrams, sizes)
            }
            await waitUntilPending(reactor)  // the receive waits for readability
            #expect(try await sender.sendSegmented(Array(expected.joined()), segmentSize: 1200, to: receiverAddress)
                    == total)
            let (datagrams, sizes) = try await receiving.value
            #expect(datagrams == expected)
            // Whether the kernel coalesces is its choice; a size it reports is the sender's.
            #expect(sizes.allSatisfy { $0 == nil || $0 == 1200 })
        }
    }

    @Test("GRO receive into a new array, from another executor", arguments: backends)
    func coalescedReceiveArray(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, receiverAddress) = try udpSocket(reactor)
            try receiver.setUdpGro(true)
            let (sender, senderAddress) = try udpSocket(reactor)
            let expected = segments(4, size: 500, lastSize: 20)
            _ = try await sender.sendSegmented(Array(expected.joined()), segmentSize: 500, to: receiverAddress)
            var datagrams: [[UInt8]] = []
            while datagrams.count < expected.count {
                let (bytes, info) = try await receiver.recvCoalesced()
                #expect(info.count == bytes.count)
                #expect(info.address == senderAddress)
                datagrams += CoalescedDatagrams.split(bytes, segmentSize: info.segmentSize).map(Array.init)
            }
            #expect(datagrams == expected)
        }
    }

    @Test("A coalescing receive on a stream socket waits for data, then reads it", arguments: backends)
    func coalescedReceiveOnStream(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (first, second) = try unixPair(reactor)
            let receiving = Task(executorPreference: reactor) { try await second.recvCoalesced(maxCount: 16).bytes }
            await waitUntilPending(reactor)
            try await first.sendAll([1, 2, 3])
            #expect(try await receiving.value == [1, 2, 3])
            try await first.shutdown(.write)
            #expect(try await second.recvCoalesced(maxCount: 16).bytes == [])  // end of stream
        }
    }

    @Test("Cancelling a pending GRO receive loses nothing", arguments: backends)
    func coalescedReceiveCancelled(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, receiverAddress) = try udpSocket(reactor)
            try receiver.setUdpGro(true)
            let (sender, _) = try udpSocket(reactor)
            let task = Task(executorPreference: reactor) { try await receiver.recvCoalesced(maxCount: 65_535).bytes }
            await waitUntilPending(reactor)
            task.cancel()
            await expectCancelled(task)
            #expect(await pendingOperations(reactor) == 0)
            _ = try await sender.sendTo([5, 6, 7], to: receiverAddress)
            let (bytes, info) = try await receiver.recvCoalesced(maxCount: 65_535)
            #expect(bytes == [5, 6, 7])
            #expect(info.segmentSize == nil || info.segmentSize == 3)
        }
    }
}
}
