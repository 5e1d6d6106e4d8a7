import Plugins
import Transports
import WOWKit
import WOWSimulator
import XCTest

/// A network that starts all at once: a node bootstraps through a node that is itself still joining.
final class JoinThroughAJoinerTests: XCTestCase {
    /// `b` joins through the founder `a`, and `c`, a moment later, through `b`. `c`'s Connect-To-Mes reach `b`
    /// before `b`'s own leaf link to `a` is up: `b` has no way into the ring yet, and failing them cost `c` the
    /// answer deadline and a backoff (~4 s; the error could not even reach `c`, which nobody can route to yet).
    /// They wait at `b` for its leaf link instead (`HeldPackets`), and `c` is linked to both within a second.
    func testConnectToMesPassedToANodeStillJoiningWaitForItsWayIntoTheRing() throws {
        var held = 0
        for seed in UInt64(1)...6 {
            let scheduler = SimulationScheduler()
            let network = MemoryNetwork(scheduler: scheduler, seed: seed)
            var random = SeededRandom(seed: seed)
            let builder = SimulatedNodeBuilder(scheduler: scheduler)
            var nodes: [Node] = []
            for index in 0..<3 {
                let config = NodeConfig(name: "n\(index)", address: random.address(),
                                        transports: [.init(name: MemoryTransport.scheme)],
                                        overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)],
                                        bootstrap: nodes.last.map { $0.info.uris } ?? [])
                let node = builder.makeNode(config: config, transports: .memory(network, host: network.addHost()),
                                            random: random.split())
                try node.start()
                nodes.append(node)
                scheduler.run(for: index == 0 ? .seconds(1) : .milliseconds(1))
            }
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            scheduler.run(for: .seconds(1))
            held += b.stats.heldForRoute
            for peer in [a, b] {
                XCTAssertTrue(c.table.connection(to: peer.address)?.localTypes.contains("structured.near") == true,
                              "seed \(seed): c not linked to \(peer.address.short) 1 s after it started")
            }
        }
        XCTAssertGreaterThan(held, 0, "no run had c's Connect-To-Mes reach b before b's leaf link was up")
    }
}
