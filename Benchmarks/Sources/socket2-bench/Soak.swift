// socket2-bench soak: a server on each backend for a long time with thousands of connections
// doing a mix of verified echoes, resets, half-closes, slow readers and idle holders; then the
// checks a server that lives for days needs: every echo right, no connection starved, the
// server's descriptors back to where they started, its resident memory flat after warm-up.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BenchServers
import CBenchSupport
import Socket2
import SystemPackage

struct Soak: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run socket2-server's echo on each backend for a long time under a mixed load and check it.")

    @Option(help: "Seconds per backend (default 600).")
    var duration: Double = 600

    @Option(help: "Connections at once (default 10000; the client and the server each hold one descriptor per connection).")
    var connections: Int = 10_000

    @Option(help: "Comma-separated backends (default epoll,io_uring).")
    var backends = "epoll,io_uring"

    @Option(help: "Longest wait of an echo connection for its round trip, in seconds, before it counts as starved (default 5).")
    var starvedAfter: Double = 5

    @Option(help: "How the server reads its connections: handler (read handlers, the default), task (a task per connection, lean receive) or buffer (a task per connection with a buffer of its own, recv(into:)).")
    var readWith: ConnectionReading = .handler

    func validate() throws {
        guard duration >= 10 else { throw ValidationError("--duration must be at least 10 seconds") }
        guard (100...18_000).contains(connections) else { throw ValidationError("--connections must be 100...18000") }
    }

    func run() throws {
        var failed: [String] = []
        for name in backends.split(separator: ",") {
            guard let backend = ServerBackend(rawValue: String(name)) else { throw ValidationError("unknown backend \(name)") }
            if let reason = unavailableReason(backend) {
                print("soak \(backend.rawValue): unavailable here (\(reason)); skipped")
                continue
            }
            let result = try SoakRun(backend: backend, duration: duration, connections: connections,
                                     starvedAfter: starvedAfter, reading: readWith).run()
            print(result.text)
            if !result.problems.isEmpty { failed.append(backend.rawValue) }
        }
        if !failed.isEmpty { throw BenchError("soak failed on \(failed.joined(separator: ", "))") }
    }
}

/// What a connection of the soak does.
private enum SoakRole: CaseIterable {
    /// Messages of 1...2048 bytes, one in flight, each echo checked byte for byte.
    case echo
    /// One checked echo, then a reset (`SO_LINGER` 0), a pause, a new connection.
    case reset
    /// Sends, shuts down its sending side, reads the echo to the end, closes; pauses, again.
    case halfClose
    /// Sends 64 KiB and reads the echo 1 KiB at a time every 50 ms: the server's sends wait.
    case slowReader
    /// One checked echo at the start and one at the end; idle in between.
    case idle

    /// The role of connection `index`: 60% echo, 25% idle, 8% reset, 5% slow, 2% half-close.
    static func of(_ index: Int) -> SoakRole {
        switch index % 100 {
        case 0..<60: .echo
        case 60..<85: .idle
        case 85..<93: .reset
        case 93..<98: .slowReader
        default: .halfClose
        }
    }
}

private struct SoakSlot {
    var role: SoakRole
    var fd: CInt = -1
    var round = 0
    var length = 0
    var sent = 0
    var received = 0
    /// Sent its end (half-close), waiting for the echo and the end of stream.
    var shutDown = false
    /// Waiting (no connection) until this time, for resets and half-closes.
    var pausedUntil: UInt64 = 0
    /// When the current message was sent (echo connections).
    var sentAt: UInt64 = 0
}

private struct SoakResult {
    var backend: ServerBackend
    var text = ""
    var problems: [String] = []
}

private final class SoakRun {
    let backend: ServerBackend
    let duration: Double
    let connections: Int
    let starvedAfter: UInt64
    private var slots: [SoakSlot]
    private var poller: CInt = -1
    private let address: SockAddr
    private let server: ServerProcess
    private var scratch = [UInt8](repeating: 0, count: 65536)
    private var random = SplitMix(seed: 0x50a6)
    // Counters.
    private var echoes = 0, badEchoes = 0, resets = 0, halfCloses = 0, slowBytes = 0, errors = 0
    private var longestWait: UInt64 = 0
    private var firstError: String?

    init(backend: ServerBackend, duration: Double, connections: Int, starvedAfter: Double, reading: ConnectionReading) throws {
        self.backend = backend
        self.duration = duration
        self.connections = connections
        self.starvedAfter = UInt64(starvedAfter * 1e9)
        slots = (0..<connections).map { SoakSlot(role: SoakRole.of($0)) }
        let server = try ServerProcess(backend: backend, mode: .tcpEcho, cpu: nil, reading: reading)
        self.server = server
        address = SockAddr(SocketAddrV4(.localhost, server.port))
    }

    func run() throws -> SoakResult {
        defer { server.stop() }
        var result = SoakResult(backend: backend)
        poller = cbench_epoll_create()
        guard poller >= 0 else { throw BenchError("epoll_create failed: errno \(errno)") }
        defer { close(poller) }
        let baselineDescriptors = try descriptorCount(of: server.pid)
        let baselineResident = try residentBytes(of: server.pid)
        let start = monotonicNanos()
        let end = start + UInt64(duration * 1e9)
        let warmUpEnd = start + UInt64(max(10, duration * 0.2) * 1e9)
        printError("soak \(backend.rawValue): \(connections) connections for \(Int(duration)) s")
        for index in slots.indices { begin(index, now: start) }
        // The client reads nothing while it opens the connections: waits count from here.
        let opened = monotonicNanos()
        for index in slots.indices { slots[index].sentAt = opened }
        var samples: [(time: UInt64, bytes: Int)] = []
        var nextSample = start, nextSweep = start
        var events = [UInt32](repeating: 0, count: 512)
        while true {
            let now = monotonicNanos()
            if now >= end { break }
            if now >= nextSample {
                samples.append((now, try residentBytes(of: server.pid)))
                nextSample = now + 2_000_000_000
            }
            if now >= nextSweep {
                sweep(now)
                nextSweep = now + 50_000_000
            }
            let count = events.withUnsafeMutableBufferPointer {
                cbench_epoll_wait(poller, $0.baseAddress, CInt($0.count), 20)
            }
            if count < 0 && errno != EINTR { throw BenchError("epoll_wait failed: errno \(errno)") }
            let ready = monotonicNanos()
            for slot in 0..<max(0, Int(count)) { readable(Int(events[slot]), now: ready) }
        }
        let idleChecked = finishIdleHolders()
        for index in slots.indices where slots[index].fd >= 0 { disconnect(index) }
        // The server closes its ends when it reads the end of stream: give it time to get there.
        var descriptors = try descriptorCount(of: server.pid)
        let settleDeadline = monotonicNanos() + 20_000_000_000
        while descriptors > baselineDescriptors && monotonicNanos() < settleDeadline {
            sleep(seconds: 0.1)
            descriptors = try descriptorCount(of: server.pid)
        }
        let finalResident = try residentBytes(of: server.pid)

        // Resident memory after the warm-up: the first sample after it against the largest later.
        let settled = samples.filter { $0.time >= warmUpEnd }
        let settledStart = settled.first?.bytes ?? baselineResident
        let settledMax = settled.map(\.bytes).max() ?? settledStart
        let growth = Double(settledMax - settledStart)
        let mib = { (bytes: Int) in format(Double(bytes) / 1_048_576, digits: 1) + " MiB" }
        var lines = [
            "soak \(backend.rawValue): \(connections) connections, \(Int(duration)) s (\(server.details))",
            "  verified echoes \(echoes), wrong \(badEchoes); resets \(resets); half-closes \(halfCloses); slow-reader bytes \(slowBytes); idle holders checked \(idleChecked) of \(slots.count { $0.role == .idle })",
            "  longest echo wait \(formatLatency(Double(longestWait))) (starved above \(formatLatency(Double(starvedAfter))))",
            "  descriptors: baseline \(baselineDescriptors), after \(descriptors)",
            "  resident memory: start \(mib(baselineResident)), after warm-up \(mib(settledStart)), largest after \(mib(settledMax)) (\(format(growth / Double(max(settledStart, 1)) * 100, digits: 1))%), at the end \(mib(finalResident))",
            "  client errors \(errors)\(firstError.map { " (first: \($0))" } ?? "")",
        ]
        if badEchoes > 0 { result.problems.append("\(badEchoes) wrong echoes") }
        if errors > 0 { result.problems.append("\(errors) client errors") }
        if longestWait > starvedAfter { result.problems.append("a connection waited \(formatLatency(Double(longestWait))) for its echo") }
        if descriptors > baselineDescriptors { result.problems.append("\(descriptors - baselineDescriptors) descriptors not returned") }
        if growth > max(0.10 * Double(settledStart), 8 * 1_048_576) {
            result.problems.append("resident memory grew by \(mib(Int(growth))) after the warm-up")
        }
        if echoes == 0 || resets == 0 || halfCloses == 0 || slowBytes == 0 { result.problems.append("part of the mix made no progress") }
        lines.append("  " + (result.problems.isEmpty ? "PASS" : "FAIL: " + result.problems.joined(separator: "; ")))
        result.text = lines.joined(separator: "\n")
        return result
    }

    // MARK: Connections

    private func fail(_ text: String) {
        errors += 1
        if firstError == nil { firstError = text }
    }

    /// Connects slot `index` and starts its role.
    private func begin(_ index: Int, now: UInt64) {
        let fd: CInt
        do throws(Errno) {
            let socket = try connectTCP(address)
            fd = socket.intoRawDescriptor()
        } catch {
            fail("connect: \(error)")
            slots[index].pausedUntil = now + 1_000_000_000
            return
        }
        slots[index].fd = fd
        slots[index].shutDown = false
        if slots[index].role != .slowReader {
            guard cbench_epoll_add(poller, fd, UInt32(index)) == 0 else { return fail("epoll_ctl: errno \(errno)") }
        }
        startMessage(index, now: now)
    }

    private func disconnect(_ index: Int, reset: Bool = false) {
        let fd = slots[index].fd
        guard fd >= 0 else { return }
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        close(fd)  // also leaves the epoll set
        slots[index].fd = -1
    }

    private func pause(_ index: Int, now: UInt64) {
        slots[index].pausedUntil = now + 500_000_000 + random.next() % 1_500_000_000
    }

    // MARK: Messages

    private static func byte(_ index: Int, _ round: Int, _ offset: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: index &* 31 &+ round &* 7 &+ offset &* 13 &+ offset >> 8)
    }

    private func startMessage(_ index: Int, now: UInt64) {
        slots[index].round += 1
        slots[index].length = slots[index].role == .slowReader ? 65536 : 1 + Int(random.next() % 2048)
        slots[index].sent = 0
        slots[index].received = 0
        slots[index].sentAt = now
        push(index)
        if slots[index].role == .halfClose && slots[index].sent == slots[index].length {
            shutdown(slots[index].fd, CInt(SHUT_WR))
            slots[index].shutDown = true
        }
    }

    /// Sends what the socket takes of the current message.
    private func push(_ index: Int) {
        let slot = slots[index]
        guard slot.fd >= 0, slot.sent < slot.length else { return }
        let count = min(slot.length - slot.sent, scratch.count)
        for offset in 0..<count { scratch[offset] = Self.byte(index, slot.round, slot.sent + offset) }
        let written = scratch.withUnsafeBytes { send(slot.fd, $0.baseAddress, count, CInt(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        if written > 0 {
            slots[index].sent += written
        } else if written < 0 && errno != EAGAIN {
            fail("send (\(slot.role)): errno \(errno)")
            disconnect(index)
            pause(index, now: monotonicNanos())
        }
    }

    /// Reads what the socket has of the echo (at most `limit` bytes) and checks it; returns
    /// false when the connection ended or failed.
    private func pull(_ index: Int, limit: Int, now: UInt64) -> Bool {
        let slot = slots[index]
        let wanted = min(limit, max(slot.length - slot.received, slot.role == .halfClose ? 1 : 0))
        guard wanted > 0 else { return true }
        let count = scratch.withUnsafeMutableBytes { recv(slot.fd, $0.baseAddress, wanted, CInt(MSG_DONTWAIT)) }
        if count < 0 {
            if errno == EAGAIN { return true }
            fail("recv (\(slot.role)): errno \(errno)")
            return false
        }
        if count == 0 {
            if slot.role == .halfClose && slot.shutDown && slot.received == slot.length {
                halfCloses += 1
            } else {
                fail("the server ended a \(slot.role) connection after \(slot.received) of \(slot.length) bytes")
            }
            return false
        }
        for offset in 0..<count where scratch[offset] != Self.byte(index, slot.round, slot.received + offset) {
            badEchoes += 1
            break
        }
        slots[index].received += count
        if slot.role == .slowReader { slowBytes += count }
        if slots[index].received > slot.length { fail("more bytes than sent on a \(slot.role) connection") }
        if slots[index].received == slot.length && slot.role != .halfClose { completed(index, now: now) }
        return true
    }

    /// A round trip ended on slot `index`.
    private func completed(_ index: Int, now: UInt64) {
        switch slots[index].role {
        case .echo:
            echoes += 1
            longestWait = max(longestWait, now - slots[index].sentAt)
            startMessage(index, now: now)
        case .slowReader:
            startMessage(index, now: now)
        case .reset:
            echoes += 1
            resets += 1
            disconnect(index, reset: true)
            pause(index, now: now)
        case .idle:
            echoes += 1
        case .halfClose:
            break
        }
    }

    private func readable(_ index: Int, now: UInt64) {
        guard slots[index].fd >= 0 else { return }
        if slots[index].role == .idle && slots[index].received == slots[index].length {
            fail("an idle connection became readable")
            disconnect(index)
            return
        }
        if !pull(index, limit: scratch.count, now: now) {
            disconnect(index)
            if slots[index].role == .halfClose || slots[index].role == .reset { pause(index, now: now) }
        }
    }

    /// Every 50 ms: slow readers read 1 KiB and send on; paused connections come back; echo
    /// connections waiting far too long are noted.
    private func sweep(_ now: UInt64) {
        for index in slots.indices {
            switch slots[index].role {
            case .slowReader:
                guard slots[index].fd >= 0 else { continue }
                push(index)
                if !pull(index, limit: 1024, now: now) { disconnect(index) }
            case .reset, .halfClose:
                if slots[index].fd < 0 && now >= slots[index].pausedUntil { begin(index, now: now) }
            case .echo:
                if slots[index].fd >= 0 { longestWait = max(longestWait, now - slots[index].sentAt) }
            case .idle:
                break
            }
        }
    }

    /// One more checked echo on every idle holder; returns how many passed.
    private func finishIdleHolders() -> Int {
        var waiting: Set<Int> = []
        let now = monotonicNanos()
        for index in slots.indices where slots[index].role == .idle && slots[index].fd >= 0 {
            if slots[index].received != slots[index].length {
                fail("an idle holder never got its first echo")
                continue
            }
            startMessage(index, now: now)
            waiting.insert(index)
        }
        var passed = 0
        var events = [UInt32](repeating: 0, count: 512)
        let deadline = monotonicNanos() + 30_000_000_000
        while !waiting.isEmpty && monotonicNanos() < deadline {
            let count = events.withUnsafeMutableBufferPointer { cbench_epoll_wait(poller, $0.baseAddress, CInt($0.count), 100) }
            for slot in 0..<max(0, Int(count)) {
                let index = Int(events[slot])
                guard waiting.contains(index) else { continue }
                let before = echoes
                if !pull(index, limit: scratch.count, now: monotonicNanos()) {
                    waiting.remove(index)
                    disconnect(index)
                } else if echoes > before {
                    waiting.remove(index)
                    passed += 1
                }
            }
        }
        if !waiting.isEmpty { fail("\(waiting.count) idle holders got no echo at the end") }
        return passed
    }
}

/// A small seeded generator (SplitMix64): the same mix in every run.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
