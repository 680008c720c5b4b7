import Testing
@testable import Socket2Async
import Socket2
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// All tests of the module, one at a time: some lower the process's descriptor limit or count
/// its descriptors, which tests running beside them would disturb.
@Suite(.serialized) struct AsyncTests {}

/// Every test that applies to both backends runs with each of these.
let backends: [Reactor.Backend] = [.epoll, .ioUring]

/// A test's deadline passed: the test fails instead of hanging.
struct TimedOut: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "timed out after \(seconds) s" }
}

/// Resumes a continuation once, whoever comes first.
private final class Once<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>
    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = Mutex(continuation) }
    @discardableResult
    func resume(_ result: Result<T, any Error>) -> Bool {
        guard let continuation = continuation.withLock({ $0.take() }) else { return false }
        continuation.resume(with: result)
        return true
    }
}

/// Runs `body` with a deadline: past it, the body is cancelled and `TimedOut` thrown at once
/// (without waiting for a body that ignores cancellation).
func withTimeout<T: Sendable>(
    _ seconds: Double = 30, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let once = Once(continuation)
        let worker = Task {
            do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            if once.resume(.failure(TimedOut(seconds: seconds))) { worker.cancel() }
        }
    }
}

/// Runs `body` with a new reactor of `backend`, shut down afterwards, under a deadline.
func withReactor<T: Sendable>(
    _ backend: Reactor.Backend, timeout: Double = 30, options: ReactorOptions = ReactorOptions(),
    _ body: @escaping @Sendable (Reactor) async throws -> T
) async throws -> T {
    let reactor = try Reactor(backend: backend, options: options)
    #expect(reactor.backend == backend)
    defer { reactor.shutdown() }
    do {
        return try await withTimeout(timeout) { try await body(reactor) }
    } catch let error as TimedOut {
        let dump = try await withTimeout(2) { await onReactor(reactor) { reactor.dumpOperations() } }
        Issue.record("operations in flight at the deadline:\n\(dump)")
        throw error
    }
}

/// 127.0.0.1:`port`.
func loopback(_ port: UInt16 = 0) -> SockAddr { SockAddr(SocketAddrV4(.localhost, port)) }

/// A TCP listener on 127.0.0.1 (an ephemeral port) and its address.
func tcpListener(_ reactor: Reactor, backlog: CInt = 128) throws -> (AsyncSocket, SockAddr) {
    let listener = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
    try listener.bind(loopback())
    try listener.listen(backlog)
    return (listener, try listener.localAddr())
}

/// A UDP socket bound to 127.0.0.1 (an ephemeral port) and its address.
func udpSocket(_ reactor: Reactor) throws -> (AsyncSocket, SockAddr) {
    let socket = try AsyncSocket(domain: .ipv4, type: .dgram, reactor: reactor)
    try socket.bind(loopback())
    return (socket, try socket.localAddr())
}

/// A connected TCP pair on loopback: (client, server).
func tcpPair(_ reactor: Reactor) async throws -> (AsyncSocket, AsyncSocket) {
    let (listener, address) = try tcpListener(reactor)
    let client = try AsyncSocket(domain: .ipv4, type: .stream, reactor: reactor)
    try await client.connect(address)
    let (server, _) = try await listener.accept()
    try await listener.close()
    return (client, server)
}

/// Waits (poll(2), bounded) until `socket` has input.
func waitForInput(_ socket: AsyncSocket) {
    var descriptor = pollfd(fd: socket.rawDescriptor, events: Int16(POLLIN), revents: 0)
    #expect(poll(&descriptor, 1, 10_000) == 1)
}

/// Deterministic test bytes.
func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) &+ seed &* 7 &+ ($0 >> 8)) }
}

/// Receives exactly `count` bytes (fails on a premature end of stream).
func recvExactly(_ socket: AsyncSocket, _ count: Int) async throws -> [UInt8] {
    var result: [UInt8] = []
    while result.count < count {
        let chunk = try await socket.recv(maxCount: count - result.count)
        if chunk.isEmpty { throw Errno.connectionReset }
        result += chunk
    }
    return result
}

/// The socket's state from `TCP_INFO` (`tcpi_state`: 1 established, 2 SYN_SENT, …).
func tcpState(_ socket: AsyncSocket) -> UInt8 {
    var info = [UInt8](repeating: 0, count: 256)
    var length = socklen_t(info.count)
    _ = getsockopt(socket.rawDescriptor, CInt(IPPROTO_TCP), TCP_INFO, &info, &length)
    return info[0]
}

/// Sets a socket's send or receive buffer size (`SO_SNDBUF` / `SO_RCVBUF`).
func setBufferSize(_ socket: AsyncSocket, _ option: CInt, _ size: CInt) {
    var value = size
    _ = setsockopt(socket.rawDescriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<CInt>.size))
}

/// Descriptors of this process whose link names a reactor's own kernel objects.
func reactorDescriptorCount() -> Int {
    var count = 0
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var target = [CChar](repeating: 0, count: 256)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        guard name != ".", name != ".." else { continue }
        let length = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
        guard length > 0 else { continue }
        let link = String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if link == "anon_inode:[eventpoll]" || link == "anon_inode:[eventfd]" || link == "anon_inode:[io_uring]" {
            count += 1
        }
    }
    return count
}

/// This process's open descriptors, each as "number -> what it names" (`/proc/self/fd`).
func openDescriptors() -> Set<String> {
    var result: Set<String> = []
    guard let directory = opendir("/proc/self/fd") else { return result }
    defer { closedir(directory) }
    let own = dirfd(directory)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let number = CInt(name), number != own else { continue }
        result.insert("\(name) -> " + fileNamed(by: number))
    }
    return result
}

/// What `descriptor` names: its link in `/proc/self/fd` (`socket:[inode]`, `pipe:[inode]`, a
/// path), the same for every descriptor of one open file, in this process or received from
/// another; "?" when it is not open.
func fileNamed(by descriptor: CInt) -> String {
    var target = [CChar](repeating: 0, count: 256)
    let length = readlink("/proc/self/fd/\(descriptor)", &target, target.count - 1)
    return length > 0 ? String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
}

/// Descriptors open now that were not in `baseline` and name one of `files` (``fileNamed(by:)``):
/// the test's own, whatever the tests of other modules, which run beside this serialized suite
/// in the same process, open meanwhile. (Descriptors closed meanwhile, a previous test's objects
/// going away late, do not count either, as they would in a plain count.)
func descriptorsOpened(since baseline: Set<String>, naming files: Set<String>) -> Int {
    openDescriptors().subtracting(baseline).count { entry in
        guard let arrow = entry.firstRange(of: " -> ") else { return false }
        return files.contains(String(entry[arrow.upperBound...]))
    }
}

/// Heap memory for the raw-buffer calls, freed with the object.
final class TestBuffer: @unchecked Sendable {
    let raw: UnsafeMutableRawBufferPointer
    init(_ count: Int) {
        raw = .allocate(byteCount: count, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0)
    }
    init(_ bytes: [UInt8]) {
        raw = .allocate(byteCount: bytes.count, alignment: 16)
        raw.copyBytes(from: bytes)
    }
    deinit { raw.deallocate() }
    var bytes: [UInt8] { Array(raw) }
    var readOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(raw) }
    func prefix(_ count: Int) -> [UInt8] { Array(raw.prefix(count)) }
    func from(_ offset: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: raw[offset...]) }
}

/// Runs `body` on the reactor thread (to read reactor-thread state).
func onReactor<T: Sendable>(_ reactor: Reactor, _ body: @escaping @Sendable () -> T) async -> T {
    await Task(executorPreference: reactor) { body() }.value
}

/// Operations pending on `reactor` (records in use).
func pendingOperations(_ reactor: Reactor) async -> Int {
    await onReactor(reactor) { reactor.ops.count }
}

/// Waits (yielding, under the caller's deadline) until `reactor` has at least `count` operations
/// in flight: the tasks that started them are suspended in the reactor, and the kernel has the
/// operations (io_uring queues a submission in one loop turn and submits it at that turn's end:
/// one more job on the reactor runs in a later turn).
func waitUntilPending(_ reactor: Reactor, _ count: Int = 1) async {
    while await pendingOperations(reactor) < count { await Task.yield() }
    _ = await pendingOperations(reactor)
}

/// How many descriptors of this process are TCP sockets on local port `port` that are not
/// listening: the server side of connections accepted from a listener on that port.
func openConnections(onPort port: UInt16) -> Int {
    var inodes = Set<String>()
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        guard let file = fopen(table, "r") else { continue }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, CInt(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, let colon = fields[1].lastIndex(of: ":"),
                  let localPort = UInt16(fields[1][fields[1].index(after: colon)...], radix: 16),
                  localPort == port, fields[3] != "0A"
            else { continue }
            inodes.insert(String(fields[9]))
        }
    }
    guard !inodes.isEmpty, let directory = opendir("/proc/self/fd") else { return 0 }
    defer { closedir(directory) }
    var count = 0
    var target = [CChar](repeating: 0, count: 256)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let length = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
        guard length > 0 else { continue }
        let link = String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if link.hasPrefix("socket:["), inodes.contains(String(link.dropFirst(8).dropLast())) { count += 1 }
    }
    return count
}

/// The port of an internet address.
func port(of address: SockAddr) -> UInt16 { address.asSocket()!.port }

/// The environment variable that marks a test process started by `runThisTestInAChildProcess`.
private let isolatedChildVariable = "SOCKET2_TESTS_ISOLATED_CHILD"

/// Whether this process is a child started to run one test alone.
let isIsolatedChild = getenv(isolatedChildVariable) != nil

/// Runs this test binary again (`/proc/self/exe`) with only the tests matching `filter`, marked
/// as an isolated child, waits for it, and returns its exit status (its output goes to ours).
/// For tests that change process-wide state, which tests running beside them would see.
func runThisTestInAChildProcess(_ filter: String) throws -> CInt {
    let arguments = ["/proc/self/exe", "--testing-library", "swift-testing", "--filter", filter]
    var environment = ProcessInfoLite.environment.filter { !$0.hasPrefix(isolatedChildVariable + "=") }
    environment.append(isolatedChildVariable + "=1")
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, "/proc/self/exe", nil, nil, argv, envp)
    guard spawned == 0 else { throw Errno(rawValue: spawned) }
    var status: CInt = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw Errno(rawValue: errno) }
    }
    // WIFEXITED / WEXITSTATUS; a signal shows as 128 + its number.
    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// This process's environment as `NAME=value` strings, without Foundation.
enum ProcessInfoLite {
    static var environment: [String] {
        var result: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            result.append(String(cString: pointer))
            entry += 1
        }
        return result
    }
}
