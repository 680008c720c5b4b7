// The UDP rows beside plain recvFrom: receiving in batches, receiving with GRO from a GSO sender,
// and the send side with GSO against sendmmsg(2).
import BenchServers
import Socket2
import SystemPackage

/// Datagrams per GSO send: as many as the plain flood sends per sendmmsg(2).
let gsoSegmentsPerSend = 32

extension Scenario {
    static let udpRecvBatch32 = Scenario(
        name: "udp-recv-batch-32",
        title: "UDP receive, live, 32 B, batched: recvmmsg / datagramBatches / NIO vector reads, 32 a call",
        kind: .live, mode: .udpSinkBatch, client: .udpFlood(size: 32), operation: "datagram", serverCounts: true)
    static let udpRecvBatch1200 = Scenario(
        name: "udp-recv-batch-1200",
        title: "UDP receive, live, 1200 B, batched: recvmmsg / datagramBatches / NIO vector reads, 32 a call",
        kind: .live, mode: .udpSinkBatch, client: .udpFlood(size: 1200), operation: "datagram", serverCounts: true)
    static let udpRecvGro1200 = Scenario(
        name: "udp-recv-gro-1200",
        title: "UDP receive, live, 1200 B, UDP_GRO (client: GSO, 32 segments a send)",
        kind: .live, mode: .udpSinkGro, client: .udpGsoFlood(size: 1200), operation: "datagram", serverCounts: true)
    static let udpSend1200 = Scenario(
        name: "udp-send-1200",
        title: "UDP send, 1200 B, sendmmsg 32 a call: datagrams sent (receiver: sync GRO sink)",
        kind: .live, mode: .udpSinkGro, client: .udpFlood(size: 1200), operation: "datagram", serverCounts: false,
        onlyBackends: [.sync])
    static let udpSendGso1200 = Scenario(
        name: "udp-send-gso-1200",
        title: "UDP send, 1200 B, GSO 32 segments a send: datagrams sent (receiver: sync GRO sink)",
        kind: .live, mode: .udpSinkGro, client: .udpGsoFlood(size: 1200), operation: "datagram", serverCounts: false,
        onlyBackends: [.sync])

    /// Whether this scenario runs on `backend`.
    func runs(on backend: ServerBackend) -> Bool {
        onlyBackends.map { $0.contains(backend) } ?? true
    }

    /// Whether the row measures the sending client (its CPU per datagram is the figure).
    var measuresSender: Bool { !serverCounts && client.isUDPFlood }
}

extension Scenario.Client {
    /// A client that floods UDP datagrams (the loss column applies).
    var isUDPFlood: Bool {
        switch self {
        case .udpFlood, .udpGsoFlood: true
        default: false
        }
    }
}

extension Cell {
    /// Client CPU per operation, nanoseconds, for the rows that measure the sender.
    var clientCPUPerOperation: Double? {
        guard scenario.measuresSender, let client = clientCPU, rate > 0 else { return nil }
        return client * 1e9 / rate
    }
}

/// `size`-byte datagrams with UDP GSO, `gsoSegmentsPerSend` in each `sendmsg(2)` with
/// `UDP_SEGMENT`, as fast as one thread can; counts the datagrams sent.
func udpGsoFlood(_ address: SockAddr, size: Int, _ control: LoadControl) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size * gsoSegmentsPerSend, alignment: 16)
    defer { buffer.deallocate() }
    for index in buffer.indices { buffer[index] = UInt8(truncatingIfNeeded: index % size) }
    let payload = UnsafeRawBufferPointer(buffer)
    do throws(Errno) {
        let socket = try Socket(domain: .ipv4, type: .dgram, protocol: .udp)
        try socket.connect(address)
        while control.running {
            do throws(Errno) {
                let sent = try socket.sendSegmented(payload, segmentSize: UInt16(size))
                control.operations.add((sent + size - 1) / size, ordering: .relaxed)
            } catch {
                // As the plain flood: an earlier datagram refused, or a full device queue.
                if error != .connectionRefused && error != .noBufferSpace { control.fail(error) }
            }
        }
    } catch {
        control.fail(error)
    }
}
