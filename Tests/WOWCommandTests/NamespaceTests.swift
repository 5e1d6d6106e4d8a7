import Foundation
import WOWKit
import XCTest

/// `wow run` processes in Linux network namespaces with real NATs and firewalls (`NamespaceLab`): joining
/// through NATs, a firewall that lets out only TLS on 443, and a relay between NATs that cannot be punched.
final class NamespaceTests: XCTestCase {
    private lazy var lab = NamespaceLab(self)

    private func topology(_ parts: [String]) throws { try lab.topology(parts) }
    private func startNode(_ name: String, in namespace: String, config: String) throws -> String {
        try lab.startNode(name, in: namespace, config: config).control
    }
    private func status(_ control: String) -> [String: Any]? { lab.status(control) }
    private func connections(_ control: String) -> [[String: Any]] { lab.connections(control) }
    private func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool { lab.waitFor(timeout, condition) }
    private func diagnostics(_ controls: [String: String]) -> String { lab.diagnostics(controls) }
    private static func membership(_ name: String) -> String { NamespaceLab.membership(name) }
    private static let timers = NamespaceLab.timers
    private static func hasStructuredType(_ connection: [String: Any]) -> Bool { NamespaceLab.hasStructuredType(connection) }

    /// A node config: udp on `listen`, the test timers, and `bootstrap` if any.
    private static func udpNode(_ name: String, listen: String, bootstrap: [String] = []) -> String {
        let list = bootstrap.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            node: { name: \(name) }
            \(membership(name))
            \(bootstrap.isEmpty ? "" : "bootstrap: [\(list)]")
            transports:
              - scheme: udp
                settings: { listen: "\(listen)" }
            \(timers)
            """
    }

    // MARK: Tests

    /// Two sites, each behind its own port-restricted NAT (MASQUERADE, with the NAT's own INPUT chain open,
    /// where a peer's early packet would spoil the mapping), end up with a direct udp connection: site1's
    /// edge to site2 goes to site2's NAT (198.18.0.12), not through the bootstrap. The Connect-To-Me
    /// recipient punches (IP TTL 2: it opens its own NAT and dies at the WAN router) and waits for the
    /// requester's link request before sending its own.
    func testTwoSitesBehindPortRestrictedNATsLinkDirectlyOverUDP() throws {
        try topology(["boot", "site1", "site2"])
        let boot = try startNode("boot", in: "boot", config: Self.udpNode("boot", listen: "198.18.0.1:4000"))
        XCTAssertTrue(waitFor(10) { status(boot) != nil }, "the bootstrap never answered on its control socket")
        let bootAddress = try XCTUnwrap(status(boot)?["address"] as? String)

        let site1 = try startNode("site1", in: "site1", config: Self.udpNode(
            "site1", listen: "0.0.0.0:4000", bootstrap: ["udp://198.18.0.1:4000"]))
        let site1Joined = waitFor(20) {
            connections(site1).contains { $0["peer"] as? String == bootAddress && Self.hasStructuredType($0) }
        }
        XCTAssertTrue(site1Joined,
                      "site1 never joined through the bootstrap" + diagnostics(["boot": boot, "site1": site1]))
        guard site1Joined else { return }
        let site1Address = try XCTUnwrap(status(site1)?["address"] as? String)

        let started = Date()
        let site2 = try startNode("site2", in: "site2", config: Self.udpNode(
            "site2", listen: "0.0.0.0:4000", bootstrap: ["udp://198.18.0.1:4000"]))
        XCTAssertTrue(waitFor(10) { status(site2) != nil }, "site2 never answered on its control socket")
        let answered = Date()
        let site2Address = try XCTUnwrap(status(site2)?["address"] as? String)
        func direct(_ connection: [String: Any], to peer: String, natAddress: String) -> Bool {
            connection["peer"] as? String == peer && connection["transport"] as? String == "udp"
                && (connection["remote_uri"] as? String)?.hasPrefix("udp://\(natAddress):") == true
        }
        let linked = waitFor(30) {
            connections(site1).contains { direct($0, to: site2Address, natAddress: "198.18.0.12") }
        }
        let elapsed = Date().timeIntervalSince(started), sinceAnswered = Date().timeIntervalSince(answered)
        let controls = ["boot": boot, "site1": site1, "site2": site2]
        XCTAssertTrue(linked, "site1 never got a direct udp connection to site2 through 198.18.0.12"
                      + diagnostics(controls))
        guard linked else { return }
        print("NamespaceTests: two NATed sites linked directly over udp in \(String(format: "%.2f", elapsed)) s "
              + "after site2 started (\(String(format: "%.2f", sinceAnswered)) s after it "
              + "answered on its control socket; status is polled every 0.2 s)")
        // The other end sees the same connection, at site1's NAT.
        let seen = waitFor(5) {
            connections(site2).contains { direct($0, to: site1Address, natAddress: "198.18.0.11") }
        }
        XCTAssertTrue(seen, "site2 has no direct udp connection to site1 through 198.18.0.11" + diagnostics(controls))
    }

    /// A site whose firewall lets out only TCP to port 443 (no UDP at all) joins through the bootstrap's
    /// `tls` transport after its udp attempts time out.
    func testSiteThatAllowsOnlyHTTPSOutJoinsOverTLS() throws {
        try topology(["boot", "fw"])
        let boot = try startNode("boot", in: "boot", config: """
            node: { name: boot }
            \(Self.membership("boot"))
            transports:
              - scheme: udp
                settings: { listen: "198.18.0.1:4000" }
              - scheme: tcp
                settings: { listen: "198.18.0.1:4001" }
              - scheme: tls
                settings: { listen: "198.18.0.1:443" }
            \(Self.timers)
            """)
        XCTAssertTrue(waitFor(10) { status(boot) != nil }, "the bootstrap never answered on its control socket")
        let bootAddress = try XCTUnwrap(status(boot)?["address"] as? String)

        let started = Date()
        let site = try startNode("site3", in: "site3", config: """
            node: { name: site3 }
            \(Self.membership("site3"))
            bootstrap: ["udp://198.18.0.1:4000", "tls://198.18.0.1:443"]
            transports:
              - scheme: udp
                settings: { listen: "0.0.0.0:4000" }
              - scheme: tls
                settings: { listen: "0.0.0.0:443" }
            \(Self.timers)
            """)
        let joined = waitFor(30) {
            connections(site).contains {
                $0["peer"] as? String == bootAddress && $0["transport"] as? String == "tls" && Self.hasStructuredType($0)
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertTrue(joined, "the firewalled site never got a structured tls connection to the bootstrap"
                      + diagnostics(["boot": boot, "site3": site]))
        guard joined else { return }
        print("NamespaceTests: firewalled site joined over tls in \(String(format: "%.2f", elapsed)) s")
        let toBoot = connections(site).filter { $0["peer"] as? String == bootAddress }
        XCTAssertFalse(toBoot.contains { $0["transport"] as? String == "udp" }, "a udp connection through the firewall: \(toBoot)")
        XCTAssertTrue((toBoot.first?["remote_uri"] as? String)?.hasPrefix("tls://198.18.0.1:443") == true, "\(toBoot)")
    }

    /// A node behind a symmetric NAT and one behind a port-restricted NAT cannot punch through to each other;
    /// they end up connected through a `relay` edge via the public bootstrap, and packets cross it both ways
    /// (liveness pings answered: the connection has a round trip).
    func testSymmetricAndPortRestrictedNATsConnectThroughARelay() throws {
        try topology(["boot", "site1", "sym"])
        let boot = try startNode("boot", in: "boot", config: """
            node: { name: boot }
            \(Self.membership("boot"))
            transports:
              - scheme: udp
                settings: { listen: "198.18.0.1:4000" }
              - scheme: relay
            \(Self.timers)
            """)
        XCTAssertTrue(waitFor(10) { status(boot) != nil }, "the bootstrap never answered on its control socket")
        func natted(_ name: String) -> String {
            """
            node: { name: \(name) }
            \(Self.membership(name))
            bootstrap: ["udp://198.18.0.1:4000"]
            transports:
              - scheme: udp
                settings: { listen: "0.0.0.0:4000" }
              - scheme: relay
            \(Self.timers)
            """
        }
        let started = Date()
        let restricted = try startNode("site1", in: "site1", config: natted("site1"))
        let symmetric = try startNode("site4", in: "site4", config: natted("site4"))
        XCTAssertTrue(waitFor(10) { status(restricted) != nil && status(symmetric) != nil }, "a site node never answered")
        let symmetricAddress = try XCTUnwrap(status(symmetric)?["address"] as? String)
        let restrictedAddress = try XCTUnwrap(status(restricted)?["address"] as? String)

        func relayed(_ control: String, to peer: String) -> [String: Any]? {
            connections(control).first {
                $0["peer"] as? String == peer && $0["transport"] as? String == "relay" && Self.hasStructuredType($0)
            }
        }
        let connected = waitFor(30) {
            relayed(restricted, to: symmetricAddress) != nil && relayed(symmetric, to: restrictedAddress) != nil
        }
        let elapsed = Date().timeIntervalSince(started)
        let controls = ["boot": boot, "site1": restricted, "site4": symmetric]
        XCTAssertTrue(connected, "no relayed connection between the two NATed sites" + diagnostics(controls))
        guard connected else { return }
        print("NamespaceTests: symmetric and port-restricted NATs connected through a relay \(String(format: "%.2f", elapsed)) s after start")
        let uri = relayed(restricted, to: symmetricAddress)?["remote_uri"] as? String ?? ""
        XCTAssertTrue(uri.hasPrefix("relay://"), uri)
        // A connection silent for 2 s is pinged: a measured round trip means a ping and its pong crossed the
        // relay. (Whichever end pings first keeps the other hearing it, so one end may never need to.)
        func roundTrip() -> Double? {
            relayed(restricted, to: symmetricAddress)?["rtt_ms"] as? Double
                ?? relayed(symmetric, to: restrictedAddress)?["rtt_ms"] as? Double
        }
        let exchanged = waitFor(15) { roundTrip() != nil }
        XCTAssertTrue(exchanged, "no round trip measured over the relay" + diagnostics(controls))
        let rtt = roundTrip() ?? -1
        print("NamespaceTests: round trip over the relay \(String(format: "%.2f", rtt)) ms")
    }
}
