#if canImport(Glibc)
import Glibc
#endif
import Socket2
import CURing
import SystemPackage

/// The io_uring backend: completions.
///
/// The ring is created on the reactor thread with `IORING_SETUP_SINGLE_ISSUER |
/// IORING_SETUP_DEFER_TASKRUN` (falling back to `COOP_TASKRUN`, then to neither, where the
/// kernel refuses them) and its descriptor registered (`io_uring_register_ring_fd`); only that
/// thread submits, once per loop turn, everything queued. Every turn also completes everything
/// the kernel has ready (see `runDeferredWork`), so that requests are served in the order they
/// became ready. Each operation's `user_data` is its
/// `OpID`; cancellation is `IORING_OP_ASYNC_CANCEL` of that id, after which the operation's own
/// completion is still awaited (it carries the result when the operation won the race).
/// Multishot requests (accept; recvmsg with a ring of provided buffers) feed the streams. The
/// completion queue is sized for them, and an overflowed queue is flushed (nothing is dropped:
/// `IORING_FEAT_NODROP`).
final class URingBackend: ReactorBackend {
    unowned(unsafe) let reactor: Reactor
    private let owner: OwningReactor
    let ring: UnsafeMutablePointer<io_uring>
    private let completions: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    private static let batch = 256
    /// `user_data` of requests that are not operations: the top bit set.
    private static let wakeTag: UInt64 = 1 << 63 | 1
    private static let ignoredTag: UInt64 = 1 << 63 | 2
    /// Whether the wake-up poll on the reactor's eventfd is armed.
    private var wakeArmed = false
    var nextBufferGroup: UInt16 = 1
    let supportsMultishot: Bool
    /// The buffers of lean receives, made at the first one.
    var pool: ReceivePool?
    let poolSize: ReceivePoolSize
    /// Bytes a socket's multishot receive takes before it ends and is armed again (its share of
    /// the pool per turn); 0 where the kernel lacks the limit (before 6.17: `EINVAL`).
    var pooledByteLimit: UInt32
    /// Whether a limited request has received bytes (the kernel takes the limit).
    var pooledByteLimitConfirmed = false
    /// Tests: limited requests carry a field the kernel refuses (`addr2`), as old kernels refuse the limit.
    let refuseMultishotLimit: Bool
    /// Tests: every receive is queued behind held completions, as if there were some.
    let queueEveryReceive: Bool
    /// Receives submitted to wait for readability first (`queueBehindHeldCompletions`).
    private(set) var receivesQueuedBehind = 0

    var kind: Reactor.Backend { .ioUring }
    var tracksReadiness: Bool { false }

    init(reactor: Reactor, options: ReactorOptions) throws {
        if options.failIoUringProbe { throw ReactorError.ioUringUnavailable("the io_uring probe was made to fail") }
        self.reactor = reactor
        owner = OwningReactor(reactor)
        poolSize = options.receivePool
        pooledByteLimit = UInt32(clamping: PooledInput.queueLimit * options.receivePool.bufferSize)
        refuseMultishotLimit = options.refuseMultishotLimit
        queueEveryReceive = options.queueEveryReceive
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        completions = .allocate(capacity: Self.batch)
        var result: CInt = -1
        var features: UInt32 = 0
        // TASKRUN_FLAG: the kernel flags completions it holds as task work (IORING_SQ_TASKRUN).
        let flagSets: [UInt32] = [
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_SUBMIT_ALL,
            0,
        ]
        for flags in flagSets {
            var params = io_uring_params()
            params.flags = flags | IORING_SETUP_CQSIZE
            params.cq_entries = options.completionEntries
            result = io_uring_queue_init_params(options.submissionEntries, ring, &params)
            if result == 0 {
                features = params.features
                break
            }
            if result != -EINVAL { break }
        }
        guard result == 0 else {
            ring.deallocate()
            completions.deallocate()
            throw ReactorError.ioUringUnavailable("io_uring_setup failed: \(Errno(rawValue: -result))")
        }
        var missing: [String] = []
        if features & IORING_FEAT_EXT_ARG == 0 { missing.append("IORING_FEAT_EXT_ARG") }
        if features & IORING_FEAT_NODROP == 0 { missing.append("IORING_FEAT_NODROP") }
        var multishot = false
        if let probe = io_uring_get_probe_ring(ring) {
            let needed: [(CInt, String)] = [
                (CInt(IORING_OP_ACCEPT.rawValue), "ACCEPT"), (CInt(IORING_OP_CONNECT.rawValue), "CONNECT"),
                (CInt(IORING_OP_RECV.rawValue), "RECV"), (CInt(IORING_OP_SEND.rawValue), "SEND"),
                (CInt(IORING_OP_RECVMSG.rawValue), "RECVMSG"), (CInt(IORING_OP_SENDMSG.rawValue), "SENDMSG"),
                (CInt(IORING_OP_SHUTDOWN.rawValue), "SHUTDOWN"), (CInt(IORING_OP_CLOSE.rawValue), "CLOSE"),
                (CInt(IORING_OP_ASYNC_CANCEL.rawValue), "ASYNC_CANCEL"),
                (CInt(IORING_OP_POLL_ADD.rawValue), "POLL_ADD"),
            ]
            for (opcode, name) in needed where io_uring_opcode_supported(probe, opcode) == 0 {
                missing.append("IORING_OP_" + name)
            }
            // Multishot accept (5.19), multishot recvmsg and buffer rings (6.0) came with or
            // before IORING_OP_SEND_ZC (6.0), which the probe can see.
            multishot = io_uring_opcode_supported(probe, CInt(IORING_OP_SEND_ZC.rawValue)) != 0
            io_uring_free_probe(probe)
        } else {
            missing.append("IORING_REGISTER_PROBE")
        }
        guard missing.isEmpty else {
            io_uring_queue_exit(ring)
            ring.deallocate()
            completions.deallocate()
            throw ReactorError.ioUringUnavailable("missing " + missing.joined(separator: ", "))
        }
        supportsMultishot = multishot
        _ = io_uring_register_ring_fd(ring)
    }

    /// Set once the ring is gone (reactor thread, before the inbox closes).
    private(set) var isDestroyed = false

    func destroy() {
        pool?.destroy()
        pool = nil
        isDestroyed = true
        io_uring_queue_exit(ring)
        ring.deallocate()
        completions.deallocate()
    }

    func forget(_ io: IOState) {
        if io.pooled.isActive { forgetPooled(io) }
    }

    // MARK: Submission

    /// A free submission entry, flushing the queue to the kernel when it is full.
    @inline(__always)
    private func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        while true {
            if let entry = io_uring_get_sqe(ring) { return entry }
            _ = io_uring_submit(ring)
        }
    }

    func start(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {
        if record.pointee.cancelReason != .none {
            reactor.complete(record, record.pointee.cancelReason.resultCode)
            return
        }
        if record.pointee.kind == .streamWait {
            startStreamWait(record)
            return
        }
        if record.pointee.kind == .pooledWait {
            record.pointee.io!._withUnsafeGuaranteedRef { startPooledWait(index, record, $0) }
            return
        }
        if record.pointee.kind == .accept, let io = record.pointee.io?.takeUnretainedValue(),
           !io.strandedConnections.isEmpty {
            let fd = io.strandedConnections.removeFirst()
            record.pointee.addressLength = socklen_t(max(0, sys_getpeername(fd, UnsafeMutableRawPointer(OpRecord.addressPointer(record)).assumingMemoryBound(to: sockaddr_storage.self))))
            reactor.complete(record, Int(fd))
            return
        }
        submit(record)
        owner { $0.markPending(record, input: record.pointee.kind.waitsForInput || record.pointee.kind == .close) }
    }

    /// Queues the request of an operation.
    func submit(_ record: UnsafeMutablePointer<OpRecord>) {
        let entry = sqe()
        let fd = record.pointee.fd
        switch record.pointee.kind {
        case .recv:
            io_uring_prep_recv(entry, fd, record.pointee.buffer, record.pointee.length, record.pointee.flags)
        case .send:
            io_uring_prep_send(entry, fd, record.pointee.buffer, record.pointee.length,
                               record.pointee.flags | MessageFlags.noSignal.rawValue)
        case .recvFrom:
            prepareMessage(record, nameLength: socklen_t(MemoryLayout<sockaddr_storage>.size))
            io_uring_prep_recvmsg(entry, fd, OpRecord.messagePointer(record), UInt32(bitPattern: record.pointee.flags))
        case .sendTo:
            prepareMessage(record, nameLength: record.pointee.addressLength)
            io_uring_prep_sendmsg(entry, fd, OpRecord.messagePointer(record),
                                  UInt32(bitPattern: record.pointee.flags | MessageFlags.noSignal.rawValue))
        case .recvMsg:
            io_uring_prep_recvmsg(entry, fd, OpRecord.messagePointer(record), UInt32(bitPattern: record.pointee.flags))
        case .sendMsg:
            io_uring_prep_sendmsg(entry, fd, OpRecord.messagePointer(record),
                                  UInt32(bitPattern: record.pointee.flags | MessageFlags.noSignal.rawValue))
        case .accept:
            record.pointee.addressLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            io_uring_prep_accept(entry, fd, OpRecord.addressPointer(record), OpRecord.addressLengthPointer(record),
                                 CInt(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue))
        case .connect:
            io_uring_prep_connect(entry, fd, OpRecord.addressPointer(record), record.pointee.addressLength)
        case .shutdown:
            io_uring_prep_shutdown(entry, fd, record.pointee.flags)
        case .close:
            io_uring_prep_close(entry, fd)
        case .multishot:
            let stream = record.pointee.stream!.takeUnretainedValue() as! MultishotStream
            stream.prepare(entry)
        case .readable:
            io_uring_prep_poll_add(entry, fd, UInt32(POLLIN))
        case .writable:
            io_uring_prep_poll_add(entry, fd, UInt32(POLLOUT))
        case .pooledMultishot:
            preparePooled(entry, fd: fd)
        case .streamWait, .wakeRead, .pooledWait, .inputReady:
            io_uring_prep_nop(entry)
        }
        if record.pointee.kind.waitsForInput {
            queueBehindHeldCompletions(entry, record)
        } else {
            pollFirstWhenFull(entry, record)
        }
        io_uring_sqe_set_data64(entry, record.pointee.id)
    }

    /// A receive submitted while the kernel holds completions back (`IORING_SQ_TASKRUN`:
    /// receives whose bytes came while they waited, more than `runDeferredWork` served in the
    /// turn) waits for readability first (`IORING_RECVSEND_POLL_FIRST`): its bytes already
    /// there, the poll fires at once and queues its completion as task work behind those, in the
    /// order the bytes came. Without it, it completes at submission, ahead of all of them: at
    /// thousands of connections the ones whose next message was always there (a client that
    /// pipelines) were served every turn, while the held ones were served about a hundred a turn
    /// and fell behind by as many turns as that queue was long. With nothing held back, the
    /// receive is tried at once. Not with `MSG_DONTWAIT`: the kernel would fail it at the poll
    /// (`EAGAIN`) even with bytes there.
    @inline(__always)
    private func queueBehindHeldCompletions(_ entry: UnsafeMutablePointer<io_uring_sqe>,
                                            _ record: UnsafeMutablePointer<OpRecord>) {
        switch record.pointee.kind {
        case .recv, .recvFrom, .recvMsg, .pooledMultishot:
            guard socket2async_sq_flags(ring) & IORING_SQ_TASKRUN != 0 || queueEveryReceive,
                  supportsMultishot,  // IORING_RECVSEND_POLL_FIRST came with 5.19, before it
                  !record.pointee.mustNotWait
            else { return }
            entry.pointee.ioprio |= UInt16(IORING_RECVSEND_POLL_FIRST)
            receivesQueuedBehind &+= 1
        default:
            return
        }
    }

    /// A send submitted after the socket said it is full (`EAGAIN` or a short write, which
    /// cleared `writeReady`) waits for writability before the kernel tries it
    /// (`IORING_RECVSEND_POLL_FIRST`), as epoll waits for an `EPOLLOUT` edge. Without it the
    /// kernel tries at once, and a little room freed since — less than the third of the send
    /// buffer that makes the socket writable — lets the send through where epoll waits: a send
    /// under a deadline to a peer that stopped reading then went out on io_uring and timed out
    /// on epoll. (It also spares an attempt that would most likely fail.)
    @inline(__always)
    private func pollFirstWhenFull(_ entry: UnsafeMutablePointer<io_uring_sqe>, _ record: UnsafeMutablePointer<OpRecord>) {
        switch record.pointee.kind {
        case .send, .sendTo, .sendMsg:
            guard supportsMultishot,  // IORING_RECVSEND_POLL_FIRST came with 5.19, before it
                  !record.pointee.mustNotWait,  // tried now, as the call would be
                  record.pointee.io?._withUnsafeGuaranteedRef({ $0.writeReady }) == false
            else { return }
            entry.pointee.ioprio |= UInt16(IORING_RECVSEND_POLL_FIRST)
        default:
            return
        }
    }

    /// `msghdr` over the record's single buffer and address storage (recvfrom/sendto).
    private func prepareMessage(_ record: UnsafeMutablePointer<OpRecord>, nameLength: socklen_t) {
        OpRecord.iovPointer(record).pointee = iovec(iov_base: record.pointee.buffer, iov_len: record.pointee.length)
        OpRecord.messagePointer(record).pointee = msghdr(
            msg_name: UnsafeMutableRawPointer(OpRecord.addressPointer(record)), msg_namelen: nameLength,
            msg_iov: OpRecord.iovPointer(record), msg_iovlen: 1,
            msg_control: nil, msg_controllen: 0, msg_flags: 0)
    }

    func cancel(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {
        switch record.pointee.kind {
        case .streamWait:
            let stream = record.pointee.stream!.takeUnretainedValue() as! MultishotStream
            if stream.waiter == index { stream.waiter = -1 }
            reactor.complete(record, record.pointee.cancelReason.resultCode)
        case .pooledWait:
            record.pointee.io!._withUnsafeGuaranteedRef { cancelPooledWait(index, record, $0) }
        default:
            if record.pointee.backingOff {
                // Waiting for a retry timer, not in the kernel.
                reactor.complete(record, record.pointee.cancelReason.resultCode)
                return
            }
            let entry = sqe()
            io_uring_prep_cancel64(entry, record.pointee.id, 0)
            io_uring_sqe_set_data64(entry, Self.ignoredTag)
        }
    }

    func retry(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {
        record.pointee.backingOff = false
        if record.pointee.kind == .streamWait {
            let stream = record.pointee.stream!.takeUnretainedValue() as! MultishotStream
            arm(stream)
        } else {
            submit(record)
        }
    }

    /// Accept failures that only mean "no descriptor free now": retried after a delay.
    private static func mustBackOff(_ result: CInt) -> Bool {
        result == -EMFILE || result == -ENFILE || result == -ENOBUFS || result == -ENOMEM
    }

    /// Schedules a retry of `record`: 1 ms, doubling up to 100 ms.
    private func backOff(_ record: UnsafeMutablePointer<OpRecord>) {
        let previous = record.pointee.backoffMilliseconds
        let delay = previous == 0 ? 1 : min(previous * 2, 100)
        record.pointee.backoffMilliseconds = delay
        record.pointee.backingOff = true
        if record.pointee.kind != .connect { reactor.acceptBackoffs.wrappingAdd(1, ordering: .relaxed) }
        reactor.schedule(.retry, for: record.pointee.id, in: UInt64(delay) * 1_000_000)
    }

    // MARK: Completion

    func poll(timeout: UInt64?) {
        pool?.beginTurn()
        armWake()
        if timeout == 0 {
            _ = io_uring_submit_and_get_events(ring)
        } else if let timeout {
            var time = __kernel_timespec(tv_sec: Int64(timeout / 1_000_000_000), tv_nsec: Int64(timeout % 1_000_000_000))
            var first: UnsafeMutablePointer<io_uring_cqe>?
            _ = io_uring_submit_and_wait_timeout(ring, &first, 1, &time, nil)
        } else {
            _ = io_uring_submit_and_wait(ring, 1)
        }
        drain()
        if socket2async_sq_flags(ring) & IORING_SQ_TASKRUN != 0 {
            runDeferredWork()
        }
        // Completions the full queue could not take wait in the kernel's overflow list: flush
        // them (IORING_ENTER_GETEVENTS) until none is left.
        while io_uring_cq_has_overflow(ring) {
            reactor.completionOverflows.wrappingAdd(1, ordering: .relaxed)
            _ = io_uring_get_events(ring)
            drain()
        }
    }

    /// Completes every request the kernel holds ready as task work, now, and dispatches the
    /// completions.
    ///
    /// With `DEFER_TASKRUN` a request that waited (a receive whose bytes arrived later) is
    /// completed by task work that the kernel runs inside `io_uring_enter`, at most 20 items a
    /// call (`IO_LOCAL_TW_DEFAULT_MAX`, kernels since early 2025) unless it waits for more; the rest
    /// stay queued, first in line for the next call, and the kernel sets `IORING_SQ_TASKRUN`. A
    /// request that can complete when it is submitted (its bytes already there) skips that queue.
    /// So each turn served every receive that found its bytes at submission, but only 20–40 of
    /// those that had waited for theirs: at thousands of connections, once a turn was long enough
    /// for the fast ones' next messages to arrive within it, they were served every turn while the
    /// others queued for seconds. So while the flag is up this asks again (`IORING_ENTER_GETEVENTS`
    /// with nothing to wait for, submitting what the completions before queued), up to four
    /// times, until a call completes fewer than 20: a turn serves about a hundred held items,
    /// and what is left is served first in the next turn.
    ///
    /// Not one call waiting for a full queue with a zero timeout, as it was: the kernel then arms
    /// an hrtimer that has already expired and sleeps on it, which cost a tenth of the reactor's
    /// CPU at 32 echoing connections in this VM (perf: `io_uring_enter` 21–24% of the samples,
    /// 13–15% with this loop). Nor a longer loop: going on while the flag stayed up kept it busy
    /// with new arrivals for tens of milliseconds under steady load, while the requests its
    /// completions queued (a receive to re-arm) waited for its end (the longest echo round trip
    /// at 32 connections 30–61 ms, against 5–9), and it starved the reactor's tasks of their turn
    /// (a burst of 200 connections into a one-buffer pool did not finish in 60 s).
    private func runDeferredWork() {
        for _ in 0..<Self.deferredWorkCallsPerTurn {
            _ = io_uring_submit_and_get_events(ring)
            if drain() < Self.deferredWorkPerCall { return }
            if socket2async_sq_flags(ring) & IORING_SQ_TASKRUN == 0 { return }
        }
    }

    /// Items of deferred task work the kernel runs per `io_uring_enter` (`IO_LOCAL_TW_DEFAULT_MAX`).
    private static let deferredWorkPerCall = 20
    /// Calls `runDeferredWork` makes at most in a turn: about a hundred held items with the wait's.
    private static let deferredWorkCallsPerTurn = 4

    /// Dispatches every completion in the queue; returns how many.
    @discardableResult
    private func drain() -> Int {
        var drained = 0
        owner { reactor in
            while true {
                let count = Int(io_uring_peek_batch_cqe(ring, completions, UInt32(Self.batch)))
                drained += count
                if count == 0 { return }
                for offset in 0..<count {
                    let cqe = completions[offset]!
                    dispatch(cqe.pointee.user_data, cqe.pointee.res, cqe.pointee.flags, reactor)
                }
                io_uring_cq_advance(ring, UInt32(count))
                if count < Self.batch { return }
            }
        }
        return drained
    }

    @inline(__always)
    private func dispatch(_ data: UInt64, _ result: CInt, _ flags: UInt32, _ reactor: Reactor) {
        if data & (1 << 63) != 0 {
            if data == Self.wakeTag {
                sys_eventfd_drain(reactor.wakeFD)
                if flags & IORING_CQE_F_MORE == 0 { wakeArmed = false }
            }
            return
        }
        guard let record = reactor.ops.record(for: data) else { return }
        switch record.pointee.kind {
        case .multishot:
            let stream = record.pointee.stream!.takeUnretainedValue() as! MultishotStream
            let more = flags & IORING_CQE_F_MORE != 0
            stream.deliver(result, flags, backend: self)
            if !more { finishMultishot(record, stream) }
        case .pooledMultishot:
            deliverPooled(record, result, flags)
        default:
            if record.pointee.cancelReason != .none && (result == -ECANCELED || result == -EINTR || result == -EAGAIN) {
                reactor.complete(record, record.pointee.cancelReason.resultCode)
            } else if record.pointee.kind == .accept && Self.mustBackOff(result)
                        && record.pointee.cancelReason == .none {
                backOff(record)
            } else if result == -EAGAIN && record.pointee.kind == .connect {
                // A Unix listener's queue is full; nothing will signal when it has room.
                backOff(record)
            } else if result == -EINTR || (result == -EAGAIN && !record.pointee.mustNotWait) {
                submit(record)
            } else {
                if record.pointee.kind == .recvMsg || record.pointee.kind == .recvFrom {
                    record.pointee.resultFlags = UInt32(bitPattern: OpRecord.messagePointer(record).pointee.msg_flags)
                    if record.pointee.kind == .recvFrom {
                        record.pointee.addressLength = OpRecord.messagePointer(record).pointee.msg_namelen
                    }
                }
                record.pointee.io?._withUnsafeGuaranteedRef { io in
                    if !record.pointee.kind.waitsForInput {
                        // The next send may be tried directly again, unless this one (asked not
                        // to wait) found the socket full.
                        io.writeReady = result != -EAGAIN
                    } else if result > 0 && !io.isStream && record.pointee.kind != .accept {
                        // Datagrams come in bursts: the next receive tries the queue directly.
                        io.readReady = true
                    }
                }
                reactor.complete(record, Int(result))
            }
        }
    }

    // MARK: Wake-ups

    /// A multishot poll on the reactor's eventfd: other threads wake the ring's wait by writing it.
    private func armWake() {
        guard !wakeArmed else { return }
        let entry = sqe()
        io_uring_prep_poll_multishot(entry, reactor.wakeFD, UInt32(POLLIN))
        io_uring_sqe_set_data64(entry, Self.wakeTag)
        wakeArmed = true
    }

    // MARK: Multishot streams

    /// Starts a wait for the next element of a stream: at once if one is queued.
    private func startStreamWait(_ record: UnsafeMutablePointer<OpRecord>) {
        let stream = record.pointee.stream!.takeUnretainedValue() as! MultishotStream
        if stream.kind == MultishotStream.Kind.accept, let io = record.pointee.io?.takeUnretainedValue(), !io.strandedConnections.isEmpty {
            reactor.complete(record, Int(io.strandedConnections.removeFirst()))
            return
        }
        if let (result, flags) = stream.popReady() {
            record.pointee.resultFlags = flags
            reactor.complete(record, Int(result))
            return
        }
        if stream.failed != 0 {
            let error = stream.failed
            stream.failed = 0
            reactor.complete(record, Int(error))
            return
        }
        reactor.markPending(record, input: true)
        stream.waiter = record.pointee.index
        arm(stream)
    }

    /// Submits the stream's multishot request unless it is in the kernel already.
    func arm(_ stream: MultishotStream) {
        guard stream.armed < 0, !stream.stopped, !stream.io.closed, !reactor.stopping else { return }
        if stream.kind == MultishotStream.Kind.recvMsg && stream.freeBuffers == 0 { return }
        let index = reactor.ops.allocate(.multishot, fd: stream.io.fd, io: stream.io)
        let record = reactor.ops.record(index)
        record.pointee.stream = Unmanaged.passRetained(stream as AnyObject)
        record.pointee.isMultishot = true
        stream.armed = index
        submit(record)
        reactor.markPending(record, input: true)
    }

    /// The kernel ended a multishot request: frees its record and re-arms when a waiter needs it.
    private func finishMultishot(_ record: UnsafeMutablePointer<OpRecord>, _ stream: MultishotStream) {
        reactor.settle(record)
        stream.armed = -1
        record.pointee.stream?.release()
        record.pointee.stream = nil
        reactor.ops.free(record.pointee.index)
        if stream.stopped {
            stream.strandQueued()
        } else if stream.waiter >= 0 {
            let waiter = reactor.ops.record(stream.waiter)
            if stream.backoffPending {
                stream.backoffPending = false
                backOff(waiter)
            } else {
                arm(stream)
            }
        }
    }

    /// A stream element arrived: to the waiting task, or queued.
    func handOver(_ stream: MultishotStream, _ result: CInt, _ flags: UInt32) {
        if stream.waiter >= 0 {
            let waiter = reactor.ops.record(stream.waiter)
            stream.waiter = -1
            waiter.pointee.resultFlags = flags
            reactor.complete(waiter, Int(result))
        } else {
            stream.pushReady(result, flags)
        }
    }

    /// Registers a ring of provided buffers; returns its group id.
    func registerBufferRing(_ ringMemory: UnsafeMutablePointer<io_uring_buf_ring>, entries: UInt32) -> Int {
        let group = nextBufferGroup
        nextBufferGroup &+= 1
        let result = registerBufferRing(ringMemory, entries: entries, group: group, flags: 0)
        return result < 0 ? result : Int(group)
    }

    /// Registers a ring of provided buffers as `group` (`io_uring_register_buf_ring`), with the
    /// registration's `flags` (`IOU_PBUF_RING_INC`); 0 or `-errno`.
    func registerBufferRing(_ ringMemory: UnsafeMutablePointer<io_uring_buf_ring>, entries: UInt32,
                            group: UInt16, flags: UInt16) -> Int {
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: ringMemory))
        registration.ring_entries = entries
        registration.bgid = group
        registration.pad = flags  // `flags` in newer kernel headers
        return Int(io_uring_register_buf_ring(ring, &registration, 0))
    }

    func unregisterBufferRing(_ group: UInt16) {
        _ = io_uring_unregister_buf_ring(ring, CInt(group))
    }
}
