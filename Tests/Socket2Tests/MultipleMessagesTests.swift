import Glibc
import SystemPackage
import Testing
@testable import Socket2

@Suite struct MultipleMessagesTests {
    /// Receives into `batch` until `expected` datagrams have arrived (each call blocks for the
    /// first one only, bounded by the socket's receive timeout); returns them with their senders.
    private func receiveAll(
        _ receiver: borrowing Socket, _ batch: DatagramBatch, expected: Int
    ) throws -> [(bytes: [UInt8], sender: SockAddr?)] {
        var received: [(bytes: [UInt8], sender: SockAddr?)] = []
        while received.count < expected {
            let count = try receiver.recvmmsg(into: batch, flags: .waitForOne)
            #expect(count >= 1 && count <= batch.count)
            for index in 0..<count {
                #expect(!batch.flags(at: index).isTruncated())
                received.append((batch.bytes(at: index), batch.address(at: index)))
            }
        }
        return received
    }

    /// The payload of message `index` from sender `tag`: distinct contents and lengths.
    private func payload(_ tag: UInt8, _ index: Int) -> [UInt8] {
        [tag, UInt8(index)] + [UInt8](repeating: tag &+ UInt8(index), count: 10 * index + 1)
    }

    @Test(arguments: [Domain.ipv4, .ipv6])
    func recvmmsgReceivesWhatSendmmsgSent(_ domain: Domain) throws {
        let receiver = try BeyondLoopback.udp(domain)
        let destination = try receiver.localAddr()
        var expected: [[UInt8]: SockAddr] = [:]
        for (tag, count) in [(UInt8(0xA0), 4), (UInt8(0xB0), 3)] {
            let sender = try BeyondLoopback.udp(domain)
            let batch = DatagramBatch(count: count, bufferSize: 64)
            for index in 0..<count {
                try batch.setBytes(payload(tag, index), at: index)
                batch.setAddress(destination, at: index)
                expected[payload(tag, index)] = try sender.localAddr()
            }
            #expect(try sender.sendmmsg(batch) == count)
        }
        let batch = DatagramBatch(count: 8, bufferSize: 128)
        let received = try receiveAll(receiver, batch, expected: 7)
        #expect(received.count == 7)
        for (bytes, sender) in received {
            #expect(expected.removeValue(forKey: bytes) == sender)
        }
        #expect(expected.isEmpty)
    }

    @Test func sendmmsgSendsEachSlotToItsOwnDestination() throws {
        let first = try BeyondLoopback.udp(.ipv4)
        let second = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        let destinations = [try first.localAddr(), try second.localAddr()]
        let batch = DatagramBatch(count: 4, bufferSize: 16)
        for index in 0..<4 {
            try batch.setBytes([UInt8(index)], at: index)
            batch.setAddress(destinations[index % 2], at: index)
        }
        #expect(try sender.sendmmsg(batch) == 4)
        let inbox = DatagramBatch(count: 4, bufferSize: 16)
        #expect(try receiveAll(first, inbox, expected: 2).map(\.bytes) == [[0], [2]])
        #expect(try receiveAll(second, inbox, expected: 2).map(\.bytes) == [[1], [3]])
    }

    /// A batch just received goes back to its senders as it is: lengths and addresses are kept.
    @Test func receivedBatchEchoesBackToSenders() throws {
        let server = try BeyondLoopback.udp(.ipv6)
        let client = try BeyondLoopback.udp(.ipv6)
        for index in 0..<3 { _ = try client.sendTo(payload(0xC0, index), to: server.localAddr()) }
        let batch = DatagramBatch(count: 3, bufferSize: 64)
        let got = try receiveAll(server, batch, expected: 3)
        #expect(got.count == 3)
        #expect(try server.sendmmsg(batch) == 3)
        let echoes = try receiveAll(client, DatagramBatch(count: 3, bufferSize: 64), expected: 3)
        #expect(echoes.map(\.bytes) == (0..<3).map { payload(0xC0, $0) })
        #expect(echoes.allSatisfy { $0.sender == (try? server.localAddr()) })
    }

    /// Per-slot control data both ways: each datagram is sent with its own TTL, and the
    /// receiver reads each one's TTL from its slot.
    @Test func perSlotControlMessages() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        try receiver.setOption(CInt(IPPROTO_IP), IP_RECVTTL, CInt(1))
        let sender = try BeyondLoopback.udp(.ipv4)
        let outgoing = DatagramBatch(count: 3, bufferSize: 8, controlCapacity: ControlMessage.space(forDataLength: 4))
        for index in 0..<3 {
            try outgoing.setBytes([UInt8(index)], at: index)
            outgoing.setAddress(try receiver.localAddr(), at: index)
            try outgoing.setControl(ControlMessageBuffer([.ttlV4(20 + index)]), at: index)
        }
        #expect(try sender.sendmmsg(outgoing) == 3)
        let incoming = DatagramBatch(count: 3, bufferSize: 8, controlCapacity: 64)
        var seen = 0
        while seen < 3 {
            let count = try receiver.recvmmsg(into: incoming, flags: .waitForOne)
            for index in 0..<count {
                let number = Int(incoming.bytes(at: index)[0])
                let ttls = incoming.controlMessages(at: index).compactMap { message -> Int? in
                    if case .ttlV4(let ttl) = message { ttl } else { nil }
                }
                #expect(ttls == [20 + number])
                // Parsed once: asking again gives the same values.
                #expect(incoming.controlMessages(at: index).count == 1)
                seen += 1
            }
        }
        // Control set for sending is not reported as received.
        #expect(outgoing.controlMessages(at: 0).isEmpty)
    }

    /// Descriptors received into a slot and never looked at are closed when the slot is reused;
    /// descriptors of a slot that was parsed belong to the parsed values.
    @Test func descriptorsInSlotsAreOwned() throws {
        let channel = try BeyondLoopback.unixPair()
        let ignored = try BeyondLoopback.unixPair(.stream)
        let parsed = try BeyondLoopback.unixPair(.stream)
        _ = try channel.first.sendWithControl([0], control: [.rights([ignored.first.rawDescriptor])])
        _ = try channel.first.sendWithControl([1], control: [.rights([parsed.first.rawDescriptor])])
        let ignoredPeer = ignored.second
        let parsedPeer = parsed.second
        _ = consume ignored.first
        _ = consume parsed.first
        let batch = DatagramBatch(count: 1, bufferSize: 8, controlCapacity: 64)
        #expect(try channel.second.recvmmsg(into: batch) == 1)
        #expect(batch.bytes(at: 0) == [0])
        #expect(try channel.second.recvmmsg(into: batch) == 1)  // Reuses the slot: closes the first.
        #expect(try BeyondLoopback.peerClosed(ignoredPeer))
        #expect(batch.bytes(at: 0) == [1])
        let messages = batch.controlMessages(at: 0)
        guard case .rights(let rights) = messages.first else { Issue.record("\(messages)"); return }
        _ = try channel.first.send([2])
        #expect(try channel.second.recvmmsg(into: batch) == 1)  // The parsed descriptor survives.
        #expect(BeyondLoopback.poll(parsedPeer.rawDescriptor, Int16(POLLIN), milliseconds: 0) == 0)
        #expect(rights.rawDescriptors.count == 1)
        _ = consume messages
        _ = consume rights
        #expect(try BeyondLoopback.peerClosed(parsedPeer))
    }

    @Test func truncationAndRefusals() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        let batch = DatagramBatch(count: 2, bufferSize: 4, controlCapacity: 24)
        #expect(throws: Errno.messageTooLong) { try batch.setBytes([1, 2, 3, 4, 5], at: 0) }
        #expect(throws: Errno.invalidArgument) { try batch.setLength(5, at: 0) }
        #expect(throws: Errno.noBufferSpace) {
            try batch.setControl(ControlMessageBuffer([.ttlV4(1), .ttlV4(2)]), at: 0)
        }
        #expect(throws: Errno.invalidArgument) { try receiver.recvmmsg(into: batch, count: 3) }
        #expect(throws: Errno.invalidArgument) { try receiver.recvmmsg(into: batch, timeout: .seconds(-1)) }
        #expect(throws: Errno.invalidArgument) { try sender.sendmmsg(batch, count: 3) }
        #expect(throws: Errno.resourceTemporarilyUnavailable) { try receiver.recvmmsg(into: batch, flags: .dontWait) }
        // A datagram longer than the slot: cut, and flagged.
        _ = try sender.sendTo([1, 2, 3, 4, 5, 6], to: receiver.localAddr())
        #expect(try receiver.recvmmsg(into: batch, count: 1, timeout: .seconds(5)) == 1)
        #expect(batch.length(at: 0) == 4)
        #expect(batch.bytes(at: 0) == [1, 2, 3, 4])
        #expect(batch.flags(at: 0).isTruncated())
        #expect(batch.address(at: 0) == (try sender.localAddr()))
        #expect(batch.address(at: 1) == nil)
    }
}
