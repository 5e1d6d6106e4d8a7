import NIOCore
import Plugins
import Transports
@testable import WOWKit
import WOWSimulator
import XCTest

/// What a node holds of its own packets while it joins: bounded however much its applications send.
final class JoinQueueTests: XCTestCase {
    /// A node whose bootstrap does not answer yet, and a device that sends at once: 16 packets go behind the
    /// leaf link request, the next wait with the held packets (each a copy of its own bytes) up to their
    /// bound, and the rest fail at once (here 16 + 128 of 300); nothing grows with the traffic.
    func testAJoinersOwnPacketsAreBoundedWhileItsLeafLinkIsOnItsWay() throws {
        let scheduler = SimulationScheduler()
        let network = MemoryNetwork(scheduler: scheduler, seed: 1)
        var random = SeededRandom(seed: 1)
        let silent = network.addHost()
        let config = NodeConfig(name: "joiner", address: random.address(),
                                transports: [.init(name: MemoryTransport.scheme)],
                                overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)],
                                bootstrap: [try TransportURI("memory://\(silent.rawValue):1")])
        let node = SimulatedNodeBuilder(scheduler: scheduler)
            .makeNode(config: config, transports: .memory(network, host: network.addHost()), random: random.split())
        try node.start()
        scheduler.run(for: .milliseconds(10))
        XCTAssertTrue(node.table.isEmpty)

        // Each packet a slice of one large buffer, as a socket read's would be.
        var read = ByteBufferAllocator().buffer(capacity: 512 * 1024)
        read.writeRepeatingByte(7, count: 300 * 1_000)
        for index in 0..<300 {
            let packet = read.getSlice(at: index * 1_000, length: 1_000)!
            node.send(data: packet, to: random.address())
        }
        XCTAssertEqual(node.joinQueue.count, Node.joinQueueLimit)
        let settings = HeldPackets.Settings()
        let heldBound = min(settings.maxPackets, settings.maxBytes / 1_000)
        XCTAssertEqual(node.held.count, heldBound, "the rest up to the held packets' bound")
        XCTAssertEqual(node.stats.heldForRoute, heldBound)
        let retry = node.held.takeAll(now: node.now).retry
        let readBytes = read.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) ..< UInt(bitPattern: $0.baseAddress) + UInt($0.count) }
        XCTAssertTrue(retry.allSatisfy { entry in
            entry.packet.payload.withUnsafeReadableBytes { !readBytes.contains(UInt(bitPattern: $0.baseAddress)) }
        }, "a held packet keeps a copy of its bytes, not the buffer it came in")
        XCTAssertTrue(retry.allSatisfy { $0.packet.payload.readableBytesView.allSatisfy { $0 == 7 } })
    }
}
