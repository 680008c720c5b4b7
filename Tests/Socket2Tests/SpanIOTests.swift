// The span forms of the send and receive families on loopback: the bytes, counts, addresses and
// flags of their raw forms, appending to an OutputRawSpan, overwriting a MutableRawSpan, and the
// edge cases (an empty span, a span with no free capacity, truncation).

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

/// Runs `body` over an `OutputRawSpan` of `capacity` bytes whose first bytes are `prefix`, and
/// returns the span's initialized bytes afterwards with `body`'s result.
///
/// Tests need an unsafe buffer here: the standard library of Swift 6.3 has no safe producer of
/// an `OutputRawSpan` (NIO's `ByteBuffer.writeWithOutputRawSpan` is one).
func withOutputRawSpan<R>(
    capacity: Int, prefix: [UInt8] = [], _ body: (inout OutputRawSpan) throws -> R
) throws -> (bytes: [UInt8], result: R) {
    var storage = [UInt8](repeating: 0, count: capacity)
    var count = 0
    let result = try storage.withUnsafeMutableBytes { buffer in
        buffer.copyBytes(from: prefix)
        var span = OutputRawSpan(buffer: buffer, initializedCount: prefix.count)
        let result = Result { try body(&span) }
        count = span.finalize(for: buffer)
        return try result.get()
    }
    return (Array(storage[..<count]), result)
}

/// Two `OutputRawSpan`s, of `first` and `second` bytes, for the vectored receives.
func withOutputRawSpans<R>(
    _ first: Int, _ second: Int, _ body: (inout OutputRawSpan, inout OutputRawSpan) throws -> R
) throws -> (first: [UInt8], second: [UInt8], result: R) {
    var secondBytes: [UInt8] = []
    let (firstBytes, result) = try withOutputRawSpan(capacity: first) { (head: inout OutputRawSpan) in
        let (tail, result) = try withOutputRawSpan(capacity: second) { (tail: inout OutputRawSpan) in
            try body(&head, &tail)
        }
        secondBytes = tail
        return result
    }
    return (firstBytes, secondBytes, result)
}

private let domains = [Domain.ipv4, .ipv6]

@Suite("Span I/O")
struct SpanIOTests {
    // MARK: Streams

    @Test(arguments: domains)
    func streamReceiveAppendsAfterTheInitializedBytes(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        let message = TestNet.bytes("hello")
        #expect(try pair.first.send(message.span.bytes) == 5)
        let (bytes, count) = try withOutputRawSpan(capacity: 16, prefix: TestNet.bytes("ab")) {
            try pair.second.recv(into: &$0)
        }
        #expect(count == 5)
        #expect(bytes == TestNet.bytes("abhello"))
    }

    @Test func receiveIntoASpanWithNoFreeCapacityReadsNothing() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        _ = try pair.first.send(TestNet.bytes("queued").span.bytes)
        _ = TestNet.wait(for: CInt(POLLIN), on: pair.second.rawDescriptor)
        // A full span offers the kernel no room: recv(2) of 0 bytes returns 0, as the raw form
        // with an empty buffer, and the bytes stay queued.
        let (full, count) = try withOutputRawSpan(capacity: 3, prefix: TestNet.bytes("abc")) {
            try pair.second.recv(into: &$0)
        }
        #expect(count == 0 && full == TestNet.bytes("abc"))
        let (empty, none) = try withOutputRawSpan(capacity: 0) { try pair.second.recv(into: &$0) }
        #expect(none == 0 && empty.isEmpty)
        #expect(try pair.second.recv(maxCount: 16) == TestNet.bytes("queued"))
    }

    @Test func mutableSpanReceiveOverwritesTheFront() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        _ = try pair.first.sendWithFlags(TestNet.bytes("new").span.bytes, flags: .dontWait)
        var storage = TestNet.bytes("old bytes")
        var span = storage.mutableSpan
        var bytes = span.mutableBytes
        _ = TestNet.wait(for: CInt(POLLIN), on: pair.second.rawDescriptor)
        let peeked = try pair.second.peek(into: &bytes)
        let count = try pair.second.recv(into: &bytes)
        #expect(peeked == 3 && count == 3)
        #expect(storage == TestNet.bytes("new bytes"))
    }

    @Test func peekLeavesTheBytesQueued() throws {
        let pair = try TestNet.tcpPair(.ipv6)
        _ = try pair.first.send(TestNet.bytes("twice").span.bytes)
        _ = TestNet.wait(for: CInt(POLLIN), on: pair.second.rawDescriptor)
        let (peeked, _) = try withOutputRawSpan(capacity: 8) { try pair.second.peek(into: &$0) }
        let (received, _) = try withOutputRawSpan(capacity: 8) { try pair.second.recv(into: &$0) }
        #expect(peeked == TestNet.bytes("twice") && received == peeked)
    }

    @Test func outOfBandByte() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        #expect(try pair.first.sendOutOfBand(TestNet.bytes("!").span.bytes) == 1)
        _ = TestNet.wait(for: CInt(POLLPRI), on: pair.second.rawDescriptor)
        let (urgent, count) = try withOutputRawSpan(capacity: 4) { try pair.second.recvOutOfBand(into: &$0) }
        #expect(count == 1 && urgent == TestNet.bytes("!"))
        #expect(try pair.first.sendOutOfBand(TestNet.bytes("?").span.bytes) == 1)
        _ = TestNet.wait(for: CInt(POLLPRI), on: pair.second.rawDescriptor)
        var storage = [UInt8](repeating: 0, count: 2)
        var span = storage.mutableSpan
        var bytes = span.mutableBytes
        #expect(try pair.second.recvOutOfBand(into: &bytes) == 1)
        #expect(storage == [UInt8(ascii: "?"), 0])
    }

    /// The span forms fail as their raw forms do, and leave the span as it was.
    @Test func errorsAreTheRawForms() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        try pair.second.setNonblocking(true)
        let (bytes, error) = try withOutputRawSpan(capacity: 8, prefix: [1]) { span in
            #expect(throws: Errno.resourceTemporarilyUnavailable) { try pair.second.recv(into: &span) }
            return span.byteCount
        }
        #expect(bytes == [1] && error == 1)
        var storage = [UInt8](repeating: 0, count: 4)
        var span = storage.mutableSpan
        var mutable = span.mutableBytes
        #expect(throws: Errno.resourceTemporarilyUnavailable) { try pair.second.recv(into: &mutable) }
        let unconnected = try TestNet.socket(.ipv4, .stream)
        #expect(throws: Errno.brokenPipe) { try unconnected.send([UInt8](repeating: 0, count: 1).span.bytes) }
    }

    @Test func typedOutputSpanFillsANewArray() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        _ = try pair.first.send(TestNet.bytes("array!").span.bytes)
        var received = try [UInt8](capacity: 4) { (span: inout OutputSpan<UInt8>) throws(Errno) in
            try pair.second.recv(into: &span)
        }
        #expect(received == TestNet.bytes("arra"))
        try received.append(addingCapacity: 8) { (span: inout OutputSpan<UInt8>) throws(Errno) in
            try pair.second.recv(into: &span)
        }
        #expect(received == TestNet.bytes("array!"))
    }

    // MARK: Datagrams

    @Test(arguments: domains)
    func datagramsWithTheirSenders(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain, connected: false)
        let receiver = try pair.second.localAddr()
        let sender = try pair.first.localAddr()
        #expect(try pair.first.sendTo(TestNet.bytes("one").span.bytes, to: receiver) == 3)
        #expect(try pair.first.sendToWithFlags(TestNet.bytes("two").span.bytes, to: receiver, flags: []) == 3)
        #expect(try pair.first.sendTo(TestNet.bytes("three").span.bytes, to: receiver) == 5)

        let (peeked, peek) = try withOutputRawSpan(capacity: 8) { try pair.second.peekFrom(into: &$0) }
        let (one, first) = try withOutputRawSpan(capacity: 8) { try pair.second.recvFrom(into: &$0) }
        #expect(peeked == TestNet.bytes("one") && one == peeked)
        #expect(peek.address == sender && first.address == sender && first.count == 3)

        var storage = [UInt8](repeating: 0, count: 8)
        var span = storage.mutableSpan
        var bytes = span.mutableBytes
        let peekTwo = try pair.second.peekFrom(into: &bytes)
        let two = try pair.second.recvFrom(into: &bytes)
        #expect(peekTwo.count == 3 && two.count == 3 && two.address == sender)
        let three = try pair.second.recvFromWithFlags(into: &bytes, flags: [])
        #expect(three.count == 5 && three.address == sender)
        #expect(storage.prefix(5) == TestNet.bytes("three")[...])
    }

    /// With `MSG_TRUNC` the count is the datagram's real length; the span keeps what fits.
    @Test func truncatedDatagrams() throws {
        let pair = try TestNet.udpPair(.ipv4)
        let datagram = (0..<10).map { UInt8($0) }
        for _ in 0..<3 { _ = try pair.first.send(datagram.span.bytes) }
        let (head, count) = try withOutputRawSpan(capacity: 6, prefix: [99, 98]) {
            try pair.second.recvWithFlags(into: &$0, flags: .truncate)
        }
        #expect(count == 10 && head == [99, 98, 0, 1, 2, 3])
        let (fromHead, from) = try withOutputRawSpan(capacity: 4) {
            try pair.second.recvFromWithFlags(into: &$0, flags: .truncate)
        }
        #expect(from.count == 10 && fromHead == [0, 1, 2, 3])
        var storage = [UInt8](repeating: 0, count: 2)
        var span = storage.mutableSpan
        var bytes = span.mutableBytes
        #expect(try pair.second.recvWithFlags(into: &bytes, flags: .truncate) == 10)
        #expect(storage == [0, 1])
    }

    /// An empty span receives nothing but, as an empty buffer does, consumes the datagram.
    @Test func emptySpanConsumesADatagram() throws {
        let pair = try TestNet.udpPair(.ipv6)
        _ = try pair.first.send(TestNet.bytes("gone").span.bytes)
        _ = try pair.first.send(TestNet.bytes("next").span.bytes)
        let (nothing, count) = try withOutputRawSpan(capacity: 0) {
            try pair.second.recvWithFlags(into: &$0, flags: .truncate)
        }
        #expect(nothing.isEmpty && count == 4)
        #expect(try pair.second.recv(maxCount: 8) == TestNet.bytes("next"))
        // An empty RawSpan sends an empty datagram.
        #expect(try pair.first.send([UInt8]().span.bytes) == 0)
        #expect(try pair.second.recv(maxCount: 8) == [])
    }

    @Test func vectoredSpansGatherAndScatter() throws {
        let pair = try TestNet.udpPair(.ipv4, connected: false)
        let receiver = try pair.second.localAddr()
        let head = TestNet.bytes("head")
        let body = TestNet.bytes("body!")
        #expect(try pair.first.sendToVectored(head.span.bytes, body.span.bytes, to: receiver) == 9)
        let (first, second, result) = try withOutputRawSpans(3, 16) {
            try pair.second.recvFromVectored(into: &$0, &$1)
        }
        #expect(result.count == 9 && !result.flags.isTruncated())
        #expect(first == TestNet.bytes("hea") && second == TestNet.bytes("dbody!"))
        #expect(result.address == (try pair.first.localAddr()))

        // Larger than both spans: both fill up, the kernel reports MSG_TRUNC.
        try pair.first.connect(receiver)
        #expect(try pair.first.sendVectored(head.span.bytes, body.span.bytes, flags: []) == 9)
        let (a, b, truncated) = try withOutputRawSpans(2, 3) {
            try pair.second.recvVectored(into: &$0, &$1, flags: .truncate)
        }
        #expect(truncated.count == 9 && truncated.flags.isTruncated())
        #expect(a == TestNet.bytes("he") && b == TestNet.bytes("adb"))
    }

    @Test func controlMessagesWithSpans() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        try receiver.setRecvTtlV4(true)
        let control = try ControlMessageBuffer([.ttlV4(33)])
        let sent = try sender.sendWithControl(TestNet.bytes("ttl").span.bytes, to: receiver.localAddr(), control: control)
        #expect(sent == 3)
        var received = ControlMessageBuffer(capacity: 64)
        let (bytes, message) = try withOutputRawSpan(capacity: 8) {
            try receiver.recvWithControl(into: &$0, control: &received)
        }
        #expect(bytes == TestNet.bytes("ttl") && message.count == 3)
        #expect(message.address == (try sender.localAddr()))
        guard message.control.count == 1, case .ttlV4(let ttl) = message.control[0]
        else { Issue.record("\(message)"); return }
        #expect(ttl == 33)

        _ = try sender.sendWithControl(TestNet.bytes("again").span.bytes, to: receiver.localAddr(), control: control)
        var storage = [UInt8](repeating: 0, count: 8)
        var span = storage.mutableSpan
        var mutable = span.mutableBytes
        let second = try receiver.recvWithControl(into: &mutable, control: &received)
        #expect(second.count == 5 && storage.prefix(5) == TestNet.bytes("again")[...])
        _ = try sender.sendTo(TestNet.bytes("plain").span.bytes, to: receiver.localAddr())
        let (plain, third) = try withOutputRawSpan(capacity: 8) {
            try receiver.recvWithControl(into: &$0, controlCapacity: 64)
        }
        #expect(plain == TestNet.bytes("plain") && third.control.count == 1)

        // An empty error queue: EAGAIN, as the raw form.
        #expect(throws: Errno.resourceTemporarilyUnavailable) {
            _ = try withOutputRawSpan(capacity: 8) { try receiver.recvErrorQueue(into: &$0, control: &received) }
        }
    }

    @Test func segmentedSendAndCoalescedReceive() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        let payload = (0..<2500).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try sender.sendSegmented(payload.span.bytes, segmentSize: 1000, to: receiver.localAddr()) == 2500)
        // Without UDP_GRO each segment arrives as its own datagram.
        let (first, datagrams) = try withOutputRawSpan(capacity: 65_535) { try receiver.recvCoalesced(into: &$0) }
        #expect(first == Array(payload[..<1000]) && datagrams.count == 1000 && datagrams.segmentSize == nil)
        var storage = [UInt8](repeating: 0, count: 4000)
        var span = storage.mutableSpan
        var bytes = span.mutableBytes
        let second = try receiver.recvCoalesced(into: &bytes)
        #expect(second.count == 1000 && storage[..<1000] == payload[1000..<2000])
        #expect(second.address == (try sender.localAddr()))
        // A truncating receive into a small span.
        let (truncated, third) = try withOutputRawSpan(capacity: 10) {
            try receiver.recvCoalesced(into: &$0, flags: .truncate)
        }
        #expect(third.count == 500 && third.flags.isTruncated() && truncated == Array(payload[2000..<2010]))
    }

    @Test func typedOutputSpanReceivesADatagram() throws {
        let pair = try TestNet.udpPair(.ipv4)
        _ = try pair.first.send(TestNet.bytes("datagram").span.bytes)
        var sender: SockAddr?
        let bytes = try [UInt8](capacity: 32) { (span: inout OutputSpan<UInt8>) throws(Errno) in
            sender = try pair.second.recvFrom(into: &span).address
        }
        #expect(bytes == TestNet.bytes("datagram"))
        #expect(sender == (try pair.first.localAddr()))
    }

    @Test func batchSlotsAsSpans() throws {
        let pair = try TestNet.udpPair(.ipv4)
        let outgoing = DatagramBatch(count: 2, bufferSize: 16)
        try outgoing.setBytes(TestNet.bytes("first").span.bytes, at: 0)
        let written = outgoing.withMutableRawSpan(at: 1) { (span: inout MutableRawSpan) -> Int in
            for (offset, byte) in TestNet.bytes("second").enumerated() {
                span.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            }
            return span.byteCount
        }
        #expect(written == 16)
        try outgoing.setLength(6, at: 1)
        #expect(throws: Errno.messageTooLong) {
            try outgoing.setBytes([UInt8](repeating: 0, count: 17).span.bytes, at: 0)
        }
        #expect(try pair.first.sendmmsg(outgoing) == 2)
        let incoming = DatagramBatch(count: 2, bufferSize: 16)
        #expect(try pair.second.recvmmsg(into: incoming, flags: .waitForOne) >= 1)
        let first = incoming.withRawSpan(at: 0) { (span: RawSpan) in
            (0..<span.byteCount).map { span.unsafeLoad(fromByteOffset: $0, as: UInt8.self) }
        }
        #expect(first == TestNet.bytes("first"))
    }
}
