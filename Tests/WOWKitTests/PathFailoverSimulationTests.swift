import NIOCore
import Transports
import WOWKit
import XCTest
@testable import WOWSimulator

/// A connection whose path dies silently under traffic (a firewall starts dropping every datagram of one host)
/// moves to another transport within about a second, without the connection, its types or the ring position
/// ever going away (issue 16). Virtual time: the figures are exact, not timings of this machine.
final class PathFailoverSimulationTests: XCTestCase {
    /// A request/answer flow (think TCP data and its acks) from one node to a direct peer, every 20 ms, which
    /// echoes each packet back.
    private final class Flow {
        var sent = 0
        var echoes: [Timestamp] = []
        var sending = true

        init(_ sim: OverlaySimulation, from a: OverlaySimulation.SimulatedNode, to peer: OverlaySimulation.SimulatedNode) {
            peer.node.onDeliver = { header, payload in peer.node.send(data: payload, to: header.source) }
            a.node.onDeliver = { [unowned self] _, _ in echoes.append(sim.scheduler.now) }
            sendNext(sim, from: a, to: peer)
        }

        private func sendNext(_ sim: OverlaySimulation, from a: OverlaySimulation.SimulatedNode, to peer: OverlaySimulation.SimulatedNode) {
            guard sending else { return }
            var payload = ByteBufferAllocator().buffer(capacity: 64)
            payload.writeInteger(UInt64(sent))
            sent += 1
            a.node.send(data: payload, to: peer.node.address)
            _ = sim.scheduler.schedule(after: .milliseconds(20)) { [self] in sendNext(sim, from: a, to: peer) }
        }

        /// The longest wait between answers from `start` on (from `start` to the first one included).
        func longestStall(since start: Timestamp) -> Duration {
            let times = [start] + echoes.filter { $0 >= start }
            return zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? .zero
        }
    }

    /// Twelve public nodes, joined 0.1 s apart and settled for 20 s: a consistent ring.
    private func settledOpenOverlay(seed: UInt64) throws -> OverlaySimulation {
        var options = SimulationOptions()
        options.nodes = 2
        options.seed = seed
        let sim = try OverlaySimulation(options: options)
        for _ in 0..<12 {
            try sim.addNode(nat: .open)
            sim.scheduler.run(for: .milliseconds(100))
        }
        sim.scheduler.run(for: .seconds(20))
        XCTAssertEqual(sim.ringViolations(), 0)
        return sim
    }

    /// A connection knows its path's round trip from the handshake that made it, on the end that started it:
    /// the secure handshake's on a secured node, the link handshake's without security. No ping needed.
    func testTheEndThatLinkedKnowsThePathsRoundTripFromTheHandshake() throws {
        for secure in [true, false] {
            var options = SimulationOptions()
            options.nodes = 2
            options.seed = 3
            options.secure = secure
            let sim = try OverlaySimulation(options: options)
            for _ in 0..<6 {
                try sim.addNode(nat: .open)
                sim.scheduler.run(for: .milliseconds(100))
            }
            sim.scheduler.run(for: .seconds(3))
            var measured = 0, connections = 0
            for simulated in sim.liveNodes {
                for connection in simulated.node.table.connections {
                    connections += 1
                    // Without security the link handshake measures it, on the end that sent the request; with
                    // security the secure handshake, on the end that opened the session (a datagram edge's
                    // session may be the peer's, opened before our request went over it).
                    guard let roundTrip = connection.roundTrip else {
                        XCTAssertTrue(secure || connection.isInbound, "\(connection)")
                        continue
                    }
                    let peer = try XCTUnwrap(sim.liveNodes.first { $0.node.address == connection.address })
                    // The reply comes back after one round trip (and whatever time the peer took to answer).
                    XCTAssertEqual(roundTrip.seconds, sim.network.roundTrip(between: simulated.host, and: peer.host).seconds,
                                   accuracy: 0.005, "secure \(secure): \(connection)")
                    measured += 1
                }
            }
            XCTAssertGreaterThanOrEqual(measured * 2, connections, "secure \(secure): one end of most connections knows")
        }
    }

    func testAConnectionWhoseDatagramsStopMovesToTheStreamTransportWithinASecond() throws {
        let sim = try settledOpenOverlay(seed: 7)

        let a = sim.liveNodes[5]
        let before = try XCTUnwrap(a.node.table.connections.first { $0.transport == MemoryTransport.scheme && $0.isStructured },
                                   "every connection of an all-public overlay starts on datagrams")
        let peer = try XCTUnwrap(sim.liveNodes.first { $0.node.address == before.address })
        // `wow status` shows the path and the one a failover would take.
        func shown() throws -> NodeStatus.ConnectionStatus {
            try XCTUnwrap(a.node.status().connections.first { $0.peer == peer.node.address.hex })
        }
        let shownBefore = try shown()
        XCTAssertTrue(shownBefore.path.hasPrefix("direct \(MemoryTransport.scheme) "), shownBefore.path)
        XCTAssertTrue(shownBefore.alternatives.contains { $0.hasPrefix("direct \(MemoryTransport.streamScheme) ") },
                      "\(shownBefore.alternatives)")
        XCTAssertFalse(shownBefore.alternatives.contains(shownBefore.path))
        XCTAssertNil(shownBefore.left_path)
        let flow = Flow(sim, from: a, to: peer)
        sim.scheduler.run(for: .seconds(2))
        XCTAssertGreaterThan(flow.echoes.count, 80, "the flow runs before the cut")

        // The host's firewall starts dropping every datagram, both ways; streams still pass.
        let cutAt = sim.scheduler.now
        let host = a.host
        sim.network.onPath = { packet, from, to in from == host || to == host ? [] : [packet] }
        var removed = false
        let observe = a.node.onTableChange
        a.node.onTableChange = { node in
            if node.table.connection(to: peer.node.address) == nil { removed = true }
            observe?(node)
        }
        sim.scheduler.run(for: .seconds(10))
        flow.sending = false

        let after = try XCTUnwrap(a.node.table.connection(to: peer.node.address), "the connection outlived its path")
        XCTAssertFalse(removed, "the connection was never removed while its path changed")
        XCTAssertEqual(after.transport, MemoryTransport.streamScheme)
        XCTAssertEqual(after.createdAt, before.createdAt)
        XCTAssertTrue(after.localTypes.isSuperset(of: before.localTypes), "it keeps every type it served")
        XCTAssertGreaterThanOrEqual(after.pathSwitches, 1)
        XCTAssertGreaterThanOrEqual(a.node.stats.failovers, 1)
        XCTAssertEqual(peer.node.table.connection(to: a.node.address)?.transport, MemoryTransport.streamScheme,
                       "the peer moved its end too")
        let shownAfter = try shown()
        XCTAssertTrue(shownAfter.path.hasPrefix("direct \(MemoryTransport.streamScheme) "), shownAfter.path)
        XCTAssertEqual(shownAfter.left_path, shownBefore.path, "the path it left, to be tried again")
        XCTAssertTrue(shownAfter.alternatives.contains(shownBefore.path), "\(shownAfter.alternatives)")
        // What the path it left measured: its round trip, and the peer silent there since the cut.
        let former = try XCTUnwrap(shownAfter.former_paths?.first { $0.path == shownBefore.path }, "\(shownAfter)")
        XCTAssertEqual(former.rtt_ms, shownBefore.rtt_ms, "the round trip it had there, if any (the peer started it)")
        XCTAssertEqual(try XCTUnwrap(shownAfter.rtt_ms, "the new path measured by its secure handshake"),
                       sim.network.roundTrip(between: a.host, and: peer.host).seconds * 1000, accuracy: 5)
        XCTAssertGreaterThanOrEqual(former.last_heard_s, shownAfter.silent_s)
        XCTAssertLessThanOrEqual(former.last_heard_s, (sim.scheduler.now - cutAt).seconds + 0.5)
        XCTAssertGreaterThan(former.last_heard_s, former.left_s, "silent there before the connection moved off it")

        let stall = flow.longestStall(since: cutAt)
        let echoes = flow.echoes.filter { $0 >= cutAt }
        let roundTrip = sim.network.roundTrip(between: a.host, and: peer.host)
        print("path failover (virtual time): the flow stalled \(stall.seconds) s over a \(roundTrip.seconds * 1000) ms "
              + "round trip; \(a.node.stats.failovers) failovers")
        // The window (1 s, or four round trips), then the new path: a stream, its secure handshake and the
        // relink request, a few round trips.
        XCTAssertLessThanOrEqual(stall, max(.seconds(1), roundTrip * 4) + roundTrip * 5,
                                 "a failover within about a second of the cut")
        XCTAssertGreaterThan(echoes.count, 300, "the flow ran on after the move")

        // Every other connection of the host was over datagrams too: found out and moved, not left to die.
        XCTAssertTrue(a.node.table.connections.allSatisfy { $0.transport == MemoryTransport.streamScheme },
                      "\(a.node.table.connections.map(\.description))")
        XCTAssertTrue(a.node.isRingMember)
        XCTAssertEqual(sim.ringViolations(), 0)

        // Datagrams pass again: the connections try the path they left and move back to it.
        sim.network.onPath = nil
        let restoredAt = sim.scheduler.now
        let back = sim.scheduler.run(until: restoredAt + .seconds(60)) {
            !a.node.table.connections.allSatisfy { $0.transport == MemoryTransport.scheme }
        }
        XCTAssertTrue(back, "60 s after datagrams passed again: \(a.node.table.connections.map(\.description))")
        print("path failover: back on datagrams \((sim.scheduler.now - restoredAt).seconds) s after they passed again")
        XCTAssertFalse(removed, "moving back removed no connection either")
        XCTAssertEqual(a.node.table.connection(to: peer.node.address)?.createdAt, before.createdAt)
        XCTAssertNil(try shown().left_path, "back on the path it left")
        XCTAssertEqual(sim.ringViolations(), 0)
    }

    /// A path that dies while no other path between the two hosts works (every datagram and stream between them
    /// is lost; each still reaches everyone else): the failover finds nothing, but from the end of the window the
    /// flow goes over the ring, sealed end to end, and back on the direct path once it answers again.
    func testAFlowGoesOverTheRingWhileItsPathIsSilentAndNoOtherPathWorks() throws {
        let sim = try settledOpenOverlay(seed: 5)

        let a = sim.liveNodes[3]
        let link = try XCTUnwrap(a.node.table.connections.first { $0.isStructured })
        let peer = try XCTUnwrap(sim.liveNodes.first { $0.node.address == link.address })
        let flow = Flow(sim, from: a, to: peer)
        sim.scheduler.run(for: .seconds(2))
        XCTAssertGreaterThan(flow.echoes.count, 80, "the flow runs before the cut")
        XCTAssertEqual(a.node.stats.routedAroundSilentPaths, 0)

        // Nothing passes between the two hosts any more, either way, on any transport.
        let cutAt = sim.scheduler.now
        let (hostA, hostP) = (a.host, peer.host)
        func between(_ from: MemoryHostID, _ to: MemoryHostID) -> Bool {
            (from == hostA && to == hostP) || (from == hostP && to == hostA)
        }
        sim.network.onPath = { packet, from, to in between(from, to) ? [] : [packet] }
        sim.network.streamDelay = { _, from, to, _ in between(from, to) ? .seconds(100_000) : .zero }
        sim.scheduler.run(for: .seconds(10))

        XCTAssertNotNil(a.node.table.connection(to: peer.node.address), "the connection is still there, silent")
        let shown = try XCTUnwrap(a.node.status().connections.first { $0.peer == peer.node.address.hex })
        XCTAssertEqual(shown.silent_path, true, "wow status shows the path silent: \(shown)")
        XCTAssertGreaterThan(a.node.stats.routedAroundSilentPaths, 100, "the flow went around the silent path")
        XCTAssertGreaterThan(peer.node.stats.routedAroundSilentPaths, 100, "so did the answers")
        let stall = flow.longestStall(since: cutAt)
        let echoes = flow.echoes.filter { $0 >= cutAt }
        print("silent path, no other way (virtual time): the flow stalled \(stall.seconds) s, then went over the ring")
        // The window, then the end-to-end handshake over the ring: well under two seconds.
        XCTAssertLessThan(stall, .seconds(2), "the flow goes on over the ring")
        XCTAssertGreaterThan(echoes.count, 350, "the flow ran on through the cut")

        // The path answers again (the probes on it get their pongs): the flow is back on it.
        sim.network.onPath = nil
        sim.network.streamDelay = nil
        sim.scheduler.run(for: .seconds(3))
        XCTAssertEqual(a.node.status().connections.first { $0.peer == peer.node.address.hex }?.silent_path, false)
        let around = a.node.stats.routedAroundSilentPaths
        let echoed = flow.echoes.count
        sim.scheduler.run(for: .seconds(2))
        flow.sending = false
        XCTAssertEqual(a.node.stats.routedAroundSilentPaths, around, "nothing goes around a path that answers")
        XCTAssertGreaterThan(flow.echoes.count - echoed, 80, "and the flow runs on it")
        XCTAssertEqual(sim.ringViolations(), 0)
    }
}
