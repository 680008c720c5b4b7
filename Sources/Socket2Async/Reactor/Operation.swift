#if canImport(Glibc)
import Glibc
#endif
import Socket2
import SystemPackage
import Synchronization

// Operations in flight live in a table of preallocated records owned by the reactor thread. A
// record is named by an `OpID`: its index and a generation that changes every time the record is
// reused, so that a late cancellation, timer or io_uring completion for an operation that is
// already over can never touch the next operation using the same record. With io_uring the id is
// the submission's `user_data`.

/// What an operation does.
enum OpKind: UInt8 {
    case recv, send, recvFrom, sendTo, recvMsg, sendMsg, accept, connect, shutdown, close
    /// A waiter for the next element of a multishot stream (io_uring).
    case streamWait
    /// A multishot request in the kernel feeding a stream (io_uring).
    case multishot
    /// The wake-up read of the reactor's eventfd (io_uring).
    case wakeRead
    /// A wait until any pollable descriptor is readable (`POLLIN`) or writable (`POLLOUT`):
    /// `poll(2)` on each readiness event (epoll), `IORING_OP_POLL_ADD` (io_uring). The result
    /// is the descriptor's `revents`.
    case readable, writable
    /// A wait for a socket's readability that receives nothing and makes no system call:
    /// completes when the socket's readiness says it is readable (epoll; only for a task whose
    /// failed attempt ran on the reactor thread, so that the readiness it trusts is current).
    case inputReady
    /// A lean receive waiting for bytes from the shared buffer ring (io_uring).
    case pooledWait
    /// The multishot receive of a stream socket drawing from the shared buffer ring (io_uring).
    case pooledMultishot

    /// Whether the operation takes data from the socket's receive queue (the kinds a stranded
    /// datagram can complete).
    var receivesData: Bool { self == .recv || self == .recvFrom || self == .recvMsg }

    /// Whether the operation's `flags` are the `MSG_*` flags of its call (sends and receives).
    var takesMessageFlags: Bool {
        switch self {
        case .recv, .recvFrom, .recvMsg, .send, .sendTo, .sendMsg: return true
        default: return false
        }
    }

    /// Whether the operation waits for the socket to become readable (epoll).
    var waitsForInput: Bool {
        switch self {
        case .recv, .recvFrom, .recvMsg, .accept, .streamWait, .multishot, .wakeRead, .readable, .inputReady,
             .pooledWait, .pooledMultishot:
            return true
        case .send, .sendTo, .sendMsg, .connect, .shutdown, .close, .writable: return false
        }
    }
}

/// Where a record is in its life.
enum OpState: UInt8 {
    case free
    /// Filled in, not yet handed to the backend (its continuation may not exist yet).
    case preparing
    /// Waiting: for readiness (epoll), in the kernel (io_uring), or for a retry timer.
    case pending
    /// The result is set and the continuation resumed; the task has not collected it yet.
    case completed
}

/// Why a pending operation is being taken back.
enum CancelReason: UInt8 {
    case none, cancelled, timedOut, closed, shutDown

    /// The result an operation cancelled for this reason completes with.
    var resultCode: Int {
        switch self {
        case .none: return 0
        case .cancelled: return ResultCode.cancelled
        case .timedOut: return -Int(ETIMEDOUT)
        case .closed: return ResultCode.closed
        case .shutDown: return ResultCode.shutDown
        }
    }
}

/// Results of operations: a count or descriptor (>= 0), `-errno`, or one of these.
enum ResultCode {
    static let cancelled = Int.min
    static let shutDown = Int.min + 1
    static let closed = Int.min + 2

    /// The value, or the error the result stands for. `EAGAIN` and `EINTR` never get here.
    @inline(__always)
    static func check(_ result: Int) throws -> Int {
        if result >= 0 { return result }
        throw error(for: result)
    }

    /// The value, nil for `-EAGAIN`, or the error the result stands for.
    @inline(__always)
    static func checkOrAgain(_ result: Int) throws -> Int? {
        result == -Int(EAGAIN) ? nil : try check(result)
    }

    static func error(for result: Int) -> any Error {
        switch result {
        case cancelled: return CancellationError()
        case shutDown: return ReactorError.shutDown
        case closed: return ReactorError.socketClosed
        default: return Errno(rawValue: CInt(-result))
        }
    }
}

/// The name of an operation record: generation in the high 32 bits, index in the low 32.
/// The top bit is always clear; ids with it set are the backends' own tags.
typealias OpID = UInt64

/// One operation: what to do, where the caller's memory is, and who waits for the result.
struct OpRecord {
    /// The record's place in the table; never changes.
    var index: Int32 = 0
    var generation: UInt32 = 1
    var state: OpState = .free
    var kind: OpKind = .recv
    var cancelReason: CancelReason = .none
    /// Set for multishot requests that keep producing completions.
    var isMultishot = false
    var fd: CInt = -1
    var flags: CInt = 0
    var buffer: UnsafeMutableRawPointer?
    var length: Int = 0
    /// Links in the socket's list of pending operations (or the free list, through `next`).
    var previous: Int32 = -1
    var next: Int32 = -1
    var io: Unmanaged<IOState>?
    var continuation: UnsafeContinuation<Int, Never>?
    var result: Int = 0
    /// io_uring completion flags, or `msg_flags` of a `recvmsg(2)`.
    var resultFlags: UInt32 = 0
    /// The current back-off delay of a retried operation, in milliseconds.
    var backoffMilliseconds: UInt32 = 0
    /// Waiting for a retry timer rather than for readiness.
    var backingOff = false
    /// The socket list the record is in: 0 none, 1 input, 2 output.
    var listed: UInt8 = 0
    /// The stream a multishot request or stream waiter belongs to.
    var stream: Unmanaged<AnyObject>?
    /// The byte a readiness wait peeks at (`MSG_PEEK`), and discards.
    var peekByte: UInt8 = 0
    /// The record's address and message storage, set by the table, never changed: kept apart,
    /// in memory that becomes resident only where an operation uses it (the receive a
    /// connection waits in most of its life needs none of it).
    var extras: UnsafeMutablePointer<OpExtras>!

    /// Whether the caller asked its call not to wait (`MSG_DONTWAIT`): where it would, it
    /// completes with `EAGAIN` instead, as the call does.
    var mustNotWait: Bool { kind.takesMessageFlags && flags & MessageFlags.dontWait.rawValue != 0 }

    /// An address the kernel reads (connect, sendto) or writes (accept, recvfrom), and its length.
    var address: sockaddr_storage {
        get { extras.pointee.address }
        nonmutating set { extras.pointee.address = newValue }
    }
    var addressLength: socklen_t {
        get { extras.pointee.addressLength }
        nonmutating set { extras.pointee.addressLength = newValue }
    }
    var message: msghdr {
        get { extras.pointee.message }
        nonmutating set { extras.pointee.message = newValue }
    }
    var spilledVectors: UnsafeMutablePointer<iovec>? {
        get { extras.pointee.spilledVectors }
        nonmutating set { extras.pointee.spilledVectors = newValue }
    }
    static let inlineVectorCount = 4

    var isFree: Bool { state == .free }

    /// Pointers to the record's own storage, for the kernel (it never moves).
    static func addressPointer(_ record: UnsafeMutablePointer<OpRecord>) -> UnsafeMutablePointer<sockaddr> {
        UnsafeMutableRawPointer(extrasPointer(record, \.address)).assumingMemoryBound(to: sockaddr.self)
    }

    static func addressLengthPointer(_ record: UnsafeMutablePointer<OpRecord>) -> UnsafeMutablePointer<socklen_t> {
        UnsafeMutableRawPointer(extrasPointer(record, \.addressLength)).assumingMemoryBound(to: socklen_t.self)
    }

    static func messagePointer(_ record: UnsafeMutablePointer<OpRecord>) -> UnsafeMutablePointer<msghdr> {
        UnsafeMutableRawPointer(extrasPointer(record, \.message)).assumingMemoryBound(to: msghdr.self)
    }

    static func iovPointer(_ record: UnsafeMutablePointer<OpRecord>) -> UnsafeMutablePointer<iovec> {
        UnsafeMutableRawPointer(extrasPointer(record, \.iov)).assumingMemoryBound(to: iovec.self)
    }

    static func peekBytePointer(_ record: UnsafeMutablePointer<OpRecord>) -> UnsafeMutablePointer<UInt8> {
        (UnsafeMutableRawPointer(record) + MemoryLayout<OpRecord>.offset(of: \.peekByte)!).assumingMemoryBound(to: UInt8.self)
    }

    private static func extrasPointer<T>(_ record: UnsafeMutablePointer<OpRecord>, _ field: KeyPath<OpExtras, T>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(record.pointee.extras) + MemoryLayout<OpExtras>.offset(of: field)!
    }

    /// The bytes a receive's record has room for (recv, recvfrom: its buffer; recvmsg: its
    /// vectors).
    static func receiveCapacity(_ record: UnsafeMutablePointer<OpRecord>) -> Int {
        guard record.pointee.kind == .recvMsg else { return record.pointee.length }
        let message = record.pointee.message
        return UnsafeBufferPointer(start: message.msg_iov, count: message.msg_iovlen).reduce(0) { $0 + $1.iov_len }
    }

    /// Room for `count` vectors that lives as long as the record's use.
    static func vectors(_ record: UnsafeMutablePointer<OpRecord>, count: Int) -> UnsafeMutablePointer<iovec> {
        if count <= inlineVectorCount { return iovPointer(record) }
        let spilled = UnsafeMutablePointer<iovec>.allocate(capacity: count)
        record.pointee.spilledVectors = spilled
        return spilled
    }

    /// The id naming this use of the record.
    var id: OpID { UInt64(generation) << 32 | UInt64(UInt32(bitPattern: index)) }
}

/// The part of an operation record that only some operations use: addresses, messages and
/// their vectors. All zeros is a valid value, so that its memory needs no initialisation (and
/// stays untouched, not resident, until an operation uses it).
struct OpExtras {
    var address = sockaddr_storage()
    var addressLength: socklen_t = 0
    var message = msghdr()
    /// The vectors of `message`: up to `OpRecord.inlineVectorCount` here, more in
    /// `spilledVectors` (allocated by `vectors(_:count:)`, freed with the record).
    var iov = (iovec(), iovec(), iovec(), iovec())
    var spilledVectors: UnsafeMutablePointer<iovec>?
}

/// The operation records, in chunks that never move (the kernel holds pointers into them).
/// Reactor thread only.
struct OpTable: ~Copyable {
    static let chunkShift = 8
    static let chunkSize = 1 << chunkShift

    private var chunks: [UnsafeMutablePointer<OpRecord>] = []
    /// Each chunk's extras, mapped (zero pages until written).
    private var extras: [UnsafeMutablePointer<OpExtras>] = []
    private static let extrasByteCount = chunkSize * MemoryLayout<OpExtras>.stride
    private var freeHead: Int32 = -1
    /// Records in use.
    private(set) var count = 0

    deinit {
        for chunk in chunks {
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
        for chunk in extras { sys_unmap(chunk, Self.extrasByteCount) }
    }

    @inline(__always)
    func record(_ index: Int32) -> UnsafeMutablePointer<OpRecord> {
        chunks[Int(index) >> Self.chunkShift] + (Int(index) & (Self.chunkSize - 1))
    }

    /// The record `id` names, or `nil` when that operation is over (the record was reused).
    @inline(__always)
    func record(for id: OpID) -> UnsafeMutablePointer<OpRecord>? {
        let index = Int(truncatingIfNeeded: id & 0xFFFF_FFFF)
        guard index < chunks.count << Self.chunkShift else { return nil }
        let record = record(Int32(index))
        guard record.pointee.generation == UInt32(truncatingIfNeeded: id >> 32),
              record.pointee.state != .free
        else { return nil }
        return record
    }

    @inline(__always)
    func id(of index: Int32) -> OpID { record(index).pointee.id }

    /// A fresh record in state `.preparing`.
    mutating func allocate(_ kind: OpKind, fd: CInt, io: IOState?) -> Int32 {
        if freeHead < 0 { grow() }
        let index = freeHead
        let record = record(index)
        freeHead = record.pointee.next
        record.pointee.next = -1
        record.pointee.previous = -1
        record.pointee.state = .preparing
        record.pointee.kind = kind
        record.pointee.fd = fd
        record.pointee.io = io.map { Unmanaged.passUnretained($0) }
        count += 1
        return index
    }

    /// Returns a record to the free list; its id stops naming anything.
    mutating func free(_ index: Int32) {
        let record = record(index)
        precondition(record.pointee.state != .free, "operation record freed twice")
        let generation = (record.pointee.generation &+ 1) & 0x7FFF_FFFF
        record.pointee.generation = generation == 0 ? 1 : generation
        record.pointee.state = .free
        record.pointee.cancelReason = .none
        record.pointee.isMultishot = false
        record.pointee.buffer = nil
        record.pointee.io = nil
        record.pointee.stream = nil
        record.pointee.continuation = nil
        record.pointee.result = 0
        record.pointee.resultFlags = 0
        record.pointee.backoffMilliseconds = 0
        record.pointee.backingOff = false
        record.pointee.listed = 0
        record.pointee.flags = 0
        if let spilled = record.pointee.spilledVectors {
            spilled.deallocate()
            record.pointee.spilledVectors = nil
        }
        record.pointee.previous = -1
        record.pointee.next = freeHead
        freeHead = index
        count -= 1
    }

    private mutating func grow() {
        let chunk = UnsafeMutablePointer<OpRecord>.allocate(capacity: Self.chunkSize)
        chunk.initialize(repeating: OpRecord(), count: Self.chunkSize)
        guard let extrasMemory = sys_mapAnonymous(Self.extrasByteCount) else {
            fatalError("Socket2Async: out of memory for operation records")
        }
        // Zero-filled by the kernel: a valid `OpExtras` in every slot without touching a page.
        let extrasChunk = extrasMemory.bindMemory(to: OpExtras.self, capacity: Self.chunkSize)
        let base = Int32(chunks.count << Self.chunkShift)
        chunks.append(chunk)
        extras.append(extrasChunk)
        for offset in stride(from: Self.chunkSize - 1, through: 0, by: -1) {
            chunk[offset].extras = extrasChunk + offset
            chunk[offset].index = base + Int32(offset)
            chunk[offset].next = freeHead
            freeHead = base + Int32(offset)
        }
    }

    /// Every record in use (for shutdown).
    func indicesInUse() -> [Int32] {
        var result: [Int32] = []
        for (chunkIndex, chunk) in chunks.enumerated() {
            for offset in 0..<Self.chunkSize where chunk[offset].state != .free {
                result.append(Int32(chunkIndex << Self.chunkShift + offset))
            }
        }
        return result
    }
}

/// The reactor's state for one socket: readiness (epoll) and the operations pending on it.
/// Reactor thread only, except `fd`, which never changes.
final class IOState: @unchecked Sendable {
    let fd: CInt
    /// Stream sockets: a short read or write means the kernel's buffer was drained or filled.
    let isStream: Bool
    /// Whether a read (write) may succeed without waiting: false only after `EAGAIN` (or a short
    /// stream transfer) and until the next readiness event. Epoll only.
    var readReady = true
    var writeReady = true
    /// The peer closed its side or the socket failed: reads never wait again.
    var inputClosed = false
    var closed = false
    /// The socket's owner is gone (the descriptor is closed or being closed).
    var released = false
    /// Connections a stopped multishot accept took from the kernel after its iterator went away:
    /// the next accept or stream of the socket gets them first (io_uring).
    var strandedConnections: [CInt] = []
    /// Datagrams a stopped multishot receive took from the kernel after its iterator went away:
    /// the socket's next receives return them first, oldest first (io_uring).
    private(set) var strandedDatagrams: [StrandedDatagram] = []
    /// Whether the reactor holds input of this socket: stranded datagrams, or a lean receive's
    /// multishot request and the chunks it took. Read by calls tried from other threads, which
    /// must then go through the reactor thread (where the held input comes first).
    let hasStrandedDatagrams = Atomic<Bool>(false)
    /// The lean receive's state (io_uring; see `ReceivePool`).
    var pooled = PooledInput()
    /// The epoll registration (index | generation << 32 in the reactor's table), 0 when none.
    var registration: UInt64 = 0
    /// Whether the epoll registration includes `EPOLLOUT` (always for a stream socket; for a
    /// datagram socket only while a send waits).
    var watchesOutput = false
    /// Pending operations waiting for input and for output, oldest first.
    var inputHead: Int32 = -1, inputTail: Int32 = -1
    var outputHead: Int32 = -1, outputTail: Int32 = -1
    /// Operations of this socket pending in the backend.
    var pendingCount = 0
    /// The close that waits for `pendingCount` to reach zero (io_uring).
    var closeWaiter: Int32 = -1
    /// The handler that reads the stream without a task (`AsyncSocket.startReading`), and the
    /// socket it reads, kept alive meanwhile as a waiting task keeps its socket: no descriptor
    /// is closed under the reactor while it reads.
    var readHandler: ReadHandler?
    var readSocket: AnyObject?
    /// This socket's place in the list of its server's open connections (`ConnectionRegistry`),
    /// -1 when it has none; and whether its handler task still runs. Guarded by the registry's
    /// lock.
    var registrySlot: Int32 = -1
    var registryHandlerRunning = false

    /// With epoll both flags follow readiness events. With io_uring a send is first tried
    /// directly (`writeReady` starts true, is cleared by `EAGAIN` and set again when a ring send
    /// completes): sending rarely has to wait, and a direct call then spares a completion and a
    /// task switch. Receives on a stream go through the ring; on a datagram socket, a receive
    /// that completed through the ring lets the next one try the queue directly first.
    init(fd: CInt, isStream: Bool, tracksReadiness: Bool) {
        self.fd = fd
        self.isStream = isStream
        readReady = tracksReadiness
        writeReady = true
    }

    @inline(__always)
    func isReady(input: Bool) -> Bool {
        input ? (readReady || inputClosed) : writeReady
    }

    /// Keeps a datagram a stopped multishot receive took from the kernel.
    func strand(_ datagram: StrandedDatagram) {
        strandedDatagrams.append(datagram)
        hasStrandedDatagrams.store(true, ordering: .relaxed)
    }

    /// Whether a lean receive waits or a handler reads: the multishot request is to stay armed.
    var wantsPooledInput: Bool { pooled.waiter >= 0 || readHandler != nil }

    /// Recomputes `hasStrandedDatagrams` after the held input changed.
    func refreshHeldInput() {
        hasStrandedDatagrams.store(!strandedDatagrams.isEmpty || pooled.isActive, ordering: .relaxed)
    }

    /// The oldest stranded datagram, taken off the queue unless `peek`. On a stream socket
    /// (where the "datagrams" are chunks of the byte stream) at most `maxCount` bytes of it: the
    /// rest stays queued, as the kernel keeps what a short read leaves.
    func takeStrandedDatagram(maxCount: Int = .max, peek: Bool = false) -> StrandedDatagram? {
        guard var first = strandedDatagrams.first else { return nil }
        if isStream && first.payload.count > maxCount {
            if !peek { strandedDatagrams[0].payload.removeFirst(maxCount) }
            first.payload.removeLast(first.payload.count - maxCount)
            return first
        }
        if !peek {
            strandedDatagrams.removeFirst()
            if strandedDatagrams.isEmpty { refreshHeldInput() }
        }
        return first
    }

    /// The oldest stranded datagram, taken off the queue; throws (and takes) a stranded error.
    func takeStrandedInput(maxCount: Int = .max) throws(Errno) -> StrandedDatagram? {
        guard let datagram = takeStrandedDatagram(maxCount: maxCount) else { return nil }
        if datagram.error != 0 { throw Errno(rawValue: datagram.error) }
        return datagram
    }

    /// Drops the stranded datagrams (the socket is closed).
    func dropStrandedDatagrams() {
        strandedDatagrams.removeAll()
        refreshHeldInput()
    }

    /// Learns from a receive's result: `EAGAIN`, or a short read of a stream (the kernel's
    /// queue is empty: any later data raises a new edge), means not ready; 0 means end of input.
    @inline(__always)
    func noteInput(_ result: Int, requested: Int, flags: CInt) {
        if result == -Int(EAGAIN) {
            readReady = false
        } else if result == 0 && requested > 0 && isStream {
            // (On a datagram socket 0 is an empty datagram, not the end of input.)
            inputClosed = true
        } else if isStream && result < requested && flags & MessageFlags.peek.rawValue == 0 {
            readReady = false
        }
    }

    /// Learns from a send's result: `EAGAIN`, or a short write of a stream, means not ready.
    @inline(__always)
    func noteOutput(_ result: Int, requested: Int) {
        if result == -Int(EAGAIN) || (isStream && result >= 0 && result < requested) {
            writeReady = false
        }
    }
}
