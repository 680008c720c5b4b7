import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

// The async forms of the core's fixes of issue 16: close-on-exec on descriptors received by
// every receive with control data, and one representation of an unnamed Unix peer.

extension AsyncTests {
    /// Receives one message with the raw `recvMsg` into memory of its own; returns the
    /// descriptors of its `SCM_RIGHTS` message (now owned by the result) and its flags.
    static func receiveRightsRaw(_ socket: AsyncSocket) async throws -> (descriptors: [CInt], flags: RecvFlags) {
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
        let control = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer {
            data.deallocate()
            control.deallocate()
        }
        let received = try await socket.recvMsg(into: [data], control: control)
        let messages = ReceivedControlMessage.parse(
            received: UnsafeRawBufferPointer(rebasing: control[..<received.controlLength]), flags: received.flags)
        guard case .rights(let descriptors) = messages.first else { return ([], received.flags) }
        return (descriptors.take(), received.flags)
    }

    /// The descriptors of the first `SCM_RIGHTS` message, taken (the caller closes them).
    static func takeRights(_ messages: [ReceivedControlMessage]) -> [CInt] {
        guard case .rights(let descriptors) = messages.first else { return [] }
        return descriptors.take()
    }

    @Test("Descriptors received by every async receive with control data are close-on-exec", arguments: backends)
    func everyAsyncReceiveIsCloseOnExec(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (sender, receiver) = try unixPair(reactor, type: .dgram)
            let passed = try Socket(domain: .ipv4, type: .dgram)
            let fd = passed.rawDescriptor
            var received: [(form: String, descriptors: [CInt])] = []
            // Each form twice: with the message queued before the call, and with the call
            // started first (it may wait: IORING_OP_RECVMSG on io_uring).
            for waitFirst in [false, true] {
                func exchange<R: Sendable>(_ receive: @escaping @Sendable () async throws -> R) async throws -> R {
                    if !waitFirst {
                        _ = try await sender.sendDescriptors([fd])
                        return try await receive()
                    }
                    async let result = receive()
                    _ = try await sender.sendDescriptors([fd])
                    return try await result
                }
                let raw = try await exchange { try await Self.receiveRightsRaw(receiver) }
                #expect(raw.flags.rawValue & CInt(MSG_CMSG_CLOEXEC) == 0, "the kernel's echo is not a message flag")
                received.append(("recvMsg(into:control:) raw", raw.descriptors))
                let typed = try await exchange { try await receiver.recvMsg(maxCount: 4, controlCapacity: 64).message }
                received.append(("recvMsg(maxCount:controlCapacity:)", Self.takeRights(typed.control)))
                let buffered = try await exchange { () async throws -> ReceivedMessage in
                    let capacity = ControlMessageBuffer(receiving: [.rights(1)]).capacity
                    return try await receiver.recvWithControl(maxCount: 4, controlCapacity: capacity).message
                }
                received.append(("recvWithControl(maxCount:controlCapacity:)", Self.takeRights(buffered.control)))
            }
            for (form, descriptors) in received {
                #expect(descriptors.count == 1, "\(form)")
                for descriptor in descriptors {
                    #expect(isCloseOnExec(descriptor), "\(form) (\(backend))")
                    close(descriptor)
                }
            }
        }
    }

    @Test("An unbound Unix sender is the same unnamed address from every async receive", arguments: backends)
    func unnamedPeerIsOneAddress(backend: Reactor.Backend) async throws {
        try await withReactor(backend) { reactor in
            let (sender, receiver) = try unixPair(reactor, type: .dgram)
            _ = try await sender.send([1])
            let (_, fromRecvFrom) = try await receiver.recvFrom(maxCount: 4)
            _ = try await sender.send([2])
            let (_, message) = try await receiver.recvMsg(maxCount: 4, controlCapacity: 0)
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 1)
            defer { raw.deallocate() }
            _ = try await sender.send([3])
            let rawMessage = try await receiver.recvMsg(into: [raw])
            #expect(fromRecvFrom.isUnnamed())
            #expect(message.address == fromRecvFrom)
            #expect(rawMessage.address == fromRecvFrom)
            #expect(message.address?.isUnnamed() == true)
        }
    }
}
