/// What one node tells others about itself: its ring address and every URI it may be reached at,
/// including public (NAT-mapped) ones that peers reported to it.
public struct NodeInfo: Hashable, Sendable, CustomStringConvertible {
    /// At most this many URIs travel in one NodeInfo.
    public static let maximumURIs = 16

    public var address: Address
    public var uris: [TransportURI]
    /// The node's static handshake key (`StaticHandshakeKey`, secured nodes only): a peer that knows it links
    /// in one round trip. Carried where a node speaks of itself, not in neighbour lists.
    public var handshakeKey: [UInt8]?
    /// The node's NAT gives each peer another port (`PublicURIs.mapsPerPeer`): a peer behind a NAT of its own
    /// cannot punch to it and relays at once.
    public var mapsPerPeer: Bool

    public init(address: Address, uris: [TransportURI], handshakeKey: [UInt8]? = nil, mapsPerPeer: Bool = false) {
        self.address = address
        self.uris = Array(uris.prefix(NodeInfo.maximumURIs))
        self.handshakeKey = handshakeKey
        self.mapsPerPeer = mapsPerPeer
    }

    /// Size of `handshakeKey`.
    public static let handshakeKeySize = 32

    public var description: String { "\(address.short)@[\(uris.map(\.text).joined(separator: ","))]" }
}
