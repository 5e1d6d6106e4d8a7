import NIOCore
import Transports
@testable import WOWKit
import XCTest
@testable import WOWSimulator

/// The relay transport in the simulator: peers that no direct transport reaches get relayed connections (and
/// only they do), packets cross them, and a relay survives its forwarder leaving. A forwarder link never goes
/// through a relay, and a relayed connection retries a direct edge only where a punch could work.
final class RelaySimulationTests: XCTestCase {
    /// `secure: false` places each node at exactly the address it is given (a secured node only shares its
    /// first byte): for tests where which end has the smaller address matters.
    private func emptySimulation(seed: UInt64 = 7, secure: Bool = true) throws -> OverlaySimulation {
        var options = SimulationOptions()
        options.nodes = 2
        options.seed = seed
        options.secure = secure
        return try OverlaySimulation(options: options)
    }

    private func address(_ leadingByte: UInt8, _ last: UInt8 = 0) -> Address {
        Address(bytes: [leadingByte] + [UInt8](repeating: 0, count: 18) + [last])!
    }

    /// Four public nodes spread around the ring, and a symmetric-NAT node and a port-restricted one side by
    /// side: they are each other's ring neighbours, so they must connect, and only a relay can do it. The
    /// symmetric one joins first, at the smaller address unless `symmetricIsLarger` (without security).
    private func symmetricBesidePortRestricted(_ sim: OverlaySimulation, symmetricIsLarger: Bool = false)
        throws -> (symmetric: OverlaySimulation.SimulatedNode, restricted: OverlaySimulation.SimulatedNode) {
        for byte: UInt8 in [0x10, 0x50, 0x90, 0xD0] {
            try sim.addNode(nat: .open, address: address(byte))
            sim.scheduler.run(for: .milliseconds(300))
        }
        let symmetric = try sim.addNode(nat: .symmetric, address: address(0x70, symmetricIsLarger ? 2 : 1))
        sim.scheduler.run(for: .milliseconds(300))
        let restricted = try sim.addNode(nat: .portRestricted, address: address(0x70, symmetricIsLarger ? 1 : 2))
        return (symmetric, restricted)
    }

    /// Public nodes every `spacing` around the ring, then a node behind `nat` near 0x70, 15 s to settle.
    private func publicRing(seed: UInt64, spacing: Int, settledBehind nat: NATBehaviour)
        throws -> (OverlaySimulation, OverlaySimulation.SimulatedNode) {
        let sim = try emptySimulation(seed: seed)
        for byte in stride(from: 0x08, to: 0x100, by: spacing) {
            try sim.addNode(nat: .open, address: address(UInt8(byte)))
            sim.scheduler.run(for: .milliseconds(300))
        }
        let settled = try sim.addNode(nat: nat, address: address(0x70))
        sim.scheduler.run(for: .seconds(15))
        XCTAssertTrue(sim.isRoutable(settled), "seed \(seed): the settled NATed node never joined")
        return (sim, settled)
    }

    private func deliveries(to node: Node) -> () -> [Address] {
        var seen: [Address] = []
        node.onDeliver = { header, _ in seen.append(header.source) }
        return { seen }
    }

    func testSymmetricAndPortRestrictedNeighboursConnectThroughARelayAndExchangePackets() throws {
        let sim = try emptySimulation()
        let (symmetric, restricted) = try symmetricBesidePortRestricted(sim)
        let start = sim.scheduler.now
        // Both ends: the responder holds the connection one trip before the requester.
        sim.scheduler.run(until: sim.scheduler.now + .seconds(20)) {
            symmetric.node.table.connection(to: restricted.node.address)?.transport != RelayTransport.scheme
                || restricted.node.table.connection(to: symmetric.node.address)?.transport != RelayTransport.scheme
        }
        let connection = try XCTUnwrap(symmetric.node.table.connection(to: restricted.node.address),
                                       "no connection between the two NATed neighbours after 20 s")
        XCTAssertEqual(connection.transport, RelayTransport.scheme)
        XCTAssertTrue(connection.isStructured)
        // Its status names the forwarder by its certificate name, not a relay URI.
        let shown = try XCTUnwrap(symmetric.node.status().connections.first { $0.peer == restricted.node.address.hex })
        let forwarder = try XCTUnwrap(shown.relayed_via.flatMap { Address(hex: $0) }, "\(shown)")
        let forwarderName = try XCTUnwrap(symmetric.node.certificate(of: forwarder)?.name)
        XCTAssertEqual(shown.path, "relayed via \(forwarderName)")
        XCTAssertEqual(shown.peer_name, symmetric.node.certificate(of: restricted.node.address)?.name)
        XCTAssertTrue(symmetric.node.table.contains(forwarder), "the forwarder is a direct peer")
        XCTAssertTrue(symmetric.node.status().connections.first { $0.peer == forwarder.hex }?.path.hasPrefix("direct ") == true)
        print("symmetric <-> port-restricted relayed connection after \((sim.scheduler.now - start).seconds) s (virtual)")
        let atRestricted = deliveries(to: restricted.node)
        let atSymmetric = deliveries(to: symmetric.node)
        for _ in 0..<5 {
            symmetric.node.send(data: ByteBuffer(string: "to restricted"), to: restricted.node.address)
            restricted.node.send(data: ByteBuffer(string: "to symmetric"), to: symmetric.node.address)
        }
        sim.scheduler.run(for: .seconds(2))
        XCTAssertEqual(atRestricted(), Array(repeating: symmetric.node.address, count: 5))
        XCTAssertEqual(atSymmetric(), Array(repeating: restricted.node.address, count: 5))

        // Only the pair that needs it is relayed, and a minute later it still is (direct retries fail).
        sim.scheduler.run(for: .seconds(60))
        XCTAssertEqual(sim.ringViolations(), 0)
        XCTAssertEqual(sim.connectionKinds().relayed, 1)
        XCTAssertEqual(sim.connectionKinds().needlessRelays, 0)
        XCTAssertEqual(symmetric.node.table.connection(to: restricted.node.address)?.transport, RelayTransport.scheme)
    }

    /// A UDP-blocked node and a port-restricted one side by side (each other's ring neighbours), over seeds
    /// that put either one at the larger address: whichever attempt wins the race, they are linked through a
    /// forwarder within a few seconds (the relay starts beside the direct tries; a request over a relay beats a
    /// larger address whose own attempt tries direct paths only).
    func testAUDPBlockedNodeAndAPortRestrictedNeighbourLinkWithinSecondsWhicheverIsLarger() throws {
        var orders: Set<Bool> = []
        for seed: UInt64 in 1...6 {
            let sim = try emptySimulation(seed: seed)
            for byte: UInt8 in [0x10, 0x50, 0x90, 0xD0] {
                try sim.addNode(nat: .open, address: address(byte))
                sim.scheduler.run(for: .milliseconds(300))
            }
            let blocked = try sim.addNode(nat: .udpBlocked, address: address(0x70))
            let restricted = try sim.addNode(nat: .portRestricted, address: address(0x70))
            let start = sim.scheduler.now
            sim.scheduler.run(until: start + .seconds(20)) {
                !(blocked.node.table.contains(restricted.node.address) && restricted.node.table.contains(blocked.node.address))
            }
            let elapsed = (sim.scheduler.now - start).seconds
            let blockedIsLarger = blocked.node.address > restricted.node.address
            orders.insert(blockedIsLarger)
            print("seed \(seed): udp-blocked \(blockedIsLarger ? ">" : "<") port-restricted, linked after \(elapsed) s (virtual)")
            XCTAssertTrue(blocked.node.table.contains(restricted.node.address), "seed \(seed): never linked")
            XCTAssertLessThan(elapsed, 6, "seed \(seed): the pair took \(elapsed) s to link")
        }
        XCTAssertEqual(orders.count, 2, "the seeds must put either node at the larger address")
    }

    /// A node behind a symmetric NAT joins beside another one, already in the ring: no direct path joins them,
    /// and the joiner has no links of its own yet, so no relay URIs. Its bootstrap node, the gateway of its
    /// first CTMs, adds a relay URI through itself, and the neighbour that gets the CTM links over it beside its
    /// vain punches (`relay_after_ms`), though it holds no connection to that gateway. Before, the neighbour
    /// punched until its attempt gave up, and the joiner stayed short of that neighbour for 10 s and more (seed 5
    /// here: 10.9 s without the gateway's relay URI, 2.7 s with it).
    func testAJoinerNoDirectPathReachesIsLinkedThroughItsGatewayWithinSeconds() throws {
        for seed: UInt64 in 1...6 {
            // Enough public nodes that the joiner's gateway is rarely one of the settled node's forwarders.
            let (sim, settled) = try publicRing(seed: seed, spacing: 0x10, settledBehind: .symmetric)
            let joiner = try sim.addNode(nat: .symmetric, address: address(0x70))
            let start = sim.scheduler.now
            sim.scheduler.run(until: start + .seconds(20)) {
                !(joiner.node.table.contains(settled.node.address) && settled.node.table.contains(joiner.node.address))
            }
            let elapsed = (sim.scheduler.now - start).seconds
            print("seed \(seed): symmetric joiner linked to its symmetric neighbour after \(elapsed) s (virtual)")
            let connection = try XCTUnwrap(settled.node.table.connection(to: joiner.node.address), "seed \(seed): never linked")
            XCTAssertEqual(connection.transport, RelayTransport.scheme, "seed \(seed)")
            XCTAssertLessThan(elapsed, 6, "seed \(seed): the pair took \(elapsed) s to link")
        }
    }

    /// A node behind a symmetric NAT joins beside a port-restricted one already in the ring, over seeds that put
    /// either at the larger address. Its second leaf (a public node its bootstrap named) sees it at another port
    /// than its first did, so it knows its NAT maps per peer before its ring links start and says so in its
    /// NodeInfo; the pair then relays at once rather than punching `relay_after_ms` (1.5 s) in vain first.
    func testASymmetricJoinerLearnsItsNATMapsPerPeerAndRelaysToItsNATedNeighbourAtOnce() throws {
        var orders: Set<Bool> = []
        for seed: UInt64 in 1...6 {
            let (sim, settled) = try publicRing(seed: seed, spacing: 0x20, settledBehind: .portRestricted)
            XCTAssertFalse(settled.node.info.mapsPerPeer, "seed \(seed): a port-restricted NAT maps one port for all")
            let joiner = try sim.addNode(nat: .symmetric, address: address(0x70))
            let start = sim.scheduler.now
            sim.scheduler.run(until: start + .seconds(20)) {
                !(joiner.node.table.contains(settled.node.address) && settled.node.table.contains(joiner.node.address))
            }
            let elapsed = (sim.scheduler.now - start).seconds
            orders.insert(joiner.node.address > settled.node.address)
            print("seed \(seed): symmetric joiner linked to its port-restricted neighbour after \(elapsed) s (virtual)")
            XCTAssertTrue(joiner.node.info.mapsPerPeer, "seed \(seed): the joiner did not learn its NAT maps per peer")
            let connection = try XCTUnwrap(settled.node.table.connection(to: joiner.node.address), "seed \(seed): never linked")
            XCTAssertEqual(connection.transport, RelayTransport.scheme, "seed \(seed)")
            XCTAssertLessThan(elapsed, 2, "seed \(seed): the pair took \(elapsed) s to link")
            sim.scheduler.run(for: .seconds(30))
            XCTAssertEqual(sim.ringViolations(), 0, "seed \(seed)")
        }
        XCTAssertEqual(orders.count, 2, "the seeds must put either node at the larger address")
    }

    func testARelayedConnectionSurvivesItsForwarderLeaving() throws {
        let sim = try emptySimulation()
        let (symmetric, restricted) = try symmetricBesidePortRestricted(sim)
        sim.scheduler.run(until: sim.scheduler.now + .seconds(20)) {
            symmetric.node.table.connection(to: restricted.node.address)?.transport != RelayTransport.scheme
        }
        XCTAssertEqual(symmetric.node.table.connection(to: restricted.node.address)?.transport, RelayTransport.scheme)
        let forwarders = Set(sim.liveNodes.filter { $0.nat == .open }.map(\.node.address))
        let used = try XCTUnwrap(symmetric.node.table.connection(to: restricted.node.address)?.remoteURI)
        guard case .success(let (forwarder, _)) = RelayTransport.parse(used) else { return XCTFail("not a relay URI: \(used)") }
        XCTAssertTrue(forwarders.contains(forwarder), "the forwarder \(forwarder.short) is not one of the public nodes")

        sim.crash(try XCTUnwrap(sim.liveNodes.first { $0.node.address == forwarder }))
        // Liveness finds the crash within dead_after (30 s); repair follows.
        sim.scheduler.run(for: .seconds(60))
        XCTAssertEqual(symmetric.node.table.connection(to: restricted.node.address)?.transport, RelayTransport.scheme,
                       "the pair lost its relayed connection when its forwarder left")
        XCTAssertEqual(sim.ringViolations(), 0)
        let atRestricted = deliveries(to: restricted.node)
        symmetric.node.send(data: ByteBuffer(string: "after failover"), to: restricted.node.address)
        sim.scheduler.run(for: .seconds(2))
        XCTAssertEqual(atRestricted(), [symmetric.node.address])
    }

    /// A node that stops gracefully says goodbye over its relayed connections too, so its peers drop them at
    /// once instead of routing into a dead connection until liveness gives up on it. (Found on the testbed: the
    /// goodbye to the forwarder went first, the forwarder dropped the connection, and the tunnelled goodbyes
    /// behind it on the same edge were refused as coming from no connection.)
    func testANodeLeavingGracefullyClosesItsRelayedConnectionsAtOnce() throws {
        for leaverIsSymmetric in [true, false] {
            let sim = try emptySimulation()
            let (symmetric, restricted) = try symmetricBesidePortRestricted(sim)
            sim.scheduler.run(until: sim.scheduler.now + .seconds(20)) {
                restricted.node.table.connection(to: symmetric.node.address)?.transport != RelayTransport.scheme
                    || symmetric.node.table.connection(to: restricted.node.address)?.transport != RelayTransport.scheme
            }
            let (leaver, stayer) = leaverIsSymmetric ? (symmetric, restricted) : (restricted, symmetric)
            XCTAssertEqual(stayer.node.table.connection(to: leaver.node.address)?.transport, RelayTransport.scheme)
            let forwarder = try XCTUnwrap(stayer.node.status().connections.first { $0.peer == leaver.node.address.hex }?
                .relayed_via.flatMap { Address(hex: $0) })
            // Whichever the leaver tells first, its forwarder or the peer behind it, both must hear it.
            XCTAssertTrue(leaver.node.table.contains(forwarder))
            sim.leave(leaver)
            sim.scheduler.run(for: .seconds(1))
            XCTAssertNil(stayer.node.table.connection(to: leaver.node.address),
                         "\(leaverIsSymmetric ? "symmetric" : "port-restricted") node left, its relayed peer kept the connection")
            XCTAssertFalse(try XCTUnwrap(sim.liveNodes.first { $0.node.address == forwarder }).node.table.contains(leaver.node.address))
        }
    }

    func testARealisticNATMixIsRoutableWithRelaysOnlyWhereNeeded() throws {
        var options = SimulationOptions()
        options.nodes = 150
        // Overlay behaviour, not security (SecureOverlayTests): without crypto, which a debug build runs slowly.
        options.secure = false
        options.seed = 3
        options.messages = 300
        options.natMix = [.portRestricted: 0.4, .symmetric: 0.2, .udpBlocked: 0.1]
        options.settle = .seconds(90)
        let sim = try OverlaySimulation(options: options)
        let report = try sim.run()
        let check = try XCTUnwrap(report.checks.first)
        XCTAssertTrue(check.ring_consistent, "\(check.ring_violations) nodes lack a true neighbour")
        XCTAssertEqual(check.delivery_ratio, 1)
        XCTAssertEqual(report.join_routable_s.count, 150, "every node became routable")
        XCTAssertGreaterThan(check.connections_relayed, 0)
        XCTAssertEqual(check.needless_relays, 0, "relayed connections between nodes that could connect directly")
        // A forwarder carries tunnel frames, which never cross a relayed connection: it links directly or not at all,
        // and a relayed connection that gained the type (a forwarder CTM answered on it) loses it. Local types only:
        // a peer's trim is not announced, so remote types tell what the peer once wanted.
        let relayedForwarders = sim.liveNodes.flatMap { n in
            n.node.status().connections.filter { $0.transport == "relay" && $0.local_types.contains("forwarder") }
                .map { "\(n.node.address.short)-\($0.peer.prefix(8))" }
        }
        XCTAssertEqual(relayedForwarders, [], "relayed forwarder connections")
        print("NAT mix, 150 nodes: relayed share \(check.relayed_share), join p99 \(report.join_routable_s.p99) s")
    }

    /// Once the joins end, nodes trim the near links they made while joining (after `trim_grace_s`). A forwarder
    /// whose link to a relayed node is trimmed would cut every relayed connection through it until liveness gave
    /// up on them: messages sent meanwhile were lost (16 of 100 in one round). A trim leaves such a link open while
    /// tunnel frames cross it (`TunnelCarriers`), so messages sent every 5 s through the trimming all arrive, and
    /// the links it kept close once no tunnel uses them.
    func testTheNATMixLosesNoMessageWhileTheRingTrimsItsJoinLinks() throws {
        var options = SimulationOptions()
        options.nodes = 100
        options.secure = false
        options.seed = 1
        options.natMix = [.portRestricted: 0.4, .symmetric: 0.2, .udpBlocked: 0.1]
        let sim = try OverlaySimulation(options: options)
        for _ in 0..<options.nodes {
            try sim.addNode()
            sim.scheduler.run(for: options.joinInterval)
        }
        // The last joiners find their place (messages to a node still joining may fail: not what this is about).
        sim.scheduler.run(for: .seconds(10))
        XCTAssertEqual(sim.ringViolations(), 0)
        var sent = 0
        var delivered = 0
        let start = sim.scheduler.now
        // A round of messages every 5 s, through the trims (20-40 s after the joins) and after.
        for round in 1...14 {
            let result = sim.measureRouting(count: 50, timeout: .seconds(5))
            sent += result.sent
            delivered += result.delivered
            sim.scheduler.run(until: start + .seconds(5 * Int64(round)))
        }
        XCTAssertEqual(delivered, sent, "messages lost while the ring trimmed its join links")
        XCTAssertEqual(sim.ringViolations(), 0)
        let kept = sim.liveNodes.reduce(0) { $0 + $1.node.status().connections.filter { $0.local_types.isEmpty && $0.remote_types.isEmpty }.count }
        let carrying = sim.liveNodes.reduce(0) { $0 + $1.node.status().connections.filter { $0.carries_tunnels == true }.count }
        XCTAssertGreaterThan(carrying, 0, "no connection carries tunnel frames: the mix made no relayed connection")
        // What a trim kept open is there for tunnels: whatever carries none any more was closed by now.
        sim.scheduler.run(for: .seconds(40))
        let stale = sim.liveNodes.flatMap { n in
            n.node.status().connections.filter { $0.local_types.isEmpty && $0.remote_types.isEmpty && $0.carries_tunnels != true }
                .map { "\(n.node.address.short)-\($0.peer.prefix(8)) \($0.transport) age \($0.age_s) in \($0.inbound)" }
        }
        XCTAssertEqual(stale, [], "connections without types and without tunnel frames (\(kept) kept by trims earlier)")
    }

    /// With `advertise: auto`, a node that peers saw at its own bound address lists no relay URIs (they would
    /// only weigh on every message carrying its info); one behind a NAT lists them.
    func testOnlyNodesBehindNATsAdvertiseRelayURIs() throws {
        let sim = try emptySimulation()
        let (symmetric, restricted) = try symmetricBesidePortRestricted(sim)
        sim.scheduler.run(for: .seconds(20))
        for node in sim.liveNodes where node.nat == .open {
            XCTAssertTrue(node.node.isReachableDirectly)
            XCTAssertFalse(node.node.info.uris.contains { $0.scheme == RelayTransport.scheme }, "\(node.node.info.uris)")
        }
        for node in [symmetric, restricted] {
            XCTAssertFalse(node.node.isReachableDirectly)
            XCTAssertTrue(node.node.info.uris.contains { $0.scheme == RelayTransport.scheme }, "\(node.node.info.uris)")
        }
    }

    // MARK: - Forwarder links

    /// A public hub, and a symmetric-NAT node and a port-restricted one each linked to it (a dial of their own,
    /// no ring overlords): the two NATed nodes list relay URIs through the hub, no direct path joins them, and
    /// nothing links them unless asked.
    private func hubWithTwoNATedNodes() throws
        -> (scheduler: SimulationScheduler, hub: Node, symmetric: Node, restricted: Node) {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 9)
        var random = SeededRandom(seed: 9)
        let transports: [NodeConfig.PluginEntry] = [.init(name: MemoryTransport.scheme), .init(name: RelayTransport.scheme)]
        let hubHost = network.addHost(nat: .open)
        let hubInfo = NodeInfo(address: random.address(), uris: [try TransportURI("memory://\(hubHost.rawValue):1")])
        func makeNode(_ name: String, address: Address, host: MemoryHostID, dials: NodeInfo?) -> Node {
            var overlords = OverlordRegistry()
            if let dials { overlords.register(dialer: DialOverlord(peer: dials)) }
            let config = NodeConfig(name: name, address: address, transports: transports,
                                    overlords: dials == nil ? [] : [.init(name: DialOverlord.name)], bootstrap: [])
            return SimulatedNodeBuilder(scheduler: scheduler, overlords: overlords)
                .makeNode(config: config, transports: .memory(network, host: host), random: random.split())
        }
        let hub = makeNode("hub", address: hubInfo.address, host: hubHost, dials: nil)
        let symmetric = makeNode("symmetric", address: random.address(), host: network.addHost(nat: .symmetric), dials: hubInfo)
        let restricted = makeNode("restricted", address: random.address(), host: network.addHost(nat: .portRestricted),
                                  dials: hubInfo)
        for node in [hub, symmetric, restricted] { try node.start() }
        scheduler.run(for: .seconds(2))
        return (scheduler, hub, symmetric, restricted)
    }

    /// A forwarder carries tunnel frames, which never cross a relayed connection, so a link of that type goes
    /// over direct URIs only (`Node.linkableURIs`): the requester's own attempt, the peer's linking back to its
    /// Connect-To-Me, and the URIs the peer's punch adds. Here the relay would even start at once (its forwarder
    /// is a direct peer of both ends), and a link of another type between the same two nodes does go through it.
    func testAForwarderLinkNeverOpensARelayEdgeWhereALinkOfAnotherTypeRelays() throws {
        let (scheduler, hub, symmetric, restricted) = try hubWithTwoNATedNodes()
        XCTAssertTrue(symmetric.table.contains(hub.address) && restricted.table.contains(hub.address), "both linked to the hub")
        for node in [symmetric, restricted] {
            XCTAssertTrue(node.info.uris.contains { $0.scheme == MemoryTransport.scheme }, "\(node.info.uris)")
            XCTAssertTrue(node.info.uris.contains { $0 == RelayTransport.uri(forwarder: hub.address, target: node.address) },
                          "\(node.info.uris)")
        }
        // Every relay edge either NATed node holds at any moment (checked between every two events).
        var relayEdges: Set<String> = []
        func run(for duration: Duration) {
            scheduler.run(until: scheduler.now + duration) {
                for (name, node) in [("symmetric", symmetric), ("restricted", restricted)] {
                    for record in node.edges.all where record.edge.transport == RelayTransport.scheme {
                        relayEdges.insert("\(name) -> \(record.edge.remoteURI.text)")
                    }
                }
                return true
            }
        }

        // Both ask at once, so URIs reach each end's forwarder attempt every way they can: at its start, with the
        // peer's punch (the reply to its Connect-To-Me), and with the peer's Connect-To-Me arriving while it runs.
        let attemptsBefore = symmetric.stats.linkAttempts + restricted.stats.linkAttempts
        for (node, peer) in [(symmetric, restricted), (restricted, symmetric)] {
            node.connect(ConnectRequest(target: peer.address, mode: .exact, type: .forwarder, peer: peer.info), owner: .core)
        }
        // The connects give up after 10 s.
        run(for: .seconds(12))
        XCTAssertGreaterThanOrEqual(symmetric.stats.linkAttempts + restricted.stats.linkAttempts - attemptsBefore, 2,
                                    "both ends tried")
        XCTAssertEqual(relayEdges, [], "a forwarder link opened relay edges")
        XCTAssertNil(symmetric.table.connection(to: restricted.address), "no direct path joins a symmetric and a port-restricted NAT")
        XCTAssertNil(restricted.table.connection(to: symmetric.address))

        symmetric.connect(ConnectRequest(target: restricted.address, mode: .exact, type: "test.relayed", peer: restricted.info),
                          owner: .core)
        run(for: .seconds(5))
        XCTAssertEqual(symmetric.table.connection(to: restricted.address)?.transport, RelayTransport.scheme)
        XCTAssertEqual(restricted.table.connection(to: symmetric.address)?.transport, RelayTransport.scheme)
        XCTAssertFalse(relayEdges.isEmpty, "the link of another type went through the relay")
    }

    // MARK: - Direct retries of relayed connections

    /// Runs `sim` for `duration` and returns the attempts to move the connection between `nodes` to a direct
    /// edge that each of them held (relinks over direct URIs: a relayed connection's direct retry, and the peer's
    /// linking back to it), as "<node hex> <token>", checked between every two events. A relink over a relay URI
    /// (a reclaim on the relayed edge itself) is no such attempt.
    private func directRelinks(between nodes: [Node], in sim: OverlaySimulation, for duration: Duration) -> Set<String> {
        var seen: Set<String> = []
        sim.scheduler.run(until: sim.scheduler.now + duration) {
            for node in nodes {
                for attempt in node.linker.attempts.values where attempt.intent == .relink
                    && nodes.contains(where: { $0.address == attempt.target })
                    && !attempt.uris.contains(where: { $0.scheme == RelayTransport.scheme }) {
                    seen.insert("\(node.address.hex) \(attempt.token)")
                }
            }
            return true
        }
        return seen
    }

    /// A node whose datagrams never get past its site punches nothing, so an attempt of its to a peer behind a
    /// NAT (one that lists relay URIs) starts its relay at once rather than after `relay_after_ms` of direct
    /// tries that cannot work: a node with no datagram transport, and one running UDP behind a firewall that
    /// lets only its streams out (peers beyond its NAT saw it only over them). The testbed's TCP-only and
    /// 443-only joiners were routable 1.5-2 s after starting whenever a ring neighbour sat behind a NAT.
    func testANodeWhoseDatagramsDoNotGetOutRelaysAtOnceToAPeerBehindANAT() throws {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 3)
        var random = SeededRandom(seed: 3)
        let builder = SimulatedNodeBuilder(scheduler: scheduler, overlords: OverlordRegistry())
        func node(_ name: String, _ schemes: [String]) throws -> Node {
            let host = network.addHost()
            let node = builder.makeNode(config: NodeConfig(name: name, address: random.address(),
                                                           transports: schemes.map { .init(name: $0) }, overlords: [], bootstrap: []),
                                        transports: .memory(network, host: host), random: random.split())
            try node.start()
            return node
        }
        let natedPeer = random.address()
        let forwarder = random.address()
        let natedURIs = [try TransportURI("memory://\(MemoryNetwork.firstNATHostID + 7):1"),
                         try TransportURI("relay://\(forwarder.hex)/\(natedPeer.hex)")]
        let publicPeer = [try TransportURI("memory://\(MemoryNetwork.firstNATHostID + 8):1")]

        let both = try node("udp-and-streams", [MemoryTransport.scheme, MemoryTransport.streamScheme, RelayTransport.scheme])
        XCTAssertFalse(both.punchesNothing, "nothing learnt yet: a punch may work")
        XCTAssertFalse(both.relayPlan(to: natedPeer, among: natedURIs).atOnce)
        // Two peers beyond our NAT saw our streams, none a datagram: the firewall lets out only streams.
        let nat = MemoryNetwork.firstNATHostID + 1
        both.learnObserved(try TransportURI("memory-stream://\(nat):50001"), from: random.address())
        both.learnObserved(try TransportURI("memory-stream://\(nat):50002"), from: random.address())
        XCTAssertTrue(both.punchesNothing)
        XCTAssertTrue(both.relayPlan(to: natedPeer, among: natedURIs).atOnce, "a punch of ours cannot get out")
        XCTAssertFalse(both.relayPlan(to: random.address(), among: publicPeer).atOnce, "no relay to wait for")
        // A datagram of ours got out after all: the direct tries may work, the relay waits its turn.
        both.learnObserved(try TransportURI("memory://\(nat):40000"), from: random.address())
        XCTAssertFalse(both.punchesNothing)
        XCTAssertFalse(both.relayPlan(to: natedPeer, among: natedURIs).atOnce)

        let streamsOnly = try node("streams-only", [MemoryTransport.streamScheme, RelayTransport.scheme])
        XCTAssertTrue(streamsOnly.punchesNothing, "no datagram transport")
        XCTAssertTrue(streamsOnly.relayPlan(to: natedPeer, among: natedURIs).atOnce)
    }

    /// A joiner learns that its NAT maps per peer from its second link's view, while its first attempts to its
    /// ring neighbours already run: an attempt to a peer behind a NAT starts its relay URI then, not
    /// `relay_after_ms` after it began (`Node.relayAttemptsThatCannotPunch`).
    func testAnAttemptUnderWayRelaysOnceOurNATTurnsOutToMapPerPeer() throws {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 5)
        var random = SeededRandom(seed: 5)
        let builder = SimulatedNodeBuilder(scheduler: scheduler, overlords: OverlordRegistry())
        let node = builder.makeNode(config: NodeConfig(name: "joiner", address: random.address(),
                                                       transports: [.init(name: MemoryTransport.scheme), .init(name: RelayTransport.scheme)],
                                                       overlords: [], bootstrap: []),
                                    transports: .memory(network, host: network.addHost()), random: random.split())
        try node.start()
        let natedPeer = random.address(), forwarder = random.address()
        let relayURI = try TransportURI("relay://\(forwarder.hex)/\(natedPeer.hex)")
        let natedURIs = [try TransportURI("memory://\(MemoryNetwork.firstNATHostID + 7):1"), relayURI]
        node.startAttempt(AttemptStart(token: 1, type: "structured.near", target: natedPeer, uris: natedURIs, purpose: .own(connectToken: nil)))
        scheduler.run(for: .milliseconds(20))
        XCTAssertEqual(node.linker.attempt(token: 1)?.fallbackOpened, [], "nothing learnt yet: the relay waits its turn")

        let nat = MemoryNetwork.firstNATHostID + 1
        node.learnObserved(try TransportURI("memory://\(nat):40000"), from: random.address())
        scheduler.run(for: .milliseconds(1))
        XCTAssertFalse(node.info.mapsPerPeer)
        XCTAssertEqual(node.linker.attempt(token: 1)?.fallbackOpened, [], "one view tells nothing")
        // A second peer sees another port: our NAT maps per peer.
        node.learnObserved(try TransportURI("memory://\(nat):40001"), from: random.address())
        XCTAssertTrue(node.info.mapsPerPeer)
        scheduler.run(for: .milliseconds(1))
        XCTAssertEqual(node.linker.attempt(token: 1)?.fallbackOpened, [relayURI], "the relay starts at once")
    }

    /// A far link's Connect-To-Me (`nearest` mode) asks for any node near a point. When it reaches a node only a
    /// relay could join to its requester (a symmetric NAT and a port-restricted one), that node hands it to its
    /// nearest neighbour a direct path reaches, which links to the requester directly: no relayed connection and
    /// no forwarder link for it. An `exact` one (a shortcut's, a near neighbour's) is answered where it lands.
    func testANearestConnectOnlyARelayCouldAnswerIsHandedToAPublicNeighbour() throws {
        let (sim, symmetric) = try publicRing(seed: 11, spacing: 0x10, settledBehind: .symmetric)
        XCTAssertTrue(symmetric.node.info.mapsPerPeer)
        let far = try sim.addNode(nat: .portRestricted, address: address(0xF4))
        // Long enough for the links of its join to be trimmed and closed (one went to the symmetric node).
        sim.scheduler.run(for: .seconds(80))
        XCTAssertTrue(sim.isRoutable(far), "the requester never joined")
        let before = far.node.table.connections.map(\.address)
        XCTAssertFalse(before.contains(symmetric.node.address))
        XCTAssertFalse(symmetric.node.table.contains(far.node.address))

        // Its own far links' CTMs may have been handed on already while it joined.
        let handedOn = symmetric.node.stats.connectsHandedOn
        far.node.connect(ConnectRequest(target: symmetric.node.address, mode: .nearest, type: "test.far"), owner: .core)
        sim.scheduler.run(for: .seconds(5))
        XCTAssertEqual(symmetric.node.stats.connectsHandedOn, handedOn + 1)
        let linked = far.node.table.connections.filter { $0.localTypes.contains("test.far") }
        XCTAssertEqual(linked.count, 1, "\(far.node.table.connections)")
        let peer = try XCTUnwrap(linked.first)
        XCTAssertTrue(symmetric.node.table.nearestNeighbours(perSide: 2).contains { $0.address == peer.address },
                      "\(peer.address.short): no neighbour of the symmetric node")
        XCTAssertEqual(sim.nodes.first { $0.node.address == peer.address }?.nat, .open)
        XCTAssertNotEqual(peer.transport, RelayTransport.scheme)
        XCTAssertFalse(far.node.table.connections.contains { $0.localTypes.contains(.forwarder) && !before.contains($0.address) },
                       "no forwarder link for it")

        // An exact connect to the same node is its own: it relays.
        far.node.connect(ConnectRequest(target: symmetric.node.address, mode: .exact, type: "test.exact"), owner: .core)
        sim.scheduler.run(for: .seconds(8))
        XCTAssertEqual(symmetric.node.stats.connectsHandedOn, handedOn + 1)
        XCTAssertEqual(far.node.table.connection(to: symmetric.node.address)?.transport, RelayTransport.scheme)
    }

    /// A relayed connection between a pair no direct path can join makes no direct retries (`Node.cannotPunch`
    /// passed to `RelayUpkeep.retryDirect`): whichever end has the smaller address and so would retry, the
    /// symmetric one (its NAT maps per peer, and the peer lists relay URIs) or the port-restricted one (the peer
    /// says its NAT maps per peer, and this end is not reachable directly). Retries would start 5 s after the
    /// connection and come every 30 s, 60 s, ... after.
    func testARelayedPairThatCannotPunchMakesNoDirectRetries() throws {
        for symmetricIsLarger in [false, true] {
            let sim = try emptySimulation(secure: false)
            let (symmetric, restricted) = try symmetricBesidePortRestricted(sim, symmetricIsLarger: symmetricIsLarger)
            sim.scheduler.run(until: sim.scheduler.now + .seconds(20)) {
                symmetric.node.table.connection(to: restricted.node.address)?.transport != RelayTransport.scheme
                    || restricted.node.table.connection(to: symmetric.node.address)?.transport != RelayTransport.scheme
            }
            let label = "symmetric at the \(symmetricIsLarger ? "larger" : "smaller") address"
            XCTAssertEqual(symmetric.node.table.connection(to: restricted.node.address)?.transport, RelayTransport.scheme, label)
            XCTAssertEqual(symmetric.node.address > restricted.node.address, symmetricIsLarger, label)
            XCTAssertTrue(symmetric.node.info.mapsPerPeer, "\(label): the symmetric node knows its NAT maps per peer")

            let relinks = directRelinks(between: [symmetric.node, restricted.node], in: sim, for: .seconds(70))
            XCTAssertEqual(relinks, [], "\(label): direct retries between a pair that cannot punch")
            XCTAssertEqual(symmetric.node.table.connection(to: restricted.node.address)?.transport, RelayTransport.scheme, label)
        }
    }

    /// Two port-restricted nodes side by side (each other's ring neighbours) whose datagrams to each other a
    /// firewall drops: they relay, though as far as they know a punch could join them. So the end with the
    /// smaller address retries a direct edge (5 s after the connection, then 30 s after that), and once the
    /// firewall lets their datagrams through, the next retry moves the connection to a direct edge.
    func testARelayedPairThatMayPunchRetriesDirectlyAndMovesToADirectEdgeOnceOneWorks() throws {
        let sim = try emptySimulation(secure: false)
        for byte: UInt8 in [0x10, 0x50, 0x90, 0xD0] {
            try sim.addNode(nat: .open, address: address(byte))
            sim.scheduler.run(for: .milliseconds(300))
        }
        let smaller = try sim.addNode(nat: .portRestricted, address: address(0x70, 1))
        sim.scheduler.run(for: .milliseconds(300))
        let larger = try sim.addNode(nat: .portRestricted, address: address(0x70, 2))
        // A host's datagrams leave it from its own id and are addressed to the other's NAT.
        let ends = [smaller, larger].map { [$0.host, sim.network.natHost(of: $0.host)] }
        var firewalled = true
        sim.network.onPath = { packet, from, to in
            firewalled && ((ends[0].contains(from) && ends[1].contains(to)) || (ends[1].contains(from) && ends[0].contains(to)))
                ? [] : [packet]
        }
        sim.scheduler.run(until: sim.scheduler.now + .seconds(20)) {
            smaller.node.table.connection(to: larger.node.address)?.transport != RelayTransport.scheme
                || larger.node.table.connection(to: smaller.node.address)?.transport != RelayTransport.scheme
        }
        let relayed = try XCTUnwrap(smaller.node.table.connection(to: larger.node.address), "the pair never linked")
        XCTAssertEqual(relayed.transport, RelayTransport.scheme)
        XCTAssertFalse(smaller.node.info.mapsPerPeer || larger.node.info.mapsPerPeer, "port-restricted NATs map one port for all")

        let start = sim.scheduler.now
        // Liveness rounds (every 5 to 6.25 s) make the retries: the second comes by about 48 s.
        let relinks = directRelinks(between: [smaller.node, larger.node], in: sim, for: relayed.createdAt + .seconds(50) - start)
        let retries = relinks.filter { $0.hasPrefix(smaller.node.address.hex + " ") }
        XCTAssertGreaterThanOrEqual(retries.count, 2, "the smaller end's direct retries within 50 s: \(relinks.sorted())")
        XCTAssertEqual(smaller.node.table.connection(to: larger.node.address)?.transport, RelayTransport.scheme,
                       "relayed still: the firewall drops every direct try")

        firewalled = false
        sim.scheduler.run(until: sim.scheduler.now + .seconds(70)) {
            smaller.node.table.connection(to: larger.node.address)?.transport != MemoryTransport.scheme
                || larger.node.table.connection(to: smaller.node.address)?.transport != MemoryTransport.scheme
        }
        let direct = try XCTUnwrap(smaller.node.table.connection(to: larger.node.address))
        XCTAssertEqual(direct.transport, MemoryTransport.scheme, "the next retry moved the connection to a direct edge")
        XCTAssertEqual(larger.node.table.connection(to: smaller.node.address)?.transport, MemoryTransport.scheme)
        XCTAssertEqual(direct.createdAt, relayed.createdAt, "the same connection, moved")
    }
}
