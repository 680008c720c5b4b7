#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// The send and receive families. Raw-buffer forms: the buffer must stay valid until the call
// returns, which it does only once the kernel is done with it (also when cancelled). Array
// forms own their memory. Every send passes `MSG_NOSIGNAL`. Given `MSG_DONTWAIT`, an operation
// throws `EAGAIN` where its call would block, instead of waiting.

// MARK: - Receiving

extension AsyncSocket {
    /// Receives into `buffer`: `recv(2)` or `IORING_OP_RECV`. Returns the number of bytes
    /// received; 0 means end of stream (the peer shut down its side) for a stream socket.
    public nonisolated(nonsending) func recv(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) async throws -> Int {
        let base = buffer.baseAddress, count = buffer.count, raw = flags.rawValue
        if let result = try attempt(input: true, requested: count, flags: raw, {
            sys_recv($0, base, count, raw)
        }) {
            return result
        }
        return try await wait(.recv, prepare: { record in
            record.pointee.buffer = base
            record.pointee.length = count
            record.pointee.flags = raw
        }, finish: { result, _ in try ResultCode.check(result) })
    }

    /// Receives up to `maxCount` bytes; an empty array means end of stream.
    public nonisolated(nonsending) func recv(maxCount: Int) async throws -> [UInt8] {
        guard maxCount > 0 else { return [] }
        return try await withScratch(maxCount) { buffer in
            let count = try await recv(into: buffer)
            return Array(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }

    /// Receives a datagram and its sender: `recvfrom(2)` or `IORING_OP_RECVMSG`.
    public nonisolated(nonsending) func recvFrom(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []
    ) async throws -> (count: Int, address: SockAddr) {
        let base = buffer.baseAddress, count = buffer.count, raw = flags.rawValue
        var storage = sockaddr_storage()
        var length = socklen_t(0)
        if let result = try attempt(input: true, requested: count, flags: raw, { fd in
            length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            return withUnsafeMutablePointer(to: &storage) { storage in
                storage.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sys_recvfrom(fd, base, count, raw, $0, &length)
                }
            }
        }) {
            return (result, SockAddr(storage, length))
        }
        return try await wait(.recvFrom, prepare: { record in
            record.pointee.buffer = base
            record.pointee.length = count
            record.pointee.flags = raw
            record.pointee.addressLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        }, finish: { result, record in
            (try ResultCode.check(result), SockAddr(record.pointee.address, record.pointee.addressLength))
        })
    }

    /// Receives a datagram of up to `maxCount` bytes and its sender.
    public nonisolated(nonsending) func recvFrom(maxCount: Int) async throws -> (bytes: [UInt8], address: SockAddr) {
        try await withScratch(max(maxCount, 0)) { buffer in
            let (count, address) = try await recvFrom(into: buffer)
            return (Array(UnsafeRawBufferPointer(rebasing: buffer[..<min(count, buffer.count)])), address)
        }
    }

    /// Receives a message into several buffers, with its sender and control messages:
    /// `recvmsg(2)` or `IORING_OP_RECVMSG`, with `flags` and `MSG_CMSG_CLOEXEC` (descriptors
    /// received in `control`, `SCM_RIGHTS`, are close-on-exec and the caller's to close).
    ///
    /// - Parameters:
    ///   - buffers: filled in order (scatter).
    ///   - control: room for ancillary data (`cmsg`), if wanted.
    ///   - flags: `MSG_*` flags for the call (`MessageFlags`).
    /// - Returns: the bytes received, the message's flags (`MSG_TRUNC`, `MSG_CTRUNC`, …), the
    ///   length of the control data written into `control`, and the sender's address (the empty
    ///   address, which `SockAddr.isUnnamed()` reports, when the kernel named none: an unbound
    ///   Unix socket, a connected stream; never `nil`).
    public nonisolated(nonsending) func recvMsg(
        into buffers: [UnsafeMutableRawBufferPointer], control: UnsafeMutableRawBufferPointer? = nil,
        flags: MessageFlags = []
    ) async throws -> (count: Int, flags: RecvFlags, controlLength: Int, address: SockAddr?) {
        let raw = flags.union(.cmsgCloexec).rawValue
        let controlBase = control?.baseAddress, controlCount = control?.count ?? 0
        var storage = sockaddr_storage()
        var message = msghdr()
        let attempted = try withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(buffers.count, 1)) { vectors in
            let total = fillVectors(vectors.baseAddress!, from: buffers) { ($0.baseAddress, $0.count) }
            return try attempt(input: true, requested: total, flags: raw) { fd in
                withUnsafeMutablePointer(to: &storage) { storage in
                    message = msghdr(msg_name: storage, msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                                     msg_iov: vectors.baseAddress, msg_iovlen: buffers.count,
                                     msg_control: controlBase, msg_controllen: controlCount, msg_flags: 0)
                    return sys_recvmsg(fd, &message, raw)
                }
            }
        }
        if let result = attempted {
            return (result, RecvFlags(rawValue: message.msg_flags).droppingCloseOnExecEcho(), message.msg_controllen,
                    SockAddr(storage, message.msg_namelen))
        }
        return try await wait(.recvMsg, prepare: { record in
            record.pointee.flags = raw
            let name = UnsafeMutableRawPointer(OpRecord.addressPointer(record))
            let vectors = OpRecord.vectors(record, count: buffers.count)
            _ = fillVectors(vectors, from: buffers) { ($0.baseAddress, $0.count) }
            record.pointee.message = msghdr(
                msg_name: name, msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                msg_iov: vectors, msg_iovlen: buffers.count,
                msg_control: controlBase, msg_controllen: controlCount, msg_flags: 0)
        }, finish: { result, record in
            let count = try ResultCode.check(result)
            let message = record.pointee.message
            let flags = RecvFlags(rawValue: Int32(bitPattern: record.pointee.resultFlags)).droppingCloseOnExecEcho()
            return (count, flags, message.msg_controllen,
                    SockAddr(record.pointee.address, message.msg_namelen))
        })
    }
}

// MARK: - Sending

extension AsyncSocket {
    /// Sends from `buffer`: `send(2)` or `IORING_OP_SEND`, with `MSG_NOSIGNAL`. Returns the
    /// number of bytes sent, which may be fewer than `buffer.count` on a stream socket.
    public nonisolated(nonsending) func send(_ buffer: UnsafeRawBufferPointer, flags: MessageFlags = []) async throws -> Int {
        let base = buffer.baseAddress, count = buffer.count, raw = flags.rawValue
        if let result = try attempt(input: false, requested: count, flags: raw, {
            sys_send($0, base, count, raw)
        }) {
            return result
        }
        return try await wait(.send, prepare: { record in
            record.pointee.buffer = UnsafeMutableRawPointer(mutating: base)
            record.pointee.length = count
            record.pointee.flags = raw
        }, finish: { result, _ in try ResultCode.check(result) })
    }

    /// Sends `bytes`; returns how many were sent.
    public nonisolated(nonsending) func send(_ bytes: [UInt8]) async throws -> Int {
        if let result = try bytes.withUnsafeBytes({ buffer in
            try attempt(input: false, requested: buffer.count, flags: 0) {
                sys_send($0, buffer.baseAddress, buffer.count, 0)
            }
        }) {
            return result
        }
        return try await withCopy(bytes) { try await send($0) }
    }

    /// Sends all of `buffer`, waiting as often as needed.
    public nonisolated(nonsending) func sendAll(_ buffer: UnsafeRawBufferPointer) async throws {
        var offset = 0
        repeat {
            offset += try await send(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
        } while offset < buffer.count
    }

    /// Sends all of `bytes`, waiting as often as needed.
    public nonisolated(nonsending) func sendAll(_ bytes: [UInt8]) async throws {
        try await sendAll(rest: bytes.withUnsafeBytes(sendNow(copyingRestOf:)))
    }

    /// Sends all of `string`'s UTF-8 bytes, waiting as often as needed.
    public nonisolated(nonsending) func sendAll(_ string: String) async throws {
        try await sendAll(string.utf8)
    }

    /// Sends all of `bytes`, waiting as often as needed: straight from their memory when they
    /// are contiguous (a slice, a string's UTF-8 view), else from an array of them.
    public nonisolated(nonsending) func sendAll(_ bytes: some Sequence<UInt8>) async throws {
        let attempted = try bytes.withContiguousStorageIfAvailable {
            try sendNow(copyingRestOf: UnsafeRawBufferPointer($0))
        }
        guard let rest = attempted else {
            try await sendAll(Array(bytes))
            return
        }
        try await sendAll(rest: rest)
    }

    /// Sends what the kernel takes from `buffer` without waiting; returns a copy of the rest
    /// (nil when nothing is left), for ``sendAll(rest:)``.
    private func sendNow(copyingRestOf buffer: UnsafeRawBufferPointer) throws -> UnsafeMutableRawBufferPointer? {
        let sent = try attempt(input: false, requested: buffer.count, flags: 0) {
            sys_send($0, buffer.baseAddress, buffer.count, 0)
        } ?? 0
        if sent == buffer.count { return nil }
        let rest = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count - sent, alignment: 16)
        rest.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[sent...]))
        return rest
    }

    /// Sends all of `rest` (from ``sendNow(copyingRestOf:)``) and releases it.
    private nonisolated(nonsending) func sendAll(rest: UnsafeMutableRawBufferPointer?) async throws {
        guard let rest else { return }
        defer { rest.deallocate() }
        try await sendAll(UnsafeRawBufferPointer(rest))
    }

    /// Sends a datagram to `address`: `sendto(2)` or `IORING_OP_SENDMSG`.
    public nonisolated(nonsending) func sendTo(_ buffer: UnsafeRawBufferPointer, to address: SockAddr) async throws -> Int {
        let base = buffer.baseAddress, count = buffer.count
        let storage = address.asStorage().raw, length = address.len()
        if let result = try attempt(input: false, requested: count, flags: 0, { fd in
            withUnsafePointer(to: storage) { storage in
                storage.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sys_sendto(fd, base, count, 0, $0, length)
                }
            }
        }) {
            return result
        }
        return try await wait(.sendTo, prepare: { record in
            record.pointee.buffer = UnsafeMutableRawPointer(mutating: base)
            record.pointee.length = count
            record.pointee.address = storage
            record.pointee.addressLength = length
        }, finish: { result, _ in try ResultCode.check(result) })
    }

    /// Sends `bytes` as one datagram to `address`.
    public nonisolated(nonsending) func sendTo(_ bytes: [UInt8], to address: SockAddr) async throws -> Int {
        if let result = try bytes.withUnsafeBytes({ buffer in
            try attempt(input: false, requested: buffer.count, flags: 0) { fd in
                address.withSockaddrPointer { sys_sendto(fd, buffer.baseAddress, buffer.count, 0, $0, $1) }
            }
        }) {
            return result
        }
        return try await withCopy(bytes) { try await sendTo($0, to: address) }
    }

    /// Sends a message gathered from several buffers, optionally to `address` and with control
    /// messages: `sendmsg(2)` or `IORING_OP_SENDMSG`, with `MSG_NOSIGNAL`.
    public nonisolated(nonsending) func sendMsg(
        _ buffers: [UnsafeRawBufferPointer], to address: SockAddr? = nil,
        control: UnsafeRawBufferPointer? = nil, flags: MessageFlags = []
    ) async throws -> Int {
        let raw = flags.rawValue
        let controlBase = UnsafeMutableRawPointer(mutating: control?.baseAddress)
        let controlCount = control?.count ?? 0
        var storage = address?.asStorage().raw ?? sockaddr_storage()
        let length = address?.len() ?? 0
        let part = { (buffer: UnsafeRawBufferPointer) in (UnsafeMutableRawPointer(mutating: buffer.baseAddress), buffer.count) }
        let attempted = try withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(buffers.count, 1)) { vectors in
            let total = fillVectors(vectors.baseAddress!, from: buffers, part)
            return try attempt(input: false, requested: total, flags: raw) { fd in
                withUnsafeMutablePointer(to: &storage) { storage in
                    var message = msghdr(msg_name: length > 0 ? UnsafeMutableRawPointer(storage) : nil,
                                         msg_namelen: length, msg_iov: vectors.baseAddress, msg_iovlen: buffers.count,
                                         msg_control: controlBase, msg_controllen: controlCount, msg_flags: 0)
                    return sys_sendmsg(fd, &message, raw)
                }
            }
        }
        if let result = attempted {
            return result
        }
        let stored = storage
        return try await wait(.sendMsg, prepare: { record in
            record.pointee.flags = raw
            record.pointee.address = stored
            let name = UnsafeMutableRawPointer(OpRecord.addressPointer(record))
            let vectors = OpRecord.vectors(record, count: buffers.count)
            _ = fillVectors(vectors, from: buffers, part)
            record.pointee.message = msghdr(
                msg_name: length > 0 ? name : nil, msg_namelen: length,
                msg_iov: vectors, msg_iovlen: buffers.count,
                msg_control: controlBase, msg_controllen: controlCount, msg_flags: 0)
        }, finish: { result, _ in try ResultCode.check(result) })
    }
}

// MARK: - Memory for the owned-buffer forms

/// Runs `body` with `count` bytes of fresh memory, released when it returns.
@inline(__always)
nonisolated(nonsending) func withScratch<R>(_ count: Int, _ body: nonisolated(nonsending) (UnsafeMutableRawBufferPointer) async throws -> R) async throws -> R {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
    defer { buffer.deallocate() }
    return try await body(buffer)
}

/// Runs `body` with a copy of `bytes` that stays valid across suspension points.
@inline(__always)
nonisolated(nonsending) func withCopy<C: Collection<UInt8>, R>(
    _ bytes: C, _ body: nonisolated(nonsending) (UnsafeRawBufferPointer) async throws -> R
) async throws -> R {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { buffer.deallocate() }
    _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
    return try await body(UnsafeRawBufferPointer(buffer))
}

/// Writes one `iovec` per buffer at `vectors` (room for `buffers.count`); returns the total
/// length.
@inline(__always)
func fillVectors<Buffer>(
    _ vectors: UnsafeMutablePointer<iovec>, from buffers: [Buffer],
    _ part: (Buffer) -> (UnsafeMutableRawPointer?, Int)
) -> Int {
    var total = 0
    for (offset, buffer) in buffers.enumerated() {
        let (base, count) = part(buffer)
        (vectors + offset).initialize(to: iovec(iov_base: base, iov_len: count))
        total += count
    }
    return total
}
