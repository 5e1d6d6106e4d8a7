import Foundation
import WOWKit
import XCTest

/// A site whose only way out is an HTTP proxy (`NamespaceLab`, part `proxy`): its router forwards nothing and
/// takes from the LAN only TCP to port 3128, where Debian's tinyproxy runs with a password. A node there
/// dials its tls edges through the proxy (`CONNECT`), joins a public node, and ping crosses the overlay both
/// ways; without credentials, or with a wrong password, it says that the proxy refused, naming the proxy and
/// the status (tinyproxy answers 407 to the first, 401 to the second).
final class ProxyNamespaceTests: XCTestCase {
    private lazy var lab = NamespaceLab(self)

    private static let proxyAddress = "198.19.8.1:3128"
    private static let bootIP = "100.64.0.1"
    private static let siteIP = "100.64.0.7"

    /// tinyproxy on the site's router: the LAN may connect, with user `wow` and password `s3cret`, to port 443
    /// only (as corporate proxies allow).
    private func startProxy() throws {
        let config = lab.directory + "/tinyproxy.conf"
        try """
            Port 3128
            Listen 198.19.8.1
            Timeout 60
            MaxClients 20
            Allow 198.19.8.0/24
            BasicAuth wow s3cret
            ConnectPort 443
            LogLevel Info

            """.write(toFile: config, atomically: true, encoding: .utf8)
        _ = try lab.background("tinyproxy", in: "pxy", ["tinyproxy", "-d", "-c", config])
        let listening = lab.waitFor(10) {
            (try? lab.exec(in: "pxy", ["ss", "-ltn"]))?.output.contains(Self.proxyAddress) == true
        }
        guard listening else {
            XCTFail("tinyproxy never listened on \(Self.proxyAddress)" + lab.diagnostics([:]))
            throw XCTSkip("failed above")
        }
    }

    /// The site node: tls only, through the proxy with `credentials` (`user:password@`, or none); the virtual
    /// network on wow0.
    private func startSite(credentials: String) throws -> NamespaceLab.NodeProcess {
        try lab.startNode("site7", in: "site7", config: """
            node: { name: site7 }
            \(NamespaceLab.membership("site7"))
            bootstrap: ["tls://198.18.0.1:443"]
            transports:
              - scheme: tls
                settings: { listen: "0.0.0.0:443", proxy: "http://\(credentials)\(Self.proxyAddress)" }
            virtual_network: { device: wow0 }
            \(NamespaceLab.timers)
            """, virtualIPs: [try XCTUnwrap(VirtualIP(Self.siteIP))])
    }

    private func log(_ name: String) -> String {
        (try? String(contentsOfFile: lab.directory + "/\(name).log", encoding: .utf8)) ?? ""
    }

    func testSiteBehindAnHTTPProxyJoinsOverTLSAndPingsCross() throws {
        try lab.topology(["boot", "proxy"], tools: ["ping", "tinyproxy", "ss"])
        // The site really has no other way out.
        XCTAssertNotEqual(try lab.exec(in: "site7", ["ping", "-c", "1", "-W", "1", "198.18.0.1"]).status, 0,
                          "the site reaches the WAN without the proxy")
        try startProxy()

        let boot = try lab.startNode("boot", in: "boot", config: """
            node: { name: boot }
            \(NamespaceLab.membership("boot"))
            transports:
              - scheme: tls
                settings: { listen: "198.18.0.1:443" }
            virtual_network: { device: wow0 }
            \(NamespaceLab.timers)
            """, virtualIPs: [try XCTUnwrap(VirtualIP(Self.bootIP))]).control
        XCTAssertTrue(lab.waitFor(10) { lab.status(boot) != nil }, "the public node never answered" + lab.diagnostics([:]))
        let bootAddress = try XCTUnwrap(lab.status(boot)?["address"] as? String)

        // Without credentials, then with a wrong password: the proxy refuses, and the node says so (a warning).
        for (credentials, status) in [("", "407 Proxy Authentication Required"), ("wow:wrong@", "401 Unauthorized")] {
            let refusal = "proxy \(Self.proxyAddress) refused CONNECT to 198.18.0.1:443: \(status)"
            let refused = try startSite(credentials: credentials)
            let told = lab.waitFor(20) {
                log("site7").split(separator: "\n").contains { $0.contains("warning wow.tls") && $0.contains(refusal) }
            }
            XCTAssertTrue(told, "no warning '\(refusal)' in the site's log"
                          + lab.diagnostics(["boot": boot, "site7": refused.control]))
            XCTAssertTrue(lab.connections(refused.control).isEmpty, "connected without the right credentials")
            refused.background.stop()
        }

        // The right one (the same node, restarted): it joins through the proxy.
        let started = Date()
        let site = try startSite(credentials: "wow:s3cret@").control
        let controls = ["boot": boot, "site7": site]
        let joined = lab.waitFor(30) {
            lab.connections(site).contains {
                $0["peer"] as? String == bootAddress && $0["transport"] as? String == "tls" && NamespaceLab.hasStructuredType($0)
            }
        }
        XCTAssertTrue(joined, "the site never joined through the proxy" + lab.diagnostics(controls))
        guard joined else { return }
        print("ProxyNamespaceTests: site behind an HTTP proxy joined over tls in "
              + "\(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        // The public node sees the site's edge come from the proxy's WAN address.
        let siteAddress = try XCTUnwrap(lab.status(site)?["address"] as? String)
        let fromProxy = lab.connections(boot).first { $0["peer"] as? String == siteAddress }
        XCTAssertTrue((fromProxy?["remote_uri"] as? String)?.hasPrefix("tls://198.18.0.17:") == true,
                      "the public node's connection to the site does not come from the proxy: \(String(describing: fromProxy))")

        // Ping over the overlay, both ways.
        let reached = lab.waitFor(20) {
            (try? lab.exec(in: "site7", ["ping", "-c", "1", "-W", "1", Self.bootIP]))?.status == 0
        }
        XCTAssertTrue(reached, "the site never reached the public node's virtual IP" + lab.diagnostics(controls))
        guard reached else { return }
        XCTAssertEqual(try answered(5, to: Self.bootIP, from: "site7"), 5, lab.diagnostics(controls))
        XCTAssertEqual(try answered(5, to: Self.siteIP, from: "boot"), 5, lab.diagnostics(controls))
    }

    /// `count` pings from `namespace` to `ip`, 0.2 s apart: how many were answered.
    private func answered(_ count: Int, to ip: String, from namespace: String) throws -> Int {
        let result = try lab.exec(in: namespace, ["ping", "-c", "\(count)", "-i", "0.2", "-W", "2", ip])
        guard let match = result.output.firstMatch(of: /(\d+) received/), let received = Int(match.1) else {
            XCTFail("unexpected ping output: \(result.output)")
            return 0
        }
        return received
    }
}
