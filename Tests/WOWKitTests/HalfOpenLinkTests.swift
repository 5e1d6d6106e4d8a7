import NIOCore
import Transports
@testable import WOWKit
import WOWSimulator
import XCTest

/// A link request that arrives but whose replies never come back leaves the peer holding a connection the
/// requester does not have: what the peer routes over it is lost until its liveness gives up (30 s). The
/// requester's failed attempt tells the peer so at once.
final class HalfOpenLinkTests: XCTestCase {
    func testAnAttemptWhoseRepliesNeverCameTellsThePeerNothingIsLinked() throws {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 3)
        let pair = DialedPair(scheduler: scheduler, network: network, seed: 7)
        let (a, b, dialer, hosts) = (pair.a, pair.b, pair.dialer, pair.hosts)
        // Everything from b to a is lost: b accepts a's requests, and its replies die on the way.
        network.onPath = { packet, from, to in from == hosts[1] && to == hosts[0] ? [] : [packet] }
        try b.start()
        try a.start()
        scheduler.run(for: .milliseconds(500))
        XCTAssertTrue(b.table.contains(a.address), "b accepted the request")
        XCTAssertFalse(a.table.contains(b.address))

        // a's attempt runs out of tries; b learns at once that nothing is linked, long before its liveness
        // would have given up on the connection.
        var failedAt: Timestamp?
        while failedAt == nil, scheduler.now < Timestamp(nanoseconds: 20_000_000_000) {
            scheduler.run(for: .milliseconds(100))
            if dialer.results.first?.hasPrefix("failed") == true { failedAt = scheduler.now }
        }
        let failed = try XCTUnwrap(failedAt, "a's attempt ends: \(dialer.results)")
        scheduler.run(for: .milliseconds(200))
        XCTAssertFalse(b.table.contains(a.address), "b dropped the half-open connection \((scheduler.now - failed).seconds) s after")
        XCTAssertLessThan(failed.seconds, 15, "long before b's liveness (30 s) would have")
    }

    /// One end moved its connection to a new edge (a request the peer no longer stood behind moved it there),
    /// and that edge closes (the peer closed it as unused): the edge the connection left is open still, and the
    /// peer, which sent there since, holds its end there. The connection goes back to it instead of being dropped at this end only,
    /// which left the peer routing into a connection we no longer had (lost packets until its liveness gave up).
    func testAConnectionWhoseEdgeClosesGoesBackToTheEdgeItLeft() throws {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 3)
        let pair = DialedPair(scheduler: scheduler, network: network, seed: 11, streams: true)
        let (a, b, streamB) = (pair.a, pair.b, pair.streamURI)
        try b.start()
        try a.start()
        scheduler.run(for: .milliseconds(500))
        let left = try XCTUnwrap(a.table.connection(to: b.address)?.edgeID)
        XCTAssertEqual(b.table.connection(to: a.address)?.transport, MemoryTransport.scheme)

        // a's end moves to a stream edge to b, as a late request there would move it; b's end stays.
        var opened: (any Edge)?
        let streams = try XCTUnwrap(a.listeners.first { $0.scheme == MemoryTransport.streamScheme })
        streams.createEdge(to: streamB) { opened = try? $0.get() }
        scheduler.run(for: .milliseconds(100))
        let stream = try XCTUnwrap(opened)
        let moved = a.register(stream)
        a.establish(Establishment(peer: b.info, edge: moved, byPeer: true))
        XCTAssertEqual(a.table.connection(to: b.address)?.edgeID, moved)
        // b still sends on the edge a left (its connection's): a takes it, and so knows b's end is there.
        var atA: [String] = [], atB: [String] = []
        a.onDeliver = { _, payload in atA.append(String(buffer: payload)) }
        b.onDeliver = { _, payload in atB.append(String(buffer: payload)) }
        b.send(data: ByteBuffer(string: "from b's end"), to: a.address)
        scheduler.run(for: .milliseconds(100))
        XCTAssertEqual(atA, ["from b's end"])

        // The stream edge closes: a's connection goes back to the edge it left, where b's end is.
        stream.close()
        scheduler.run(for: .milliseconds(10))
        XCTAssertEqual(a.table.connection(to: b.address)?.edgeID, left, "back on the edge it left")
        XCTAssertEqual(b.table.connection(to: a.address)?.transport, MemoryTransport.scheme)

        // Both ways, data arrives; and the ends stay linked past the liveness timeout.
        a.send(data: ByteBuffer(string: "to b"), to: b.address)
        b.send(data: ByteBuffer(string: "to a"), to: a.address)
        scheduler.run(for: .seconds(40))
        XCTAssertEqual(atB, ["to b"])
        XCTAssertEqual(atA, ["from b's end", "to a"])
        XCTAssertEqual(a.table.connection(to: b.address)?.edgeID, left)
        XCTAssertTrue(b.table.contains(a.address))
    }
}
