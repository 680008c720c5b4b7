#if canImport(Glibc)
import Glibc
#endif
import CURing
import Socket2
import SystemPackage

/// The reactor-thread state of a stream fed by one multishot io_uring request: accepted
/// descriptors, or datagrams in a ring of provided buffers. Elements that arrive while no task
/// waits are queued (datagrams stay in their buffers, so the ring bounds the queue: when every
/// buffer is taken the kernel stops the request with `ENOBUFS`, and it is re-armed once buffers
/// come back).
final class MultishotStream: @unchecked Sendable {
    enum Kind { case accept, recvMsg }

    let kind: Kind
    let io: IOState
    unowned(unsafe) let backend: URingBackend
    /// The multishot request's record, -1 when none is in the kernel.
    var armed: Int32 = -1
    /// The record of the task waiting for the next element, -1 when none.
    var waiter: Int32 = -1
    /// The stream's iterator is gone: stop, and leave what arrives to the socket.
    var stopped = false
    /// An error for the next wait.
    var failed: CInt = 0
    /// The request ended for lack of descriptors: re-arm after a delay.
    var backoffPending = false
    private var ready: [(CInt, UInt32)] = []
    private var readyHead = 0

    // Provided buffers (recvmsg).
    private let template: UnsafeMutablePointer<msghdr>
    private var bufferRing: UnsafeMutablePointer<io_uring_buf_ring>?
    private var buffers: UnsafeMutableRawPointer?
    /// The room each buffer offers the kernel: the header, the name, the control data and
    /// `maxSize` bytes of payload, exactly, so that a stream socket's bytes are never cut.
    private var bufferLength = 0
    /// Where the buffers start, one after another (the length rounded up for alignment).
    private var bufferStride = 0
    private var entries = 0
    private var group: UInt16 = 0
    /// Buffers the kernel may fill.
    private(set) var freeBuffers = 0
    /// Longer datagrams are truncated to this.
    private let maxSize: Int

    /// `controlCapacity`: bytes of control data each received datagram may bring (recvmsg).
    init(kind: Kind, io: IOState, backend: URingBackend, maxSize: Int, controlCapacity: Int = 0) throws {
        self.kind = kind
        self.io = io
        self.backend = backend
        self.maxSize = maxSize
        template = .allocate(capacity: 1)
        template.initialize(to: msghdr())
        guard kind == .recvMsg else { return }
        template.pointee.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        template.pointee.msg_controllen = controlCapacity
        // Each buffer holds io_uring_recvmsg_out, the name, the control data and the payload.
        bufferLength = MemoryLayout<io_uring_recvmsg_out>.size + MemoryLayout<sockaddr_storage>.size
            + controlCapacity + maxSize
        bufferStride = (bufferLength + 15) & ~15
        var count = 256
        while count > 8 && count * bufferStride > 4 << 20 { count /= 2 }
        entries = count
        var ringMemory: UnsafeMutableRawPointer?
        guard posix_memalign(&ringMemory, Int(sysconf(CInt(_SC_PAGESIZE))),
                             count * MemoryLayout<io_uring_buf>.stride) == 0, let ringMemory
        else { throw Errno.noMemory }
        let ring = ringMemory.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        buffers = .allocate(byteCount: count * bufferStride, alignment: 64)
        let registered = backend.registerBufferRing(ring, entries: UInt32(count))
        guard registered >= 0 else {
            free(ringMemory)
            buffers?.deallocate()
            buffers = nil
            throw ResultCode.error(for: registered)
        }
        bufferRing = ring
        group = UInt16(registered)
        io_uring_buf_ring_init(ring)
        for id in 0..<count {
            io_uring_buf_ring_add(ring, buffers! + id * bufferStride, UInt32(bufferLength), UInt16(id),
                                  io_uring_buf_ring_mask(UInt32(count)), CInt(id))
        }
        io_uring_buf_ring_advance(ring, CInt(count))
        freeBuffers = count
    }

    deinit {
        strandQueued()
        if let bufferRing {
            if !backend.isDestroyed { backend.unregisterBufferRing(group) }
            free(bufferRing)
        }
        buffers?.deallocate()
        template.deallocate()
    }

    /// Fills the multishot request.
    func prepare(_ entry: UnsafeMutablePointer<io_uring_sqe>) {
        switch kind {
        case .accept:
            io_uring_prep_multishot_accept(entry, io.fd, nil, nil, CInt(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue))
        case .recvMsg:
            io_uring_prep_recvmsg_multishot(entry, io.fd, template, 0)
            entry.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
            socket2async_sqe_set_buf_group(entry, group)
        }
    }

    /// A completion of the multishot request.
    func deliver(_ result: CInt, _ flags: UInt32, backend: URingBackend) {
        if result >= 0 {
            // (A completion without a buffer, as at the end of a stream, took none.)
            if kind == .recvMsg && flags & IORING_CQE_F_BUFFER != 0 { freeBuffers -= 1 }
            if stopped {
                strand(result, flags)
            } else {
                backend.handOver(self, result, flags)
            }
            return
        }
        switch result {
        case -ECANCELED, -ENOBUFS:
            break  // stopped, or out of buffers: re-armed when needed
        case -EMFILE, -ENFILE, -ENOMEM:
            backoffPending = true
        default:
            if stopped { return }
            if waiter >= 0 {
                backend.handOver(self, result, flags)
            } else {
                failed = result
            }
        }
    }

    func pushReady(_ result: CInt, _ flags: UInt32) { ready.append((result, flags)) }

    func popReady() -> (CInt, UInt32)? {
        guard readyHead < ready.count else { return nil }
        let element = ready[readyHead]
        readyHead += 1
        if readyHead == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyHead = 0
        }
        return element
    }

    /// Leaves the queued elements to the socket's next accept or receive (`IOState`'s stranded
    /// connections and datagrams), or closes and recycles them when the socket is closed.
    func strandQueued() {
        while let (result, flags) = popReady() { strand(result, flags) }
    }

    private func strand(_ result: CInt, _ flags: UInt32) {
        guard result >= 0 else { return }
        switch kind {
        case .accept:
            // Never drop an accepted connection the socket's user may still want.
            if io.closed || io.released { _ = sys_close(result) } else { io.strandedConnections.append(result) }
        case .recvMsg:
            // Nor a datagram: the socket's next receive gets it.
            if io.closed || io.released {
                if flags & IORING_CQE_F_BUFFER != 0 { recycle(Int(flags >> IORING_CQE_BUFFER_SHIFT)) }
            } else {
                _ = withDatagram(result, flags) { io.strand(StrandedDatagram($0)) }
            }
        }
    }

    /// Copies the datagram out of its buffer and gives the buffer back to the kernel.
    func takeDatagram(_ result: CInt, _ flags: UInt32) -> (bytes: [UInt8], address: SockAddr) {
        withDatagram(result, flags) { datagram in
            (Array(datagram.payload), datagram.address)
        } ?? ([], SockAddr(sockaddr_storage(), 0))
    }

    /// Runs `body` over the datagram a completion delivered, in its buffer, then gives the buffer
    /// back to the kernel. `nil` when the completion names no valid buffer.
    func withDatagram<R>(_ result: CInt, _ flags: UInt32, _ body: (RingDatagram) -> R) -> R? {
        guard flags & IORING_CQE_F_BUFFER != 0, let buffers else { return nil }
        let id = Int(flags >> IORING_CQE_BUFFER_SHIFT)
        defer { recycle(id) }
        let buffer = buffers + id * bufferStride
        guard let out = io_uring_recvmsg_validate(buffer, result, template) else { return nil }
        let payload = io_uring_recvmsg_payload(out, template)
        let whole = Int(io_uring_recvmsg_payload_length(out, result, template))
        let length = min(whole, maxSize)
        let name = UnsafeRawPointer(io_uring_recvmsg_name(out)!)
        return body(RingDatagram(
            payload: UnsafeRawBufferPointer(start: payload, count: length),
            name: UnsafeRawBufferPointer(start: name, count: min(Int(out.pointee.namelen), Int(template.pointee.msg_namelen))),
            control: UnsafeRawBufferPointer(start: name + Int(template.pointee.msg_namelen),
                                            count: min(Int(out.pointee.controllen), template.pointee.msg_controllen)),
            flags: RecvFlags(rawValue: CInt(bitPattern: out.pointee.flags) | (length < whole ? MessageFlags.truncate.rawValue : 0))))
    }

    private func recycle(_ id: Int) {
        guard let bufferRing, let buffers else { return }
        io_uring_buf_ring_add(bufferRing, buffers + id * bufferStride, UInt32(bufferLength), UInt16(id),
                              io_uring_buf_ring_mask(UInt32(entries)), 0)
        io_uring_buf_ring_advance(bufferRing, 1)
        freeBuffers += 1
    }
}

/// What an iterator holds: its socket and (created on the reactor thread at the first `next()`)
/// the stream. When the iterator goes away the stream is stopped on the reactor thread.
final class MultishotHandle: @unchecked Sendable {
    let socket: AsyncSocket
    let kind: MultishotStream.Kind
    let maxSize: Int
    let controlCapacity: Int
    /// Reactor thread only.
    private var stream: MultishotStream?

    init(_ socket: AsyncSocket, _ kind: MultishotStream.Kind, maxSize: Int, controlCapacity: Int = 0) {
        self.socket = socket
        self.kind = kind
        self.maxSize = maxSize
        self.controlCapacity = controlCapacity
    }

    deinit {
        guard let stream else { return }
        let reactor = socket.reactor
        if reactor.isCurrent {
            reactor.stopStream(stream)
        } else {
            reactor.post(.call { reactor.stopStream(stream) })
        }
    }

    /// Waits for the next element (reactor thread) and makes it with `finish`; what
    /// `fromStranded` makes of the socket's stranded datagrams (those a stopped stream had taken
    /// in) comes first.
    nonisolated(nonsending) func next<R>(
        fromStranded: (IOState) throws -> R? = { _ in nil },
        _ finish: (MultishotStream, Int, UInt32) throws -> R
    ) async throws -> R {
        let reactor = socket.reactor, io = socket.io
        return try await reactor.onReactor {
            if stream == nil {
                guard let backend = reactor.impl as? URingBackend else { throw ReactorError.shutDown }
                stream = try MultishotStream(kind: kind, io: io, backend: backend, maxSize: maxSize,
                                             controlCapacity: controlCapacity)
            }
            let stream = stream!
            if io.pooled.isActive { await reactor.takeBackPooledInput(io) }
            // Elements already queued are taken without a wait.
            if !io.closed, !reactor.stopping {
                if let element = try fromStranded(io) { return element }
                if io.strandedConnections.isEmpty, let (result, flags) = stream.popReady() {
                    return try finish(stream, try ResultCode.check(Int(result)), flags)
                }
            }
            return try await reactor.perform(.streamWait, io: io, prepare: { record in
                record.pointee.stream = Unmanaged.passUnretained(stream as AnyObject)
            }, finish: { result, record in
                try finish(stream, try ResultCode.check(result), record.pointee.resultFlags)
            })
        }
    }

    nonisolated(nonsending) func nextConnection() async throws -> (socket: AsyncSocket, address: SockAddr) {
        let reactor = socket.reactor, isStream = socket.io.isStream
        return try await next { _, fd, _ in
            var storage = sockaddr_storage()
            let length = sys_getpeername(CInt(fd), &storage)
            return (AsyncSocket(accepted: CInt(fd), isStream: isStream, reactor: reactor),
                    SockAddr(storage, socklen_t(max(length, 0))))
        }
    }

    nonisolated(nonsending) func nextDatagram() async throws -> (bytes: [UInt8], address: SockAddr) {
        let maxSize = self.maxSize
        return try await next(fromStranded: { io in
            try io.takeStrandedInput(maxCount: maxSize).map { (Array($0.payload.prefix(maxSize)), $0.address) }
        }) { stream, count, flags in stream.takeDatagram(CInt(count), flags) }
    }
}

extension Reactor {
    /// Whether streams use multishot requests (io_uring on a recent kernel). Constant.
    var supportsMultishot: Bool { (impl as? URingBackend)?.supportsMultishot ?? false }

    /// The iterator of `stream` is gone: stop the multishot request and leave what it queued
    /// (and what it still delivers) to the socket.
    func stopStream(_ stream: MultishotStream) {
        stream.stopped = true
        stream.strandQueued()
        if stream.armed >= 0 {
            let record = ops.record(stream.armed)
            if record.pointee.cancelReason == .none {
                record.pointee.cancelReason = .cancelled
                impl.cancel(stream.armed, record)
            }
        }
    }
}

/// A datagram in a provided buffer, as a multishot `recvmsg` delivered it (`io_uring_recvmsg_out`
/// and what follows it). Valid only inside ``MultishotStream/withDatagram(_:_:_:)``.
struct RingDatagram {
    /// The data received (cut to the buffer's room: `MSG_TRUNC` in ``flags`` then).
    let payload: UnsafeRawBufferPointer
    /// The sender's address (`msg_name`).
    let name: UnsafeRawBufferPointer
    /// The control data received (`msg_control`, `msg_controllen` bytes).
    let control: UnsafeRawBufferPointer
    /// The message's `msg_flags`.
    let flags: RecvFlags

    /// The sender's address as a `SockAddr`.
    var address: SockAddr { SockAddr(copying: name) }
}

/// A datagram a stopped multishot receive had taken from the kernel, copied out of its provided
/// buffer and kept with the socket for its next receive (`IOState.strandedDatagrams`).
struct StrandedDatagram {
    var payload: [UInt8]
    let name: [UInt8]
    let control: [UInt8]
    /// `msg_flags` (`MSG_TRUNC` when the stream cut the payload to its maximum size).
    let flags: CInt
    /// The error the request took in place of data (an `errno`), 0 for data: the receive that
    /// comes to it fails with it.
    var error: CInt = 0

    init(_ datagram: RingDatagram) {
        payload = Array(datagram.payload)
        name = Array(datagram.name)
        control = Array(datagram.control)
        flags = datagram.flags.rawValue
    }

    var address: SockAddr { name.withUnsafeBytes { SockAddr(copying: $0) } }

    /// Completes a receive's record (recv, recvfrom, recvmsg) with this datagram as the kernel
    /// would have: the payload scattered over its buffers, the sender, the control data and the
    /// flags (`MSG_TRUNC`, `MSG_CTRUNC` where the room was short). Returns the byte count (the
    /// whole datagram's with `MSG_TRUNC` among the call's flags, as recv(2) does).
    func deliver(into record: UnsafeMutablePointer<OpRecord>) -> Int {
        if error != 0 { return -Int(error) }
        var flags = self.flags
        let copied: Int
        if record.pointee.kind == .recvMsg {
            let message = OpRecord.messagePointer(record)
            copied = scatter(over: UnsafeBufferPointer(start: message.pointee.msg_iov, count: message.pointee.msg_iovlen))
            message.pointee.msg_namelen = socklen_t(Self.copy(name, to: message.pointee.msg_name,
                                                              room: Int(message.pointee.msg_namelen)))
            let controlCopied = Self.copy(control, to: message.pointee.msg_control, room: message.pointee.msg_controllen)
            if controlCopied < control.count { flags |= msgControlTruncated }
            message.pointee.msg_controllen = controlCopied
        } else {
            var vector = iovec(iov_base: record.pointee.buffer, iov_len: record.pointee.length)
            copied = withUnsafePointer(to: &vector) { scatter(over: UnsafeBufferPointer(start: $0, count: 1)) }
            record.pointee.addressLength = socklen_t(Self.copy(name, to: OpRecord.addressPointer(record),
                                                               room: MemoryLayout<sockaddr_storage>.size))
        }
        if copied < payload.count { flags |= MessageFlags.truncate.rawValue }
        record.pointee.resultFlags = UInt32(bitPattern: flags)
        return record.pointee.flags & MessageFlags.truncate.rawValue != 0 ? payload.count : copied
    }

    private func scatter(over vectors: UnsafeBufferPointer<iovec>) -> Int {
        var copied = 0
        for vector in vectors where copied < payload.count {
            copied += Self.copy(payload[copied...], to: vector.iov_base, room: vector.iov_len)
        }
        return copied
    }

    private static func copy(_ bytes: some Collection<UInt8>, to destination: UnsafeMutableRawPointer?, room: Int) -> Int {
        guard let destination else { return 0 }
        let count = min(bytes.count, room)
        UnsafeMutableRawBufferPointer(start: destination, count: count).copyBytes(from: bytes.prefix(count))
        return count
    }
}

extension SockAddr {
    /// An address from the raw bytes of a `sockaddr`.
    init(copying name: UnsafeRawBufferPointer) {
        var storage = sockaddr_storage()
        let count = min(name.count, MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: name[..<count])) }
        self.init(storage, socklen_t(count))
    }
}
