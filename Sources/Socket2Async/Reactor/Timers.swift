/// A timer of the reactor: at `deadline` (monotonic nanoseconds), `action` happens to the
/// operation `id` — unless that operation is over by then, which its id tells.
struct Timer {
    enum Action: UInt8 {
        /// The operation's time is up: cancel it with `ETIMEDOUT`.
        case timeOut
        /// Try the operation again (after `EMFILE` on accept, for instance).
        case retry
    }

    var deadline: UInt64
    var id: OpID
    var action: Action

    /// The index of the operation's record.
    var index: Int { Int(id & 0xFFFF_FFFF) }
}

/// A binary min-heap of timers by deadline. Reactor thread only.
///
/// An operation's time-out is removed when the operation ends (`removeTimeOut(of:)`), so that a
/// server whose receives carry a long time-out keeps one timer per waiting operation, not one
/// per operation of the last minutes. Retry timers are rare and never removed early: one whose
/// operation is over does nothing when it fires.
struct TimerHeap {
    private var heap: [Timer] = []
    /// Where each operation's time-out timer is in `heap`, by record index; -1 for none.
    private var timeOutSlots: [Int32] = []

    var isEmpty: Bool { heap.isEmpty }
    /// The number of timers (tests, diagnostics).
    var count: Int { heap.count }
    var earliestDeadline: UInt64? { heap.first?.deadline }

    mutating func insert(_ timer: Timer) {
        if timer.action == .timeOut && timer.index >= timeOutSlots.count {
            timeOutSlots.append(contentsOf: repeatElement(-1, count: timer.index + 1 - timeOutSlots.count))
        }
        heap.append(timer)
        place(timer, at: heap.count - 1)
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    mutating func popExpired(now: UInt64) -> Timer? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        remove(at: 0)
        return first
    }

    /// Removes the time-out of the operation at record `index`, if it has one.
    mutating func removeTimeOut(of index: Int32) {
        guard Int(index) < timeOutSlots.count else { return }
        let slot = Int(timeOutSlots[Int(index)])
        if slot >= 0 { remove(at: slot) }
    }

    mutating func removeAll() {
        heap.removeAll()
        timeOutSlots.removeAll()
    }

    private mutating func remove(at slot: Int) {
        let removed = heap[slot]
        if removed.action == .timeOut && timeOutSlots[removed.index] == Int32(slot) {
            timeOutSlots[removed.index] = -1
        }
        let last = heap.removeLast()
        guard slot < heap.count else { return }
        place(last, at: slot)
        siftDown(slot)
        siftUp(slot)
    }

    private mutating func place(_ timer: Timer, at slot: Int) {
        heap[slot] = timer
        if timer.action == .timeOut { timeOutSlots[timer.index] = Int32(slot) }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        let first = heap[a]
        place(heap[b], at: a)
        place(first, at: b)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count, heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { return }
            swapAt(parent, smallest)
            parent = smallest
        }
    }
}
