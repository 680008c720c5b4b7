import Synchronization

/// Which implementation serves the connections.
public enum ServerBackend: String, CaseIterable, Sendable {
    /// The Socket2 core: blocking sockets, a thread per connection.
    case sync
    /// Socket2Async on an epoll reactor.
    case epoll
    /// Socket2Async on an io_uring reactor.
    case ioUring = "io_uring"
    /// Socket2Async on the reactor `Reactor.Backend.automatic` picks.
    case automatic
    /// SwiftNIO (NIOPosix) event loops.
    case nio
}

/// What the server does with what it receives.
///
/// The first four are the peer harness's contract (`--mode`); the others serve socket2-bench's
/// scenarios.
public enum ServerMode: String, CaseIterable, Sendable {
    /// Accept every connection and close it at once.
    case accept
    /// Write back every byte received, in order.
    case tcpEcho = "tcp-echo"
    /// Send each datagram back to its sender.
    case udpEcho = "udp-echo"
    /// Read and discard everything.
    case tcpStream = "tcp-stream"
    /// Receive and discard datagrams (UDP receive throughput).
    case udpSink = "udp-sink"
    /// Listen, accept nothing until told to drain the backlog (`drain N`), timed.
    case acceptDrain = "accept-drain"
    /// Bind, receive nothing until told to drain the queued datagrams (`drain N`), timed.
    case udpDrain = "udp-drain"
    /// Receive and discard datagrams in batches (UDPOffload.swift).
    case udpSinkBatch = "udp-sink-batch"
    /// Receive and discard datagrams coalesced by `UDP_GRO` (UDPOffload.swift).
    case udpSinkGro = "udp-sink-gro"

    public var isUDP: Bool {
        self == .udpEcho || self == .udpSink || self == .udpDrain || self == .udpSinkBatch || self == .udpSinkGro
    }
}

/// How a Socket2Async server reads its TCP connections.
public enum ConnectionReading: String, CaseIterable, Sendable {
    /// A read handler per connection (`AsyncSocket.startReading`): no task while it is idle.
    case handler
    /// A task per connection, awaiting the lean receive (`AsyncSocket.receive(_:)`).
    case task
    /// A task per connection with a buffer of its own, awaiting `recv(into:)` and then
    /// `sendAll`: the plain style, a receive request per message.
    case buffer
}

/// A server's whole configuration.
public struct ServerConfig: Sendable {
    public var backend: ServerBackend
    public var mode: ServerMode
    /// 0 lets the kernel choose (reported back as ``BenchServer/port``).
    public var port: UInt16
    /// Reactors / event loops. The sync backend ignores it.
    public var threads: Int
    /// One `SO_REUSEPORT` socket per reactor instead of one socket that they share (Socket2Async
    /// backends; NIO always uses `SO_REUSEPORT` with several loops).
    public var reusePort: Bool
    /// How TCP connections are read (Socket2Async backends).
    public var reading: ConnectionReading

    public init(backend: ServerBackend, mode: ServerMode, port: UInt16, threads: Int = 1, reusePort: Bool = false,
                reading: ConnectionReading = .handler) {
        self.backend = backend
        self.mode = mode
        self.port = port
        self.threads = threads
        self.reusePort = reusePort
        self.reading = reading
    }
}

/// What a server counts, read by the control channel: connections accepted (`accept`),
/// datagrams received (`udp-*`), bytes received (`tcp-stream`), receive calls (`tcp-echo`).
public final class ServerStats: Sendable {
    private let counter = Atomic<Int>(0)

    public init() {}

    @inline(__always)
    public func add(_ count: Int) {
        counter.add(count, ordering: .relaxed)
    }

    public var operations: Int { counter.load(ordering: .relaxed) }
}

/// The timed part of a drain: wall-clock and process CPU time spent taking `count` queued
/// connections or datagrams.
public struct DrainResult: Sendable {
    public var count: Int
    public var wallNanos: UInt64
    public var cpuNanos: UInt64

    public init(count: Int, wallNanos: UInt64, cpuNanos: UInt64) {
        self.count = count
        self.wallNanos = wallNanos
        self.cpuNanos = cpuNanos
    }
}

/// A running server.
public protocol BenchServer: AnyObject, Sendable {
    /// The bound port on 127.0.0.1.
    var port: UInt16 { get }
    /// Facts for the report (for example the io_uring setup flags).
    var details: String { get }
    /// In a drain mode: takes `count` queued connections / datagrams (the last datagram is the
    /// 1-byte end marker and is not counted), timing only that. Blocks until done.
    func drain(count: Int) throws -> DrainResult
    /// Closes what the last drain kept open (outside the timed part).
    func release()
}

/// A drain's start point, taken on the thread that then does the work.
struct DrainClock {
    let wall = monotonicNanos()
    let cpu = processCPUNanos()

    func result(count: Int) -> DrainResult {
        DrainResult(count: count, wallNanos: monotonicNanos() - wall, cpuNanos: processCPUNanos() - cpu)
    }
}

/// A 1-byte datagram ends a UDP drain.
let drainMarkerSize = 1

/// Receive buffer of the UDP drain socket: large enough to queue thousands of datagrams.
let drainReceiveBufferSize = 64 << 20
