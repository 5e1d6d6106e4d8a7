import NIOCore
import WOWKit
import XCTest

@testable import WOWCommand

/// Real nodes over real sockets on loopback (127.0.0.1, ephemeral ports), all in this process.
final class LoopbackOverlayTests: XCTestCase {
    /// Fast liveness so failures are detected within seconds.
    var quickLiveness: NodeConfig.Liveness {
        var liveness = NodeConfig.Liveness()
        liveness.pingInterval = .seconds(1)
        liveness.deadAfter = .seconds(3)
        return liveness
    }

    /// Starts `count` nodes through node 0 and waits for a consistent ring. Liveness is the default unless a
    /// test needs failures found fast: 20 secured nodes share one event loop, and a debug build on a loaded
    /// machine can keep a peer silent for more than the quick 3 s (connections then die and are made again).
    func formRing(_ overlay: LocalOverlay, count: Int, liveness: NodeConfig.Liveness = .init(),
                  transports: (Int) -> [(scheme: String, settings: String)],
                  file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        try overlay.addNode(name: "n0", transports: transports(0), bootstrap: [], liveness: liveness)
        let bootstrap = try overlay.uris(0).filter { $0.text.contains("127.0.0.1") }
        XCTAssertFalse(bootstrap.isEmpty, "node 0 advertises no loopback URI", file: file, line: line)
        for i in 1..<count {
            try overlay.addNode(name: "n\(i)", transports: transports(i), bootstrap: bootstrap, liveness: liveness)
        }
        guard let seconds = try overlay.waitForConsistentRing(timeout: 60) else {
            // What each node holds, to tell a slow ring from a stuck one.
            let report = try overlay.inspect { nodes, _ in
                nodes.map { node in
                    "\(node.config.name) \(node.address.short): \(node.table.count) connections, "
                        + "attempts \(node.stats.linkAttempts) failed \(node.stats.linkFailures), "
                        + "drops \(node.stats.drops.byName.sorted { $0.key < $1.key })"
                }.joined(separator: "\n")
            }
            XCTFail("the ring never became consistent (\(try overlay.ringViolations()) nodes lack a neighbour):\n\(report)",
                    file: file, line: line)
            throw XCTSkip("failed above")
        }
        print("\(count) nodes formed a consistent ring in \(String(format: "%.2f", seconds)) s")
        return seconds
    }

    func testTwentyNodesFormARingOverUDP() throws {
        let overlay = try LocalOverlay()
        defer { overlay.shutdown() }
        _ = try formRing(overlay, count: 20) { _ in [("udp", "listen: 127.0.0.1:0")] }
        let transports = try overlay.inspect { nodes, _ in Set(nodes.flatMap { $0.table.connections.map(\.transport) }) }
        XCTAssertEqual(transports, ["udp"])
    }

    func testTwentyNodesFormARingOverTCP() throws {
        let overlay = try LocalOverlay()
        defer { overlay.shutdown() }
        _ = try formRing(overlay, count: 20) { _ in [("tcp", "listen: 127.0.0.1:0")] }
        let transports = try overlay.inspect { nodes, _ in Set(nodes.flatMap { $0.table.connections.map(\.transport) }) }
        XCTAssertEqual(transports, ["tcp"])
    }

    func testRingSurvivesLosingItsBootstrapAndANewNodeJoinsThroughAnyMember() throws {
        let overlay = try LocalOverlay()
        defer { overlay.shutdown() }
        _ = try formRing(overlay, count: 12, liveness: quickLiveness) { _ in [("udp", "listen: 127.0.0.1:0")] }
        let dead = try overlay.status(0).address
        try overlay.kill(0)
        // The dead bootstrap is detected (silent for 3 s) and dropped everywhere; the ring stays consistent.
        let deadline = Date().addingTimeInterval(20)
        var holders = Int.max
        while holders > 0 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            holders = try overlay.inspect { nodes, live in
                nodes.indices.filter { live[$0] && nodes[$0].table.connections.contains { $0.address.hex == dead } }.count
            }
        }
        XCTAssertEqual(holders, 0, "live nodes still hold the dead bootstrap")
        XCTAssertNotNil(try overlay.waitForConsistentRing(timeout: 30), "the ring did not repair after the bootstrap node died")
        let member = try overlay.uris(5).filter { $0.text.contains("127.0.0.1") }
        try overlay.addNode(name: "late", transports: [("udp", "listen: 127.0.0.1:0")], bootstrap: member, liveness: quickLiveness)
        XCTAssertNotNil(try overlay.waitForConsistentRing(timeout: 30), "a node could not join through another member")
        let late = try overlay.status(12)
        XCTAssertTrue(late.ring_member)
        XCTAssertFalse(late.connections.contains { $0.peer == (try? overlay.status(0).address) })
    }
}

extension LoopbackOverlayTests {
    func testTwentyNodesFormARingOverTLS() throws {
        let overlay = try LocalOverlay()
        defer { overlay.shutdown() }
        _ = try formRing(overlay, count: 20) { _ in [("tls", "listen: 127.0.0.1:0")] }
        let transports = try overlay.inspect { nodes, _ in Set(nodes.flatMap { $0.table.connections.map(\.transport) }) }
        XCTAssertEqual(transports, ["tls"])
    }

    /// A mix: some nodes speak udp, some tcp, some tls, some all three; the ones with several transports
    /// bridge the others. The bootstrap speaks all three.
    func testTwentyNodesFormARingOverAMixOfTransports() throws {
        let overlay = try LocalOverlay()
        defer { overlay.shutdown() }
        let all: [(scheme: String, settings: String)] = [("udp", "listen: 127.0.0.1:0"), ("tcp", "listen: 127.0.0.1:0"), ("tls", "listen: 127.0.0.1:0")]
        _ = try formRing(overlay, count: 20) { i in
            switch i % 4 {
            case 0: return all
            case 1: return [("udp", "listen: 127.0.0.1:0"), ("tcp", "listen: 127.0.0.1:0")]
            case 2: return [("tcp", "listen: 127.0.0.1:0"), ("tls", "listen: 127.0.0.1:0")]
            default: return [("udp", "listen: 127.0.0.1:0"), ("tls", "listen: 127.0.0.1:0")]
            }
        }
        let transports = try overlay.inspect { nodes, _ in Set(nodes.flatMap { $0.table.connections.map(\.transport) }) }
        XCTAssertTrue(transports.isSubset(of: ["udp", "tcp", "tls"]))
        XCTAssertGreaterThan(transports.count, 1)
    }

    /// A node that can speak only tls (a site whose firewall lets only HTTPS out) joins a mixed overlay.
    func testATLSOnlyNodeJoinsAMixedOverlay() throws {
        let overlay = try LocalOverlay()
        defer { overlay.shutdown() }
        _ = try formRing(overlay, count: 8) { i in
            i == 0 ? [("udp", "listen: 127.0.0.1:0"), ("tcp", "listen: 127.0.0.1:0"), ("tls", "listen: 127.0.0.1:0")]
                : [("udp", "listen: 127.0.0.1:0"), ("tls", "listen: 127.0.0.1:0")]
        }
        let bootstrap = try overlay.uris(0).filter { $0.scheme == "tls" && $0.text.contains("127.0.0.1") }
        let index = try overlay.addNode(name: "tls-only", transports: [("tls", "listen: 127.0.0.1:0")], bootstrap: bootstrap,
                                        liveness: quickLiveness)
        XCTAssertNotNil(try overlay.waitForConsistentRing(timeout: 30))
        let status = try overlay.status(index)
        XCTAssertTrue(status.ring_member)
        XCTAssertFalse(status.connections.isEmpty)
        XCTAssertTrue(status.connections.allSatisfy { $0.transport == "tls" })
    }

    /// Two nodes with no transport in common (one speaks only udp, the other only tcp) still connect: through a
    /// `relay` edge over real sockets, via a node that speaks both, and pings cross it.
    func testNodesWithNoCommonTransportConnectThroughARelay() throws {
        let overlay = try LocalOverlay()
        defer { overlay.shutdown() }
        let both: [(scheme: String, settings: String)] = [("udp", "listen: 127.0.0.1:0"), ("tcp", "listen: 127.0.0.1:0"),
                                                          ("relay", "{}")]
        try overlay.addNode(name: "hub0", transports: both, bootstrap: [], liveness: quickLiveness)
        let bootstrap = try overlay.uris(0).filter { $0.scheme != "relay" }
        try overlay.addNode(name: "hub1", transports: both, bootstrap: bootstrap, liveness: quickLiveness)
        // On loopback every node is seen where it is bound, so `auto` would not advertise relay URIs.
        let udpOnly = try overlay.addNode(name: "udp-only", transports: [("udp", "listen: 127.0.0.1:0"),
                                                                        ("relay", "advertise: always")],
                                          bootstrap: bootstrap, liveness: quickLiveness)
        let tcpOnly = try overlay.addNode(name: "tcp-only", transports: [("tcp", "listen: 127.0.0.1:0"),
                                                                        ("relay", "advertise: always")],
                                          bootstrap: bootstrap, liveness: quickLiveness)
        // Four nodes, two near neighbours per side: everyone links to everyone, so these two must connect.
        XCTAssertNotNil(try overlay.waitForConsistentRing(timeout: 30), "the ring never became consistent")
        let tcpAddress = try overlay.status(tcpOnly).address
        var connection: NodeStatus.ConnectionStatus?
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, connection == nil {
            connection = try overlay.status(udpOnly).connections.first { $0.peer == tcpAddress }
            if connection == nil { Thread.sleep(forTimeInterval: 0.1) }
        }
        let relayed = try XCTUnwrap(connection, "the udp-only and tcp-only nodes never connected")
        XCTAssertEqual(relayed.transport, "relay")
        XCTAssertTrue(relayed.remote_uri.hasPrefix("relay://"), relayed.remote_uri)
        // An overlay echo goes over that connection (liveness pings only go to connections silent for a second,
        // and status traffic can keep this one from ever being silent that long).
        let destination = try XCTUnwrap(Address(hex: tcpAddress))
        var outcome: EchoOutcome?
        for _ in 0..<5 where outcome == nil {
            if case .success(let echoed) = try overlay.echo(udpOnly, to: destination, timeout: .seconds(2)) { outcome = echoed }
        }
        let echoed = try XCTUnwrap(outcome, "no echo crossed the relay in 5 tries")
        XCTAssertTrue(echoed.path.hasPrefix("relayed via"), echoed.path)
        XCTAssertFalse(echoed.isDirect)
        XCTAssertEqual(echoed.hopsThere, 1, "the echo went over the relayed connection, not routed around it")
        let rtt = echoed.roundTrip.seconds * 1000
        print("udp-only <-> tcp-only over a relay: round trip \(rtt) ms, \(echoed.path)")
    }
}
