#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// Host names: getaddrinfo(3) on helper threads, and connecting by name with Happy Eyeballs
// (RFC 8305).

// MARK: - Resolution off the reactor

extension AsyncSocket {
    /// Resolves a host and a service to addresses without blocking any reactor or the
    /// caller's thread: `getaddrinfo(3)` runs on a helper thread (at most four of them in the
    /// process, started when needed), and the call waits for it.
    ///
    /// The parameters and the result are those of the core's `SockAddr.resolve(host:service:family:type:protocol:flags:)`.
    /// A cancelled task returns at once with `CancellationError`, even while `getaddrinfo` is
    /// still running (its result is then dropped when it comes).
    ///
    /// - Throws: `AddressInfoError` from `getaddrinfo`; `CancellationError`.
    public static func resolve(
        host: String?, service: String? = nil, family: Domain? = nil, type: SocketType? = nil,
        protocol: SocketProtocol? = nil, flags: AddressInfoFlags = []
    ) async throws -> [AddressInfo] {
        try await BlockingCalls.shared.run {
            try SockAddr.resolve(host: host, service: service, family: family, type: type,
                                 protocol: `protocol`, flags: flags)
        }
    }
}

/// Blocking calls (`getaddrinfo(3)`) on a few helper threads, awaited cancellably.
final class BlockingCalls: Sendable {
    static let shared = BlockingCalls(maxThreads: 4)

    private struct State {
        var queue: [@Sendable () -> Void] = []
        var threads = 0
        var idle = 0
    }

    private let maxThreads: Int
    private let state = Locked(State())
    /// Counts the calls in `queue`.
    private let queued = Latch()

    init(maxThreads: Int) { self.maxThreads = maxThreads }

    /// Runs `body` on a helper thread and returns its result; a cancellation returns at once.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let waiter = Waiter<T>()
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                guard waiter.install(continuation) else { return }
                submit {
                    // A caller that left needs no result: skip a call that has not started.
                    guard waiter.isWaiting else { return }
                    waiter.resume(with: Result { try body() })
                }
            }
        } onCancel: {
            waiter.resume(with: .failure(CancellationError()))
        }
    }

    private func submit(_ call: @escaping @Sendable () -> Void) {
        let startThread = state.withLock { state in
            state.queue.append(call)
            guard state.idle == 0, state.threads < maxThreads else { return false }
            state.threads += 1
            return true
        }
        queued.post()
        if startThread {
            pthread_detach(spawnThread(name: "socket2-resolve") { [self] in work() })
        }
    }

    /// A helper thread: runs queued calls, forever.
    private func work() {
        while true {
            state.withLock { $0.idle += 1 }
            queued.wait()
            let call = state.withLock { state in
                state.idle -= 1
                return state.queue.removeFirst()
            }
            call()
        }
    }

    /// The continuation of one call, resumed once: by the result or by a cancellation,
    /// whichever comes first. A cancellation before the continuation is installed is kept.
    private final class Waiter<T: Sendable>: Sendable {
        private enum Phase {
            case starting, waiting(UnsafeContinuation<T, any Error>), done
        }
        private let phase = Locked(Phase.starting)

        /// Installs `continuation`; false (after resuming it cancelled) when the task was
        /// cancelled before.
        func install(_ continuation: UnsafeContinuation<T, any Error>) -> Bool {
            let installed = phase.withLock { phase in
                guard case .starting = phase else { return false }
                phase = .waiting(continuation)
                return true
            }
            if !installed { continuation.resume(throwing: CancellationError()) }
            return installed
        }

        var isWaiting: Bool {
            phase.withLock { phase in
                if case .waiting = phase { return true }
                return false
            }
        }

        func resume(with result: Result<T, any Error>) {
            let continuation = phase.withLock { phase -> UnsafeContinuation<T, any Error>? in
                switch phase {
                case .starting:
                    phase = .done
                    return nil
                case .waiting(let continuation):
                    phase = .done
                    return continuation
                case .done:
                    return nil
                }
            }
            continuation?.resume(with: result)
        }
    }
}

// MARK: - Resolvers

/// How ``AsyncSocket/connect(host:port:reactor:timeout:attemptDelay:resolver:)`` finds the
/// addresses of a host: ``system`` (`getaddrinfo(3)`), or any function (tests, a cache, a
/// DNS client of your own).
public struct NameResolver: Sendable {
    private let body: @Sendable (String, UInt16) async throws -> [SockAddr]

    /// A resolver that calls `resolve` with the host and the port; it returns the addresses
    /// in order of preference, with the port set.
    public init(_ resolve: @escaping @Sendable (_ host: String, _ port: UInt16) async throws -> [SockAddr]) {
        body = resolve
    }

    /// `getaddrinfo(3)` for both families (`AF_UNSPEC`: the C library asks for IPv6 and IPv4
    /// addresses together) and stream sockets, run off the reactor by
    /// ``AsyncSocket/resolve(host:service:family:type:protocol:flags:)``.
    public static let system = NameResolver { host, port in
        try await AsyncSocket.resolve(host: host, service: String(port), type: .stream, flags: [.numericService])
            .map(\.address)
    }

    /// A resolver that returns `addresses` for every host (tests, fixed configurations).
    public static func fixed(_ addresses: [SockAddr]) -> NameResolver {
        NameResolver { _, _ in addresses }
    }

    /// The addresses of `host`, with `port`.
    public func resolve(host: String, port: UInt16) async throws -> [SockAddr] {
        try await body(host, port)
    }
}

// MARK: - Happy Eyeballs

/// Why ``AsyncSocket/connect(host:port:reactor:timeout:attemptDelay:resolver:)`` found no
/// connection, with every address it tried and what happened to each.
public struct ConnectError: Error, CustomStringConvertible {
    /// What went wrong as a whole.
    public enum Reason: Sendable {
        /// The resolver failed (for the system resolver: an `AddressInfoError`).
        case resolutionFailed(any Error)
        /// The resolver found no address.
        case noAddresses
        /// Every address was tried and failed: ``ConnectError/attempts`` says why.
        case allAttemptsFailed
        /// The time-out (or the task's deadline, ``AsyncSocket/withTimeout(_:_:)``) passed
        /// before a connection was made.
        case deadlinePassed
    }

    /// One connection attempt and its failure.
    public struct Attempt: Sendable, CustomStringConvertible {
        /// The address tried.
        public var address: SockAddr
        /// Why it failed: an `Errno` from `connect(2)` (`ECONNREFUSED`, …); `Errno.timedOut`
        /// for an attempt still under way when the deadline passed.
        public var error: any Error
        /// Whether the attempt was still under way when the deadline passed.
        public var cutOffByDeadline: Bool

        public var description: String {
            "\(address): " + (cutOffByDeadline ? "still connecting when the deadline passed" : "\(error)")
        }
    }

    /// The host asked for.
    public var host: String
    /// The port asked for.
    public var port: UInt16
    /// What went wrong.
    public var reason: Reason
    /// The addresses tried, in the order the attempts started, and why each failed.
    public var attempts: [Attempt]

    /// "cannot connect to host:port: …", naming each address tried and its error.
    public var description: String {
        let what: String
        switch reason {
        case .resolutionFailed(let error): what = "cannot resolve the name: \(error)"
        case .noAddresses: what = "the name has no address"
        case .allAttemptsFailed: what = "every address failed"
        case .deadlinePassed: what = "the deadline passed"
        }
        let tried = attempts.isEmpty ? "" : " (" + attempts.map(\.description).joined(separator: "; ") + ")"
        return "cannot connect to \(host) port \(port): \(what)\(tried)"
    }
}

extension AsyncSocket {
    /// Connects a TCP socket to `host` with Happy Eyeballs (RFC 8305): resolves the host's IPv6
    /// and IPv4 addresses, orders them alternating between the families starting with IPv6,
    /// starts a connection attempt to the first, and to the next one each time `attemptDelay`
    /// passes without a connection or an attempt fails; the first connection made wins, and
    /// the other attempts are cancelled and their sockets closed.
    ///
    /// `timeout` bounds everything — resolution and all attempts — as does the task's deadline
    /// (``withTimeout(_:_:)``), whichever comes first. Cancelling the task cancels all
    /// of it (the resolution too: the call returns at once).
    ///
    /// ```swift
    /// let connection = try await AsyncSocket.connect(host: "localhost", port: 6379, timeout: .seconds(5))
    /// ```
    ///
    /// - Parameters:
    ///   - host: a name or a numeric address.
    ///   - port: the port.
    ///   - reactor: the reactor of the new socket.
    ///   - timeout: the time-out of the whole call (`nil`: none but the task's deadline and the
    ///     kernel's); at least zero.
    ///   - attemptDelay: how long an attempt runs before the next starts beside it (RFC 8305's
    ///     "Connection Attempt Delay", 250 ms recommended); at least zero.
    ///   - resolver: where the addresses come from (``NameResolver/system``: `getaddrinfo(3)`).
    /// - Returns: the connected socket.
    /// - Throws: ``ConnectError`` (which says what each address did); `CancellationError`;
    ///   `Errno.invalidArgument` for a negative `timeout` or `attemptDelay`.
    public static func connect(
        host: String, port: UInt16, reactor: Reactor = .shared, timeout: Duration? = nil,
        attemptDelay: Duration = .milliseconds(250), resolver: NameResolver = .system
    ) async throws -> AsyncSocket {
        guard attemptDelay >= .zero, (timeout ?? .zero) >= .zero else { throw Errno.invalidArgument }
        var race = ConnectionRace(host: host, port: port, reactor: reactor, attemptDelay: attemptDelay)
        return try await race.run(limit: SocketDeadline.waitLimit(timeout), resolver: resolver)
    }

    /// `addresses` in Happy Eyeballs order (RFC 8305, 4): IPv6 and IPv4 alternating, IPv6
    /// first, each family in the resolver's order; duplicates removed.
    static func interleavedByFamily(_ addresses: [SockAddr]) -> [SockAddr] {
        var seen = Set<SockAddr>()
        let unique = addresses.filter { seen.insert($0).inserted }
        var first = unique.filter { $0.isIpv6() }[...]
        var second = unique.filter { !$0.isIpv6() }[...]
        var result: [SockAddr] = []
        result.reserveCapacity(unique.count)
        while !first.isEmpty || !second.isEmpty {
            if let next = first.popFirst() { result.append(next) }
            if let next = second.popFirst() { result.append(next) }
        }
        return result
    }
}

/// The state of one Happy Eyeballs connect: events from a task group of the resolution, the
/// attempts and their timers.
private struct ConnectionRace {
    enum Event: Sendable {
        case resolved(Result<[SockAddr], any Error>)
        case connected(AsyncSocket)
        case failed(SockAddr, any Error)
        /// The attempt delay after attempt `number` passed.
        case attemptDelayPassed(Int)
        case deadlinePassed
        /// A timer that was cancelled.
        case none
    }

    let host: String
    let port: UInt16
    let reactor: Reactor
    let attemptDelay: Duration
    var addresses: [SockAddr] = []
    var started = 0
    var running = 0
    var failures: [ConnectError.Attempt] = []

    init(host: String, port: UInt16, reactor: Reactor, attemptDelay: Duration) {
        self.host = host
        self.port = port
        self.reactor = reactor
        self.attemptDelay = attemptDelay
    }

    mutating func run(limit: UInt64?, resolver: NameResolver) async throws -> AsyncSocket {
        let (host, port) = (self.host, self.port)
        let outcome = await withTaskGroup(of: Event.self) { group -> Result<AsyncSocket, any Error> in
            group.addTask {
                do { return .resolved(.success(try await resolver.resolve(host: host, port: port))) }
                catch { return .resolved(.failure(error)) }
            }
            if let limit {
                group.addTask { await Self.timer(.nanoseconds(Int64(clamping: limit)), .deadlinePassed) }
            }
            var outcome: Result<AsyncSocket, any Error>?
            while outcome == nil, let event = await group.next() {
                outcome = handle(event, &group)
            }
            // The first connection won (or everything is over): end the rest.
            group.cancelAll()
            while let event = await group.next() {
                switch event {
                case .connected(let loser): try? await loser.close()
                case .failed(let address, let error): recordFailure(address, error, cutOff: true)
                default: break
                }
            }
            return outcome ?? .failure(CancellationError())
        }
        switch outcome {
        case .success(let socket): return socket
        case .failure(let error as ConnectError):
            if Task.isCancelled { throw CancellationError() }
            var error = error
            error.attempts = failures
            throw error
        case .failure(let error): throw error
        }
    }

    /// Handles one event; the call's outcome when it is decided.
    private mutating func handle(_ event: Event, _ group: inout TaskGroup<Event>) -> Result<AsyncSocket, any Error>? {
        switch event {
        case .resolved(.failure(let error)):
            if error is CancellationError { return .failure(error) }
            return .failure(failure(.resolutionFailed(error)))
        case .resolved(.success(let list)):
            addresses = AsyncSocket.interleavedByFamily(list)
            if addresses.isEmpty { return .failure(failure(.noAddresses)) }
            startNextAttempt(&group)
        case .attemptDelayPassed(let number):
            // Only the delay of the latest attempt counts (a failure started the next early).
            if number == started { startNextAttempt(&group) }
        case .failed(let address, let error):
            running -= 1
            recordFailure(address, error, cutOff: false)
            if started < addresses.count {
                startNextAttempt(&group)
            } else if running == 0 {
                return .failure(failure(.allAttemptsFailed))
            }
        case .connected(let socket):
            return .success(socket)
        case .deadlinePassed:
            return .failure(failure(.deadlinePassed))
        case .none:
            break
        }
        return nil
    }

    private mutating func startNextAttempt(_ group: inout TaskGroup<Event>) {
        guard started < addresses.count else { return }
        let address = addresses[started], reactor = self.reactor
        started += 1
        running += 1
        group.addTask { await Self.attempt(address, reactor) }
        if started < addresses.count {
            let number = started, delay = attemptDelay
            group.addTask { await Self.timer(delay, .attemptDelayPassed(number)) }
        }
    }

    private mutating func recordFailure(_ address: SockAddr, _ error: any Error, cutOff: Bool) {
        failures.append(ConnectError.Attempt(
            address: address, error: cutOff ? Errno.timedOut : error, cutOffByDeadline: cutOff))
    }

    private func failure(_ reason: ConnectError.Reason) -> ConnectError {
        ConnectError(host: host, port: port, reason: reason, attempts: [])
    }

    /// One attempt: a socket of the address's family, connected or closed again.
    private static func attempt(_ address: SockAddr, _ reactor: Reactor) async -> Event {
        let socket: AsyncSocket
        do {
            socket = try AsyncSocket(domain: address.domain(), type: .stream, reactor: reactor)
        } catch {
            return .failed(address, error)
        }
        do {
            try await socket.connect(address)
            return .connected(socket)
        } catch {
            try? await socket.close()
            return .failed(address, error)
        }
    }

    /// `event` after `delay`; `.none` when cancelled first.
    private static func timer(_ delay: Duration, _ event: Event) async -> Event {
        do {
            try await Task.sleep(for: delay)
            return event
        } catch {
            return .none
        }
    }
}
