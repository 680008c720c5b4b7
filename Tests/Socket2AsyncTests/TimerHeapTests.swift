import Testing
@testable import Socket2Async

@Suite("Timer heap")
struct TimerHeapTests {
    // Random insertions, time-outs removed early and expiries, against a plain list.
    @Test("Timers expire in deadline order, also after early removals")
    func heapOrder() {
        var generator = SystemRandomNumberGenerator()
        var heap = TimerHeap()
        var model: [Timer] = []  // what the heap should hold
        var now: UInt64 = 0
        for step in 0..<20_000 {
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<5:
                // At most one time-out per record index, as the reactor keeps them.
                let index = UInt64.random(in: 0..<200, using: &generator)
                let action: Timer.Action = Bool.random(using: &generator) ? .timeOut : .retry
                if action == .timeOut && model.contains(where: { $0.action == .timeOut && $0.index == Int(index) }) { continue }
                let timer = Timer(deadline: now + UInt64.random(in: 0..<100_000, using: &generator),
                                  id: UInt64(step) << 32 | index, action: action)
                heap.insert(timer)
                model.append(timer)
            case 5..<7:
                let index = Int32.random(in: 0..<200, using: &generator)
                heap.removeTimeOut(of: index)
                model.removeAll { $0.action == .timeOut && $0.index == Int(index) }
            default:
                now += UInt64.random(in: 0..<2000, using: &generator)
                while let timer = heap.popExpired(now: now) {
                    let earliest = model.map(\.deadline).min()
                    #expect(timer.deadline == earliest && timer.deadline <= now)
                    model.removeAll { $0.id == timer.id && $0.action == timer.action }
                }
                #expect(model.allSatisfy { $0.deadline > now })
            }
            #expect(heap.count == model.count)
        }
    }
}
