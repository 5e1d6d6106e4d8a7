import NIOCore
import Transports
import WOWKit
import XCTest
@testable import WOWSimulator

/// A joiner whose config names its bootstrap node's handshake key (`bootstrap: - {uri, handshake_key}`) sends
/// its leaf request and its Connect-To-Me in its first init: it joins one round trip sooner. A wrong key costs
/// that round trip back and nothing else. Virtual time: exact figures.
final class BootstrapKeySimulationTests: XCTestCase {
    /// 30 secured nodes over 100 ms round trips, each bootstrapping through a random earlier one, with and
    /// without their bootstrap node's key.
    private func joinTimes(bootstrapKeys: Bool) throws -> (SimulationReport, OverlaySimulation) {
        var options = SimulationOptions()
        options.nodes = 30
        options.seed = 3
        options.roundTrip = .milliseconds(100) ... .milliseconds(100)
        options.messages = 100
        options.settle = .seconds(10)
        options.bootstrapKeys = bootstrapKeys
        let sim = try OverlaySimulation(options: options)
        return (try sim.run(), sim)
    }

    func testAJoinerThatKnowsItsBootstrapNodesKeyJoinsOneRoundTripSooner() throws {
        let (with, withSim) = try joinTimes(bootstrapKeys: true)
        let (without, _) = try joinTimes(bootstrapKeys: false)
        for report in [with, without] {
            let check = try XCTUnwrap(report.checks.first)
            XCTAssertTrue(check.ring_consistent)
            XCTAssertEqual(check.delivery_ratio, 1)
            XCTAssertEqual(report.join_routable_s.count, 30)
        }
        // One round trip (100 ms) less for the typical joiner: the leaf request and the Connect-To-Me went in the
        // init, instead of after the handshake.
        let saved = without.join_routable_s.p50 - with.join_routable_s.p50
        XCTAssertGreaterThan(saved, 0.08, "p50 \(without.join_routable_s.p50) s -> \(with.join_routable_s.p50) s")
        XCTAssertLessThan(with.join_routable_s.p99, without.join_routable_s.p99)
        // Every node's config named the key its bootstrap node advertises.
        let keyed = withSim.nodes.dropFirst().filter { node in
            node.config.bootstrap.allSatisfy { uri in
                withSim.nodes.contains { $0.node.info.uris.contains(uri) && node.config.bootstrapHandshakeKeys[uri] == $0.node.info.handshakeKey }
            }
        }
        XCTAssertEqual(keyed.count, 29)
        // `wow status` shows the key a bootstrap list names: the one the node advertises, its identity's.
        let first = withSim.nodes[0]
        let advertised = try XCTUnwrap(first.node.info.handshakeKey)
        XCTAssertEqual(first.node.status().security?.handshake_key, PublicKeyText.encode(advertised))
        let identity = try XCTUnwrap(first.config.security.credentials).identity
        XCTAssertEqual(advertised, StaticHandshakeKey.publicKey(for: identity))
    }

    /// A founder and a joiner whose config names a wrong key for it: the founder cannot open the init's first
    /// messages (counted), answers the handshake, and the joiner sends them again under the session.
    func testAWrongBootstrapKeyCostsARoundTripAndNothingElse() throws {
        var options = SimulationOptions()
        options.nodes = 2
        options.roundTrip = .milliseconds(100) ... .milliseconds(100)
        let sim = try OverlaySimulation(options: options)
        let founder = try sim.addNode(nat: .open)
        sim.scheduler.run(for: .milliseconds(100))
        var config = founder.config
        config.name = "joiner"
        config.bootstrap = founder.node.info.uris
        config.security = .secured(try XCTUnwrap(sim.credentials(forNode: 1)))
        for uri in config.bootstrap { config.bootstrapHandshakeKeys[uri] = [UInt8](repeating: 9, count: 32) }
        let builder = SimulatedNodeBuilder(scheduler: sim.scheduler, epoch: SimulatedNodeBuilder.defaultEpoch)
        let host = sim.network.addHost()
        let joiner = builder.makeNode(config: config, transports: .memory(sim.network, host: host), random: SeededRandom(seed: 9))
        try joiner.start()
        let started = sim.scheduler.now
        XCTAssertTrue(sim.scheduler.run(until: started + .seconds(5)) { !joiner.isRingMember })
        XCTAssertTrue(joiner.table.contains(founder.node.address))
        XCTAssertEqual(founder.node.stats.drops.byName["first_messages_not_taken"], 1, "\(founder.node.stats.drops.byName)")
        // Two round trips (handshake, then the request under the session), not more.
        XCTAssertLessThan((sim.scheduler.now - started).seconds, 0.35)
    }
}
