// Socket2Async on an epoll or io_uring reactor, written the way a user of the library should
// write a server: every task runs on its socket's reactor (`Task(executorPreference:)`),
// connections come from `incoming` and datagrams from `datagrams(maxSize:)` (multishot accept
// and multishot recvmsg with provided buffers on io_uring), one task per connection reading with
// the lean receive (no buffer per connection), one reactor per thread, all serving one socket
// (or one SO_REUSEPORT socket each, when asked).
import CBenchSupport
import Socket2
import Socket2Async

final class AsyncServer: BenchServer, @unchecked Sendable {
    let port: UInt16
    let details: String
    private let group: ReactorGroup
    private let sockets: [AsyncSocket]
    private let mode: ServerMode
    private let reading: ConnectionReading
    private let stats: ServerStats
    // Connections a drain accepted; touched only on the first reactor.
    private var drained: [AsyncSocket] = []

    init(config: ServerConfig, stats: ServerStats) throws {
        let backend: Reactor.Backend =
            switch config.backend {
            case .epoll: .epoll
            case .ioUring: .ioUring
            default: .automatic
            }
        mode = config.mode
        reading = config.reading
        self.stats = stats
        let drain = config.mode == .acceptDrain || config.mode == .udpDrain
        let count = drain ? 1 : config.threads
        group = try ReactorGroup(count: count, backend: backend)
        var sockets: [AsyncSocket] = []
        var port = config.port
        // One socket for the port, without SO_REUSEPORT unless asked (`--reuse-port`): a second
        // server started on the port fails with EADDRINUSE instead of taking a share. The other
        // reactors serve duplicates of its descriptor.
        let makeSocket = { (port: UInt16) throws -> Socket in
            config.mode.isUDP
                ? try makeUDPSocket(
                    port: port, reusePort: config.reusePort,
                    receiveBuffer: config.mode == .udpDrain ? drainReceiveBufferSize : nil)
                : try makeTCPListener(port: port, reusePort: config.reusePort)
        }
        do {
            for reactor in group.reactors {
                let socket = try sockets.first.map { config.reusePort ? try makeSocket(port) : try $0.tryClone() }
                    ?? makeSocket(port)
                port = try boundPort(socket)
                sockets.append(try AsyncSocket(socket, reactor: reactor))
            }
        } catch {
            group.shutdown()
            throw error
        }
        self.sockets = sockets
        self.port = port
        let kind = group.reactors[0].backend
        details = "Socket2Async, \(count) \(kind) reactor\(count == 1 ? "" : "s")"
            + (kind == .ioUring ? "; ring flags \(ioUringSetupFlags()) (probed)" : "")
        guard !drain else { return }
        for socket in sockets {
            let mode = mode, reading = reading
            Task(executorPreference: socket.reactor) {
                await serve(socket, mode: mode, reading: reading, stats: stats)
            }
        }
    }

    func drain(count: Int) throws -> DrainResult {
        let done = Semaphore()
        let outcome = Outcome()
        let socket = sockets[0]
        Task(executorPreference: socket.reactor) { [self] in
            do {
                switch mode {
                case .acceptDrain:
                    drained.reserveCapacity(count)
                    let clock = DrainClock()
                    for try await connection in socket.incoming {
                        drained.append(connection.socket)
                        if drained.count == count { break }
                    }
                    outcome.result = clock.result(count: drained.count)
                case .udpDrain:
                    let clock = DrainClock()
                    let received = try await receiveDatagrams(socket, stopAtMarker: true, stats: stats)
                    outcome.result = clock.result(count: received)
                default:
                    outcome.error = BenchError("drain needs mode accept-drain or udp-drain")
                }
            } catch {
                outcome.error = error
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
        return outcome.result!
    }

    func release() {
        let done = Semaphore()
        Task(executorPreference: sockets[0].reactor) { [self] in
            for connection in drained { try? await connection.close() }
            drained.removeAll(keepingCapacity: true)
            done.signal()
        }
        done.wait()
    }
}

/// Hands a drain's outcome from the reactor to the waiting control thread (the semaphore
/// orders the accesses).
private final class Outcome: @unchecked Sendable {
    var result: DrainResult?
    var error: (any Error)?
}

/// The server loop of one listener or UDP socket, on its reactor.
private func serve(_ socket: AsyncSocket, mode: ServerMode, reading: ConnectionReading, stats: ServerStats) async {
    do {
        switch mode {
        case .accept:
            for try await connection in socket.incoming {
                stats.add(1)
                try? await connection.socket.close()
            }
        case .tcpEcho, .tcpStream:
            let echo = mode == .tcpEcho
            for try await connection in socket.incoming {
                let connection = connection.socket
                try connection.setTcpNodelay(true)
                switch reading {
                case .handler:
                    await readConnection(connection, echo: echo, stats: stats)
                case .task:
                    Task(executorPreference: socket.reactor) {
                        await serveConnection(connection, echo: echo, stats: stats)
                    }
                case .buffer:
                    Task(executorPreference: socket.reactor) {
                        await serveWithBuffer(connection, echo: echo, stats: stats)
                    }
                }
            }
        case .udpEcho:
            // One reused buffer: the raw-buffer forms allocate nothing per datagram, where the
            // `datagrams` stream hands out a new array each time.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxDatagramSize, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let (count, sender) = try await socket.recvFrom(into: buffer)
                stats.add(1)
                _ = try await socket.sendTo(UnsafeRawBufferPointer(rebasing: buffer[..<count]), to: sender)
            }
        case .udpSink:
            _ = try await receiveDatagrams(socket, stopAtMarker: false, stats: stats)
        case .udpSinkBatch:
            try await receiveBatches(socket, stats: stats)
        case .udpSinkGro:
            try await receiveCoalesced(socket, stats: stats)
        case .acceptDrain, .udpDrain:
            break
        }
    } catch {
        printError("socket2-server: \(mode.rawValue) loop ended: \(error)")
    }
}

/// Echoes (or discards) what a connection sends until the peer closes it, holding no buffer
/// while it waits: the lean receive lends each chunk's bytes (from the reactor's shared buffer
/// ring on io_uring, from thread memory on epoll), and the echo goes straight back from them
/// with a non-blocking `send(2)`. Only what the kernel cannot take at once is copied, and sent
/// with an await after the receive returns.
private func serveConnection(_ connection: AsyncSocket, echo: Bool, stats: ServerStats) async {
    var unsent: [UInt8] = []
    do {
        while true {
            let count = try await connection.receive { bytes in
                if echo && bytes.byteCount > 0 { sendNow(bytes, on: connection, keeping: &unsent) }
                return bytes.byteCount
            }
            if count == 0 { break }
            if echo {
                stats.add(1)
                if !unsent.isEmpty {
                    try await connection.sendAll(unsent)
                    unsent.removeAll()  // rare: keep no memory for it
                }
            } else {
                stats.add(count)
            }
        }
    } catch {
        // Reset by the peer: the connection ends.
    }
    try? await connection.close()
}

/// Echoes (or discards) what a connection sends with a buffer of its own (allocated once,
/// held while the receive waits) and `recv(into:)`, then `sendAll`: the plain style, which
/// submits a receive request per message on io_uring (where the lean receive's stays armed).
private func serveWithBuffer(_ connection: AsyncSocket, echo: Bool, stats: ServerStats) async {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: connectionBufferSize, alignment: 16)
    defer { buffer.deallocate() }
    do {
        while true {
            let count = try await connection.recv(into: buffer)
            if count == 0 { break }
            if echo {
                stats.add(1)
                try await connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            } else {
                stats.add(count)
            }
        }
    } catch {
        // Reset by the peer: the connection ends.
    }
    try? await connection.close()
}

/// The buffer of a connection read with `recv(into:)`.
private let connectionBufferSize = 16 << 10

/// Echoes (or discards) what a connection sends with a read handler: no task while the
/// connection waits. Only a reply the kernel cannot take at once gets a task, which sends it
/// and then reads on (input waits in the kernel meanwhile).
private func readConnection(_ connection: AsyncSocket, echo: Bool, stats: ServerStats) async {
    do {
        try await connection.startReading { bytes, _ in
            if bytes.byteCount == 0 {
                // The end of the stream, or a reset.
                connection.closeInBackground()
                return .stopReading
            }
            guard echo else {
                stats.add(bytes.byteCount)
                return .keepReading
            }
            stats.add(1)
            var unsent: [UInt8] = []
            sendNow(bytes, on: connection, keeping: &unsent)
            if unsent.isEmpty { return .keepReading }
            Task(executorPreference: connection.reactor) {
                do {
                    try await connection.sendAll(unsent)
                } catch {
                    connection.closeInBackground()
                    return
                }
                await readConnection(connection, echo: echo, stats: stats)
            }
            return .stopReading
        }
    } catch {
        connection.closeInBackground()
    }
}

/// Sends `bytes` without waiting and appends to `unsent` what the kernel did not take (all of
/// it after an error: the awaited send that follows reports the error).
private func sendNow(_ bytes: RawSpan, on connection: AsyncSocket, keeping unsent: inout [UInt8]) {
    bytes.withUnsafeBytes { buffer in
        let sent = (try? connection.sendWithFlags(buffer, flags: .noSignal)) ?? 0
        if sent < buffer.count { unsent.append(contentsOf: buffer[sent...]) }
    }
}

/// The largest datagram the UDP servers take (the scenarios send at most 1,200 bytes).
private let maxDatagramSize = 2048

/// Receives datagrams and counts them; with `stopAtMarker`, until the drain's 1-byte end marker.
private func receiveDatagrams(_ socket: AsyncSocket, stopAtMarker: Bool, stats: ServerStats) async throws -> Int {
    var received = 0
    for try await datagram in socket.datagrams(maxSize: maxDatagramSize) {
        if stopAtMarker && datagram.bytes.count == drainMarkerSize { break }
        received += 1
        stats.add(1)
    }
    return received
}

/// The io_uring setup flags this kernel accepts, in the order the reactor tries them (the
/// reactor does not say which it chose).
func ioUringSetupFlags() -> String {
    let flags = cbench_probe_io_uring_flags()
    guard flags >= 0 else { return "none accepted (errno \(-flags))" }
    let names: [(Int, String)] = [
        (1 << 12, "SINGLE_ISSUER"), (1 << 13, "DEFER_TASKRUN"), (1 << 8, "COOP_TASKRUN"), (1 << 9, "TASKRUN_FLAG"),
        (1 << 7, "SUBMIT_ALL"), (1 << 3, "CQSIZE"),
    ]
    let set = names.filter { flags & $0.0 != 0 }.map(\.1)
    return set.isEmpty ? "none" : set.joined(separator: "|")
}
