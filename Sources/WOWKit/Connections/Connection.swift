/// An authenticated edge to a known node, with what it is for. Only the link handshake creates one.
///
/// A pair of nodes holds at most one connection; it serves every type either side wanted it for.
/// `localTypes` are the ones this node asked for (overlords count their own links by them: a far link another
/// node made to us is not one of ours); `remoteTypes` the ones the peer asked for in its link requests.
/// The connection stays while either set is non-empty as far as this node knows; when this node trims its
/// last type and the peer asked for none, it closes the connection.
public struct Connection: Sendable, CustomStringConvertible {
    public var peer: NodeInfo
    public var localTypes: Set<ConnectionType> { didSet { isStructured = Self.structured(localTypes, remoteTypes) } }
    public var remoteTypes: Set<ConnectionType> { didSet { isStructured = Self.structured(localTypes, remoteTypes) } }
    /// Identifies the edge within the node; overlords never touch edges.
    public var edgeID: EdgeID
    public var transport: String
    public var localURI: TransportURI
    public var remoteURI: TransportURI
    /// Whether the peer started the link handshake that made (or last renewed) this connection. Not the
    /// edge's direction: datagram transports share one edge per remote endpoint for both directions.
    public var isInbound: Bool
    public var createdAt: Timestamp
    /// When a packet from the peer last arrived.
    public var lastHeard: Timestamp
    /// When a packet from the peer last arrived on the connection's own edge (`lastHeard` counts the peer's
    /// packets on an edge it moves the connection to, or just left, too): what a path it leaves remembers.
    public var lastHeardOnPath: Timestamp
    /// The latest ping round trip, if one completed.
    public var roundTrip: Duration?
    /// How many times the connection moved to another edge (a failover, a NAT rebinding, a relayed connection
    /// going direct, the peer linking again).
    public var pathSwitches = 0
    /// The paths the connection was on before, newest first (at most `maximumFormerPaths`, one per URI), with
    /// what they measured when it left them: what `wow status` shows of the alternatives a failover would try.
    public var formerPaths: [FormerPath] = []
    public static let maximumFormerPaths = 4

    /// A path the connection left: the peer's URI it was on, its last round trip, when the peer was last heard
    /// (on it, or on the way it went silent), and when the connection moved off it.
    public struct FormerPath: Sendable, Equatable {
        public var remoteURI: TransportURI
        public var roundTrip: Duration?
        public var lastHeard: Timestamp
        public var leftAt: Timestamp
    }

    public var address: Address { peer.address }

    /// Moves the connection to `edge` (a handshake completed there), remembering the path it leaves.
    public mutating func move(to edge: EdgeID, transport: String, localURI: TransportURI, remoteURI: TransportURI,
                              at now: Timestamp) {
        let left = FormerPath(remoteURI: self.remoteURI, roundTrip: roundTrip, lastHeard: lastHeardOnPath, leftAt: now)
        formerPaths = Array(([left] + formerPaths.filter { $0.remoteURI != self.remoteURI && $0.remoteURI != remoteURI })
            .prefix(Self.maximumFormerPaths))
        edgeID = edge
        self.transport = transport
        self.localURI = localURI
        self.remoteURI = remoteURI
        pathSwitches += 1
        // The round trip was the old path's; the handshake that moved it was heard here.
        roundTrip = nil
        lastHeardOnPath = now
    }

    /// Every type the connection serves, for either side.
    public var types: Set<ConnectionType> { localTypes.union(remoteTypes) }

    /// Whether routing may use it as a next hop: any type other than `leaf` (kept up to date as types change,
    /// because routing asks on every packet).
    public private(set) var isStructured: Bool

    private static func structured(_ local: Set<ConnectionType>, _ remote: Set<ConnectionType>) -> Bool {
        local.contains { $0 != .leaf } || remote.contains { $0 != .leaf }
    }

    public init(peer: NodeInfo, localTypes: Set<ConnectionType>, remoteTypes: Set<ConnectionType>, edgeID: EdgeID,
                transport: String, localURI: TransportURI, remoteURI: TransportURI, isInbound: Bool,
                createdAt: Timestamp) {
        self.peer = peer
        self.localTypes = localTypes
        self.remoteTypes = remoteTypes
        self.isStructured = Self.structured(localTypes, remoteTypes)
        self.edgeID = edgeID
        self.transport = transport
        self.localURI = localURI
        self.remoteURI = remoteURI
        self.isInbound = isInbound
        self.createdAt = createdAt
        self.lastHeard = createdAt
        self.lastHeardOnPath = createdAt
    }

    public var description: String {
        "\(peer.address.short) [\(types.sorted().map(\.name).joined(separator: ","))] via \(remoteURI)"
    }
}

/// A node-local edge identifier.
public struct EdgeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (lhs: EdgeID, rhs: EdgeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "e\(rawValue)" }
}
