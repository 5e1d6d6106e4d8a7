/// Virtual time for a whole simulated network: one event queue shared by every simulated node and the
/// `memory` network, run on one thread. Deterministic: events at the same instant run in scheduling order.
public final class SimulationScheduler: Scheduler {
    private struct Event {
        var time: Timestamp
        var sequence: UInt64
        var handle: TimerHandle?
        var action: () -> Void
    }

    public private(set) var now: Timestamp = .zero
    private var heap: [Event] = []
    private var sequence: UInt64 = 0
    /// Events run so far (a measure of simulation work).
    public private(set) var eventsRun: UInt64 = 0

    public init() {}

    public var pendingEvents: Int { heap.count }
    /// The whole simulated network's pending events (its nodes share this scheduler), cancelled ones included
    /// until their time comes.
    public var pendingTimers: Int { heap.count }

    @discardableResult
    public func schedule(after delay: Duration, _ action: @escaping () -> Void) -> TimerHandle {
        let handle = TimerHandle()
        push(Event(time: now + max(delay, .zero), sequence: nextSequence(), handle: handle, action: action))
        return handle
    }

    /// Schedules work that is never cancelled (packet deliveries), without allocating a handle.
    public func scheduleUncancellable(after delay: Duration, _ action: @escaping () -> Void) {
        push(Event(time: now + max(delay, .zero), sequence: nextSequence(), handle: nil, action: action))
    }

    /// Runs events until the queue is empty or the next one lies after `deadline`; then `now` is `deadline`.
    public func run(until deadline: Timestamp) {
        while let first = heap.first, first.time <= deadline {
            let event = popFirst()
            now = event.time
            if event.handle?.isCancelled == true { continue }
            eventsRun += 1
            event.action()
        }
        if now < deadline { now = deadline }
    }

    /// Runs for `duration` of virtual time.
    public func run(for duration: Duration) { run(until: now + duration) }

    /// Runs events while `condition` holds (checked before each event), until `deadline`. Returns true when
    /// the condition became false, false when the deadline came (or the queue ran dry) first.
    @discardableResult
    public func run(until deadline: Timestamp, while condition: () -> Bool) -> Bool {
        while condition() {
            guard let first = heap.first, first.time <= deadline else {
                if now < deadline { now = deadline }
                return !condition()
            }
            let event = popFirst()
            now = event.time
            if event.handle?.isCancelled == true { continue }
            eventsRun += 1
            event.action()
        }
        return true
    }

    private func nextSequence() -> UInt64 {
        sequence += 1
        return sequence
    }

    private static func precedes(_ a: Event, _ b: Event) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }

    private func push(_ event: Event) {
        heap.append(event)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func popFirst() -> Event {
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            let count = heap.count
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var best = parent
                if left < count && Self.precedes(heap[left], heap[best]) { best = left }
                if right < count && Self.precedes(heap[right], heap[best]) { best = right }
                if best == parent { break }
                heap.swapAt(parent, best)
                parent = best
            }
        }
        return first
    }
}
