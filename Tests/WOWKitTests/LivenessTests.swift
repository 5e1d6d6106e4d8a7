import XCTest

@testable import WOWKit

/// Liveness rounds: pings, dead connections, stale edges.
final class LivenessTests: XCTestCase {
    private func liveness() -> Liveness {
        var settings = NodeConfig.Liveness()
        settings.pingInterval = .seconds(15)
        settings.deadAfter = .seconds(30)
        var linking = NodeConfig.Linking()
        linking.replyTimeout = .seconds(1)
        linking.attemptsPerURI = 3
        return Liveness(settings: settings, linking: linking)
    }

    private func connection(_ byte: UInt64, edge: UInt64, heardAt seconds: Int64) -> Connection {
        var connection = Connection(peer: NodeInfo(address: Address(high: byte << 56, middle: 0, low: 0), uris: []),
                                    localTypes: ["structured.near"], remoteTypes: [], edgeID: EdgeID(edge), transport: "udp",
                                    localURI: try! TransportURI("udp://198.18.0.1:4000"),
                                    remoteURI: try! TransportURI("udp://198.18.0.2:4000"), isInbound: false, createdAt: .zero)
        connection.lastHeard = Timestamp(nanoseconds: seconds * 1_000_000_000)
        return connection
    }

    func testARoundPingsTheSilentClosesTheDeadAndTheStaleEdges() {
        let now = Timestamp(nanoseconds: 40 * 1_000_000_000)
        let fresh = connection(1, edge: 1, heardAt: 30)
        let silent = connection(2, edge: 2, heardAt: 20)
        let dead = connection(3, edge: 3, heardAt: 5)
        let directives = liveness().round(
            connections: [fresh, silent, dead],
            edges: [(EdgeID(4), Timestamp(nanoseconds: 34 * 1_000_000_000)), (EdgeID(5), Timestamp(nanoseconds: 36 * 1_000_000_000))],
            at: now)
        XCTAssertEqual(directives, [
            .send(.ping(nonce: UInt64(bitPattern: now.nanoseconds)), on: EdgeID(2)),
            .removeConnection(dead.address, reason: "dead"),
            .closeEdgeIfUnused(EdgeID(3)),
            .closeEdgeIfUnused(EdgeID(4)),
        ], "an edge idle over 5 s (a reply timeout times attempts + 2) closes; one idle 4 s stays")
    }

    func testRoundsComeEveryThirdOfThePingIntervalWithJitter() {
        var random = SeededRandom(seed: 9)
        for _ in 0..<100 {
            let delay = liveness().nextRound(random: &random)
            XCTAssertGreaterThanOrEqual(delay, .seconds(5))
            XCTAssertLessThanOrEqual(delay, .seconds(5) + .milliseconds(1250))
        }
    }
}
