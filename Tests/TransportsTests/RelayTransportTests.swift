import NIOCore
import WOWKit
import XCTest
@testable import Transports

/// The relay transport's URIs, settings, wire payload and listener, against a stand-in for the node.
final class RelayTransportTests: XCTestCase {
    private let me = Address(bytes: [UInt8](repeating: 0x11, count: 20))!
    private let peer = Address(bytes: [UInt8](repeating: 0x22, count: 20))!
    private let forwarderA = Address(bytes: [UInt8](repeating: 0x33, count: 20))!
    private let forwarderB = Address(bytes: [UInt8](repeating: 0x44, count: 20))!

    /// Records what the listener asks of the node.
    private final class Host: OverlayTunnelHost {
        let localAddress: Address
        var directPeers: [Address] = []
        var isReachableDirectly = false
        var advertised: [Address: [TransportURI]] = [:]
        var sent: [(frame: ByteBuffer, to: Address, via: Address?)] = []
        var forwardersAsked: [Address] = []
        var canSend = true
        init(_ address: Address) { localAddress = address }
        func isDirectPeer(_ peer: Address) -> Bool { directPeers.contains(peer) }
        func advertisedURIs(of peer: Address) -> [TransportURI] { advertised[peer] ?? [] }
        func connectForwarder(_ forwarder: Address) { forwardersAsked.append(forwarder) }
        func sendTunnelFrame(_ frame: ByteBuffer, to destination: Address, via: Address?) -> Bool {
            sent.append((frame, destination, via))
            return canSend
        }
    }

    private final class Recorder: EdgeListenerDelegate, EdgeDelegate {
        var accepted: [any Edge] = []
        var received: [ByteBuffer] = []
        var closed = 0
        func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {
            accepted.append(edge)
            edge.delegate = self
        }
        func edge(_ edge: any Edge, didReceive packet: ByteBuffer) { received.append(packet) }
        func edgeDidClose(_ edge: any Edge) { closed += 1 }
    }

    private func makeListener(_ settings: RelayTransport.Settings = .init(), host: Host, recorder: Recorder,
                              scheduler: SimulationScheduler) throws -> RelayEdgeListener {
        let context = TransportContext(scheduler: scheduler, random: SeededRandom(seed: 1), logger: quietLogger("wow.relay.test"))
        let listener = try XCTUnwrap(try RelayTransport.makeListener(settings: settings, context: context) as? RelayEdgeListener)
        listener.attach(host: host)
        try listener.start(delegate: recorder)
        return listener
    }

    private func edge(to uri: TransportURI, on listener: RelayEdgeListener, scheduler: SimulationScheduler)
        -> Result<any Edge, EdgeError>? {
        var result: Result<any Edge, EdgeError>?
        listener.createEdge(to: uri) { result = $0 }
        XCTAssertNil(result, "the completion ran inside createEdge")
        scheduler.run(for: .milliseconds(1))
        return result
    }

    // MARK: URIs and settings

    func testURIsRoundTripAndMalformedOnesAreRejectedWithAReason() throws {
        let uri = RelayTransport.uri(forwarder: forwarderA, target: peer)
        XCTAssertEqual(uri.text, "relay://\(forwarderA.hex)/\(peer.hex)")
        guard case .success(let (forwarder, target)) = RelayTransport.parse(uri) else { return XCTFail("\(uri)") }
        XCTAssertEqual(forwarder, forwarderA)
        XCTAssertEqual(target, peer)
        for text in ["relay://\(forwarderA.hex)", "relay://\(forwarderA.hex)/\(peer.hex)/x", "relay://xyz/\(peer.hex)",
                     "relay://\(forwarderA.hex)/", "relay://\(forwarderA.hex.dropLast())/\(peer.hex)"] {
            guard case .failure(.badLocation(_, let reason)) = RelayTransport.parse(try TransportURI(text)) else {
                return XCTFail("accepted \(text)")
            }
            XCTAssertTrue(reason.contains("relay://<forwarder>/<target>"), reason)
        }
        guard case .failure(.wrongScheme) = RelayTransport.parse(try TransportURI("udp://198.18.0.1:4000")) else {
            return XCTFail("a udp URI parsed as relay")
        }
    }

    func testSettingsHaveDefaultsAndRejectBadValues() throws {
        let defaults = try PluginSettings(yaml: "{}").decode(RelayTransport.Settings.self, for: "relay")
        XCTAssertEqual(defaults.forwarders, 3)
        XCTAssertEqual(defaults.maxEdges, 128)
        XCTAssertEqual(defaults.advertise, .auto)
        let given = try PluginSettings(yaml: "{ forwarders: 2, max_edges: 8, advertise: always }")
            .decode(RelayTransport.Settings.self, for: "relay")
        XCTAssertEqual(given.forwarders, 2)
        XCTAssertEqual(given.maxEdges, 8)
        XCTAssertEqual(given.advertise, .always)
        func reason(_ yaml: String) -> String {
            do {
                _ = try PluginSettings(yaml: yaml).decode(RelayTransport.Settings.self, for: "relay")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(reason("forwarder: 2").contains("unknown key 'forwarder'"), reason("forwarder: 2"))
        XCTAssertTrue(reason("forwarders: 0").contains("forwarders is 0"), reason("forwarders: 0"))
        XCTAssertTrue(reason("max_edges: -1").contains("max_edges"), reason("max_edges: -1"))
        XCTAssertTrue(reason("advertise: sometimes").contains("auto, always or never"), reason("advertise: sometimes"))
    }

    func testTunnelFramesRoundTripAndTruncatedOnesThrow() throws {
        let frame = TunnelFrame(via: forwarderA, returnVia: forwarderB, frame: ByteBuffer(bytes: [1, 2, 3]))
        let encoded = frame.encoded()
        XCTAssertEqual(encoded.readableBytes, TunnelFrame.overhead + 3)
        XCTAssertEqual(try TunnelFrame.decode(encoded), frame)
        XCTAssertEqual(TunnelFrame.via(in: encoded), forwarderA)
        for length in 0..<TunnelFrame.overhead {
            XCTAssertThrowsError(try TunnelFrame.decode(encoded.getSlice(at: 0, length: length)!), "\(length) bytes") { error in
                guard case WireError.truncated = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertNil(TunnelFrame.via(in: encoded.getSlice(at: 0, length: 19)!))
        let empty = TunnelFrame(via: .zero, returnVia: forwarderB, frame: ByteBuffer())
        XCTAssertEqual(try TunnelFrame.decode(empty.encoded()), empty)
    }

    // MARK: The listener

    func testAdvertisedURIsNameTheNearestDirectPeersUntilTheNodeIsReachedDirectly() throws {
        let scheduler = SimulationScheduler()
        let host = Host(me)
        host.directPeers = [forwarderA, forwarderB, peer]
        let listener = try makeListener(.init(forwarders: 2), host: host, recorder: Recorder(), scheduler: scheduler)
        XCTAssertEqual(listener.localURIs, [RelayTransport.uri(forwarder: forwarderA, target: me),
                                            RelayTransport.uri(forwarder: forwarderB, target: me)])
        host.isReachableDirectly = true
        XCTAssertEqual(listener.localURIs, [])
        let always = try makeListener(.init(advertise: .always), host: host, recorder: Recorder(), scheduler: scheduler)
        XCTAssertEqual(always.localURIs.count, 3)
        let never = try makeListener(.init(advertise: .never), host: host, recorder: Recorder(), scheduler: scheduler)
        host.isReachableDirectly = false
        XCTAssertEqual(never.localURIs, [])
    }

    func testAnOutboundEdgeSendsThroughADirectForwarderAndAsksForOneWhenThereIsNone() throws {
        let scheduler = SimulationScheduler()
        let host = Host(me)
        let listener = try makeListener(host: host, recorder: Recorder(), scheduler: scheduler)
        host.advertised[peer] = [RelayTransport.uri(forwarder: forwarderA, target: peer),
                                 RelayTransport.uri(forwarder: forwarderB, target: peer)]
        host.directPeers = [forwarderB]
        let edge = try XCTUnwrap(try edge(to: RelayTransport.uri(forwarder: forwarderA, target: peer), on: listener,
                                          scheduler: scheduler)?.get())
        XCTAssertFalse(edge.isInbound)
        XCTAssertEqual(edge.transport, "relay")
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: forwarderB, target: peer),
                       "the advertised forwarder this node is connected to wins")
        edge.send(ByteBuffer(bytes: [9]))
        XCTAssertEqual(host.sent.map(\.via), [forwarderB])
        XCTAssertEqual(host.sent.map(\.to), [peer])
        XCTAssertEqual(host.forwardersAsked, [])

        host.directPeers = []
        let other = Address(bytes: [UInt8](repeating: 0x55, count: 20))!
        _ = try XCTUnwrap(try self.edge(to: RelayTransport.uri(forwarder: forwarderA, target: other), on: listener,
                                        scheduler: scheduler)?.get())
        XCTAssertEqual(host.forwardersAsked, [forwarderA], "no direct forwarder: the node is asked to link to one")
        XCTAssertEqual(listener.edgeCount, 2)
    }

    func testBadURIsAndEdgesToItselfFail() throws {
        let scheduler = SimulationScheduler()
        let host = Host(me)
        let listener = try makeListener(host: host, recorder: Recorder(), scheduler: scheduler)
        for uri in [RelayTransport.uri(forwarder: forwarderA, target: me), RelayTransport.uri(forwarder: me, target: peer),
                    try TransportURI("relay://nothing")] {
            guard case .failure(let error) = edge(to: uri, on: listener, scheduler: scheduler) else {
                return XCTFail("an edge to \(uri)")
            }
            XCTAssertFalse(error.description.isEmpty)
        }
        XCTAssertEqual(listener.edgeCount, 0)
    }

    func testAFrameFromANewPeerMakesAnInboundEdgeAndIsDeliveredOnALaterTurn() throws {
        let scheduler = SimulationScheduler()
        let host = Host(me)
        let recorder = Recorder()
        let listener = try makeListener(host: host, recorder: recorder, scheduler: scheduler)
        listener.receiveTunnelFrame(ByteBuffer(bytes: [1]), from: peer, returnVia: forwarderA)
        XCTAssertEqual(recorder.accepted.count, 1)
        XCTAssertEqual(recorder.received.count, 0, "delivered from inside the node's call")
        scheduler.run(for: .milliseconds(1))
        XCTAssertEqual(recorder.received, [ByteBuffer(bytes: [1])])
        let edge = try XCTUnwrap(recorder.accepted.first)
        XCTAssertTrue(edge.isInbound)
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: forwarderA, target: peer))
        // The peer's latest frame names the way back.
        listener.receiveTunnelFrame(ByteBuffer(bytes: [2]), from: peer, returnVia: forwarderB)
        scheduler.run(for: .milliseconds(1))
        XCTAssertEqual(recorder.accepted.count, 1)
        edge.send(ByteBuffer(bytes: [3]))
        XCTAssertEqual(host.sent.last?.via, forwarderB)
    }

    /// A forwarder connected to both ends (ours, and one the peer advertises) is kept over the peer's return hop
    /// when that one is not connected to us; a return hop that is connected to us is taken.
    func testAForwarderConnectedToBothEndsIsKeptOverAReturnHopThatIsNotOurs() throws {
        let scheduler = SimulationScheduler()
        let host = Host(me)
        let recorder = Recorder()
        let listener = try makeListener(host: host, recorder: recorder, scheduler: scheduler)
        let stranger = Address(bytes: [UInt8](repeating: 0x66, count: 20))!
        host.advertised[peer] = [RelayTransport.uri(forwarder: forwarderA, target: peer)]
        host.directPeers = [forwarderA, forwarderB]
        let edge = try XCTUnwrap(try edge(to: RelayTransport.uri(forwarder: forwarderA, target: peer), on: listener,
                                          scheduler: scheduler)?.get())
        edge.delegate = recorder
        // Through a node we are not connected to: A stays, and the frame is delivered.
        listener.receiveTunnelFrame(ByteBuffer(bytes: [1]), from: peer, returnVia: stranger)
        scheduler.run(for: .milliseconds(1))
        XCTAssertEqual(recorder.received, [ByteBuffer(bytes: [1])])
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: forwarderA, target: peer))
        // Through B, ours too: two direct hops either way, and B is where the peer's frames come from.
        listener.receiveTunnelFrame(ByteBuffer(bytes: [2]), from: peer, returnVia: forwarderB)
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: forwarderB, target: peer))
        // B is ours but the peer does not advertise it: a stranger's return hop is followed then, as before.
        listener.receiveTunnelFrame(ByteBuffer(bytes: [3]), from: peer, returnVia: stranger)
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: stranger, target: peer))
        scheduler.run(for: .milliseconds(1))
        XCTAssertEqual(recorder.received.count, 3)
    }

    /// Each undeliverable frame moves the edge to a forwarder the peer advertised that has not failed since the
    /// peer's last frame came, then to none (frames route toward the peer itself: its advertised forwarders may be
    /// stale), and it closes when that fails too.
    func testUndeliverableFramesMoveTheEdgeToAnotherForwarderThenTowardThePeerThenCloseIt() throws {
        let scheduler = SimulationScheduler()
        let host = Host(me)
        let recorder = Recorder()
        let listener = try makeListener(host: host, recorder: recorder, scheduler: scheduler)
        host.advertised[peer] = [RelayTransport.uri(forwarder: forwarderA, target: peer),
                                 RelayTransport.uri(forwarder: forwarderB, target: peer)]
        host.directPeers = [forwarderA, forwarderB]
        let edge = try XCTUnwrap(try edge(to: RelayTransport.uri(forwarder: forwarderA, target: peer), on: listener,
                                          scheduler: scheduler)?.get())
        edge.delegate = recorder
        listener.tunnelFrameUndeliverable(to: peer, reporter: forwarderA, code: .absentDestination)
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: forwarderB, target: peer))
        listener.tunnelFrameUndeliverable(to: peer, reporter: forwarderB, code: .absentDestination)
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: .zero, target: peer), "not back to A: it failed")
        edge.send(ByteBuffer(bytes: [1]))
        XCTAssertEqual(host.sent.last?.via, .zero, "toward the peer itself")

        // The peer's frame comes back through A: what failed may work again.
        listener.receiveTunnelFrame(ByteBuffer(bytes: [2]), from: peer, returnVia: forwarderA)
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: forwarderA, target: peer))
        listener.tunnelFrameUndeliverable(to: peer, reporter: forwarderA, code: .absentDestination)
        XCTAssertEqual(edge.remoteURI, RelayTransport.uri(forwarder: forwarderB, target: peer))
        host.advertised[peer] = [RelayTransport.uri(forwarder: forwarderB, target: peer)]
        listener.tunnelFrameUndeliverable(to: peer, reporter: forwarderB, code: .absentDestination)
        XCTAssertFalse(edge.isClosed)
        listener.tunnelFrameUndeliverable(to: peer, reporter: me, code: .noRoute)
        XCTAssertTrue(edge.isClosed)
        scheduler.run(for: .milliseconds(1))
        XCTAssertEqual(recorder.closed, 1)
        XCTAssertEqual(listener.edgeCount, 0)
        let sent = host.sent.count
        edge.send(ByteBuffer(bytes: [1]))
        XCTAssertEqual(host.sent.count, sent, "a closed edge sends nothing")
    }

    func testMaxEdgesCapsInboundAndOutboundEdges() throws {
        let scheduler = SimulationScheduler()
        let recorder = Recorder()
        let host = Host(me)
        let listener = try makeListener(.init(maxEdges: 1), host: host, recorder: recorder, scheduler: scheduler)
        listener.receiveTunnelFrame(ByteBuffer(bytes: [1]), from: peer, returnVia: forwarderA)
        listener.receiveTunnelFrame(ByteBuffer(bytes: [1]), from: forwarderB, returnVia: forwarderA)
        XCTAssertEqual(recorder.accepted.count, 1)
        XCTAssertEqual(listener.framesRefused, 1)
        guard case .failure(.unreachable(_, let reason)) = edge(to: RelayTransport.uri(forwarder: forwarderA, target: forwarderB),
                                                              on: listener, scheduler: scheduler) else {
            return XCTFail("an edge beyond max_edges")
        }
        XCTAssertTrue(reason.contains("max_edges"), reason)
    }
}
