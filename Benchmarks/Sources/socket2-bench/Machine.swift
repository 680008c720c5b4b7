// What the report says about the machine and the toolchain.
#if canImport(Glibc)
import Glibc
#endif
import BenchServers
import CBenchSupport

struct MachineInfo {
    var cpuModel: String
    var onlineCPUs: Int
    var kernel: String
    var swiftVersion: String
    var nioVersion: String
    var loadAverage: String

    static func current() -> MachineInfo {
        let cpuinfo = readTextFile("/proc/cpuinfo") ?? ""
        let model = cpuinfo.split(separator: "\n")
            .first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingSpaces() } ?? "unknown"
        let swift = captureOutput(["swift", "--version"])?
            .split(separator: "\n").first { $0.contains("Swift version") }
            .map { $0.trimmingSpaces() } ?? compiledSwiftVersion
        return MachineInfo(
            cpuModel: model,
            onlineCPUs: onlineCPUCount(),
            kernel: (readTextFile("/proc/sys/kernel/osrelease") ?? "unknown").trimmingSpaces(),
            swiftVersion: swift,
            nioVersion: resolvedVersion(of: "swift-nio") ?? "2.101.x",
            loadAverage: loadAverage())
    }

    static func loadAverage() -> String {
        (readTextFile("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

#if compiler(>=6.4)
let compiledSwiftVersion = "Swift 6.4 or later (compiler)"
#elseif compiler(>=6.3)
let compiledSwiftVersion = "Swift 6.3 (compiler)"
#else
let compiledSwiftVersion = "Swift before 6.3 (compiler)"
#endif

extension StringProtocol {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" || first == "\n" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\n" { text = text.dropLast() }
        return String(text)
    }
}

/// A whole (small) text file, or nil.
func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `text` to `path`, replacing it.
func writeTextFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw BenchError("cannot write \(path): errno \(errno)") }
    writeAll(fd, text)
    close(fd)
}

/// The standard output of a command found on PATH, or nil.
func captureOutput(_ arguments: [String]) -> String? {
    var pipe: [CInt] = [-1, -1]
    guard cbench_pipe_cloexec(&pipe) == 0 else { return nil }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipe[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    var pid: pid_t = 0
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
    close(pipe[1])
    defer { close(pipe[0]) }
    guard spawned == 0 else { return nil }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(pipe[0], $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[..<count])
    }
    var status: CInt = 0
    waitpid(pid, &status, 0)
    return String(decoding: bytes, as: UTF8.self)
}

/// The version of a dependency in the Package.resolved beside the `.build` folder this
/// executable was built in.
func resolvedVersion(of identity: String) -> String? {
    guard let executable = try? currentExecutablePath(), let range = executable.firstRange(of: "/.build/") else { return nil }
    guard let resolved = readTextFile(String(executable[..<range.lowerBound]) + "/Package.resolved"),
        let entry = resolved.firstRange(of: "\"identity\" : \"\(identity)\"")
    else { return nil }
    let rest = resolved[entry.upperBound...]
    guard let key = rest.firstRange(of: "\"version\" : \"") else { return nil }
    return String(rest[key.upperBound...].prefix { $0 != "\"" })
}
