#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

// The send and receive families. Every send passes `MSG_NOSIGNAL`: Swift processes do not
// ignore `SIGPIPE`, and a peer that resets a connection must not kill the process.

/// `MSG_NOSIGNAL`, or-ed into every send of this module.
let noSignal = CInt(MSG_NOSIGNAL)

// MARK: - Receiving

extension SocketHandle where Self: ~Copyable {
    /// Receives data into `buffer`: `recv(2)` with no flags. Returns the number of bytes
    /// written, 0 at end of stream.
    public func recv(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try system_recv(rawDescriptor, buffer, 0)
    }

    /// Receives data into `buffer`: `recv(2)` with `flags`.
    public func recvWithFlags(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags
    ) throws(Errno) -> Int {
        try system_recv(rawDescriptor, buffer, flags.rawValue)
    }

    /// Receives out-of-band data: `recv(2)` with `MSG_OOB`.
    public func recvOutOfBand(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try system_recv(rawDescriptor, buffer, CInt(MSG_OOB))
    }

    /// Reads data without removing it from the queue: `recv(2)` with `MSG_PEEK`.
    public func peek(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try system_recv(rawDescriptor, buffer, CInt(MSG_PEEK))
    }

    /// Receives a datagram and its sender's address: `recvfrom(2)` with no flags.
    public func recvFrom(
        into buffer: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> (count: Int, address: SockAddr) {
        try recvFromWithFlags(into: buffer, flags: [])
    }

    /// Receives a datagram and its sender's address: `recvfrom(2)` with `flags`.
    public func recvFromWithFlags(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags
    ) throws(Errno) -> (count: Int, address: SockAddr) {
        let fd = rawDescriptor
        let (count, address) = try SockAddr.tryInit { (address, length) throws(Errno) in
            try system_recvfrom(fd, buffer, flags.rawValue, address, length)
        }
        return (count, address)
    }

    /// Reads a datagram and its sender without removing it: `recvfrom(2)` with `MSG_PEEK`.
    public func peekFrom(
        into buffer: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> (count: Int, address: SockAddr) {
        try recvFromWithFlags(into: buffer, flags: .peek)
    }

    /// The sender of the next datagram, which stays queued: `recvfrom(2)` with `MSG_PEEK` into
    /// a small scratch buffer.
    public func peekSender() throws(Errno) -> SockAddr {
        var scratch: UInt64 = 0
        let fd = rawDescriptor
        return try withUnsafeMutableBytes(of: &scratch) { (buffer) throws(Errno) -> SockAddr in
            try SockAddr.tryInit { (address, length) throws(Errno) in
                try system_recvfrom(fd, buffer, CInt(MSG_PEEK), address, length)
            }.1
        }
    }
}

// MARK: - Receiving into arrays

extension SocketHandle where Self: ~Copyable {
    /// Receives up to `maxCount` bytes with `recv(2)` and returns them (empty at end of stream).
    ///
    /// With `MessageFlags.truncate` the kernel reports a datagram's real length, which may be
    /// larger than `maxCount`; the array holds the `maxCount` bytes that fit.
    ///
    /// - Throws: `Errno.invalidArgument` for a negative `maxCount`.
    public func recv(maxCount: Int, flags: MessageFlags = []) throws(Errno) -> [UInt8] {
        let fd = rawDescriptor
        return try receiveArray(maxCount: maxCount) { (buffer) throws(Errno) in
            try system_recv(fd, buffer, flags.rawValue)
        }
    }

    /// Receives a datagram of up to `maxCount` bytes with `recvfrom(2)`, and its sender.
    ///
    /// - Throws: `Errno.invalidArgument` for a negative `maxCount`.
    public func recvFrom(
        maxCount: Int, flags: MessageFlags = []
    ) throws(Errno) -> (bytes: [UInt8], address: SockAddr) {
        var address = SockAddr(storage: .zeroed(), length: 0)
        let bytes = try receiveArray(maxCount: maxCount) { (buffer) throws(Errno) in
            let result = try recvFromWithFlags(into: buffer, flags: flags)
            address = result.address
            return result.count
        }
        return (bytes, address)
    }
}

/// A new array of up to `maxCount` bytes that `receive` writes into; `receive` returns how many
/// bytes it wrote (or, with `MSG_TRUNC`, more: the array keeps what fits).
func receiveArray(
    maxCount: Int, _ receive: (UnsafeMutableRawBufferPointer) throws(Errno) -> Int
) throws(Errno) -> [UInt8] {
    try receiveArray(maxCount: maxCount) { (buffer) throws(Errno) in (try receive(buffer), ()) }.bytes
}

// MARK: - Sending

extension SocketHandle where Self: ~Copyable {
    /// Sends data: `send(2)` with `MSG_NOSIGNAL`. Returns the number of bytes sent.
    public func send(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try system_send(rawDescriptor, buffer, noSignal)
    }

    /// Sends data: `send(2)` with `flags` and `MSG_NOSIGNAL`.
    public func sendWithFlags(_ buffer: UnsafeRawBufferPointer, flags: MessageFlags) throws(Errno) -> Int {
        try system_send(rawDescriptor, buffer, flags.rawValue | noSignal)
    }

    /// Sends out-of-band data: `send(2)` with `MSG_OOB | MSG_NOSIGNAL`.
    public func sendOutOfBand(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try system_send(rawDescriptor, buffer, CInt(MSG_OOB) | noSignal)
    }

    /// Sends a datagram to `address`: `sendto(2)` with `MSG_NOSIGNAL`.
    public func sendTo(_ buffer: UnsafeRawBufferPointer, to address: SockAddr) throws(Errno) -> Int {
        try sendToWithFlags(buffer, to: address, flags: [])
    }

    /// Sends a datagram to `address`: `sendto(2)` with `flags` and `MSG_NOSIGNAL`.
    public func sendToWithFlags(
        _ buffer: UnsafeRawBufferPointer, to address: SockAddr, flags: MessageFlags
    ) throws(Errno) -> Int {
        let fd = rawDescriptor
        return try address.withSockaddrPointer { (pointer, length) throws(Errno) in
            try system_sendto(fd, buffer, flags.rawValue | noSignal, pointer, length)
        }
    }
}

// MARK: - Sending arrays

extension SocketHandle where Self: ~Copyable {
    /// Sends `bytes` with `send(2)` (`MSG_NOSIGNAL` and `flags`); returns how many were sent.
    public func send(_ bytes: [UInt8], flags: MessageFlags = []) throws(Errno) -> Int {
        let fd = rawDescriptor
        let flags = flags.rawValue | noSignal
        return try withBytes(bytes) { (buffer) throws(Errno) in try system_send(fd, buffer, flags) }
    }

    /// Sends `bytes` as one datagram to `address` with `sendto(2)`.
    public func sendTo(_ bytes: [UInt8], to address: SockAddr, flags: MessageFlags = []) throws(Errno) -> Int {
        try withBytes(bytes) { (buffer) throws(Errno) in
            try sendToWithFlags(buffer, to: address, flags: flags)
        }
    }
}

/// Runs `body` over an array's bytes with typed throws (`Array.withUnsafeBytes` only rethrows).
@inline(__always)
func withBytes<R>(
    _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(Errno) -> R
) throws(Errno) -> R {
    try bytes.withUnsafeBytes { buffer in Result { () throws(Errno) -> R in try body(buffer) } }.get()
}

/// Runs `body` over an array's bytes, which it may change, with typed throws.
@inline(__always)
func withMutableBytes<R>(
    _ bytes: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> R
) throws(Errno) -> R {
    try bytes.withUnsafeMutableBytes { buffer in
        Result { () throws(Errno) -> R in try body(buffer) }
    }.get()
}

// MARK: - Vectored receiving (recvmsg)

extension SocketHandle where Self: ~Copyable {
    /// Receives data scattered over `buffers` in order: `recvmsg(2)` with no flags. Returns the
    /// number of bytes received and the flags the kernel set (``RecvFlags/isTruncated()`` when
    /// a datagram was larger than the buffers).
    public func recvVectored(
        _ buffers: [MaybeUninitSlice]
    ) throws(Errno) -> (count: Int, flags: RecvFlags) {
        try recvVectoredWithFlags(buffers, flags: [])
    }

    /// Receives data scattered over `buffers`: `recvmsg(2)` with `flags`.
    public func recvVectoredWithFlags(
        _ buffers: [MaybeUninitSlice], flags: MessageFlags
    ) throws(Errno) -> (count: Int, flags: RecvFlags) {
        var message = MsgHdrMut().withBuffers(buffers)
        let count = try recvmsg(&message, flags: flags)
        return (count, message.flags())
    }

    /// Receives a datagram scattered over `buffers`, with its sender: `recvmsg(2)` with no
    /// flags.
    public func recvFromVectored(
        _ buffers: [MaybeUninitSlice]
    ) throws(Errno) -> (count: Int, flags: RecvFlags, address: SockAddr) {
        try recvFromVectoredWithFlags(buffers, flags: [])
    }

    /// Receives a datagram scattered over `buffers`, with its sender: `recvmsg(2)` with `flags`.
    ///
    /// The address has the length the kernel reported (0 on a connected stream socket).
    public func recvFromVectoredWithFlags(
        _ buffers: [MaybeUninitSlice], flags: MessageFlags
    ) throws(Errno) -> (count: Int, flags: RecvFlags, address: SockAddr) {
        var message = MsgHdrMut().withAddr().withBuffers(buffers)
        let count = try recvmsg(&message, flags: flags)
        return (count, message.flags(), message.address!)
    }

    /// Receives data into `buffers` in place, in order (each array's `count` is its buffer's
    /// size): `recvmsg(2)` with `flags`. The arrays keep their sizes; the result says how many
    /// bytes were written across them.
    ///
    /// - Throws: `Errno.messageTooLong` for more than 1024 (`UIO_MAXIOV`) arrays, as the kernel.
    public func recvVectored(
        into buffers: inout [[UInt8]], flags: MessageFlags = []
    ) throws(Errno) -> (count: Int, flags: RecvFlags) {
        let result = try recvFromVectored(into: &buffers, flags: flags, wantsAddress: false)
        return (result.count, result.flags)
    }

    /// Receives a datagram into `buffers` in place, in order, with its sender: `recvmsg(2)`
    /// with `flags`.
    ///
    /// - Throws: `Errno.messageTooLong` for more than 1024 (`UIO_MAXIOV`) arrays, as the kernel.
    public func recvFromVectored(
        into buffers: inout [[UInt8]], flags: MessageFlags = []
    ) throws(Errno) -> (count: Int, flags: RecvFlags, address: SockAddr) {
        let result = try recvFromVectored(into: &buffers, flags: flags, wantsAddress: true)
        return (result.count, result.flags, result.address!)
    }

    private func recvFromVectored(
        into buffers: inout [[UInt8]], flags: MessageFlags, wantsAddress: Bool
    ) throws(Errno) -> (count: Int, flags: RecvFlags, address: SockAddr?) {
        var message = MsgHdrMut().withBuffers(buffers)
        if wantsAddress { message = message.withAddr() }
        buffers = []  // the message holds the only reference: the kernel writes without a copy
        defer { buffers = message.bufferArrays }
        let count = try recvmsg(&message, flags: flags)
        return (count, message.flags(), message.address)
    }
}

// MARK: - Vectored sending (sendmsg)

extension SocketHandle where Self: ~Copyable {
    /// Sends the data gathered from `buffers` in order: `sendmsg(2)` with `MSG_NOSIGNAL`.
    /// Returns the number of bytes sent.
    public func sendVectored(_ buffers: [IoSlice]) throws(Errno) -> Int {
        try sendmsg(MsgHdr().withBuffers(buffers))
    }

    /// Sends the data gathered from `buffers`: `sendmsg(2)` with `flags` and `MSG_NOSIGNAL`.
    public func sendVectoredWithFlags(_ buffers: [IoSlice], flags: MessageFlags) throws(Errno) -> Int {
        try sendmsg(MsgHdr().withBuffers(buffers), flags: flags)
    }

    /// Sends the data gathered from `buffers` as one datagram to `address`: `sendmsg(2)` with
    /// `MSG_NOSIGNAL`.
    public func sendToVectored(_ buffers: [IoSlice], to address: SockAddr) throws(Errno) -> Int {
        try sendmsg(MsgHdr().withAddr(address).withBuffers(buffers))
    }

    /// Sends the data gathered from `buffers` to `address`: `sendmsg(2)` with `flags` and
    /// `MSG_NOSIGNAL`.
    public func sendToVectoredWithFlags(
        _ buffers: [IoSlice], to address: SockAddr, flags: MessageFlags
    ) throws(Errno) -> Int {
        try sendmsg(MsgHdr().withAddr(address).withBuffers(buffers), flags: flags)
    }

    /// Sends the bytes of `buffers` gathered in order: `sendmsg(2)` with `flags` and
    /// `MSG_NOSIGNAL`.
    ///
    /// - Throws: `Errno.messageTooLong` for more than 1024 (`UIO_MAXIOV`) arrays, as the kernel.
    public func sendVectored(_ buffers: [[UInt8]], flags: MessageFlags = []) throws(Errno) -> Int {
        try sendmsg(MsgHdr().withBuffers(buffers), flags: flags)
    }

    /// Sends the bytes of `buffers` gathered in order as one datagram to `address`:
    /// `sendmsg(2)` with `flags` and `MSG_NOSIGNAL`.
    ///
    /// - Throws: `Errno.messageTooLong` for more than 1024 (`UIO_MAXIOV`) arrays, as the kernel.
    public func sendToVectored(
        _ buffers: [[UInt8]], to address: SockAddr, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try sendmsg(MsgHdr().withAddr(address).withBuffers(buffers), flags: flags)
    }
}

// MARK: - sendfile

/// What `sendfile` sends when no count is given: `0x7ffff000`, the most one call of Linux
/// transfers (`MAX_RW_COUNT`), as socket2.
let sendfileDefaultCount = 0x7fff_f000

extension SocketHandle where Self: ~Copyable {
    /// Sends `count` bytes of `file` from `offset` on: `sendfile(2)`, in the kernel without
    /// copying to user space. `nil` sends up to `0x7ffff000` bytes (to the end of the file in
    /// practice, as socket2). The file's own position is neither used nor changed. Returns the
    /// number of bytes sent; 0 at the end of the file.
    ///
    /// `sendfile(2)` has no `MSG_NOSIGNAL`; like the sends of this module it still never raises
    /// `SIGPIPE`: the signal is blocked in the calling thread for the call and discarded if the
    /// call raised it (two or three more system calls), and a broken connection is `EPIPE`.
    ///
    /// - Throws: `Errno.invalidArgument` for a negative `count` (a negative `offset` gets the
    ///   kernel's `EINVAL`).
    public func sendfile(_ file: FileDescriptor, offset: Int, count: Int? = nil) throws(Errno) -> Int {
        try sendfile(file.rawValue, offset: offset, count: count)
    }

    /// Sends `count` bytes of the file open as descriptor `file` from `offset` on:
    /// `sendfile(2)`. See ``sendfile(_:offset:count:)-(FileDescriptor,_,_)``.
    public func sendfile(_ file: CInt, offset: Int, count: Int? = nil) throws(Errno) -> Int {
        let count = count ?? sendfileDefaultCount
        guard count >= 0 else { throw .invalidArgument }
        var position = off_t(offset)
        return try system_sendfile(rawDescriptor, file, &position, count)
    }
}
