import NIOCore
import Plugins
import Transports
import WOWKit
@testable import WOWSimulator
import XCTest

/// Hole punching around Connect-To-Me, end to end in the simulator: a public bootstrap node and two nodes
/// behind port-restricted NATs, running the real node, linker and overlords over the `memory` transport.
final class HolePunchingTests: XCTestCase {
    private struct Site {
        let node: Node
        let host: MemoryHostID
    }

    /// Starts `boot` (public), then `a` and `b` behind port-restricted NATs (or hosts behind `nats`), each 3 s
    /// after the last.
    private func run(linking: NodeConfig.Linking, seed: UInt64,
                     nats: [NATBehaviour] = [.open, .portRestricted, .portRestricted]) throws -> (network: MemoryNetwork, sites: [Site]) {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: seed)
        var random = SeededRandom(seed: seed)
        let builder = SimulatedNodeBuilder(scheduler: scheduler)
        var sites: [Site] = []
        for (index, nat) in nats.enumerated() {
            let host = network.addHost(nat: nat)
            var config = NodeConfig(name: "n\(index)", address: random.address(), transports: [.init(name: MemoryTransport.scheme)],
                                    overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)],
                                    bootstrap: sites.first.map { $0.node.info.uris } ?? [])
            config.linking = linking
            let node = builder.makeNode(config: config, transports: .memory(network, host: host), random: random.split())
            try node.start()
            sites.append(Site(node: node, host: host))
            scheduler.run(for: .seconds(3))
        }
        scheduler.run(for: .seconds(5))
        return (network, sites)
    }

    /// The two NATed nodes link directly, each at the other's NAT, and no packet of theirs was ever dropped
    /// by a NAT: nobody sent a normal packet toward a NAT before its host had punched toward the sender.
    func testNATedNodesLinkDirectlyWithoutHittingAnUnpunchedNAT() throws {
        for seed in UInt64(1)...10 {
            let (network, sites) = try run(linking: NodeConfig.Linking(), seed: seed)
            let a = sites[1], b = sites[2]
            let aToB = try XCTUnwrap(a.node.table.connection(to: b.node.address), "seed \(seed)")
            let bToA = try XCTUnwrap(b.node.table.connection(to: a.node.address), "seed \(seed)")
            XCTAssertEqual(aToB.remoteURI.hostAndPort?.host, network.natHost(of: b.host)?.description, "seed \(seed)")
            XCTAssertEqual(bToA.remoteURI.hostAndPort?.host, network.natHost(of: a.host)?.description, "seed \(seed)")
            XCTAssertGreaterThan(network.punchesSent, 0, "seed \(seed)")
            XCTAssertEqual(network.drops.byName["nat_filtered"], 0, "seed \(seed)")
        }
    }

    /// A public node punches too (its own host firewall may need it) but one hop less: it has no NAT to pass,
    /// and with the NATed nodes' TTL its punch reached the peer's NAT one router away and spoiled its mapping
    /// (the testbed: cone-NAT joiners never went direct to a peer behind another cone NAT).
    func testAPublicNodePunchesOneHopLessThanANATedOne() throws {
        let (network, sites) = try run(linking: NodeConfig.Linking(), seed: 3,
                                       nats: [.open, .open, .portRestricted, .portRestricted])
        XCTAssertEqual(network.punchTTLs[sites[1].host], [1], "a public node")
        XCTAssertEqual(network.punchTTLs[sites[2].host], [2])
        XCTAssertEqual(network.punchTTLs[sites[3].host], [2])
    }

    /// Without punching (`punch_ttl: 0`), some of those packets hit a NAT that was not open for them yet (on
    /// Linux NATs with an open INPUT chain they would also spoil the mapping); the simulator's NATs only drop
    /// them, and the nodes link anyway when both ends happen to send at once.
    func testWithoutPunchingSomeLinkRequestsHitAnUnpunchedNAT() throws {
        var linking = NodeConfig.Linking()
        linking.punchTTL = 0
        var filtered = 0
        for seed in UInt64(1)...10 {
            let (network, _) = try run(linking: linking, seed: seed)
            XCTAssertEqual(network.punchesSent, 0)
            filtered += network.drops.byName["nat_filtered"] ?? 0
        }
        XCTAssertGreaterThan(filtered, 0)
    }

    /// A joiner behind a NAT whose ring neighbour sits behind another one, on a network with next to no latency
    /// (the testbed's veths): its Connect-To-Me to that neighbour can leave before any ring link, when it seems
    /// nearest to the neighbour itself (seed 5). The CTM waits for a connection (`HeldPackets`) rather than
    /// failing, so the neighbour punches, and the joiner's direct attempt beside it never sends to the
    /// neighbour's NAT first: failed at once, the attempt's held request went out unanswered after the hold and
    /// hit that NAT (which on Linux then maps the neighbour's packets to the joiner to another port: relayed for
    /// 30 s in the testbed).
    func testAJoinersFirstConnectToMeWaitsForARouteSoNoRequestHitsAnUnpunchedNAT() throws {
        for seed in UInt64(1)...8 {
            var options = SimulationOptions()
            options.nodes = 20
            options.seed = seed
            options.roundTrip = .microseconds(200) ... .milliseconds(2)
            let sim = try OverlaySimulation(options: options)
            for _ in 0..<18 {
                try sim.addNode(nat: .open)
                sim.scheduler.run(for: .milliseconds(100))
            }
            let peer = try sim.addNode(nat: .portRestricted)
            sim.scheduler.run(for: .seconds(20))
            let filteredBefore = sim.network.drops.byName["nat_filtered"] ?? 0
            let joiner = try sim.addNode(nat: .portRestricted)
            // It pings the peer from the start, as the testbed's joiners do (the shortcut strategy links the two).
            for _ in 0..<10 {
                joiner.node.send(data: ByteBuffer(integer: UInt64(0)), to: peer.node.address)
                sim.scheduler.run(for: .milliseconds(200))
            }
            XCTAssertEqual((sim.network.drops.byName["nat_filtered"] ?? 0) - filteredBefore, 0,
                           "seed \(seed): a packet reached a NAT before its host had punched toward the sender")
            let connection = try XCTUnwrap(joiner.node.table.connection(to: peer.node.address), "seed \(seed)")
            XCTAssertEqual(connection.remoteURI.hostAndPort?.host, sim.network.natHost(of: peer.host)?.description,
                           "seed \(seed): not direct")
        }
    }
}
