import Plugins
import RandomLinks
import WOWKit
import WOWSimulator
import XCTest

/// The `randomlinks` strategy in the simulator: 40 secured nodes over the simulated WAN, next to the built-in
/// strategies, each keeping its random links while the ring stays consistent and every message arrives.
final class RandomLinksOverlordTests: XCTestCase {
    func testEveryNodeKeepsItsRandomLinksInASimulatedOverlay() throws {
        var registry = OverlordRegistry()
        PluginCatalog.registerOverlords(in: &registry)
        registry.register(RandomLinksOverlord.self)
        var options = SimulationOptions()
        options.nodes = 40
        options.messages = 100
        // Nodes are secured (membership certificates, sealed edges), as `options.secure` is by default.
        let entries: [NodeConfig.PluginEntry] = [
            .init(name: LeafOverlord.name), .init(name: NearOverlord.name),
            .init(name: RandomLinksOverlord.name, settings: try PluginSettings(yaml: "links: 2")),
        ]
        let simulation = try OverlaySimulation(options: options, overlords: registry, overlordEntries: entries)
        let report = try simulation.run()

        XCTAssertTrue(report.ring_consistent)
        XCTAssertEqual(report.delivery_ratio, 1)
        for node in simulation.liveNodes {
            let mine = node.node.table.connections.filter { $0.localTypes.contains("randomlinks") }
            XCTAssertGreaterThanOrEqual(mine.count, 1, "node \(node.index) has no random link")
            XCTAssertLessThanOrEqual(mine.count, 2, "node \(node.index) has too many")
        }
    }

    func testSettingsRejectAMisspeltKeyAndAnImpossibleCount() throws {
        var registry = OverlordRegistry()
        registry.register(RandomLinksOverlord.self)
        XCTAssertThrowsError(try registry.makeOverlord(name: RandomLinksOverlord.name, settings: try PluginSettings(yaml: "link: 3"))) {
            XCTAssertTrue("\($0)".contains("unknown key 'link'"), "\($0)")
        }
        XCTAssertThrowsError(try registry.makeOverlord(name: RandomLinksOverlord.name, settings: try PluginSettings(yaml: "links: -1"))) {
            XCTAssertTrue("\($0)".contains("links must be 0...64"), "\($0)")
        }
    }
}
