import NIOCore
import XCTest

@testable import WOWKit

/// Connect-To-Me as a state machine: the directives each connect, CTM, reply and timeout yields.
final class ConnectorTests: XCTestCase {
    private let local = Address(high: 0x10 << 56, middle: 0, low: 0)
    private let target = Address(high: 0x90 << 56, middle: 0, low: 0)
    private let gateway = Address(high: 0x50 << 56, middle: 0, low: 0)
    private let overlord = OverlordID(2)

    private func info(_ address: Address, _ uris: [String] = ["udp://198.18.0.9:4000"]) -> NodeInfo {
        NodeInfo(address: address, uris: uris.map(uri))
    }

    private func connection(to peer: Address) -> Connection {
        Connection(peer: info(peer), localTypes: [], remoteTypes: ["structured.near"], edgeID: EdgeID(4), transport: "udp",
                   localURI: uri("udp://198.18.0.1:4000"), remoteURI: uri("udp://198.18.0.9:4000"), isInbound: true,
                   createdAt: .zero)
    }

    // MARK: Connecting

    func testAConnectToAPeerWeHoldJustAddsTheType() {
        var connector = Connector(local: local)
        var random = SeededRandom(seed: 3)
        var expected = random
        let request = ConnectRequest(target: target, mode: .exact, type: "structured.far")
        XCTAssertEqual(connector.connect(request, owner: overlord, facts: .init(info: info(local), existing: connection(to: target)),
                                         random: &random),
                       [.addLocalType("structured.far", to: target, announcedWith: expected.next()),
                        .connectSucceeded(request, owner: overlord, peer: target)])
        XCTAssertTrue(connector.pending.isEmpty)
    }

    func testAConnectSendsACTMLinksDirectlyWhenItCanAndSucceedsOnce() throws {
        var connector = Connector(local: local, timeout: .seconds(10))
        var random = SeededRandom(seed: 3)
        var expected = random
        let peer = info(target)
        let request = ConnectRequest(target: target, mode: .exact, type: "structured.far", peer: peer)
        let directives = connector.connect(request, owner: overlord,
                                           facts: .init(info: info(local), linksDirectly: true, gateway: gateway),
                                           random: &random)
        let token = expected.next()
        let attemptToken = expected.next()
        let ctm = ConnectToMe(token: token, type: "structured.far", requester: info(local), gateway: gateway)
        XCTAssertEqual(directives, [
            .armTimer(.connect(token: token), after: .seconds(3)),
            .startAttempt(AttemptStart(token: attemptToken, type: "structured.far", target: target, uris: peer.uris,
                                       purpose: .own(connectToken: token))),
            .route(RoutedPacket(header: RoutedHeader(mode: .exact, payloadType: .connectToMe, source: local,
                                                     destination: target), payload: ctm.encoded())),
        ])
        XCTAssertEqual(connector.ourType(token: token), "structured.far")
        XCTAssertTrue(connector.isConnecting(to: target))

        XCTAssertEqual(connector.succeed(token, peer: target),
                       [.cancelTimer(.connect(token: token)), .connectSucceeded(request, owner: overlord, peer: target)])
        XCTAssertEqual(connector.succeed(token, peer: target), [], "only once")
        XCTAssertEqual(connector.timerFired(token: token, servedByAttempt: false), [], "a finished connect does not time out")
        XCTAssertEqual(connector.ourType(token: token), "structured.far",
                       "a late link-back still serves our connect after it finished")
    }

    func testAConnectTimesOutAndAnUndeliverableCTMFailsOnlyConnectsNoAttemptServes() {
        var connector = Connector(local: local, timeout: .seconds(10), answerTimeout: .seconds(3))
        var random = SeededRandom(seed: 3)
        let request = ConnectRequest(target: target, mode: .exact, type: "structured.far")
        var tokens: [UInt64] = []
        for _ in 0..<5 {
            let directives = connector.connect(request, owner: overlord, facts: .init(info: info(local)), random: &random)
            guard case .armTimer(.connect(let token), let delay) = directives.first else { return XCTFail("\(directives)") }
            XCTAssertEqual(delay, .seconds(3), "the first deadline is the answer's")
            tokens.append(token)
        }
        // No reply and no attempt of ours: it fails at the answer's deadline, so its owner asks again soon.
        XCTAssertEqual(connector.timerFired(token: tokens[0], servedByAttempt: false), [
            .cancelTimer(.connect(token: tokens[0])),
            .connectFailed(request, owner: overlord, reason: "no answer to the Connect-To-Me within 3.0 seconds"),
        ])
        // Answered: the recipient links back, which may take the rest of `timeout`.
        let reply = ConnectToMeReply(token: tokens[3], requester: local, type: "structured.far", responder: info(target),
                                     neighbours: [])
        let replyHeader = RoutedHeader(mode: .exact, payloadType: .connectToMeReply, source: target, destination: local)
        XCTAssertTrue(connector.connectToMeReply(reply, header: replyHeader, isConnectedToRequester: false)
            .contains(.linkToResponder(reply)))
        XCTAssertEqual(connector.timerFired(token: tokens[3], servedByAttempt: false), [.armTimer(.connect(token: tokens[3]), after: .seconds(7))])
        XCTAssertEqual(connector.timerFired(token: tokens[3], servedByAttempt: false), [
            .cancelTimer(.connect(token: tokens[3])),
            .connectFailed(request, owner: overlord, reason: "no connection within 10.0 seconds"),
        ])
        // Unanswered but served by a direct attempt of ours: that may still link.
        XCTAssertEqual(connector.timerFired(token: tokens[4], servedByAttempt: true), [.armTimer(.connect(token: tokens[4]), after: .seconds(7))])
        let failed = connector.undeliverable(to: target, code: .noRoute, servedByAttempts: [tokens[1], tokens[4]])
        XCTAssertEqual(failed, [
            .cancelTimer(.connect(token: tokens[2])),
            .connectFailed(request, owner: overlord, reason: "CTM to \(target.short) not delivered: \(RoutingError.Code.noRoute)"),
        ])
        XCTAssertEqual(connector.pending.keys.sorted(), [tokens[1], tokens[4]].sorted())
    }

    // MARK: Answering a CTM

    func testACTMIsAnsweredAndLinkedBackWithThePunchBeforeTheReply() throws {
        let connector = Connector(local: target)
        let requester = info(local, ["udp://198.19.1.2:4000", "udp://198.18.0.1:4000"])
        let ctm = ConnectToMe(token: 77, type: "structured.near", requester: requester, gateway: gateway)
        let directives = connector.connectToMe(ctm, facts: .init(info: info(target), neighbours: [info(gateway)]))
        let reply = ConnectToMeReply(token: 77, requester: local, type: "structured.near", responder: info(target),
                                     neighbours: [info(gateway)])
        let replyPacket = RoutedPacket(header: RoutedHeader(mode: .exact, payloadType: .connectToMeReply, source: target,
                                                            destination: gateway), payload: reply.encoded())
        XCTAssertEqual(directives, [.neighboursLearned([requester], from: local), .linkBack(ctm, reply: replyPacket)])

        XCTAssertEqual(connector.linkBack(ctm, reply: replyPacket, connectionEdge: nil, ours: nil), [
            .startAttempt(AttemptStart(token: 77, type: "structured.near", target: local, uris: requester.uris,
                                       purpose: .forPeer, gateway: gateway)),
            .routeWhenPunched(replyPacket, token: 77),
        ])
        var linker = Linker(settings: NodeConfig.Linking())
        _ = linker.start(token: 5, type: "structured.far", target: local, uris: [uri("udp://198.18.0.1:4000")],
                         purpose: .own(connectToken: nil))
        XCTAssertEqual(connector.linkBack(ctm, reply: replyPacket, connectionEdge: nil, ours: linker.attempt(token: 5)), [
            .peerWillLink(token: 5, uris: requester.uris, gateway: gateway), .routeWhenPunched(replyPacket, token: 5),
        ])
        XCTAssertEqual(connector.linkBack(ctm, reply: replyPacket, connectionEdge: EdgeID(4), ours: nil), [
            .route(replyPacket), .addRemoteType("structured.near", to: local),
            .requestLink(token: 77, intent: .connect("structured.near"), target: local, on: EdgeID(4)),
        ])
        XCTAssertEqual(connector.linkBack(ctm, reply: replyPacket, connectionEdge: EdgeID(4), requesterHoldsType: true,
                                          ours: nil), [.route(replyPacket)],
                       "a ring check that reached the neighbour the requester holds: the reply alone")
    }

    func testARelinkCTMLinksToTheRequestersDirectURIsOnly() {
        let connector = Connector(local: target)
        let requester = info(local, ["relay://\(gateway.hex)/\(local.hex)", "udp://198.18.0.1:4000"])
        let ctm = ConnectToMe(token: 8, intent: .relink, requester: requester, gateway: nil)
        XCTAssertEqual(connector.connectToMe(ctm, facts: .init(info: info(target), isConnected: true, tunnelScheme: "relay")),
                       [.startAttempt(AttemptStart(token: 8, intent: .relink, target: local,
                                                   uris: [uri("udp://198.18.0.1:4000")], purpose: .forPeer))])
        XCTAssertEqual(connector.connectToMe(ctm, facts: .init(info: info(target), isConnected: false)), [],
                       "no connection to move")
        XCTAssertEqual(connector.connectToMe(ctm, facts: .init(info: info(target), isConnected: true, isLinking: true)), [])
        XCTAssertEqual(connector.connectToMe(ConnectToMe(token: 9, type: "structured.near", requester: info(target), gateway: nil),
                                             facts: .init(info: info(target))), [], "our own CTM")
    }

    func testRepliesWaitingForAPunchAreReleasedOnce() {
        var connector = Connector(local: target)
        let packet = RoutedPacket(header: RoutedHeader(mode: .exact, payloadType: .connectToMeReply, source: target,
                                                       destination: local), payload: ByteBuffer())
        connector.hold(packet, until: 3)
        XCTAssertEqual(connector.releaseReplies(for: 4), [])
        XCTAssertEqual(connector.releaseReplies(for: 3), [packet])
        XCTAssertEqual(connector.releaseReplies(for: 3), [])
    }

    // MARK: Replies

    func testAReplyToOurConnectLinksToTheResponderAtOnce() throws {
        var connector = Connector(local: local)
        var random = SeededRandom(seed: 3)
        let request = ConnectRequest(target: target, mode: .exact, type: "structured.far")
        _ = connector.connect(request, owner: overlord, facts: .init(info: info(local)), random: &random)
        let token = try XCTUnwrap(connector.pending.keys.first)
        let responder = info(target)
        let reply = ConnectToMeReply(token: token, requester: local, type: "structured.far", responder: responder,
                                     neighbours: [info(gateway)])
        let header = RoutedHeader(mode: .exact, payloadType: .connectToMeReply, source: target, destination: local)
        XCTAssertEqual(connector.connectToMeReply(reply, header: header, isConnectedToRequester: false),
                       [.neighboursLearned([info(gateway), responder], from: target), .linkToResponder(reply)])

        var expected = random
        XCTAssertEqual(connector.linkToResponder(reply, isConnected: false, ours: nil, random: &random), [
            .startAttempt(AttemptStart(token: expected.next(), type: "structured.far", target: target, uris: responder.uris,
                                       purpose: .own(connectToken: token), peerHasPunched: true)),
        ])
        var linker = Linker(settings: NodeConfig.Linking())
        _ = linker.start(token: 6, type: "structured.far", target: target, uris: responder.uris, purpose: .forPeer)
        XCTAssertEqual(connector.linkToResponder(reply, isConnected: false, ours: linker.attempt(token: 6), random: &random),
                       [.peerPunched(token: 6, uris: responder.uris)])
        expected = random
        XCTAssertEqual(connector.linkToResponder(reply, isConnected: true, ours: nil, random: &random), [
            .addLocalType("structured.far", to: target, announcedWith: expected.next()),
            .completeConnect(token: token, peer: target),
        ])

        _ = connector.succeed(token, peer: target)
        XCTAssertEqual(connector.connectToMeReply(reply, header: header, isConnectedToRequester: false),
                       [.neighboursLearned([info(gateway), responder], from: target)], "a late reply only teaches neighbours")
    }

    func testAGatewayPassesALeafsReplyOnOrDropsItWithoutTheLeaf() {
        var connector = Connector(local: gateway)
        let reply = ConnectToMeReply(token: 1, requester: local, type: "structured.near", responder: info(target), neighbours: [])
        let header = RoutedHeader(mode: .exact, payloadType: .connectToMeReply, source: target, destination: gateway)
        var forwarded = header
        forwarded.destination = local
        XCTAssertEqual(connector.connectToMeReply(reply, header: header, isConnectedToRequester: true),
                       [.route(RoutedPacket(header: forwarded, payload: reply.encoded()))])
        XCTAssertEqual(connector.connectToMeReply(reply, header: header, isConnectedToRequester: false),
                       [.drop(.ctmReplyNoRequester)])
    }

    func testAGatewayStampsItselfAndTheLeafsPublicURIIntoItsCTM() throws {
        let leafURIs = ["udp://198.19.1.2:4000"]
        let ctm = ConnectToMe(token: 1, type: "structured.near", requester: info(local, leafURIs), gateway: nil)
        let header = RoutedHeader(mode: .nearest, payloadType: .connectToMe, source: local, destination: local)
        var packet = RoutedPacket(header: header, payload: ctm.encoded())
        var leafLink = connection(to: local)
        leafLink.remoteTypes = [.leaf]
        leafLink.remoteURI = uri("udp://198.18.0.7:31000")
        Connector.stampGateway(&packet, from: local, link: leafLink, gateway: gateway)
        let stamped = try ConnectToMe.decode(packet.payload)
        XCTAssertEqual(stamped.gateway, gateway)
        XCTAssertEqual(stamped.requester.uris, [uri("udp://198.18.0.7:31000"), uri("udp://198.19.1.2:4000")])

        var again = RoutedPacket(header: header, payload: stamped.encoded())
        Connector.stampGateway(&again, from: local, link: leafLink, gateway: target)
        XCTAssertEqual(try ConnectToMe.decode(again.payload).gateway, gateway, "stamped once")
        var fromElsewhere = RoutedPacket(header: header, payload: ctm.encoded())
        Connector.stampGateway(&fromElsewhere, from: target, link: leafLink, gateway: gateway)
        XCTAssertNil(try ConnectToMe.decode(fromElsewhere.payload).gateway, "only from the leaf itself")
    }

    /// A leaf behind a NAT gets a relay URI through its gateway, last, so that a recipient no direct path joins
    /// to it links over the gateway; its handshake key stays. A leaf seen at an address it lists gets none.
    func testAGatewayGivesALeafBehindANATARelayURIThroughItself() throws {
        let key = [UInt8](repeating: 9, count: 32)
        let relay = uri("relay://\(gateway.hex)/\(local.hex)")
        let header = RoutedHeader(mode: .left, payloadType: .connectToMe, source: local, destination: local)
        var leafLink = connection(to: local)
        leafLink.remoteTypes = [.leaf]
        leafLink.remoteURI = uri("udp://198.18.0.7:31000")

        let behindNAT = NodeInfo(address: local, uris: [uri("udp://198.19.1.2:4000")], handshakeKey: key)
        var packet = RoutedPacket(header: header, payload: ConnectToMe(token: 1, type: "structured.near",
                                                                       requester: behindNAT, gateway: nil).encoded())
        Connector.stampGateway(&packet, from: local, link: leafLink, gateway: gateway, relayURI: relay)
        let stamped = try ConnectToMe.decode(packet.payload)
        XCTAssertEqual(stamped.requester.uris, [uri("udp://198.18.0.7:31000"), uri("udp://198.19.1.2:4000"), relay])
        XCTAssertEqual(stamped.requester.handshakeKey, key, "the leaf's key travels on")

        // Its NodeInfo full: the relay URI takes the last place.
        let many = (0..<NodeInfo.maximumURIs).map { uri("udp://198.19.1.\($0):4000") }
        var full = RoutedPacket(header: header, payload: ConnectToMe(token: 2, type: "structured.near",
            requester: NodeInfo(address: local, uris: many), gateway: nil).encoded())
        Connector.stampGateway(&full, from: local, link: leafLink, gateway: gateway, relayURI: relay)
        let fullURIs = try ConnectToMe.decode(full.payload).requester.uris
        XCTAssertEqual(fullURIs.count, NodeInfo.maximumURIs)
        XCTAssertEqual(fullURIs.first, leafLink.remoteURI)
        XCTAssertEqual(fullURIs.last, relay)

        // Seen at the address it lists: no NAT between, so no relay.
        let open = NodeInfo(address: local, uris: [uri("udp://198.18.0.7:4000")], handshakeKey: key)
        var direct = RoutedPacket(header: header, payload: ConnectToMe(token: 3, type: "structured.near",
                                                                       requester: open, gateway: nil).encoded())
        Connector.stampGateway(&direct, from: local, link: leafLink, gateway: gateway, relayURI: relay)
        let unchanged = try ConnectToMe.decode(direct.payload)
        XCTAssertEqual(unchanged.gateway, gateway)
        XCTAssertFalse(unchanged.requester.uris.contains(relay))
        XCTAssertEqual(unchanged.requester.handshakeKey, key)
    }
}

private func uri(_ text: String) -> TransportURI { try! TransportURI(text) }
