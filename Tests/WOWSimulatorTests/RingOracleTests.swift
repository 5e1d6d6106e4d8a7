import WOWKit
import WOWSimulator
import XCTest

/// The true ring: sorted live addresses, each member's true neighbours, and who lacks a structured
/// connection to one of them.
final class RingOracleTests: XCTestCase {
    private func at(_ top: UInt8) -> Address { Address(bytes: [top] + [UInt8](repeating: 0, count: 19))! }

    /// A table of `owner` holding a connection of `type` to each of `peers`.
    private func table(_ owner: Address, _ peers: [Address], type: ConnectionType = "structured.near") -> ConnectionTable {
        var table = ConnectionTable(localAddress: owner)
        for (index, peer) in peers.enumerated() {
            let uri = try! TransportURI("memory://\(index + 1):1")
            table.upsert(Connection(peer: NodeInfo(address: peer, uris: [uri]), localTypes: [type], remoteTypes: [],
                                    edgeID: EdgeID(UInt64(index + 1)), transport: "memory", localURI: uri,
                                    remoteURI: uri, isInbound: false, createdAt: .zero))
        }
        return table
    }

    func testInsertAndRemoveKeepTheMembersSorted() {
        var ring = RingOracle()
        for top: UInt8 in [0x90, 0x10, 0x50, 0xF0] { ring.insert(at(top)) }
        XCTAssertEqual(ring.members, [0x10, 0x50, 0x90, 0xF0].map(at))
        ring.remove(at(0x50))
        ring.remove(at(0x60))
        XCTAssertEqual(ring.members, [0x10, 0x90, 0xF0].map(at))
        XCTAssertEqual(ring.count, 3)
        XCTAssertEqual(RingOracle([0x90, 0x10].map(at)).members, [0x10, 0x90].map(at))
    }

    /// Left is the next larger address, right the next smaller, both wrapping around.
    func testNeighboursAreTheNextLargerAndNextSmallerAddressesWrappingAround() throws {
        let ring = RingOracle([0x10, 0x50, 0x90].map(at))
        let middle = try XCTUnwrap(ring.neighbours(of: at(0x50)))
        XCTAssertEqual(middle.left, at(0x90))
        XCTAssertEqual(middle.right, at(0x10))
        let top = try XCTUnwrap(ring.neighbours(of: at(0x90)))
        XCTAssertEqual(top.left, at(0x10))
        XCTAssertEqual(top.right, at(0x50))
        let bottom = try XCTUnwrap(ring.neighbours(of: at(0x10)))
        XCTAssertEqual(bottom.left, at(0x50))
        XCTAssertEqual(bottom.right, at(0x90))
    }

    func testARingOfOneHasNoNeighboursAndItsMemberIsRoutable() {
        let ring = RingOracle([at(0x10)])
        XCTAssertNil(ring.neighbours(of: at(0x10)))
        XCTAssertTrue(ring.isRoutable(at(0x10), table: table(at(0x10), [])))
    }

    /// A member is routable with structured connections to both true neighbours; a leaf connection or a
    /// connection to another node does not count.
    func testViolationsCountMembersMissingAStructuredConnectionToATrueNeighbour() {
        let a = at(0x10), b = at(0x50), c = at(0x90), d = at(0xD0)
        let ring = RingOracle([a, b, c, d])
        let consistent = [(a, [d, b]), (b, [a, c]), (c, [b, d]), (d, [c, a])].map { (address: $0.0, table: table($0.0, $0.1)) }
        XCTAssertEqual(ring.violations(among: consistent), 0)
        XCTAssertTrue(ring.isRoutable(b, table: table(b, [a, c, d])))
        XCTAssertFalse(ring.isRoutable(b, table: table(b, [a, d])), "b misses c, its left neighbour")
        XCTAssertFalse(ring.isRoutable(b, table: table(b, [a, c], type: .leaf)), "leaf connections are not structured")
        var broken = consistent
        broken[1] = (address: b, table: table(b, [a]))
        broken[3] = (address: d, table: table(d, [c, b]))
        XCTAssertEqual(ring.violations(among: broken), 2)
    }
}
