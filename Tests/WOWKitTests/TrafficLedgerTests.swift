import WOWKit
import XCTest

final class TrafficLedgerTests: XCTestCase {
    private func at(_ seconds: Double) -> Timestamp { Timestamp(nanoseconds: Int64(seconds * 1e9)) }
    private let peer = Address(ringFraction: 0.3)

    func testCountsBothDirectionsAndRecentWindows() throws {
        var ledger = TrafficLedger()
        XCTAssertEqual(ledger.record(peer, bytes: 100, isSent: true, at: at(10)), 1)
        XCTAssertEqual(ledger.record(peer, bytes: 40, isSent: false, at: at(10.5)), 2)
        XCTAssertEqual(ledger.record(peer, bytes: 60, isSent: true, at: at(11.2)), 3, "the previous, adjacent window counts")
        let flow = try XCTUnwrap(ledger.traffic(with: peer, at: at(11.2)))
        XCTAssertEqual([flow.packetsSent, flow.packetsReceived, flow.bytesSent, flow.bytesReceived], [2, 1, 160, 40])
        XCTAssertEqual(flow.recentBytes, 200)
        XCTAssertEqual(flow.firstActive, at(10))
        XCTAssertEqual(flow.lastActive, at(11.2))
        // A window later only the last packet is recent; two windows of silence later nothing is.
        XCTAssertEqual(ledger.traffic(with: peer, at: at(12.5))?.recentPackets, 1)
        XCTAssertEqual(ledger.traffic(with: peer, at: at(13.5))?.recentPackets, 0)
        XCTAssertEqual(ledger.traffic(with: peer, at: at(13.5))?.packetsSent, 2, "totals stay")
    }

    func testATrickleNeverLooksRecent() {
        var ledger = TrafficLedger()
        for i in 0..<10 { XCTAssertEqual(ledger.record(peer, bytes: 1, isSent: true, at: at(Double(i) * 5)), 1) }
    }

    func testBoundedByCapacityAndIdleTime() {
        var ledger = TrafficLedger(window: .seconds(1), capacity: 3, forgetAfter: .seconds(60))
        let peers = (1...4).map { Address(ringFraction: Double($0) / 10) }
        for (i, p) in peers.enumerated() { ledger.record(p, bytes: 1, isSent: true, at: at(Double(i))) }
        XCTAssertEqual(ledger.peers.count, 3)
        XCTAssertNil(ledger.peers[peers[0]], "the least recently active peer makes room")
        ledger.forgetIdle(at: at(62.5))
        XCTAssertEqual(Set(ledger.peers.keys), [peers[3]])
    }
}
