import Transports
import WOWKit
import WOWSimulator
import XCTest

/// A link request that arrives but whose replies never come back leaves the peer holding a connection the
/// requester does not have: what the peer routes over it is lost until its liveness gives up (30 s). The
/// requester's failed attempt tells the peer so at once.
final class HalfOpenLinkTests: XCTestCase {
    private func twoNodes(scheduler: SimulationScheduler, network: MemoryNetwork)
        -> (a: Node, b: Node, dialer: DialOverlord, hosts: [MemoryHostID]) {
        var random = SeededRandom(seed: 7)
        let hosts = [network.addHost(), network.addHost()]
        let addresses = [random.address(), random.address()]
        let uriB = try! TransportURI("memory://\(hosts[1].rawValue):1")
        let dialer = DialOverlord(peer: NodeInfo(address: addresses[1], uris: [uriB]))
        var overlords = OverlordRegistry()
        overlords.register(dialer: dialer)
        let builder = SimulatedNodeBuilder(scheduler: scheduler, overlords: overlords)
        let a = builder.makeNode(config: NodeConfig(name: "a", address: addresses[0],
                                                    transports: [.init(name: MemoryTransport.scheme)],
                                                    overlords: [.init(name: DialOverlord.name)], bootstrap: []),
                                 transports: .memory(network, host: hosts[0]), random: random.split())
        let b = builder.makeNode(config: NodeConfig(name: "b", address: addresses[1],
                                                    transports: [.init(name: MemoryTransport.scheme)],
                                                    overlords: [], bootstrap: []),
                                 transports: .memory(network, host: hosts[1]), random: random.split())
        return (a, b, dialer, hosts)
    }

    func testAnAttemptWhoseRepliesNeverCameTellsThePeerNothingIsLinked() throws {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 3)
        let (a, b, dialer, hosts) = twoNodes(scheduler: scheduler, network: network)
        // Everything from b to a is lost: b accepts a's requests, and its replies die on the way.
        network.onPath = { packet, from, to in from == hosts[1] && to == hosts[0] ? [] : [packet] }
        try b.start()
        try a.start()
        scheduler.run(for: .milliseconds(500))
        XCTAssertTrue(b.table.contains(a.address), "b accepted the request")
        XCTAssertFalse(a.table.contains(b.address))

        // a's attempt runs out of tries; b learns at once that nothing is linked, long before its liveness
        // would have given up on the connection.
        var failedAt: Timestamp?
        while failedAt == nil, scheduler.now < Timestamp(nanoseconds: 20_000_000_000) {
            scheduler.run(for: .milliseconds(100))
            if dialer.results.first?.hasPrefix("failed") == true { failedAt = scheduler.now }
        }
        let failed = try XCTUnwrap(failedAt, "a's attempt ends: \(dialer.results)")
        scheduler.run(for: .milliseconds(200))
        XCTAssertFalse(b.table.contains(a.address), "b dropped the half-open connection \((scheduler.now - failed).seconds) s after")
        XCTAssertLessThan(failed.seconds, 15, "long before b's liveness (30 s) would have")
    }
}
