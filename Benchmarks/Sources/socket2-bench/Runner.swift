// One run = one scenario on one backend: start the server child, load it (or fill its
// backlog), measure a window, stop it.
import BenchServers
import Socket2

/// What one run measured.
struct RunResult: Sendable {
    var scenario: Scenario
    var backend: ServerBackend
    var repetition: Int
    /// The headline: operations per second (live), nanoseconds per operation (drain),
    /// nanoseconds at p50 (latency).
    var headline: Double
    /// Operations per second.
    var rate: Double
    /// Server CPU time per operation, nanoseconds.
    var serverCPUPerOperation: Double
    /// Server CPU use, in cores, over the window.
    var serverCPU: Double
    /// Client (load generator) CPU use, in cores; nil for drains (the client is idle then).
    var clientCPU: Double?
    var operations: Int
    /// UDP receive: the fraction of sent datagrams the server did not receive.
    var loss: Double?
    /// Latency percentiles, nanoseconds.
    var p50: Double?
    var p99: Double?
    var p999: Double?
    var maxLatency: Double? = nil
    /// Ping-pong datagrams never answered (after 200 ms).
    var lost = 0
    /// Client errors during the run (the first one is in `firstError`).
    var errors: Int
    var firstError: String?
    /// The server's description of itself (event loops, io_uring flags).
    var details: String
    /// Cores other processes used during the window (live runs).
    var otherCPU: Double? = nil
    /// Whether other processes disturbed the run beyond the limit (kept after the retries).
    var disturbed = false
    /// Earlier attempts discarded as disturbed.
    var discarded = 0
    /// The server's resident memory at the end (memory scenarios).
    var residentBytes: Int? = nil
}

struct RunSettings {
    var duration: Double
    var warmup: Double
    /// Connections / datagrams in the measured drain (a smaller warm-up drain comes first).
    var drainCount: Int
    var serverCPU: Int?
    /// A run disturbed by other processes is run again at most this often.
    var retries: Int
    /// Before each run, wait (at most this long) for the other processes to go quiet.
    var waitIdle: Double
    /// Other processes' CPU (cores) above which a window counts as disturbed.
    var noiseLimit: Double = 0.1
}

/// Seconds left for waiting on other processes over the whole session.
final class WaitBudget {
    private(set) var remaining: Double
    init(seconds: Double) { remaining = seconds }
    func spend(_ seconds: Double) { remaining = max(0, remaining - seconds) }
}

struct Runner {
    var settings: RunSettings
    let waitBudget = WaitBudget(seconds: 300)

    /// Runs once, and again (at most `retries` times) while other processes disturb it.
    func run(_ scenario: Scenario, on backend: ServerBackend, repetition: Int) throws -> RunResult {
        var discarded = 0
        while true {
            let wait = min(settings.waitIdle, waitBudget.remaining)
            if wait > 0 {
                waitBudget.spend(OtherProcesses.waitForIdle(excluding: [], limit: settings.noiseLimit, seconds: wait))
            }
            var result = try runOnce(scenario, on: backend, repetition: repetition)
            result.discarded = discarded
            guard result.disturbed, discarded < settings.retries else { return result }
            discarded += 1
            printError("  \(scenario.name) \(backend.rawValue) #\(repetition): disturbed by other processes, run again")
        }
    }

    private func runOnce(_ scenario: Scenario, on backend: ServerBackend, repetition: Int) throws -> RunResult {
        let server = try ServerProcess(backend: backend, mode: scenario.mode, cpu: settings.serverCPU)
        defer { server.stop() }
        switch scenario.kind {
        case .live, .latency:
            return try runLive(scenario, backend: backend, repetition: repetition, server: server)
        case .memory:
            return try runIdleMemory(scenario, backend: backend, repetition: repetition, server: server)
        case .drain:
            var result = try runDrain(scenario, backend: backend, repetition: repetition, server: server)
            // A drain keeps the server busy: less than 90% of the wall time on the CPU means
            // it was pushed off its core.
            result.disturbed = result.serverCPU < 0.9
            return result
        }
    }

    private func runLive(
        _ scenario: Scenario, backend: ServerBackend, repetition: Int, server: ServerProcess
    ) throws -> RunResult {
        let load = try LoadGenerator(client: scenario.client, port: server.port)
        defer { load.stop() }
        let control = load.control
        sleep(seconds: settings.warmup)

        load.startMeasuring()
        var others = OtherProcesses(excluding: [server.pid])
        others.begin()
        let serverStart = try server.mark()
        let clientStart = control.operations.load(ordering: .relaxed)
        let clientCPUStart = processCPUNanos()
        let start = monotonicNanos()

        sleep(seconds: settings.duration)

        let serverEnd = try server.mark()
        let clientEnd = control.operations.load(ordering: .relaxed)
        let clientCPUEnd = processCPUNanos()
        let end = monotonicNanos()
        let otherCPU = others.cores()
        load.stop()

        let serverOperations = serverEnd.operations - serverStart.operations
        let clientOperations = clientEnd - clientStart
        let operations = scenario.serverCounts ? serverOperations : clientOperations
        let serverSeconds = Double(serverEnd.time - serverStart.time) / 1e9
        let clientSeconds = Double(end - start) / 1e9
        let seconds = scenario.serverCounts ? serverSeconds : clientSeconds
        let errors = control.errors.load(ordering: .relaxed)
        let firstError = control.firstError.withLock { $0 }
        guard operations > 0 else {
            throw BenchError("no operation completed in the window\(firstError.map { " (client error: \($0))" } ?? "")")
        }
        let serverCPUNanos = Double(serverEnd.cpuNanos - serverStart.cpuNanos)
        var result = RunResult(
            scenario: scenario, backend: backend, repetition: repetition,
            headline: Double(operations) / seconds,
            rate: Double(operations) / seconds,
            serverCPUPerOperation: serverCPUNanos / Double(operations),
            serverCPU: serverCPUNanos / 1e9 / serverSeconds,
            clientCPU: Double(clientCPUEnd - clientCPUStart) / 1e9 / clientSeconds,
            operations: operations,
            errors: errors, firstError: firstError, details: server.details,
            otherCPU: otherCPU, disturbed: otherCPU > settings.noiseLimit)
        result.lost = control.lost.load(ordering: .relaxed)
        if scenario.client.isUDPFlood, clientOperations > 0 {
            result.loss = max(0, 1 - Double(serverOperations) / Double(clientOperations))
        }
        if let latencies = load.latencies() {
            result.p50 = Double(latencies.valueAtPercentile(50))
            result.p99 = Double(latencies.valueAtPercentile(99))
            result.p999 = Double(latencies.valueAtPercentile(99.9))
            result.maxLatency = Double(latencies.max)
            if scenario.kind == .latency { result.headline = result.p50! }
        }
        return result
    }

    private func runDrain(
        _ scenario: Scenario, backend: ServerBackend, repetition: Int, server: ServerProcess
    ) throws -> RunResult {
        let address = SockAddr(SocketAddrV4(.localhost, server.port))
        var measured: DrainResult?
        // A small drain first, so that the measured one finds warm code and allocations.
        for count in [max(1, settings.drainCount / 10), settings.drainCount] {
            let result: DrainResult
            switch scenario.client {
            case .backlog:
                let connections = try fillAcceptBacklog(address, count: count)
                defer { closeAll(connections) }
                result = try server.drain(count: count)
                try server.release()
            case .udpBacklog(let size):
                try fillDatagramBacklog(address, port: server.port, count: count, size: size)
                result = try server.drain(count: count)
            default:
                throw BenchError("\(scenario.name) is not a drain scenario")
            }
            guard result.count == count else {
                throw BenchError("the server drained \(result.count) of \(count)")
            }
            measured = result
        }
        let drain = measured!
        let perOperation = Double(drain.wallNanos) / Double(drain.count)
        return RunResult(
            scenario: scenario, backend: backend, repetition: repetition,
            headline: perOperation,
            rate: 1e9 / perOperation,
            serverCPUPerOperation: Double(drain.cpuNanos) / Double(drain.count),
            serverCPU: Double(drain.cpuNanos) / Double(max(drain.wallNanos, 1)),
            clientCPU: nil,
            operations: drain.count,
            errors: 0, firstError: nil, details: server.details)
    }
}
