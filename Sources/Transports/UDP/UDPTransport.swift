import WOWKit

/// The `udp` transport: edges over one UDP socket per node, at URIs like `udp://198.18.0.1:4000` or
/// `udp://[2001:db8::1]:4000`. Real nodes only: it binds its socket on the node's event loop.
///
/// Config (all keys optional; unknown keys are rejected):
/// ```yaml
/// udp:
///   listen: "0.0.0.0:4000"        # IPv4 or IPv6 literal with port; "[::]:4000" for IPv6; port 0 = any free port
///   advertise: ["udp://198.18.0.1:4000"]   # URIs peers can reach this node at, listed first
///   fec: auto                     # parity groups sized to the loss peers report; "off", or a fixed group size 2-32
/// ```
public enum UDPTransport: TransportPlugin {
    /// The URI scheme, also the config name.
    public static let scheme = "udp"

    /// The largest packet an edge sends (`WireFormat.maximumPacketSize`); larger packets are dropped. Packets
    /// over `maximumDatagramSize` go as several fragments (`FragmentPacket`).
    public static let maximumPacketSize = WireFormat.maximumPacketSize

    /// The largest datagram the transport sends: 1,500 (the Ethernet MTU, the common path MTU) − 40 (IPv6
    /// header, the larger one) − 8 (UDP header). Larger datagrams would be IP-fragmented, which NATs and
    /// firewalls often drop.
    public static let maximumDatagramSize = 1_452

    /// Forward error correction (`FECPacket`): parity groups sized to the loss the remote reports (`auto`,
    /// the default), none (`off`), or a fixed group size (for measurements).
    public enum FECSetting: Equatable, Sendable {
        case auto
        case off
        case fixed(Int)

        /// The group size to use when the loss reports chose `chosen`.
        func groupSize(chosen: Int) -> Int {
            switch self {
            case .auto: return chosen
            case .off: return 0
            case .fixed(let size): return size
            }
        }

        /// Parses `auto`, `off` or a group size 2...32; nil otherwise.
        init?(_ text: String) {
            switch text {
            case "auto": self = .auto
            case "off": self = .off
            default:
                guard let size = Int(text), size >= 2, size <= FECPacket.maximumGroupSize else { return nil }
                self = .fixed(size)
            }
        }
    }

    /// The transport's settings.
    public struct Settings: Decodable, Sendable {
        /// The local address to bind, `host:port` (IPv6 in brackets). Port 0 binds any free port.
        public var listen: String = "0.0.0.0:4000"
        /// URIs this node can be reached at (a port forward, a public address), put first in `localURIs`.
        public var advertise: [TransportURI] = []
        /// Forward error correction.
        public var fec: FECSetting = .auto
        /// Strangers' datagrams read per second at most while members' traffic flows (`StrangerReadBudget`);
        /// 0: no limit.
        public var strangersPerSecond = StrangerReadBudget.defaultPerSecond

        enum CodingKeys: String, CodingKey, CaseIterable {
            case listen, advertise, fec
            case strangersPerSecond = "strangers_per_second"
        }

        public init(listen: String = "0.0.0.0:4000", advertise: [TransportURI] = [], fec: FECSetting = .auto,
                    strangersPerSecond: Int = StrangerReadBudget.defaultPerSecond) {
            self.listen = listen
            self.advertise = advertise
            self.fec = fec
            self.strangersPerSecond = strangersPerSecond
        }

        public init(from decoder: any Decoder) throws {
            self.init()
            let container = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            if let listen = try container.decodeIfPresent(String.self, forKey: .listen) {
                do throws(IPEndpointError) {
                    _ = try IPEndpoint(parsing: listen)
                } catch {
                    throw DecodingError.dataCorruptedError(
                        forKey: .listen, in: container,
                        debugDescription: "'\(listen)' is not a listen address: \(error.reason)")
                }
                self.listen = listen
            }
            if let texts = try container.decodeIfPresent([String].self, forKey: .advertise) {
                advertise = []
                for text in texts {
                    do {
                        let uri = try TransportURI(text)
                        _ = try IPEndpoint(uri: uri, scheme: UDPTransport.scheme)
                        advertise.append(uri)
                    } catch {
                        throw DecodingError.dataCorruptedError(
                            forKey: .advertise, in: container,
                            debugDescription: "'\(text)' is not a udp URI: \(error)")
                    }
                }
            }
            if container.contains(.fec) {
                let text: String
                if let size = try? container.decode(Int.self, forKey: .fec) {
                    text = String(size)
                } else {
                    text = try container.decode(String.self, forKey: .fec)
                }
                guard let fec = FECSetting(text) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .fec, in: container,
                        debugDescription: "'\(text)' is not a fec setting: use auto, off, or a group size 2-\(FECPacket.maximumGroupSize)")
                }
                self.fec = fec
            }
            if let rate = try container.decodeIfPresent(Int.self, forKey: .strangersPerSecond) {
                guard rate >= 0 else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .strangersPerSecond, in: container,
                        debugDescription: "\(rate) is not a rate: use 0 (no limit) or more datagrams per second")
                }
                strangersPerSecond = rate
            }
        }
    }

    /// Makes the node's UDP listener; it binds its socket in `start`. Needs `context.eventLoop`.
    public static func makeListener(settings: Settings, context: TransportContext) throws -> any EdgeListener {
        guard let eventLoop = context.eventLoop else {
            throw UDPTransportError.needsEventLoop
        }
        return try UDPEdgeListener(settings: settings, eventLoop: eventLoop, logger: context.logger)
    }
}
