#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// Datagrams received in batches: many per system call (epoll: recvmmsg(2)) or per loop turn
// (io_uring: the completions of one multishot recvmsg), into one batch object reused for every
// batch, so that a steady stream of datagrams is received without allocating.

extension AsyncSocket {
    /// The datagrams received on this socket in batches, as an `AsyncSequence` of
    /// ``ReceivedDatagramBatch``: each batch holds up to `count` datagrams (every one that is
    /// waiting, up to that many), with their senders and, with `packetInfo`, the address each
    /// was sent to and the interface it came in on. Datagrams longer than `maxSize` are
    /// truncated (`MSG_TRUNC` in their flags).
    ///
    /// With epoll each batch is one `recvmmsg(2)` into a reused `DatagramBatch`, made when the
    /// socket is readable. With io_uring one multishot `IORING_OP_RECVMSG` with a ring of
    /// provided buffers feeds the sequence (re-armed whenever the kernel stops it, as after
    /// `ENOBUFS`); a batch is the datagrams its completions have delivered, copied out of the
    /// ring. The same batch object comes back from every call of the iterator's `next()`: what it
    /// holds is valid until the next call. The sequence ends when the socket is closed; a task
    /// cancelled while it waits gets `CancellationError`, and no datagram is lost: the next call
    /// of the same iterator returns it. Datagrams an io_uring iterator has taken from the kernel
    /// but not handed out when it goes away stay with the socket for its next receive.
    ///
    /// - Parameters:
    ///   - count: the most datagrams in one batch (at least 1).
    ///   - maxSize: the bytes kept of each datagram (at least 1).
    ///   - packetInfo: switch on and report packet info: `IP_PKTINFO` on an IPv4 socket,
    ///     `IPV6_RECVPKTINFO` on an IPv6 socket (where the IPv4 datagrams of a dual-stack socket
    ///     name IPv4-mapped addresses, `::ffff:a.b.c.d`, as their senders do).
    /// - Throws: `Errno` when the socket refuses the packet info option (not an IP socket).
    public func datagramBatches(
        count: Int = 32, maxSize: Int = 2048, packetInfo: Bool = false
    ) throws(Errno) -> DatagramBatches {
        if packetInfo {
            if try domain() == .ipv6 {
                try setRecvPktinfoV6(true)
            } else {
                try setRecvPktinfoV4(true)
            }
        }
        return DatagramBatches(socket: self, count: max(count, 1), maxSize: max(maxSize, 1),
                               controlCapacity: packetInfo ? DatagramBatches.packetInfoControlCapacity : 0)
    }
}

/// The datagrams received on a socket in batches: see
/// ``AsyncSocket/datagramBatches(count:maxSize:packetInfo:)``.
public struct DatagramBatches: AsyncSequence, Sendable {
    public typealias Element = ReceivedDatagramBatch

    let socket: AsyncSocket
    let count: Int
    let maxSize: Int
    let controlCapacity: Int

    /// Control room per datagram when packet info is asked for: `IPV6_PKTINFO` (40 bytes with
    /// its header) beside the messages the socket may have switched on too (a timestamp, a hop
    /// limit, a traffic class), so that `MSG_CTRUNC` does not drop it.
    static let packetInfoControlCapacity = 256

    public func makeAsyncIterator() -> Iterator {
        Iterator(receiver: BatchReceiver(socket: socket, count: count, maxSize: maxSize,
                                         controlCapacity: controlCapacity))
    }

    /// Iterates over received batches.
    public struct Iterator: AsyncIteratorProtocol {
        let receiver: BatchReceiver

        /// The next batch (never empty), or `nil` once the socket is closed.
        public mutating func next() async throws -> ReceivedDatagramBatch? {
            try await nextBatch()
        }

        /// The next batch, waited for in the caller's isolation (no hop off an actor).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> ReceivedDatagramBatch? {
            try await nextBatch()
        }

        private nonisolated(nonsending) func nextBatch() async throws -> ReceivedDatagramBatch? {
            do {
                return try await receiver.next()
            } catch ReactorError.socketClosed {
                return nil
            }
        }
    }
}

/// A batch of datagrams from ``AsyncSocket/datagramBatches(count:maxSize:packetInfo:)``, in the
/// order they arrived: datagram `i` (for `i < count`) with its bytes, sender, flags and packet
/// info.
///
/// One batch object, and its memory, serves every batch of an iterator: what it holds is valid
/// until the iterator's next call of `next()`. Read it (or copy what you keep) before asking for
/// the next batch, and from the iterating task only. Reading allocates nothing except
/// ``bytes(at:)``.
public final class ReceivedDatagramBatch {
    /// The datagrams in this batch.
    public internal(set) var count = 0
    /// The slots: data, lengths and senders (filled by `recvmmsg(2)`, or copied from the ring).
    let slots: DatagramBatch
    /// Flags and packet info of datagrams copied from an io_uring ring (epoll: in `slots`).
    private var ringFlags: [RecvFlags]
    private var ringPacketInfo: [PacketInfo?]
    private let fromRing: Bool

    init(count: Int, maxSize: Int, controlCapacity: Int, fromRing: Bool) {
        self.fromRing = fromRing
        slots = DatagramBatch(count: count, bufferSize: maxSize, controlCapacity: fromRing ? 0 : controlCapacity)
        ringFlags = fromRing ? Array(repeating: RecvFlags(rawValue: 0), count: count) : []
        ringPacketInfo = fromRing ? Array(repeating: nil, count: count) : []
    }

    /// The most datagrams a batch holds.
    public var capacity: Int { slots.count }

    /// The bytes kept of each datagram.
    public var maxSize: Int { slots.bufferSize }

    private func checkIndex(_ index: Int) {
        precondition(index >= 0 && index < count, "datagram index out of range")
    }

    /// The bytes of datagram `index` (at most ``maxSize``).
    public func length(at index: Int) -> Int {
        checkIndex(index)
        return slots.length(at: index)
    }

    /// A copy of the bytes of datagram `index`.
    public func bytes(at index: Int) -> [UInt8] {
        checkIndex(index)
        return slots.bytes(at: index)
    }

    /// Runs `body` over the bytes of datagram `index`, in place.
    public func withUnsafeBytes<R, E: Error>(
        at index: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        checkIndex(index)
        return try slots.withUnsafeBytes(at: index, body)
    }

    /// The sender of datagram `index` (the empty address, which `SockAddr.isUnnamed()` reports,
    /// when the kernel named none).
    public func address(at index: Int) -> SockAddr? {
        checkIndex(index)
        return slots.address(at: index)
    }

    /// The flags of datagram `index` (`msg_flags`): `MSG_TRUNC` when it was longer than
    /// ``maxSize``, `MSG_CTRUNC` when its control data did not fit.
    public func flags(at index: Int) -> RecvFlags {
        checkIndex(index)
        return fromRing ? ringFlags[index] : slots.flags(at: index)
    }

    /// The packet info of datagram `index` (`IP_PKTINFO` / `IPV6_PKTINFO`): the address it was
    /// sent to and the interface it arrived on; `nil` unless the sequence was made with
    /// `packetInfo: true`.
    public func packetInfo(at index: Int) -> PacketInfo? {
        checkIndex(index)
        return fromRing ? ringPacketInfo[index] : slots.packetInfo(at: index)
    }

    // MARK: Filling (reactor thread)

    /// Takes the datagram of a multishot completion, and those queued behind it, up to the
    /// capacity; their buffers go back to the kernel.
    func fill(from stream: MultishotStream, first: (CInt, UInt32)) {
        count = 0
        var next: (CInt, UInt32)? = first
        while let (result, flags) = next {
            stream.withDatagram(result, flags) { datagram in
                // At most `maxSize` bytes (longer datagrams are cut, with MSG_TRUNC): it fits.
                try? slots.setBytes(datagram.payload, at: count)
                slots.setAddress(datagram.address, at: count)
                ringFlags[count] = datagram.flags
                ringPacketInfo[count] = datagram.control.isEmpty ? nil : PacketInfo.find(in: datagram.control)
                count += 1
            }
            next = count < capacity ? stream.popReady() : nil
        }
    }

    /// Takes the socket's stranded datagrams (those a stopped stream had taken in), up to the
    /// capacity. Whether there were any. A stranded error ends the batch before it, or is thrown
    /// when it comes first.
    func fill(fromStrandedOf io: IOState) throws(Errno) -> Bool {
        count = 0
        let room = slots.bufferSize
        while count < capacity, let next = io.takeStrandedDatagram(maxCount: room, peek: true) {
            if next.error != 0 && count > 0 { break }
            guard let datagram = try io.takeStrandedInput(maxCount: room) else { break }
            datagram.payload.withUnsafeBytes { try? slots.setBytes(UnsafeRawBufferPointer(rebasing: $0.prefix(room)), at: count) }
            slots.setAddress(datagram.address, at: count)
            ringFlags[count] = RecvFlags(rawValue: datagram.flags | (datagram.payload.count > room ? MessageFlags.truncate.rawValue : 0))
            ringPacketInfo[count] = datagram.control.withUnsafeBytes { $0.isEmpty ? nil : PacketInfo.find(in: $0) }
            count += 1
        }
        return count > 0
    }
}

/// What an iterator of ``DatagramBatches`` holds: its socket, its batch, and (io_uring) the
/// multishot stream.
final class BatchReceiver: @unchecked Sendable {
    let socket: AsyncSocket
    let batch: ReceivedDatagramBatch
    let stream: MultishotHandle?

    init(socket: AsyncSocket, count: Int, maxSize: Int, controlCapacity: Int) {
        self.socket = socket
        let multishot = socket.reactor.supportsMultishot
        stream = multishot
            ? MultishotHandle(socket, .recvMsg, maxSize: maxSize, controlCapacity: controlCapacity) : nil
        batch = ReceivedDatagramBatch(count: count, maxSize: maxSize, controlCapacity: controlCapacity,
                                      fromRing: multishot)
    }

    nonisolated(nonsending) func next() async throws -> ReceivedDatagramBatch {
        let batch = self.batch
        if let stream {
            // A completion whose buffer does not hold a valid datagram fills nothing: wait again.
            repeat {
                try await stream.next(fromStranded: { io in try batch.fill(fromStrandedOf: io) ? () : nil }) { stream, result, flags in
                    batch.fill(from: stream, first: (CInt(result), flags))
                }
            } while batch.count == 0
            return batch
        }
        batch.count = 0
        // Without multishot streams on this reactor, no datagram is ever stranded.
        batch.count = try await socket.receiveWhenReadable({ (socket) throws(Errno) in
            try socket.recvmmsg(into: batch.slots)
        }, orStranded: { nil })
        let reactor = socket.reactor
        // A batch that is not full emptied the queue: wait for the next edge rather than try a
        // call that would fail with EAGAIN. (Any datagram that arrives later raises a new edge,
        // which the reactor thread sees only after this.)
        if batch.count < batch.capacity && reactor.tracksReadiness && reactor.isCurrent {
            socket.io.readReady = false
        }
        return batch
    }
}
