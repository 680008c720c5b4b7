// The CPU other processes use while we measure: the machine is shared, and a compiler on the
// server's or the client's core changes the result more than any difference between backends.
#if canImport(Glibc)
import Glibc
#endif
import BenchServers

/// CPU time (user + system) of every user-space process but this one and the server, read
/// from /proc/PID/stat.
struct OtherProcesses {
    private let excluded: Set<pid_t>
    private var start: [pid_t: UInt64] = [:]
    private var startTime: UInt64 = 0
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init(excluding pids: [pid_t]) {
        excluded = Set(pids + [getpid()])
    }

    /// Starts a window.
    mutating func begin() {
        start = Self.sample(excluding: excluded)
        startTime = monotonicNanos()
    }

    /// Cores the other processes used since `begin` (a process that started in between counts
    /// with all its CPU time; one that ended is missed).
    func cores() -> Double {
        let seconds = Double(monotonicNanos() - startTime) / 1e9
        guard seconds > 0 else { return 0 }
        var ticks: UInt64 = 0
        for (pid, now) in Self.sample(excluding: excluded) {
            let before = start[pid] ?? 0
            if now > before { ticks += now - before }
        }
        return Double(ticks) / Self.ticksPerSecond / seconds
    }

    /// Waits until the other processes use less than `limit` cores over a 0.25 s sample, at
    /// most `seconds`. Returns the seconds waited.
    static func waitForIdle(excluding pids: [pid_t], limit: Double, seconds: Double) -> Double {
        let started = monotonicNanos()
        while true {
            var others = OtherProcesses(excluding: pids)
            others.begin()
            BenchServers.sleep(seconds: 0.25)
            let waited = Double(monotonicNanos() - started) / 1e9
            if others.cores() < limit || waited >= seconds { return waited }
        }
    }

    /// utime + stime (clock ticks) of every user-space process (kernel threads — children of
    /// kthreadd, pid 2 — are left out), by pid.
    private static func sample(excluding excluded: Set<pid_t>) -> [pid_t: UInt64] {
        var result: [pid_t: UInt64] = [:]
        guard let directory = opendir("/proc") else { return result }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name), !excluded.contains(pid), pid != 2,
                let stat = readTextFile("/proc/\(name)/stat"),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "pid (comm)": state, ppid, ... utime is field 14, stime field 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, fields[1] != "2",
                let user = UInt64(fields[11]), let system = UInt64(fields[12])
            else { continue }
            result[pid] = user + system
        }
        return result
    }
}
