import Testing
@testable import Socket2Async
import Socket2
import Synchronization
import CURing
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
/// Fairness at scale: thousands of connections must all be served in turn. Most keep one echo
/// in flight; every sixth pipelines (two in flight), so that its next message is always there
/// when the server asks for it, as the others' arrive while their receive waits. The measure is
/// progress, not time: every connection makes its round trips, and while the fastest makes its
/// rounds none may be left far behind (a starved connection makes none while others make many).
/// On io_uring this caught completions that were ready in the kernel but left there (the
/// kernel runs at most 20 deferred task-work items per `io_uring_enter`) while receives that
/// completed at submission were served every turn: first at a quarter of the rounds, then, with
/// more of the held ones served per turn, at about half of them in a loaded machine (slowest
/// 7–24 of 40 where epoll had 28–38), until receives submitted behind held completions were
/// queued behind them (`IORING_RECVSEND_POLL_FIRST`, 28–33).
@Suite("Fairness with thousands of connections")
struct FairnessTests {
    /// Connections of a run (both ends are in this process: twice as many descriptors).
    static let connections = getenv("FAIRNESS_CONNECTIONS").flatMap { Int(String(cString: $0)) } ?? 3000
    static let rounds = 40
    static let messageSize = 64

    @Test("Every connection makes its round trips, none far behind the others", arguments: backends)
    func echoProgressStaysTogether(backend: Reactor.Backend) async throws {
        let report = try await withReactor(backend, timeout: 300) { reactor in
            let listener = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
            try listener.setReuseAddress(true)
            try listener.bind(loopback())
            try listener.listen(4096)
            let address = try listener.localAddr()
            let server = Task(executorPreference: reactor) {
                for try await connection in listener.incoming {
                    Task(executorPreference: reactor) { await Self.serveEcho(connection.socket) }
                }
            }
            let report = try await EchoClients.run(address, connections: Self.connections, rounds: Self.rounds,
                                                   size: Self.messageSize, pipelineEvery: 6)
            server.cancel()
            try await listener.close()
            _ = await server.result
            return report
        }
        if getenv("FAIRNESS_VERBOSE") != nil { print("fairness \(backend): \(report)") }
        #expect(report.error == nil)
        #expect(report.badEchoes == 0)
        #expect(report.finished == Self.connections)
        // Served in turn, a connection that waits for its client between messages makes at
        // least half the rounds of one that pipelines; a starved one stays at its first rounds
        // while the leader finishes all of them.
        #expect(report.slowestAtLeaderFinish >= Self.rounds / 2,
                "when the leader had made \(Self.rounds) round trips, the slowest connection had made \(report.slowestAtLeaderFinish); \(report.laggardsAtLeaderFinish) connections had made fewer than \(Self.rounds / 4)")
    }

    /// Echoes until end of stream, one message (`messageSize` bytes) per receive. Between
    /// messages the handler lets the others run (`Task.yield()`, standing for the other work a
    /// real handler awaits): a pipelining client's next message is then there when it asks.
    static func serveEcho(_ connection: AsyncSocket) async {
        let buffer = TestBuffer(messageSize)
        do {
            while true {
                let count = try await connection.recv(into: buffer.raw)
                if count == 0 { break }
                try await connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer.raw[..<count]))
                await Task.yield()
            }
        } catch {}
        try? await connection.close()
    }
}
}

/// Echo clients on a thread of their own (blocking sockets set up, then level-triggered epoll):
/// each connection keeps one message in flight (every `pipelineEvery`th two), checks each echo
/// and sends the next, until it has made its rounds.
enum EchoClients {
    struct Report: Sendable {
        var finished = 0
        var badEchoes = 0
        /// Round trips of the slowest connection when the first one had made all of its own.
        var slowestAtLeaderFinish = 0
        /// Connections with fewer than a quarter of the rounds then.
        var laggardsAtLeaderFinish = 0
        var error: String?
    }

    static func run(_ address: SockAddr, connections: Int, rounds: Int, size: Int, pipelineEvery: Int) async throws -> Report {
        await withCheckedContinuation { continuation in
            // Detached: nothing joins it (a joinable thread left unjoined is a leak to TSan).
            pthread_detach(spawnThread(name: "echo-clients") {
                continuation.resume(returning: clients(address, connections: connections, rounds: rounds, size: size,
                                                       pipelineEvery: pipelineEvery))
            })
        }
    }

    private static func byte(_ connection: Int, _ round: Int, _ offset: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: connection &* 31 &+ round &* 7 &+ offset)
    }

    private static func clients(_ address: SockAddr, connections: Int, rounds: Int, size: Int, pipelineEvery: Int) -> Report {
        var report = Report()
        var descriptors: [CInt] = []
        let poller = epoll_create1(CInt(EPOLL_CLOEXEC))
        defer {
            for fd in descriptors { close(fd) }
            close(poller)
        }
        var progress = [Int](repeating: 0, count: connections)  // round trips made
        let depth = { (index: Int) in index % pipelineEvery == 0 ? 2 : 1 }
        var received = [Int](repeating: 0, count: connections)  // bytes of the current echo
        var message = [UInt8](repeating: 0, count: size)
        var incoming = [UInt8](repeating: 0, count: 4096)
        /// Sends message `round` (counted from 0) of connection `index`.
        func send(_ index: Int, _ round: Int) -> Bool {
            for offset in 0..<size { message[offset] = byte(index, round, offset) }
            return message.withUnsafeBytes { Glibc.send(descriptors[index], $0.baseAddress, size, CInt(MSG_NOSIGNAL)) } == size
        }
        do {
            for index in 0..<connections {
                let socket = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
                try socket.setTcpNodelay(true)
                try socket.connect(address)
                descriptors.append(socket.intoRawDescriptor())
                var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u32: UInt32(index)))
                guard epoll_ctl(poller, EPOLL_CTL_ADD, descriptors[index], &event) == 0 else {
                    throw Errno(rawValue: errno)
                }
            }
        } catch {
            report.error = "connecting: \(error)"
            return report
        }
        for index in 0..<connections {
            for round in 0..<depth(index) where !send(index, round) {
                report.error = "send failed: errno \(errno)"
                return report
            }
        }
        var leader = 0  // rounds of the fastest connection, once it has made all
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while report.finished < connections {
            let count = epoll_wait(poller, &events, CInt(events.count), -1)
            if count < 0 {
                if errno == EINTR { continue }
                report.error = "epoll_wait: errno \(errno)"
                return report
            }
            for slot in 0..<Int(count) {
                let index = Int(events[slot].data.u32)
                let length = incoming.withUnsafeMutableBytes {
                    recv(descriptors[index], $0.baseAddress, size - received[index], CInt(MSG_DONTWAIT))
                }
                if length < 0 && errno == EAGAIN { continue }
                guard length > 0 else {
                    report.error = "connection \(index) ended after \(progress[index]) rounds (\(length), errno \(errno))"
                    return report
                }
                for offset in 0..<length where incoming[offset] != byte(index, progress[index], received[index] + offset) {
                    report.badEchoes += 1
                    break
                }
                received[index] += length
                guard received[index] == size else { continue }
                received[index] = 0
                progress[index] += 1
                if progress[index] == rounds && leader < rounds {
                    leader = rounds
                    report.slowestAtLeaderFinish = progress.min()!
                    report.laggardsAtLeaderFinish = progress.count { $0 < rounds / 4 }
                }
                let next = progress[index] - 1 + depth(index)
                if progress[index] == rounds {
                    report.finished += 1
                    epoll_ctl(poller, EPOLL_CTL_DEL, descriptors[index], nil)
                } else if next < rounds && !send(index, next) {
                    report.error = "send failed: errno \(errno)"
                    return report
                }
            }
        }
        return report
    }
}
