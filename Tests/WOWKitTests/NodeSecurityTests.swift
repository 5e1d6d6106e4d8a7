import Logging
import NIOCore
import Plugins
import Transports
import WOWKit
import WOWSimulator
import XCTest

/// Edge security in the node: only members of the network link, each at the address its certificate
/// entitles, and a member whose certificate is revoked or expires is disconnected.
final class NodeSecurityTests: XCTestCase {
    private static let epoch = TestNetwork.unixTime
    private let scheduler = SimulationScheduler()
    private lazy var network = MemoryNetwork(scheduler: scheduler, seed: 3)
    private lazy var builder = SimulatedNodeBuilder(scheduler: scheduler, epoch: Self.epoch)
    private let recorder = LogRecorder()
    private let members = TestNetwork()
    private var seed: UInt64 = 0

    private func credentials(_ name: String, of network: TestNetwork? = nil, virtualIPs: [VirtualIP] = [],
                             notAfter: Int64 = epoch + 86_400) throws -> NodeCredentials {
        // A certificate of another network is still checked against our authority by the peer; the node
        // itself holds its own network's authority.
        try (network ?? members).member(name, virtualIPs: virtualIPs, notAfter: notAfter)
    }

    private func secured(_ credentials: NodeCredentials) -> NodeConfig.Security {
        .secured(SimulatedNodeBuilder.secured(credentials))
    }

    /// A node on a fresh memory host running leaf and structured.near, bootstrapping through `bootstrap`.
    private func makeNode(_ name: String, _ security: NodeConfig.Security, bootstrap: [TransportURI] = [],
                          address: Address? = nil) throws -> Node {
        let host = network.addHost()
        var config = NodeConfig(name: name, address: address, transports: [.init(name: MemoryTransport.scheme)],
                                overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)],
                                bootstrap: bootstrap)
        config.security = security
        let recorder = self.recorder
        let logger = Logger(label: name) { RecordingLogHandler(label: $0, recorder: recorder) }
        seed += 1
        let node = builder.makeNode(config: config, transports: .memory(network, host: host),
                                    random: SeededRandom(seed: seed), logger: logger)
        try node.start()
        return node
    }

    private func founder() throws -> Node {
        try makeNode("founder", secured(try credentials("founder")))
    }

    func testMembersLinkAndExchangeData() throws {
        let founder = try founder()
        let member = try makeNode("member", secured(try credentials("member")), bootstrap: founder.info.uris)
        var received: [ByteBuffer] = []
        founder.onDeliver = { _, payload in received.append(payload) }
        scheduler.run(for: .seconds(5))

        XCTAssertNotNil(founder.table.connection(to: member.address))
        XCTAssertNotNil(member.table.connection(to: founder.address))
        member.send(data: ByteBuffer(string: "hello"), to: founder.address)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(received, [ByteBuffer(string: "hello")])
        XCTAssertEqual(founder.stats.drops.byName, [:], "nothing refused or dropped")
        XCTAssertEqual(member.stats.drops.byName, [:])
    }

    /// A second edge to `node` from a fresh host, speaking through a secure channel with `credentials` (the
    /// test plays the member): the way a peer's packets reach a node on an edge its connection is not on.
    private final class SecondEdge: EdgeListenerDelegate, EdgeDelegate {
        let end: ChannelEnd
        var edge: (any Edge)?
        var received: [EdgeMessage] = []

        init(to node: Node, as credentials: NodeCredentials, network: MemoryNetwork, scheduler: SimulationScheduler) throws {
            end = ChannelEnd(credentials, seed: 77)
            let listener = network.makeListener(host: network.addHost())
            try listener.start(delegate: self)
            listener.createEdge(to: node.info.uris[0]) { [self] result in
                edge = try? result.get()
                edge?.delegate = self
            }
            scheduler.run(for: .milliseconds(1))
            end.now = scheduler.now
        }

        /// Every frame the test end sent, in order.
        var sent: [ByteBuffer] = []

        func send(_ message: EdgeMessage) {
            for frame in end.send(Array(message.encoded().readableBytesView)).frames { transmit(frame) }
        }

        func transmit(_ frame: ByteBuffer) {
            sent.append(frame)
            edge?.send(frame)
        }

        func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {}
        func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
            for output in end.receive(packet) {
                switch output {
                case .transmit(let frame): transmit(frame)
                case .deliver(let plaintext): if let message = try? EdgeMessage.decode(plaintext) { received.append(message) }
                default: break
                }
            }
        }
        func edgeDidClose(_ edge: any Edge) {}
    }

    /// Data from `source` to `destination`, as a routed packet that crossed one hop.
    private func routedData(_ text: String, from source: Address, to destination: Address) -> EdgeMessage {
        let header = RoutedHeader(hops: 1, mode: .exact, payloadType: .data, source: source, destination: destination)
        return .routed(RoutedPacket(header: header, payload: ByteBuffer(string: text)))
    }

    /// Crossing link requests can leave the two ends briefly disagreeing on which edge carries their
    /// connection. A routed packet on an edge whose secure session authenticates a peer connected on another
    /// edge is routed as that peer's, not lost. So is one from a member the node holds no connection with (it
    /// restarted, say, and the member still holds a connection to its former self): the certificate entitles
    /// it to its address, the ring would carry its packets anyway, and it is told to link again; but its
    /// plaintext claiming another source is not taken.
    func testRoutedPacketsOfAuthenticatedMembersAreTakenOnAnyEdgeAndTheirClaimsChecked() throws {
        let founder = try founder()
        let memberCredentials = try credentials("member")
        let member = try makeNode("member", secured(memberCredentials), bootstrap: founder.info.uris)
        var received: [String] = []
        var fromOthers: [String] = []
        founder.onDeliver = { header, payload in
            if header.source == member.address { received.append(String(buffer: payload)) } else { fromOthers.append(String(buffer: payload)) }
        }
        scheduler.run(for: .seconds(5))
        let connection = try XCTUnwrap(founder.table.connection(to: member.address))

        // The member, on an edge of its own that carries no connection.
        let second = try SecondEdge(to: founder, as: memberCredentials, network: network, scheduler: scheduler)
        second.send(routedData("on another edge", from: member.address, to: founder.address))
        scheduler.run(for: .milliseconds(500))
        XCTAssertEqual(received, ["on another edge"])
        XCTAssertNil(founder.stats.drops.byName["not_linked"], "\(founder.stats.drops.byName)")
        XCTAssertEqual(founder.table.connection(to: member.address)?.edgeID, connection.edgeID,
                       "a routed packet does not move the connection")
        // The member is told to link again there (it would, to move its end to where it sends).
        XCTAssertTrue(second.received.contains { if case .close(let close) = $0 { return close.reason == .notLinked }; return false },
                      "\(second.received)")

        // A member the founder holds no connection with: its own packet is taken and it is told to link; its
        // plaintext claiming the member's address is not (the last hop is not the source).
        let strangerCredentials = try credentials("stranger")
        let stranger = try SecondEdge(to: founder, as: strangerCredentials, network: network, scheduler: scheduler)
        stranger.send(routedData("from an unconnected member", from: strangerCredentials.address, to: founder.address))
        stranger.send(routedData("posing as the member", from: member.address, to: founder.address))
        scheduler.run(for: .milliseconds(500))
        XCTAssertEqual(received, ["on another edge"])
        XCTAssertEqual(fromOthers, ["from an unconnected member"])
        XCTAssertEqual(founder.stats.drops.byName["unauthenticated_data"], 1, "\(founder.stats.drops.byName)")
        XCTAssertNil(founder.stats.drops.byName["not_linked"], "\(founder.stats.drops.byName)")
        XCTAssertTrue(stranger.received.contains { if case .close(let close) = $0 { return close.reason == .notLinked }; return false },
                      "\(stranger.received)")
        XCTAssertNil(founder.table.connection(to: strangerCredentials.address))
        // Anything else from it is still refused as traffic without a connection.
        stranger.send(.ping(nonce: 1))
        scheduler.run(for: .milliseconds(100))
        XCTAssertEqual(founder.stats.drops.byName["not_linked"], 1, "\(founder.stats.drops.byName)")
    }

    /// A link request in the init (the peer's static key known from its NodeInfo) links in one round trip; the
    /// same init replayed from another host delivers nothing: no new connection, none moved.
    func testALinkRequestInTheInitLinksInOneRoundTripAndItsReplayMovesNothing() throws {
        let founder = try founder()
        let key = try XCTUnwrap(founder.info.handshakeKey, "a secured node advertises its static key")
        let memberCredentials = try credentials("member")
        let member = memberCredentials.certificate.entitledAddress
        let first = try SecondEdge(to: founder, as: memberCredentials, network: network, scheduler: scheduler)
        first.end.staticKey = try StaticHandshakeKey(privateKeyBytes: [UInt8](repeating: 7, count: 32),
                                                     clock: { UInt64(Self.epoch) * 1_000_000 })
        first.end.channel.peerStaticKey = key
        let edgeURI = try XCTUnwrap(first.edge?.localURI)
        first.send(.linkRequest(LinkRequest(token: 42, type: "structured.near",
                                            requester: NodeInfo(address: member, uris: [edgeURI]),
                                            target: founder.address, observedURI: founder.info.uris[0])))
        scheduler.run(for: .seconds(2))
        let reply = first.received.first { if case .linkReply = $0 { return true }; return false }
        XCTAssertNotNil(reply, "\(first.received)")
        XCTAssertEqual(first.sent.count, 1, "the init was all the member sent before the reply: one round trip")
        let connection = try XCTUnwrap(founder.table.connection(to: member))
        XCTAssertNil(founder.stats.drops.byName["first_messages_not_taken"])

        // The captured init, replayed from another host: the admission's replay check drops it (an init older
        // than the last 4,096 would pass it and be answered as a handshake that never completes, its first
        // messages not taken: `FirstMessagesTests`). Either way nothing is taken from it.
        final class Silent: EdgeListenerDelegate, EdgeDelegate {
            var edge: (any Edge)?
            func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {}
            func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {}
            func edgeDidClose(_ edge: any Edge) {}
        }
        let replayer = Silent()
        let listener = network.makeListener(host: network.addHost())
        try listener.start(delegate: replayer)
        listener.createEdge(to: founder.info.uris[0]) { result in
            replayer.edge = try? result.get()
            replayer.edge?.delegate = replayer
        }
        scheduler.run(for: .milliseconds(1))
        replayer.edge?.send(first.sent[0])
        scheduler.run(for: .seconds(2))
        let drops = founder.stats.drops.byName
        XCTAssertEqual((drops["not_admitted"] ?? 0) + (drops["first_messages_not_taken"] ?? 0), 1, "\(drops)")
        XCTAssertEqual(founder.table.connection(to: member)?.edgeID, connection.edgeID, "the connection did not move")
        XCTAssertEqual(founder.table.count, 1, "and no other was made")
        // The member's own edge still carries it.
        first.send(.ping(nonce: 9))
        scheduler.run(for: .seconds(1))
        XCTAssertTrue(first.received.contains { if case .pong = $0 { return true }; return false }, "\(first.received)")
    }

    /// Runs a founder and a joiner with `security` for 20 s and checks that they never connect, that the
    /// founder counted `reason` and logged a warning containing `logged`.
    private func assertRefused(_ security: NodeConfig.Security, address: Address? = nil, reason: String,
                               logged: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let founder = try founder()
        let joiner = try makeNode("joiner", security, bootstrap: founder.info.uris, address: address)
        scheduler.run(for: .seconds(20))
        XCTAssertTrue(founder.table.isEmpty, "founder connected to \(founder.table.connections)", file: file, line: line)
        XCTAssertTrue(joiner.table.isEmpty, "joiner connected to \(joiner.table.connections)", file: file, line: line)
        XCTAssertGreaterThan(founder.stats.drops.byName[reason] ?? 0, 0, "drops: \(founder.stats.drops.byName)", file: file, line: line)
        let warnings = recorder.lines(of: "founder")
        XCTAssertTrue(warnings.contains { $0.contains(logged) }, "founder logged: \(warnings)", file: file, line: line)
    }

    func testNodeWithoutCertificateCannotLink() throws {
        try assertRefused(.insecure, reason: "no_certificate", logged: "runs without security")
        // The refused node hears why, too.
        XCTAssertTrue(recorder.lines(of: "joiner").contains { $0.contains("admits only members with a certificate") },
                      "\(recorder.lines(of: "joiner"))")
    }

    func testNodeWithExpiredCertificateCannotLink() throws {
        try assertRefused(secured(try credentials("joiner", notAfter: Self.epoch - 10)),
                          reason: "certificate_expired", logged: "the certificate of 'joiner' expired at 2025-06-15T")
        XCTAssertTrue(recorder.lines(of: "joiner").contains { $0.contains("the peer refused us") && $0.contains("expired") })
    }

    func testNodeFromAnotherNetworkCannotLink() throws {
        try assertRefused(secured(try credentials("joiner", of: TestNetwork(id: 9))), reason: "wrong_network",
                          logged: "holds a certificate of network 09090909090909090909090909090909, not of this network")
    }

    func testCertificateSignedByAnotherAuthorityOfTheSameNetworkCannotLink() throws {
        // Same network id, another key: a forged authority.
        try assertRefused(secured(try credentials("joiner", of: TestNetwork(id: 1, keySeed: 3))),
                          reason: "bad_certificate_signature",
                          logged: "is not signed by this network's authority")
    }

    func testNodeClaimingAnAddressNotItsOwnCannotLink() throws {
        let wrong = Address.hashing("somewhere else")
        try assertRefused(secured(try credentials("joiner")), address: wrong, reason: "address_not_entitled",
                          logged: "'joiner' claims ring address \(wrong.short)")
    }

    func testNodeClaimingAVirtualIPNotItsOwnCannotLink() throws {
        // The certificate gives 100.64.0.7; the node sits where 100.64.0.9 belongs.
        let credentials = try credentials("joiner", virtualIPs: [VirtualIP("100.64.0.7")!])
        let claimed = Address.forVirtualIP(VirtualIP("100.64.0.9")!, network: members.id)
        try assertRefused(secured(credentials), address: claimed, reason: "address_not_entitled",
                          logged: "but its certificate entitles it to \(credentials.address.short) only")
    }

    func testRevokedPeerIsDisconnectedAndCannotComeBack() throws {
        let founder = try founder()
        let memberCredentials = try credentials("member")
        let member = try makeNode("member", secured(memberCredentials), bootstrap: founder.info.uris)
        scheduler.run(for: .seconds(5))
        XCTAssertNotNil(founder.table.connection(to: member.address))

        founder.updateRevocations([memberCredentials.certificate.fingerprint])
        scheduler.run(for: .seconds(2))
        XCTAssertNil(founder.table.connection(to: member.address))
        XCTAssertNil(member.table.connection(to: founder.address), "the member was told and dropped it too")
        XCTAssertTrue(recorder.lines(of: "founder").contains { $0.contains("the certificate of 'member' is revoked") })
        scheduler.run(for: .seconds(60))
        XCTAssertTrue(founder.table.isEmpty, "the revoked member linked again: \(founder.table.connections)")
        XCTAssertGreaterThan(founder.stats.drops.byName["certificate_revoked"] ?? 0, 1, "its new handshakes were refused")
    }

    func testPeerWhoseCertificateExpiresIsDisconnected() throws {
        let founder = try founder()
        let member = try makeNode("member", secured(try credentials("member", notAfter: Self.epoch + 60)),
                                  bootstrap: founder.info.uris)
        scheduler.run(for: .seconds(5))
        XCTAssertNotNil(founder.table.connection(to: member.address))
        // Valid 60 s from time zero; peers check every 10 s.
        scheduler.run(for: .seconds(70))
        XCTAssertTrue(founder.table.isEmpty, "\(founder.table.connections)")
        XCTAssertTrue(member.table.isEmpty, "\(member.table.connections)")
        XCTAssertTrue(recorder.lines(of: "founder").contains { $0.contains("the certificate of 'member' expired") })
        XCTAssertTrue(recorder.lines(of: "member", atLeast: .error).contains { $0.contains("own certificate is not valid") })
    }

    func testSessionsRekeyWithoutLosingTheConnection() throws {
        let founder = try founder()
        let member = try makeNode("member", secured(try credentials("member")), bootstrap: founder.info.uris)
        var received = 0
        founder.onDeliver = { _, _ in received += 1 }
        // Ten minutes: five rekeys at 120 s, while data flows every second and pings keep the edge.
        for _ in 0..<600 {
            member.send(data: ByteBuffer(string: "tick"), to: founder.address)
            scheduler.run(for: .seconds(1))
        }
        XCTAssertNotNil(founder.table.connection(to: member.address))
        XCTAssertGreaterThanOrEqual(received, 595, "ticks lost across rekeys")
        XCTAssertNil(founder.stats.drops.byName["session_expired"])
    }
}

/// An on-path attacker between two linked members: whatever it does to their frames, nothing it changed,
/// replayed or held back too long is delivered, and each drop is counted by reason.
final class TamperedTrafficTests: XCTestCase {
    private static let epoch = TestNetwork.unixTime

    private func linkedPair() throws -> (SimulationScheduler, MemoryNetwork, Node, Node, MemoryHostID) {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 4, roundTrip: .milliseconds(10) ... .milliseconds(10))
        let members = TestNetwork()
        var nodes: [Node] = []
        var hosts: [MemoryHostID] = []
        let builder = SimulatedNodeBuilder(scheduler: scheduler, epoch: Self.epoch)
        for name in ["a", "b"] {
            let host = network.addHost()
            hosts.append(host)
            var config = NodeConfig(name: name, transports: [.init(name: MemoryTransport.scheme)],
                                    overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)],
                                    bootstrap: nodes.first?.info.uris ?? [])
            config.security = .secured(SimulatedNodeBuilder.secured(try members.member(name)))
            let node = builder.makeNode(config: config, transports: .memory(network, host: host),
                                        random: SeededRandom(seed: UInt64(nodes.count + 1)))
            try node.start()
            nodes.append(node)
            scheduler.run(for: .seconds(1))
        }
        scheduler.run(for: .seconds(3))
        XCTAssertNotNil(nodes[1].table.connection(to: nodes[0].address))
        return (scheduler, network, nodes[0], nodes[1], hosts[0])
    }

    private func isSealed(_ packet: ByteBuffer) -> Bool {
        packet.getInteger(at: packet.readerIndex + 1, as: UInt8.self) == SecureFrame.sealedKind
    }

    /// B sends `count` numbered messages to A while `attack` rewrites B's sealed frames; returns the numbers A
    /// received.
    private func run(count: Int, attack: @escaping (ByteBuffer) -> [ByteBuffer]) throws -> (received: [Int], drops: [String: Int]) {
        let (scheduler, network, a, b, hostA) = try linkedPair()
        var received: [Int] = []
        a.onDeliver = { _, payload in
            if let number = payload.getInteger(at: payload.readerIndex, as: UInt32.self) { received.append(Int(number)) }
        }
        let before = a.stats.drops.byName
        network.onPath = { [unowned self] packet, _, to in
            to == hostA && self.isSealed(packet) ? attack(packet) : [packet]
        }
        for number in 0..<count {
            var payload = ByteBuffer()
            payload.writeInteger(UInt32(number))
            b.send(data: payload, to: a.address)
        }
        // Under half the failover window: B hears nothing back from A, and its path watch would probe A, whose
        // probes the attack would change (and count) as well.
        scheduler.run(for: .milliseconds(400))
        network.onPath = nil
        let drops = a.stats.drops.byName.merging(before) { $0 - $1 }.filter { $0.value > 0 }
        return (received, drops)
    }

    func testReplayedFramesAreDroppedAndCounted() throws {
        let (received, drops) = try run(count: 20) { [$0, $0, $0] }
        XCTAssertEqual(received, Array(0..<20), "each message once, in order")
        XCTAssertEqual(drops["replayed"], 40)
    }

    func testBitFlippedFramesAreDroppedAndCounted() throws {
        var random = SeededRandom(seed: 9)
        let (received, drops) = try run(count: 50) { packet in
            var flipped = packet
            let offset = Int(random.next() % UInt64(packet.readableBytes))
            let byte = flipped.getInteger(at: flipped.readerIndex + offset, as: UInt8.self)!
            flipped.setInteger(byte ^ UInt8(1 << (random.next() % 8)), at: flipped.readerIndex + offset)
            return [flipped]
        }
        XCTAssertEqual(received, [], "a changed frame was delivered")
        XCTAssertEqual(drops.values.reduce(0, +), 50, "\(drops)")
        XCTAssertGreaterThan(drops["bad_tag"] ?? 0, 30, "\(drops)")
    }

    func testTruncatedFramesAreDroppedAndCounted() throws {
        var cut = 0
        let (received, drops) = try run(count: 40) { packet in
            cut += 1
            return [packet.getSlice(at: packet.readerIndex, length: (cut * 7) % packet.readableBytes)!]
        }
        XCTAssertEqual(received, [])
        XCTAssertEqual(drops.values.reduce(0, +), 40, "\(drops)")
    }

    func testAFrameHeldBackBeyondTheReplayWindowIsDroppedAndCounted() throws {
        var held: ByteBuffer?
        var seen = 0
        let (received, drops) = try run(count: 2100) { packet in
            seen += 1
            if seen == 1 { held = packet; return [] }
            if seen == 2100, let first = held { return [packet, first] }
            return [packet]
        }
        XCTAssertEqual(received, Array(1..<2100), "the held frame arrived after 2,099 newer ones")
        XCTAssertEqual(drops["outside_replay_window"], 1, "\(drops)")
    }

    func testAFrameReorderedWithinTheWindowIsDelivered() throws {
        var held: ByteBuffer?
        var seen = 0
        let (received, drops) = try run(count: 100) { packet in
            seen += 1
            if seen == 1 { held = packet; return [] }
            if seen == 100, let first = held { return [packet, first] }
            return [packet]
        }
        XCTAssertEqual(received, Array(1..<100) + [0])
        XCTAssertEqual(drops, [:])
    }
}
