import Transports
import WOWKit
import XCTest

final class StrangerReadBudgetTests: XCTestCase {
    private func at(_ milliseconds: Double) -> Timestamp { Timestamp(nanoseconds: Int64(milliseconds * 1_000_000)) }

    /// A flood that could be read at 1,000,000 datagrams a second, with members' traffic flowing: reads run,
    /// pause as the budget says, and over 10 s strangers are read at the budget's rate (plus its burst), not more.
    func testWhileMembersAreActiveStrangersAreReadAtTheBudgetsRate() {
        var budget = StrangerReadBudget(perSecond: 20_000, memberActivity: .milliseconds(50))
        XCTAssertEqual(budget.burst, 2_000)
        var now = 0.0
        var read = 0
        var pauses = 0
        while now < 10_000 {
            budget.membersRead(at: at(now))
            // A batch of 16 takes 16 µs; then the loop reads again at once, or after the pause.
            now += 0.016
            read += 16
            if let pause = budget.strangersRead(16, at: at(now)) {
                XCTAssertGreaterThan(pause, .milliseconds(9))
                XCTAssertLessThan(pause, .milliseconds(12))
                pauses += 1
                now += Double(pause.nanoseconds) / 1e6
            }
        }
        XCTAssertGreaterThan(pauses, 900, "about one pause per 10 ms")
        XCTAssertEqual(Double(read), 20_000 * 10 + 2_000, accuracy: 1_000, "the rate, and the first burst")
    }

    /// With members quiet nothing pauses, however many strangers come; nor do they count against members'
    /// next burst.
    func testWithMembersQuietStrangersAreReadAsTheyCome() {
        var budget = StrangerReadBudget(perSecond: 1_000, memberActivity: .milliseconds(50))
        XCTAssertFalse(budget.membersActive(at: at(0)))
        var now = 0.0
        for _ in 0..<10_000 {
            XCTAssertNil(budget.strangersRead(16, at: at(now)))
            now += 0.1
        }
        // Members were active, and went quiet for longer than `memberActivity`.
        budget.membersRead(at: at(now))
        XCTAssertTrue(budget.membersActive(at: at(now + 50)))
        XCTAssertFalse(budget.membersActive(at: at(now + 51)))
        XCTAssertNil(budget.strangersRead(10_000, at: at(now + 60)))
        // Members again: the whole burst (100) is there, and not more.
        budget.membersRead(at: at(now + 80))
        XCTAssertNil(budget.strangersRead(99, at: at(now + 80)))
        XCTAssertNotNil(budget.strangersRead(1, at: at(now + 80)))
    }

    /// A pause lasts until 10 ms worth of tokens (at least 16) are back, counting what was overdrawn.
    func testAPauseLastsUntilTenMillisecondsWorthAreBack() throws {
        var budget = StrangerReadBudget(perSecond: 10_000, memberActivity: .seconds(1))
        budget.membersRead(at: at(0))
        XCTAssertNil(budget.strangersRead(999, at: at(0)))
        // 1,000 - 1,016 = -16 tokens: 16 + 100 to come back at 10 per ms.
        let pause = try XCTUnwrap(budget.strangersRead(17, at: at(0)))
        XCTAssertEqual(Double(pause.nanoseconds) / 1e6, 11.6, accuracy: 0.01)
        // After it, 100 tokens: a batch goes on.
        XCTAssertNil(budget.strangersRead(16, at: at(11.6)))
        // A slow budget waits for 16 tokens, not 10 ms worth.
        var slow = StrangerReadBudget(perSecond: 100, memberActivity: .seconds(1))
        slow.membersRead(at: at(0))
        let slowPause = try XCTUnwrap(slow.strangersRead(64, at: at(0)))
        XCTAssertEqual(Double(slowPause.nanoseconds) / 1e6, 160, accuracy: 0.01)
    }

    func testZeroMeansNoLimitAndNegativeRatesAreZero() {
        var budget = StrangerReadBudget(perSecond: 0)
        budget.membersRead(at: at(0))
        XCTAssertNil(budget.strangersRead(1_000_000, at: at(0.001)))
        XCTAssertEqual(StrangerReadBudget(perSecond: -5).perSecond, 0)
    }
}
