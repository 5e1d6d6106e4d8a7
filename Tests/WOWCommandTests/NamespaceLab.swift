import Foundation
import WOWKit
import XCTest

/// Real-network tests' laboratory: Linux network namespaces with NATs and firewalls built by
/// `Tests/Scripts/netns-topology.sh` (docs/testing.md), `wow run` processes in them with real credentials,
/// and programs (ping, iperf3, a checksummed TCP stream) run inside them. Needs root, `ip` and `iptables`;
/// without them a test skips, except under CI (`CI=true`), where it fails.
///
/// Every namespace is named `wowt-*`, every underlay address is in 198.18.0.0/15, every virtual one in
/// 100.64.0.0/10. `topology` first removes what a crashed earlier run left; the test's teardown blocks stop
/// the processes started here (by PID) and delete the namespaces, also when the test fails.
final class NamespaceLab {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Scripts/netns-topology.sh").path
    static let streamScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Scripts/tcp-stream.py").path
    static let shaperScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Scripts/udp-shaper.py").path

    private unowned let test: XCTestCase
    var wowBinary: URL { WowExecutable.url }
    private(set) var directory = ""
    private(set) var ipPath = ""
    private(set) var logs: [(name: String, path: String)] = []
    /// The lab network's authority; every node is a member (as operators run them). A test may replace it
    /// before the first node starts (to choose where virtual IPs put nodes on the ring).
    var authority = NetworkAuthorityKey.create(name: "netns", now: SystemClock.unixTime())
    private var serial: UInt64 = 0

    init(_ test: XCTestCase) { self.test = test }

    /// The `security` line of node `name`'s config; `issueCredentials` writes the files it names.
    static func membership(_ name: String) -> String {
        "security: { ca: ca.crt, certificate: \(name).crt, key: \(name).key }"
    }

    /// Timers short enough for a test: a lost handshake is retried after 0.5 s.
    static let timers = """
        linking: { reply_timeout_ms: 500, attempts_per_uri: 2, retry_backoff_ms: 100 }
        liveness: { ping_interval_s: 2, dead_after_s: 6 }

        """

    /// The nodes' log level and how many of the last log lines a failure message shows: `debug` and 40, or
    /// `WOWT_LOG_LEVEL` and `WOWT_LOG_LINES` from the environment (e.g. `trace` and 400 to debug a failure).
    static let logLevel = ProcessInfo.processInfo.environment["WOWT_LOG_LEVEL"] ?? "debug"
    static let logLines = ProcessInfo.processInfo.environment["WOWT_LOG_LINES"].flatMap { Int($0) } ?? 40

    /// Writes `ca.crt`, `<name>.key` and `<name>.crt` (valid for a day, naming `virtualIPs`) next to the
    /// configs, unless `<name>.key` exists (a restarted node keeps its identity).
    func issueCredentials(for name: String, virtualIPs: [VirtualIP] = []) throws {
        guard !FileManager.default.fileExists(atPath: directory + "/\(name).key") else { return }
        let now = SystemClock.unixTime()
        serial += 1
        let member = try authority.member(name: name, virtualIPs: virtualIPs, notBefore: now - 60,
                                          notAfter: now + 86_400, serial: serial)
        try CredentialFile.write(member.authority.encoded, as: .authority, to: directory + "/ca.crt", replacing: true)
        try CredentialFile.write(member.identity.encoded, as: .nodeKey, to: directory + "/\(name).key", replacing: true)
        try CredentialFile.write(member.certificate.encoded, as: .certificate, to: directory + "/\(name).crt", replacing: true)
    }

    // MARK: Preconditions

    /// Skips (or, under CI, fails) unless this is root with `ip`, `iptables`, `tools` and a built `wow`.
    func requireEnvironment(tools: [String] = []) throws {
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
        for tool in tools where Self.tool(tool) == nil { try unavailable("the `\(tool)` command") }
        guard FileManager.default.isExecutableFile(atPath: wowBinary.path) else {
            try unavailable("the wow executable, not built at \(wowBinary.path)")
        }
        guard FileManager.default.fileExists(atPath: "/dev/net/tun") || tools.isEmpty else {
            try unavailable("/dev/net/tun (modprobe tun)")
        }
        ipPath = ip
        #endif
    }

    static func tool(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return directories.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    // MARK: Topology and processes

    @discardableResult
    func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try WowExecutable.run(URL(fileURLWithPath: executable), arguments)
    }

    /// Runs `command` inside namespace `wowt-<namespace>` to completion.
    @discardableResult
    func exec(in namespace: String, _ command: [String]) throws -> (status: Int32, output: String) {
        try run(ipPath, ["netns", "exec", "wowt-\(namespace)"] + command)
    }

    /// Removes leftovers of an earlier run, builds `parts` (see the script), and registers their removal.
    func topology(_ parts: [String], tools: [String] = []) throws {
        try requireEnvironment(tools: tools)
        directory = NSTemporaryDirectory() + "wowt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let down = try run("/bin/bash", [Self.script, "down"])
        XCTAssertEqual(down.status, 0, "removing leftover namespaces failed: \(down.output)")
        // Registered first, so it runs last, after the processes' teardown blocks.
        test.addTeardownBlock { [directory, script = Self.script] in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [script, "down"]
            try? process.run()
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try script(["up"] + parts)
    }

    /// Runs the topology script with `arguments` (`up ...`, `move ...`); fails the test if it fails.
    func script(_ arguments: [String]) throws {
        let result = try run("/bin/bash", [Self.script] + arguments)
        guard result.status == 0 else {
            XCTFail("netns-topology.sh \(arguments.joined(separator: " ")) failed: \(result.output)")
            throw XCTSkip("failed above")
        }
    }

    /// A process started in a namespace, stopped by the test's teardown if still running.
    final class Background {
        let process: Process
        let name: String
        init(process: Process, name: String) {
            self.process = process
            self.name = name
        }

        /// SIGTERM, then SIGKILL after `grace` seconds; waits for the exit.
        func stop(grace: TimeInterval = 3) {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(grace)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// Starts `command` in `wowt-<namespace>`, its output to `<name>.log` in the lab directory.
    func background(_ name: String, in namespace: String, _ command: [String]) throws -> Background {
        let logPath = directory + "/\(name).log"
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            logs.append((name, logPath))
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        let process = Process()
        // `ip netns exec` enters the namespace and execs the command in the same process: the PID is its.
        process.executableURL = URL(fileURLWithPath: ipPath)
        process.arguments = ["netns", "exec", "wowt-\(namespace)"] + command
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let background = Background(process: process, name: name)
        test.addTeardownBlock {
            background.stop()
            try? log.close()
        }
        return background
    }

    /// A checksummed TCP stream (`Tests/Scripts/tcp-stream.py`) between two namespaces, running.
    struct Stream {
        let receiver: Background
        let sender: Background
        let result: String
        let bytes: Int

        /// Bytes the receiver has read so far.
        func progress() -> Int {
            let data = FileManager.default.contents(atPath: result + "-received.json.progress") ?? Data()
            return (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["bytes"] as? Int ?? 0
        }

        /// Whether both ends wrote their results.
        var isFinished: Bool {
            FileManager.default.fileExists(atPath: result + "-received.json") && FileManager.default.fileExists(atPath: result + "-sent.json")
        }

        /// The two ends' results (bytes, sha256, for the receiver longest_gap_s).
        func results() throws -> (sent: [String: Any], received: [String: Any]) {
            func read(_ end: String) throws -> [String: Any] {
                let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result + "-\(end).json")))
                return try XCTUnwrap(object as? [String: Any], "\(end) result")
            }
            return (try read("sent"), try read("received"))
        }

        func stop() {
            sender.stop()
            receiver.stop()
        }
    }

    /// Starts a checksummed stream of `bytes` at `rate` bytes a second from `sender` to `address` (`IP:PORT`,
    /// IPv6 as `[IP]:PORT`), listened on in `receiver`, once the receiver listens. Stopped by the teardown.
    func stream(_ name: String, from sender: String, to receiver: String, address: String, bytes: Int,
                rate: Int) throws -> Stream {
        let result = directory + "/\(name)"
        let receiving = try background("\(name)-receiver", in: receiver, [
            "python3", NamespaceLab.streamScript, "receive", "--listen", address, "--result", result + "-received.json"])
        XCTAssertTrue(waitFor(5) { FileManager.default.fileExists(atPath: result + "-received.json.listening") },
                      "the stream's receiver never listened")
        let sending = try background("\(name)-sender", in: sender, [
            "python3", NamespaceLab.streamScript, "send", "--to", address, "--bytes", "\(bytes)", "--rate", "\(rate)",
            "--result", result + "-sent.json"])
        return Stream(receiver: receiving, sender: sending, result: result, bytes: bytes)
    }

    /// A running `wow run`.
    struct NodeProcess {
        var background: Background
        var control: String
    }

    /// Starts `wow run` in namespace `wowt-<namespace>` with `config` (credentials issued on first start,
    /// for `virtualIPs`).
    func startNode(_ name: String, in namespace: String, config: String,
                   virtualIPs: [VirtualIP] = [], arguments: [String] = []) throws -> NodeProcess {
        let configPath = directory + "/\(name).yml"
        let control = directory + "/\(name).sock"
        try issueCredentials(for: name, virtualIPs: virtualIPs)
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let background = try background(name, in: namespace, [wowBinary.path, "run", "--config", configPath,
                                                             "--control", control, "--log-level", Self.logLevel]
                                                             + arguments)
        return NodeProcess(background: background, control: control)
    }

    func status(_ control: String) -> [String: Any]? {
        guard let result = try? run(wowBinary.path, ["status", "--control", control, "--json"]), result.status == 0
        else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
    }

    func connections(_ control: String) -> [[String: Any]] {
        status(control)?["connections"] as? [[String: Any]] ?? []
    }

    func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return condition()
    }

    /// The nodes' statuses and the tail of every log, for a failure message.
    func diagnostics(_ controls: [String: String]) -> String {
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

    static func hasStructuredType(_ connection: [String: Any]) -> Bool {
        let types = (connection["local_types"] as? [String] ?? []) + (connection["remote_types"] as? [String] ?? [])
        return types.contains { $0.hasPrefix("structured") }
    }
}
