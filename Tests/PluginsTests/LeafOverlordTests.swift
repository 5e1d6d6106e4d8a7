import XCTest
import WOWKit

@testable import Plugins

/// The order in which a joining node tries its bootstrap URIs.
final class LeafOverlordTests: XCTestCase {
    func testBootstrapURIsTakeTheirTransportsInTurn() throws {
        let listed = try ["udp://198.18.0.1:4000", "udp://198.18.0.2:4000", "tcp://198.18.0.1:4001",
                          "tcp://198.18.0.2:4001", "tls://198.18.0.1:443", "tls://198.18.0.2:443"].map(TransportURI.init)
        XCTAssertEqual(LeafOverlord.interleavingTransports(listed).map(\.text),
                       ["udp://198.18.0.1:4000", "tcp://198.18.0.1:4001", "tls://198.18.0.1:443",
                        "udp://198.18.0.2:4000", "tcp://198.18.0.2:4001", "tls://198.18.0.2:443"])
        let uneven = try ["tls://198.18.0.1:443", "udp://198.18.0.1:4000", "udp://198.18.0.2:4000", "udp://198.18.0.3:4000"]
            .map(TransportURI.init)
        XCTAssertEqual(LeafOverlord.interleavingTransports(uneven).map(\.text),
                       ["tls://198.18.0.1:443", "udp://198.18.0.1:4000", "udp://198.18.0.2:4000", "udp://198.18.0.3:4000"],
                       "the first transport listed goes first; a transport with more URIs keeps the rest in order")
        XCTAssertEqual(LeafOverlord.interleavingTransports([]), [])
    }
}
