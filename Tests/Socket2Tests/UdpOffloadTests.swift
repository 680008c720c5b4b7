import Glibc
import SystemPackage
import Testing
@testable import Socket2

@Suite struct UdpOffloadTests {
    /// `count` datagrams of `size` bytes (the last `lastSize`), each with distinct contents.
    private func datagrams(_ count: Int, size: Int, lastSize: Int? = nil) -> [[UInt8]] {
        (0..<count).map { index in
            let length = index == count - 1 ? (lastSize ?? size) : size
            return (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &* 31) }
        }
    }

    @Test(arguments: [Domain.ipv4, .ipv6])
    func gsoSendArrivesAsSeparateDatagrams(_ domain: Domain) throws {
        let receiver = try BeyondLoopback.udp(domain)
        let sender = try BeyondLoopback.udp(domain)
        for expected in [datagrams(10, size: 1000), datagrams(3, size: 1000, lastSize: 500)] {
            let sent = try sender.sendSegmented(Array(expected.joined()), segmentSize: 1000, to: receiver.localAddr())
            #expect(sent == expected.reduce(0) { $0 + $1.count })
            for datagram in expected {
                let (bytes, from) = try receiver.recvFrom(maxCount: 2000)
                #expect(bytes == datagram)
                #expect(from == (try sender.localAddr()))
            }
        }
    }

    @Test func udpSegmentOptionSplitsEverySend() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        #expect(try sender.udpSegment() == 0)
        try sender.setUdpSegment(1000)
        #expect(try sender.udpSegment() == 1000)
        let expected = datagrams(3, size: 1000, lastSize: 1)
        _ = try sender.sendTo(Array(expected.joined()), to: receiver.localAddr())
        for datagram in expected {
            #expect(try receiver.recv(maxCount: 2000) == datagram)
        }
        try sender.setUdpSegment(0)
        #expect(try sender.udpSegment() == 0)
        _ = try sender.sendTo(Array(expected.joined()), to: receiver.localAddr())
        #expect(try receiver.recv(maxCount: 4000).count == 2001)
    }

    @Test func udpGroOption() throws {
        let socket = try BeyondLoopback.udp(.ipv6)
        #expect(try socket.udpGro() == false)
        try socket.setUdpGro(true)
        #expect(try socket.udpGro() == true)
        try socket.setUdpGro(false)
        #expect(try socket.udpGro() == false)
    }

    /// A GRO receiver gets the GSO send coalesced or not (the kernel decides); either way the
    /// bytes and, split, the datagrams are those sent, and a reported segment size is the
    /// sender's.
    @Test(arguments: [Domain.ipv4, .ipv6])
    func groReceiverRestoresTheDatagrams(_ domain: Domain) throws {
        let receiver = try BeyondLoopback.udp(domain)
        try receiver.setUdpGro(true)
        let sender = try BeyondLoopback.udp(domain)
        let expected = datagrams(10, size: 1000)
        _ = try sender.sendSegmented(Array(expected.joined()), segmentSize: 1000, to: receiver.localAddr())
        var received: [[UInt8]] = []
        while received.reduce(0, { $0 + $1.count }) < 10_000 {
            let (bytes, info) = try receiver.recvCoalesced()
            #expect(!info.flags.isTruncated())
            #expect(info.address == (try sender.localAddr()))
            #expect(info.count == bytes.count)
            if let size = info.segmentSize { #expect(size == 1000) }
            received += CoalescedDatagrams.split(bytes, segmentSize: info.segmentSize).map(Array.init)
        }
        #expect(received == expected)
    }

    /// The same through the general receive: the segment size is a control message.
    @Test func groSegmentSizeAsControlMessage() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        try receiver.setUdpGro(true)
        let sender = try BeyondLoopback.udp(.ipv4)
        let expected = datagrams(4, size: 1200, lastSize: 100)
        _ = try sender.sendWithControl(Array(expected.joined()), to: receiver.localAddr(), control: [.udpSegment(1200)])
        var received: [[UInt8]] = []
        while received.reduce(0, { $0 + $1.count }) < 3_700 {
            let (bytes, message) = try receiver.recvWithControl(maxCount: 65_535, controlCapacity: 64)
            var segmentSize: Int?
            for item in message.control {
                guard case .udpGroSegmentSize(let size) = item else { Issue.record("\(item)"); continue }
                segmentSize = size
            }
            if let segmentSize { #expect(segmentSize == 1200) }
            received += CoalescedDatagrams.split(bytes, segmentSize: segmentSize).map(Array.init)
        }
        #expect(received == expected)
    }

    @Test func datagramRangesSplitAtTheSegmentSize() {
        #expect(CoalescedDatagrams.datagramRanges(count: 0, segmentSize: 100).isEmpty)
        #expect(CoalescedDatagrams.datagramRanges(count: 250, segmentSize: nil) == [0..<250])
        #expect(CoalescedDatagrams.datagramRanges(count: 250, segmentSize: 0) == [0..<250])
        #expect(CoalescedDatagrams.datagramRanges(count: 250, segmentSize: 100) == [0..<100, 100..<200, 200..<250])
        #expect(CoalescedDatagrams.datagramRanges(count: 200, segmentSize: 100) == [0..<100, 100..<200])
        #expect(CoalescedDatagrams.datagramRanges(count: 50, segmentSize: 100) == [0..<50])
        #expect(CoalescedDatagrams.split([1, 2, 3, 4, 5], segmentSize: 2) == [[1, 2], [3, 4], [5]])
        let info = CoalescedDatagrams(count: 5, segmentSize: 2, address: nil, flags: RecvFlags(rawValue: 0))
        #expect(info.datagramRanges == [0..<2, 2..<4, 4..<5])
    }
}
