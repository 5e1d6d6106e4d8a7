/// An authenticated edge to a known node, with what it is for. Only the link handshake creates one.
///
/// A pair of nodes holds at most one connection; it serves every type either side wanted it for
/// (`types`). `requestedTypes` are the ones this node asked for itself (overlords count their own links
/// by it: a far link someone else made to us is not one of ours).
public struct Connection: Sendable, CustomStringConvertible {
    public var peer: NodeInfo
    public var types: Set<ConnectionType>
    public var requestedTypes: Set<ConnectionType>
    /// Identifies the edge within the node; overlords never touch edges.
    public var edgeID: EdgeID
    public var transport: String
    public var localURI: TransportURI
    public var remoteURI: TransportURI
    public var isInbound: Bool
    public var createdAt: Timestamp
    /// When a packet from the peer last arrived.
    public var lastHeard: Timestamp
    /// The latest ping round trip, if one completed.
    public var roundTrip: Duration?

    public var address: Address { peer.address }

    /// Whether routing may use it as a next hop: any type other than `leaf`.
    public var isStructured: Bool { types.contains { $0 != .leaf } }

    public init(peer: NodeInfo, types: Set<ConnectionType>, requestedTypes: Set<ConnectionType>, edgeID: EdgeID,
                transport: String, localURI: TransportURI, remoteURI: TransportURI, isInbound: Bool,
                createdAt: Timestamp) {
        self.peer = peer
        self.types = types
        self.requestedTypes = requestedTypes
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
