#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// UDP segmentation offload (GSO, `UDP_SEGMENT`) and receive coalescing (GRO, `UDP_GRO`) from
// async code: many datagrams of one flow per system call. See udp(7) and the core's
// `sendSegmented(_:segmentSize:to:flags:)` / `recvCoalesced(into:flags:)`.

extension AsyncSocket {
    /// Sends `buffer` as datagrams of `segmentSize` payload bytes each (the last one possibly
    /// shorter) in one call: `sendmsg(2)` or `IORING_OP_SENDMSG` with a `UDP_SEGMENT` control
    /// message, `MSG_NOSIGNAL` and `flags`. `address` is the destination (`nil` on a connected
    /// socket).
    ///
    /// The kernel refuses more than `UDP_MAX_SEGMENTS` segments (64; 128 on recent kernels) with
    /// `EINVAL`, and segments larger than the path MTU with `EMSGSIZE`. Returns the bytes sent.
    public nonisolated(nonsending) func sendSegmented(
        _ buffer: UnsafeRawBufferPointer, segmentSize: UInt16, to address: SockAddr? = nil,
        flags: MessageFlags = []
    ) async throws -> Int {
        try await sendMsg([buffer], to: address, control: ControlMessageBuffer([.udpSegment(segmentSize)]),
                          flags: flags)
    }

    /// Sends `bytes` as datagrams of `segmentSize` bytes in one `sendmsg(2)` or
    /// `IORING_OP_SENDMSG` with a `UDP_SEGMENT` control message (see
    /// `sendSegmented(_:segmentSize:to:flags:)`).
    public nonisolated(nonsending) func sendSegmented(
        _ bytes: [UInt8], segmentSize: UInt16, to address: SockAddr? = nil, flags: MessageFlags = []
    ) async throws -> Int {
        try await sendMsg(bytes, to: address, control: [.udpSegment(segmentSize)], flags: flags)
    }

    /// Sends `bytes`, a slice of an array (such as a prefix, `buffer[..<count]`), as datagrams of
    /// `segmentSize` bytes in one `sendmsg(2)` or `IORING_OP_SENDMSG` with a `UDP_SEGMENT`
    /// control message (see `sendSegmented(_:segmentSize:to:flags:)`).
    public nonisolated(nonsending) func sendSegmented(
        _ bytes: ArraySlice<UInt8>, segmentSize: UInt16, to address: SockAddr? = nil, flags: MessageFlags = []
    ) async throws -> Int {
        try await withCopy(bytes) { try await sendSegmented($0, segmentSize: segmentSize, to: address, flags: flags) }
    }

    /// Receives one buffer of coalesced datagrams (with `setUdpGro(true)`; one plain datagram
    /// otherwise) and their segment size from the `UDP_GRO` control message: `recvmsg(2)` with
    /// `flags`, made when the socket is readable, with its control data on the stack — nothing is
    /// allocated. Other control messages are dropped (read them with
    /// `recvMsg(into:control:flags:)`, where the size is
    /// `ReceivedControlMessage.udpGroSegmentSize`).
    ///
    /// Give it 65 535 bytes or more: a smaller buffer truncates (`MSG_TRUNC`). Split the bytes
    /// with `CoalescedDatagrams.datagramRanges`. With io_uring too, the receive is a
    /// `recvmsg(2)` made when the socket is readable (after an `IORING_OP_RECV` of zero bytes
    /// with `MSG_PEEK` if it was not), so that `buffer` is written only while the call runs.
    public nonisolated(nonsending) func recvCoalesced(
        into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []
    ) async throws -> CoalescedDatagrams {
        try await receiveWhenReadable({ (socket) throws(Errno) in try socket.recvCoalesced(into: buffer, flags: flags) },
                                      orStranded: {
            // A datagram a stopped stream took in: one datagram, not coalesced.
            let received = try await recvMsg(into: [buffer], flags: flags)
            return CoalescedDatagrams(count: received.count, segmentSize: nil, address: received.address,
                                      flags: received.flags)
        })
    }

    /// Receives one buffer of coalesced datagrams of up to `maxCount` bytes (see
    /// `recvCoalesced(into:flags:)`) and returns its bytes; split them with
    /// `CoalescedDatagrams.split(_:segmentSize:)`.
    public nonisolated(nonsending) func recvCoalesced(
        maxCount: Int = 65_535, flags: MessageFlags = []
    ) async throws -> (bytes: [UInt8], datagrams: CoalescedDatagrams) {
        try await withScratch(max(maxCount, 0)) { buffer in
            let datagrams = try await recvCoalesced(into: buffer, flags: flags)
            return (Array(UnsafeRawBufferPointer(rebasing: buffer[..<min(datagrams.count, buffer.count)])), datagrams)
        }
    }
}
