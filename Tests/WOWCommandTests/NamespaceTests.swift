import Foundation
import WOWKit
import XCTest

/// `wow run` processes in Linux network namespaces with real NATs and firewalls (iptables), built by
/// `Tests/Scripts/netns-topology.sh` (topology and manual use: `docs/testing.md`). Needs root, `ip` and
/// `iptables`; without them the tests skip, except under CI (`CI=true`), where they fail.
///
/// Every namespace is named `wowt-*` and every underlay address is in 198.18.0.0/15. Each test first removes
/// what a crashed earlier run left, and its teardown blocks stop the nodes it started (by PID) and delete the
/// namespaces, also when the test fails.
final class NamespaceTests: XCTestCase {
    private static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Scripts/netns-topology.sh").path

    private var wowBinary: URL { WowExecutable.url }

    private var directory = ""
    private var ipPath = ""
    private var logs: [(name: String, path: String)] = []
    /// The test network's authority; every node is a member (as operators run them).
    private let authority = NetworkAuthorityKey.create(name: "netns", now: SystemClock.unixTime())

    /// The `security` line of node `name`'s config; `startNode` writes the files it names.
    private static func membership(_ name: String) -> String {
        "security: { ca: ca.crt, certificate: \(name).crt, key: \(name).key }"
    }

    /// Writes `ca.crt`, `<name>.key` and `<name>.crt` (a certificate valid for a day) next to the configs.
    private func issueCredentials(for name: String) throws {
        let identity = NodeIdentity.generate()
        let now = SystemClock.unixTime()
        let certificate = try authority.issue(name: name, publicKey: identity.publicKey, virtualIPs: [],
                                              notBefore: now - 60, notAfter: now + 86_400, serial: UInt64(logs.count))
        try CredentialFile.write(authority.authority.encoded, as: .authority, to: directory + "/ca.crt", replacing: true)
        try CredentialFile.write(identity.encoded, as: .nodeKey, to: directory + "/\(name).key", replacing: true)
        try CredentialFile.write(certificate.encoded, as: .certificate, to: directory + "/\(name).crt", replacing: true)
    }

    // MARK: Preconditions

    /// Skips (or, under CI, fails) unless this is root with `ip`, `iptables` and a built `wow`.
    private func requireEnvironment() throws {
        func unavailable(_ reason: String) throws -> Never {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("namespace tests cannot run under CI: \(reason)")
                throw XCTSkip("failed above: \(reason)")
            }
            throw XCTSkip("namespace tests need \(reason)")
        }
        #if !os(Linux)
        try unavailable("Linux network namespaces")
        #else
        guard getuid() == 0 else { try unavailable("root (they create network namespaces and iptables rules)") }
        guard let ip = Self.tool("ip") else { try unavailable("the `ip` command (iproute2)") }
        guard Self.tool("iptables") != nil else { try unavailable("the `iptables` command") }
        guard FileManager.default.isExecutableFile(atPath: wowBinary.path) else {
            try unavailable("the wow executable, not built at \(wowBinary.path)")
        }
        ipPath = ip
        #endif
    }

    private static func tool(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return directories.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    // MARK: Topology and processes

    @discardableResult
    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try WowExecutable.run(URL(fileURLWithPath: executable), arguments)
    }

    /// Removes leftovers of an earlier run, builds `parts` (see the script), and registers their removal.
    private func topology(_ parts: [String]) throws {
        try requireEnvironment()
        directory = NSTemporaryDirectory() + "wowt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let down = try run("/bin/bash", [Self.script, "down"])
        XCTAssertEqual(down.status, 0, "removing leftover namespaces failed: \(down.output)")
        // Registered first, so it runs last, after the nodes' teardown blocks.
        addTeardownBlock { [directory, script = Self.script] in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [script, "down"]
            try? process.run()
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let up = try run("/bin/bash", [Self.script, "up"] + parts)
        guard up.status == 0 else {
            XCTFail("netns-topology.sh up \(parts.joined(separator: " ")) failed: \(up.output)")
            throw XCTSkip("failed above")
        }
    }

    /// Starts `wow run` in namespace `wowt-<namespace>` with `config`; returns its control socket path.
    private func startNode(_ name: String, in namespace: String, config: String) throws -> String {
        let configPath = directory + "/\(name).yml"
        let control = directory + "/\(name).sock"
        let logPath = directory + "/\(name).log"
        try issueCredentials(for: name)
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        // `ip netns exec` enters the namespace and execs wow in the same process, so the PID is wow's.
        process.executableURL = URL(fileURLWithPath: ipPath)
        process.arguments = ["netns", "exec", "wowt-\(namespace)", wowBinary.path, "run", "--config", configPath,
                             "--control", control, "--log-level", Self.logLevel]
        process.standardOutput = log
        process.standardError = log
        try process.run()
        logs.append((name, logPath))
        let pid = process.processIdentifier
        addTeardownBlock {
            if process.isRunning {
                kill(pid, SIGTERM)
                let deadline = Date().addingTimeInterval(3)
                while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
                if process.isRunning { kill(pid, SIGKILL) }
                process.waitUntilExit()
            }
            try? log.close()
        }
        return control
    }

    private func status(_ control: String) -> [String: Any]? {
        guard let result = try? run(wowBinary.path, ["status", "--control", control, "--json"]), result.status == 0
        else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
    }

    private func connections(_ control: String) -> [[String: Any]] {
        status(control)?["connections"] as? [[String: Any]] ?? []
    }

    private func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return condition()
    }

    /// The nodes' statuses and the tail of their logs, for a failure message.
    private func diagnostics(_ controls: [String: String]) -> String {
        var text = ""
        for (name, control) in controls.sorted(by: { $0.key < $1.key }) {
            let json = (try? run(wowBinary.path, ["status", "--control", control]))?.output ?? "no status"
            text += "\n--- \(name) status:\n\(json)"
        }
        for (name, path) in logs {
            let lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n")
            text += "\n--- \(name) log (last \(Self.logLines) lines):\n"
                + lines.suffix(Self.logLines).joined(separator: "\n")
        }
        return text
    }

    private static func hasStructuredType(_ connection: [String: Any]) -> Bool {
        let types = (connection["local_types"] as? [String] ?? []) + (connection["remote_types"] as? [String] ?? [])
        return types.contains { $0.hasPrefix("structured") }
    }

    /// The nodes' log level and how many of the last log lines a failure message shows: `debug` and 40, or
    /// `WOWT_LOG_LEVEL` and `WOWT_LOG_LINES` from the environment (e.g. `trace` and 400 to debug a failure).
    private static let logLevel = ProcessInfo.processInfo.environment["WOWT_LOG_LEVEL"] ?? "debug"
    private static let logLines = ProcessInfo.processInfo.environment["WOWT_LOG_LINES"].flatMap { Int($0) } ?? 40

    /// Timers short enough for a test: a lost handshake is retried after 0.5 s.
    private static let timers = """
        linking: { reply_timeout_ms: 500, attempts_per_uri: 2, retry_backoff_ms: 100 }
        liveness: { ping_interval_s: 2, dead_after_s: 6 }

        """

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
