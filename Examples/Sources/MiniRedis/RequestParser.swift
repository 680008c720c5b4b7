#if canImport(Glibc)
import Glibc
#endif

/// A RESP2 request parser: multibulk requests (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
/// commands (`GET k\r\n`, what telnet and `redis-cli` in some modes send), with the checks and
/// the error messages of redis-server 7.
///
/// It parses in place, over the unconsumed bytes of a connection's input, and is resumable:
/// when a request is incomplete it keeps what it has parsed and goes on from there when more
/// bytes arrive (so a request in many reads costs linear time). The arguments of a complete
/// request are offsets into those bytes; inline arguments are unescaped in place (never longer
/// than their source). Untrusted bytes: every index is checked, nothing is read out of bounds.
public struct RequestParser {
    /// One argument: `count` bytes from `offset` (relative to the request's first byte).
    public struct Argument: Equatable, Sendable {
        public var offset: Int
        public var count: Int
    }

    /// What `parse` found.
    public enum Outcome: Equatable, Sendable {
        /// A request of `length` bytes, its arguments in `arguments`.
        case request(length: Int)
        /// `length` bytes to skip that hold no request (an empty line, `*0\r\n`, `*-1\r\n`).
        case empty(length: Int)
        /// The request is incomplete: it needs at least `needed` bytes from its first one.
        case incomplete(needed: Int)
        /// Malformed input: answer `-ERR <message>` and close the connection, as Redis does.
        case error(ProtocolError)
    }

    /// Malformed input, named by redis-server's message.
    public enum ProtocolError: Error, Equatable, Sendable {
        case invalidMultibulkLength
        case tooBigMultibulkCount
        case tooBigBulkCount
        case expectedDollar(got: UInt8)
        case invalidBulkLength
        case tooBigInlineRequest
        case unbalancedQuotes

        /// The text after `-ERR ` (redis-server 7's wording).
        public var message: String {
            switch self {
            case .invalidMultibulkLength: "Protocol error: invalid multibulk length"
            case .tooBigMultibulkCount: "Protocol error: too big mbulk count string"
            case .tooBigBulkCount: "Protocol error: too big bulk count string"
            case .expectedDollar(let got):
                "Protocol error: expected '$', got '\(Character(Unicode.Scalar(got)))'"
            case .invalidBulkLength: "Protocol error: invalid bulk length"
            case .tooBigInlineRequest: "Protocol error: too big inline request"
            case .unbalancedQuotes: "Protocol error: unbalanced quotes in request"
            }
        }
    }

    /// The longest inline request, and the longest `*`/`$` line, without a newline (Redis's
    /// `PROTO_INLINE_MAX_SIZE`).
    public static let inlineMax = 64 * 1024

    /// The largest bulk argument accepted (Redis's `proto-max-bulk-len`).
    public var maxBulk: Int
    /// The arguments of the request last returned by `.request`.
    public private(set) var arguments: [Argument] = []

    /// The number of arguments of the multibulk request being parsed; -1 before its header.
    private var expected = -1
    /// The length of the bulk argument whose data is awaited; -1 before its header.
    private var bulkLength = -1
    /// Where parsing goes on, relative to the request's first byte.
    private var position = 0
    /// Where the search for the next line end goes on (bytes before it hold none).
    private var searchFrom = 0

    public init(maxBulk: Int) {
        self.maxBulk = maxBulk
    }

    /// Whether a request is partly parsed.
    public var isMidRequest: Bool { expected >= 0 }

    /// Parses the request at the start of `bytes` (the unconsumed input; its first byte is the
    /// request's first byte, also on a call that resumes an incomplete request).
    public mutating func parse(_ bytes: UnsafeMutableRawBufferPointer) -> Outcome {
        if expected < 0, let first = bytes.first, first != UInt8(ascii: "*") {
            if position == 0 && searchFrom == 0 { arguments.removeAll(keepingCapacity: true) }
            return parseInline(bytes)
        }
        return parseMultibulk(UnsafeRawBufferPointer(bytes))
    }

    /// Parses the request at the start of `bytes` like `parse`, in bytes it may not write to
    /// (lent by a receive); nil when they start an inline command, whose arguments are
    /// unescaped in place: parse those in a copy.
    public mutating func parse(readOnly bytes: UnsafeRawBufferPointer) -> Outcome? {
        if expected < 0, let first = bytes.first, first != UInt8(ascii: "*") { return nil }
        return parseMultibulk(bytes)
    }

    private mutating func parseMultibulk(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        let n = bytes.count
        if expected < 0 {
            if position == 0 && searchFrom == 0 { arguments.removeAll(keepingCapacity: true) }
            guard n > 0 else { return .incomplete(needed: 1) }
            guard let cr = find(UInt8(ascii: "\r"), in: bytes, from: max(searchFrom, 1)) else {
                if n > Self.inlineMax { return fail(.tooBigMultibulkCount) }
                searchFrom = n
                return .incomplete(needed: n + 1)
            }
            searchFrom = cr
            guard cr + 1 < n else { return .incomplete(needed: cr + 2) }
            guard let count = parseInteger(UnsafeRawBufferPointer(rebasing: bytes[1..<cr])),
                  count <= Int64(Int32.max)
            else { return fail(.invalidMultibulkLength) }
            position = cr + 2
            searchFrom = position
            if count <= 0 {
                let length = position
                reset()
                return .empty(length: length)
            }
            expected = Int(count)
            arguments.reserveCapacity(min(expected, 1024))
        }
        while arguments.count < expected {
            if bulkLength < 0 {
                guard let cr = find(UInt8(ascii: "\r"), in: bytes, from: max(searchFrom, position)) else {
                    if n - position > Self.inlineMax { return fail(.tooBigBulkCount) }
                    searchFrom = n
                    return .incomplete(needed: n + 1)
                }
                searchFrom = cr
                guard cr + 1 < n else { return .incomplete(needed: cr + 2) }
                guard bytes[position] == UInt8(ascii: "$") else { return fail(.expectedDollar(got: bytes[position])) }
                guard let length = parseInteger(UnsafeRawBufferPointer(rebasing: bytes[(position + 1)..<cr])),
                      length >= 0, length <= Int64(maxBulk)
                else { return fail(.invalidBulkLength) }
                bulkLength = Int(length)
                position = cr + 2
            }
            // Like Redis, the two bytes after the data are skipped, not checked.
            let end = position + bulkLength + 2
            guard end <= n else { return .incomplete(needed: end) }
            arguments.append(Argument(offset: position, count: bulkLength))
            position = end
            searchFrom = end
            bulkLength = -1
        }
        let length = position
        reset()
        return .request(length: length)
    }

    /// Forgets a partly parsed request.
    public mutating func reset() {
        expected = -1
        bulkLength = -1
        position = 0
        searchFrom = 0
    }

    private mutating func fail(_ error: ProtocolError) -> Outcome {
        reset()
        return .error(error)
    }

    // MARK: Inline commands

    private mutating func parseInline(_ bytes: UnsafeMutableRawBufferPointer) -> Outcome {
        let n = bytes.count
        guard let newline = find(UInt8(ascii: "\n"), in: UnsafeRawBufferPointer(bytes), from: searchFrom) else {
            if n > Self.inlineMax { return fail(.tooBigInlineRequest) }
            searchFrom = n
            return .incomplete(needed: n + 1)
        }
        searchFrom = 0
        var end = newline
        if end > 0 && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        // The line is a C string to Redis: it ends at a NUL byte.
        if let nul = find(0, in: UnsafeRawBufferPointer(rebasing: bytes[..<end]), from: 0) { end = nul }
        guard splitArguments(UnsafeMutableRawBufferPointer(rebasing: bytes[..<end])) else {
            return fail(.unbalancedQuotes)
        }
        return arguments.isEmpty ? .empty(length: newline + 1) : .request(length: newline + 1)
    }

    /// Splits `line` into arguments as Redis's `sdssplitargs` does (spaces separate; double
    /// quotes with `\n \r \t \b \a \xHH` escapes; single quotes with `\'`), writing each
    /// unescaped argument in place. False for unbalanced quotes.
    private mutating func splitArguments(_ line: UnsafeMutableRawBufferPointer) -> Bool {
        let end = line.count
        var read = 0
        var write = 0
        func at(_ i: Int) -> UInt8 { i < end ? line[i] : 0 }
        while true {
            while read < end && isSpace(line[read]) { read += 1 }
            if read >= end { return true }
            let start = write
            var quote: UInt8 = 0  // the open quote, if any
            var done = false
            while !done {
                let c = at(read)
                if quote != 0 {
                    if quote == UInt8(ascii: "\"") && c == UInt8(ascii: "\\") && at(read + 1) == UInt8(ascii: "x"),
                       let high = hexValue(at(read + 2)), let low = hexValue(at(read + 3)) {
                        line[write] = high << 4 | low; write += 1
                        read += 3
                    } else if quote == UInt8(ascii: "\"") && c == UInt8(ascii: "\\") && at(read + 1) != 0 {
                        read += 1
                        switch at(read) {
                        case UInt8(ascii: "n"): line[write] = 10
                        case UInt8(ascii: "r"): line[write] = 13
                        case UInt8(ascii: "t"): line[write] = 9
                        case UInt8(ascii: "b"): line[write] = 8
                        case UInt8(ascii: "a"): line[write] = 7
                        case let other: line[write] = other
                        }
                        write += 1
                    } else if quote == UInt8(ascii: "'") && c == UInt8(ascii: "\\") && at(read + 1) == quote {
                        read += 1
                        line[write] = quote; write += 1
                    } else if c == quote {
                        // A closing quote must be followed by a space or the end.
                        if at(read + 1) != 0 && !isSpace(at(read + 1)) { return false }
                        done = true
                    } else if c == 0 {
                        return false
                    } else {
                        line[write] = c; write += 1
                    }
                } else {
                    switch c {
                    case UInt8(ascii: " "), 10, 13, 9, 0: done = true
                    case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = c
                    default: line[write] = c; write += 1
                    }
                }
                if read < end { read += 1 }
            }
            arguments.append(Argument(offset: start, count: write - start))
        }
    }
}

/// C's `isspace` in the C locale.
@inline(__always)
private func isSpace(_ c: UInt8) -> Bool { c == 32 || (c >= 9 && c <= 13) }

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// The index of the first `byte` in `bytes` at or after `start`.
@inline(__always)
func find(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
    guard start < bytes.count, let base = bytes.baseAddress else { return nil }
    guard let hit = memchr(base + start, CInt(byte), bytes.count - start) else { return nil }
    return UnsafeRawPointer(hit) - base
}

/// A signed 64-bit decimal as Redis's `string2ll` accepts it: an optional `-`, no `+`, no
/// spaces, no leading zeros; nil when it is not one or does not fit.
public func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
    let n = bytes.count
    guard n > 0, n < 21 else { return nil }
    if n == 1 && bytes[0] == UInt8(ascii: "0") { return 0 }
    let negative = bytes[0] == UInt8(ascii: "-")
    var i = negative ? 1 : 0
    guard i < n, bytes[i] >= UInt8(ascii: "1"), bytes[i] <= UInt8(ascii: "9") else { return nil }
    var value: UInt64 = 0
    while i < n {
        let digit = bytes[i] &- UInt8(ascii: "0")
        guard digit <= 9 else { return nil }
        let (times10, o1) = value.multipliedReportingOverflow(by: 10)
        let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
        guard !o1, !o2 else { return nil }
        value = sum
        i += 1
    }
    if negative {
        guard value <= UInt64(Int64.max) + 1 else { return nil }
        return value == UInt64(Int64.max) + 1 ? Int64.min : -Int64(value)
    }
    guard value <= UInt64(Int64.max) else { return nil }
    return Int64(value)
}
