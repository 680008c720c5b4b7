#if canImport(Glibc)
import Glibc
#endif

/// Reads framed items — lines, exact byte counts, items ended by a delimiter, length-prefixed
/// frames — from a stream socket, with bounded memory whatever the peer sends.
///
/// ```swift
/// let reader = BufferedReader(connection)
/// while let line = try await reader.readLine(maxLength: 1024) {
///     try await connection.sendAll("you said: \(line)\n")
/// }
/// ```
///
/// Each kind of read comes in two forms: one hands the item to a closure as a borrowed
/// `RawSpan`, valid only during the call, and allocates nothing; the other returns a `[UInt8]`
/// or a `String`. Every read returns `nil` when the stream ended cleanly between two items.
///
/// **Memory.** An item that lies whole in one received chunk is handed out straight from it.
/// Only bytes not handed out yet — a partial item, or the items after the one returned — are
/// copied into the reader's buffer, whose capacity is reused while it holds bytes. The buffer
/// is never much larger than the read's limit plus one received chunk, however long the
/// input: a line, delimited item or frame longer than its limit throws
/// ``BufferedReaderError/tooLong(limit:)`` or ``BufferedReaderError/frameTooLong(length:limit:)``
/// at once. When the buffer is empty and the reader has to receive, it releases its buffer: an
/// idle reader holds no memory for bytes, and a connection whose items each arrive in one chunk
/// never allocates one. The reader receives with ``AsyncSocket/receive(_:)``, which holds no
/// buffer while it waits either.
///
/// **Errors.** An over-long item is dropped: the error is thrown as soon as the limit is passed,
/// and the reader skips the rest of that item (through its delimiter, or the frame's declared
/// length) as bytes arrive, without storing them, so that a server can answer and read on. The
/// end of the stream inside an item throws ``BufferedReaderError/endOfStream(partial:)`` with the
/// bytes of the unfinished item. Errors of the socket (`Errno`, `CancellationError`, a deadline
/// of ``AsyncSocket/withTimeout(_:_:)``) pass through and lose nothing: a read that throws one
/// leaves every byte received so far in the reader for the next read.
///
/// **Isolation.** `BufferedReader` is not `Sendable`: one task reads from it. Its methods are
/// `nonisolated(nonsending)`, so they run in the caller's isolation — on an actor, on the
/// reactor, or in `AsyncSocket.withTimeout { try await reader.readLine() }` — with no `sending`
/// diagnostics and no executor hop.
///
/// Do not read from the socket beside the reader: bytes the reader has buffered would be
/// skipped.
public final class BufferedReader {
    /// Where the bytes come from.
    let source: any ByteSource
    /// Bytes received and not yet handed out are `storage[start..<end]`; nil when released.
    private var storage: UnsafeMutableRawBufferPointer?
    private var start = 0
    private var end = 0
    /// What is left of an over-long item that is being dropped.
    private var skip = Skip.none
    /// The peer ended the stream.
    private var ended = false

    /// A reader of `socket`'s stream.
    public convenience init(_ socket: AsyncSocket) {
        self.init(source: socket)
    }

    init(source: any ByteSource) {
        self.source = source
    }

    deinit { storage?.deallocate() }

    /// How many bytes the reader holds: received, not yet handed out.
    public var bufferedByteCount: Int { end - start }

    /// The capacity of the reader's buffer (0 when it holds none).
    public var bufferCapacity: Int { storage?.count ?? 0 }

    // MARK: Lines

    /// Reads a line ended by LF (`\n`) and calls `body` with its bytes, without the line ending.
    ///
    /// - Parameters:
    ///   - maxLength: the longest line accepted, in bytes, without its ending.
    ///   - allowingCRLF: when true, a CR just before the LF belongs to the line ending (`\r\n`)
    ///     and is not passed to `body`; a CR elsewhere stays in the line.
    ///   - body: called with the line's bytes, borrowed until it returns.
    /// - Returns: what `body` returned; `nil` when the stream ended before the line began.
    /// - Throws: ``BufferedReaderError/tooLong(limit:)`` (the line is dropped through its LF),
    ///   ``BufferedReaderError/endOfStream(partial:)``, what `body` throws (the line counts as
    ///   read), and the socket's errors.
    public nonisolated(nonsending) func readLine<R>(
        maxLength: Int = 8192, allowingCRLF: Bool = false, _ body: (RawSpan) throws -> R
    ) async throws -> R? {
        try await read(.delimiter(0x0A, maxLength: maxLength, strippingCR: allowingCRLF), body)
    }

    /// Reads a line ended by LF (`\n`), without the line ending, decoded as UTF-8 (invalid
    /// sequences become U+FFFD); `nil` when the stream ended before the line began. See
    /// ``readLine(maxLength:allowingCRLF:_:)``.
    public nonisolated(nonsending) func readLine(maxLength: Int = 8192, allowingCRLF: Bool = false) async throws -> String? {
        try await readLine(maxLength: maxLength, allowingCRLF: allowingCRLF, String.init(decodingUTF8:))
    }

    // MARK: Delimited items

    /// Reads the bytes up to `delimiter` and calls `body` with them; the delimiter is consumed,
    /// not passed on.
    ///
    /// - Parameters:
    ///   - delimiter: the byte that ends the item.
    ///   - maxLength: the longest item accepted, in bytes, without the delimiter.
    ///   - body: called with the item's bytes, borrowed until it returns.
    /// - Returns: what `body` returned; `nil` when the stream ended before the item began.
    /// - Throws: ``BufferedReaderError/tooLong(limit:)`` (the item is dropped through its
    ///   delimiter), ``BufferedReaderError/endOfStream(partial:)``, what `body` throws (the item
    ///   counts as read), and the socket's errors.
    public nonisolated(nonsending) func read<R>(
        upTo delimiter: UInt8, maxLength: Int, _ body: (RawSpan) throws -> R
    ) async throws -> R? {
        try await read(.delimiter(delimiter, maxLength: maxLength, strippingCR: false), body)
    }

    /// Reads the bytes up to `delimiter` (consumed, not returned); `nil` when the stream ended
    /// before the item began. See ``read(upTo:maxLength:_:)``.
    public nonisolated(nonsending) func read(upTo delimiter: UInt8, maxLength: Int) async throws -> [UInt8]? {
        try await read(upTo: delimiter, maxLength: maxLength, [UInt8].init(copying:))
    }

    // MARK: Exact counts

    /// Reads exactly `count` bytes and calls `body` with them.
    ///
    /// The reader's buffer grows to `count` bytes when they arrive in several chunks: `count`
    /// is the limit, so it should not come unchecked from the peer (length-prefixed frames have
    /// ``readFrame(prefix:maxLength:_:)``).
    ///
    /// - Returns: what `body` returned; `nil` when the stream ended before the first byte.
    /// - Throws: ``BufferedReaderError/endOfStream(partial:)``, what `body` throws (the bytes
    ///   count as read), and the socket's errors.
    public nonisolated(nonsending) func read<R>(count: Int, _ body: (RawSpan) throws -> R) async throws -> R? {
        precondition(count >= 0, "a negative count")
        return try await read(.count(count), body)
    }

    /// Reads exactly `count` bytes; `nil` when the stream ended before the first byte. See
    /// ``read(count:_:)``.
    public nonisolated(nonsending) func read(count: Int) async throws -> [UInt8]? {
        try await read(count: count, [UInt8].init(copying:))
    }

    // MARK: Length-prefixed frames

    /// The length field in front of a frame: an unsigned big-endian (network order) integer
    /// of 1, 2, 4 or 8 bytes that counts the bytes after it.
    public enum LengthPrefix: Sendable, Hashable {
        /// 1 byte.
        case uint8
        /// 2 bytes, big-endian.
        case uint16
        /// 4 bytes, big-endian.
        case uint32
        /// 8 bytes, big-endian.
        case uint64

        /// The size of the field in bytes.
        public var byteCount: Int {
            switch self {
            case .uint8: return 1
            case .uint16: return 2
            case .uint32: return 4
            case .uint64: return 8
            }
        }
    }

    /// Reads a frame — a big-endian length, then that many bytes — and calls `body` with the
    /// bytes after the length.
    ///
    /// - Parameters:
    ///   - prefix: the size of the length field.
    ///   - maxLength: the longest frame accepted, in bytes, without the length field. A longer
    ///     declared length is refused as soon as the field is read.
    ///   - body: called with the frame's bytes, borrowed until it returns.
    /// - Returns: what `body` returned; `nil` when the stream ended before the frame began.
    /// - Throws: ``BufferedReaderError/frameTooLong(length:limit:)`` (the frame's declared bytes
    ///   are skipped as they arrive), ``BufferedReaderError/endOfStream(partial:)`` (with the
    ///   length field), what `body` throws (the frame counts as read), and the socket's errors.
    public nonisolated(nonsending) func readFrame<R>(
        prefix: LengthPrefix, maxLength: Int, _ body: (RawSpan) throws -> R
    ) async throws -> R? {
        try await read(.frame(prefix, maxLength: maxLength), body)
    }

    /// Reads a frame — a big-endian length, then that many bytes — and returns the bytes after
    /// the length; `nil` when the stream ended before the frame began. See
    /// ``readFrame(prefix:maxLength:_:)``.
    public nonisolated(nonsending) func readFrame(prefix: LengthPrefix, maxLength: Int) async throws -> [UInt8]? {
        try await readFrame(prefix: prefix, maxLength: maxLength, [UInt8].init(copying:))
    }

    // MARK: The reading loop

    /// Reads one item of `framing`: from the buffer when it holds one, else straight from the
    /// next received chunk, keeping what is left of the chunk.
    nonisolated(nonsending) func read<R>(_ framing: Framing, _ body: (RawSpan) throws -> R) async throws -> R? {
        framing.check()
        while true {
            if let result = try takeBuffered(framing, body) { return result }
            if ended {
                guard end > start else { return nil }
                let partial = [UInt8](UnsafeRawBufferPointer(rebasing: storage![start..<end]))
                start = end
                releaseIfEmpty()
                throw BufferedReaderError.endOfStream(partial: partial)
            }
            releaseIfEmpty()
            // Nothing changes before the chunk arrives: a cancelled or timed-out receive
            // leaves the reader as it was.
            if case .item(let result) = try await source.receive({ try take($0, framing, body) }) {
                return result
            }
        }
    }

    /// The result of one received chunk.
    private enum Step<R> {
        case item(R)
        case more
    }

    /// Hands out an item from the buffer when it holds a whole one.
    private func takeBuffered<R>(_ framing: Framing, _ body: (RawSpan) throws -> R) throws -> R?? {
        let bytes = RawSpan(_unsafeBytes: UnsafeRawBufferPointer(
            rebasing: (storage ?? UnsafeMutableRawBufferPointer(start: nil, count: 0))[start..<end]))
        switch framing.find(in: bytes) {
        case .more:
            return nil
        case .item(let range, let consumed):
            defer { start += consumed }
            return .some(try body(bytes.extracting(range)))
        case .tooLong(let error, let skip, let consumed):
            self.skip = skip
            start += consumed
            start += dropSkipped(bytes.extracting(consumed..<bytes.byteCount))
            throw error
        }
    }

    /// Takes a received chunk: the item straight from it when the buffer holds nothing and the
    /// chunk holds a whole item, the rest into the buffer.
    private func take<R>(_ chunk: RawSpan, _ framing: Framing, _ body: (RawSpan) throws -> R) throws -> Step<R> {
        if chunk.byteCount == 0 {
            ended = true
            return .more
        }
        let kept = chunk.extracting(dropSkipped(chunk)..<chunk.byteCount)
        if end > start {
            append(kept)
            return .more
        }
        switch framing.find(in: kept) {
        case .more:
            append(kept)
            return .more
        case .item(let range, let consumed):
            defer { append(kept.extracting(consumed..<kept.byteCount)) }
            return .item(try body(kept.extracting(range)))
        case .tooLong(let error, let skip, let consumed):
            self.skip = skip
            let rest = kept.extracting(consumed..<kept.byteCount)
            append(rest.extracting(dropSkipped(rest)..<rest.byteCount))
            throw error
        }
    }

    /// Drops the front of `bytes` that belongs to an over-long item being skipped; returns how
    /// many bytes that is.
    private func dropSkipped(_ bytes: RawSpan) -> Int {
        switch skip {
        case .none:
            return 0
        case .through(let delimiter):
            guard let index = bytes.firstIndex(of: delimiter, within: bytes.byteCount) else { return bytes.byteCount }
            skip = .none
            return index + 1
        case .count(let left):
            let dropped = Int(min(left, UInt64(bytes.byteCount)))
            skip = left == UInt64(dropped) ? .none : .count(left - UInt64(dropped))
            return dropped
        }
    }

    /// Copies `bytes` after the buffered ones, growing the buffer when needed.
    private func append(_ bytes: RawSpan) {
        let count = bytes.byteCount
        guard count > 0 else { return }
        let held = end - start
        if let storage, storage.count - end >= count {
            // Room after the buffered bytes.
        } else if let storage, storage.count - held >= count {
            // Room once the buffered bytes move to the front.
            storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: held)
            (start, end) = (0, held)
        } else {
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: max(held + count, 2 * (storage?.count ?? 0), 256), alignment: 16)
            if let storage {
                grown.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: held)
                storage.deallocate()
            }
            (storage, start, end) = (grown, 0, held)
        }
        bytes.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: storage![end..<(end + count)]).copyMemory(from: source)
        }
        end += count
    }

    /// Releases the buffer when it holds no bytes: an idle reader holds no memory.
    private func releaseIfEmpty() {
        guard end == start, let storage else { return }
        storage.deallocate()
        (self.storage, start, end) = (nil, 0, 0)
    }
}

// MARK: - Framing

extension BufferedReader {
    /// What an item is.
    enum Framing {
        /// Bytes up to `delimiter` (at most `maxLength` of them, plus a CR before the delimiter
        /// when `strippingCR`).
        case delimiter(UInt8, maxLength: Int, strippingCR: Bool)
        /// Exactly this many bytes.
        case count(Int)
        /// A big-endian length, then that many bytes (at most `maxLength`).
        case frame(LengthPrefix, maxLength: Int)

        /// Refuses limits that make no sense (a programmer's error).
        func check() {
            switch self {
            case .delimiter(_, let maxLength, _), .frame(_, let maxLength):
                precondition(maxLength >= 0, "a negative maximum length")
            case .count(let count):
                precondition(count >= 0, "a negative count")
            }
        }

        /// Where the first item of `bytes` is, if they hold a whole one.
        func find(in bytes: RawSpan) -> Found {
            let available = bytes.byteCount
            switch self {
            case .delimiter(let delimiter, let maxLength, let strippingCR):
                // An item can end no later than here: look no further.
                let ending = strippingCR ? 2 : 1
                let full = available - ending >= maxLength
                guard let index = bytes.firstIndex(of: delimiter, within: full ? maxLength + ending : available) else {
                    return full ? .tooLong(.tooLong(limit: maxLength), skip: .through(delimiter), consumed: 0) : .more
                }
                var length = index
                if strippingCR, index > 0, bytes.unsafeLoad(fromByteOffset: index - 1, as: UInt8.self) == 0x0D {
                    length -= 1
                }
                guard length <= maxLength else {
                    return .tooLong(.tooLong(limit: maxLength), skip: .through(delimiter), consumed: 0)
                }
                return .item(0..<length, consumed: index + 1)
            case .count(let count):
                return available >= count ? .item(0..<count, consumed: count) : .more
            case .frame(let prefix, let maxLength):
                let width = prefix.byteCount
                guard available >= width else { return .more }
                var length: UInt64 = 0
                for offset in 0..<width {
                    length = length << 8 | UInt64(bytes.unsafeLoad(fromByteOffset: offset, as: UInt8.self))
                }
                guard length <= UInt64(maxLength) else {
                    return .tooLong(.frameTooLong(length: length, limit: maxLength), skip: .count(length), consumed: width)
                }
                let count = Int(length)
                return available - width >= count ? .item(width..<(width + count), consumed: width + count) : .more
            }
        }
    }

    /// Where an item is in the bytes at hand.
    enum Found {
        /// The item's bytes, and how many bytes it takes with its framing.
        case item(Range<Int>, consumed: Int)
        /// Not a whole item yet.
        case more
        /// The item is over its limit: the error, what to skip of it after the first
        /// `consumed` bytes.
        case tooLong(BufferedReaderError, skip: Skip, consumed: Int)
    }

    /// The rest of an over-long item, dropped as it arrives.
    enum Skip {
        case none
        /// Everything through the next `delimiter`.
        case through(UInt8)
        /// This many more bytes.
        case count(UInt64)
    }
}

/// Errors of a ``BufferedReader`` about what the peer sent.
public enum BufferedReaderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A line or delimited item ran past `limit` bytes without its delimiter. The reader drops
    /// the item, through its delimiter.
    case tooLong(limit: Int)
    /// A frame declared `length` bytes, more than the `limit`. The reader drops the frame's
    /// bytes as they arrive.
    case frameTooLong(length: UInt64, limit: Int)
    /// The stream ended inside an item; `partial` holds the bytes of the item that arrived
    /// (for a frame, its length field too).
    case endOfStream(partial: [UInt8])

    /// A sentence saying what went wrong.
    public var description: String {
        switch self {
        case .tooLong(let limit):
            return "an item is longer than its limit of \(limit) bytes"
        case .frameTooLong(let length, let limit):
            return "a frame declares \(length) bytes, more than its limit of \(limit) bytes"
        case .endOfStream(let partial):
            return "the stream ended inside an item, after \(partial.count) of its bytes"
        }
    }
}

extension RawSpan {
    /// The offset of the first `byte` among the first `limit` bytes (`memchr(3)`).
    func firstIndex(of byte: UInt8, within limit: Int) -> Int? {
        withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress, limit > 0,
                  let found = memchr(base, CInt(byte), Swift.min(limit, bytes.count)) else { return nil }
            return UnsafeRawPointer(found) - base
        }
    }
}

extension String {
    /// The bytes decoded as UTF-8, invalid sequences replaced by U+FFFD.
    init(decodingUTF8 bytes: RawSpan) {
        self = bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

extension Array where Element == UInt8 {
    /// A copy of `bytes`.
    init(copying bytes: RawSpan) {
        self = bytes.withUnsafeBytes { Array($0) }
    }
}
