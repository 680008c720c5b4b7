import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A connected Unix socket pair (`socketpair(2)`) attached to `reactor`.
func unixPair(_ reactor: Reactor, type: SocketType = .stream) throws -> (AsyncSocket, AsyncSocket) {
    let pair = try Socket.pair(domain: .unix, type: type)
    return (try AsyncSocket(pair.first, reactor: reactor), try AsyncSocket(pair.second, reactor: reactor))
}

/// A UDP socket bound to [::1] (an ephemeral port) and its address.
func udpSocketV6(_ reactor: Reactor) throws -> (AsyncSocket, SockAddr) {
    let socket = try AsyncSocket(domain: .ipv6, type: .dgram, reactor: reactor)
    try socket.bind(SockAddr(SocketAddrV6(.localhost, 0)))
    return (socket, try socket.localAddr())
}

/// The index of the loopback interface.
let loopbackIndex = UInt32(if_nametoindex("lo"))

/// Whether `descriptor` is open and close-on-exec.
func isCloseOnExec(_ descriptor: CInt) -> Bool {
    let flags = fcntl(descriptor, F_GETFD)
    return flags >= 0 && flags & FD_CLOEXEC != 0
}

extension AsyncTests {
@Suite("Control messages and descriptor passing")
struct AsyncControlMessageTests {
    @Test("TTL, TOS and packet info round trip over IPv4, the receive waiting first", arguments: backends)
    func roundTripV4(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            try server.setRecvTtlV4(true)
            try server.setRecvTosV4(true)
            try server.setRecvPktinfoV4(true)
            let (client, clientAddress) = try udpSocket(reactor)
            let message = pattern(300, seed: 4)
            let receiver = Task(executorPreference: reactor) { () -> ([UInt8], ReceivedMessage, Bool) in
                let buffer = TestBuffer(2048)
                var control = ControlMessageBuffer(capacity: 256)
                let received = try await server.recvMsg(into: buffer.raw, control: &control)
                return (buffer.prefix(received.count), received, control.isEmpty && control.capacity == 256)
            }
            await waitUntilPending(reactor)  // the receive waits in the reactor
            let sent = try await client.sendMsg(message, to: serverAddress, control: [.ttlV4(7), .tosV4(0x28)])
            #expect(sent == message.count)
            let (bytes, received, controlEmptied) = try await receiver.value
            #expect(bytes == message)
            #expect(received.count == message.count)
            #expect(received.address == clientAddress)
            #expect(!received.flags.isTruncated() && !received.flags.isControlTruncated())
            #expect(controlEmptied)
            var ttl: Int?, tos: UInt8?, info: PacketInfo?
            for item in received.control {
                switch item {
                case .ttlV4(let value): ttl = value
                case .tosV4(let value): tos = value
                case .packetInfoV4: info = PacketInfo(item)
                default: Issue.record("unexpected control message \(item)")
                }
            }
            #expect(ttl == 7)
            #expect(tos == 0x28)
            #expect(info == PacketInfo(destination: .v4(.localhost), interfaceIndex: loopbackIndex))
        }
    }

    @Test("Hop limit, traffic class and packet info round trip over IPv6", arguments: backends)
    func roundTripV6(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocketV6(reactor)
            try server.setRecvHoplimitV6(true)
            try server.setRecvTclassV6(true)
            try server.setRecvPktinfoV6(true)
            let (client, clientAddress) = try udpSocketV6(reactor)
            let message = pattern(100, seed: 6)
            var control = ControlMessageBuffer()
            try control.append(contentsOf: [.hopLimitV6(9), .trafficClassV6(0x28)])
            let sent = try await client.sendMsg(message, to: serverAddress, control: control)
            #expect(sent == message.count)
            let (bytes, received) = try await server.recvMsg(maxCount: 2048, controlCapacity: 256)
            #expect(bytes == message)
            #expect(received.address == clientAddress)
            var hopLimit: Int?, trafficClass: Int?, info: PacketInfo?
            for item in received.control {
                switch item {
                case .hopLimitV6(let value): hopLimit = value
                case .trafficClassV6(let value): trafficClass = value
                case .packetInfoV6: info = PacketInfo(item)
                default: Issue.record("unexpected control message \(item)")
                }
            }
            #expect(hopLimit == 9)
            #expect(trafficClass == 0x28)
            #expect(info == PacketInfo(destination: .v6(.localhost), interfaceIndex: loopbackIndex))
        }
    }

    @Test("A control buffer too small for what arrives: MSG_CTRUNC, reported last", arguments: backends)
    func controlTruncated(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            try server.setRecvTtlV4(true)
            try server.setRecvPktinfoV4(true)
            let (client, _) = try udpSocket(reactor)
            _ = try await client.sendTo([1, 2, 3], to: serverAddress)
            // Room for the packet info (first) but not for the TTL after it.
            var control = ControlMessageBuffer(capacity: ControlMessage.space(forDataLength: 12))
            let buffer = TestBuffer(16)
            let received = try await server.recvMsg(into: buffer.raw, control: &control)
            #expect(received.count == 3)
            #expect(received.flags.isControlTruncated())
            guard case .truncated = received.control.last else {
                Issue.record("no .truncated at the end: \(received.control)")
                return
            }
        }
    }

    @Test("A socket passed over a Unix socket pair works on the other side", arguments: backends)
    func passSocket(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let baseline = openDescriptors()
            do {
                let (sender, receiver) = try unixPair(reactor)
                // The socket to pass: one end of a datagram pair; this process keeps the other.
                let inner = try Socket.pair(domain: .unix, type: .dgram)
                let kept = try AsyncSocket(inner.second, reactor: reactor)
                let passed = inner.first.intoRawDescriptor()
                let files = Set([sender.rawDescriptor, receiver.rawDescriptor, kept.rawDescriptor, passed].map(fileNamed(by:)))
                let receiving = Task(executorPreference: reactor) { () -> ReceivedMessage in
                    var control = ControlMessageBuffer(capacity: ControlMessage.space(forDataLength: 4 * 4))
                    let buffer = TestBuffer(8)
                    return try await receiver.recvMsg(into: buffer.raw, control: &control)
                }
                await waitUntilPending(reactor)
                #expect(try await sender.sendDescriptors([passed], bytes: [42]) == 1)
                // The sender's own copy goes: what the receiver got is a descriptor of its own.
                #expect(close(passed) == 0)
                let message = try await receiving.value
                #expect(message.count == 1)
                guard message.control.count == 1, case .rights(let descriptors) = message.control[0] else {
                    Issue.record("expected one SCM_RIGHTS message, got \(message.control)")
                    return
                }
                #expect(descriptors.count == 1)
                #expect(descriptors.rawDescriptors.allSatisfy(isCloseOnExec))  // MSG_CMSG_CLOEXEC
                guard let socket = descriptors.takeSocket(at: 0) else {
                    Issue.record("the descriptor could not be taken")
                    return
                }
                let received = try AsyncSocket(socket, reactor: reactor)
                #expect(try received.type() == .dgram)
                #expect(try await received.send([7, 8, 9]) == 3)
                #expect(try await kept.recv(maxCount: 16) == [7, 8, 9])
                #expect(try await kept.send([10]) == 1)
                #expect(try await received.recv(maxCount: 16) == [10])
                for socket in [sender, receiver, kept, received] { try await socket.close() }
                #expect(descriptorsOpened(since: baseline, naming: files) == 0)
            }
        }
    }

    /// Receives a message with `count` descriptors and returns how many descriptors of `files`
    /// the process had open beyond `baseline` while the message was alive; the message goes
    /// away when this returns.
    static func receiveUntaken(
        _ socket: AsyncSocket, count: Int, since baseline: Set<String>, naming files: Set<String>
    ) async throws -> Int {
        let (bytes, message) = try await socket.recvMsg(maxCount: 4, controlCapacity: 256)
        #expect(bytes == [1])
        guard case .rights(let descriptors) = message.control.first else {
            Issue.record("no SCM_RIGHTS message: \(message.control)")
            return -1
        }
        #expect(descriptors.count == count)
        return descriptorsOpened(since: baseline, naming: files)
    }

    @Test("Descriptors received and not taken are closed", arguments: backends)
    func untakenDescriptorsClosed(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (sender, receiver) = try unixPair(reactor, type: .seqpacket)
            // A pipe of the test's own: the descriptors received name what no other test opens.
            let (read, write) = try FileDescriptor.pipe()
            defer { try? read.close(); try? write.close() }
            let files: Set = [fileNamed(by: read.rawValue)]
            let baseline = openDescriptors()
            _ = try await sender.sendDescriptors([read.rawValue, write.rawValue, read.rawValue], bytes: [1])
            let whileHeld = try await Self.receiveUntaken(receiver, count: 3, since: baseline, naming: files)
            #expect(whileHeld == 3)
            #expect(descriptorsOpened(since: baseline, naming: files) == 0)
        }
    }

    @Test("Cancelling a pending recvMsg with control data leaks nothing and loses nothing", arguments: backends)
    func cancelPendingRecvMsg(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (sender, receiver) = try unixPair(reactor)
            let (read, write) = try FileDescriptor.pipe()
            defer { try? read.close(); try? write.close() }
            let files = Set([sender.rawDescriptor, receiver.rawDescriptor, read.rawValue].map(fileNamed(by:)))
            let baseline = openDescriptors()
            let task = Task(executorPreference: reactor) { () -> Int in
                var control = ControlMessageBuffer(capacity: 64)
                let buffer = TestBuffer(16)
                return try await receiver.recvMsg(into: buffer.raw, control: &control).count
            }
            await waitUntilPending(reactor)
            task.cancel()
            await expectCancelled(task)
            #expect(await pendingOperations(reactor) == 0)
            #expect(descriptorsOpened(since: baseline, naming: files) == 0)
            // What is sent afterwards reaches the next receive, descriptors included.
            _ = try await sender.sendDescriptors([read.rawValue, write.rawValue], bytes: [1])
            let whileHeld = try await Self.receiveUntaken(receiver, count: 2, since: baseline, naming: files)
            #expect(whileHeld == 2)
            #expect(descriptorsOpened(since: baseline, naming: files) == 0)
        }
    }

    @Test("The core's names, awaited, wait instead of failing with EAGAIN", arguments: backends)
    func coreNames(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (server, serverAddress) = try udpSocket(reactor)
            try server.setRecvTtlV4(true)
            let (client, _) = try udpSocket(reactor)
            let receiving = Task(executorPreference: reactor) {
                try await server.recvWithControl(maxCount: 64, controlCapacity: 64)
            }
            await waitUntilPending(reactor)
            _ = try await client.sendWithControl([4, 5], to: serverAddress, control: [.ttlV4(5)])
            let (bytes, message) = try await receiving.value
            #expect(bytes == [4, 5])
            guard message.control.count == 1, case .ttlV4(5) = message.control[0] else {
                Issue.record("expected the TTL sent, got \(message.control)")
                return
            }
        }
    }

    @Test("Control values that do not fit their C field are refused before the kernel sees them", arguments: backends)
    func invalidControlRefused(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (client, _) = try udpSocket(reactor)
            await #expect(throws: Errno.invalidArgument) {
                _ = try await client.sendMsg([1], to: loopback(9), control: [.ttlV4(Int(Int32.max) + 1)])
            }
        }
    }
}
}
