// The server under test runs in a child process: this same executable, re-executed with the
// hidden `serve` subcommand, pinned to its own core, controlled over a pipe (see
// `serveControlled` in BenchServers for the protocol).
#if canImport(Glibc)
import Glibc
#endif
import BenchServers
import CBenchSupport

/// A counter reading of the server: `mark OPERATIONS CPU_NS MONOTONIC_NS`.
struct ServerMark {
    var operations: Int
    var cpuNanos: UInt64
    var time: UInt64
}

final class ServerProcess {
    let pid: pid_t
    private(set) var port: UInt16 = 0
    private(set) var details = ""
    private let input: CInt
    private let output: CInt
    private var buffer: [UInt8] = []
    private var exited = false

    /// Starts `serve` for `backend` and `mode`; `cpu` pins it.
    init(backend: ServerBackend, mode: ServerMode, cpu: Int?, reading: ConnectionReading = .handler) throws {
        var arguments = [
            try currentExecutablePath(), "serve",
            "--backend", backend.rawValue, "--mode", mode.rawValue, "--port", "0",
            "--read-with", reading.rawValue,
        ]
        if let cpu { arguments += ["--cpu", String(cpu)] }

        var toChild: [CInt] = [-1, -1]
        var fromChild: [CInt] = [-1, -1]
        guard cbench_pipe_cloexec(&toChild) == 0, cbench_pipe_cloexec(&fromChild) == 0 else {
            throw BenchError("pipe2 failed: errno \(errno)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        close(toChild[0])
        close(fromChild[1])
        guard result == 0 else {
            close(toChild[1])
            close(fromChild[0])
            throw BenchError("posix_spawn \(arguments[0]) failed: \(result)")
        }
        self.pid = pid
        input = toChild[1]
        output = fromChild[0]
        // `ready PORT DETAILS`
        let ready = try readLine(timeout: 15)
        let words = ready.split(separator: " ", maxSplits: 2)
        guard words.count >= 2, words[0] == "ready", let port = UInt16(words[1]) else {
            stop()
            throw BenchError("server \(backend.rawValue)/\(mode.rawValue) did not start: \(ready)")
        }
        self.port = port
        details = words.count > 2 ? String(words[2]) : ""
    }

    deinit { stop() }

    func mark() throws -> ServerMark {
        let words = try command("mark", expecting: "mark")
        guard words.count == 4, let operations = Int(words[1]), let cpu = UInt64(words[2]), let time = UInt64(words[3]) else {
            throw BenchError("bad reply to mark: \(words.joined(separator: " "))")
        }
        return ServerMark(operations: operations, cpuNanos: cpu, time: time)
    }

    func drain(count: Int) throws -> DrainResult {
        let words = try command("drain \(count)", expecting: "drained", timeout: 60)
        guard words.count == 4, let count = Int(words[1]), let wall = UInt64(words[2]), let cpu = UInt64(words[3]) else {
            throw BenchError("bad reply to drain: \(words.joined(separator: " "))")
        }
        return DrainResult(count: count, wallNanos: wall, cpuNanos: cpu)
    }

    func release() throws {
        _ = try command("release", expecting: "released")
    }

    /// Ends the server: closes its input (it exits at end of input), then waits, at most 3 s
    /// before SIGKILL.
    func stop() {
        guard !exited else { return }
        exited = true
        close(input)
        close(output)
        var status: CInt = 0
        for _ in 0..<300 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            BenchServers.sleep(seconds: 0.01)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }

    private func command(_ line: String, expecting reply: String, timeout: Double = 10) throws -> [Substring] {
        writeAll(input, line + "\n")
        let answer = try readLine(timeout: timeout)
        let words = answer.split(separator: " ")
        guard words.first.map(String.init) == reply else {
            throw BenchError("server answered \"\(answer)\" to \(line)")
        }
        return words
    }

    private func readLine(timeout: Double) throws -> String {
        let deadline = monotonicNanos() + UInt64(timeout * 1e9)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let now = monotonicNanos()
            guard now < deadline else { throw BenchError("the server did not answer within \(timeout) s") }
            var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, CInt((deadline - now) / 1_000_000) + 1)
            if ready < 0 && errno != EINTR { throw BenchError("poll failed: errno \(errno)") }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw BenchError("the server exited") }
            buffer.append(contentsOf: chunk[..<count])
        }
    }
}

/// This executable, for re-executing it as the server.
func currentExecutablePath() throws -> String {
    var path = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &path, path.count - 1)
    guard length > 0 else { throw BenchError("readlink /proc/self/exe failed") }
    return String(decoding: path[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
