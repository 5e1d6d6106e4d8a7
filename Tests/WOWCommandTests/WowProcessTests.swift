import Foundation
import XCTest

/// The `wow` executable as an operator runs it: two `wow run` processes on loopback, `wow status`, and a
/// clean stop on SIGTERM.
final class WowProcessTests: XCTestCase {
    private var wowBinary: URL { WowExecutable.url }

    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try WowExecutable.run(wowBinary, arguments)
    }

    private func start(_ arguments: [String], log: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = wowBinary
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: log)
        }
        try process.run()
        addTeardownBlock { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        return process
    }

    private func status(_ control: String) -> [String: Any]? {
        guard let result = try? run(["status", "--control", control, "--json"]), result.status == 0 else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
    }

    private func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return condition()
    }

    func testTwoNodesJoinAndReportStatusThenStopCleanly() throws {
        guard FileManager.default.isExecutableFile(atPath: wowBinary.path) else {
            throw XCTSkip("the wow executable is not built at \(wowBinary.path)")
        }
        let directory = NSTemporaryDirectory() + "wow-process-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let controlA = directory + "/a.sock"
        let controlB = directory + "/b.sock"
        try "node: { name: alpha }\nsecurity: { insecure: true }\ntransports:\n  - scheme: udp\n    settings: { listen: \"127.0.0.1:0\" }\n"
            .write(toFile: directory + "/a.yml", atomically: true, encoding: .utf8)
        let a = try start(["run", "--config", directory + "/a.yml", "--control", controlA])
        XCTAssertTrue(waitFor(10) { status(controlA) != nil }, "node alpha never answered on its control socket")
        let uris = try XCTUnwrap(status(controlA)?["uris"] as? [String])
        let bootstrap = try XCTUnwrap(uris.first { $0.hasPrefix("udp://127.0.0.1:") })

        try "node: { name: beta }\nsecurity: { insecure: true }\nbootstrap: [\"\(bootstrap)\"]\ntransports:\n  - scheme: udp\n    settings: { listen: \"127.0.0.1:0\" }\n"
            .write(toFile: directory + "/b.yml", atomically: true, encoding: .utf8)
        let b = try start(["run", "--config", directory + "/b.yml", "--control", controlB])
        let joined = waitFor(15) {
            guard let connections = status(controlB)?["connections"] as? [[String: Any]] else { return false }
            return connections.contains { ($0["local_types"] as? [String])?.contains("structured.near") == true
                || ($0["remote_types"] as? [String])?.contains("structured.near") == true }
        }
        XCTAssertTrue(joined, "beta never got a structured connection to alpha")

        // The human-readable form names the peer (by address: an insecure overlay has no certificate names),
        // its role and the path to it.
        let text = try run(["status", "--control", controlB])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.output.contains("node beta"), text.output)
        let alphaAddress = try XCTUnwrap(status(controlA)?["address"] as? String)
        let row = try XCTUnwrap(text.output.split(separator: "\n").first { $0.contains(alphaAddress.prefix(12)) && $0.contains("direct") },
                                text.output)
        XCTAssertTrue(row.contains("direct udp " + bootstrap.dropFirst("udp://".count)), text.output)
        XCTAssertTrue(row.contains("neighbour"), text.output)

        b.terminate()  // SIGTERM
        b.waitUntilExit()
        XCTAssertEqual(b.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: controlB), "the control socket was left behind")
        // Alpha hears beta's goodbye and drops the connection at once.
        XCTAssertTrue(waitFor(5) { (status(controlA)?["connections"] as? [Any])?.isEmpty == true })
        a.interrupt()  // SIGINT
        a.waitUntilExit()
        XCTAssertEqual(a.terminationStatus, 0)
    }

    /// Under systemd or a pipe stdout is block-buffered: the start-up lines must be there while the node runs,
    /// not only after it exits.
    func testStartUpLinesAppearWhileTheNodeRuns() throws {
        guard FileManager.default.isExecutableFile(atPath: wowBinary.path) else {
            throw XCTSkip("the wow executable is not built at \(wowBinary.path)")
        }
        let directory = NSTemporaryDirectory() + "wow-process-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        try "node: { name: alpha }\nsecurity: { insecure: true }\ntransports:\n  - scheme: udp\n    settings: { listen: \"127.0.0.1:0\" }\n"
            .write(toFile: directory + "/a.yml", atomically: true, encoding: .utf8)
        let output = directory + "/stdout.txt"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = wowBinary
        process.arguments = ["run", "--config", directory + "/a.yml", "--control", directory + "/a.sock"]
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
        addTeardownBlock { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        let printed = waitFor(10) {
            (try? String(contentsOfFile: output, encoding: .utf8))?.contains("wow: node alpha at ") == true
        }
        XCTAssertTrue(process.isRunning, "the node stopped")
        XCTAssertTrue(printed, "the start-up lines were not written while the node ran")
    }

    /// Credentials made by the CLI itself (`wow ca init`, `wow keygen`, `wow cert issue`, each a process),
    /// two secured `wow run` processes on loopback link, and `wow cert show --ca` accepts both certificates.
    func testTwoNodesWithCredentialsMadeByTheCLILink() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority(name: "lab")
        let issuedA = try fixture.makeMember("alpha", virtualIPs: ["100.64.0.1"])
        let issuedB = try fixture.makeMember("beta", virtualIPs: ["100.64.0.2"])
        for name in ["alpha", "beta"] {
            XCTAssertEqual(fixture.mode("\(name).key"), 0o600)
            try fixture.succeed(["cert", "show", fixture.path("\(name).crt"), "--ca", fixture.path("ca.crt")])
        }
        let addressA = try XCTUnwrap(CredentialFixture.value("ring address", in: issuedA))
        let addressB = try XCTUnwrap(CredentialFixture.value("ring address", in: issuedB))
        func config(_ name: String, bootstrap: String?) -> String {
            """
            node: { name: \(name) }
            \(bootstrap.map { "bootstrap: [\"\($0)\"]" } ?? "")
            transports:
              - scheme: udp
                settings: { listen: "127.0.0.1:0" }
            security:
              ca: ca.crt
              certificate: \(name).crt
              key: \(name).key
            """
        }
        let controlA = fixture.path("a.sock"), controlB = fixture.path("b.sock")
        try config("alpha", bootstrap: nil).write(toFile: fixture.path("a.yml"), atomically: true, encoding: .utf8)
        let a = try start(["run", "--config", fixture.path("a.yml"), "--control", controlA], log: fixture.path("a.log"))
        XCTAssertTrue(waitFor(10) { status(controlA) != nil }, "node alpha never answered on its control socket")
        XCTAssertEqual(status(controlA)?["address"] as? String, addressA, "alpha is not at its certificate's address")
        let uris = try XCTUnwrap(status(controlA)?["uris"] as? [String])
        let bootstrap = try XCTUnwrap(uris.first { $0.hasPrefix("udp://127.0.0.1:") })

        try config("beta", bootstrap: bootstrap).write(toFile: fixture.path("b.yml"), atomically: true, encoding: .utf8)
        let b = try start(["run", "--config", fixture.path("b.yml"), "--control", controlB])
        let linked = waitFor(15) {
            guard let connections = status(controlB)?["connections"] as? [[String: Any]] else { return false }
            return connections.contains { $0["peer"] as? String == addressA }
        }
        XCTAssertTrue(linked, "beta never connected to alpha with CLI-made credentials")
        XCTAssertEqual(status(controlB)?["address"] as? String, addressB, "beta is not at its certificate's address")
        // `wow status` tells the operator how the node is secured and who its ring neighbours are.
        let security = try XCTUnwrap(status(controlB)?["security"] as? [String: Any])
        XCTAssertEqual(security["certificate_name"] as? String, "beta")
        XCTAssertEqual(security["virtual_ips"] as? [String], ["100.64.0.2"])
        XCTAssertGreaterThanOrEqual(security["secure_edges"] as? Int ?? 0, 1)
        let shown = try run(["status", "--control", controlB])
        XCTAssertEqual(shown.status, 0)
        XCTAssertTrue(shown.output.contains("security: network "), shown.output)
        XCTAssertTrue(shown.output.contains("certificate 'beta' (100.64.0.2)"), shown.output)
        // Peers by their certificate names, with their virtual IPs and the path.
        XCTAssertTrue(shown.output.contains("node beta (100.64.0.2)"), shown.output)
        XCTAssertTrue(shown.output.contains("ring neighbours: left alpha, right alpha"), shown.output)
        let row = try XCTUnwrap(shown.output.split(separator: "\n").first { $0.hasPrefix("  alpha ") }, shown.output)
        XCTAssertTrue(row.contains("100.64.0.1") && row.contains("direct udp 127.0.0.1:") && row.contains("neighbour"), shown.output)
        let peer = try XCTUnwrap((status(controlB)?["connections"] as? [[String: Any]])?.first { $0["peer"] as? String == addressA })
        XCTAssertEqual(peer["peer_name"] as? String, "alpha")
        XCTAssertEqual(peer["peer_virtual_ips"] as? [String], ["100.64.0.1"])
        XCTAssertTrue((peer["path"] as? String)?.hasPrefix("direct udp 127.0.0.1:") == true, "\(peer)")
        XCTAssertTrue((status(controlB)?["nat"] as? String)?.isEmpty == false)

        // `wow ping` by name and by virtual IP: each reply with its round trip, hops and path; exit status 0.
        let pinged = try run(["ping", "alpha", "-c", "2", "-i", "0.1", "--control", controlB])
        XCTAssertEqual(pinged.status, 0, pinged.output)
        XCTAssertTrue(pinged.output.contains("PING alpha (100.64.0.1)"), pinged.output)
        XCTAssertEqual(pinged.output.components(separatedBy: "reply from alpha: seq=").count - 1, 2, pinged.output)
        XCTAssertTrue(pinged.output.contains("hops=1/1 path: direct udp 127.0.0.1:"), pinged.output)
        XCTAssertTrue(pinged.output.contains("2 sent, 2 received, 0% loss"), pinged.output)
        let byIP = try run(["ping", "100.64.0.1", "-c", "1", "--until-direct", "--control", controlB])
        XCTAssertEqual(byIP.status, 0, byIP.output)
        XCTAssertTrue(byIP.output.contains("direct after "), byIP.output)
        // Nobody by that name, and a virtual IP nobody holds: a clear message, exit status 1.
        let unknown = try run(["ping", "zed", "--control", controlB])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.output.contains("no member named 'zed' is known"), unknown.output)
        let nobody = try run(["ping", "100.64.0.99", "-c", "1", "-W", "0.5", "--control", controlB])
        XCTAssertEqual(nobody.status, 1, nobody.output)
        XCTAssertTrue(nobody.output.contains("no reply from 100.64.0.99: seq=1"), nobody.output)

        // An outsider: a certificate of its own network, made the same way. Alpha refuses it and says why.
        let outside = try CredentialFixture(self)
        try outside.makeAuthority(name: "elsewhere")
        try outside.makeMember("mallory")
        let mallory = """
            node: { name: mallory }
            bootstrap: ["\(bootstrap)"]
            transports:
              - scheme: udp
                settings: { listen: "127.0.0.1:0" }
            security: { ca: ca.crt, certificate: mallory.crt, key: mallory.key }
            """
        try mallory.write(toFile: outside.path("m.yml"), atomically: true, encoding: .utf8)
        let controlM = outside.path("m.sock")
        let m = try start(["run", "--config", outside.path("m.yml"), "--control", controlM])
        XCTAssertTrue(waitFor(10) {
            (try? String(contentsOfFile: fixture.path("a.log"), encoding: .utf8))?.contains("holds a certificate of network") == true
        }, "alpha did not log why it refused mallory: \((try? String(contentsOfFile: fixture.path("a.log"), encoding: .utf8)) ?? "")")
        let malloryConnections = status(controlM)?["connections"] as? [[String: Any]]
        XCTAssertEqual(malloryConnections?.count, 0, "mallory got in: \(malloryConnections ?? [])")
        m.terminate()
        m.waitUntilExit()

        b.terminate()
        b.waitUntilExit()
        XCTAssertEqual(b.terminationStatus, 0)
        a.terminate()
        a.waitUntilExit()
        XCTAssertEqual(a.terminationStatus, 0)
    }
}

/// `wow run`'s lifecycle: SIGHUP reloads what a running node can take, SIGTERM stops it cleanly.
final class WowReloadTests: XCTestCase {
    private func waitFor(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return condition()
    }

    func testSIGHUPRenewsTheCertificateAndNamesChangesThatNeedARestart() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority(name: "lab")
        try fixture.makeMember("alpha", extra: ["--days", "10"])
        let configPath = fixture.path("a.yml")
        func config(transport: String) -> String {
            """
            node: { name: alpha }
            transports:
              - scheme: \(transport)
                settings: { listen: "127.0.0.1:0" }
            security: { ca: ca.crt, certificate: alpha.crt, key: alpha.key }
            """
        }
        try config(transport: "udp").write(toFile: configPath, atomically: true, encoding: .utf8)
        let control = fixture.path("a.sock"), log = fixture.path("a.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = WowExecutable.url
        process.arguments = ["run", "--config", configPath, "--control", control]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        addTeardownBlock { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        func expiry() -> Int? {
            guard let result = try? WowExecutable.run(WowExecutable.url, ["status", "--control", control, "--json"]),
                  result.status == 0,
                  let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
                  let security = object["security"] as? [String: Any] else { return nil }
            return security["certificate_expires"] as? Int
        }
        XCTAssertTrue(waitFor(10) { expiry() != nil }, "the node never answered on its control socket")
        let before = try XCTUnwrap(expiry())

        // A renewed certificate (same key, 30 days) and a transport change, then SIGHUP.
        try fixture.makeCertificate("alpha", extra: ["--days", "30", "--force"])
        try config(transport: "tcp").write(toFile: configPath, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        XCTAssertTrue(waitFor(10) { (expiry() ?? 0) > before + 15 * 86_400 },
                      "the running node still shows the old certificate after SIGHUP")
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(logged.contains("SIGHUP: credentials reloaded"), logged)
        XCTAssertTrue(logged.contains("changed=transports") && logged.contains("take a restart"), logged)
        XCTAssertTrue(process.isRunning, "SIGHUP stopped the node")

        // A broken config on SIGHUP is reported and changes nothing.
        try "node: [".write(toFile: configPath, atomically: true, encoding: .utf8)
        kill(process.processIdentifier, SIGHUP)
        XCTAssertTrue(waitFor(10) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("the config cannot be used")
        })
        XCTAssertTrue(process.isRunning)

        process.terminate()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
    }
}
