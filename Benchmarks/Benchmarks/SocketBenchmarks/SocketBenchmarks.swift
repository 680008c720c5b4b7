// Hot paths of Socket2 measured with package-benchmark: allocations (gated by the thresholds in
// Thresholds/), system calls and context switches per operation.
//
//   swift package --package-path Benchmarks benchmark --target SocketBenchmarks
//   swift package --package-path Benchmarks benchmark thresholds check --target SocketBenchmarks
//
// Every benchmark does 1,000 operations per iteration (`scalingFactor: .kilo`); results are
// shown per operation. The peer of each connection is the blocking core, whose own system calls
// (one per operation: the peer's send or receive, or for accept its socket, setsockopt, connect
// and close) are counted too.
import Benchmark
import Socket2
import Socket2Async
import SystemPackage

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.mallocCountTotal, .wallClock, LinuxMetrics.syscalls, LinuxMetrics.contextSwitches],
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 200,
        thresholds: [
            // Per 1,000 operations: the operations' own allocations are exact; up to 5 more
            // (of the benchmark machinery, not per operation) are tolerated. One allocation
            // more per operation is 1,000 more.
            .mallocCountTotal: .init(absolute: [.p90: 5])
        ]
    )
    syncBenchmarks()
    asyncBenchmarks(.epoll, name: "epoll")
    // Where the kernel refuses io_uring (seccomp, io_uring_disabled, memlock), its benchmarks
    // are left out rather than failed.
    if let probe = try? Reactor(backend: .ioUring) {
        probe.shutdown()
        asyncBenchmarks(.ioUring, name: "io_uring")
    }
}

/// The blocking core: one system call per operation, no allocation.
func syncBenchmarks() {
    Benchmark("sync.recv") { benchmark, connection in
        let counters = ThreadCounters.currentThread()
        counters.measure(benchmark) {
            do throws(Errno) {
                for _ in benchmark.scaledIterations {
                    try connection.peerSend()
                    blackHole(try connection.local.recv(into: connection.buffer))
                }
            } catch {
                benchmark.error("\(error)")
            }
        }
    } setup: {
        try Connection.tcp()
    }

    Benchmark("sync.send") { benchmark, connection in
        let counters = ThreadCounters.currentThread()
        counters.measure(benchmark) {
            do throws(Errno) {
                for _ in benchmark.scaledIterations {
                    blackHole(try connection.local.send(connection.message))
                    try connection.peerReceive()
                }
            } catch {
                benchmark.error("\(error)")
            }
        }
    } setup: {
        try Connection.tcp()
    }

    // The span forms: the same calls through a span, still without allocating.
    Benchmark("sync.recv-span") { benchmark, connection in
        let counters = ThreadCounters.currentThread()
        counters.measure(benchmark) {
            do throws(Errno) {
                for _ in benchmark.scaledIterations {
                    try connection.peerSend()
                    var span = OutputRawSpan(buffer: connection.buffer, initializedCount: 0)
                    blackHole(try connection.local.recv(into: &span))
                    blackHole(span.finalize(for: connection.buffer))
                }
            } catch {
                benchmark.error("\(error)")
            }
        }
    } setup: {
        try Connection.tcp()
    }

    Benchmark("sync.send-span") { benchmark, connection in
        let counters = ThreadCounters.currentThread()
        counters.measure(benchmark) {
            do throws(Errno) {
                for _ in benchmark.scaledIterations {
                    blackHole(try connection.local.send(RawSpan(_unsafeBytes: connection.message)))
                    try connection.peerReceive()
                }
            } catch {
                benchmark.error("\(error)")
            }
        }
    } setup: {
        try Connection.tcp()
    }

    Benchmark("sync.recvFrom") { benchmark, connection in
        let counters = ThreadCounters.currentThread()
        counters.measure(benchmark) {
            do throws(Errno) {
                for _ in benchmark.scaledIterations {
                    try connection.peerSend()
                    blackHole(try connection.local.recvFrom(into: connection.buffer).count)
                }
            } catch {
                benchmark.error("\(error)")
            }
        }
    } setup: {
        try Connection.udp()
    }

    Benchmark("sync.accept") { benchmark, listener in
        let counters = ThreadCounters.currentThread()
        counters.measure(benchmark) {
            do throws(Errno) {
                for _ in benchmark.scaledIterations {
                    let client = try listener.connectClient()
                    let accepted = try listener.listener.accept()
                    _ = consume client  // reset first: no TIME_WAIT
                    _ = consume accepted
                }
            } catch {
                benchmark.error("\(error)")
            }
        }
    } setup: {
        try Listener.make()
    }
}
