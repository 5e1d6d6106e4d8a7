import NIOCore
import XCTest

@testable import WOWKit

/// A datagram listener's edges by remote: one per remote, inbound ones capped, closing ones removed only if
/// still current, all taken out in order on stop.
final class DatagramEdgeTableTests: XCTestCase {
    private final class FakeEdge: Edge {
        let transport = "fake"
        let localURI = try! TransportURI("fake://local:1")
        let remoteURI: TransportURI
        let isInbound: Bool
        var isClosed = false
        var delegate: (any EdgeDelegate)?

        init(remote: Int, isInbound: Bool) {
            remoteURI = try! TransportURI("fake://local:\(remote)")
            self.isInbound = isInbound
        }

        func send(_ packet: ByteBuffer) {}
        func close() { isClosed = true }
    }

    func testCreateEdgeReturnsTheEdgeARemoteAlreadyHas() throws {
        var table = DatagramEdgeTable<Int, FakeEdge>()
        let inbound = try XCTUnwrap(table.accept(from: 7) { FakeEdge(remote: 7, isInbound: true) })
        var made = 0
        let outbound = table.edge(to: 7) { made += 1; return FakeEdge(remote: 7, isInbound: false) }
        XCTAssertTrue(outbound === inbound)
        XCTAssertEqual(made, 0, "no second edge is made")
        let other = table.edge(to: 8) { FakeEdge(remote: 8, isInbound: false) }
        XCTAssertTrue(table[8] === other)
        XCTAssertEqual(table.count, 2)
        XCTAssertEqual(table.inboundCount, 1)
    }

    func testInboundEdgesStopAtTheLimitAndRemovingOneMakesRoom() throws {
        var table = DatagramEdgeTable<Int, FakeEdge>(inboundLimit: 2)
        let first = try XCTUnwrap(table.accept(from: 1) { FakeEdge(remote: 1, isInbound: true) })
        XCTAssertNotNil(table.accept(from: 2) { FakeEdge(remote: 2, isInbound: true) })
        XCTAssertNil(table.accept(from: 3) { FakeEdge(remote: 3, isInbound: true) }, "over the limit")
        XCTAssertNil(table[3])
        _ = table.edge(to: 4) { FakeEdge(remote: 4, isInbound: false) }
        XCTAssertEqual(table.count, 3, "outbound edges are not limited")
        table.remove(first, for: 1)
        XCTAssertNotNil(table.accept(from: 3) { FakeEdge(remote: 3, isInbound: true) })
    }

    func testRemovingAnEdgeThatWasReplacedKeepsTheNewOne() throws {
        var table = DatagramEdgeTable<Int, FakeEdge>()
        let old = try XCTUnwrap(table.accept(from: 1) { FakeEdge(remote: 1, isInbound: true) })
        table.remove(old, for: 1)
        let new = try XCTUnwrap(table.accept(from: 1) { FakeEdge(remote: 1, isInbound: true) })
        table.remove(old, for: 1)
        XCTAssertTrue(table[1] === new)
        XCTAssertEqual(table.inboundCount, 1)
    }

    func testRemoveAllEmptiesTheTableAndReturnsTheEdgesInOrder() {
        var table = DatagramEdgeTable<Int, FakeEdge>()
        for remote in [30, 10, 20] { _ = table.edge(to: remote) { FakeEdge(remote: remote, isInbound: false) } }
        XCTAssertEqual(table.removeAll().map(\.remoteURI.text), ["fake://local:10", "fake://local:20", "fake://local:30"])
        XCTAssertEqual(table.count, 0)
        for remote in [3, 1] { _ = table.accept(from: remote) { FakeEdge(remote: remote, isInbound: true) } }
        XCTAssertEqual(table.removeAll(sortedBy: { $0.remoteURI > $1.remoteURI }).map(\.remoteURI.text),
                       ["fake://local:3", "fake://local:1"])
        XCTAssertEqual(table.inboundCount, 0)
    }
}
