#if canImport(Glibc)
import Glibc
#endif
import CSocket2
import SystemPackage

// Host and service names to socket addresses: getaddrinfo(3).

/// One address `getaddrinfo(3)` found (`struct addrinfo`), ready for `Socket(domain:type:protocol:)`
/// and `connect`/`bind`.
public struct AddressInfo: Sendable, Hashable, CustomStringConvertible {
    /// The address (`ai_addr`, `ai_addrlen`).
    public var address: SockAddr
    /// Its family (`ai_family`).
    public var domain: Domain
    /// The socket type it is for (`ai_socktype`).
    public var type: SocketType
    /// The protocol it is for (`ai_protocol`).
    public var `protocol`: SocketProtocol
    /// The host's canonical name (`ai_canonname`): only on the first result, and only with
    /// ``AddressInfoFlags/canonicalName``.
    public var canonicalName: String?

    /// A result of name resolution, from its parts (as `getaddrinfo(3)` returns them).
    public init(
        address: SockAddr, domain: Domain, type: SocketType, protocol: SocketProtocol,
        canonicalName: String? = nil
    ) {
        self.address = address
        self.domain = domain
        self.type = type
        self.protocol = `protocol`
        self.canonicalName = canonicalName
    }

    public var description: String {
        "AddressInfo(\(address), \(domain), \(type), \(self.protocol)"
            + (canonicalName.map { ", canonicalName: \($0)" } ?? "") + ")"
    }
}

/// Flags of a `getaddrinfo(3)` query (`ai_flags`, `AI_*`).
public struct AddressInfoFlags: OptionSet, Hashable, Sendable {
    /// The `AI_*` bits.
    public var rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// `AI_PASSIVE`: with no host, the wildcard address (for `bind`) rather than loopback.
    public static let passive = AddressInfoFlags(rawValue: AI_PASSIVE)
    /// `AI_CANONNAME`: report the host's canonical name (needs a host).
    public static let canonicalName = AddressInfoFlags(rawValue: AI_CANONNAME)
    /// `AI_NUMERICHOST`: the host must be a numeric address; no name lookup.
    public static let numericHost = AddressInfoFlags(rawValue: AI_NUMERICHOST)
    /// `AI_NUMERICSERV`: the service must be a port number; no service lookup.
    public static let numericService = AddressInfoFlags(rawValue: AI_NUMERICSERV)
    /// `AI_V4MAPPED`: for an IPv6 query that finds only IPv4 addresses, return them IPv4-mapped.
    public static let v4Mapped = AddressInfoFlags(rawValue: AI_V4MAPPED)
    /// `AI_ALL`: with `v4Mapped`, return IPv6 and IPv4-mapped addresses.
    public static let all = AddressInfoFlags(rawValue: AI_ALL)
    /// `AI_ADDRCONFIG`: only families the host has a (non-loopback) address of.
    public static let addressConfig = AddressInfoFlags(rawValue: AI_ADDRCONFIG)
    /// `AI_IDN` (GNU): convert the host name from the locale's encoding to IDN form.
    public static let idn = AddressInfoFlags(rawValue: socket2_AI_IDN)
    /// `AI_CANONIDN` (GNU): return the canonical name decoded from IDN form.
    public static let canonicalIdn = AddressInfoFlags(rawValue: socket2_AI_CANONIDN)
}

/// The failure of a `getaddrinfo(3)` query: one case per `EAI_*` code; `description` is the
/// text of `gai_strerror(3)`.
public enum AddressInfoError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `EAI_ADDRFAMILY` (GNU): the host has no address of the family asked for.
    case addressFamily
    /// `EAI_AGAIN`: a temporary failure of the name server; try again later.
    case again
    /// `EAI_BADFLAGS`: invalid flags (or `AI_CANONNAME` without a host).
    case badFlags
    /// `EAI_FAIL`: a permanent failure of the name server.
    case fail
    /// `EAI_FAMILY`: the family is not supported.
    case family
    /// `EAI_MEMORY`: out of memory.
    case memory
    /// `EAI_NODATA` (GNU): the host exists but has no address.
    case noData
    /// `EAI_NONAME`: the host or service is not known (or both are missing, or a numeric-only
    /// query was not numeric).
    case noName
    /// `EAI_SERVICE`: the service is not available for the socket type.
    case service
    /// `EAI_SOCKTYPE`: the socket type is not supported.
    case socketType
    /// `EAI_SYSTEM`: a system error, given by `errno`.
    case system(Errno)
    /// `EAI_OVERFLOW`: a buffer was too small.
    case overflow
    /// `EAI_INPROGRESS` (GNU, asynchronous lookups): the request has not finished.
    case inProgress
    /// `EAI_CANCELED` (GNU): the request was canceled.
    case canceled
    /// `EAI_NOTCANCELED` (GNU): the request was not canceled.
    case notCanceled
    /// `EAI_ALLDONE` (GNU): all requests are done.
    case allDone
    /// `EAI_INTR` (GNU): interrupted by a signal.
    case interrupted
    /// `EAI_IDN_ENCODE` (GNU): the name could not be converted to IDN form.
    case idnEncode
    /// A code this type does not know.
    case unknown(CInt)

    /// Every code but `EAI_SYSTEM` and its case, in one table for both directions.
    private static let cases: [(code: CInt, error: AddressInfoError)] = [
        (socket2_EAI_ADDRFAMILY, .addressFamily), (EAI_AGAIN, .again), (EAI_BADFLAGS, .badFlags),
        (EAI_FAIL, .fail), (EAI_FAMILY, .family), (EAI_MEMORY, .memory),
        (socket2_EAI_NODATA, .noData), (EAI_NONAME, .noName), (EAI_SERVICE, .service),
        (EAI_SOCKTYPE, .socketType), (EAI_OVERFLOW, .overflow),
        (socket2_EAI_INPROGRESS, .inProgress), (socket2_EAI_CANCELED, .canceled),
        (socket2_EAI_NOTCANCELED, .notCanceled), (socket2_EAI_ALLDONE, .allDone),
        (socket2_EAI_INTR, .interrupted), (socket2_EAI_IDN_ENCODE, .idnEncode),
    ]

    /// The error for a non-zero result of `getaddrinfo(3)`; `errno` is used for `EAI_SYSTEM`.
    public init(code: CInt, errno: Errno) {
        if code == EAI_SYSTEM {
            self = .system(errno)
        } else {
            self = Self.cases.first { $0.code == code }?.error ?? .unknown(code)
        }
    }

    /// The `EAI_*` code.
    public var code: CInt {
        switch self {
        case .system: return EAI_SYSTEM
        case .unknown(let code): return code
        default: return Self.cases.first { $0.error == self }!.code
        }
    }

    /// `gai_strerror(3)`'s text; for `EAI_SYSTEM`, followed by the `errno`'s.
    public var description: String {
        let text = system_gai_strerror(code)
        if case .system(let errno) = self { return "\(text): \(errno)" }
        return text
    }
}

extension SockAddr {
    /// Resolves a host and a service to addresses: `getaddrinfo(3)` (then `freeaddrinfo(3)`).
    ///
    /// - Parameters:
    ///   - host: a name (`"localhost"`) or a numeric address (`"127.0.0.1"`, `"::1"`); `nil` for
    ///     the loopback address, or the wildcard with ``AddressInfoFlags/passive``.
    ///   - service: a service name (`"http"`, from `/etc/services`) or a port number (`"80"`);
    ///     `nil` for port 0.
    ///   - family: `nil` for any (`AF_UNSPEC`).
    ///   - type: `nil` for any; results then repeat for each type.
    ///   - protocol: `nil` for any.
    ///   - flags: `AI_*` flags.
    /// - Returns: the addresses in the resolver's order of preference (possibly empty).
    /// - Throws: the ``AddressInfoError`` of the code `getaddrinfo` returned.
    public static func resolve(
        host: String?, service: String? = nil, family: Domain? = nil, type: SocketType? = nil,
        protocol: SocketProtocol? = nil, flags: AddressInfoFlags = []
    ) throws(AddressInfoError) -> [AddressInfo] {
        var hints = addrinfo()
        hints.ai_family = family?.rawValue ?? AF_UNSPEC
        hints.ai_socktype = type?.rawValue ?? 0
        hints.ai_protocol = `protocol`?.rawValue ?? 0
        hints.ai_flags = flags.rawValue
        let (code, list, error) = system_getaddrinfo(host, service, hints)
        defer { if let list { system_freeaddrinfo(list) } }
        guard code == 0 else { throw AddressInfoError(code: code, errno: Errno(rawValue: error)) }
        var results: [AddressInfo] = []
        var node = list
        while let entry = node?.pointee {
            node = entry.ai_next
            guard let address = entry.ai_addr,
                  entry.ai_addrlen <= socklen_t(MemoryLayout<sockaddr_storage>.size)
            else { continue }
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { destination in
                destination.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(entry.ai_addrlen)))
            }
            results.append(AddressInfo(
                address: SockAddr(storage: SockAddrStorage(raw: storage), length: entry.ai_addrlen),
                domain: Domain(entry.ai_family), type: SocketType(entry.ai_socktype),
                protocol: SocketProtocol(entry.ai_protocol),
                canonicalName: entry.ai_canonname.map { String(cString: $0) }))
        }
        return results
    }
}
