// Creating the server's sockets, the same way for every backend.
#if canImport(Glibc)
import Glibc
#endif
import Socket2

/// The listen backlog of every server: the kernel caps it at `net.core.somaxconn`.
public let listenBacklog: CInt = 4096

/// A TCP listener on 127.0.0.1:`port` with `SO_REUSEADDR` (and `SO_REUSEPORT` when several
/// listeners share the port).
public func makeTCPListener(port: UInt16, reusePort: Bool) throws -> Socket {
    let socket = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
    try socket.setReuseAddress(true)
    if reusePort { try socket.setReusePort(true) }
    try socket.bind(SockAddr(SocketAddrV4(.localhost, port)))
    try socket.listen(listenBacklog)
    return socket
}

/// A UDP socket bound to 127.0.0.1:`port`; `receiveBuffer` asks for a bigger `SO_RCVBUF`
/// (`SO_RCVBUFFORCE` when the process may exceed `net.core.rmem_max`). No `SO_REUSEADDR`: on a
/// UDP socket it would let a second server bind the port and take a share of the datagrams (it
/// is meant for multicast receivers); `SO_REUSEPORT` only when asked.
public func makeUDPSocket(port: UInt16, reusePort: Bool, receiveBuffer: Int? = nil) throws -> Socket {
    let socket = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
    if reusePort { try socket.setReusePort(true) }
    if let receiveBuffer {
        // SO_RCVBUFFORCE passes net.core.rmem_max when the process may (root); socket2 has no
        // such option, so it is set directly.
        var size = CInt(receiveBuffer)
        if setsockopt(socket.rawDescriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<CInt>.size)) != 0 {
            try socket.setRecvBufferSize(receiveBuffer)
        }
    }
    try socket.bind(SockAddr(SocketAddrV4(.localhost, port)))
    return socket
}

/// The port a socket is bound to.
public func boundPort(_ socket: borrowing some SocketHandle & ~Copyable) throws -> UInt16 {
    guard let address = try socket.localAddr().asSocketIpv4() else { throw BenchError("not an IPv4 socket") }
    return address.port
}
