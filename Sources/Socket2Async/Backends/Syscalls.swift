// The only file of Socket2Async that calls Glibc (and the epoll/eventfd declarations of CURing's
// shim) directly. Unlike Socket2's shims these do not throw: they return the call's result, or
// `-errno` on failure, the convention of io_uring completions, so that both backends hand the
// same kind of number to the code that finishes an operation. `EINTR` is retried here: the
// reactor never lets it reach a caller.

#if canImport(Glibc)
import Glibc
#endif
import Socket2
import CURing

/// `-errno` after a call that returned -1, else the result.
@inline(__always)
func resultOrErrno(_ result: Int) -> Int {
    result >= 0 ? result : -Int(errno)
}

/// Runs `call` until it does not fail with `EINTR`.
@inline(__always)
func retryingEINTR(_ call: () -> Int) -> Int {
    while true {
        let result = resultOrErrno(call())
        if result != -Int(EINTR) { return result }
    }
}

// MARK: - Data transfer (non-blocking sockets)

@inline(__always)
func sys_recv(_ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: CInt) -> Int {
    retryingEINTR { Glibc.recv(fd, buffer, count, flags) }
}

@inline(__always)
func sys_send(_ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: CInt) -> Int {
    retryingEINTR { Glibc.send(fd, buffer, count, flags | MessageFlags.noSignal.rawValue) }
}

@inline(__always)
func sys_recvfrom(
    _ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: CInt,
    _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>
) -> Int {
    retryingEINTR { Glibc.recvfrom(fd, buffer, count, flags, address, length) }
}

@inline(__always)
func sys_sendto(
    _ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: CInt,
    _ address: UnsafePointer<sockaddr>, _ length: socklen_t
) -> Int {
    retryingEINTR { Glibc.sendto(fd, buffer, count, flags | MessageFlags.noSignal.rawValue, address, length) }
}

@inline(__always)
func sys_recvmsg(_ fd: CInt, _ message: UnsafeMutablePointer<msghdr>, _ flags: CInt) -> Int {
    retryingEINTR { Glibc.recvmsg(fd, message, flags) }
}

@inline(__always)
func sys_sendmsg(_ fd: CInt, _ message: UnsafePointer<msghdr>, _ flags: CInt) -> Int {
    retryingEINTR { Glibc.sendmsg(fd, message, flags | MessageFlags.noSignal.rawValue) }
}

/// `accept4(2)` with `SOCK_CLOEXEC | SOCK_NONBLOCK`: an accepted socket is ready for the reactor.
@inline(__always)
func sys_accept(
    _ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>
) -> Int {
    retryingEINTR {
        Int(socket2async_accept4(fd, address, length, CInt(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue)))
    }
}

/// `connect(2)`. Not retried on `EINTR`: an interrupted connect goes on in the background, and
/// a second call would report `EALREADY`; the caller treats `EINTR` like `EINPROGRESS`.
@inline(__always)
func sys_connect(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int {
    resultOrErrno(Int(Glibc.connect(fd, address, length)))
}

func sys_shutdown(_ fd: CInt, _ how: CInt) -> Int {
    resultOrErrno(Int(Glibc.shutdown(fd, how)))
}

/// `close(2)`. Never retried: after `EINTR` the descriptor is closed on Linux.
func sys_close(_ fd: CInt) -> Int {
    resultOrErrno(Int(Glibc.close(fd)))
}

/// `getsockopt(SO_ERROR)`: the pending error of a socket, which reading clears.
func sys_socketError(_ fd: CInt) -> Int {
    var value: CInt = 0
    var length = socklen_t(MemoryLayout<CInt>.size)
    let result = resultOrErrno(Int(getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length)))
    return result < 0 ? result : Int(value)
}

/// Whether the socket has a peer: `getpeername(2)` succeeds.
func sys_isConnected(_ fd: CInt) -> Bool {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    return withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
    }
}

/// `getpeername(2)` into `storage`; returns the length or `-errno`.
func sys_getpeername(_ fd: CInt, _ storage: UnsafeMutablePointer<sockaddr_storage>) -> Int {
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = storage.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        resultOrErrno(Int(getpeername(fd, $0, &length)))
    }
    return result < 0 ? result : Int(length)
}

// MARK: - Readiness of any descriptor

/// `poll(2)` of one descriptor without waiting: its `revents` when any of `events` (or an
/// error or hang-up) is there, else `-EAGAIN`.
func sys_pollNow(_ fd: CInt, events: CShort) -> Int {
    var entry = pollfd(fd: fd, events: events, revents: 0)
    let result = retryingEINTR { Int(poll(&entry, 1, 0)) }
    if result < 0 { return result }
    if entry.revents & CShort(POLLNVAL) != 0 { return -Int(EBADF) }
    return result == 0 ? -Int(EAGAIN) : Int(entry.revents)
}

// MARK: - Memory

/// `mmap(2)` of `count` bytes of private anonymous memory (pages become resident when first
/// written), or nil.
func sys_mapAnonymous(_ count: Int) -> UnsafeMutableRawPointer? {
    let address = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    return address == MAP_FAILED ? nil : address
}

/// `munmap(2)`.
func sys_unmap(_ address: UnsafeMutableRawPointer, _ count: Int) {
    _ = munmap(address, count)
}

// MARK: - epoll and eventfd

func sys_epoll_create() -> Int {
    resultOrErrno(Int(epoll_create1(CInt(EPOLL_CLOEXEC))))
}

func sys_epoll_ctl(_ epfd: CInt, _ op: CInt, _ fd: CInt, _ events: UInt32, _ data: UInt64) -> Int {
    var event = epoll_event()
    event.events = events
    event.data.u64 = data
    return resultOrErrno(Int(epoll_ctl(epfd, op, fd, &event)))
}

func sys_epoll_wait(
    _ epfd: CInt, _ events: UnsafeMutablePointer<epoll_event>, _ capacity: CInt, _ timeoutMilliseconds: CInt
) -> Int {
    resultOrErrno(Int(epoll_wait(epfd, events, capacity, timeoutMilliseconds)))
}

func sys_eventfd() -> Int {
    resultOrErrno(Int(eventfd(0, CInt(EFD_CLOEXEC | EFD_NONBLOCK))))
}

/// Adds one to an eventfd's counter: wakes whoever waits on it.
func sys_eventfd_signal(_ fd: CInt) {
    var one: UInt64 = 1
    _ = retryingEINTR { Glibc.write(fd, &one, 8) }
}

/// Reads (and so resets) an eventfd's counter.
func sys_eventfd_drain(_ fd: CInt) {
    var value: UInt64 = 0
    _ = retryingEINTR { Glibc.read(fd, &value, 8) }
}

// MARK: - Time and limits

/// `CLOCK_MONOTONIC` in nanoseconds.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// The monotonic time `nanoseconds` from now, saturating: a delay too long for the clock is
/// `UInt64.max` (never), not a time that wrapped around into the past.
func monotonicDeadline(after nanoseconds: UInt64) -> UInt64 {
    let (deadline, overflow) = monotonicNanoseconds().addingReportingOverflow(nanoseconds)
    return overflow ? .max : deadline
}

/// The number of online processors (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
func onlineProcessorCount() -> Int {
    max(1, sysconf(CInt(_SC_NPROCESSORS_ONLN)))
}

// Message flags go through the core's `MessageFlags`: Glibc's `MSG_*` constants were, in some
// builds of this module (release, ThreadSanitizer), reported as not in scope.

/// `MSG_CTRUNC`: the control data was cut (a `recvmsg(2)` result flag).
let msgControlTruncated: CInt = 0x08
