import NIOCore
import Transports
@testable import WOWKit
import WOWSimulator
import XCTest

/// How a node measures its connections' round trips from pongs: a pong on the connection's own edge times the
/// path the connection is on; one that comes back on an edge the connection has left timed the old path.
final class ConnectionRoundTripTests: XCTestCase {
    /// A connection moved to a stream edge while a ping it sent on its datagram edge was on its way: the pong
    /// comes back on the edge it left (the peer's end is still there) and must not be taken for the round trip
    /// of the path it is on now (nil since the move, until something on that path measures it).
    func testAPongOnTheEdgeTheConnectionLeftDoesNotSetItsRoundTrip() throws {
        let scheduler = SimulationScheduler()
        let roundTrip = Duration.milliseconds(40)
        let network = MemoryNetwork(scheduler: scheduler, seed: 5, roundTrip: roundTrip ... roundTrip)
        let pair = DialedPair(scheduler: scheduler, network: network, seed: 13, streams: true)
        let (a, b, streamB) = (pair.a, pair.b, pair.streamURI)
        try b.start()
        try a.start()
        scheduler.run(for: .milliseconds(500))
        let left = try XCTUnwrap(a.table.connection(to: b.address)?.edgeID, "a linked to b over datagrams")
        XCTAssertEqual(a.table.connection(to: b.address)?.transport, MemoryTransport.scheme)

        // A ping as liveness sends it (its nonce is the send time), on the connection's edge: its pong sets the
        // round trip (the link handshake's measure is cleared first, so only the pong can).
        func ping(on edge: EdgeID) { a.send(.ping(nonce: UInt64(bitPattern: scheduler.now.nanoseconds)), on: edge) }
        a.table.update(b.address) { $0.roundTrip = nil }
        ping(on: left)
        scheduler.run(for: .milliseconds(200))
        XCTAssertEqual(a.table.connection(to: b.address)?.roundTrip, roundTrip, "a pong on the connection's own edge")

        // A stream edge to b, and a's end of the connection moves there right after another ping left on the
        // datagram edge; b's end stays on the datagram edge, so the pong comes back on the edge a left.
        var opened: (any Edge)?
        let streams = try XCTUnwrap(a.listeners.first { $0.scheme == MemoryTransport.streamScheme })
        streams.createEdge(to: streamB) { opened = try? $0.get() }
        scheduler.run(for: .milliseconds(100))
        let moved = a.register(try XCTUnwrap(opened))
        ping(on: left)
        let movedAt = scheduler.now
        a.establish(Establishment(peer: b.info, edge: moved, byPeer: true))
        XCTAssertEqual(a.edges.edge(leftBy: b.address), left, "the datagram edge is the one the connection left")
        XCTAssertNil(a.table.connection(to: b.address)?.roundTrip, "the move forgot the old path's round trip")
        scheduler.run(for: .milliseconds(200))

        let connection = try XCTUnwrap(a.table.connection(to: b.address))
        XCTAssertEqual(connection.edgeID, moved)
        XCTAssertEqual(connection.lastHeard, movedAt + roundTrip, "the pong came back on the edge the connection left")
        XCTAssertNil(connection.roundTrip, "a pong on the edge the connection left timed that edge's path, not the connection's")
        XCTAssertEqual(connection.formerPaths.first?.roundTrip, roundTrip, "the path it left keeps what it measured there")
    }
}
