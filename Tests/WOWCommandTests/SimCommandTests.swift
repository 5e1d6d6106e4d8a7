import ArgumentParser
import XCTest

@testable import WOWCommand

final class SimCommandTests: XCTestCase {
    private func parseError(_ arguments: [String]) -> String? {
        do {
            _ = try WOWRootCommand.parseAsRoot(arguments)
            return nil
        } catch {
            return WOWRootCommand.message(for: error)
        }
    }

    func testDefaultsMatchTheIssue() throws {
        let command = try XCTUnwrap(try WOWRootCommand.parseAsRoot(["sim"]) as? SimCommand)
        let options = try command.options()
        XCTAssertEqual(options.nodes, 1000)
        XCTAssertEqual(options.roundTrip, .milliseconds(20) ... .milliseconds(250))
        XCTAssertEqual(options.loss, 0)
        XCTAssertTrue(options.natMix.isEmpty)
    }

    func testOptionsAreParsed() throws {
        let command = try XCTUnwrap(try WOWRootCommand.parseAsRoot(
            ["sim", "--nodes", "50", "--seed", "9", "--rtt", "50-200", "--loss", "0.01",
             "--nat", "port-restricted=0.4,symmetric=0.2", "--churn", "10", "--churn-minutes", "2"]) as? SimCommand)
        let options = try command.options()
        XCTAssertEqual(options.nodes, 50)
        XCTAssertEqual(options.seed, 9)
        XCTAssertEqual(options.roundTrip, .milliseconds(50) ... .milliseconds(200))
        XCTAssertEqual(options.loss, 0.01)
        XCTAssertEqual(options.natMix, [.portRestricted: 0.4, .symmetric: 0.2])
        XCTAssertEqual(options.churnPerMinute, 10)
        XCTAssertEqual(options.churnDuration, .seconds(120))
    }

    func testBadOptionsGetSpecificErrors() {
        let cases: [([String], String)] = [
            (["sim", "--nodes", "1"], "--nodes"),
            (["sim", "--nodes", "lots"], "nodes"),
            (["sim", "--rtt", "250-20"], "--rtt"),
            (["sim", "--rtt", "abc"], "--rtt"),
            (["sim", "--loss", "1.5"], "--loss"),
            (["sim", "--nat", "carrier-grade=0.5"], "unknown NAT kind 'carrier-grade'"),
            (["sim", "--nat", "symmetric=0.8,udp-blocked=0.5"], "more than 1"),
            (["sim", "--nat", "symmetric"], "KIND=SHARE"),
            (["sim", "--settle-s", "5"], "--settle-s"),
            (["sim", "--near", "0"], "--near"),
            (["sim", "--frobnicate"], "frobnicate"),
        ]
        for (arguments, expected) in cases {
            let message = parseError(arguments)
            XCTAssertNotNil(message, "\(arguments) was accepted")
            XCTAssertTrue(message?.contains(expected) == true, "\(arguments): \(message ?? "")")
        }
    }
}
