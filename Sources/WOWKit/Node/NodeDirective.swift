/// What a node's state machines (`LinkResponder`, `Connector`, `Liveness`, `RelayUpkeep`) ask the node to do.
///
/// The machines decide; the node (`Node`, the shell) carries the directives out in order, against its edges,
/// connection table, linker and timers. A directive never carries a decision of its own: where one depends on
/// the result of an earlier one (the connection an `establish` made), it names what to look up, not a value
/// computed beforehand.
public enum NodeDirective: Equatable, Sendable {
    // MARK: Edges

    /// Sends `message` on `edge`.
    case send(EdgeMessage, on: EdgeID)
    /// Sends a link request on `edge` (the node fills in its own `NodeInfo` and the edge's remote URI).
    case requestLink(token: UInt64, intent: LinkIntent, target: Address, on: EdgeID)
    /// Answers `request` on `edge` with a `LinkReply` (the node fills in its info and its neighbours).
    case replyToLink(LinkRequest, on: EdgeID)
    /// Tells the sender on `edge` that the edge carries no connection (rate-limited per edge); counts a
    /// `not_linked` drop when `dropped`.
    case notLinked(EdgeID, dropped: Bool)
    /// The connection left `edge` (moved or trimmed) while its peer may still send there: keep the edge a
    /// while and take what arrives as the peer's connection traffic.
    case release(EdgeID, from: Address)
    /// Closes `edge` unless a connection or a link attempt uses it.
    case closeEdgeIfUnused(EdgeID)

    // MARK: Connections

    /// Adds or updates the one connection to a peer on an edge ("newest handshake wins":
    /// `LinkResponder.establish`).
    case establish(Establishment)
    /// Removes the connection to `peer`.
    case removeConnection(Address, reason: String)
    /// Adds one of this node's types to its connection to `peer`. With a token the peer is told with a link
    /// request on the connection's edge (and the overlords and status hear of it); without, it is added quietly
    /// (the peer knows already).
    case addLocalType(ConnectionType, to: Address, announcedWith: UInt64?)
    /// Adds one of the peer's types to our connection to it (a Connect-To-Me from a peer we hold already).
    case addRemoteType(ConnectionType, to: Address)
    /// Drops one of this node's types from its connection to `peer`; a connection left with no type closes.
    case trim(ConnectionType, of: Address)
    /// Moves the connection to `peer` to a new edge from both ends at once (`Node.relinkBothWays`): a relink
    /// Connect-To-Me, routed or sent on `through`, and a relink attempt to `uris`.
    case relink(Address, uris: [TransportURI], through: EdgeID?)

    // MARK: The linker

    /// Starts a link attempt.
    case startAttempt(AttemptStart)
    /// `Linker.peerPunched`: the peer has punched toward us.
    case peerPunched(token: UInt64, uris: [TransportURI])
    /// `Linker.peerWillLink`: the peer is about to link to us; `gateway` as in `AttemptStart`.
    case peerWillLink(token: UInt64, uris: [TransportURI], gateway: Address?)
    /// `Linker.requestAlso`: our attempt's request goes on `edge` too, where the peer's came by.
    case requestAlso(token: UInt64, on: EdgeID)
    /// `Linker.yield`: our attempt gives way to the peer's request on `edge`; its timer is cancelled and link
    /// requests it left waiting in a secure handshake are withdrawn.
    case yieldAttempt(token: UInt64, to: EdgeID)

    // MARK: Connect-To-Me

    /// Routes `packet` from this node.
    case route(RoutedPacket)
    /// Sends `packet` as its first hop on `edge` (a first hop known to reach the ring).
    case sendRouted(RoutedPacket, on: EdgeID)
    /// Routes a Connect-To-Me reply once attempt `token`'s edge is open and punched on (at once when the
    /// attempt has its edge or ended already): the requester's link request must find our NAT open.
    case routeWhenPunched(RoutedPacket, token: UInt64)
    /// Asks the connector to reply to a CTM and link back to its requester (`Connector.linkBack`), with what
    /// the node holds now that the overlords heard of the requester.
    case linkBack(ConnectToMe, reply: RoutedPacket)
    /// Asks the connector to link to the responder of one of our CTMs (`Connector.linkToResponder`), with what
    /// the node holds now that the overlords heard of the responder.
    case linkToResponder(ConnectToMeReply)
    /// The pending connect `token` succeeded on the connection to `peer` (nothing if it is not pending).
    case completeConnect(token: UInt64, peer: Address)
    /// Tells `owner` that `request` succeeded with the connection to `peer`.
    case connectSucceeded(ConnectRequest, owner: OverlordID, peer: Address)
    /// Tells `owner` that `request` failed.
    case connectFailed(ConnectRequest, owner: OverlordID, reason: String)

    // MARK: Everything else

    /// Tells the overlords of nodes a peer knows (`OverlordEvent.neighboursLearned`).
    case neighboursLearned([NodeInfo], from: Address)
    /// Arms `timer` (replacing it if armed).
    case armTimer(NodeTimer, after: Duration)
    /// Cancels `timer` if armed.
    case cancelTimer(NodeTimer)
    /// A peer reached or saw this node at `uri` (`PublicURIs.noteReached`).
    case noteReached(TransportURI)
    /// Logs and counts a security refusal on `edge`.
    case logRefusal(SecurityRefusal, on: EdgeID)
    /// Counts a dropped packet.
    case drop(DropReason)
}

/// A connection to make or update on an edge (`NodeDirective.establish`).
public struct Establishment: Equatable, Sendable {
    public var peer: NodeInfo
    public var edge: EdgeID
    /// One of our types the connection now serves, if any.
    public var localType: ConnectionType?
    /// One of the peer's types the connection now serves, if any.
    public var remoteType: ConnectionType?
    /// Whether the peer's link request made it (else the peer's reply to ours).
    public var byPeer: Bool

    public init(peer: NodeInfo, edge: EdgeID, localType: ConnectionType? = nil, remoteType: ConnectionType? = nil,
                byPeer: Bool) {
        self.peer = peer
        self.edge = edge
        self.localType = localType
        self.remoteType = remoteType
        self.byPeer = byPeer
    }
}

/// A link attempt to start (`NodeDirective.startAttempt`; the arguments of `Linker.start`).
public struct AttemptStart: Equatable, Sendable {
    public var token: UInt64
    public var intent: LinkIntent
    public var target: Address?
    public var uris: [TransportURI]
    public var purpose: Linker.Purpose
    public var peerHasPunched: Bool
    /// The gateway a joining target's CTM named: its relay URI through the gateway may start beside the direct
    /// tries (`Linker.relayAfter`) though we hold no connection to the gateway.
    public var gateway: Address?

    public init(token: UInt64, type: ConnectionType, target: Address?, uris: [TransportURI], purpose: Linker.Purpose,
                peerHasPunched: Bool = false, gateway: Address? = nil) {
        self.init(token: token, intent: .connect(type), target: target, uris: uris, purpose: purpose,
                  peerHasPunched: peerHasPunched, gateway: gateway)
    }

    public init(token: UInt64, intent: LinkIntent, target: Address?, uris: [TransportURI], purpose: Linker.Purpose,
                peerHasPunched: Bool = false, gateway: Address? = nil) {
        self.token = token
        self.intent = intent
        self.target = target
        self.uris = uris
        self.purpose = purpose
        self.peerHasPunched = peerHasPunched
        self.gateway = gateway
    }
}
