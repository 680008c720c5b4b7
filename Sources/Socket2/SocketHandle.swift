#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Anything that names an open socket descriptor: ``Socket`` (which owns it), ``SockRef``
/// (which borrows it) and the async layer's socket.
///
/// Every call and every option of this module is written once, in extensions of this protocol,
/// and so serves all of them alike.
public protocol SocketHandle: ~Copyable {
    /// The descriptor. Reading it does not transfer ownership.
    var rawDescriptor: CInt { get }
}

// MARK: - Option helpers shared by every option of every level

extension SocketHandle where Self: ~Copyable {
    /// `getsockopt(2)` of a fixed-size value.
    @inline(__always)
    func getOption<T: BitwiseCopyable>(
        _ level: CInt, _ name: CInt, as type: T.Type = T.self
    ) throws(Errno) -> T {
        try getOptionValue(rawDescriptor, level, name, as: type)
    }

    /// `setsockopt(2)` of a fixed-size value.
    @inline(__always)
    func setOption<T: BitwiseCopyable>(_ level: CInt, _ name: CInt, _ value: T) throws(Errno) {
        try setOptionValue(rawDescriptor, level, name, value)
    }

    /// A boolean option, exchanged as a C `int` (0 or 1); any non-zero value reads as `true`.
    @inline(__always)
    func getBoolOption(_ level: CInt, _ name: CInt) throws(Errno) -> Bool {
        try getOption(level, name, as: CInt.self) != 0
    }

    @inline(__always)
    func setBoolOption(_ level: CInt, _ name: CInt, _ value: Bool) throws(Errno) {
        try setOption(level, name, CInt(value ? 1 : 0))
    }

    /// An unsigned option exchanged as a C `int`.
    @inline(__always)
    func getUInt32Option(_ level: CInt, _ name: CInt) throws(Errno) -> UInt32 {
        UInt32(bitPattern: try getOption(level, name, as: CInt.self))
    }

    /// An unsigned option exchanged as a C `int`; values above `Int32.max` are refused with
    /// `Errno.invalidArgument` rather than wrapped into negative numbers.
    @inline(__always)
    func setUInt32Option(_ level: CInt, _ name: CInt, _ value: UInt32) throws(Errno) {
        guard let int = CInt(exactly: value) else { throw .invalidArgument }
        try setOption(level, name, int)
    }

    /// A variable-length option read into a buffer of `capacity` bytes; returns the bytes the
    /// kernel reported.
    func getOptionBytes(_ level: CInt, _ name: CInt, capacity: Int) throws(Errno) -> [UInt8] {
        try getOptionByteArray(rawDescriptor, level, name, capacity: capacity)
    }

    /// A variable-length option written from `bytes` (exactly their length).
    func setOptionBytes(_ level: CInt, _ name: CInt, _ bytes: [UInt8]) throws(Errno) {
        try setOptionByteArray(rawDescriptor, level, name, bytes)
    }

    /// An option whose value is a socket address (`SO_ORIGINAL_DST`).
    func getOptionAddress(_ level: CInt, _ name: CInt) throws(Errno) -> SockAddr {
        let fd = rawDescriptor
        return try SockAddr.tryInit { (address, length) throws(Errno) in
            try system_getsockopt(fd, level, name, address, length)
        }.1
    }
}
