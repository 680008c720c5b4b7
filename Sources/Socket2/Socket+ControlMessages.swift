#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

// `sendmsg(2)` and `recvmsg(2)` with control messages (ancillary data): send typed control
// messages, receive them decoded. Every send passes `MSG_NOSIGNAL`.

/// What one `recvmsg(2)` with control data received.
public struct ReceivedMessage: Sendable, CustomStringConvertible {
    /// The bytes of data received (with `MSG_TRUNC` in the call's flags: the datagram's real
    /// length, which may exceed the buffers).
    public var count: Int
    /// The sender's address (`msg_name`): the empty address, which ``SockAddr/isUnnamed()``
    /// reports, when the kernel named none (an unbound Unix socket, a connected stream), as
    /// every receive form reports it. A receive never leaves it `nil`.
    public var address: SockAddr?
    /// The flags the kernel returned (`msg_flags`): truncation of data and of control data.
    public var flags: RecvFlags
    /// The control messages, decoded; ``ReceivedControlMessage/truncated`` last when the
    /// control buffer was too small (`MSG_CTRUNC`).
    public var control: [ReceivedControlMessage]

    /// A received message from its parts (what `recvmsg(2)` reports).
    public init(count: Int, address: SockAddr?, flags: RecvFlags, control: [ReceivedControlMessage]) {
        self.count = count
        self.address = address
        self.flags = flags
        self.control = control
    }

    public var description: String {
        "ReceivedMessage(count: \(count), address: \(address.map { "\($0)" } ?? "nil"), "
            + "flags: \(flags), control: \(control))"
    }
}

// MARK: - Sending

extension SocketHandle where Self: ~Copyable {
    /// Sends the bytes of `buffers`, gathered, with control messages: `sendmsg(2)` with
    /// `MSG_NOSIGNAL` and `flags`. `address` names the destination of a datagram (`nil` on a
    /// connected socket). Returns the number of bytes sent.
    public func sendWithControl(
        _ buffers: [UnsafeRawBufferPointer], to address: SockAddr? = nil,
        control: ControlMessageBuffer, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try withIovecArray(count: buffers.count, { iovecOf(buffers[$0]) }) { (iovecs) throws(Errno) in
            try control.withUnsafeBytes { (control) throws(Errno) in
                try sendmsgWithControl(iovecs, to: address, control: control, flags: flags.rawValue)
            }
        }
    }

    /// Sends `buffer` with control messages: `sendmsg(2)` with `MSG_NOSIGNAL` and `flags`.
    public func sendWithControl(
        _ buffer: UnsafeRawBufferPointer, to address: SockAddr? = nil,
        control: ControlMessageBuffer, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try control.withUnsafeBytes { (control) throws(Errno) in
            try sendmsgWithControl(buffer, to: address, control: control, flags: flags.rawValue)
        }
    }

    /// Sends `bytes` with the control messages `control`, encoded for this call: `sendmsg(2)`
    /// with `MSG_NOSIGNAL` and `flags`.
    ///
    /// - Throws: `Errno.invalidArgument` when a message's value does not fit its C field, or the
    ///   kernel's error.
    public func sendWithControl(
        _ bytes: [UInt8], to address: SockAddr? = nil,
        control: [ControlMessage], flags: MessageFlags = []
    ) throws(Errno) -> Int {
        let buffer = try ControlMessageBuffer(control)
        return try withBytes(bytes) { (bytes) throws(Errno) in
            try sendWithControl(bytes, to: address, control: buffer, flags: flags)
        }
    }

    /// `sendmsg(2)` of one buffer: the common path of the single-buffer sends.
    func sendmsgWithControl(
        _ buffer: UnsafeRawBufferPointer, to address: SockAddr?,
        control: UnsafeRawBufferPointer, flags: CInt
    ) throws(Errno) -> Int {
        var vector = iovecOf(buffer)
        return try withUnsafePointer(to: &vector) { (vector) throws(Errno) in
            try sendmsgWithControl(UnsafeBufferPointer(start: vector, count: 1), to: address,
                            control: control, flags: flags)
        }
    }

    /// `sendmsg(2)`: the one place that fills a `msghdr` for sending.
    func sendmsgWithControl(
        _ iovecs: UnsafeBufferPointer<iovec>, to address: SockAddr?,
        control: UnsafeRawBufferPointer, flags: CInt
    ) throws(Errno) -> Int {
        let fd = rawDescriptor
        func send(_ name: UnsafePointer<sockaddr>?, _ nameLength: socklen_t) throws(Errno) -> Int {
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(mutating: name)
            message.msg_namelen = nameLength
            message.msg_iov = UnsafeMutablePointer(mutating: iovecs.baseAddress)
            message.msg_iovlen = iovecs.count
            message.msg_control = control.isEmpty ? nil : UnsafeMutableRawPointer(mutating: control.baseAddress)
            message.msg_controllen = control.count
            return try system_sendmsg(fd, &message, flags | noSignal)
        }
        guard let address else { return try send(nil, 0) }
        return try address.withSockaddrPointer { (name, length) throws(Errno) in try send(name, length) }
    }
}

// MARK: - Receiving

extension SocketHandle where Self: ~Copyable {
    /// Receives data scattered into `buffers`, with its control messages: `recvmsg(2)` with
    /// `flags`. `control` offers its whole capacity to the kernel and is reused: after the call
    /// it is empty again and the messages are decoded in the result.
    ///
    /// Descriptors received (`SCM_RIGHTS`) are owned by the result (``ReceivedDescriptors``) and
    /// close-on-exec (`MSG_CMSG_CLOEXEC` is always passed), like every descriptor this module
    /// creates.
    public func recvWithControl(
        into buffers: [UnsafeMutableRawBufferPointer], control: inout ControlMessageBuffer,
        flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        try withIovecArray(count: buffers.count, { iovecOf(buffers[$0]) }) { (iovecs) throws(Errno) in
            try recvWithControl(iovecs, control: &control, flags: flags)
        }
    }

    /// Receives data into `buffer` with its control messages: `recvmsg(2)` with `flags`.
    /// `control` is reused as in `recvWithControl(into:control:flags:)`.
    public func recvWithControl(
        into buffer: UnsafeMutableRawBufferPointer, control: inout ControlMessageBuffer,
        flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        var vector = iovecOf(buffer)
        return try withUnsafePointer(to: &vector) { (vector) throws(Errno) in
            try recvWithControl(UnsafeBufferPointer(start: vector, count: 1), control: &control, flags: flags)
        }
    }

    /// Receives data into `buffer` with up to `controlCapacity` bytes of control messages
    /// (size it with ``ControlMessage/space(receiving:)``): `recvmsg(2)` with `flags`.
    public func recvWithControl(
        into buffer: UnsafeMutableRawBufferPointer, controlCapacity: Int, flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        var control = ControlMessageBuffer(capacity: controlCapacity)
        return try recvWithControl(into: buffer, control: &control, flags: flags)
    }

    /// Receives up to `maxCount` bytes and up to `controlCapacity` bytes of control messages:
    /// `recvmsg(2)` with `flags`. Returns the bytes received and the message's facts.
    public func recvWithControl(
        maxCount: Int, controlCapacity: Int, flags: MessageFlags = []
    ) throws(Errno) -> (bytes: [UInt8], message: ReceivedMessage) {
        var control = ControlMessageBuffer(capacity: controlCapacity)
        let (bytes, message) = try receiveArray(maxCount: maxCount) { (buffer) throws(Errno) in
            let message = try recvWithControl(into: buffer, control: &control, flags: flags)
            return (message.count, message)
        }
        return (bytes, message)
    }

    private func recvWithControl(
        _ iovecs: UnsafeBufferPointer<iovec>, control: inout ControlMessageBuffer, flags: MessageFlags
    ) throws(Errno) -> ReceivedMessage {
        let received = try control.receive { (storage, controlLength) throws(Errno) in
            let result = try recvmsgWithControl(iovecs, control: storage, flags: flags.rawValue | closeOnExecReceived)
            controlLength = result.controlLength
            return result
        }
        return ReceivedMessage(count: received.count, address: received.address, flags: received.flags,
                               control: control.takeMessages(flags: received.flags))
    }

    /// `recvmsg(2)` with control data in a buffer on the stack, walked by `visit` without
    /// allocating; descriptors received (`SCM_RIGHTS`) are closed, since nobody owns them.
    /// For the calls that only look for one kind of message.
    func recvWithStackControl(
        into buffer: UnsafeMutableRawBufferPointer = UnsafeMutableRawBufferPointer(start: nil, count: 0),
        flags: MessageFlags, visit: (RawControlMessage) -> Void
    ) throws(Errno) -> (count: Int, address: SockAddr?, flags: RecvFlags) {
        var vector = iovecOf(buffer)
        return try withUnsafePointer(to: &vector) { (vector) throws(Errno) in
            try withUnsafeTemporaryAllocation(
                byteCount: stackControlCapacity, alignment: MemoryLayout<Int>.alignment
            ) { (storage) throws(Errno) in
                let result = try recvmsgWithControl(UnsafeBufferPointer(start: vector, count: 1),
                                                    control: storage, flags: flags.rawValue | closeOnExecReceived)
                let control = UnsafeRawBufferPointer(rebasing: storage[..<result.controlLength])
                forEachControlMessage(in: control, visit)
                closeReceivedDescriptors(in: control)
                return (result.count, result.address, result.flags)
            }
        }
    }

    /// `recvmsg(2)`: the one place that fills a `msghdr` for receiving. `controlLength` is what
    /// the kernel reported, never more than `control.count`; the flags leave out the kernel's
    /// echo of `MSG_CMSG_CLOEXEC`.
    func recvmsgWithControl(
        _ iovecs: UnsafeBufferPointer<iovec>, control: UnsafeMutableRawBufferPointer, flags: CInt
    ) throws(Errno) -> (count: Int, address: SockAddr, flags: RecvFlags, controlLength: Int) {
        let fd = rawDescriptor
        var messageFlags: CInt = 0
        var controlLength = 0
        let (count, address) = try SockAddr.tryInit { (name, nameLength) throws(Errno) -> Int in
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(name)
            message.msg_namelen = nameLength.pointee
            message.msg_iov = UnsafeMutablePointer(mutating: iovecs.baseAddress)
            message.msg_iovlen = iovecs.count
            message.msg_control = control.isEmpty ? nil : control.baseAddress
            message.msg_controllen = control.count
            let count = try system_recvmsg(fd, &message, flags)
            nameLength.pointee = message.msg_namelen
            messageFlags = message.msg_flags
            controlLength = min(message.msg_controllen, control.count)
            return count
        }
        return (count, address, RecvFlags(rawValue: messageFlags).droppingCloseOnExecEcho(), controlLength)
    }
}

/// `MSG_CMSG_CLOEXEC`, or-ed into every receive of control data: descriptors received are
/// close-on-exec from the start, so a concurrent `fork`/`exec` cannot inherit them.
let closeOnExecReceived = CInt(MSG_CMSG_CLOEXEC)

/// Room for the control messages of the calls that read one kind (a UDP_GRO segment size, an
/// error-queue report with an IPv6 offender) next to any other the socket has switched on.
let stackControlCapacity = 512

/// An `iovec` naming `buffer` (the kernel only reads it on a send).
func iovecOf(_ buffer: UnsafeRawBufferPointer) -> iovec {
    iovec(iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress), iov_len: buffer.count)
}

/// An `iovec` naming `buffer`.
func iovecOf(_ buffer: UnsafeMutableRawBufferPointer) -> iovec {
    iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
}

/// Runs `body` over `count` `iovec`s made by `element`, in memory on the stack when small.
func withIovecArray<R>(
    count: Int, _ element: (Int) -> iovec, _ body: (UnsafeBufferPointer<iovec>) throws(Errno) -> R
) throws(Errno) -> R {
    try withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { (vectors) throws(Errno) in
        for index in 0..<count { vectors.initializeElement(at: index, to: element(index)) }
        return try body(UnsafeBufferPointer(vectors))
    }
}

/// Receives into a new array of up to `maxCount` bytes: `body` fills the buffer and returns how
/// many bytes the call reported (the array keeps at most `maxCount`) with what else it received.
///
/// - Throws: `Errno.invalidArgument` for a negative `maxCount`, or what `body` throws.
func receiveArray<R>(
    maxCount: Int, _ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> (count: Int, result: R)
) throws(Errno) -> (bytes: [UInt8], result: R) {
    guard maxCount >= 0 else { throw .invalidArgument }
    var outcome: Result<R, Errno> = .failure(.invalidArgument)
    let bytes = [UInt8](unsafeUninitializedCapacity: maxCount) { buffer, count in
        count = 0
        do throws(Errno) {
            let (received, result) = try body(UnsafeMutableRawBufferPointer(buffer))
            count = min(max(received, 0), maxCount)
            outcome = .success(result)
        } catch {
            outcome = .failure(error)
        }
    }
    return (bytes, try outcome.get())
}
