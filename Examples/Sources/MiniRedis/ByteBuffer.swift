#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer in memory it allocates itself: bytes are appended at `writeIndex`
/// and consumed from `readIndex`. A connection's input (received requests) and output (replies
/// to send) are each one of these; they allocate nothing while their capacity suffices.
///
/// Not thread-safe: a buffer belongs to one connection, used on its reactor's thread.
public final class ByteBuffer {
    // Private stored properties: the optimizer can then drop the dynamic exclusivity checks
    // on them (with public ones, every access paid for `swift_beginAccess`).
    private var base: UnsafeMutableRawPointer?
    private var allocated = 0
    /// The first byte not yet consumed.
    private var readIndex = 0
    /// Where the next appended byte goes.
    private var writeIndex = 0

    /// A buffer of `capacity` bytes, allocated on first use.
    public init(capacity: Int = 0) {
        if capacity > 0 { reallocate(capacity) }
    }

    /// The bytes allocated.
    public var capacity: Int { allocated }

    deinit { free(base) }

    /// The number of bytes appended and not yet consumed.
    public var count: Int { writeIndex - readIndex }
    public var isEmpty: Bool { writeIndex == readIndex }

    /// The bytes appended and not yet consumed.
    public var readable: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base.map { $0 + readIndex }, count: count)
    }

    /// The free space after `writeIndex`.
    public var writable: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base.map { $0 + writeIndex }, count: allocated - writeIndex)
    }

    /// Marks `n` bytes written into `writable` as appended.
    public func didWrite(_ n: Int) {
        precondition(n >= 0 && writeIndex + n <= allocated)
        writeIndex += n
    }

    /// Consumes `n` bytes; an emptied buffer starts again at its beginning.
    public func consume(_ n: Int) {
        precondition(n >= 0 && readIndex + n <= writeIndex)
        readIndex += n
        if readIndex == writeIndex { readIndex = 0; writeIndex = 0 }
    }

    /// Consumes everything.
    public func clear() { readIndex = 0; writeIndex = 0 }

    /// Makes room for at least `n` more bytes after `writeIndex`: moves the unconsumed bytes to
    /// the start when that is enough, else grows (at least doubling).
    public func reserve(_ n: Int) {
        if allocated - writeIndex >= n { return }
        compact()
        if allocated - writeIndex >= n { return }
        reallocate(max(count + n, allocated * 2, 64))
    }

    /// Gives memory back: shrinks to `target` bytes when the buffer is larger and holds no
    /// more than that (used after a large request or reply has passed).
    public func shrink(to target: Int) {
        guard allocated > target, count <= target else { return }
        compact()
        if target == 0 {
            free(base)
            base = nil
            allocated = 0
        } else {
            reallocate(target)
        }
    }

    private func compact() {
        guard readIndex > 0, let base else { return }
        let n = count
        if n > 0 { memmove(base, base + readIndex, n) }
        readIndex = 0
        writeIndex = n
    }

    private func reallocate(_ newCapacity: Int) {
        guard let memory = realloc(base, newCapacity) else { fatalError("out of memory") }
        base = memory
        allocated = newCapacity
    }

    // MARK: Appending

    @inline(__always)
    public func append(_ byte: UInt8) {
        reserve(1)
        base.unsafelyUnwrapped.storeBytes(of: byte, toByteOffset: writeIndex, as: UInt8.self)
        writeIndex += 1
    }

    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count)
        (base.unsafelyUnwrapped + writeIndex).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        writeIndex += bytes.count
    }

    public func append(_ string: StaticString) {
        string.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Appends the decimal digits of `value`.
    public func appendDecimal(_ value: Int64) {
        withDecimal(value) { append($0) }
    }
}
