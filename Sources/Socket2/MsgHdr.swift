#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

// `struct msghdr` for `sendmsg(2)` and `recvmsg(2)`, built without dangling pointers.
//
// socket2's `MsgHdr` is a `msghdr` whose pointers borrow the caller's values for Rust lifetimes.
// Swift has no such lifetimes for stored pointers, so these types hold *values* — the address,
// the control bytes, the buffers (as caller-owned pointers or as owned arrays) — and turn them
// into a `msghdr` only for the duration of the call (`withMsghdr`). The batched calls
// (`sendmmsg(2)`, `recvmmsg(2)`) reuse the same hooks.

/// A message for `sendmsg(2)`: destination address, data buffers, control (ancillary) data and
/// flags; socket2's `MsgHdr`, built the same way:
///
/// ```swift
/// let message = MsgHdr().withAddr(destination).withBuffers([header, payload]).withControl(cmsgs)
/// let sent = try socket.sendmsg(message)
/// ```
///
/// It holds values, not pointers (except in the ``IoSlice``s a caller hands to
/// ``withBuffers(_:)-([IoSlice])``): nothing in it can dangle.
public struct MsgHdr: @unchecked Sendable {
    enum Buffers {
        case slices([IoSlice])
        case arrays([[UInt8]])
    }

    var address: SockAddr?
    var buffers: Buffers = .slices([])
    var control: [UInt8] = []
    var flags: CInt = 0

    /// An empty message: no address, no data, no control data (socket2's zeroed `msghdr`).
    public init() {}

    /// The destination (`msg_name`, `msg_namelen`), for an unconnected socket.
    public func withAddr(_ address: SockAddr) -> MsgHdr {
        changing { $0.address = address }
    }

    /// The data to send, gathered from `buffers` in order (`msg_iov`, `msg_iovlen`). The memory
    /// the slices point to must stay valid until the message is sent.
    public func withBuffers(_ buffers: [IoSlice]) -> MsgHdr {
        changing { $0.buffers = .slices(buffers) }
    }

    /// The data to send, gathered from `buffers` in order; the message keeps the arrays (they
    /// are not copied until mutated elsewhere).
    public func withBuffers(_ buffers: [[UInt8]]) -> MsgHdr {
        changing { $0.buffers = .arrays(buffers) }
    }

    /// The control (ancillary) data, already encoded as `cmsghdr`s (`msg_control`,
    /// `msg_controllen`).
    public func withControl(_ control: [UInt8]) -> MsgHdr {
        changing { $0.control = control }
    }

    /// `msg_flags` (which `sendmsg(2)` ignores; kept for socket2's shape).
    public func withFlags(_ flags: MessageFlags) -> MsgHdr {
        changing { $0.flags = flags.rawValue }
    }

    private func changing(_ change: (inout MsgHdr) -> Void) -> MsgHdr {
        var copy = self
        change(&copy)
        return copy
    }

    /// Builds the `msghdr` over this message's values and runs `body` with it; the pointers in
    /// it are valid only inside `body`. The hook of every call that sends a `MsgHdr`.
    func withMsghdr<R>(_ body: (UnsafeMutablePointer<msghdr>) throws(Errno) -> R) throws(Errno) -> R {
        var header = msghdr()
        header.msg_flags = flags
        return try withAddressPointer(address) { (name, length) throws(Errno) -> R in
            header.msg_name = name
            header.msg_namelen = length
            return try withBuffersIovecs { (iovecs) throws(Errno) -> R in
                header.msg_iov = iovecs.baseAddress
                header.msg_iovlen = iovecs.count
                return try withBytes(control) { (control) throws(Errno) -> R in
                    header.msg_control = UnsafeMutableRawPointer(mutating: control.baseAddress)
                    header.msg_controllen = control.count
                    return try body(&header)
                }
            }
        }
    }

    private func withBuffersIovecs<R>(
        _ body: (UnsafeMutableBufferPointer<iovec>) throws(Errno) -> R
    ) throws(Errno) -> R {
        switch buffers {
        case .slices(let slices): return try withIovecs(slices, body)
        case .arrays(let arrays): return try withIovecs(reading: arrays, body)
        }
    }

    /// Builds one `msghdr` for each message, all valid at once, and runs `body` with them: the
    /// hook for `sendmmsg(2)`.
    static func withMsghdrs<R>(
        _ messages: [MsgHdr], _ body: (UnsafeMutableBufferPointer<msghdr>) throws(Errno) -> R
    ) throws(Errno) -> R {
        try withNestedHeaders(count: messages.count, body) { (index, next) throws(Errno) -> R in
            try messages[index].withMsghdr { (header) throws(Errno) in try next(header.pointee) { _ in } }
        }
    }
}

/// A message for `recvmsg(2)`: where to put the sender's address, the data and the control
/// data; socket2's `MsgHdrMut`. After the call it holds what the kernel reported:
///
/// ```swift
/// var message = MsgHdrMut().withAddr()
///     .withBuffers([[UInt8](repeating: 0, count: 1500)]).withControl(capacity: 64)
/// let count = try socket.recvmsg(&message)
/// let sender = message.address, data = message.bufferArrays[0].prefix(count)
/// let controlMessages = message.controlData, truncated = message.flags().isTruncated()
/// ```
///
/// Unlike socket2, the received address keeps the length the kernel wrote (`msg_namelen`), so
/// ``address`` is the sender as it is, ready to compare or reply to.
public struct MsgHdrMut: @unchecked Sendable {
    enum Buffers {
        case slices([MaybeUninitSlice])
        case arrays([[UInt8]])
    }

    /// The sender's address after `recvmsg(2)` when asked for with ``withAddr(_:)``, else `nil`.
    ///
    /// Its length is the one the kernel reported; it is 0 (the empty address, which
    /// ``SockAddr/isUnnamed()`` reports) for a sender without a name, an unbound Unix socket, and
    /// for a connected stream socket, which has no sender address per message.
    public internal(set) var address: SockAddr?
    var buffers: Buffers = .slices([])
    var control: [UInt8] = []
    var controlLength = 0
    var flagsValue: CInt = 0

    /// An empty message: no address, no buffers, no control data.
    public init() {}

    /// Asks for the sender's address, read back as ``address`` after the call. The storage
    /// handed to the kernel is a whole `sockaddr_storage`, so every family fits; `address`'s
    /// content is only the initial value.
    public func withAddr(_ address: SockAddr = SockAddr(storage: .zeroed(), length: 0)) -> MsgHdrMut {
        changing { $0.address = address }
    }

    /// The buffers to scatter the data into, in order (`msg_iov`). The memory the slices point
    /// to must stay valid until the message is received.
    public func withBuffers(_ buffers: [MaybeUninitSlice]) -> MsgHdrMut {
        changing { $0.buffers = .slices(buffers) }
    }

    /// Arrays to scatter the data into, in place: each array's `count` is its buffer's size.
    /// Read them back with ``bufferArrays`` after the call.
    public func withBuffers(_ buffers: [[UInt8]]) -> MsgHdrMut {
        changing { $0.buffers = .arrays(buffers) }
    }

    /// Room for `capacity` bytes of control (ancillary) data (`msg_control`,
    /// `msg_controllen`); read them back with ``controlData``.
    public func withControl(capacity: Int) -> MsgHdrMut {
        changing { $0.control = [UInt8](repeating: 0, count: max(capacity, 0)) }
    }

    private func changing(_ change: (inout MsgHdrMut) -> Void) -> MsgHdrMut {
        var copy = self
        change(&copy)
        return copy
    }

    /// `msg_flags` as the kernel set it (`MSG_TRUNC`, `MSG_CTRUNC`, `MSG_EOR`, `MSG_OOB`, …).
    public func flags() -> RecvFlags { RecvFlags(rawValue: flagsValue).droppingCloseOnExecEcho() }

    /// The number of control bytes the kernel wrote (`msg_controllen` after the call).
    public func controlLen() -> Int { controlLength }

    /// The control data the kernel wrote: the first ``controlLen()`` bytes of the buffer.
    public var controlData: ArraySlice<UInt8> { control.prefix(controlLength) }

    /// The arrays given to ``withBuffers(_:)-([[UInt8]])``, holding the received data (the
    /// call's result says how many bytes, spread over them in order); empty when the message
    /// uses ``MaybeUninitSlice``s.
    public var bufferArrays: [[UInt8]] {
        if case .arrays(let arrays) = buffers { return arrays }
        return []
    }

    /// Builds the `msghdr` over this message's storage, runs `body` with it, and then keeps what
    /// the kernel wrote back: the address length, the control length and the flags. The pointers
    /// are valid only inside `body`. The hook of every call that receives into a `MsgHdrMut`.
    mutating func withMsghdr<R>(
        _ body: (UnsafeMutablePointer<msghdr>) throws(Errno) -> R
    ) throws(Errno) -> R {
        // Move the parts out of `self` (no copy on write), pin each, and put them back after.
        var name = address
        var buffers = self.buffers
        var control = self.control
        self.buffers = .slices([])
        self.control = []
        var header = msghdr()
        header.msg_flags = flagsValue
        defer {
            address = name
            self.buffers = buffers
            self.control = control
            controlLength = min(header.msg_controllen, control.count)
            flagsValue = header.msg_flags
        }
        return try withMutableAddressPointer(&name) { (name, length) throws(Errno) -> R in
            header.msg_name = name
            header.msg_namelen = length.pointee
            defer { length.pointee = header.msg_namelen }
            return try Self.withIovecs(&buffers) { (iovecs) throws(Errno) -> R in
                header.msg_iov = iovecs.baseAddress
                header.msg_iovlen = iovecs.count
                return try withMutableBytes(&control) { (control) throws(Errno) -> R in
                    header.msg_control = control.baseAddress
                    header.msg_controllen = control.count
                    return try body(&header)
                }
            }
        }
    }

    private static func withIovecs<R>(
        _ buffers: inout Buffers, _ body: (UnsafeMutableBufferPointer<iovec>) throws(Errno) -> R
    ) throws(Errno) -> R {
        switch buffers {
        case .slices(let slices):
            return try Socket2.withIovecs(slices, body)
        case .arrays(var arrays):
            buffers = .slices([])  // let `arrays` be the only reference: no copy on write
            defer { buffers = .arrays(arrays) }
            return try Socket2.withIovecs(writing: &arrays, body)
        }
    }

    /// Builds one `msghdr` for each message, all valid at once, runs `body` with them, and keeps
    /// what the kernel wrote back into each (its `msghdr` after `body`): the hook for
    /// `recvmmsg(2)`.
    static func withMsghdrs<R>(
        _ messages: inout [MsgHdrMut], _ body: (UnsafeMutableBufferPointer<msghdr>) throws(Errno) -> R
    ) throws(Errno) -> R {
        try messages.withUnsafeMutableBufferPointer { messages in
            Result { () throws(Errno) -> R in
                try withNestedHeaders(count: messages.count, body) { (index, next) throws(Errno) -> R in
                    try messages[index].withMsghdr { (header) throws(Errno) in
                        try next(header.pointee) { header.pointee = $0 }
                    }
                }
            }
        }.get()
    }
}

// MARK: - Pointers to the values, valid inside a closure

/// Runs `body` with a pointer to `address` and its length, or `nil` and 0.
private func withAddressPointer<R>(
    _ address: SockAddr?, _ body: (UnsafeMutableRawPointer?, socklen_t) throws(Errno) -> R
) throws(Errno) -> R {
    guard let address else { return try body(nil, 0) }
    return try address.withSockaddrPointer { (pointer, length) throws(Errno) -> R in
        try body(UnsafeMutableRawPointer(mutating: pointer), length)
    }
}

/// Runs `body` with a pointer to the whole storage of `address` and a length set to its size;
/// the length `body` leaves is the address's new length. `nil` gives `nil` and 0.
private func withMutableAddressPointer<R>(
    _ address: inout SockAddr?,
    _ body: (UnsafeMutableRawPointer?, UnsafeMutablePointer<socklen_t>) throws(Errno) -> R
) throws(Errno) -> R {
    guard var some = address else {
        var length: socklen_t = 0
        return try body(nil, &length)
    }
    defer { address = some }
    some.setLength(socklen_t(MemoryLayout<sockaddr_storage>.size))
    return try some.withMutableSockaddr { (pointer, length) throws(Errno) -> R in
        try body(UnsafeMutableRawPointer(pointer), length)
    }
}

/// Builds `count` headers, each by a closure nested in the previous one so that all are valid
/// at once, copies them into one contiguous array for `body`, and hands each header back
/// (`writeBack`) after `body` so that a receive can keep what the kernel wrote.
///
/// `header(index, next)` must call `next` with the header of message `index` while its pointers
/// are valid, and a closure that stores a header back into the message.
///
/// The nesting is `count` levels deep (more for messages of many owned arrays): the batched
/// calls should pass at most `UIO_MAXIOV` (1024) messages, which is all the kernel takes.
private func withNestedHeaders<R>(
    count: Int,
    _ body: (UnsafeMutableBufferPointer<msghdr>) throws(Errno) -> R,
    header: (Int, (msghdr, (msghdr) -> Void) throws(Errno) -> R) throws(Errno) -> R
) throws(Errno) -> R {
    try withoutActuallyEscaping(header) { (header) throws(Errno) -> R in
        try withUnsafeTemporaryAllocation(of: msghdr.self, capacity: count) {
            (headers) throws(Errno) -> R in
            func build(_ index: Int) throws(Errno) -> R {
                if index == count { return try body(headers) }
                return try header(index) { (built, writeBack) throws(Errno) -> R in
                    headers.initializeElement(at: index, to: built)
                    defer { writeBack(headers[index]) }
                    return try build(index + 1)
                }
            }
            return try build(0)
        }
    }
}

// MARK: - The calls

extension SocketHandle where Self: ~Copyable {
    /// Sends a message: `sendmsg(2)` with `flags` and `MSG_NOSIGNAL`. Returns the number of
    /// data bytes sent.
    public func sendmsg(_ message: MsgHdr, flags: MessageFlags = []) throws(Errno) -> Int {
        let fd = rawDescriptor
        return try message.withMsghdr { (header) throws(Errno) in
            try system_sendmsg(fd, header, flags.rawValue | noSignal)
        }
    }

    /// Receives a message: `recvmsg(2)` with `flags` and `MSG_CMSG_CLOEXEC`. Returns the number
    /// of data bytes received; `message` then holds the sender's address (with its real length),
    /// the control data and the flags the kernel set.
    ///
    /// Unlike socket2, which passes the caller's flags alone, descriptors received in the control
    /// data (`SCM_RIGHTS`) are close-on-exec, like every descriptor this module creates; the
    /// caller owns them.
    public func recvmsg(_ message: inout MsgHdrMut, flags: MessageFlags = []) throws(Errno) -> Int {
        let fd = rawDescriptor
        return try message.withMsghdr { (header) throws(Errno) in
            try system_recvmsg(fd, header, flags.rawValue | closeOnExecReceived)
        }
    }
}
