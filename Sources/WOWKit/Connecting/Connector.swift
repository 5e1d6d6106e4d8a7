/// Connect-To-Me (Brunet's Connector), as a state machine: the connects overlords asked for, the CTMs this node
/// answers, their replies, and the gateway's part for a joining leaf (docs/protocol.md, "Connect-To-Me").
///
/// A connect sends a CTM routed toward its target (and links at once when the peer's URIs are known); every
/// recipient answers with its own node info and links back to the requester at the same time as the requester
/// links to it, so both NATs open. The node gives it events with the facts it needs and carries out the
/// `NodeDirective`s it returns; it holds the pending connects, the recently finished ones and the replies that
/// wait for a punch.
public struct Connector {
    /// A connect waiting for its connection.
    public struct Pending: Equatable, Sendable {
        public var request: ConnectRequest
        public var owner: OverlordID
        /// A CTM reply came back: the recipient answered and links to us, so the connect may take `timeout`.
        public var answered = false
        /// The timer now runs to `timeout` (it first ran to `answerTimeout`).
        var awaitsConnection = false
    }

    /// The node's own address.
    public let local: Address
    /// How long a connect may take before its owner hears it failed.
    public var timeout: Duration
    /// How long a connect waits for its CTM's reply: one that gets none by then (the CTM or its reply was lost,
    /// e.g. routed to a gateway that was not in the ring yet) fails then, so its owner asks again after its
    /// backoff rather than after `timeout`. Unless a direct attempt of ours still serves it.
    public var answerTimeout: Duration
    public private(set) var pending: [UInt64: Pending] = [:]
    /// Recently finished connects (token -> type): a CTM recipient's link request that arrives after the
    /// connect finished still carries our token and links on our behalf, not its own.
    private var finished: [UInt64: ConnectionType] = [:]
    private var finishedOrder: [UInt64] = []
    /// How many finished connects are remembered.
    static let maximumFinished = 1024
    /// CTM replies waiting for the attempt (by token) that links back to the requester to open its edge and
    /// punch on it (`NodeDirective.routeWhenPunched`).
    private var repliesAwaitingPunch: [UInt64: [RoutedPacket]] = [:]

    public init(local: Address, timeout: Duration = .seconds(10), answerTimeout: Duration = .seconds(3)) {
        self.local = local
        self.timeout = timeout
        self.answerTimeout = min(answerTimeout, timeout)
    }

    /// The type of our connect `token` (pending, or finished recently), if it is ours.
    public func ourType(token: UInt64) -> ConnectionType? { pending[token]?.request.type ?? finished[token] }

    /// Whether a connect to `target` is pending.
    public func isConnecting(to target: Address) -> Bool { pending.values.contains { $0.request.target == target } }

    // MARK: - Connecting

    /// What the node knows that a connect depends on.
    public struct ConnectFacts: Sendable {
        /// This node as others should know it.
        public var info: NodeInfo
        /// Our connection to the request's target, if we hold one.
        public var existing: Connection?
        /// Whether the node links to the request's peer directly (known URIs, not connected, no attempt yet).
        public var linksDirectly: Bool
        /// The leaf connection replies come back through while the node has no structured connection.
        public var gateway: Address?

        public init(info: NodeInfo, existing: Connection? = nil, linksDirectly: Bool = false, gateway: Address? = nil) {
            self.info = info
            self.existing = existing
            self.linksDirectly = linksDirectly
            self.gateway = gateway
        }
    }

    /// `owner` asks for a connection to `request.target`. Exact mode to a peer we hold a connection to: it just
    /// gains the type. Otherwise a CTM goes out, and a direct attempt too when the peer's URIs are known: if we
    /// cannot reach the peer (NAT), its linking back opens the way. Not to a peer we are connected to (a
    /// directional CTM may name one): a request on a new edge would move the connection there; the CTM's answer
    /// adds the type on the connection's own edge.
    public mutating func connect(_ request: ConnectRequest, owner: OverlordID, facts: ConnectFacts,
                                 random: inout SeededRandom) -> [NodeDirective] {
        if request.mode == .exact, facts.existing != nil {
            return [.addLocalType(request.type, to: request.target, announcedWith: random.next()),
                    .connectSucceeded(request, owner: owner, peer: request.target)]
        }
        let token = random.next()
        pending[token] = Pending(request: request, owner: owner)
        var directives: [NodeDirective] = [.armTimer(.connect(token: token), after: answerTimeout)]
        if facts.linksDirectly, let peer = request.peer {
            directives.append(.startAttempt(AttemptStart(token: random.next(), type: request.type, target: peer.address,
                                                         uris: peer.uris, purpose: .own(connectToken: token))))
        }
        let ctm = ConnectToMe(token: token, type: request.type, requester: facts.info, gateway: facts.gateway)
        let header = RoutedHeader(mode: request.mode, payloadType: .connectToMe, source: local, destination: request.target)
        directives.append(.route(RoutedPacket(header: header, payload: ctm.encoded())))
        return directives
    }

    /// Connect `token` produced the connection to `peer`.
    public mutating func succeed(_ token: UInt64, peer: Address) -> [NodeDirective] {
        guard let done = pending.removeValue(forKey: token) else { return [] }
        rememberFinished(token, type: done.request.type)
        return [.cancelTimer(.connect(token: token)), .connectSucceeded(done.request, owner: done.owner, peer: peer)]
    }

    /// Connect `token` failed (its timer fired, its CTM could not be routed, its link failed).
    public mutating func fail(_ token: UInt64, reason: String) -> [NodeDirective] {
        guard let done = pending.removeValue(forKey: token) else { return [] }
        rememberFinished(token, type: done.request.type)
        return [.cancelTimer(.connect(token: token)), .connectFailed(done.request, owner: done.owner, reason: reason)]
    }

    /// The connect's timer fired: first at `answerTimeout` (it fails unless answered or `servedByAttempt`, a
    /// direct attempt of ours under way for it), then at `timeout`.
    public mutating func timerFired(token: UInt64, servedByAttempt: Bool) -> [NodeDirective] {
        guard var connect = pending[token] else { return [] }
        if connect.awaitsConnection { return fail(token, reason: "no connection within \(timeout)") }
        guard connect.answered || servedByAttempt else {
            return fail(token, reason: "no answer to the Connect-To-Me within \(answerTimeout)")
        }
        connect.awaitsConnection = true
        pending[token] = connect
        return [.armTimer(.connect(token: token), after: timeout - answerTimeout)]
    }

    /// A CTM of ours could not be routed to `destination`. Connects to it fail, except those a direct link
    /// attempt still serves (`servedByAttempts`: the connect tokens of running attempts): it may succeed where
    /// the CTM could not be routed.
    public mutating func undeliverable(to destination: Address, code: RoutingError.Code,
                                       servedByAttempts: Set<UInt64>) -> [NodeDirective] {
        let tokens = pending.filter { $0.value.request.target == destination && !servedByAttempts.contains($0.key) }
            .keys.sorted()
        return tokens.flatMap { fail($0, reason: "CTM to \(destination.short) not delivered: \(code)") }
    }

    private mutating func rememberFinished(_ token: UInt64, type: ConnectionType) {
        finished[token] = type
        finishedOrder.append(token)
        if finishedOrder.count > Connector.maximumFinished {
            finished[finishedOrder.removeFirst()] = nil
        }
    }

    // MARK: - Answering a Connect-To-Me

    /// What the node knows that answering a CTM depends on.
    public struct CTMFacts: Sendable {
        /// This node as others should know it.
        public var info: NodeInfo
        /// The nearest neighbours the reply shares.
        public var neighbours: [NodeInfo]
        /// Whether we hold a connection to the requester.
        public var isConnected: Bool
        /// Whether an attempt of ours to link to the requester is under way.
        public var isLinking: Bool
        /// The scheme of the transport whose edges run through the overlay (relay), if the node runs one.
        public var tunnelScheme: String?

        public init(info: NodeInfo, neighbours: [NodeInfo] = [], isConnected: Bool = false, isLinking: Bool = false,
                    tunnelScheme: String? = nil) {
            self.info = info
            self.neighbours = neighbours
            self.isConnected = isConnected
            self.isLinking = isLinking
            self.tunnelScheme = tunnelScheme
        }
    }

    /// A CTM reached this node. A `relink` asks us to link to the requester's direct URIs while it links to
    /// ours, keeping the connection (its NAT rebound, or it wants a direct edge for a relayed connection).
    /// Otherwise the overlords learn of the requester, and we reply and link back (`linkBack`, asked with what
    /// the node holds once the overlords had their say).
    public func connectToMe(_ ctm: ConnectToMe, facts: CTMFacts) -> [NodeDirective] {
        let requester = ctm.requester.address
        guard requester != local else { return [] }
        if ctm.intent == .relink {
            let uris = ctm.requester.uris.filter { $0.scheme != facts.tunnelScheme }
            guard facts.isConnected, !facts.isLinking, !uris.isEmpty else { return [] }
            return [.startAttempt(AttemptStart(token: ctm.token, intent: .relink, target: requester, uris: uris,
                                               purpose: .forPeer))]
        }
        let reply = ConnectToMeReply(token: ctm.token, requester: requester, type: ctm.type, responder: facts.info,
                                     neighbours: facts.neighbours)
        let replyHeader = RoutedHeader(mode: .exact, payloadType: .connectToMeReply, source: local,
                                       destination: ctm.gateway ?? requester)
        return [.neighboursLearned([ctm.requester], from: requester),
                .linkBack(ctm, reply: RoutedPacket(header: replyHeader, payload: reply.encoded()))]
    }

    /// Replies to `ctm` with `reply` and links to the requester: on the connection we hold (`connectionEdge`;
    /// a link request with the CTM's token, so it can match), or with an attempt that punches first (`ours`
    /// when one is under way already), the reply waiting for that punch: the requester links to us as soon as
    /// the reply arrives, and its request must find our NAT open. When the requester holds that connection with
    /// the CTM's type already (`requesterHoldsType`: a ring check that reached the neighbour it has), the reply
    /// alone answers it: a link request there would only be answered with what both hold (at 1,000 NATed
    /// nodes, such a request and its reply on every ring check were a sixth of the idle bytes).
    public func linkBack(_ ctm: ConnectToMe, reply: RoutedPacket, connectionEdge: EdgeID?,
                         requesterHoldsType: Bool = false, ours: Linker.Attempt?) -> [NodeDirective] {
        let requester = ctm.requester.address
        if let edge = connectionEdge {
            if requesterHoldsType { return [.route(reply)] }
            return [.route(reply), .addRemoteType(ctm.type, to: requester),
                    .requestLink(token: ctm.token, intent: ctm.intent, target: requester, on: edge)]
        }
        if let ours {
            return [.peerWillLink(token: ours.token, uris: ctm.requester.uris, gateway: ctm.gateway),
                    .routeWhenPunched(reply, token: ours.token)]
        }
        return [.startAttempt(AttemptStart(token: ctm.token, type: ctm.type, target: requester,
                                           uris: ctm.requester.uris, purpose: .forPeer, gateway: ctm.gateway)),
                .routeWhenPunched(reply, token: ctm.token)]
    }

    /// A CTM reply waits until attempt `token` has opened its edge and punched.
    public mutating func hold(_ reply: RoutedPacket, until token: UInt64) {
        repliesAwaitingPunch[token, default: []].append(reply)
    }

    /// Attempt `token` opened its edge (or could not): the replies that waited for it go now.
    public mutating func releaseReplies(for token: UInt64) -> [RoutedPacket] {
        repliesAwaitingPunch.removeValue(forKey: token) ?? []
    }

    // MARK: - Replies

    /// A CTM reply reached this node. For a leaf we are the gateway of (`isConnectedToRequester`: we hold its
    /// leaf connection), it goes on over that connection. Otherwise the overlords learn of the responder and its
    /// neighbours, and a reply to one of our connects goes on to `linkToResponder`.
    public mutating func connectToMeReply(_ reply: ConnectToMeReply, header: RoutedHeader,
                                 isConnectedToRequester: Bool) -> [NodeDirective] {
        if reply.requester != local {
            guard isConnectedToRequester else { return [.drop(.ctmReplyNoRequester)] }
            var forwarded = header
            forwarded.destination = reply.requester
            return [.route(RoutedPacket(header: forwarded, payload: reply.encoded()))]
        }
        let responder = reply.responder
        let learned = NodeDirective.neighboursLearned(reply.neighbours + [responder], from: responder.address)
        guard pending[reply.token] != nil, responder.address != local else { return [learned] }
        pending[reply.token]?.answered = true
        return [learned, .linkToResponder(reply)]
    }

    /// The responder of one of our connects punched toward us before replying: we link to it at once (or an
    /// attempt of ours waiting for that punch, `ours`, goes ahead); one we hold a connection to already
    /// (`isConnected`) just gains the type.
    public func linkToResponder(_ reply: ConnectToMeReply, isConnected: Bool, ours: Linker.Attempt?,
                                random: inout SeededRandom) -> [NodeDirective] {
        guard let connect = pending[reply.token] else { return [] }
        let responder = reply.responder
        if isConnected {
            return [.addLocalType(connect.request.type, to: responder.address, announcedWith: random.next()),
                    .completeConnect(token: reply.token, peer: responder.address)]
        }
        if let ours { return [.peerPunched(token: ours.token, uris: responder.uris)] }
        return [.startAttempt(AttemptStart(token: random.next(), type: connect.request.type, target: responder.address,
                                           uris: responder.uris, purpose: .own(connectToken: reply.token),
                                           peerHasPunched: true))]
    }

    // MARK: - The gateway of a joining leaf

    /// A gateway stamps itself into CTMs from a joining leaf (`previous`, connected to us by `link`), which did
    /// not know it yet, so replies come back; and it adds the URI it sees the leaf at (its NAT mapping, which
    /// the leaf cannot know yet), first, so the CTM's recipients link to where the leaf can actually be
    /// reached. A leaf is joining while its link to us is not structured yet, or while it has not learned the
    /// public address we see it at (answering its first CTM may have made the link structured before we
    /// forward the next). A leaf behind a NAT (we see it at an address it does not list) also gets
    /// `relayURI`, through us, last: a recipient that no direct path joins to it (a symmetric NAT and a
    /// port-restricted one) links over it `relayAfter` later, instead of punching in vain until it gives up.
    public static func stampGateway(_ packet: inout RoutedPacket, from previous: Address,
                                    link: @autoclosure () -> Connection?, gateway: Address,
                                    relayURI: @autoclosure () -> TransportURI? = nil) {
        // `link` and `relayURI` are evaluated only for a Connect-To-Me: `route` passes every packet here.
        guard packet.header.payloadType == .connectToMe, packet.header.source == previous, let link = link(),
              var ctm = try? ConnectToMe.decode(packet.payload), ctm.gateway == nil else { return }
        let seenAt = link.remoteURI.hostAndPort?.host
        let isBehindNAT = !ctm.requester.uris.contains(where: { $0.hostAndPort?.host == seenAt })
        guard !link.isStructured || isBehindNAT else { return }
        ctm.gateway = gateway
        var uris = ctm.requester.uris
        if !uris.contains(link.remoteURI) { uris.insert(link.remoteURI, at: 0) }
        if isBehindNAT, let relayURI = relayURI(), !uris.contains(relayURI) {
            // Last, and kept within the NodeInfo's limit.
            uris = Array(uris.prefix(NodeInfo.maximumURIs - 1)) + [relayURI]
        }
        ctm.requester = NodeInfo(address: ctm.requester.address, uris: uris, handshakeKey: ctm.requester.handshakeKey)
        packet.payload = ctm.encoded()
    }

    /// The node stopped.
    public mutating func reset() {
        pending.removeAll()
        repliesAwaitingPunch.removeAll()
    }
}
