#if canImport(Glibc)
import Glibc
#endif

/// Text that is not an address of the expected kind.
public struct AddressParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was expected: "IPv4 address", "IPv6 address", "IP address", "socket address".
    public var expected: String
    /// The text that failed to parse.
    public var text: String

    /// The error for `text`, which is not a valid `expected`.
    public init(expected: String, text: String) {
        self.expected = expected
        self.text = text
    }

    /// `invalid <expected> syntax: "<text>"`.
    public var description: String { "invalid \(expected) syntax: \"\(text)\"" }
}

/// An IPv4 address, four bytes in network order; Rust's `Ipv4Addr`.
///
/// Parses and prints the dotted-quad form with the rules of `inet_pton(3)` / `inet_ntop(3)`.
public struct IPv4Address: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The four bytes in network order.
    public var octets: (UInt8, UInt8, UInt8, UInt8)

    /// The address `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { octets = (a, b, c, d) }

    /// The address whose value, read as a host-order integer, is `bits` (the first octet in
    /// the most significant byte): `0x7f000001` is 127.0.0.1.
    public init(bits: UInt32) {
        self.init(UInt8(bits >> 24), UInt8(truncatingIfNeeded: bits >> 16),
                  UInt8(truncatingIfNeeded: bits >> 8), UInt8(truncatingIfNeeded: bits))
    }

    /// Parses the dotted-quad form (`inet_pton(AF_INET, …)`), throwing on anything else.
    public init(_ text: String) throws(AddressParseError) {
        var raw = in_addr()
        guard system_inet_pton(AF_INET, text, &raw) else {
            throw AddressParseError(expected: "IPv4 address", text: text)
        }
        self.init(raw)
    }

    /// `0.0.0.0`.
    public static let unspecified = IPv4Address(0, 0, 0, 0)
    /// `127.0.0.1`.
    public static let localhost = IPv4Address(127, 0, 0, 1)
    /// `255.255.255.255`.
    public static let broadcast = IPv4Address(255, 255, 255, 255)

    /// The address as a host-order integer: `127.0.0.1` is `0x7f000001`.
    public var bits: UInt32 {
        UInt32(octets.0) << 24 | UInt32(octets.1) << 16 | UInt32(octets.2) << 8 | UInt32(octets.3)
    }

    /// `224.0.0.0/4`.
    public var isMulticast: Bool { octets.0 >= 224 && octets.0 <= 239 }
    /// `127.0.0.0/8`.
    public var isLoopback: Bool { octets.0 == 127 }
    /// `0.0.0.0`.
    public var isUnspecified: Bool { bits == 0 }

    /// The dotted-quad form, as `inet_ntop(3)` writes it: `127.0.0.1`.
    public var description: String {
        var raw = inAddr
        return system_inet_ntop(AF_INET, &raw)
    }

    /// The same four bytes.
    public static func == (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.bits == rhs.bits }
    /// Numeric order of the address read as a big-endian 32-bit number.
    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.bits < rhs.bits }
    /// Hashes the four bytes.
    public func hash(into hasher: inout Hasher) { hasher.combine(bits) }

    init(_ raw: in_addr) { self.init(bits: UInt32(bigEndian: raw.s_addr)) }

    var inAddr: in_addr { in_addr(s_addr: bits.bigEndian) }
}

/// An IPv6 address, sixteen bytes in network order; Rust's `Ipv6Addr`.
///
/// Parses and prints the text forms of `inet_pton(3)` / `inet_ntop(3)` (`::1`,
/// `2001:db8::8a2e:370:7334`, `::ffff:192.0.2.1`).
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The sixteen bytes in network order.
    public var octets: [UInt8] {
        withUnsafeBytes(of: storage.__in6_u.__u6_addr8) { Array($0) }
    }

    var storage: in6_addr

    /// An address from its sixteen bytes in network order; `nil` unless there are exactly 16.
    public init?(octets: [UInt8]) {
        guard octets.count == 16 else { return nil }
        storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: octets) }
    }

    /// The address from its eight 16-bit segments: `IPv6Address(0, 0, 0, 0, 0, 0, 0, 1)` is `::1`.
    public init(
        _ a: UInt16, _ b: UInt16, _ c: UInt16, _ d: UInt16,
        _ e: UInt16, _ f: UInt16, _ g: UInt16, _ h: UInt16
    ) {
        storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { raw in
            for (index, segment) in [a, b, c, d, e, f, g, h].enumerated() {
                raw[index * 2] = UInt8(segment >> 8)
                raw[index * 2 + 1] = UInt8(truncatingIfNeeded: segment)
            }
        }
    }

    /// Parses any IPv6 text form (`inet_pton(AF_INET6, …)`), throwing on anything else.
    public init(_ text: String) throws(AddressParseError) {
        var raw = in6_addr()
        guard system_inet_pton(AF_INET6, text, &raw) else {
            throw AddressParseError(expected: "IPv6 address", text: text)
        }
        storage = raw
    }

    init(_ raw: in6_addr) { storage = raw }

    /// `::`.
    public static let unspecified = IPv6Address(0, 0, 0, 0, 0, 0, 0, 0)
    /// `::1`.
    public static let localhost = IPv6Address(0, 0, 0, 0, 0, 0, 0, 1)

    /// The eight 16-bit segments in host order.
    public var segments: [UInt16] {
        let bytes = octets
        return (0..<8).map { UInt16(bytes[$0 * 2]) << 8 | UInt16(bytes[$0 * 2 + 1]) }
    }

    /// `ff00::/8`.
    public var isMulticast: Bool { octets[0] == 0xff }
    /// `::1`.
    public var isLoopback: Bool { self == .localhost }
    /// `::`.
    public var isUnspecified: Bool { self == .unspecified }

    /// The IPv4 address of an IPv4-mapped address (`::ffff:a.b.c.d`), else `nil`.
    public var ipv4Mapped: IPv4Address? {
        let bytes = octets
        guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        else { return nil }
        return IPv4Address(bytes[12], bytes[13], bytes[14], bytes[15])
    }

    /// The RFC 5952 text form, as `inet_ntop(3)` writes it: `::1`, `fe80::1`.
    public var description: String {
        var raw = storage
        return system_inet_ntop(AF_INET6, &raw)
    }

    /// The same sixteen bytes.
    public static func == (lhs: IPv6Address, rhs: IPv6Address) -> Bool { lhs.octets == rhs.octets }
    /// Byte-wise (network order) comparison of the sixteen bytes.
    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        lhs.octets.lexicographicallyPrecedes(rhs.octets)
    }
    /// Hashes the sixteen bytes.
    public func hash(into hasher: inout Hasher) { hasher.combine(octets) }
}

extension IPv4Address {
    /// The IPv4-mapped IPv6 address `::ffff:a.b.c.d`.
    public var ipv6Mapped: IPv6Address {
        IPv6Address(octets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                             octets.0, octets.1, octets.2, octets.3])!
    }
}

/// An IPv4 or IPv6 address; Rust's `IpAddr`.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address (`AF_INET`).
    case v4(IPv4Address)
    /// An IPv6 address (`AF_INET6`).
    case v6(IPv6Address)

    /// Parses either text form: IPv4 first, then IPv6.
    public init(_ text: String) throws(AddressParseError) {
        if let v4 = try? IPv4Address(text) {
            self = .v4(v4)
        } else if let v6 = try? IPv6Address(text) {
            self = .v6(v6)
        } else {
            throw AddressParseError(expected: "IP address", text: text)
        }
    }

    /// The address's text form: ``IPv4Address/description`` or ``IPv6Address/description``.
    public var description: String {
        switch self {
        case .v4(let address): return address.description
        case .v6(let address): return address.description
        }
    }
}

/// An IPv4 address and a port; Rust's `SocketAddrV4`.
public struct SocketAddrV4: Hashable, Sendable, CustomStringConvertible {
    /// The address.
    public var ip: IPv4Address
    /// The port in host order.
    public var port: UInt16

    /// `ip:port`.
    public init(_ ip: IPv4Address, _ port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses `a.b.c.d:port` (the port in decimal digits only).
    public init(_ text: String) throws(AddressParseError) {
        guard let colon = text.lastIndex(of: ":"),
              let port = parsePort(text[text.index(after: colon)...]),
              let ip = try? IPv4Address(String(text[..<colon]))
        else { throw AddressParseError(expected: "socket address", text: text) }
        self.init(ip, port)
    }

    /// `a.b.c.d:port`.
    public var description: String { "\(ip):\(port)" }
}

/// An IPv6 address, a port, flow information and a scope id; Rust's `SocketAddrV6`.
public struct SocketAddrV6: Hashable, Sendable, CustomStringConvertible {
    /// The address.
    public var ip: IPv6Address
    /// The port in host order.
    public var port: UInt16
    /// `sin6_flowinfo`, stored as the kernel has it (socket2 does not swap its bytes).
    public var flowInfo: UInt32
    /// `sin6_scope_id`: the interface index of a link-local address.
    public var scopeId: UInt32

    /// `[ip]:port` with flow information and scope id.
    public init(_ ip: IPv6Address, _ port: UInt16, flowInfo: UInt32 = 0, scopeId: UInt32 = 0) {
        self.ip = ip
        self.port = port
        self.flowInfo = flowInfo
        self.scopeId = scopeId
    }

    /// Parses `[address]:port` or `[address%scope]:port` (a numeric scope or an interface name).
    public init(_ text: String) throws(AddressParseError) {
        let failure = AddressParseError(expected: "socket address", text: text)
        guard text.hasPrefix("["), let close = text.lastIndex(of: "]"),
              text[text.index(after: close)...].hasPrefix(":"),
              let port = parsePort(text[text.index(close, offsetBy: 2)...])
        else { throw failure }
        var host = text[text.index(after: text.startIndex)..<close]
        var scopeId: UInt32 = 0
        if let percent = host.firstIndex(of: "%") {
            let scope = String(host[host.index(after: percent)...])
            if let number = UInt32(scope) {
                scopeId = number
            } else {
                scopeId = system_if_nametoindex(scope)
                guard scopeId != 0 else { throw failure }
            }
            host = host[..<percent]
        }
        guard let ip = try? IPv6Address(String(host)) else { throw failure }
        self.init(ip, port, scopeId: scopeId)
    }

    /// `[v6]:port`, or `[v6%scope]:port` with a non-zero scope id.
    public var description: String {
        scopeId == 0 ? "[\(ip)]:\(port)" : "[\(ip)%\(scopeId)]:\(port)"
    }
}

/// A port in decimal digits only (`UInt16.init` would also take a sign), at most 65535.
private func parsePort(_ text: Substring) -> UInt16? {
    guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
    else { return nil }
    return UInt16(text)
}

/// An IPv4 or IPv6 socket address; Rust's `SocketAddr`.
public enum SocketAddr: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 socket address (`sockaddr_in`).
    case v4(SocketAddrV4)
    /// An IPv6 socket address (`sockaddr_in6`).
    case v6(SocketAddrV6)

    /// `ip:port` for either family.
    public init(_ ip: IPAddress, _ port: UInt16) {
        switch ip {
        case .v4(let address): self = .v4(SocketAddrV4(address, port))
        case .v6(let address): self = .v6(SocketAddrV6(address, port))
        }
    }

    /// Parses `a.b.c.d:port` or `[v6]:port`.
    public init(_ text: String) throws(AddressParseError) {
        if text.hasPrefix("[") {
            self = .v6(try SocketAddrV6(text))
        } else {
            self = .v4(try SocketAddrV4(text))
        }
    }

    /// The address.
    public var ip: IPAddress {
        switch self {
        case .v4(let address): return .v4(address.ip)
        case .v6(let address): return .v6(address.ip)
        }
    }

    /// The port in host order.
    public var port: UInt16 {
        switch self {
        case .v4(let address): return address.port
        case .v6(let address): return address.port
        }
    }

    /// `a.b.c.d:port` or `[v6]:port`.
    public var description: String {
        switch self {
        case .v4(let address): return address.description
        case .v6(let address): return address.description
        }
    }
}
