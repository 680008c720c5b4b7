#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

// `connectTimeout`, the one call of the core that is not a single system call, written as
// socket2's `connect_timeout`: a non-blocking `connect(2)`, then `poll(2)` until the connection
// is made, fails, or the time is up.

extension SocketHandle where Self: ~Copyable {
    /// Connects to `address`, waiting at most `timeout`.
    ///
    /// As socket2: sets `O_NONBLOCK`, calls `connect(2)`, clears `O_NONBLOCK` again (the socket
    /// is left blocking, whatever it was before), and if the connection is in progress waits
    /// with `poll(2)` for `POLLIN | POLLOUT`, with the remaining time in milliseconds (rounded
    /// up, so that it never gives up before `timeout`) clamped to `1...Int32.max`, polling again
    /// after `EINTR` (the one retry of this module).
    ///
    /// - Throws: `Errno.timedOut` when `timeout` passes first (the connection attempt may still
    ///   go on in the kernel); the connection's error (`SO_ERROR`, for example
    ///   `Errno.connectionRefused`) when `poll(2)` reports `POLLERR` or `POLLHUP`, or
    ///   `Errno.socketNotConnected` if the kernel reports a hang-up without an error; any error of
    ///   `connect(2)` other than `EINPROGRESS`/`EAGAIN`.
    public func connectTimeout(_ address: SockAddr, timeout: Duration) throws(Errno) {
        try setNonblocking(true)
        var failure: Errno?
        do { try connect(address) } catch { failure = error }
        try setNonblocking(false)
        switch failure {
        case nil: return
        case .nowInProgress?, .wouldBlock?: try pollConnection(timeout: timeout)
        case let error?: throw error
        }
    }

    /// Waits for a non-blocking connection to complete, as socket2's `poll_connect`.
    private func pollConnection(timeout: Duration) throws(Errno) {
        let clock = ContinuousClock()
        let start = clock.now
        var descriptor = pollfd(fd: rawDescriptor, events: Int16(POLLIN | POLLOUT), revents: 0)
        while true {
            let elapsed = start.duration(to: clock.now)
            if elapsed >= timeout { throw .timedOut }
            let ready: CInt
            do {
                ready = try system_poll(&descriptor, 1, pollMilliseconds(timeout - elapsed))
            } catch {
                if error == .interrupted { continue }
                throw error
            }
            if ready == 0 { throw .timedOut }
            if descriptor.revents & Int16(POLLHUP | POLLERR) != 0 {
                // The option helpers' `takeError()` lives with the SOL_SOCKET options; this reads
                // the same `SO_ERROR` without depending on it.
                let error = try getOption(SOL_SOCKET, SO_ERROR, as: CInt.self)
                throw error == 0 ? .socketNotConnected : Errno(rawValue: error)
            }
            return
        }
    }
}

/// A remaining time as `poll(2)`'s timeout: milliseconds rounded up (socket2 rounds down, which
/// can give up to a millisecond before the deadline), at least 1 and at most `Int32.max`.
private func pollMilliseconds(_ remaining: Duration) -> CInt {
    let (seconds, attoseconds) = remaining.components
    let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
    let (wholeMilliseconds, rest) = attoseconds.quotientAndRemainder(dividingBy: attosecondsPerMillisecond)
    let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
    guard !milliseconds.overflow else { return CInt.max }
    let total = milliseconds.partialValue.addingReportingOverflow(wholeMilliseconds + (rest > 0 ? 1 : 0))
    guard !total.overflow else { return CInt.max }
    return CInt(clamping: max(total.partialValue, 1))
}
