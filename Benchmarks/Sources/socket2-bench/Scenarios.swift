import BenchServers

/// One thing measured, on every backend.
struct Scenario: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        /// A load runs for a window; the result is a rate.
        case live
        /// A backlog is filled, then only the server's draining of it is timed.
        case drain
        /// One request in flight, a spinning client: the result is a latency.
        case latency
        /// Connections opened and left idle: the result is the server's resident memory per
        /// connection.
        case memory
    }

    enum Client: Sendable, Hashable {
        /// Threads that connect, wait for the server's close, and reset.
        case connectClose(threads: Int)
        /// Connections opened and left in the listener's backlog.
        case backlog
        /// One connected UDP socket sending datagrams of `size` as fast as it can.
        case udpFlood(size: Int)
        /// One connected UDP socket sending `size`-byte datagrams with GSO, 32 per call (UDPOffload.swift).
        case udpGsoFlood(size: Int)
        /// Datagrams of `size` queued in the server's receive buffer.
        case udpBacklog(size: Int)
        /// One TCP connection writing `size` bytes at a time.
        case stream(size: Int)
        /// 1 byte there and back, the client spinning on `MSG_DONTWAIT`.
        case pingPong(udp: Bool)
        /// `connections` TCP connections, each with one message of `size` in flight.
        case echo(connections: Int, size: Int)
        /// `connections` TCP connections, one echo each, then left open and idle.
        case idle(connections: Int)
    }

    /// Short name for `--scenarios`.
    var name: String
    /// What the reader sees.
    var title: String
    var kind: Kind
    var mode: ServerMode
    var client: Client
    /// What one operation is ("conn", "datagram", "byte", "msg", "round trip").
    var operation: String
    /// Whether the server's counter (rather than the client's) counts the operations.
    var serverCounts: Bool
    /// The backends the scenario runs on (nil: all).
    var onlyBackends: [ServerBackend]? = nil
    /// Backends that sit the scenario out, with the reason printed in the report.
    var skipped: [ServerBackend: String] = [:]

    static let all: [Scenario] = [
        Scenario(name: "accept", title: "accept, live, 4 client threads", kind: .live, mode: .accept,
                 client: .connectClose(threads: 4), operation: "conn", serverCounts: true),
        Scenario(name: "accept-drain", title: "accept, drain a full backlog", kind: .drain, mode: .acceptDrain,
                 client: .backlog, operation: "accept", serverCounts: true),
        Scenario(name: "udp-recv-32", title: "UDP receive, live, 32 B (client: sendmmsg, 32 a call)", kind: .live, mode: .udpSink,
                 client: .udpFlood(size: 32), operation: "datagram", serverCounts: true),
        Scenario(name: "udp-recv-1200", title: "UDP receive, live, 1200 B (client: sendmmsg, 32 a call)", kind: .live, mode: .udpSink,
                 client: .udpFlood(size: 1200), operation: "datagram", serverCounts: true),
        udpRecvBatch32, udpRecvBatch1200, udpRecvGro1200,
        Scenario(name: "udp-drain-32", title: "UDP receive, drain SO_RCVBUF, 32 B", kind: .drain, mode: .udpDrain,
                 client: .udpBacklog(size: 32), operation: "datagram", serverCounts: true),
        Scenario(name: "udp-drain-1200", title: "UDP receive, drain SO_RCVBUF, 1200 B", kind: .drain, mode: .udpDrain,
                 client: .udpBacklog(size: 1200), operation: "datagram", serverCounts: true),
        udpSend1200, udpSendGso1200,
        Scenario(name: "tcp-recv", title: "TCP receive, 1 stream, 64 KiB writes", kind: .live, mode: .tcpStream,
                 client: .stream(size: 65536), operation: "byte", serverCounts: true),
        Scenario(name: "pingpong-tcp", title: "ping-pong, TCP_NODELAY, 1 B", kind: .latency, mode: .tcpEcho,
                 client: .pingPong(udp: false), operation: "round trip", serverCounts: false),
        Scenario(name: "pingpong-udp", title: "ping-pong, UDP, 1 B", kind: .latency, mode: .udpEcho,
                 client: .pingPong(udp: true), operation: "round trip", serverCounts: false),
        Scenario(name: "echo-1", title: "echo, 64 B, 1 connection", kind: .live, mode: .tcpEcho,
                 client: .echo(connections: 1, size: 64), operation: "msg", serverCounts: false),
        Scenario(name: "echo-32", title: "echo, 64 B, 32 connections", kind: .live, mode: .tcpEcho,
                 client: .echo(connections: 32, size: 64), operation: "msg", serverCounts: false),
        Scenario(name: "echo-256", title: "echo, 64 B, 256 connections", kind: .live, mode: .tcpEcho,
                 client: .echo(connections: 256, size: 64), operation: "msg", serverCounts: false),
        echo1k, echo10k, idleMemory,
    ]

    /// Scenarios by name or by group prefix (`udp-recv` is both sizes, `echo` all three).
    static func select(_ names: [String]) throws -> [Scenario] {
        var chosen: [Scenario] = []
        for name in names {
            // An exact name, else a group (`udp-recv` is udp-recv-32 and udp-recv-1200).
            let exact = all.filter { $0.name == name }
            let matches = exact.isEmpty ? all.filter { $0.name.hasPrefix(name + "-") } : exact
            guard !matches.isEmpty else {
                throw BenchError("unknown scenario \(name); known: \(all.map(\.name).joined(separator: ", "))")
            }
            for scenario in matches where !chosen.contains(scenario) { chosen.append(scenario) }
        }
        return all.filter { chosen.contains($0) }  // in the canonical order
    }

    /// The unit of the headline number.
    var unit: String {
        switch kind {
        case .live: operation == "byte" ? "GiB/s" : "\(operation)/s"
        case .drain: "µs/\(operation)"
        case .latency: "µs p50"
        case .memory: "KiB/\(operation)"
        }
    }

    /// Why the scenario skips `backend`, or nil when it runs there.
    func skipReason(_ backend: ServerBackend) -> String? { skipped[backend] }

    /// Whether a higher headline number is better.
    var higherIsBetter: Bool { kind == .live }
}
