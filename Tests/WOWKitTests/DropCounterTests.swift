import XCTest

@testable import WOWKit

/// Drops by reason: slotted reasons (a closed set) and reasons counted by name (the node's), under the names
/// users see.
final class DropCounterTests: XCTestCase {
    private enum Closed: String, CaseIterable, DropCounterReason {
        case first
        case second = "second_reason"

        var slot: Int? {
            switch self {
            case .first: return 0
            case .second: return 1
            }
        }
    }

    func testSlottedReasonsAreCountedUnderTheirRawValuesAndAllListed() {
        var drops = DropCounter<Closed>()
        XCTAssertEqual(drops.byName, ["first": 0, "second_reason": 0], "every reason present, zeros included")
        drops.count(.second)
        drops.count(.second)
        XCTAssertEqual(drops.count(of: .first), 0)
        XCTAssertEqual(drops.count(of: .second), 2)
        XCTAssertEqual(drops.total, 2)
        XCTAssertEqual(drops.byName, ["first": 0, "second_reason": 2])
    }

    func testNodeReasonsAreCountedByDescriptionAndOnlyThoseSeenListed() {
        var drops = DropCounter<DropReason>()
        XCTAssertEqual(drops.byName, [:])
        drops.count(.notLinked)
        drops.count(.virtualNetwork("foreign_source"))
        drops.count(.virtualNetwork("foreign_source"))
        XCTAssertEqual(drops.byName, ["not_linked": 1, "vnet_foreign_source": 2])
        XCTAssertEqual(drops.count(of: .virtualNetwork("foreign_source")), 2)
        XCTAssertEqual(drops.count(of: .ttlExpired), 0)
        XCTAssertEqual(drops.total, 3)
    }

    func testAddingSumsBothCounters() {
        var a = DropCounter<Closed>()
        var b = DropCounter<Closed>()
        a.count(.first)
        b.count(.first)
        b.count(.second)
        XCTAssertEqual(a.adding(b).byName, ["first": 2, "second_reason": 1])
        XCTAssertEqual(a.adding(b).total, 3)
    }
}
