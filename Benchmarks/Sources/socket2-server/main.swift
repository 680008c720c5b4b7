// An example server on Socket2Async, obeying the peer harness's contract
// (../shared/bench/README.md, "Plugging in a new server"):
//
//   socket2-server [--backend epoll|io_uring|automatic] [--threads N] [--reuse-port] [--read-with handler|task|buffer]
//                  --mode MODE --port N
//
// 127.0.0.1 only, SO_REUSEADDR, backlog 4096, TCP_NODELAY on accepted sockets, runs until
// SIGTERM. `--backend sync` (the blocking core) and `--backend nio` (SwiftNIO) run the same
// work for comparison.
//
// The options are parsed by hand: swift-argument-parser links FoundationEssentials, about 2 MiB
// of resident memory that the peer harness's memory column would count against the server.
#if canImport(Glibc)
import Glibc
#endif
import BenchServers

let usageText = """
    OVERVIEW: A loopback benchmark server on Socket2 (epoll or io_uring reactors).

    USAGE: socket2-server [--backend <backend>] [--threads <threads>] [--reuse-port] [--read-with <way>] --mode <mode> --port <port>

    OPTIONS:
      --backend <backend>  \(ServerBackend.allCases.map(\.rawValue).joined(separator: ", ")) (default: automatic;
                           sync and nio run the same work for comparison)
      --threads <threads>  Reactors (event loops), serving one socket that no other process can bind. (default: 1)
      --reuse-port         One SO_REUSEPORT socket per reactor (another server on the port then joins it).
      --read-with <way>    \(ConnectionReading.allCases.map(\.rawValue).joined(separator: ", ")): how TCP connections are read,
                           by a read handler, a task awaiting the lean receive, or a task with a buffer
                           of its own awaiting recv(into:) (default: handler)
      --mode <mode>        \(ServerMode.allCases.map(\.rawValue).joined(separator: ", "))
      --port <port>        Port on 127.0.0.1.
      -h, --help           Show this help.
    """

/// Prints `message` and the usage to standard error and exits with status 64 (`EX_USAGE`).
func usageError(_ message: String) -> Never {
    printError("Error: \(message)\n\n\(usageText)")
    exit(64)
}

var backend = ServerBackend.automatic
var threads = 1
var reusePort = false
var reading = ConnectionReading.handler
var control = false
var mode: ServerMode?
var port: UInt16?
var arguments = CommandLine.arguments.dropFirst()
while let option = arguments.popFirst() {
    let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
    let name = parts.first ?? option, inline = parts.count == 2 ? parts[1] : nil
    /// The option's value (the next argument, or what follows `=`), parsed by `parse`.
    func value<T>(_ parse: (String) -> T?, else complaint: (String) -> String) -> T {
        guard let text = inline ?? arguments.popFirst() else { usageError("missing value for '\(name)'") }
        guard let parsed = parse(text) else { usageError(complaint(text)) }
        return parsed
    }
    switch name {
    case "-h", "--help":
        print(usageText)
        exit(0)
    case "--backend": backend = value(ServerBackend.init(rawValue:), else: { "unknown backend '\($0)'" })
    case "--threads": threads = value({ Int($0).flatMap { $0 >= 1 ? $0 : nil } }, else: { "--threads must be at least 1, not '\($0)'" })
    case "--mode": mode = value(ServerMode.init(rawValue:), else: { "unknown mode '\($0)'" })
    case "--port": port = value(UInt16.init, else: { "bad port '\($0)'" })
    case "--reuse-port" where inline == nil: reusePort = true
    case "--read-with": reading = value(ConnectionReading.init(rawValue:), else: { "unknown way of reading '\($0)'" })
    case "--control" where inline == nil: control = true  // (undocumented: socket2-bench's drain scenarios)
    default: usageError("unknown option '\(option)'")
    }
}
guard let mode else { usageError("missing expected argument '--mode <mode>'") }
guard let port else { usageError("missing expected argument '--port <port>'") }

let config = ServerConfig(backend: backend, mode: mode, port: port, threads: threads, reusePort: reusePort,
                          reading: reading)
if control { serveControlled(config) }
do {
    try serveForever(config)
} catch {
    printError("socket2-server: \(error)")
    exit(1)
}
