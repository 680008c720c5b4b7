// The load-generating clients, written with the Socket2 core: blocking sockets on pinned
// threads, a few raw epoll calls for many connections, MSG_DONTWAIT busy loops for latency.
#if canImport(Glibc)
import Glibc
#endif
import BenchServers
import CBenchSupport
import Histogram
import Socket2
import Synchronization
import SystemPackage

/// What the client threads share with the runner.
final class LoadControl: Sendable {
    static let warmingUp = 0, measuring = 1, stopping = 2

    let phase = Atomic<Int>(LoadControl.warmingUp)
    /// Completed operations (connections, messages, round trips, bytes or datagrams sent).
    let operations = Atomic<Int>(0)
    /// Datagrams a ping-pong client gave up waiting for.
    let lost = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let firstError = Mutex<String?>(nil)
    let histograms = Mutex<[Histogram<UInt64>]>([])

    var running: Bool { phase.load(ordering: .relaxed) != LoadControl.stopping }
    var measuring: Bool { phase.load(ordering: .relaxed) == LoadControl.measuring }

    func fail(_ error: any Error) {
        errors.add(1, ordering: .relaxed)
        firstError.withLock { if $0 == nil { $0 = "\(error)" } }
    }

    /// A histogram of latencies in nanoseconds, up to 10 s.
    static func makeHistogram() -> Histogram<UInt64> {
        Histogram(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
    }

    func merge(_ histogram: Histogram<UInt64>) {
        histograms.withLock { $0.append(histogram) }
    }
}

/// Client threads generating one scenario's load against 127.0.0.1:`port`.
final class LoadGenerator {
    let control = LoadControl()
    private var threads: [JoinableThread] = []

    init(client: Scenario.Client, port: UInt16) throws {
        let address = SockAddr(SocketAddrV4(.localhost, port))
        let control = control
        switch client {
        case .connectClose(let count):
            for _ in 0..<count { threads.append(try JoinableThread { connectClose(address, control) }) }
        case .udpFlood(let size):
            threads.append(try JoinableThread { udpFlood(address, size: size, control) })
        case .udpGsoFlood(let size):
            threads.append(try JoinableThread { udpGsoFlood(address, size: size, control) })
        case .stream(let size):
            threads.append(try JoinableThread { stream(address, size: size, control) })
        case .pingPong(let udp):
            threads.append(try JoinableThread { pingPong(address, udp: udp, control) })
        case .echo(let connections, let size):
            threads.append(try JoinableThread {
                if connections == 1 { echoOne(address, size: size, control) } else { echoMany(address, connections: connections, size: size, control) }
            })
        case .backlog, .udpBacklog, .idle:
            throw BenchError("drain and memory scenarios have no load generator")
        }
    }

    func startMeasuring() { control.phase.store(LoadControl.measuring, ordering: .relaxed) }

    /// Stops and joins the threads.
    func stop() {
        control.phase.store(LoadControl.stopping, ordering: .relaxed)
        for thread in threads { thread.join() }
        threads.removeAll()
    }

    /// The latencies recorded while measuring, all threads merged.
    func latencies() -> Histogram<UInt64>? {
        control.histograms.withLock { histograms in
            guard var merged = histograms.first else { return nil }
            for other in histograms.dropFirst() { merged.add(other) }
            return merged.totalCount > 0 ? merged : nil
        }
    }
}

/// A buffer for one thread, filled with a pattern.
private func makeBuffer(_ size: Int) -> UnsafeMutableRawBufferPointer {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
    for index in buffer.indices { buffer[index] = UInt8(truncatingIfNeeded: index) }
    return buffer
}

/// A TCP connection to `address`, with timeouts so that a stuck server never hangs a client.
func connectTCP(_ address: SockAddr, nodelay: Bool = true) throws(Errno) -> Socket {
    let socket = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
    if nodelay { try socket.setTcpNodelay(true) }
    // SO_SNDTIMEO bounds connect(2) too (it then fails with EINPROGRESS).
    try socket.setReadTimeout(.seconds(5))
    try socket.setWriteTimeout(.seconds(5))
    try socket.connect(address)
    return socket
}

/// Connect, read until the server's close, close with a reset (`SO_LINGER` 0, so that neither
/// end keeps a TIME_WAIT entry and ports are reused at once).
private func connectClose(_ address: SockAddr, _ control: LoadControl) {
    let buffer = makeBuffer(64)
    defer { buffer.deallocate() }
    while control.running {
        do throws(Errno) {
            let socket = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
            try socket.setLinger(.zero)
            try socket.setReadTimeout(.seconds(5))
            try socket.setWriteTimeout(.seconds(5))
            try socket.connect(address)
            while try socket.recv(into: buffer) > 0 {}
            control.operations.add(1, ordering: .relaxed)
        } catch {
            control.fail(error)
        }
    }
}

/// Datagrams of `size` as fast as one thread can send them, 32 per `sendmmsg(2)` so that the
/// client outpaces the server; counts what was sent.
private func udpFlood(_ address: SockAddr, size: Int, _ control: LoadControl) {
    let buffer = makeBuffer(size)
    defer { buffer.deallocate() }
    do throws(Errno) {
        let socket = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
        try socket.connect(address)
        let batch = DatagramBatch(count: 32, bufferSize: size)
        for slot in 0..<batch.count { try batch.setBytes(UnsafeRawBufferPointer(buffer), at: slot) }
        while control.running {
            do throws(Errno) {
                let sent = try socket.sendmmsg(batch)
                control.operations.add(sent, ordering: .relaxed)
            } catch {
                // ECONNREFUSED reports an earlier datagram that found no socket; ENOBUFS a
                // full device queue. Neither stops the flood.
                if error != .connectionRefused && error != .noBufferSpace { control.fail(error) }
            }
        }
    } catch {
        control.fail(error)
    }
}

/// One connection writing `size` bytes at a time; counts the bytes sent.
private func stream(_ address: SockAddr, size: Int, _ control: LoadControl) {
    let buffer = makeBuffer(size)
    defer { buffer.deallocate() }
    do throws(Errno) {
        let socket = try connectTCP(address, nodelay: false)
        let payload = UnsafeRawBufferPointer(buffer)
        while control.running {
            do throws(Errno) {
                let sent = try socket.send(payload)
                control.operations.add(sent, ordering: .relaxed)
            } catch {
                if error != .wouldBlock && error != .resourceTemporarilyUnavailable { throw error }
            }
        }
    } catch {
        control.fail(error)
    }
}

/// 1 byte there and back, busy-polling the reply with `MSG_DONTWAIT` so that the client's own
/// wake-up is not part of the latency. A UDP datagram unanswered for 200 ms is lost.
private func pingPong(_ address: SockAddr, udp: Bool, _ control: LoadControl) {
    let buffer = makeBuffer(64)
    defer { buffer.deallocate() }
    var histogram = LoadControl.makeHistogram()
    do throws(Errno) {
        let socket: Socket
        if udp {
            socket = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
            try socket.connect(address)
        } else {
            socket = try connectTCP(address)
        }
        let payload = UnsafeRawBufferPointer(rebasing: buffer[..<1])
        while control.running {
            let start = monotonicNanos()
            _ = try socket.send(payload)
            var answered = false
            while control.running {
                do throws(Errno) {
                    let count = try socket.recvWithFlags(into: buffer, flags: .dontWait)
                    if count == 0 && !udp { throw Errno.connectionReset }
                    answered = true
                    break
                } catch {
                    guard error == .wouldBlock || error == .resourceTemporarilyUnavailable else { throw error }
                    if udp && monotonicNanos() - start > 200_000_000 {
                        control.lost.add(1, ordering: .relaxed)
                        break
                    }
                }
            }
            guard answered else { continue }
            let elapsed = monotonicNanos() - start
            control.operations.add(1, ordering: .relaxed)
            if control.measuring { _ = histogram.record(elapsed) }
        }
    } catch {
        control.fail(error)
    }
    control.merge(histogram)
}

/// One connection, one message of `size` in flight, blocking.
private func echoOne(_ address: SockAddr, size: Int, _ control: LoadControl) {
    let buffer = makeBuffer(size)
    defer { buffer.deallocate() }
    var histogram = LoadControl.makeHistogram()
    do throws(Errno) {
        let socket = try connectTCP(address)
        let payload = UnsafeRawBufferPointer(buffer)
        while control.running {
            let start = monotonicNanos()
            var sent = 0
            while sent < size { sent += try socket.send(UnsafeRawBufferPointer(rebasing: payload[sent...])) }
            var received = 0
            while received < size {
                let count = try socket.recv(into: UnsafeMutableRawBufferPointer(rebasing: buffer[received...]))
                if count == 0 { throw Errno.connectionReset }
                received += count
            }
            control.operations.add(1, ordering: .relaxed)
            if control.measuring { _ = histogram.record(monotonicNanos() - start) }
        }
    } catch {
        control.fail(error)
    }
    control.merge(histogram)
}

/// `connections` connections on one thread with level-triggered epoll, each with one message
/// of `size` in flight.
private func echoMany(_ address: SockAddr, connections: Int, size: Int, _ control: LoadControl) {
    let buffer = makeBuffer(max(size, 4096))
    defer { buffer.deallocate() }
    var histogram = LoadControl.makeHistogram()
    defer { control.merge(histogram) }
    let poller = cbench_epoll_create()
    guard poller >= 0 else { return control.fail(Errno(rawValue: errno)) }
    defer { close(poller) }
    var descriptors: [CInt] = []
    defer { for fd in descriptors { _ = Socket(rawDescriptor: fd) } }
    var pending = [Int](repeating: 0, count: connections)  // bytes still to come back
    var started = [UInt64](repeating: 0, count: connections)
    var ready = [UInt32](repeating: 0, count: 256)
    let payload = UnsafeRawBufferPointer(rebasing: buffer[..<size])
    do throws(Errno) {
        for index in 0..<connections {
            let socket = try connectTCP(address)
            descriptors.append(socket.intoRawDescriptor())
            if cbench_epoll_add(poller, descriptors[index], UInt32(index)) != 0 { throw Errno(rawValue: errno) }
        }
        for index in 0..<connections {
            started[index] = monotonicNanos()
            pending[index] = size
            _ = try SockRef(rawDescriptor: descriptors[index]).send(payload)
        }
        while control.running {
            let count = ready.withUnsafeMutableBufferPointer {
                cbench_epoll_wait(poller, $0.baseAddress, CInt($0.count), 100)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw Errno(rawValue: errno)
            }
            for slot in 0..<Int(count) {
                let index = Int(ready[slot])
                let connection = SockRef(rawDescriptor: descriptors[index])
                let received: Int
                do throws(Errno) {
                    received = try connection.recvWithFlags(into: buffer, flags: .dontWait)
                } catch {
                    if error == .wouldBlock || error == .resourceTemporarilyUnavailable { continue }
                    throw error
                }
                if received == 0 { throw Errno.connectionReset }
                pending[index] -= received
                if pending[index] <= 0 {
                    let now = monotonicNanos()
                    control.operations.add(1, ordering: .relaxed)
                    if control.measuring { _ = histogram.record(now - started[index]) }
                    started[index] = now
                    pending[index] += size
                    _ = try connection.send(payload)
                }
            }
        }
    } catch {
        control.fail(error)
    }
}

// MARK: - Filling backlogs for the drain scenarios

/// Opens `count` connections that wait, established, in the listener's accept queue.
/// Returns their descriptors (close them with ``closeAll(_:)``).
func fillAcceptBacklog(_ address: SockAddr, count: Int) throws -> [CInt] {
    var descriptors: [CInt] = []
    descriptors.reserveCapacity(count)
    do throws(Errno) {
        for _ in 0..<count {
            let socket = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
            try socket.setLinger(.zero)
            try socket.setWriteTimeout(.seconds(2))  // a full backlog makes connect(2) wait
            try socket.connect(address)
            descriptors.append(socket.intoRawDescriptor())
        }
    } catch {
        closeAll(descriptors)
        throw BenchError("filling the accept backlog failed after \(descriptors.count) connections: \(error)")
    }
    return descriptors
}

func closeAll(_ descriptors: [CInt]) {
    for fd in descriptors { _ = Socket(rawDescriptor: fd) }
}

/// Queues `count` datagrams of `size` and then the 1-byte end marker in the server's receive
/// buffer, and checks in /proc/net/udp that the kernel dropped none of them.
func fillDatagramBacklog(_ address: SockAddr, port: UInt16, count: Int, size: Int) throws {
    let buffer = makeBuffer(size)
    defer { buffer.deallocate() }
    let dropsBefore = try udpDrops(port: port)
    do throws(Errno) {
        let socket = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
        try socket.connect(address)
        for _ in 0..<count { _ = try socket.send(UnsafeRawBufferPointer(buffer)) }
        _ = try socket.send(UnsafeRawBufferPointer(rebasing: buffer[..<1]))
    } catch {
        throw BenchError("queueing datagrams failed: \(error)")
    }
    let dropped = try udpDrops(port: port) - dropsBefore
    if dropped > 0 {
        throw BenchError("the server's receive buffer dropped \(dropped) of \(count) datagrams of \(size) B: use a smaller --drain-count")
    }
}

/// The `drops` column of the 127.0.0.1:`port` socket in /proc/net/udp.
func udpDrops(port: UInt16) throws -> Int {
    guard let table = readTextFile("/proc/net/udp") else { throw BenchError("cannot read /proc/net/udp") }
    let local = "0100007F:" + hex4(port)
    for line in table.split(separator: "\n").dropFirst() {
        let fields = line.split(separator: " ")
        if fields.count > 2 && fields[1] == local, let drops = Int(fields[fields.count - 1]) { return drops }
    }
    throw BenchError("no UDP socket on 127.0.0.1:\(port) in /proc/net/udp")
}

private func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - digits.count) + digits
}
