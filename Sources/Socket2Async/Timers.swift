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
}

/// A binary min-heap of timers by deadline. Reactor thread only. Timers are never removed
/// early: one whose operation is over does nothing when it fires.
struct TimerHeap {
    private var heap: [Timer] = []

    var isEmpty: Bool { heap.isEmpty }
    var earliestDeadline: UInt64? { heap.first?.deadline }

    mutating func insert(_ timer: Timer) {
        heap.append(timer)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    mutating func popExpired(now: UInt64) -> Timer? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return first }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count, heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }

    mutating func removeAll() { heap.removeAll() }
}
