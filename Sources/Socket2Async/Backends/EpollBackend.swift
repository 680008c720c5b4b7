#if canImport(Glibc)
import Glibc
#endif
import CURing
import SystemPackage

/// The epoll backend: readiness, edge-triggered.
///
/// A socket is registered once, the first time one of its operations has to wait, for
/// `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET` (a datagram socket without `EPOLLOUT`: see
/// `watchOutput`); the registration's user data is an index into a
/// table and a generation, so that an event for a descriptor that was closed (and maybe reused)
/// meanwhile is recognised and dropped. An operation first tries its system call; only on
/// `EAGAIN` does it wait, in the socket's queue for its direction, and the backend performs the
/// call again when an event says the socket is ready. Adding a registration reports the
/// socket's current readiness, and readiness flags record every edge, so an edge that arrives
/// between `EAGAIN` and the wait is never lost.
final class EpollBackend: ReactorBackend {
    unowned(unsafe) let reactor: Reactor
    private let owner: OwningReactor
    let epollFD: CInt
    private let events: UnsafeMutablePointer<epoll_event>
    private static let eventCapacity = 1024
    private static let wakeTag = UInt64.max

    /// Registered sockets by table index; `generations` tell stale events apart.
    private var table: [IOState?] = [nil]
    private var generations: [UInt32] = [0]
    private var freeSlots: [Int32] = []

    var kind: Reactor.Backend { .epoll }
    var tracksReadiness: Bool { true }

    init(reactor: Reactor) throws {
        let fd = sys_epoll_create()
        guard fd >= 0 else { throw ResultCode.error(for: fd) }
        epollFD = CInt(fd)
        self.reactor = reactor
        owner = OwningReactor(reactor)
        events = .allocate(capacity: Self.eventCapacity)
        // The eventfd is never read: edge-triggered, every write is a new edge.
        let result = sys_epoll_ctl(
            epollFD, EPOLL_CTL_ADD, reactor.wakeFD, EPOLLIN.rawValue | EPOLLET.rawValue, Self.wakeTag)
        guard result >= 0 else {
            _ = sys_close(epollFD)
            events.deallocate()
            throw ResultCode.error(for: result)
        }
    }

    func destroy() {
        _ = sys_close(epollFD)
        events.deallocate()
        table.removeAll()
    }

    // MARK: Registration

    /// Registers `io` if it is not yet; false (with the error in `error`) when epoll refuses.
    private func register(_ io: IOState) -> Int {
        if io.registration != 0 { return 0 }
        let index: Int32
        if let free = freeSlots.popLast() {
            index = free
        } else {
            index = Int32(table.count)
            table.append(nil)
            generations.append(0)
        }
        let generation = generations[Int(index)] &+ 1
        generations[Int(index)] = generation
        let data = UInt64(generation) << 32 | UInt64(UInt32(bitPattern: index))
        let mask = Self.mask(output: io.isStream)
        var result = sys_epoll_ctl(epollFD, EPOLL_CTL_ADD, io.fd, mask, data)
        if result == -Int(EEXIST) { result = sys_epoll_ctl(epollFD, EPOLL_CTL_MOD, io.fd, mask, data) }
        guard result >= 0 else {
            freeSlots.append(index)
            return result
        }
        table[Int(index)] = io
        io.registration = data
        io.watchesOutput = io.isStream
        return 0
    }

    private static func mask(output: Bool) -> UInt32 {
        EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue | (output ? EPOLLOUT.rawValue : 0)
    }

    /// Adds or drops `EPOLLOUT` on a registered datagram socket. Every datagram a socket sent
    /// raises an `EPOLLOUT` edge when the kernel frees it (its send buffer space comes back), so
    /// a datagram socket watches output only while a send waits: else each sent datagram would
    /// wake the reactor once more. (`EPOLL_CTL_MOD` reports the socket's current readiness, so
    /// room that came back before the change is not missed.)
    private func watchOutput(_ io: IOState, _ watch: Bool) -> Int {
        guard io.watchesOutput != watch else { return 0 }
        let result = sys_epoll_ctl(epollFD, EPOLL_CTL_MOD, io.fd, Self.mask(output: watch), io.registration)
        if result >= 0 { io.watchesOutput = watch }
        return result
    }

    func forget(_ io: IOState) {
        guard io.registration != 0 else { return }
        let index = Int(io.registration & 0xFFFF_FFFF)
        if index < table.count, table[index] === io {
            table[index] = nil
            generations[index] &+= 1
            freeSlots.append(Int32(index))
        }
        io.registration = 0
    }

    // MARK: Operations

    func start(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {
        // The operation's task keeps its socket state alive: no retain needed.
        record.pointee.io!._withUnsafeGuaranteedRef { start(index, record, $0) }
    }

    private func start(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>, _ io: IOState) {
        switch record.pointee.kind {
        case .shutdown:
            reactor.complete(record, sys_shutdown(io.fd, record.pointee.flags))
        case .close:
            reactor.complete(record, sys_close(io.fd))
        case .connect:
            let result = attempt(record, io)
            if result == -Int(EAGAIN) {
                waitOrCancel(index, record, io, input: false)
            } else {
                reactor.complete(record, result)
            }
        default:
            let input = record.pointee.kind.waitsForInput
            let queueEmpty = (input ? io.inputHead : io.outputHead) < 0
            if record.pointee.mustNotWait {
                // Tried even where the flags say not ready (an edge may be on its way); behind
                // operations that wait, it would block.
                reactor.complete(record, queueEmpty ? attempt(record, io) : -Int(EAGAIN))
                return
            }
            if queueEmpty && io.isReady(input: input) {
                let result = attempt(record, io)
                if result != -Int(EAGAIN) {
                    if isBackoffError(record, result) {
                        park(index, record, io, input: input)
                        backOff(record)
                    } else {
                        reactor.complete(record, result)
                    }
                    return
                }
            }
            waitOrCancel(index, record, io, input: input)
        }
    }

    private func waitOrCancel(
        _ index: Int32, _ record: UnsafeMutablePointer<OpRecord>, _ io: IOState, input: Bool
    ) {
        if record.pointee.cancelReason != .none {
            reactor.complete(record, record.pointee.cancelReason.resultCode)
            return
        }
        var result = register(io)
        if result >= 0 && !input { result = watchOutput(io, true) }
        if result < 0 {
            reactor.complete(record, result)
            return
        }
        park(index, record, io, input: input)
    }

    func cancel(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {
        reactor.complete(record, record.pointee.cancelReason.resultCode)
    }

    func retry(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>) {
        let io = record.pointee.io!.takeUnretainedValue()
        record.pointee.backingOff = false
        if record.pointee.kind == .connect {
            // A Unix connect that found the listener's queue full: call connect(2) again.
            let result = attempt(record, io)
            if result != -Int(EAGAIN) { reactor.complete(record, result) }
            return
        }
        process(io, input: record.pointee.kind.waitsForInput, force: true)
    }

    // MARK: Read handlers

    func prepareReading(_ io: IOState) -> Int { register(io) }

    /// Receives into the thread's scratch memory and hands each chunk to the handler until the
    /// kernel's queue is empty (a short read or `EAGAIN`), for at most `readsPerTurn` chunks:
    /// then the socket is served again after the next poll, behind the others.
    func serveReader(_ io: IOState) {
        let scratch = ThreadScratch.current
        var reads = 0
        owner { reactor in
            while io.readHandler != nil && io.isReady(input: true) {
                if reads == Self.readsPerTurn {
                    reactor.readersToServe.append(io)
                    return
                }
                reads += 1
                let result = sys_recv(io.fd, scratch.baseAddress, scratch.count, 0)
                io.noteInput(result, requested: scratch.count, flags: 0)
                if result == -Int(EAGAIN) { return }
                if result == -Int(EINTR) { continue }
                if result < 0 {
                    reactor.endInput(io, error: Errno(rawValue: CInt(-result)))
                } else {
                    reactor.deliverInput(io, UnsafeRawBufferPointer(rebasing: scratch[..<result]))
                }
            }
        }
    }

    /// Chunks of 64 KiB one readiness event of a reader's socket takes at most.
    private static let readsPerTurn = 4

    // MARK: Waiting lists

    private func park(
        _ index: Int32, _ record: UnsafeMutablePointer<OpRecord>, _ io: IOState, input: Bool
    ) {
        owner { $0.markPending(record, input: input) }
    }

    /// Performs the waiting operations of one direction while the socket is ready.
    private func process(_ io: IOState, input: Bool, force: Bool = false) {
        owner { reactor in
            while true {
                let index = input ? io.inputHead : io.outputHead
                guard index >= 0 else { return }
                let record = reactor.ops.record(index)
                if record.pointee.backingOff && !force { return }
                guard force || io.isReady(input: input) || record.pointee.kind == .connect else { return }
                let result = attempt(record, io)
                if result == -Int(EAGAIN) { return }
                if isBackoffError(record, result) {
                    backOff(record)
                    return
                }
                reactor.complete(record, result)
                if io.closed { return }
            }
        }
    }

    /// `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM` on accept: the connection stays queued in the
    /// kernel, and no event will come when descriptors free up.
    private func isBackoffError(_ record: UnsafeMutablePointer<OpRecord>, _ result: Int) -> Bool {
        guard record.pointee.kind == .accept else { return false }
        return result == -Int(EMFILE) || result == -Int(ENFILE) || result == -Int(ENOBUFS)
            || result == -Int(ENOMEM)
    }

    /// Schedules a retry: 1 ms, doubling up to 100 ms.
    private func backOff(_ record: UnsafeMutablePointer<OpRecord>) {
        let previous = record.pointee.backoffMilliseconds
        let delay = previous == 0 ? 1 : min(previous * 2, 100)
        record.pointee.backoffMilliseconds = delay
        record.pointee.backingOff = true
        if record.pointee.kind == .accept { reactor.acceptBackoffs.wrappingAdd(1, ordering: .relaxed) }
        reactor.schedule(.retry, for: record.pointee.id, in: UInt64(delay) * 1_000_000)
    }

    // MARK: System calls

    /// Performs the operation's system call once; `-EAGAIN` when it would block. Updates the
    /// socket's readiness from the result.
    private func attempt(_ record: UnsafeMutablePointer<OpRecord>, _ io: IOState) -> Int {
        let fd = io.fd
        let result: Int
        switch record.pointee.kind {
        case .recv:
            result = sys_recv(fd, record.pointee.buffer, record.pointee.length, record.pointee.flags)
            io.noteInput(result, requested: record.pointee.length, flags: record.pointee.flags)
        case .recvFrom:
            record.pointee.addressLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            result = sys_recvfrom(fd, record.pointee.buffer, record.pointee.length, record.pointee.flags,
                                  OpRecord.addressPointer(record), OpRecord.addressLengthPointer(record))
            io.noteInput(result, requested: record.pointee.length, flags: record.pointee.flags)
        case .recvMsg:
            result = sys_recvmsg(fd, OpRecord.messagePointer(record), record.pointee.flags)
            if result >= 0 { record.pointee.resultFlags = UInt32(bitPattern: record.pointee.message.msg_flags) }
            if result == -Int(EAGAIN) { io.readReady = false }
        case .accept:
            record.pointee.addressLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            result = sys_accept(fd, OpRecord.addressPointer(record), OpRecord.addressLengthPointer(record))
            if result == -Int(EAGAIN) { io.readReady = false }
            if result == -Int(ECONNABORTED) || result == -Int(EPROTO) { return attempt(record, io) }
        case .send:
            result = sys_send(fd, record.pointee.buffer, record.pointee.length, record.pointee.flags)
            io.noteOutput(result, requested: record.pointee.length)
        case .sendTo:
            result = sys_sendto(fd, record.pointee.buffer, record.pointee.length, record.pointee.flags,
                                OpRecord.addressPointer(record), record.pointee.addressLength)
            io.noteOutput(result, requested: record.pointee.length)
        case .sendMsg:
            result = sys_sendmsg(fd, OpRecord.messagePointer(record), record.pointee.flags)
            if result == -Int(EAGAIN) { io.writeReady = false }
        case .connect:
            result = attemptConnect(record, io)
        case .readable:
            result = sys_pollNow(fd, events: CShort(POLLIN))
            if result == -Int(EAGAIN) { io.readReady = false }
        case .writable:
            result = sys_pollNow(fd, events: CShort(POLLOUT))
            if result == -Int(EAGAIN) { io.writeReady = false }
        case .inputReady:
            result = io.isReady(input: true) ? 0 : -Int(EAGAIN)
        case .shutdown, .close, .streamWait, .multishot, .wakeRead, .pooledWait, .pooledMultishot:
            result = -Int(EINVAL)
        }
        return result
    }

    /// Connect in two phases: `connect(2)` (0 done, `EINPROGRESS` started); then, on each
    /// writability event, `SO_ERROR` (the failure) or the peer's address (connected).
    private func attemptConnect(_ record: UnsafeMutablePointer<OpRecord>, _ io: IOState) -> Int {
        let fd = io.fd
        if record.pointee.flags == 0 {
            let result = sys_connect(fd, OpRecord.addressPointer(record), record.pointee.addressLength)
            if result == -Int(EINPROGRESS) || result == -Int(EINTR) {
                record.pointee.flags = 1
                return -Int(EAGAIN)
            }
            if result == -Int(EAGAIN) {
                // A Unix listener's queue is full; nothing will signal when it has room.
                backOff(record)
                return -Int(EAGAIN)
            }
            return result
        }
        let error = sys_socketError(fd)
        if error != 0 { return error > 0 ? -error : error }
        return sys_isConnected(fd) ? 0 : -Int(EAGAIN)
    }

    // MARK: Waiting

    func poll(timeout: UInt64?) {
        var milliseconds: CInt = -1
        if let timeout {
            milliseconds = timeout == 0 ? 0 : CInt(clamping: (timeout + 999_999) / 1_000_000)
        }
        var rounds = 0
        while true {
            let count = sys_epoll_wait(epollFD, events, CInt(Self.eventCapacity), milliseconds)
            guard count > 0 else { return }
            for offset in 0..<count { dispatch(events[offset]) }
            // A full array may have left events behind: take them in this turn too.
            rounds += 1
            guard count == Self.eventCapacity && rounds < 4 else { return }
            milliseconds = 0
        }
    }

    @inline(__always)
    private func dispatch(_ event: epoll_event) {
        let data = event.data.u64
        if data == Self.wakeTag { return }
        let index = Int(data & 0xFFFF_FFFF)
        guard index < table.count, generations[index] == UInt32(truncatingIfNeeded: data >> 32),
              let io = table[index]
        else { return }
        let flags = event.events
        let failed = flags & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
        if flags & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 || failed {
            io.readReady = true
            // A datagram socket's error (an ICMP report) is taken by the next receive and is
            // not the end of its input.
            if io.isStream && (flags & EPOLLRDHUP.rawValue != 0 || failed) { io.inputClosed = true }
            if io.inputHead >= 0 {
                process(io, input: true)
            } else if io.readHandler != nil {
                serveReader(io)
            }
        }
        if flags & EPOLLOUT.rawValue != 0 || failed {
            io.writeReady = true
            if io.outputHead >= 0 {
                process(io, input: false)
            } else if !io.isStream {
                _ = watchOutput(io, false)  // no send waits any more
            }
        }
    }
}
