// The same hot paths on Socket2Async reactors, with every operation made from a task that runs
// on the reactor (`withTaskExecutorPreference`), as a server would make them.
import Benchmark
import CBenchSupport
import Socket2
import Socket2Async
import SystemPackage

/// One reactor per backend for the whole suite, and the thread it runs on.
final class BenchReactor: Sendable {
    let reactor: Reactor
    let counters: ThreadCounters

    init(backend: Reactor.Backend) async throws {
        reactor = try Reactor(backend: backend)
        let thread = await withTaskExecutorPreference(reactor) { cbench_gettid() }
        counters = ThreadCounters(threads: [thread])
    }

    /// Runs `body` on the reactor, measured, with the reactor thread's counts. The hop onto the
    /// reactor is outside the measured part.
    func measure(_ benchmark: Benchmark, _ body: () async throws -> Void) async {
        do {
            try await withTaskExecutorPreference(reactor) {
                try await counters.measure(benchmark) { try await body() }
            }
        } catch {
            benchmark.error("\(error)")
        }
    }
}

extension Connection where Local == AsyncSocket {
    static func tcp(on reactor: Reactor) throws -> Connection<AsyncSocket> {
        let pair = try connectedTCP()
        return Connection(local: try AsyncSocket(pair.first, reactor: reactor), peer: pair.second)
    }

    static func udp(on reactor: Reactor) throws -> Connection<AsyncSocket> {
        let pair = try connectedUDP()
        return Connection(local: try AsyncSocket(pair.first, reactor: reactor), peer: pair.second)
    }
}

/// Two connected AsyncSockets on one reactor, the second echoing what the first sends.
protocol EchoingPair: Sendable {
    var local: AsyncSocket { get }
    var buffer: UnsafeMutableRawBufferPointer { get }
}

/// Two connected AsyncSockets on one reactor; a task echoes on the second.
final class EchoPair: EchoingPair, @unchecked Sendable {
    let local: AsyncSocket
    let remote: AsyncSocket
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)

    init(on reactor: Reactor) throws {
        let pair = try connectedTCP()
        local = try AsyncSocket(pair.first, reactor: reactor)
        remote = try AsyncSocket(pair.second, reactor: reactor)
        let remote = remote
        Task(executorPreference: reactor) {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
            defer { buffer.deallocate() }
            while let count = try? await remote.recv(into: buffer), count > 0 {
                guard (try? await remote.send(UnsafeRawBufferPointer(rebasing: buffer[..<count]))) != nil else { break }
            }
        }
    }

    deinit { buffer.deallocate() }
}

/// Two connected AsyncSockets on one reactor; a read handler echoes on the second (no task).
final class HandlerEchoPair: EchoingPair, @unchecked Sendable {
    let local: AsyncSocket
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)

    init(on reactor: Reactor) async throws {
        let pair = try connectedTCP()
        local = try AsyncSocket(pair.first, reactor: reactor)
        let remote = try AsyncSocket(pair.second, reactor: reactor)
        try await remote.startReading { bytes, _ in
            bytes.withUnsafeBytes { _ = try? remote.sendWithFlags($0, flags: .noSignal) }
            return bytes.byteCount == 0 ? .stopReading : .keepReading
        }
    }

    deinit { buffer.deallocate() }
}

/// A connection read through a `BufferedReader` and written through a `BufferedWriter`; the
/// peer's message is a 64-byte line.
final class BufferedConnection: @unchecked Sendable {
    let connection: Connection<AsyncSocket>
    let reader: BufferedReader
    let writer: BufferedWriter
    /// 16 bytes for the writer's writes.
    let part = [UInt8](repeating: 0x61, count: 16)

    init(on reactor: Reactor) throws {
        connection = try Connection.tcp(on: reactor)
        connection.peerBuffer[messageSize - 1] = UInt8(ascii: "\n")
        reader = BufferedReader(connection.local)
        writer = BufferedWriter(connection.local)
    }
}

extension Listener where Local == AsyncSocket {
    static func make(on reactor: Reactor) throws -> Listener<AsyncSocket> {
        let listener = try makeListener()
        let address = try listener.localAddr()
        return Listener(listener: try AsyncSocket(listener, reactor: reactor), address: address)
    }
}

func asyncBenchmarks(_ backend: Reactor.Backend, name: String) {
    // Reactors are made on first use (in a setup), so that listing the benchmarks starts none.
    nonisolated(unsafe) var shared: BenchReactor?
    let reactor: @Sendable () async throws -> BenchReactor = {
        if let shared { return shared }
        let made = try await BenchReactor(backend: backend)
        shared = made
        return made
    }

    Benchmark("\(name).recv") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>)) in
        let (bench, connection) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try connection.peerSend()
                blackHole(try await connection.local.recv(into: connection.buffer))
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Connection.tcp(on: bench.reactor))
    }

    // The lean receive (`receive(_:)`) of bytes that are there: on io_uring the multishot
    // request stays in the kernel, each completion lends a chunk of the shared buffer ring.
    Benchmark("\(name).receive") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>)) in
        let (bench, connection) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try connection.peerSend()
                blackHole(try await connection.local.receive { $0.byteCount })
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Connection.tcp(on: bench.reactor))
    }

    Benchmark("\(name).send") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>)) in
        let (bench, connection) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                blackHole(try await connection.local.send(connection.message))
                try connection.peerReceive()
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Connection.tcp(on: bench.reactor))
    }

    // The span forms: a span held across the call's suspension, still without allocating.
    Benchmark("\(name).recv-span") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>)) in
        let (bench, connection) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try connection.peerSend()
                var span = OutputRawSpan(buffer: connection.buffer, initializedCount: 0)
                blackHole(try await connection.local.recv(into: &span))
                blackHole(span.finalize(for: connection.buffer))
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Connection.tcp(on: bench.reactor))
    }

    Benchmark("\(name).send-span") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>)) in
        let (bench, connection) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                blackHole(try await connection.local.send(RawSpan(_unsafeBytes: connection.message)))
                try connection.peerReceive()
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Connection.tcp(on: bench.reactor))
    }

    Benchmark("\(name).recvFrom") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>)) in
        let (bench, connection) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try connection.peerSend()
                blackHole(try await connection.local.recvFrom(into: connection.buffer).count)
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Connection.udp(on: bench.reactor))
    }

    Benchmark("\(name).recvMsg") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>)) in
        let (bench, connection) = state
        let buffers = [connection.buffer]
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try connection.peerSend()
                blackHole(try await connection.local.recvMsg(into: buffers).count)
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Connection.udp(on: bench.reactor))
    }

    Benchmark("\(name).sendMsg") { (benchmark: Benchmark, state: (BenchReactor, Connection<AsyncSocket>, SockAddr)) in
        let (bench, connection, peerAddress) = state
        let buffers = [connection.message]
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                blackHole(try await connection.local.sendMsg(buffers, to: peerAddress))
                try connection.peerReceive()
            }
        }
    } setup: {
        let bench = try await reactor()
        let connection = try Connection.udp(on: bench.reactor)
        return (bench, connection, try connection.peer.localAddr())
    }

    Benchmark("\(name).accept") { (benchmark: Benchmark, state: (BenchReactor, Listener<AsyncSocket>)) in
        let (bench, listener) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                let client = try listener.connectClient()
                let accepted = try await listener.listener.accept()
                _ = consume client  // reset first: no TIME_WAIT
                blackHole(accepted)
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try Listener.make(on: bench.reactor))
    }

    // A line read through the buffered reader's closure form, straight from the received
    // chunk.
    Benchmark("\(name).reader-line") { (benchmark: Benchmark, state: (BenchReactor, BufferedConnection)) in
        let (bench, buffered) = state
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try buffered.connection.peerSend()
                blackHole(try await buffered.reader.readLine(maxLength: 128) { $0.byteCount })
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try BufferedConnection(on: bench.reactor))
    }

    // Five small writes of every kind (an array, a span, a string, a slice, a byte) coalesced
    // into one send by the buffered writer's flush.
    Benchmark("\(name).writer") { (benchmark: Benchmark, state: (BenchReactor, BufferedConnection)) in
        let (bench, buffered) = state
        let writer = buffered.writer, part = buffered.part
        await bench.measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try await writer.write(part)
                try await writer.write(part.span.bytes)
                try await writer.write("0123456789abcdef")
                try await writer.write(part[..<15])
                try await writer.write(UInt8(ascii: "\n"))
                try await writer.flush()
                try buffered.connection.peerReceive()
            }
        }
    } setup: {
        let bench = try await reactor()
        return (bench, try BufferedConnection(on: bench.reactor))
    }

    // A send, then an await that suspends until the reactor resumes it with the echo (which
    // another task on the same reactor sends back after its own await was resumed).
    func awaitResumed<Pair: EchoingPair>(
        _ label: String, echo: @escaping @Sendable (Reactor) async throws -> Pair,
        receive: nonisolated(nonsending) @escaping @Sendable (Pair) async throws -> Int
    ) {
        Benchmark("\(name).\(label)") { (benchmark: Benchmark, state: (BenchReactor, Pair)) in
            let (bench, pair) = state
            await bench.measure(benchmark) {
                let message = UnsafeRawBufferPointer(rebasing: pair.buffer[..<1])
                for _ in benchmark.scaledIterations {
                    _ = try await pair.local.send(message)
                    var received = 0
                    while received == 0 { received = try await receive(pair) }
                }
            }
        } setup: {
            let bench = try await reactor()
            return (bench, try await echo(bench.reactor))
        }
    }
    let taskEcho: @Sendable (Reactor) async throws -> EchoPair = { try EchoPair(on: $0) }
    awaitResumed("await-resumed", echo: taskEcho) { pair in try await pair.local.recv(into: pair.buffer) }
    // The echo made by a read handler (`startReading`) instead of a task: the reactor calls it
    // with the bytes, it answers with a non-blocking send.
    awaitResumed("handler-echo", echo: { try await HandlerEchoPair(on: $0) }) { pair in
        try await pair.local.recv(into: pair.buffer)
    }
    // The same wait with the lean receive.
    awaitResumed("await-resumed-receive", echo: taskEcho) { pair in try await pair.local.receive { $0.byteCount } }
    // With a deadline on every receive (`AsyncSocket.withTimeout`): the waiting receive has a
    // timer, removed when the echo completes it.
    awaitResumed("await-resumed-timeout", echo: taskEcho) { pair in
        try await AsyncSocket.withTimeout(.seconds(60)) { try await pair.local.recv(into: pair.buffer) }
    }
}
