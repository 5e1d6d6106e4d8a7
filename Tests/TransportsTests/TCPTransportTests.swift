import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import Transports
import WOWKit
import XCTest

/// A logger that prints only warnings and worse, to keep test output readable.
func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

/// Records what a stream listener and its edges report, in order. Lives on the test's event loop.
final class StreamRecorder: EdgeListenerDelegate, EdgeDelegate {
    /// A packet received: on which edge, as text (when short), and its size.
    struct Received {
        var edge: ObjectIdentifier
        var payload: String
        var size: Int
    }

    var accepted: [any Edge] = []
    var received: [Received] = []
    var closed: [ObjectIdentifier] = []

    func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {
        accepted.append(edge)
        edge.delegate = self
    }

    func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
        let payload = packet.readableBytes <= 64 ? String(buffer: packet) : ""
        received.append(Received(edge: ObjectIdentifier(edge), payload: payload, size: packet.readableBytes))
    }

    func edgeDidClose(_ edge: any Edge) {
        closed.append(ObjectIdentifier(edge))
    }

    func payloads(on edge: any Edge) -> [String] {
        received.filter { $0.edge == ObjectIdentifier(edge) }.map(\.payload)
    }

    func closeCount(of edge: any Edge) -> Int {
        closed.filter { $0 == ObjectIdentifier(edge) }.count
    }
}

/// Everything a stream-transport test makes, confined to the test's event loop; the test thread reaches it only
/// through `loop.submit { ... }.wait()`. Shared by the tcp and tls tests.
final class StreamTestWorld {
    let loop: any EventLoop
    let scheme: String
    var listeners: [TCPEdgeListener] = []
    var recorders: [StreamRecorder] = []
    /// Results of `createEdge`, by request number.
    var results: [Int: Result<any Edge, EdgeError>] = [:]
    private var requests = 0

    init(loop: any EventLoop, scheme: String) {
        self.loop = loop
        self.scheme = scheme
    }

    var context: TransportContext {
        TransportContext(scheduler: EventLoopScheduler(eventLoop: loop), random: SeededRandom(seed: 1),
                         logger: quietLogger("wow.\(scheme).test"), eventLoop: loop)
    }

    /// Starts `listener`; returns its index.
    @discardableResult
    func add(_ listener: TCPEdgeListener) throws -> Int {
        let recorder = StreamRecorder()
        try listener.start(delegate: recorder)
        listeners.append(listener)
        recorders.append(recorder)
        return listeners.count - 1
    }

    func uri(_ index: Int) throws -> TransportURI {
        try TransportURI("\(scheme)://127.0.0.1:\(try XCTUnwrap(listeners[index].port))")
    }

    /// Asks listener `from` for an edge to `uri`; returns the request number. Fails the test if the completion
    /// runs inside `createEdge` or twice.
    func connect(_ from: Int, to uri: TransportURI) -> Int {
        requests += 1
        let request = requests
        var returned = false
        listeners[from].createEdge(to: uri) { [self] result in
            XCTAssertTrue(returned, "createEdge called its completion from inside")
            XCTAssertNil(results[request], "createEdge called its completion twice")
            if case .success(let edge) = result { edge.delegate = recorders[from] }
            results[request] = result
        }
        returned = true
        return request
    }

    func edge(_ request: Int) -> (any Edge)? {
        if case .success(let edge) = results[request] { return edge }
        return nil
    }

    func error(_ request: Int) -> EdgeError? {
        if case .failure(let error) = results[request] { return error }
        return nil
    }

    func stopAll() {
        for listener in listeners { listener.stop() }
    }
}

/// Runs tests on one event loop of their own.
class StreamTransportTestCase: XCTestCase {
    var group: MultiThreadedEventLoopGroup!
    var loop: any EventLoop { group.next() }
    var world: NIOLoopBound<StreamTestWorld>!

    var scheme: String { "tcp" }

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let scheme = self.scheme
        world = try loop.submit { NIOLoopBound(StreamTestWorld(loop: loop, scheme: scheme), eventLoop: loop) }.wait()
    }

    override func tearDownWithError() throws {
        let world = self.world!
        try? loop.submit { world.value.stopAll() }.wait()
        self.world = nil
        try group.syncShutdownGracefully()
        group = nil
    }

    /// Runs `body` on the loop with the world, and waits for its result.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (StreamTestWorld) throws -> T) throws -> T {
        let world = self.world!
        return try loop.submit { try body(world.value) }.wait()
    }

    /// Waits (polling the loop) until `condition` holds; fails after 10 s.
    func waitUntil(_ what: String, file: StaticString = #filePath, line: UInt = #line,
                   _ condition: @escaping @Sendable (StreamTestWorld) -> Bool) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if try onLoop(condition) { return }
            Thread.sleep(forTimeInterval: 0.005)
        }
        XCTFail("timed out waiting until \(what)", file: file, line: line)
        throw CancellationError()
    }

    /// Lets the loop run a while, for asserting that something does not happen.
    func settle() throws {
        Thread.sleep(forTimeInterval: 0.2)
        try onLoop { _ in () }
    }

    /// A plain TCP client socket to `port` on 127.0.0.1 (made on the loop's group, driven from the test thread).
    func rawClient(port: Int) throws -> any Channel {
        try ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).wait()
    }

    /// A free port on 127.0.0.1 (bound and released).
    func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = try XCTUnwrap(channel.localAddress?.port)
        try channel.close().wait()
        return port
    }
}

final class TCPTransportTests: StreamTransportTestCase {
    /// A started tcp listener on 127.0.0.1 with an ephemeral port; returns its index.
    @discardableResult
    private func addListener(listen: String = "127.0.0.1:0", advertise: [TransportURI] = [],
                             connectTimeoutMilliseconds: Int = 5000, maximumPacketSize: Int = 65_535) throws -> Int {
        try onLoop { world in
            try world.add(TCPEdgeListener(scheme: "tcp", listen: listen, advertise: advertise,
                                          connectTimeoutMilliseconds: connectTimeoutMilliseconds, security: nil,
                                          eventLoop: world.loop, logger: quietLogger("wow.tcp.test"),
                                          maximumPacketSize: maximumPacketSize))
        }
    }

    /// Connects listener 0 to listener 1; returns the request number once both ends have the edge.
    private func connectZeroToOne() throws -> Int {
        let request = try onLoop { world in world.connect(0, to: try world.uri(1)) }
        try waitUntil("the edge is up at both ends") { world in
            world.edge(request) != nil && world.recorders[1].accepted.count == 1
        }
        return request
    }

    func testPacketsFlowBothWays() throws {
        try addListener()
        try addListener()
        let request = try connectZeroToOne()
        try onLoop { world in
            let outbound = try XCTUnwrap(world.edge(request))
            let inbound = try XCTUnwrap(world.recorders[1].accepted.first)
            XCTAssertFalse(outbound.isInbound)
            XCTAssertTrue(inbound.isInbound)
            XCTAssertEqual(outbound.transport, "tcp")
            XCTAssertEqual(outbound.remoteURI, try world.uri(1))
            // The inbound edge names the peer socket: 127.0.0.1 and the outbound connection's own port.
            XCTAssertEqual(inbound.remoteURI, outbound.localURI)
            XCTAssertEqual(inbound.localURI, outbound.remoteURI)
            outbound.send(ByteBuffer(string: "hello"))
            outbound.send(ByteBuffer(string: "there"))
        }
        try waitUntil("both packets arrive") { $0.recorders[1].received.count == 2 }
        try onLoop { world in
            let inbound = world.recorders[1].accepted[0]
            XCTAssertEqual(world.recorders[1].payloads(on: inbound), ["hello", "there"])
            inbound.send(ByteBuffer(string: "back"))
            inbound.send(ByteBuffer(repeating: 7, count: 65_535))
        }
        try waitUntil("the replies arrive") { $0.recorders[0].received.count == 2 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].received.map(\.payload), ["back", ""])
            XCTAssertEqual(world.recorders[0].received.map(\.size), [4, 65_535])
            XCTAssertEqual(world.listeners[0].packetsSent, 2)
            XCTAssertEqual(world.listeners[0].bytesSent, 10)
            XCTAssertEqual(world.listeners[1].packetsReceived, 2)
            XCTAssertEqual(world.listeners[1].packetsSent, 2)
            XCTAssertEqual(world.listeners[1].bytesSent, 65_539)
            XCTAssertEqual(world.listeners[0].bytesReceived, 65_539)
            XCTAssertEqual(world.listeners[0].connectionsOpened, 1)
            XCTAssertEqual(world.listeners[1].connectionsAccepted, 1)
            XCTAssertEqual(world.listeners[1].edgeCount, 1)
        }
    }

    /// A listener bound to one address of a host with several connects from that address: peers see the
    /// node where it listens (127.0.0.2 here; the kernel alone would pick 127.0.0.1 toward 127.0.0.1). Found
    /// on the testbed, where routers share a link and each took the others for NATs.
    func testConnectionsLeaveFromTheAddressTheListenerIsBoundTo() throws {
        try addListener(listen: "127.0.0.2:0")
        try addListener(listen: "127.0.0.1:0")
        let request = try connectZeroToOne()
        try onLoop { world in
            let inbound = try XCTUnwrap(world.recorders[1].accepted.first)
            XCTAssertTrue(inbound.remoteURI.rest.hasPrefix("127.0.0.2:"), "seen at \(inbound.remoteURI)")
            XCTAssertEqual(try XCTUnwrap(world.edge(request)).localURI, inbound.remoteURI)
        }
    }

    func testOversizedAndEmptySendsAreDroppedAndCounted() throws {
        try addListener()
        try addListener()
        let request = try connectZeroToOne()
        try onLoop { world in
            let outbound = try XCTUnwrap(world.edge(request))
            outbound.send(ByteBuffer(repeating: 1, count: 65_536))
            outbound.send(ByteBuffer())
            outbound.send(ByteBuffer(string: "fits"))
        }
        try waitUntil("the packet that fits arrives") { $0.recorders[1].received.count == 1 }
        try settle()
        try onLoop { world in
            XCTAssertEqual(world.recorders[1].received.map(\.payload), ["fits"])
            XCTAssertEqual(world.listeners[0].drops.count(of: .oversized), 1)
            XCTAssertEqual(world.listeners[0].drops.count(of: .empty), 1)
            XCTAssertEqual(world.listeners[0].packetsSent, 1)
            XCTAssertEqual(world.recorders[1].closed.count, 0, "dropping a send does not close the connection")
        }
    }

    func testFramesSplitAcrossReadsAndCoalescedAreDeliveredWhole() throws {
        try addListener()
        let port = try onLoop { try XCTUnwrap($0.listeners[0].port) }
        let client = try rawClient(port: port)
        defer { client.close(promise: nil) }
        // Three frames in one write.
        var coalesced = ByteBuffer()
        for text in ["one", "two", "three"] {
            coalesced.writeInteger(UInt16(text.utf8.count))
            coalesced.writeString(text)
        }
        try client.writeAndFlush(coalesced).wait()
        try waitUntil("the coalesced frames arrive") { $0.recorders[0].received.count == 3 }
        // One frame in three writes, cut inside the length prefix and inside the packet.
        let pieces: [[UInt8]] = [[0x00], [0x04, UInt8(ascii: "f"), UInt8(ascii: "o")], [UInt8(ascii: "u"), UInt8(ascii: "r"), 0x00, 0x01]]
        for piece in pieces {
            try client.writeAndFlush(ByteBuffer(bytes: piece)).wait()
            Thread.sleep(forTimeInterval: 0.05)
        }
        try client.writeAndFlush(ByteBuffer(string: "!")).wait()
        try waitUntil("the split frames arrive") { $0.recorders[0].received.count == 5 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].received.map(\.payload), ["one", "two", "three", "four", "!"])
            XCTAssertEqual(world.listeners[0].drops.total, 0)
        }
    }

    func testDecoderDeliversWholeFramesWhateverTheChunking() throws {
        var stream: [UInt8] = []
        let packets = ["a", "packet", String(repeating: "x", count: 300)]
        for packet in packets {
            stream += [UInt8(packet.utf8.count >> 8), UInt8(packet.utf8.count & 0xff)] + Array(packet.utf8)
        }
        for chunkSize in [1, 2, 3, 7, stream.count] {
            var buffer = ByteBuffer()
            var decoded: [String] = []
            var offset = 0
            while offset < stream.count {
                let end = min(offset + chunkSize, stream.count)
                buffer.writeBytes(stream[offset..<end])
                offset = end
                while let frame = try TCPFrameDecoder.nextFrame(in: &buffer, maximumLength: 65_535) {
                    decoded.append(String(buffer: frame))
                }
            }
            XCTAssertEqual(decoded, packets, "chunks of \(chunkSize)")
            XCTAssertEqual(buffer.readableBytes, 0)
        }
        var zero = ByteBuffer(bytes: [0, 0, 1])
        XCTAssertThrowsError(try TCPFrameDecoder.nextFrame(in: &zero, maximumLength: 65_535)) { error in
            XCTAssertEqual(error as? TCPFrameDecoder.FrameError, .emptyFrame)
        }
        var long = ByteBuffer(bytes: [0x03, 0xe9])
        XCTAssertThrowsError(try TCPFrameDecoder.nextFrame(in: &long, maximumLength: 1000)) { error in
            XCTAssertEqual(error as? TCPFrameDecoder.FrameError, .frameTooLong(length: 1001, limit: 1000))
        }
    }

    func testOversizedLengthPrefixClosesTheConnection() throws {
        try addListener(maximumPacketSize: 1000)
        let port = try onLoop { try XCTUnwrap($0.listeners[0].port) }
        let client = try rawClient(port: port)
        try waitUntil("the connection is an edge") { $0.recorders[0].accepted.count == 1 }
        try client.writeAndFlush(ByteBuffer(bytes: [0x03, 0xe9, 1, 2, 3])).wait()
        XCTAssertNoThrow(try client.closeFuture.wait(), "the listener closes the connection")
        try waitUntil("the edge reports its close") { $0.recorders[0].closed.count == 1 }
        try settle()
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].drops.count(of: .frameTooLong), 1)
            XCTAssertEqual(world.recorders[0].received.count, 0)
            XCTAssertEqual(world.recorders[0].closed.count, 1)
            XCTAssertTrue(world.recorders[0].accepted[0].isClosed)
            XCTAssertEqual(world.listeners[0].edgeCount, 0)
        }
    }

    /// A flood of connections costs a bounded number of sockets: beyond the limits (in all, per address) an
    /// inbound connection is closed at once and counted; an address at its share is dropped in the kernel
    /// (its connections never complete) until one of its connections ends; a place freed is taken again.
    func testInboundConnectionsAreCappedInAllAndPerAddress() throws {
        try addListener()
        try onLoop { world in world.listeners[0].inboundLimits = (total: 3, perAddress: 2) }
        let port = try onLoop { try XCTUnwrap($0.listeners[0].port) }
        func client(from source: String, timeout: TimeAmount = .seconds(10)) throws -> any Channel {
            try ClientBootstrap(group: group).connectTimeout(timeout).bind(to: SocketAddress(ipAddress: source, port: 0))
                .connect(host: "127.0.0.1", port: port).wait()
        }
        let first = try client(from: "127.0.0.1")
        _ = try client(from: "127.0.0.1")
        try waitUntil("two edges") { $0.recorders[0].accepted.count == 2 }
        let filtering = try onLoop { $0.listeners[0].filtersSources }
        XCTAssertEqual(filtering, SocketFilter.isAvailable, "the kernel took the filter")
        if filtering {
            try onLoop { world in XCTAssertEqual(Array(world.listeners[0].blockedSources.keys), ["127.0.0.1"]) }
            XCTAssertThrowsError(try client(from: "127.0.0.1", timeout: .milliseconds(300)),
                                 "a third connection from 127.0.0.1 never completes: the kernel drops its SYN")
            // Another address is not filtered, and its connection carries packets both ways.
            let other = try client(from: "127.0.0.3")
            try waitUntil("the other address's edge") { $0.recorders[0].accepted.count == 3 }
            try other.writeAndFlush(ByteBuffer(bytes: [0x00, 0x02, 0x68, 0x69])).wait()
            try waitUntil("its packet arrives") { $0.recorders[0].received.count == 1 }
            try other.close().wait()
            try waitUntil("its edge closed") { $0.recorders[0].closed.count == 1 }
        } else {
            let third = try client(from: "127.0.0.1")
            XCTAssertNoThrow(try third.closeFuture.wait(), "a third connection from 127.0.0.1 is closed at once")
        }
        let closedBefore = try onLoop { $0.recorders[0].closed.count }
        try first.close().wait()
        try waitUntil("the first edge closed") { $0.recorders[0].closed.count == closedBefore + 1 }
        try onLoop { world in XCTAssertEqual(world.listeners[0].blockedSources.count, 0, "127.0.0.1 is let through again") }
        let acceptedBefore = try onLoop { $0.recorders[0].accepted.count }
        _ = try client(from: "127.0.0.1")
        try waitUntil("the freed place is taken") { $0.recorders[0].accepted.count == acceptedBefore + 1 }
        // Two from 127.0.0.1 and one from 127.0.0.2 fill the listener; a second from 127.0.0.2 finds it full.
        _ = try client(from: "127.0.0.2")
        try waitUntil("another address's connection") { $0.recorders[0].accepted.count == acceptedBefore + 2 }
        let full = try client(from: "127.0.0.2")
        XCTAssertNoThrow(try full.closeFuture.wait(), "the listener is full")
        try settle()
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].drops.count(of: .inboundLimit), filtering ? 1 : 2)
            XCTAssertEqual(world.recorders[0].accepted.count, acceptedBefore + 2)
            XCTAssertEqual(world.listeners[0].drops.byName["inbound_limit"], filtering ? 1 : 2)
            XCTAssertEqual(world.listeners[0].sourcesBlocked, filtering ? 2 : 0)
        }
    }

    func testZeroLengthFrameClosesTheConnection() throws {
        try addListener()
        let port = try onLoop { try XCTUnwrap($0.listeners[0].port) }
        let client = try rawClient(port: port)
        try client.writeAndFlush(ByteBuffer(bytes: [0x00, 0x02, 0x68, 0x69, 0x00, 0x00])).wait()
        XCTAssertNoThrow(try client.closeFuture.wait(), "the listener closes the connection")
        try waitUntil("the edge reports its close") { $0.recorders[0].closed.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].received.map(\.payload), ["hi"], "frames before the bad one are delivered")
            XCTAssertEqual(world.listeners[0].drops.count(of: .emptyFrame), 1)
        }
    }

    func testConnectionRefusedIsUnreachable() throws {
        try addListener()
        let port = try freePort()
        let uri = try TransportURI("tcp://127.0.0.1:\(port)")
        let request = try onLoop { $0.connect(0, to: uri) }
        try waitUntil("the attempt fails") { $0.results[request] != nil }
        try onLoop { world in
            guard case .unreachable(let failed, let reason) = world.error(request) else {
                return XCTFail("expected unreachable, got \(String(describing: world.results[request]))")
            }
            XCTAssertEqual(failed, uri)
            XCTAssertTrue(reason.contains("refused"), reason)
            XCTAssertEqual(world.listeners[0].connectFailures, 1)
        }
    }

    func testBadURIsFailWithoutConnecting() throws {
        try addListener()
        let requests = try onLoop { world in
            [world.connect(0, to: try TransportURI("udp://127.0.0.1:4000")),
             world.connect(0, to: try TransportURI("tcp://example.org:4001")),
             world.connect(0, to: try TransportURI("tcp://127.0.0.1"))]
        }
        try waitUntil("all fail") { world in requests.allSatisfy { world.results[$0] != nil } }
        try onLoop { world in
            XCTAssertEqual(world.error(requests[0]), .wrongScheme(expected: "tcp", got: "udp"))
            guard case .badLocation(_, let reason) = world.error(requests[1]) else { return XCTFail("expected badLocation") }
            XCTAssertTrue(reason.contains("DNS"), reason)
            guard case .badLocation = world.error(requests[2]) else { return XCTFail("expected badLocation") }
        }
    }

    func testPeerClosingReportsEdgeDidCloseOnce() throws {
        try addListener()
        try addListener()
        let request = try connectZeroToOne()
        try onLoop { world in
            let inbound = world.recorders[1].accepted[0]
            inbound.close()
            inbound.close()
            XCTAssertTrue(inbound.isClosed)
            XCTAssertEqual(world.recorders[1].closed.count, 0, "edgeDidClose is not called from inside close")
        }
        try waitUntil("the outbound edge closes by itself") { $0.recorders[0].closed.count == 1 }
        try settle()
        try onLoop { world in
            let outbound = try XCTUnwrap(world.edge(request))
            let inbound = world.recorders[1].accepted[0]
            XCTAssertTrue(outbound.isClosed)
            XCTAssertEqual(world.recorders[0].closeCount(of: outbound), 1)
            XCTAssertEqual(world.recorders[1].closeCount(of: inbound), 1)
            outbound.close()
            outbound.send(ByteBuffer(string: "late"))
            XCTAssertEqual(world.listeners[0].drops.count(of: .edgeClosed), 1)
            XCTAssertEqual(world.listeners[0].edgeCount, 0)
            XCTAssertEqual(world.listeners[1].edgeCount, 0)
        }
        try settle()
        try onLoop { world in
            XCTAssertEqual(world.recorders[0].closed.count, 1, "closing again reports nothing more")
            XCTAssertEqual(world.recorders[1].closed.count, 1)
        }
    }

    func testStopClosesAllEdgesAndLaterCreateEdgeIsStopped() throws {
        try addListener()
        try addListener()
        let first = try connectZeroToOne()
        let second = try onLoop { world in world.connect(0, to: try world.uri(1)) }
        try waitUntil("the second edge is up") { $0.edge(second) != nil && $0.recorders[1].accepted.count == 2 }
        let stopped = try onLoop { world in
            world.listeners[1].stop()
            world.listeners[1].stop()
            return world.connect(1, to: try world.uri(0))
        }
        try waitUntil("every edge at both ends closes") { world in
            world.recorders[1].closed.count == 2 && world.recorders[0].closed.count == 2 && world.results[stopped] != nil
        }
        try settle()
        try onLoop { world in
            XCTAssertEqual(world.error(stopped), .stopped)
            XCTAssertEqual(Set(world.recorders[1].closed), Set(world.recorders[1].accepted.map(ObjectIdentifier.init)))
            XCTAssertEqual(Set(world.recorders[0].closed),
                           Set([first, second].compactMap { world.edge($0) }.map(ObjectIdentifier.init)))
            XCTAssertFalse(world.listeners[1].isRunning)
            XCTAssertEqual(world.listeners[1].edgeCount, 0)
        }
        // Nobody listens there any more.
        let refused = try onLoop { world in world.connect(0, to: try world.uri(1)) }
        try waitUntil("the attempt fails") { $0.results[refused] != nil }
        try onLoop { world in
            guard case .unreachable = world.error(refused) else { return XCTFail("expected unreachable") }
        }
    }

    func testBindConflictThrowsNamingTheAddress() throws {
        try addListener()
        let port = try onLoop { try XCTUnwrap($0.listeners[0].port) }
        XCTAssertThrowsError(try addListener(listen: "127.0.0.1:\(port)")) { error in
            guard case .bindFailed(let transport, let address, let reason) = error as? TCPTransportError else {
                return XCTFail("expected bindFailed, got \(error)")
            }
            XCTAssertEqual(transport, "tcp")
            XCTAssertEqual(address, "127.0.0.1:\(port)")
            XCTAssertTrue(reason.lowercased().contains("in use"), reason)
            XCTAssertTrue("\(error)".contains("127.0.0.1:\(port)"))
        }
    }

    func testLocalURIs() throws {
        let advertised = try TransportURI("tcp://198.18.0.1:4001")
        let specific = try addListener()
        let wildcard = try addListener(listen: "0.0.0.0:0", advertise: [advertised])
        try onLoop { world in
            let port = try XCTUnwrap(world.listeners[specific].port)
            XCTAssertEqual(world.listeners[specific].localURIs, [try TransportURI("tcp://127.0.0.1:\(port)")])
            let wildPort = try XCTUnwrap(world.listeners[wildcard].port)
            let uris = world.listeners[wildcard].localURIs
            XCTAssertEqual(uris.first, advertised)
            // Interface addresses; loopback only when there is no other (a peer elsewhere would reach itself).
            let bound = Array(uris.dropFirst())
            XCTAssertFalse(bound.isEmpty)
            XCTAssertTrue(bound.allSatisfy { $0.text.hasSuffix(":\(wildPort)") && !$0.text.contains("0.0.0.0") }, "\(bound)")
            if bound.contains(where: { !$0.text.contains("127.0.0.1") }) {
                XCTAssertFalse(bound.contains { $0.text.contains("127.0.0.1") }, "\(bound)")
            }
        }
    }

    func testSettings() throws {
        let defaults = try PluginSettings.empty.decode(TCPTransport.Settings.self, for: "tcp")
        XCTAssertEqual(defaults.listen, "0.0.0.0:4001")
        XCTAssertEqual(defaults.advertise, [])
        XCTAssertEqual(defaults.connectTimeoutMilliseconds, 5000)

        let given = try PluginSettings(yaml: """
            listen: "[::]:5001"
            advertise: ["tcp://198.18.0.1:5001"]
            connect_timeout_ms: 250
            """).decode(TCPTransport.Settings.self, for: "tcp")
        XCTAssertEqual(given.listen, "[::]:5001")
        XCTAssertEqual(given.advertise, [try TransportURI("tcp://198.18.0.1:5001")])
        XCTAssertEqual(given.connectTimeoutMilliseconds, 250)

        func reason(_ yaml: String) -> String {
            do {
                _ = try PluginSettings(yaml: yaml).decode(TCPTransport.Settings.self, for: "tcp")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(reason("listn: 0.0.0.0:1").contains("unknown key 'listn'"), reason("listn: 0.0.0.0:1"))
        XCTAssertTrue(reason("listen: localhost:4001").contains("listen"), reason("listen: localhost:4001"))
        XCTAssertTrue(reason("listen: localhost:4001").contains("DNS"), reason("listen: localhost:4001"))
        XCTAssertTrue(reason("listen: 1.2.3.4").contains("listen"))
        XCTAssertTrue(reason("advertise: [\"udp://1.2.3.4:5\"]").contains("advertise"))
        XCTAssertTrue(reason("connect_timeout_ms: 0").contains("connect_timeout_ms"))

        let simulator = TransportContext(scheduler: SimulationScheduler(), random: SeededRandom(seed: 1),
                                         logger: quietLogger("wow.tcp.test"))
        XCTAssertThrowsError(try TCPTransport.makeListener(settings: defaults, context: simulator)) { error in
            XCTAssertEqual(error as? TCPTransportError, .needsEventLoop(transport: "tcp"))
        }
        try onLoop { world in
            XCTAssertThrowsError(try TCPTransport.makeListener(settings: TCPTransport.Settings(listen: "nowhere"),
                                                               context: world.context)) { error in
                guard case .badListenAddress = error as? TCPTransportError else { return XCTFail("\(error)") }
            }
            let listener = try TCPTransport.makeListener(settings: defaults, context: world.context)
            XCTAssertEqual(listener.scheme, "tcp")
        }
    }
}
