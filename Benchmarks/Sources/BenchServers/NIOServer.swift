// SwiftNIO (NIOPosix) doing the same work, written the way NIO is usually written: channel
// handlers, write on read and flush on read-complete. UDP sockets come from the same
// `makeUDPSocket` as the other backends (`withBoundSocket`); listeners are NIO's own, with the
// same options as `makeTCPListener`.
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Socket2

final class NIOServer: BenchServer {
    let port: UInt16
    let details: String
    private let group: MultiThreadedEventLoopGroup
    private let channels: [Channel]
    private let drainState: NIODrainState

    init(config: ServerConfig, stats: ServerStats) throws {
        let loops = config.mode == .acceptDrain || config.mode == .udpDrain ? 1 : config.threads
        group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        details = "NIOPosix, \(loops) event loop\(loops == 1 ? "" : "s")"
        let drainState = NIODrainState()
        self.drainState = drainState
        let mode = config.mode
        var channels: [Channel] = []
        var port = config.port
        do {
            for loop in group.makeIterator() {
                // With several loops: one SO_REUSEPORT socket per loop, on the port the first got.
                let reusePort = loops > 1
                if mode.isUDP {
                    let socket = try makeUDPSocket(
                        port: port, reusePort: reusePort,
                        receiveBuffer: mode == .udpDrain ? drainReceiveBufferSize : nil)
                    port = try boundPort(socket)
                    let channel = try DatagramBootstrap(group: loop)
                        .channelOption(.autoRead, value: mode != .udpDrain)
                        .receiveOptions(for: mode)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                let handler: any ChannelHandler =
                                    switch mode {
                                    case .udpEcho: UDPEchoHandler(stats: stats)
                                    case .udpSinkGro: UDPCoalescedSinkHandler(stats: stats)
                                    default: UDPSinkHandler(stats: stats, drain: mode == .udpDrain ? drainState : nil)
                                    }
                                try channel.pipeline.syncOperations.addHandler(handler)
                            }
                        }
                        .withBoundSocket(socket.intoRawDescriptor())
                        .wait()
                    channels.append(channel)
                } else {
                    // NIO's own bind: `withBoundSocket` would listen again with NIO's backlog
                    // option before it is applied (128). Same options as `makeTCPListener`.
                    let channel = try ServerBootstrap(group: loop)
                        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                        .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: reusePort ? 1 : 0)
                        .serverChannelOption(.backlog, value: Int32(listenBacklog))
                        .serverChannelOption(.autoRead, value: mode != .acceptDrain)
                        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                        .childChannelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture {
                                let handler: any ChannelHandler =
                                    switch mode {
                                    case .accept: CloseOnActiveHandler(stats: stats)
                                    case .acceptDrain: DrainAcceptHandler(drain: drainState)
                                    case .tcpEcho: EchoHandler(stats: stats)
                                    default: DiscardHandler(stats: stats)
                                    }
                                try channel.pipeline.syncOperations.addHandler(handler)
                            }
                        }
                        .bind(host: "127.0.0.1", port: Int(port))
                        .wait()
                    port = UInt16(channel.localAddress?.port ?? 0)
                    channels.append(channel)
                }
            }
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.channels = channels
        self.port = port
    }

    func drain(count: Int) throws -> DrainResult {
        guard let channel = channels.first else { throw BenchError("no channel") }
        let done = Semaphore()
        let drainState = drainState
        channel.eventLoop.execute {
            drainState.begin(count: count, channel: channel, done: done)
            channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in done.signal() }
        }
        done.wait()
        guard let result = drainState.result else { throw BenchError("NIO drain failed") }
        return result
    }

    func release() {
        guard let channel = channels.first else { return }
        let done = Semaphore()
        let drainState = drainState
        channel.eventLoop.execute {
            drainState.closeAccepted()
            done.signal()
        }
        done.wait()
    }
}

/// The state of a drain, touched only on the (single) event loop, except `result`, which
/// the control thread reads after `done` was signalled.
final class NIODrainState: @unchecked Sendable {
    private var target = 0
    private var clock = DrainClock()
    private var serverChannel: Channel?
    private var done: Semaphore?
    private(set) var accepted: [Channel] = []
    private var received = 0
    var result: DrainResult?

    func begin(count: Int, channel: Channel, done: Semaphore) {
        target = count
        received = 0
        result = nil
        serverChannel = channel
        self.done = done
        accepted.removeAll(keepingCapacity: true)
        accepted.reserveCapacity(count)
        clock = DrainClock()
    }

    /// A connection became active.
    func didAccept(_ channel: Channel) {
        accepted.append(channel)
        if accepted.count == target { finish(count: target) }
    }

    /// A datagram arrived; the 1-byte marker ends the drain.
    func didReceive(size: Int) {
        if size == drainMarkerSize { finish(count: received) } else { received += 1 }
    }

    private func finish(count: Int) {
        result = clock.result(count: count)
        _ = serverChannel?.setOption(ChannelOptions.autoRead, value: false)
        done?.signal()
        done = nil
    }

    func closeAccepted() {
        for channel in accepted { channel.close(promise: nil) }
        accepted.removeAll(keepingCapacity: true)
    }
}

/// accept: close every connection as soon as it is active.
private final class CloseOnActiveHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let stats: ServerStats
    init(stats: ServerStats) { self.stats = stats }

    func channelActive(context: ChannelHandlerContext) {
        stats.add(1)
        context.close(promise: nil)
    }
}

/// accept-drain: keep every connection, report the drain's end.
private final class DrainAcceptHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let drain: NIODrainState
    init(drain: NIODrainState) { self.drain = drain }

    func channelActive(context: ChannelHandlerContext) {
        drain.didAccept(context.channel)
    }
}

/// tcp-echo: write back what was read, flush once per read burst.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let stats: ServerStats
    init(stats: ServerStats) { self.stats = stats }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        stats.add(1)
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// tcp-stream: read and discard.
private final class DiscardHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let stats: ServerStats
    init(stats: ServerStats) { self.stats = stats }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        stats.add(unwrapInboundIn(data).readableBytes)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// udp-echo: send each datagram back to its sender.
private final class UDPEchoHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let stats: ServerStats
    init(stats: ServerStats) { self.stats = stats }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        stats.add(1)
        let envelope = unwrapInboundIn(data)
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: envelope.data)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

/// udp-sink and udp-drain: count and drop datagrams.
private final class UDPSinkHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let stats: ServerStats
    let drain: NIODrainState?
    init(stats: ServerStats, drain: NIODrainState?) {
        self.stats = stats
        self.drain = drain
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let size = unwrapInboundIn(data).data.readableBytes
        if let drain {
            drain.didReceive(size: size)
        } else {
            stats.add(1)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}
