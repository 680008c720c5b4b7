import Glibc
import SystemPackage
import Testing
@testable import Socket2

@Suite struct ZeroCopyTests {
    /// Reads zero-copy completions from `socket`'s error queue, waiting for `POLLERR` (at most
    /// 5 s each time), until every id in `ids` is covered. Returns the completions read.
    private func completions(
        covering ids: ClosedRange<UInt32>, on socket: borrowing Socket,
        read: (borrowing Socket) throws(Errno) -> ZeroCopyCompletion?
    ) throws -> [ZeroCopyCompletion] {
        var found: [ZeroCopyCompletion] = []
        while !ids.allSatisfy({ id in found.contains { $0.contains(id) } }) {
            let events = BeyondLoopback.poll(socket.rawDescriptor, 0)  // POLLERR is always reported.
            guard events & Int16(POLLERR) != 0 else {
                Issue.record("no completion within 5 s; found \(found)")
                return found
            }
            do {
                while let completion = try read(socket) { found.append(completion) }
            } catch Errno.resourceTemporarilyUnavailable {
                // The queue is empty again.
            } catch {
                throw error
            }
        }
        return found
    }

    /// A TCP connection over loopback whose client has `SO_ZEROCOPY` on.
    private func connection() throws -> SocketPair {
        let listener = try Socket(domain: .ipv4, type: .stream)
        try listener.bind(SockAddr(SocketAddrV4(.localhost, 0)))
        try listener.listen(1)
        let client = try Socket(domain: .ipv4, type: .stream)
        try client.connect(listener.localAddr())
        let accepted = try listener.accept()
        let server = accepted.socket
        try BeyondLoopback.boundReceives(server)
        try client.setOption(SOL_SOCKET, SO_ZEROCOPY, CInt(1))
        return SocketPair(first: client, second: server)
    }

    /// Sends three buffers with MSG_ZEROCOPY (ids 0, 1, 2), lets the peer read them, and
    /// returns the completions `read` finds on the error queue.
    private func sendThreeAndCollect(
        _ read: (borrowing Socket) throws(Errno) -> ZeroCopyCompletion?
    ) throws -> [ZeroCopyCompletion] {
        let pair = try connection()
        let buffer = [UInt8](repeating: 0x5A, count: 4096)
        for _ in 0..<3 {
            let sent = try buffer.withUnsafeBytes { try pair.first.sendZeroCopy($0) }
            #expect(sent == 4096)
        }
        var received = 0
        while received < 3 * 4096 {
            let bytes = try pair.second.recv(maxCount: 3 * 4096)
            #expect(!bytes.isEmpty && bytes.allSatisfy { $0 == 0x5A })
            received += bytes.count
        }
        // The buffer stays alive (and unchanged) until here, after the completions.
        return try withExtendedLifetime(buffer) {
            try completions(covering: 0...2, on: pair.first, read: read)
        }
    }

    @Test func completionsCoverEveryZeroCopySend() throws {
        let found = try sendThreeAndCollect { (socket) throws(Errno) in try socket.recvZeroCopyCompletion() }
        #expect(!found.isEmpty)
        #expect(found.allSatisfy { $0.first <= $0.last && $0.last <= 2 })
    }

    /// The same completions through the general error-queue receive, as control messages.
    @Test func completionsAsControlMessages() throws {
        var control = ControlMessageBuffer(capacity: 128)
        let found = try sendThreeAndCollect { (socket) throws(Errno) in
            let message = try socket.recvErrorQueue(control: &control)
            #expect(message.flags.rawValue & CInt(MSG_ERRQUEUE) != 0)
            #expect(message.control.count == 1)
            if case .zeroCopy(let completion) = message.control.first { return completion }
            Issue.record("\(message)")
            return nil
        }
        #expect(!found.isEmpty)
    }

    @Test func emptyErrorQueueDoesNotBlock() throws {
        let socket = try BeyondLoopback.udp(.ipv4)
        #expect(throws: Errno.resourceTemporarilyUnavailable) { try socket.recvZeroCopyCompletion() }
        var control = ControlMessageBuffer(capacity: 64)
        #expect(throws: Errno.resourceTemporarilyUnavailable) { try socket.recvErrorQueue(control: &control) }
    }

    @Test func udpZeroCopySendCompletes() throws {
        let receiver = try BeyondLoopback.udp(.ipv6)
        let sender = try BeyondLoopback.udp(.ipv6)
        try sender.setOption(SOL_SOCKET, SO_ZEROCOPY, CInt(1))
        let buffer = [UInt8](repeating: 0x33, count: 1200)
        let sent = try buffer.withUnsafeBytes { try sender.sendToZeroCopy($0, to: receiver.localAddr()) }
        #expect(sent == 1200)
        #expect(try receiver.recv(maxCount: 2000) == buffer)
        let found = try withExtendedLifetime(buffer) {
            try completions(covering: 0...0, on: sender) { (socket) throws(Errno) in try socket.recvZeroCopyCompletion() }
        }
        #expect(found.contains { $0.contains(0) })
    }

    /// An ICMP "port unreachable" from the error queue (`IP_RECVERR`): a real `sock_extended_err`
    /// with its offender address, decoded.
    @Test(arguments: [Domain.ipv4, .ipv6])
    func icmpErrorFromTheErrorQueue(_ domain: Domain) throws {
        let closedPort = try BeyondLoopback.closedUdpPort(domain)
        let sender = try BeyondLoopback.udp(domain)
        if domain == .ipv6 {
            try sender.setOption(CInt(IPPROTO_IPV6), IPV6_RECVERR, CInt(1))
        } else {
            try sender.setOption(CInt(IPPROTO_IP), IP_RECVERR, CInt(1))
        }
        _ = try sender.sendTo([1, 2, 3], to: closedPort)
        #expect(BeyondLoopback.poll(sender.rawDescriptor, 0) & Int16(POLLERR) != 0)
        var control = ControlMessageBuffer(capacity: 128)
        var payload = [UInt8](repeating: 0, count: 16)
        let message = try payload.withUnsafeMutableBytes { try sender.recvErrorQueue(into: $0, control: &control) }
        #expect(message.count == 3 && payload.prefix(3) == [1, 2, 3])
        #expect(message.address == closedPort)
        guard message.control.count == 1, case .extendedError(let error) = message.control[0]
        else { Issue.record("\(message)"); return }
        #expect(error.error == .connectionRefused)
        if domain == .ipv6 {
            #expect(error.origin == .icmp6 && error.type == 1 && error.code == 4)
            #expect(error.level == CInt(IPPROTO_IPV6))
            #expect(error.offender?.asSocketIpv6()?.ip == .localhost)
        } else {
            #expect(error.origin == .icmp && error.type == 3 && error.code == 3)
            #expect(error.level == CInt(IPPROTO_IP))
            #expect(error.offender?.asSocketIpv4()?.ip == .localhost)
        }
    }
}
