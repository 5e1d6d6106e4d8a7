import Logging
import NIOCore
import XCTest

@testable import WOWKit

/// A `SecuredEdge` around any edge: what its owner sees of a handshake, sealed traffic and refusals, and what
/// crosses the edge underneath.
final class SecuredEdgeTests: XCTestCase {
    private let network = TestNetwork()

    /// Two secured edges over a pair of wires that hold what is sent until `deliver` runs.
    private func makePair(bCredentials: NodeCredentials? = nil) throws
        -> (a: SecuredEdge, b: SecuredEdge, wires: WirePair, aOwner: Owner, bOwner: Owner) {
        let scheduler = SimulationScheduler()
        let wires = WirePair()
        let random = RandomSource(SeededRandom(seed: 5))
        func security(_ credentials: NodeCredentials) -> EdgeSecurity {
            var settings = SecureChannel.Settings()
            settings.deterministicKeys = true
            return EdgeSecurity(credentials: credentials, settings: settings, scheduler: scheduler,
                                wallClock: { TestNetwork.unixTime }, random: random, logger: Logger(label: "test"))
        }
        let a = SecuredEdge(wrapping: wires.a, security: security(try network.member("a")))
        let b = SecuredEdge(wrapping: wires.b, security: security(try bCredentials ?? network.member("b")))
        let aOwner = Owner(), bOwner = Owner()
        a.delegate = aOwner
        b.delegate = bOwner
        return (a, b, wires, aOwner, bOwner)
    }

    func testMessagesAreHeldForTheHandshakeThenSealedAndDeliveredInOrder() throws {
        let (a, b, wires, aOwner, bOwner) = try makePair()
        a.send(message("one", on: a))
        a.send(message("two", on: a))
        XCTAssertFalse(a.isEstablished)
        XCTAssertEqual(a.queuedCount, 2, "held while the handshake runs")
        wires.deliver()
        XCTAssertTrue(a.isEstablished)
        XCTAssertTrue(b.isEstablished)
        XCTAssertEqual(bOwner.received, ["one", "two"])
        XCTAssertEqual(aOwner.authenticated, ["b"])
        XCTAssertEqual(bOwner.authenticated, ["a"])
        XCTAssertEqual(a.peerCertificate?.name, "b")
        XCTAssertEqual(b.authenticatedAddress, try network.member("a").address)

        b.send(message("three", on: b))
        wires.deliver()
        XCTAssertEqual(aOwner.received, ["three"])
        XCTAssertTrue(wires.sentByA.allSatisfy(SecureFrame.isSecureFrame), "only frames cross the edge")
        XCTAssertTrue(wires.sentByB.allSatisfy(SecureFrame.isSecureFrame))
        XCTAssertFalse(wires.sentByA.contains { String(buffer: $0).contains("one") }, "sealed")
        XCTAssertEqual(aOwner.drops + bOwner.drops, [])
    }

    func testPlaintextIsRefusedOnceASecondAndCounted() throws {
        let (a, _, wires, aOwner, _) = try makePair()
        let plain = EdgeMessage.ping(nonce: 1).encoded()
        a.edge(wires.a, didReceive: plain)
        a.edge(wires.a, didReceive: plain)
        XCTAssertEqual(aOwner.drops, ["no_certificate", "no_certificate"])
        XCTAssertEqual(wires.sentByA.count, 1, "one refusal frame for the burst")
        XCTAssertEqual(try SecureFrame.refusal(in: wires.sentByA[0]).description,
                       SecurityRefusal.refusedByPeer(code: SecurityRefusal.noCertificate.code,
                                                     message: SecurityRefusal.noCertificate.description).description)
        XCTAssertEqual(aOwner.received, [], "nothing reaches the node")
        a.edge(wires.a, didReceive: ByteBuffer(bytes: [1]))
        XCTAssertEqual(aOwner.drops.last, WireError.truncated(field: "kind").reason)
    }

    func testAForeignNetworksEdgeIsRefusedAndNothingIsDelivered() throws {
        let foreign = TestNetwork(id: 2)
        let (a, b, wires, aOwner, bOwner) = try makePair(bCredentials: try foreign.member("b"))
        a.send(message("secret", on: a))
        wires.deliver()
        XCTAssertFalse(b.isEstablished)
        XCTAssertEqual(bOwner.received, [])
        XCTAssertEqual(aOwner.received, [])
        XCTAssertFalse(bOwner.drops.isEmpty, "the refusal is counted")
        XCTAssertNil(b.peerCertificate)
    }

    func testTheEdgeNamesItsTransportsEndsAndAsksForRoomToSealInPlace() throws {
        let (a, _, wires, _, _) = try makePair()
        XCTAssertEqual(a.transport, wires.a.transport)
        XCTAssertEqual(a.remoteURI, wires.a.remoteURI)
        XCTAssertEqual(a.framingHeadroom, SecureChannel.sealingHeadroom)
        XCTAssertEqual(a.framingTailroom, SecureChannel.sealingTailroom)
        XCTAssertEqual(wires.a.framingHeadroom, 0, "a transport's edge frames nothing by default")
        a.close()
        XCTAssertTrue(a.isClosed)
    }

    private func message(_ text: String, on edge: any Edge) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(edge.framingHeadroom + text.utf8.count + edge.framingTailroom)
        buffer.moveWriterIndex(to: edge.framingHeadroom)
        buffer.moveReaderIndex(to: edge.framingHeadroom)
        buffer.writeString(text)
        return buffer
    }
}

/// What a secured edge told its owner.
private final class Owner: SecuredEdgeDelegate {
    var received: [String] = []
    var authenticated: [String] = []
    var drops: [String] = []
    var reachedSelf = 0

    func edge(_ edge: any Edge, didReceive packet: ByteBuffer) { received.append(String(buffer: packet)) }
    func edgeDidClose(_ edge: any Edge) {}
    func securedEdge(_ edge: SecuredEdge, authenticated certificate: MembershipCertificate) {
        authenticated.append(certificate.name)
    }
    func securedEdgeReachedSelf(_ edge: SecuredEdge) { reachedSelf += 1 }
    func securedEdge(_ edge: SecuredEdge, dropped reason: DropReason) { drops.append(reason.description) }
}

/// Two edges joined back to back; what one sends waits until `deliver`.
private final class WirePair {
    let a = Wire(local: "memory://1:1", remote: "memory://2:1")
    let b = Wire(local: "memory://2:1", remote: "memory://1:1")
    var sentByA: [ByteBuffer] = []
    var sentByB: [ByteBuffer] = []
    private var deliveredA = 0
    private var deliveredB = 0

    init() {
        a.onSend = { [unowned self] in sentByA.append($0) }
        b.onSend = { [unowned self] in sentByB.append($0) }
    }

    /// Delivers everything in flight, both ways, until nothing is.
    func deliver() {
        while deliveredA < sentByA.count || deliveredB < sentByB.count {
            while deliveredA < sentByA.count {
                b.delegate?.edge(b, didReceive: sentByA[deliveredA])
                deliveredA += 1
            }
            while deliveredB < sentByB.count {
                a.delegate?.edge(a, didReceive: sentByB[deliveredB])
                deliveredB += 1
            }
        }
    }
}

private final class Wire: Edge {
    let transport = "memory"
    let localURI: TransportURI
    let remoteURI: TransportURI
    let isInbound = false
    var isClosed = false
    weak var delegate: (any EdgeDelegate)?
    var onSend: ((ByteBuffer) -> Void)?

    init(local: String, remote: String) {
        localURI = try! TransportURI(local)
        remoteURI = try! TransportURI(remote)
    }

    func send(_ packet: ByteBuffer) { onSend?(packet) }
    func close() { isClosed = true }
}

/// One edge's refusals: a frame at most once a second, a warning at most once a minute.
final class RefusalRateLimitTests: XCTestCase {
    func testAFrameOnceASecondAndAWarningOnceAMinute() {
        var limit = RefusalRateLimit()
        func at(_ ms: Int64) -> Timestamp { Timestamp(nanoseconds: ms * 1_000_000) }
        XCTAssertTrue(limit.note(at: at(0)) == (true, false), "the first: sent and warned")
        XCTAssertTrue(limit.note(at: at(500)) == (false, true), "half a second later: neither")
        XCTAssertTrue(limit.note(at: at(1_600)) == (true, true), "a second after the last: sent, logged at debug")
        XCTAssertTrue(limit.note(at: at(70_000)) == (true, false), "a minute of quiet: warned again")
    }
}
