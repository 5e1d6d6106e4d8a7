import NIOCore
import Plugins
import Transports
@testable import WOWKit
import XCTest

@testable import WOWSimulator

/// Overlay echoes (`wow ping`) between secured nodes on the simulated WAN (20–250 ms round trips), all times
/// virtual: routed replies with hop counts and the path, a shortcut that makes the path direct, unreachable
/// and silent destinations, and the reply budget.
final class EchoSimulationTests: XCTestCase {
    private func ring(_ count: Int) throws -> OverlaySimulation {
        var options = SimulationOptions()
        options.nodes = count
        options.seed = 5
        let entries: [NodeConfig.PluginEntry] = [
            .init(name: LeafOverlord.name), .init(name: NearOverlord.name), .init(name: FarOverlord.name),
            .init(name: ShortcutOverlord.name),
        ]
        let simulation = try OverlaySimulation(options: options, overlordEntries: entries)
        for _ in 0..<count {
            try simulation.addNode()
            simulation.scheduler.run(for: .milliseconds(100))
        }
        simulation.scheduler.run(for: .seconds(30))
        XCTAssertEqual(simulation.ringViolations(), 0)
        return simulation
    }

    /// Pings `b` from `a` and runs virtual time until the answer.
    private func ping(_ a: Node, _ b: Address, sequence: UInt32 = 1, timeout: Duration = .seconds(5),
                      in simulation: OverlaySimulation) -> Result<EchoOutcome, EchoFailure>? {
        var outcome: Result<EchoOutcome, EchoFailure>?
        a.echo(b, sequence: sequence, timeout: timeout) { outcome = $0 }
        simulation.scheduler.run(until: simulation.scheduler.now + timeout + .seconds(1)) { outcome == nil }
        return outcome
    }

    func testAPingToADistantNodeIsRoutedThenGoesDirectOnceItsShortcutForms() throws {
        let simulation = try ring(40)
        let nodes = simulation.nodes.map(\.node)
        let (a, b) = try XCTUnwrap(nodes.lazy.flatMap { a in nodes.lazy.map { (a, $0) } }
            .first { $0.0 !== $0.1 && !$0.0.table.contains($0.1.address) && !$0.1.table.contains($0.0.address) })

        let first = try XCTUnwrap(ping(a, b.address, in: simulation)).get()
        XCTAssertFalse(first.isDirect)
        XCTAssertTrue(first.path.hasPrefix("routed via "), first.path)
        XCTAssertGreaterThanOrEqual(first.hopsThere, 2, "an unconnected peer is at least two hops away")
        XCTAssertGreaterThanOrEqual(first.hopsBack, 2)
        XCTAssertGreaterThan(first.roundTrip, .milliseconds(20))
        // The next hop is named by its certificate name, not its address.
        let nextHop = String(first.path.dropFirst("routed via ".count))
        XCTAssertTrue(nodes.contains { a.certificate(of: $0.address)?.name == nextHop }, first.path)

        // Pings are a conversation: the shortcut strategy links the two, and pings then go direct in one hop.
        var direct: EchoOutcome?
        for sequence in 2...6 where direct == nil {
            simulation.scheduler.run(for: .seconds(1))
            let outcome = try XCTUnwrap(ping(a, b.address, sequence: UInt32(sequence), in: simulation)).get()
            if outcome.isDirect { direct = outcome }
        }
        let now = try XCTUnwrap(direct, "no direct path within 5 pings")
        XCTAssertEqual(now.hopsThere, 1)
        XCTAssertEqual(now.hopsBack, 1)
        // Over whichever of the peer's transports answered first (`memory` or `memory-stream`).
        XCTAssertTrue(now.path.hasPrefix("direct memory"), now.path)
    }

    func testAPingToNobodyFailsAsUnreachableAndToACrashedPeerTimesOut() throws {
        let simulation = try ring(12)
        let nodes = simulation.nodes
        let a = nodes[0].node
        var absent = Address(bytes: [UInt8](repeating: 0x5A, count: Address.byteCount))!
        while nodes.contains(where: { $0.node.address == absent }) { absent = Address(bytes: [UInt8](repeating: 0x5B, count: Address.byteCount))! }
        guard case .failure(.unreachable(.absentDestination, _))? = ping(a, absent, in: simulation) else {
            return XCTFail("a ping to an address nobody holds must fail as unreachable")
        }

        // A direct peer that crashed: its connection is still in the table, the request vanishes.
        let peer = try XCTUnwrap(nodes.first { a.table.contains($0.node.address) })
        simulation.crash(peer)
        guard case .failure(.timedOut(let after))? = ping(a, peer.node.address, timeout: .seconds(1), in: simulation) else {
            return XCTFail("a ping to a crashed peer must time out")
        }
        XCTAssertEqual(after, .seconds(1))

        // Echoes waiting at once are bounded: one more fails at once, and says why.
        var tooMany = 0
        for sequence in 0...UInt32(PendingEchoes.maximumWaiting) {
            a.echo(peer.node.address, sequence: sequence, timeout: .seconds(5)) { if $0 == .failure(.tooMany) { tooMany += 1 } }
        }
        XCTAssertEqual(tooMany, 1)
        XCTAssertEqual(EchoFailure.tooMany.description, "4096 echoes wait for replies already")
    }

    func testRepliesAreCappedPerSecond() throws {
        let simulation = try ring(6)
        let a = simulation.nodes[0].node
        let b = try XCTUnwrap(simulation.nodes.first { a.table.contains($0.node.address) }).node
        var replies = 0
        for sequence in 0..<250 {
            a.echo(b.address, sequence: UInt32(sequence), timeout: .seconds(3)) { if case .success = $0 { replies += 1 } }
        }
        simulation.scheduler.run(for: .seconds(4))
        // All 250 requests reach b within one second of each other: at most one second's budget is answered,
        // or two if the burst straddles a second.
        XCTAssertGreaterThanOrEqual(replies, 200)
        XCTAssertLessThan(replies, 250)
        XCTAssertEqual(b.stats.drops.byName["echo_reply_limit"], 250 - replies)
    }
}
