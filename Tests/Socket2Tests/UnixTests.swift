// Unix domain sockets: pathname, abstract and unnamed addresses as the kernel reports them,
// stream, datagram and seqpacket sockets, and socket pairs.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Synchronization
import Testing

/// An abstract name no other test (or process) uses.
private func uniqueAbstractName(_ purpose: String) -> [UInt8] {
    TestNet.bytes("socket2-tests-\(getpid())-\(purpose)-\(abstractNameCounter.add(1, ordering: .relaxed).newValue)")
}
private let abstractNameCounter = Atomic<Int>(0)

@Suite("Unix sockets")
struct UnixSocketTests {
    @Test func streamOverAPathname() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("stream.sock")
        let address = try SockAddr.unix(path)
        let listener = try TestNet.socket(.unix, .stream)
        try listener.bind(address)
        try listener.listen(4)
        // What the kernel reports is byte for byte what SockAddr.unix built (length included).
        #expect(try listener.localAddr() == address)
        #expect(try listener.localAddr().asPathname() == path)

        let client = try TestNet.socket(.unix, .stream)
        try client.connect(address)
        #expect(try client.peerAddr() == address)
        #expect(try client.localAddr().isUnnamed())
        let accepted = try listener.accept()
        #expect(accepted.address.isUnnamed() && accepted.address.isUnix())
        #expect(try accepted.socket.localAddr() == address)

        _ = try client.send(TestNet.bytes("over a path"))
        #expect(try accepted.socket.recv(maxCount: 64) == TestNet.bytes("over a path"))
        _ = try accepted.socket.send(TestNet.bytes("and back"))
        #expect(try client.recv(maxCount: 64) == TestNet.bytes("and back"))
    }

    @Test func streamOverAnAbstractName() throws {
        let name = uniqueAbstractName("stream")
        let address = try SockAddr.unixAbstract(name)
        let listener = try TestNet.socket(.unix, .stream)
        try listener.bind(address)
        try listener.listen(4)
        let local = try listener.localAddr()
        #expect(local == address)
        #expect(local.asAbstractNamespace() == name && local.asPathname() == nil)
        #expect(local.len() == socklen_t(2 + 1 + name.count))

        let client = try TestNet.socket(.unix, .stream)
        try client.connect(address)
        let accepted = try listener.accept()
        _ = try client.send(TestNet.bytes("abstract"))
        #expect(try accepted.socket.recv(maxCount: 64) == TestNet.bytes("abstract"))
        #expect(try client.peerAddr().description == "unix:@" + TestNet.text(name))
    }

    @Test func datagramsCarryTheirSender() throws {
        let directory = try TemporaryDirectory()
        let firstAddress = try SockAddr.unix(directory.file("first"))
        let secondAddress = try SockAddr.unix(directory.file("second"))
        let first = try TestNet.socket(.unix, .dgram)
        try first.bind(firstAddress)
        let second = try TestNet.socket(.unix, .dgram)
        try second.bind(secondAddress)

        #expect(try first.sendTo(TestNet.bytes("one"), to: secondAddress) == 3)
        let (bytes, sender) = try second.recvFrom(maxCount: 16)
        #expect(bytes == TestNet.bytes("one") && sender == firstAddress)
        #expect(sender.asPathname() == directory.file("first"))

        // An unbound sender has no name: the kernel reports an address of length 0.
        let anonymous = try TestNet.socket(.unix, .dgram)
        _ = try anonymous.sendToVectored([TestNet.bytes("who")], to: secondAddress)
        var message = MsgHdrMut().withAddr().withBuffers([[UInt8](repeating: 0, count: 8)])
        #expect(try second.recvmsg(&message) == 3)
        #expect(message.address?.len() == 0)

        // Sending to a path nobody is bound to is the kernel's error.
        #expect(throws: Errno.noSuchFileOrDirectory) {
            _ = try first.sendTo(TestNet.bytes("x"), to: SockAddr.unix(directory.file("nobody")))
        }
    }

    @Test func abstractDatagram() throws {
        let name = uniqueAbstractName("dgram")
        let receiver = try TestNet.socket(.unix, .dgram)
        try receiver.bind(SockAddr.unixAbstract(name))
        let senderName = uniqueAbstractName("dgram-sender")
        let sender = try TestNet.socket(.unix, .dgram)
        try sender.bind(SockAddr.unixAbstract(senderName))
        _ = try sender.sendTo(TestNet.bytes("hi"), to: SockAddr.unixAbstract(name))
        let (bytes, from) = try receiver.recvFrom(maxCount: 8)
        #expect(bytes == TestNet.bytes("hi"))
        #expect(from.asAbstractNamespace() == senderName)
    }

    @Test func seqpacketKeepsRecordBoundaries() throws {
        let pair = try TestNet.unixPair(.seqpacket)
        _ = try pair.first.send(TestNet.bytes("first record"), flags: .endOfRecord)
        _ = try pair.first.send(TestNet.bytes("second"))
        _ = try pair.first.sendVectored([TestNet.bytes("th"), TestNet.bytes("ird")])

        // A short buffer gets the start of the record and MSG_TRUNC; the rest is dropped.
        var buffers = [[UInt8](repeating: 0, count: 5)]
        let cut = try pair.second.recvVectored(into: &buffers)
        #expect(cut.count == 5 && cut.flags.isTruncated() && buffers == [TestNet.bytes("first")])
        // Each record comes on its own, whole.
        var message = MsgHdrMut().withBuffers([[UInt8](repeating: 0, count: 64)])
        let count = try pair.second.recvmsg(&message)
        #expect(TestNet.text(message.bufferArrays[0].prefix(count)) == "second")
        #expect(!message.flags().isTruncated())
        #expect(try pair.second.recv(maxCount: 64) == TestNet.bytes("third"))
        // Linux's AF_UNIX does not report MSG_EOR on receipt (SCTP would): the flag reads false.
        #expect(!message.flags().isEndOfRecord())
    }

    @Test func seqpacketListener() throws {
        let name = uniqueAbstractName("seqpacket")
        let listener = try TestNet.socket(.unix, .seqpacket)
        try listener.bind(SockAddr.unixAbstract(name))
        try listener.listen(1)
        let client = try TestNet.socket(.unix, .seqpacket)
        try client.connect(SockAddr.unixAbstract(name))
        let accepted = try listener.accept()
        _ = try client.send(pattern: 3)
        _ = try client.send(pattern: 5)
        #expect(try accepted.socket.recv(maxCount: 100).count == 3)
        #expect(try accepted.socket.recv(maxCount: 100).count == 5)
    }

    @Test(arguments: [SocketType.stream, .dgram, .seqpacket])
    func pairsAreConnectedBothWays(type: SocketType) throws {
        let pair = try TestNet.unixPair(type)
        #expect(try pair.first.localAddr().isUnnamed() && pair.first.peerAddr().isUnnamed())
        #expect(try pair.first.localAddr().description == "unix:(unnamed)")
        _ = try pair.first.send(TestNet.bytes("ping"))
        #expect(try pair.second.recv(maxCount: 8) == TestNet.bytes("ping"))
        _ = try pair.second.send(TestNet.bytes("pong"))
        #expect(try pair.first.recv(maxCount: 8) == TestNet.bytes("pong"))
        #expect(try TestNet.intOption(pair.first.rawDescriptor, SOL_SOCKET, SO_TYPE) == type.rawValue)
        let raw = try Socket.pairRaw(domain: .unix, type: type)
        _ = try raw.second.send(TestNet.bytes("raw"))
        #expect(try raw.first.recv(maxCount: 8, flags: .dontWait) == TestNet.bytes("raw"))
    }

    @Test func pairOfAnotherDomainIsTheKernelsError() {
        #expect(throws: Errno.notSupportedOnSocket) { _ = try Socket.pair(domain: .ipv4, type: .stream) }
    }

    @Test func pathTooLongIsRefusedBeforeTheKernel() throws {
        let directory = try TemporaryDirectory()
        let long = directory.path + "/" + String(repeating: "s", count: 120)
        #expect(throws: Errno.fileNameTooLong) { _ = try SockAddr.unix(long) }
    }
}

extension Socket {
    /// Sends `count` pattern bytes as one message.
    fileprivate func send(pattern count: Int) throws -> Int {
        try send((0..<count).map { UInt8($0) })
    }
}
