import NIOCore
import Transports
import WOWKit
import XCTest
@testable import WOWSimulator

/// Own packets a node cannot route while its place in the ring forms wait for a route (`HeldPackets`) instead
/// of failing as "unreachable" at once.
final class HeldPacketsTests: XCTestCase {
    private let t0 = Timestamp(nanoseconds: 1_000_000_000)

    private func packet(_ bytes: Int, to last: UInt8 = 9) -> RoutedPacket {
        let destination = Address(bytes: [UInt8](repeating: 0, count: 19) + [last])!
        return RoutedPacket(header: RoutedHeader(mode: .exact, payloadType: .data, source: .zero, destination: destination),
                            payload: ByteBuffer(repeating: 7, count: bytes))
    }

    func testANodeFormsUntilAWhileAfterJoining() {
        let held = HeldPackets()
        XCTAssertTrue(held.isForming(joinedAt: nil, now: t0), "not yet joined")
        XCTAssertTrue(held.isForming(joinedAt: t0, now: t0 + .seconds(9)))
        XCTAssertFalse(held.isForming(joinedAt: t0, now: t0 + .seconds(10)))
    }

    func testPacketsWaitTheirTimeThenExpireOldestFirst() {
        var held = HeldPackets()
        XCTAssertNil(held.nextDeadline)
        XCTAssertTrue(held.hold(packet(100, to: 1), since: t0))
        XCTAssertTrue(held.hold(packet(100, to: 2), since: t0 + .seconds(2)))
        XCTAssertEqual(held.nextDeadline, t0 + .seconds(5))
        let (retry, expired) = held.takeAll(now: t0 + .seconds(5))
        XCTAssertEqual(expired.map { $0.header.destination }, [packet(0, to: 1).header.destination])
        XCTAssertEqual(retry.map { $0.packet.header.destination }, [packet(0, to: 2).header.destination])
        XCTAssertEqual(retry.first?.since, t0 + .seconds(2), "a packet held again keeps its first time")
        XCTAssertTrue(held.isEmpty)
    }

    func testBoundedInPacketsAndBytes() {
        var settings = HeldPackets.Settings()
        settings.maxPackets = 3
        settings.maxBytes = 1000
        var held = HeldPackets(settings: settings)
        XCTAssertTrue(held.hold(packet(600), since: t0))
        XCTAssertFalse(held.hold(packet(600), since: t0), "over the byte bound")
        XCTAssertTrue(held.hold(packet(100), since: t0))
        XCTAssertTrue(held.hold(packet(100), since: t0))
        XCTAssertFalse(held.hold(packet(1), since: t0), "over the packet bound")
        XCTAssertEqual(held.count, 3)
        _ = held.takeAll(now: t0)
        XCTAssertTrue(held.hold(packet(600), since: t0), "taking them out frees the bytes")
    }

    private func address(_ leadingByte: UInt8) -> Address {
        Address(bytes: [leadingByte] + [UInt8](repeating: 0, count: 19))!
    }

    /// A ring of public members and a node that joins it: every test here starts from the moment the joiner is
    /// in the ring.
    private func joinedRing(seed: UInt64) throws -> (sim: OverlaySimulation, members: [OverlaySimulation.SimulatedNode],
                                                      joiner: OverlaySimulation.SimulatedNode) {
        var options = SimulationOptions()
        options.nodes = 2
        options.seed = seed
        let sim = try OverlaySimulation(options: options)
        var members: [OverlaySimulation.SimulatedNode] = []
        for byte in stride(from: 0x08, to: 0xF8, by: 0x14) {
            members.append(try sim.addNode(nat: .open, address: address(UInt8(byte))))
            sim.scheduler.run(for: .milliseconds(200))
        }
        sim.scheduler.run(for: .seconds(5))
        let joiner = try sim.addNode(nat: .open, address: address(0x33))
        sim.scheduler.run(until: sim.scheduler.now + .seconds(10)) { !joiner.node.isRingMember }
        XCTAssertTrue(joiner.node.isRingMember)
        return (sim, members, joiner)
    }

    /// Data a joiner sends at once to a member it seems nearer to than any of its connections, and that no peer
    /// has told it of, waits and arrives once its links are up (it used to come back as "absent destination").
    /// Over seeds, as which connections a joiner has first varies; at least one must hit that case.
    func testDataSentWhileTheRingFormsArrivesInsteadOfFailing() throws {
        var exercised = 0
        for seed: UInt64 in 1...10 {
            let (sim, members, joiner) = try joinedRing(seed: seed)
            // A member the joiner cannot route to yet, if any.
            let stranded = members.first { member in
                let header = RoutedHeader(mode: .exact, payloadType: .secure, source: joiner.node.address,
                                          destination: member.node.address)
                if case .fail = Router.decide(header, at: joiner.node.address, table: joiner.node.table, previous: nil) {
                    return true
                }
                return false
            }
            guard let destination = stranded else { continue }
            var errors: [RoutingError] = []
            joiner.node.onRoutingError = { if $0.payloadType == .data || $0.payloadType == .secure { errors.append($0) } }
            var seen: [Address] = []
            destination.node.onDeliver = { header, _ in seen.append(header.source) }
            joiner.node.send(data: ByteBuffer(string: "while forming"), to: destination.node.address)
            guard joiner.node.stats.routedViaReporter == 0 else { continue }  // a peer told it the way
            XCTAssertEqual(joiner.node.stats.heldForRoute, 1, "seed \(seed): not held")
            sim.scheduler.run(for: .seconds(5))
            XCTAssertEqual(seen, [joiner.node.address], "seed \(seed): the held packet did not arrive")
            XCTAssertEqual(errors, [], "seed \(seed)")
            exercised += 1
        }
        print("held packets delivered in \(exercised) cases")
        XCTAssertGreaterThan(exercised, 0, "no seed left the joiner without a route: the test no longer holds anything")
    }

    /// A packet for an address no node holds still fails: at once from a node long in its ring, after the
    /// hold time from one still forming.
    func testAPacketToNobodyFailsAtOnceOrAfterTheHold() throws {
        let (sim, _, joiner) = try joinedRing(seed: 1)
        var errors: [(RoutingError, Timestamp)] = []
        let nobody = address(0x34)
        // Only our packet's: the joiner's own upkeep (CTMs to members while its links come up) may fail too.
        joiner.node.onRoutingError = { if $0.destination == nobody { errors.append(($0, sim.scheduler.now)) } }
        let sent = sim.scheduler.now
        joiner.node.send(data: ByteBuffer(string: "to nobody"), to: nobody)
        sim.scheduler.run(for: .seconds(4))
        XCTAssertTrue(errors.isEmpty, "failed before its hold time: \(errors)")
        sim.scheduler.run(for: .seconds(2))
        let failed = try XCTUnwrap(errors.first { $0.0.destination == nobody }, "never failed")
        XCTAssertEqual((failed.1 - sent).seconds, 5, accuracy: 0.1)
        XCTAssertEqual(failed.0.code, .absentDestination)

        sim.scheduler.run(for: .seconds(10))
        errors.removeAll()
        let held = joiner.node.stats.heldForRoute
        joiner.node.send(data: ByteBuffer(string: "to nobody"), to: nobody)
        sim.scheduler.run(for: .milliseconds(10))
        XCTAssertEqual(joiner.node.stats.heldForRoute, held, "a node long in its ring holds nothing")
        XCTAssertEqual(errors.map(\.0.destination), [nobody])
    }
}
