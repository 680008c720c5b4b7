#if canImport(Glibc)
import Glibc
#endif
import CURing
import SystemPackage

// The lean receive on io_uring (`AsyncSocket.receive(_:)`): one ring of provided buffers per
// reactor, shared by its stream sockets, and per socket a multishot `IORING_OP_RECV` that selects
// a buffer only when bytes arrive. An idle connection holds no buffer; a connection's bytes sit
// in the pool only from their arrival until the receive that hands them out returns.
//
// With incremental consumption (`IOU_PBUF_RING_INC`, Linux 6.12) each buffer is large and every
// completion takes only the bytes it received from the buffer at the head of the ring, so small
// messages of many connections share one buffer; a buffer goes back to the ring once the kernel
// has finished it (a completion without `IORING_CQE_F_BUF_MORE`) and every chunk taken from it
// has been handed out. Older kernels use each buffer for one completion.
//
// A request ends by itself after `PooledInput.queueLimit` buffers' worth of bytes (the multishot
// byte limit, Linux 6.17) and is armed again when a receive waits: a fast stream holds a few
// buffers, not its whole socket buffer, and takes its turn among the others. Older kernels refuse
// the limit; there a request is cancelled when its chunks pile up.
//
// `ENOBUFS` ends a socket's request with no byte taken: the socket waits in a first-in,
// first-out queue and is re-armed, in turn, when buffers come back or the pool grows (doubling,
// up to its maximum). Memory follows traffic: a buffer that comes back is unmapped while the pool
// has more than twice the buffers held out of the ring at the peak of this period and the last
// (a second each; a period in which the ring ran dry keeps them all). Shrinking on a shorter
// horizon made a single fast stream map and fault in a buffer for every other chunk (a stream
// holds a few buffers at a time, so half the pool always looked unused): page faults took most
// of the reactor's time.

/// A chunk of a stream that a socket's multishot request took: bytes in a pool buffer
/// (`result` > 0), the end of the stream (0), or an error (`-errno`).
struct PooledChunk {
    var result: Int32
    var buffer: UInt16 = 0
    var offset: UInt32 = 0
}

/// A socket's part of the lean receive (io_uring; reactor thread only).
struct PooledInput {
    /// The multishot request's record, -1 when none is in the kernel.
    var armed: Int32 = -1
    /// The lean receive waiting for bytes, -1 when none.
    var waiter: Int32 = -1
    /// Chunks taken from the kernel and not handed out yet, oldest first.
    var chunks: [PooledChunk] = []
    /// Receives of other forms waiting for the multishot request to end (`takeBackPooledInput`).
    var takeBack: [UnsafeContinuation<Void, Never>] = []
    /// In the pool's queue of sockets waiting for buffers (`ENOBUFS` ended the request).
    var starved = false
    /// The request is being cancelled: too many chunks wait, or input is being taken back.
    var stopping = false
    /// The stream ended or failed: no request is armed again, receives see the end.
    var ended = false
    /// A receive of another form is taking the input back: no request is armed meanwhile.
    var takingBack = false

    /// Whether the reactor holds input of the socket for lean receives.
    var isActive: Bool { armed >= 0 || !chunks.isEmpty }

    /// Chunks kept while no receive waits before the request is paused (backpressure: the
    /// kernel's socket buffer and TCP's window take over). Where the kernel limits the bytes of
    /// a request, a request ends by itself after this many full buffers.
    static let queueLimit = 4
}

/// Sizes of a reactor's receive pool (tests use tiny ones).
struct ReceivePoolSize: Sendable {
    /// Bytes per buffer.
    var bufferSize = 64 * 1024
    /// Buffers kept however idle the reactor is.
    var minimumBuffers = 4
    /// Buffers at most (the ring's entries; a power of two): 4 MiB. With 256 (16 MiB) the
    /// 10-minute soak's pool grew by 8 MiB after its warm-up under 500 slow readers' 64 KiB
    /// messages; with 64 its echoes did not wait longer (0.34 s) and its memory stayed flat.
    var maximumBuffers = 64
    /// How long the peak use that decides the pool's size is remembered (nanoseconds).
    var usePeriod: UInt64 = 5_000_000_000
}

/// The provided-buffer ring a reactor's lean receives share (io_uring; reactor thread only).
final class ReceivePool {
    unowned(unsafe) let backend: URingBackend
    let group: UInt16
    let size: ReceivePoolSize
    /// Whether the kernel consumes buffers incrementally (`IOU_PBUF_RING_INC`).
    let incremental: Bool
    private let ring: UnsafeMutablePointer<io_uring_buf_ring>
    private let mask: CInt
    /// The buffers by id: mapped, or nil.
    private var buffers: [UnsafeMutableRawPointer?]
    /// Bytes of each buffer the kernel has filled since it was provided.
    private var consumed: [UInt32]
    /// Chunks of each buffer queued or being handed out.
    private var holders: [Int32]
    /// Whether the kernel may still fill each buffer.
    private var inKernel: [Bool]
    private var unusedIDs: [UInt16]
    /// Buffers mapped.
    private(set) var bufferCount = 0
    /// Buffers the kernel may still fill.
    private(set) var published = 0
    /// Sockets whose request `ENOBUFS` ended, first come first served.
    private var starved: [IOState] = []
    private var starvedHead = 0
    /// Requests `ENOBUFS` ended (tests and diagnostics).
    private(set) var exhaustions = 0
    /// Buffers mapped since the pool was made (tests and diagnostics).
    private(set) var mappings = 0
    /// Buffers held out of the ring at most in this period and the last (the ring running dry
    /// counts as all of them).
    private var peakHeld = (current: 0, previous: 0)
    /// The pool grew in this turn of the reactor's loop (see `starve`).
    private var grewThisTurn = false
    private var periodStart = monotonicNanoseconds()

    static let incrementalFlag: UInt16 = 2  // IOU_PBUF_RING_INC
    static let bufferMoreFlag: UInt32 = 1 << 4  // IORING_CQE_F_BUF_MORE

    init(backend: URingBackend, group: UInt16, size: ReceivePoolSize) throws {
        self.backend = backend
        self.group = group
        self.size = size
        var entries = 1
        while entries < size.maximumBuffers { entries <<= 1 }
        mask = io_uring_buf_ring_mask(UInt32(entries))
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, Int(sysconf(CInt(_SC_PAGESIZE))),
                             entries * MemoryLayout<io_uring_buf>.stride) == 0, let memory
        else { throw Errno.noMemory }
        ring = memory.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        var result = backend.registerBufferRing(ring, entries: UInt32(entries), group: group,
                                                flags: Self.incrementalFlag)
        var incremental = true
        if result == -Int(EINVAL) {
            incremental = false
            result = backend.registerBufferRing(ring, entries: UInt32(entries), group: group, flags: 0)
        }
        guard result >= 0 else {
            free(memory)
            throw ResultCode.error(for: result)
        }
        self.incremental = incremental
        io_uring_buf_ring_init(ring)
        buffers = Array(repeating: nil, count: size.maximumBuffers)
        consumed = Array(repeating: 0, count: size.maximumBuffers)
        holders = Array(repeating: 0, count: size.maximumBuffers)
        inKernel = Array(repeating: false, count: size.maximumBuffers)
        unusedIDs = (0..<UInt16(size.maximumBuffers)).reversed()
        add(size.minimumBuffers)
    }

    /// Unregisters the ring and unmaps the buffers (the ring is being destroyed).
    func destroy() {
        backend.unregisterBufferRing(group)
        free(ring)
        for case let buffer? in buffers { sys_unmap(buffer, size.bufferSize) }
        buffers = Array(repeating: nil, count: buffers.count)
        starved.removeAll()
    }

    // MARK: Buffers

    /// Maps up to `count` more buffers and gives them to the kernel.
    private func add(_ count: Int) {
        for _ in 0..<count {
            guard let id = unusedIDs.popLast() else { return }
            guard let buffer = sys_mapAnonymous(size.bufferSize) else {
                unusedIDs.append(id)
                return
            }
            buffers[Int(id)] = buffer
            bufferCount += 1
            mappings += 1
            provide(Int(id))
        }
    }

    private func provide(_ id: Int) {
        io_uring_buf_ring_add(ring, buffers[id], UInt32(size.bufferSize), UInt16(id), mask, 0)
        io_uring_buf_ring_advance(ring, 1)
        inKernel[id] = true
        consumed[id] = 0
        published += 1
    }

    /// The chunk a completion with a buffer delivered (its bytes stay in the buffer until
    /// `release`).
    func take(_ result: CInt, _ flags: UInt32) -> PooledChunk? {
        guard flags & IORING_CQE_F_BUFFER != 0 else { return nil }
        let id = Int(flags >> IORING_CQE_BUFFER_SHIFT)
        guard id < buffers.count, buffers[id] != nil else { return nil }
        let offset = incremental ? consumed[id] : 0
        consumed[id] &+= UInt32(result)
        holders[id] += 1
        if flags & Self.bufferMoreFlag == 0 {
            inKernel[id] = false
            published -= 1
            peakHeld.current = max(peakHeld.current, bufferCount - published)
        }
        return PooledChunk(result: result, buffer: UInt16(id), offset: offset)
    }

    /// The bytes of a chunk (valid until it is released).
    @inline(__always)
    func bytes(of chunk: PooledChunk) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: buffers[Int(chunk.buffer)]! + Int(chunk.offset), count: Int(chunk.result))
    }

    /// The chunk was handed out: its buffer goes back to the kernel once nothing else holds it.
    func release(_ chunk: PooledChunk) {
        guard chunk.result > 0 else { return }
        let id = Int(chunk.buffer)
        holders[id] -= 1
        guard holders[id] == 0, !inKernel[id], let buffer = buffers[id] else { return }
        if isLargerThanUseNeeds() {
            sys_unmap(buffer, size.bufferSize)
            buffers[id] = nil
            unusedIDs.append(UInt16(id))
            bufferCount -= 1
            return
        }
        provide(id)
        wakeStarved()
    }

    /// Whether the pool has more buffers than twice its recent peak use (and than its minimum).
    private func isLargerThanUseNeeds() -> Bool {
        guard bufferCount > size.minimumBuffers else { return false }
        let now = monotonicNanoseconds()
        if now &- periodStart >= size.usePeriod {
            peakHeld = (bufferCount - published, peakHeld.current)
            periodStart = now
        }
        return bufferCount > 2 * max(peakHeld.current, peakHeld.previous)
    }

    // MARK: Starved sockets

    /// A new turn of the reactor's loop: the pool may grow again.
    func beginTurn() { grewThisTurn = false }

    /// Whether sockets wait for buffers (a socket arming now queues behind them).
    var hasStarved: Bool { starvedHead < starved.count }

    /// `io`'s request ended for lack of buffers (`exhausted`: the pool grows), or `io` must wait
    /// its turn behind sockets that did: it joins the end of the queue.
    func starve(_ io: IOState, exhausted: Bool) {
        if !io.pooled.starved {
            io.pooled.starved = true
            starved.append(io)
        }
        if exhausted {
            exhaustions += 1
            // At most once per loop turn. The kernel ends every request that finds the ring
            // empty, and their completions come in one batch: growing for each doubled the pool
            // up to its maximum in one turn (10,000 connections' first bytes took 256 buffers
            // where 10 were in use). Nor only while the ring is still empty: read handlers
            // give their buffers back within the batch, so the ring is rarely empty when an
            // exhaustion is seen, and a pool that never grew had its 4 buffers run dry about a
            // million times a second under 10,000 connections (each time a request ended and
            // was armed again), with echoes waiting seconds.
            if !grewThisTurn && bufferCount < size.maximumBuffers {
                add(min(max(bufferCount, 1), size.maximumBuffers - bufferCount))
                grewThisTurn = true
            }
            peakHeld.current = bufferCount
        }
        wakeStarved()
    }

    /// Re-arms queued sockets, oldest first, while buffers are available: a few per buffer
    /// (with incremental consumption one buffer serves many small receives).
    private func wakeStarved() {
        var budget = published * (incremental ? 16 : 1)
        while budget > 0, starvedHead < starved.count {
            let io = starved[starvedHead]
            starvedHead += 1
            io.pooled.starved = false
            // A socket nobody reads any more is armed by its next receive.
            if io.wantsPooledInput && backend.armPooled(io, turn: true) { budget -= 1 }
        }
        if starvedHead == starved.count {
            starved.removeAll(keepingCapacity: true)
            starvedHead = 0
        }
    }
}

// MARK: - The multishot requests (io_uring backend)

extension URingBackend {
    /// The reactor's receive pool, made at the first lean receive.
    func receivePool() throws -> ReceivePool {
        if let pool { return pool }
        let group = nextBufferGroup
        nextBufferGroup &+= 1
        let made = try ReceivePool(backend: self, group: group, size: poolSize)
        pool = made
        return made
    }

    /// Starts a lean receive's wait: at once with a queued chunk or at the end of the stream;
    /// else the socket's multishot request is armed (unless it is already).
    func startPooledWait(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>, _ io: IOState) {
        if !io.pooled.chunks.isEmpty {
            let chunk = io.pooled.chunks.removeFirst()
            io.refreshHeldInput()
            completeWaiter(record, with: chunk)
            return
        }
        if io.pooled.ended {
            reactor.complete(record, 0)
            return
        }
        reactor.markPending(record, input: true)
        io.pooled.waiter = index
        _ = armPooled(io)
    }

    private func completeWaiter(_ record: UnsafeMutablePointer<OpRecord>, with chunk: PooledChunk) {
        record.pointee.resultFlags = UInt32(chunk.buffer)
        record.pointee.length = Int(chunk.offset)
        reactor.complete(record, Int(chunk.result))
    }

    /// Submits `io`'s multishot receive unless one is in the kernel, the stream ended, or the
    /// socket must wait its turn for buffers (`turn`: the pool's queue says it is its turn).
    /// Whether it submitted one.
    @discardableResult
    func armPooled(_ io: IOState, turn: Bool = false) -> Bool {
        guard io.pooled.armed < 0, !io.pooled.starved, !io.pooled.ended, !io.pooled.takingBack, !io.closed,
              !io.released, !reactor.stopping, let pool
        else { return false }
        if !turn && (pool.hasStarved || pool.published == 0) {
            pool.starve(io, exhausted: false)
            return false
        }
        let index = reactor.ops.allocate(.pooledMultishot, fd: io.fd, io: io)
        let record = reactor.ops.record(index)
        // The request keeps its socket state alive: it may outlive the socket's owner.
        record.pointee.stream = Unmanaged.passRetained(io as AnyObject)
        record.pointee.isMultishot = true
        io.pooled.armed = index
        submit(record)
        reactor.markPending(record, input: true)
        io.refreshHeldInput()
        return true
    }

    /// Fills a socket's multishot receive (no buffer of its own: the pool's group).
    func preparePooled(_ entry: UnsafeMutablePointer<io_uring_sqe>, fd: CInt) {
        io_uring_prep_recv_multishot(entry, fd, nil, 0, 0)
        entry.pointee.flags |= UInt8(1 << IOSQE_BUFFER_SELECT_BIT)
        socket2async_sqe_set_buf_group(entry, pool!.group)
        // Without a limit one request drains the socket's whole receive buffer (megabytes on a
        // fast stream) into the pool before the reactor sees its first completion.
        socket2async_sqe_set_multishot_limit(entry, pooledByteLimit)
        if refuseMultishotLimit && pooledByteLimit > 0 { entry.pointee.addr2 = 1 }
    }

    /// A completion of a socket's multishot receive.
    func deliverPooled(_ record: UnsafeMutablePointer<OpRecord>, _ result: CInt, _ flags: UInt32) {
        let io = unsafeDowncast(record.pointee.stream!.takeUnretainedValue(), to: IOState.self)
        let pool = pool!
        if result == -EINVAL && pooledByteLimit > 0 && !pooledByteLimitConfirmed {
            // A kernel without the byte limit (before 6.17) refuses the request: arm it again
            // without one, relying on cancelling it when chunks pile up.
            pooledByteLimit = 0
            finishPooled(record, io)
            return
        }
        if result > 0 { pooledByteLimitConfirmed = true }
        if result == -ENOBUFS {
            // No byte was taken. The socket queues for buffers once the request is over.
            if flags & IORING_CQE_F_MORE == 0 { finishPooled(record, io, rearm: false) }
            pool.starve(io, exhausted: true)
            return
        }
        if result > 0 {
            if let chunk = pool.take(result, flags) { handOver(io, chunk, pool) }
        } else if result != -ECANCELED {
            // The end of the stream, or an error: the last chunk.
            io.pooled.ended = true
            handOver(io, PooledChunk(result: result), pool)
        }
        if flags & IORING_CQE_F_MORE == 0 { finishPooled(record, io) }
    }

    /// A chunk arrived: to the waiting receive, or queued (pausing the request when too many
    /// wait).
    private func handOver(_ io: IOState, _ chunk: PooledChunk, _ pool: ReceivePool) {
        if io.closed || io.released {
            pool.release(chunk)
            return
        }
        if io.pooled.waiter >= 0 {
            let waiter = reactor.ops.record(io.pooled.waiter)
            io.pooled.waiter = -1
            completeWaiter(waiter, with: chunk)
            return
        }
        if io.readHandler != nil && io.pooled.chunks.isEmpty {
            deliver(chunk, from: pool, to: io)
            return
        }
        io.pooled.chunks.append(chunk)
        io.refreshHeldInput()
        if io.pooled.chunks.count >= PooledInput.queueLimit { stopPooled(io, reason: .cancelled) }
    }

    func prepareReading(_ io: IOState) -> Int {
        do {
            _ = try receivePool()
            return 0
        } catch {
            return -Int((error as? Errno)?.rawValue ?? ENOMEM)
        }
    }

    /// Hands the input the reactor holds for `io` to its handler (stranded bytes, then queued
    /// chunks: at most a queue's worth, `PooledInput.queueLimit`), and keeps the socket's
    /// multishot request armed while it reads.
    func serveReader(_ io: IOState) {
        guard let pool else { return }
        while io.readHandler != nil && io.hasStrandedDatagrams.load(ordering: .relaxed) {
            do throws(Errno) {
                guard let datagram = try io.takeStrandedInput() else { break }
                datagram.payload.withUnsafeBytes { reactor.deliverInput(io, $0) }
            } catch {
                reactor.endInput(io, error: error)
            }
        }
        while io.readHandler != nil, !io.pooled.chunks.isEmpty {
            let chunk = io.pooled.chunks.removeFirst()
            io.refreshHeldInput()
            deliver(chunk, from: pool, to: io)
        }
        guard io.readHandler != nil else { return }
        if io.pooled.ended {
            // A receive took the end before: it is the end again (as recv(2) returns 0 again).
            reactor.endInput(io)
        } else {
            armPooled(io)
        }
    }

    /// Lends a chunk's bytes to `io`'s handler (its error, or the end of the stream), then
    /// gives its buffer back.
    private func deliver(_ chunk: PooledChunk, from pool: ReceivePool, to io: IOState) {
        defer { pool.release(chunk) }
        if chunk.result < 0 {
            reactor.endInput(io, error: Errno(rawValue: -chunk.result))
        } else if chunk.result == 0 {
            reactor.endInput(io)
        } else {
            reactor.deliverInput(io, pool.bytes(of: chunk))
        }
    }

    /// Cancels `io`'s multishot request (its chunks stay queued).
    func stopPooled(_ io: IOState, reason: CancelReason) {
        guard io.pooled.armed >= 0 else { return }
        io.pooled.stopping = true
        let record = reactor.ops.record(io.pooled.armed)
        if record.pointee.cancelReason == .none {
            record.pointee.cancelReason = reason
            cancel(io.pooled.armed, record)
        }
    }

    /// The kernel ended a socket's multishot request: frees its record, wakes receives of
    /// other forms waiting for it, and re-arms when a lean receive still waits.
    private func finishPooled(_ record: UnsafeMutablePointer<OpRecord>, _ io: IOState, rearm: Bool = true) {
        reactor.settle(record)
        io.pooled.armed = -1
        io.pooled.stopping = false
        record.pointee.stream?.release()
        record.pointee.stream = nil
        reactor.ops.free(record.pointee.index)
        io.refreshHeldInput()
        if !io.pooled.takeBack.isEmpty {
            let waiting = io.pooled.takeBack
            io.pooled.takeBack.removeAll()
            for continuation in waiting { continuation.resume() }
        } else if rearm && io.wantsPooledInput {
            armPooled(io)
        }
    }

    /// The result a waiting lean receive gets when a receive of another form took the socket's
    /// input back: it looks at the stranded input and waits again (re-arming the request).
    static let pooledWaitRetry = -Int(EAGAIN)

    /// A lean receive is cancelled.
    func cancelPooledWait(_ index: Int32, _ record: UnsafeMutablePointer<OpRecord>, _ io: IOState) {
        if io.pooled.waiter == index { io.pooled.waiter = -1 }
        reactor.complete(record, record.pointee.cancelReason.resultCode)
    }

    /// The socket is gone: its request ends and its queued chunks' buffers go back.
    func forgetPooled(_ io: IOState) {
        stopPooled(io, reason: .closed)
        if let pool { for chunk in io.pooled.chunks { pool.release(chunk) } }
        io.pooled.chunks.removeAll()
        io.refreshHeldInput()
    }

    /// Makes the chunks a lean receive's request took (and ends the request) into stranded
    /// datagrams, so that a receive of another form gets them first, in order.
    func strandPooled(_ io: IOState) {
        guard let pool else { return }
        for chunk in io.pooled.chunks {
            if chunk.result < 0 {
                io.strand(StrandedDatagram(streamError: -chunk.result))
            } else {
                io.strand(StrandedDatagram(streamBytes: chunk.result > 0 ? Array(pool.bytes(of: chunk)) : []))
            }
            pool.release(chunk)
        }
        io.pooled.chunks.removeAll()
        io.refreshHeldInput()
    }
}

extension Reactor {
    /// Before a receive of another form on `io`: ends the lean receive's multishot request,
    /// waits until the kernel has let go of it, and leaves the bytes it took to the socket's
    /// stranded datagrams (reactor thread). Nothing is lost or reordered. A lean receive waiting
    /// meanwhile (its request is gone) wakes to look again: it is never left without one.
    nonisolated(nonsending) func takeBackPooledInput(_ io: IOState) async {
        guard let backend = uring else { return }
        io.pooled.takingBack = true
        if io.pooled.armed >= 0 {
            backend.stopPooled(io, reason: .cancelled)
            await withUnsafeContinuation { io.pooled.takeBack.append($0) }
        }
        io.pooled.takingBack = false
        backend.strandPooled(io)
        if io.pooled.waiter >= 0 {
            let waiter = ops.record(io.pooled.waiter)
            io.pooled.waiter = -1
            complete(waiter, URingBackend.pooledWaitRetry)
        }
    }
}

extension StrandedDatagram {
    /// Bytes of a stream a lean receive's request took (no address, no control data).
    init(streamBytes: [UInt8]) {
        payload = streamBytes
        name = []
        control = []
        flags = 0
    }

    /// The error a stream's request took (after the bytes before it).
    init(streamError: CInt) {
        self.init(streamBytes: [])
        error = streamError
    }
}
