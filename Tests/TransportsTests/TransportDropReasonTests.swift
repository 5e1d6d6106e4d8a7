import Transports
import WOWKit
import XCTest

/// The transports' drop reasons are closed sets whose slots are their positions in `allCases`, so that each
/// is counted under its own name.
final class TransportDropReasonTests: XCTestCase {
    private func assertSlotsMatchAllCases<Reason: DropCounterReason & CaseIterable & Equatable>(
        _ type: Reason.Type, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(Reason.slotted.map(\.slot), (0..<Reason.allCases.count).map { Optional($0) }, file: file, line: line)
        var drops = DropCounter<Reason>()
        for (position, reason) in Reason.allCases.enumerated() {
            for _ in 0...position { drops.count(reason) }
        }
        for (position, reason) in Reason.allCases.enumerated() {
            XCTAssertEqual(drops.byName[reason.description], position + 1, "\(reason)", file: file, line: line)
        }
    }

    func testEveryReasonHasItsOwnSlot() {
        assertSlotsMatchAllCases(UDPEdgeListener.DropReason.self)
        assertSlotsMatchAllCases(TCPEdgeListener.DropReason.self)
        assertSlotsMatchAllCases(MemoryNetwork.DropReason.self)
    }

    func testCounterNamesAreTheRawValues() {
        XCTAssertEqual(UDPEdgeListener.DropReason.fragmentNoRoom.description, "fragment_no_room")
        XCTAssertEqual(TCPEdgeListener.DropReason.frameTooLong.description, "frame_too_long")
        XCTAssertEqual(MemoryNetwork.DropReason.natFiltered.description, "nat_filtered")
    }
}
