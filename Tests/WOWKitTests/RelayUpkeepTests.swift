import XCTest

@testable import WOWKit

/// What a node with relayed connections keeps up: forwarders and direct retries, as event -> directives.
final class RelayUpkeepTests: XCTestCase {
    private let local = Address(high: 0x80 << 56, middle: 0, low: 0)

    private func address(_ byte: UInt64) -> Address { Address(high: byte << 56, middle: 0, low: 0) }

    private func connection(_ byte: UInt64, transport: String, types: Set<ConnectionType> = ["structured.near"],
                            uris: [String] = [], createdAt seconds: Int64 = 0) -> Connection {
        // A relayed edge runs through forwarder 0x01 (`relay://<forwarder>/<peer>`).
        let remote = transport == "relay" ? "relay://\(address(1).hex)/\(address(byte).hex)" : "\(transport)://198.18.0.\(byte):4000"
        return Connection(peer: NodeInfo(address: address(byte), uris: uris.map { try! TransportURI($0) }),
                          localTypes: types, remoteTypes: [], edgeID: EdgeID(byte), transport: transport,
                          localURI: try! TransportURI("udp://198.18.0.128:4000"), remoteURI: try! TransportURI(remote),
                          isInbound: false, createdAt: Timestamp(nanoseconds: seconds * 1_000_000_000))
    }

    private func table(_ connections: [Connection]) -> ConnectionTable {
        var table = ConnectionTable(localAddress: local)
        for connection in connections { table.upsert(connection) }
        return table
    }

    private func upkeep() -> RelayUpkeep { RelayUpkeep(scheme: "relay", retryInterval: .seconds(30), local: local) }

    private func seconds(_ value: Int64) -> Timestamp { Timestamp(nanoseconds: value * 1_000_000_000) }

    // MARK: - Forwarders

    func testWithRelayedConnectionsTheNearestDirectOnesBecomeForwardersOneAtATime() {
        var upkeep = upkeep()
        var random = SeededRandom(seed: 4)
        var expected = SeededRandom(seed: 4)
        var connections = table([connection(0x70, transport: "udp"), connection(0x90, transport: "udp"),
                                 connection(0x10, transport: "udp", types: ["structured.far"]),
                                 connection(0x84, transport: "relay")])
        XCTAssertEqual(upkeep.forwarders(in: connections, random: &random),
                       [.addLocalType(.forwarder, to: address(0x90), announcedWith: expected.next())],
                       "one at a time, nearest first (0x90 and 0x70 are 0x10 away; the left one, greater, comes first)")
        connections.update(address(0x90)) { $0.localTypes.insert(.forwarder) }
        XCTAssertEqual(upkeep.forwarders(in: connections, random: &random),
                       [.addLocalType(.forwarder, to: address(0x70), announcedWith: expected.next())])
        connections.update(address(0x70)) { $0.localTypes.insert(.forwarder) }
        XCTAssertEqual(upkeep.forwarders(in: connections, random: &random), [], "two forwarders are enough")
    }

    func testARelayedNodeWithOnlyOneDirectConnectionKeepsThatOne() {
        var upkeep = upkeep()
        var random = SeededRandom(seed: 1)
        var expected = SeededRandom(seed: 1)
        var connections = table([connection(0x70, transport: "udp"), connection(0x84, transport: "relay")])
        XCTAssertEqual(upkeep.forwarders(in: connections, random: &random),
                       [.addLocalType(.forwarder, to: address(0x70), announcedWith: expected.next())])
        connections.update(address(0x70)) { $0.localTypes.insert(.forwarder) }
        XCTAssertEqual(upkeep.forwarders(in: connections, random: &random), [], "no other direct connection to ask")
    }

    /// Beside the `minimumForwarders` for our relay URIs (nearest first), a forwarder keeps the type only while it
    /// is in use (an edge's first hop, or named by our relay URIs); one an edge no longer sends through loses it.
    func testForwardersBeyondTheMinimumKeepTheTypeOnlyWhileInUse() {
        var upkeep = upkeep()
        var random = SeededRandom(seed: 2)
        var expected = SeededRandom(seed: 2)
        let connections = table([connection(0x70, transport: "udp", types: ["structured.near", .forwarder]),
                                 connection(0x90, transport: "udp", types: ["structured.near", .forwarder]),
                                 connection(0x20, transport: "udp", types: [.forwarder]),
                                 connection(0x30, transport: "udp", types: [.forwarder]),
                                 connection(0x84, transport: "relay")])
        XCTAssertEqual(upkeep.forwarders(in: connections, inUse: [address(0x20)], random: &random),
                       [.trim(.forwarder, of: address(0x30))], "0x20 is an edge's first hop; 0x30 no longer")
        XCTAssertEqual(upkeep.forwarders(in: connections, inUse: [], random: &random),
                       [.trim(.forwarder, of: address(0x20)), .trim(.forwarder, of: address(0x30))],
                       "the two nearest stay for our relay URIs")
        XCTAssertEqual(upkeep.forwarders(in: connections, inUse: [address(0x20), address(0x30)], random: &random), [])
        // One in use counts apart: the minimum is kept beside it.
        let fewer = table([connection(0x70, transport: "udp"), connection(0x20, transport: "udp", types: [.forwarder]),
                           connection(0x84, transport: "relay")])
        XCTAssertEqual(upkeep.forwarders(in: fewer, inUse: [address(0x20)], random: &random),
                       [.addLocalType(.forwarder, to: address(0x70), announcedWith: expected.next())])
    }

    func testWithoutRelayedConnectionsTheForwarderTypeGoes() {
        var upkeep = upkeep()
        var random = SeededRandom(seed: 1)
        let connections = [connection(0x70, transport: "udp", types: ["structured.near", .forwarder]),
                           connection(0x90, transport: "tcp", types: [.forwarder]), connection(0x10, transport: "udp")]
        XCTAssertEqual(upkeep.forwarders(in: table(connections), random: &random),
                       [.trim(.forwarder, of: address(0x70)), .trim(.forwarder, of: address(0x90))])
        XCTAssertEqual(upkeep.forwarders(in: table([connection(0x10, transport: "udp")]), random: &random), [])
    }

    func testARelayedConnectionIsNoForwarder() {
        var upkeep = upkeep()
        var random = SeededRandom(seed: 1)
        let connections = [connection(0x70, transport: "udp", types: ["structured.near", .forwarder]),
                           connection(0x90, transport: "udp", types: ["structured.near", .forwarder]),
                           connection(0x84, transport: "relay", types: ["structured.near", .forwarder])]
        XCTAssertEqual(upkeep.forwarders(in: table(connections), random: &random), [.trim(.forwarder, of: address(0x84))],
                       "tunnel frames never cross a relayed connection")
    }

    func testTheDirectTableLeavesOutTunnelledConnectionsAndFollowsTheTable() {
        var upkeep = upkeep()
        var connections = table([connection(0x70, transport: "udp"), connection(0x84, transport: "relay")])
        XCTAssertEqual(upkeep.directTable(of: connections).connections.map(\.address), [address(0x70)])
        connections.upsert(connection(0x90, transport: "tcp"))
        XCTAssertEqual(upkeep.directTable(of: connections).connections.map(\.address), [address(0x70), address(0x90)],
                       "a new table revision is not answered from the cache")
    }

    // MARK: - Direct retries

    func testARelayedConnectionRetriesItsDirectURIsSoonThenBacksOff() {
        var upkeep = upkeep()
        let relayed = connection(0x84, transport: "relay", uris: ["udp://198.18.0.84:4000", "tcp://198.18.0.84:4000",
                                                                   "relay://\(address(1).hex)/\(address(0x84).hex)"],
                                 createdAt: 10)
        let schemes: Set<String> = ["udp", "relay"]
        let udpOnly = [try! TransportURI("udp://198.18.0.84:4000")]
        // (now, expected): the first retry 5 s after the connection (min(5 s, 30 s)), then 30, 60, 120, 240, 240 s.
        let table: [(Int64, [NodeDirective])] = [
            (14, []),
            (15, [.relink(address(0x84), uris: udpOnly, through: nil)]),
            (44, []),
            (45, [.relink(address(0x84), uris: udpOnly, through: nil)]),
            (104, []),
            (105, [.relink(address(0x84), uris: udpOnly, through: nil)]),
            (225, [.relink(address(0x84), uris: udpOnly, through: nil)]),
            (465, [.relink(address(0x84), uris: udpOnly, through: nil)]),
            (704, []),
            (705, [.relink(address(0x84), uris: udpOnly, through: nil)]),
        ]
        for (now, expected) in table {
            XCTAssertEqual(upkeep.retryDirect(relayed, schemes: schemes, isLinking: false, at: seconds(now)), expected,
                           "at \(now) s")
        }
    }

    func testNoRetryWhileLinkingForDirectConnectionsOrWithoutDirectURIs() {
        var upkeep = upkeep()
        let relayed = connection(0x84, transport: "relay", uris: ["udp://198.18.0.84:4000"])
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp", "relay"], isLinking: true, at: seconds(10)), [],
                       "an attempt to the peer runs already")
        XCTAssertEqual(upkeep.retryDirect(connection(0x70, transport: "udp", uris: ["udp://198.18.0.70:4000"]),
                                          schemes: ["udp", "relay"], isLinking: false, at: seconds(10)), [],
                       "a direct connection has nothing to retry")
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["tcp", "relay"], isLinking: false, at: seconds(10)), [],
                       "the peer has no URI on our other transports")
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp", "relay"], isLinking: false, at: seconds(20)), [],
                       "the try without URIs counted: the next waits the full interval")
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp", "relay"], isLinking: false, at: seconds(40)),
                       [.relink(address(0x84), uris: [try! TransportURI("udp://198.18.0.84:4000")], through: nil)])
    }

    /// A pair no direct path can join (a NAT that maps per peer facing a NAT) never tries: every try would be
    /// link requests into NATs that drop them. Once that no longer holds, the tries start.
    func testAPairThatCannotPunchMakesNoTries() {
        var upkeep = upkeep()
        let relayed = connection(0x84, transport: "relay", uris: ["udp://198.18.0.84:4000"])
        for now: Int64 in [10, 100, 1000] {
            XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp", "relay"], isLinking: false, cannotPunch: true,
                                              at: seconds(now)), [], "at \(now) s")
        }
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp", "relay"], isLinking: false, at: seconds(1001)),
                       [.relink(address(0x84), uris: [try! TransportURI("udp://198.18.0.84:4000")], through: nil)])
    }

    /// The relink of one end makes both link, so only the end with the smaller address retries: the other would
    /// double the link requests.
    func testOnlyTheEndWithTheSmallerAddressRetries() {
        var upkeep = upkeep()
        let smaller = connection(0x70, transport: "relay", uris: ["udp://198.18.0.70:4000"])
        for now: Int64 in [5, 35, 95, 215, 455] {
            XCTAssertEqual(upkeep.retryDirect(smaller, schemes: ["udp", "relay"], isLinking: false, at: seconds(now)), [],
                           "the peer (0x70) retries, not this node (0x80)")
        }
    }

    func testARemovedConnectionStartsItsRetriesAfresh() {
        var upkeep = upkeep()
        let relayed = connection(0x84, transport: "relay", uris: ["udp://198.18.0.84:4000"])
        let relink: [NodeDirective] = [.relink(address(0x84), uris: [try! TransportURI("udp://198.18.0.84:4000")], through: nil)]
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp"], isLinking: false, at: seconds(5)), relink)
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp"], isLinking: false, at: seconds(10)), [])
        upkeep.connectionRemoved(address(0x84))
        XCTAssertEqual(upkeep.retryDirect(relayed, schemes: ["udp"], isLinking: false, at: seconds(10)), relink,
                       "5 s after the (new) connection's creation")
    }
}
