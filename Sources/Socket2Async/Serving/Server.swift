#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

/// How the reactors of a ``ReactorGroup`` share a server's port.
public enum ListenerSharing: Sendable, Hashable {
    /// One listening socket, bound without `SO_REUSEPORT`: no other socket — of this process or
    /// another — can bind the port while it listens (`EADDRINUSE`). One reactor accepts (the
    /// group's first) and hands the connections to the group's reactors in turn, each
    /// connection's handler running on its reactor. (Reactors accepting from one socket
    /// together would not share the work: io_uring wakes the same ring for every connection.)
    case oneSocket
    /// One listener per reactor, each with `SO_REUSEPORT`: the kernel spreads connections over
    /// them by a hash of the addresses. Any other socket of the same user that sets
    /// `SO_REUSEPORT` can join the port — another copy of the server would start without an
    /// error and take a share of the connections. Choose it only when that is wanted (a new
    /// version of a server taking over a port from the old one).
    case reusePort
}

/// How ``ReactorGroup/listen(on:options:)`` and ``ReactorGroup/serve(on:options:ready:_:)`` set
/// up a server.
public struct ServerOptions: Sendable {
    /// The listen backlog (`listen(2)`; the kernel caps it at `net.core.somaxconn`).
    public var backlog: CInt
    /// How the group's reactors share the port.
    public var sharing: ListenerSharing
    /// How long handlers and connections may run after a graceful
    /// ``Server/shutdown(gracePeriod:)`` that names no period, before the handlers are cancelled
    /// and the connections shut down.
    public var gracePeriod: Duration
    /// Called with each listening socket after `SO_REUSEADDR` (and `SO_REUSEPORT` when
    /// ``sharing`` says so) are set and before `bind(2)`: set more options here
    /// (`setTcpFastopen`, `setTcpDeferAccept`, `setOnlyV6`, …). An error it throws is thrown by
    /// `listen` and `serve`.
    public var configure: @Sendable (SockRef) throws -> Void

    /// Options: backlog 1024, one listening socket, a grace period of 10 seconds, no more
    /// socket options.
    public init(
        backlog: CInt = 1024, sharing: ListenerSharing = .oneSocket, gracePeriod: Duration = .seconds(10),
        configure: @escaping @Sendable (SockRef) throws -> Void = { _ in }
    ) {
        self.backlog = backlog
        self.sharing = sharing
        self.gracePeriod = gracePeriod
        self.configure = configure
    }
}

/// A one-shot event: waiters wait until it happens (or until their task is cancelled).
final class OneShotEvent: Sendable {
    private struct State {
        var happened = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Locked(State())

    var happened: Bool { state.withLock { $0.happened } }

    /// Makes the event happen: every waiter resumes. Returns false when it had happened already.
    @discardableResult
    func signal() -> Bool {
        let waiters: [CheckedContinuation<Void, Never>]? = state.withLock { state in
            if state.happened { return nil }
            state.happened = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters ?? [] { waiter.resume() }
        return waiters != nil
    }

    /// Returns once the event happened, or once the calling task is cancelled.
    func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = state.withLock { state in
                    if state.happened { return false }
                    state.waiters[id] = continuation
                    return true
                }
                if !waiting {
                    continuation.resume()
                } else if Task.isCancelled {
                    state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
                }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

/// The signal a server gives its handlers when it shuts down gracefully: it stopped accepting,
/// and they should finish what they are doing (answer the request in hand, say goodbye, close)
/// before the grace period ends, when they are cancelled.
///
/// A handler reads it from ``ShutdownSignal/current`` (a task-local value the server sets for
/// its handlers) or from ``Server/shutdownSignal``, and checks ``isTriggered`` between requests
/// or awaits ``wait()``.
public final class ShutdownSignal: Sendable {
    let event = OneShotEvent()

    /// A signal that has not been triggered.
    public init() {}

    /// The signal of the server whose handler is running (nil outside a server's handlers).
    @TaskLocal public static var current: ShutdownSignal?

    /// Whether the graceful shutdown has begun.
    public var isTriggered: Bool { event.happened }

    /// Returns once the graceful shutdown has begun — or once the calling task is cancelled
    /// (check `Task.isCancelled` when that matters).
    public func wait() async { await event.wait() }

    /// Triggers the signal (what the server does when it shuts down gracefully).
    public func trigger() { event.signal() }
}

extension ShutdownSignal {
    /// Runs `body` (a connection's request loop); when the signal triggers meanwhile, shuts
    /// down the reading side of `connection` (`shutdown(2)` with `SHUT_RD`). A read waiting for
    /// the client's next request then sees the end of the stream (bytes that had arrived are
    /// still read first), so the loop ends the way it ends when the client closes — not
    /// cancelled: the handler can still answer and say goodbye before its grace period ends.
    ///
    /// ```swift
    /// try await ShutdownSignal.current?.endingReads(of: connection) {
    ///     while let line = try await reader.readLine() { … }
    /// }
    /// try await connection.sendAll("BYE\n")
    /// ```
    public nonisolated(nonsending) func endingReads<R>(
        of connection: AsyncSocket, _ body: nonisolated(nonsending) () async throws -> R
    ) async throws -> R {
        try await withThrowingDiscardingTaskGroup(returning: R.self) { group in
            group.addTask {
                await self.wait()
                if self.isTriggered && !Task.isCancelled { try? await connection.shutdown(.read) }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// A TCP server on a ``ReactorGroup``: bound and listening from ``ReactorGroup/listen(on:options:)``
/// on, serving from ``run(_:)``, shut down gracefully by ``shutdown(gracePeriod:)``.
///
/// ```swift
/// let server = try group.listen(on: SockAddr(SocketAddrV4(.localhost, 8080)))  // bind errors here
/// print("listening on", server.localAddress)
/// // elsewhere, e.g. on SIGTERM: server.shutdown()
/// try await server.run { connection, peer in … }   // returns once shut down
/// ```
public final class Server: Sendable {
    /// The reactors that serve.
    public let group: ReactorGroup
    /// The address the listeners are bound to — with the port the kernel picked when the
    /// requested one was 0.
    public let localAddress: SockAddr
    /// The options the server was set up with.
    public let options: ServerOptions
    /// Triggered when a graceful shutdown begins; handlers also find it in
    /// ``ShutdownSignal/current``.
    public let shutdownSignal = ShutdownSignal()

    private let listeners: [AsyncSocket]
    private struct State {
        var running = false
        var gracePeriod: Duration?
        var failure: (any Error)?
    }
    private let state = Locked(State())
    /// Happens when the server must stop: a shutdown was requested or a listener failed.
    private let stopRequested = OneShotEvent()
    /// The connections accepted and not yet closed, and the handlers running.
    private let connections = ConnectionRegistry()

    init(group: ReactorGroup, address: SockAddr, options: ServerOptions) throws {
        self.group = group
        self.options = options
        var listeners: [AsyncSocket] = []
        switch options.sharing {
        case .oneSocket:
            let socket = try Self.listeningSocket(address, options, reusePort: false)
            localAddress = try socket.localAddr()
            listeners.append(try AsyncSocket(socket, reactor: group.reactors[0]))
        case .reusePort:
            var bound = address
            for reactor in group.reactors {
                let socket = try Self.listeningSocket(bound, options, reusePort: true)
                bound = try socket.localAddr()
                listeners.append(try AsyncSocket(socket, reactor: reactor))
            }
            localAddress = bound
        }
        self.listeners = listeners
    }

    /// A stream socket for `address`: `SO_REUSEADDR` (a restarted server binds while its old
    /// connections linger in `TIME_WAIT`; it never lets two listeners share a port),
    /// `SO_REUSEPORT` if asked, the caller's options, `bind(2)`, `listen(2)`.
    private static func listeningSocket(_ address: SockAddr, _ options: ServerOptions, reusePort: Bool) throws -> Socket {
        let socket = try Socket(domain: address.domain(), type: .stream)
        try socket.setReuseAddress(true)
        if reusePort { try socket.setReusePort(true) }
        try options.configure(SockRef(socket))
        try socket.bind(address)
        try socket.listen(options.backlog)
        return socket
    }

    /// Whether a graceful shutdown has begun.
    public var isShuttingDown: Bool { stopRequested.happened }

    /// Begins a graceful shutdown, from any thread or task: the server stops accepting (its
    /// listeners are closed), its handlers see ``shutdownSignal``, connections whose handler task
    /// has returned (read by a handler, ``AsyncSocket/startReading(_:)``, or by a task of their
    /// own) have their reading side shut down (`shutdown(2)` with `SHUT_RD`: they see the end of
    /// the stream once they have read what came before), and all may run for up to
    /// `gracePeriod` (default: ``ServerOptions/gracePeriod``; `.zero`: at once): then the
    /// handlers still running are cancelled, the connections still open are shut down in both
    /// directions (their peers and readers see the end of the stream), and ``run(_:)`` returns.
    /// Calling it again does nothing; calling it before `run` makes `run` return at once.
    public func shutdown(gracePeriod: Duration? = nil) {
        state.withLock { state in
            if state.gracePeriod == nil { state.gracePeriod = gracePeriod ?? options.gracePeriod }
        }
        stopRequested.signal()
    }

    /// Serves: runs `handler` for each accepted connection as a child task whose executor
    /// preference is the connection's reactor, with ``ShutdownSignal/current`` set.
    ///
    /// Returns normally after a graceful ``shutdown(gracePeriod:)`` once every handler has
    /// ended and every connection is closed (or the grace period is over). When the calling
    /// task is cancelled, the handlers are cancelled at once and this throws `CancellationError`
    /// when they have ended; when a listener fails, its error is thrown the same way. The
    /// listeners are closed when this returns or throws, and the connections still open are shut
    /// down (`shutdown(2)` with `SHUT_RDWR`; whoever holds one still closes it): no connection
    /// goes on serving after its server. A server runs once: a second call throws
    /// `Errno.invalidArgument`.
    public func run(_ handler: @escaping @Sendable (AsyncSocket, SockAddr) async -> Void) async throws {
        let first = state.withLock { state in
            defer { state.running = true }
            return !state.running
        }
        guard first else { throw Errno.invalidArgument }
        // Once the handlers have ended, however `run` ends: no connection goes on serving.
        defer { connections.shutDownRemaining() }
        try await ShutdownSignal.$current.withValue(shutdownSignal) {
            try await withThrowingDiscardingTaskGroup { group in
                for listener in listeners {
                    group.addTask(executorPreference: listener.reactor) {
                        try await self.accept(on: listener, handler)
                    }
                }
                await stopRequested.wait()
                await stopAccepting()
                let gracePeriod = state.withLock { $0.gracePeriod }
                if let gracePeriod {
                    shutdownSignal.trigger()
                    connections.beginDraining()
                    await waitForConnections(upTo: gracePeriod)
                }
                group.cancelAll()
            }
        }
        await stopAccepting()
        if let failure = state.withLock({ $0.failure }) { throw failure }
        if state.withLock({ $0.gracePeriod }) == nil { throw CancellationError() }
    }

    /// The accept loop of one listener; each connection's handler a child task on its reactor.
    private func accept(
        on listener: AsyncSocket, _ handler: @escaping @Sendable (AsyncSocket, SockAddr) async -> Void
    ) async throws {
        let handsOver = options.sharing == .oneSocket && group.reactors.count > 1
        try await withThrowingDiscardingTaskGroup { connections in
            do {
                for try await (accepted, peer) in listener.incoming {
                    let connection = handsOver ? accepted.handedOver(to: group.next()) : accepted
                    self.connections.opened(connection)
                    connections.addTask(executorPreference: connection.reactor) {
                        await handler(connection, peer)
                        self.connections.handlerEnded(connection)
                    }
                }
            } catch {
                // Closed by a shutdown: the handlers go on. Anything else stops the server.
                if stopRequested.happened && !Task.isCancelled { return }
                state.withLock { state in
                    if state.failure == nil && !(error is CancellationError) { state.failure = error }
                }
                stopRequested.signal()
                throw error
            }
        }
    }

    /// Closes the listeners: their accept loops end; connections the kernel had queued but
    /// nobody accepted are reset.
    private func stopAccepting() async {
        for listener in listeners { try? await listener.close() }
    }

    /// Waits until every handler has ended and every connection is closed, for at most
    /// `gracePeriod`.
    private func waitForConnections(upTo gracePeriod: Duration) async {
        if connections.drained.happened || gracePeriod <= .zero { return }
        await withTaskGroup(of: Void.self) { race in
            race.addTask { [drained = connections.drained] in await drained.wait() }
            race.addTask { try? await Task.sleep(for: gracePeriod) }
            await race.next()
            race.cancelAll()
        }
    }
}

/// The connections a ``Server`` accepted, from the accept until they are closed, and whether
/// their handler tasks still run: a graceful shutdown ends the reading of the connections no
/// handler task serves, waits until all are closed, and shuts down those still open at the end.
///
/// A list of the connections' reactor states (each knows its place in it), not of the sockets:
/// about 20 bytes a connection (measured with 10,000 idle mini-redis clients), where weak
/// references to the sockets cost 40–100. Every way a socket lets go of its descriptor
/// (`close`, `closeInBackground`, `deinit`) leaves the list first, under the lock; so a
/// descriptor found in the list under the lock is still this connection's, and `shutdown(2)` on
/// it here cannot reach a socket that reused its number.
final class ConnectionRegistry: Sendable {
    private struct State {
        var open: [IOState] = []
        var handlers = 0
        var draining = false
    }
    private let state = Locked(State())
    /// Happens, once draining began, when no handler runs and no connection is open.
    let drained = OneShotEvent()

    /// A connection accepted, its handler about to start.
    func opened(_ socket: AsyncSocket) {
        socket.registry = self
        let io = socket.io
        state.withLock { state in
            io.registrySlot = Int32(state.open.count)
            io.registryHandlerRunning = true
            state.open.append(io)
            state.handlers += 1
        }
    }

    /// The handler task of `socket` returned. While the server drains, a connection still open
    /// then has its reading ended too.
    func handlerEnded(_ socket: AsyncSocket) {
        let io = socket.io
        let done = state.withLock { state in
            state.handlers -= 1
            if io.registrySlot >= 0 {
                io.registryHandlerRunning = false
                if state.draining { _ = sys_shutdown(io.fd, CInt(SHUT_RD)) }
            }
            return Self.isDrained(state)
        }
        if done { drained.signal() }
    }

    /// The connection of `io` is about to close its descriptor (or went away). Idempotent.
    func closed(_ io: IOState) {
        let done = state.withLock { state in
            let slot = Int(io.registrySlot)
            guard slot >= 0 else { return false }
            io.registrySlot = -1
            let last = state.open.removeLast()
            if last !== io {
                state.open[slot] = last
                last.registrySlot = Int32(slot)
            }
            if state.open.isEmpty { state.open = [] }  // the list's memory follows the connections
            return Self.isDrained(state)
        }
        if done { drained.signal() }
    }

    /// Draining begins: the reading side of every open connection whose handler task has ended
    /// is shut down (`shutdown(2)` with `SHUT_RD`): read by a read handler
    /// (``AsyncSocket/startReading(_:)``) or by a task of its own, it sees the end of the stream
    /// once it has read what had arrived, and finishes as it does when the client closes.
    func beginDraining() {
        let done = state.withLock { state in
            state.draining = true
            for io in state.open where !io.registryHandlerRunning { _ = sys_shutdown(io.fd, CInt(SHUT_RD)) }
            return Self.isDrained(state)
        }
        if done { drained.signal() }
    }

    /// Shuts down both directions of the connections still open (`SHUT_RDWR`): their peers and
    /// their readers see the end of the stream; their owners still close them.
    func shutDownRemaining() {
        state.withLock { state in
            for io in state.open { _ = sys_shutdown(io.fd, CInt(SHUT_RDWR)) }
        }
    }

    private static func isDrained(_ state: State) -> Bool {
        state.draining && state.handlers == 0 && state.open.isEmpty
    }
}

extension ReactorGroup {
    /// Binds a TCP server to `address` now (a bind error, such as `EADDRINUSE` when another
    /// socket holds the port, is thrown here) and returns it, listening; ``Server/run(_:)``
    /// serves.
    ///
    /// The listening socket gets `SO_REUSEADDR` (so that a restarted server need not wait for
    /// its old connections' `TIME_WAIT`; this never lets two listeners share a port), then
    /// ``ServerOptions/configure`` runs, then `bind(2)` and `listen(2)`. See ``ListenerSharing``
    /// for how the reactors share the port.
    public func listen(on address: SockAddr, options: ServerOptions = ServerOptions()) throws -> Server {
        try Server(group: self, address: address, options: options)
    }

    /// Binds a TCP server to `address` (throwing a bind error at once), tells `ready` the
    /// server (its ``Server/localAddress``, its ``Server/shutdown(gracePeriod:)``), and serves
    /// until it is shut down (then returns normally) or the calling task is cancelled (then its
    /// handlers are cancelled and this throws `CancellationError`). See ``Server/run(_:)``.
    public nonisolated(nonsending) func serve(
        on address: SockAddr, options: ServerOptions = ServerOptions(),
        ready: (Server) -> Void = { _ in },
        _ handler: @escaping @Sendable (AsyncSocket, SockAddr) async -> Void
    ) async throws {
        let server = try listen(on: address, options: options)
        ready(server)
        try await server.run(handler)
    }
}
