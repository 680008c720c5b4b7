// Sockets handed between Socket2 and SwiftNIO, both ways, with real traffic on loopback: a
// listening, a connected and a datagram socket configured with Socket2 and served by NIO (the
// descriptor changes owner exactly once), and a NIO channel's descriptor seen as a SockRef for
// options NIO has no name for. The snippets of the DocC article "Handing sockets to SwiftNIO"
// are copied here verbatim (scripts/check-doc-snippets.py keeps them equal).

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Socket2
import Testing

/// Echoes every byte it reads.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// Sends every datagram back to its sender.
final class DatagramEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}

/// The inode of the socket open as `fd`, to tell it from a later socket given the same number.
private func inode(of fd: CInt) -> ino_t? {
    var status = stat()
    return fstat(fd, &status) == 0 ? status.st_ino : nil
}

/// Bounds a Socket2 socket's blocking calls, so that a test whose reply never comes fails.
private func bounded(_ socket: borrowing Socket) throws {
    try socket.setReadTimeout(.seconds(10))
    try socket.setWriteTimeout(.seconds(10))
}

@Suite("SwiftNIO hand-off")
struct NIOHandOffTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    @Test func listenerConfiguredBySocket2ServedByNIO() throws {
        defer { try? group.syncShutdownGracefully() }
        // snippet: listener
        let listener = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
        try listener.setReuseAddress(true)
        try listener.setReusePort(true)
        try listener.setTcpFastopen(16)
        try listener.bind(SockAddr(SocketAddrV4(.localhost, 0)))
        try listener.listen(1024)
        let address = try listener.localAddr()

        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .withBoundSocket(listener.intoRawDescriptor())  // NIO owns and closes it now
            .wait()
        // end snippet
        let descriptor = try server.eventLoop.submit {
            try server.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { $0 }
        }.wait()
        let handedInode = try #require(descriptor.flatMap(inode(of:)))
        #expect(server.localAddress?.port == address.asSocketIpv4().map { Int($0.port) })

        let client = try Socket(domain: .ipv4, type: .stream)
        try bounded(client)
        try client.connect(address)
        #expect(try client.send(Array("ping".utf8)) == 4)
        #expect(try client.recv(maxCount: 16) == Array("ping".utf8))

        try server.close().wait()
        // NIO closed the descriptor Socket2 gave up: it no longer names that socket.
        #expect(inode(of: descriptor!) != handedInode)
    }

    @Test func connectedSocketServedByNIO() throws {
        defer { try? group.syncShutdownGracefully() }
        let listener = try Socket(domain: .ipv6, type: .stream)
        try listener.bind(SockAddr(SocketAddrV6(.localhost, 0)))
        try listener.listen(8)
        // snippet: connected
        let socket = try Socket(domain: .ipv6, type: .stream, protocol: .tcp)
        try socket.setTcpNodelay(true)
        try socket.setTcpUserTimeout(.seconds(30))
        try socket.connectTimeout(try listener.localAddr(), timeout: .seconds(5))

        let channel = try ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .withConnectedSocket(socket.intoRawDescriptor())
            .wait()
        // end snippet
        let accepted = try listener.accept()
        try bounded(accepted.socket)
        #expect(try accepted.socket.send(Array("hello".utf8)) == 5)
        #expect(try accepted.socket.recv(maxCount: 16) == Array("hello".utf8))
        try channel.close().wait()
        #expect(try accepted.socket.recv(maxCount: 16) == [])  // NIO's close reached the peer
    }

    @Test func datagramSocketServedByNIO() throws {
        defer { try? group.syncShutdownGracefully() }
        // snippet: datagram
        let socket = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
        try socket.setReuseAddress(true)
        try socket.setRecvBufferSize(1 << 20)
        try socket.bind(SockAddr(SocketAddrV4(.localhost, 0)))
        let address = try socket.localAddr()

        let channel = try DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramEchoHandler())
                }
            }
            .withBoundSocket(socket.intoRawDescriptor())
            .wait()
        // end snippet
        let client = try Socket(domain: .ipv4, type: .dgram)
        try bounded(client)
        try client.bind(SockAddr(SocketAddrV4(.localhost, 0)))
        #expect(try client.sendTo(Array("datagram".utf8), to: address) == 8)
        let (bytes, from) = try client.recvFrom(maxCount: 64)
        #expect(bytes == Array("datagram".utf8) && from == address)
        try channel.close().wait()
    }

    @Test func nioChannelSeenAsSockRef() throws {
        defer { try? group.syncShutdownGracefully() }
        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        let channel = try ClientBootstrap(group: group).connect(to: server.localAddress!).wait()
        // snippet: sockref
        let (algorithm, state) = try channel.eventLoop.submit {
            try channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) {
                let socket = SockRef(rawDescriptor: $0)  // borrowed: NIO still owns the descriptor
                try socket.setTcpCongestion(Array("reno".utf8))
                return (try socket.tcpCongestion(), try socket.tcpInfo().state)
            }
        }.wait()!
        // end snippet
        #expect(algorithm == Array("reno".utf8))
        #expect(state == .established)
        try channel.writeAndFlush(ByteBuffer(string: "still works")).wait()
        try channel.close().wait()
        try server.close().wait()
    }

    @Test func socket2ReceivesIntoAByteBuffer() throws {
        defer { try? group.syncShutdownGracefully() }
        let pair = try Socket.pair(domain: .unix, type: .stream)
        try bounded(pair.second)
        _ = try pair.first.send(Array("into NIO".utf8))
        // snippet: bytebuffer
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        try buffer.writeWithOutputRawSpan(minimumWritableBytes: 4096) { span in
            _ = try pair.second.recv(into: &span)
        }
        _ = try pair.first.send(buffer.readableBytesSpan)
        // end snippet
        #expect(String(buffer: buffer) == "into NIO")
        #expect(try pair.second.recv(maxCount: 16) == Array("into NIO".utf8))
    }
}
