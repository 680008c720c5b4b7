// Shared by the Options*Tests files: the kinds of socket an option applies to, loopback
// connections, and the table entries that the round-trip tests run.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Testing

/// A kind of socket an option is tried on.
enum SocketKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tcp4, tcp6, udp4, udp6, unix, unixDgram

    static let tcp: [SocketKind] = [.tcp4, .tcp6]
    static let ipv4: [SocketKind] = [.tcp4, .udp4]
    static let ipv6: [SocketKind] = [.tcp6, .udp6]
    static let inet: [SocketKind] = [.tcp4, .tcp6, .udp4, .udp6]
    static let all: [SocketKind] = allCases

    var domain: Domain {
        switch self {
        case .tcp4, .udp4: return .ipv4
        case .tcp6, .udp6: return .ipv6
        case .unix, .unixDgram: return .unix
        }
    }

    var type: SocketType {
        switch self {
        case .tcp4, .tcp6, .unix: return .stream
        case .udp4, .udp6, .unixDgram: return .dgram
        }
    }

    func make() throws -> Socket {
        try Socket(domain: domain, type: type)
    }

    var testDescription: String { rawValue }
}

/// The loopback address of an internet domain, port 0 unless given.
func loopback(_ domain: Domain, port: UInt16 = 0) -> SockAddr {
    domain == .ipv6
        ? SockAddr(SocketAddrV6(.localhost, port)) : SockAddr(SocketAddrV4(.localhost, port))
}

/// The index of the loopback interface.
let loopbackIndex = if_nametoindex("lo")

/// A connected TCP pair on loopback: `first` is the client, `second` the accepted end.
func tcpConnection(_ domain: Domain) throws -> SocketPair {
    let listener = try Socket(domain: domain, type: .stream)
    try listener.bind(loopback(domain))
    try listener.listen(1)
    let client = try Socket(domain: domain, type: .stream)
    try client.connect(listener.localAddr())
    let accepted = try listener.accept()
    return SocketPair(first: client, second: accepted.socket)
}

/// A UDP socket bound to loopback, port chosen by the kernel.
func boundUDP(_ domain: Domain) throws -> Socket {
    let socket = try Socket(domain: domain, type: .dgram)
    try socket.bind(loopback(domain))
    return socket
}

/// Waits, at most five seconds, for `socket` to become readable; fails the test if it does not.
func waitReadable(_ socket: SockRef, sourceLocation: SourceLocation = #_sourceLocation) throws {
    var entry = pollfd(fd: socket.rawDescriptor, events: Int16(POLLIN), revents: 0)
    let ready = poll(&entry, 1, 5_000)
    try #require(ready == 1, "socket did not become readable", sourceLocation: sourceLocation)
}

/// Waits, at most five seconds, for `socket` to become writable.
func waitWritable(_ socket: SockRef, sourceLocation: SourceLocation = #_sourceLocation) throws {
    var entry = pollfd(fd: socket.rawDescriptor, events: Int16(POLLOUT), revents: 0)
    let ready = poll(&entry, 1, 5_000)
    try #require(ready == 1, "socket did not become writable", sourceLocation: sourceLocation)
}

/// The error `body` throws, `nil` when it throws none.
func thrownError<T>(_ body: () throws -> T) -> Errno? {
    do {
        _ = try body()
        return nil
    } catch let error as Errno {
        return error
    } catch {
        Issue.record("not an Errno: \(error)")
        return nil
    }
}

// MARK: - Table entries

/// One option checked on every kind of socket it applies to.
struct OptionCase: Sendable, CustomTestStringConvertible {
    let name: String
    let kinds: [SocketKind]
    let check: @Sendable (SockRef, SocketKind) throws -> Void

    var testDescription: String { name }

    /// Sets each of `values`, reads it back and compares with `expected(value)`.
    ///
    /// A `privileged` option may be refused with `EPERM` when the process lacks the capability,
    /// and any option with `orRefused` (what some kernel versions answer); that is accepted (and
    /// only that), and the option is then checked no further.
    static func roundTrip<Value: Equatable & Sendable>(
        _ name: String, on kinds: [SocketKind], privileged: Bool = false, orRefused: Errno? = nil,
        get: @escaping @Sendable (SockRef) throws -> Value,
        set: @escaping @Sendable (SockRef, Value) throws -> Void,
        values: [Value], expected: @escaping @Sendable (Value) -> Value = { $0 }
    ) -> OptionCase {
        OptionCase(name: name, kinds: kinds) { socket, kind throws in
            for value in values {
                if let error = thrownError({ try set(socket, value) }) {
                    let accepted = (privileged && error == .notPermitted) || error == orRefused
                    #expect(accepted, "\(name) = \(value) on \(kind): \(error)")
                    return
                }
                #expect(try get(socket) == expected(value), "\(name) = \(value) on \(kind)")
            }
        }
    }

    /// A boolean option: set true, false, true and read each back.
    static func bool(
        _ name: String, on kinds: [SocketKind], privileged: Bool = false, orRefused: Errno? = nil,
        get: @escaping @Sendable (SockRef) throws -> Bool,
        set: @escaping @Sendable (SockRef, Bool) throws -> Void
    ) -> OptionCase {
        roundTrip(name, on: kinds, privileged: privileged, orRefused: orRefused,
                  get: get, set: set, values: [true, false, true])
    }

    /// A call that must fail with `error` on each of `kinds`.
    static func refused(
        _ name: String, on kinds: [SocketKind], with error: Errno,
        _ call: @escaping @Sendable (SockRef) throws -> Void
    ) -> OptionCase {
        OptionCase(name: name, kinds: kinds) { socket, kind throws in
            #expect(thrownError({ try call(socket) }) == error, "\(name) on \(kind)")
        }
    }

    /// Runs the check on a new socket of each kind.
    func run() throws {
        for kind in kinds {
            let socket = try kind.make()
            try check(SockRef(socket), kind)
        }
    }
}
