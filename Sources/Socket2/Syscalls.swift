// The only file of the module that calls Glibc's socket functions. Every shim returns the call's
// result or throws the `Errno` it set; none retries on `EINTR` (the caller decides), following
// socket2. Everything else in the module goes through these.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage
import CSocket2

// MARK: - Result checking

/// Turns a `-1` result into the `Errno` the call left in `errno`.
@inline(__always)
@usableFromInline
internal func valueOrErrno<I: FixedWidthInteger>(_ result: I) throws(Errno) -> I {
    if result == -1 { throw Errno(rawValue: errno) }
    return result
}

/// Like `valueOrErrno`, for calls whose result carries no information.
@inline(__always)
@usableFromInline
internal func nothingOrErrno<I: FixedWidthInteger>(_ result: I) throws(Errno) {
    if result == -1 { throw Errno(rawValue: errno) }
}

/// Buffer lengths handed to the kernel are clamped to `SSIZE_MAX`, as socket2 does.
@inline(__always)
@usableFromInline
internal func clampedLength(_ count: Int) -> Int { count }  // Int.max == SSIZE_MAX on Linux.

// MARK: - Creation and life cycle

@usableFromInline
internal func system_socket(_ domain: CInt, _ type: CInt, _ proto: CInt) throws(Errno) -> CInt {
    try valueOrErrno(Glibc.socket(domain, type, proto))
}

internal func system_socketpair(
    _ domain: CInt, _ type: CInt, _ proto: CInt
) throws(Errno) -> (CInt, CInt) {
    var fds: (CInt, CInt) = (-1, -1)
    let result = withUnsafeMutableBytes(of: &fds) { raw in
        Glibc.socketpair(domain, type, proto, raw.baseAddress!.assumingMemoryBound(to: CInt.self))
    }
    try nothingOrErrno(result)
    return fds
}

@usableFromInline
internal func system_close(_ fd: CInt) -> CInt {
    Glibc.close(fd)
}

internal func system_fcntl(_ fd: CInt, _ command: CInt) throws(Errno) -> CInt {
    try valueOrErrno(Glibc.fcntl(fd, command))
}

internal func system_fcntl(_ fd: CInt, _ command: CInt, _ argument: CInt) throws(Errno) -> CInt {
    try valueOrErrno(Glibc.fcntl(fd, command, argument))
}

internal func system_shutdown(_ fd: CInt, _ how: CInt) throws(Errno) {
    try nothingOrErrno(Glibc.shutdown(fd, how))
}

internal func system_ioctl(
    _ fd: CInt, _ request: UInt, _ argument: UnsafeMutableRawPointer
) throws(Errno) -> CInt {
    try valueOrErrno(Glibc.ioctl(fd, request, argument))
}

internal func system_poll(
    _ fds: UnsafeMutablePointer<pollfd>, _ count: Int, _ timeoutMilliseconds: CInt
) throws(Errno) -> CInt {
    try valueOrErrno(Glibc.poll(fds, nfds_t(count), timeoutMilliseconds))
}

// MARK: - Addresses and connections

internal func system_bind(
    _ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t
) throws(Errno) {
    try nothingOrErrno(Glibc.bind(fd, address, length))
}

internal func system_connect(
    _ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t
) throws(Errno) {
    try nothingOrErrno(Glibc.connect(fd, address, length))
}

internal func system_listen(_ fd: CInt, _ backlog: CInt) throws(Errno) {
    try nothingOrErrno(Glibc.listen(fd, backlog))
}

internal func system_accept(
    _ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) throws(Errno) -> CInt {
    try valueOrErrno(Glibc.accept(fd, address, length))
}

internal func system_accept4(
    _ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>?,
    _ length: UnsafeMutablePointer<socklen_t>?, _ flags: CInt
) throws(Errno) -> CInt {
    try valueOrErrno(socket2_accept4(fd, address, length, flags))
}

internal func system_getsockname(
    _ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>
) throws(Errno) {
    try nothingOrErrno(Glibc.getsockname(fd, address, length))
}

internal func system_getpeername(
    _ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>
) throws(Errno) {
    try nothingOrErrno(Glibc.getpeername(fd, address, length))
}

// MARK: - Options

internal func system_getsockopt(
    _ fd: CInt, _ level: CInt, _ name: CInt,
    _ value: UnsafeMutableRawPointer?, _ length: UnsafeMutablePointer<socklen_t>
) throws(Errno) {
    try nothingOrErrno(Glibc.getsockopt(fd, level, name, value, length))
}

internal func system_setsockopt(
    _ fd: CInt, _ level: CInt, _ name: CInt,
    _ value: UnsafeRawPointer?, _ length: socklen_t
) throws(Errno) {
    try nothingOrErrno(Glibc.setsockopt(fd, level, name, value, length))
}

/// Reads a fixed-size option into a `T`. The kernel may report a shorter length (a one-byte
/// boolean, for instance); the bytes it did not write stay zero.
internal func getOptionValue<T: BitwiseCopyable>(
    _ fd: CInt, _ level: CInt, _ name: CInt, as _: T.Type = T.self
) throws(Errno) -> T {
    var value = zeroValue(of: T.self)
    var length = socklen_t(MemoryLayout<T>.size)
    let result = withUnsafeMutableBytes(of: &value) { raw in
        Glibc.getsockopt(fd, level, name, raw.baseAddress, &length)
    }
    try nothingOrErrno(result)
    return value
}

/// Writes a fixed-size option from a `T`.
internal func setOptionValue<T: BitwiseCopyable>(
    _ fd: CInt, _ level: CInt, _ name: CInt, _ value: T
) throws(Errno) {
    let result = withUnsafeBytes(of: value) { raw in
        Glibc.setsockopt(fd, level, name, raw.baseAddress, socklen_t(raw.count))
    }
    try nothingOrErrno(result)
}

/// A variable-length option read into `capacity` bytes; returns what the kernel reported.
internal func getOptionByteArray(
    _ fd: CInt, _ level: CInt, _ name: CInt, capacity: Int
) throws(Errno) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: capacity)
    var length = socklen_t(capacity)
    let result = buffer.withUnsafeMutableBytes { raw in
        Glibc.getsockopt(fd, level, name, raw.baseAddress, &length)
    }
    try nothingOrErrno(result)
    return Array(buffer.prefix(Int(length)))
}

/// A variable-length option written from exactly `bytes`.
internal func setOptionByteArray(
    _ fd: CInt, _ level: CInt, _ name: CInt, _ bytes: [UInt8]
) throws(Errno) {
    let result = bytes.withUnsafeBytes { raw in
        Glibc.setsockopt(fd, level, name, raw.baseAddress, socklen_t(raw.count))
    }
    try nothingOrErrno(result)
}

/// An all-zero value of a plain C type (the C way to initialise `struct linger` and friends).
internal func zeroValue<T: BitwiseCopyable>(of _: T.Type) -> T {
    withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { buffer in
        UnsafeMutableRawBufferPointer(buffer).initializeMemory(as: UInt8.self, repeating: 0)
        return buffer[0]
    }
}

// MARK: - Data transfer

internal func system_recv(
    _ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ flags: CInt
) throws(Errno) -> Int {
    try valueOrErrno(Glibc.recv(fd, buffer.baseAddress, clampedLength(buffer.count), flags))
}

internal func system_recvfrom(
    _ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ flags: CInt,
    _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?
) throws(Errno) -> Int {
    try valueOrErrno(
        Glibc.recvfrom(fd, buffer.baseAddress, clampedLength(buffer.count), flags, address, length))
}

internal func system_recvmsg(
    _ fd: CInt, _ message: UnsafeMutablePointer<msghdr>, _ flags: CInt
) throws(Errno) -> Int {
    try valueOrErrno(Glibc.recvmsg(fd, message, flags))
}

internal func system_send(
    _ fd: CInt, _ buffer: UnsafeRawBufferPointer, _ flags: CInt
) throws(Errno) -> Int {
    try valueOrErrno(Glibc.send(fd, buffer.baseAddress, clampedLength(buffer.count), flags))
}

internal func system_sendto(
    _ fd: CInt, _ buffer: UnsafeRawBufferPointer, _ flags: CInt,
    _ address: UnsafePointer<sockaddr>?, _ length: socklen_t
) throws(Errno) -> Int {
    try valueOrErrno(
        Glibc.sendto(fd, buffer.baseAddress, clampedLength(buffer.count), flags, address, length))
}

internal func system_sendmsg(
    _ fd: CInt, _ message: UnsafePointer<msghdr>, _ flags: CInt
) throws(Errno) -> Int {
    try valueOrErrno(Glibc.sendmsg(fd, message, flags))
}

internal func system_recvmmsg(
    _ fd: CInt, _ messages: UnsafeMutablePointer<socket2_mmsghdr>, _ count: Int, _ flags: CInt,
    _ timeout: UnsafeMutablePointer<timespec>?
) throws(Errno) -> Int {
    Int(try valueOrErrno(socket2_recvmmsg(fd, messages, CUnsignedInt(count), flags, timeout)))
}

internal func system_sendmmsg(
    _ fd: CInt, _ messages: UnsafeMutablePointer<socket2_mmsghdr>, _ count: Int, _ flags: CInt
) throws(Errno) -> Int {
    Int(try valueOrErrno(socket2_sendmmsg(fd, messages, CUnsignedInt(count), flags)))
}

/// `sendfile(2)`, which takes no `MSG_NOSIGNAL` and raises `SIGPIPE` on a broken connection:
/// the signal is blocked in the calling thread for the call, and one it raised is discarded
/// (`sigtimedwait(2)` with a zero timeout), so that the call fails with `EPIPE` as the sends do.
internal func system_sendfile(
    _ socket: CInt, _ file: CInt, _ offset: UnsafeMutablePointer<off_t>?, _ count: Int
) throws(Errno) -> Int {
    var pipeOnly = sigset_t()
    sigemptyset(&pipeOnly)
    sigaddset(&pipeOnly, SIGPIPE)
    var previousMask = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipeOnly, &previousMask)
    var pending = sigset_t()
    sigpending(&pending)
    let alreadyPending = sigismember(&pending, SIGPIPE) == 1
    let result = Glibc.sendfile(socket, file, offset, count)
    let error = errno
    if result == -1 && error == EPIPE && !alreadyPending {
        var noWait = timespec()
        _ = sigtimedwait(&pipeOnly, nil, &noWait)
    }
    if sigismember(&previousMask, SIGPIPE) == 0 {
        pthread_sigmask(SIG_SETMASK, &previousMask, nil)
    }
    if result == -1 { throw Errno(rawValue: error) }
    return result
}

// MARK: - Control messages, batched datagrams, zero copy (beyond socket2)

// MARK: - Name resolution (getaddrinfo)

/// `getaddrinfo(3)`: the result code, the list (free it with `system_freeaddrinfo`), and `errno`
/// as the call left it (the error behind `EAI_SYSTEM`).
internal func system_getaddrinfo(
    _ host: String?, _ service: String?, _ hints: addrinfo
) -> (code: CInt, list: UnsafeMutablePointer<addrinfo>?, errno: CInt) {
    var hints = hints
    var list: UnsafeMutablePointer<addrinfo>?
    errno = 0
    let code = withOptionalCString(host) { host in
        withOptionalCString(service) { service in Glibc.getaddrinfo(host, service, &hints, &list) }
    }
    return (code, list, errno)
}

internal func system_freeaddrinfo(_ list: UnsafeMutablePointer<addrinfo>) {
    Glibc.freeaddrinfo(list)
}

/// `gai_strerror(3)`: the text of a `getaddrinfo` result code.
internal func system_gai_strerror(_ code: CInt) -> String {
    String(cString: Glibc.gai_strerror(code))
}

/// Runs `body` with `text` as a C string, or with `NULL` for `nil`.
private func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let text else { return body(nil) }
    return text.withCString { body($0) }
}

// MARK: - Text forms of addresses

/// `inet_pton(3)`: `true` when `text` is a valid address of `family`, written into `destination`.
internal func system_inet_pton(
    _ family: CInt, _ text: String, _ destination: UnsafeMutableRawPointer
) -> Bool {
    Glibc.inet_pton(family, text, destination) == 1
}

/// `inet_ntop(3)` into a buffer large enough for any IPv6 text form.
internal func system_inet_ntop(_ family: CInt, _ source: UnsafeRawPointer) -> String {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { buffer in
        guard let text = Glibc.inet_ntop(family, source, buffer.baseAddress!, socklen_t(buffer.count))
        else { return "" }
        return String(cString: text)
    }
}

internal func system_if_nametoindex(_ name: String) -> CUnsignedInt {
    Glibc.if_nametoindex(name)
}

/// `if_nametoindex(3)`, its failure (0) as `Errno` (`ENODEV` when the C library set none).
internal func system_if_nametoindex_checked(_ name: String) throws(Errno) -> UInt32 {
    errno = 0
    let index = Glibc.if_nametoindex(name)
    guard index != 0 else { throw Errno(rawValue: errno == 0 ? ENODEV : errno) }
    return index
}

/// `if_indextoname(3)` into a buffer of `IF_NAMESIZE` bytes; its failure as `Errno`.
internal func system_if_indextoname(_ index: UInt32) throws(Errno) -> String {
    try withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(IF_NAMESIZE)) {
        (buffer) throws(Errno) -> String in
        guard let name = Glibc.if_indextoname(index, buffer.baseAddress!) else { throw Errno(rawValue: errno) }
        return String(cString: name)
    }
}
