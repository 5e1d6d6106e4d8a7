/// What one node tells others about itself: its ring address and every URI it may be reached at,
/// including public (NAT-mapped) ones that peers reported to it.
public struct NodeInfo: Hashable, Sendable, CustomStringConvertible {
    /// At most this many URIs travel in one NodeInfo.
    public static let maximumURIs = 16

    public var address: Address
    public var uris: [TransportURI]

    public init(address: Address, uris: [TransportURI]) {
        self.address = address
        self.uris = Array(uris.prefix(NodeInfo.maximumURIs))
    }

    public var description: String { "\(address.short)@[\(uris.map(\.text).joined(separator: ","))]" }
}
