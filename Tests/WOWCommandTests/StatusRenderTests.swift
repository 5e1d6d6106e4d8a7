import Foundation
import WOWKit
import XCTest

@testable import WOWCommand

/// `wow status`'s text: each connection's other paths, as a failover would take them.
final class StatusRenderTests: XCTestCase {
    private func connection(alternatives: [String], leftPath: String?,
                            formerPaths: [[String: Any]]? = nil) throws -> NodeStatus.ConnectionStatus {
        var fields: [String: Any] = [
            "peer": String(repeating: "ab", count: 20), "local_types": ["structured.near"], "remote_types": [],
            "transport": "tcp", "local_uri": "tcp://198.18.0.12:4001", "remote_uri": "tcp://198.18.0.1:4001",
            "inbound": false, "rtt_ms": 0.7, "age_s": 30.0, "silent_s": 0.2, "peer_uris": [], "path_switches": 1,
            "peer_name": "boot", "peer_virtual_ips": ["100.64.0.1"], "path": "direct tcp 198.18.0.1:4001",
            "alternatives": alternatives,
        ]
        if let leftPath { fields["left_path"] = leftPath }
        if let formerPaths { fields["former_paths"] = formerPaths }
        return try JSONDecoder().decode(NodeStatus.ConnectionStatus.self,
                                        from: JSONSerialization.data(withJSONObject: fields))
    }

    func testOtherPathsListTheAlternativesThenThePathAFailoverLeft() throws {
        let moved = try connection(alternatives: ["direct udp 198.18.0.1:4000", "direct tls 198.18.0.1:443", "relayed via alpha"],
                                   leftPath: "direct udp 198.18.0.1:4000")
        XCTAssertEqual(StatusCommand.otherPaths(of: moved),
                       "udp 198.18.0.1:4000, tls 198.18.0.1:443, via alpha; left udp 198.18.0.1:4000")
        XCTAssertEqual(StatusCommand.otherPaths(of: try connection(alternatives: [], leftPath: nil)), "-")
        XCTAssertEqual(StatusCommand.otherPaths(of: try connection(alternatives: [], leftPath: "relayed via alpha")),
                       "-; left via alpha")
    }

    func testPathsTheConnectionWasOnShowTheirRoundTripAndLastWord() throws {
        let former: [[String: Any]] = [
            ["path": "direct udp 198.18.0.1:4000", "rtt_ms": 0.64, "last_heard_s": 12.3, "left_s": 11.1],
            ["path": "relayed via alpha", "last_heard_s": 40.0, "left_s": 38.0],
        ]
        let moved = try connection(alternatives: ["direct udp 198.18.0.1:4000", "direct tls 198.18.0.1:443", "relayed via alpha"],
                                   leftPath: "direct udp 198.18.0.1:4000", formerPaths: former)
        XCTAssertEqual(StatusCommand.otherPaths(of: moved),
                       "udp 198.18.0.1:4000 (0.6 ms, 12 s ago), tls 198.18.0.1:443, via alpha (40 s ago); left udp 198.18.0.1:4000")
        let notAnAlternative = try connection(alternatives: [], leftPath: "direct udp 198.18.0.1:4000", formerPaths: former)
        XCTAssertEqual(StatusCommand.otherPaths(of: notAnAlternative), "-; left udp 198.18.0.1:4000 (0.6 ms, 12 s ago)")
    }
}
