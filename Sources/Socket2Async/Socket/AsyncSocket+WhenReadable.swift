#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage

// Receives made with a system call of the core (recvmmsg, recvmsg with control data on the
// stack) whenever the socket is readable: the call is tried first, and only when the kernel
// says it would block does the task wait — for readability, not for the call — and then try
// again. Nothing the call needs must outlive a suspension, so its memory can be on the stack or
// reused from call to call: no allocation in the steady state.

extension AsyncSocket {
    /// Runs the receive `call` on this socket's descriptor (through a `SockRef`) as soon as it
    /// does not fail with `EAGAIN`, waiting for readability in between. `EINTR` is retried.
    /// While the socket keeps stranded datagrams (taken in by a stopped io_uring stream), they
    /// come first: `stranded` returns them in the call's form (nil when another receive took
    /// them in the meantime).
    ///
    /// The call is tried at once except on the reactor thread of an epoll reactor that knows the
    /// socket is not readable. Cancellation while waiting throws `CancellationError`, and nothing
    /// was received then.
    ///
    /// A call that reads a stream into `requested` bytes of room says through `transferred` how
    /// many it got: fewer means the kernel's queue is empty, so the next call waits for the
    /// next edge instead of making a `recv(2)` that fails with `EAGAIN` (level-triggered C
    /// servers make one read per event for the same reason).
    nonisolated(nonsending) func receiveWhenReadable<R>(
        requested: Int = 0,
        transferred: (R) -> Int = { _ in 0 },
        _ call: (SockRef) throws(Errno) -> R,
        orStranded stranded: nonisolated(nonsending) () async throws -> R?
    ) async throws -> R {
        var outcome: R?
        while true {
            if io.hasStrandedDatagrams.load(ordering: .relaxed), let result = try await stranded() { return result }
            // An attempt on an epoll reactor's thread keeps the readiness flags exact.
            let readinessIsCurrent = reactor.tracksReadiness && reactor.isCurrent
            let done = try tryInput(requested: requested) { fd in
                while true {
                    do throws(Errno) {
                        let value = try call(SockRef(rawDescriptor: fd))
                        outcome = value
                        return transferred(value)
                    } catch {
                        if error != .interrupted { return -Int(error.rawValue) }
                    }
                }
            }
            if done != nil, let outcome { return outcome }
            if readinessIsCurrent {
                // Readiness, not a peek: no system call until the socket is readable.
                _ = try await wait(.inputReady, prepare: { _ in }, finish: { result, _ in try ResultCode.check(result) })
            } else {
                try await waitUntilReadable()
            }
        }
    }

    /// Tries an input call now: `attempt`, except that on a reactor that keeps no readiness
    /// (io_uring) the call is also made on the reactor thread. Returns nil on `EAGAIN`.
    private func tryInput(requested: Int, _ call: (CInt) -> Int) throws -> Int? {
        if reactor.isCurrent && !reactor.tracksReadiness {
            if io.closed { throw ReactorError.socketClosed }
            guard reactor.takeImmediateOperation() else { return nil }
            let result = call(io.fd)
            return result == -Int(EAGAIN) ? nil : try ResultCode.check(result)
        }
        return try attempt(input: true, requested: requested, flags: 0, call)
    }

    /// Waits until a datagram can be received, without receiving it: a zero-byte `recv(2)` with
    /// `MSG_PEEK`, which the reactor makes when the socket becomes readable (epoll), or
    /// `IORING_OP_RECV` of zero bytes with `MSG_PEEK` (io_uring). The datagram stays queued, so a
    /// wait that is cancelled loses nothing.
    nonisolated(nonsending) func waitUntilReadable() async throws {
        // A zero-byte receive on a stream returns at once: peek at one byte (or the end), into
        // the operation record's own storage (no allocation).
        let length = io.isStream ? 1 : 0
        _ = try await wait(.recv, prepare: { record in
            record.pointee.buffer = UnsafeMutableRawPointer(OpRecord.peekBytePointer(record))
            record.pointee.length = length
            record.pointee.flags = MessageFlags.peek.rawValue
        }, finish: { result, _ in try ResultCode.check(result) })
    }
}
