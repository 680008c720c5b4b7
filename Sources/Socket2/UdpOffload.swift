#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

// UDP segmentation offload (GSO, `UDP_SEGMENT`, Linux 4.18) and receive coalescing (GRO,
// `UDP_GRO`, Linux 5.0): many datagrams of one flow cross the stack as one buffer, which saves a
// system call and a trip through the stack per datagram. See udp(7).

/// What one coalescing receive (``SocketHandle/recvCoalesced(into:flags:)-(UnsafeMutableRawBufferPointer,_)``) got: one buffer
/// holding one or more datagrams of the same sender, all of ``segmentSize`` bytes but the last.
public struct CoalescedDatagrams: Sendable, Hashable, CustomStringConvertible {
    /// The bytes received.
    public var count: Int
    /// The size of each datagram but the last (`UDP_GRO` control message); `nil` when the kernel
    /// delivered a single datagram.
    public var segmentSize: Int?
    /// The sender.
    public var address: SockAddr?
    /// The flags the kernel returned (`MSG_TRUNC` when the buffer was too small: use 65 535 bytes
    /// or more).
    public var flags: RecvFlags

    /// A received buffer's description, from its parts (as `recvmsg(2)` with `UDP_GRO` reports them).
    public init(count: Int, segmentSize: Int?, address: SockAddr?, flags: RecvFlags) {
        self.count = count
        self.segmentSize = segmentSize
        self.address = address
        self.flags = flags
    }

    /// Where each datagram lies in the buffer.
    public var datagramRanges: [Range<Int>] {
        Self.datagramRanges(count: count, segmentSize: segmentSize)
    }

    /// Where each datagram lies in a buffer of `count` bytes coalesced with `segmentSize`: pieces
    /// of `segmentSize` bytes and a shorter last one. `nil` (or a size that is not positive)
    /// means one datagram; 0 bytes are no datagram.
    public static func datagramRanges(count: Int, segmentSize: Int?) -> [Range<Int>] {
        guard count > 0 else { return [] }
        guard let segmentSize, segmentSize > 0 else { return [0..<count] }
        return stride(from: 0, to: count, by: segmentSize).map { $0..<min($0 + segmentSize, count) }
    }

    /// Splits a coalesced buffer into its datagrams (see ``datagramRanges(count:segmentSize:)``).
    public static func split(_ bytes: [UInt8], segmentSize: Int?) -> [ArraySlice<UInt8>] {
        datagramRanges(count: bytes.count, segmentSize: segmentSize).map { bytes[$0] }
    }

    public var description: String {
        "CoalescedDatagrams(count: \(count), segmentSize: \(segmentSize.map(String.init) ?? "nil"), "
            + "address: \(address.map { "\($0)" } ?? "nil"), flags: \(flags))"
    }
}

extension SocketHandle where Self: ~Copyable {
    /// Sends `buffer` as datagrams of `segmentSize` payload bytes each (the last one possibly
    /// shorter) in one call: `sendmsg(2)` with a `UDP_SEGMENT` control message, `MSG_NOSIGNAL`
    /// and `flags`. `address` is the destination (`nil` on a connected socket).
    ///
    /// The kernel refuses a send of more than `UDP_MAX_SEGMENTS` segments (64; 128 on recent
    /// kernels) with `EINVAL`, and segments larger than the path MTU with `EMSGSIZE`; a device
    /// that cannot segment fails with `EIO`.
    /// Returns the bytes sent.
    public func sendSegmented(
        _ buffer: UnsafeRawBufferPointer, segmentSize: UInt16, to address: SockAddr? = nil,
        flags: MessageFlags = []
    ) throws(Errno) -> Int {
        let message = ControlMessage.udpSegment(segmentSize)
        return try withUnsafeTemporaryAllocation(
            byteCount: message.space, alignment: MemoryLayout<Int>.alignment
        ) { (control) throws(Errno) in
            let length = message.encode(into: control)
            return try sendmsgWithControl(buffer, to: address,
                                          control: UnsafeRawBufferPointer(rebasing: control[..<length]),
                                          flags: flags.rawValue)
        }
    }

    /// Sends `bytes` as datagrams of `segmentSize` bytes in one `sendmsg(2)` with a `UDP_SEGMENT`
    /// control message (see `sendSegmented(_:segmentSize:to:flags:)`).
    public func sendSegmented(
        _ bytes: [UInt8], segmentSize: UInt16, to address: SockAddr? = nil, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try withBytes(bytes) { (buffer) throws(Errno) in
            try sendSegmented(buffer, segmentSize: segmentSize, to: address, flags: flags)
        }
    }

    /// Sends `bytes`, a slice of an array (such as a prefix, `buffer[..<count]`), as datagrams of
    /// `segmentSize` bytes in one `sendmsg(2)` with a `UDP_SEGMENT` control message, without
    /// copying (see `sendSegmented(_:segmentSize:to:flags:)`).
    public func sendSegmented(
        _ bytes: ArraySlice<UInt8>, segmentSize: UInt16, to address: SockAddr? = nil, flags: MessageFlags = []
    ) throws(Errno) -> Int {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(Errno) in
                try sendSegmented(buffer, segmentSize: segmentSize, to: address, flags: flags)
            }
        }.get()
    }

    /// Receives one buffer of coalesced datagrams (with `UDP_GRO` on; one plain datagram
    /// otherwise) and the segment size from its `UDP_GRO` control message: `recvmsg(2)` with
    /// `flags`, without allocating. Other control messages are dropped; read them with
    /// `recvWithControl(into:control:flags:)`, where the
    /// size is ``ReceivedControlMessage/udpGroSegmentSize(_:)``.
    public func recvCoalesced(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []
    ) throws(Errno) -> CoalescedDatagrams {
        var segmentSize: Int?
        let received = try recvWithStackControl(into: buffer, flags: flags) { raw in
            if case .message(SOL_UDP, UDP_GRO, let data) = raw, data.count == MemoryLayout<CInt>.size {
                segmentSize = Int(data.loadUnaligned(as: CInt.self))
            }
        }
        return CoalescedDatagrams(count: received.count, segmentSize: segmentSize,
                                  address: received.address, flags: received.flags)
    }

    /// Receives one buffer of coalesced datagrams of up to `maxCount` bytes with `recvmsg(2)` and
    /// its `UDP_GRO` control message (see
    /// ``recvCoalesced(into:flags:)-(UnsafeMutableRawBufferPointer,_)``) and returns its bytes; split them with
    /// ``CoalescedDatagrams/split(_:segmentSize:)``.
    public func recvCoalesced(
        maxCount: Int = 65_535, flags: MessageFlags = []
    ) throws(Errno) -> (bytes: [UInt8], datagrams: CoalescedDatagrams) {
        let (bytes, datagrams) = try receiveArray(maxCount: maxCount) { (buffer) throws(Errno) in
            let datagrams = try recvCoalesced(into: buffer, flags: flags)
            return (datagrams.count, datagrams)
        }
        return (bytes, datagrams)
    }
}
