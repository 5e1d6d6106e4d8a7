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
        /// How many times the connection moved to another path.
        public var path_switches: Int
        /// The name and virtual IPs in the peer's certificate; nil and empty on a node without security.
        public var peer_name: String?
        public var peer_virtual_ips: [String]
        /// How packets reach the peer, for people: `direct udp 198.18.12.2:4000`, `relayed via alpha`.
        public var path: String
        /// The node a relayed connection's frames go through first (its address), nil when direct.
        public var relayed_via: String?
        /// The other paths to the peer, in the order a failover would try them (`PathWatch.alternatives`):
        /// the peer's other URIs of transports this node runs, as `path` puts them (`direct tcp 198.18.0.1:4001`,
        /// `relayed via alpha`). Cold: opened when needed (a link attempt), not kept open.
        public var alternatives: [String]
        /// The path the connection left in a failover, tried again with backoff until it answers; nil if none.
        public var left_path: String?
        /// The paths the connection was on before, newest first, with what they measured when it left them
        /// (`Connection.formerPaths`): the round trip and last word of the alternatives it has used. Nil from a
        /// node that does not say (before 2026-12-06).
        public var former_paths: [FormerPathStatus]?
        /// Tunnel frames of relayed connections cross it (this node is their forwarder, or their end): kept open
        /// while they do, whatever its types (`TunnelCarriers`). Nil from a node that does not say (before 2026-12).
        public var carries_tunnels: Bool?
        /// The path carried sends and nothing came back for a whole failover window (`PathWatch.silentPaths`):
        /// packets to and through the peer go over the ring meanwhile. Nil from a node that does not say.
        public var silent_path: Bool?
    }

    /// A path a connection was on before.
    public struct FormerPathStatus: Codable, Sendable, Equatable {
        /// As `ConnectionStatus.path` puts it: `direct tcp 198.18.0.1:4001`, `relayed via alpha`.
        public var path: String
        /// Its last round trip, if a ping completed on it.
        public var rtt_ms: Double?
        /// Seconds since the peer was last heard there (or, after a failover, since it went silent).
        public var last_heard_s: Double
        /// Seconds since the connection moved off it.
        public var left_s: Double
    }

    /// How the node proves its membership: nil when it runs without security.
    public struct SecurityStatus: Codable, Sendable, Equatable {
        public var network: String
        public var certificate_name: String
        public var certificate_fingerprint: String
        /// Seconds since 1970 after which the certificate is no longer valid.
        public var certificate_expires: Int64
        public var virtual_ips: [String]
        /// Edges with an authenticated secure session, and end-to-end sessions.
        public var secure_edges: Int
        public var end_to_end_sessions: Int
        /// The node's static handshake key (hex), for other nodes' bootstrap lists (`bootstrap: - {uri,
        /// handshake_key}`). Nil from a node that does not say.
        public var handshake_key: String?
    }

    /// The node's TUN device and what crossed it: nil without a virtual network.
    public struct VirtualNetworkStatus: Codable, Sendable, Equatable {
        public var device: String
        /// The first of `ips`: the IP the node's ring address comes from.
        public var ip: String
        /// Every IP on the device (the certificate's first IPv4 and first IPv6).
        public var ips: [String]
        public var prefix: String
        /// The IPv6 network, when the device carries one.
        public var ipv6_prefix: String?
        public var mtu: Int
        public var packets_from_device: Int
        public var bytes_from_device: Int
        public var packets_to_device: Int
        public var bytes_to_device: Int
        public var icmp_sent: Int
        /// Packets above the MTU: TCP super-segments (segmentation offload) read from / written to the device.
        public var super_segments_from_device: Int
        public var super_segments_to_device: Int
        /// Whether the device takes super-segments from the host, and packets it would not take.
        public var offload: Bool
        public var device_write_failures: Int
    }

    public var name: String
    public var address: String
    /// The node's virtual IPs: its certificate's, or its virtual network's on a node without security.
    public var virtual_ips: [String]
    /// Whether a NAT stands between the node and its peers, as far as their reports tell.
    public var nat: String
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
    /// What the node's transports dropped before the node saw it (e.g. `inbound_limit` connections, fragments
    /// that never completed), by transport scheme, then reason.
    public var transport_drops: [String: [String: Int]]
    /// Connections moved off a path that stopped answering.
    public var failovers: Int
    /// Times the host's addresses changed (it moved to another network) and every connection relinked.
    public var network_changes: Int
    /// Packets sent around a connection whose path went silent, over the ring (`Router.detour`). Nil from a
    /// node that does not say.
    public var routed_around_silent_paths: Int?
    /// Own packets that waited for a route while the node's place in the ring formed, and packets a joiner
    /// passed on that waited for the node's own way into the ring (`HeldPackets`).
    public var held_for_route: Int
    /// The node's protocol timers pending (`Scheduler.pendingTimers`): steady on a healthy node.
    public var timers: Int
    /// The nearest structured connections on each side of the node's address (its ring neighbours).
    public var left_neighbour: String?
    public var right_neighbour: String?
    public var security: SecurityStatus?
    public var virtual_network: VirtualNetworkStatus?
}

extension Node {
    /// The node's status now.
    public func status() -> NodeStatus {
        let now = scheduler.now
        return NodeStatus(
            name: config.name, address: address.hex,
            virtual_ips: edgeSecurity.map { $0.credentials.certificate.virtualIPs.map(\.description) }
                ?? virtualInterface.map { $0.network.localIPs.map(\.description) } ?? [],
            nat: natVerdict, uptime_s: (now - startedAt).seconds,
            uris: info.uris.map(\.text), observed_uris: observedURIs.map(\.text).sorted(), ring_member: isRingMember,
            connections: table.connections.map { c in
                let certificate = certificate(of: c.address)
                let forwarder = forwarder(of: c)
                return NodeStatus.ConnectionStatus(
                    peer: c.address.hex, local_types: c.localTypes.map(\.name).sorted(),
                    remote_types: c.remoteTypes.map(\.name).sorted(), transport: c.transport,
                    local_uri: c.localURI.text, remote_uri: c.remoteURI.text, inbound: c.isInbound,
                    rtt_ms: c.roundTrip.map { $0.seconds * 1000 }, age_s: (now - c.createdAt).seconds,
                    silent_s: (now - c.lastHeard).seconds, peer_uris: c.peer.uris.map(\.text),
                    path_switches: c.pathSwitches, peer_name: certificate?.name,
                    peer_virtual_ips: certificate?.virtualIPs.map(\.description) ?? [],
                    path: forwarder.map(relayedPath(via:)) ?? Node.directPath(of: c),
                    relayed_via: forwarder?.hex,
                    alternatives: PathWatch.alternatives(to: c, schemes: Set(listeners.map(\.scheme))).map(path(to:)),
                    left_path: pathWatch.leftPath(of: c).map(path(to:)),
                    former_paths: c.formerPaths.map { former in
                        NodeStatus.FormerPathStatus(path: path(to: former.remoteURI),
                                                    rtt_ms: former.roundTrip.map { $0.seconds * 1000 },
                                                    last_heard_s: (now - former.lastHeard).seconds,
                                                    left_s: (now - former.leftAt).seconds)
                    },
                    carries_tunnels: tunnelCarriers.isCarrying(c.address, at: now),
                    silent_path: pathWatch.isSilent(c.address))
            },
            packets_in: stats.packetsIn, packets_out: stats.packetsOut, bytes_in: stats.bytesIn,
            bytes_out: stats.bytesOut, drops: stats.drops.byName, transport_drops: transportDrops, failovers: stats.failovers,
            network_changes: stats.networkChanges, routed_around_silent_paths: stats.routedAroundSilentPaths,
            held_for_route: stats.heldForRoute,
            timers: scheduler.pendingTimers,
            left_neighbour: table.nearestStructured(leftOf: address)?.address.hex,
            right_neighbour: table.nearestStructured(rightOf: address)?.address.hex,
            security: edgeSecurity.map { security in
                let certificate = security.credentials.certificate
                return NodeStatus.SecurityStatus(
                    network: certificate.network.description, certificate_name: certificate.name,
                    certificate_fingerprint: certificate.fingerprint.description,
                    certificate_expires: certificate.notAfter, virtual_ips: certificate.virtualIPs.map(\.description),
                    secure_edges: edges.all.filter { ($0.edge as? SecuredEdge)?.isEstablished == true }.count,
                    end_to_end_sessions: endToEnd?.establishedCount ?? 0,
                    handshake_key: PublicKeyText.encode(security.staticKey.publicKey))
            },
            virtual_network: virtualInterface.map { interface in
                let network = interface.network, stats = network.stats
                return NodeStatus.VirtualNetworkStatus(
                    device: network.settings.deviceName, ip: network.localIPs.first?.description ?? "",
                    ips: network.localIPs.map(\.description), prefix: network.settings.prefix.description,
                    ipv6_prefix: network.localIPs.contains { $0.family == .v6 } ? network.settings.ipv6Prefix.description : nil,
                    mtu: network.settings.mtu,
                    packets_from_device: stats.packetsFromDevice, bytes_from_device: stats.bytesFromDevice,
                    packets_to_device: stats.packetsToDevice, bytes_to_device: stats.bytesToDevice,
                    icmp_sent: stats.icmpSent, super_segments_from_device: stats.superSegmentsFromDevice,
                    super_segments_to_device: stats.superSegmentsToDevice, offload: interface.device.isOffloading,
                    device_write_failures: interface.device.writeFailures)
            })
    }
}

extension Node {
    /// What peers' reports say about a NAT in front of this node.
    var natVerdict: String {
        if publicURIs.isReachableDirectly { return "none: peers reach this node at an address it is bound to" }
        guard let seen = publicURIs.observed.first(where: publicURIs.natMappings.contains) ?? publicURIs.observed.first
        else { return "unknown: no peer reported our address yet" }
        return "behind a NAT: peers see this node at \(seen.text)"
    }

    /// What the listeners dropped, by scheme then reason; reasons not seen yet are left out.
    public var transportDrops: [String: [String: Int]] {
        var result: [String: [String: Int]] = [:]
        for listener in listeners {
            let seen = listener.dropsByReason.filter { $0.value > 0 }
            guard !seen.isEmpty else { continue }
            result[listener.scheme, default: [:]].merge(seen, uniquingKeysWith: +)
        }
        return result
    }

    /// The node a relayed connection's frames go through first, nil when it is direct.
    func forwarder(of connection: Connection) -> Address? {
        var edge = edges[connection.edgeID]?.edge
        if let secured = edge as? SecuredEdge { edge = secured.inner }
        return (edge as? any TunnelledEdge)?.forwarder
    }

    /// `relayed via alpha`, or `relayed toward the peer` when no forwarder is left (`TunnelledEdge.forwarder`).
    func relayedPath(via forwarder: Address) -> String {
        forwarder == .zero ? "relayed toward the peer" : "relayed via \(displayName(of: forwarder))"
    }

    /// `direct udp 198.18.12.2:4000`: the transport and the peer's address on it.
    static func directPath(of connection: Connection) -> String {
        directPath(connection.transport, connection.remoteURI)
    }

    private static func directPath(_ transport: String, _ uri: TransportURI) -> String {
        let place = uri.hostAndPort.map { $0.host.contains(":") ? "[\($0.host)]:\($0.port)" : "\($0.host):\($0.port)" }
        return "direct \(transport) \(place ?? uri.rest)"
    }

    /// The path a URI of the peer's stands for: `relayed via alpha` for a tunnel transport's, else direct.
    func path(to uri: TransportURI) -> String {
        let tunnel = listener(for: uri.scheme) as? any OverlayTunnelListener
        if let forwarder = tunnel?.forwarder(of: uri) { return "relayed via \(displayName(of: forwarder))" }
        return Node.directPath(uri.scheme, uri)
    }
}
