// Per-operation counts package-benchmark does not take on Linux: system calls (a perf counter of
// the raw_syscalls:sys_enter tracepoint, when tracefs is mounted and perf events are allowed)
// and context switches (/proc/self/task/TID/status), of the threads that do the work.
#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import CBenchSupport

enum LinuxMetrics {
    /// System calls per operation of the working threads (needs tracefs and perf events).
    static let syscalls = BenchmarkMetric.custom("syscalls (perf)", polarity: .prefersSmaller, useScalingFactor: true)
    /// Voluntary and involuntary context switches per operation of the working threads.
    static let contextSwitches = BenchmarkMetric.custom("context switches", polarity: .prefersSmaller, useScalingFactor: true)
}

/// Counters of a set of threads, read around a measured loop.
final class ThreadCounters: @unchecked Sendable {
    private let threads: [CInt]
    private let perfDescriptors: [CInt]

    /// The id of raw_syscalls:sys_enter, if tracefs is mounted where we look.
    private static let syscallTracepoint: UInt64? = {
        for path in ["/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                     "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"] {
            if let text = readSmallFile(path), let id = UInt64(text.filter { $0.isNumber }) { return id }
        }
        return nil
    }()

    init(threads: [CInt]) {
        self.threads = threads
        if let tracepoint = ThreadCounters.syscallTracepoint {
            let descriptors = threads.map { cbench_perf_tracepoint_counter($0, tracepoint) }
            if descriptors.allSatisfy({ $0 >= 0 }) {
                perfDescriptors = descriptors
            } else {
                for fd in descriptors where fd >= 0 { close(fd) }
                perfDescriptors = []
            }
        } else {
            perfDescriptors = []
        }
    }

    /// Counters of the calling thread.
    static func currentThread() -> ThreadCounters {
        ThreadCounters(threads: [cbench_gettid()])
    }

    deinit {
        for fd in perfDescriptors { close(fd) }
    }

    /// System calls so far, or nil when they cannot be counted here.
    func syscalls() -> Int? {
        guard !perfDescriptors.isEmpty else { return nil }
        var total = 0
        for fd in perfDescriptors {
            var value: UInt64 = 0
            guard read(fd, &value, MemoryLayout<UInt64>.size) == MemoryLayout<UInt64>.size else { return nil }
            total += Int(value)
        }
        return total
    }

    /// Context switches so far.
    func contextSwitches() -> Int {
        var total = 0
        for thread in threads {
            guard let status = readSmallFile("/proc/self/task/\(thread)/status") else { continue }
            // voluntary_ctxt_switches:\tN and nonvoluntary_ctxt_switches:\tN
            for line in status.split(separator: "\n") where line.contains("ctxt_switches:") {
                total += Int(line.split(separator: "\t").last.map(String.init) ?? "") ?? 0
            }
        }
        return total
    }

    /// Runs `body` (the measured loop) and records the counts it caused. Only `body` is
    /// measured (the counters' own reads allocate).
    func measure(_ benchmark: Benchmark, _ body: () throws -> Void) rethrows {
        let start = begin()
        benchmark.startMeasurement()
        try body()
        benchmark.stopMeasurement()
        end(benchmark, start)
    }

    /// Runs `body` (the measured loop) and records the counts it caused. Only `body` is
    /// measured.
    func measure(_ benchmark: Benchmark, _ body: () async throws -> Void) async rethrows {
        let start = begin()
        benchmark.startMeasurement()
        try await body()
        benchmark.stopMeasurement()
        end(benchmark, start)
    }

    private func begin() -> (switches: Int, calls: Int?) {
        (contextSwitches(), syscalls())
    }

    private func end(_ benchmark: Benchmark, _ start: (switches: Int, calls: Int?)) {
        if let calls = start.calls, let now = syscalls() {
            // Reading a counted thread's counter from that thread is one more system call.
            let selfReads = threads.contains(cbench_gettid()) ? 1 : 0
            benchmark.measurement(LinuxMetrics.syscalls, now - calls - selfReads)
        }
        benchmark.measurement(LinuxMetrics.contextSwitches, contextSwitches() - start.switches)
    }
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 4096)
    let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return nil }
    return String(decoding: bytes[..<count], as: UTF8.self)
}
