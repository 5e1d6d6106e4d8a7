import WOWKit

/// The `relay` transport: edges tunnelled through other overlay nodes, for peers no direct transport
/// reaches (a symmetric NAT facing a port-restricted one, UDP blocked on both sides). URIs are
/// `relay://<forwarder>/<target>`, two 40-hex-digit ring addresses: the forwarder is a node the target is
/// connected to directly. List it last among a node's transports: URIs are tried in order, so a relay is
/// used only after the direct ones failed, and a relayed connection keeps retrying the direct ones
/// (`linking.direct_retry_s`) and moves to a direct edge as soon as one answers.
///
/// Config (all keys optional; unknown keys are rejected):
/// ```yaml
/// relay:
///   forwarders: 3      # how many relay URIs this node advertises (its nearest direct peers as forwarders)
///   advertise: auto    # auto: until a peer reached this node directly, unsolicited; always; never
///   max_edges: 128     # relayed edges this node keeps at most; frames from further peers are dropped
/// ```
public enum RelayTransport: TransportPlugin {
    public static let scheme = "relay"

    public struct Settings: Decodable, Sendable {
        public var forwarders = 3
        public var maxEdges = 128
        public var advertise = Advertise.auto

        /// When a node lists relay URIs in its info.
        public enum Advertise: String, Decodable, Sendable, CaseIterable {
            case auto, always, never
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case forwarders
            case maxEdges = "max_edges"
            case advertise
        }

        public init(forwarders: Int = 3, maxEdges: Int = 128, advertise: Advertise = .auto) {
            self.forwarders = forwarders
            self.maxEdges = maxEdges
            self.advertise = advertise
        }

        public init(from decoder: any Decoder) throws {
            self.init()
            let container = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            if let count = try container.decodeIfPresent(Int.self, forKey: .forwarders) {
                guard (1...NodeInfo.maximumURIs).contains(count) else {
                    throw DecodingError.dataCorruptedError(forKey: .forwarders, in: container,
                        debugDescription: "forwarders is \(count); use 1 to \(NodeInfo.maximumURIs)")
                }
                forwarders = count
            }
            if let count = try container.decodeIfPresent(Int.self, forKey: .maxEdges) {
                guard (1...65_536).contains(count) else {
                    throw DecodingError.dataCorruptedError(forKey: .maxEdges, in: container,
                        debugDescription: "max_edges is \(count); use 1 to 65536")
                }
                maxEdges = count
            }
            if let text = try container.decodeIfPresent(String.self, forKey: .advertise) {
                guard let value = Advertise(rawValue: text) else {
                    throw DecodingError.dataCorruptedError(forKey: .advertise, in: container,
                        debugDescription: "advertise is '\(text)'; use auto, always or never")
                }
                advertise = value
            }
        }
    }

    public static func makeListener(settings: Settings, context: TransportContext) throws -> any EdgeListener {
        RelayEdgeListener(settings: settings, scheduler: context.scheduler, logger: context.logger)
    }

    /// `relay://<forwarder>/<target>`.
    public static func uri(forwarder: Address, target: Address) -> TransportURI {
        do {
            return try TransportURI("\(scheme)://\(forwarder.hex)/\(target.hex)")
        } catch {
            // Two 40-digit hex strings after a valid scheme always form a valid URI.
            preconditionFailure("relay URI formatted invalidly: \(error)")
        }
    }

    /// The forwarder and target of a relay URI, or why it is not one.
    public static func parse(_ uri: TransportURI) -> Result<(forwarder: Address, target: Address), EdgeError> {
        guard uri.scheme == scheme else { return .failure(.wrongScheme(expected: scheme, got: uri.scheme)) }
        let parts = uri.rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let forwarder = Address(hex: String(parts[0])),
              let target = Address(hex: String(parts[1])) else {
            return .failure(.badLocation(uri, reason: "expected relay://<forwarder>/<target>, two 40-hex-digit addresses"))
        }
        return .success((forwarder, target))
    }
}

public enum RelayTransportError: Error, CustomStringConvertible {
    /// The listener was started without a node to tunnel through.
    case notAttached

    public var description: String {
        switch self {
        case .notAttached: return "the relay transport runs only inside a node (no node attached before start)"
        }
    }
}
