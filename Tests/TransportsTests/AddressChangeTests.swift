import WOWKit
import XCTest

@testable import Transports

/// When a wildcard-bound transport's addresses count as changed (the host moved to another network).
final class AddressChangeTests: XCTestCase {
    private func uris(_ texts: [String]) -> [TransportURI] { texts.map { try! TransportURI($0) } }

    func testANewLANAddressIsAChangeButTheNodesOwnVirtualIPIsNot() {
        let old = uris(["udp://198.19.2.11:4000"])
        XCTAssertEqual(IPEndpoint.changedAddressURIs(uris(["udp://198.19.16.100:4000"]), from: old, scheme: "udp", ignoring: []),
                       uris(["udp://198.19.16.100:4000"]))
        XCTAssertNil(IPEndpoint.changedAddressURIs(uris(["udp://198.19.2.11:4000", "udp://100.64.2.1:4000"]), from: old,
                                                   scheme: "udp", ignoring: ["100.64.2.1"]),
                     "the TUN coming up with the node's virtual IP is no move")
        XCTAssertEqual(IPEndpoint.changedAddressURIs(uris(["udp://198.19.16.100:4000", "udp://100.64.2.1:4000"]), from: old,
                                                     scheme: "udp", ignoring: ["100.64.2.1"]),
                       uris(["udp://198.19.16.100:4000"]), "and is never listed as an underlay address")
    }

    func testNothingNewOrLoopbackAloneIsNoChange() {
        let old = uris(["tcp://198.19.2.11:4001"])
        XCTAssertNil(IPEndpoint.changedAddressURIs(old, from: old, scheme: "tcp", ignoring: []))
        XCTAssertNil(IPEndpoint.changedAddressURIs(uris(["tcp://127.0.0.1:4001"]), from: old, scheme: "tcp", ignoring: []),
                     "a cable being re-plugged: the old addresses wait")
    }
}
