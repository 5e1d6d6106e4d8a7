import XCTest

@testable import WOWKit

/// The link responder: the directives each link request, unused reply, stray message and close yields, given
/// what the node holds. The race cases here are the ones whole-node tests reach only by running a pair.
final class LinkResponderTests: XCTestCase {
    private let small = Address(high: 0x10 << 56, middle: 0, low: 0)
    private let large = Address(high: 0x90 << 56, middle: 0, low: 0)
    private let other = Address(high: 0x50 << 56, middle: 0, low: 0)
    private let edge = EdgeID(7)
    private let oldEdge = EdgeID(3)

    private func info(_ address: Address) -> NodeInfo { NodeInfo(address: address, uris: [uri("udp://198.18.0.9:4000")]) }

    private func request(from requester: Address, type: ConnectionType = "structured.near", token: UInt64 = 11,
                         target: Address? = nil) -> LinkRequest {
        LinkRequest(token: token, type: type, requester: info(requester), target: target,
                    observedURI: uri("udp://198.18.0.1:4000"))
    }

    private func connection(to peer: Address, on edge: EdgeID, types: Set<ConnectionType> = ["structured.near"]) -> Connection {
        Connection(peer: info(peer), localTypes: types, remoteTypes: [], edgeID: edge, transport: "udp",
                   localURI: uri("udp://198.18.0.1:4000"), remoteURI: uri("udp://198.18.0.9:4000"), isInbound: false,
                   createdAt: .zero)
    }

    private func attempt(to peer: Address, token: UInt64 = 99, type: ConnectionType = "structured.far",
                         purpose: Linker.Purpose = .own(connectToken: 42), sentRequest: Bool) -> Linker.Attempt {
        var linker = Linker(settings: NodeConfig.Linking())
        _ = linker.start(token: token, type: type, target: peer, uris: [uri("udp://198.18.0.9:4000")], purpose: purpose)
        if sentRequest { _ = linker.edgeOpened(token: token, result: .success(EdgeID(1))) }
        return linker.attempt(token: token)!
    }

    private func linkError(_ code: LinkError.Code, _ message: String, token: UInt64 = 11) -> NodeDirective {
        .send(.linkError(LinkError(token: token, code: code, message: message)), on: edge)
    }

    // MARK: Link requests

    func testARequestFromANewPeerMakesItsConnectionAndIsAnswered() {
        let responder = LinkResponder(local: small)
        let incoming = request(from: large)
        XCTAssertEqual(responder.linkRequest(incoming, on: edge, facts: .init()), [
            .noteReached(incoming.observedURI),
            .establish(Establishment(peer: info(large), edge: edge, remoteType: "structured.near", byPeer: true)),
            .replyToLink(incoming, on: edge),
        ])
    }

    func testRequestsThatCannotBeAcceptedAreRefusedWithTheReason() {
        let responder = LinkResponder(local: small)
        XCTAssertEqual(responder.linkRequest(request(from: small), on: edge, facts: .init()),
                       [linkError(.selfLink, "you reached yourself")])
        let refusal = SecurityRefusal.noCertificate
        XCTAssertEqual(responder.linkRequest(request(from: large), on: edge, facts: .init(refusal: refusal)),
                       [.logRefusal(refusal, on: edge), linkError(.refused, refusal.description)])
        let wrong = request(from: large, target: other)
        XCTAssertEqual(responder.linkRequest(wrong, on: edge, facts: .init()),
                       [.noteReached(wrong.observedURI), linkError(.wrongTarget, "this is \(small.short), not \(other.short)")])
        let full = request(from: large)
        XCTAssertEqual(responder.linkRequest(full, on: edge, facts: .init(tableLimit: 4)),
                       [.noteReached(full.observedURI), linkError(.tableFull, "already at 4 connections")])
    }

    func testARequestFromAPeerWeHoldMovesTheConnectionToItsEdgeEvenWhenTheTableIsFull() {
        // The peer restarted, or its NAT rebound: the newest handshake wins.
        let responder = LinkResponder(local: small)
        let incoming = request(from: large)
        XCTAssertEqual(responder.linkRequest(incoming, on: edge,
                                             facts: .init(existing: connection(to: large, on: oldEdge), tableLimit: 4)), [
            .noteReached(incoming.observedURI),
            .establish(Establishment(peer: info(large), edge: edge, remoteType: "structured.near", byPeer: true)),
            .replyToLink(incoming, on: edge),
        ])
    }

    func testARelinkMovesAConnectionAndIsRefusedWithoutOne() {
        let responder = LinkResponder(local: small)
        let relink = request(from: large, type: LinkIntent.relink.wire)
        XCTAssertEqual(responder.linkRequest(relink, on: edge, facts: .init(existing: connection(to: large, on: oldEdge))), [
            .noteReached(relink.observedURI),
            .establish(Establishment(peer: info(large), edge: edge, byPeer: true)),
            .replyToLink(relink, on: edge),
        ])
        XCTAssertEqual(responder.linkRequest(relink, on: edge, facts: .init()), [
            .noteReached(relink.observedURI),
            linkError(.refused, "no connection to move to this edge; link anew"),
        ])
        // No connection, but our own attempt sent its request on the edge the relink came on (EdgeID(1)): the
        // peer holds the connection that request made, and the relink answers our attempt. Refused, the peer
        // would drop it, and we would drop ours when our reply came (two NATed neighbours over relays).
        let ours = attempt(to: large, sentRequest: true)
        XCTAssertEqual(responder.linkRequest(relink, on: EdgeID(1), facts: .init(ours: ours)), [
            .noteReached(relink.observedURI),
            .yieldAttempt(token: 99, to: EdgeID(1)),
            .establish(Establishment(peer: info(large), edge: EdgeID(1), localType: "structured.far", byPeer: true)),
            .completeConnect(token: 42, peer: large),
            .replyToLink(relink, on: EdgeID(1)),
        ])
        XCTAssertEqual(responder.linkRequest(relink, on: edge, facts: .init(ours: ours)), [
            .noteReached(relink.observedURI),
            linkError(.refused, "no connection to move to this edge; link anew"),
        ], "our attempt's request went elsewhere: that is no answer to it")
    }

    func testCrossingRelinksOverDifferentEdgesTheLargerAddressWinsAndTheSmallerYields() {
        // Both ends move the connection at once (a relink both ways after a NAT rebinding), each over an edge of
        // its own (two streams). Accepting both, each end would follow the peer's request and then its own reply:
        // crosswise. The larger address refuses the smaller's and sends its own there too (the smaller, behind a
        // NAT, may be reachable only there); the smaller yields its own and follows the larger's.
        let relinkFromSmall = request(from: small, type: LinkIntent.relink.wire)
        let relinkFromLarge = request(from: large, type: LinkIntent.relink.wire)
        var oursAtLarge = attempt(to: small, type: LinkIntent.relink.wire, purpose: .own(connectToken: nil), sentRequest: true)
        let atLarge = LinkResponder(local: large)
        XCTAssertEqual(atLarge.linkRequest(relinkFromSmall, on: edge,
                                           facts: .init(existing: connection(to: small, on: oldEdge), ours: oursAtLarge)), [
            .noteReached(relinkFromSmall.observedURI),
            linkError(.raceLost, "simultaneous relink; the larger address's attempt wins"),
            .requestAlso(token: oursAtLarge.token, on: edge),
        ])
        // The smaller's came on the connection's own edge, which ours leaves: ours does not go there too (it
        // would reach the smaller twice and move it twice).
        XCTAssertEqual(atLarge.linkRequest(relinkFromSmall, on: edge,
                                           facts: .init(existing: connection(to: small, on: edge), ours: oursAtLarge)), [
            .noteReached(relinkFromSmall.observedURI),
            linkError(.raceLost, "simultaneous relink; the larger address's attempt wins"),
        ])
        let oursAtSmall = attempt(to: large, type: LinkIntent.relink.wire, purpose: .own(connectToken: nil), sentRequest: true)
        let atSmall = LinkResponder(local: small)
        XCTAssertEqual(atSmall.linkRequest(relinkFromLarge, on: edge,
                                           facts: .init(existing: connection(to: large, on: oldEdge), ours: oursAtSmall)), [
            .noteReached(relinkFromLarge.observedURI),
            .yieldAttempt(token: oursAtSmall.token, to: edge),
            .establish(Establishment(peer: info(large), edge: edge, byPeer: true)),
            .replyToLink(relinkFromLarge, on: edge),
        ])
        // The larger yields too where the smaller's came over a relay that ours did not try (ours may never get
        // through), and where ours sent nothing yet.
        XCTAssertEqual(atLarge.linkRequest(relinkFromSmall, on: edge,
                                           facts: .init(existing: connection(to: small, on: oldEdge), ours: oursAtLarge,
                                                        isTunnelledEdge: true)), [
            .noteReached(relinkFromSmall.observedURI),
            .yieldAttempt(token: oursAtLarge.token, to: edge),
            .establish(Establishment(peer: info(small), edge: edge, byPeer: true)),
            .replyToLink(relinkFromSmall, on: edge),
        ])
        let heldAtLarge = attempt(to: small, type: LinkIntent.relink.wire, purpose: .own(connectToken: nil), sentRequest: false)
        XCTAssertEqual(atLarge.linkRequest(relinkFromSmall, on: edge,
                                           facts: .init(existing: connection(to: small, on: oldEdge), ours: heldAtLarge)), [
            .noteReached(relinkFromSmall.observedURI),
            .yieldAttempt(token: heldAtLarge.token, to: edge),
            .establish(Establishment(peer: info(small), edge: edge, byPeer: true)),
            .replyToLink(relinkFromSmall, on: edge),
        ])
        // Both over one edge (a punched udp path both ends share): no race, both ends end up there.
        oursAtLarge.edgesTried.insert(edge)
        XCTAssertEqual(atLarge.linkRequest(relinkFromSmall, on: edge,
                                           facts: .init(existing: connection(to: small, on: oldEdge), ours: oursAtLarge)), [
            .noteReached(relinkFromSmall.observedURI),
            .establish(Establishment(peer: info(small), edge: edge, byPeer: true)),
            .replyToLink(relinkFromSmall, on: edge),
        ])
    }

    func testCrossingRequestsTheLargerAddressWinsAndTheSmallerYields() {
        // The larger node refuses the smaller's request (its own attempt, sent already, wins) and sends at once.
        let atLarge = LinkResponder(local: large)
        let fromSmall = request(from: small)
        var oursAtLarge = attempt(to: small, sentRequest: true)
        // The smaller's request came by another edge than ours went on (its NAT maps per peer, say): ours goes
        // there too, since that edge carries traffic between us.
        XCTAssertEqual(atLarge.linkRequest(fromSmall, on: edge, facts: .init(ours: oursAtLarge)), [
            .noteReached(fromSmall.observedURI),
            linkError(.raceLost, "simultaneous link; the larger address's attempt wins"),
            .peerPunched(token: oursAtLarge.token, uris: []),
            .requestAlso(token: oursAtLarge.token, on: edge),
        ])
        // By the edge ours went on, the larger yields too: each end takes the other's request on that one edge,
        // and the smaller's, here first, need not wait for ours to reach it and be answered.
        oursAtLarge.edgesTried.insert(edge)
        XCTAssertEqual(atLarge.linkRequest(fromSmall, on: edge, facts: .init(ours: oursAtLarge)), [
            .noteReached(fromSmall.observedURI),
            .yieldAttempt(token: oursAtLarge.token, to: edge),
            .establish(Establishment(peer: info(small), edge: edge, remoteType: "structured.near", byPeer: true)),
            .addLocalType("structured.far", to: small, announcedWith: nil),
            .completeConnect(token: 42, peer: small),
            .replyToLink(fromSmall, on: edge),
        ])
        // The smaller node yields: the connection serves both the larger's type and its own attempt's, and
        // completes the connect its attempt was part of.
        let atSmall = LinkResponder(local: small)
        let fromLarge = request(from: large)
        let oursAtSmall = attempt(to: large, sentRequest: true)
        XCTAssertEqual(atSmall.linkRequest(fromLarge, on: edge, facts: .init(ours: oursAtSmall)), [
            .noteReached(fromLarge.observedURI),
            .yieldAttempt(token: oursAtSmall.token, to: edge),
            .establish(Establishment(peer: info(large), edge: edge, remoteType: "structured.near", byPeer: true)),
            .addLocalType("structured.far", to: large, announcedWith: nil),
            .completeConnect(token: 42, peer: large),
            .replyToLink(fromLarge, on: edge),
        ])
    }

    func testTheLargerAddressYieldsToARequestOverARelayItsOwnAttemptDidNotTry() {
        // Ours tries direct paths (a firewall may drop them for ever); the smaller's request came over a relay.
        let responder = LinkResponder(local: large)
        let incoming = request(from: small)
        let ours = attempt(to: small, purpose: .forPeer, sentRequest: true)
        XCTAssertEqual(responder.linkRequest(incoming, on: edge, facts: .init(ours: ours, isTunnelledEdge: true)), [
            .noteReached(incoming.observedURI),
            .yieldAttempt(token: ours.token, to: edge),
            .establish(Establishment(peer: info(small), edge: edge, remoteType: "structured.near", byPeer: true)),
            .replyToLink(incoming, on: edge),
        ])
        // Had ours gone on that relay edge too, the same: both ends agree on the one edge they share.
        var triedIt = ours
        triedIt.edgesTried.insert(edge)
        XCTAssertEqual(responder.linkRequest(incoming, on: edge, facts: .init(ours: triedIt, isTunnelledEdge: true)), [
            .noteReached(incoming.observedURI),
            .yieldAttempt(token: ours.token, to: edge),
            .establish(Establishment(peer: info(small), edge: edge, remoteType: "structured.near", byPeer: true)),
            .replyToLink(incoming, on: edge),
        ])
    }

    func testTheLargerAddressYieldsWhenItsAttemptSentNoRequestYet() {
        // Held after punching: the peer never saw our attempt, so there is no race to resolve.
        let responder = LinkResponder(local: large)
        let incoming = request(from: small)
        let held = attempt(to: small, purpose: .forPeer, sentRequest: false)
        XCTAssertEqual(responder.linkRequest(incoming, on: edge, facts: .init(ours: held)), [
            .noteReached(incoming.observedURI),
            .yieldAttempt(token: held.token, to: edge),
            .establish(Establishment(peer: info(small), edge: edge, remoteType: "structured.near", byPeer: true)),
            .replyToLink(incoming, on: edge),
        ])
    }

    func testACTMRecipientLinkingBackServesOurConnectNotOneOfItsOwn() {
        let responder = LinkResponder(local: small)
        let back = request(from: large, type: "structured.near", token: 42)
        XCTAssertEqual(responder.linkRequest(back, on: edge,
                                             facts: .init(ourConnectType: "structured.far", isConnectPending: true)), [
            .noteReached(back.observedURI),
            .establish(Establishment(peer: info(large), edge: edge, localType: "structured.far", byPeer: true)),
            .completeConnect(token: 42, peer: large),
            .replyToLink(back, on: edge),
        ])
        // While our own attempt to it is under way, the same: and the pending connect is completed once more
        // (a no-op if the attempt's connect was it).
        let ours = attempt(to: large, token: 5, purpose: .own(connectToken: 42), sentRequest: true)
        XCTAssertEqual(responder.linkRequest(back, on: edge,
                                             facts: .init(ours: ours, ourConnectType: "structured.far", isConnectPending: true)), [
            .noteReached(back.observedURI),
            .yieldAttempt(token: 5, to: edge),
            .establish(Establishment(peer: info(large), edge: edge, localType: "structured.far", byPeer: true)),
            .addLocalType("structured.far", to: large, announcedWith: nil),
            .completeConnect(token: 42, peer: large),
            .completeConnect(token: 42, peer: large),
            .replyToLink(back, on: edge),
        ])
    }

    // MARK: Newest handshake wins

    func testEstablishMovesAConnectionToTheNewEdgeAndKeepsItsTypes() {
        var table = ConnectionTable(localAddress: small)
        let newEdge = TestEdge(transport: "tcp", remote: "tcp://198.18.0.9:5000")
        let first = LinkResponder.establish(Establishment(peer: info(large), edge: oldEdge, localType: "structured.near",
                                                          byPeer: false),
                                            on: TestEdge(transport: "udp", remote: "udp://198.18.0.9:4000"), in: &table,
                                            at: .zero)
        XCTAssertTrue(first.isNewOrChanged)
        XCTAssertTrue(first.joinedRing)
        XCTAssertNil(first.movedFrom)
        XCTAssertEqual(table.peer(on: oldEdge), large)

        let moved = LinkResponder.establish(Establishment(peer: info(large), edge: edge, byPeer: true), on: newEdge,
                                            in: &table, at: Timestamp(nanoseconds: 5))
        XCTAssertEqual(moved.movedFrom, oldEdge)
        XCTAssertFalse(moved.isNewOrChanged, "a move adds no type")
        XCTAssertFalse(moved.joinedRing)
        XCTAssertEqual(table.peer(on: edge), large)
        XCTAssertNil(table.peer(on: oldEdge), "the old edge carries nothing now")
        XCTAssertEqual(table.connection(to: large)?.transport, "tcp")
        XCTAssertEqual(table.connection(to: large)?.localTypes, ["structured.near"])
        XCTAssertEqual(table.connection(to: large)?.isInbound, true)

        let typed = LinkResponder.establish(Establishment(peer: info(large), edge: edge, remoteType: "structured.far",
                                                          byPeer: true), on: newEdge, in: &table, at: .zero)
        XCTAssertTrue(typed.isNewOrChanged, "a new type is news for the overlords")
        XCTAssertNil(typed.movedFrom)
    }

    // MARK: Replies the node does not act on

    func testAStaleReplyOnAnotherEdgeIsSettledByTheLargerAddressAskingBack() {
        let reply = LinkReply(token: 1, responder: info(small), observedURI: uri("udp://198.18.0.1:4000"), neighbours: [])
        var random = SeededRandom(seed: 1)
        var expected = random
        let atLarge = LinkResponder(local: large)
        XCTAssertEqual(atLarge.unusedReply(reply, on: edge, connection: connection(to: small, on: oldEdge), edgesOpen: true,
                                           random: &random),
                       [.requestLink(token: expected.next(), intent: .relink, target: small, on: oldEdge)])

        let replyFromLarge = LinkReply(token: 1, responder: info(large), observedURI: uri("udp://198.18.0.1:4000"), neighbours: [])
        let atSmall = LinkResponder(local: small)
        XCTAssertEqual(atSmall.unusedReply(replyFromLarge, on: edge, connection: connection(to: large, on: oldEdge),
                                           edgesOpen: true, random: &random),
                       [.establish(Establishment(peer: info(large), edge: edge, byPeer: false))],
                       "the smaller follows the responder")
        XCTAssertEqual(atSmall.unusedReply(replyFromLarge, on: oldEdge, connection: connection(to: large, on: oldEdge),
                                           edgesOpen: true, random: &random), [], "on the connection's edge: nothing")
        XCTAssertEqual(atSmall.unusedReply(replyFromLarge, on: edge, connection: nil, edgesOpen: true, random: &random), [],
                       "no connection: nothing to settle")
        XCTAssertEqual(atSmall.unusedReply(replyFromLarge, on: edge, connection: connection(to: large, on: oldEdge),
                                           edgesOpen: false, random: &random), [], "a closed edge: nothing")
    }

    // MARK: Traffic on edges without a connection

    func testTheSenderOfTrafficOnAnEdgeWithoutAConnection() {
        let connected: (Address) -> Bool = { $0 == self.large }
        XCTAssertEqual(LinkResponder.sender(linked: other, isSecured: true, authenticated: large, formerPeer: nil,
                                            isConnected: connected), .init(linked: other))
        // Secured: the certificate says who sends; a connected member's traffic is taken.
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: true, authenticated: large, formerPeer: nil,
                                            isConnected: connected), .init(stray: large))
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: true, authenticated: other, formerPeer: nil,
                                            isConnected: connected), .init(member: other), "a member we hold no connection with")
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: true, authenticated: nil, formerPeer: large,
                                            isConnected: connected), .init(), "no session: nobody")
        // Without security, only the peer whose connection just left the edge (a trimmed one too).
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: false, authenticated: nil, formerPeer: other,
                                            isConnected: connected), .init(stray: other))
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: false, authenticated: nil, formerPeer: nil,
                                            isConnected: connected), .init())
        // Without security, a tunnelled edge's peer counts as a member (its frames name it as ring traffic would).
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: false, authenticated: nil, formerPeer: nil,
                                            tunnelPeer: other, isConnected: connected), .init(member: other))
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: false, authenticated: nil, formerPeer: nil,
                                            tunnelPeer: large, isConnected: connected), .init(stray: large))
        XCTAssertEqual(LinkResponder.sender(linked: nil, isSecured: true, authenticated: nil, formerPeer: nil,
                                            tunnelPeer: other, isConnected: connected), .init(),
                       "secured: only a certificate says who sends")
    }

    func testStrayTrafficIsTakenAndTheSenderToldToLinkAgainUnlessItIsLeavingTheEdge() {
        let ping = EdgeMessage.ping(nonce: 1)
        XCTAssertEqual(LinkResponder.strayTraffic(from: .init(stray: large), on: edge, formerPeer: nil, message: ping),
                       [.notLinked(edge, dropped: false)])
        XCTAssertEqual(LinkResponder.strayTraffic(from: .init(stray: large), on: edge, formerPeer: large, message: ping), [],
                       "a draining edge: the peer follows in a moment")
        XCTAssertEqual(LinkResponder.strayTraffic(from: .init(linked: large), on: edge, formerPeer: nil, message: ping), [])
        XCTAssertEqual(LinkResponder.strayTraffic(from: .init(stray: large), on: edge, formerPeer: nil,
                                                  message: .linkRequest(request(from: large))), [],
                       "the handshake is not connection traffic")
        // An authenticated member without a connection: its application traffic is taken, and it is told to link.
        let routed = EdgeMessage.routed(RoutedPacket(header: RoutedHeader(hops: 1, mode: .exact, payloadType: .data,
                                                                          source: large, destination: small),
                                                     payload: ByteBuffer(string: "x")))
        XCTAssertEqual(LinkResponder.strayTraffic(from: .init(member: large), on: edge, formerPeer: nil, message: routed),
                       [.notLinked(edge, dropped: false)])
        XCTAssertEqual(LinkResponder.strayTraffic(from: .init(member: large), on: edge, formerPeer: nil, message: ping), [],
                       "its other traffic is refused as without a connection")
        let ctm = EdgeMessage.routed(RoutedPacket(header: RoutedHeader(hops: 1, mode: .exact, payloadType: .connectToMe,
                                                                       source: large, destination: small),
                                                  payload: ByteBuffer(string: "x")))
        XCTAssertEqual(LinkResponder.strayTraffic(from: .init(member: large), on: edge, formerPeer: nil, message: ctm), [],
                       "ring upkeep needs a connection")
        XCTAssertNil(LinkResponder.Sender(member: large).peer, "it counts for no connection")
    }

    // MARK: Close

    func testACloseOnTheConnectionsEdgeRemovesItAndClosesBothEdges() {
        var responder = LinkResponder(local: small)
        var random = SeededRandom(seed: 1)
        let close = Close(reason: .shutdown, message: "bye")
        XCTAssertEqual(responder.close(close, on: edge, sender: .init(linked: large), formerPeer: nil,
                                       edgeURI: uri("udp://198.18.0.9:4000"), isLinking: { _ in false },
                                       connectionEdge: { _ in self.edge }, random: &random),
                       [.removeConnection(large, reason: "closed by peer"), .closeEdgeIfUnused(edge), .closeEdgeIfUnused(edge)])
    }

    func testATrimmedConnectionsCloseOnTheDrainingEdgeClosesTheConnectionTheSenderStillHolds() {
        var responder = LinkResponder(local: small)
        var random = SeededRandom(seed: 1)
        let close = Close(reason: .trimmed, message: "done")
        XCTAssertEqual(responder.close(close, on: edge, sender: .init(stray: large), formerPeer: large,
                                       edgeURI: uri("udp://198.18.0.9:4000"), isLinking: { _ in false },
                                       connectionEdge: { _ in self.oldEdge }, random: &random),
                       [.removeConnection(large, reason: "closed by peer"), .closeEdgeIfUnused(edge), .closeEdgeIfUnused(oldEdge)])
        XCTAssertEqual(responder.close(close, on: edge, sender: .init(stray: large), formerPeer: nil,
                                       edgeURI: uri("udp://198.18.0.9:4000"), isLinking: { _ in false },
                                       connectionEdge: { _ in self.oldEdge }, random: &random), [],
                       "a stray sender's close is about an edge we do not use")
        XCTAssertEqual(responder.close(Close(reason: .notLinked, message: ""), on: edge, sender: .init(stray: large),
                                       formerPeer: large, edgeURI: uri("udp://198.18.0.9:4000"), isLinking: { _ in false },
                                       connectionEdge: { _ in self.oldEdge }, random: &random), [],
                       "notLinked on the edge we left is about that edge")
    }

    func testNotLinkedAfterANATRebindingReclaimsTheConnectionAndAFailedReclaimRemovesIt() throws {
        var responder = LinkResponder(local: small)
        var random = SeededRandom(seed: 1)
        var expected = random
        let token = expected.next()
        let peerURI = uri("udp://198.18.0.9:4000")
        XCTAssertEqual(responder.close(Close(reason: .notLinked, message: ""), on: edge, sender: .init(linked: large),
                                       formerPeer: nil, edgeURI: peerURI, isLinking: { _ in false },
                                       connectionEdge: { _ in self.edge }, random: &random),
                       [.startAttempt(AttemptStart(token: token, intent: .relink, target: large, uris: [peerURI],
                                                   purpose: .own(connectToken: nil)))])
        XCTAssertEqual(responder.reclaims, [token])
        XCTAssertEqual(responder.close(Close(reason: .notLinked, message: ""), on: edge, sender: .init(linked: large),
                                       formerPeer: nil, edgeURI: peerURI, isLinking: { _ in true },
                                       connectionEdge: { _ in self.edge }, random: &random),
                       [.removeConnection(large, reason: "closed by peer"), .closeEdgeIfUnused(edge), .closeEdgeIfUnused(edge)],
                       "while linking to it already (not a relink: a connect, a peer's Connect-To-Me), a notLinked closes")

        // While a relink of ours runs (the host moved, a failover), the peer's notLinked answers our first packets
        // from where we are now: that relink moves the connection, or, failing, removes it.
        responder.relinkStarted(token: 4321, peer: large, connectionEdge: edge)
        XCTAssertEqual(responder.close(Close(reason: .notLinked, message: ""), on: edge, sender: .init(linked: large),
                                       formerPeer: nil, edgeURI: peerURI, isLinking: { _ in true },
                                       connectionEdge: { _ in self.edge }, random: &random), [],
                       "the connection stays while our relink runs")
        XCTAssertEqual(responder.reclaims, [token, 4321])
        var relink = attempt(to: large, token: 4321, type: LinkIntent.relink.wire, purpose: .own(connectToken: nil),
                             sentRequest: true)
        XCTAssertEqual(responder.attemptFailed(relink, connectionEdge: edge),
                       [.removeConnection(large, reason: "the peer no longer knows the connection"), .closeEdgeIfUnused(edge)],
                       "a relink that became a reclaim and failed: the connection goes")
        responder.relinkStarted(token: 4321, peer: large, connectionEdge: edge)
        XCTAssertEqual(responder.close(Close(reason: .shutdown, message: ""), on: edge, sender: .init(linked: large),
                                       formerPeer: nil, edgeURI: peerURI, isLinking: { _ in true },
                                       connectionEdge: { _ in self.edge }, random: &random),
                       [.removeConnection(large, reason: "closed by peer"), .closeEdgeIfUnused(edge), .closeEdgeIfUnused(edge)],
                       "any other close ends the connection, relink or not")
        relink.refusal = .raceLost
        _ = responder.attemptFailed(relink, connectionEdge: edge)
        XCTAssertEqual(responder.reclaims, [token])

        var failed = attempt(to: large, token: token, type: LinkIntent.relink.wire, purpose: .own(connectToken: nil),
                             sentRequest: true)
        XCTAssertEqual(responder.attemptFailed(failed, connectionEdge: edge),
                       [.removeConnection(large, reason: "the peer no longer knows the connection"), .closeEdgeIfUnused(edge)])
        XCTAssertEqual(responder.reclaims, [])
        failed.token = 1234
        XCTAssertEqual(responder.attemptFailed(failed, connectionEdge: edge), [],
                       "not a reclaim, and no refusal: the peer may just be out of reach for now")
        failed.refusal = .refused
        XCTAssertEqual(responder.attemptFailed(failed, connectionEdge: edge), [], "not a relink this responder knows of")
        responder.relinkStarted(token: 1234, peer: large, connectionEdge: edge)
        XCTAssertEqual(responder.attemptFailed(failed, connectionEdge: edge),
                       [.removeConnection(large, reason: "the peer no longer knows the connection"), .closeEdgeIfUnused(edge)],
                       "a relink of ours the peer refused (a failover's, a retry's): it holds no connection to move")
        XCTAssertTrue(responder.relinks.isEmpty)
        responder.relinkStarted(token: 1234, peer: large, connectionEdge: EdgeID(77))
        XCTAssertEqual(responder.attemptFailed(failed, connectionEdge: edge), [],
                       "the connection moved since the relink started: the peer linked to us anew and knows it")
        responder.relinkStarted(token: 1234, peer: large, connectionEdge: edge)
        failed.refusal = nil
        XCTAssertEqual(responder.attemptFailed(failed, connectionEdge: edge), [], "no refusal: the peer may just be out of reach")
        responder.relinkStarted(token: 99, peer: large, connectionEdge: edge)
        responder.connectionRemoved(large)
        XCTAssertTrue(responder.relinks.isEmpty, "forgotten with the connection")

        _ = responder.close(Close(reason: .notLinked, message: ""), on: edge, sender: .init(linked: large),
                            formerPeer: nil, edgeURI: peerURI, isLinking: { _ in false },
                            connectionEdge: { _ in self.edge }, random: &random)
        let reclaim = try XCTUnwrap(responder.reclaims.first)
        var crossed = attempt(to: large, token: reclaim, type: LinkIntent.relink.wire, purpose: .own(connectToken: nil),
                              sentRequest: true)
        crossed.refusal = .raceLost
        XCTAssertEqual(responder.attemptFailed(crossed, connectionEdge: edge), [],
                       "a reclaim refused for the peer's own relink, which crosses it: the peer knows the connection")
        XCTAssertEqual(responder.reclaims, [])
    }

    // MARK: Attempts completing

    func testACompletedAttemptMakesTheConnectionItWasFor() {
        var responder = LinkResponder(local: small)
        let reply = LinkReply(token: 99, responder: info(large), observedURI: uri("udp://198.18.0.1:4000"),
                              neighbours: [info(other)])
        let own = attempt(to: large, sentRequest: true)
        XCTAssertEqual(responder.attemptCompleted(own, reply: reply, on: edge, isConnected: false), [
            .establish(Establishment(peer: info(large), edge: edge, localType: "structured.far", byPeer: false)),
            .completeConnect(token: 42, peer: large),
            .neighboursLearned([info(other)], from: large),
        ])
        let forPeer = attempt(to: large, purpose: .forPeer, sentRequest: true)
        XCTAssertEqual(responder.attemptCompleted(forPeer, reply: reply, on: edge, isConnected: false), [
            .establish(Establishment(peer: info(large), edge: edge, remoteType: "structured.far", byPeer: false)),
            .neighboursLearned([info(other)], from: large),
        ])
        let relink = attempt(to: large, type: LinkIntent.relink.wire, purpose: .own(connectToken: nil), sentRequest: true)
        XCTAssertEqual(responder.attemptCompleted(relink, reply: reply, on: edge, isConnected: true),
                       [.establish(Establishment(peer: info(large), edge: edge, byPeer: false))])
        XCTAssertEqual(responder.attemptCompleted(relink, reply: reply, on: edge, isConnected: false),
                       [.closeEdgeIfUnused(edge)], "nothing to move")
    }
}

/// An edge that only names its ends (`LinkResponder.establish` reads its transport and URIs).
private final class TestEdge: Edge {
    let transport: String
    let localURI = uri("udp://198.18.0.1:4000")
    let remoteURI: TransportURI
    let isInbound = false
    var isClosed = false
    weak var delegate: (any EdgeDelegate)?

    init(transport: String, remote: String) {
        self.transport = transport
        self.remoteURI = uri(remote)
    }

    func send(_ packet: ByteBuffer) {}
    func close() { isClosed = true }
}

import NIOCore

private func uri(_ text: String) -> TransportURI { try! TransportURI(text) }

/// A relink is an intent that travels in the type field under a reserved name: the wire does not change.
final class LinkIntentTests: XCTestCase {
    func testARelinkTravelsUnderItsReservedNameAndIsNoConnectionType() throws {
        XCTAssertEqual(LinkIntent(wire: "relink"), .relink)
        XCTAssertEqual(LinkIntent.relink.wire.name, "relink")
        XCTAssertNil(LinkIntent.relink.connectionType)
        XCTAssertEqual(LinkIntent(wire: "structured.near"), .connect("structured.near"))
        XCTAssertEqual(LinkIntent.connect("structured.far").connectionType, "structured.far")
        let request = LinkRequest(token: 1, intent: .relink, requester: NodeInfo(address: .zero, uris: []), target: nil,
                                  observedURI: uri("udp://198.18.0.1:4000"))
        XCTAssertEqual(request.type.name, "relink", "the type field carries it")
        XCTAssertEqual(try XCTUnwrap(try? EdgeMessage.decode(EdgeMessage.linkRequest(request).encoded())),
                       .linkRequest(request), "and it round-trips")
        XCTAssertEqual(ConnectToMe(token: 2, intent: .relink, requester: NodeInfo(address: .zero, uris: []),
                                   gateway: nil).intent, .relink)
    }
}
