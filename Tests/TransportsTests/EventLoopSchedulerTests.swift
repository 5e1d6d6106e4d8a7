import NIOCore
import NIOPosix
import WOWKit
import XCTest

final class EventLoopSchedulerTests: XCTestCase {
    /// `pendingTimers` counts what is scheduled until it runs or is cancelled, once each (`wow status` shows it:
    /// its growth over a long run would be a leak).
    func testPendingTimersCountWhatHasNeitherRunNorBeenCancelled() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let counts = try loop.submit { () -> [Int] in
            let scheduler = EventLoopScheduler(eventLoop: loop)
            var counts = [scheduler.pendingTimers]
            var ran = 0
            scheduler.schedule(after: .zero) { ran += 1 }
            let cancelled = scheduler.schedule(after: .seconds(60)) { ran += 100 }
            let later = scheduler.schedule(after: .seconds(60)) { ran += 100 }
            counts.append(scheduler.pendingTimers)
            cancelled.cancel()
            cancelled.cancel()
            counts.append(scheduler.pendingTimers)
            return counts + [ran, later.isCancelled ? 1 : 0]
        }.wait()
        XCTAssertEqual(counts, [0, 3, 2, 0, 0])
        let final = try loop.flatSubmit { () -> EventLoopFuture<[Int]> in
            let scheduler = EventLoopScheduler(eventLoop: loop)
            let promise = loop.makePromise(of: [Int].self)
            let handle = scheduler.schedule(after: .milliseconds(1)) {}
            scheduler.schedule(after: .milliseconds(5)) {
                let whileNothingPending = scheduler.pendingTimers
                handle.cancel()
                promise.succeed([whileNothingPending, scheduler.pendingTimers])
            }
            return promise.futureResult
        }.wait()
        // When the second action runs, both have left the count; cancelling the one that ran does not go below 0.
        XCTAssertEqual(final, [0, 0])
    }
}
