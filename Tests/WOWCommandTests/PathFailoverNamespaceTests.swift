import Foundation
import WOWKit
import XCTest

/// A path that dies silently under traffic, for real (`NamespaceLab`, issue 16): a site behind a port-restricted
/// NAT streams to a public node over the virtual network when its NAT starts dropping every UDP datagram. The
/// connection moves to tcp within about a second (`PathWatch`), nothing is lost or reordered, and the node never
/// leaves the ring. Liveness keeps its defaults (30 s), so only the failover can keep the stream going.
final class PathFailoverNamespaceTests: XCTestCase {
    private lazy var lab = NamespaceLab(self)
    private static let ips = ["boot": "100.64.0.1", "site1": "100.64.0.2"]

    private static let common = """
        overlords:
          - name: leaf
          - name: structured.near
          - name: structured.far
        linking: { reply_timeout_ms: 500, attempts_per_uri: 2, retry_backoff_ms: 100 }
        virtual_network: { device: wow0 }
        """

    private func startNodes() throws -> (boot: String, site: String) {
        try lab.topology(["boot", "site1"], tools: ["python3", "iptables"])
        let boot = try lab.startNode("boot", in: "boot", config: """
            node: { name: boot }
            \(NamespaceLab.membership("boot"))
            transports:
              - scheme: udp
                settings: { listen: "198.18.0.1:4000" }
              - scheme: tcp
                settings: { listen: "198.18.0.1:4001" }
            \(Self.common)
            """, virtualIPs: [VirtualIP(Self.ips["boot"]!)!]).control
        XCTAssertTrue(lab.waitFor(10) { lab.status(boot) != nil }, "the public node never answered")
        let site = try lab.startNode("site1", in: "site1", config: """
            node: { name: site1 }
            \(NamespaceLab.membership("site1"))
            bootstrap: ["udp://198.18.0.1:4000", "tcp://198.18.0.1:4001"]
            transports:
              - scheme: udp
                settings: { listen: "0.0.0.0:4000" }
              - scheme: tcp
                settings: { listen: "0.0.0.0:4001" }
            \(Self.common)
            """, virtualIPs: [VirtualIP(Self.ips["site1"]!)!]).control
        return (boot, site)
    }

    /// The connection `control`'s node holds to the node at `peer`, if any.
    private func connection(_ control: String, to peer: String) -> [String: Any]? {
        lab.connections(control).first { $0["peer"] as? String == peer }
    }

    func testAStreamOutlivesItsUDPPathWhenTheSiteNATStartsDroppingUDP() throws {
        try streamAcrossTheCut(fromSite: true)
    }

    /// The same with the site receiving: only its acks tell it that the path died.
    func testAStreamToTheSiteOutlivesItsUDPPath() throws {
        try streamAcrossTheCut(fromSite: false)
    }

    private func streamAcrossTheCut(fromSite: Bool) throws {
        let (boot, site) = try startNodes()
        let controls = ["boot": boot, "site1": site]
        let bootAddress = try XCTUnwrap(lab.status(boot)?["address"] as? String)
        let siteAddress = try XCTUnwrap(lab.waitFor(10) { lab.status(site) != nil } ? lab.status(site)?["address"] as? String : nil)
        let linked = lab.waitFor(20) {
            connection(site, to: bootAddress).map { $0["transport"] as? String == "udp" && NamespaceLab.hasStructuredType($0) } ?? false
        }
        XCTAssertTrue(linked, "the site never linked to the public node over udp" + lab.diagnostics(controls))
        guard linked else { return }

        let (sender, receiver) = fromSite ? ("site1", "boot") : ("boot", "site1")
        let total = 24 << 20
        let stream = try lab.stream("stream", from: sender, to: receiver, address: "\(Self.ips[receiver]!):5001",
                                    bytes: total, rate: 2 << 20)
        defer { stream.stop() }
        XCTAssertTrue(lab.waitFor(20) { stream.progress() > 4 << 20 }, "the stream did not get going" + lab.diagnostics(controls))

        // The site's NAT starts dropping every UDP datagram, both ways, established flows too.
        let cut = try lab.exec(in: "nat1", ["iptables", "-I", "FORWARD", "1", "-p", "udp", "-j", "DROP"])
        XCTAssertEqual(cut.status, 0, cut.output)
        let cutAt = Date()

        let finished = lab.waitFor(60) { stream.isFinished }
        XCTAssertTrue(finished, "the stream did not finish after the cut (received \(stream.progress()) of \(total) bytes)"
                      + lab.diagnostics(controls))
        guard finished else { return }
        let (sent, received) = try stream.results()
        XCTAssertEqual(received["bytes"] as? Int, total, "every byte arrived")
        XCTAssertEqual(received["sha256"] as? String, sent["sha256"] as? String, "intact and in order")
        let gap = received["longest_gap_s"] as? Double ?? -1
        print("PathFailoverNamespaceTests: \(sender) -> \(receiver): UDP cut at the site's NAT; \(total) bytes intact; "
              + "longest pause in the stream \(String(format: "%.2f", gap)) s")
        // Timings are for BENCHMARKS.md (Scripts/failover-time.sh); this only tells a failover from liveness,
        // which would have waited 30 s for the dead connection.
        XCTAssertLessThan(gap, 10, "the stream waited for liveness, not a failover" + lab.diagnostics(controls))

        // One connection all along, now over tcp at both ends; the site stayed in the ring.
        let atSite = try XCTUnwrap(connection(site, to: bootAddress), "the site lost its connection" + lab.diagnostics(controls))
        let atBoot = try XCTUnwrap(connection(boot, to: siteAddress), "the public node lost its connection" + lab.diagnostics(controls))
        XCTAssertEqual(atSite["transport"] as? String, "tcp", "\(atSite)")
        XCTAssertEqual(atBoot["transport"] as? String, "tcp", "\(atBoot)")
        XCTAssertGreaterThanOrEqual(atSite["path_switches"] as? Int ?? 0, 1, "\(atSite)")
        // `wow status` names the udp path it left (tried again later) among the other paths.
        let left = try XCTUnwrap(atSite["left_path"] as? String, "\(atSite)")
        XCTAssertTrue(left.hasPrefix("direct udp 198.18.0.1:"), left)
        XCTAssertTrue((atSite["alternatives"] as? [String] ?? []).contains(left), "\(atSite)")
        // And what it measured there: a round trip, and the peer silent there since about the cut.
        let formerPaths = atSite["former_paths"] as? [[String: Any]] ?? []
        let former = try XCTUnwrap(formerPaths.first { $0["path"] as? String == left }, "\(atSite)")
        XCTAssertNotNil(former["rtt_ms"] as? Double, "\(former)")
        XCTAssertGreaterThanOrEqual(former["last_heard_s"] as? Double ?? 0, former["left_s"] as? Double ?? 1, "\(former)")
        XCTAssertLessThanOrEqual(former["last_heard_s"] as? Double ?? .infinity, Date().timeIntervalSince(cutAt) + 2, "\(former)")
        XCTAssertNotNil(atSite["rtt_ms"] as? Double, "the tcp path measured at once: \(atSite)")
        XCTAssertGreaterThan(atSite["age_s"] as? Double ?? 0, Date().timeIntervalSince(cutAt),
                             "the connection is older than the cut: moved, not made anew")
        // Whichever end noticed first, only the site can move the connection: the public node cannot reach it
        // but over the udp path that died.
        XCTAssertGreaterThanOrEqual(lab.status(site)?["failovers"] as? Int ?? 0, 1)
        XCTAssertEqual(lab.status(site)?["ring_member"] as? Bool, true)
    }
}
