import NIOCore
import Plugins
import Transports
import WOWKit
import XCTest

@testable import WOWSimulator

/// The overlay at scale in the deterministic simulator: joining, routing, churn and repair.
final class OverlaySimulationTests: XCTestCase {
    /// 1,000 nodes join over 20–250 ms WAN round trips; the ring becomes consistent and 1,000 random
    /// exact-mode messages all arrive. Then 10% leave (crash) and 10% new ones join; the same holds.
    func testThousandNodesFormConsistentRingAndSurviveTenPercentChurn() throws {
        var options = SimulationOptions()
        options.nodes = 1000
        // Overlay behaviour, not security (SecureOverlayTests): without crypto, which a debug build runs slowly.
        options.secure = false
        options.seed = 7
        options.messages = 1000
        options.churnPerMinute = 50  // 100 leave and 100 join over two minutes
        options.churnDuration = .seconds(120)
        let simulation = try OverlaySimulation(options: options)
        let report = try simulation.run()

        XCTAssertEqual(report.checks.count, 2)
        let afterJoin = report.checks[0]
        XCTAssertEqual(afterJoin.live_nodes, 1000)
        XCTAssertTrue(afterJoin.ring_consistent, "\(afterJoin.ring_violations) nodes miss a true neighbour")
        XCTAssertEqual(afterJoin.messages_sent, 1000)
        XCTAssertEqual(afterJoin.messages_delivered, 1000)

        XCTAssertEqual(report.churn_left, 100)
        XCTAssertEqual(report.churn_joined, 100)
        let afterChurn = report.checks[1]
        XCTAssertEqual(afterChurn.live_nodes, 1000)
        XCTAssertTrue(afterChurn.ring_consistent, "\(afterChurn.ring_violations) nodes miss a true neighbour after churn")
        XCTAssertEqual(afterChurn.messages_delivered, 1000)
        XCTAssertEqual(report.delivery_ratio, 1)
        // Every node that ever joined became routable.
        XCTAssertEqual(report.join_routable_s.count, 1100)
        // No crashed node lingers in a live node's table.
        let dead = Set(simulation.nodes.filter { !$0.isLive }.map(\.node.address))
        for node in simulation.liveNodes {
            XCTAssertFalse(node.node.table.connections.contains { dead.contains($0.address) })
        }
    }

    /// Nodes behind cone and port-restricted NATs join and route: CTMs make both ends link at once, which
    /// punches the NATs, so even two port-restricted nodes end up directly connected.
    func testNodesBehindConeAndPortRestrictedNATsJoinByHolePunching() throws {
        var options = SimulationOptions()
        options.nodes = 250
        // Overlay behaviour, not security (SecureOverlayTests): without crypto, which a debug build runs slowly.
        options.secure = false
        options.messages = 300
        options.natMix = [.portRestricted: 0.4, .fullCone: 0.1, .restricted: 0.1]
        let simulation = try OverlaySimulation(options: options)
        let report = try simulation.run()
        XCTAssertTrue(report.ring_consistent, "\(report.checks[0].ring_violations) nodes miss a neighbour")
        XCTAssertEqual(report.delivery_ratio, 1)
        let natted = Dictionary(uniqueKeysWithValues: simulation.nodes.map { ($0.node.address, $0.nat) })
        var punched = 0
        for node in simulation.nodes where node.nat == .portRestricted {
            punched += node.node.table.connections.filter { natted[$0.address] == .portRestricted }.count
        }
        XCTAssertGreaterThan(punched, 50, "port-restricted nodes should hold direct connections to each other")
    }

    func testSameSeedReplaysTheSameRun() throws {
        var options = SimulationOptions()
        options.nodes = 60
        // Secured: the handshakes' keys come from the seed too, so a run replays exactly.
        options.messages = 100
        let first = try OverlaySimulation(options: options).run()
        let second = try OverlaySimulation(options: options).run()
        XCTAssertEqual(first.join_routable_s, second.join_routable_s)
        XCTAssertEqual(first.packets_sent, second.packets_sent)
        XCTAssertEqual(first.events, second.events)
        XCTAssertTrue(first.ring_consistent)
    }

    func testCrashedNeighbourIsDetectedAndRingRepaired() throws {
        var options = SimulationOptions()
        options.nodes = 40
        let simulation = try OverlaySimulation(options: options)
        for _ in 0..<40 {
            try simulation.addNode()
            simulation.scheduler.run(for: .milliseconds(100))
        }
        simulation.scheduler.run(for: .seconds(30))
        XCTAssertEqual(simulation.ringViolations(), 0)
        let victim = simulation.nodes[17]
        let (left, right) = try XCTUnwrap(simulation.trueNeighbours(of: victim.node.address))
        simulation.crash(victim)
        // Right after the crash the neighbours still hold the dead connection...
        XCTAssertNotNil(simulation.nodes.first { $0.node.address == left }?.node.table.connection(to: victim.node.address))
        // ...and after the dead interval (30 s) plus repair time they hold each other instead.
        simulation.scheduler.run(for: .seconds(60))
        XCTAssertEqual(simulation.ringViolations(), 0)
        let leftNode = try XCTUnwrap(simulation.nodes.first { $0.node.address == left })
        XCTAssertNil(leftNode.node.table.connection(to: victim.node.address))
        XCTAssertNotNil(leftNode.node.table.connection(to: right))
        let result = simulation.measureRouting(count: 200)
        XCTAssertEqual(result.delivered, 200)
    }

    func testExactPacketToAbsentAddressComesBackAsError() throws {
        var options = SimulationOptions()
        options.nodes = 30
        let simulation = try OverlaySimulation(options: options)
        for _ in 0..<30 {
            try simulation.addNode()
            simulation.scheduler.run(for: .milliseconds(100))
        }
        simulation.scheduler.run(for: .seconds(20))
        let source = simulation.nodes[3].node
        var errors: [RoutingError] = []
        source.onRoutingError = { errors.append($0) }
        let absent = Address.hashing("nobody is here")
        source.send(data: ByteBuffer(bytes: [1, 2, 3]), to: absent)
        simulation.scheduler.run(for: .seconds(5))
        XCTAssertEqual(errors.count, 1)
        XCTAssertEqual(errors.first?.code, .absentDestination)
        XCTAssertEqual(errors.first?.destination, absent)
    }

    func testTTLIsEnforcedAndReported() throws {
        var options = SimulationOptions()
        options.nodes = 80
        // Overlay behaviour, not security (SecureOverlayTests): without crypto, which a debug build runs slowly.
        options.secure = false
        let simulation = try OverlaySimulation(options: options)
        for _ in 0..<80 {
            try simulation.addNode()
            simulation.scheduler.run(for: .milliseconds(50))
        }
        simulation.scheduler.run(for: .seconds(20))
        // Find a pair more than one hop apart, and send with TTL 1.
        let source = simulation.nodes[0].node
        let destination = try XCTUnwrap(simulation.nodes.first { !source.table.contains($0.node.address) && $0.node !== source })
        var errors: [RoutingError] = []
        var delivered = 0
        source.onRoutingError = { errors.append($0) }
        destination.node.onDeliver = { _, _ in delivered += 1 }
        source.send(data: ByteBuffer(bytes: [9]), to: destination.node.address, ttl: 1)
        simulation.scheduler.run(for: .seconds(5))
        XCTAssertEqual(delivered, 0)
        XCTAssertEqual(errors.map(\.code), [.ttlExpired])
    }

    func testReportHasTheFieldsScriptsRelyOn() throws {
        var options = SimulationOptions()
        options.nodes = 20
        options.messages = 50
        let report = try OverlaySimulation(options: options).run()
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any]
        let object = try XCTUnwrap(json)
        for key in ["nodes", "ring_consistent", "delivery_ratio", "join_routable_s", "hops", "wall_s"] {
            XCTAssertNotNil(object[key], "missing \(key)")
        }
        let join = try XCTUnwrap(object["join_routable_s"] as? [String: Any])
        XCTAssertNotNil(join["p50"]); XCTAssertNotNil(join["p90"]); XCTAssertNotNil(join["p99"])
        let hops = try XCTUnwrap(object["hops"] as? [String: Any])
        XCTAssertNotNil(hops["mean"]); XCTAssertNotNil(hops["p99"])
        XCTAssertEqual(object["ring_consistent"] as? Bool, true)
        XCTAssertEqual(object["delivery_ratio"] as? Double, 1)
    }
}
