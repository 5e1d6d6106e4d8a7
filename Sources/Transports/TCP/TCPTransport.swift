import WOWKit

/// The `tcp` transport: one TCP connection per edge, at URIs like `tcp://198.18.0.1:4001` or
/// `tcp://[2001:db8::1]:4001`, each packet framed by a 2-byte big-endian length. Real nodes only: it listens
/// and connects on the node's event loop (`TCPEdgeListener`). For networks that let only TCP through; `tls` is
/// the same inside TLS.
///
/// Config (all keys optional; unknown keys are rejected):
/// ```yaml
/// tcp:
///   listen: "0.0.0.0:4001"        # IPv4 or IPv6 literal with port; "[::]:4001" for IPv6; port 0 = any free port
///   advertise: ["tcp://198.18.0.1:4001"]   # URIs peers can reach this node at, listed first
///   connect_timeout_ms: 5000      # how long an outbound connection may take
///   proxy: "http://user:password@198.18.0.9:3128"   # dial every outbound edge through this HTTP proxy
/// ```
/// Without `proxy` the tcp transport connects directly (it does not follow `HTTPS_PROXY`; `tls` does).
/// Peers are named by IP literals only: the transport does no DNS lookups (yet).
public enum TCPTransport: TransportPlugin {
    /// The URI scheme, also the config name.
    public static let scheme = "tcp"

    /// The transport's settings.
    public struct Settings: Decodable, Sendable {
        /// The local address to listen on, `host:port` (IPv6 in brackets). Port 0 takes any free port.
        public var listen: String = "0.0.0.0:4001"
        /// URIs this node can be reached at (a port forward, a public address), put first in `localURIs`.
        public var advertise: [TransportURI] = []
        /// How long `createEdge` may take before it fails as unreachable.
        public var connectTimeoutMilliseconds: Int = 5000
        /// An HTTP proxy to dial outbound edges through (`CONNECT`); `.unset` and `.direct` connect directly.
        public var proxy: ProxySetting = .unset

        enum CodingKeys: String, CodingKey, CaseIterable {
            case listen, advertise, proxy
            case connectTimeoutMilliseconds = "connect_timeout_ms"
        }

        public init(listen: String = "0.0.0.0:4001", advertise: [TransportURI] = [], connectTimeoutMilliseconds: Int = 5000,
                    proxy: ProxySetting = .unset) {
            self.listen = listen
            self.advertise = advertise
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
            self.proxy = proxy
        }

        public init(from decoder: any Decoder) throws {
            self.init()
            let container = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            listen = try container.decodeListenAddress(forKey: .listen) ?? listen
            advertise = try container.decodeAdvertisedURIs(forKey: .advertise, scheme: TCPTransport.scheme) ?? advertise
            connectTimeoutMilliseconds = try container.decodeConnectTimeout(forKey: .connectTimeoutMilliseconds)
                ?? connectTimeoutMilliseconds
            proxy = try container.decodeProxy(forKey: .proxy) ?? proxy
        }
    }

    /// Makes the node's TCP listener; it listens in `start`. Needs `context.eventLoop`.
    public static func makeListener(settings: Settings, context: TransportContext) throws -> any EdgeListener {
        guard let eventLoop = context.eventLoop else {
            throw TCPTransportError.needsEventLoop(transport: scheme)
        }
        return try TCPEdgeListener(settings: settings, eventLoop: eventLoop, logger: context.logger)
    }
}
