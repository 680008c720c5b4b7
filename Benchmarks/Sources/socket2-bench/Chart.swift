// A self-written SVG bar chart: per scenario a group of bars, one per backend, of the ratio
// against SwiftNIO. Two panels: performance (higher is better) and server CPU per operation
// (lower is better). Bars whose ratio is within the noise are drawn pale.
import BenchServers

extension Report {
    func svg() -> String {
        let panels: [(title: String, value: (Cell, Cell) -> Double?, noise: (Cell, Cell, Double) -> Bool)] = [
            ("Performance vs SwiftNIO (higher is better; rate, or 1 / time for drains and latency)",
             { $0.performance(against: $1) }, { Cell.isNoise($2, $0.spread, $1.spread) }),
            ("Server CPU per operation vs SwiftNIO (lower is better)",
             { $0.cpuRatio(against: $1) }, { Cell.isNoise($2, $0.cpuSpread, $1.cpuSpread) }),
        ]
        let colors: [ServerBackend: String] = [
            .sync: "#8c8c8c", .epoll: "#3b7dd8", .ioUring: "#e8812c", .automatic: "#6aa84f", .nio: "#c8c8c8",
        ]
        let shown = scenarios.filter { cell($0, .nio).map { !$0.runs.isEmpty } ?? false }
        let barWidth = 14.0, groupGap = 18.0, left = 60.0, right = 20.0, panelHeight = 220.0, top = 70.0
        let groupWidth = Double(backends.count) * barWidth + groupGap
        let width = left + right + max(1, Double(shown.count)) * groupWidth
        let height = top + Double(panels.count) * (panelHeight + 110) + 20

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="20" font-size="14" font-weight="bold">socket2-bench: Socket2 backends against SwiftNIO \(escape(machine.nioVersion))</text>
            <text x="\(left)" y="36">\(escape("\(machine.cpuModel), \(machine.onlineCPUs) CPUs; kernel \(machine.kernel); \(machine.swiftVersion); \(repetitions) repetition(s), medians"))</text>

            """
        var legendX = left
        for backend in backends {
            svg += "<rect x=\"\(legendX)\" y=\"46\" width=\"10\" height=\"10\" fill=\"\(colors[backend] ?? "#000")\"/>"
            svg += "<text x=\"\(legendX + 14)\" y=\"55\">\(backend.rawValue)</text>\n"
            legendX += 80
        }
        svg += "<text x=\"\(legendX)\" y=\"55\" fill=\"#666\">pale: within the noise of the repetitions</text>\n"

        for (panelIndex, panel) in panels.enumerated() {
            let panelTop = top + Double(panelIndex) * (panelHeight + 110)
            var ratios: [Double] = [1]
            for scenario in shown {
                guard let nio = cell(scenario, .nio) else { continue }
                for backend in backends {
                    if let cell = cell(scenario, backend), !cell.runs.isEmpty, let ratio = panel.value(cell, nio) { ratios.append(ratio) }
                }
            }
            let maximum = niceCeiling(ratios.max()! * 1.05)
            func y(_ value: Double) -> Double { panelTop + 20 + panelHeight * (1 - min(value, maximum) / maximum) }
            svg += "<text x=\"\(left)\" y=\"\(panelTop + 10)\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
            // Axis, grid and the 1.0 line.
            let step = maximum <= 2 ? 0.25 : maximum <= 4 ? 0.5 : 1
            var tick = 0.0
            while tick <= maximum + 1e-9 {
                svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(tick))\" y2=\"\(y(tick))\" stroke=\"#eee\"/>"
                svg += "<text x=\"\(left - 6)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(format(tick, digits: step < 0.5 ? 2 : step < 1 ? 1 : 0))</text>\n"
                tick += step
            }
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(1))\" y2=\"\(y(1))\" stroke=\"#444\" stroke-dasharray=\"4 3\"/>\n"
            for (groupIndex, scenario) in shown.enumerated() {
                let groupLeft = left + Double(groupIndex) * groupWidth + groupGap / 2
                guard let nio = cell(scenario, .nio) else { continue }
                for (barIndex, backend) in backends.enumerated() {
                    guard let cell = cell(scenario, backend), !cell.runs.isEmpty, let ratio = panel.value(cell, nio) else { continue }
                    let x = groupLeft + Double(barIndex) * barWidth
                    let noisy = backend != .nio && panel.noise(cell, nio, ratio)
                    svg += "<rect x=\"\(x)\" y=\"\(y(ratio))\" width=\"\(barWidth - 2)\" height=\"\(max(0.5, y(0) - y(ratio)))\" "
                    svg += "fill=\"\(colors[backend] ?? "#000")\" fill-opacity=\"\(noisy ? 0.35 : 1)\">"
                    svg += "<title>\(escape("\(scenario.name) \(backend.rawValue): \(format(ratio, digits: 2))\(noisy ? " (noise)" : "")"))</title></rect>\n"
                    if ratio > maximum {
                        svg += "<text x=\"\(x + barWidth / 2)\" y=\"\(y(maximum) - 2)\" text-anchor=\"middle\" font-size=\"9\">\(format(ratio, digits: 1))</text>\n"
                    }
                }
                let labelX = groupLeft + Double(backends.count) * barWidth / 2
                let labelY = y(0) + 12
                svg += "<text x=\"\(labelX)\" y=\"\(labelY)\" text-anchor=\"end\" transform=\"rotate(-35 \(labelX) \(labelY))\">\(escape(scenario.name))</text>\n"
            }
        }
        svg += "</svg>\n"
        return svg
    }

    private func niceCeiling(_ value: Double) -> Double {
        for candidate in [1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10] where value <= candidate { return candidate }
        return 10
    }

    private func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
