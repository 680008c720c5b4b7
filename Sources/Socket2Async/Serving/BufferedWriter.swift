/// Coalesces small writes to a stream socket into few sends.
///
/// ```swift
/// let writer = BufferedWriter(connection)
/// try await writer.write("HTTP/1.1 200 OK\r\n")
/// try await writer.write(headerBytes)
/// try await writer.flush()                  // one send for both
/// ```
///
/// A write copies its bytes into the writer's buffer at once — a `RawSpan` too, which is how a
/// borrowed view reaches the socket safely — and sends only when the buffer would overflow
/// (the buffer's bytes first, then the write's rest through the buffer). ``flush()`` sends what
/// is buffered. Nothing is sent by the writer going away: flush before you drop it.
///
/// **Memory.** The buffer of `capacity` bytes is allocated at the first write and, by default,
/// kept for the writer's life, so that writing allocates nothing per message. With
/// `keepsBuffer: false` it is released whenever a flush empties it: an idle connection then
/// holds no buffer, at the price of an allocation after each flush.
///
/// **Errors.** A flush that throws (`Errno`, `CancellationError`, a deadline of
/// ``AsyncSocket/withTimeout(_:_:)``) keeps the bytes it did not send, in order, for the next
/// flush: nothing is lost or sent twice.
///
/// `BufferedWriter` is not `Sendable`: one task writes to it. Its methods are
/// `nonisolated(nonsending)`: they run in the caller's isolation. Do not send on the socket
/// beside the writer while it holds bytes: they would be sent out of order.
public final class BufferedWriter {
    /// The socket written to.
    public let socket: AsyncSocket
    /// The size of the buffer: a write that would pass it sends first.
    public let capacity: Int
    private let keepsBuffer: Bool
    /// Bytes written and not yet sent are `storage[start..<end]`; nil when released.
    private var storage: UnsafeMutableRawBufferPointer?
    private var start = 0
    private var end = 0

    /// A writer of `socket` that sends once `capacity` bytes (at least 1) are buffered.
    ///
    /// - Parameters:
    ///   - socket: the socket the writer sends on.
    ///   - capacity: the size of the buffer, in bytes (at least 1).
    ///   - keepsBuffer: keep the buffer allocated between flushes (the default: no allocation per
    ///     message), or release it whenever a flush empties it (no memory while idle).
    public init(_ socket: AsyncSocket, capacity: Int = 16384, keepsBuffer: Bool = true) {
        precondition(capacity > 0, "a buffer of no bytes")
        self.socket = socket
        self.capacity = capacity
        self.keepsBuffer = keepsBuffer
    }

    deinit { storage?.deallocate() }

    /// How many bytes are written and not yet sent.
    public var bufferedByteCount: Int { end - start }

    /// Writes one byte.
    public nonisolated(nonsending) func write(_ byte: UInt8) async throws {
        if end == capacity { try await flush() }
        let storage = buffer()
        storage[end] = byte
        end += 1
    }

    /// Writes the bytes of `bytes`, copied before the call returns.
    public nonisolated(nonsending) func write(_ bytes: RawSpan) async throws {
        try await write(count: bytes.byteCount) { offset in
            bytes.withUnsafeBytes { copyIn(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
        }
    }

    /// Writes `string` as UTF-8.
    public nonisolated(nonsending) func write(_ string: String) async throws {
        try await write(string.utf8)
    }

    /// Writes the bytes of `bytes`: copied in blocks when they are contiguous (an array, a
    /// slice, a string's UTF-8 view), else one by one.
    public nonisolated(nonsending) func write(_ bytes: some Sequence<UInt8>) async throws {
        if let count = bytes.withContiguousStorageIfAvailable({ $0.count }) {
            try await write(count: count) { offset in
                bytes.withContiguousStorageIfAvailable {
                    copyIn(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: $0[offset...])))
                }!
            }
        } else {
            for byte in bytes { try await write(byte) }
        }
    }

    /// Sends every buffered byte: `send(2)` (or `IORING_OP_SEND`) until none is left.
    ///
    /// When it throws, the bytes not sent stay buffered, in order, for the next flush.
    public nonisolated(nonsending) func flush() async throws {
        while end > start, let storage {
            start += try await socket.send(UnsafeRawBufferPointer(rebasing: storage[start..<end]))
        }
        (start, end) = (0, 0)
        if !keepsBuffer, let storage {
            storage.deallocate()
            self.storage = nil
        }
    }

    /// Writes `count` bytes with `copy(offset)`, which copies from the offset as much as fits
    /// and returns how much that was, flushing whenever the buffer is full.
    private nonisolated(nonsending) func write(count: Int, _ copy: (Int) -> Int) async throws {
        var offset = 0
        while true {
            offset += copy(offset)
            if offset == count { return }
            try await flush()
        }
    }

    /// Copies as much of `bytes` as fits after the buffered bytes; returns how much.
    private func copyIn(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard !bytes.isEmpty else { return 0 }
        let storage = buffer()
        if start > 0, capacity - end < bytes.count {
            // Sent bytes leave room at the front.
            storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: end - start)
            (start, end) = (0, end - start)
        }
        let count = min(bytes.count, capacity - end)
        UnsafeMutableRawBufferPointer(rebasing: storage[end..<(end + count)])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
        end += count
        return count
    }

    /// The buffer, allocated when there is none.
    private func buffer() -> UnsafeMutableRawBufferPointer {
        if let storage { return storage }
        let made = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        storage = made
        return made
    }
}
