#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Synchronization

/// Any pollable descriptor on a ``Reactor`` — a pipe, an eventfd, a timerfd, a signalfd, a
/// terminal: wait until it is readable or writable, and read or write it, without blocking the
/// reactor's thread. (``AsyncSocket`` is for sockets; it refuses other descriptors with
/// `ENOTSOCK`.)
///
/// Each call first asks the kernel (`poll(2)` with no wait, or the `read(2)`/`write(2)` itself)
/// and waits only when the descriptor is not ready: on epoll the descriptor is registered
/// edge-triggered and `poll(2)` is asked again on each event; on io_uring the wait is an
/// `IORING_OP_POLL_ADD`. A wait takes nothing from the descriptor, so one that is cancelled
/// (`CancellationError`) or times out (``AsyncSocket/withTimeout(_:_:)``) loses nothing.
/// A regular file is always ready; epoll refuses it (`EPERM`).
public final class AsyncDescriptor: @unchecked Sendable {
    /// The reactor that drives this descriptor.
    public let reactor: Reactor
    let io: IOState
    /// The open descriptor, -1 once closed.
    private let descriptor: Atomic<CInt>

    /// The descriptor, or -1 once it is closed.
    public var rawDescriptor: CInt { descriptor.load(ordering: .relaxed) }

    /// Takes ownership of `descriptor` (closed by ``close()`` or when the object goes away),
    /// makes it non-blocking (`fcntl(2)` `O_NONBLOCK`) and attaches it to `reactor`.
    ///
    /// - Throws: `Errno` from `fcntl(2)`; ``ReactorError/shutDown`` when the reactor is shut
    ///   down. The descriptor is closed when this throws.
    public init(takingOwnershipOf descriptor: FileDescriptor, reactor: Reactor = .shared) throws {
        let fd = descriptor.rawValue
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) >= 0 else {
            let error = Errno(rawValue: errno)
            _ = sys_close(fd)
            throw error
        }
        guard !reactor.isShutDown.load(ordering: .relaxed) else {
            _ = sys_close(fd)
            throw ReactorError.shutDown
        }
        self.reactor = reactor
        io = IOState(fd: fd, isStream: true, tracksReadiness: reactor.tracksReadiness)
        self.descriptor = Atomic(fd)
    }

    deinit {
        let fd = descriptor.load(ordering: .relaxed)
        if fd >= 0 { _ = sys_close(fd) }
        reactor.release(io)
    }

    /// Waits until the descriptor is readable (`POLLIN`), or has failed or hung up (then the
    /// next read reports it).
    public nonisolated(nonsending) func waitUntilReadable() async throws {
        try await waitUntilReady(.readable, events: CShort(POLLIN))
    }

    /// Waits until the descriptor is writable (`POLLOUT`), or has failed or hung up (then the
    /// next write reports it).
    public nonisolated(nonsending) func waitUntilWritable() async throws {
        try await waitUntilReady(.writable, events: CShort(POLLOUT))
    }

    private nonisolated(nonsending) func waitUntilReady(_ kind: OpKind, events: CShort) async throws {
        let fd = descriptor.load(ordering: .relaxed)
        if fd < 0 { throw ReactorError.socketClosed }
        if reactor.isShutDown.load(ordering: .relaxed) { throw ReactorError.shutDown }
        if try ResultCode.checkOrAgain(sys_pollNow(fd, events: events)) != nil { return }
        let reactor = self.reactor, io = self.io
        try await reactor.onReactor {
            try await reactor.perform(kind, io: io, prepare: { _ in }) { result, _ in
                _ = try ResultCode.check(result)
            }
        }
    }

    /// Reads up to `buffer.count` bytes (`read(2)`), waiting until the descriptor is readable
    /// when it has nothing. Returns the count read; 0 at the end of input.
    public nonisolated(nonsending) func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try await transfer(.readable, events: CShort(POLLIN)) { fd in
            Glibc.read(fd, buffer.baseAddress, buffer.count)
        }
    }

    /// Reads up to `maxCount` bytes into a new array (empty at the end of input).
    public nonisolated(nonsending) func read(maxCount: Int) async throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: maxCount)
        let count = try await transfer(.readable, events: CShort(POLLIN)) { fd in
            bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        }
        bytes.removeLast(maxCount - count)
        return bytes
    }

    /// Writes up to `bytes.count` bytes (`write(2)`), waiting until the descriptor is writable
    /// when it has no room. Returns the count written.
    public nonisolated(nonsending) func write(_ bytes: UnsafeRawBufferPointer) async throws -> Int {
        try await transfer(.writable, events: CShort(POLLOUT)) { fd in
            Glibc.write(fd, bytes.baseAddress, bytes.count)
        }
    }

    /// Writes up to `bytes.count` bytes of an array; returns the count written.
    public nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws -> Int {
        try await transfer(.writable, events: CShort(POLLOUT)) { fd in
            bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        }
    }

    /// Makes `call` (`EINTR` retried) until it does not fail with `EAGAIN`, waiting for
    /// readiness in between.
    nonisolated(nonsending) func transfer(
        _ kind: OpKind, events: CShort, _ call: (CInt) -> Int
    ) async throws -> Int {
        while true {
            let fd = descriptor.load(ordering: .relaxed)
            if fd < 0 { throw ReactorError.socketClosed }
            if let count = try ResultCode.checkOrAgain(retryingEINTR { call(fd) }) { return count }
            try await waitUntilReady(kind, events: events)
        }
    }

    /// Closes the descriptor: pending waits end first (they throw
    /// ``ReactorError/socketClosed``), then `close(2)` (or `IORING_OP_CLOSE`). Closing a closed
    /// descriptor does nothing.
    public nonisolated(nonsending) func close() async throws {
        try await reactor.close(io, owner: descriptor)
    }
}
