import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import Transports
import WOWKit
import XCTest

/// Records what a listener and its edges report, in order. Lives on the test's event loop.
private final class Recorder: EdgeListenerDelegate, EdgeDelegate {
    struct Received {
        var edge: ObjectIdentifier
        var from: TransportURI
        var payload: String
        var size: Int
        var checksum: UInt64
    }

    var accepted: [any Edge] = []
    var received: [Received] = []
    var closed: [ObjectIdentifier] = []
    /// What strangers' packets are admitted (nil: all, the default), and whether only authenticated ones are.
    var gate: ((ByteBuffer) -> EdgeAdmission)?
    var admitsOnlyAuthenticatedStrangers = false

    func edgeListener(_ listener: any EdgeListener, admit packet: ByteBuffer,
                      from remote: () -> TransportURI) -> EdgeAdmission {
        gate?(packet) ?? .accept
    }

    func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {
        accepted.append(edge)
        edge.delegate = self
    }

    func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
        let payload = packet.readableBytes <= 64 ? String(buffer: packet) : ""
        received.append(Received(edge: ObjectIdentifier(edge), from: edge.remoteURI, payload: payload,
                                 size: packet.readableBytes, checksum: checksum(of: packet)))
    }

    func edgeDidClose(_ edge: any Edge) {
        closed.append(ObjectIdentifier(edge))
    }

    func payloads(on edge: any Edge) -> [String] {
        received.filter { $0.edge == ObjectIdentifier(edge) }.map(\.payload)
    }
}

/// Everything a test makes, confined to the test's event loop; the test thread reaches it only through
/// `loop.submit { ... }.wait()`.
private final class World {
    let loop: any EventLoop
    var listeners: [UDPEdgeListener] = []
    var recorders: [Recorder] = []
    /// Results of `createEdge`, by request number.
    var results: [Int: Result<any Edge, EdgeError>] = [:]
    private var requests = 0

    init(loop: any EventLoop) { self.loop = loop }

    func makeListener(listen: String = "127.0.0.1:0", advertise: [TransportURI] = []) throws -> UDPEdgeListener {
        let context = TransportContext(scheduler: EventLoopScheduler(eventLoop: loop), random: SeededRandom(seed: 1),
                                       logger: Logger(label: "wow.udp.test"), eventLoop: loop)
        let made = try UDPTransport.makeListener(settings: UDPTransport.Settings(listen: listen, advertise: advertise),
                                                 context: context)
        return try XCTUnwrap(made as? UDPEdgeListener)
    }

    /// Makes and starts a listener; returns its index. `offload: false` turns UDP GSO and GRO off.
    @discardableResult
    func addListener(listen: String = "127.0.0.1:0", advertise: [TransportURI] = [], offload: Bool = true) throws -> Int {
        let listener = try makeListener(listen: listen, advertise: advertise)
        listener.usesSegmentationOffload = offload && System.supportsUDPSegmentationOffload
        listener.usesReceiveOffload = offload && System.supportsUDPReceiveOffload
        let recorder = Recorder()
        try listener.start(delegate: recorder)
        listeners.append(listener)
        recorders.append(recorder)
        return listeners.count - 1
    }

    func uri(_ index: Int) throws -> TransportURI {
        try TransportURI("udp://127.0.0.1:\(try XCTUnwrap(listeners[index].port))")
    }

    /// Asks listener `from` for an edge to `uri`; returns the request number. Fails the test if the completion
    /// runs inside `createEdge`.
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

private func packet(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// A packet of `size` bytes whose content depends on `seed`.
private func packet(size: Int, seed: Int) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(size + 8)
    var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    for _ in stride(from: 0, to: size, by: 8) {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        buffer.writeInteger(state)
    }
    buffer.moveWriterIndex(to: size)
    return buffer
}

/// Sends a packet of each of `sizes` on `edge` (the one at `index` made with seed `firstSeed + index`), in order;
/// returns their checksums.
private func send(sizes: [Int], on edge: any Edge, firstSeed: Int = 0) -> [UInt64] {
    sizes.enumerated().map { index, size in
        let packet = packet(size: size, seed: firstSeed + index)
        edge.send(packet)
        return checksum(of: packet)
    }
}

/// FNV-1a over the readable bytes, 8 at a time (and the length), fast enough for a debug build.
private func checksum(of packet: ByteBuffer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(packet.readableBytes)
    var rest = packet
    while let word = rest.readInteger(as: UInt64.self) { hash = (hash ^ word) &* 0x100_0000_01B3 }
    while let byte = rest.readInteger(as: UInt8.self) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return hash
}

/// Counts what a plain UDP socket (no GRO) reads: each read is exactly one datagram as it was on the wire.
/// A relay between two sockets that drops every `dropEvery`-th datagram going to `target` (a lossy path
/// for forward error correction on loopback). Lives on the test's event loop.
private final class LossyRelay: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: touched only on the channel's event loop and by the test through that loop.
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let target: SocketAddress
    let dropEvery: Int
    var client: SocketAddress?
    var forwarded = 0
    var dropped = 0

    init(target: SocketAddress, dropEvery: Int) {
        self.target = target
        self.dropEvery = dropEvery
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if envelope.remoteAddress == target {
            guard let client else { return }
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: envelope.data)),
                                  promise: nil)
            return
        }
        client = envelope.remoteAddress
        forwarded += 1
        if forwarded % dropEvery == 0 {
            dropped += 1
            return
        }
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: target, data: envelope.data)),
                              promise: nil)
    }
}

private final class DatagramSizes: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: touched only on the channel's event loop (reads) and by the test through that loop.
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    var sizes: [Int] = []
    var texts: [String] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let datagram = unwrapInboundIn(data).data
        sizes.append(datagram.readableBytes)
        texts.append(String(buffer: datagram))
    }
}

final class UDPTransportTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup?
    private var world: NIOLoopBound<World>?

    override func setUpWithError() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        self.group = group
        world = try loop.submit { NIOLoopBound(World(loop: loop), eventLoop: loop) }.wait()
    }

    override func tearDownWithError() throws {
        if let world {
            try? world.eventLoop.submit { world.value.stopAll() }.wait()
        }
        world = nil
        try group?.syncShutdownGracefully()
        group = nil
    }

    /// Runs `body` on the loop with the world and waits for its result.
    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (World) throws -> T) throws -> T {
        let world = try XCTUnwrap(self.world)
        return try world.eventLoop.submit { try body(world.value) }.wait()
    }

    /// Waits (on the test thread) until `condition` holds on the loop, for at most 5 s.
    private func eventually(_ what: String, file: StaticString = #filePath, line: UInt = #line,
                            _ condition: @escaping @Sendable (World) throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if try onLoop(condition) { return }
            Thread.sleep(forTimeInterval: 0.005)
        }
        XCTFail("timed out waiting until \(what)", file: file, line: line)
        throw XCTSkip("cannot go on")
    }

    // MARK: Exchanging packets

    func testTwoListenersExchangePacketsBothWaysOnEdgesWithTheRightURIs() throws {
        let request = try onLoop { world -> Int in
            try world.addListener()
            try world.addListener()
            return world.connect(0, to: try world.uri(1))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        try onLoop { world in
            let edge = try XCTUnwrap(world.edge(request))
            XCTAssertFalse(edge.isInbound)
            XCTAssertEqual(edge.remoteURI, try world.uri(1))
            XCTAssertEqual(edge.localURI, try world.uri(0))
            XCTAssertEqual(edge.transport, "udp")
            edge.send(packet("hello"))
        }
        try eventually("B accepts and receives") { $0.recorders[1].received.count == 1 }
        try onLoop { world in
            let inbound = try XCTUnwrap(world.recorders[1].accepted.first)
            XCTAssertEqual(world.recorders[1].accepted.count, 1)
            XCTAssertTrue(inbound.isInbound)
            XCTAssertEqual(inbound.remoteURI, try world.uri(0))
            XCTAssertEqual(inbound.localURI, try world.uri(1))
            XCTAssertEqual(world.recorders[1].payloads(on: inbound), ["hello"])
            inbound.send(packet("world"))
        }
        try eventually("A receives the answer") { $0.recorders[0].received.count == 1 }
        try onLoop { world in
            let edge = try XCTUnwrap(world.edge(request))
            XCTAssertEqual(world.recorders[0].payloads(on: edge), ["world"])
            XCTAssertTrue(world.recorders[0].accepted.isEmpty, "the answer came on the outbound edge")
            let a = world.listeners[0], b = world.listeners[1]
            XCTAssertEqual([a.packetsSent, a.bytesSent, a.packetsReceived, a.bytesReceived], [1, 5, 1, 5])
            XCTAssertEqual([b.packetsSent, b.bytesSent, b.packetsReceived, b.bytesReceived], [1, 5, 1, 5])
            XCTAssertEqual(a.drops.total + b.drops.total, 0)
        }
    }

    // MARK: Large packets

    /// Sends `rounds` rounds of packets of `sizes` from listener 0 to listener 1 on `host` (waiting for each
    /// round, so that no socket buffer overflows), then checks that every packet arrived once and intact, and
    /// that no datagram either way was over 1,452 bytes (the receiver counts datagrams after splitting GRO
    /// reads at the size the kernel reports).
    private func exchangeLargePackets(host: String, offload: Bool, sizes: [Int], rounds: Int) throws {
        let listen = host.contains(":") ? "[\(host)]:0" : "\(host):0"
        let request = try onLoop { world -> Int in
            try world.addListener(listen: listen, offload: offload)
            try world.addListener(listen: listen, offload: offload)
            let port = try XCTUnwrap(world.listeners[1].port)
            return world.connect(0, to: try TransportURI("udp://\(listen.dropLast(2)):\(port)"))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        var sent: [UInt64] = []
        for round in 0..<rounds {
            let checksums = try onLoop { world -> [UInt64] in
                send(sizes: sizes, on: try XCTUnwrap(world.edge(request)), firstSeed: round * 1_000)
            }
            sent += checksums
            let expected = sent.count
            try eventually("round \(round) arrives") { $0.recorders[1].received.count >= expected }
        }
        let fragments = sizes.map { $0 <= FECEncoder.maximumBodySize ? 1 : UDPFragmenter.fragmentCount(forPacketSize: $0) }.reduce(0, +)
        try onLoop { [sent] world in
            let a = world.listeners[0], b = world.listeners[1]
            let received = world.recorders[1].received
            XCTAssertEqual(received.map(\.checksum).sorted(), sent.sorted(), "every packet once, intact")
            XCTAssertEqual(received.map(\.size).sorted(), (0..<rounds).flatMap { _ in sizes }.sorted())
            XCTAssertEqual(a.packetsSent, sent.count)
            XCTAssertEqual(a.datagramsSent, fragments * rounds)
            XCTAssertEqual(b.datagramsReceived, fragments * rounds)
            XCTAssertEqual(a.largestDatagramSent, UDPTransport.maximumDatagramSize)
            XCTAssertEqual(b.largestDatagramReceived, UDPTransport.maximumDatagramSize)
            XCTAssertEqual(a.drops.total + b.drops.total, 0, "\(b.drops)")
            XCTAssertEqual(b.messagesInReassembly, 0)
            XCTAssertEqual(b.reassemblyBytes, 0)
            if offload && System.supportsUDPSegmentationOffload {
                XCTAssertGreaterThan(a.offloadWrites, 0)
            } else {
                XCTAssertEqual(a.offloadWrites, 0)
            }
            if offload && System.supportsUDPSegmentationOffload && System.supportsUDPReceiveOffload {
                // Loopback hands a GSO write to a GRO socket whole.
                XCTAssertGreaterThan(b.coalescedReads, 0)
            } else if !(offload && System.supportsUDPReceiveOffload) {
                XCTAssertEqual(b.coalescedReads, 0)
            }
        }
    }

    /// Packets of one size to one peer sent in a row (a TCP super-segment's sealed segments) leave in GSO writes
    /// of up to 48 datagrams of 1,336 bytes (and the 9-byte data header), and arrive each intact, in order, as datagrams of their own size.
    func testPacketsOfOneSizeInARowLeaveInGSOWritesAndArriveInOrder() throws {
        let request = try onLoop { world -> Int in
            try world.addListener()
            try world.addListener()
            return world.connect(0, to: try world.uri(1))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        let sizes = Array(repeating: 1_336, count: 100) + [500, 1_336, 1_336]
        let sent = try onLoop { world -> [UInt64] in
            return send(sizes: sizes, on: try XCTUnwrap(world.edge(request)))
        }
        try eventually("every packet arrives") { $0.recorders[1].received.count >= sizes.count }
        try onLoop { world in
            let a = world.listeners[0], b = world.listeners[1]
            XCTAssertEqual(world.recorders[1].received.map(\.checksum), sent, "each intact, in the order sent")
            XCTAssertEqual(world.recorders[1].received.map(\.size), sizes)
            XCTAssertEqual(b.datagramsReceived, sizes.count, "one datagram per packet")
            XCTAssertEqual(a.fragmentedPacketsSent, 0)
            XCTAssertEqual(a.largestDatagramSent, 1_336 + FECPacket.dataHeaderSize)
            if System.supportsUDPSegmentationOffload {
                // 48 + 48 + (4 + the shorter 500) + the last 2 (1,345-byte datagrams with the data header).
                XCTAssertEqual(a.offloadWrites, 4, "gathered into GSO writes")
            } else {
                XCTAssertEqual(a.offloadWrites, 0)
            }
        }
    }

    /// Without GSO and GRO every datagram is read alone from the kernel, so the socket takes several per system
    /// call (`recvmmsg`); a burst of them still arrives whole and in order.
    func testWithoutOffloadsTheSocketReadsSeveralDatagramsPerCallAndABurstArrivesInOrder() throws {
        let request = try onLoop { world -> Int in
            try world.addListener(offload: false)
            try world.addListener(offload: false)
            return world.connect(0, to: try world.uri(1))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        let sizes = (0..<60).map { 100 + $0 * 20 }
        let sent = try onLoop { world -> [UInt64] in
            XCTAssertEqual(world.listeners[1].readsPerCall, UDPEdgeListener.memberReadCount)
            return send(sizes: sizes, on: try XCTUnwrap(world.edge(request)))
        }
        try eventually("every packet arrives") { $0.recorders[1].received.count >= sizes.count }
        try onLoop { world in
            XCTAssertEqual(world.recorders[1].received.map(\.checksum), sent)
            XCTAssertEqual(world.listeners[1].coalescedReads, 0, "no GRO: each datagram its own read")
        }
    }

    private static let mixedSizes = [60_000, 1, 60_000, 100, 60_000, 1_452, 60_000, 1_453, 60_000, 2_888, 60_000,
                                     2_889, 60_000, 20_000, 60_000, 65_535, 60_000, 1_444 * 45, 60_000, 1_444 * 45 + 1]

    func testLargeAndMixedPacketsArriveIntactInDatagramsOfAtMost1452Bytes() throws {
        try exchangeLargePackets(host: "127.0.0.1", offload: true, sizes: Self.mixedSizes, rounds: 10)
    }

    func testLargePacketsArriveIntactWithoutSegmentationOffload() throws {
        try exchangeLargePackets(host: "127.0.0.1", offload: false, sizes: Self.mixedSizes, rounds: 5)
    }

    func testLargePacketsArriveIntactOverIPv6Loopback() throws {
        try exchangeLargePackets(host: "::1", offload: true, sizes: Self.mixedSizes, rounds: 3)
    }

    /// Over a path that loses one datagram in 50 (2%), the receiver's loss reports make the sender send
    /// parity (groups of 4), and from then on every lost datagram is put back: nothing is missing.
    func testAPathLosingDatagramsGetsParityAndLosesNothingOnceTheReportsCame() throws {
        let loop = try XCTUnwrap(world?.eventLoop)
        let receiverPort = try onLoop { world -> Int in
            try world.addListener(offload: false)
            try world.addListener(offload: false)
            return try XCTUnwrap(world.listeners[1].port)
        }
        let relay = LossyRelay(target: try SocketAddress(ipAddress: "127.0.0.1", port: receiverPort), dropEvery: 50)
        let channel = try DatagramBootstrap(group: loop)
            // As the listener's: no loss but the relay's own.
            .channelOption(.socketOption(.so_rcvbuf), value: UDPEdgeListener.socketBufferSize)
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(relay) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { channel.close(promise: nil) }
        let relayPort = try XCTUnwrap(channel.localAddress?.port)
        let request = try onLoop { world in world.connect(0, to: try TransportURI("udp://127.0.0.1:\(relayPort)")) }
        try eventually("the edge exists") { $0.results[request] != nil }
        // Warm-up: some of these are lost, and the reports tell the sender how many.
        func send(_ count: Int, seed: Int) throws -> [UInt64] {
            try onLoop { world -> [UInt64] in
                TransportsTests.send(sizes: Array(repeating: 1_000, count: count), on: try XCTUnwrap(world.edge(request)),
                                     firstSeed: seed)
            }
        }
        // Small bursts: the relay's socket has the kernel's default buffer.
        for round in 0..<100 {
            _ = try send(10, seed: round * 100)
            Thread.sleep(forTimeInterval: 0.002)
        }
        try eventually("the sender chose parity") { world in
            world.listeners[0].lossReportsReceived > 0 && world.listeners[0].paritySent > 0
        }
        let before = try onLoop { world in world.recorders[1].received.count }
        var sent: [UInt64] = []
        for round in 0..<100 {
            sent += try send(10, seed: 1_000_000 + round * 100)
            Thread.sleep(forTimeInterval: 0.002)
        }
        let expected = sent.count
        let arrived = try? eventually("every packet after the warm-up arrives") { world in
            world.recorders[1].received.count - before >= expected
        }
        if arrived == nil {
            let state = try onLoop { world in
                "\(world.recorders[1].received.count - before) of \(expected) arrived, \(world.listeners[1].recoveredDatagrams) "
                    + "recovered, parity \(world.listeners[0].paritySent) sent \(world.listeners[1].parityReceived) received, "
                    + "group size \((world.edge(request) as? UDPEdge)?.encoder.groupSize ?? -1), "
                    + "\(world.listeners[0].datagramsSent) datagrams sent, \(world.listeners[1].datagramsReceived) received"
            }
            let dropped = try loop.submit { (relay.forwarded, relay.dropped) }.wait()
            XCTFail("\(state); the relay forwarded \(dropped.0) and dropped \(dropped.1)")
        }
        try onLoop { [sent] world in
            let received = world.recorders[1].received.dropFirst(before).map(\.checksum)
            XCTAssertEqual(Set(received), Set(sent), "nothing lost, nothing made up")
            XCTAssertEqual(received.count, sent.count, "nothing twice")
            XCTAssertGreaterThan(world.listeners[1].recoveredDatagrams, 15, "the lost ones were put back")
            XCTAssertEqual((world.edge(request) as? UDPEdge)?.encoder.groupSize, 4, "groups of 4 at 2% loss")
            XCTAssertEqual(world.listeners[0].drops.total + world.listeners[1].drops.total, 0)
        }
        let dropped = try loop.submit { relay.dropped }.wait()
        XCTAssertGreaterThan(dropped, 20)
    }

    /// A stranger's packets that the delegate does not admit leave nothing behind: no edge, no reassembly;
    /// an answer the delegate gives goes back as it is; an admitted packet makes the edge.
    func testAStrangerTheDelegateDoesNotAdmitLeavesNothingBehind() throws {
        let loop = try XCTUnwrap(world?.eventLoop)
        let heard = DatagramSizes()
        let plain = try DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(heard) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { plain.close(promise: nil) }
        let port = try onLoop { world -> Int in
            try world.addListener()
            world.recorders[0].gate = { packet in
                switch String(buffer: packet) {
                case "\u{1}knock": return .reply(ByteBuffer(string: "go away"))
                case "\u{1}let me in": return .accept
                default: return .drop
                }
            }
            world.recorders[0].admitsOnlyAuthenticatedStrangers = true
            return try XCTUnwrap(world.listeners[0].port)
        }
        let listener = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        var fragment = ByteBuffer()
        FragmentPacket.writeHeader(messageID: 7, index: 0, count: 2, into: &fragment)
        fragment.writeRepeatingByte(1, count: 100)
        // "garbage" does not begin with the wire version: the kernel drops it (`SocketFilter`) where it can.
        for datagram in [ByteBuffer(string: "garbage"), ByteBuffer(string: "\u{1}garbage"), ByteBuffer(string: "\u{1}knock"), fragment] {
            try plain.writeAndFlush(AddressedEnvelope(remoteAddress: listener, data: datagram)).wait()
        }
        try eventually("the answer came back") { _ in heard.texts.contains("go away") }
        // The fragment, sent after the knock, may be judged after the answer left (it came through another
        // socket, or the loop was busy): wait for every datagram to be judged (the garbage without the wire
        // version is the kernel's to drop where it steers).
        try eventually("every datagram judged") { world in
            let udp = world.listeners[0]
            return udp.drops.count(of: .notAdmitted) >= (udp.isSteering ? 3 : 4)
        }
        try onLoop { world in
            let udp = world.listeners[0]
            XCTAssertEqual(udp.edgeCount, 0)
            XCTAssertTrue(world.recorders[0].accepted.isEmpty)
            XCTAssertEqual(udp.drops.count(of: .notAdmitted), udp.isSteering ? 3 : 4)
            XCTAssertEqual(udp.messagesInReassembly, 0, "no fragment kept")
            XCTAssertEqual(udp.packetsReceived, 0)
        }
        try plain.writeAndFlush(AddressedEnvelope(remoteAddress: listener, data: ByteBuffer(string: "\u{1}let me in"))).wait()
        try eventually("admitted") { $0.recorders[0].accepted.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].edgeCount, 1)
            XCTAssertEqual(world.recorders[0].received.map(\.payload), ["\u{1}let me in"])
        }
        // It proved itself: steered from its first packet on.
        if try onLoop({ $0.listeners[0].isSteering }) {
            try eventually("the admitted stranger is steered") { $0.listeners[0].steeredRemotes == 1 }
        }
    }

    /// A plain socket without GRO reads one wire datagram per read: what the listener sends is at most 1,452
    /// bytes, fragments full but the last, each a data datagram (`FECPacket`).
    func testAPlainSocketReceivesOnlyDatagramsOfAtMost1452Bytes() throws {
        let loop = try XCTUnwrap(world?.eventLoop)
        let sizes = DatagramSizes()
        let plain = try DatagramBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(sizes) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { plain.close(promise: nil) }
        let port = try XCTUnwrap(plain.localAddress?.port)
        let request = try onLoop { world -> Int in
            try world.addListener()
            return world.connect(0, to: try TransportURI("udp://127.0.0.1:\(port)"))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        try onLoop { world in
            let edge = try XCTUnwrap(world.edge(request))
            for size in [65_535, 60_000, 100] { edge.send(packet(size: size, seed: size)) }
        }
        try eventually("the plain socket read every datagram") { _ in sizes.sizes.count >= 46 + 42 + 1 }
        try onLoop { _ in
            let full = UDPTransport.maximumDatagramSize
            let headers = FECPacket.dataHeaderSize + FragmentPacket.headerSize
            let piece = UDPFragmenter.pieceSize
            let expected = Array(repeating: full, count: 45) + [65_535 - 45 * piece + headers]
                + Array(repeating: full, count: 41) + [60_000 - 41 * piece + headers] + [100 + FECPacket.dataHeaderSize]
            XCTAssertEqual(sizes.sizes, expected)
        }
    }

    // MARK: Hole punching

    /// A punch sends two 2-byte punch packets with the small TTL and then restores the socket's TTL; a receiver
    /// that gets them anyway (loopback) counts and drops them without making an edge, even when it has one.
    func testPunchPacketsLeaveWithTheSmallTTLAndAreDroppedByTheReceiverWithoutAnEdge() throws {
        let request = try onLoop { world -> Int in
            try world.addListener()
            try world.addListener()
            return world.connect(0, to: try world.uri(1))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        try onLoop { world in
            let a = world.listeners[0]
            let normal = try XCTUnwrap(a.ipv4TTL)
            let edge = try XCTUnwrap(world.edge(request) as? any HolePunchingEdge)
            edge.punch(ttl: 2)
            XCTAssertEqual(a.punchPacketsSent, 2)
            XCTAssertEqual(a.ipv4TTL, normal, "the TTL is restored once the punch packets left")
            XCTAssertEqual(a.packetsSent, 0, "punch packets are not edge packets")
        }
        try eventually("B gets both punch packets") { $0.listeners[1].punchPacketsReceived == 2 }
        try onLoop { world in
            let b = world.listeners[1]
            XCTAssertEqual(b.edgeCount, 0)
            XCTAssertTrue(world.recorders[1].accepted.isEmpty)
            XCTAssertTrue(world.recorders[1].received.isEmpty)
            XCTAssertEqual(b.drops.total, 0)
            try XCTUnwrap(world.edge(request)).send(packet("hello"))
        }
        try eventually("B receives the normal packet") { $0.recorders[1].received.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[1].accepted.count, 1)
            try XCTUnwrap(world.edge(request) as? any HolePunchingEdge).punch(ttl: 2)
        }
        try eventually("B drops punch packets on an existing edge too") { $0.listeners[1].punchPacketsReceived == 4 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[1].received.map(\.payload), ["hello"])
            let edge = try XCTUnwrap(world.edge(request) as? any HolePunchingEdge)
            edge.close()
            edge.punch(ttl: 2)
            XCTAssertEqual(world.listeners[0].punchPacketsSent, 4, "a closed edge does not punch")
        }
    }

    /// A dual-stack socket punches toward IPv4 peers (IP_TTL applies to IPv4-mapped addresses) and IPv6 peers
    /// (IPV6_UNICAST_HOPS).
    func testADualStackSocketPunchesTowardIPv4AndIPv6Peers() throws {
        let requests = try onLoop { world -> [Int] in
            try world.addListener(listen: "[::]:0")
            try world.addListener(listen: "127.0.0.1:0")
            try world.addListener(listen: "[::1]:0")
            let v6 = try TransportURI("udp://[::1]:\(try XCTUnwrap(world.listeners[2].port))")
            return [world.connect(0, to: try world.uri(1)), world.connect(0, to: v6)]
        }
        try eventually("both edges exist") { world in requests.allSatisfy { world.results[$0] != nil } }
        try onLoop { world in
            for request in requests { try XCTUnwrap(world.edge(request) as? any HolePunchingEdge).punch(ttl: 2) }
            XCTAssertEqual(world.listeners[0].punchPacketsSent, 4)
        }
        try eventually("both peers get the punch packets") { world in
            world.listeners[1].punchPacketsReceived == 2 && world.listeners[2].punchPacketsReceived == 2
        }
    }

    func testTwoRemotesMakeTwoInboundEdges() throws {
        let requests = try onLoop { world -> [Int] in
            for _ in 0..<3 { try world.addListener() }
            return [world.connect(1, to: try world.uri(0)), world.connect(2, to: try world.uri(0))]
        }
        try eventually("both edges exist") { world in requests.allSatisfy { world.results[$0] != nil } }
        try onLoop { world in
            for request in requests { world.edge(request)?.send(packet("ping \(request)")) }
        }
        try eventually("A received both") { $0.recorders[0].received.count == 2 }
        try onLoop { world in
            let accepted = world.recorders[0].accepted
            XCTAssertEqual(accepted.count, 2)
            XCTAssertEqual(world.listeners[0].edgeCount, 2)
            XCTAssertEqual(Set(accepted.map(\.remoteURI)), [try world.uri(1), try world.uri(2)])
            XCTAssertTrue(accepted.allSatisfy(\.isInbound))
            XCTAssertFalse(accepted[0] === accepted[1])
        }
    }

    func testCreateEdgeReturnsTheExistingEdgeForARemote() throws {
        let requests = try onLoop { world -> [Int] in
            try world.addListener()
            try world.addListener()
            return [world.connect(0, to: try world.uri(1)), world.connect(0, to: try world.uri(1))]
        }
        try eventually("both completions ran") { world in requests.allSatisfy { world.results[$0] != nil } }
        try onLoop { world in
            XCTAssertTrue(try XCTUnwrap(world.edge(requests[0])) === world.edge(requests[1]))
            XCTAssertEqual(world.listeners[0].edgeCount, 1)
            // An edge B accepted is the one B's createEdge to A returns.
            world.edge(requests[0])?.send(packet("hi"))
        }
        try eventually("B accepted") { $0.recorders[1].accepted.count == 1 }
        let back = try onLoop { world in world.connect(1, to: try world.uri(0)) }
        try eventually("B's completion ran") { $0.results[back] != nil }
        try onLoop { world in
            XCTAssertTrue(try XCTUnwrap(world.edge(back)) === world.recorders[1].accepted.first)
            XCTAssertEqual(world.listeners[1].edgeCount, 1)
        }
    }

    func testAClosedEdgeIsReplacedByANewInboundEdgeOnTheNextPacket() throws {
        let request = try onLoop { world -> Int in
            try world.addListener()
            try world.addListener()
            return world.connect(1, to: try world.uri(0))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        try onLoop { world in world.edge(request)?.send(packet("one")) }
        try eventually("A accepted") { $0.recorders[0].received.count == 1 }
        try onLoop { world in
            let first = try XCTUnwrap(world.recorders[0].accepted.first)
            first.close()
            first.close()
            XCTAssertTrue(first.isClosed)
            XCTAssertEqual(world.listeners[0].edgeCount, 0)
            first.send(packet("dropped"))
            XCTAssertEqual(world.listeners[0].drops.count(of: .edgeClosed), 1)
        }
        try eventually("the close is reported") { $0.recorders[0].closed.count == 1 }
        try onLoop { world in world.edge(request)?.send(packet("two")) }
        try eventually("A accepted again") { $0.recorders[0].received.count == 2 }
        try onLoop { world in
            let recorder = world.recorders[0]
            XCTAssertEqual(recorder.accepted.count, 2)
            XCTAssertFalse(recorder.accepted[0] === recorder.accepted[1])
            XCTAssertEqual(recorder.payloads(on: recorder.accepted[0]), ["one"])
            XCTAssertEqual(recorder.payloads(on: recorder.accepted[1]), ["two"])
            XCTAssertEqual(recorder.closed, [ObjectIdentifier(recorder.accepted[0])], "edgeDidClose once")
        }
    }

    // MARK: Errors and limits

    func testBadURIsGiveTheRightEdgeErrors() throws {
        let cases: [(String, String)] = [
            ("tcp://127.0.0.1:4000", "wrongScheme"),
            ("udp://example.com:4000", "badLocation"),
            ("udp://127.0.0.1", "badLocation"),
            ("udp://127.0.0.1:70000", "badLocation"),
            ("udp://::1:4000", "badLocation"),
            ("udp://[::1]:4000", "unreachable"),
        ]
        let requests = try onLoop { world -> [Int] in
            try world.addListener()
            return try cases.map { world.connect(0, to: try TransportURI($0.0)) }
        }
        try eventually("every completion ran") { world in requests.allSatisfy { world.results[$0] != nil } }
        try onLoop { world in
            for (request, (text, expected)) in zip(requests, cases) {
                let error = try XCTUnwrap(world.error(request), text)
                switch (error, expected) {
                case (.wrongScheme(let want, let got), "wrongScheme"):
                    XCTAssertEqual([want, got], ["udp", "tcp"])
                case (.badLocation(let uri, let reason), "badLocation"):
                    XCTAssertEqual(uri.text, text)
                    if text.contains("example") { XCTAssertTrue(reason.contains("DNS"), reason) }
                case (.unreachable, "unreachable"):
                    break
                default:
                    XCTFail("\(text): expected \(expected), got \(error)")
                }
            }
        }
    }

    func testAnOversizedPacketIsDroppedAndCounted() throws {
        let request = try onLoop { world -> Int in
            try world.addListener()
            try world.addListener()
            return world.connect(0, to: try world.uri(1))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        try onLoop { world in
            let edge = try XCTUnwrap(world.edge(request))
            edge.send(ByteBuffer(repeating: 7, count: UDPTransport.maximumPacketSize + 1))
            XCTAssertEqual(world.listeners[0].drops.count(of: .oversized), 1)
            XCTAssertEqual(world.listeners[0].drops.byName["oversized"], 1)
            XCTAssertEqual(world.listeners[0].packetsSent, 0)
            edge.send(ByteBuffer(repeating: 7, count: UDPTransport.maximumPacketSize))
        }
        try eventually("the largest packet arrives whole") { $0.recorders[1].received.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.recorders[1].received.map(\.size), [UDPTransport.maximumPacketSize])
            XCTAssertEqual(world.listeners[0].drops.total, 1)
        }
    }

    /// The kernel steers (`SocketFilter`): a remote with a steered edge (outbound at once, inbound from its
    /// second packet) reaches the listener's own socket, anyone else the strangers' socket; a closed edge's
    /// remote is a stranger again.
    func testTheKernelSteersMembersToTheListenersSocketAndStrangersToTheirOwn() throws {
        let loop = try XCTUnwrap(world?.eventLoop)
        let requests = try onLoop { world -> [Int] in
            for _ in 0..<3 { try world.addListener() }
            return [world.connect(1, to: try world.uri(0)), world.connect(0, to: try world.uri(2))]
        }
        try eventually("both edges exist") { world in requests.allSatisfy { world.results[$0] != nil } }
        try XCTSkipUnless(try onLoop { $0.listeners[0].isSteering }, "the kernel does not steer here (not Linux)")
        // Listener 1 is a stranger to 0 until its inbound edge there has a second packet.
        try onLoop { world in world.edge(requests[0])?.send(packet("one")) }
        try eventually("the first packet came") { $0.recorders[0].received.count == 1 }
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].strangerDatagrams, 1)
            world.edge(requests[0])?.send(packet("two"))
        }
        try eventually("the second packet came and 1 is steered") { world in
            world.recorders[0].received.count == 2 && world.listeners[0].steeredRemotes == 2
        }
        let strangers = try onLoop { world -> Int in
            for index in 0..<20 { world.edge(requests[0])?.send(packet("member \(index)")) }
            // 2 answers 0 on the edge 0 opened to it (outbound: steered from the start).
            world.edge(requests[1])?.send(packet("hello 2"))
            return world.listeners[0].strangerDatagrams
        }
        try eventually("2 heard 0") { $0.recorders[2].accepted.count == 1 }
        try onLoop { world in world.recorders[2].accepted[0].send(packet("from 2")) }
        try eventually("everything came") { $0.recorders[0].received.count == 23 }
        try onLoop { world in XCTAssertEqual(world.listeners[0].strangerDatagrams, strangers, "members on their own socket") }
        // A plain socket is a stranger.
        let plain = try DatagramBootstrap(group: loop).bind(host: "127.0.0.1", port: 0).wait()
        defer { plain.close(promise: nil) }
        let port = try XCTUnwrap(try onLoop { $0.listeners[0].port })
        try plain.writeAndFlush(AddressedEnvelope(remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: port),
                                                  data: ByteBuffer(string: "\u{1}stranger"))).wait()
        try eventually("the stranger's datagram came on its socket") { $0.listeners[0].strangerDatagrams == strangers + 1 }
        // Closing 1's edge at 0 makes 1 a stranger again.
        let updates = try onLoop { world -> Int in
            world.recorders[0].accepted.first { $0.remoteURI == (try? world.uri(1)) }?.close()
            return world.listeners[0].steeringUpdates
        }
        try eventually("the program was updated") { world in
            world.listeners[0].steeringUpdates > updates && world.listeners[0].steeredRemotes == 1
        }
        try onLoop { world in world.edge(requests[0])?.send(packet("again")) }
        try eventually("1's next packet came as a stranger's") { $0.listeners[0].strangerDatagrams == strangers + 2 }
    }

    /// Members first (`StrangerReadBudget`): while members' datagrams flow, a flood on the strangers' socket
    /// pauses its reads once it used its budget; reads resume, what the kernel queued meanwhile is still read,
    /// and members' packets keep arriving.
    func testStrangersReadsPauseWhileMembersTrafficFlowsAndResume() throws {
        let loop = try XCTUnwrap(world?.eventLoop)
        let request = try onLoop { world -> Int in
            for _ in 0..<2 { try world.addListener() }
            world.recorders[0].gate = { packet in String(buffer: packet).hasPrefix("\u{1}flood") ? .drop : .accept }
            return world.connect(1, to: try world.uri(0))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        try XCTSkipUnless(try onLoop { $0.listeners[0].isSteering }, "the kernel does not steer here (not Linux)")
        try onLoop { world in
            world.edge(request)?.send(packet("one"))
            world.edge(request)?.send(packet("two"))
        }
        try eventually("1 is steered") { $0.recorders[0].received.count == 2 && $0.listeners[0].steeredRemotes == 1 }
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].strangerReadPauses, 0)
            world.listeners[0].strangerBudget = StrangerReadBudget(perSecond: 1_000, memberActivity: .seconds(60))
            world.edge(request)?.send(packet("three"))
        }
        try eventually("members are active") { $0.recorders[0].received.count == 3 }
        let plain = try DatagramBootstrap(group: loop).bind(host: "127.0.0.1", port: 0).wait()
        defer { plain.close(promise: nil) }
        let listener = try SocketAddress(ipAddress: "127.0.0.1", port: try XCTUnwrap(try onLoop { $0.listeners[0].port }))
        let flood = 300
        for index in 0..<flood {
            plain.write(AddressedEnvelope(remoteAddress: listener, data: ByteBuffer(string: "\u{1}flood \(index)")), promise: nil)
        }
        plain.flush()
        try onLoop { world in world.edge(request)?.send(packet("during")) }
        try eventually("every stranger's datagram was read and refused") { world in
            world.listeners[0].drops.count(of: .notAdmitted) == flood
        }
        try onLoop { world in
            let udp = world.listeners[0]
            XCTAssertGreaterThan(udp.strangerReadPauses, 1, "reads paused and resumed")
            XCTAssertEqual(world.recorders[0].payloads(on: world.recorders[0].accepted[0]), ["one", "two", "three", "during"])
            XCTAssertEqual(udp.edgeCount, 1, "no stranger made an edge")
        }
    }

    /// Without steering (the setting off, or a kernel without it) one socket takes everything.
    func testWithoutSteeringOneSocketTakesEverything() throws {
        let request = try onLoop { world -> Int in
            let listener = try world.makeListener()
            listener.steersStrangers = false
            let recorder = Recorder()
            try listener.start(delegate: recorder)
            world.listeners.append(listener)
            world.recorders.append(recorder)
            try world.addListener()
            return world.connect(1, to: try world.uri(0))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        try onLoop { world in
            XCTAssertFalse(world.listeners[0].isSteering)
            for index in 0..<3 { world.edge(request)?.send(packet("p\(index)")) }
        }
        try eventually("all came") { $0.recorders[0].received.count == 3 }
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].strangerDatagrams, 0)
            XCTAssertEqual(world.listeners[0].steeringUpdates, 0)
        }
    }

    func testBindingAPortInUseThrowsAnErrorNamingIt() throws {
        try onLoop { world in
            try world.addListener()
            let port = try XCTUnwrap(world.listeners[0].port)
            let second = try world.makeListener(listen: "127.0.0.1:\(port)")
            XCTAssertThrowsError(try second.start(delegate: Recorder())) { error in
                guard case UDPTransportError.bindFailed(let address, let reason) = error else {
                    return XCTFail("unexpected \(error)")
                }
                XCTAssertEqual(address, "127.0.0.1:\(port)")
                XCTAssertTrue(reason.lowercased().contains("in use"), reason)
                XCTAssertTrue("\(error)".contains("127.0.0.1:\(port)"))
            }
            XCTAssertFalse(second.isRunning)
            second.stop()
        }
    }

    func testStartFromAnotherThreadBindsOnTheLoop() throws {
        let loop = try XCTUnwrap(world?.eventLoop)
        let listener = try UDPEdgeListener(settings: UDPTransport.Settings(listen: "127.0.0.1:0"), eventLoop: loop,
                                           logger: Logger(label: "wow.udp.test"))
        let recorder = Recorder()
        // `start` hops to the loop and waits; after it, the listener is used on the loop only.
        try listener.start(delegate: recorder)
        nonisolated(unsafe) let handedOver = (listener, recorder)
        let port = try loop.submit { () -> Int? in
            defer { handedOver.0.stop() }
            return handedOver.0.isRunning ? handedOver.0.port : nil
        }.wait()
        XCTAssertNotNil(port)
        XCTAssertNotEqual(port, 0)
    }

    func testASocketClosedByASendErrorIsBoundAgainAndEdgesGoOn() throws {
        let requests = try onLoop { world -> [Int] in
            try world.addListener()
            try world.addListener()
            // Without SO_BROADCAST, sendmsg to the broadcast address fails with EACCES, which makes NIO close
            // the socket.
            return [world.connect(0, to: try TransportURI("udp://255.255.255.255:9")),
                    world.connect(0, to: try world.uri(1))]
        }
        try eventually("both edges exist") { world in requests.allSatisfy { world.results[$0] != nil } }
        let port = try onLoop { world -> Int? in
            world.edge(requests[0])?.send(packet("broadcast"))
            return world.listeners[0].port
        }
        try eventually("the socket failed and was bound again") { world in
            world.listeners[0].socketFailures == 1 && world.listeners[0].isRunning
        }
        try eventually("sends get through again") { world in
            world.edge(requests[1])?.send(packet("again"))
            return world.recorders[1].received.count > 0
        }
        try onLoop { world in
            XCTAssertEqual(world.listeners[0].port, port)
            XCTAssertEqual(world.recorders[1].accepted.first?.remoteURI, try world.uri(0))
            XCTAssertFalse(try XCTUnwrap(world.edge(requests[1])).isClosed)
        }
    }

    // MARK: URIs

    func testLocalURIsListAdvertisedThenBoundThenLearned() throws {
        try onLoop { world in
            let advertised = try TransportURI("udp://198.18.0.9:4000")
            try world.addListener(advertise: [advertised])
            let listener = world.listeners[0]
            let own = try world.uri(0)
            XCTAssertEqual(listener.localURIs, [advertised, own])

            listener.learnObservedURI(try TransportURI("udp://198.18.0.77:40000"))
            listener.learnObservedURI(own)
            listener.learnObservedURI(advertised)
            listener.learnObservedURI(try TransportURI("tcp://198.18.0.77:40000"))
            listener.learnObservedURI(try TransportURI("udp://not-an-address:1"))
            XCTAssertEqual(listener.localURIs.map(\.text),
                           ["udp://198.18.0.9:4000", own.text, "udp://198.18.0.77:40000"])

            for port in 40001...40005 { listener.learnObservedURI(try TransportURI("udp://198.18.0.77:\(port)")) }
            listener.learnObservedURI(try TransportURI("udp://198.18.0.77:40003"))
            XCTAssertEqual(listener.localURIs.suffix(4).map(\.text),
                           ["udp://198.18.0.77:40002", "udp://198.18.0.77:40004", "udp://198.18.0.77:40005",
                            "udp://198.18.0.77:40003"])
            XCTAssertEqual(listener.localURIs.count, 6)
        }
    }

    func testAWildcardListenerListsInterfaceAddressesAndLoopbackOnlyWithoutThem() throws {
        try onLoop { world in
            try world.addListener(listen: "0.0.0.0:0")
            let listener = world.listeners[0]
            let port = try XCTUnwrap(listener.port)
            XCTAssertNotEqual(port, 0)
            let uris = listener.localURIs
            XCTAssertFalse(uris.isEmpty)
            // A peer on another host would reach itself at loopback; this host's peers can use the others.
            let others = uris.filter { !$0.text.hasPrefix("udp://127.") }
            XCTAssertEqual(uris.count, others.isEmpty ? 1 : others.count, "\(uris)")
            XCTAssertFalse(uris.contains { $0.text.hasPrefix("udp://0.0.0.0") })
            XCTAssertTrue(uris.allSatisfy { $0.text.hasSuffix(":\(port)") && !$0.text.contains("[") })
        }
    }

    // MARK: Stopping

    func testStopClosesEveryEdgeOnceAndRefusesNewEdges() throws {
        let request = try onLoop { world -> Int in
            for _ in 0..<3 { try world.addListener() }
            return world.connect(0, to: try world.uri(1))
        }
        try eventually("the edge exists") { $0.results[request] != nil }
        let inbound = try onLoop { world -> Int in
            world.edge(request)?.send(packet("to B"))
            return world.connect(2, to: try world.uri(0))
        }
        try eventually("C's edge exists") { $0.results[inbound] != nil }
        try onLoop { world in world.edge(inbound)?.send(packet("to A")) }
        try eventually("A accepted C") { $0.recorders[0].accepted.count == 1 }
        let after = try onLoop { world -> Int in
            let listener = world.listeners[0]
            XCTAssertEqual(listener.edgeCount, 2)
            listener.stop()
            listener.stop()
            XCTAssertFalse(listener.isRunning)
            XCTAssertEqual(listener.edgeCount, 0)
            return world.connect(0, to: try world.uri(1))
        }
        try eventually("the closes and the refusal are reported") { world in
            world.recorders[0].closed.count >= 2 && world.results[after] != nil
        }
        // Let anything late arrive before counting.
        Thread.sleep(forTimeInterval: 0.05)
        try onLoop { world in
            let outbound = try XCTUnwrap(world.edge(request))
            let accepted = try XCTUnwrap(world.recorders[0].accepted.first)
            XCTAssertEqual(world.recorders[0].closed.sorted(),
                           [ObjectIdentifier(outbound), ObjectIdentifier(accepted)].sorted())
            XCTAssertTrue(outbound.isClosed && accepted.isClosed)
            XCTAssertEqual(world.error(after), .stopped)
            outbound.send(packet("late"))
            XCTAssertEqual(world.listeners[0].drops.count(of: .edgeClosed), 1)
        }
    }

    func testStopFreesThePort() throws {
        try onLoop { world in
            try world.addListener()
            let port = try XCTUnwrap(world.listeners[0].port)
            world.listeners[0].stop()
            try world.addListener(listen: "127.0.0.1:\(port)")
            XCTAssertEqual(world.listeners[1].port, port)
        }
    }

    // MARK: Settings

    func testSettingsDecodeAndRejectUnknownKeysAndBadListenValues() throws {
        let settings = try PluginSettings(yaml: "listen: \"[::]:4100\"\nadvertise: [\"udp://198.18.0.1:4000\"]")
            .decode(UDPTransport.Settings.self, for: "udp")
        XCTAssertEqual(settings.listen, "[::]:4100")
        XCTAssertEqual(settings.advertise.map(\.text), ["udp://198.18.0.1:4000"])
        let defaults = try PluginSettings.empty.decode(UDPTransport.Settings.self, for: "udp")
        XCTAssertEqual(defaults.listen, "0.0.0.0:4000")
        XCTAssertEqual(defaults.advertise, [])
        XCTAssertEqual(defaults.fec, .auto)
        for (yaml, fec) in [("fec: off", UDPTransport.FECSetting.off), ("fec: auto", .auto), ("fec: 8", .fixed(8))] {
            XCTAssertEqual(try PluginSettings(yaml: yaml).decode(UDPTransport.Settings.self, for: "udp").fec, fec, yaml)
        }
        XCTAssertEqual(defaults.strangersPerSecond, 25_000)
        for rate in [0, 1_000] {
            let decoded = try PluginSettings(yaml: "strangers_per_second: \(rate)").decode(UDPTransport.Settings.self, for: "udp")
            XCTAssertEqual(decoded.strangersPerSecond, rate)
            XCTAssertEqual(try UDPEdgeListener(settings: decoded, eventLoop: try XCTUnwrap(world?.eventLoop),
                                               logger: Logger(label: "wow.udp.test")).strangerBudget.perSecond, rate)
        }

        let bad: [(String, String)] = [
            ("fec: 1", "not a fec setting: use auto, off, or a group size 2-32"),
            ("fec: 33", "'33' is not a fec setting"),
            ("fec: on", "'on' is not a fec setting"),
            ("strangers_per_second: -1", "-1 is not a rate: use 0 (no limit) or more datagrams per second"),
            ("strangers_per_second: lots", "strangers_per_second"),
            ("listne: 127.0.0.1:4000", "unknown key 'listne'"),
            ("listen: example.com:4000", "DNS"),
            ("listen: 127.0.0.1", "listen"),
            ("listen: 127.0.0.1:65536", "port"),
            ("listen: \"::1:4000\"", "brackets"),
            ("advertise: [\"tcp://198.18.0.1:4000\"]", "advertise"),
        ]
        for (yaml, expected) in bad {
            XCTAssertThrowsError(try PluginSettings(yaml: yaml).decode(UDPTransport.Settings.self, for: "udp"), yaml) {
                guard case PluginError.badSettings(let plugin, let reason) = $0 else { return XCTFail("\($0)") }
                XCTAssertEqual(plugin, "udp")
                XCTAssertTrue(reason.contains(expected), "\(yaml): \(reason)")
            }
        }
    }

    func testTheRegistryMakesUDPListenersOnlyWithAnEventLoop() throws {
        var registry = TransportRegistry()
        registry.register(UDPTransport.self)
        XCTAssertEqual(registry.schemes, ["udp"])
        let context = TransportContext(scheduler: SimulationScheduler(), random: SeededRandom(seed: 1),
                                       logger: Logger(label: "wow.udp.test"))
        XCTAssertThrowsError(try registry.makeListener(scheme: "udp", settings: .empty, context: context)) {
            XCTAssertEqual($0 as? UDPTransportError, .needsEventLoop)
            XCTAssertEqual("\($0)", "the udp transport needs an event loop (real node)")
        }
    }
}
