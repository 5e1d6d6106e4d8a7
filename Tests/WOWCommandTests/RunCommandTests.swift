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
            transports:
              - scheme: carrier-pigeon
            """)
        let message = try XCTUnwrap(failure(["run", "--config", path]))
        XCTAssertTrue(message.contains("carrier-pigeon"), message)
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
