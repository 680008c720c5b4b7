// UDP sinks that take many datagrams per receive: in batches (`udp-sink-batch`: recvmmsg(2),
// or the multishot completions of one loop turn on io_uring; NIO's vector reads) and coalesced
// by the kernel (`udp-sink-gro`: UDP_GRO, one buffer of up to 64 KiB per receive).
import NIOCore
import NIOPosix
import Socket2
import Socket2Async
import SystemPackage

/// Datagrams in one batch, as the UDP flood client sends them per sendmmsg(2).
let receiveBatchCount = 32

/// The slot size of a batch: the scenarios send at most 1,200 bytes.
let receiveBatchSlotSize = 2048

/// A coalescing receive needs room for a whole GRO buffer (64 KiB), or the kernel truncates it.
let coalescedBufferSize = 65_536

/// The datagrams of one coalescing receive: bytes / segment size, rounded up.
@inline(__always)
func datagramCount(_ datagrams: CoalescedDatagrams) -> Int {
    guard datagrams.count > 0 else { return 0 }
    guard let segment = datagrams.segmentSize, segment > 0 else { return 1 }
    return (datagrams.count + segment - 1) / segment
}

// MARK: - sync (the core, blocking)

/// udp-sink-batch: `recvmmsg(2)` with `MSG_WAITFORONE` into one reused batch, until the socket
/// is closed.
func receiveBatches(_ socket: borrowing Socket, stats: ServerStats) {
    let batch = DatagramBatch(count: receiveBatchCount, bufferSize: receiveBatchSlotSize)
    while true {
        do throws(Errno) {
            stats.add(try socket.recvmmsg(into: batch, flags: .waitForOne))
        } catch {
            if error == .badFileDescriptor { return }
        }
    }
}

/// udp-sink-gro: `UDP_GRO` on, then one `recvmsg(2)` per coalesced buffer, counting its
/// datagrams.
func receiveCoalesced(_ socket: borrowing Socket, stats: ServerStats) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: coalescedBufferSize, alignment: 16)
    defer { buffer.deallocate() }
    do throws(Errno) {
        try socket.setUdpGro(true)
    } catch {
        printError("socket2-server: UDP_GRO refused: \(error)")
        return
    }
    while true {
        do throws(Errno) {
            stats.add(datagramCount(try socket.recvCoalesced(into: buffer)))
        } catch {
            if error == .badFileDescriptor { return }
        }
    }
}

// MARK: - Socket2Async (epoll, io_uring)

/// udp-sink-batch: `datagramBatches` (epoll: recvmmsg(2) when readable; io_uring: the
/// completions of a multishot recvmsg), counting each batch.
func receiveBatches(_ socket: AsyncSocket, stats: ServerStats) async throws {
    for try await batch in try socket.datagramBatches(count: receiveBatchCount, maxSize: receiveBatchSlotSize) {
        stats.add(batch.count)
    }
}

/// udp-sink-gro: `UDP_GRO` on, then `recvCoalesced(into:)` into one reused buffer.
func receiveCoalesced(_ socket: AsyncSocket, stats: ServerStats) async throws {
    try socket.setUdpGro(true)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: coalescedBufferSize, alignment: 16)
    defer { buffer.deallocate() }
    while true {
        stats.add(datagramCount(try await socket.recvCoalesced(into: buffer)))
    }
}

// MARK: - SwiftNIO

extension DatagramBootstrap {
    /// NIO's own equivalents: vector reads (recvmmsg(2), 32 datagrams, a receive buffer 32 slots
    /// large as NIO asks) for udp-sink-batch; `UDP_GRO` with segment sizes and a 64 KiB receive
    /// buffer for udp-sink-gro.
    func receiveOptions(for mode: ServerMode) -> DatagramBootstrap {
        switch mode {
        case .udpSinkBatch:
            self.channelOption(.datagramVectorReadMessageCount, value: receiveBatchCount)
                .channelOption(.recvAllocator,
                               value: FixedSizeRecvByteBufferAllocator(capacity: receiveBatchCount * receiveBatchSlotSize))
        case .udpSinkGro:
            self.channelOption(.datagramReceiveOffload, value: true)
                .channelOption(.datagramReceiveSegmentSize, value: true)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: coalescedBufferSize))
        default:
            self
        }
    }
}

/// udp-sink-gro on NIO: counts the datagrams of each coalesced read from its segment size.
final class UDPCoalescedSinkHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let stats: ServerStats
    init(stats: ServerStats) { self.stats = stats }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        stats.add(datagramCount(CoalescedDatagrams(
            count: envelope.data.readableBytes, segmentSize: envelope.metadata?.segmentSize,
            address: nil, flags: RecvFlags(rawValue: 0))))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}
