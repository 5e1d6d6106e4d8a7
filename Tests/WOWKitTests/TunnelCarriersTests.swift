import WOWKit
import XCTest

/// `TunnelCarriers`: a trim leaves a connection open while tunnel frames cross it, and hands it back for
/// closing once they stop.
final class TunnelCarriersTests: XCTestCase {
    private let t0 = Timestamp(nanoseconds: 1_000_000_000)
    private func peer(_ byte: UInt8) -> Address { Address(bytes: [byte] + [UInt8](repeating: 0, count: 19))! }

    func testAConnectionWithoutTunnelFramesIsNotKept() {
        var carriers = TunnelCarriers(idleAfter: .seconds(30))
        XCTAssertFalse(carriers.keepsOpen(peer(1), at: t0))
        XCTAssertTrue(carriers.kept.isEmpty)
        XCTAssertEqual(carriers.sweep(at: t0 + .seconds(60)), [])
    }

    func testACarryingConnectionIsKeptUntilItsFramesStop() {
        var carriers = TunnelCarriers(idleAfter: .seconds(30))
        carriers.carried(by: peer(1), at: t0)
        XCTAssertTrue(carriers.isCarrying(peer(1), at: t0 + .seconds(29)))
        XCTAssertTrue(carriers.keepsOpen(peer(1), at: t0 + .seconds(10)))
        XCTAssertEqual(carriers.kept, [peer(1)])
        // Frames go on: it stays.
        carriers.carried(by: peer(1), at: t0 + .seconds(25))
        XCTAssertEqual(carriers.sweep(at: t0 + .seconds(40)), [])
        XCTAssertEqual(carriers.kept, [peer(1)])
        // Silent for idleAfter: handed back once, then forgotten.
        XCTAssertEqual(carriers.sweep(at: t0 + .seconds(55)), [peer(1)])
        XCTAssertTrue(carriers.kept.isEmpty)
        XCTAssertFalse(carriers.isCarrying(peer(1), at: t0 + .seconds(55)))
        XCTAssertEqual(carriers.sweep(at: t0 + .seconds(90)), [])
    }

    func testAFrameOlderThanIdleAfterDoesNotKeepAConnection() {
        var carriers = TunnelCarriers(idleAfter: .seconds(30))
        carriers.carried(by: peer(1), at: t0)
        XCTAssertFalse(carriers.keepsOpen(peer(1), at: t0 + .seconds(30)))
    }

    func testSweepReturnsKeptPeersInAddressOrderAndForgetsOldFrames() {
        var carriers = TunnelCarriers(idleAfter: .seconds(30))
        for byte: UInt8 in [9, 3, 6] {
            carriers.carried(by: peer(byte), at: t0)
            XCTAssertTrue(carriers.keepsOpen(peer(byte), at: t0))
        }
        carriers.carried(by: peer(7), at: t0)  // carried, never trimmed: nothing to hand back
        XCTAssertEqual(carriers.sweep(at: t0 + .seconds(31)), [peer(3), peer(6), peer(9)])
        XCTAssertFalse(carriers.isCarrying(peer(7), at: t0 + .seconds(31)))
    }

    func testARemovedConnectionIsForgotten() {
        var carriers = TunnelCarriers(idleAfter: .seconds(30))
        carriers.carried(by: peer(1), at: t0)
        XCTAssertTrue(carriers.keepsOpen(peer(1), at: t0))
        carriers.connectionRemoved(peer(1))
        XCTAssertTrue(carriers.kept.isEmpty)
        XCTAssertFalse(carriers.isCarrying(peer(1), at: t0))
        carriers.carried(by: peer(2), at: t0)
        XCTAssertTrue(carriers.keepsOpen(peer(2), at: t0))
        carriers.reset()
        XCTAssertTrue(carriers.kept.isEmpty)
        XCTAssertEqual(carriers.sweep(at: t0 + .seconds(60)), [])
    }
}
