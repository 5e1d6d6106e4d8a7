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
    /// The latest ping round trip, if one completed.
    public var roundTrip: Duration?
    /// How many times the connection moved to another edge (a failover, a NAT rebinding, a relayed connection
    /// going direct, the peer linking again).
    public var pathSwitches = 0

    public var address: Address { peer.address }

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
