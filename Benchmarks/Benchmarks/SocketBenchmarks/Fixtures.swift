// Connected sockets for the benchmarks, made with the Socket2 core on 127.0.0.1. The side
// under test (`local`) is a `Socket` or an `AsyncSocket`; the other end (`peer`) is always the
// blocking core.
import Socket2
import SystemPackage

/// Size of every message.
let messageSize = 64

/// A listener on 127.0.0.1 (kernel-chosen port).
func makeListener() throws(Errno) -> Socket {
    let listener = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
    try listener.setReuseAddress(true)
    try listener.bind(SockAddr(SocketAddrV4(.localhost, 0)))
    try listener.listen(1024)
    return listener
}

/// A TCP connection: `first` the accepted side, `second` the connecting peer, both
/// TCP_NODELAY.
func connectedTCP() throws(Errno) -> SocketPair {
    let listener = try makeListener()
    let peer = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
    try peer.setTcpNodelay(true)
    try peer.connect(try listener.localAddr())
    let accepted = try listener.accept()
    let local = accepted.socket
    try local.setTcpNodelay(true)
    return SocketPair(first: local, second: peer)
}

/// A bound UDP socket (`first`) and a peer connected to it (`second`).
func connectedUDP() throws(Errno) -> SocketPair {
    let local = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
    try local.bind(SockAddr(SocketAddrV4(.localhost, 0)))
    let peer = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
    try peer.connect(try local.localAddr())
    return SocketPair(first: local, second: peer)
}

/// A socket under test, its peer, and a buffer for each.
final class Connection<Local: ~Copyable>: @unchecked Sendable {
    let local: Local
    let peer: Socket
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
    let peerBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: messageSize, alignment: 16)

    init(local: consuming Local, peer: consuming Socket) {
        self.local = local
        self.peer = peer
        buffer.initializeMemory(as: UInt8.self, repeating: 1)
        peerBuffer.initializeMemory(as: UInt8.self, repeating: 2)
    }

    deinit {
        buffer.deallocate()
        peerBuffer.deallocate()
    }

    /// One message of `messageSize` from `buffer`.
    var message: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[..<messageSize]) }

    /// The peer sends one message.
    func peerSend() throws(Errno) {
        _ = try peer.send(UnsafeRawBufferPointer(peerBuffer))
    }

    /// The peer reads one whole message (TCP).
    func peerReceive() throws(Errno) {
        var received = 0
        while received < messageSize {
            received += try peer.recv(into: UnsafeMutableRawBufferPointer(rebasing: peerBuffer[received...]))
        }
    }
}

extension Connection where Local == Socket {
    static func tcp() throws(Errno) -> Connection<Socket> {
        let pair = try connectedTCP()
        return Connection(local: pair.first, peer: pair.second)
    }

    static func udp() throws(Errno) -> Connection<Socket> {
        let pair = try connectedUDP()
        return Connection(local: pair.first, peer: pair.second)
    }
}

/// A listener under test and its address: each operation connects a blocking client that
/// resets on close (SO_LINGER 0), so that no TIME_WAIT entries pile up.
final class Listener<Local: ~Copyable>: @unchecked Sendable {
    let listener: Local
    let address: SockAddr

    init(listener: consuming Local, address: SockAddr) {
        self.listener = listener
        self.address = address
    }

    /// A client connected into the listener's backlog.
    func connectClient() throws(Errno) -> Socket {
        let client = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
        try client.setLinger(.zero)
        try client.connect(address)
        return client
    }
}

extension Listener where Local == Socket {
    static func make() throws(Errno) -> Listener<Socket> {
        let listener = try makeListener()
        let address = try listener.localAddr()
        return Listener(listener: listener, address: address)
    }
}
