import NIOCore
import Transports
import WOWKit
import XCTest
@testable import WOWSimulator

/// Security across the overlay: what nodes on the way see of other nodes' traffic. Data between nodes that
/// are not directly connected crosses routers sealed end to end, and a relay forwards only sealed edge frames.
final class SecureOverlayTests: XCTestCase {
    private static let marker = "WOW-PLAINTEXT-MARKER-4242"

    private func contains(_ buffer: ByteBuffer, _ text: String) -> Bool {
        let haystack = Array(buffer.readableBytesView)
        let needle = Array(text.utf8)
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }

    /// Taps every node: what each forwards for others.
    private func tapForwarding(_ sim: OverlaySimulation) -> () -> [(at: Address, packet: RoutedPacket)] {
        var seen: [(Address, RoutedPacket)] = []
        for simulated in sim.liveNodes {
            let node = simulated.node
            node.onForward = { packet in seen.append((node.address, packet)) }
        }
        return { seen }
    }

    /// `nodes` public nodes joined one per 200 ms, and 30 s of quiet.
    private func formedOverlay(nodes: Int, seed: UInt64) throws -> OverlaySimulation {
        var options = SimulationOptions()
        options.nodes = nodes
        options.seed = seed
        let sim = try OverlaySimulation(options: options)
        for _ in 0..<nodes {
            try sim.addNode(nat: .open)
            sim.scheduler.run(for: .milliseconds(200))
        }
        sim.scheduler.run(for: .seconds(30))
        return sim
    }

    /// Two live nodes that are not directly connected.
    private func unconnectedPair(in sim: OverlaySimulation) throws
        -> (OverlaySimulation.SimulatedNode, OverlaySimulation.SimulatedNode) {
        let live = sim.liveNodes
        return try XCTUnwrap(live.lazy.flatMap { a in live.lazy.map { (a, $0) } }
            .first { $0.0 !== $0.1 && !$0.0.node.table.contains($0.1.node.address) })
    }

    func testRoutersSeeOnlyCiphertextOfDataBetweenNodesNotDirectlyConnected() throws {
        let sim = try formedOverlay(nodes: 24, seed: 5)
        XCTAssertEqual(sim.ringViolations(), 0)
        // A pair that is not directly connected, so their data crosses at least one router.
        let (source, destination) = try unconnectedPair(in: sim)
        var delivered: [ByteBuffer] = []
        destination.node.onDeliver = { header, payload in
            if header.source == source.node.address { delivered.append(payload) }
        }
        let forwarded = tapForwarding(sim)

        for index in 0..<5 {
            source.node.send(data: ByteBuffer(string: "\(Self.marker) #\(index)"), to: destination.node.address)
        }
        sim.scheduler.run(for: .seconds(5))

        XCTAssertEqual(delivered.map { String(buffer: $0) }, (0..<5).map { "\(Self.marker) #\($0)" })
        let between = forwarded().filter {
            Set([$0.packet.header.source, $0.packet.header.destination]) == Set([source.node.address, destination.node.address])
        }
        XCTAssertFalse(between.isEmpty, "no router forwarded anything between the pair")
        for (router, packet) in between {
            // The pair's Connect-To-Me (structured.shortcut links them as they talk) is routing control that
            // routers must read; everything else between them is sealed end to end.
            if [.connectToMe, .connectToMeReply].contains(packet.header.payloadType) { continue }
            XCTAssertEqual(packet.header.payloadType, .secure, "router \(router.short) saw a \(packet.header.payloadType) packet")
            XCTAssertFalse(contains(packet.payload, Self.marker), "router \(router.short) saw the plaintext")
        }
        XCTAssertTrue(between.contains { $0.packet.payload.readableBytes > Self.marker.utf8.count },
                      "the data itself crossed a router (not only the handshake)")
    }

    func testARelayForwardsOnlyCiphertext() throws {
        var options = SimulationOptions()
        options.nodes = 2
        options.seed = 7
        let sim = try OverlaySimulation(options: options)
        func near(_ byte: UInt8) -> Address { Address(bytes: [byte] + [UInt8](repeating: 0, count: 19))! }
        for byte: UInt8 in [0x10, 0x50, 0x90, 0xD0] {
            try sim.addNode(nat: .open, address: near(byte))
            sim.scheduler.run(for: .milliseconds(300))
        }
        let symmetric = try sim.addNode(nat: .symmetric, address: near(0x70))
        sim.scheduler.run(for: .milliseconds(300))
        let restricted = try sim.addNode(nat: .portRestricted, address: near(0x70))
        sim.scheduler.run(until: sim.scheduler.now + .seconds(30)) {
            symmetric.node.table.connection(to: restricted.node.address)?.transport != RelayTransport.scheme
        }
        XCTAssertEqual(symmetric.node.table.connection(to: restricted.node.address)?.transport, RelayTransport.scheme)
        var delivered: [String] = []
        restricted.node.onDeliver = { _, payload in delivered.append(String(buffer: payload)) }
        let forwarded = tapForwarding(sim)

        for index in 0..<5 {
            symmetric.node.send(data: ByteBuffer(string: "\(Self.marker) #\(index)"), to: restricted.node.address)
        }
        sim.scheduler.run(for: .seconds(3))

        XCTAssertEqual(delivered, (0..<5).map { "\(Self.marker) #\($0)" })
        let tunnelled = forwarded().filter {
            $0.packet.header.payloadType == .tunnel && $0.packet.header.source == symmetric.node.address
        }
        XCTAssertGreaterThanOrEqual(tunnelled.count, 5, "the data did not cross a forwarder")
        for (forwarder, packet) in tunnelled {
            XCTAssertFalse(contains(packet.payload, Self.marker), "forwarder \(forwarder.short) saw the plaintext")
            let frame = try TunnelFrame.decode(packet.payload).frame
            XCTAssertTrue(SecureFrame.isSecureFrame(frame), "forwarder \(forwarder.short) saw an unsealed frame")
        }
    }

    func testASecuredOverlayStaysConsistentAndDeliversEverything() throws {
        var options = SimulationOptions()
        options.nodes = 60
        options.seed = 11
        options.messages = 200
        let report = try OverlaySimulation(options: options).run()
        let check = try XCTUnwrap(report.checks.first)
        XCTAssertTrue(check.ring_consistent, "\(check.ring_violations) nodes lack a true neighbour")
        XCTAssertEqual(check.delivery_ratio, 1)
    }

    /// Data for a node that is not a direct peer waits in its end-to-end channel for the handshake. When the init
    /// (or its response) is lost, nothing else repeats it: the retransmit timer does (1, 2, 4, 8 s, ...).
    func testAnEndToEndInitLostOnTheWayIsSentAgain() throws {
        let sim = try formedOverlay(nodes: 16, seed: 9)
        let (source, destination) = try unconnectedPair(in: sim)
        var delivered: [(String, Timestamp)] = []
        destination.node.onDeliver = { header, payload in
            if header.source == source.node.address { delivered.append((String(buffer: payload), sim.scheduler.now)) }
        }
        // Everything the source sends for 1.5 s is lost: the init and its first retransmit (after 1 s).
        let sentAt = sim.scheduler.now
        sim.network.onPath = { packet, from, _ in
            from == source.host && sim.scheduler.now - sentAt < .milliseconds(1_500) ? [] : [packet]
        }
        source.node.send(data: ByteBuffer(string: "one"), to: destination.node.address)
        sim.scheduler.run(for: .seconds(2))
        XCTAssertTrue(delivered.isEmpty, "lost on the way: \(delivered)")
        // The second retransmit (3 s after the first init) gets through, before a third (7 s) would go.
        sim.scheduler.run(for: .seconds(3))
        XCTAssertEqual(delivered.map(\.0), ["one"])
        let after = try XCTUnwrap(delivered.first?.1) - sentAt
        XCTAssertGreaterThanOrEqual(after, .seconds(3))
        XCTAssertLessThan(after, .seconds(5), "over the ring, as the retransmit at 3 s crossed it")
    }
}
