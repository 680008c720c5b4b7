#if canImport(Glibc)
import Glibc
#endif

/// A key (or channel name): bytes that it owns, or — only to look something up — bytes it
/// borrows from a request, so that a lookup allocates nothing.
public struct Key: Hashable, @unchecked Sendable {
    private let owned: [UInt8]?
    private let borrowed: UnsafeRawBufferPointer

    /// A key that owns a copy of `bytes`.
    public init(copying bytes: UnsafeRawBufferPointer) {
        owned = Array(bytes)
        borrowed = UnsafeRawBufferPointer(start: nil, count: 0)
    }

    public init(_ bytes: [UInt8]) {
        owned = bytes
        borrowed = UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// A key that borrows `bytes`: valid only while they are, never stored.
    init(borrowing bytes: UnsafeRawBufferPointer) {
        owned = nil
        borrowed = bytes
    }

    @inline(__always)
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let owned { return owned.withUnsafeBytes(body) }
        return body(borrowed)
    }

    public var bytes: [UInt8] { owned ?? Array(borrowed) }

    public static func == (a: Key, b: Key) -> Bool {
        a.withBytes { x in
            b.withBytes { y in
                x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
            }
        }
    }

    public func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: $0) }
    }
}

/// Milliseconds of the monotonic clock (`CLOCK_MONOTONIC`): deadlines never jump with the
/// wall clock.
public func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

/// Milliseconds since the Unix epoch (`CLOCK_REALTIME`), for `EXAT`/`PXAT`.
public func wallClockMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

/// One shard of the key space: string values with optional deadlines.
///
/// Expiry: a key past its deadline is removed when it is touched (lazily) and by `sweep(now:)`,
/// which the server calls periodically: deadlines sit in a min-heap whose stale entries (a key
/// rewritten or deleted since) are skipped, and rebuilt when they outnumber the live ones.
public struct Store {
    public struct Entry {
        public var value: [UInt8]
        /// Monotonic milliseconds; 0 for none.
        public var deadline: Int64
    }

    private var entries: [Key: Entry] = [:]
    private var deadlines: [(deadline: Int64, key: Key)] = []
    /// Entries with a deadline.
    private var expiring = 0

    public init() {}

    public var count: Int { entries.count }

    /// The live entry's index for `key` (an expired one is removed).
    @inline(__always)
    private mutating func index(_ key: UnsafeRawBufferPointer, now: Int64) -> Dictionary<Key, Entry>.Index? {
        guard let index = entries.index(forKey: Key(borrowing: key)) else { return nil }
        let deadline = entries.values[index].deadline
        if deadline != 0 && deadline <= now {
            entries.remove(at: index)
            expiring -= 1
            return nil
        }
        return index
    }

    /// Calls `body` with the value of `key`, or nil.
    @inline(__always)
    public mutating func withValue<R>(_ key: UnsafeRawBufferPointer, now: Int64, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let index = index(key, now: now) else { return body(nil) }
        return entries.values[index].value.withUnsafeBytes { body($0) }
    }

    public mutating func contains(_ key: UnsafeRawBufferPointer, now: Int64) -> Bool {
        index(key, now: now) != nil
    }

    /// The deadline of `key`: nil when it does not exist, 0 when it has none.
    public mutating func deadline(_ key: UnsafeRawBufferPointer, now: Int64) -> Int64? {
        guard let index = index(key, now: now) else { return nil }
        return entries.values[index].deadline
    }

    /// Sets `key` to `value` with `deadline` (0: none; nil: keep the current one). Rewrites the
    /// value in place when the key exists: no allocation when its capacity suffices.
    public mutating func set(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, deadline: Int64?, now: Int64) {
        if let index = index(key, now: now) {
            entries.values[index].value.removeAll(keepingCapacity: true)
            entries.values[index].value.append(contentsOf: value)
            if let deadline { setDeadline(at: index, key: key, deadline) }
            return
        }
        let deadline = deadline ?? 0
        entries[Key(copying: key)] = Entry(value: Array(value), deadline: deadline)
        if deadline != 0 {
            expiring += 1
            pushDeadline(deadline, Key(copying: key))
        }
    }

    /// Sets the deadline of an existing `key`; false when it does not exist.
    @discardableResult
    public mutating func setDeadline(_ key: UnsafeRawBufferPointer, _ deadline: Int64, now: Int64) -> Bool {
        guard let index = index(key, now: now) else { return false }
        setDeadline(at: index, key: key, deadline)
        return true
    }

    private mutating func setDeadline(at index: Dictionary<Key, Entry>.Index, key: UnsafeRawBufferPointer, _ deadline: Int64) {
        let old = entries.values[index].deadline
        if old == deadline { return }
        entries.values[index].deadline = deadline
        if old == 0 { expiring += 1 }
        if deadline == 0 { expiring -= 1 } else { pushDeadline(deadline, entries.keys[index]) }
    }

    /// Replaces the value of an existing `key` with the decimal digits of `value`, keeping its
    /// deadline; creates it without one otherwise.
    public mutating func setInteger(_ key: UnsafeRawBufferPointer, _ value: Int64, now: Int64) {
        withDecimal(value) { set(key, $0, deadline: nil, now: now) }
    }

    /// Removes `key`; false when it did not exist.
    @discardableResult
    public mutating func remove(_ key: UnsafeRawBufferPointer, now: Int64) -> Bool {
        guard let index = index(key, now: now) else { return false }
        if entries.values[index].deadline != 0 { expiring -= 1 }
        entries.remove(at: index)
        return true
    }

    /// Removes up to `limit` keys whose deadline has passed; returns how many it removed, and
    /// whether more may be due.
    public mutating func sweep(now: Int64, limit: Int = 10_000) -> (removed: Int, more: Bool) {
        var removed = 0, visited = 0
        while let first = deadlines.first, first.deadline <= now {
            if visited == limit { return (removed, true) }
            visited += 1
            popDeadline()
            if let index = entries.index(forKey: first.key), entries.values[index].deadline == first.deadline {
                entries.remove(at: index)
                expiring -= 1
                removed += 1
            }
        }
        return (removed, false)
    }

    // MARK: The deadline heap

    private mutating func pushDeadline(_ deadline: Int64, _ key: Key) {
        if deadlines.count > 2 * expiring + 64 { rebuildDeadlines() }
        deadlines.append((deadline, key))
        var child = deadlines.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard deadlines[child].deadline < deadlines[parent].deadline else { break }
            deadlines.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popDeadline() {
        let last = deadlines.removeLast()
        guard !deadlines.isEmpty else { return }
        deadlines[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < deadlines.count && deadlines[left].deadline < deadlines[smallest].deadline { smallest = left }
            if right < deadlines.count && deadlines[right].deadline < deadlines[smallest].deadline { smallest = right }
            if smallest == parent { return }
            deadlines.swapAt(parent, smallest)
            parent = smallest
        }
    }

    /// Drops the stale entries of the heap: one per key with a deadline remains.
    private mutating func rebuildDeadlines() {
        let live = entries.compactMap { $0.value.deadline != 0 ? ($0.value.deadline, $0.key) : nil }
        deadlines = live.sorted { $0.0 < $1.0 }  // a sorted array is a valid min-heap
    }

    /// The number of entries in the deadline heap (tests).
    public var deadlineHeapCount: Int { deadlines.count }
}

/// Calls `body` with the decimal digits of `value` (on the stack).
func withDecimal<R>(_ value: Int64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
    return withUnsafeMutableBytes(of: &digits) { scratch in
        var magnitude = value.magnitude
        var i = scratch.count
        repeat {
            i -= 1
            scratch[i] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 48
            magnitude /= 10
        } while magnitude > 0
        if value < 0 { i -= 1; scratch[i] = UInt8(ascii: "-") }
        return body(UnsafeRawBufferPointer(rebasing: scratch[i...]))
    }
}
