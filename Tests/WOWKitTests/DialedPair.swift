import Transports
@testable import WOWKit
import WOWSimulator

/// Two nodes on a memory network, not started: `a` dials `b` (a `DialOverlord`), `b` has no overlords. The
/// fixture of tests that drive one connection and its edges by hand.
struct DialedPair {
    let a: Node
    let b: Node
    let dialer: DialOverlord
    let hosts: [MemoryHostID]
    /// Where `b`'s stream listener is (with `streams`).
    let streamURI: TransportURI

    /// `seed` draws the two addresses and the nodes' generators; `streams` gives both a `memory-stream`
    /// transport besides the datagram one `a` dials.
    init(scheduler: SimulationScheduler, network: MemoryNetwork, seed: UInt64, streams: Bool = false) {
        var random = SeededRandom(seed: seed)
        hosts = [network.addHost(), network.addHost()]
        let addresses = [random.address(), random.address()]
        streamURI = try! TransportURI("memory-stream://\(hosts[1].rawValue):2")
        dialer = DialOverlord(peer: NodeInfo(address: addresses[1], uris: [try! TransportURI("memory://\(hosts[1].rawValue):1")]))
        var overlords = OverlordRegistry()
        overlords.register(dialer: dialer)
        let builder = SimulatedNodeBuilder(scheduler: scheduler, overlords: overlords)
        let transports: [NodeConfig.PluginEntry] = [.init(name: MemoryTransport.scheme)]
            + (streams ? [.init(name: MemoryTransport.streamScheme)] : [])
        a = builder.makeNode(config: NodeConfig(name: "a", address: addresses[0], transports: transports,
                                                overlords: [.init(name: DialOverlord.name)], bootstrap: []),
                             transports: .memory(network, host: hosts[0]), random: random.split())
        b = builder.makeNode(config: NodeConfig(name: "b", address: addresses[1], transports: transports,
                                                overlords: [], bootstrap: []),
                             transports: .memory(network, host: hosts[1]), random: random.split())
    }
}
