import LoopbackTransport
import Logging
import NIOCore
import Plugins
import WOWKit
import WOWSimulator
import XCTest

/// The `loopback` transport carries a whole overlay in the simulator: nodes join, form the ring and deliver
/// data, secured as real nodes are (membership certificates, sealed edges), on virtual time.
final class LoopbackTransportTests: XCTestCase {
    private let scheduler = SimulationScheduler()
    /// Makes nodes that run on the scheduler's virtual time, replayable from their seeds.
    private lazy var builder = SimulatedNodeBuilder(scheduler: scheduler, logger: {
        var logger = Logger(label: "loopback-test")
        logger.logLevel = .critical
        return logger
    }())
    private let medium = LoopbackSwitch()
    private lazy var authority = NetworkAuthorityKey.deterministic(
        name: "test", seed: [1], network: NetworkID(bytes: [UInt8](repeating: 7, count: 16))!, now: builder.epoch)
    private var nodes: [Node] = []

    override func tearDown() {
        for node in nodes { node.stop(graceful: false) }
        nodes.removeAll()
    }

    /// A secured node running `leaf` and `structured.near` over `loopback` only.
    private func makeNode(_ index: Int, bootstrap: [TransportURI]) throws -> Node {
        var transports = TransportRegistry()
        let medium = self.medium
        // `register(LoopbackTransport.self)` would use the process-wide switch; a test uses its own.
        transports.register(scheme: LoopbackTransport.scheme) { settings, context in
            try LoopbackTransport.makeListener(
                settings: try settings.decode(LoopbackTransport.Settings.self, for: LoopbackTransport.scheme),
                context: context, on: medium)
        }
        let name = "node\(index)"
        var config = NodeConfig(name: name,
                                transports: [.init(name: LoopbackTransport.scheme, settings: try PluginSettings(yaml: "latency_ms: 20"))],
                                overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)], bootstrap: bootstrap)
        // Security on, as in every real network; the builder's deterministic keys keep the run replayable.
        config.security = .secured(SimulatedNodeBuilder.secured(
            try builder.member(name, of: authority, serial: UInt64(index + 1))))
        let node = builder.makeNode(config: config, transports: transports, random: SeededRandom(seed: UInt64(index) &+ 99))
        try node.start()
        nodes.append(node)
        return node
    }

    func testNodesFormARingAndDeliverDataOverLoopback() throws {
        let founder = try makeNode(0, bootstrap: [])
        for index in 1..<8 {
            _ = try makeNode(index, bootstrap: founder.info.uris)
            scheduler.run(for: .milliseconds(500))
        }
        scheduler.run(for: .seconds(30))

        // Every node is connected to its true successor on the ring, over this transport.
        let ring = nodes.sorted { $0.address < $1.address }
        for (position, node) in ring.enumerated() {
            let successor = ring[(position + 1) % ring.count]
            let connection = node.table.connection(to: successor.address)
            XCTAssertNotNil(connection, "\(node.config.name) is not connected to its successor \(successor.config.name)")
            XCTAssertEqual(connection?.transport, LoopbackTransport.scheme)
        }

        // Data crosses the overlay, sealed end to end.
        var received: [ByteBuffer] = []
        ring[0].onDeliver = { _, payload in received.append(payload) }
        ring[ring.count / 2].send(data: ByteBuffer(string: "hello"), to: ring[0].address)
        scheduler.run(for: .seconds(2))
        XCTAssertEqual(received, [ByteBuffer(string: "hello")])
    }

    func testSettingsRejectAMisspeltKey() throws {
        let settings = try PluginSettings(yaml: "latency: 5")
        XCTAssertThrowsError(try settings.decode(LoopbackTransport.Settings.self, for: LoopbackTransport.scheme)) { error in
            XCTAssertTrue("\(error)".contains("unknown key 'latency'"), "\(error)")
        }
    }

    func testATakenPortIsRefused() throws {
        let context = TransportContext(scheduler: scheduler, random: SeededRandom(seed: 1), logger: Logger(label: "test"))
        let first = try LoopbackTransport.makeListener(settings: .init(port: 7), context: context, on: medium)
        XCTAssertEqual(first.localURIs.map(\.text), ["\(LoopbackTransport.scheme)://local:7"])
        XCTAssertThrowsError(try LoopbackTransport.makeListener(settings: .init(port: 7), context: context, on: medium))
        first.stop()
        XCTAssertNoThrow(try LoopbackTransport.makeListener(settings: .init(port: 7), context: context, on: medium))
    }
}
