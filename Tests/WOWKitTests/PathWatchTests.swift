import XCTest

@testable import WOWKit

/// The path watch: probes and failovers of connections whose edge carries sends without answers.
final class PathWatchTests: XCTestCase {
    private let schemes: Set<String> = ["udp", "tcp", "tls"]

    private func uri(_ text: String) -> TransportURI { try! TransportURI(text) }

    private func at(_ milliseconds: Int64) -> Timestamp { Timestamp(nanoseconds: milliseconds * 1_000_000) }

    private func connection(_ byte: UInt64, edge: UInt64, transport: String = "udp",
                            uris: [String] = ["udp://198.18.0.2:4000", "tcp://198.18.0.2:4001", "tls://198.18.0.2:443"])
        -> Connection {
        let remote = uris.first { $0.hasPrefix(transport + "://") } ?? uris[0]
        return Connection(peer: NodeInfo(address: Address(high: byte << 56, middle: 0, low: 0), uris: uris.map(uri)),
                          localTypes: ["structured.near"], remoteTypes: [], edgeID: EdgeID(edge), transport: transport,
                          localURI: uri("\(transport)://198.18.0.1:4000"), remoteURI: uri(remote), isInbound: false,
                          createdAt: .zero)
    }

    private func path(_ connection: Connection, unansweredSince: Int64?, probedAt: Int64? = nil,
                      isLinking: Bool = false) -> PathWatch.Path {
        PathWatch.Path(connection: connection, unansweredSince: unansweredSince.map(at), probedAt: probedAt.map(at),
                       isLinking: isLinking)
    }

    func testAnAnsweringOrIdlePathIsLeftAlone() {
        var watch = PathWatch(failoverAfter: .seconds(1))
        let (decisions, watching) = watch.check([path(connection(1, edge: 1), unansweredSince: nil)], schemes: schemes,
                                                at: at(60_000))
        XCTAssertEqual(decisions, [])
        XCTAssertFalse(watching, "nothing sent without an answer: nothing to check again")
    }

    func testAnUnansweredPathIsProbedFromHalfTheWindowAFifthApart() {
        var watch = PathWatch(failoverAfter: .seconds(1))
        let c = connection(1, edge: 7)
        var result = watch.check([path(c, unansweredSince: 1_000)], schemes: schemes, at: at(1_400))
        XCTAssertEqual(result.decisions, [], "0.4 s without an answer is a peer with nothing to say yet")
        XCTAssertTrue(result.watching)
        result = watch.check([path(c, unansweredSince: 1_000)], schemes: schemes, at: at(1_500))
        XCTAssertEqual(result.decisions, [.probe(c.address, EdgeID(7))])
        result = watch.check([path(c, unansweredSince: 1_000, probedAt: 1_500)], schemes: schemes, at: at(1_600))
        XCTAssertEqual(result.decisions, [], "the last probe went out 0.1 s ago")
        result = watch.check([path(c, unansweredSince: 1_000, probedAt: 1_500)], schemes: schemes, at: at(1_700))
        XCTAssertEqual(result.decisions, [.probe(c.address, EdgeID(7))])
        result = watch.check([path(c, unansweredSince: 2_000, probedAt: 1_500)], schemes: schemes, at: at(2_500))
        XCTAssertEqual(result.decisions, [.probe(c.address, EdgeID(7))], "a probe before this silence began counts for nothing")
    }

    func testASilentPathFailsOverToTheOtherTransportsFirstAndAsksBackThroughAnAnsweringPeer() {
        var watch = PathWatch(failoverAfter: .seconds(1))
        let silent = connection(1, edge: 1, uris: ["udp://198.18.0.2:4000", "udp://198.18.9.2:4000",
                                                   "tcp://198.18.0.2:4001", "relay://aa/bb", "tls://198.18.0.2:443"])
        var older = connection(2, edge: 2)
        older.lastHeard = at(500)
        var newer = connection(3, edge: 3)
        newer.lastHeard = at(1_800)
        let result = watch.check([path(older, unansweredSince: nil), path(silent, unansweredSince: 1_000, probedAt: 1_900),
                                  path(newer, unansweredSince: nil)], schemes: schemes, at: at(2_000))
        XCTAssertEqual(result.decisions.first, .failover(
            peer: silent.address, from: EdgeID(1),
            uris: [uri("tcp://198.18.0.2:4001"), uri("tls://198.18.0.2:443"), uri("udp://198.18.9.2:4000")],
            through: EdgeID(3), silentFor: .seconds(1)),
            "other transports first, then the same transport's other URIs; none of a transport this node does not run")
        XCTAssertTrue(watch.isFailingOver(silent.address))
        var quiet = watch
        newer.lastHeard = at(900)
        let alone = quiet.check([path(silent, unansweredSince: 1_000, probedAt: 1_900), path(newer, unansweredSince: nil)],
                                schemes: schemes, at: at(4_000))
        guard case .failover(_, _, _, let through, _) = alone.decisions.first else { return XCTFail("\(alone.decisions)") }
        XCTAssertNil(through, "no connection heard within the window to ask back through")
        watch.connectionMoved(silent.address)
        XCTAssertFalse(watch.isFailingOver(silent.address), "the move found a way")
    }

    func testAFailoverProbesEveryOtherConnectionOnTheSameTransport() {
        var watch = PathWatch(failoverAfter: .seconds(1))
        let silent = connection(1, edge: 1)
        let idleSame = connection(2, edge: 2)
        let idleOther = connection(3, edge: 3, transport: "tcp")
        let result = watch.check([path(silent, unansweredSince: 0), path(idleSame, unansweredSince: nil),
                                  path(idleOther, unansweredSince: nil)], schemes: schemes, at: at(1_000))
        XCTAssertEqual(result.decisions.count, 2)
        XCTAssertEqual(result.decisions.last, .probe(idleSame.address, EdgeID(2)),
                       "a dead udp path often means dead udp: the idle udp connection is found out as soon")
        XCTAssertTrue(result.watching)
    }

    func testNoFailoverWhileLinkingAndBackOffAfterOneThatFoundNoWay() {
        var watch = PathWatch(failoverAfter: .seconds(1))
        let c = connection(1, edge: 1)
        var result = watch.check([path(c, unansweredSince: 0, probedAt: 900, isLinking: true)], schemes: schemes,
                                 at: at(1_000))
        XCTAssertEqual(result.decisions, [], "a link attempt to the peer is under way; the last probe is recent")
        result = watch.check([path(c, unansweredSince: 0, probedAt: 900)], schemes: schemes, at: at(1_000))
        guard case .failover = result.decisions.first else { return XCTFail("expected a failover: \(result.decisions)") }
        // The failover found no way: the next waits twice the window, then four times.
        result = watch.check([path(c, unansweredSince: 0, probedAt: 2_900)], schemes: schemes, at: at(2_950))
        XCTAssertEqual(result.decisions, [])
        result = watch.check([path(c, unansweredSince: 0, probedAt: 2_900)], schemes: schemes, at: at(3_000))
        guard case .failover = result.decisions.first else { return XCTFail("expected a second failover: \(result.decisions)") }
        result = watch.check([path(c, unansweredSince: 0, probedAt: 6_900)], schemes: schemes, at: at(6_950))
        XCTAssertEqual(result.decisions, [])
        result = watch.check([path(c, unansweredSince: 0, probedAt: 6_900)], schemes: schemes, at: at(7_000))
        guard case .failover = result.decisions.first else { return XCTFail("expected a third failover: \(result.decisions)") }
        // The path answers: the back-off is forgotten.
        _ = watch.check([path(c, unansweredSince: nil)], schemes: schemes, at: at(7_100))
        XCTAssertFalse(watch.isFailingOver(c.address))
        result = watch.check([path(c, unansweredSince: 8_000, probedAt: 8_900)], schemes: schemes, at: at(9_000))
        guard case .failover = result.decisions.first else { return XCTFail("expected a fresh failover: \(result.decisions)") }
    }

    func testAFailedOverConnectionTriesThePathItLeftSoonThenLessOftenUntilItIsBack() {
        var watch = PathWatch(failoverAfter: .seconds(1), retryInterval: .seconds(30))
        let c = connection(1, edge: 1)
        let result = watch.check([path(c, unansweredSince: 0)], schemes: schemes, at: at(1_000))
        guard case .failover = result.decisions.first else { return XCTFail("expected a failover: \(result.decisions)") }
        var moved = connection(1, edge: 2, transport: "tcp")
        moved.peer = c.peer
        XCTAssertNil(watch.retryLeftPath(moved, isLinking: false, at: at(5_000)))
        XCTAssertEqual(watch.retryLeftPath(moved, isLinking: false, at: at(6_000)), c.remoteURI, "the first try after 5 s")
        XCTAssertNil(watch.retryLeftPath(moved, isLinking: false, at: at(35_000)))
        XCTAssertNil(watch.retryLeftPath(moved, isLinking: true, at: at(36_000)), "not while a link attempt runs")
        XCTAssertEqual(watch.retryLeftPath(moved, isLinking: false, at: at(36_000)), c.remoteURI, "then after 30 s")
        XCTAssertNil(watch.retryLeftPath(moved, isLinking: false, at: at(95_000)))
        XCTAssertEqual(watch.retryLeftPath(moved, isLinking: false, at: at(96_000)), c.remoteURI, "then after 60 s")
        // Back on udp: nothing more to try.
        XCTAssertNil(watch.retryLeftPath(c, isLinking: false, at: at(500_000)))
        XCTAssertNil(watch.retryLeftPath(moved, isLinking: false, at: at(1_000_000)), "forgotten once back")
    }

    func testASlowPathGetsFourRoundTripsAndZeroTurnsFailoverOff() {
        var watch = PathWatch(failoverAfter: .seconds(1))
        var slow = connection(1, edge: 1)
        slow.roundTrip = .milliseconds(400)
        XCTAssertEqual(watch.window(for: slow), .milliseconds(1_600))
        var result = watch.check([path(slow, unansweredSince: 0, probedAt: 1_500)], schemes: schemes, at: at(1_500))
        XCTAssertEqual(result.decisions, [], "1.5 s is under four round trips of this path")
        result = watch.check([path(slow, unansweredSince: 0, probedAt: 1_500)], schemes: schemes, at: at(1_600))
        guard case .failover = result.decisions.first else { return XCTFail("expected a failover: \(result.decisions)") }

        var off = PathWatch(failoverAfter: .zero)
        result = off.check([path(connection(2, edge: 2), unansweredSince: 0)], schemes: schemes, at: at(60_000))
        XCTAssertEqual(result.decisions, [])
        XCTAssertFalse(result.watching)
    }

    func testAPathIsSilentFromTheEndOfItsWindowUntilItAnswersOrTheConnectionMovesOrGoes() {
        var watch = PathWatch(failoverAfter: .seconds(1))
        let c = connection(1, edge: 1)
        let other = connection(2, edge: 2)
        _ = watch.check([path(c, unansweredSince: 0, isLinking: true), path(other, unansweredSince: nil)],
                        schemes: schemes, at: at(900))
        XCTAssertFalse(watch.isSilent(c.address), "0.9 s without an answer: within the window")
        _ = watch.check([path(c, unansweredSince: 0, isLinking: true), path(other, unansweredSince: nil)],
                        schemes: schemes, at: at(1_000))
        XCTAssertTrue(watch.isSilent(c.address), "silent from the end of the window, failover or not (a link runs)")
        XCTAssertFalse(watch.isSilent(other.address))
        watch.pathAnswered(c.address)
        XCTAssertFalse(watch.isSilent(c.address), "a packet back on the edge ends it at once")

        _ = watch.check([path(c, unansweredSince: 2_000)], schemes: schemes, at: at(3_000))
        XCTAssertTrue(watch.isSilent(c.address))
        _ = watch.check([path(c, unansweredSince: nil)], schemes: schemes, at: at(3_200))
        XCTAssertFalse(watch.isSilent(c.address), "a check that finds the edge answering ends it too")

        _ = watch.check([path(c, unansweredSince: 4_000)], schemes: schemes, at: at(5_000))
        watch.connectionMoved(c.address)
        XCTAssertFalse(watch.isSilent(c.address), "the connection is on another edge now")
        _ = watch.check([path(c, unansweredSince: 6_000)], schemes: schemes, at: at(7_000))
        watch.connectionRemoved(c.address)
        XCTAssertFalse(watch.isSilent(c.address))
        XCTAssertTrue(watch.silentPaths.isEmpty)

        var off = PathWatch(failoverAfter: .zero)
        _ = off.check([path(c, unansweredSince: 0)], schemes: schemes, at: at(60_000))
        XCTAssertFalse(off.isSilent(c.address), "failover off: no path is ever taken for silent")
    }
}
