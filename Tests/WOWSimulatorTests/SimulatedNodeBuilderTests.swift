import NIOCore
import Plugins
import Transports
import WOWKit
import WOWSimulator
import XCTest

/// Nodes on virtual time: the wall clock follows the scheduler, secured nodes link with deterministic keys,
/// and a run replays from its seeds.
final class SimulatedNodeBuilderTests: XCTestCase {
    func testTheWallClockIsTheEpochPlusVirtualSeconds() throws {
        let scheduler = SimulationScheduler()
        let builder = SimulatedNodeBuilder(scheduler: scheduler, epoch: 1_000)
        let network = MemoryNetwork(scheduler: scheduler, seed: 1)
        let config = NodeConfig(name: "a", transports: [.init(name: MemoryTransport.scheme)], overlords: [], bootstrap: [])
        let node = builder.makeNode(config: config, transports: .memory(network, host: network.addHost()),
                                    random: SeededRandom(seed: 1))
        XCTAssertEqual(node.wallClock(), 1_000)
        scheduler.run(for: .milliseconds(2_500))
        XCTAssertEqual(node.wallClock(), 1_002)
        XCTAssertEqual(builder.unixTime, 1_002)
        XCTAssertEqual(SimulatedNodeBuilder(scheduler: SimulationScheduler()).epoch, SimulatedNodeBuilder.defaultEpoch)
    }

    func testSecuredSettingsUseDeterministicKeys() throws {
        let builder = SimulatedNodeBuilder(scheduler: SimulationScheduler())
        let authority = NetworkAuthorityKey.deterministic(name: "t", seed: [1], network: NetworkID(bytes: [UInt8](repeating: 3, count: 16))!,
                                                          now: builder.epoch)
        let credentials = try builder.member("a", of: authority, serial: 7)
        XCTAssertEqual(credentials.certificate.serial, 7)
        XCTAssertEqual(credentials.certificate.notBefore, builder.epoch - 60)
        XCTAssertEqual(credentials.certificate.notAfter, builder.epoch + 86_400)
        XCTAssertEqual(try builder.member("a", of: authority).address, credentials.address, "the key is drawn from the name")
        XCTAssertTrue(SimulatedNodeBuilder.secured(credentials).channel.deterministicKeys)
    }

    /// Two secured nodes from the builder, with WOW's own overlords, link and exchange data; the same seeds give
    /// the same run.
    func testSecuredNodesLinkAndReplayFromTheirSeeds() throws {
        func run() throws -> (events: UInt64, delivered: Int) {
            let scheduler = SimulationScheduler()
            let builder = SimulatedNodeBuilder(scheduler: scheduler)
            let network = MemoryNetwork(scheduler: scheduler, seed: 5)
            let authority = NetworkAuthorityKey.deterministic(name: "t", seed: [2], network: NetworkID(bytes: [UInt8](repeating: 4, count: 16))!,
                                                              now: builder.epoch)
            var nodes: [Node] = []
            for name in ["a", "b"] {
                var config = NodeConfig(name: name, transports: [.init(name: MemoryTransport.scheme)],
                                        overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)],
                                        bootstrap: nodes.first?.info.uris ?? [])
                config.security = .secured(SimulatedNodeBuilder.secured(try builder.member(name, of: authority)))
                let node = builder.makeNode(config: config, transports: .memory(network, host: network.addHost()),
                                            random: SeededRandom(seed: UInt64(nodes.count + 1)))
                try node.start()
                nodes.append(node)
                scheduler.run(for: .seconds(1))
            }
            scheduler.run(for: .seconds(3))
            XCTAssertNotNil(nodes[0].table.connection(to: nodes[1].address))
            var delivered = 0
            nodes[0].onDeliver = { _, _ in delivered += 1 }
            nodes[1].send(data: ByteBuffer(string: "hello"), to: nodes[0].address)
            scheduler.run(for: .seconds(1))
            return (scheduler.eventsRun, delivered)
        }
        let first = try run()
        XCTAssertEqual(first.delivered, 1)
        let second = try run()
        XCTAssertEqual(first.events, second.events)
    }
}
