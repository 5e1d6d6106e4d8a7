import Transports
import WOWKit
import WOWSimulator
import XCTest

final class LinkRaceTests: XCTestCase {
    /// Counts the links a node reports (what `wow_link_latency_seconds` records).
    private final class LinkCounter: NodeObserver {
        var links = 0
        func linkEstablished(after latency: Duration, transport: String) { links += 1 }
        func delivered(hops: UInt8) {}
    }

    /// Both ends link to each other at the same moment; they end with exactly one connection, on one edge, and
    /// each reports its link once (both attempts yield there: neither completes by its own reply).
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
            let counters = [LinkCounter(), LinkCounter()]
            for (node, counter) in zip(nodes, counters) { node.observer = counter }
            for node in nodes { try node.start() }
            scheduler.run(for: .seconds(5))
            XCTAssertEqual(counters.map(\.links), [1, 1], "trial \(trial)")

            for i in 0..<2 {
                XCTAssertEqual(nodes[i].table.count, 1, "trial \(trial): node \(i) has \(nodes[i].table.connections)")
                let connection = try XCTUnwrap(nodes[i].table.connection(to: addresses[1 - i]))
                XCTAssertTrue(connection.localTypes.contains("test.dial"))
                XCTAssertEqual(dialers[i].results, ["ok"], "trial \(trial)")
            }
            // Both ends hold it on the same edge (the memory transport's one edge between two listeners; over
            // such an edge each end takes the other's request, `LinkResponder.oursWins`).
            let ends = nodes.map { $0.table.connections[0] }
            XCTAssertEqual(ends[0].localURI, ends[1].remoteURI, "trial \(trial)")
            XCTAssertEqual(ends[0].remoteURI, ends[1].localURI, "trial \(trial)")
            // Still one connection much later (pings keep it; nothing links again).
            scheduler.run(for: .seconds(120))
            XCTAssertEqual(nodes[0].table.count, 1)
            XCTAssertEqual(nodes[1].table.count, 1)
        }
    }
}
