// Accept throughput of `ReactorGroup.serve` with its two ways of sharing a port, measured in one
// run, interleaved: `.oneSocket` (one listening socket, the first reactor accepts and hands
// connections round robin) against `.reusePort` (one SO_REUSEPORT listener per reactor).
//
//   swift run -c release --package-path Benchmarks serve-accept [reactors] [connections] [reps]
//
// Each round: a server with `reactors` reactors (epoll and io_uring), client threads that
// connect and close `connections` times in all; connections per second is the count the
// handlers saw over the time until the last one was handled. Prints the medians and the ratio
// oneSocket / reusePort per backend. Ratios, not absolute numbers, are what to compare.
#if canImport(Glibc)
import Glibc
#endif
import Socket2
import Socket2Async
import Synchronization

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let reactorCount = arguments.count > 0 ? arguments[0] : 2
let connections = arguments.count > 1 ? arguments[1] : 20_000
let repetitions = arguments.count > 2 ? arguments[2] : 5
let clientThreads = 2

func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Connects and closes `count` times (blocking core, SO_LINGER 0 so that no TIME_WAIT piles up).
func connectLoop(_ address: SockAddr, _ count: Int) {
    for _ in 0..<count {
        guard let socket = try? Socket(domain: .ipv4, type: .stream) else { continue }
        try? socket.setLinger(.zero)
        try? socket.connect(address)
    }
}

/// One round: connections per second.
func round(_ backend: Reactor.Backend, _ sharing: ListenerSharing) async throws -> Double {
    let group = try ReactorGroup(count: reactorCount, backend: backend)
    defer { group.shutdown() }
    let handled = Atomic<Int>(0)
    let done = AsyncStream<Double>.makeStream()
    let server = try group.listen(on: SockAddr(SocketAddrV4(.localhost, 0)),
                                  options: ServerOptions(backlog: 4096, sharing: sharing))
    let address = server.localAddress
    let start = now()
    let running = Task {
        try await server.run { connection, _ in
            if handled.wrappingAdd(1, ordering: .relaxed).newValue == connections {
                done.continuation.yield(now())
            }
            try? await connection.close()
        }
    }
    var threads: [pthread_t] = []
    for _ in 0..<clientThreads {
        let box = Unmanaged.passRetained(Box { connectLoop(address, connections / clientThreads) })
        var thread = pthread_t()
        pthread_create(&thread, nil, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
    var iterator = done.stream.makeAsyncIterator()
    let end = await iterator.next() ?? now()
    server.shutdown(gracePeriod: .zero)
    try await running.value
    return Double(connections) / (end - start)
}

final class Box: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

print("serve-accept: \(reactorCount) reactors, \(connections) connections a round, \(repetitions) rounds, \(clientThreads) client threads")
for backend in [Reactor.Backend.epoll, .ioUring] {
    var results: [ListenerSharing: [Double]] = [:]
    for _ in 0..<repetitions {
        for sharing in [ListenerSharing.oneSocket, .reusePort] {
            results[sharing, default: []].append(try await round(backend, sharing))
        }
    }
    let one = median(results[.oneSocket]!), reuse = median(results[.reusePort]!)
    func spread(_ values: [Double]) -> String {
        String(format: "%.0f%%", (values.max()! - values.min()!) / median(values) * 100)
    }
    print("\(backend): oneSocket \(Int(one)) conn/s (spread \(spread(results[.oneSocket]!))), "
          + "reusePort \(Int(reuse)) conn/s (spread \(spread(results[.reusePort]!))), "
          + "ratio oneSocket/reusePort \(String(format: "%.2f", one / reuse))")
}
