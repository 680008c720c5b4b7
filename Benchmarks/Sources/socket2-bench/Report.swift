// Medians, ratios against SwiftNIO and the sync core, and the report in text, Markdown, JSON
// and SVG.
import BenchServers

/// The repetitions of one scenario on one backend, summarised by medians.
struct Cell {
    var scenario: Scenario
    var backend: ServerBackend
    var runs: [RunResult]
    var failures: [String]

    var headline: Double { median(runs.map(\.headline)) }
    var rate: Double { median(runs.map(\.rate)) }
    var cpuPerOperation: Double { median(runs.map(\.serverCPUPerOperation)) }
    var serverCPU: Double { median(runs.map(\.serverCPU)) }
    var clientCPU: Double? { optionalMedian(runs.map(\.clientCPU)) }
    var loss: Double? { optionalMedian(runs.map(\.loss)) }
    var p50: Double? { optionalMedian(runs.map(\.p50)) }
    var p99: Double? { optionalMedian(runs.map(\.p99)) }
    var p999: Double? { optionalMedian(runs.map(\.p999)) }
    var errors: Int { runs.reduce(0) { $0 + $1.errors } }

    /// (max − min) / median of the headline; nil with fewer than two runs.
    var spread: Double? {
        guard runs.count >= 2 else { return nil }
        let values = runs.map(\.headline)
        return (values.max()! - values.min()!) / median(values)
    }
    /// The same for the server CPU per operation.
    var cpuSpread: Double? {
        guard runs.count >= 2 else { return nil }
        let values = runs.map(\.serverCPUPerOperation)
        return (values.max()! - values.min()!) / median(values)
    }

    /// How much better than `other` (> 1 is better), whichever way the headline points.
    func performance(against other: Cell) -> Double? {
        guard !runs.isEmpty, !other.runs.isEmpty, headline > 0, other.headline > 0 else { return nil }
        return scenario.higherIsBetter ? headline / other.headline : other.headline / headline
    }

    /// Server CPU per operation relative to `other` (< 1 is cheaper).
    func cpuRatio(against other: Cell) -> Double? {
        guard !runs.isEmpty, !other.runs.isEmpty, other.cpuPerOperation > 0 else { return nil }
        return cpuPerOperation / other.cpuPerOperation
    }

    /// Whether the spread of either cell is larger than the difference the ratio shows.
    static func isNoise(_ ratio: Double, _ spreads: Double?...) -> Bool {
        let spread = spreads.compactMap { $0 }.max() ?? 0
        return spread > abs(ratio - 1)
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func optionalMedian(_ values: [Double?]) -> Double? {
    let present = values.compactMap { $0 }
    return present.isEmpty ? nil : median(present)
}

struct Report {
    var machine: MachineInfo
    var settings: RunSettings
    var repetitions: Int
    var pinned: String
    var backends: [ServerBackend]
    /// Backends left out because the kernel refused them, with the reason.
    var unavailable: [String]
    var scenarios: [Scenario]
    var cells: [Cell]
    var loadAverageAfter: String
    var elapsedSeconds: Double

    func cell(_ scenario: Scenario, _ backend: ServerBackend) -> Cell? {
        cells.first { $0.scenario == scenario && $0.backend == backend }
    }

    /// Backend details (event loops, io_uring flags), first seen.
    var backendDetails: [(ServerBackend, String)] {
        backends.compactMap { backend in
            cells.first { $0.backend == backend && !$0.runs.isEmpty }.map { (backend, $0.runs[0].details) }
        }
    }

    // MARK: rows shared by the text and Markdown tables

    static let header = [
        "scenario", "backend", "result", "vs NIO", "vs sync", "spread",
        "server CPU/op", "CPU vs NIO", "server CPU", "client CPU", "notes",
    ]

    func rows() -> [[String]] {
        var rows: [[String]] = []
        for scenario in scenarios {
            let nio = cell(scenario, .nio)
            let sync = cell(scenario, .sync)
            for backend in backends {
                guard let cell = cell(scenario, backend) else { continue }
                guard !cell.runs.isEmpty else {
                    rows.append([scenario.name, backend.rawValue, "FAILED", "", "", "", "", "", "", "", "see failures below"])
                    continue
                }
                rows.append([
                    scenario.name,
                    backend.rawValue,
                    formatHeadline(cell),
                    nio.map { ratioText(cell, $0, cpu: false) } ?? "",
                    sync.map { ratioText(cell, $0, cpu: false) } ?? "",
                    cell.spread.map { percent($0) } ?? "–",
                    formatCPU(cell),
                    nio.map { ratioText(cell, $0, cpu: true) } ?? "",
                    format(cell.serverCPU, digits: 2),
                    cell.clientCPU.map { format($0, digits: 2) } ?? "–",
                    notes(cell),
                ])
            }
        }
        return rows
    }

    private func ratioText(_ cell: Cell, _ other: Cell, cpu: Bool) -> String {
        if cell.backend == other.backend { return "1.00" }
        guard let ratio = cpu ? cell.cpuRatio(against: other) : cell.performance(against: other) else { return "–" }
        let noisy = cpu
            ? Cell.isNoise(ratio, cell.cpuSpread, other.cpuSpread)
            : Cell.isNoise(ratio, cell.spread, other.spread)
        return (noisy ? "~" : "") + format(ratio, digits: 2)
    }

    private func formatHeadline(_ cell: Cell) -> String {
        switch cell.scenario.kind {
        case .live:
            if cell.scenario.operation == "byte" { return format(cell.rate / 1_073_741_824, digits: 2) + " GiB/s" }
            return si(cell.rate) + " " + cell.scenario.unit
        case .drain:
            return format(cell.headline / 1000, digits: 2) + " " + cell.scenario.unit
        case .latency:
            return format(cell.headline / 1000, digits: 1) + " µs p50"
        case .memory:
            return format(cell.headline / 1024, digits: 2) + " " + cell.scenario.unit
        }
    }

    private func formatCPU(_ cell: Cell) -> String {
        if cell.scenario.operation == "byte" { return format(cell.cpuPerOperation, digits: 3) + " ns/B" }
        return format(cell.cpuPerOperation / 1000, digits: 2) + " µs"
    }

    private func notes(_ cell: Cell) -> String {
        var notes: [String] = []
        if let loss = cell.loss { notes.append("loss \(percent(loss))") }
        if cell.scenario.kind == .latency, let p99 = cell.p99, let p999 = cell.p999 {
            notes.append("p99 \(format(p99 / 1000, digits: 1)) p99.9 \(format(p999 / 1000, digits: 1)) µs")
        } else if let p50 = cell.p50, let p99 = cell.p99 {
            var latency = "p50 \(formatLatency(p50)) p99 \(formatLatency(p99))"
            if let maximum = cell.maxLatency { latency += " max \(formatLatency(maximum))" }
            notes.append(latency)
            if let tail = cell.tail { notes.append(tail) }
        }
        if let resident = cell.runs.compactMap(\.residentBytes).max() {
            notes.append("server resident \(format(Double(resident) / 1_048_576, digits: 1)) MiB with \(cell.scenario.connections) connections")
        }
        if let perOperation = cell.clientCPUPerOperation {
            notes.append("client CPU/op \(format(perOperation / 1000, digits: 2)) µs")
        }
        if cell.scenario.kind == .live, let client = cell.clientCPU, client >= 0.95 {
            notes.append("client-bound")
        }
        let lost = cell.runs.reduce(0) { $0 + $1.lost }
        if lost > 0 { notes.append("\(lost) unanswered") }
        let disturbed = cell.runs.filter(\.disturbed).count
        if disturbed > 0 { notes.append("\(disturbed) disturbed run\(disturbed == 1 ? "" : "s")") }
        if cell.errors > 0 { notes.append("\(cell.errors) client errors") }
        if !cell.failures.isEmpty { notes.append("\(cell.failures.count) failed runs") }
        return notes.joined(separator: "; ")
    }

    // MARK: text

    func text() -> String {
        var lines = [description()]
        lines.append("")
        lines.append(contentsOf: alignedTable([Report.header] + rows()))
        lines.append("")
        lines.append(contentsOf: failureLines())
        lines.append(contentsOf: legend())
        return lines.joined(separator: "\n") + "\n"
    }

    private func description() -> String {
        var lines = [
            "socket2-bench: Socket2 (sync core, epoll and io_uring reactors) against SwiftNIO \(machine.nioVersion)",
            "machine: \(machine.cpuModel), \(machine.onlineCPUs) CPUs online; kernel \(machine.kernel); \(machine.swiftVersion)",
            "runs: \(repetitions) repetition(s), backends interleaved; \(format(settings.warmup, digits: 2)) s warm-up + \(format(settings.duration, digits: 2)) s measured; drains of \(settings.drainCount) after one of \(max(1, settings.drainCount / 10)); \(pinned)",
            "load average before: \(machine.loadAverage), after: \(loadAverageAfter); took \(format(elapsedSeconds, digits: 0)) s",
        ]
        lines.append(disturbanceSummary())
        for (backend, details) in backendDetails {
            lines.append("\(backend.rawValue): \(details)")
        }
        lines.append(contentsOf: unavailable)
        return lines.joined(separator: "\n")
    }

    private func failureLines() -> [String] {
        var lines: [String] = []
        for cell in cells {
            for failure in cell.failures { lines.append("FAILED \(cell.scenario.name) \(cell.backend.rawValue): \(failure)") }
        }
        return lines.isEmpty ? [] : lines + [""]
    }

    /// Other processes' CPU during the windows, and the runs they disturbed.
    private func disturbanceSummary() -> String {
        let runs = cells.flatMap(\.runs)
        let others = runs.compactMap(\.otherCPU)
        let repeated = runs.reduce(0) { $0 + $1.discarded }
        let disturbed = runs.filter(\.disturbed).count
        var text = "other processes:"
        if !others.isEmpty {
            text += " median \(format(median(others), digits: 3)), max \(format(others.max()!, digits: 3)) cores during the live windows;"
        }
        text += " \(repeated) disturbed run(s) repeated (limit \(format(settings.noiseLimit, digits: 2)) cores, or a drain off its CPU), \(disturbed) kept run(s) still disturbed"
        return text
    }

    private func legend() -> [String] {
        var lines = [
            "result: median over the repetitions (rate, µs per operation of a drain, or p50 latency).",
            "vs NIO, vs sync: performance relative to SwiftNIO / the blocking core; > 1 is better for every scenario.",
            "spread: (max − min) / median of the result over the repetitions. '~' marks a ratio whose spread is larger than the difference it shows (noise).",
            "server CPU/op: server process CPU time (all threads) / operations in the window; CPU vs NIO < 1 is cheaper.",
            "server CPU, client CPU: cores used in the window; 'client-bound' (client ≥ 0.95) means the client, not the server, limited the rate: compare CPU/op there.",
            "latency scenarios: the client spins (client CPU 1.00 by construction); the server sleeps and is woken for every message.",
            "echo notes: p50, p99 and max of the round trips (max: the largest of any repetition); 'TAIL' flags p99 above 4× p50 or a maximum above 20× p50 (connections left waiting while others are served).",
            "idle-memory: the server's resident memory (/proc/PID/statm) with the connections open after one echo each, less before them, per connection; lower is better.",
            "scenarios:",
        ]
        for scenario in scenarios { lines.append("  \(scenario.name): \(scenario.title)") }
        return lines
    }

    private func alignedTable(_ rows: [[String]]) -> [String] {
        var widths = [Int](repeating: 0, count: Report.header.count)
        for row in rows { for (index, value) in row.enumerated() { widths[index] = max(widths[index], value.count) } }
        var lines: [String] = []
        for (number, row) in rows.enumerated() {
            var line = ""
            for (index, value) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - value.count)
                // Numbers right-aligned, words left-aligned.
                line += index < 2 || index == row.count - 1 ? value + padding : padding + value
                if index < row.count - 1 { line += "  " }
            }
            lines.append(line.trimmingSpaces())
            if number == 0 { lines.append(String(repeating: "-", count: line.count)) }
        }
        return lines
    }

    // MARK: Markdown

    func markdown() -> String {
        var lines = ["# socket2-bench", "", "```", description(), "```", ""]
        lines.append("| " + Report.header.joined(separator: " | ") + " |")
        lines.append("|" + Report.header.enumerated().map { $0.offset < 2 || $0.offset == Report.header.count - 1 ? "---|" : "---:|" }.joined())
        for row in rows() { lines.append("| " + row.map { $0.replacingPipes() }.joined(separator: " | ") + " |") }
        lines.append("")
        lines.append(contentsOf: failureLines().map { $0.isEmpty ? $0 : "- " + $0 })
        lines.append(contentsOf: legend().map { $0.hasPrefix("  ") ? "- " + $0.trimmingSpaces() : $0 + "  " })
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: JSON

    func json() -> String {
        let json = JSONWriter()
        json.object {
            json.field("machine") {
                json.object {
                    json.field("cpu", machine.cpuModel)
                    json.field("onlineCPUs", machine.onlineCPUs)
                    json.field("kernel", machine.kernel)
                    json.field("swift", machine.swiftVersion)
                    json.field("swiftNIO", machine.nioVersion)
                    json.field("loadAverageBefore", machine.loadAverage)
                    json.field("loadAverageAfter", loadAverageAfter)
                }
            }
            json.field("settings") {
                json.object {
                    json.field("repetitions", repetitions)
                    json.field("warmupSeconds", settings.warmup)
                    json.field("durationSeconds", settings.duration)
                    json.field("drainCount", settings.drainCount)
                    json.field("pinning", pinned)
                }
            }
            json.field("backends") {
                json.object { for (backend, details) in backendDetails { json.field(backend.rawValue, details) } }
            }
            json.field("unavailable") { json.array { for line in unavailable { json.element(line) } } }
            json.field("cells") {
                json.array {
                    for cell in cells {
                        json.element {
                            json.object {
                                json.field("scenario", cell.scenario.name)
                                json.field("title", cell.scenario.title)
                                json.field("backend", cell.backend.rawValue)
                                json.field("unit", cell.scenario.unit)
                                if !cell.runs.isEmpty {
                                    json.field("headline", cell.headline)
                                    json.field("ratePerSecond", cell.rate)
                                    json.field("serverCPUNanosPerOperation", cell.cpuPerOperation)
                                    json.field("serverCPU", cell.serverCPU)
                                    json.field("clientCPU", cell.clientCPU)
                                    json.field("spread", cell.spread)
                                    json.field("loss", cell.loss)
                                    json.field("p50Nanos", cell.p50)
                                    json.field("p99Nanos", cell.p99)
                                    json.field("p999Nanos", cell.p999)
                                    json.field("maxNanos", cell.maxLatency)
                                    if let nio = self.cell(cell.scenario, .nio) {
                                        json.field("performanceVsNIO", cell.performance(against: nio))
                                        json.field("cpuVsNIO", cell.cpuRatio(against: nio))
                                    }
                                    if let sync = self.cell(cell.scenario, .sync) {
                                        json.field("performanceVsSync", cell.performance(against: sync))
                                    }
                                }
                                json.field("failures") { json.array { for failure in cell.failures { json.element(failure) } } }
                                json.field("runs") {
                                    json.array {
                                        for run in cell.runs {
                                            json.element {
                                                json.object {
                                                    json.field("repetition", run.repetition)
                                                    json.field("headline", run.headline)
                                                    json.field("ratePerSecond", run.rate)
                                                    json.field("operations", run.operations)
                                                    json.field("serverCPUNanosPerOperation", run.serverCPUPerOperation)
                                                    json.field("serverCPU", run.serverCPU)
                                                    json.field("clientCPU", run.clientCPU)
                                                    json.field("loss", run.loss)
                                                    json.field("p50Nanos", run.p50)
                                                    json.field("p99Nanos", run.p99)
                                                    json.field("p999Nanos", run.p999)
                                                    json.field("maxNanos", run.maxLatency)
                                                    json.field("otherProcessesCPU", run.otherCPU)
                                                    json.field("disturbed", run.disturbed ? "yes" : "no")
                                                    json.field("discardedAttempts", run.discarded)
                                                    json.field("unanswered", run.lost)
                                                    json.field("clientErrors", run.errors)
                                                    json.field("firstClientError", run.firstError)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return json.text + "\n"
    }
}

// MARK: - Number formatting

func format(_ value: Double, digits: Int) -> String {
    guard value.isFinite else { return "–" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let whole = Int(rounded / scale)
    let fraction = Int(rounded) - whole * Int(scale)
    var text = (value < 0 && rounded > 0 ? "-" : "") + String(whole)
    if digits > 0 {
        let digitsText = String(fraction)
        text += "." + String(repeating: "0", count: digits - digitsText.count) + digitsText
    }
    return text
}

func percent(_ value: Double) -> String {
    value < 0.1 ? format(value * 100, digits: 1) + "%" : format(value * 100, digits: 0) + "%"
}

/// 1234567 → "1.23M", 45678 → "45.7k".
func si(_ value: Double) -> String {
    if value >= 1e9 { return format(value / 1e9, digits: 2) + "G" }
    if value >= 1e6 { return format(value / 1e6, digits: 2) + "M" }
    if value >= 1e3 { return format(value / 1e3, digits: 1) + "k" }
    return format(value, digits: 0)
}

extension String {
    func replacingPipes() -> String {
        String(map { $0 == "|" ? "/" : $0 })
    }
}

// MARK: - A small JSON writer (no Foundation)

final class JSONWriter {
    private(set) var text = ""
    private var needsComma = [false]

    private func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    func object(_ body: () -> Void) {
        text += "{"
        needsComma.append(false)
        body()
        needsComma.removeLast()
        text += "}"
    }

    func array(_ body: () -> Void) {
        text += "["
        needsComma.append(false)
        body()
        needsComma.removeLast()
        text += "]"
    }

    func field(_ key: String, _ body: () -> Void) {
        separator()
        text += JSONWriter.quote(key) + ":"
        needsComma.append(false)
        body()
        needsComma.removeLast()
    }

    func field(_ key: String, _ value: String?) {
        field(key) { text += value.map(JSONWriter.quote) ?? "null" }
    }

    func field(_ key: String, _ value: Double?) {
        field(key) { text += value.map(JSONWriter.number) ?? "null" }
    }

    func field(_ key: String, _ value: Int) {
        field(key) { text += String(value) }
    }

    func element(_ body: () -> Void) {
        separator()
        needsComma.append(false)
        body()
        needsComma.removeLast()
    }

    func element(_ value: String) {
        element { text += JSONWriter.quote(value) }
    }

    static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "null"
    }

    static func quote(_ string: String) -> String {
        var quoted = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }
}
