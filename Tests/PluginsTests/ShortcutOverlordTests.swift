import Plugins
import WOWKit
import XCTest

/// `structured.shortcut` as a state machine: events and a hand-made table and traffic ledger in, actions out.
final class ShortcutOverlordTests: XCTestCase {
    private let type: ConnectionType = "structured.shortcut"
    private let local = Address(ringFraction: 0.5)
    /// Peers on both sides of `local`: the first ones have larger addresses (we ask), the last smaller ones.
    private let larger = (1...6).map { Address(ringFraction: 0.5 + Double($0) / 100) }
    private let smaller = Address(ringFraction: 0.1)

    private func context(at seconds: Double, table: ConnectionTable? = nil, traffic: TrafficLedger = TrafficLedger())
        -> OverlordContext {
        OverlordContext(local: NodeInfo(address: local, uris: []), table: table ?? ConnectionTable(localAddress: local),
                        now: Timestamp(nanoseconds: Int64(seconds * 1e9)), random: SeededRandom(seed: 1), bootstrap: [],
                        traffic: traffic)
    }

    private func connection(to peer: Address, local types: Set<ConnectionType>, remote: Set<ConnectionType> = []) throws -> Connection {
        let uri = try TransportURI("memory://1:1")
        return Connection(peer: NodeInfo(address: peer, uris: [uri]), localTypes: types, remoteTypes: remote,
                          edgeID: EdgeID(1), transport: "memory", localURI: uri, remoteURI: uri, isInbound: false,
                          createdAt: .zero)
    }

    private func ledger(_ packets: [(Address, Double)]) -> TrafficLedger {
        var ledger = TrafficLedger()
        for (peer, at) in packets { ledger.record(peer, bytes: 100, isSent: true, at: Timestamp(nanoseconds: Int64(at * 1e9))) }
        return ledger
    }

    private func flow(_ ledger: TrafficLedger, _ peer: Address, at seconds: Double) throws -> TrafficLedger.PeerTraffic {
        try XCTUnwrap(ledger.traffic(with: peer, at: Timestamp(nanoseconds: Int64(seconds * 1e9))))
    }

    private func connects(_ actions: [OverlordAction]) -> [Address] {
        actions.compactMap { if case .connect(let request) = $0 { return request.target } else { return nil } }
    }

    func testSecondPacketOfAFlowAsksForAShortcutAtOnceButTheFirstDoesNot() throws {
        let overlord = ShortcutOverlord()
        let peer = larger[0]
        var traffic = ledger([(peer, 10)])
        var ctx = context(at: 10, traffic: traffic)
        XCTAssertEqual(overlord.handle(.dataExchanged(with: peer, try flow(traffic, peer, at: 10)), context: &ctx), [])
        traffic = ledger([(peer, 10), (peer, 10.2)])
        ctx = context(at: 10.2, traffic: traffic)
        let actions = overlord.handle(.dataExchanged(with: peer, try flow(traffic, peer, at: 10.2)), context: &ctx)
        XCTAssertEqual(actions, [.connect(ConnectRequest(target: peer, mode: .exact, type: type))])
        // Not asked twice while the first is pending.
        ctx = context(at: 10.3, traffic: traffic)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [])
    }

    func testTheEndWithTheLargerAddressLeavesTheAskingToItsPeerUntilFallback() throws {
        let overlord = ShortcutOverlord()
        let traffic = ledger([(smaller, 10), (smaller, 10.1), (smaller, 10.2)])
        var ctx = context(at: 10.2, traffic: traffic)
        XCTAssertEqual(overlord.handle(.dataExchanged(with: smaller, try flow(traffic, smaller, at: 10.2)), context: &ctx), [])
        // Still talking three seconds later (fallback_s), still no shortcut: now we ask.
        let later = ledger([(smaller, 12.5), (smaller, 13.0), (smaller, 13.2)])
        ctx = context(at: 13.3, traffic: later)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [smaller])
    }

    func testAFailedPeerIsAskedAgainOnlyAfterTheRetryBackoff() throws {
        let overlord = ShortcutOverlord()
        let peer = larger[0]
        let traffic = ledger([(peer, 0), (peer, 0.1)])
        var ctx = context(at: 0.1, traffic: traffic)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [peer])
        let request = ConnectRequest(target: peer, mode: .exact, type: type)
        ctx = context(at: 1)
        _ = overlord.handle(.connectFailed(request, reason: "unreachable"), context: &ctx)
        let busy = ledger([(peer, 4), (peer, 4.5), (peer, 5.5)])
        ctx = context(at: 5.5, traffic: busy)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [], "asked again before retry_s (5 s)")
        let later = ledger([(peer, 5.8), (peer, 6.1)])
        ctx = context(at: 6.1, traffic: later)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [peer])
        // A second failure doubles the wait.
        ctx = context(at: 6.2)
        _ = overlord.handle(.connectFailed(request, reason: "unreachable"), context: &ctx)
        let again = ledger([(peer, 15), (peer, 15.1)])
        ctx = context(at: 15.1, traffic: again)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [])
        let last = ledger([(peer, 16.3), (peer, 16.4)])
        ctx = context(at: 16.4, traffic: last)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [peer])
    }

    func testWhenFullAQuietShortcutMakesRoomButBusyOnesDoNot() throws {
        var settings = ShortcutOverlord.Settings()
        settings.maxShortcuts = 2
        let overlord = try ShortcutOverlord.makeOverlord(settings: settings)
        var table = ConnectionTable(localAddress: local)
        table.upsert(try connection(to: larger[0], local: [type]))
        table.upsert(try connection(to: larger[1], local: [type]))
        // Both shortcuts busy, a third flow starts: it waits.
        var traffic = ledger([(larger[0], 20), (larger[1], 20.1), (larger[2], 20.2), (larger[2], 20.3)])
        var ctx = context(at: 20.3, table: table, traffic: traffic)
        XCTAssertEqual(overlord.handle(.tick, context: &ctx), [])
        // larger[0] falls quiet for more than two windows: it gives way.
        traffic = ledger([(larger[0], 20), (larger[1], 23.1), (larger[2], 23.2), (larger[2], 23.3)])
        ctx = context(at: 23.3, table: table, traffic: traffic)
        XCTAssertEqual(overlord.handle(.tick, context: &ctx), [
            .trim(peer: larger[0], type: type), .connect(ConnectRequest(target: larger[2], mode: .exact, type: type)),
        ])
    }

    func testAShortcutIsTrimmedOnlyAfterIdleTimeout() throws {
        let overlord = ShortcutOverlord()
        var table = ConnectionTable(localAddress: local)
        table.upsert(try connection(to: larger[3], local: [type, "structured.far"]))
        let traffic = ledger([(larger[3], 100)])
        var ctx = context(at: 159.5, table: table, traffic: traffic)
        XCTAssertEqual(overlord.handle(.tick, context: &ctx), [])
        ctx = context(at: 160, table: table, traffic: traffic)
        XCTAssertEqual(overlord.handle(.tick, context: &ctx), [.trim(peer: larger[3], type: type)])
    }

    func testAPeerConnectedForAnotherReasonGetsTheShortcutType() throws {
        let overlord = ShortcutOverlord()
        var table = ConnectionTable(localAddress: local)
        table.upsert(try connection(to: larger[4], local: ["structured.near"]))
        let traffic = ledger([(larger[4], 1), (larger[4], 1.1)])
        var ctx = context(at: 1.1, table: table, traffic: traffic)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [larger[4]])
        // One the peer already made a shortcut needs nothing more.
        table.upsert(try connection(to: larger[5], local: [], remote: [type]))
        let other = ledger([(larger[5], 1), (larger[5], 1.1)])
        ctx = context(at: 1.1, table: table, traffic: other)
        XCTAssertEqual(connects(overlord.handle(.tick, context: &ctx)), [])
    }
}
