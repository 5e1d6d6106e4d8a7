import Transports
import WOWKit
import WOWSimulator
import XCTest

final class LinkRaceTests: XCTestCase {
    /// Both ends link to each other at the same moment; they end with exactly one connection, the one the
    /// larger address started.
    func testSimultaneousLinkYieldsOneConnection() throws {
        var random = SeededRandom(seed: 42)
        for trial in 0..<20 {
            let scheduler = SimulationScheduler()
            let network = MemoryNetwork(scheduler: scheduler, seed: UInt64(trial))
            let hosts = [network.addHost(), network.addHost()]
            let addresses = [random.address(), random.address()]
            let uris = hosts.map { try! TransportURI("memory://\($0.rawValue):1") }
            var nodes: [Node] = []
            var dialers: [DialOverlord] = []
            for i in 0..<2 {
                let dialer = DialOverlord(peer: NodeInfo(address: addresses[1 - i], uris: [uris[1 - i]]))
                dialers.append(dialer)
                var overlords = OverlordRegistry()
                overlords.register(dialer: dialer)
                let config = NodeConfig(name: "n\(i)", address: addresses[i], transports: [.init(name: MemoryTransport.scheme)],
                                        overlords: [.init(name: DialOverlord.name)], bootstrap: [])
                let builder = SimulatedNodeBuilder(scheduler: scheduler, overlords: overlords)
                nodes.append(builder.makeNode(config: config, transports: .memory(network, host: hosts[i]),
                                              random: random.split()))
            }
            for node in nodes { try node.start() }
            scheduler.run(for: .seconds(5))

            for i in 0..<2 {
                XCTAssertEqual(nodes[i].table.count, 1, "trial \(trial): node \(i) has \(nodes[i].table.connections)")
                let connection = try XCTUnwrap(nodes[i].table.connection(to: addresses[1 - i]))
                XCTAssertTrue(connection.localTypes.contains("test.dial"))
                XCTAssertEqual(dialers[i].results, ["ok"], "trial \(trial)")
            }
            // The larger address's attempt won: it is outbound there and inbound at the other end.
            let larger = addresses[0] > addresses[1] ? 0 : 1
            XCTAssertFalse(nodes[larger].table.connections[0].isInbound, "trial \(trial)")
            XCTAssertTrue(nodes[1 - larger].table.connections[0].isInbound, "trial \(trial)")
            // Still one connection much later (pings keep it; nothing links again).
            scheduler.run(for: .seconds(120))
            XCTAssertEqual(nodes[0].table.count, 1)
            XCTAssertEqual(nodes[1].table.count, 1)
        }
    }
}
