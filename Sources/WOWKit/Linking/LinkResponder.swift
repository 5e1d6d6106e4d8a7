/// The inbound side of the link handshake and the rules that keep both ends of a connection on one edge, as a
/// state machine: link requests (the race rule, "newest handshake wins"), replies the node does not act on
/// (settling the edge), traffic from peers on edges that carry no connection (stray and former peers,
/// `notLinked`) and `close` (docs/protocol.md, "Both ends agree on the edge").
///
/// The node gives it each event with the facts it needs (what the table, the linker and the connector hold)
/// and carries out the `NodeDirective`s it returns. It keeps one thing itself: the relink attempts that
/// reclaim a connection the peer said it no longer knows on our edge.
public struct LinkResponder {
    /// The node's own address.
    public let local: Address
    /// Relink attempts made after a peer said it no longer knows our edge: if they fail, the connection goes.
    public private(set) var reclaims: Set<UInt64> = []
    /// Our other relink attempts (failovers, retries of a better path, NAT rebinding), with the peer and the
    /// edge its connection was on when each started: one the peer refuses while the connection is still there
    /// means the peer no longer knows it.
    public private(set) var relinks: [UInt64: (peer: Address, edge: EdgeID)] = [:]

    public init(local: Address) { self.local = local }

    // MARK: - Link requests

    /// What the node knows that a link request's answer depends on.
    public struct RequestFacts: Sendable {
        /// Why the certificate behind the edge does not entitle the requester's address, if it does not.
        public var refusal: SecurityRefusal?
        /// Our connection to the requester, if we hold one (on this edge or another).
        public var existing: Connection?
        /// Our own attempt to link to the requester, if one is under way.
        public var ours: Linker.Attempt?
        /// The type of our Connect-To-Me the request answers (pending or recently finished), if it answers one:
        /// a CTM recipient linking back to us makes the connection for our request, not for one of its own.
        public var ourConnectType: ConnectionType?
        /// Whether the connect the request answers is still pending.
        public var isConnectPending: Bool
        /// Whether the table is at `maximumConnections` (the limit, for the refusal's text).
        public var tableLimit: Int?
        /// Whether the request came over a tunnelled (relay) edge.
        public var isTunnelledEdge: Bool

        public init(refusal: SecurityRefusal? = nil, existing: Connection? = nil, ours: Linker.Attempt? = nil,
                    ourConnectType: ConnectionType? = nil, isConnectPending: Bool = false, tableLimit: Int? = nil,
                    isTunnelledEdge: Bool = false) {
            self.isTunnelledEdge = isTunnelledEdge
            self.refusal = refusal
            self.existing = existing
            self.ours = ours
            self.ourConnectType = ourConnectType
            self.isConnectPending = isConnectPending
            self.tableLimit = tableLimit
        }
    }

    /// A link request arrived on `edge`.
    public func linkRequest(_ request: LinkRequest, on edge: EdgeID, facts: RequestFacts) -> [NodeDirective] {
        func refuse(_ code: LinkError.Code, _ message: String) -> NodeDirective {
            .send(.linkError(LinkError(token: request.token, code: code, message: message)), on: edge)
        }
        let peer = request.requester
        if peer.address == local { return [refuse(.selfLink, "you reached yourself")] }
        if let refusal = facts.refusal {
            return [.logRefusal(refusal, on: edge), refuse(.refused, refusal.description)]
        }
        var directives: [NodeDirective] = [.noteReached(request.observedURI)]
        if let target = request.target, target != local {
            return directives + [refuse(.wrongTarget, "this is \(local.short), not \(target.short)")]
        }
        if request.intent == .relink {
            if facts.existing == nil, let ours = facts.ours, ours.hasSentRequest,
               ours.edge == edge || ours.edgesTried.contains(edge) {
                // The peer holds the connection our request on this very edge made; its reply is still on the
                // way (over a relay it may come well after the peer's own traffic, which we told `notLinked`).
                // Refused, both ends would drop the connection, each in its turn, and neither link again.
                var accepted: [NodeDirective] = [.yieldAttempt(token: ours.token, to: edge),
                                                 .establish(Establishment(peer: peer, edge: edge,
                                                                          localType: ours.intent.connectionType,
                                                                          byPeer: true))]
                if case .own(let connectToken?) = ours.purpose {
                    accepted.append(.completeConnect(token: connectToken, peer: peer.address))
                }
                return directives + accepted + [.replyToLink(request, on: edge)]
            }
            guard facts.existing != nil else {
                return directives + [refuse(.refused, "no connection to move to this edge; link anew")]
            }
            if let ours = facts.ours, !ours.edgesTried.contains(edge) {
                // Both ends move the connection at once over different edges (a relink both ways after a NAT
                // rebinding, each end's own failover): each would move to the other's edge on its request and
                // back to its own on its reply, and the two ends would stay crosswise until one gave up on the
                // other (seen at 1,000 nodes for 30 s). As for new links, `oursWins` decides. Ours
                // goes where the peer's came from too, unless that is the connection's edge (it leaves it): a
                // failover's peer behind a NAT gets through only on the edge it opened itself (its udp cut, a tcp
                // stream out of its site). Sent on the connection's edge as well, ours would reach the peer twice,
                // move it twice, and leave the ends apart again (1,000 nodes: two stragglers of 28 s).
                if oursWins(ours, against: peer.address, on: edge, facts) {
                    let refused = refuse(.raceLost, "simultaneous relink; the larger address's attempt wins")
                    let onConnectionEdge = facts.existing?.edgeID == edge
                    return directives + [refused] + (onConnectionEdge ? [] : [.requestAlso(token: ours.token, on: edge)])
                }
                directives.append(.yieldAttempt(token: ours.token, to: edge))
            }
            return directives + [.establish(Establishment(peer: peer, edge: edge, byPeer: true)),
                                 .replyToLink(request, on: edge)]
        }
        if facts.existing == nil, let ours = facts.ours {
            // Both ends are linking at once (`oursWins`; ours may have sent nothing yet because it waited for
            // this very request after punching).
            if oursWins(ours, against: peer.address, on: edge, facts) {
                // Its request got through, so its NAT lets ours through too: ours need not wait any longer.
                directives += [refuse(.raceLost, "simultaneous link; the larger address's attempt wins"),
                               .peerPunched(token: ours.token, uris: [])]
                // The peer's request shows this edge carries traffic between us now; ours goes there too (ours
                // never went there: see `oursWins`). A peer behind a NAT that maps per peer sends from another
                // port than the one ours tries. Else the peer asks again and again, refused each time, while
                // ours never arrives (seen for 10-30 s in the simulator).
                return directives + [.requestAlso(token: ours.token, on: edge)]
            }
            directives.append(.yieldAttempt(token: ours.token, to: edge))
            let onOurBehalf = facts.ourConnectType
            directives.append(.establish(Establishment(peer: peer, edge: edge, localType: onOurBehalf,
                                                       remoteType: onOurBehalf == nil ? request.type : nil, byPeer: true)))
            if case .own(let connectToken) = ours.purpose {
                // The connection serves our attempt's type too; the peer learns it from the attempt's request.
                if let type = ours.intent.connectionType {
                    directives.append(.addLocalType(type, to: peer.address, announcedWith: nil))
                }
                if let connectToken { directives.append(.completeConnect(token: connectToken, peer: peer.address)) }
            }
            if facts.isConnectPending { directives.append(.completeConnect(token: request.token, peer: peer.address)) }
            return directives + [.replyToLink(request, on: edge)]
        }
        if facts.existing == nil, let limit = facts.tableLimit {
            return directives + [refuse(.tableFull, "already at \(limit) connections")]
        }
        if let ourType = facts.ourConnectType {
            // A CTM recipient linking back to us: the connection serves our request, not one of the peer's.
            directives.append(.establish(Establishment(peer: peer, edge: edge, localType: ourType, byPeer: true)))
            directives.append(.completeConnect(token: request.token, peer: peer.address))
        } else {
            directives.append(.establish(Establishment(peer: peer, edge: edge, remoteType: request.type, byPeer: true)))
        }
        return directives + [.replyToLink(request, on: edge)]
    }

    /// The race rule of two attempts (links, or relinks) that cross over different edges: the one the larger
    /// address started wins, so that both ends hold the connection on one edge. Ours yields all the same when
    /// it sent no request yet (the peer never saw it); when the peer's came by an edge ours went on too (both
    /// ends take the other's request and agree on that edge; the peer's, here first, is ahead of ours: a
    /// joiner's ring neighbour that knew its static key linked in one round trip, its init crossing the
    /// joiner's own, and waited another for the joiner's request to come and be answered); or when the peer's
    /// came through a relay (it works; ours may be trying direct paths that never will).
    private func oursWins(_ ours: Linker.Attempt, against peer: Address, on edge: EdgeID, _ facts: RequestFacts) -> Bool {
        local > peer && ours.hasSentRequest && !ours.edgesTried.contains(edge) && !facts.isTunnelledEdge
    }

    // MARK: - Newest handshake wins

    /// What `establish` did to the table.
    public struct Established: Sendable {
        public var connection: Connection
        /// The edge the connection left for the new one, if it moved.
        public var movedFrom: EdgeID?
        /// Whether the connection is new, or gained a type: overlords and status hear of it then.
        public var isNewOrChanged: Bool
        /// Whether this made the node a ring member (its first structured connection).
        public var joinedRing: Bool
    }

    /// Adds or updates the one connection to `establishment.peer`, now on `edge` (a link handshake completed
    /// there, on either side). A connection held on another edge moves to this one: the peer linked again (it
    /// restarted or moved), and the newest handshake wins. The old edge is for the node to `release`, not
    /// close: by the peer's request, the peer moves when our reply reaches it and sends on the old edge until
    /// then; by its reply, what it sent before may still be on the way.
    public static func establish(_ establishment: Establishment, on edge: any Edge, in table: inout ConnectionTable,
                                 at now: Timestamp) -> Established {
        let peer = establishment.peer
        var connection: Connection
        var movedFrom: EdgeID?
        if var existing = table.connection(to: peer.address) {
            if existing.edgeID != establishment.edge {
                movedFrom = existing.edgeID
                existing.move(to: establishment.edge, transport: edge.transport, localURI: edge.localURI,
                              remoteURI: edge.remoteURI, at: now)
                existing.isInbound = establishment.byPeer
                table.upsert(existing)
            }
            existing.peer = peer
            existing.lastHeard = now
            connection = existing
        } else {
            connection = Connection(peer: peer, localTypes: [], remoteTypes: [], edgeID: establishment.edge,
                                    transport: edge.transport, localURI: edge.localURI, remoteURI: edge.remoteURI,
                                    isInbound: establishment.byPeer, createdAt: now)
        }
        let before = connection.types
        if let localType = establishment.localType { connection.localTypes.insert(localType) }
        if let remoteType = establishment.remoteType { connection.remoteTypes.insert(remoteType) }
        let isNew = !table.contains(peer.address)
        let wasInRing = table.hasStructured
        table.upsert(connection)
        return Established(connection: connection, movedFrom: movedFrom, isNewOrChanged: isNew || connection.types != before,
                           joinedRing: !wasInRing && table.hasStructured)
    }

    // MARK: - Replies the node does not act on

    /// A reply this node does not act on (its attempt completed on another edge or ended) still means that the
    /// responder moved its end of our connection to `edge` before it replied, so the two ends disagree. The
    /// larger address settles it: it asks the responder back with a `relink` on its own connection's edge (the
    /// reply to that arrives there and needs nothing more); the smaller follows the responder to `edge`. Only
    /// one end of a pair ever asks back, so the two cannot swap edges forever. `connection` is ours to the
    /// responder; `edgesOpen` whether both edges are still open.
    public func unusedReply(_ reply: LinkReply, on edge: EdgeID, connection: Connection?, edgesOpen: Bool,
                            random: inout SeededRandom) -> [NodeDirective] {
        let peer = reply.responder.address
        guard peer != local, let connection, connection.edgeID != edge, edgesOpen else { return [] }
        if local > peer {
            return [.requestLink(token: random.next(), intent: .relink, target: peer, on: connection.edgeID)]
        }
        return [.establish(Establishment(peer: reply.responder, edge: edge, byPeer: false))]
    }

    // MARK: - Traffic on edges without a connection

    /// Who sent a message on an edge, as far as connections go.
    public struct Sender: Equatable, Sendable {
        /// The peer whose connection the edge carries.
        public var linked: Address?
        /// Else a peer connected on another edge, or whose connection just left this one, that sends here all
        /// the same: its traffic is taken as its connection's, so no packet is lost while the ends disagree.
        public var stray: Address?
        /// Else, on a secured node, the member whose certificate the edge's session holds (without security, a
        /// tunnelled edge's peer), with no connection here (say we restarted and it still holds its connection to
        /// our former self): its routed application traffic is taken, as the ring would carry it from it anyway
        /// (plaintext data only if it is its own), and it is told to link again; nothing else.
        public var member: Address?
        /// The connection the message counts for, if any.
        public var peer: Address? { linked ?? stray }

        public init(linked: Address? = nil, stray: Address? = nil, member: Address? = nil) {
            self.linked = linked
            self.stray = stray
            self.member = member
        }
    }

    /// Who sent a message on an edge. `linked`: the peer whose connection the edge carries. Otherwise
    /// `authenticated` (the node whose certificate the edge's secure session holds, on a secured node) or, on a
    /// node without security, `formerPeer` (whose connection just left the edge) may be a stray sender, if it
    /// is connected to us (`isConnected`) or is that former peer. Any other authenticated member is a `member`
    /// sender (its certificate entitles it to its address). Without security, the peer of a tunnelled edge
    /// (`tunnelPeer`: the source its frames' routed packets name) is one too: the ring carries its traffic
    /// anyway, with no more proof of its source, and a relayed connection whose close was lost on the way
    /// (one end kept it) must not lose its packets here. Anyone else gets nothing routed: link refusals (an
    /// address it is not entitled to) must keep it out.
    public static func sender(linked: Address?, isSecured: Bool, authenticated: Address?, formerPeer: Address?,
                              tunnelPeer: Address? = nil, isConnected: (Address) -> Bool) -> Sender {
        if let linked { return Sender(linked: linked) }
        let vouched = isSecured ? authenticated : tunnelPeer
        guard let candidate = isSecured ? authenticated : formerPeer ?? tunnelPeer else { return Sender() }
        guard isConnected(candidate) || candidate == formerPeer else {
            return candidate == vouched ? Sender(member: candidate) : Sender()
        }
        return Sender(stray: candidate)
    }

    /// Connection traffic from a stray sender on `edge`: unless it is the peer whose connection just left the
    /// edge (it follows our reply there in a moment), tell it to link again here, which moves our end of the
    /// connection to the edge it uses. The message itself is taken.
    public static func strayTraffic(from sender: Sender, on edge: EdgeID, formerPeer: Address?,
                                    message: EdgeMessage) -> [NodeDirective] {
        if sender.member != nil, message.isApplicationTraffic { return [.notLinked(edge, dropped: false)] }
        guard let stray = sender.stray, formerPeer != stray, message.isConnectionTraffic else { return [] }
        return [.notLinked(edge, dropped: false)]
    }

    // MARK: - Close

    /// A `close` arrived on `edge`. It is acted on on the connection's edge, or on the edge the connection just
    /// left when the peer has not followed yet (it closes the connection it still holds there); a `notLinked`
    /// there is about the edge we left. A `notLinked` from the peer on our connection's edge means the peer
    /// answers from where it always was but no longer knows this edge as ours: our NAT mapping changed (or the
    /// peer restarted). Unless we are linking to it already (`isLinking`), the connection is offered again on
    /// this edge (a `relink` to `edgeURI`); if the peer still holds it, it just moves here. While a relink of
    /// ours to the peer runs already (the host moved and relinks every connection, a failover, a NAT
    /// rebinding), that relink is what moves the connection: the `notLinked` is the peer answering our first
    /// packets from where we are now, before our request reached it, so the relink becomes a reclaim (the
    /// connection goes if it fails) and the connection stays. (Dropping it there left a host that moved with
    /// the peers' ends of its connections on dead edges for 30 s: they moved to our request's edge, which we
    /// then closed as unused.) `connectionEdge`: the edge our connection to the peer is on.
    public mutating func close(_ close: Close, on edge: EdgeID, sender: Sender, formerPeer: Address?,
                               edgeURI: TransportURI, isLinking: (Address) -> Bool, connectionEdge: (Address) -> EdgeID?,
                               random: inout SeededRandom) -> [NodeDirective] {
        let leaving = sender.stray != nil && formerPeer == sender.stray && close.reason != .notLinked
        guard let peer = sender.linked ?? (leaving ? sender.stray : nil) else { return [] }
        if close.reason == .notLinked, !isLinking(peer) {
            let token = random.next()
            reclaims.insert(token)
            return [.startAttempt(AttemptStart(token: token, intent: .relink, target: peer, uris: [edgeURI],
                                               purpose: .own(connectToken: nil)))]
        }
        if close.reason == .notLinked, let relink = relinks.first(where: { $0.value.peer == peer })?.key {
            reclaims.insert(relink)
            return []
        }
        var directives: [NodeDirective] = [.removeConnection(peer, reason: "closed by peer"), .closeEdgeIfUnused(edge)]
        if let other = connectionEdge(peer) { directives.append(.closeEdgeIfUnused(other)) }
        return directives
    }

    // MARK: - Attempts ending

    /// One of our link attempts completed with `reply` on `edge` (a reclaim that did is over): the connection
    /// it was for, serving our type (our own attempt, completing the connect it was part of) or the peer's (an
    /// attempt a peer's Connect-To-Me asked for). A `relink` only moves the connection we hold (`isConnected`)
    /// to the edge; without one there is nothing to move.
    public mutating func attemptCompleted(_ attempt: Linker.Attempt, reply: LinkReply, on edge: EdgeID,
                                          isConnected: Bool) -> [NodeDirective] {
        reclaims.remove(attempt.token)
        relinks[attempt.token] = nil
        let peer = reply.responder
        if attempt.intent == .relink {
            guard isConnected else { return [.closeEdgeIfUnused(edge)] }
            return [.establish(Establishment(peer: peer, edge: edge, byPeer: false))]
        }
        var directives: [NodeDirective]
        switch attempt.purpose {
        case .own(let connectToken):
            directives = [.establish(Establishment(peer: peer, edge: edge, localType: attempt.type, byPeer: false))]
            if let connectToken { directives.append(.completeConnect(token: connectToken, peer: peer.address)) }
        case .forPeer:
            directives = [.establish(Establishment(peer: peer, edge: edge, remoteType: attempt.type, byPeer: false))]
        }
        return directives + [.neighboursLearned(reply.neighbours, from: peer.address)]
    }

    /// A link attempt ended without making a connection itself (the reply came from this node itself, or on an
    /// edge that closed meanwhile, or it yielded to the peer's own request): a reclaim that did is over.
    public mutating func attemptEndedWithoutConnection(token: UInt64) {
        reclaims.remove(token)
        relinks[token] = nil
    }

    /// We started relink attempt `token` to move our connection to `peer`, now on `edge`.
    public mutating func relinkStarted(token: UInt64, peer: Address, connectionEdge edge: EdgeID) {
        relinks[token] = (peer, edge)
    }

    /// The connection to `peer` went: its relinks no longer move anything.
    public mutating func connectionRemoved(_ peer: Address) {
        relinks = relinks.filter { $0.value.peer != peer }
    }

    /// A link attempt failed. A reclaim that fails, or a relink of ours that the peer refused (it holds no
    /// connection to move: it dropped ours while its close could not reach us, say while a failover was under
    /// way) while our connection is still on the edge it was on when the relink started, means the peer no
    /// longer knows the connection: it goes, and the overlords repair. (A connection that moved meanwhile, the
    /// peer linking to us anew, is one the peer knows.) `connectionEdge`: the edge of our connection to the
    /// attempt's target, if we still hold one.
    public mutating func attemptFailed(_ attempt: Linker.Attempt, connectionEdge: EdgeID?) -> [NodeDirective] {
        // A peer that refused ours because its own relink crosses it (`raceLost`) knows the connection.
        let wasReclaim = reclaims.remove(attempt.token) != nil && attempt.refusal != .raceLost
        let startedOn = relinks.removeValue(forKey: attempt.token)?.edge
        let relinkRefused = attempt.refusal == .refused && startedOn != nil && startedOn == connectionEdge
        guard wasReclaim || relinkRefused, let target = attempt.target, let connectionEdge else { return [] }
        return [.removeConnection(target, reason: "the peer no longer knows the connection"),
                .closeEdgeIfUnused(connectionEdge)]
    }

    /// The node stopped.
    public mutating func reset() {
        reclaims.removeAll()
        relinks.removeAll()
    }
}
