// The send and receive families on loopback: plain, with flags, peeking, out-of-band,
// vectored, through MsgHdr, sendfile, and sending to a peer that has gone.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

private let loopbackDomains = [Domain.ipv4, .ipv6]

/// 0, 1, 2, … as bytes: a datagram whose every byte says where it belongs.
private func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0) } }

@Suite("Stream I/O")
struct StreamIOTests {
    @Test(arguments: loopbackDomains)
    func sendAndReceiveRawBuffers(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        let sent = try TestNet.bytes("hello").withUnsafeBytes { try pair.first.send($0) }
        #expect(sent == 5)
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { try pair.second.recv(into: $0) }
        #expect(Array(buffer[..<count]) == TestNet.bytes("hello"))
    }

    @Test(arguments: loopbackDomains)
    func sendAndReceiveWithFlags(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        _ = try TestNet.bytes("abc").withUnsafeBytes { try pair.first.sendWithFlags($0, flags: .more) }
        _ = try TestNet.bytes("def").withUnsafeBytes { try pair.first.sendWithFlags($0, flags: []) }
        var buffer = [UInt8](repeating: 0, count: 6)
        // MSG_PEEK leaves the bytes queued; MSG_WAITALL waits for all six.
        let peeked = try buffer.withUnsafeMutableBytes {
            try pair.second.recvWithFlags(into: $0, flags: [.peek, .waitAll])
        }
        #expect(peeked == 6 && buffer == TestNet.bytes("abcdef"))
        buffer = [UInt8](repeating: 0, count: 6)
        let count = try buffer.withUnsafeMutableBytes { try pair.second.recvWithFlags(into: $0, flags: .waitAll) }
        #expect(count == 6 && buffer == TestNet.bytes("abcdef"))
    }

    @Test(arguments: loopbackDomains)
    func arraysAndEndOfStream(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        #expect(try pair.first.send(TestNet.bytes("array")) == 5)
        #expect(try pair.second.recv(maxCount: 100) == TestNet.bytes("array"))
        #expect(try pair.second.send(TestNet.bytes("back"), flags: .dontWait) == 4)
        #expect(try pair.first.recv(maxCount: 2) == TestNet.bytes("ba"))
        #expect(try pair.first.recv(maxCount: 2) == TestNet.bytes("ck"))
    }

    @Test func receiveReturnsEmptyAtEndOfStream() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        let client = pair.first
        let server = pair.second
        _ = try client.send(TestNet.bytes("last"))
        _ = consume client
        #expect(try server.recv(maxCount: 16) == TestNet.bytes("last"))
        #expect(try server.recv(maxCount: 16) == [])
    }

    @Test(arguments: loopbackDomains)
    func peekLeavesTheData(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        _ = try pair.first.send(TestNet.bytes("peekaboo"))
        TestNet.wait(for: POLLIN, on: pair.second.rawDescriptor)
        var buffer = [UInt8](repeating: 0, count: 4)
        let count = try buffer.withUnsafeMutableBytes { try pair.second.peek(into: $0) }
        #expect(count == 4 && buffer == TestNet.bytes("peek"))
        #expect(try pair.second.recv(maxCount: 8, flags: .waitAll) == TestNet.bytes("peekaboo"))
    }
}

@Suite("Datagram I/O")
struct DatagramIOTests {
    @Test(arguments: loopbackDomains)
    func sendToAndReceiveFrom(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain, connected: false)
        let destination = try pair.second.localAddr()
        let sent = try TestNet.bytes("datagram").withUnsafeBytes { try pair.first.sendTo($0, to: destination) }
        #expect(sent == 8)
        var buffer = [UInt8](repeating: 0, count: 64)
        let (count, sender) = try buffer.withUnsafeMutableBytes { try pair.second.recvFrom(into: $0) }
        #expect(Array(buffer[..<count]) == TestNet.bytes("datagram"))
        #expect(sender == (try pair.first.localAddr()))
        #expect(sender.len() == (domain == .ipv4 ? 16 : 28))
    }

    @Test func sendFlagsReachTheKernel() throws {
        let pair = try TestNet.udpPair(.ipv4, connected: false)
        let destination = try pair.second.localAddr()
        // MSG_OOB makes no sense for UDP: IPv4's UDP refuses it, which shows the flag got there.
        #expect(throws: Errno.notSupportedOnSocket) {
            _ = try TestNet.bytes("x").withUnsafeBytes {
                try pair.first.sendToWithFlags($0, to: destination, flags: .outOfBand)
            }
        }
        #expect(throws: Errno.notSupportedOnSocket) {
            _ = try pair.first.sendTo(TestNet.bytes("x"), to: destination, flags: .outOfBand)
        }
        #expect(throws: Errno.notSupportedOnSocket) {
            _ = try TestNet.bytes("x").withUnsafeBytes {
                try pair.first.sendToVectoredWithFlags([IoSlice($0)], to: destination, flags: .outOfBand)
            }
        }
        #expect(throws: Errno.notSupportedOnSocket) {
            _ = try pair.first.sendToVectored([TestNet.bytes("x")], to: destination, flags: .outOfBand)
        }
        #expect(throws: Errno.notSupportedOnSocket) {
            _ = try pair.first.sendmsg(MsgHdr().withAddr(destination).withBuffers([[1]]), flags: .outOfBand)
        }
    }

    @Test(arguments: loopbackDomains)
    func receiveFlagsReachTheKernel(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain, connected: false)
        let destination = try pair.second.localAddr()
        _ = try TestNet.bytes("twice").withUnsafeBytes {
            try pair.first.sendToWithFlags($0, to: destination, flags: .confirm)
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        let peeked = try buffer.withUnsafeMutableBytes { try pair.second.recvFromWithFlags(into: $0, flags: .peek) }
        #expect(try peeked.count == 5 && peeked.address == pair.first.localAddr())
        let (bytes, sender) = try pair.second.recvFrom(maxCount: 16)
        #expect(bytes == TestNet.bytes("twice") && sender == peeked.address)
    }

    @Test(arguments: loopbackDomains)
    func connectedDatagrams(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain)
        #expect(try pair.first.send(TestNet.bytes("one")) == 3)
        #expect(try pair.second.recv(maxCount: 16) == TestNet.bytes("one"))
        #expect(try pair.second.send(TestNet.bytes("two")) == 3)
        let (bytes, sender) = try pair.first.recvFrom(maxCount: 16)
        #expect(try bytes == TestNet.bytes("two") && sender == pair.second.localAddr())
    }

    @Test(arguments: loopbackDomains)
    func aDatagramLargerThanTheBufferIsCutAndConsumed(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain)
        _ = try pair.first.send(pattern(100))
        _ = try pair.first.send(pattern(100))
        _ = try pair.first.send(TestNet.bytes("next"))
        #expect(try pair.second.recvFrom(maxCount: 10).bytes == pattern(10))
        // With MSG_TRUNC the kernel returns the real length (100); the array holds what fit.
        #expect(try pair.second.recv(maxCount: 10, flags: .truncate) == pattern(10))
        var buffer = [UInt8](repeating: 0, count: 10)
        let real = try buffer.withUnsafeMutableBytes { try pair.second.recvWithFlags(into: $0, flags: .truncate) }
        #expect(real == 4 && Array(buffer[..<4]) == TestNet.bytes("next"))
    }

    @Test(arguments: loopbackDomains)
    func peekFromAndPeekSender(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain, connected: false)
        let senderAddress = try pair.first.localAddr()
        _ = try pair.first.sendTo(pattern(100), to: pair.second.localAddr())
        #expect(try pair.second.peekSender() == senderAddress)
        var buffer = [UInt8](repeating: 0, count: 20)
        let (count, address) = try buffer.withUnsafeMutableBytes { try pair.second.peekFrom(into: $0) }
        #expect(count == 20 && buffer == pattern(20) && address == senderAddress)
        // Still whole after both peeks (peekSender's small buffer did not cut it).
        let (bytes, sender) = try pair.second.recvFrom(maxCount: 200)
        #expect(bytes == pattern(100) && sender == senderAddress)
    }

    @Test func emptyDatagram() throws {
        let pair = try TestNet.udpPair(.ipv4)
        #expect(try pair.first.send([]) == 0)
        #expect(try pair.first.sendVectored([] as [[UInt8]]) == 0)
        #expect(try pair.second.recvFrom(maxCount: 8).bytes == [])
        var buffers = [[UInt8](repeating: 0, count: 8)]
        #expect(try pair.second.recvVectored(into: &buffers).count == 0)
    }
}

@Suite("Out-of-band data")
struct OutOfBandTests {
    @Test(arguments: loopbackDomains)
    func urgentByteArrivesOutOfBand(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        _ = try pair.first.send(TestNet.bytes("ab"))
        #expect(try TestNet.bytes("!").withUnsafeBytes { try pair.first.sendOutOfBand($0) } == 1)
        TestNet.wait(for: POLLPRI, on: pair.second.rawDescriptor)
        var urgent: [UInt8] = [0]
        let count = try urgent.withUnsafeMutableBytes { try pair.second.recvOutOfBand(into: $0) }
        #expect(count == 1 && urgent == TestNet.bytes("!"))
        // The normal data is still in order, without the urgent byte.
        #expect(try pair.second.recv(maxCount: 8) == TestNet.bytes("ab"))
    }

    @Test func vectoredAndMessageFormsCarryTheFlag() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        let sent = try TestNet.bytes("?").withUnsafeBytes {
            try pair.first.sendVectoredWithFlags([IoSlice($0)], flags: .outOfBand)
        }
        #expect(sent == 1)
        TestNet.wait(for: POLLPRI, on: pair.second.rawDescriptor)
        var message = MsgHdrMut().withBuffers([[UInt8](repeating: 0, count: 4)])
        #expect(try pair.second.recvmsg(&message, flags: .outOfBand) == 1)
        #expect(message.flags().isOutOfBand())
        #expect(message.bufferArrays[0][0] == UInt8(ascii: "?"))

        _ = try pair.first.send(TestNet.bytes("#"), flags: .outOfBand)
        TestNet.wait(for: POLLPRI, on: pair.second.rawDescriptor)
        var buffers = [[UInt8](repeating: 0, count: 1)]
        let received = try pair.second.recvVectored(into: &buffers, flags: .outOfBand)
        #expect(received.count == 1 && received.flags.isOutOfBand() && buffers == [TestNet.bytes("#")])
    }
}

@Suite("Vectored I/O")
struct VectoredIOTests {
    @Test(arguments: loopbackDomains)
    func gatherAndScatterOverAStream(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        let parts = ["hello ", "vectored ", "world"].map(TestNet.bytes)
        let sent = try parts[0].withUnsafeBytes { a in
            try parts[1].withUnsafeBytes { b in
                try parts[2].withUnsafeBytes { c in
                    let slices = [IoSlice(a), IoSlice(b), IoSlice(c)]
                    #expect(slices[1].buffer.baseAddress == b.baseAddress && slices[1].buffer.count == 9)
                    return try pair.first.sendVectored(slices)
                }
            }
        }
        #expect(sent == 20)
        let first = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
        let second = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
        defer { first.deallocate(); second.deallocate() }
        let slices = [MaybeUninitSlice(first), MaybeUninitSlice(second)]
        #expect(slices[1].buffer.baseAddress == second.baseAddress && slices[1].buffer.count == 16)
        let (count, flags) = try pair.second.recvVectoredWithFlags(slices, flags: .waitAll)
        #expect(count == 20 && !flags.isTruncated())
        #expect(Array(first) == TestNet.bytes("hell") && Array(second) == TestNet.bytes("o vectored world"))
    }

    @Test(arguments: loopbackDomains)
    func datagramLargerThanTheBuffersIsTruncated(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain)
        _ = try pair.first.send(pattern(100))
        _ = try pair.first.send(pattern(100))
        var small = [UInt8](repeating: 0, count: 10)
        var large = [UInt8](repeating: 0, count: 20)
        let (count, flags) = try small.withUnsafeMutableBytes { a in
            try large.withUnsafeMutableBytes { b in try pair.second.recvVectored([MaybeUninitSlice(a), MaybeUninitSlice(b)]) }
        }
        #expect(count == 30 && flags.isTruncated())
        #expect(small == pattern(10) && large == Array(pattern(30)[10...]))
        // MSG_TRUNC: the real length.
        let real = try small.withUnsafeMutableBytes { try pair.second.recvVectoredWithFlags([MaybeUninitSlice($0)], flags: .truncate) }
        #expect(real.count == 100 && real.flags.isTruncated())
    }

    @Test(arguments: loopbackDomains)
    func sendToAndReceiveFromVectored(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain, connected: false)
        let destination = try pair.second.localAddr()
        let senderAddress = try pair.first.localAddr()
        let sent = try TestNet.bytes("to ").withUnsafeBytes { a in
            try TestNet.bytes("you").withUnsafeBytes { b in try pair.first.sendToVectored([IoSlice(a), IoSlice(b)], to: destination) }
        }
        #expect(sent == 6)
        _ = try TestNet.bytes("again").withUnsafeBytes {
            try pair.first.sendToVectoredWithFlags([IoSlice($0)], to: destination, flags: .confirm)
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        let peeked = try buffer.withUnsafeMutableBytes {
            try pair.second.recvFromVectoredWithFlags([MaybeUninitSlice($0)], flags: .peek)
        }
        #expect(peeked.count == 6 && peeked.address == senderAddress && !peeked.flags.isTruncated())
        buffer = [UInt8](repeating: 0, count: 4)
        let received = try buffer.withUnsafeMutableBytes { try pair.second.recvFromVectored([MaybeUninitSlice($0)]) }
        #expect(received.count == 4 && received.flags.isTruncated() && received.address == senderAddress)
        #expect(buffer == TestNet.bytes("to y"))
        #expect(try pair.second.recv(maxCount: 16) == TestNet.bytes("again"))
    }

    @Test(arguments: loopbackDomains)
    func arraysInPlace(domain: Domain) throws {
        let pair = try TestNet.tcpPair(domain)
        #expect(try pair.first.sendVectored([TestNet.bytes("abc"), [], TestNet.bytes("defgh")]) == 8)
        var buffers = [[UInt8](repeating: 0, count: 2), [UInt8](repeating: 9, count: 8)]
        let copy = buffers  // the caller's other references are not written through
        TestNet.wait(for: POLLIN, on: pair.second.rawDescriptor)
        let (count, flags) = try pair.second.recvVectored(into: &buffers)
        #expect(count == 8 && !flags.isTruncated())
        #expect(buffers == [TestNet.bytes("ab"), TestNet.bytes("cdefgh") + [9, 9]])
        #expect(copy == [[0, 0], [UInt8](repeating: 9, count: 8)])
    }

    @Test(arguments: loopbackDomains)
    func datagramArrays(domain: Domain) throws {
        let pair = try TestNet.udpPair(domain, connected: false)
        let destination = try pair.second.localAddr()
        #expect(try pair.first.sendToVectored([pattern(50), Array(pattern(100)[50...])], to: destination) == 100)
        var buffers = [[UInt8](repeating: 0, count: 30), [UInt8](repeating: 0, count: 30)]
        let (count, flags, sender) = try pair.second.recvFromVectored(into: &buffers)
        #expect(try count == 60 && flags.isTruncated() && sender == pair.first.localAddr())
        #expect(buffers[0] + buffers[1] == pattern(60))
    }

    @Test func tooManyBuffersIsMessageTooLong() throws {
        let pair = try TestNet.udpPair(.ipv4)
        let many = [[UInt8]](repeating: [1], count: 1025)
        #expect(throws: Errno.messageTooLong) { _ = try pair.first.sendVectored(many) }
        var receive = many
        #expect(throws: Errno.messageTooLong) { _ = try pair.second.recvVectored(into: &receive) }
        // The kernel's own limit for caller-built slices.
        let byte: [UInt8] = [1]
        byte.withUnsafeBytes { raw in
            _ = #expect(throws: Errno.messageTooLong) {
                _ = try pair.first.sendVectored([IoSlice](repeating: IoSlice(raw), count: 1025))
            }
        }
        // 1024 is allowed.
        #expect(try pair.first.sendVectored([[UInt8]](repeating: [1], count: 1024)) == 1024)
        #expect(try pair.second.recv(maxCount: 2048).count == 1024)
    }
}

@Suite("MsgHdr")
struct MsgHdrTests {
    @Test(arguments: loopbackDomains)
    func sendmsgAndRecvmsgWithAddresses(domain: Domain) throws {
        let receiver = try TestNet.socket(domain, .dgram)
        try receiver.bind(TestNet.loopback(domain))
        let first = try TestNet.socket(domain, .dgram)
        try first.bind(TestNet.loopback(domain))
        let second = try TestNet.socket(domain, .dgram)
        try second.bind(TestNet.loopback(domain))
        let destination = try receiver.localAddr()

        let message = MsgHdr().withAddr(destination).withBuffers([TestNet.bytes("head-"), TestNet.bytes("body")])
        #expect(try first.sendmsg(message) == 9)
        #expect(try second.sendmsg(message.withBuffers([TestNet.bytes("2")])) == 1)

        // Start from an address of another family and length: what comes back is the sender.
        var received = MsgHdrMut().withAddr(try SockAddr.unix("/not/this")).withBuffers([[UInt8](repeating: 0, count: 16)])
        let count = try receiver.recvmsg(&received)
        #expect(count == 9)
        #expect(received.address == (try first.localAddr()))
        #expect(received.address?.len() == (domain == .ipv4 ? 16 : 28))
        #expect(TestNet.text(received.bufferArrays[0].prefix(count)) == "head-body")
        #expect(!received.flags().isTruncated() && received.controlLen() == 0)

        // The same message again: the new sender, with its own length.
        #expect(try receiver.recvmsg(&received) == 1)
        #expect(received.address == (try second.localAddr()))
    }

    @Test func messageDefaults() {
        let message = MsgHdrMut()
        #expect(message.address == nil && message.bufferArrays.isEmpty)
        #expect(message.flags() == RecvFlags(rawValue: 0) && message.controlLen() == 0 && message.controlData.isEmpty)
    }

    @Test func streamMessagesHaveNoSenderAddress() throws {
        let pair = try TestNet.tcpPair(.ipv4)
        _ = try pair.first.sendmsg(MsgHdr().withBuffers([TestNet.bytes("s")]))
        var message = MsgHdrMut().withAddr().withBuffers([[0]])
        #expect(try pair.second.recvmsg(&message) == 1)
        #expect(message.address?.len() == 0)
        // recvFromVectored reports the same empty address.
        _ = try pair.first.send(TestNet.bytes("t"))
        var buffers = [[UInt8](repeating: 0, count: 1)]
        #expect(try pair.second.recvFromVectored(into: &buffers).address.len() == 0)
    }

    @Test func flagsReachTheKernel() throws {
        let pair = try TestNet.udpPair(.ipv4)
        // msg_flags is not a call flag: sendmsg ignores it.
        #expect(try pair.first.sendmsg(MsgHdr().withBuffers([[1, 2]]).withFlags(.outOfBand)) == 2)
        var message = MsgHdrMut().withBuffers([[0]])
        #expect(try pair.second.recvmsg(&message, flags: [.peek, .truncate]) == 2)
        #expect(message.flags().isTruncated())
        #expect(try pair.second.recv(maxCount: 4) == [1, 2])
    }

    @Test func uninitialisedSlices() throws {
        let pair = try TestNet.unixPair(.dgram)
        _ = try pair.first.sendmsg(MsgHdr().withBuffers([pattern(12)]))
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 12, alignment: 8)
        defer { memory.deallocate() }
        var message = MsgHdrMut().withBuffers([
            MaybeUninitSlice(UnsafeMutableRawBufferPointer(rebasing: memory[..<5])),
            MaybeUninitSlice(UnsafeMutableRawBufferPointer(rebasing: memory[5...])),
        ])
        #expect(try pair.second.recvmsg(&message) == 12)
        #expect(Array(memory) == pattern(12))
        #expect(message.bufferArrays.isEmpty)
    }

    /// One `SCM_RIGHTS` control message carrying `fd`, laid out as `CMSG_SPACE(sizeof(int))`.
    private func rightsMessage(_ fd: CInt) -> [UInt8] {
        var header = cmsghdr()
        header.cmsg_len = MemoryLayout<cmsghdr>.size + MemoryLayout<CInt>.size
        header.cmsg_level = SOL_SOCKET
        header.cmsg_type = CInt(SCM_RIGHTS)
        var bytes = withUnsafeBytes(of: header) { Array($0) }
        bytes += withUnsafeBytes(of: fd) { Array($0) }
        return bytes + [UInt8](repeating: 0, count: 4)
    }

    @Test func controlDataPassesADescriptor() throws {
        let pair = try TestNet.unixPair(.dgram)
        let passed = try Socket(domain: .ipv4, type: .dgram)
        let message = MsgHdr().withBuffers([[42]]).withControl(rightsMessage(passed.rawDescriptor))
        #expect(try pair.first.sendmsg(message) == 1)

        var received = MsgHdrMut().withBuffers([[0]]).withControl(capacity: 64)
        #expect(try pair.second.recvmsg(&received) == 1)
        #expect(!received.flags().isControlTruncated())
        let control = Array(received.controlData)
        #expect(control.count == received.controlLen())
        try #require(received.controlLen() == MemoryLayout<cmsghdr>.size + 8)  // CMSG_SPACE(sizeof(int))
        let header = control.withUnsafeBytes { $0.loadUnaligned(as: cmsghdr.self) }
        #expect(header.cmsg_level == SOL_SOCKET && header.cmsg_type == CInt(SCM_RIGHTS))
        #expect(header.cmsg_len == MemoryLayout<cmsghdr>.size + 4)
        let fd = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: MemoryLayout<cmsghdr>.size, as: CInt.self) }
        let arrived = Socket(rawDescriptor: fd)
        #expect(arrived.rawDescriptor != passed.rawDescriptor)
        #expect(OpenDescriptors.inode(of: arrived.rawDescriptor) == OpenDescriptors.inode(of: passed.rawDescriptor))
    }

    @Test func controlDataThatDoesNotFitIsTruncated() throws {
        let pair = try TestNet.unixPair(.dgram)
        let passed = try Socket(domain: .ipv4, type: .dgram)
        _ = try pair.first.sendmsg(MsgHdr().withBuffers([[42]]).withControl(rightsMessage(passed.rawDescriptor)))
        var received = MsgHdrMut().withBuffers([[0]]).withControl(capacity: 8)
        #expect(try pair.second.recvmsg(&received) == 1)
        #expect(received.flags().isControlTruncated())
        #expect(received.controlLen() == 0)
    }
}

@Suite("sendfile")
struct SendfileTests {
    /// A temporary file holding the alphabet.
    private func alphabetFile(in directory: TemporaryDirectory) throws -> FileDescriptor {
        try directory.makeFile("alphabet", contents: TestNet.bytes("abcdefghijklmnopqrstuvwxyz"))
    }

    @Test func sendsAPartOfAFileWithoutMovingItsPosition() throws {
        let directory = try TemporaryDirectory()
        let file = try alphabetFile(in: directory)
        defer { try? file.close() }
        let pair = try TestNet.tcpPair(.ipv4)
        #expect(try pair.first.sendfile(file, offset: 3, count: 5) == 5)
        #expect(try pair.second.recv(maxCount: 5, flags: .waitAll) == TestNet.bytes("defgh"))
        #expect(try file.seek(offset: 0, from: .current) == 0)
        // No count: the rest of the file.
        #expect(try pair.first.sendfile(file.rawValue, offset: 20) == 6)
        #expect(try pair.second.recv(maxCount: 6, flags: .waitAll) == TestNet.bytes("uvwxyz"))
        #expect(try pair.first.sendfile(file, offset: 26, count: nil) == 0)
        #expect(try pair.first.sendfile(file, offset: 0, count: 0) == 0)
    }

    @Test func refusesNegativeNumbers() throws {
        let directory = try TemporaryDirectory()
        let file = try alphabetFile(in: directory)
        defer { try? file.close() }
        let pair = try TestNet.unixPair(.stream)
        #expect(throws: Errno.invalidArgument) { _ = try pair.first.sendfile(file, offset: 0, count: -1) }
        #expect(throws: Errno.invalidArgument) { _ = try pair.first.sendfile(file, offset: -1, count: 1) }
        #expect(throws: Errno.badFileDescriptor) { _ = try pair.first.sendfile(CInt(901), offset: 0, count: 1) }
    }
}

/// Sends to a peer that is gone: every send of the module gets `EPIPE` and the process lives on
/// (without `MSG_NOSIGNAL` the kernel would raise `SIGPIPE`, which kills a Swift process).
@Suite("Sending to a closed peer")
struct BrokenPipeTests {
    typealias Send = @Sendable (SockRef, SockAddr, FileDescriptor) throws -> Int

    static let sends: [(String, Send)] = [
        ("send raw", { s, _, _ in try [UInt8]([1]).withUnsafeBytes { try s.send($0) } }),
        ("sendWithFlags", { s, _, _ in try [UInt8]([1]).withUnsafeBytes { try s.sendWithFlags($0, flags: .more) } }),
        ("sendOutOfBand", { s, _, _ in try [UInt8]([1]).withUnsafeBytes { try s.sendOutOfBand($0) } }),
        ("sendTo raw", { s, a, _ in try [UInt8]([1]).withUnsafeBytes { try s.sendTo($0, to: a) } }),
        ("sendToWithFlags", { s, a, _ in try [UInt8]([1]).withUnsafeBytes { try s.sendToWithFlags($0, to: a, flags: []) } }),
        ("send array", { s, _, _ in try s.send([1]) }),
        ("sendTo array", { s, a, _ in try s.sendTo([1], to: a) }),
        ("sendVectored", { s, _, _ in try [UInt8]([1]).withUnsafeBytes { try s.sendVectored([IoSlice($0)]) } }),
        ("sendVectoredWithFlags", { s, _, _ in
            try [UInt8]([1]).withUnsafeBytes { try s.sendVectoredWithFlags([IoSlice($0)], flags: []) }
        }),
        ("sendToVectored", { s, a, _ in try [UInt8]([1]).withUnsafeBytes { try s.sendToVectored([IoSlice($0)], to: a) } }),
        ("sendToVectoredWithFlags", { s, a, _ in
            try [UInt8]([1]).withUnsafeBytes { try s.sendToVectoredWithFlags([IoSlice($0)], to: a, flags: []) }
        }),
        ("sendVectored arrays", { s, _, _ in try s.sendVectored([[1], [2]]) }),
        ("sendToVectored arrays", { s, a, _ in try s.sendToVectored([[1], [2]], to: a) }),
        ("sendmsg", { s, _, _ in try s.sendmsg(MsgHdr().withBuffers([[1]])) }),
        ("sendfile", { s, _, file in try s.sendfile(file, offset: 0, count: 1) }),
    ]

    @Test(arguments: sends)
    func tcpPeerThatReset(name: String, send: Send) throws {
        let pair = try TestNet.tcpPair(.ipv4)
        let client = pair.first
        let peer = try client.peerAddr()
        _ = consume pair.second
        // Data to a closed socket makes its kernel answer with a reset; wait for it, and take
        // the reset's own error so that what follows is the broken pipe.
        _ = try client.send([0])
        let events = TestNet.wait(for: 0, on: client.rawDescriptor)
        #expect(events & CInt(POLLHUP) != 0)
        // (ECONNRESET, or EPIPE for a connection the peer had already finished)
        #expect(try [ECONNRESET, EPIPE].contains(TestNet.intOption(client.rawDescriptor, SOL_SOCKET, SO_ERROR)))
        try expectBrokenPipe(name, send, on: SockRef(client), to: peer)
    }

    @Test(arguments: sends.filter { !$0.0.contains("To") })
    func unixPeerThatClosed(name: String, send: Send) throws {
        let pair = try TestNet.unixPair(.stream)
        let first = pair.first
        _ = consume pair.second
        try expectBrokenPipe(name, send, on: SockRef(first), to: SockAddr.unix(""))
    }

    /// `send` on `socket`, with a small file for `sendfile`, must throw `EPIPE`.
    private func expectBrokenPipe(_ name: String, _ send: Send, on socket: SockRef, to address: SockAddr) throws {
        let directory = try TemporaryDirectory()
        let file = try directory.makeFile("data", contents: [1, 2, 3])
        defer { try? file.close() }
        #expect(throws: Errno.brokenPipe, "\(name)") { _ = try send(socket, address, file) }
    }
}
