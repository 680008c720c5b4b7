// Starting a server, and the control channel socket2-bench talks to its server child over.
#if canImport(Glibc)
import Glibc
#endif

/// Starts the server `config` describes; it runs on its own threads until the process ends.
public func startServer(_ config: ServerConfig, stats: ServerStats) throws -> any BenchServer {
    growDescriptorTable()
    switch config.backend {
    case .sync: return try SyncServer(config: config, stats: stats)
    case .nio: return try NIOServer(config: config, stats: stats)
    case .epoll, .ioUring, .automatic: return try AsyncServer(config: config, stats: stats)
    }
}

/// Runs a server until the process is killed (`SIGTERM`), as the peer harness expects.
public func serveForever(_ config: ServerConfig) throws -> Never {
    let server = try startServer(config, stats: ServerStats())
    printError("socket2-server: backend=\(config.backend.rawValue) mode=\(config.mode.rawValue) port=\(server.port) threads=\(config.threads) (\(server.details))")
    while true { pause() }
}

/// Runs a server controlled over standard input and output, one command a line:
///
/// - on start it prints `ready PORT DETAILS`;
/// - `mark` → `mark OPERATIONS CPU_NS MONOTONIC_NS` (the server's counter, the process's CPU
///   time, the clock), read at the start and end of a measured window;
/// - `drain N` → `drained COUNT WALL_NS CPU_NS` (accept-drain, udp-drain);
/// - `release` → `released` (closes what the drain kept);
/// - end of input → exit.
///
/// Errors are reported as `error MESSAGE` lines.
public func serveControlled(_ config: ServerConfig) -> Never {
    let stats = ServerStats()
    let server: any BenchServer
    do {
        server = try startServer(config, stats: stats)
    } catch {
        writeAll(1, "error \(error)\n")
        exit(1)
    }
    writeAll(1, "ready \(server.port) \(server.details)\n")
    var input = LineReader(fd: 0)
    while let line = input.next() {
        let words = line.split(separator: " ")
        switch words.first {
        case "mark":
            writeAll(1, "mark \(stats.operations) \(processCPUNanos()) \(monotonicNanos())\n")
        case "drain":
            guard words.count == 2, let count = Int(words[1]) else {
                writeAll(1, "error bad command: \(line)\n")
                continue
            }
            do {
                let result = try server.drain(count: count)
                writeAll(1, "drained \(result.count) \(result.wallNanos) \(result.cpuNanos)\n")
            } catch {
                writeAll(1, "error \(error)\n")
            }
        case "release":
            server.release()
            writeAll(1, "released\n")
        default:
            writeAll(1, "error unknown command: \(line)\n")
        }
    }
    exit(0)
}

/// Grows the process's descriptor table once, now, to hold thousands of descriptors.
///
/// The kernel grows the table by doubling when a new descriptor does not fit, and in a process
/// with several threads each growth waits for an RCU grace period (milliseconds, more in a VM)
/// inside `accept(2)`. That would charge a multi-threaded server, and not the single-threaded
/// sync drain, for a one-time kernel cost.
func growDescriptorTable() {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    let highest = CInt(min(UInt64(limit.rlim_cur), 16_384)) - 1
    guard highest > 2, dup2(2, highest) == highest else { return }
    close(highest)
}
