import XCTest

@testable import WOWKit

/// The sliding replay bitmap at its edges: the first counter, jumps, the window's border and the top of
/// the counter range.
final class ReplayWindowTests: XCTestCase {
    /// Checks `counter` and commits it when fresh; returns the verdict.
    private func accept(_ counter: UInt64, into window: inout ReplayWindow) -> ReplayWindow.Verdict {
        let verdict = window.verdict(for: counter)
        if verdict == .fresh { window.commit(counter) }
        return verdict
    }

    func testCounterZeroIsAcceptedOnceFirst() {
        var window = ReplayWindow()
        XCTAssertNil(window.newest)
        XCTAssertEqual(accept(0, into: &window), .fresh)
        XCTAssertEqual(window.newest, 0)
        XCTAssertEqual(accept(0, into: &window), .replayed)
    }

    func testCounterZeroArrivingLateIsAcceptedOnce() {
        var window = ReplayWindow()
        XCTAssertEqual(accept(5, into: &window), .fresh)
        XCTAssertEqual(accept(0, into: &window), .fresh)
        XCTAssertEqual(accept(0, into: &window), .replayed)
        XCTAssertEqual(window.newest, 5)
    }

    func testAVerdictAloneDoesNotCommit() {
        var window = ReplayWindow()
        window.commit(10)
        XCTAssertEqual(window.verdict(for: 9), .fresh)
        XCTAssertEqual(window.verdict(for: 9), .fresh, "unauthenticated frames must not burn counters")
        XCTAssertEqual(accept(9, into: &window), .fresh)
        XCTAssertEqual(window.verdict(for: 9), .replayed)
    }

    func testTheWindowBorderIsExact() {
        var window = ReplayWindow()
        let newest: UInt64 = 10_000
        window.commit(newest)
        XCTAssertEqual(window.verdict(for: newest - ReplayWindow.size + 1), .fresh, "2047 behind")
        XCTAssertEqual(window.verdict(for: newest - ReplayWindow.size), .tooOld, "2048 behind")
        XCTAssertEqual(window.verdict(for: 0), .tooOld)
        XCTAssertEqual(window.verdict(for: newest + 1), .fresh)
    }

    func testAJumpLargerThanTheWindowForgetsEverything() {
        var window = ReplayWindow()
        for counter in UInt64(0)..<100 { XCTAssertEqual(accept(counter, into: &window), .fresh) }
        let far: UInt64 = 100 + 5 * ReplayWindow.size + 17
        XCTAssertEqual(accept(far, into: &window), .fresh)
        XCTAssertEqual(window.newest, far)
        XCTAssertEqual(accept(99, into: &window), .tooOld)
        // Counters that share bit slots with the old ones are fresh, not mistaken for replays.
        for counter in (far - ReplayWindow.size + 1)..<far {
            XCTAssertEqual(window.verdict(for: counter), .fresh, "counter \(counter)")
        }
        XCTAssertEqual(accept(far, into: &window), .replayed)
    }

    func testAJumpWithinTheWindowClearsTheSlotsItSlidesPast() {
        var window = ReplayWindow()
        // Fill every slot, then slide by half the window: the new half must read as fresh.
        for counter in UInt64(0)..<ReplayWindow.size { window.commit(counter) }
        let jump = ReplayWindow.size - 1 + ReplayWindow.size / 2
        XCTAssertEqual(accept(jump, into: &window), .fresh)
        for counter in ReplayWindow.size..<jump {
            XCTAssertEqual(window.verdict(for: counter), .fresh, "counter \(counter)")
        }
        for counter in (jump - ReplayWindow.size + 1)..<ReplayWindow.size {
            XCTAssertEqual(window.verdict(for: counter), .replayed, "counter \(counter)")
        }
        XCTAssertEqual(window.verdict(for: jump - ReplayWindow.size), .tooOld)
    }

    func testEveryCounterOfAShuffledRunIsAcceptedExactlyOnce() {
        var window = ReplayWindow()
        var random = SeededRandom(seed: 4)
        var counters = Array(UInt64(0)..<10_000)
        // Shuffle within blocks narrower than the window: every counter is still inside it when it arrives.
        for start in stride(from: 0, to: counters.count, by: 1000) {
            counters[start..<min(start + 1000, counters.count)].shuffle(using: &random)
        }
        for counter in counters { XCTAssertEqual(accept(counter, into: &window), .fresh, "counter \(counter)") }
        for counter in counters.suffix(1000) { XCTAssertEqual(accept(counter, into: &window), .replayed) }
    }

    func testCountersNearTheTopOfTheRange() {
        var window = ReplayWindow()
        let top = UInt64.max
        XCTAssertEqual(accept(top - 3, into: &window), .fresh)
        XCTAssertEqual(accept(top, into: &window), .fresh)
        XCTAssertEqual(accept(top - 1, into: &window), .fresh)
        XCTAssertEqual(accept(top - 1, into: &window), .replayed)
        XCTAssertEqual(accept(top, into: &window), .replayed)
        XCTAssertEqual(accept(top - 3, into: &window), .replayed)
        XCTAssertEqual(accept(top - 2, into: &window), .fresh)
        XCTAssertEqual(window.verdict(for: top - ReplayWindow.size), .tooOld)
        XCTAssertEqual(window.verdict(for: 0), .tooOld)
        XCTAssertEqual(window.newest, top)
    }

    func testAJumpFromZeroToTheTopOfTheRange() {
        var window = ReplayWindow()
        XCTAssertEqual(accept(0, into: &window), .fresh)
        XCTAssertEqual(accept(UInt64.max, into: &window), .fresh)
        XCTAssertEqual(window.verdict(for: 0), .tooOld)
        XCTAssertEqual(window.verdict(for: UInt64.max - 1), .fresh)
    }
}
