import NIOCore
import Transports
import WOWKit
import XCTest

/// Records what a listener and its edges report, in order.
private final class Recorder: EdgeListenerDelegate, EdgeDelegate {
    struct Received {
        var edge: ObjectIdentifier
        var from: TransportURI
        var payload: String
        var time: Timestamp
    }

    let scheduler: SimulationScheduler
    var accepted: [any Edge] = []
    var received: [Received] = []
    var closed: [ObjectIdentifier] = []
    var events: [String] = []

    init(scheduler: SimulationScheduler) { self.scheduler = scheduler }

    func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {
        accepted.append(edge)
        events.append("accept \(edge.remoteURI)")
        edge.delegate = self
    }

    func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
        let payload = String(buffer: packet)
        received.append(Received(edge: ObjectIdentifier(edge), from: edge.remoteURI, payload: payload,
                                 time: scheduler.now))
        events.append("receive \(edge.remoteURI) \(payload)")
    }

    func edgeDidClose(_ edge: any Edge) {
        closed.append(ObjectIdentifier(edge))
        events.append("close \(edge.remoteURI)")
    }

    func payloads(from uri: TransportURI) -> [String] {
        received.filter { $0.from == uri }.map(\.payload)
    }
}

/// One simulated host with a started listener.
private struct Node {
    let host: MemoryHostID
    let listener: MemoryEdgeListener
    let recorder: Recorder
    var uri: TransportURI { listener.localURI }
}

final class MemoryNetworkTests: XCTestCase {
    private var scheduler = SimulationScheduler()
    private var network: MemoryNetwork!

    override func setUp() {
        super.setUp()
        scheduler = SimulationScheduler()
        network = MemoryNetwork(scheduler: scheduler, seed: 42)
    }

    private func makeNetwork(seed: UInt64 = 42, loss: Double = 0, natMappingTimeout: Duration = .seconds(60)) {
        scheduler = SimulationScheduler()
        network = MemoryNetwork(scheduler: scheduler, seed: seed, loss: loss, natMappingTimeout: natMappingTimeout)
    }

    private func addNode(_ nat: NATBehaviour = .open) throws -> Node {
        let host = network.addHost(nat: nat)
        return try listen(on: host, port: 1)
    }

    private func listen(on host: MemoryHostID, port: UInt16) throws -> Node {
        let listener = network.makeListener(host: host, port: port)
        let recorder = Recorder(scheduler: scheduler)
        try listener.start(delegate: recorder)
        return Node(host: host, listener: listener, recorder: recorder)
    }

    /// The edge `createEdge` gives, after letting its completion run.
    private func edge(from node: Node, to uri: TransportURI) throws -> any Edge {
        var result: Result<any Edge, EdgeError>?
        node.listener.createEdge(to: uri) { result = $0 }
        XCTAssertNil(result, "createEdge must not complete from inside the call")
        scheduler.run(for: .zero)
        let edge = try XCTUnwrap(result).get()
        edge.delegate = node.recorder
        return edge
    }

    private func send(_ payload: String, from node: Node, to uri: TransportURI) throws {
        try edge(from: node, to: uri).send(ByteBuffer(string: payload))
    }

    private func uri(_ text: String) throws -> TransportURI { try TransportURI(text) }

    private func uri(_ host: MemoryHostID, _ port: Int) throws -> TransportURI {
        try TransportURI("memory://\(host.rawValue):\(port)")
    }

    /// The URI `server` sees `node`'s packets come from (its NAT mapping toward the server).
    private func publicURI(of node: Node, seenBy server: Node) throws -> TransportURI {
        let before = server.recorder.received.count
        try send("hello from \(node.host)", from: node, to: server.uri)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(server.recorder.received.count, before + 1, "the server should hear \(node.host)")
        return try XCTUnwrap(server.recorder.received.last).from
    }

    // MARK: Latency and loss

    func testPacketArrivesAfterHalfThePairsRoundTripInBothDirections() throws {
        let a = try addNode(), b = try addNode()
        let roundTrip = network.roundTrip(between: a.host, and: b.host)
        XCTAssertTrue((Duration.milliseconds(20) ... .milliseconds(250)).contains(roundTrip))
        XCTAssertEqual(network.roundTrip(between: b.host, and: a.host), roundTrip)
        let oneWay = Duration.nanoseconds(roundTrip.nanoseconds / 2)
        XCTAssertEqual(network.oneWayDelay(between: a.host, and: b.host), oneWay)

        try send("ping", from: a, to: b.uri)
        scheduler.run(for: .seconds(1))
        let ping = try XCTUnwrap(b.recorder.received.first)
        XCTAssertEqual(ping.payload, "ping")
        XCTAssertEqual(ping.time, Timestamp.zero + oneWay)

        let sentAt = scheduler.now
        let reply = try XCTUnwrap(b.recorder.accepted.first)
        reply.send(ByteBuffer(string: "pong"))
        scheduler.run(for: .seconds(1))
        let pong = try XCTUnwrap(a.recorder.received.first)
        XCTAssertEqual(pong.payload, "pong")
        XCTAssertEqual(pong.time - sentAt, oneWay)
    }

    func testRoundTripsDependOnSeedAndPairNotOnCallOrder() {
        let first = MemoryNetwork(scheduler: SimulationScheduler(), seed: 7)
        let second = MemoryNetwork(scheduler: SimulationScheduler(), seed: 7)
        let other = MemoryNetwork(scheduler: SimulationScheduler(), seed: 8)
        let hosts = (0..<20).map { _ in first.addHost() }
        // The second network's hosts have NATs, and it is asked in the opposite order.
        for host in hosts { _ = second.addHost(nat: host.rawValue % 3 == 0 ? .fullCone : .open) }
        for _ in hosts { _ = other.addHost() }
        var firstTrips: [String: Duration] = [:]
        var secondTrips: [String: Duration] = [:]
        var otherTrips: [String: Duration] = [:]
        for a in hosts { for b in hosts where a < b { firstTrips["\(a)-\(b)"] = first.roundTrip(between: a, and: b) } }
        for a in hosts.reversed() {
            for b in hosts.reversed() where a > b { secondTrips["\(b)-\(a)"] = second.roundTrip(between: a, and: b) }
        }
        for a in hosts { for b in hosts where a < b { otherTrips["\(a)-\(b)"] = other.roundTrip(between: a, and: b) } }
        XCTAssertEqual(firstTrips.count, 190)
        XCTAssertEqual(firstTrips, secondTrips)
        XCTAssertNotEqual(firstTrips, otherTrips)
        let trips = Array(firstTrips.values)
        XCTAssertGreaterThan(Set(trips).count, trips.count / 2, "round trips should vary by pair")
        XCTAssertTrue(trips.allSatisfy { (Duration.milliseconds(20) ... .milliseconds(250)).contains($0) })
        let mean = trips.map(\.seconds).reduce(0, +) / Double(trips.count)
        XCTAssertEqual(mean, 0.135, accuracy: 0.015)
    }

    func testArrivalTimeIsStableAcrossNetworksWithTheSameSeed() throws {
        func arrival() throws -> Timestamp {
            makeNetwork(seed: 99)
            let a = try addNode(), b = try addNode()
            try send("x", from: a, to: b.uri)
            scheduler.run(for: .seconds(1))
            return try XCTUnwrap(b.recorder.received.first).time
        }
        XCTAssertEqual(try arrival(), try arrival())
    }

    func testLossDropsTheConfiguredShareOfPackets() throws {
        makeNetwork(loss: 0.3)
        let a = try addNode(), b = try addNode()
        let edge = try edge(from: a, to: b.uri)
        for _ in 0..<10_000 { edge.send(ByteBuffer(string: "x")) }
        scheduler.run(for: .seconds(1))
        let delivered = b.recorder.received.count
        XCTAssertEqual(Double(delivered) / 10_000, 0.7, accuracy: 0.02)
        XCTAssertEqual(network.drops.byName["loss"], 10_000 - delivered)
        XCTAssertEqual(network.packetsSent, 10_000)
        XCTAssertEqual(network.packetsDelivered, delivered)
        XCTAssertEqual(network.bytesDelivered, delivered)
    }

    // MARK: Edges

    func testPacketsFromTwoRemotesMakeTwoInboundEdges() throws {
        let a = try addNode(), b = try addNode(), c = try addNode()
        let fromB = try edge(from: b, to: a.uri)
        let fromC = try edge(from: c, to: a.uri)
        XCTAssertFalse(fromB.isInbound)
        fromB.send(ByteBuffer(string: "b1"))
        fromC.send(ByteBuffer(string: "c1"))
        fromB.send(ByteBuffer(string: "b2"))
        scheduler.run(for: .seconds(1))

        XCTAssertEqual(a.recorder.accepted.count, 2)
        XCTAssertEqual(Set(a.recorder.accepted.map(\.remoteURI)), [b.uri, c.uri])
        XCTAssertTrue(a.recorder.accepted.allSatisfy { $0.isInbound && $0.localURI == a.uri && $0.transport == "memory" })
        XCTAssertEqual(a.recorder.payloads(from: b.uri), ["b1", "b2"])
        XCTAssertEqual(a.recorder.payloads(from: c.uri), ["c1"])
        let edgeOfB = try XCTUnwrap(a.recorder.accepted.first { $0.remoteURI == b.uri })
        XCTAssertTrue(a.recorder.received.filter { $0.from == b.uri }.allSatisfy { $0.edge == ObjectIdentifier(edgeOfB) })
        // The listener reports the edge before its first packet.
        let acceptB = try XCTUnwrap(a.recorder.events.firstIndex(of: "accept \(b.uri)"))
        let receiveB = try XCTUnwrap(a.recorder.events.firstIndex(of: "receive \(b.uri) b1"))
        XCTAssertLessThan(acceptB, receiveB)
        XCTAssertEqual(a.listener.edgeCount, 2)
    }

    func testCreateEdgeReusesTheEdgeForThatRemote() throws {
        let a = try addNode(), b = try addNode(), c = try addNode()
        try send("hi", from: b, to: a.uri)
        scheduler.run(for: .seconds(1))
        let inbound = try XCTUnwrap(a.recorder.accepted.first)
        let created = try edge(from: a, to: b.uri)
        XCTAssertTrue(created === inbound)
        XCTAssertTrue(created.isInbound)

        // Two requests before either completes yield one outbound edge.
        var first: (any Edge)?
        var second: (any Edge)?
        a.listener.createEdge(to: c.uri) { first = try? $0.get() }
        a.listener.createEdge(to: c.uri) { second = try? $0.get() }
        XCTAssertNil(first)
        scheduler.run(for: .zero)
        let outbound = try XCTUnwrap(first)
        XCTAssertTrue(outbound === second)
        XCTAssertFalse(outbound.isInbound)
        XCTAssertEqual(outbound.remoteURI, c.uri)
        XCTAssertEqual(a.listener.edgeCount, 2)
    }

    func testCreateEdgeRejectsOtherSchemesAndMalformedLocations() throws {
        let a = try addNode()
        func failure(_ text: String) throws -> EdgeError? {
            var result: Result<any Edge, EdgeError>?
            a.listener.createEdge(to: try uri(text)) { result = $0 }
            XCTAssertNil(result)
            scheduler.run(for: .zero)
            guard case .failure(let error) = try XCTUnwrap(result) else { return nil }
            return error
        }
        XCTAssertEqual(try failure("udp://1:1"), .wrongScheme(expected: "memory", got: "udp"))
        for text in ["memory://abc", "memory://x:1", "memory://0:1", "memory://-2:1", "memory://2:70000", "memory://2:"] {
            guard case .badLocation(let bad, _) = try failure(text) else {
                XCTFail("\(text) should be a bad location")
                continue
            }
            XCTAssertEqual(bad.text, text)
        }
    }

    func testCloseRemovesTheEdgeAndReportsOnceLater() throws {
        let a = try addNode(), b = try addNode()
        let toA = try edge(from: b, to: a.uri)
        toA.send(ByteBuffer(string: "1"))
        scheduler.run(for: .seconds(1))
        let inbound = try XCTUnwrap(a.recorder.accepted.first)

        inbound.close()
        inbound.close()
        XCTAssertTrue(inbound.isClosed)
        XCTAssertTrue(a.recorder.closed.isEmpty, "edgeDidClose must not be called from inside close")
        XCTAssertEqual(a.listener.edgeCount, 0)
        scheduler.run(for: .zero)
        XCTAssertEqual(a.recorder.closed, [ObjectIdentifier(inbound)])

        inbound.send(ByteBuffer(string: "dropped"))
        XCTAssertEqual(network.drops.byName["edge_closed"], 1)

        // The remote's next packet makes a new inbound edge.
        toA.send(ByteBuffer(string: "2"))
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(a.recorder.accepted.count, 2)
        XCTAssertFalse(a.recorder.accepted[1] === inbound)
        XCTAssertEqual(a.recorder.payloads(from: b.uri), ["1", "2"])
        XCTAssertEqual(a.recorder.closed.count, 1)
    }

    func testStopClosesEveryEdgeAndRefusesMore() throws {
        let a = try addNode(), b = try addNode(), c = try addNode()
        try send("b", from: b, to: a.uri)
        try send("c", from: c, to: a.uri)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(a.recorder.accepted.count, 2)

        a.listener.stop()
        XCTAssertTrue(a.recorder.accepted.allSatisfy(\.isClosed))
        XCTAssertTrue(a.recorder.closed.isEmpty)
        scheduler.run(for: .zero)
        XCTAssertEqual(Set(a.recorder.closed), Set(a.recorder.accepted.map { ObjectIdentifier($0) }))

        var result: Result<any Edge, EdgeError>?
        a.listener.createEdge(to: b.uri) { result = $0 }
        scheduler.run(for: .zero)
        guard case .failure(.stopped) = result else { return XCTFail("createEdge after stop: \(String(describing: result))") }
        XCTAssertThrowsError(try a.listener.start(delegate: a.recorder))

        try send("late", from: b, to: a.uri)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(network.drops.byName["no_listener"], 1)
        XCTAssertEqual(a.recorder.received.count, 2)

        // The port is free for a new listener.
        let again = try listen(on: a.host, port: 1)
        try send("again", from: b, to: a.uri)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(again.recorder.payloads(from: b.uri), ["again"])
    }

    func testPacketToAPortWithoutListenerIsDropped() throws {
        let a = try addNode(), b = try addNode()
        try send("nobody", from: a, to: try uri(b.host, 9))
        try send("no host", from: a, to: try uri("memory://77:1"))
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(network.drops.byName["no_listener"], 2)
        XCTAssertEqual(network.packetsDelivered, 0)
    }

    func testLocalURIsAddLearnedPublicOnesMostRecentLast() throws {
        let a = try addNode(.fullCone)
        XCTAssertEqual(a.listener.localURIs, [a.uri])
        a.listener.learnObservedURI(a.uri)
        a.listener.learnObservedURI(try uri("udp://198.18.0.1:4000"))
        XCTAssertEqual(a.listener.localURIs, [a.uri])
        let learned = try (1...5).map { try uri("memory://1000001:\(40_000 + $0)") }
        for observed in learned { a.listener.learnObservedURI(observed) }
        XCTAssertEqual(a.listener.localURIs, [a.uri] + learned.suffix(4))
        a.listener.learnObservedURI(learned[2])
        XCTAssertEqual(a.listener.localURIs, [a.uri, learned[1], learned[3], learned[4], learned[2]])
    }

    /// What a peer sees of a stream is the connection's source port, which accepts nothing: a stream listener
    /// lists no observed URI (as tcp does not), so its node gives out none.
    func testAStreamListenerListsNoObservedURI() throws {
        let host = network.addHost(nat: .portRestricted)
        let listener = network.makeStreamListener(host: host)
        let local = try uri("memory-stream://\(host.rawValue):2")
        XCTAssertEqual(listener.localURIs, [local])
        listener.learnObservedURI(try uri("memory-stream://1000001:49152"))
        XCTAssertEqual(listener.localURIs, [local])
    }

    // MARK: Hosts going down

    func testDownHostNeitherSendsNorReceivesUntilRevived() throws {
        let a = try addNode(), b = try addNode()
        let toB = try edge(from: a, to: b.uri)
        toB.send(ByteBuffer(string: "before"))
        scheduler.run(for: .seconds(1))
        let atB = try XCTUnwrap(b.recorder.accepted.first)

        // A packet in flight when the host goes down is lost too.
        toB.send(ByteBuffer(string: "in flight"))
        network.setDown(b.host, true)
        XCTAssertTrue(network.isDown(b.host))
        toB.send(ByteBuffer(string: "while down"))
        atB.send(ByteBuffer(string: "from the dead"))
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(network.drops.byName["host_down"], 3)
        XCTAssertEqual(b.recorder.payloads(from: a.uri), ["before"])
        XCTAssertTrue(a.recorder.received.isEmpty)
        XCTAssertFalse(atB.isClosed)

        network.setDown(b.host, false)
        toB.send(ByteBuffer(string: "after"))
        atB.send(ByteBuffer(string: "back"))
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(b.recorder.payloads(from: a.uri), ["before", "after"])
        XCTAssertEqual(a.recorder.payloads(from: b.uri), ["back"])
        XCTAssertEqual(network.packetsSent, network.packetsDelivered + network.drops.total)
    }

    // MARK: NAT behaviours

    /// An inside host behind `nat`, a server it talks to first, and an outsider on another host.
    private struct Site {
        let inside: Node
        let server: Node
        let serverOtherPort: Node
        let outsider: Node
    }

    private func makeSite(_ nat: NATBehaviour) throws -> Site {
        let inside = try addNode(nat)
        let server = try addNode()
        let serverOtherPort = try listen(on: server.host, port: 2)
        let outsider = try addNode()
        return Site(inside: inside, server: server, serverOtherPort: serverOtherPort, outsider: outsider)
    }

    /// Whether `payload` sent from `node` to `uri` reaches `site.inside`.
    private func getsIn(_ node: Node, to uri: TransportURI, _ site: Site, _ payload: String) throws -> Bool {
        try send(payload, from: node, to: uri)
        scheduler.run(for: .seconds(1))
        return site.inside.recorder.received.contains { $0.payload == payload && $0.from == node.uri }
    }

    func testOpenHostIsReachableAtItsOwnURI() throws {
        let site = try makeSite(.open)
        XCTAssertNil(network.natHost(of: site.inside.host))
        XCTAssertTrue(try getsIn(site.outsider, to: site.inside.uri, site, "unsolicited"))
        XCTAssertEqual(try publicURI(of: site.inside, seenBy: site.server), site.inside.uri)
    }

    func testFullConeLetsAnyoneInOnceTheMappingExists() throws {
        let site = try makeSite(.fullCone)
        let natHost = try XCTUnwrap(network.natHost(of: site.inside.host))
        XCTAssertGreaterThanOrEqual(natHost.rawValue, MemoryNetwork.firstNATHostID)
        XCTAssertFalse(try getsIn(site.outsider, to: site.inside.uri, site, "to private"))
        XCTAssertEqual(network.drops.byName["private_unreachable"], 1)

        let mapped = try publicURI(of: site.inside, seenBy: site.server)
        XCTAssertEqual(mapped.hostAndPort?.host, String(natHost.rawValue))
        XCTAssertNotEqual(mapped, site.inside.uri)
        XCTAssertTrue(try getsIn(site.outsider, to: mapped, site, "outsider"))
        XCTAssertTrue(try getsIn(site.serverOtherPort, to: mapped, site, "other port"))
        // One mapping per internal endpoint: the outsider sees the same public URI.
        XCTAssertEqual(try publicURI(of: site.inside, seenBy: site.outsider), mapped)
    }

    func testFullConeDropsEverythingBeforeTheHostSends() throws {
        let site = try makeSite(.fullCone)
        let natHost = try XCTUnwrap(network.natHost(of: site.inside.host))
        for port in [1, 40_000, 40_001] {
            XCTAssertFalse(try getsIn(site.outsider, to: try uri(natHost, port), site, "guess \(port)"))
        }
        XCTAssertEqual(network.drops.byName["nat_filtered"], 3)
    }

    func testRestrictedConeLetsInOnlyHostsItSentTo() throws {
        let site = try makeSite(.restricted)
        let mapped = try publicURI(of: site.inside, seenBy: site.server)
        XCTAssertEqual(mapped.hostAndPort?.host, network.natHost(of: site.inside.host).map { String($0.rawValue) })
        XCTAssertTrue(try getsIn(site.server, to: mapped, site, "server"))
        XCTAssertTrue(try getsIn(site.serverOtherPort, to: mapped, site, "server, other port"))
        XCTAssertFalse(try getsIn(site.outsider, to: mapped, site, "outsider before"))
        XCTAssertEqual(network.drops.byName["nat_filtered"], 1)

        XCTAssertEqual(try publicURI(of: site.inside, seenBy: site.outsider), mapped)
        XCTAssertTrue(try getsIn(site.outsider, to: mapped, site, "outsider after"))
    }

    func testPortRestrictedConeLetsInOnlyEndpointsItSentTo() throws {
        let site = try makeSite(.portRestricted)
        let mapped = try publicURI(of: site.inside, seenBy: site.server)
        XCTAssertTrue(try getsIn(site.server, to: mapped, site, "server"))
        XCTAssertFalse(try getsIn(site.serverOtherPort, to: mapped, site, "server, other port"))
        XCTAssertFalse(try getsIn(site.outsider, to: mapped, site, "outsider before"))
        XCTAssertEqual(network.drops.byName["nat_filtered"], 2)

        XCTAssertEqual(try publicURI(of: site.inside, seenBy: site.outsider), mapped)
        XCTAssertTrue(try getsIn(site.outsider, to: mapped, site, "outsider after"))
        XCTAssertFalse(try getsIn(site.serverOtherPort, to: mapped, site, "server, other port, still"))
    }

    func testRebindingForgetsEveryMappingAndFilterEntry() throws {
        let site = try makeSite(.portRestricted)
        let mapped = try publicURI(of: site.inside, seenBy: site.server)
        XCTAssertTrue(try getsIn(site.server, to: mapped, site, "server before"))
        network.rebindNAT(of: site.inside.host)
        // The server's packets to the old mapping are filtered until the inside host sends again.
        XCTAssertFalse(try getsIn(site.server, to: mapped, site, "server after the rebind"))
        let remapped = try publicURI(of: site.inside, seenBy: site.server)
        XCTAssertTrue(try getsIn(site.server, to: remapped, site, "server after the host sent again"))
    }

    func testSymmetricNATMapsEachRemoteToItsOwnPort() throws {
        let site = try makeSite(.symmetric)
        let towardServer = try publicURI(of: site.inside, seenBy: site.server)
        let towardOtherPort = try publicURI(of: site.inside, seenBy: site.serverOtherPort)
        let towardOutsider = try publicURI(of: site.inside, seenBy: site.outsider)
        XCTAssertEqual(Set([towardServer, towardOtherPort, towardOutsider]).count, 3)
        XCTAssertEqual(Set([towardServer, towardOutsider].map { $0.hostAndPort?.host }).count, 1)

        XCTAssertTrue(try getsIn(site.server, to: towardServer, site, "server"))
        XCTAssertFalse(try getsIn(site.outsider, to: towardServer, site, "outsider on server's port"))
        XCTAssertFalse(try getsIn(site.server, to: towardOutsider, site, "server on outsider's port"))
        XCTAssertTrue(try getsIn(site.outsider, to: towardOutsider, site, "outsider"))
        XCTAssertEqual(network.drops.byName["nat_filtered"], 2)
        // The same remote keeps its mapping.
        XCTAssertEqual(try publicURI(of: site.inside, seenBy: site.server), towardServer)
    }

    func testUDPBlockedHostSendsAndReceivesNothing() throws {
        let site = try makeSite(.udpBlocked)
        XCTAssertNil(network.natHost(of: site.inside.host))
        try send("out", from: site.inside, to: site.server.uri)
        XCTAssertFalse(try getsIn(site.outsider, to: site.inside.uri, site, "in"))
        XCTAssertTrue(site.server.recorder.received.isEmpty)
        XCTAssertEqual(network.drops.byName["udp_blocked"], 2)
        XCTAssertEqual(network.packetsDelivered, 0)
    }

    func testMappingExpiresWithoutOutboundTrafficAndRefreshesWithIt() throws {
        makeNetwork(natMappingTimeout: .seconds(30))
        let site = try makeSite(.restricted)
        let mapped = try publicURI(of: site.inside, seenBy: site.server)   // sent at 0 s
        scheduler.run(until: Timestamp.zero + .seconds(20))
        XCTAssertTrue(try getsIn(site.server, to: mapped, site, "at 20 s"))
        XCTAssertEqual(try publicURI(of: site.inside, seenBy: site.server), mapped)   // refreshed at 21 s
        scheduler.run(until: Timestamp.zero + .seconds(45))
        XCTAssertTrue(try getsIn(site.server, to: mapped, site, "at 45 s"))
        scheduler.run(until: Timestamp.zero + .seconds(60))
        XCTAssertFalse(try getsIn(site.server, to: mapped, site, "at 60 s"))
        XCTAssertEqual(network.drops.byName["nat_filtered"], 1)

        // Sending again makes a new mapping, seen as a new remote.
        let remapped = try publicURI(of: site.inside, seenBy: site.server)
        XCTAssertNotEqual(remapped, mapped)
        XCTAssertEqual(site.server.recorder.accepted.count, 2)
        XCTAssertFalse(try getsIn(site.server, to: mapped, site, "old mapping"))
        XCTAssertTrue(try getsIn(site.server, to: remapped, site, "new mapping"))
    }

    func testFilterEntryExpiresWhileTheMappingLives() throws {
        makeNetwork(natMappingTimeout: .seconds(30))
        let site = try makeSite(.portRestricted)
        let mapped = try publicURI(of: site.inside, seenBy: site.outsider)   // at 0 s
        scheduler.run(until: Timestamp.zero + .seconds(25))
        XCTAssertEqual(try publicURI(of: site.inside, seenBy: site.server), mapped)   // keeps the mapping alive
        scheduler.run(until: Timestamp.zero + .seconds(40))
        XCTAssertTrue(try getsIn(site.server, to: mapped, site, "server"))
        XCTAssertFalse(try getsIn(site.outsider, to: mapped, site, "outsider, expired"))
    }

    // MARK: Hole punching

    /// Two NATed hosts learn their public URIs from a server, then send to each other at the same instant,
    /// three rounds a second apart. Returns what each received from the other.
    private func punch(_ natA: NATBehaviour, _ natB: NATBehaviour)
        throws -> (aGot: [String], bGot: [String], a: Node, b: Node)
    {
        let a = try addNode(natA), b = try addNode(natB), server = try addNode()
        let publicA = try publicURI(of: a, seenBy: server)
        let publicB = try publicURI(of: b, seenBy: server)
        let toB = try edge(from: a, to: publicB)
        let toA = try edge(from: b, to: publicA)
        for round in 1...3 {
            toB.send(ByteBuffer(string: "a\(round)"))
            toA.send(ByteBuffer(string: "b\(round)"))
            scheduler.run(for: .seconds(1))
        }
        let fromServer = server.uri
        return (a.recorder.received.filter { $0.from != fromServer }.map(\.payload),
                b.recorder.received.filter { $0.from != fromServer }.map(\.payload), a, b)
    }

    func testSimultaneousPunchingBetweenPortRestrictedNATsSucceeds() throws {
        let result = try punch(.portRestricted, .portRestricted)
        XCTAssertEqual(result.aGot, ["b1", "b2", "b3"])
        XCTAssertEqual(result.bGot, ["a1", "a2", "a3"])
        // The packets came in on the edges each side made toward the other's public URI.
        XCTAssertTrue(result.a.recorder.accepted.isEmpty)
        XCTAssertTrue(result.b.recorder.accepted.isEmpty)
        XCTAssertEqual(network.drops.byName["nat_filtered"], 0)
    }

    func testSimultaneousPunchingBetweenFullConeAndRestrictedSucceeds() throws {
        let result = try punch(.fullCone, .restricted)
        XCTAssertEqual(result.aGot, ["b1", "b2", "b3"])
        XCTAssertEqual(result.bGot, ["a1", "a2", "a3"])
    }

    func testPunchingWhenOneSideStartsLateSucceedsOnRetry() throws {
        let a = try addNode(.portRestricted), b = try addNode(.portRestricted), server = try addNode()
        let publicA = try publicURI(of: a, seenBy: server)
        let publicB = try publicURI(of: b, seenBy: server)
        let toB = try edge(from: a, to: publicB)
        toB.send(ByteBuffer(string: "early"))
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(network.drops.byName["nat_filtered"], 1)
        let toA = try edge(from: b, to: publicA)
        toA.send(ByteBuffer(string: "late"))
        scheduler.run(for: .seconds(1))
        toB.send(ByteBuffer(string: "retry"))
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(a.recorder.payloads(from: publicB), ["late"])
        XCTAssertEqual(b.recorder.payloads(from: publicA), ["retry"])
    }

    func testPunchingBetweenSymmetricAndPortRestrictedFails() throws {
        let result = try punch(.symmetric, .portRestricted)
        XCTAssertEqual(result.aGot, [])
        XCTAssertEqual(result.bGot, [])
        XCTAssertEqual(network.drops.byName["nat_filtered"], 6)
    }

    func testPunchingBetweenSymmetricAndFullConeSucceedsFromANewPort() throws {
        let result = try punch(.symmetric, .fullCone)
        XCTAssertEqual(result.bGot, ["a1", "a2", "a3"])
        // The full cone sees the symmetric side at a port other than the one the server saw.
        XCTAssertEqual(result.b.recorder.accepted.count, 1)
    }

    /// A punch opens the sender's own NAT toward the remote, delivers nothing and counts as no packet, so the
    /// remote's first packet gets in although the sender never sent it a normal packet.
    func testAPunchOpensTheSendersNATAndIsNeverDelivered() throws {
        let a = try addNode(.portRestricted), b = try addNode(.portRestricted), server = try addNode()
        let publicA = try publicURI(of: a, seenBy: server)
        let publicB = try publicURI(of: b, seenBy: server)
        let toB = try XCTUnwrap(try edge(from: a, to: publicB) as? any HolePunchingEdge)
        let sent = network.packetsSent, dropped = network.drops.total
        toB.punch(ttl: 2)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(network.punchesSent, 1)
        XCTAssertEqual(network.packetsSent, sent, "a punch is not a packet")
        XCTAssertEqual(network.drops.total, dropped)
        XCTAssertTrue(b.recorder.received.isEmpty && b.recorder.accepted.isEmpty, "nothing reaches b")

        try send("first", from: b, to: publicA)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(a.recorder.payloads(from: publicB), ["first"], "a's NAT was punched toward b")
        XCTAssertEqual(network.drops.byName["nat_filtered"], 0)
    }

    func testAPunchWithTTLOneDiesInTheNATBeforeItIsMapped() throws {
        let a = try addNode(.portRestricted), b = try addNode(.portRestricted), server = try addNode()
        let publicA = try publicURI(of: a, seenBy: server)
        let publicB = try publicURI(of: b, seenBy: server)
        try XCTUnwrap(try edge(from: a, to: publicB) as? any HolePunchingEdge).punch(ttl: 1)
        try send("first", from: b, to: publicA)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(a.recorder.payloads(from: publicB), [])
        XCTAssertEqual(network.drops.byName["nat_filtered"], 1)
    }

    func testAClosedEdgeDoesNotPunch() throws {
        let a = try addNode(.portRestricted), server = try addNode()
        let toServer = try XCTUnwrap(try edge(from: a, to: server.uri) as? any HolePunchingEdge)
        toServer.close()
        toServer.punch(ttl: 2)
        XCTAssertEqual(network.punchesSent, 0)
    }

    // MARK: Accounting

    func testEveryPacketIsDeliveredOrCountedAsDropped() throws {
        makeNetwork(loss: 0.1)
        let a = try addNode(.portRestricted), b = try addNode(), c = try addNode(.symmetric)
        let toB = try edge(from: a, to: b.uri)
        while b.recorder.received.isEmpty {
            toB.send(ByteBuffer(string: "hello"))
            scheduler.run(for: .seconds(1))
        }
        let mapped = b.recorder.received[0].from
        for i in 0..<200 {
            try send("\(i)", from: b, to: mapped)
            try send("\(i)", from: c, to: mapped)
            try send("\(i)", from: b, to: a.uri)
        }
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(network.packetsSent, network.packetsDelivered + network.drops.total)
        XCTAssertEqual(Set(network.drops.byName.keys), Set(MemoryNetwork.DropReason.allCases.map(\.rawValue)))
        XCTAssertGreaterThan(network.drops.byName["loss"] ?? 0, 0)
        XCTAssertGreaterThan(network.drops.byName["nat_filtered"] ?? 0, 0)
        XCTAssertEqual(network.drops.byName["private_unreachable"], 200)
    }
}
