/// The clock and timers of one node, injected so that the same protocol code runs on virtual time in the
/// simulator and on an event loop for real.
///
/// Contract: `now` never goes backwards. `schedule` runs `action` once, on the node's executor, no earlier
/// than `delay` from now, unless the returned handle is cancelled first. Actions scheduled for the same
/// instant run in the order they were scheduled. Implementations: `SimulationScheduler` (virtual time) and,
/// for real nodes, one backed by an event loop.
public protocol Scheduler: AnyObject {
    var now: Timestamp { get }
    /// Actions scheduled that have neither run nor been cancelled: a node's timers (`wow status`), whose
    /// growth over a long run would be a leak.
    var pendingTimers: Int { get }
    @discardableResult
    func schedule(after delay: Duration, _ action: @escaping () -> Void) -> TimerHandle
}

/// Cancels a scheduled action. Cancelling twice, or after it ran, does nothing.
public final class TimerHandle {
    public private(set) var isCancelled = false
    /// Set by schedulers that can drop cancelled work early (e.g. an event-loop task).
    public var onCancel: (() -> Void)?

    public init() {}

    public func cancel() {
        guard !isCancelled else { return }
        isCancelled = true
        onCancel?()
        onCancel = nil
    }
}
