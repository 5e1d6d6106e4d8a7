import ArgumentParser
import Foundation
import XCTest

@testable import WOWCommand

/// `wow demo`: a small real overlay over udp, tcp and tls on loopback, in this process.
final class DemoCommandTests: XCTestCase {
    func testSixNodesJoinOverAllThreeTransportsAndAnswerEveryPing() throws {
        var options = LocalDemo.Options()
        options.nodes = 6
        options.messages = 30
        options.joinInterval = .milliseconds(50)
        options.timeout = 30
        var lines: [String] = []
        let report = LocalDemo(options: options, progress: { lines.append($0) }).run()

        XCTAssertTrue(report.ok, report.failure ?? "")
        XCTAssertNil(report.failure)
        XCTAssertTrue(report.ring_consistent)
        XCTAssertEqual(report.node_list.count, 6)
        XCTAssertTrue(report.node_list.allSatisfy { $0.routable_s != nil }, "\(report.node_list)")
        XCTAssertEqual(report.join_routable_s.count, 6)
        XCTAssertEqual(report.messages_sent, 30)
        XCTAssertEqual(report.messages_delivered, 30)
        XCTAssertEqual(report.rtt_ms.count, 30)
        // A ping and its answer each crossed at least one hop.
        XCTAssertEqual(report.hops.histogram.values.reduce(0, +), 60)
        XCTAssertGreaterThanOrEqual(report.hops.mean, 1)
        XCTAssertEqual(Set(report.connections_by_transport.keys), ["udp", "tcp", "tls"], "\(report.connections_by_transport)")
        XCTAssertEqual(report.connections_by_transport.values.reduce(0, +), report.connections)
        XCTAssertNotNil(report.connections_by_type["structured.near"])
        // Every node and transport combination ran, and progress named each node as it became routable.
        XCTAssertEqual(Set(report.node_list.map { $0.transports.joined(separator: "+") }), ["tls+tcp+udp", "udp+tcp", "tcp+tls", "udp+tls"])
        for i in 0..<6 { XCTAssertTrue(lines.contains { $0.contains(" n\(i) ") && $0.contains("routable") }, "no progress line for n\(i)") }

        let text = DemoCommand.humanReadable(report)
        XCTAssertTrue(text.contains("pings delivered     30/30"), text)
        XCTAssertTrue(text.hasSuffix("OK"), text)
        let decoded = try JSONDecoder().decode(DemoReport.self, from: JSONEncoder().encode(report))
        XCTAssertEqual(decoded.messages_delivered, 30)
    }

    /// Before the pings (which would give every pair that talks a shortcut of its own), two nodes that are not
    /// directly connected exchange traffic: a `structured.shortcut` connection joins them, and their packets
    /// then take one hop. The pings that follow, while the shortcuts they cause form, are all answered.
    func testTwoUnconnectedNodesGetAShortcutUnderTrafficBeforeThePings() throws {
        var options = LocalDemo.Options()
        // 24 nodes: with 16, the joins' surplus near links (trimmed only after 20 s) sometimes connect every
        // pair, and the step waits that long for a trim.
        options.nodes = 24
        options.messages = 40
        options.joinInterval = .milliseconds(50)
        // A loaded machine forms the ring slowly (15-25 s with two busy loops beside it).
        options.timeout = 60
        var lines: [String] = []
        let report = LocalDemo(options: options, progress: { lines.append($0) }).run()

        // Every ping is answered, while shortcuts form and surplus links are trimmed (no packet is lost to a
        // connection moving between edges or being trimmed: SecuredLinkRaceTests).
        XCTAssertTrue(report.ok, (report.failure ?? "") + "; drops: \(report.node_drops)")
        XCTAssertEqual(report.messages_delivered, 40, "drops: \(report.node_drops)")
        let shortcut = try XCTUnwrap(report.shortcut, "the shortcut step did not run: \(lines.joined(separator: "\n"))")
        XCTAssertEqual(shortcut.pair.count, 2)
        XCTAssertNotNil(shortcut.formed_s)
        // Packets before the shortcut cross the ring (when they arrive: the first ones between secured nodes that
        // are not directly connected wait for their end-to-end handshake).
        XCTAssertTrue(shortcut.hops_before.histogram.keys.allSatisfy { (Int($0) ?? 0) >= 1 }, "\(shortcut.hops_before)")
        XCTAssertEqual(shortcut.hops_after.max, 1)
        XCTAssertGreaterThan(shortcut.hops_after.histogram["1"] ?? 0, 0)
        XCTAssertNotNil(report.connections_by_type["structured.shortcut"], "\(report.connections_by_type)")
        let formedLine = try XCTUnwrap(lines.firstIndex { $0.contains("shortcut") && $0.contains("formed") }, "\(lines)")
        let pingsLine = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("sent 40 pings") }, "\(lines)")
        XCTAssertLessThan(formedLine, pingsLine, "the shortcut step runs before the pings: \(lines)")
        XCTAssertEqual(report.messages_sent, 40)
        let text = DemoCommand.humanReadable(report)
        XCTAssertTrue(text.contains("shortcut            \(shortcut.pair.joined(separator: " <-> ")): formed"), text)
        let decoded = try JSONDecoder().decode(DemoReport.self, from: JSONEncoder().encode(report))
        XCTAssertEqual(decoded.shortcut?.pair, shortcut.pair)
    }

    func testDefaultsAreSixteenNodes() throws {
        let command = try XCTUnwrap(try WOWRootCommand.parseAsRoot(["demo"]) as? DemoCommand)
        let options = try command.options()
        XCTAssertEqual(options.nodes, 16)
        XCTAssertEqual(options.timeout, 30)
    }

    func testBadOptionsGetSpecificErrors() {
        let cases: [([String], String)] = [
            (["demo", "--nodes", "1"], "--nodes 1"),
            (["demo", "--nodes", "many"], "nodes"),
            (["demo", "--messages", "-1"], "--messages"),
            (["demo", "--timeout", "0"], "--timeout"),
            (["demo", "--join-interval-ms", "-5"], "--join-interval-ms"),
            (["demo", "--frobnicate"], "frobnicate"),
        ]
        for (arguments, expected) in cases {
            var message: String?
            do {
                _ = try WOWRootCommand.parseAsRoot(arguments)
            } catch {
                message = WOWRootCommand.message(for: error)
            }
            XCTAssertNotNil(message, "\(arguments) was accepted")
            XCTAssertTrue(message?.contains(expected) == true, "\(arguments): \(message ?? "")")
        }
    }

    func testARingThatCannotFormInTimeIsAFailureWithItsReason() {
        var options = LocalDemo.Options()
        options.nodes = 4
        options.messages = 5
        options.joinInterval = .milliseconds(400)
        options.timeout = 0.2
        let report = LocalDemo(options: options).run()
        XCTAssertFalse(report.ok)
        XCTAssertTrue(report.failure?.contains("not consistent within") == true, report.failure ?? "")
        XCTAssertEqual(report.messages_sent, 0)
    }
}
