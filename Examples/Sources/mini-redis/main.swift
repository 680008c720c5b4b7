// mini-redis --port N [--backend epoll|io_uring|automatic] [--threads N] [--max-bulk BYTES]
//
// A Redis-compatible server on 127.0.0.1, written with Socket2Async. SIGINT or SIGTERM shuts
// it down gracefully (through the library's signalfd on the reactor): it stops accepting, and
// connections have 2 seconds to end before they are cancelled.
#if canImport(Glibc)
import Glibc
#endif
import MiniRedis
import Socket2
import Socket2Async

func usage(_ message: String) -> Never {
    var standardError = StandardError()
    print("mini-redis: \(message)", to: &standardError)
    print("usage: mini-redis --port N [--backend epoll|io_uring|automatic] [--threads N] [--max-bulk BYTES]",
          to: &standardError)
    exit(2)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var string = string
        string.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

var port: UInt16 = 6379
var backend = Reactor.Backend.automatic
var threads = 1
var configuration = Configuration()
var arguments = CommandLine.arguments.dropFirst()
while let option = arguments.popFirst() {
    if option == "--help" || option == "-h" { usage("a Redis-compatible server") }
    guard let value = arguments.popFirst() else { usage("\(option) needs a value") }
    switch option {
    case "--port":
        guard let number = UInt16(value) else { usage("bad port \(value)") }
        port = number
    case "--backend":
        switch value {
        case "epoll": backend = .epoll
        case "io_uring", "iouring", "uring": backend = .ioUring
        case "automatic", "auto": backend = .automatic
        default: usage("unknown backend \(value)")
        }
    case "--threads":
        guard let number = Int(value), number >= 1 else { usage("bad thread count \(value)") }
        threads = number
    case "--max-bulk":
        guard let number = Int(value), number >= 1 else { usage("bad --max-bulk \(value)") }
        configuration.maxBulk = number
    default:
        usage("unknown option \(option)")
    }
}

let server = try await MiniRedisServer(threads: threads, backend: backend, configuration: configuration)
let signals = try Signals([.interrupt, .terminate], reactor: server.group.reactors[0])
try await server.serve(on: SockAddr(SocketAddrV4(.localhost, port))) { listening in
    print("mini-redis listening on \(listening.localAddress) (\(server.backend), \(threads) thread\(threads == 1 ? "" : "s"))")
    fflush(nil)
    Task {
        for try await _ in signals {
            listening.shutdown(gracePeriod: .seconds(2))
            break
        }
    }
}
server.shutdown()
