// Servers at scale: echo with 1,000 and 10,000 connections (where the tail — p99 and the
// maximum — matters more than the median), and the resident memory an idle connection costs.
#if canImport(Glibc)
import Glibc
#endif
import BenchServers
import Socket2
import SystemPackage

/// Why the sync backend sits out a scenario of 10,000 connections.
let threadPerConnectionReason =
    "the sync server runs a thread per connection: 10,000 threads (and their stacks) is not a server to run"

extension Scenario {
    static let echo1k = Scenario(
        name: "echo-1k", title: "echo, 64 B, 1,000 connections", kind: .live, mode: .tcpEcho,
        client: .echo(connections: 1000, size: 64), operation: "msg", serverCounts: false)
    static let echo10k = Scenario(
        name: "echo-10k", title: "echo, 64 B, 10,000 connections", kind: .live, mode: .tcpEcho,
        client: .echo(connections: 10_000, size: 64), operation: "msg", serverCounts: false,
        skipped: [.sync: threadPerConnectionReason])
    static let idleMemory = Scenario(
        name: "idle-memory", title: "idle memory: 10,000 connections open after one echo each, server resident memory per connection",
        kind: .memory, mode: .tcpEcho, client: .idle(connections: 10_000), operation: "conn", serverCounts: false,
        skipped: [.sync: threadPerConnectionReason])

    /// The connections of the scenario's client (1 for the single-connection clients).
    var connections: Int {
        switch client {
        case .echo(let connections, _), .idle(let connections): connections
        default: 1
        }
    }

    /// The same scenario with at most `limit` connections (`--quick`), its title saying so.
    func limited(toConnections limit: Int) -> Scenario {
        guard connections > limit else { return self }
        var scenario = self
        switch client {
        case .echo(_, let size): scenario.client = .echo(connections: limit, size: size)
        case .idle: scenario.client = .idle(connections: limit)
        default: return self
        }
        scenario.title += " (--quick: \(limit) connections)"
        scenario.skipped = [:]
        return scenario
    }
}

/// Resident memory of process `pid` in bytes (`/proc/PID/statm`, second field, in pages).
func residentBytes(of pid: pid_t) throws -> Int {
    let fields = try procFile("/proc/\(pid)/statm").split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { throw BenchError("bad /proc/\(pid)/statm") }
    return pages * Int(sysconf(CInt(_SC_PAGESIZE)))
}

/// The text of a small file under /proc.
func procFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw BenchError("cannot open \(path): errno \(errno)") }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 4096)
    let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count >= 0 else { throw BenchError("cannot read \(path): errno \(errno)") }
    return String(decoding: bytes[..<count], as: UTF8.self)
}

/// Open descriptors of process `pid` (`/proc/PID/fd`).
func descriptorCount(of pid: pid_t) throws -> Int {
    guard let directory = opendir("/proc/\(pid)/fd") else { throw BenchError("cannot list /proc/\(pid)/fd") }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        if entry.pointee.d_name.0 != CChar(UInt8(ascii: ".")) { count += 1 }
    }
    return count
}

/// Opens `count` connections to `address`, makes one echo of `size` bytes on each (all sent,
/// then all read back and checked), and returns them open and idle.
func openIdleConnections(_ address: SockAddr, count: Int, size: Int) throws -> [CInt] {
    var descriptors: [CInt] = []
    descriptors.reserveCapacity(count)
    let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
    let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    defer { reply.deallocate() }
    do throws(Errno) {
        for _ in 0..<count {
            let socket = try connectTCP(address)
            descriptors.append(socket.intoRawDescriptor())
        }
        for fd in descriptors { _ = try SockRef(rawDescriptor: fd).send(message) }
        for fd in descriptors {
            var received = 0
            while received < size {
                let count = try SockRef(rawDescriptor: fd).recv(into: UnsafeMutableRawBufferPointer(rebasing: reply[received...]))
                if count == 0 { throw Errno.connectionReset }
                received += count
            }
            guard Array(reply) == message else { throw Errno.ioError }
        }
    } catch {
        closeAll(descriptors)
        throw BenchError("opening \(count) idle connections failed after \(descriptors.count): \(error)")
    }
    return descriptors
}

extension Runner {
    /// The server's resident memory per connection with `connections` connections open after
    /// one echo each, over its resident memory before them.
    func runIdleMemory(
        _ scenario: Scenario, backend: ServerBackend, repetition: Int, server: ServerProcess
    ) throws -> RunResult {
        let address = SockAddr(SocketAddrV4(.localhost, server.port))
        // One connection first: what every server allocates once (its first task, tables).
        closeAll(try openIdleConnections(address, count: 1, size: 64))
        let before = try residentBytes(of: server.pid)
        let start = try server.mark()
        let connections = try openIdleConnections(address, count: scenario.connections, size: 64)
        defer { closeAll(connections) }
        let end = try server.mark()
        let after = try residentBytes(of: server.pid)
        let perConnection = Double(after - before) / Double(scenario.connections)
        let seconds = Double(end.time - start.time) / 1e9
        return RunResult(
            scenario: scenario, backend: backend, repetition: repetition,
            headline: perConnection,
            rate: Double(scenario.connections) / max(seconds, 1e-9),
            serverCPUPerOperation: Double(end.cpuNanos - start.cpuNanos) / Double(scenario.connections),
            serverCPU: Double(end.cpuNanos - start.cpuNanos) / 1e9 / max(seconds, 1e-9),
            clientCPU: nil,
            operations: scenario.connections,
            errors: 0, firstError: nil, details: server.details,
            residentBytes: after)
    }
}

/// A latency in nanoseconds as µs, ms or s.
func formatLatency(_ nanoseconds: Double) -> String {
    if nanoseconds >= 1e9 { return format(nanoseconds / 1e9, digits: 2) + " s" }
    if nanoseconds >= 1e6 { return format(nanoseconds / 1e6, digits: 1) + " ms" }
    return format(nanoseconds / 1e3, digits: 1) + " µs"
}

extension Cell {
    /// The largest latency of any run.
    var maxLatency: Double? { runs.compactMap(\.maxLatency).max() }

    /// A latency tail far above the median: p99 above 4× p50, or the maximum above 20× p50.
    var tail: String? {
        guard let p50 = p50, p50 > 0, let p99 = p99, let maximum = maxLatency else { return nil }
        guard p99 > 4 * p50 || maximum > 20 * p50 else { return nil }
        return "TAIL: p99 \(format(p99 / p50, digits: 1))×, max \(format(maximum / p50, digits: 0))× p50"
    }
}
