/// A snapshot of a node for people and scripts (`wow status`, the simulator): who it is, where it can be
/// reached, and every connection.
public struct NodeStatus: Codable, Sendable, Equatable {
    public struct ConnectionStatus: Codable, Sendable, Equatable {
        public var peer: String
        /// The types this node asked for, and the ones the peer asked for.
        public var local_types: [String]
        public var remote_types: [String]
        public var transport: String
        public var local_uri: String
        public var remote_uri: String
        public var inbound: Bool
        public var rtt_ms: Double?
        public var age_s: Double
        public var silent_s: Double
        public var peer_uris: [String]
    }

    public var name: String
    public var address: String
    public var uptime_s: Double
    public var uris: [String]
    /// URIs peers reported seeing this node at (its public, NAT-mapped addresses).
    public var observed_uris: [String]
    public var ring_member: Bool
    public var connections: [ConnectionStatus]
    public var packets_in: Int
    public var packets_out: Int
    public var bytes_in: Int
    public var bytes_out: Int
    public var drops: [String: Int]
}

extension Node {
    /// The node's status now.
    public func status() -> NodeStatus {
        let now = scheduler.now
        return NodeStatus(
            name: config.name, address: address.hex, uptime_s: (now - startedAt).seconds,
            uris: info.uris.map(\.text), observed_uris: observedURIs.map(\.text).sorted(), ring_member: isRingMember,
            connections: table.connections.map { c in
                NodeStatus.ConnectionStatus(
                    peer: c.address.hex, local_types: c.localTypes.map(\.name).sorted(),
                    remote_types: c.remoteTypes.map(\.name).sorted(), transport: c.transport,
                    local_uri: c.localURI.text, remote_uri: c.remoteURI.text, inbound: c.isInbound,
                    rtt_ms: c.roundTrip.map { $0.seconds * 1000 }, age_s: (now - c.createdAt).seconds,
                    silent_s: (now - c.lastHeard).seconds, peer_uris: c.peer.uris.map(\.text))
            },
            packets_in: stats.packetsIn, packets_out: stats.packetsOut, bytes_in: stats.bytesIn,
            bytes_out: stats.bytesOut, drops: stats.drops)
    }
}
