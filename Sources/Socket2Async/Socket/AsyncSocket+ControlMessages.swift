#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// Control messages (ancillary data) from async code: typed messages sent and received through
// the raw `sendMsg`/`recvMsg`, and descriptors passed over Unix sockets. The control bytes live
// in memory of the call's own for as long as the kernel may use them (io_uring reads and writes
// them after submission), so the caller's values need not stay put across suspensions.

// MARK: - Receiving

extension AsyncSocket {
    /// Receives a message scattered into `buffers`, with its sender and its control messages
    /// decoded: `recvmsg(2)` or `IORING_OP_RECVMSG`, with `MSG_CMSG_CLOEXEC` and `flags`.
    ///
    /// `control` offers its capacity to the kernel (size it by the kinds expected with
    /// `ControlMessageBuffer(receiving:)`); like the core's
    /// `recvWithControl(into:control:flags:)` it is empty after the call, and the messages are in
    /// the result. Descriptors received (`SCM_RIGHTS`) are close-on-exec and owned by the result's
    /// `ReceivedDescriptors`, which closes those not taken. A call cancelled while it waits
    /// received nothing: no descriptor is lost or leaked.
    public nonisolated(nonsending) func recvMsg(
        into buffers: [UnsafeMutableRawBufferPointer], control: inout ControlMessageBuffer,
        flags: MessageFlags = []
    ) async throws -> ReceivedMessage {
        let capacity = control.capacity
        control.removeAll()
        return try await recvMsg(into: buffers, controlCapacity: capacity, flags: flags)
    }

    /// Receives a message into `buffer` with its sender and control messages decoded (see
    /// `recvMsg(into:control:flags:)`).
    public nonisolated(nonsending) func recvMsg(
        into buffer: UnsafeMutableRawBufferPointer, control: inout ControlMessageBuffer,
        flags: MessageFlags = []
    ) async throws -> ReceivedMessage {
        try await recvMsg(into: [buffer], control: &control, flags: flags)
    }

    /// Receives a message of up to `maxCount` bytes with up to `controlCapacity` bytes of control
    /// messages: `recvmsg(2)` or `IORING_OP_RECVMSG`, with `MSG_CMSG_CLOEXEC` and `flags`.
    /// Returns the bytes and the message's facts (count, sender, flags, decoded control
    /// messages, which own any descriptors received).
    public nonisolated(nonsending) func recvMsg(
        maxCount: Int, controlCapacity: Int, flags: MessageFlags = []
    ) async throws -> (bytes: [UInt8], message: ReceivedMessage) {
        try await withScratch(max(maxCount, 0)) { buffer in
            let message = try await recvMsg(into: [buffer], controlCapacity: controlCapacity, flags: flags)
            return (Array(UnsafeRawBufferPointer(rebasing: buffer[..<min(message.count, buffer.count)])), message)
        }
    }

    /// The raw `recvMsg` with `controlCapacity` bytes of control memory of its own, decoded at
    /// once: from the kernel's write to the parse nothing can suspend, so every descriptor
    /// received ends up owned by the result.
    private nonisolated(nonsending) func recvMsg(
        into buffers: [UnsafeMutableRawBufferPointer], controlCapacity: Int, flags: MessageFlags
    ) async throws -> ReceivedMessage {
        let capacity = max(controlCapacity, 0)
        return try await withScratch(capacity) { control in
            let received = try await recvMsg(into: buffers, control: capacity > 0 ? control : nil, flags: flags)
            let length = min(max(received.controlLength, 0), capacity)
            let messages = ReceivedControlMessage.parse(
                received: UnsafeRawBufferPointer(rebasing: control[..<length]), flags: received.flags)
            return ReceivedMessage(count: received.count, address: received.address, flags: received.flags,
                                   control: messages)
        }
    }
}

// MARK: - Sending

extension AsyncSocket {
    /// Sends a message gathered from `buffers` with the control messages encoded in `control`,
    /// optionally to `address`: `sendmsg(2)` or `IORING_OP_SENDMSG`, with `MSG_NOSIGNAL` and
    /// `flags`. Returns the number of bytes sent.
    public nonisolated(nonsending) func sendMsg(
        _ buffers: [UnsafeRawBufferPointer], to address: SockAddr? = nil,
        control: ControlMessageBuffer, flags: MessageFlags = []
    ) async throws -> Int {
        if control.isEmpty { return try await sendMsg(buffers, to: address, flags: flags) }
        return try await withScratch(control.count) { scratch in
            control.withUnsafeBytes { scratch.copyMemory(from: $0) }
            return try await sendMsg(buffers, to: address, control: UnsafeRawBufferPointer(scratch), flags: flags)
        }
    }

    /// Sends `bytes` with the control messages encoded in `control`, optionally to `address`:
    /// `sendmsg(2)` or `IORING_OP_SENDMSG`, with `MSG_NOSIGNAL` and `flags`.
    public nonisolated(nonsending) func sendMsg(
        _ bytes: [UInt8], to address: SockAddr? = nil, control: ControlMessageBuffer,
        flags: MessageFlags = []
    ) async throws -> Int {
        try await withCopy(bytes) { try await sendMsg([$0], to: address, control: control, flags: flags) }
    }

    /// Sends `bytes` with the control messages `control`, encoded for this call, optionally to
    /// `address`: `sendmsg(2)` or `IORING_OP_SENDMSG`, with `MSG_NOSIGNAL` and `flags`.
    ///
    /// - Throws: `Errno.invalidArgument` when a message's value does not fit its C field, or
    ///   what the send throws.
    public nonisolated(nonsending) func sendMsg(
        _ bytes: [UInt8], to address: SockAddr? = nil, control: [ControlMessage],
        flags: MessageFlags = []
    ) async throws -> Int {
        try await sendMsg(bytes, to: address, control: ControlMessageBuffer(control), flags: flags)
    }

    /// Passes open descriptors to the peer of a Unix socket: `sendmsg(2)` or
    /// `IORING_OP_SENDMSG` of `bytes` with one `SCM_RIGHTS` control message.
    ///
    /// The kernel installs duplicates in the receiving process (which gets them with
    /// `recvMsg(into:control:flags:)` as
    /// `ReceivedControlMessage.rights`); the caller still owns, and closes, its own. A stream
    /// socket carries the descriptors with the data, so `bytes` must not be empty there (the
    /// default is one zero byte). At most 253 descriptors (`SCM_MAX_FD`) per message.
    ///
    /// Returns the number of bytes sent.
    public nonisolated(nonsending) func sendDescriptors(
        _ descriptors: [CInt], bytes: [UInt8] = [0], to address: SockAddr? = nil
    ) async throws -> Int {
        try await sendMsg(bytes, to: address, control: [.rights(descriptors)])
    }
}

// MARK: - The core's names

// The core calls these `recvWithControl` / `sendWithControl`. On an `AsyncSocket` the core's
// synchronous forms would fail with `EAGAIN` whenever they would block; these async forms, which
// an `await` selects, wait instead.

extension AsyncSocket {
    /// `recvMsg(into:control:flags:)` under the core's name: receives into `buffers` with control
    /// messages decoded, waiting when nothing is queued.
    public nonisolated(nonsending) func recvWithControl(
        into buffers: [UnsafeMutableRawBufferPointer], control: inout ControlMessageBuffer,
        flags: MessageFlags = []
    ) async throws -> ReceivedMessage {
        try await recvMsg(into: buffers, control: &control, flags: flags)
    }

    /// `recvMsg(into:control:flags:)` under the core's name, into one buffer.
    public nonisolated(nonsending) func recvWithControl(
        into buffer: UnsafeMutableRawBufferPointer, control: inout ControlMessageBuffer,
        flags: MessageFlags = []
    ) async throws -> ReceivedMessage {
        try await recvMsg(into: [buffer], control: &control, flags: flags)
    }

    /// Receives into `buffer` with up to `controlCapacity` bytes of control messages, decoded:
    /// `recvmsg(2)` or `IORING_OP_RECVMSG` (see `recvMsg(into:control:flags:)`).
    public nonisolated(nonsending) func recvWithControl(
        into buffer: UnsafeMutableRawBufferPointer, controlCapacity: Int, flags: MessageFlags = []
    ) async throws -> ReceivedMessage {
        try await recvMsg(into: [buffer], controlCapacity: controlCapacity, flags: flags)
    }

    /// `recvMsg(maxCount:controlCapacity:flags:)` under the core's name.
    public nonisolated(nonsending) func recvWithControl(
        maxCount: Int, controlCapacity: Int, flags: MessageFlags = []
    ) async throws -> (bytes: [UInt8], message: ReceivedMessage) {
        try await recvMsg(maxCount: maxCount, controlCapacity: controlCapacity, flags: flags)
    }

    /// `sendMsg(_:to:control:flags:)` under the core's name: sends `buffers` with the control
    /// messages in `control`, waiting when the socket cannot take them now.
    public nonisolated(nonsending) func sendWithControl(
        _ buffers: [UnsafeRawBufferPointer], to address: SockAddr? = nil,
        control: ControlMessageBuffer, flags: MessageFlags = []
    ) async throws -> Int {
        try await sendMsg(buffers, to: address, control: control, flags: flags)
    }

    /// `sendMsg(_:to:control:flags:)` under the core's name, from one buffer.
    public nonisolated(nonsending) func sendWithControl(
        _ buffer: UnsafeRawBufferPointer, to address: SockAddr? = nil,
        control: ControlMessageBuffer, flags: MessageFlags = []
    ) async throws -> Int {
        try await sendMsg([buffer], to: address, control: control, flags: flags)
    }

    /// `sendMsg(_:to:control:flags:)` under the core's name: sends `bytes` with the control
    /// messages `control`, encoded for this call.
    public nonisolated(nonsending) func sendWithControl(
        _ bytes: [UInt8], to address: SockAddr? = nil, control: [ControlMessage], flags: MessageFlags = []
    ) async throws -> Int {
        try await sendMsg(bytes, to: address, control: control, flags: flags)
    }
}
