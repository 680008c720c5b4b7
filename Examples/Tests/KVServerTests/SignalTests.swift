#if canImport(Glibc)
import Glibc
#endif
import KVServer
import Socket2
import Socket2Async
import SystemPackage
import Testing

/// The kv-server executable as a child process, its standard output read through a pipe on a
/// reactor.
final class ChildServer {
    let pid: pid_t
    let output: AsyncDescriptor
    private var pending: [UInt8] = []

    /// Starts the kv-server built beside the test binary with `arguments`.
    init(_ arguments: [String], reactor: Reactor) throws {
        var executable = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &executable, executable.count - 1)
        guard length > 0 else { throw Errno(rawValue: errno) }
        let directory = String(decoding: executable[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let path = directory + "/kv-server"

        var ends: [CInt] = [0, 0]
        guard pipe(&ends) == 0 else { throw Errno(rawValue: errno) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }  // fd 1 of the child: dup2 clears it
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let environment: [UnsafeMutablePointer<CChar>?] = [nil]
        var pid = pid_t()
        let result = posix_spawn(&pid, path, &actions, nil, argv, environment)
        close(ends[1])
        guard result == 0 else {
            close(ends[0])
            throw Errno(rawValue: result)
        }
        self.pid = pid
        output = try AsyncDescriptor(takingOwnershipOf: FileDescriptor(rawValue: ends[0]), reactor: reactor)
    }

    /// The next line the child printed; nil once it closed its output.
    func readLine() async throws -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                defer { pending.removeFirst(newline + 1) }
                return String(decoding: pending[..<newline], as: UTF8.self)
            }
            let chunk = try await output.read(maxCount: 4096)
            if chunk.isEmpty { return nil }
            pending += chunk
        }
    }

    /// Waits for the child to end (`waitpid(2)`, once its output is closed) and returns its
    /// exit status, or nil if a signal ended it.
    func exitStatus() -> CInt? {
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
        return status & 0x7f == 0 ? (status >> 8) & 0xff : nil
    }
    private var reaped = false

    /// A test that failed half-way leaves no server running.
    deinit {
        if !reaped {
            kill(pid, SIGKILL)
            _ = exitStatus()
        }
    }
}

@Suite struct KVServerSignalTests {
    /// SIGTERM and SIGINT through the real path: kill(2) to the process, the signalfd on its
    /// reactor, a graceful stop (the open connection closed long before the 60 s grace period),
    /// exit status 0.
    @Test(arguments: backends, [SignalNumber.terminate, .interrupt])
    func aSignalStopsTheServerGracefully(_ backend: Reactor.Backend, _ signal: SignalNumber) async throws {
        let reactor = try Reactor(backend: backend)
        defer { reactor.shutdown() }
        let status = try await withDeadline {
            let child = try ChildServer(
                ["--port", "0", "--threads", "2", "--grace-period", "60", "--backend", backend == .epoll ? "epoll" : "io_uring"], reactor: reactor)
            let banner = try #require(try await child.readLine())
            #expect(banner.hasPrefix("listening on 127.0.0.1:"))
            let port = try #require(UInt16(banner.split(separator: ":").last ?? ""))

            #expect(try await KVClient.send("SET a 1", host: "localhost", port: port) == "OK")
            let idle = try await AsyncSocket.connect(host: "localhost", port: port, reactor: reactor)
            let replies = BufferedReader(idle)
            try await idle.sendAll("GET a\n")
            #expect(try await replies.readLine() == "VALUE 1")

            #expect(kill(child.pid, signal.rawValue) == 0)
            #expect(try await child.readLine() == "\(signal): stopping")
            #expect(try await replies.readLine() == nil)      // the open connection is closed
            #expect(try await child.readLine() == "stopped")
            #expect(try await child.readLine() == nil)
            try await idle.close()
            try await child.output.close()
            return child.exitStatus()
        }
        #expect(status == 0)
    }
}
