// kv-server: a line-based key-value server, and its client.
//
//   kv-server [--host 127.0.0.1] [--port 7070] [--threads N] [--backend epoll|io_uring]
//             [--idle-timeout SECONDS] [--grace-period SECONDS]
//   kv-server --client localhost:7070 SET a 1
//
// The server prints "listening on ADDRESS" once bound and stops gracefully on SIGINT or SIGTERM.
#if canImport(Glibc)
import Glibc
#endif
import KVServer
import Socket2
import Socket2Async

struct UsageError: Error, CustomStringConvertible {
    let description: String
}

/// The value after each `--name` flag.
func options(_ arguments: ArraySlice<String>) throws -> [String: String] {
    var options: [String: String] = [:]
    var rest = arguments
    while let flag = rest.popFirst() {
        guard flag.hasPrefix("--"), let value = rest.popFirst() else { throw UsageError(description: "bad argument \(flag)") }
        options[String(flag.dropFirst(2))] = value
    }
    return options
}

func number<T: LosslessStringConvertible>(_ options: [String: String], _ name: String, default value: T) throws -> T {
    guard let text = options[name] else { return value }
    guard let number = T(text) else { throw UsageError(description: "--\(name) \(text) is not a number") }
    return number
}

func runClient(_ arguments: ArraySlice<String>) async throws {
    guard let target = arguments.first, let colon = target.lastIndex(of: ":"),
          let port = UInt16(target[target.index(after: colon)...]), arguments.count > 1
    else { throw UsageError(description: "usage: kv-server --client HOST:PORT COMMAND [ARGUMENTS…]") }
    let request = arguments.dropFirst().joined(separator: " ")
    print(try await KVClient.send(request, host: String(target[..<colon]), port: port))
}

func runServer(_ arguments: ArraySlice<String>) async throws {
    let options = try options(arguments)
    let backend: Reactor.Backend = switch options["backend"] {
    case nil: .automatic
    case "epoll": .epoll
    case "io_uring": .ioUring
    case let other?: throw UsageError(description: "unknown backend \(other)")
    }
    let address = try SockAddr(SocketAddrV4("\(options["host"] ?? "127.0.0.1"):\(try number(options, "port", default: 7070 as UInt16))"))
    let configuration = KVServer.Configuration(
        idleTimeout: .seconds(try number(options, "idle-timeout", default: 60.0)),
        gracePeriod: .seconds(try number(options, "grace-period", default: 10.0)))
    let group = try ReactorGroup(count: try number(options, "threads", default: ReactorGroup.defaultCount), backend: backend)
    defer { group.shutdown() }
    let kv = KVServer(configuration: configuration)
    let server = try kv.listen(on: address, group: group)
    print("listening on \(server.localAddress)")
    fflush(nil)  // stdout is fully buffered into a pipe; whoever started us waits for this line
    try await kv.runUntilSignalled(server) { signal in print("\(signal): stopping") }
    print("stopped")
}

let arguments = CommandLine.arguments.dropFirst()
do {
    if arguments.first == "--client" {
        try await runClient(arguments.dropFirst())
    } else {
        try await runServer(arguments)
    }
} catch {
    var message = "kv-server: \(error)\n"
    message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }  // `stderr` is a C global Swift 6 refuses
    exit(1)
}
