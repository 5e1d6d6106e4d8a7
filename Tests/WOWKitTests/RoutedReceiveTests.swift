import NIOCore
import Transports
@testable import WOWKit
import WOWSimulator
import XCTest

/// Routed packets from a connection's peer take a short way in (`Node.handleEdgeMessage`: decoded without the
/// message enum; `Node.route`: data for this node delivered without the routing decision). It must do what
/// the general way does: deliver, note the peer as heard, and drop what is malformed, counted.
final class RoutedReceiveTests: XCTestCase {
    func testRoutedDataFromTheConnectionsPeerIsDeliveredAndMalformedPacketsAreDropped() throws {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 3, roundTrip: .milliseconds(10) ... .milliseconds(10))
        let pair = DialedPair(scheduler: scheduler, network: network, seed: 21)
        let (a, b) = (pair.a, pair.b)
        try b.start()
        try a.start()
        scheduler.run(for: .milliseconds(500))
        let edge = try XCTUnwrap(b.table.connection(to: a.address)?.edgeID, "a linked to b")
        var delivered: [(RoutedHeader, [UInt8])] = []
        b.onDeliver = { header, payload in delivered.append((header, Array(payload.readableBytesView))) }
        scheduler.run(for: .seconds(2))
        let deliveredBefore = b.stats.routedDelivered

        // Data from a, for b: delivered as it came, and a heard now.
        let header = RoutedHeader(hops: 1, mode: .exact, payloadType: .data, source: a.address, destination: b.address)
        let message = EdgeMessage.routed(RoutedPacket(header: header, payload: ByteBuffer(bytes: [1, 2, 3])))
        b.handleEdgeMessage(message.encoded(), on: edge)
        XCTAssertEqual(delivered.count, 1)
        XCTAssertEqual(delivered.first?.0, header)
        XCTAssertEqual(delivered.first?.1, [1, 2, 3])
        XCTAssertEqual(b.stats.routedDelivered, deliveredBefore + 1)
        XCTAssertEqual(b.table.connection(to: a.address)?.lastHeard, scheduler.now)
        XCTAssertEqual(b.table.connection(to: a.address)?.lastHeardOnPath, scheduler.now)

        // More hops than its time to live, a delivery mode that does not exist, a header cut short: each
        // dropped and counted by its reason, nothing delivered.
        var bytes = Array(message.encoded().readableBytesView)
        bytes[2] = 200  // hops, above the TTL
        var unknownMode = Array(message.encoded().readableBytesView)
        unknownMode[4] = 0x7F
        let cut = Array(message.encoded().readableBytesView.prefix(20))
        let dropsBefore = b.stats.drops.total
        for (malformed, reason) in [(bytes, "bad_hop_count"), (unknownMode, "unknown_delivery_mode"), (cut, "truncated")] {
            b.handleEdgeMessage(ByteBuffer(bytes: malformed), on: edge)
            XCTAssertNotNil(b.stats.drops.byName[reason], "dropped as \(reason): \(b.stats.drops.byName)")
        }
        XCTAssertEqual(b.stats.drops.total, dropsBefore + 3)
        XCTAssertEqual(delivered.count, 1, "nothing malformed was delivered")
    }
}
