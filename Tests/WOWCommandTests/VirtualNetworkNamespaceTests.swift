import Foundation
import WOWKit
import XCTest

/// The virtual network for real (`NamespaceLab`): three sites, each behind its own port-restricted NAT, and a
/// public router node. Unmodified programs (ping, iperf3, a checksummed TCP stream) talk between the sites'
/// virtual IPs over TUN devices; a shortcut forms between the nodes that talk; a forged source never leaves;
/// a node carried to another site keeps its IP and its TCP stream.
final class VirtualNetworkNamespaceTests: XCTestCase {
    private lazy var lab = NamespaceLab(self)

    /// Each site's node and its virtual IP.
    private static let ips = ["site1": "100.64.0.1", "site2": "100.64.0.2", "site5": "100.64.0.5"]
    private static let tools = ["ping", "iperf3", "python3"]

    /// The public router node: no virtual IP, no TUN device; it carries the ring and relays.
    private func startRouter() throws -> String {
        let control = try lab.startNode("router", in: "boot", config: """
            node: { name: router }
            \(NamespaceLab.membership("router"))
            transports:
              - scheme: udp
                settings: { listen: "198.18.0.1:4000" }
              - scheme: relay
            \(Self.overlords)
            \(NamespaceLab.timers)
            """).control
        guard lab.waitFor(10, { lab.status(control) != nil }) else {
            XCTFail("the router never answered" + lab.diagnostics([:]))
            throw XCTSkip("failed above")
        }
        return control
    }

    private static let overlords = """
        overlords:
          - name: leaf
          - name: structured.near
          - name: structured.far
          - name: structured.shortcut
        """

    /// A site node with its TUN device (`wow0`, its virtual IP, and `ipv6` after it), bootstrapping through
    /// the router.
    private func startSite(_ site: String, offload: Bool = true, ipv6: String? = nil,
                           arguments: [String] = []) throws -> NamespaceLab.NodeProcess {
        let ip = try XCTUnwrap(Self.ips[site].flatMap(VirtualIP.init))
        return try lab.startNode(site, in: site, config: """
            node: { name: \(site) }
            \(NamespaceLab.membership(site))
            bootstrap: ["udp://198.18.0.1:4000"]
            transports:
              - scheme: udp
                settings: { listen: "0.0.0.0:4000" }
              - scheme: relay
            \(Self.overlords)
            virtual_network: { device: wow0, offload: \(offload) }
            \(NamespaceLab.timers)
            """, virtualIPs: [ip] + (ipv6.flatMap(VirtualIP.init).map { [$0] } ?? []), arguments: arguments)
    }

    /// One iperf3 TCP stream from `client` to `server`'s virtual IP (`reverse`: from the server) for `seconds`;
    /// its JSON report's receiver summary.
    private func iperf(from client: String, to server: String, seconds: Int, reverse: Bool = false) throws -> [String: Any] {
        let process = try lab.background("iperf3-\(server)", in: server, ["iperf3", "-s", "-1", "-B", Self.ips[server]!])
        defer { process.stop() }
        XCTAssertTrue(lab.waitFor(5) { (try? lab.exec(in: server, ["ss", "-ltn"]))?.output.contains(":5201") == true })
        let run = try lab.exec(in: client, ["iperf3", "-c", Self.ips[server]!, "-t", "\(seconds)", "-J"] + (reverse ? ["-R"] : []))
        XCTAssertEqual(run.status, 0, run.output)
        let report = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        let received = (report?["end"] as? [String: Any])?["sum_received"] as? [String: Any] ?? [:]
        XCTAssertGreaterThan(received["bytes"] as? Double ?? 0, 0, "iperf3 \(client) -> \(server) carried nothing: \(run.output)")
        return received
    }

    /// Pings `ip` from `site` until one answer comes (the ring carries it), up to `timeout` seconds.
    private func reachable(_ ip: String, from site: String, timeout: TimeInterval = 30) -> Bool {
        lab.waitFor(timeout) { (try? lab.exec(in: site, ["ping", "-c", "1", "-W", "1", ip]))?.status == 0 }
    }

    /// `count` pings from `site` to `ip`, 0.2 s apart: how many were answered.
    private func answered(_ count: Int, to ip: String, from site: String) throws -> Int {
        let result = try lab.exec(in: site, ["ping", "-c", "\(count)", "-i", "0.2", "-W", "2", ip])
        guard let match = result.output.firstMatch(of: /(\d+) received/), let received = Int(match.1) else {
            XCTFail("unexpected ping output: \(result.output)")
            return 0
        }
        return received
    }

    private func drops(_ control: String) -> [String: Int] {
        lab.status(control)?["drops"] as? [String: Int] ?? [:]
    }

    private func shortcut(_ control: String, to peer: String) -> [String: Any]? {
        lab.connections(control).first {
            $0["peer"] as? String == peer
                && (($0["local_types"] as? [String] ?? []) + ($0["remote_types"] as? [String] ?? [])).contains("structured.shortcut")
        }
    }

    func testUnmodifiedProgramsTalkBetweenThreeNATedSites() throws {
        try lab.topology(["boot", "site1", "site2", "site5"], tools: Self.tools)
        let router = try startRouter()
        var controls = ["router": router]
        for site in ["site1", "site2", "site5"] {
            // site5 does without offloads: nodes with and without them must talk.
            controls[site] = try startSite(site, offload: site != "site5",
                                           arguments: site == "site1" ? ["--metrics", "127.0.0.1:9464", "--dns", "127.0.0.1:53"] : []).control
        }
        let started = Date()
        for (from, to) in [("site1", "site2"), ("site2", "site5"), ("site5", "site1")] {
            let ok = reachable(Self.ips[to]!, from: from)
            XCTAssertTrue(ok, "\(from) never reached \(to)'s virtual IP" + lab.diagnostics(controls))
            guard ok else { return }
        }
        print("VirtualNetworkNamespaceTests: all three sites routable \(String(format: "%.2f", Date().timeIntervalSince(started))) s after start")

        // A shortcut between the two that talk: time from their first packet to a direct connection.
        let site2Address = try XCTUnwrap(lab.status(controls["site2"]!)?["address"] as? String)
        let pinger = try lab.background("ping-1-2", in: "site1", ["ping", "-i", "0.05", Self.ips["site2"]!])
        let trafficStarted = Date()
        let formed = lab.waitFor(15) { shortcut(controls["site1"]!, to: site2Address) != nil }
        let shortcutTime = Date().timeIntervalSince(trafficStarted)
        pinger.stop()
        XCTAssertTrue(formed, "no shortcut between site1 and site2 under traffic" + lab.diagnostics(controls))
        print("VirtualNetworkNamespaceTests: shortcut site1-site2 \(String(format: "%.2f", shortcutTime)) s after the first packet "
              + "(status polled every 0.2 s)")
        let uri = shortcut(controls["site1"]!, to: site2Address)?["remote_uri"] as? String ?? ""
        XCTAssertTrue(uri.contains("198.18.0.12"), "the shortcut goes straight to site2's NAT, not through the router: \(uri)")

        // Unmodified ping between every pair, every answer back.
        for (from, to) in [("site1", "site2"), ("site2", "site5"), ("site5", "site1")] {
            XCTAssertEqual(try answered(10, to: Self.ips[to]!, from: from), 10, "\(from) -> \(to)" + lab.diagnostics(controls))
        }

        // Names: site1's node answers DNS for NAME.wow on its namespace's loopback, and `ip netns exec` gives
        // site1 a resolv.conf that points there: unmodified programs reach members by name.
        let netnsConfig = "/etc/netns/wowt-site1"
        try FileManager.default.createDirectory(atPath: netnsConfig, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: netnsConfig) }
        try "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n".write(toFile: netnsConfig + "/resolv.conf", atomically: true, encoding: .utf8)
        let looked = try lab.exec(in: "site1", ["getent", "ahostsv4", "site2.wow"])
        XCTAssertEqual(looked.status, 0, looked.output + lab.diagnostics(controls))
        XCTAssertTrue(looked.output.hasPrefix(Self.ips["site2"]!), "site2.wow: \(looked.output)")
        let byName = try lab.exec(in: "site1", ["ping", "-c", "2", "-i", "0.2", "-W", "2", "site5.wow"])
        XCTAssertEqual(byName.status, 0, byName.output)
        XCTAssertTrue(byName.output.contains(Self.ips["site5"]!), byName.output)
        XCTAssertNotEqual(try lab.exec(in: "site1", ["getent", "ahostsv4", "nobody.wow"]).status, 0, "an unknown name must not resolve")
        // And `wow ping` by name, through the node's control socket.
        let overlayPing = try lab.run(lab.wowBinary.path, ["ping", "site5", "-c", "2", "-i", "0.2", "--control", controls["site1"]!])
        XCTAssertEqual(overlayPing.status, 0, overlayPing.output)
        XCTAssertTrue(overlayPing.output.contains("reply from site5: seq=2"), overlayPing.output)

        // iperf3, one TCP stream for 3 s.
        let received = try iperf(from: "site1", to: "site2", seconds: 3)
        // The metrics count what crossed the device (scraped inside site1's namespace: the endpoint is loopback).
        let scrape = try lab.exec(in: "site1", ["python3", "-c",
            "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode())"])
        let outLine = scrape.output.split(separator: "\n").first { $0.hasPrefix("wow_vnet_packets_total{direction=\"out\"}") }
        let outPackets = outLine.flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? 0
        XCTAssertGreaterThan(outPackets, 1000, "wow_vnet_packets_total out after iperf3: \(scrape.output.prefix(2000))")
        // The hosts' TCP handed the devices super-segments (segmentation offload), each carried as one packet.
        let sender = lab.status(controls["site1"]!)?["virtual_network"] as? [String: Any] ?? [:]
        let receiver = lab.status(controls["site2"]!)?["virtual_network"] as? [String: Any] ?? [:]
        XCTAssertEqual(sender["offload"] as? Bool, true, "site1's device is not offloading: \(sender)")
        XCTAssertGreaterThan(sender["super_segments_from_device"] as? Int ?? 0, 0, "site1 read no super-segment: \(sender)")
        XCTAssertGreaterThan(receiver["super_segments_to_device"] as? Int ?? 0, 0, "site2 wrote no super-segment: \(receiver)")
        XCTAssertEqual(receiver["device_write_failures"] as? Int, 0, "site2's device refused packets: \(receiver)")
        print("VirtualNetworkNamespaceTests: iperf3 site1 -> site2 \(String(format: "%.0f", (received["bits_per_second"] as? Double ?? 0) / 1e6)) Mbit/s "
              + "(debug or release build as tested; see BENCHMARKS.md for the benchmark)")

        // Both ways between a node with offloads (site1) and one without (site5): site5 reads MTU-sized
        // packets only, and writes the super-segments site1 sends.
        _ = try iperf(from: "site1", to: "site5", seconds: 1)
        _ = try iperf(from: "site1", to: "site5", seconds: 1, reverse: true)
        let plain = lab.status(controls["site5"]!)?["virtual_network"] as? [String: Any] ?? [:]
        XCTAssertEqual(plain["offload"] as? Bool, false, "\(plain)")
        XCTAssertEqual(plain["super_segments_from_device"] as? Int, 0, "site5 has no offload, yet read super-segments: \(plain)")
        XCTAssertGreaterThan(plain["super_segments_to_device"] as? Int ?? 0, 0, "site5 wrote none of site1's super-segments: \(plain)")
        XCTAssertEqual(plain["device_write_failures"] as? Int, 0, "site5's device refused packets: \(plain)")

        // A packet with a forged source (site5's IP) written into site1's device never leaves site1.
        let before = drops(controls["site1"]!)["vnet_foreign_source"] ?? 0
        let forge = """
            import socket, struct
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 1, 0, 64, 17, 0,
                                 socket.inet_aton('\(Self.ips["site5"]!)'), socket.inet_aton('\(Self.ips["site2"]!)'))
            s.sendto(header + struct.pack('!HHHH', 9, 9, 8, 0), ('\(Self.ips["site2"]!)', 0))
            """
        let sent = try lab.exec(in: "site1", ["python3", "-c", forge])
        XCTAssertEqual(sent.status, 0, sent.output)
        XCTAssertTrue(lab.waitFor(5) { (drops(controls["site1"]!)["vnet_foreign_source"] ?? 0) > before },
                      "site1 did not drop the forged packet: \(drops(controls["site1"]!))")
        XCTAssertNil(drops(controls["site2"]!)["vnet_spoofed_source"], "nothing forged reached site2")
    }

    /// Dual-stack members (each certificate names an IPv4 address, then an IPv6 one): unmodified IPv6 programs
    /// talk over the TUN devices. Each node sits at the ring address of its IPv4, so the first IPv6 packet to a
    /// member finds nobody at the address its IPv6 hashes to, and the name service says where it sits.
    /// ping6 both ways, a checksummed TCP stream over IPv6, ICMPv6 for an address nobody holds, and a forged
    /// IPv6 source that never leaves its node.
    func testIPv6BetweenDualStackSites() throws {
        try lab.topology(["boot", "site1", "site2"], tools: Self.tools)
        let router = try startRouter()
        let ipv6 = ["site1": "fd77:6f77::1", "site2": "fd77:6f77::2"]
        var controls = ["router": router]
        for site in ["site1", "site2"] {
            controls[site] = try startSite(site, ipv6: ipv6[site], arguments: site == "site1" ? ["--dns", "127.0.0.1:53"] : []).control
        }
        XCTAssertTrue(reachable(Self.ips["site2"]!, from: "site1"), "site1 never reached site2 over IPv4" + lab.diagnostics(controls))
        let started = Date()
        let first = lab.waitFor(15) { (try? lab.exec(in: "site1", ["ping", "-6", "-c", "1", "-W", "1", ipv6["site2"]!]))?.status == 0 }
        XCTAssertTrue(first, "site1 never reached site2's IPv6" + lab.diagnostics(controls))
        guard first else { return }
        print("VirtualNetworkNamespaceTests: first IPv6 echo answered \(String(format: "%.2f", Date().timeIntervalSince(started))) s "
              + "after the first ping6")
        let status = lab.status(controls["site1"]!)?["virtual_network"] as? [String: Any] ?? [:]
        XCTAssertEqual(status["ips"] as? [String], [Self.ips["site1"]!, ipv6["site1"]!], "\(status)")
        XCTAssertEqual(status["ipv6_prefix"] as? String, "fd77:6f77::/48", "\(status)")
        let ping6 = try lab.exec(in: "site2", ["ping", "-6", "-c", "10", "-i", "0.2", "-W", "2", ipv6["site1"]!])
        XCTAssertTrue(ping6.output.contains("10 received"), "site2 -> site1 over IPv6: \(ping6.output)" + lab.diagnostics(controls))
        XCTAssertEqual(try answered(10, to: ipv6["site2"]!, from: "site1"), 10, "site1 -> site2 over IPv6")
        // By name (AAAA from the node's DNS), and `wow ping` to the IPv6 address.
        let netnsConfig = "/etc/netns/wowt-site1"
        try FileManager.default.createDirectory(atPath: netnsConfig, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: netnsConfig) }
        try "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n".write(toFile: netnsConfig + "/resolv.conf", atomically: true, encoding: .utf8)
        let byName = try lab.exec(in: "site1", ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "site2.wow"])
        XCTAssertEqual(byName.status, 0, byName.output)
        XCTAssertTrue(byName.output.contains(ipv6["site2"]!), byName.output)
        let overlayPing = try lab.run(lab.wowBinary.path, ["ping", ipv6["site2"]!, "-c", "2", "-i", "0.2", "--control", controls["site1"]!])
        XCTAssertEqual(overlayPing.status, 0, overlayPing.output)
        XCTAssertTrue(overlayPing.output.contains("reply from site2: seq=2"), overlayPing.output)

        // A checksummed TCP stream over IPv6.
        let stream = try lab.stream("stream6", from: "site1", to: "site2", address: "[\(ipv6["site2"]!)]:5001",
                                    bytes: 8 << 20, rate: 64 << 20)
        defer { stream.stop() }
        let finished = lab.waitFor(60) { stream.isFinished }
        XCTAssertTrue(finished, "the IPv6 stream did not finish" + lab.diagnostics(controls))
        guard finished else { return }
        let (sent, received) = try stream.results()
        XCTAssertEqual(received["bytes"] as? Int, stream.bytes, "every byte arrived")
        XCTAssertEqual(received["sha256"] as? String, sent["sha256"] as? String, "intact and in order")
        // The hosts' TCP over IPv6 used segmentation offload too.
        let sender6 = lab.status(controls["site1"]!)?["virtual_network"] as? [String: Any] ?? [:]
        XCTAssertGreaterThan(sender6["super_segments_from_device"] as? Int ?? 0, 0, "site1 read no IPv6 super-segment: \(sender6)")
        XCTAssertEqual(sender6["device_write_failures"] as? Int, 0, "\(sender6)")
        let receiver6 = lab.status(controls["site2"]!)?["virtual_network"] as? [String: Any] ?? [:]
        XCTAssertEqual(receiver6["device_write_failures"] as? Int, 0, "site2's device refused packets: \(receiver6)")

        // An IPv6 address in the network that nobody holds: ICMPv6 address unreachable from the node, after the
        // name service said so (and after up to 5 s when site1, joined moments ago, is the node nearest the
        // address: its own packets wait for a route while its ring forms, `HeldPackets`).
        let absent = try lab.exec(in: "site1", ["ping", "-6", "-c", "1", "-W", "12", "fd77:6f77::99"])
        XCTAssertNotEqual(absent.status, 0)
        XCTAssertTrue(absent.output.contains("Address unreachable") || absent.output.contains("Destination unreachable"),
                      "no ICMPv6 error for an address nobody holds: \(absent.output)")

        // A forged IPv6 source (site2's address) written into site1's device never leaves site1.
        let before = drops(controls["site1"]!)["vnet_foreign_source"] ?? 0
        let forge = """
            import socket, struct
            s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM)
            src, dst = socket.inet_pton(socket.AF_INET6, '\(ipv6["site2"]!)'), socket.inet_pton(socket.AF_INET6, '\(ipv6["site2"]!)')
            udp = struct.pack('!HHHH', 9, 9, 8, 0)
            packet = struct.pack('!IHBB', 0x60000000, len(udp), 17, 64) + src + dst + udp
            s.sendto(packet, ('wow0', 0x86DD))
            """
        let forged = try lab.exec(in: "site1", ["python3", "-c", forge])
        XCTAssertEqual(forged.status, 0, forged.output)
        XCTAssertTrue(lab.waitFor(5) { (drops(controls["site1"]!)["vnet_foreign_source"] ?? 0) > before },
                      "site1 did not drop the forged IPv6 packet: \(drops(controls["site1"]!))")
        XCTAssertNil(drops(controls["site2"]!)["vnet_spoofed_source"], "nothing forged reached site2")
    }

    /// A node carried to another site (its host's link moved from site2's NAT to site5's, its process
    /// stopped and started again with the same identity) keeps its virtual IP, and a TCP stream to it from
    /// site1 goes on: every byte arrives, in order, checksummed.
    func testNodeMovedToAnotherSiteKeepsItsIPAndItsTCPStream() throws {
        try lab.topology(["boot", "site1", "site2", "site5"], tools: Self.tools)
        let router = try startRouter()
        let site1 = try startSite("site1")
        var site2 = try startSite("site2")
        var controls = ["router": router, "site1": site1.control, "site2": site2.control]
        XCTAssertTrue(reachable(Self.ips["site2"]!, from: "site1"), "site1 never reached site2" + lab.diagnostics(controls))

        let total = 16 << 20
        let stream = try lab.stream("stream", from: "site1", to: "site2", address: "\(Self.ips["site2"]!):5001",
                                    bytes: total, rate: 1 << 20)
        defer { stream.stop() }
        XCTAssertTrue(lab.waitFor(20) { stream.progress() > 4 << 20 }, "the stream did not get going" + lab.diagnostics(controls))

        // The move: stop the node, carry its host to site5's NAT, start it again there.
        let moved = Date()
        site2.background.stop()
        try lab.script(["move", "site2", "nat5", "198.19.6"])
        site2 = try startSite("site2")
        controls["site2"] = site2.control
        XCTAssertTrue(lab.waitFor(10) { lab.status(site2.control) != nil }, "site2 did not come back" + lab.diagnostics(controls))
        print("VirtualNetworkNamespaceTests: site2 stopped, moved and started in \(String(format: "%.2f", Date().timeIntervalSince(moved))) s")

        let finished = lab.waitFor(90) { stream.isFinished }
        XCTAssertTrue(finished, "the stream did not finish after the move (received \(stream.progress()) of \(total) bytes)"
                      + lab.diagnostics(controls))
        guard finished else { return }
        let (sent, received) = try stream.results()
        XCTAssertEqual(received["bytes"] as? Int, total, "every byte arrived")
        XCTAssertEqual(received["sha256"] as? String, sent["sha256"] as? String, "intact and in order")
        let gap = received["longest_gap_s"] as? Double ?? -1
        print("VirtualNetworkNamespaceTests: migration: \(total) bytes intact; longest pause in the stream \(String(format: "%.2f", gap)) s")
        // It really moved: peers now see it behind site5's NAT.
        let site2Address = try XCTUnwrap(lab.status(site2.control)?["address"] as? String)
        let seenAtNewSite = lab.waitFor(10) {
            lab.connections(router).contains {
                $0["peer"] as? String == site2Address && ($0["remote_uri"] as? String)?.contains("198.18.0.15") == true
            }
        }
        XCTAssertTrue(seenAtNewSite, "the router does not see site2 behind site5's NAT" + lab.diagnostics(controls))
    }

    /// A checksummed TCP stream between two nodes whose only path loses, duplicates and reorders datagrams
    /// (`Tests/Scripts/udp-shaper.py` in the WAN router; the kernel here has no netem): every byte arrives, in
    /// order. The sender's TCP hands its device super-segments, which cross as one overlay packet per
    /// segment; the receiver's device gets them put back together where they arrived in order.
    func testATCPStreamCrossesAPathThatLosesDuplicatesAndReordersIntact() throws {
        try lab.topology(["boot", "pub"], tools: Self.tools)
        // Only the shaper carries UDP between the two hosts: the WAN router forwards none itself.
        let block = try lab.exec(in: "wan", ["iptables", "-A", "FORWARD", "-p", "udp", "-j", "DROP"])
        XCTAssertEqual(block.status, 0, block.output)
        let directory = lab.directory
        let shaperStats = directory + "/shaper.json"
        let shaper = try lab.background("shaper", in: "wan", [
            "python3", NamespaceLab.shaperScript, "--listen", "198.18.255.254:5000", "--to", "198.18.0.1:4000",
            "--loss", "0.02", "--duplicate", "0.02", "--reorder", "0.05", "--seed", "17", "--stats", shaperStats])
        defer { shaper.stop() }
        XCTAssertTrue(lab.waitFor(5) { FileManager.default.fileExists(atPath: shaperStats) }, "the shaper did not start")

        let ips = ["a": "100.64.0.1", "b": "100.64.0.2"]
        func config(_ name: String, listen: String, bootstrap: String) -> String {
            """
            node: { name: \(name) }
            \(NamespaceLab.membership(name))
            \(bootstrap)
            transports:
              - scheme: udp
                settings: { listen: "\(listen)" }
            \(Self.overlords)
            virtual_network: { device: wow0 }
            \(NamespaceLab.timers)
            """
        }
        let a = try lab.startNode("a", in: "boot", config: config("a", listen: "198.18.0.1:4000", bootstrap: ""),
                                  virtualIPs: [VirtualIP(ips["a"]!)!])
        let b = try lab.startNode("b", in: "pub", config: config("b", listen: "198.18.0.2:4000",
                                                                 bootstrap: "bootstrap: [\"udp://198.18.255.254:5000\"]"),
                                  virtualIPs: [VirtualIP(ips["b"]!)!])
        let controls = ["a": a.control, "b": b.control]
        XCTAssertTrue(reachable(ips["b"]!, from: "boot"), "a never reached b through the shaper" + lab.diagnostics(controls))

        let total = 16 << 20
        let stream = try lab.stream("stream", from: "boot", to: "pub", address: "\(ips["b"]!):5001", bytes: total, rate: 4 << 20)
        defer { stream.stop() }
        let finished = lab.waitFor(120) { stream.isFinished }
        XCTAssertTrue(finished, "the stream did not finish" + lab.diagnostics(controls))
        guard finished else { return }
        let (sent, received) = try stream.results()
        XCTAssertEqual(received["bytes"] as? Int, total, "every byte arrived")
        XCTAssertEqual(received["sha256"] as? String, sent["sha256"] as? String, "intact and in order")

        // The path really was that bad, for this stream's packets.
        shaper.stop()
        let stats = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: shaperStats))) as? [String: Any])
        let toB = try XCTUnwrap(stats["to_client"] as? [String: Int], "\(stats)")
        XCTAssertGreaterThan(toB["received"] ?? 0, total / 1_500, "the stream crossed the shaper: \(stats)")
        for what in ["dropped", "duplicated", "reordered"] {
            XCTAssertGreaterThan(toB[what] ?? 0, 100, "\(what) on the way to b: \(stats)")
        }
        // Super-segments were cut into segments at a and put back together at b.
        let aNetwork = lab.status(a.control)?["virtual_network"] as? [String: Any] ?? [:]
        let bNetwork = lab.status(b.control)?["virtual_network"] as? [String: Any] ?? [:]
        XCTAssertGreaterThan(aNetwork["super_segments_from_device"] as? Int ?? 0, 0, "a read no super-segment: \(aNetwork)")
        XCTAssertGreaterThan(bNetwork["super_segments_to_device"] as? Int ?? 0, 0, "b wrote none: \(bNetwork)")
        XCTAssertEqual(bNetwork["device_write_failures"] as? Int, 0, "b's device refused packets: \(bNetwork)")
        // Duplicates stop at the secure channel's replay window; no packet above one datagram was sent.
        let bDrops = drops(b.control)
        XCTAssertGreaterThan(bDrops.filter { $0.key.contains("replayed") }.values.reduce(0, +), 0, "\(bDrops)")
        print("VirtualNetworkNamespaceTests: lossy path: \(total) bytes intact; shaper to b \(toB); "
              + "b super-segments written \(bNetwork["super_segments_to_device"] ?? "?")")
    }

    /// A site that lets only TCP to 443 out (site3 behind `fw`) pings a site behind a port-restricted NAT
    /// (site1) as soon as both are in the ring, with the ring placed as it was when this lost every ping: site1
    /// at the larger address (its attempt wins races) and nearer to site3 than to the bootstrap (so site3 can
    /// route to site1 only over their own connection, which no direct path makes). The pair must be linked
    /// through the bootstrap at once (the relay starts beside the direct tries, and site1 takes site3's request
    /// over the relay though its own attempt tries direct paths). Default timers, as operators run them.
    func testA443OnlySiteReachesANATedRingNeighbourRightAfterJoining() throws {
        let ips = ["boot": "100.64.0.9", "site1": "100.64.0.1", "site3": "100.64.0.3"]
        func place(_ authority: NetworkAuthorityKey) -> Bool {
            let at = ips.mapValues { Address.forVirtualIP(VirtualIP($0)!, network: authority.authority.network) }
            return at["site1"]! > at["site3"]! && at["site3"]!.distance(to: at["site1"]!) < at["boot"]!.distance(to: at["site1"]!)
        }
        while !place(lab.authority) { lab.authority = NetworkAuthorityKey.create(name: "netns", now: SystemClock.unixTime()) }
        try lab.topology(["boot", "fw", "site1"], tools: ["ping"])
        func config(_ name: String, listen: String, bootstrap: Bool) -> String {
            """
            node: { name: \(name) }
            \(NamespaceLab.membership(name))
            \(bootstrap ? "bootstrap: [\"udp://198.18.0.1:4000\", \"tcp://198.18.0.1:4001\", \"tls://198.18.0.1:443\"]" : "")
            transports:
              - { scheme: udp, settings: { listen: "\(listen):4000" } }
              - { scheme: tcp, settings: { listen: "\(listen):4001" } }
              - { scheme: tls, settings: { listen: "\(listen):443" } }
              - { scheme: relay }
            virtual_network: { device: wow0 }
            """
        }
        var controls: [String: String] = [:]
        controls["boot"] = try lab.startNode("boot", in: "boot", config: config("boot", listen: "198.18.0.1", bootstrap: false),
                                             virtualIPs: [VirtualIP(ips["boot"]!)!]).control
        XCTAssertTrue(lab.waitFor(10) { lab.status(controls["boot"]!) != nil }, "the bootstrap never answered")
        for site in ["site1", "site3"] {
            controls[site] = try lab.startNode(site, in: site, config: config(site, listen: "0.0.0.0", bootstrap: true),
                                               virtualIPs: [VirtualIP(ips[site]!)!]).control
        }
        let bootAddress = try XCTUnwrap(lab.status(controls["boot"]!)?["address"] as? String)
        let joined = lab.waitFor(30) {
            ["site1", "site3"].allSatisfy { site in
                lab.connections(controls[site]!).contains { $0["peer"] as? String == bootAddress && NamespaceLab.hasStructuredType($0) }
            }
        }
        XCTAssertTrue(joined, "the sites never joined" + lab.diagnostics(controls))
        guard joined else { return }
        let result = try lab.exec(in: "site3", ["ping", "-c", "30", "-i", "0.2", "-W", "2", ips["site1"]!])
        let received = result.output.firstMatch(of: /(\d+) received/).flatMap { Int($0.1) } ?? 0
        let first = result.output.firstMatch(of: /bytes from .*icmp_seq=(\d+)/).flatMap { Int($0.1) }
        print("VirtualNetworkNamespaceTests: 443-only site -> NATed neighbour right after joining: \(received)/30 answered, "
              + "first reply to ping \(first.map(String.init) ?? "none")")
        XCTAssertGreaterThanOrEqual(received, 15, result.output + lab.diagnostics(controls))
        let site1Address = try XCTUnwrap(lab.status(controls["site1"]!)?["address"] as? String)
        let relayed = lab.connections(controls["site3"]!).first { $0["peer"] as? String == site1Address }
        XCTAssertEqual(relayed?["path"] as? String, "relayed via boot", "\(String(describing: relayed))")
    }
}
