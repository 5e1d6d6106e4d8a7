import NIOCore

/// A real node's clock and timers: monotonic time and timers on the node's event loop.
///
/// Everything of a node (its `Node`, edges and listeners) runs on this one loop, so actions run there too.
/// Create and use it on that loop only.
public final class EventLoopScheduler: Scheduler {
    public let eventLoop: any EventLoop
    private let epoch: NIODeadline
    public private(set) var pendingTimers = 0

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.epoch = .now()
    }

    public var now: Timestamp { Timestamp(nanoseconds: NIODeadline.now().uptimeNanoseconds.subtractingClamped(epoch.uptimeNanoseconds)) }

    @discardableResult
    public func schedule(after delay: Duration, _ action: @escaping () -> Void) -> TimerHandle {
        let handle = TimerHandle()
        pendingTimers += 1
        let task = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(max(0, delay.nanoseconds))) { [weak self] in
            guard !handle.isCancelled else { return }
            // Fired: a later `cancel` must not count it out again.
            handle.onCancel = nil
            self?.pendingTimers -= 1
            action()
        }
        handle.onCancel = { [weak self] in
            task.cancel()
            self?.pendingTimers -= 1
        }
        return handle
    }
}

extension UInt64 {
    fileprivate func subtractingClamped(_ other: UInt64) -> Int64 {
        self >= other ? Int64(clamping: self - other) : 0
    }
}
