import NIOCore

/// A real node's clock and timers: monotonic time and timers on the node's event loop.
///
/// Everything of a node (its `Node`, edges and listeners) runs on this one loop, so actions run there too.
/// Create and use it on that loop only.
public final class EventLoopScheduler: Scheduler {
    public let eventLoop: any EventLoop
    private let epoch: NIODeadline

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.epoch = .now()
    }

    public var now: Timestamp { Timestamp(nanoseconds: NIODeadline.now().uptimeNanoseconds.subtractingClamped(epoch.uptimeNanoseconds)) }

    @discardableResult
    public func schedule(after delay: Duration, _ action: @escaping () -> Void) -> TimerHandle {
        let handle = TimerHandle()
        let task = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(max(0, delay.nanoseconds))) {
            guard !handle.isCancelled else { return }
            action()
        }
        handle.onCancel = { task.cancel() }
        return handle
    }
}

extension UInt64 {
    fileprivate func subtractingClamped(_ other: UInt64) -> Int64 {
        self >= other ? Int64(clamping: self - other) : 0
    }
}
