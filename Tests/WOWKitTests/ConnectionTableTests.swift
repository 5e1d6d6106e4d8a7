import XCTest

@testable import WOWKit

/// The connection table: sorted storage, lookups, ring-side queries that skip leaf-only connections, and
/// `Connection.isStructured` following its types.
final class ConnectionTableTests: XCTestCase {

    // MARK: Storage and lookups

    func testUpsertKeepsConnectionsSortedByAddress() {
        var table = ConnectionTable(localAddress: at(0x40))
        for top: UInt64 in [0x90, 0x10, 0xF0, 0x50, 0x30, 0x00, 0xA0] {
            table.upsert(link(to: at(top)))
            XCTAssertEqual(table.connections.map(\.address), table.connections.map(\.address).sorted())
        }
        XCTAssertEqual(table.connections.map(\.address), [0x00, 0x10, 0x30, 0x50, 0x90, 0xA0, 0xF0].map(at))
        XCTAssertEqual(table.count, 7)
        XCTAssertFalse(table.isEmpty)
    }

    func testUpsertOfAKnownAddressReplacesItsConnection() {
        var table = ConnectionTable(localAddress: at(0x40))
        table.upsert(link(to: at(0x10), edge: 1))
        table.upsert(link(to: at(0x50), edge: 2))
        table.upsert(link(to: at(0x10), local: [], remote: ["structured.far"], edge: 9))

        XCTAssertEqual(table.count, 2)
        let replaced = table.connection(to: at(0x10))
        XCTAssertEqual(replaced?.edgeID, EdgeID(9))
        XCTAssertEqual(replaced?.localTypes, [])
        XCTAssertEqual(replaced?.remoteTypes, ["structured.far"])
        XCTAssertEqual(table.connections.map(\.address), [at(0x10), at(0x50)])
    }

    func testRemoveTakesOutOnlyThatConnection() {
        var table = ConnectionTable(localAddress: at(0x40))
        for top: UInt64 in [0x10, 0x20, 0x30] { table.upsert(link(to: at(top), edge: top)) }

        XCTAssertEqual(table.remove(at(0x20))?.edgeID, EdgeID(0x20))
        XCTAssertNil(table.remove(at(0x20)), "a second remove finds nothing")
        XCTAssertNil(table.remove(at(0x25)))
        XCTAssertFalse(table.contains(at(0x20)))
        XCTAssertEqual(table.connections.map(\.address), [at(0x10), at(0x30)])

        table.remove(at(0x10))
        table.remove(at(0x30))
        XCTAssertTrue(table.isEmpty)
        XCTAssertFalse(table.hasStructured)
    }

    func testLookupByAddressAndByEdge() {
        var table = ConnectionTable(localAddress: at(0x40))
        table.upsert(link(to: at(0x10), edge: 7))
        table.upsert(link(to: at(0x80), local: [.leaf], edge: 3))

        XCTAssertEqual(table.connection(to: at(0x10))?.edgeID, EdgeID(7))
        XCTAssertEqual(table.connection(to: at(0x80))?.edgeID, EdgeID(3))
        XCTAssertNil(table.connection(to: at(0x11)))
        XCTAssertNil(table.connection(to: at(0x40)), "the local node is not in its own table")
        XCTAssertTrue(table.contains(at(0x80)))
        XCTAssertFalse(table.contains(Address(high: 0x10 << 56, middle: 0, low: 1)))

        XCTAssertEqual(table.connection(on: EdgeID(3))?.address, at(0x80))
        XCTAssertEqual(table.connection(on: EdgeID(7))?.address, at(0x10))
        XCTAssertNil(table.connection(on: EdgeID(4)))
    }

    func testTheEdgeIndexFollowsMovesUpdatesAndRemovals() {
        var table = ConnectionTable(localAddress: at(0x40))
        table.upsert(link(to: at(0x10), edge: 1))
        table.upsert(link(to: at(0x50), edge: 2))
        XCTAssertEqual(table.peer(on: EdgeID(1)), at(0x10))
        table.upsert(link(to: at(0x10), edge: 3))
        XCTAssertNil(table.peer(on: EdgeID(1)), "the connection moved to another edge")
        XCTAssertEqual(table.peer(on: EdgeID(3)), at(0x10))
        table.update(at(0x50)) { $0.edgeID = EdgeID(4) }
        XCTAssertNil(table.peer(on: EdgeID(2)))
        XCTAssertEqual(table.connection(on: EdgeID(4))?.address, at(0x50))
        table.update(at(0x50)) { $0.lastHeard = Timestamp(nanoseconds: 9) }
        XCTAssertEqual(table.peer(on: EdgeID(4)), at(0x50), "a timestamp does not move it")
        table.remove(at(0x10))
        XCTAssertNil(table.peer(on: EdgeID(3)))
        XCTAssertNil(table.connection(on: EdgeID(3)))
        XCTAssertEqual(table.connections.count, 1)
    }

    func testUpdateChangesOnlyAnExistingConnection() {
        var table = ConnectionTable(localAddress: at(0x40))
        table.upsert(link(to: at(0x10), local: [.leaf]))
        table.update(at(0x10)) { $0.localTypes.insert("structured.near") }
        table.update(at(0x20)) { $0.localTypes = [] }

        XCTAssertEqual(table.count, 1)
        XCTAssertEqual(table.connection(to: at(0x10))?.localTypes, [.leaf, "structured.near"])
        XCTAssertEqual(table.connections(ofType: .leaf).map(\.address), [at(0x10)])
        XCTAssertEqual(table.connections(ofType: "structured.near").map(\.address), [at(0x10)])
        XCTAssertEqual(table.connections(ofType: "structured.far").map(\.address), [])
    }

    // MARK: Neighbours

    func testNeighboursWalkEachSideNearestFirstSkippingLeafOnlyConnections() {
        let table = sampleTable()
        XCTAssertEqual(table.leftNeighbours(3).map(\.address), [0x50, 0x70, 0xF0].map(at))
        XCTAssertEqual(table.rightNeighbours(3).map(\.address), [0x20, 0x10, 0xF0].map(at))
        XCTAssertEqual(table.leftNeighbours(1).map(\.address), [at(0x50)])
        XCTAssertEqual(table.rightNeighbours(1).map(\.address), [at(0x20)])
        XCTAssertEqual(table.leftNeighbours(0).map(\.address), [])
        XCTAssertEqual(table.rightNeighbours(-1).map(\.address), [])
    }

    func testNeighboursWrapAroundTheRingAndListEachPeerOnce() {
        let table = sampleTable()
        let structured = [0x10, 0x20, 0x50, 0x70, 0xF0].map(at)
        XCTAssertEqual(table.leftNeighbours(4).map(\.address), [0x50, 0x70, 0xF0, 0x10].map(at))
        XCTAssertEqual(table.rightNeighbours(4).map(\.address), [0x20, 0x10, 0xF0, 0x70].map(at))
        XCTAssertEqual(table.leftNeighbours(20).map(\.address), [0x50, 0x70, 0xF0, 0x10, 0x20].map(at))
        XCTAssertEqual(table.rightNeighbours(20).map(\.address), [0x20, 0x10, 0xF0, 0x70, 0x50].map(at))
        XCTAssertEqual(Set(table.leftNeighbours(20).map(\.address)), Set(structured))

        // The local node below or above every peer: one side starts by wrapping.
        var high = ConnectionTable(localAddress: at(0xF8))
        var low = ConnectionTable(localAddress: at(0x05))
        for top: UInt64 in [0x10, 0x20, 0x30] {
            high.upsert(link(to: at(top)))
            low.upsert(link(to: at(top)))
        }
        XCTAssertEqual(high.leftNeighbours(2).map(\.address), [at(0x10), at(0x20)])
        XCTAssertEqual(high.rightNeighbours(2).map(\.address), [at(0x30), at(0x20)])
        XCTAssertEqual(low.leftNeighbours(2).map(\.address), [at(0x10), at(0x20)])
        XCTAssertEqual(low.rightNeighbours(2).map(\.address), [at(0x30), at(0x20)])
    }

    func testNeighboursOfATableWithoutStructuredConnectionsAreEmpty() {
        var table = ConnectionTable(localAddress: at(0x40))
        XCTAssertEqual(table.leftNeighbours(2).map(\.address), [])
        XCTAssertEqual(table.nearestNeighbours(perSide: 2).map(\.address), [])
        table.upsert(link(to: at(0x50), local: [.leaf]))
        table.upsert(link(to: at(0x30), local: [], remote: [.leaf]))
        XCTAssertEqual(table.leftNeighbours(2).map(\.address), [])
        XCTAssertEqual(table.rightNeighbours(2).map(\.address), [])
        XCTAssertEqual(table.nearestNeighbours(perSide: 2).map(\.address), [])
    }

    func testNearestNeighboursInterleavesSidesNearestFirst() {
        let table = sampleTable()
        XCTAssertEqual(table.nearestNeighbours(perSide: 2).map(\.address), [0x50, 0x20, 0x70, 0x10].map(at))
        XCTAssertEqual(table.nearestNeighbours(perSide: 1).map(\.address), [0x50, 0x20].map(at))
        XCTAssertEqual(table.nearestNeighbours(perSide: 0).map(\.address), [])
    }

    func testNearestNeighboursListsEachPeerOnceInATinyRing() {
        var two = ConnectionTable(localAddress: at(0x40))
        two.upsert(link(to: at(0x10)))
        two.upsert(link(to: at(0x80)))
        XCTAssertEqual(two.nearestNeighbours(perSide: 2).map(\.address), [at(0x80), at(0x10)])
        XCTAssertEqual(two.nearestNeighbours(perSide: 3).map(\.address), [at(0x80), at(0x10)])

        var one = ConnectionTable(localAddress: at(0x40))
        one.upsert(link(to: at(0x10)))
        XCTAssertEqual(one.nearestNeighbours(perSide: 3).map(\.address), [at(0x10)])

        // Five peers, three per side: the sides overlap in the last one.
        let table = sampleTable()
        let shared = table.nearestNeighbours(perSide: 3).map(\.address)
        XCTAssertEqual(shared, [0x50, 0x20, 0x70, 0x10, 0xF0].map(at))
        XCTAssertEqual(Set(shared).count, shared.count)
    }

    // MARK: Nearest structured

    func testNearestStructuredToATargetUsesRingDistanceAndSkipsLeaves() {
        let table = sampleTable()
        XCTAssertEqual(table.nearestStructured(to: at(0x31))?.address, at(0x20), "the leaf at 0x30 is skipped")
        XCTAssertEqual(table.nearestStructured(to: at(0x3A))?.address, at(0x50))
        XCTAssertEqual(table.nearestStructured(to: at(0x62))?.address, at(0x70), "the leaf at 0x60 is skipped")
        XCTAssertEqual(table.nearestStructured(to: at(0x50))?.address, at(0x50))
        // Across zero, both ways.
        XCTAssertEqual(table.nearestStructured(to: at(0xFE))?.address, at(0xF0))
        XCTAssertEqual(table.nearestStructured(to: at(0x01))?.address, at(0x10))
        XCTAssertEqual(table.nearestStructured(to: at(0xAF))?.address, at(0x70))
        XCTAssertEqual(table.nearestStructured(to: at(0xB1))?.address, at(0xF0))
    }

    func testNearestStructuredExcludesTheGivenAddress() {
        let table = sampleTable()
        XCTAssertEqual(table.nearestStructured(to: at(0x52), excluding: at(0x50))?.address, at(0x70))
        XCTAssertEqual(table.nearestStructured(to: at(0x52), excluding: at(0x99))?.address, at(0x50))
        XCTAssertEqual(table.nearestStructured(to: at(0x52), excluding: nil)?.address, at(0x50))

        var single = ConnectionTable(localAddress: at(0x40))
        single.upsert(link(to: at(0x50)))
        single.upsert(link(to: at(0x51), local: [.leaf]))
        XCTAssertNil(single.nearestStructured(to: at(0x51), excluding: at(0x50)))
        XCTAssertNil(ConnectionTable(localAddress: at(0x40)).nearestStructured(to: at(0x52)))
    }

    func testNearestStructuredOnEachSideIsStrictAndWraps() {
        let table = sampleTable()
        // Left is towards greater addresses; the target itself never counts.
        XCTAssertEqual(table.nearestStructured(leftOf: at(0x50))?.address, at(0x70), "0x60 is leaf-only")
        XCTAssertEqual(table.nearestStructured(leftOf: at(0x4F))?.address, at(0x50))
        XCTAssertEqual(table.nearestStructured(leftOf: at(0xF0))?.address, at(0x10))
        XCTAssertEqual(table.nearestStructured(leftOf: at(0xF5))?.address, at(0x10))
        XCTAssertEqual(table.nearestStructured(leftOf: at(0x00))?.address, at(0x10))
        // Right is towards smaller addresses.
        XCTAssertEqual(table.nearestStructured(rightOf: at(0x50))?.address, at(0x20), "0x30 is leaf-only")
        XCTAssertEqual(table.nearestStructured(rightOf: at(0x51))?.address, at(0x50))
        XCTAssertEqual(table.nearestStructured(rightOf: at(0x10))?.address, at(0xF0))
        XCTAssertEqual(table.nearestStructured(rightOf: at(0x05))?.address, at(0xF0))
        XCTAssertEqual(table.nearestStructured(rightOf: at(0xFF))?.address, at(0xF0))

        var single = ConnectionTable(localAddress: at(0x40))
        single.upsert(link(to: at(0x50)))
        XCTAssertNil(single.nearestStructured(leftOf: at(0x50)), "the only peer is the target")
        XCTAssertNil(single.nearestStructured(rightOf: at(0x50)))
        XCTAssertEqual(single.nearestStructured(rightOf: at(0x40))?.address, at(0x50), "wraps all the way round")
    }

    // MARK: Structured or not

    func testIsStructuredFollowsBothSetsOfTypes() {
        var connection = link(to: at(0x10), local: [.leaf], remote: [])
        XCTAssertFalse(connection.isStructured)
        connection.remoteTypes = ["structured.near"]
        XCTAssertTrue(connection.isStructured, "the peer's structured type counts")
        XCTAssertEqual(connection.types, [.leaf, "structured.near"])
        connection.remoteTypes = [.leaf]
        XCTAssertFalse(connection.isStructured)
        connection.localTypes.insert("structured.far")
        XCTAssertTrue(connection.isStructured)
        connection.localTypes.remove("structured.far")
        XCTAssertFalse(connection.isStructured)
        connection.localTypes = []
        connection.remoteTypes = []
        XCTAssertFalse(connection.isStructured)
        XCTAssertEqual(connection.types, [])
        connection.localTypes = ["plugin.custom"]
        XCTAssertTrue(connection.isStructured, "any type other than leaf is structured")

        XCTAssertFalse(link(to: at(0x10), local: [], remote: [.leaf]).isStructured)
        XCTAssertTrue(link(to: at(0x10), local: [.leaf], remote: ["structured.near"]).isStructured)
    }

    func testHasStructuredFollowsTypeChangesInTheTable() {
        var table = ConnectionTable(localAddress: at(0x40))
        XCTAssertFalse(table.hasStructured)
        table.upsert(link(to: at(0x10), local: [.leaf]))
        table.upsert(link(to: at(0x20), local: [], remote: [.leaf]))
        XCTAssertFalse(table.hasStructured)
        XCTAssertEqual(table.structured.map(\.address), [])

        table.update(at(0x20)) { $0.remoteTypes.insert("structured.near") }
        XCTAssertTrue(table.hasStructured)
        XCTAssertEqual(table.structured.map(\.address), [at(0x20)])
        XCTAssertEqual(table.nearestStructured(to: at(0x11))?.address, at(0x20))

        table.update(at(0x20)) { $0.remoteTypes = [.leaf] }
        XCTAssertFalse(table.hasStructured)
        XCTAssertNil(table.nearestStructured(to: at(0x11)))

        table.upsert(link(to: at(0x30)))
        XCTAssertTrue(table.hasStructured)
        table.remove(at(0x30))
        XCTAssertFalse(table.hasStructured)
    }

    // MARK: Helpers

    /// Local node 0x40; structured peers 0x10, 0x20, 0x50, 0x70, 0xF0; leaf-only peers 0x30 (ours) and 0x60
    /// (inbound).
    private func sampleTable() -> ConnectionTable {
        var table = ConnectionTable(localAddress: at(0x40))
        table.upsert(link(to: at(0xF0)))
        table.upsert(link(to: at(0x30), local: [.leaf]))
        table.upsert(link(to: at(0x10), local: [], remote: ["structured.far"]))
        table.upsert(link(to: at(0x70)))
        table.upsert(link(to: at(0x60), local: [], remote: [.leaf]))
        table.upsert(link(to: at(0x20)))
        table.upsert(link(to: at(0x50), local: ["structured.near"], remote: ["structured.near"]))
        return table
    }
}

/// The address whose top byte is `top` and every other bit zero.
private func at(_ top: UInt64) -> Address { Address(high: top << 56, middle: 0, low: 0) }

/// Test literals only: a bad one is a bug in this file.
private let memoryURI = try! TransportURI("memory://1:1")

private func link(to address: Address, local: Set<ConnectionType> = ["structured.near"],
                  remote: Set<ConnectionType> = [], edge: UInt64 = 0) -> Connection {
    Connection(peer: NodeInfo(address: address, uris: [memoryURI]), localTypes: local, remoteTypes: remote,
               edgeID: EdgeID(edge), transport: "memory", localURI: memoryURI, remoteURI: memoryURI,
               isInbound: false, createdAt: .zero)
}
