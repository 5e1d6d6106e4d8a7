import NIOCore
import Plugins
import Transports
import WOWKit
import XCTest

@testable import WOWSimulator

/// `structured.shortcut` in the deterministic simulator: secured nodes on the simulated WAN (20–250 ms round
/// trips), all times virtual.
final class ShortcutSimulationTests: XCTestCase {
    private let shortcut: ConnectionType = "structured.shortcut"

    /// A ring of `count` secured nodes running leaf, near, far and shortcut (with `shortcutSettings`), settled.
    private func ring(_ count: Int, shortcutSettings: String, seed: UInt64 = 11) throws -> OverlaySimulation {
        var options = SimulationOptions()
        options.nodes = count
        options.seed = seed
        let entries: [NodeConfig.PluginEntry] = [
            .init(name: LeafOverlord.name),
            .init(name: NearOverlord.name, settings: try PluginSettings(yaml: "per_side: 2")),
            .init(name: FarOverlord.name),
            .init(name: ShortcutOverlord.name, settings: try PluginSettings(yaml: shortcutSettings)),
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

    /// Two nodes, neither connected to the other, whose packets take more than one hop, and that hold no shortcut.
    private func distantPair(in simulation: OverlaySimulation, skipping used: Set<Address> = []) throws -> (Node, Node) {
        let nodes = simulation.nodes.map(\.node).filter { !used.contains($0.address) }
        for a in nodes {
            for b in nodes.reversed() where a !== b && !a.table.contains(b.address) && !b.table.contains(a.address) {
                return (a, b)
            }
        }
        throw XCTSkip("no pair of unconnected nodes")
    }

    private func hasShortcut(_ a: Node, _ b: Node) -> Bool {
        a.table.connection(to: b.address)?.types.contains(shortcut) == true
            && b.table.connection(to: a.address)?.types.contains(shortcut) == true
    }

    private func packet(_ tag: UInt8) -> ByteBuffer { ByteBuffer(bytes: [tag, 0, 0, 0, 0, 0, 0, 0, 0]) }

    /// Two distant nodes exchange 10 packets a second each way: within a second of virtual time of the first
    /// packet they hold a direct `structured.shortcut` connection, and their packets then take one hop. When
    /// the traffic stops, the shortcut stays until `idle_timeout_s` has passed, and goes soon after.
    func testFlowBetweenDistantNodesGetsShortcutWithinOneSecondThenIdleTrim() throws {
        let simulation = try ring(120, shortcutSettings: "idle_timeout_s: 10")
        let (a, b) = try distantPair(in: simulation)
        var hopsBefore: [UInt8] = []
        var hopsAfter: [UInt8] = []
        var formed = false
        for node in [a, b] {
            node.onDeliver = { header, _ in
                if formed { hopsAfter.append(header.hops) } else { hopsBefore.append(header.hops) }
            }
        }
        let scheduler = simulation.scheduler
        let start = scheduler.now
        var shortcutAt: Timestamp?
        // 5 s of traffic in 10 ms steps, a packet each way every 100 ms.
        for step in 0..<500 {
            if step % 10 == 0 {
                a.send(data: packet(1), to: b.address)
                b.send(data: packet(2), to: a.address)
            }
            scheduler.run(for: .milliseconds(10))
            if shortcutAt == nil, hasShortcut(a, b) { shortcutAt = scheduler.now }
            // Packets sent before the shortcut may still be on their way over the ring for a while.
            if let shortcutAt, !formed, scheduler.now - shortcutAt >= .seconds(1) { formed = true }
        }
        let at = try XCTUnwrap(shortcutAt, "no shortcut between \(a.address.short) and \(b.address.short)")
        let elapsed = at - start
        print("time to shortcut: \(elapsed.seconds) s (virtual)")
        XCTAssertLessThanOrEqual(elapsed, .seconds(1))
        XCTAssertTrue(hopsBefore.contains { $0 > 1 }, "the first packets should cross the ring: \(hopsBefore)")
        XCTAssertGreaterThan(hopsAfter.count, 50)
        XCTAssertEqual(Set(hopsAfter), [1], "packets after the shortcut should take one hop")

        // Idle: the shortcut outlives most of idle_timeout_s, then goes.
        let stopped = scheduler.now
        scheduler.run(until: stopped + .seconds(9))
        XCTAssertTrue(hasShortcut(a, b), "trimmed before idle_timeout_s")
        scheduler.run(until: stopped + .seconds(12))
        XCTAssertFalse(a.table.connection(to: b.address)?.types.contains(shortcut) == true,
                       "still a shortcut after idle_timeout_s: \(String(describing: a.table.connection(to: b.address)))")
        XCTAssertFalse(b.table.connection(to: a.address)?.types.contains(shortcut) == true)
    }

    /// One packet (below `min_packets`) makes no shortcut; a node talking to three peers at once holds at most
    /// `max_shortcuts` (2) of its own (`fallback_s: 0`: it asks even where the peer would).
    func testSinglePacketMakesNoShortcutAndMaxShortcutsHolds() throws {
        let simulation = try ring(60, shortcutSettings: "max_shortcuts: 2\nfallback_s: 0", seed: 5)
        let scheduler = simulation.scheduler
        let (c, d) = try distantPair(in: simulation)
        c.send(data: packet(3), to: d.address)
        scheduler.run(for: .seconds(3))
        XCTAssertFalse(c.table.connection(to: d.address)?.types.contains(shortcut) == true)
        XCTAssertFalse(d.table.connection(to: c.address)?.types.contains(shortcut) == true)

        // A hub sends to three peers at once, 10 packets a second each.
        let hub = simulation.nodes[7].node
        let peers = simulation.nodes.map(\.node).filter { $0 !== hub && !hub.table.contains($0.address) }.prefix(3)
        XCTAssertEqual(peers.count, 3)
        var most = 0
        for step in 0..<300 {
            if step % 10 == 0 { for peer in peers { hub.send(data: packet(4), to: peer.address) } }
            scheduler.run(for: .milliseconds(10))
            let own = hub.table.connections.filter { $0.localTypes.contains(shortcut) }.count
            most = max(most, own)
        }
        // Its own: peers with smaller addresses may ask for theirs too, which count against their limits.
        XCTAssertEqual(most, 2, "the hub should use its two shortcuts and no more")
    }
}
