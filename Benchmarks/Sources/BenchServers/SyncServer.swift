// The Socket2 core, blocking: a thread per connection (the C-style baseline).
import Socket2
import SystemPackage

/// Size of every server's receive buffer.
let receiveBufferSize = 64 * 1024

final class SyncServer: BenchServer, @unchecked Sendable {
    let port: UInt16
    var details: String { "blocking sockets, a thread per connection" }
    private let socket: Socket
    private let mode: ServerMode
    private let stats: ServerStats
    // Descriptors a drain accepted, closed by `release` (touched by the control thread only).
    private var drained: [CInt] = []

    init(config: ServerConfig, stats: ServerStats) throws {
        mode = config.mode
        self.stats = stats
        if config.mode.isUDP {
            socket = try makeUDPSocket(
                port: config.port, reusePort: false,
                receiveBuffer: config.mode == .udpDrain ? drainReceiveBufferSize : nil)
        } else {
            socket = try makeTCPListener(port: config.port, reusePort: false)
        }
        port = try boundPort(socket)
        switch mode {
        case .acceptDrain, .udpDrain:
            break  // work happens in `drain`
        default:
            try JoinableThread { [self] in serve() }.detach()
        }
    }

    private func serve() {
        switch mode {
        case .accept: acceptAndClose()
        case .tcpEcho, .tcpStream: acceptConnections()
        case .udpEcho: udpEcho()
        case .udpSink: _ = udpReceive(stopAtMarker: false)
        case .udpSinkBatch: receiveBatches(socket, stats: stats)
        case .udpSinkGro: receiveCoalesced(socket, stats: stats)
        case .acceptDrain, .udpDrain: break
        }
    }

    private func acceptAndClose() {
        while true {
            do throws(Errno) {
                _ = try socket.accept()  // closed at once, when the value is dropped
                stats.add(1)
            } catch {
                if isFatalAcceptError(error) { return }
            }
        }
    }

    private func acceptConnections() {
        while true {
            let fd: CInt
            do throws(Errno) {
                let accepted = try socket.accept()
                let connection = accepted.socket
                try connection.setTcpNodelay(true)
                fd = connection.intoRawDescriptor()
            } catch {
                if isFatalAcceptError(error) { return }
                continue
            }
            let stats = stats
            let echo = mode == .tcpEcho
            do {
                try JoinableThread {
                    let connection = Socket(rawDescriptor: fd)
                    serveConnection(connection, echo: echo, stats: stats)
                }.detach()
            } catch {
                _ = Socket(rawDescriptor: fd)  // closes it
            }
        }
    }

    private func udpEcho() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: receiveBufferSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            do throws(Errno) {
                let (count, address) = try socket.recvFrom(into: buffer)
                stats.add(1)
                _ = try socket.sendTo(UnsafeRawBufferPointer(rebasing: buffer[..<count]), to: address)
            } catch {
                if error == .badFileDescriptor { return }
            }
        }
    }

    /// Receives datagrams; with `stopAtMarker`, until the drain's end marker. Returns the count.
    private func udpReceive(stopAtMarker: Bool) -> Int {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: receiveBufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var received = 0
        while true {
            do throws(Errno) {
                let count = try socket.recv(into: buffer)
                if stopAtMarker && count == drainMarkerSize { return received }
                received += 1
                stats.add(1)
            } catch {
                if error == .badFileDescriptor { return received }
            }
        }
    }

    func drain(count: Int) throws -> DrainResult {
        switch mode {
        case .acceptDrain:
            drained.reserveCapacity(count)
            let clock = DrainClock()
            for _ in 0..<count {
                let accepted = try socket.accept()
                let connection = accepted.socket
                drained.append(connection.intoRawDescriptor())
            }
            return clock.result(count: count)
        case .udpDrain:
            let clock = DrainClock()
            let received = udpReceive(stopAtMarker: true)
            return clock.result(count: received)
        default:
            throw BenchError("drain needs mode accept-drain or udp-drain")
        }
    }

    func release() {
        for fd in drained { _ = Socket(rawDescriptor: fd) }
        drained.removeAll(keepingCapacity: true)
    }
}

/// Echoes (or discards) everything received on a blocking connection until the peer closes.
private func serveConnection(_ connection: borrowing Socket, echo: Bool, stats: ServerStats) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: receiveBufferSize, alignment: 16)
    defer { buffer.deallocate() }
    do {
        while true {
            let count = try connection.recv(into: buffer)
            if count == 0 { return }
            if echo {
                stats.add(1)
                var sent = 0
                while sent < count {
                    sent += try connection.send(UnsafeRawBufferPointer(rebasing: buffer[sent..<count]))
                }
            } else {
                stats.add(count)
            }
        }
    } catch {
        return  // reset by the peer: the connection ends
    }
}

/// Accept errors after which the listener is gone.
func isFatalAcceptError(_ error: Errno) -> Bool {
    error == .badFileDescriptor || error == .invalidArgument || error == .notSocket
}
