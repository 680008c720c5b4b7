// Fixtures for the core's tests: loopback sockets whose blocking calls are bounded, waiting on
// readiness, temporary directories, and a look at the process's open descriptors.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

enum TestNet {
    /// How long any blocking call of a test may wait (`SO_RCVTIMEO`, `SO_SNDTIMEO`, `poll`).
    static let safetySeconds = 10

    /// The loopback address of `domain` (127.0.0.1 or ::1) with `port`.
    static func loopback(_ domain: Domain, port: UInt16 = 0) -> SockAddr {
        domain == .ipv6
            ? SockAddr(SocketAddrV6(.localhost, port)) : SockAddr(SocketAddrV4(.localhost, port))
    }

    /// Bounds the socket's blocking calls with `SO_RCVTIMEO` and `SO_SNDTIMEO`, so that a test
    /// whose event never comes fails with `EAGAIN` instead of hanging.
    static func bound(_ fd: CInt) throws {
        var limit = timeval(tv_sec: safetySeconds, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            let result = setsockopt(fd, SOL_SOCKET, option, &limit, socklen_t(MemoryLayout<timeval>.size))
            if result != 0 { throw Errno(rawValue: errno) }
        }
    }

    /// A socket with bounded blocking calls.
    static func socket(_ domain: Domain, _ type: SocketType, _ proto: SocketProtocol? = nil) throws -> Socket {
        let socket = try Socket(domain: domain, type: type, protocol: proto)
        try bound(socket.rawDescriptor)
        return socket
    }

    /// A TCP listener on the loopback address of `domain`, on a port the kernel chose.
    static func listener(_ domain: Domain, backlog: CInt = 16) throws -> Socket {
        let listener = try socket(domain, .stream)
        try listener.bind(loopback(domain))
        try listener.listen(backlog)
        return listener
    }

    /// A connected TCP pair over loopback: `first` is the client, `second` the accepted end.
    static func tcpPair(_ domain: Domain) throws -> SocketPair {
        let listener = try listener(domain)
        let client = try socket(domain, .stream)
        try client.connect(listener.localAddr())
        let accepted = try listener.accept()
        let server = accepted.socket
        try bound(server.rawDescriptor)
        return SocketPair(first: client, second: server)
    }

    /// Two UDP sockets bound to loopback ports of `domain`, each connected to the other when
    /// `connected`.
    static func udpPair(_ domain: Domain, connected: Bool = true) throws -> SocketPair {
        let first = try socket(domain, .dgram)
        let second = try socket(domain, .dgram)
        try first.bind(loopback(domain))
        try second.bind(loopback(domain))
        if connected {
            try first.connect(second.localAddr())
            try second.connect(first.localAddr())
        }
        return SocketPair(first: first, second: second)
    }

    /// A connected Unix pair of `type` with bounded blocking calls.
    static func unixPair(_ type: SocketType) throws -> SocketPair {
        let pair = try Socket.pair(domain: .unix, type: type)
        try bound(pair.first.rawDescriptor)
        try bound(pair.second.rawDescriptor)
        return pair
    }

    /// Waits until `fd` reports one of `events` (`POLLIN`, `POLLPRI`, …) and returns what it
    /// reported; records an issue when the safety bound passes first.
    @discardableResult
    static func wait(for events: CInt, on fd: CInt, sourceLocation: SourceLocation = #_sourceLocation) -> CInt {
        var descriptor = pollfd(fd: fd, events: Int16(events), revents: 0)
        let ready = poll(&descriptor, 1, CInt(safetySeconds * 1000))
        #expect(ready == 1, "fd \(fd) never reported events \(events)", sourceLocation: sourceLocation)
        return CInt(descriptor.revents)
    }

    /// The bytes of a string.
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// A string of bytes.
    static func text<C: Collection<UInt8>>(_ bytes: C) -> String { String(decoding: bytes, as: UTF8.self) }

    /// An `Int32` option read with `getsockopt(2)` directly, to check the library against.
    static func intOption(_ fd: CInt, _ level: CInt, _ name: CInt) throws -> CInt {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(fd, level, name, &value, &length) == 0 else { throw Errno(rawValue: errno) }
        return value
    }

    /// The `fcntl(2)` flags of `fd` (`F_GETFD` or `F_GETFL`), read directly.
    static func fcntlFlags(_ fd: CInt, _ command: CInt) -> CInt { fcntl(fd, command) }
}

// MARK: - Temporary directories

/// A fresh directory under `/tmp` (`mkdtemp(3)`), removed with the files in it when the test is
/// done with it.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/socket2-tests-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Errno(rawValue: errno)
        }
        path = String(cString: made)
    }

    /// `path/name`.
    func file(_ name: String) -> String { path + "/" + name }

    /// Creates the file `name` holding `contents` and opens it again for reading and writing,
    /// at position 0. The caller closes it.
    func makeFile(_ name: String, contents: [UInt8]) throws -> FileDescriptor {
        let filePath = FilePath(file(name))
        let writer = try FileDescriptor.open(
            filePath, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        _ = try writer.closeAfter { try writer.writeAll(contents) }
        return try FileDescriptor.open(filePath, .readWrite)
    }

    deinit {
        for name in directoryEntries(path) { unlink(file(name)) }
        rmdir(path)
    }
}

/// The names in a directory (`opendir(3)`, `readdir(3)`), without `.` and `..`.
func directoryEntries(_ path: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

// MARK: - Open descriptors

enum OpenDescriptors {
    /// The inode of the socket open as `fd`, or `nil` when `fd` is not open.
    static func inode(of fd: CInt) -> UInt64? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// Whether `fd` is open and is still the socket with `inode` (a closed number may have been
    /// reused by a concurrent test for something else).
    static func isOpen(_ fd: CInt, inode: UInt64) -> Bool { self.inode(of: fd) == inode }

    /// The inodes of all sockets open in this process, read from `/proc/self/fd` (each entry a
    /// link to `socket:[inode]`).
    static func socketInodes() -> Set<UInt64> {
        var inodes = Set<UInt64>()
        for name in directoryEntries("/proc/self/fd") {
            var target = [CChar](repeating: 0, count: 64)
            let count = readlink("/proc/self/fd/" + name, &target, target.count - 1)
            guard count > 0 else { continue }
            let link = String(decoding: target[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link.hasPrefix("socket:["), let inode = UInt64(link.dropFirst(8).dropLast()) {
                inodes.insert(inode)
            }
        }
        return inodes
    }
}
