#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// An owned socket descriptor, closed when the value is destroyed.
///
/// Almost every method corresponds to exactly one system call, with no error handling added:
/// `EINTR` and `EAGAIN` reach the caller. The exceptions are documented (``SocketHandle/connectTimeout(_:timeout:)``,
/// and the options that read, modify and write flags).
///
/// `Socket` is `~Copyable`: exactly one value owns the descriptor, and its `deinit` calls
/// `close(2)`. Borrow it as a ``SockRef`` for code that should not own it, and
/// ``tryClone()`` it for a second descriptor of the same socket.
public struct Socket: ~Copyable, SocketHandle, Sendable {
    /// The descriptor this value owns.
    public let rawDescriptor: CInt

    /// Takes ownership of `rawDescriptor`, which must be an open socket.
    ///
    /// - Precondition: `rawDescriptor >= 0`.
    public init(rawDescriptor: CInt) {
        precondition(rawDescriptor >= 0, "a socket descriptor is never negative")
        self.rawDescriptor = rawDescriptor
    }

    /// Takes ownership of a swift-system `FileDescriptor`, which must be an open socket.
    public init(_ fileDescriptor: FileDescriptor) {
        self.init(rawDescriptor: fileDescriptor.rawValue)
    }

    /// Creates a socket with `socket(2)`, close-on-exec (`SOCK_CLOEXEC`) as socket2's
    /// `Socket::new`.
    ///
    /// `protocol` `nil` lets the kernel choose (0).
    public init(domain: Domain, type: SocketType, protocol: SocketProtocol? = nil) throws(Errno) {
        self.init(rawDescriptor: try system_socket(
            domain.rawValue, type.cloexec().rawValue, `protocol`?.rawValue ?? 0))
    }

    /// Creates a socket with `socket(2)` exactly as asked, no flag added (socket2's `new_raw`).
    public static func newRaw(
        domain: Domain, type: SocketType, protocol: SocketProtocol? = nil
    ) throws(Errno) -> Socket {
        Socket(rawDescriptor: try system_socket(domain.rawValue, type.rawValue, `protocol`?.rawValue ?? 0))
    }

    /// Creates a pair of connected sockets with `socketpair(2)`, close-on-exec.
    public static func pair(
        domain: Domain, type: SocketType, protocol: SocketProtocol? = nil
    ) throws(Errno) -> SocketPair {
        try pairRaw(domain: domain, type: type.cloexec(), protocol: `protocol`)
    }

    /// Creates a pair of connected sockets with `socketpair(2)`, no flag added.
    public static func pairRaw(
        domain: Domain, type: SocketType, protocol: SocketProtocol? = nil
    ) throws(Errno) -> SocketPair {
        let (first, second) = try system_socketpair(domain.rawValue, type.rawValue, `protocol`?.rawValue ?? 0)
        return SocketPair(first: Socket(rawDescriptor: first), second: Socket(rawDescriptor: second))
    }

    /// Gives up ownership: returns the descriptor, which the caller must close.
    public consuming func intoRawDescriptor() -> CInt {
        let fd = rawDescriptor
        discard self
        return fd
    }

    /// Gives up ownership as a swift-system `FileDescriptor`, which the caller must close.
    public consuming func intoFileDescriptor() -> FileDescriptor {
        FileDescriptor(rawValue: intoRawDescriptor())
    }

    /// Closes the descriptor now and reports the error of `close(2)`, which `deinit` cannot.
    public consuming func close() throws(Errno) {
        let fd = intoRawDescriptor()
        try nothingOrErrno(system_close(fd))
    }

    /// The descriptor and, when the socket has them, its local and peer addresses:
    /// `Socket(fd: 5, local: 127.0.0.1:40000, peer: 127.0.0.1:8080)`, as socket2's `Debug`.
    ///
    /// A `~Copyable` type cannot conform to `CustomStringConvertible` in Swift 6.3, so this is
    /// the same property without the conformance: `print(socket)` and `"\(socket)"` do not
    /// compile; print `socket.description`, or a ``SockRef`` of the socket, which conforms.
    public var description: String { describe("Socket") }

    deinit {
        _ = system_close(rawDescriptor)
    }
}

extension SockRef: CustomStringConvertible {
    /// The descriptor and, when the socket has them, its local and peer addresses:
    /// `SockRef(fd: 5, local: 127.0.0.1:40000, peer: 127.0.0.1:8080)`.
    public var description: String { describe("SockRef") }
}

/// A connection accepted by `accept`: the new socket and the peer's address.
@frozen
public struct Accepted: ~Copyable, Sendable {
    /// The connected socket.
    public var socket: Socket
    /// The peer's address.
    public var address: SockAddr

    /// Pairs an accepted socket with its peer's address (what `accept4(2)` returns).
    public init(socket: consuming Socket, address: SockAddr) {
        self.socket = socket
        self.address = address
    }
}

/// The two connected sockets made by `socketpair(2)`.
@frozen
public struct SocketPair: ~Copyable, Sendable {
    /// One end.
    public var first: Socket
    /// The other end.
    public var second: Socket

    /// Pairs two connected sockets (what `socketpair(2)` returns).
    public init(first: consuming Socket, second: consuming Socket) {
        self.first = first
        self.second = second
    }
}

/// How a connection is shut down with `shutdown(2)`.
public enum Shutdown: Sendable, Hashable {
    /// `SHUT_RD`: no more receptions.
    case read
    /// `SHUT_WR`: no more transmissions (the peer reads end-of-stream).
    case write
    /// `SHUT_RDWR`: both.
    case both

    var rawValue: CInt {
        switch self {
        case .read: return CInt(SHUT_RD)
        case .write: return CInt(SHUT_WR)
        case .both: return CInt(SHUT_RDWR)
        }
    }
}

// MARK: - Creation from a handle, flags, and the socket's own facts

extension SocketHandle where Self: ~Copyable {
    /// The descriptor as a swift-system `FileDescriptor`, for calls that take one. A view:
    /// closing it closes the socket's descriptor under its owner.
    public var fileDescriptor: FileDescriptor { FileDescriptor(rawValue: rawDescriptor) }

    /// `kind(fd: …, local: …, peer: …)`, leaving out the addresses the socket does not have
    /// (`getsockname(2)`, `getpeername(2)`).
    func describe(_ kind: String) -> String {
        var text = "\(kind)(fd: \(rawDescriptor)"
        if let local = try? localAddr() { text += ", local: \(local)" }
        if let peer = try? peerAddr() { text += ", peer: \(peer)" }
        return text + ")"
    }

    /// A new descriptor for the same socket, close-on-exec: `fcntl(F_DUPFD_CLOEXEC, 0)`.
    public func tryClone() throws(Errno) -> Socket {
        Socket(rawDescriptor: try system_fcntl(rawDescriptor, F_DUPFD_CLOEXEC, 0))
    }

    /// Whether `O_NONBLOCK` is set: `fcntl(F_GETFL)`.
    public func nonblocking() throws(Errno) -> Bool {
        try system_fcntl(rawDescriptor, F_GETFL) & O_NONBLOCK != 0
    }

    /// Sets or clears `O_NONBLOCK`: `fcntl(F_GETFL)`, then `fcntl(F_SETFL)` only when it changes
    /// (two calls, not atomic).
    public func setNonblocking(_ nonblocking: Bool) throws(Errno) {
        let flags = try system_fcntl(rawDescriptor, F_GETFL)
        let wanted = nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags { _ = try system_fcntl(rawDescriptor, F_SETFL, wanted) }
    }

    /// Whether `FD_CLOEXEC` is set: `fcntl(F_GETFD)`.
    public func cloexec() throws(Errno) -> Bool {
        try system_fcntl(rawDescriptor, F_GETFD) & FD_CLOEXEC != 0
    }

    /// Sets or clears `FD_CLOEXEC`: `fcntl(F_GETFD)`, then `fcntl(F_SETFD)` only when it changes
    /// (two calls, not atomic).
    public func setCloexec(_ closeOnExec: Bool) throws(Errno) {
        let flags = try system_fcntl(rawDescriptor, F_GETFD)
        let wanted = closeOnExec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC
        if wanted != flags { _ = try system_fcntl(rawDescriptor, F_SETFD, wanted) }
    }

    /// Shuts down one or both halves of a connection: `shutdown(2)`.
    public func shutdown(_ how: Shutdown) throws(Errno) {
        try system_shutdown(rawDescriptor, how.rawValue)
    }

    // MARK: bind, listen, connect, accept

    /// Binds the socket to `address`: `bind(2)`.
    public func bind(_ address: SockAddr) throws(Errno) {
        let fd = rawDescriptor
        try address.withSockaddrPointer { (pointer, length) throws(Errno) in
            try system_bind(fd, pointer, length)
        }
    }

    /// Connects the socket to `address`: `connect(2)`, with no `EINTR` handling.
    ///
    /// On a non-blocking socket it throws `Errno.nowInProgress` (`EINPROGRESS`) while the
    /// connection is being made; wait for writability and read ``takeError()``.
    public func connect(_ address: SockAddr) throws(Errno) {
        let fd = rawDescriptor
        try address.withSockaddrPointer { (pointer, length) throws(Errno) in
            try system_connect(fd, pointer, length)
        }
    }

    /// Marks the socket as accepting connections, with a queue of up to `backlog` pending ones:
    /// `listen(2)`.
    public func listen(_ backlog: CInt) throws(Errno) {
        try system_listen(rawDescriptor, backlog)
    }

    /// Accepts a connection, close-on-exec: `accept4(2)` with `SOCK_CLOEXEC`.
    public func accept() throws(Errno) -> Accepted {
        try accept4(.cloexec)
    }

    /// Accepts a connection with `accept(2)`, no flag set on the new socket.
    public func acceptRaw() throws(Errno) -> Accepted {
        let fd = rawDescriptor
        let (newFD, address) = try SockAddr.tryInit { (address, length) throws(Errno) in
            try system_accept(fd, address, length)
        }
        return Accepted(socket: Socket(rawDescriptor: newFD), address: address)
    }

    /// Accepts a connection with `accept4(2)` and the given flags (`SOCK_NONBLOCK`,
    /// `SOCK_CLOEXEC`).
    public func accept4(_ flags: AcceptFlags) throws(Errno) -> Accepted {
        let fd = rawDescriptor
        let (newFD, address) = try SockAddr.tryInit { (address, length) throws(Errno) in
            try system_accept4(fd, address, length, flags.rawValue)
        }
        return Accepted(socket: Socket(rawDescriptor: newFD), address: address)
    }

    /// The address the socket is bound to: `getsockname(2)`.
    public func localAddr() throws(Errno) -> SockAddr {
        let fd = rawDescriptor
        return try SockAddr.tryInit { (address, length) throws(Errno) in
            try system_getsockname(fd, address, length)
        }.1
    }

    /// The address of the connected peer: `getpeername(2)`.
    public func peerAddr() throws(Errno) -> SockAddr {
        let fd = rawDescriptor
        return try SockAddr.tryInit { (address, length) throws(Errno) in
            try system_getpeername(fd, address, length)
        }.1
    }
}

/// Flags for `accept4(2)`.
public struct AcceptFlags: OptionSet, Hashable, Sendable {
    /// The `SOCK_*` bits.
    public var rawValue: CInt

    /// Wraps `SOCK_NONBLOCK` / `SOCK_CLOEXEC` bits.
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `SOCK_NONBLOCK`: the accepted socket is non-blocking.
    public static let nonblocking = AcceptFlags(rawValue: CInt(SOCK_NONBLOCK.rawValue))
    /// `SOCK_CLOEXEC`: the accepted socket is closed on `execve(2)`.
    public static let cloexec = AcceptFlags(rawValue: CInt(SOCK_CLOEXEC.rawValue))
}
