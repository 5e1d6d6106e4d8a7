import ArgumentParser
import Foundation
import XCTest

@testable import WOWCommand

final class RunCommandTests: XCTestCase {
    private func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "wow-run-\(UUID().uuidString).yml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func failure(_ arguments: [String]) -> String? {
        do {
            var command = try WOWRootCommand.parseAsRoot(arguments)
            try command.run()
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testMissingConfigFileIsAClearError() {
        let message = failure(["run", "--config", "/nonexistent/wow.yml"])
        XCTAssertNotNil(message)
        XCTAssertTrue(message?.contains("/nonexistent/wow.yml") == true, message ?? "")
    }

    func testBadConfigNamesFileLineAndKey() throws {
        let path = try write("""
            node:
              name: alpha
            transports:
              - scheme: udp
            liveness:
              ping_interval_s: abc
            """)
        let message = try XCTUnwrap(failure(["run", "--config", path]))
        XCTAssertTrue(message.contains(path), message)
        XCTAssertTrue(message.contains(":6:"), message)
        XCTAssertTrue(message.contains("liveness.ping_interval_s"), message)
    }

    func testUnknownTransportListsTheKnownOnes() throws {
        let path = try write("""
            node: { name: alpha }
            security: { insecure: true }
            transports:
              - scheme: carrier-pigeon
            """)
        let message = try XCTUnwrap(failure(["run", "--config", path]))
        XCTAssertTrue(message.contains("carrier-pigeon"), message)
    }

    func testConfigWithoutSecuritySectionIsRefused() throws {
        let path = try write("""
            node: { name: alpha }
            transports:
              - scheme: udp
            """)
        let message = try XCTUnwrap(failure(["run", "--config", path]))
        XCTAssertTrue(message.contains("\(path) has no 'security' section"), message)
        XCTAssertTrue(message.contains("`wow ca init`, `wow keygen`, `wow cert issue`"), message)
        XCTAssertTrue(message.contains("security: { insecure: true }"), message)
    }

    /// Credentials made with the CLI, the node key then opened to the group: `wow run` refuses the config at
    /// security.key, before starting anything.
    func testGroupReadableNodeKeyIsRefusedAtLoad() throws {
        let fixture = try CredentialFixture(self)
        try fixture.makeAuthority()
        try fixture.makeMember("alpha", virtualIPs: ["100.64.0.7"])
        chmod(fixture.path("alpha.key"), 0o640)
        let config = fixture.path("alpha.yml")
        try """
            node: { name: alpha }
            transports:
              - scheme: udp
                settings: { listen: "127.0.0.1:0" }
            security:
              ca: ca.crt
              certificate: alpha.crt
              key: alpha.key
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try fixture.wow(["run", "--config", config, "--control", fixture.path("alpha.sock")])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("\(config):8:"), result.output)
        XCTAssertTrue(result.output.contains("security.key"), result.output)
        XCTAssertTrue(result.output.contains("readable by other users (mode 640)"), result.output)
    }

    func testBadLogLevelIsRejected() {
        let message = failure(["run", "--config", "x.yml", "--log-level", "loud"])
        XCTAssertTrue(message?.contains("--log-level") == true, message ?? "")
    }

    func testStatusNeedsOneWayToFindTheNode() {
        XCTAssertNotNil(failure(["status"]))
        XCTAssertNotNil(failure(["status", "--name", "a", "--control", "/tmp/x.sock"]))
        let message = failure(["status", "--control", "/nonexistent/wow.sock"])
        XCTAssertTrue(message?.contains("no node answers at /nonexistent/wow.sock") == true, message ?? "")
    }
}
