#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

// Safe forms of the raw-buffer calls, over the standard library's spans (Swift 6.2: SE-0447,
// SE-0467, SE-0485). A receive appends to an `OutputRawSpan` (its initialized bytes grow by what
// arrived) or overwrites the front of a `MutableRawSpan`; a send reads a `RawSpan`. Each one
// hands the span's memory to its raw form inside the smallest unsafe scope: the same system
// call, flags, results and errors, and no allocation.
//
// Arrays cannot hold spans (they are non-escapable), so the vectored forms take two spans: the
// two halves of a ring buffer, or a header and a body.

// MARK: - Adapters

/// Runs `receive` over the free capacity of `span`, then counts the bytes it wrote as
/// initialized. `receive` returns the call's byte count, which with `MSG_TRUNC` may exceed the
/// room: the span keeps what fit.
@inline(__always)
func appendReceived<R>(
    to span: inout OutputRawSpan,
    _ receive: (UnsafeMutableRawBufferPointer) throws(Errno) -> (count: Int, result: R)
) throws(Errno) -> R {
    try span.withUnsafeMutableBytes { (buffer, initialized) throws(Errno) -> R in
        let free = UnsafeMutableRawBufferPointer(rebasing: buffer[initialized...])
        let (count, result) = try receive(free)
        initialized += min(max(count, 0), free.count)
        return result
    }
}

/// ``appendReceived(to:_:)`` for a typed `OutputSpan<UInt8>`, as `Array(capacity:initializingWith:)`
/// and `Array.append(addingCapacity:initializingWith:)` hand out.
@inline(__always)
func appendReceived<R>(
    to span: inout OutputSpan<UInt8>,
    _ receive: (UnsafeMutableRawBufferPointer) throws(Errno) -> (count: Int, result: R)
) throws(Errno) -> R {
    try span.withUnsafeMutableBufferPointer { (buffer, initialized) throws(Errno) -> R in
        let free = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[initialized...]))
        let (count, result) = try receive(free)
        initialized += min(max(count, 0), free.count)
        return result
    }
}

/// ``appendReceived(to:_:)`` for the calls whose only result is the byte count.
@inline(__always)
func appendReceived(
    to span: inout OutputRawSpan, _ receive: (UnsafeMutableRawBufferPointer) throws(Errno) -> Int
) throws(Errno) -> Int {
    try appendReceived(to: &span) { (free) throws(Errno) in
        let count = try receive(free)
        return (count, count)
    }
}

/// Runs `receive` over the free capacity of two spans at once (the first is filled first), then
/// counts the bytes written into each as initialized.
@inline(__always)
func appendReceived<R>(
    to first: inout OutputRawSpan, _ second: inout OutputRawSpan,
    _ receive: (UnsafeBufferPointer<iovec>) throws(Errno) -> (count: Int, result: R)
) throws(Errno) -> R {
    try appendReceived(to: &first) { (free1) throws(Errno) in
        var count = 0
        let result = try appendReceived(to: &second) { (free2) throws(Errno) in
            let (received, result) = try withIovecArray(
                count: 2, { $0 == 0 ? iovecOf(free1) : iovecOf(free2) }, receive)
            count = received
            // What did not fit in the first span went to the second.
            return (received - min(max(received, 0), free1.count), result)
        }
        return (count, result)
    }
}

// MARK: - Receiving into an OutputRawSpan

extension SocketHandle where Self: ~Copyable {
    /// Receives data after the initialized bytes of `buffer`: `recv(2)` with no flags. The
    /// span's initialized count grows by the bytes received. Returns that number, 0 at end of
    /// stream (or when the span has no free capacity).
    ///
    /// The safe form of ``recv(into:)-(UnsafeMutableRawBufferPointer)``.
    public func recv(into buffer: inout OutputRawSpan) throws(Errno) -> Int {
        try recvWithFlags(into: &buffer, flags: [])
    }

    /// Receives data after the initialized bytes of `buffer`: `recv(2)` with `flags`.
    ///
    /// With ``MessageFlags/truncate`` the result is a datagram's real length, which may exceed
    /// the free capacity; the span grows by the bytes that fit.
    public func recvWithFlags(into buffer: inout OutputRawSpan, flags: MessageFlags) throws(Errno) -> Int {
        let fd = rawDescriptor
        return try appendReceived(to: &buffer) { (free) throws(Errno) in
            try system_recv(fd, free, flags.rawValue)
        }
    }

    /// Receives out-of-band data after the initialized bytes of `buffer`: `recv(2)` with
    /// `MSG_OOB`.
    public func recvOutOfBand(into buffer: inout OutputRawSpan) throws(Errno) -> Int {
        try recvWithFlags(into: &buffer, flags: .outOfBand)
    }

    /// Copies queued data after the initialized bytes of `buffer` without removing it from the
    /// queue: `recv(2)` with `MSG_PEEK`.
    public func peek(into buffer: inout OutputRawSpan) throws(Errno) -> Int {
        try recvWithFlags(into: &buffer, flags: .peek)
    }

    /// Receives a datagram after the initialized bytes of `buffer`, and its sender:
    /// `recvfrom(2)` with no flags.
    public func recvFrom(into buffer: inout OutputRawSpan) throws(Errno) -> (count: Int, address: SockAddr) {
        try recvFromWithFlags(into: &buffer, flags: [])
    }

    /// Receives a datagram after the initialized bytes of `buffer`, and its sender:
    /// `recvfrom(2)` with `flags`. With ``MessageFlags/truncate`` the count is the datagram's
    /// real length; the span grows by the bytes that fit.
    public func recvFromWithFlags(
        into buffer: inout OutputRawSpan, flags: MessageFlags
    ) throws(Errno) -> (count: Int, address: SockAddr) {
        try appendReceived(to: &buffer) { (free) throws(Errno) in
            let result = try recvFromWithFlags(into: free, flags: flags)
            return (result.count, result)
        }
    }

    /// Copies the next datagram after the initialized bytes of `buffer`, with its sender,
    /// without removing it: `recvfrom(2)` with `MSG_PEEK`.
    public func peekFrom(into buffer: inout OutputRawSpan) throws(Errno) -> (count: Int, address: SockAddr) {
        try recvFromWithFlags(into: &buffer, flags: .peek)
    }

    /// Receives data after the initialized bytes of `buffer`, with its control messages:
    /// `recvmsg(2)` with `flags` and `MSG_CMSG_CLOEXEC`. `control` is reused as in the raw form.
    /// ``ReceivedMessage/count`` is what the kernel reported; the span grows by what fit.
    public func recvWithControl(
        into buffer: inout OutputRawSpan, control: inout ControlMessageBuffer, flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        try appendReceived(to: &buffer) { (free) throws(Errno) in
            let message = try recvWithControl(into: free, control: &control, flags: flags)
            return (message.count, message)
        }
    }

    /// Receives data after the initialized bytes of `buffer` with up to `controlCapacity` bytes
    /// of control messages: `recvmsg(2)` with `flags`.
    public func recvWithControl(
        into buffer: inout OutputRawSpan, controlCapacity: Int, flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        var control = ControlMessageBuffer(capacity: controlCapacity)
        return try recvWithControl(into: &buffer, control: &control, flags: flags)
    }

    /// Receives one buffer of coalesced datagrams after the initialized bytes of `buffer`, and
    /// its `UDP_GRO` segment size: `recvmsg(2)` with `flags`, without allocating.
    public func recvCoalesced(
        into buffer: inout OutputRawSpan, flags: MessageFlags = []
    ) throws(Errno) -> CoalescedDatagrams {
        try appendReceived(to: &buffer) { (free) throws(Errno) in
            let datagrams = try recvCoalesced(into: free, flags: flags)
            return (datagrams.count, datagrams)
        }
    }

    /// Reads one message from the socket's error queue, its data after the initialized bytes of
    /// `buffer`: `recvmsg(2)` with `MSG_ERRQUEUE` and `flags`. Never blocks.
    public func recvErrorQueue(
        into buffer: inout OutputRawSpan, control: inout ControlMessageBuffer, flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        try recvWithControl(into: &buffer, control: &control, flags: flags.union(.errorQueue))
    }

    /// Receives data scattered over the free capacity of `first`, then of `second`:
    /// `recvmsg(2)` with `flags`. Each span grows by the bytes written into it. Returns the
    /// bytes received and the flags the kernel set (``RecvFlags/isTruncated()`` when a datagram
    /// was larger than both).
    public func recvVectored(
        into first: inout OutputRawSpan, _ second: inout OutputRawSpan, flags: MessageFlags = []
    ) throws(Errno) -> (count: Int, flags: RecvFlags) {
        let result = try recvFromVectored(into: &first, &second, flags: flags)
        return (result.count, result.flags)
    }

    /// Receives a datagram scattered over the free capacity of `first`, then of `second`, with
    /// its sender: `recvmsg(2)` with `flags`. The address has the length the kernel reported
    /// (0 on a connected stream socket).
    public func recvFromVectored(
        into first: inout OutputRawSpan, _ second: inout OutputRawSpan, flags: MessageFlags = []
    ) throws(Errno) -> (count: Int, flags: RecvFlags, address: SockAddr) {
        try appendReceived(to: &first, &second) { (iovecs) throws(Errno) in
            let received = try recvmsgWithControl(
                iovecs, control: UnsafeMutableRawBufferPointer(start: nil, count: 0), flags: flags.rawValue)
            let address = received.address
            return (received.count, (received.count, received.flags, address))
        }
    }
}

// MARK: - Receiving into an OutputSpan<UInt8>

extension SocketHandle where Self: ~Copyable {
    /// Receives data after the initialized bytes of `buffer`: `recv(2)` with `flags`. The
    /// span's count grows by the bytes received; the result is what the kernel reported (with
    /// ``MessageFlags/truncate``, a datagram's real length).
    ///
    /// The standard library hands out this span to fill a new array or the end of one, safely:
    /// `try [UInt8](capacity: 1500) { try socket.recv(into: &$0) }`.
    @discardableResult
    public func recv(into buffer: inout OutputSpan<UInt8>, flags: MessageFlags = []) throws(Errno) -> Int {
        let fd = rawDescriptor
        return try appendReceived(to: &buffer) { (free) throws(Errno) in
            let count = try system_recv(fd, free, flags.rawValue)
            return (count, count)
        }
    }

    /// Receives a datagram after the initialized bytes of `buffer`, and its sender:
    /// `recvfrom(2)` with `flags`.
    @discardableResult
    public func recvFrom(
        into buffer: inout OutputSpan<UInt8>, flags: MessageFlags = []
    ) throws(Errno) -> (count: Int, address: SockAddr) {
        try appendReceived(to: &buffer) { (free) throws(Errno) in
            let result = try recvFromWithFlags(into: free, flags: flags)
            return (result.count, result)
        }
    }
}

// MARK: - Receiving into a MutableRawSpan

extension SocketHandle where Self: ~Copyable {
    /// Receives data into the front of `buffer`, overwriting it: `recv(2)` with no flags.
    /// Returns the number of bytes written, 0 at end of stream (or for an empty span).
    ///
    /// The safe form of ``recv(into:)-(UnsafeMutableRawBufferPointer)`` for a buffer reused from
    /// call to call; ``recv(into:)-(OutputRawSpan)`` appends instead.
    public func recv(into buffer: inout MutableRawSpan) throws(Errno) -> Int {
        try recvWithFlags(into: &buffer, flags: [])
    }

    /// Receives data into the front of `buffer`: `recv(2)` with `flags`. With
    /// ``MessageFlags/truncate`` the result may exceed `buffer.byteCount`.
    public func recvWithFlags(into buffer: inout MutableRawSpan, flags: MessageFlags) throws(Errno) -> Int {
        let fd = rawDescriptor
        return try buffer.withUnsafeMutableBytes { (bytes) throws(Errno) in
            try system_recv(fd, bytes, flags.rawValue)
        }
    }

    /// Receives out-of-band data into the front of `buffer`: `recv(2)` with `MSG_OOB`.
    public func recvOutOfBand(into buffer: inout MutableRawSpan) throws(Errno) -> Int {
        try recvWithFlags(into: &buffer, flags: .outOfBand)
    }

    /// Copies queued data into the front of `buffer` without removing it: `recv(2)` with
    /// `MSG_PEEK`.
    public func peek(into buffer: inout MutableRawSpan) throws(Errno) -> Int {
        try recvWithFlags(into: &buffer, flags: .peek)
    }

    /// Receives a datagram into the front of `buffer`, and its sender: `recvfrom(2)` with no
    /// flags.
    public func recvFrom(into buffer: inout MutableRawSpan) throws(Errno) -> (count: Int, address: SockAddr) {
        try recvFromWithFlags(into: &buffer, flags: [])
    }

    /// Receives a datagram into the front of `buffer`, and its sender: `recvfrom(2)` with
    /// `flags`.
    public func recvFromWithFlags(
        into buffer: inout MutableRawSpan, flags: MessageFlags
    ) throws(Errno) -> (count: Int, address: SockAddr) {
        try buffer.withUnsafeMutableBytes { (bytes) throws(Errno) in
            try recvFromWithFlags(into: bytes, flags: flags)
        }
    }

    /// Copies the next datagram into the front of `buffer`, with its sender, without removing
    /// it: `recvfrom(2)` with `MSG_PEEK`.
    public func peekFrom(into buffer: inout MutableRawSpan) throws(Errno) -> (count: Int, address: SockAddr) {
        try recvFromWithFlags(into: &buffer, flags: .peek)
    }

    /// Receives data into the front of `buffer` with its control messages: `recvmsg(2)` with
    /// `flags` and `MSG_CMSG_CLOEXEC`. `control` is reused as in the raw form.
    public func recvWithControl(
        into buffer: inout MutableRawSpan, control: inout ControlMessageBuffer, flags: MessageFlags = []
    ) throws(Errno) -> ReceivedMessage {
        try buffer.withUnsafeMutableBytes { (bytes) throws(Errno) in
            try recvWithControl(into: bytes, control: &control, flags: flags)
        }
    }

    /// Receives one buffer of coalesced datagrams into the front of `buffer`, and its `UDP_GRO`
    /// segment size: `recvmsg(2)` with `flags`, without allocating.
    public func recvCoalesced(
        into buffer: inout MutableRawSpan, flags: MessageFlags = []
    ) throws(Errno) -> CoalescedDatagrams {
        try buffer.withUnsafeMutableBytes { (bytes) throws(Errno) in
            try recvCoalesced(into: bytes, flags: flags)
        }
    }
}

// MARK: - Sending from a RawSpan

extension SocketHandle where Self: ~Copyable {
    /// Sends the bytes of `buffer`: `send(2)` with `MSG_NOSIGNAL`. Returns the number of bytes
    /// sent.
    ///
    /// The safe form of ``send(_:)-(UnsafeRawBufferPointer)``.
    public func send(_ buffer: RawSpan) throws(Errno) -> Int {
        try sendWithFlags(buffer, flags: [])
    }

    /// Sends the bytes of `buffer`: `send(2)` with `flags` and `MSG_NOSIGNAL`.
    public func sendWithFlags(_ buffer: RawSpan, flags: MessageFlags) throws(Errno) -> Int {
        let fd = rawDescriptor
        return try buffer.withUnsafeBytes { (bytes) throws(Errno) in
            try system_send(fd, bytes, flags.rawValue | noSignal)
        }
    }

    /// Sends the bytes of `buffer` as out-of-band data: `send(2)` with `MSG_OOB | MSG_NOSIGNAL`.
    public func sendOutOfBand(_ buffer: RawSpan) throws(Errno) -> Int {
        try sendWithFlags(buffer, flags: .outOfBand)
    }

    /// Sends the bytes of `buffer` as a datagram to `address`: `sendto(2)` with `MSG_NOSIGNAL`.
    public func sendTo(_ buffer: RawSpan, to address: SockAddr) throws(Errno) -> Int {
        try sendToWithFlags(buffer, to: address, flags: [])
    }

    /// Sends the bytes of `buffer` as a datagram to `address`: `sendto(2)` with `flags` and
    /// `MSG_NOSIGNAL`.
    public func sendToWithFlags(_ buffer: RawSpan, to address: SockAddr, flags: MessageFlags) throws(Errno) -> Int {
        try buffer.withUnsafeBytes { (bytes) throws(Errno) in
            try sendToWithFlags(bytes, to: address, flags: flags)
        }
    }

    /// Sends the bytes of `buffer` with control messages: `sendmsg(2)` with `MSG_NOSIGNAL` and
    /// `flags`. `address` names the destination of a datagram (`nil` on a connected socket).
    public func sendWithControl(
        _ buffer: RawSpan, to address: SockAddr? = nil, control: ControlMessageBuffer, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try buffer.withUnsafeBytes { (bytes) throws(Errno) in
            try sendWithControl(bytes, to: address, control: control, flags: flags)
        }
    }

    /// Sends the bytes of `buffer` as datagrams of `segmentSize` bytes each in one call:
    /// `sendmsg(2)` with a `UDP_SEGMENT` control message, `MSG_NOSIGNAL` and `flags`.
    public func sendSegmented(
        _ buffer: RawSpan, segmentSize: UInt16, to address: SockAddr? = nil, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try buffer.withUnsafeBytes { (bytes) throws(Errno) in
            try sendSegmented(bytes, segmentSize: segmentSize, to: address, flags: flags)
        }
    }

    /// Sends the bytes of `first` and then of `second`, gathered: `sendmsg(2)` with `flags` and
    /// `MSG_NOSIGNAL`. Returns the number of bytes sent.
    public func sendVectored(_ first: RawSpan, _ second: RawSpan, flags: MessageFlags = []) throws(Errno) -> Int {
        try sendGathered(first, second, to: nil, flags: flags)
    }

    /// Sends the bytes of `first` and then of `second` as one datagram to `address`:
    /// `sendmsg(2)` with `flags` and `MSG_NOSIGNAL`.
    public func sendToVectored(
        _ first: RawSpan, _ second: RawSpan, to address: SockAddr, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try sendGathered(first, second, to: address, flags: flags)
    }

    private func sendGathered(
        _ first: RawSpan, _ second: RawSpan, to address: SockAddr?, flags: MessageFlags
    ) throws(Errno) -> Int {
        try first.withUnsafeBytes { (first) throws(Errno) in
            try second.withUnsafeBytes { (second) throws(Errno) in
                try withIovecArray(count: 2, { $0 == 0 ? iovecOf(first) : iovecOf(second) }) { (iovecs) throws(Errno) in
                    try sendmsgWithControl(iovecs, to: address, control: UnsafeRawBufferPointer(start: nil, count: 0),
                                           flags: flags.rawValue)
                }
            }
        }
    }
}

// MARK: - A batch's slots as spans

extension DatagramBatch {
    /// Runs `body` over the bytes in slot `index` (``length(at:)`` of them), without copying:
    /// the safe form of ``withUnsafeBytes(at:_:)``.
    public func withRawSpan<R, E: Error>(at index: Int, _ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes(at: index) { (bytes) throws(E) in try body(RawSpan(_unsafeBytes: bytes)) }
    }

    /// Runs `body` over the whole data buffer of slot `index` (``bufferSize`` bytes), to fill it
    /// in place; then set the length to send with ``setLength(_:at:)``. The safe form of
    /// ``withUnsafeMutableBytes(at:_:)``.
    public func withMutableRawSpan<R, E: Error>(
        at index: Int, _ body: (inout MutableRawSpan) throws(E) -> R
    ) throws(E) -> R {
        try withUnsafeMutableBytes(at: index) { (bytes) throws(E) in
            var span = MutableRawSpan(_unsafeBytes: bytes)
            return try body(&span)
        }
    }

    /// Copies `bytes` into slot `index` to be sent.
    ///
    /// - Throws: `Errno.messageTooLong` (`EMSGSIZE`) when they exceed ``bufferSize``.
    public func setBytes(_ bytes: RawSpan, at index: Int) throws(Errno) {
        try bytes.withUnsafeBytes { (bytes) throws(Errno) in try setBytes(bytes, at: index) }
    }
}
