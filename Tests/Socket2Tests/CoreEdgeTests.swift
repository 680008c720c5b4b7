// Tests of the rough edges a new user met in the core (issue 16): batches past the kernel's
// cap, close-on-exec on received descriptors, TCP_INFO without a sample, unnamed Unix peers,
// control buffers sized by kind, descriptions, interface names, keepalive durations.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

extension BeyondLoopback {
    /// A loopback UDP address of `domain` where nothing listens: a port bound, then released.
    static func closedUdpPort(_ domain: Domain) throws -> SockAddr {
        let placeholder = try udp(domain)
        return try placeholder.localAddr()
    }
}

@Suite struct SendmmsgPastTheCapTests {
    /// The 2-byte payload of slot `index`: its index.
    private func payload(_ index: Int) -> [UInt8] { [UInt8(index >> 8), UInt8(index & 0xFF)] }

    private func batch(count: Int, to destination: SockAddr) throws -> DatagramBatch {
        let batch = DatagramBatch(count: count, bufferSize: 2)
        for index in 0..<count {
            try batch.setBytes(payload(index), at: index)
            batch.setAddress(destination, at: index)
        }
        return batch
    }

    /// A batch of 2,000 slots goes out whole in calls that each start where the last stopped;
    /// one call takes no more than the kernel's 1,024.
    @Test func largeBatchIsSentCompletelyFromOffsets() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        let batch = try batch(count: 2000, to: try receiver.localAddr())
        var sent = 0
        var calls: [Int] = []
        while sent < batch.count {
            let count = try sender.sendmmsg(batch, startingAt: sent)
            #expect(count > 0 && count <= DatagramBatch.maxMessagesPerCall)
            calls.append(count)
            sent += count
        }
        #expect(sent == 2000)
        #expect(calls == [1024, 976])
    }

    /// The slots sent from an offset are those slots, in order.
    @Test func offsetSendSendsThoseSlots() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        let batch = try batch(count: 1500, to: try receiver.localAddr())
        #expect(try sender.sendmmsg(batch, startingAt: 1490) == 10)
        #expect(try sender.sendmmsg(batch, startingAt: 1500) == 0)
        let inbox = DatagramBatch(count: 10, bufferSize: 4)
        var received: [[UInt8]] = []
        while received.count < 10 {
            let count = try receiver.recvmmsg(into: inbox, flags: .waitForOne)
            received += (0..<count).map { inbox.bytes(at: $0) }
        }
        #expect(received == (1490..<1500).map(payload))
        #expect(throws: Errno.invalidArgument) { try sender.sendmmsg(batch, startingAt: 1501) }
        #expect(throws: Errno.invalidArgument) { try sender.sendmmsg(batch, startingAt: 1490, count: 11) }
        #expect(throws: Errno.invalidArgument) { try sender.sendmmsg(batch, startingAt: -1) }
    }
}

/// Whether `descriptor` is close-on-exec (`FD_CLOEXEC`).
private func isCloseOnExec(_ descriptor: CInt) -> Bool {
    fcntl(descriptor, F_GETFD) & FD_CLOEXEC != 0
}

/// The descriptors of the `SCM_RIGHTS` messages among `messages`, taken (the caller closes them).
private func takeRights(_ messages: [ReceivedControlMessage]) -> [CInt] {
    messages.flatMap { message -> [CInt] in
        if case .rights(let descriptors) = message { return descriptors.take() }
        return []
    }
}

@Suite struct ReceivedDescriptorsCloseOnExecTests {
    /// Descriptors received by each receive form with room for control data: `recvmsg` (socket2's
    /// `MsgHdrMut`), `recvWithControl` and `recvmmsg`.
    @Test func everyReceiveFormMakesDescriptorsCloseOnExec() throws {
        let pair = try BeyondLoopback.unixPair()
        let passed = try Socket(domain: .ipv4, type: .dgram)
        func pass() throws {
            #expect(try pair.first.sendWithControl([1], control: [.rights([passed.rawDescriptor])]) == 1)
        }
        var received: [(form: String, descriptors: [CInt])] = []

        try pass()
        var message = MsgHdrMut().withBuffers([[UInt8](repeating: 0, count: 4)]).withControl(capacity: 64)
        #expect(try pair.second.recvmsg(&message) == 1)
        #expect(message.flags().rawValue & CInt(MSG_CMSG_CLOEXEC) == 0, "the kernel's echo is not a message flag")
        #expect(!message.flags().isControlTruncated())
        let parsed = message.controlData.withUnsafeBytes {
            ReceivedControlMessage.parse(received: $0, flags: message.flags())
        }
        received.append(("recvmsg", takeRights(parsed)))

        try pass()
        let (_, withControl) = try pair.second.recvWithControl(maxCount: 4, controlCapacity: 64)
        received.append(("recvWithControl", takeRights(withControl.control)))

        try pass()
        let batch = DatagramBatch(count: 2, bufferSize: 4, controlCapacity: 64)
        #expect(try pair.second.recvmmsg(into: batch, flags: .waitForOne) == 1)
        received.append(("recvmmsg", takeRights(batch.controlMessages(at: 0))))

        for (form, descriptors) in received {
            #expect(descriptors.count == 1, "\(form)")
            for descriptor in descriptors {
                #expect(isCloseOnExec(descriptor), "\(form)")
                close(descriptor)
            }
        }
    }
}

@Suite struct TcpInfoMinRttTests {
    @Test func minRttIsNilWithoutASample() throws {
        let unconnected = try Socket(domain: .ipv4, type: .stream)
        #expect(try unconnected.tcpInfo().minRtt == nil)
    }

    @Test func minRttIsMeasuredOnAConnection() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        _ = try pair.first.send([1])
        #expect(try pair.second.recv(maxCount: 1) == [1])
        _ = try pair.second.send([2])
        #expect(try pair.first.recv(maxCount: 1) == [2])
        let minRtt = try #require(try pair.first.tcpInfo().minRtt)
        #expect(minRtt > .zero && minRtt < .seconds(1))
    }
}

@Suite struct UnnamedUnixPeerTests {
    /// An unbound sender (a socket of `socketpair(2)`) is the same unnamed address from every
    /// receive form.
    @Test func everyReceiveFormReportsOneUnnamedAddress() throws {
        let pair = try BeyondLoopback.unixPair()
        _ = try pair.first.send([1])
        let (_, fromRecvFrom) = try pair.second.recvFrom(maxCount: 4)

        _ = try pair.first.send([2])
        var message = MsgHdrMut().withAddr().withBuffers([[UInt8](repeating: 0, count: 4)])
        _ = try pair.second.recvmsg(&message)

        _ = try pair.first.send([3])
        let (_, withControl) = try pair.second.recvWithControl(maxCount: 4, controlCapacity: 0)

        _ = try pair.first.send([4])
        let batch = DatagramBatch(count: 1, bufferSize: 4)
        #expect(try pair.second.recvmmsg(into: batch) == 1)

        #expect(fromRecvFrom.isUnnamed())
        #expect(fromRecvFrom.asPathname() == nil)
        for (form, address) in [("recvmsg", message.address), ("recvWithControl", withControl.address),
                                ("recvmmsg", batch.address(at: 0))] {
            #expect(address == fromRecvFrom, "\(form)")
            #expect(address?.isUnnamed() == true, "\(form)")
        }
        // What getsockname(2) reports for an unbound Unix socket is unnamed too.
        #expect(try pair.first.localAddr().isUnnamed())
    }

    /// A connected stream names no sender per message: the same empty address.
    @Test func connectedStreamNamesNoSender() throws {
        let tcp = try TestNet.tcpPair(.ipv4)
        _ = try tcp.first.send([1])
        let (_, connected) = try tcp.second.recvWithControl(maxCount: 4, controlCapacity: 0)
        #expect(connected.address?.len() == 0)
        #expect(connected.address?.isUnnamed() == true)
    }
}

@Suite struct ControlBufferByKindTests {
    /// Receives datagrams with every kind of control message a UDP socket can switch on at once,
    /// into a buffer sized by those kinds, until one carries a `SO_TIMESTAMPING` timestamp (the
    /// kernel switches those on from a work queue, a moment after the first socket asks). Each
    /// datagram is a GSO send of two segments, so that it arrives coalesced with `UDP_GRO`.
    private func receiveEveryKind(
        _ domain: Domain, enable: (borrowing Socket) throws -> Void,
        kinds: [ReceivedControlMessage.Kind], expected: Int
    ) throws -> [ReceivedControlMessage] {
        let receiver = try BeyondLoopback.udp(domain)
        let sender = try BeyondLoopback.udp(domain)
        try enable(receiver)
        try receiver.setTimestampns(true)
        try receiver.setTimestamping([.rxSoftware, .software])
        try receiver.setUdpGro(true)
        var control = ControlMessageBuffer(receiving: kinds)
        #expect(control.capacity == ControlMessage.space(receiving: kinds))
        let destination = try receiver.localAddr()
        let payload = [UInt8](repeating: 7, count: 200)
        for _ in 0..<1_000 {
            #expect(try sender.sendSegmented(payload, segmentSize: 100, to: destination) == 200)
            var data = [UInt8](repeating: 0, count: 1_000)
            let message = try data.withUnsafeMutableBytes { buffer in
                try receiver.recvWithControl(into: buffer, control: &control)
            }
            #expect(!message.flags.isControlTruncated(), "\(message)")
            guard !message.control.contains(where: { if case .truncated = $0 { true } else { false } }) else {
                return message.control
            }
            let stamped = message.control.contains { if case .timestamping = $0 { true } else { false } }
            if stamped {
                #expect(message.control.count == expected, "\(message.control)")
                return message.control
            }
        }
        Issue.record("no datagram carried SO_TIMESTAMPING")
        return []
    }

    @Test func everyIPv4KindFitsAtOnce() throws {
        let control = try receiveEveryKind(.ipv4, enable: { socket in
            try socket.setRecvPktinfoV4(true)
            try socket.setRecvTtlV4(true)
            try socket.setRecvTosV4(true)
        }, kinds: [.packetInfoV4, .ttlV4, .tosV4, .timestampNs, .timestamping, .udpGroSegmentSize], expected: 6)
        #expect(control.contains { if case .packetInfoV4 = $0 { true } else { false } })
        #expect(control.contains { if case .ttlV4 = $0 { true } else { false } })
        #expect(control.contains { if case .tosV4 = $0 { true } else { false } })
        #expect(control.contains { if case .timestampNs = $0 { true } else { false } })
        #expect(control.contains { if case .udpGroSegmentSize(100) = $0 { true } else { false } })
    }

    @Test func everyIPv6KindFitsAtOnce() throws {
        let control = try receiveEveryKind(.ipv6, enable: { socket in
            try socket.setRecvPktinfoV6(true)
            try socket.setRecvHoplimitV6(true)
            try socket.setRecvTclassV6(true)
        }, kinds: [.packetInfoV6, .hopLimitV6, .trafficClassV6, .timestampNs, .timestamping, .udpGroSegmentSize],
           expected: 6)
        #expect(control.contains { if case .packetInfoV6 = $0 { true } else { false } })
        #expect(control.contains { if case .hopLimitV6 = $0 { true } else { false } })
        #expect(control.contains { if case .trafficClassV6 = $0 { true } else { false } })
        #expect(control.contains { if case .udpGroSegmentSize(100) = $0 { true } else { false } })
    }

    /// Credentials, three descriptors and a timestamp over a Unix socket, in a buffer sized by kind.
    @Test func everyUnixKindFitsAtOnce() throws {
        let pair = try BeyondLoopback.unixPair()
        try pair.second.setPasscred(true)
        try pair.second.setTimestampns(true)
        let passed = try (0..<3).map { _ in try Socket(domain: .ipv4, type: .dgram).intoRawDescriptor() }
        defer { for descriptor in passed { close(descriptor) } }
        _ = try pair.first.sendWithControl([1], control: [.rights(passed)])
        var control = ControlMessageBuffer(receiving: [.credentials, .rights(3), .timestampNs])
        var data = [UInt8](repeating: 0, count: 4)
        let message = try data.withUnsafeMutableBytes { buffer in
            try pair.second.recvWithControl(into: buffer, control: &control)
        }
        #expect(!message.flags.isControlTruncated(), "\(message)")
        #expect(message.control.count == 3, "\(message.control)")
        for descriptor in takeRights(message.control) { close(descriptor) }
    }

    /// An ICMP error from the error queue, with its IPv4 or IPv6 offender, fits `.extendedError`.
    @Test(arguments: [Domain.ipv4, .ipv6])
    func extendedErrorFits(_ domain: Domain) throws {
        let closedPort = try BeyondLoopback.closedUdpPort(domain)
        let sender = try BeyondLoopback.udp(domain)
        if domain == .ipv6 { try sender.setRecvErrV6(true) } else { try sender.setRecvErrV4(true) }
        _ = try sender.sendTo([1], to: closedPort)
        #expect(BeyondLoopback.poll(sender.rawDescriptor, 0) & Int16(POLLERR) != 0)
        var control = ControlMessageBuffer(receiving: [.extendedError])
        var payload = [UInt8](repeating: 0, count: 4)
        let message = try payload.withUnsafeMutableBytes { try sender.recvErrorQueue(into: $0, control: &control) }
        #expect(!message.flags.isControlTruncated(), "\(message)")
        guard message.control.count == 1, case .extendedError(let error) = message.control[0]
        else { Issue.record("\(message)"); return }
        #expect(error.offender != nil)
    }

    /// The sizes are the kernel's `CMSG_SPACE` of each payload.
    @Test func kindsHaveTheKernelsSizes() {
        #expect(ReceivedControlMessage.Kind.packetInfoV4.space == 32)
        #expect(ReceivedControlMessage.Kind.packetInfoV6.space == 40)
        #expect(ReceivedControlMessage.Kind.ttlV4.space == 24)
        #expect(ReceivedControlMessage.Kind.timestampNs.space == 32)
        #expect(ReceivedControlMessage.Kind.timestamping.space == 64)
        #expect(ReceivedControlMessage.Kind.credentials.space == 32)
        #expect(ReceivedControlMessage.Kind.rights(3).space == 32)
        #expect(ReceivedControlMessage.Kind.extendedError.space == 64)
        #expect(ControlMessage.space(receiving: [.ttlV4, .ttlV4]) == 48)
        #expect("\(ReceivedControlMessage.Kind.packetInfoV4)" == "packetInfoV4(12 bytes)")
    }
}

@Suite struct DescriptionsNameConstantsTests {
    @Test func recvFlagsShowControlTruncation() {
        let flags = RecvFlags(rawValue: CInt(MSG_CTRUNC))
        #expect("\(flags)".contains("isControlTruncated: true"))
        #expect("\(RecvFlags(rawValue: 0))".contains("isControlTruncated: false"))
    }

    @Test func optionSetsPrintTheirConstants() {
        #expect("\(TcpInfoOptions(rawValue: 7))" == "[TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE]")
        #expect("\(TcpInfoOptions(rawValue: 0x81))" == "[TCPI_OPT_TIMESTAMPS, 0x80]")
        #expect("\(TimestampingFlags(rawValue: 24))" == "[SOF_TIMESTAMPING_RX_SOFTWARE, SOF_TIMESTAMPING_SOFTWARE]")
        #expect("\(TimestampingFlags())" == "[]")
        #expect("\(MessageFlags.peek.union(.dontWait))" == "[MSG_PEEK, MSG_DONTWAIT]")
        #expect("\(MessageFlags.cmsgCloexec)" == "[MSG_CMSG_CLOEXEC]")
    }

    @Test func controlMessagesPrintLevelAndTypeNames() {
        let malformed = MalformedControlMessage(
            problem: .wrongPayloadSize, level: SOL_SOCKET, type: CInt(SCM_RIGHTS), data: [1, 2])
        #expect("\(malformed)"
            == "MalformedControlMessage(wrongPayloadSize, level: SOL_SOCKET, type: SCM_RIGHTS, 2 bytes)")
        let ip = ReceivedControlMessage.unknown(level: CInt(IPPROTO_IP), type: IP_ORIGDSTADDR, data: [])
        #expect("\(ip)" == "unknown(level: IPPROTO_IP, type: IP_ORIGDSTADDR, data: [])")
        let unknown = ReceivedControlMessage.unknown(level: 999, type: 5, data: [9])
        #expect("\(unknown)" == "unknown(level: 999, type: 5, data: [9])")
        let unknownType = MalformedControlMessage(
            problem: .invalidValue, level: CInt(IPPROTO_IPV6), type: 1234, data: [])
        #expect("\(unknownType)" == "MalformedControlMessage(invalidValue, level: IPPROTO_IPV6, type: 1234, 0 bytes)")
    }

    @Test func emptyAddressPrintsAsUnnamed() throws {
        let pair = try BeyondLoopback.unixPair()
        _ = try pair.first.send([1])
        let (_, sender) = try pair.second.recvFrom(maxCount: 4)
        #expect("\(sender)" == "(unnamed)")
    }
}

@Suite struct NetworkInterfaceTests {
    @Test func loopbackNameAndIndexRoundTrip() throws {
        let index = try NetworkInterface.index(ofName: "lo")
        #expect(index == if_nametoindex("lo"))
        #expect(try NetworkInterface.name(ofIndex: index) == "lo")
    }

    @Test func unknownNamesAndIndexesAreErrors() {
        #expect(throws: Errno.operationNotSupportedByDevice) { try NetworkInterface.index(ofName: "no-such-if0") }
        let tooLong = String(repeating: "x", count: 40)
        #expect(throws: Errno.operationNotSupportedByDevice) { try NetworkInterface.index(ofName: tooLong) }
        #expect(throws: Errno.invalidArgument) { try NetworkInterface.index(ofName: "") }
        #expect(throws: Errno.invalidArgument) { try NetworkInterface.index(ofName: "lo\0x") }
        #expect(throws: Errno.noSuchAddressOrDevice) { try NetworkInterface.name(ofIndex: UInt32(Int32.max)) }
        #expect(throws: Errno.noSuchAddressOrDevice) { try NetworkInterface.name(ofIndex: 0) }
    }
}

@Suite struct SendSegmentedSliceTests {
    /// A prefix of a larger array goes out as segments, without unsafe code.
    @Test func prefixOfAnArrayIsSentSegmented() throws {
        let receiver = try BeyondLoopback.udp(.ipv4)
        let sender = try BeyondLoopback.udp(.ipv4)
        let buffer = (0..<64).map { UInt8($0) }
        #expect(try sender.sendSegmented(buffer[..<30], segmentSize: 10, to: try receiver.localAddr()) == 30)
        #expect(try sender.sendSegmented(buffer[50...], segmentSize: 10, to: try receiver.localAddr()) == 14)
        var received: [[UInt8]] = []
        for _ in 0..<5 { received.append(try receiver.recv(maxCount: 64)) }
        #expect(received == [Array(0..<10), Array(10..<20), Array(20..<30), Array(50..<60), Array(60..<64)])
    }
}

@Suite struct TcpKeepaliveDurationTests {
    /// Values the kernel would refuse, or that would truncate to 0, are refused before
    /// `SO_KEEPALIVE` is switched on.
    @Test(arguments: [
        TcpKeepalive().withTime(.milliseconds(500)),
        TcpKeepalive().withInterval(.milliseconds(999)),
        TcpKeepalive().withTime(.seconds(32_768)),
        TcpKeepalive().withInterval(.seconds(-1)),
        TcpKeepalive().withRetries(0),
        TcpKeepalive().withTime(.seconds(10)).withRetries(128),
    ])
    func outOfRangeIsRefusedBeforeTouchingTheSocket(_ keepalive: TcpKeepalive) throws {
        let socket = try Socket(domain: .ipv4, type: .stream)
        #expect(try !socket.keepalive())
        let before = try socket.tcpKeepaliveTime()
        #expect(throws: Errno.invalidArgument) { try socket.setTcpKeepalive(keepalive) }
        #expect(try !socket.keepalive())
        #expect(try socket.tcpKeepaliveTime() == before)
    }

    /// In range, the fraction of a second is dropped as socket2 does.
    @Test func inRangeValuesAreSetInWholeSeconds() throws {
        let socket = try Socket(domain: .ipv4, type: .stream)
        try socket.setTcpKeepalive(
            TcpKeepalive().withTime(.milliseconds(1_500)).withInterval(.seconds(32_767)).withRetries(127))
        #expect(try socket.keepalive())
        #expect(try socket.tcpKeepaliveTime() == .seconds(1))
        #expect(try socket.tcpKeepaliveInterval() == .seconds(32_767))
        #expect(try socket.tcpKeepaliveRetries() == 127)
    }
}
