import Testing
@testable import Socket2Async
import Socket2
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension AsyncTests {
/// One connection whose socket always has bytes must not hold the reactor: its task never has
/// to wait, so without the reactor's budget of operations completed at once it would run until
/// its peer stops sending while every other connection waits.
@Suite("A fed connection does not hold the reactor")
struct CooperativeBudgetTests {
    /// The flood stops by itself after this many bytes; the echoes must finish well before.
    static let floodLimit = 1 << 30
    static let echoConnections = 16
    static let rounds = 50

    @Test("Echo connections finish while another connection floods the reactor", arguments: backends, [false, true])
    func floodDoesNotStarveOthers(backend: Reactor.Backend, leanSink: Bool) async throws {
        let clients = try Reactor(backend: .epoll)
        defer { clients.shutdown() }
        let outcome = try await withReactor(backend, timeout: 120) { reactor in
            let (sinkListener, sinkAddress) = try tcpListener(reactor)
            let (echoListener, echoAddress) = try tcpListener(reactor)
            // The sink reads 1 KiB at a time: slower than the flood fills its socket, so every
            // receive finds bytes.
            let sink = Task(executorPreference: reactor) { () -> Int in
                let (connection, _) = try await sinkListener.accept()
                setBufferSize(connection, SO_RCVBUF, 4 << 20)
                let buffer = TestBuffer(1024)
                var total = 0
                while true {
                    let count = leanSink ? try await connection.receive { $0.byteCount }
                                         : try await connection.recv(into: buffer.raw)
                    if count == 0 { break }
                    total += count
                }
                try await connection.close()
                return total
            }
            let echoes = Task(executorPreference: reactor) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<Self.echoConnections {
                        let (connection, _) = try await echoListener.accept()
                        group.addTask(executorPreference: reactor) {
                            let buffer = TestBuffer(64)
                            while true {
                                let count = try await connection.recv(into: buffer.raw)
                                if count == 0 { break }
                                try await connection.sendAll(UnsafeRawBufferPointer(rebasing: buffer.raw[..<count]))
                            }
                            try await connection.close()
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // The flood: a blocking socket on a thread of its own, until the echoes are done
            // or the limit is reached.
            let flooder = try Socket(domain: .ipv4, type: .stream, protocol: .tcp)
            try flooder.setSendBufferSize(4 << 20)
            try flooder.connect(sinkAddress)
            let floodDone = TestEvent()
            let flood = FloodThread(flooder, limit: Self.floodLimit, done: floodDone)
            flood.start()
            // The echo clients, on a reactor of their own.
            let echoed = try await Task(executorPreference: clients) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<Self.echoConnections {
                        group.addTask(executorPreference: clients) {
                            let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: clients)
                            try await client.connect(echoAddress)
                            let message = pattern(64, seed: index)
                            for _ in 0..<Self.rounds {
                                try await client.sendAll(message)
                                #expect(try await recvExactly(client, 64) == message)
                            }
                            try await client.close()
                        }
                    }
                    try await group.waitForAll()
                }
                return flood.flooded.load(ordering: .relaxed)
            }.value
            flood.stop.store(true, ordering: .relaxed)
            await floodDone.wait()
            try await echoes.value
            let sunk = try await sink.value
            try await sinkListener.close()
            try await echoListener.close()
            return Outcome(floodedWhenEchoesEnded: echoed, sunk: sunk, flooded: flood.flooded.load(ordering: .relaxed))
        }
        // Served in turn, the echoes end long before the flood's limit; a reactor held by the
        // sink serves them only once the flood has stopped.
        #expect(outcome.floodedWhenEchoesEnded < Self.floodLimit,
                "the echoes finished only after the flood had sent all \(outcome.floodedWhenEchoesEnded) bytes")
        #expect(outcome.sunk == outcome.flooded, "the sink received \(outcome.sunk) of \(outcome.flooded) bytes")
    }

    struct Outcome: Sendable {
        let floodedWhenEchoesEnded: Int
        let sunk: Int
        let flooded: Int
    }
}
}

/// Writes 64 KiB chunks on a blocking socket until told to stop or `limit` bytes are sent,
/// then shuts the socket down.
private final class FloodThread: @unchecked Sendable {
    private var socket: Socket?
    private let limit: Int
    private let done: TestEvent
    /// Set by the test: stop sending.
    let stop = Atomic<Bool>(false)
    /// Bytes sent so far.
    let flooded = Atomic<Int>(0)

    init(_ socket: consuming Socket, limit: Int, done: TestEvent) {
        self.socket = consume socket
        self.limit = limit
        self.done = done
    }

    func start() {
        let unmanaged = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let flood = Unmanaged<FloodThread>.fromOpaque(argument!).takeRetainedValue()
            flood.run()
            return nil
        }, unmanaged.toOpaque())
        precondition(created == 0)
        pthread_detach(thread)
    }

    private func run() {
        let chunk = [UInt8](repeating: 7, count: 65536)
        var sent = 0
        while sent < limit && !stop.load(ordering: .relaxed) {
            guard let count = try? socket!.send(chunk) else { break }
            sent += count
            flooded.store(sent, ordering: .relaxed)
        }
        try? socket!.shutdown(.write)
        socket = nil
        done.post()
    }
}
