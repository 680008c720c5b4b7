// Socket2Async on an epoll or io_uring reactor (wired once branch `async` lands).
final class AsyncServer: BenchServer {
    let port: UInt16 = 0
    let details = ""
    init(config: ServerConfig, stats: ServerStats) throws {
        throw BenchError("the \(config.backend.rawValue) backend needs Socket2Async")
    }
    func drain(count: Int) throws -> DrainResult { throw BenchError("unavailable") }
    func release() {}
}
