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
    public func recv(maxCount: Int, flags: MessageFlags = []) throws(Errno) -> [UInt8] {
        guard maxCount >= 0 else { throw .invalidArgument }
        let fd = rawDescriptor
        var received = 0
        var failure: Errno?
        let bytes = [UInt8](unsafeUninitializedCapacity: maxCount) { buffer, count in
            do throws(Errno) {
                received = try system_recv(fd, UnsafeMutableRawBufferPointer(buffer), flags.rawValue)
            } catch {
                failure = error
            }
            count = received
        }
        if let failure { throw failure }
        return bytes
    }

    /// Receives a datagram of up to `maxCount` bytes with `recvfrom(2)`, and its sender.
    public func recvFrom(
        maxCount: Int, flags: MessageFlags = []
    ) throws(Errno) -> (bytes: [UInt8], address: SockAddr) {
        guard maxCount >= 0 else { throw .invalidArgument }
        var address = SockAddr(storage: .zeroed(), length: 0)
        var failure: Errno?
        let bytes = [UInt8](unsafeUninitializedCapacity: maxCount) { buffer, count in
            count = 0
            do throws(Errno) {
                let result = try recvFromWithFlags(into: UnsafeMutableRawBufferPointer(buffer), flags: flags)
                count = min(result.count, maxCount)
                address = result.address
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return (bytes, address)
    }
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
    let result: Result<R, Errno> = bytes.withUnsafeBytes { buffer in
        do throws(Errno) { return .success(try body(buffer)) } catch { return .failure(error) }
    }
    return try result.get()
}
