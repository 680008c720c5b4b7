#if canImport(Glibc)
import Glibc
#endif
import SystemPackage
import CSocket2  // sockaddr_vm (<linux/vm_sockets.h>)

/// Storage large enough for any socket address (`struct sockaddr_storage`).
public struct SockAddrStorage: @unchecked Sendable, CustomStringConvertible {
    /// The C storage.
    public var raw: sockaddr_storage

    /// All-zero storage.
    public static func zeroed() -> SockAddrStorage { SockAddrStorage(raw: sockaddr_storage()) }

    /// The size of the storage in bytes: `sizeof(struct sockaddr_storage)`.
    public func sizeOf() -> socklen_t { socklen_t(MemoryLayout<sockaddr_storage>.size) }

    /// Gives `body` the storage as a `T` (`sockaddr_in`, `sockaddr_un`, …).
    ///
    /// `T` must be no larger than the storage; the caller vouches that the bytes are a valid `T`.
    public mutating func viewAs<T, R>(
        _ type: T.Type, _ body: (inout T) throws -> R
    ) rethrows -> R {
        precondition(MemoryLayout<T>.size <= MemoryLayout<sockaddr_storage>.size)
        return try withUnsafeMutableBytes(of: &raw) { bytes in
            try body(&bytes.baseAddress!.assumingMemoryBound(to: T.self).pointee)
        }
    }

    /// The family only (`ss_family`, by its `AF_*` name), as socket2's `Debug`:
    /// `SockAddrStorage(ss_family: AF_INET)`.
    public var description: String {
        "SockAddrStorage(ss_family: \(Domain(CInt(raw.ss_family))))"
    }
}

/// The length of a socket address (`socklen_t`).
public typealias socklen_t = Glibc.socklen_t
/// An address family number (`sa_family_t`).
public typealias sa_family_t = Glibc.sa_family_t

/// A socket address of any family: IPv4, IPv6, Unix (pathname, abstract or unnamed), vsock, …
/// — `struct sockaddr_storage` and its length.
///
/// Equality and hashing compare the bytes up to ``len()``.
public struct SockAddr: @unchecked Sendable, Hashable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: socklen_t

    /// An address from raw storage and its length.
    ///
    /// - Precondition: `length` is at most the size of the storage.
    public init(storage: SockAddrStorage, length: socklen_t) {
        precondition(Int(length) <= MemoryLayout<sockaddr_storage>.size, "length exceeds storage")
        self.storage = storage.raw
        self.length = length
    }

    /// Zeroes storage and its length (the size of the storage), calls `body` with pointers to
    /// both (as `accept(2)`, `getsockname(2)` and `recvfrom(2)` expect them), and returns its
    /// result with the address the call wrote.
    public static func tryInit<T, E: Error>(
        _ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) throws(E) -> T
    ) throws(E) -> (T, SockAddr) {
        var address = SockAddr(storage: .zeroed(), length: socklen_t(MemoryLayout<sockaddr_storage>.size))
        let result = try address.withMutableSockaddr(body)
        return (result, address)
    }

    /// Runs `body` with the address as `struct sockaddr` and its length.
    public func withSockaddrPointer<T, E: Error>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> T
    ) throws(E) -> T {
        var copy = storage
        let length = self.length
        return try withUnsafeMutableBytes(of: &copy) { (raw) throws(E) -> T in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    mutating func withMutableSockaddr<T, E: Error>(
        _ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) throws(E) -> T
    ) throws(E) -> T {
        var length = self.length
        defer { self.length = min(length, socklen_t(MemoryLayout<sockaddr_storage>.size)) }
        return try withUnsafeMutableBytes(of: &storage) { (raw) throws(E) -> T in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
    }

    /// Sets the length, after a call that filled the storage by other means.
    ///
    /// - Precondition: `length` is at most the size of the storage.
    public mutating func setLength(_ length: socklen_t) {
        precondition(Int(length) <= MemoryLayout<sockaddr_storage>.size, "length exceeds storage")
        self.length = length
    }

    /// The address family (`ss_family`).
    public func family() -> sa_family_t { storage.ss_family }

    /// The family as a ``Domain``.
    public func domain() -> Domain { Domain(CInt(storage.ss_family)) }

    /// The length of the address in bytes.
    public func len() -> socklen_t { length }

    /// A copy of the storage.
    public func asStorage() -> SockAddrStorage { SockAddrStorage(raw: storage) }

    /// socket2's `as_ptr`: the storage as a pointer, for a C call that takes a
    /// `const struct sockaddr *` with ``len()`` (`bind(2)`, `connect(2)`, `sendto(2)`).
    ///
    /// A Swift value has no stable address, so the pointer is valid only inside `body`.
    public func asPtr<T, E: Error>(
        _ body: (UnsafePointer<SockAddrStorage>) throws(E) -> T
    ) throws(E) -> T {
        var copy = SockAddrStorage(raw: storage)
        return try withUnsafePointer(to: &copy) { (pointer) throws(E) -> T in try body(pointer) }
    }

    /// `true` for an `AF_INET` address.
    public func isIpv4() -> Bool { CInt(storage.ss_family) == AF_INET }
    /// `true` for an `AF_INET6` address.
    public func isIpv6() -> Bool { CInt(storage.ss_family) == AF_INET6 }
    /// `true` for an `AF_UNIX` address.
    public func isUnix() -> Bool { CInt(storage.ss_family) == AF_UNIX }

    /// The bytes of the address up to its length: what equality and hashing compare.
    private var significantBytes: [UInt8] {
        withUnsafeBytes(of: storage) { Array($0.prefix(Int(length))) }
    }

    /// The same length and the same bytes up to it (family, port, address, padding), as
    /// socket2's `PartialEq`: two IPv6 addresses differing only in scope id are different.
    public static func == (lhs: SockAddr, rhs: SockAddr) -> Bool {
        lhs.length == rhs.length && lhs.significantBytes == rhs.significantBytes
    }

    /// Hashes the bytes up to ``len()``, consistently with `==`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(significantBytes)
    }

    /// A readable form by family: `127.0.0.1:80`, `[::1]:80`, `unix:/path`, `unix:@name`
    /// (abstract), `unix:(unnamed)`, `vsock:cid:port`; else the family and the length.
    public var description: String {
        if let socket = asSocket() { return socket.description }
        if let path = asPathname() { return "unix:\(path)" }
        if let name = asAbstractNamespace() {
            return "unix:@" + String(decoding: name, as: UTF8.self)
        }
        if length == 0 { return "(unnamed)" }
        if isUnnamed() { return "unix:(unnamed)" }
        if let (cid, port) = asVsockAddress() { return "vsock:\(cid):\(port)" }
        return "SockAddr(family: \(domain()), len: \(length))"
    }
}

// MARK: - Internet addresses

extension SockAddr {
    /// An IPv4 or IPv6 address (`sockaddr_in` of 16 bytes, `sockaddr_in6` of 28).
    public init(_ address: SocketAddr) {
        switch address {
        case .v4(let v4): self.init(v4)
        case .v6(let v6): self.init(v6)
        }
    }

    /// An IPv4 address: `sockaddr_in`, port in network order, `sin_zero` zeroed.
    public init(_ address: SocketAddrV4) {
        var raw = sockaddr_in()
        raw.sin_family = sa_family_t(AF_INET)
        raw.sin_port = address.port.bigEndian
        raw.sin_addr = address.ip.inAddr
        self.init(copying: raw)
    }

    /// An IPv6 address: `sockaddr_in6`, port in network order, flow info and scope id as given.
    public init(_ address: SocketAddrV6) {
        var raw = sockaddr_in6()
        raw.sin6_family = sa_family_t(AF_INET6)
        raw.sin6_port = address.port.bigEndian
        raw.sin6_flowinfo = address.flowInfo
        raw.sin6_addr = address.ip.storage
        raw.sin6_scope_id = address.scopeId
        self.init(copying: raw)
    }

    /// Copies a C address structure into storage; the length is the structure's size.
    init<T>(copying raw: T, length: Int = MemoryLayout<T>.size) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { destination in
            withUnsafeBytes(of: raw) { destination.copyMemory(from: $0) }
        }
        self.storage = storage
        self.length = socklen_t(length)
    }

    /// Reads the storage as a `T` (which must fit).
    func read<T>(as _: T.Type) -> T {
        withUnsafeBytes(of: storage) { $0.loadUnaligned(as: T.self) }
    }

    /// The internet address, or `nil` for other families.
    public func asSocket() -> SocketAddr? {
        if let v4 = asSocketIpv4() { return .v4(v4) }
        if let v6 = asSocketIpv6() { return .v6(v6) }
        return nil
    }

    /// The IPv4 address, or `nil` for other families.
    public func asSocketIpv4() -> SocketAddrV4? {
        guard isIpv4() else { return nil }
        let raw = read(as: sockaddr_in.self)
        return SocketAddrV4(IPv4Address(raw.sin_addr), UInt16(bigEndian: raw.sin_port))
    }

    /// The IPv6 address, or `nil` for other families.
    public func asSocketIpv6() -> SocketAddrV6? {
        guard isIpv6() else { return nil }
        let raw = read(as: sockaddr_in6.self)
        return SocketAddrV6(IPv6Address(raw.sin6_addr), UInt16(bigEndian: raw.sin6_port),
                            flowInfo: raw.sin6_flowinfo, scopeId: raw.sin6_scope_id)
    }
}

// MARK: - Unix addresses

extension SockAddr {
    /// The offset of `sun_path` in `sockaddr_un`: the length of an unnamed address.
    static let sunPathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
    /// The capacity of `sun_path`.
    static let sunPathCapacity = MemoryLayout<sockaddr_un>.size - sunPathOffset

    /// A Unix address (`sockaddr_un`) with socket2's length rules: a pathname is stored with its
    /// terminating NUL and must be shorter than 108 bytes; a name starting with a NUL byte is an
    /// abstract address of up to 108 bytes, stored without a terminator; an empty path is the
    /// unnamed address.
    ///
    /// - Throws: `Errno.fileNameTooLong` when the path does not fit; `Errno.invalidArgument` when a
    ///   pathname contains a NUL byte.
    public static func unix(_ path: String) throws(Errno) -> SockAddr {
        try unix(bytes: Array(path.utf8))
    }

    /// A Unix address from the raw bytes of a path or (with a leading NUL) an abstract name.
    public static func unix(bytes: [UInt8]) throws(Errno) -> SockAddr {
        let isAbstract = bytes.first == 0
        if isAbstract {
            guard bytes.count <= sunPathCapacity else { throw .fileNameTooLong }
        } else {
            guard bytes.count < sunPathCapacity else { throw .fileNameTooLong }
            guard !bytes.contains(0) else { throw .invalidArgument }
        }
        var raw = sockaddr_un()
        raw.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &raw.sun_path) { $0.copyBytes(from: bytes) }
        let terminator = (isAbstract || bytes.isEmpty) ? 0 : 1
        return SockAddr(copying: raw, length: sunPathOffset + bytes.count + terminator)
    }

    /// The abstract Unix address `name` (Linux only): no file, the name lives in the kernel.
    public static func unixAbstract(_ name: [UInt8]) throws(Errno) -> SockAddr {
        try unix(bytes: [0] + name)
    }

    /// The bytes of `sun_path` up to the length, or `nil` for other families.
    private func unixPathBytes() -> [UInt8]? {
        guard isUnix(), Int(length) >= Self.sunPathOffset else { return nil }
        let raw = read(as: sockaddr_un.self)
        let count = min(Int(length) - Self.sunPathOffset, Self.sunPathCapacity)
        return withUnsafeBytes(of: raw.sun_path) { Array($0.prefix(count)) }
    }

    /// `true` for an address that names nothing: the unnamed Unix address, as `getsockname(2)`
    /// reports an unbound socket (or one from `socketpair(2)`, `AF_UNIX` of length
    /// `sizeof(sa_family_t)`), and the empty address (length 0) that every receive reports for a
    /// sender without a name.
    ///
    /// A receive from an unbound Unix socket gets no address from the kernel, not even the
    /// family, so every receive form reports that sender the same way, as the empty address:
    /// `recvFrom`, `recvmsg` (``MsgHdrMut/address``), `recvWithControl`
    /// (``ReceivedMessage/address``), `recvmmsg` (``DatagramBatch/address(at:)``) and their async
    /// forms. So does a receive on a connected stream, which names no sender per message.
    /// (socket2's `is_unnamed` is `false` for the empty address.)
    public func isUnnamed() -> Bool {
        length == 0 || (isUnix() && Int(length) == Self.sunPathOffset)
    }

    /// The path of a pathname Unix address (without the terminating NUL), else `nil`.
    public func asPathname() -> String? {
        guard let path = unixPathBytes(), let first = path.first, first != 0 else { return nil }
        let end = path.firstIndex(of: 0) ?? path.endIndex
        return String(decoding: path[..<end], as: UTF8.self)
    }

    /// The name of an abstract Unix address (the bytes after the leading NUL), else `nil`.
    public func asAbstractNamespace() -> [UInt8]? {
        guard let path = unixPathBytes(), path.first == 0 else { return nil }
        return Array(path.dropFirst())
    }

    /// The pathname of a Unix address, as Rust's `as_unix` (only for pathname addresses).
    public func asUnix() -> String? { asPathname() }
}

// MARK: - vsock addresses

extension SockAddr {
    /// A vsock address (`sockaddr_vm`) of a context id and a port.
    public static func vsock(cid: UInt32, port: UInt32) -> SockAddr {
        var raw = sockaddr_vm()
        raw.svm_family = sa_family_t(AF_VSOCK)
        raw.svm_cid = cid
        raw.svm_port = port
        return SockAddr(copying: raw)
    }

    /// The context id and port of a vsock address, else `nil`.
    public func asVsockAddress() -> (cid: UInt32, port: UInt32)? {
        guard CInt(storage.ss_family) == AF_VSOCK else { return nil }
        let raw = read(as: sockaddr_vm.self)
        return (raw.svm_cid, raw.svm_port)
    }
}
