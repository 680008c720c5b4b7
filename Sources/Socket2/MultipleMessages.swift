#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

// Many datagrams in one system call: `recvmmsg(2)` and `sendmmsg(2)` over a batch of message
// slots allocated once and reused for every call.

/// A reusable batch of datagram slots for ``SocketHandle/recvmmsg(into:count:flags:timeout:)``
/// and ``SocketHandle/sendmmsg(_:startingAt:count:flags:)``: each slot has a data buffer of ``bufferSize``
/// bytes, room for an address, and ``controlCapacity`` bytes of control data.
///
/// Everything the calls hand to the kernel (`struct mmsghdr`, `struct iovec`, the buffers) is
/// allocated once, in `init`, so a call allocates nothing. A receive fills the slots it reports:
/// ``length(at:)``, ``address(at:)`` (the sender), ``flags(at:)``, ``controlMessages(at:)``. A send
/// sends ``length(at:)`` bytes of each slot to ``address(at:)`` with the control data set by
/// ``setControl(_:at:)`` — so a batch just received can be sent back to its senders as it is.
///
/// Descriptors received in control data (`SCM_RIGHTS`) are closed when their slot is reused or
/// the batch goes away, unless ``controlMessages(at:)`` was called for that slot, which hands
/// them to its result.
///
/// A batch is not thread-safe: use it from one thread at a time.
public final class DatagramBatch {
    /// The number of slots.
    public let count: Int
    /// The size of each slot's data buffer.
    public let bufferSize: Int
    /// The bytes of control data each slot can hold (rounded up to the alignment of `size_t`).
    public let controlCapacity: Int

    /// The most messages one `sendmmsg(2)` or `recvmmsg(2)` handles (`UIO_MAXIOV`, 1,024): the
    /// kernel silently takes only this many of a longer vector.
    public static let maxMessagesPerCall = 1024

    private let headers: UnsafeMutablePointer<socket2_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let data: UnsafeMutableRawPointer
    private let controls: UnsafeMutableRawPointer

    /// What a slot's control bytes are.
    private enum ControlState {
        /// Nothing.
        case empty
        /// Set by the user for sending.
        case outgoing
        /// Delivered by the kernel and not parsed yet: owns any descriptors in it.
        case received
        /// Delivered by the kernel and parsed: the result owns the descriptors.
        case parsed([ReceivedControlMessage])
    }

    private var lengths: [Int]
    private var nameLengths: [socklen_t]
    /// Whether slot `index` has an address (received, or set), which may be the empty one.
    private var hasAddress: [Bool]
    private var controlLengths: [Int]
    private var controlStates: [ControlState]
    private var receivedFlags: [CInt]

    /// A batch of `count` slots, each with `bufferSize` bytes of data and `controlCapacity` bytes
    /// of control data (0 for none; size it with ``ControlMessage/space(receiving:)`` from the
    /// kinds of control messages the socket has switched on).
    /// All memory starts zeroed.
    ///
    /// - Precondition: no argument is negative, and the sizes fit in memory.
    public init(count: Int, bufferSize: Int, controlCapacity: Int = 0) {
        precondition(count >= 0 && bufferSize >= 0 && controlCapacity >= 0, "sizes are never negative")
        self.count = count
        self.bufferSize = bufferSize
        self.controlCapacity = ControlMessage.align(controlCapacity)
        headers = .allocate(capacity: count)
        headers.initialize(repeating: socket2_mmsghdr(), count: count)
        vectors = .allocate(capacity: count)
        vectors.initialize(repeating: iovec(), count: count)
        names = .allocate(capacity: count)
        names.initialize(repeating: sockaddr_storage(), count: count)
        func zeroed(_ slotSize: Int) -> UnsafeMutableRawPointer {
            let (total, overflow) = count.multipliedReportingOverflow(by: slotSize)
            precondition(!overflow, "batch too large")
            let memory = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 16)
            memory.initializeMemory(as: UInt8.self, repeating: 0, count: max(total, 1))
            return memory
        }
        data = zeroed(bufferSize)
        controls = zeroed(self.controlCapacity)
        lengths = Array(repeating: 0, count: count)
        nameLengths = Array(repeating: 0, count: count)
        hasAddress = Array(repeating: false, count: count)
        controlLengths = Array(repeating: 0, count: count)
        controlStates = Array(repeating: .empty, count: count)
        receivedFlags = Array(repeating: 0, count: count)
    }

    deinit {
        for index in 0..<count { releaseControl(at: index) }
        headers.deallocate()
        vectors.deallocate()
        names.deallocate()
        data.deallocate()
        controls.deallocate()
    }

    // MARK: Slots

    private func checkIndex(_ index: Int) {
        precondition(index >= 0 && index < count, "slot index out of range")
    }

    private func buffer(at index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: data + index * bufferSize, count: bufferSize)
    }

    private func controlBuffer(at index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: controls + index * controlCapacity, count: controlCapacity)
    }

    /// Closes the descriptors of control data received into a slot and never parsed, and
    /// forgets the slot's control data.
    private func releaseControl(at index: Int) {
        if case .received = controlStates[index] {
            closeReceivedDescriptors(in: UnsafeRawBufferPointer(
                rebasing: controlBuffer(at: index)[..<controlLengths[index]]))
        }
        controlStates[index] = .empty
        controlLengths[index] = 0
    }

    /// The bytes in slot `index`: received by the last receive, or set to be sent.
    public func length(at index: Int) -> Int {
        checkIndex(index)
        return lengths[index]
    }

    /// The flags the kernel returned for the datagram in slot `index` (`msg_flags`; `MSG_TRUNC`
    /// when it was longer than ``bufferSize``).
    public func flags(at index: Int) -> RecvFlags {
        checkIndex(index)
        return RecvFlags(rawValue: receivedFlags[index]).droppingCloseOnExecEcho()
    }

    /// The address of slot `index`: the sender after a receive (the empty address, which
    /// ``SockAddr/isUnnamed()`` reports, for a sender without a name), the destination of a
    /// send; `nil` when none was set or received.
    public func address(at index: Int) -> SockAddr? {
        checkIndex(index)
        guard hasAddress[index] else { return nil }
        return SockAddr(storage: SockAddrStorage(raw: names[index]), length: nameLengths[index])
    }

    /// A copy of the bytes in slot `index` (``length(at:)`` of them).
    public func bytes(at index: Int) -> [UInt8] {
        withUnsafeBytes(at: index) { Array($0) }
    }

    /// Runs `body` over the bytes in slot `index` (``length(at:)`` of them), without copying.
    public func withUnsafeBytes<R, E: Error>(
        at index: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        checkIndex(index)
        return try body(UnsafeRawBufferPointer(rebasing: buffer(at: index)[..<lengths[index]]))
    }

    /// Runs `body` over the whole data buffer of slot `index` (``bufferSize`` bytes), to fill it
    /// in place; then set the length to send with ``setLength(_:at:)``.
    public func withUnsafeMutableBytes<R, E: Error>(
        at index: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        checkIndex(index)
        return try body(buffer(at: index))
    }

    /// Copies `bytes` into slot `index` to be sent.
    ///
    /// - Throws: `Errno.messageTooLong` (`EMSGSIZE`) when they exceed ``bufferSize``.
    public func setBytes(_ bytes: UnsafeRawBufferPointer, at index: Int) throws(Errno) {
        checkIndex(index)
        guard bytes.count <= bufferSize else { throw .messageTooLong }
        buffer(at: index).copyMemory(from: bytes)
        lengths[index] = bytes.count
    }

    /// Copies `bytes` into slot `index` to be sent.
    ///
    /// - Throws: `Errno.messageTooLong` (`EMSGSIZE`) when they exceed ``bufferSize``.
    public func setBytes(_ bytes: [UInt8], at index: Int) throws(Errno) {
        try withBytes(bytes) { (bytes) throws(Errno) in try setBytes(bytes, at: index) }
    }

    /// Sets how many bytes of slot `index` are sent (after filling it in place).
    ///
    /// - Throws: `Errno.invalidArgument` unless `0 <= length <= bufferSize`.
    public func setLength(_ length: Int, at index: Int) throws(Errno) {
        checkIndex(index)
        guard length >= 0, length <= bufferSize else { throw .invalidArgument }
        lengths[index] = length
    }

    /// Sets the destination of slot `index` (`nil`: none, for a connected socket).
    public func setAddress(_ address: SockAddr?, at index: Int) {
        checkIndex(index)
        hasAddress[index] = address != nil
        guard let address else {
            nameLengths[index] = 0
            return
        }
        names[index] = address.storage
        nameLengths[index] = address.len()
    }

    /// Sets the control messages sent with slot `index` (`nil`: none). Control data received
    /// into the slot and never parsed is released first (its descriptors closed).
    ///
    /// - Throws: `Errno.noBufferSpace` (`ENOBUFS`) when `control` exceeds ``controlCapacity``.
    public func setControl(_ control: ControlMessageBuffer?, at index: Int) throws(Errno) {
        checkIndex(index)
        let length = control?.count ?? 0
        guard length <= controlCapacity else { throw .noBufferSpace }
        releaseControl(at: index)
        guard let control, length > 0 else { return }
        control.withUnsafeBytes { controlBuffer(at: index).copyMemory(from: $0) }
        controlLengths[index] = length
        controlStates[index] = .outgoing
    }

    /// The control messages received with the datagram in slot `index`, decoded; empty for a
    /// slot that holds none or holds control data set for sending.
    ///
    /// The first call for a slot after a receive parses its control data and hands its
    /// descriptors (`SCM_RIGHTS`) to the result; later calls return the same values.
    public func controlMessages(at index: Int) -> [ReceivedControlMessage] {
        checkIndex(index)
        switch controlStates[index] {
        case .empty, .outgoing:
            return []
        case .parsed(let messages):
            return messages
        case .received:
            let messages = ReceivedControlMessage.parse(
                received: UnsafeRawBufferPointer(rebasing: controlBuffer(at: index)[..<controlLengths[index]]),
                flags: RecvFlags(rawValue: receivedFlags[index]))
            controlStates[index] = .parsed(messages)
            return messages
        }
    }

    /// The packet info (`IP_PKTINFO` / `IPV6_PKTINFO`) received with the datagram in slot
    /// `index`, read in place without allocating (see ``PacketInfo/find(in:)``); `nil` when the
    /// slot holds none.
    public func packetInfo(at index: Int) -> PacketInfo? {
        checkIndex(index)
        switch controlStates[index] {
        case .empty, .outgoing:
            return nil
        case .received, .parsed:
            return PacketInfo.find(in: UnsafeRawBufferPointer(rebasing: controlBuffer(at: index)[..<controlLengths[index]]))
        }
    }

    // MARK: The calls

    /// Points the first `count` headers at their slots for a receive, releasing what the slots
    /// held (their unparsed descriptors are closed).
    fileprivate func prepareReceive(_ count: Int) -> UnsafeMutablePointer<socket2_mmsghdr> {
        for index in 0..<count {
            releaseControl(at: index)
            lengths[index] = 0
            nameLengths[index] = 0
            hasAddress[index] = false
            receivedFlags[index] = 0
            vectors[index] = iovecOf(buffer(at: index))
            headers[index] = socket2_mmsghdr(
                msg_hdr: msghdr(
                    msg_name: UnsafeMutableRawPointer(names + index),
                    msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                    msg_iov: vectors + index, msg_iovlen: 1,
                    msg_control: controlCapacity > 0 ? controlBuffer(at: index).baseAddress : nil,
                    msg_controllen: controlCapacity, msg_flags: 0),
                msg_len: 0)
        }
        return headers
    }

    /// Records what the kernel wrote into the first `received` headers.
    fileprivate func finishReceive(_ received: Int) {
        for index in 0..<received {
            let header = headers[index]
            lengths[index] = Int(header.msg_len)
            nameLengths[index] = min(header.msg_hdr.msg_namelen, socklen_t(MemoryLayout<sockaddr_storage>.size))
            hasAddress[index] = true
            receivedFlags[index] = header.msg_hdr.msg_flags
            controlLengths[index] = min(header.msg_hdr.msg_controllen, controlCapacity)
            controlStates[index] = controlLengths[index] > 0 ? .received : .empty
        }
    }

    /// Points the headers of the slots in `range` at their slots for a send; returns the
    /// first of them.
    fileprivate func prepareSend(_ range: Range<Int>) -> UnsafeMutablePointer<socket2_mmsghdr> {
        for index in range {
            let outgoing: Bool
            if case .outgoing = controlStates[index] { outgoing = true } else { outgoing = false }
            vectors[index] = iovec(iov_base: data + index * bufferSize, iov_len: lengths[index])
            headers[index] = socket2_mmsghdr(
                msg_hdr: msghdr(
                    msg_name: nameLengths[index] > 0 ? UnsafeMutableRawPointer(names + index) : nil,
                    msg_namelen: nameLengths[index],
                    msg_iov: vectors + index, msg_iovlen: 1,
                    msg_control: outgoing ? controlBuffer(at: index).baseAddress : nil,
                    msg_controllen: outgoing ? controlLengths[index] : 0, msg_flags: 0),
                msg_len: 0)
        }
        return headers + range.lowerBound
    }
}

extension SocketHandle where Self: ~Copyable {
    /// Receives up to `count` datagrams (all slots when `nil`) into `batch` in one call:
    /// `recvmmsg(2)` with `flags` and `MSG_CMSG_CLOEXEC`. Returns how many arrived; slot `i < n`
    /// holds the `i`-th.
    ///
    /// With `MessageFlags.waitForOne` the call blocks for the first datagram only. `timeout`
    /// (`nil`: none) bounds the call, but as recvmmsg(2) documents, the kernel checks it only
    /// after each datagram: it does not end a wait for the first one (use `SO_RCVTIMEO` or
    /// `poll(2)` for that). One call receives at most ``DatagramBatch/maxMessagesPerCall``
    /// datagrams.
    ///
    /// - Throws: `Errno.invalidArgument` when `count` exceeds the batch or `timeout` is
    ///   negative, or the kernel's error (only when no datagram arrived).
    public func recvmmsg(
        into batch: DatagramBatch, count: Int? = nil, flags: MessageFlags = [], timeout: Duration? = nil
    ) throws(Errno) -> Int {
        let count = count ?? batch.count
        guard count >= 0, count <= batch.count else { throw .invalidArgument }
        let headers = batch.prepareReceive(count)
        let received: Int
        if let timeout {
            var limit = try timespecOf(timeout)
            received = try system_recvmmsg(rawDescriptor, headers, count, flags.rawValue | closeOnExecReceived, &limit)
        } else {
            received = try system_recvmmsg(rawDescriptor, headers, count, flags.rawValue | closeOnExecReceived, nil)
        }
        batch.finishReceive(received)
        return received
    }

    /// Sends `count` slots of `batch` starting at slot `start` (all the rest when `nil`) as
    /// datagrams in one call: `sendmmsg(2)` with `MSG_NOSIGNAL` and `flags`. Each slot sends
    /// ``DatagramBatch/length(at:)`` bytes to ``DatagramBatch/address(at:)`` with the control
    /// data set for it.
    ///
    /// Returns how many datagrams were sent, which may be fewer than asked: one call sends at
    /// most ``DatagramBatch/maxMessagesPerCall`` (`UIO_MAXIOV`, 1,024), and the kernel stops at
    /// the first one that fails (its error is thrown only when it is the first). Send a larger
    /// batch by calling again from where the last call stopped:
    ///
    /// ```swift
    /// var sent = 0
    /// while sent < batch.count { sent += try socket.sendmmsg(batch, startingAt: sent) }
    /// ```
    ///
    /// - Throws: `Errno.invalidArgument` when `start` and `count` leave the batch.
    public func sendmmsg(
        _ batch: DatagramBatch, startingAt start: Int = 0, count: Int? = nil, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        guard start >= 0, start <= batch.count else { throw .invalidArgument }
        let count = count ?? batch.count - start
        guard count >= 0, count <= batch.count - start else { throw .invalidArgument }
        let sendable = min(count, DatagramBatch.maxMessagesPerCall)
        return try system_sendmmsg(rawDescriptor, batch.prepareSend(start..<(start + sendable)), sendable,
                                   flags.rawValue | noSignal)
    }
}

/// A non-negative duration as a `timespec`.
func timespecOf(_ duration: Duration) throws(Errno) -> timespec {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0, attoseconds >= 0 else { throw .invalidArgument }
    return timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
}
