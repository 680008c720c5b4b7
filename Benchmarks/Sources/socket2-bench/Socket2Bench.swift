// socket2-bench: every scenario on every backend, interleaved, one table.
//
//   swift run -c release --package-path Benchmarks socket2-bench [--quick] [--scenarios a,b]
//       [--backends sync,epoll,io_uring,nio] [--duration S] [--repetitions N]
//       [--json FILE] [--markdown FILE] [--svg FILE]
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BenchServers
import Socket2Async

extension ServerBackend: ExpressibleByArgument {}
extension ServerMode: ExpressibleByArgument {}
extension ConnectionReading: ExpressibleByArgument {}

@main
struct Socket2Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket2-bench",
        abstract: "Socket2's sync core, epoll and io_uring backends against SwiftNIO on loopback.",
        subcommands: [Run.self, Serve.self, Soak.self],
        defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the scenarios (the default subcommand).")

    @Flag(help: "A few seconds in all: one repetition of short windows (for CI).")
    var quick = false

    @Option(help: "Comma-separated scenarios or groups (accept, udp-recv, udp-drain, pingpong, echo, ...); default: all.")
    var scenarios: String?

    @Option(help: "Comma-separated backends: sync, epoll, io_uring, nio (default: all four).")
    var backends = "sync,epoll,io_uring,nio"

    @Option(help: "Measured seconds per run (default 2; --quick 0.2).")
    var duration: Double?

    @Option(help: "Warm-up seconds before each measured window (default 0.5; --quick 0.1).")
    var warmup: Double?

    @Option(help: "Repetitions of every run (default 3; --quick 1). Results are medians.")
    var repetitions: Int?

    @Option(help: "Connections / datagrams queued for a drain (default 2000; --quick 300).")
    var drainCount: Int?

    @Option(help: "Write every run and the summary as JSON.")
    var json: String?

    @Option(help: "Write the report as Markdown.")
    var markdown: String?

    @Option(help: "Write an SVG bar chart of the ratios against SwiftNIO.")
    var svg: String?

    @Flag(help: "Do not pin the server to CPU 0 and the client to CPU 1.")
    var noPin = false

    @Option(help: "Runs again a run that other processes disturbed (default 2; --quick 0).")
    var retries: Int?

    @Option(help: "Seconds to wait before each run for other processes to go quiet (default 10, at most 300 in all; --quick 0).")
    var waitIdle: Double?

    func validate() throws {
        if let repetitions, repetitions < 1 { throw ValidationError("--repetitions must be at least 1") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if let drainCount, drainCount < 10 { throw ValidationError("--drain-count must be at least 10") }
    }

    func run() throws {
        var scenarioList = try Scenario.select(scenarios.map { $0.split(separator: ",").map(String.init) } ?? Scenario.all.map(\.name))
        // --quick stays quick: the scenarios at scale run with a few hundred connections.
        if quick { scenarioList = scenarioList.map { $0.limited(toConnections: 500) } }
        var backendList: [ServerBackend] = []
        for name in backends.split(separator: ",") {
            guard let backend = ServerBackend(rawValue: String(name)) else {
                throw ValidationError("unknown backend \(name); known: sync, epoll, io_uring, automatic, nio")
            }
            backendList.append(backend)
        }
        // A backend the kernel refuses here (io_uring disabled by seccomp, sysctl or memlock
        // limits) is reported and left out, not failed.
        var unavailable: [String] = []
        backendList.removeAll { backend in
            guard let reason = unavailableReason(backend) else { return false }
            unavailable.append("\(backend.rawValue): unavailable here (\(reason))")
            printError("socket2-bench: \(backend.rawValue) is unavailable here (\(reason)); left out")
            return true
        }
        guard !backendList.isEmpty else { throw BenchError("no backend available") }
        let settings = RunSettings(
            duration: duration ?? (quick ? 0.2 : 2),
            warmup: warmup ?? (quick ? 0.1 : 0.5),
            drainCount: drainCount ?? (quick ? 300 : 2000),
            serverCPU: nil,
            retries: retries ?? (quick ? 0 : 2),
            waitIdle: waitIdle ?? (quick ? 0 : 10))
        let repetitionCount = repetitions ?? (quick ? 1 : 3)

        // Server on CPU 0, client (this process's threads, started after this) on CPU 1.
        var runner = Runner(settings: settings)
        var pinned = "not pinned"
        if !noPin && allowedCPUCount() >= 2 && onlineCPUCount() >= 2 {
            try pinCurrentThread(toCPU: 1)
            runner.settings.serverCPU = 0
            pinned = "server pinned to CPU 0, client to CPU 1"
        } else if !noPin {
            pinned = "not pinned (one CPU)"
        }

        let machine = MachineInfo.current()
        let started = monotonicNanos()
        var cells: [Cell] = []
        for scenario in scenarioList {
            for backend in backendList where scenario.runs(on: backend) {
                if let reason = scenario.skipReason(backend) {
                    unavailable.append("\(scenario.name) \(backend.rawValue): skipped (\(reason))")
                    printError("socket2-bench: \(scenario.name) on \(backend.rawValue) skipped: \(reason)")
                    continue
                }
                cells.append(Cell(scenario: scenario, backend: backend, runs: [], failures: []))
            }
        }
        let total = repetitionCount * cells.count
        var done = 0
        // Interleaved: every backend of every scenario once, then again.
        for repetition in 1...repetitionCount {
            for index in cells.indices {
                let scenario = cells[index].scenario, backend = cells[index].backend
                done += 1
                let label = "[\(done)/\(total)] \(scenario.name) \(backend.rawValue) #\(repetition)"
                do {
                    let result = try runner.run(scenario, on: backend, repetition: repetition)
                    cells[index].runs.append(result)
                    printError("\(label): \(progressSummary(result))")
                } catch {
                    cells[index].failures.append("\(error)")
                    printError("\(label): FAILED: \(error)")
                }
            }
        }

        let report = Report(
            machine: machine, settings: runner.settings, repetitions: repetitionCount, pinned: pinned,
            backends: backendList, unavailable: unavailable, scenarios: scenarioList, cells: cells,
            loadAverageAfter: MachineInfo.loadAverage(),
            elapsedSeconds: Double(monotonicNanos() - started) / 1e9)
        print(report.text(), terminator: "")
        if let markdown { try writeTextFile(markdown, report.markdown()) }
        if let json { try writeTextFile(json, report.json()) }
        if let svg { try writeTextFile(svg, report.svg()) }

        let failures = cells.reduce(0) { $0 + $1.failures.count }
        if failures > 0 {
            throw BenchError("\(failures) run(s) failed")
        }
    }

    private func progressSummary(_ result: RunResult) -> String {
        var text: String
        switch result.scenario.kind {
        case .live: text = si(result.rate) + " \(result.scenario.operation)/s"
        case .drain: text = format(result.headline / 1000, digits: 2) + " µs/\(result.scenario.operation)"
        case .latency: text = format(result.headline / 1000, digits: 1) + " µs p50"
        case .memory: text = format(result.headline / 1024, digits: 2) + " KiB/\(result.scenario.operation)"
        }
        if let p50 = result.p50, let p99 = result.p99, let maximum = result.maxLatency, result.scenario.kind == .live {
            text += ", p50 \(formatLatency(p50)) p99 \(formatLatency(p99)) max \(formatLatency(maximum))"
        }
        text += ", server CPU " + format(result.serverCPU, digits: 2)
        if let client = result.clientCPU { text += ", client CPU " + format(client, digits: 2) }
        if let others = result.otherCPU { text += ", others " + format(others, digits: 2) }
        if result.disturbed { text += " (disturbed)" }
        if result.errors > 0 { text += ", \(result.errors) client errors (\(result.firstError ?? ""))" }
        return text
    }
}

/// Why `backend` cannot run on this machine, or nil when it can.
func unavailableReason(_ backend: ServerBackend) -> String? {
    let reactorBackend: Reactor.Backend
    switch backend {
    case .epoll: reactorBackend = .epoll
    case .ioUring: reactorBackend = .ioUring
    default: return nil
    }
    do {
        let reactor = try Reactor(backend: reactorBackend)
        reactor.shutdown()
        return nil
    } catch {
        return "\(error)"
    }
}

/// The server child of a run (hidden): `serve --backend B --mode M --port 0 --cpu 0`.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one server controlled over stdin/stdout (used by socket2-bench itself).",
        shouldDisplay: false)

    @Option var backend: ServerBackend
    @Option var mode: ServerMode
    @Option var port: UInt16 = 0
    @Option var threads: Int = 1
    @Option(help: "Pin to this CPU.") var cpu: Int?
    @Option var readWith: ConnectionReading = .handler

    func run() throws {
        if let cpu { try pinCurrentThread(toCPU: cpu) }
        serveControlled(ServerConfig(backend: backend, mode: mode, port: port, threads: threads, reading: readWith))
    }
}
