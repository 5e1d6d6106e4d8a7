import Plugins
import WOWKit
import XCTest

@testable import WOWSimulator

/// The smallest complete link strategy (the shape PluginTemplates/README.md walks through): keep one link
/// to a random place on the ring.
final class RandomLinkOverlord: ConnectionOverlord, OverlordPlugin {
    struct Settings: Decodable, Sendable {
        var links = 1
        enum CodingKeys: String, CodingKey, CaseIterable { case links }
        init() {}
        init(from decoder: any Decoder) throws {
            self.init()
            let container = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            links = try container.decodeIfPresent(Int.self, forKey: .links) ?? links
        }
    }

    static let name = "example.random"
    let connectionType: ConnectionType = "example.random"
    let tickInterval: Duration = .seconds(2)
    private let settings: Settings
    private var pending = 0

    init(settings: Settings) { self.settings = settings }

    static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord {
        guard settings.links >= 0 else { throw PluginError.badSettings(plugin: name, reason: "links must be >= 0") }
        return RandomLinkOverlord(settings: settings)
    }

    func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] {
        switch event {
        case .tick where context.table.hasStructured:
            let have = context.table.connections(ofType: connectionType).filter { $0.localTypes.contains(connectionType) }.count
            guard have + pending < settings.links else { return [] }
            pending += 1
            return [.connect(ConnectRequest(target: context.random.address(), mode: .nearest, type: connectionType))]
        case .connectSucceeded(let request, _) where request.type == connectionType,
             .connectFailed(let request, _) where request.type == connectionType:
            pending -= 1
            return []
        default:
            return []
        }
    }
}

final class CustomOverlordTests: XCTestCase {
    func testAPluginOverlordRunsInTheSimulatorNextToTheBuiltInOnes() throws {
        var registry = OverlordRegistry()
        PluginCatalog.registerOverlords(in: &registry)
        registry.register(RandomLinkOverlord.self)
        var options = SimulationOptions()
        options.nodes = 50
        options.messages = 200
        let entries: [NodeConfig.PluginEntry] = [
            .init(name: "leaf"), .init(name: "structured.near"),
            .init(name: "example.random", settings: try PluginSettings(yaml: "links: 2")),
        ]
        let simulation = try OverlaySimulation(options: options, overlords: registry, overlordEntries: entries)
        let report = try simulation.run()
        XCTAssertTrue(report.ring_consistent)
        XCTAssertEqual(report.delivery_ratio, 1)
        for node in simulation.liveNodes {
            let mine = node.node.table.connections.filter { $0.localTypes.contains("example.random") }
            XCTAssertGreaterThanOrEqual(mine.count, 1, "node \(node.index) has no example.random link")
            XCTAssertLessThanOrEqual(mine.count, 2)
        }
    }
}
