import XCTest

@testable import WOWKit

/// Tunnel packets over direct connections: to the destination, towards the forwarder, then greedy.
final class TunnelRouterTests: XCTestCase {
    private let local = at(0x10)

    private func direct(_ tops: [UInt64]) -> ConnectionTable {
        var table = ConnectionTable(localAddress: local)
        for top in tops {
            table.upsert(Connection(peer: NodeInfo(address: at(top), uris: []), localTypes: ["structured.near"],
                                    remoteTypes: [], edgeID: EdgeID(top), transport: "udp",
                                    localURI: try! TransportURI("udp://198.18.0.1:4000"),
                                    remoteURI: try! TransportURI("udp://198.18.0.2:4000"), isInbound: false,
                                    createdAt: .zero))
        }
        return table
    }

    private func header(to top: UInt64) -> RoutedHeader {
        RoutedHeader(mode: .exact, payloadType: .tunnel, source: at(0x90), destination: at(top))
    }

    func testADirectPeerIsReachedStraightAndThisNodeDelivers() {
        let table = direct([0x30, 0x50])
        XCTAssertEqual(TunnelRouter.decide(header(to: 0x10), via: .zero, previous: at(0x30), at: local, direct: table,
                                           isRingMember: true).decision, .deliver)
        XCTAssertEqual(TunnelRouter.decide(header(to: 0x50), via: at(0x30), previous: nil, at: local, direct: table,
                                           isRingMember: true).decision, .forward(to: at(0x50)))
    }

    func testAFrameGoesTowardsItsForwarderAndKeepsItsVia() {
        let table = direct([0x30, 0x50])
        let (decision, clearVia) = TunnelRouter.decide(header(to: 0xA0), via: at(0x50), previous: at(0x30), at: local,
                                                       direct: table, isRingMember: true)
        XCTAssertEqual(decision, .forward(to: at(0x50)))
        XCTAssertFalse(clearVia)
    }

    func testWithoutAWayToTheForwarderItGoesTowardsTheDestinationWithViaCleared() {
        let table = direct([0x30, 0xB0])
        let (decision, clearVia) = TunnelRouter.decide(header(to: 0xA0), via: at(0x20), previous: at(0x30), at: local,
                                                       direct: table, isRingMember: true)
        XCTAssertEqual(decision, .forward(to: at(0xB0)))
        XCTAssertTrue(clearVia, "the phase changed: later nodes go for the destination too")
    }

    func testANodeRelayedToTheDestinationSendsThroughThatRelaysForwarder() {
        // Greedy routing ends here (0xB0 is nearest 0xA0 of our direct peers, we are nearer still), but our own
        // relayed connection to 0xA0 goes through 0x30, a direct peer that holds 0xA0.
        let table = direct([0x30, 0x50])
        XCTAssertEqual(TunnelRouter.decide(header(to: 0xA0), via: .zero, previous: at(0x50), at: local, direct: table,
                                           isRingMember: true, relayedVia: at(0x30)).decision, .forward(to: at(0x30)))
        XCTAssertEqual(TunnelRouter.decide(header(to: 0xA0), via: at(0x50), previous: at(0x90), at: local, direct: table,
                                           isRingMember: true, relayedVia: at(0x30)).decision, .forward(to: at(0x30)),
                       "before the named forwarder: two hops for sure")
        XCTAssertEqual(TunnelRouter.decide(header(to: 0xA0), via: .zero, previous: at(0x30), at: local, direct: table,
                                           isRingMember: true, relayedVia: at(0x30)).decision, .forward(to: at(0x50)),
                       "not back to the forwarder it came from: that one lost the destination")
        XCTAssertEqual(TunnelRouter.decide(header(to: 0xA0), via: .zero, previous: at(0x50), at: local, direct: table,
                                           isRingMember: true, relayedVia: at(0x70)).decision,
                       TunnelRouter.decide(header(to: 0xA0), via: .zero, previous: at(0x50), at: local, direct: table,
                                           isRingMember: true).decision,
                       "a forwarder that is not a direct peer changes nothing")
    }

    func testTheSendersFirstStepMayLeaveTheRingForAnyDirectPeer() {
        let table = direct([0xF0])
        let (decision, _) = TunnelRouter.decide(header(to: 0x80), via: .zero, previous: nil, at: local, direct: table,
                                                isRingMember: true)
        XCTAssertEqual(decision, .forward(to: at(0xF0)))
        XCTAssertEqual(TunnelRouter.decide(header(to: 0x80), via: .zero, previous: nil, at: local, direct: direct([]),
                                           isRingMember: true).decision, .fail(.absentDestination),
                       "no direct connection at all: the destination cannot be reached")
    }
}

private func at(_ top: UInt64) -> Address { Address(high: top << 56, middle: 0, low: 0) }
