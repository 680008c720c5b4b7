import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A datagram as a batch reported it.
struct BatchedDatagram: Sendable, Equatable {
    var bytes: [UInt8]
    var address: SockAddr?
    var flags: CInt
    var packetInfo: PacketInfo?
}

/// Iterates over `batches` until `total` datagrams arrived; returns them and each batch's size.
/// Checks that one batch object serves every batch.
func collect(_ batches: DatagramBatches, _ total: Int) async throws -> (datagrams: [BatchedDatagram], sizes: [Int]) {
    var datagrams: [BatchedDatagram] = [], sizes: [Int] = []
    var first: ObjectIdentifier?
    for try await batch in batches {
        #expect(batch.count > 0)
        #expect(ObjectIdentifier(batch) == first ?? ObjectIdentifier(batch))
        first = ObjectIdentifier(batch)
        sizes.append(batch.count)
        for index in 0..<batch.count {
            #expect(batch.length(at: index) == batch.withUnsafeBytes(at: index) { $0.count })
            datagrams.append(BatchedDatagram(bytes: batch.bytes(at: index), address: batch.address(at: index),
                                             flags: batch.flags(at: index).rawValue,
                                             packetInfo: batch.packetInfo(at: index)))
        }
        if datagrams.count >= total { break }
    }
    return (datagrams, sizes)
}

/// Sends `count` datagrams of varied sizes to `destination`, round robin from `senders`; returns
/// what each should look like on arrival.
func sendRoundRobin(
    _ count: Int, from senders: [AsyncSocket], to destination: SockAddr, packetInfo: PacketInfo?
) async throws -> [BatchedDatagram] {
    var expected: [BatchedDatagram] = []
    for index in 0..<count {
        let sender = senders[index % senders.count]
        let bytes = pattern(1 + (index * 37) % 400, seed: index)
        #expect(try await sender.sendTo(bytes, to: destination) == bytes.count)
        expected.append(BatchedDatagram(bytes: bytes, address: try sender.localAddr(), flags: 0, packetInfo: packetInfo))
    }
    return expected
}

extension AsyncTests {
@Suite("Batched datagram streams")
struct AsyncBatchTests {
    @Test("Queued datagrams arrive in batches with their senders and packet info (IPv4)", arguments: backends)
    func queuedBatchesV4(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, address) = try udpSocket(reactor)
            setBufferSize(receiver, SO_RCVBUF, 1 << 20)
            let batches = try receiver.datagramBatches(count: 16, maxSize: 2048, packetInfo: true)
            let senders = try (0..<3).map { _ in try udpSocket(reactor).0 }
            let info = PacketInfo(destination: .v4(.localhost), interfaceIndex: loopbackIndex)
            let expected = try await sendRoundRobin(100, from: senders, to: address, packetInfo: info)
            let (datagrams, sizes) = try await Task(executorPreference: reactor) {
                try await collect(batches, expected.count)
            }.value
            #expect(datagrams == expected)
            #expect(sizes.reduce(0, +) == expected.count)
            #expect(sizes.allSatisfy { $0 <= 16 })
            #expect(sizes.max()! > 1)  // batched, not one by one
        }
    }

    @Test("A waiting stream receives batches as datagrams come (IPv6 packet info)", arguments: backends)
    func waitingBatchesV6(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, address) = try udpSocketV6(reactor)
            let batches = try receiver.datagramBatches(count: 8, maxSize: 1024, packetInfo: true)
            let senders = try (0..<2).map { _ in try udpSocketV6(reactor).0 }
            let receiving = Task(executorPreference: reactor) { try await collect(batches, 40) }
            await waitUntilPending(reactor)
            let info = PacketInfo(destination: .v6(.localhost), interfaceIndex: loopbackIndex)
            let expected = try await sendRoundRobin(40, from: senders, to: address, packetInfo: info)
            let (datagrams, sizes) = try await receiving.value
            #expect(datagrams == expected)
            #expect(sizes.allSatisfy { $0 <= 8 })
        }
    }

    @Test("An IPv6 socket's IPv4 datagrams name IPv4-mapped destinations", arguments: backends)
    func mappedPacketInfo(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            // Bound to ::ffff:127.0.0.1: an IPv6 socket that receives IPv4 loopback datagrams.
            let receiver = try AsyncSocket(domain: .ipv6, type: .dgram, reactor: reactor)
            try receiver.bind(SockAddr(SocketAddrV6(IPv4Address.localhost.ipv6Mapped, 0)))
            let batches = try receiver.datagramBatches(count: 4, maxSize: 64, packetInfo: true)
            let (sender, _) = try udpSocket(reactor)
            _ = try await sender.sendTo([9], to: loopback(port(of: try receiver.localAddr())))
            let (datagrams, _) = try await collect(batches, 1)
            let mapped = PacketInfo(destination: .v6(IPv4Address.localhost.ipv6Mapped), interfaceIndex: loopbackIndex)
            #expect(datagrams.map(\.packetInfo) == [mapped])
            #expect(datagrams.map(\.address) == [SockAddr(SocketAddrV6(IPv4Address.localhost.ipv6Mapped, port(of: try sender.localAddr())))])
        }
    }

    @Test("More datagrams than the io_uring ring has buffers: the request is re-armed", arguments: backends)
    func moreThanTheRing(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, address) = try udpSocket(reactor)
            setBufferSize(receiver, SO_RCVBUF, 1 << 20)
            // 64 KiB datagrams: a ring of only 32 buffers (4 MiB at most).
            let batches = try receiver.datagramBatches(count: 10, maxSize: 65_536)
            let sender = try udpSocket(reactor).0
            let expected = try await sendRoundRobin(100, from: [sender], to: address, packetInfo: nil)
            let (datagrams, _) = try await collect(batches, expected.count)
            #expect(datagrams == expected)
        }
    }

    @Test("Long datagrams are truncated to maxSize and flagged", arguments: backends)
    func truncated(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, address) = try udpSocket(reactor)
            let batches = try receiver.datagramBatches(count: 4, maxSize: 8)
            let (sender, senderAddress) = try udpSocket(reactor)
            let long = pattern(20), short = pattern(5, seed: 1)
            _ = try await sender.sendTo(long, to: address)
            _ = try await sender.sendTo(short, to: address)
            let (datagrams, _) = try await collect(batches, 2)
            #expect(datagrams == [
                BatchedDatagram(bytes: Array(long.prefix(8)), address: senderAddress, flags: CInt(MSG_TRUNC)),
                BatchedDatagram(bytes: short, address: senderAddress, flags: 0),
            ])
        }
    }

    @Test("Cancelling a waiting batch stream loses nothing; closing the socket ends it", arguments: backends)
    func cancelAndClose(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (receiver, address) = try udpSocket(reactor)
            let batches = try receiver.datagramBatches(count: 4, maxSize: 64)
            let (sender, senderAddress) = try udpSocket(reactor)
            // One iterator across the cancellation (what an iterator took in is its own).
            let iterator = batches.makeAsyncIterator().receiver
            let waiting = Task(executorPreference: reactor) { try await iterator.next().count }
            await waitUntilPending(reactor)
            waiting.cancel()
            await expectCancelled(waiting)
            _ = try await sender.sendTo([1, 2, 3], to: address)
            let batch = try await iterator.next()
            #expect(batch.count == 1)
            #expect(batch.bytes(at: 0) == [1, 2, 3])
            #expect(batch.address(at: 0) == senderAddress)
            // A stream waiting when the socket closes ends.
            let ending = Task(executorPreference: reactor) { () -> Int in
                var count = 0
                for try await batch in batches { count += batch.count }
                return count
            }
            await waitUntilPending(reactor)
            try await receiver.close()
            #expect(try await ending.value == 0)
        }
    }

    @Test("Packet info is refused on a socket that is not IP")
    func packetInfoNeedsIP() async throws {
        try await withReactor(.epoll) { reactor in
            let (socket, _) = try unixPair(reactor, type: .dgram)
            #expect(throws: Errno.self) { _ = try socket.datagramBatches(packetInfo: true) }
            _ = try socket.datagramBatches()
        }
    }
}
}
