// An example server on Socket2Async, obeying the peer harness's contract
// (../shared/bench/README.md, "Plugging in a new server"):
//
//   socket2-server [--backend epoll|io_uring|automatic] [--threads N] --mode MODE --port N
//
// 127.0.0.1 only, SO_REUSEADDR, backlog 4096, TCP_NODELAY on accepted sockets, runs until
// SIGTERM. `--backend sync` (the blocking core) and `--backend nio` (SwiftNIO) run the same
// work for comparison.
import ArgumentParser
import BenchServers

extension ServerBackend: ExpressibleByArgument {}
extension ServerMode: ExpressibleByArgument {}

@main
struct Socket2Server: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket2-server",
        abstract: "A loopback benchmark server on Socket2 (epoll or io_uring reactors).")

    @Option(help: "epoll, io_uring, automatic (or sync, nio for comparison)")
    var backend: ServerBackend = .automatic

    @Option(help: "Reactors (event loops), serving one socket that no other process can bind.")
    var threads: Int = 1

    @Flag(help: "One SO_REUSEPORT socket per reactor (another server on the port then joins it).")
    var reusePort = false

    @Option(help: "accept, tcp-echo, udp-echo, tcp-stream (or udp-sink)")
    var mode: ServerMode

    @Option(help: "Port on 127.0.0.1.")
    var port: UInt16

    @Flag(help: .hidden)
    var control = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let config = ServerConfig(backend: backend, mode: mode, port: port, threads: threads, reusePort: reusePort)
        if control { serveControlled(config) }
        try serveForever(config)
    }
}
