#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Synchronization

/// A non-blocking socket driven by a ``Reactor``: `try await socket.recv(...)`.
///
/// `AsyncSocket` owns its descriptor (closed by ``close()`` or when the object goes away) and is
/// a `SocketHandle`, so every option and call of the core works on it too
/// (`socket.setTcpNodelay(true)`).
///
/// Each async call first tries its system call, and waits only when the kernel says it would
/// block; a call that waits returns once the operation is complete. `EINTR` and `EAGAIN` never
/// reach the caller; the errors thrown are `Errno`, `CancellationError` (the task was cancelled
/// while the call waited: the operation did not happen — a result that was complete before the
/// cancellation took effect is returned instead), and ``ReactorError``.
///
/// Calls run fastest from a task whose executor preference is the socket's reactor
/// (`Task(executorPreference: socket.reactor)`): no thread hop at all. From other executors, a
/// call that has to wait moves the task to the reactor thread for the wait.
public final class AsyncSocket: SocketHandle, @unchecked Sendable {
    /// The reactor that drives this socket.
    public let reactor: Reactor
    let io: IOState
    /// The open descriptor, -1 once closed.
    let descriptor: Atomic<CInt>
    /// The server that accepted this socket, told before its descriptor is closed (set before
    /// the connection's handler starts, read only after that).
    var registry: ConnectionRegistry?

    /// The descriptor, or -1 once the socket is closed.
    public var rawDescriptor: CInt { descriptor.load(ordering: .relaxed) }

    /// Takes ownership of `socket`, makes it non-blocking (`O_NONBLOCK`) and attaches it to
    /// `reactor`.
    ///
    /// - Throws: `Errno` from `fcntl(2)` or `getsockopt(SO_TYPE)`; ``ReactorError/shutDown``
    ///   when the reactor is shut down. The socket is closed when this throws.
    public init(_ socket: consuming Socket, reactor: Reactor = .shared) throws {
        // The core's calls, while `socket` still owns the descriptor: a throw closes it.
        try socket.setNonblocking(true)
        let type = try socket.type()
        guard !reactor.isShutDown.load(ordering: .relaxed) else { throw ReactorError.shutDown }
        let fd = socket.intoRawDescriptor()
        self.reactor = reactor
        io = IOState(fd: fd, isStream: type == .stream, tracksReadiness: reactor.tracksReadiness)
        descriptor = Atomic(fd)
    }

    /// Creates a socket with `socket(2)` (close-on-exec, non-blocking) attached to `reactor`.
    public convenience init(
        domain: Domain, type: SocketType, protocol: SocketProtocol? = nil, reactor: Reactor = .shared
    ) throws {
        try self.init(Socket(domain: domain, type: type, protocol: `protocol`), reactor: reactor)
    }

    /// A socket accepted non-blocking and close-on-exec.
    init(accepted fd: CInt, isStream: Bool, reactor: Reactor) {
        self.reactor = reactor
        io = IOState(fd: fd, isStream: isStream, tracksReadiness: reactor.tracksReadiness)
        descriptor = Atomic(fd)
    }

    /// This socket — just accepted, with no operation yet — on `reactor`: a new object that
    /// takes the descriptor over (this one is left closed).
    func handedOver(to reactor: Reactor) -> AsyncSocket {
        if reactor === self.reactor { return self }
        let fd = descriptor.exchange(-1, ordering: .relaxed)
        return AsyncSocket(accepted: fd, isStream: io.isStream, reactor: reactor)
    }

    deinit {
        registry?.closed(io)  // before the descriptor is closed (see `ConnectionRegistry`)
        let fd = descriptor.load(ordering: .relaxed)
        if fd >= 0 { _ = sys_close(fd) }
        reactor.release(io)
    }

    // MARK: Trying first

    /// Tries `call` once when it may succeed without waiting: always from another thread; on the
    /// reactor thread only when the socket's readiness says so. Returns nil when the operation
    /// has to wait, and for a receive while the socket keeps stranded datagrams (which come
    /// before the kernel's queue: the reactor thread hands them out).
    @inline(__always)
    func attempt(input: Bool, requested: Int, flags: CInt, _ call: (CInt) -> Int) throws -> Int? {
        if reactor.isShutDown.load(ordering: .relaxed) { throw ReactorError.shutDown }
        if input && io.hasStrandedDatagrams.load(ordering: .relaxed) { return nil }
        let result: Int
        if reactor.isCurrent {
            if io.closed { throw ReactorError.socketClosed }
            // Not while operations of this direction wait: they come first.
            guard io.isReady(input: input), (input ? io.inputHead : io.outputHead) < 0,
                  reactor.takeImmediateOperation() else { return nil }
            result = call(io.fd)
            if input {
                io.noteInput(result, requested: requested, flags: flags)
            } else {
                io.noteOutput(result, requested: requested)
            }
        } else {
            let fd = descriptor.load(ordering: .relaxed)
            if fd < 0 { throw ReactorError.socketClosed }
            result = call(fd)
        }
        // Asked not to wait, the call's EAGAIN is the answer.
        if result == -Int(EAGAIN) && flags & MessageFlags.dontWait.rawValue == 0 { return nil }
        return try ResultCode.check(result)
    }

    /// Runs operation `kind` on the reactor (the slow path, after `attempt`).
    @inline(__always)
    nonisolated(nonsending) func wait<R>(
        _ kind: OpKind, timeout: Duration? = nil,
        prepare: (UnsafeMutablePointer<OpRecord>) -> Void,
        finish: (Int, UnsafeMutablePointer<OpRecord>) throws -> R
    ) async throws -> R {
        let reactor = self.reactor, io = self.io
        return try await reactor.onReactor {
            try await reactor.perform(kind, io: io, timeout: timeout, prepare: prepare, finish: finish)
        }
    }

    // MARK: Connections

    /// Accepts a connection: `accept4(2)` (`SOCK_CLOEXEC | SOCK_NONBLOCK`), or `IORING_OP_ACCEPT`.
    ///
    /// The new socket uses the same reactor. When the process is out of descriptors
    /// (`EMFILE`, `ENFILE`), the call does not fail: the connection stays queued in the kernel
    /// and accepting is retried after a delay (1 ms, doubling up to 100 ms) until it succeeds.
    public nonisolated(nonsending) func accept() async throws -> (socket: AsyncSocket, address: SockAddr) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        if reactor.isShutDown.load(ordering: .relaxed) { throw ReactorError.shutDown }
        if reactor.isCurrent ? io.isReady(input: true) && !io.closed && io.inputHead < 0 : true {
            let fd = reactor.isCurrent ? io.fd : descriptor.load(ordering: .relaxed)
            if fd < 0 { throw ReactorError.socketClosed }
            let result = withUnsafeMutablePointer(to: &storage) { storage in
                storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { sys_accept(fd, $0, &length) }
            }
            if result >= 0 {
                return (AsyncSocket(accepted: CInt(result), isStream: io.isStream, reactor: reactor),
                        SockAddr(storage, length))
            }
            if result == -Int(EAGAIN), reactor.isCurrent { io.readReady = false }
            if !Self.acceptMustWait(result) { throw ResultCode.error(for: result) }
        }
        let reactor = self.reactor, isStream = io.isStream
        return try await wait(.accept, prepare: { _ in }) { result, record in
            let fd = try ResultCode.check(result)
            return (AsyncSocket(accepted: CInt(fd), isStream: isStream, reactor: reactor),
                    SockAddr(record.pointee.address, record.pointee.addressLength))
        }
    }

    /// Accept results that mean "wait": nothing queued, a connection aborted before it was taken,
    /// or no descriptor free (the reactor backs off).
    static func acceptMustWait(_ result: Int) -> Bool {
        switch CInt(-result) {
        case EAGAIN, ECONNABORTED, EPROTO, EINTR, EMFILE, ENFILE, ENOBUFS, ENOMEM: return true
        default: return false
        }
    }

    /// Connects to `address`: `connect(2)` and a wait for writability, or `IORING_OP_CONNECT`.
    public nonisolated(nonsending) func connect(_ address: SockAddr) async throws {
        try await connect(address, timeout: nil)
    }

    /// Connects to `address`, failing with `Errno.timedOut` (`ETIMEDOUT`) when the connection
    /// is not made within `timeout` (`nil`: no limit but the kernel's).
    public nonisolated(nonsending) func connect(_ address: SockAddr, timeout: Duration?) async throws {
        let storage = address.asStorage().raw, length = address.len()
        try await wait(.connect, timeout: timeout, prepare: { record in
            record.pointee.address = storage
            record.pointee.addressLength = length
            record.pointee.flags = 0
        }, finish: { result, _ in _ = try ResultCode.check(result) })
    }

    /// Shuts down one or both directions: `shutdown(2)`, or `IORING_OP_SHUTDOWN`.
    public nonisolated(nonsending) func shutdown(_ how: Shutdown) async throws {
        let raw: CInt
        switch how {
        case .read: raw = CInt(SHUT_RD)
        case .write: raw = CInt(SHUT_WR)
        case .both: raw = CInt(SHUT_RDWR)
        }
        try await wait(.shutdown, prepare: { $0.pointee.flags = raw }) { result, _ in
            _ = try ResultCode.check(result)
        }
    }
}

extension SockAddr {
    /// The address in C storage of `length` bytes.
    init(_ storage: sockaddr_storage, _ length: socklen_t) {
        var wrapped = SockAddrStorage.zeroed()
        wrapped.raw = storage
        self.init(storage: wrapped, length: min(length, socklen_t(MemoryLayout<sockaddr_storage>.size)))
    }
}
